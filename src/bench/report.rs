//! The results of a `wgmlp bench` run as JSON, and the UTC date they carry.

use serde_json::{Map, Value, json};

use super::{ActivationsReport, Clock, FusedResult, LayerResult, Overhead, Summary, TrainResult};

/// Everything one run measured (sections that were not run are `None`).
#[derive(Clone, Debug)]
pub struct Report {
    /// When the run started, ISO 8601 UTC.
    pub date: String,
    /// Whether it was a `--quick` run.
    pub quick: bool,
    /// The clock compute passes were timed with.
    pub clock: Clock,
    /// Activations against `copy_buffer_to_buffer`.
    pub activations: Option<ActivationsReport>,
    /// Layer shapes.
    pub layers: Option<Vec<LayerResult>>,
    /// Training throughput.
    pub train: Option<Vec<TrainResult>>,
    /// Fixed costs.
    pub overhead: Option<Overhead>,
    /// The fused kernel against the layered path and the CPU reference.
    pub fused: Option<Vec<FusedResult>>,
}

/// Inserts `key` (the median), `key_min` and `key_max`.
fn put(obj: &mut Map<String, Value>, key: &str, s: &Summary) {
    obj.insert(key.to_string(), json!(s.median));
    obj.insert(format!("{key}_min"), json!(s.min));
    obj.insert(format!("{key}_max"), json!(s.max));
}

/// A JSON number, or null for NaN (JSON has no NaN).
fn num(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

impl Report {
    /// The report as JSON; `adapter` is `{"name", "backend", "device_type", "driver"}` and
    /// `host` describes the machine.
    pub fn to_json(&self, adapter: Value, host: Value) -> Value {
        let mut root = Map::new();
        root.insert("adapter".into(), adapter);
        root.insert("host".into(), host);
        root.insert("date".into(), json!(self.date));
        root.insert("quick".into(), json!(self.quick));
        root.insert("clock".into(), json!(self.clock.name()));
        if let Some(a) = &self.activations {
            let rows: Vec<Value> = a
                .rows
                .iter()
                .map(|r| {
                    let mut o = Map::new();
                    o.insert("name".into(), json!(r.name));
                    put(&mut o, "forward_gbps", &r.forward);
                    put(&mut o, "backward_gbps", &r.backward);
                    put(&mut o, "copy_buffer_to_buffer_gbps", &r.copy_buffer);
                    o.insert("forward_ratio".into(), num(r.forward_ratio()));
                    o.insert("backward_ratio".into(), num(r.backward_ratio()));
                    Value::Object(o)
                })
                .collect();
            root.insert("activations".into(), Value::Array(rows));
            let mut o = Map::new();
            o.insert("floats".into(), json!(a.len));
            put(&mut o, "copy_shader_gbps", &a.copy);
            o.insert("layout".into(), json!(a.layout));
            put(&mut o, "copy_buffer_to_buffer_gbps", &a.copy_buffer);
            o.insert(
                "copy_buffer_to_buffer_clock".into(),
                json!(a.copy_buffer_clock.name()),
            );
            root.insert("elementwise".into(), Value::Object(o));
        }
        if let Some(layers) = &self.layers {
            let rows: Vec<Value> = layers
                .iter()
                .map(|r| {
                    let mut o = Map::new();
                    o.insert("m".into(), json!(r.shape.batch));
                    o.insert("k".into(), json!(r.shape.fan_in));
                    o.insert("n".into(), json!(r.shape.fan_out));
                    o.insert("activation".into(), json!(r.activation));
                    o.insert("core".into(), json!(r.core));
                    put(&mut o, "fused_gflops", &r.fused);
                    put(&mut o, "unfused_gflops", &r.unfused);
                    put(&mut o, "backward_gflops", &r.backward);
                    put(&mut o, "cpu_sgemm_gflops", &r.cpu_sgemm);
                    o.insert("fused_over_unfused".into(), num(r.fused_ratio()));
                    o.insert("best_gpu_over_cpu".into(), num(r.gpu_cpu_ratio()));
                    Value::Object(o)
                })
                .collect();
            root.insert("layers".into(), Value::Array(rows));
        }
        if let Some(train) = &self.train {
            let rows: Vec<Value> = train
                .iter()
                .map(|r| {
                    let mut o = Map::new();
                    o.insert("model".into(), json!(r.model));
                    o.insert("batch_size".into(), json!(r.batch_size));
                    put(&mut o, "gpu_samples_per_second", &r.gpu);
                    put(&mut o, "cpu_samples_per_second", &r.cpu);
                    o.insert("gpu_over_cpu".into(), num(r.ratio()));
                    o.insert("gpu_steps".into(), json!(r.steps.0));
                    o.insert("cpu_steps".into(), json!(r.steps.1));
                    Value::Object(o)
                })
                .collect();
            root.insert("train".into(), Value::Array(rows));
        }
        if let Some(h) = &self.overhead {
            let mut o = Map::new();
            put(&mut o, "dispatch_us", &h.dispatch);
            put(&mut o, "dispatch_host_us", &h.dispatch_host);
            put(&mut o, "pass_us", &h.pass);
            put(&mut o, "submit_us", &h.submit);
            put(&mut o, "readback_us", &h.readback);
            put(&mut o, "tiny_step_us", &h.tiny_step);
            put(&mut o, "tiny_step_cpu_us", &h.tiny_step_cpu);
            o.insert("tiny_step_dispatches".into(), json!(h.tiny_step_dispatches));
            o.insert("dispatches_per_pass".into(), json!(h.dispatches_per_pass));
            root.insert("overhead".into(), Value::Object(o));
        }
        if let Some(fused) = &self.fused {
            let rows: Vec<Value> = fused
                .iter()
                .map(|r| {
                    let mut o = Map::new();
                    o.insert("model".into(), json!(r.model));
                    o.insert("batch_size".into(), json!(r.batch_size));
                    put(&mut o, "fused_samples_per_second", &r.fused);
                    put(&mut o, "layered_samples_per_second", &r.layered);
                    put(&mut o, "cpu_samples_per_second", &r.cpu);
                    put(&mut o, "fused_infer_samples_per_second", &r.fused_infer);
                    put(&mut o, "layered_infer_samples_per_second", &r.layered_infer);
                    put(&mut o, "cpu_infer_samples_per_second", &r.cpu_infer);
                    o.insert("fused_over_layered".into(), num(r.train_ratio()));
                    o.insert("fused_over_cpu".into(), num(r.cpu_ratio()));
                    o.insert("fused_over_layered_infer".into(), num(r.infer_ratio()));
                    o.insert("first_use_seconds".into(), num(r.first_use_seconds));
                    o.insert("kernel".into(), json!(r.kernel));
                    o.insert("fused_dispatches".into(), json!(r.dispatches.0));
                    o.insert("layered_dispatches".into(), json!(r.dispatches.1));
                    Value::Object(o)
                })
                .collect();
            root.insert("fused".into(), Value::Array(rows));
        }
        Value::Object(root)
    }
}

/// (year, month, day) of a day count since 1970-01-01 in the proleptic Gregorian calendar.
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    // Shift to eras of 400 years starting on 0000-03-01, so leap days fall at the end.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now_iso8601() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, mo, d) = civil_date(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::ActivationResult;
    use crate::gpu::layer::Shape;

    #[test]
    fn civil_dates_of_known_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        // 2000-02-29 is day 11016 (a leap day of a century divisible by 400).
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(11_017), (2000, 3, 1));
        // 2024-12-31 is day 20088; 2100 is not a leap year.
        assert_eq!(civil_date(20_088), (2024, 12, 31));
        assert_eq!(civil_date(47_541), (2100, 3, 1));
        assert_eq!(civil_date(47_540), (2100, 2, 28));
    }

    #[test]
    fn iso_date_has_the_fixed_layout() {
        let d = utc_now_iso8601();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.ends_with('Z') && d.as_bytes()[10] == b'T', "{d}");
    }

    fn s(median: f64) -> Summary {
        Summary {
            median,
            min: median / 2.0,
            max: median * 2.0,
            runs: 3,
        }
    }

    #[test]
    fn json_has_the_documented_fields_with_min_and_max() {
        let report = Report {
            date: "2025-01-01T00:00:00Z".into(),
            quick: true,
            clock: Clock::Timestamps,
            activations: Some(ActivationsReport {
                len: 16,
                copy: s(4.0),
                copy_buffer: s(12.0),
                copy_buffer_clock: Clock::Wall,
                layout: "lanes",
                rows: vec![ActivationResult {
                    name: "relu".into(),
                    forward: s(3.0),
                    backward: s(2.0),
                    copy_buffer: s(4.0),
                }],
            }),
            layers: Some(vec![LayerResult {
                shape: Shape {
                    batch: 256,
                    fan_in: 784,
                    fan_out: 256,
                },
                activation: "relu".into(),
                core: "wide".into(),
                fused: s(6.0),
                unfused: s(5.0),
                backward: s(4.0),
                cpu_sgemm: s(0.0),
            }]),
            train: None,
            overhead: None,
            fused: Some(vec![FusedResult {
                model: "2-64-64-3".into(),
                batch_size: 1024,
                fused: s(4.0),
                layered: s(2.0),
                cpu: s(1.0),
                fused_infer: s(8.0),
                layered_infer: s(2.0),
                cpu_infer: s(2.0),
                first_use_seconds: 3.0,
                kernel: "2-64x2-3, 8 lanes (subgroup)".into(),
                dispatches: (5, 8),
            }]),
        };
        let v = report.to_json(
            json!({"name": "x", "backend": "Vulkan", "driver": "d"}),
            json!({}),
        );
        assert_eq!(v["adapter"]["backend"], "Vulkan");
        let a = &v["activations"][0];
        assert_eq!(a["name"], "relu");
        assert_eq!(a["forward_gbps"], 3.0);
        assert_eq!(a["forward_gbps_min"], 1.5);
        assert_eq!(a["forward_gbps_max"], 6.0);
        assert_eq!(a["forward_ratio"], 0.75);
        assert_eq!(a["backward_ratio"], 0.5);
        assert_eq!(a["copy_buffer_to_buffer_gbps"], 4.0);
        let l = &v["layers"][0];
        assert_eq!(
            (l["m"].as_u64(), l["k"].as_u64(), l["n"].as_u64()),
            (Some(256), Some(784), Some(256))
        );
        assert_eq!(l["fused_over_unfused"], 1.2);
        // A ratio over zero is not a number: null, since JSON has no NaN.
        assert!(l["best_gpu_over_cpu"].is_null());
        assert!(v.get("train").is_none() && v.get("overhead").is_none());
        // The fields the fused-kernel issue names, with min and max.
        let f = &v["fused"][0];
        for key in [
            "model",
            "batch_size",
            "fused_samples_per_second",
            "layered_samples_per_second",
            "cpu_samples_per_second",
            "fused_infer_samples_per_second",
            "layered_infer_samples_per_second",
        ] {
            assert!(!f[key].is_null(), "fused.{key} missing");
        }
        assert_eq!(f["fused_samples_per_second_max"], 8.0);
        assert_eq!(f["fused_over_layered"], 2.0);
        assert_eq!(f["fused_over_layered_infer"], 4.0);
        assert_eq!(v["date"], "2025-01-01T00:00:00Z");
    }
}
