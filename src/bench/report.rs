//! The results of a `wgmlp bench` run as JSON, and the UTC date they carry.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

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

/// Summaries under their keys: each `key` (the median) with `key_min` and `key_max`.
struct Summaries<'a>(Vec<(&'static str, &'a Summary)>);

impl Serialize for Summaries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3 * self.0.len()))?;
        for (key, summary) in &self.0 {
            map.serialize_entry(key, &summary.median)?;
            map.serialize_entry(&format!("{key}_min"), &summary.min)?;
            map.serialize_entry(&format!("{key}_max"), &summary.max)?;
        }
        map.end()
    }
}

/// A ratio, or null for NaN (JSON has no NaN).
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The JSON of a [`Report`]; a section that was not run has no key.
#[derive(Serialize)]
struct ReportJson<'a> {
    /// `{"name", "backend", "device_type", "driver"}`.
    adapter: Value,
    /// The machine.
    host: Value,
    date: &'a str,
    quick: bool,
    /// [`Clock::name`].
    clock: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    activations: Option<Vec<ActivationJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elementwise: Option<ElementwiseJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layers: Option<Vec<LayerJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    train: Option<Vec<TrainJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    overhead: Option<OverheadJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fused: Option<Vec<FusedJson<'a>>>,
}

/// One activation: `forward_gbps`, `backward_gbps`, `copy_buffer_to_buffer_gbps` (with
/// `_min`, `_max`) and the ratios to the copy.
#[derive(Serialize)]
struct ActivationJson<'a> {
    name: &'a str,
    #[serde(flatten)]
    gbps: Summaries<'a>,
    forward_ratio: Option<f64>,
    backward_ratio: Option<f64>,
}

/// The whole section: `copy_shader_gbps` and `copy_buffer_to_buffer_gbps` (with `_min`,
/// `_max`) over every run.
#[derive(Serialize)]
struct ElementwiseJson<'a> {
    floats: usize,
    layout: &'a str,
    #[serde(flatten)]
    gbps: Summaries<'a>,
    copy_buffer_to_buffer_clock: &'static str,
}

/// One layer shape `m × k → n`: `fused_gflops`, `unfused_gflops`, `backward_gflops`,
/// `cpu_sgemm_gflops` (with `_min`, `_max`) and the ratios.
#[derive(Serialize)]
struct LayerJson<'a> {
    m: usize,
    k: usize,
    n: usize,
    activation: &'a str,
    core: &'a str,
    #[serde(flatten)]
    gflops: Summaries<'a>,
    fused_over_unfused: Option<f64>,
    best_gpu_over_cpu: Option<f64>,
}

/// One training case: `gpu_samples_per_second`, `cpu_samples_per_second` (with `_min`,
/// `_max`).
#[derive(Serialize)]
struct TrainJson<'a> {
    model: &'a str,
    batch_size: usize,
    #[serde(flatten)]
    samples_per_second: Summaries<'a>,
    gpu_over_cpu: Option<f64>,
    gpu_steps: usize,
    cpu_steps: usize,
}

/// Fixed costs in µs: `dispatch_us`, `dispatch_host_us`, `pass_us`, `submit_us`,
/// `readback_us`, `tiny_step_us`, `tiny_step_cpu_us` (with `_min`, `_max`).
#[derive(Serialize)]
struct OverheadJson<'a> {
    #[serde(flatten)]
    us: Summaries<'a>,
    tiny_step_dispatches: usize,
    dispatches_per_pass: usize,
}

/// One fused-kernel case: `{fused,layered,cpu}_samples_per_second` and
/// `{fused,layered,cpu}_infer_samples_per_second` (with `_min`, `_max`) and the ratios.
#[derive(Serialize)]
struct FusedJson<'a> {
    model: &'a str,
    batch_size: usize,
    #[serde(flatten)]
    samples_per_second: Summaries<'a>,
    fused_over_layered: Option<f64>,
    fused_over_cpu: Option<f64>,
    fused_over_layered_infer: Option<f64>,
    first_use_seconds: Option<f64>,
    kernel: &'a str,
    fused_dispatches: usize,
    layered_dispatches: usize,
}

impl Report {
    /// The report as JSON; `adapter` is `{"name", "backend", "device_type", "driver"}` and
    /// `host` describes the machine.
    pub fn to_json(&self, adapter: Value, host: Value) -> Value {
        let json = ReportJson {
            adapter,
            host,
            date: &self.date,
            quick: self.quick,
            clock: self.clock.name(),
            activations: self.activations.as_ref().map(|a| {
                a.rows
                    .iter()
                    .map(|r| ActivationJson {
                        name: &r.name,
                        gbps: Summaries(vec![
                            ("forward_gbps", &r.forward),
                            ("backward_gbps", &r.backward),
                            ("copy_buffer_to_buffer_gbps", &r.copy_buffer),
                        ]),
                        forward_ratio: finite(r.forward_ratio()),
                        backward_ratio: finite(r.backward_ratio()),
                    })
                    .collect()
            }),
            elementwise: self.activations.as_ref().map(|a| ElementwiseJson {
                floats: a.len,
                layout: a.layout,
                gbps: Summaries(vec![
                    ("copy_shader_gbps", &a.copy),
                    ("copy_buffer_to_buffer_gbps", &a.copy_buffer),
                ]),
                copy_buffer_to_buffer_clock: a.copy_buffer_clock.name(),
            }),
            layers: self.layers.as_ref().map(|layers| {
                layers
                    .iter()
                    .map(|r| LayerJson {
                        m: r.shape.batch,
                        k: r.shape.fan_in,
                        n: r.shape.fan_out,
                        activation: &r.activation,
                        core: &r.core,
                        gflops: Summaries(vec![
                            ("fused_gflops", &r.fused),
                            ("unfused_gflops", &r.unfused),
                            ("backward_gflops", &r.backward),
                            ("cpu_sgemm_gflops", &r.cpu_sgemm),
                        ]),
                        fused_over_unfused: finite(r.fused_ratio()),
                        best_gpu_over_cpu: finite(r.gpu_cpu_ratio()),
                    })
                    .collect()
            }),
            train: self.train.as_ref().map(|train| {
                train
                    .iter()
                    .map(|r| TrainJson {
                        model: &r.model,
                        batch_size: r.batch_size,
                        samples_per_second: Summaries(vec![
                            ("gpu_samples_per_second", &r.gpu),
                            ("cpu_samples_per_second", &r.cpu),
                        ]),
                        gpu_over_cpu: finite(r.ratio()),
                        gpu_steps: r.steps.0,
                        cpu_steps: r.steps.1,
                    })
                    .collect()
            }),
            overhead: self.overhead.as_ref().map(|h| OverheadJson {
                us: Summaries(vec![
                    ("dispatch_us", &h.dispatch),
                    ("dispatch_host_us", &h.dispatch_host),
                    ("pass_us", &h.pass),
                    ("submit_us", &h.submit),
                    ("readback_us", &h.readback),
                    ("tiny_step_us", &h.tiny_step),
                    ("tiny_step_cpu_us", &h.tiny_step_cpu),
                ]),
                tiny_step_dispatches: h.tiny_step_dispatches,
                dispatches_per_pass: h.dispatches_per_pass,
            }),
            fused: self.fused.as_ref().map(|fused| {
                fused
                    .iter()
                    .map(|r| FusedJson {
                        model: &r.model,
                        batch_size: r.batch_size,
                        samples_per_second: Summaries(vec![
                            ("fused_samples_per_second", &r.fused),
                            ("layered_samples_per_second", &r.layered),
                            ("cpu_samples_per_second", &r.cpu),
                            ("fused_infer_samples_per_second", &r.fused_infer),
                            ("layered_infer_samples_per_second", &r.layered_infer),
                            ("cpu_infer_samples_per_second", &r.cpu_infer),
                        ]),
                        fused_over_layered: finite(r.train_ratio()),
                        fused_over_cpu: finite(r.cpu_ratio()),
                        fused_over_layered_infer: finite(r.infer_ratio()),
                        first_use_seconds: finite(r.first_use_seconds),
                        kernel: &r.kernel,
                        fused_dispatches: r.dispatches.0,
                        layered_dispatches: r.dispatches.1,
                    })
                    .collect()
            }),
        };
        // Plain structs with string keys: serialising into a Value cannot fail.
        serde_json::to_value(json).expect("the bench report serialises")
    }
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now_iso8601() -> String {
    iso8601(time::OffsetDateTime::now_utc())
}

/// `t` in UTC as `YYYY-MM-DDTHH:MM:SSZ`.
fn iso8601(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::ActivationResult;
    use crate::gpu::layer::Shape;
    use serde_json::json;

    #[test]
    fn iso_dates_of_known_times() {
        let at = |secs| iso8601(time::OffsetDateTime::from_unix_timestamp(secs).unwrap());
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(-1), "1969-12-31T23:59:59Z");
        // 2000-02-29 (a leap day of a century divisible by 400), 2100-02-28 (not a leap year).
        assert_eq!(at(951_782_400 + 3_723), "2000-02-29T01:02:03Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
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
