//! The cache of matmul-core choices: per adapter and shape class, in memory and on disk. It
//! holds choices only; the timing that makes them lives beside the cores, in
//! [`crate::gpu::tune`], which hands it in as a closure.
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

use crate::error::{Error, Result};
use crate::gpu::variant::MatmulVariant;

/// The environment variable that sets the [`Policy`].
pub const ENV_MATMUL: &str = "WGMLP_MATMUL";
/// The environment variable that sets the cache directory.
pub const ENV_CACHE_DIR: &str = "WGMLP_CACHE_DIR";

/// How matmul cores are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Time the eligible cores once per shape class and adapter.
    Auto,
    /// No timing: on software adapters vec4 wherever the shape allows it (else scalar), on
    /// GPUs the tiled core.
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
            "tiled" => Ok(Policy::Force(MatmulVariant::Tiled)),
            "bcast" => Ok(Policy::Force(MatmulVariant::Bcast)),
            other => Err(Error::config(
                ENV_MATMUL,
                format!(
                    "unknown value {other:?}; choose auto, heuristic, scalar, vec4, wide, tiled or bcast"
                ),
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

fn name(v: MatmulVariant) -> &'static str {
    v.name()
}

fn from_name(s: &str) -> Option<MatmulVariant> {
    MatmulVariant::from_name(s)
}

/// The shape class of a layer: each dimension rounded up to a power of two.
pub fn shape_class(batch: usize, fan_in: usize, fan_out: usize) -> String {
    let b = |v: usize| v.max(1).next_power_of_two();
    format!("{}x{}x{}", b(batch), b(fan_in), b(fan_out))
}

/// The command-line tool's cache directory, if one can be named: `$WGMLP_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/wgmlp`, else `~/.cache/wgmlp`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var(ENV_CACHE_DIR) {
        return Some(d);
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return Some(d.join("wgmlp"));
    }
    var("HOME").map(|h| h.join(".cache").join("wgmlp"))
}

/// Chosen cores by shape class for one adapter, backed by a JSON file.
pub struct Autotuner {
    policy: Policy,
    path: Option<PathBuf>,
    adapter_key: String,
    software: bool,
    choices: Mutex<BTreeMap<String, MatmulVariant>>,
    tunings: Mutex<usize>,
}

impl Autotuner {
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
            software: crate::gpu::context::is_software(info),
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

    /// The core for a layer of this shape among the `eligible` ones (those that can run it on
    /// this adapter, [`MatmulVariant::eligible`]). On a cache miss under [`Policy::Auto`],
    /// `time` measures the eligible cores it is given and returns the fastest; the answer is
    /// remembered (and written to the cache file, if there is one).
    pub fn choose(
        &self,
        batch: usize,
        fan_in: usize,
        fan_out: usize,
        eligible: &[MatmulVariant],
        time: impl FnOnce(&[MatmulVariant]) -> Result<MatmulVariant>,
    ) -> Result<MatmulVariant> {
        let vec4_ok = eligible.contains(&MatmulVariant::Vec4);
        match self.policy {
            Policy::Force(v) if eligible.contains(&v) => return Ok(v),
            Policy::Force(v) if v.needs_vec4() && vec4_ok => return Ok(MatmulVariant::Vec4),
            Policy::Force(_) => return Ok(MatmulVariant::Scalar),
            Policy::Heuristic if self.software && vec4_ok => return Ok(MatmulVariant::Vec4),
            Policy::Heuristic if self.software => return Ok(MatmulVariant::Scalar),
            Policy::Heuristic => return Ok(MatmulVariant::Tiled),
            Policy::Auto => {}
        }
        if eligible.len() == 1 {
            return Ok(eligible[0]);
        }
        let mut class = shape_class(batch, fan_in, fan_out);
        if eligible.len() < MatmulVariant::ALL.len() {
            let names: Vec<&str> = eligible.iter().map(|v| v.name()).collect();
            class += &format!(":{}", names.join("+"));
        }
        let mut choices = self.choices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = choices.get(&class) {
            return Ok(*v);
        }
        let best = time(eligible)?;
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

fn load(path: &PathBuf, adapter: &str) -> BTreeMap<String, MatmulVariant> {
    let Ok(bytes) = std::fs::read(path) else {
        return BTreeMap::new();
    };
    // Adapter → shape class → core name.
    let Ok(mut all) = serde_json::from_slice::<BTreeMap<String, BTreeMap<String, String>>>(&bytes)
    else {
        log::warn!("ignoring unreadable autotune cache {}", path.display());
        return BTreeMap::new();
    };
    all.remove(adapter)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| Some((k, from_name(&v)?)))
        .collect()
}

fn save(path: &PathBuf, adapter: &str, choices: &BTreeMap<String, MatmulVariant>) -> Result<()> {
    // Adapter → shape class → core name; other adapters' choices are kept.
    let mut all: BTreeMap<String, BTreeMap<String, String>> = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let entries = choices
        .iter()
        .map(|(k, v)| (k.clone(), name(*v).to_string()))
        .collect();
    all.insert(adapter.to_string(), entries);
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
