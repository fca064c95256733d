//! Which matmul core each layer uses: a short timing of the eligible cores at first use of a
//! shape class on an adapter, remembered in memory and on disk.
//!
//! The best core differs between adapters (on CPU adapters barriers are expensive and wide
//! register blocks win; GPUs have other trade-offs), so no fixed choice is right for everyone.
//!
//! - `WGMLP_MATMUL=auto` (default): time each eligible core on the layer's shape class once
//!   per adapter and keep the fastest; the choice is cached in
//!   `$WGMLP_CACHE_DIR/autotune.json` (else `$XDG_CACHE_HOME/wgmlp/`, else `~/.cache/wgmlp/`),
//!   keyed by adapter name, backend and driver.
//! - `WGMLP_MATMUL=heuristic`: no timing; vec4 wherever the shape allows it.
//! - `WGMLP_MATMUL=scalar`, `vec4` or `wide`: force a core (vec4 and wide only where the shape
//!   allows them; scalar elsewhere).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::MatmulVariant;
use crate::gpu::layer::{ResidentLayer, Shape};
use crate::rng::Rng;

/// The environment variable that sets the [`Policy`].
pub const ENV_MATMUL: &str = "WGMLP_MATMUL";
/// The environment variable that sets the cache directory.
pub const ENV_CACHE_DIR: &str = "WGMLP_CACHE_DIR";

/// How matmul cores are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Time the eligible cores once per shape class and adapter.
    Auto,
    /// vec4 wherever the shape allows it, without timing.
    Heuristic,
    /// Always this core (vec4 falls back to scalar where the shape does not allow it).
    Force(MatmulVariant),
}

impl Policy {
    /// Parses `auto`, `heuristic`, `scalar`, `vec4` or `wide`.
    pub fn parse(text: &str) -> Result<Policy> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Policy::Auto),
            "heuristic" | "off" => Ok(Policy::Heuristic),
            "scalar" => Ok(Policy::Force(MatmulVariant::Scalar)),
            "vec4" => Ok(Policy::Force(MatmulVariant::Vec4)),
            "wide" => Ok(Policy::Force(MatmulVariant::Wide)),
            other => Err(Error::config(
                ENV_MATMUL,
                format!("unknown value {other:?}; choose auto, heuristic, scalar, vec4 or wide"),
            )),
        }
    }

    /// From `WGMLP_MATMUL`; an unknown value falls back to `auto` with a warning.
    pub fn from_env() -> Policy {
        match std::env::var(ENV_MATMUL) {
            Ok(v) => Policy::parse(&v).unwrap_or_else(|e| {
                log::warn!("{e}; using auto");
                Policy::Auto
            }),
            Err(_) => Policy::Auto,
        }
    }
}

/// `variant` name as stored in the cache.
fn name(v: MatmulVariant) -> &'static str {
    match v {
        MatmulVariant::Scalar => "scalar",
        MatmulVariant::Vec4 => "vec4",
        MatmulVariant::Wide => "wide",
    }
}

fn from_name(s: &str) -> Option<MatmulVariant> {
    match s {
        "scalar" => Some(MatmulVariant::Scalar),
        "vec4" => Some(MatmulVariant::Vec4),
        "wide" => Some(MatmulVariant::Wide),
        _ => None,
    }
}

/// The shape class of a layer: each dimension rounded up to a power of two.
pub fn shape_class(batch: usize, fan_in: usize, fan_out: usize) -> String {
    let b = |v: usize| v.max(1).next_power_of_two();
    format!("{}x{}x{}", b(batch), b(fan_in), b(fan_out))
}

/// The default cache file, if a directory for it can be named.
pub fn default_cache_path() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var(ENV_CACHE_DIR) {
        return Some(d.join("autotune.json"));
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return Some(d.join("wgmlp").join("autotune.json"));
    }
    var("HOME").map(|h| h.join(".cache").join("wgmlp").join("autotune.json"))
}

/// Chosen cores by shape class for one adapter, backed by a JSON file.
pub struct Autotuner {
    policy: Policy,
    path: Option<PathBuf>,
    adapter_key: String,
    choices: Mutex<BTreeMap<String, MatmulVariant>>,
    tunings: Mutex<usize>,
}

impl Autotuner {
    /// A tuner for this adapter, with the policy from the environment and the cached choices.
    pub fn new(info: &wgpu::AdapterInfo) -> Autotuner {
        Self::with(info, Policy::from_env(), default_cache_path())
    }

    /// A tuner with an explicit policy and cache file (`None`: memory only).
    pub fn with(info: &wgpu::AdapterInfo, policy: Policy, path: Option<PathBuf>) -> Autotuner {
        let adapter_key = format!(
            "{} | {:?} | {} {}",
            info.name, info.backend, info.driver, info.driver_info
        );
        let choices = path
            .as_ref()
            .map(|p| load(p, &adapter_key))
            .unwrap_or_default();
        Autotuner {
            policy,
            path,
            adapter_key,
            choices: Mutex::new(choices),
            tunings: Mutex::new(0),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The cache file, if any.
    pub fn cache_path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// The choices known for this adapter (shape class → core).
    pub fn choices(&self) -> Vec<(String, MatmulVariant)> {
        self.choices
            .lock()
            .map(|c| c.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// How many shape classes this tuner has timed (not loaded from the cache).
    pub fn tunings(&self) -> usize {
        self.tunings.lock().map(|t| *t).unwrap_or(0)
    }

    /// The core for a layer of this shape; `vec4_ok` says whether the vec4 core can run it.
    pub fn choose(
        &self,
        ctx: &GpuContext,
        batch: usize,
        fan_in: usize,
        fan_out: usize,
        vec4_ok: bool,
    ) -> Result<MatmulVariant> {
        if !vec4_ok {
            return Ok(MatmulVariant::Scalar);
        }
        match self.policy {
            Policy::Force(v) => return Ok(v),
            Policy::Heuristic => return Ok(MatmulVariant::Vec4),
            Policy::Auto => {}
        }
        let class = shape_class(batch, fan_in, fan_out);
        let mut choices = self.choices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = choices.get(&class) {
            return Ok(*v);
        }
        let best = time_variants(ctx, batch, fan_in, fan_out)?;
        log::info!("autotune {class}: {} on {}", name(best), self.adapter_key);
        choices.insert(class, best);
        *self.tunings.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        if let Some(path) = &self.path {
            if let Err(e) = save(path, &self.adapter_key, &choices) {
                log::warn!("could not write the autotune cache: {e}");
            }
        }
        Ok(best)
    }
}

/// Times the forward of each core on random data of this shape (at most 256 rows), the
/// median of 3 runs after a warm-up, and returns the fastest.
fn time_variants(ctx: &GpuContext, batch: usize, k: usize, n: usize) -> Result<MatmulVariant> {
    let shape = Shape {
        batch: batch.clamp(1, 256),
        fan_in: k,
        fan_out: n,
    };
    let mut rng = Rng::new(1);
    let mut rand = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| rng.uniform_range(-1.0, 1.0) as f32)
            .collect()
    };
    let (x, w, b) = (rand(shape.batch * k), rand(k * n), rand(n));
    let mut best = (f64::MAX, MatmulVariant::Scalar);
    for v in MatmulVariant::ALL {
        let layer = ResidentLayer::with_variant(
            ctx,
            v,
            Activation::Relu,
            Activation::Identity,
            shape,
            &x,
            &w,
            &b,
            true,
        )?;
        let mut times = Vec::new();
        for rep in 0..4 {
            let start = Instant::now();
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                layer.record_forward(&mut pass);
            }
            ctx.queue.submit([enc.finish()]);
            ctx.wait("autotune")?;
            if rep > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        if times[1] < best.0 {
            best = (times[1], v);
        }
    }
    Ok(best.1)
}

fn load(path: &PathBuf, adapter: &str) -> BTreeMap<String, MatmulVariant> {
    let Ok(bytes) = std::fs::read(path) else {
        return BTreeMap::new();
    };
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let Some(entries) = parsed
        .as_ref()
        .and_then(|v| v.get(adapter))
        .and_then(|v| v.as_object())
    else {
        if parsed.is_none() {
            log::warn!("ignoring unreadable autotune cache {}", path.display());
        }
        return BTreeMap::new();
    };
    entries
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), from_name(v.as_str()?)?)))
        .collect()
}

fn save(path: &PathBuf, adapter: &str, choices: &BTreeMap<String, MatmulVariant>) -> Result<()> {
    let mut all: serde_json::Map<String, serde_json::Value> = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let entries: serde_json::Map<String, serde_json::Value> = choices
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(name(*v))))
        .collect();
    all.insert(adapter.to_string(), serde_json::Value::Object(entries));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", e))?;
    }
    let text = serde_json::to_string_pretty(&all)
        .map_err(|e| Error::io(path, "serialise", std::io::Error::other(e)))?;
    crate::fsutil::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo {
            name: name.into(),
            vendor: 0,
            device: 0,
            device_type: wgpu::DeviceType::Cpu,
            device_pci_bus_id: String::new(),
            driver: "d".into(),
            driver_info: "1".into(),
            backend: wgpu::Backend::Vulkan,
            subgroup_min_size: 8,
            subgroup_max_size: 8,
            transient_saves_memory: None,
            limit_bucket: None,
        }
    }

    #[test]
    fn policy_parses_and_rejects_unknown_values() {
        assert_eq!(Policy::parse("auto").unwrap(), Policy::Auto);
        assert_eq!(Policy::parse("").unwrap(), Policy::Auto);
        assert_eq!(Policy::parse("heuristic").unwrap(), Policy::Heuristic);
        assert_eq!(
            Policy::parse("VEC4").unwrap(),
            Policy::Force(MatmulVariant::Vec4)
        );
        assert!(Policy::parse("fast").is_err());
    }

    #[test]
    fn shape_classes_round_up_to_powers_of_two() {
        assert_eq!(shape_class(256, 784, 256), "256x1024x256");
        assert_eq!(shape_class(0, 3, 10), "1x4x16");
    }

    #[test]
    fn cache_round_trips_per_adapter_and_ignores_garbage() {
        let dir = std::env::temp_dir().join(format!("wgmlp-autotune-{}", std::process::id()));
        let path = dir.join("autotune.json");
        let mut a = BTreeMap::new();
        a.insert("1x2x4".to_string(), MatmulVariant::Vec4);
        save(&path, "adapter A", &a).unwrap();
        let mut b = BTreeMap::new();
        b.insert("8x8x8".to_string(), MatmulVariant::Scalar);
        save(&path, "adapter B", &b).unwrap();
        assert_eq!(load(&path, "adapter A"), a);
        assert_eq!(load(&path, "adapter B"), b);
        assert!(load(&path, "adapter C").is_empty());
        let t = Autotuner::with(&info("x"), Policy::Auto, Some(path.clone()));
        assert!(t.choices().is_empty());
        std::fs::write(&path, b"not json").unwrap();
        assert!(load(&path, "adapter A").is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
