//! Which path trains a model on the GPU: `--kernel auto|fused|layered`.
//!
//! `auto` takes the fused kernel when the model fits it and it was measured faster than the
//! layered path on this adapter for the model's shape and batch-size class: a few training
//! steps of each on random data, once; the answer is kept in `kernels.json` beside the matmul
//! autotune cache (`WGMLP_CACHE_DIR`, else `$XDG_CACHE_HOME/wgmlp`, else `~/.cache/wgmlp`),
//! keyed by adapter name, backend and driver. A model that does not fit trains on the layered
//! path with a note saying why; `--kernel fused` on such a model is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Instant;

use super::{FusedMlp, FusedShape};
use crate::config::MlpConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::{GpuDataset, GpuMlp};
use crate::optim::OptimizerConfig;
use crate::rng::Rng;

/// `--kernel`: how the GPU trains a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelChoice {
    /// The fused kernel when the model fits and it was measured faster on this adapter.
    #[default]
    Auto,
    /// The fused kernel (an error when the model does not fit).
    Fused,
    /// The layer-by-layer kernels.
    Layered,
}

impl fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelChoice::Auto => "auto",
            KernelChoice::Fused => "fused",
            KernelChoice::Layered => "layered",
        })
    }
}

impl FromStr for KernelChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(KernelChoice::Auto),
            "fused" => Ok(KernelChoice::Fused),
            "layered" => Ok(KernelChoice::Layered),
            _ => Err(Error::config(
                "--kernel",
                format!("unknown kernel {s:?}; choose auto, fused or layered"),
            )),
        }
    }
}

/// The path chosen for a model, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelDecision {
    /// The fused kernel's shape, when it trains the model.
    pub fused: Option<FusedShape>,
    /// Why (a fallback, a measurement), for the log and the user.
    pub note: Option<String>,
}

impl KernelDecision {
    /// `fused` or `layered`.
    pub fn name(&self) -> &'static str {
        match self.fused {
            Some(_) => "fused",
            None => "layered",
        }
    }

    /// `fused (2-64x2-3, 8 lanes (subgroup))` or `layered`.
    pub fn describe(&self) -> String {
        match &self.fused {
            Some(shape) => format!("fused ({})", shape.describe()),
            None => "layered".into(),
        }
    }
}

/// Decides the path for `config` trained in batches of `batch` on `ctx`.
pub fn decide(
    ctx: &GpuContext,
    config: &MlpConfig,
    optimizer: OptimizerConfig,
    batch: usize,
    choice: KernelChoice,
) -> Result<KernelDecision> {
    let layered = |note| KernelDecision { fused: None, note };
    let fits = match config.task {
        // The trainer's fused path gathers class labels; float targets train layered.
        crate::config::Task::Regress => {
            Err("the fused trainer gathers class labels, not regression targets".to_string())
        }
        _ if optimizer.clip_norm > 0.0 => {
            Err("the fused kernel does not clip gradients (--clip-grad-norm)".to_string())
        }
        _ => FusedMlp::fits(ctx, config),
    };
    match (choice, fits) {
        (KernelChoice::Layered, _) => Ok(layered(None)),
        (KernelChoice::Fused, Ok(shape)) => Ok(KernelDecision {
            fused: Some(shape),
            note: None,
        }),
        (KernelChoice::Fused, Err(reason)) => Err(Error::config(
            "--kernel",
            format!(
                "fused cannot train {}: {reason}; use --kernel layered (or auto, which falls back to it)",
                config.describe()
            ),
        )),
        (KernelChoice::Auto, Err(reason)) => {
            let note = format!(
                "the fused kernel does not fit {} ({reason}): training on the layered path",
                config.describe()
            );
            log::info!("{note}");
            Ok(layered(Some(note)))
        }
        (KernelChoice::Auto, Ok(shape)) => {
            let key = format!("{} @{}", shape.describe(), batch.next_power_of_two());
            let fused = match cached(ctx, &key) {
                Some(fused) => fused,
                None => {
                    let (f, l) = time_paths(ctx, config, optimizer, batch)?;
                    log::info!(
                        "kernel choice {key}: fused {:.0} µs, layered {:.0} µs per step",
                        f * 1e6,
                        l * 1e6,
                    );
                    remember(ctx, &key, f < l)
                }
            };
            Ok(if fused {
                KernelDecision {
                    fused: Some(shape),
                    note: None,
                }
            } else {
                layered(Some(format!(
                    "the layered path was measured faster than the fused kernel for {} at batch {batch} on this adapter",
                    config.describe()
                )))
            })
        }
    }
}

/// Median seconds per training step of (fused, layered) on random data of this shape.
pub fn time_paths(
    ctx: &GpuContext,
    config: &MlpConfig,
    optimizer: OptimizerConfig,
    batch: usize,
) -> Result<(f64, f64)> {
    let batch = batch.clamp(1, 4096);
    let steps = (8192 / batch).clamp(1, 16);
    let mut rng = Rng::new(5);
    let x: Vec<f32> = (0..batch * config.input)
        .map(|_| rng.uniform_range(-0.5, 0.5) as f32)
        .collect();
    let labels: Vec<u32> = (0..batch)
        .map(|_| rng.below(config.output as u64) as u32)
        .collect();
    let data = Dataset::new(
        "kernel choice",
        x.clone(),
        labels.clone(),
        config.input,
        config.output,
    )?;
    let resident = GpuDataset::upload(ctx, &data)?;
    let mut fused = FusedMlp::new(ctx, config, optimizer, batch)?;
    let mut layered = GpuMlp::new(ctx, config, optimizer, batch)?;
    let mut time = |fused_path: bool| -> Result<f64> {
        let start = Instant::now();
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        for _ in 0..steps {
            if fused_path {
                fused.encode_train_step(&mut enc, &resident, 0, batch)?;
            } else {
                layered.encode_train_step(&mut enc, &resident, 0, batch)?;
            }
        }
        ctx.queue.submit([enc.finish()]);
        ctx.wait("kernel choice")?;
        Ok(start.elapsed().as_secs_f64() / steps as f64)
    };
    // The first run of each compiles its pipelines.
    time(true)?;
    time(false)?;
    let (mut f, mut l) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        f.push(time(true)?);
        l.push(time(false)?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(&mut f), median(&mut l)))
}

/// Choices made in this process, by adapter then key.
type Choices = BTreeMap<String, BTreeMap<String, bool>>;
static MEMORY: Mutex<Option<Choices>> = Mutex::new(None);

fn adapter_key(ctx: &GpuContext) -> String {
    let i = &ctx.info;
    format!(
        "{} | {:?} | {} {}",
        i.name, i.backend, i.driver, i.driver_info
    )
}

/// `kernels.json` in the context's cache directory, if it has one.
pub fn cache_path(ctx: &GpuContext) -> Option<PathBuf> {
    ctx.cache_dir.as_ref().map(|d| d.join("kernels.json"))
}

fn load(path: Option<&PathBuf>) -> Choices {
    let Some(bytes) = path.and_then(|p| std::fs::read(p).ok()) else {
        return Choices::new();
    };
    // Adapter → key → `fused` or `layered`.
    let Ok(adapters) = serde_json::from_slice::<BTreeMap<String, BTreeMap<String, String>>>(&bytes)
    else {
        log::warn!("ignoring an unreadable kernel choice cache");
        return Choices::new();
    };
    adapters
        .into_iter()
        .map(|(adapter, entries)| {
            let entries = entries.into_iter().map(|(k, v)| (k, v == "fused"));
            (adapter, entries.collect())
        })
        .collect()
}

fn cached(ctx: &GpuContext, key: &str) -> Option<bool> {
    let mut memory = MEMORY.lock().unwrap_or_else(|p| p.into_inner());
    let choices = memory.get_or_insert_with(|| load(cache_path(ctx).as_ref()));
    choices.get(&adapter_key(ctx))?.get(key).copied()
}

/// Records a measured choice and returns the one to use: the first one written for this key
/// wins (another process may have measured it meanwhile), so every run on this adapter takes
/// the same path for the same model and batch class.
fn remember(ctx: &GpuContext, key: &str, fused: bool) -> bool {
    let mut memory = MEMORY.lock().unwrap_or_else(|p| p.into_inner());
    let mut choices = load(cache_path(ctx).as_ref());
    if let Some(existing) = choices.get(&adapter_key(ctx)).and_then(|m| m.get(key)) {
        let existing = *existing;
        *memory = Some(choices);
        return existing;
    }
    for (adapter, entries) in memory.take().unwrap_or_default() {
        let known = choices.entry(adapter).or_default();
        for (k, v) in entries {
            known.entry(k).or_insert(v);
        }
    }
    choices
        .entry(adapter_key(ctx))
        .or_default()
        .insert(key.to_string(), fused);
    let choices = memory.insert(choices);
    let Some(path) = cache_path(ctx) else {
        return fused;
    };
    // Adapter → key → `fused` or `layered`.
    let json: BTreeMap<&str, BTreeMap<&str, &str>> = choices
        .iter()
        .map(|(adapter, entries)| {
            let entries = entries
                .iter()
                .map(|(k, f)| (k.as_str(), if *f { "fused" } else { "layered" }));
            (adapter.as_str(), entries.collect())
        })
        .collect();
    let write = || -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", e))?;
        }
        let text = serde_json::to_string_pretty(&json)
            .map_err(|e| Error::io(&path, "serialise", std::io::Error::other(e)))?;
        crate::fsutil::write_atomic(&path, text.as_bytes())
    };
    if let Err(e) = write() {
        log::warn!("could not write the kernel choice cache: {e}");
    }
    fused
}

/// The choices known for this adapter (key → fused?), for `wgmlp info`.
pub fn known_choices(ctx: &GpuContext) -> Vec<(String, bool)> {
    let mut memory = MEMORY.lock().unwrap_or_else(|p| p.into_inner());
    let choices = memory.get_or_insert_with(|| load(cache_path(ctx).as_ref()));
    choices
        .get(&adapter_key(ctx))
        .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default()
}
