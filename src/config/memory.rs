//! How much memory a model needs, counted from its configuration before anything is
//! allocated, and the checks against the adapter's buffer limit and the host memory.

use crate::config::MlpConfig;
use crate::error::{Error, Result};

/// Where a model's memory lives besides its parameters, for [`MlpConfig::check_host_memory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostUse {
    /// The CPU reference path: parameters, gradients, moments and activations in host memory.
    CpuReference,
    /// A GPU; with `software` (lavapipe, llvmpipe) its buffers live in host memory too.
    Gpu {
        /// Whether the adapter is a software rasteriser on the CPU.
        software: bool,
    },
}

/// Bytes of host memory the OS says a new allocation can get (Linux: `MemAvailable` of
/// `/proc/meminfo`); `None` where it cannot tell.
pub fn available_host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

const F32: u128 = 4;

impl MlpConfig {
    /// Where each width of [`MlpConfig::widths`] comes from, for error messages: the input
    /// (the data's features), hidden layer `i` (from `origin`, e.g. `--hidden`), the output.
    fn width_origin(&self, index: usize, origin: &str) -> String {
        let w = self.widths();
        match index {
            0 => format!("the input width {} (the data's features)", w[0]),
            i if i == w.len() - 1 => format!("the output width {} (one per class)", w[i]),
            i => format!("hidden layer {i} of width {} (from {origin})", w[i]),
        }
    }

    /// The layer holding the most parameters, described: `layer 2 (100000 → 100000, from --hidden)`.
    fn largest_layer(&self, origin: &str) -> (String, u128) {
        let layers = self.layers();
        let (l, layer) = layers
            .iter()
            .enumerate()
            .max_by_key(|(_, l)| l.n_params())
            .expect("a config has at least one layer");
        let text = format!(
            "layer {} ({} → {}, from {}) holds {} of them",
            l + 1,
            layer.fan_in,
            layer.fan_out,
            if self.hidden.is_empty() {
                "the data's features and classes"
            } else {
                origin
            },
            layer.n_params()
        );
        (text, layer.n_params() as u128)
    }

    /// Parameter count as u128 (no overflow for any widths `validate` accepts).
    fn n_params_wide(&self) -> u128 {
        self.layers().iter().map(|l| l.n_params() as u128).sum()
    }

    /// Checks, before anything is allocated, that every GPU buffer a model training (or
    /// running) batches of `batch` rows needs fits `limit` bytes (the adapter's
    /// `min(max_storage_buffer_binding_size, max_buffer_size)`): the parameters (and their
    /// gradients and moments, each one buffer of the same size), and each layer's
    /// activations. The error names the size, the limit and the cause: the largest layer
    /// (`origin` says where the hidden widths come from, e.g. `--hidden`) or `--batch-size`.
    pub fn check_gpu_buffers(
        &self,
        batch: usize,
        limit: u64,
        adapter: &str,
        origin: &str,
    ) -> Result<()> {
        self.validate()?;
        let limit_name = format!("the storage buffer limit of adapter {adapter:?}");
        let n = self.n_params_wide();
        let param_bytes = n * F32;
        if param_bytes > u128::from(limit) {
            let (largest, _) = self.largest_layer(origin);
            return Err(Error::TooLarge {
                what: format!(
                    "{} ({n} parameters; {largest}) as one GPU buffer (and as many again for \
                     the gradients and each optimizer moment)",
                    self.arch()
                ),
                needed: clamp_u64(param_bytes),
                limit,
                limit_name,
                hint: format!(
                    "{}: at most {} parameters fit this adapter",
                    narrow(origin),
                    u128::from(limit) / F32
                ),
            });
        }
        // The parameters of the widest layer outnumber its outputs, so one row of
        // activations always fits once the parameters do: only the batch can be too large.
        let widths = self.widths();
        let (wi, &widest) = widths
            .iter()
            .enumerate()
            .max_by_key(|&(_, w)| *w)
            .expect("widths are never empty");
        let row = widest as u128 * F32;
        let needed = batch as u128 * row;
        if needed > u128::from(limit) {
            return Err(Error::TooLarge {
                what: format!(
                    "a batch of {batch} rows (--batch-size) of activations of {}",
                    self.width_origin(wi, origin)
                ),
                needed: clamp_u64(needed),
                limit,
                limit_name,
                hint: format!("lower --batch-size to at most {}", u128::from(limit) / row),
            });
        }
        Ok(())
    }

    /// Estimated host bytes to train this model on batches of `batch` rows where `device`
    /// says, plus `data_bytes` for the copies of the datasets the trainer keeps.
    /// Returns (parameter part, activation part, data part).
    fn host_bytes(&self, batch: usize, device: HostUse, data_bytes: u64) -> (u128, u128, u128) {
        let params = self.n_params_wide() * F32;
        let widths_sum: u128 = self.widths().iter().map(|&w| w as u128).sum();
        let batch = batch as u128;
        let data = u128::from(data_bytes);
        match device {
            // Parameters, the initial draw, gradients, two moments; each layer's input,
            // pre-activation, output and gradient.
            HostUse::CpuReference => (5 * params, 4 * batch * widths_sum * F32, data),
            // The initial draw and a read-back copy on the host; on a software adapter the
            // device buffers (parameters, gradients, two moments, activations) and the
            // uploaded datasets too.
            HostUse::Gpu { software: false } => (2 * params, 0, data),
            HostUse::Gpu { software: true } => (6 * params, 4 * batch * widths_sum * F32, 2 * data),
        }
    }

    /// Checks, before anything is allocated, that training this model on batches of
    /// `batch` rows fits the `available` host memory (see [`available_host_memory`]); the
    /// error names the estimate, the limit and the cause (the largest layer, from `origin`,
    /// or `--batch-size`).
    pub fn check_host_memory(
        &self,
        batch: usize,
        device: HostUse,
        data_bytes: u64,
        available: u64,
        origin: &str,
    ) -> Result<()> {
        self.validate()?;
        let (params, acts, data) = self.host_bytes(batch, device, data_bytes);
        let needed = params + acts + data;
        if needed <= u128::from(available) {
            return Ok(());
        }
        let place = match device {
            HostUse::CpuReference => "on the CPU reference path",
            HostUse::Gpu { software: true } => {
                "on a software adapter (its buffers are host memory)"
            }
            HostUse::Gpu { software: false } => "on the GPU",
        };
        let (what, hint) = if params >= acts && params >= data {
            let (largest, _) = self.largest_layer(origin);
            (
                format!(
                    "training {} {place} ({} parameters; {largest}; parameters, gradients and optimizer moments)",
                    self.arch(),
                    self.n_params_wide()
                ),
                narrow(origin),
            )
        } else if acts >= data {
            (
                format!(
                    "training {} {place} on batches of {batch} rows (--batch-size)",
                    self.arch()
                ),
                "lower --batch-size".to_string(),
            )
        } else {
            (
                format!("holding the datasets {place}"),
                "use a smaller dataset or a machine with more memory".to_string(),
            )
        };
        Err(Error::TooLarge {
            what,
            needed: clamp_u64(needed),
            limit: available,
            limit_name: "the host memory available".to_string(),
            hint,
        })
    }

    /// `2-64-3`: the widths joined by dashes.
    fn arch(&self) -> String {
        let w: Vec<String> = self.widths().iter().map(|w| w.to_string()).collect();
        w.join("-")
    }
}

/// What to do about a model too large: narrow the flag that set its widths, or (for widths
/// read from a checkpoint) run it elsewhere.
fn narrow(origin: &str) -> String {
    if origin.starts_with("--") {
        format!("narrow {origin}")
    } else {
        format!("{origin} cannot change; use a device with more memory")
    }
}

fn clamp_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_buffer_check_blames_the_largest_layer_then_the_batch() {
        const MIB128: u64 = 128 << 20;
        // 2-100000-100000-3: 10,000,700,003 parameters, 40 GB in one buffer.
        let huge = MlpConfig::new(2, &[100_000, 100_000], 3);
        assert_eq!(huge.n_params(), 10_000_700_003);
        let e = huge
            .check_gpu_buffers(64, MIB128, "lavapipe", "--hidden")
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::TooLarge { .. }), "{msg}");
        for part in [
            "2-100000-100000-3",
            "10000700003 parameters",
            "layer 2 (100000 → 100000, from --hidden) holds 10000100000",
            "(40002800012 bytes)",
            "(134217728 bytes)",
            "narrow --hidden: at most 33554432 parameters",
        ] {
            assert!(msg.contains(part), "{part:?} not in {msg}");
        }
        // Parameters fit, but 100000 rows of 2048 activations do not: the batch is the cause.
        let wide = MlpConfig::new(2, &[2048], 3);
        let msg = wide
            .check_gpu_buffers(100_000, MIB128, "a", "--hidden")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("--batch-size") && msg.contains("at most 16384"),
            "{msg}"
        );
        assert!(msg.contains("hidden layer 1 of width 2048"), "{msg}");
        assert!(
            wide.check_gpu_buffers(16384, MIB128, "a", "--hidden")
                .is_ok()
        );
        // Widths read from a checkpoint cannot be narrowed: the hint says what can be done.
        let msg = wide
            .check_gpu_buffers(1, 4096, "a", "the checkpoint's widths")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("the checkpoint's widths cannot change"),
            "{msg}"
        );
    }

    #[test]
    fn host_memory_check_counts_parameters_activations_and_data() {
        let c = MlpConfig::new(784, &[256], 10);
        let n = c.n_params() as u64;
        assert!(
            c.check_host_memory(256, HostUse::CpuReference, 0, 1 << 30, "--hidden")
                .is_ok()
        );
        // Five copies of the parameters on the CPU path: one byte short of the estimate fails.
        let acts = 4 * 256 * (784 + 256 + 10) * 4;
        let need = 5 * 4 * n + acts;
        assert!(
            c.check_host_memory(256, HostUse::CpuReference, 0, need, "--hidden")
                .is_ok()
        );
        let msg = c
            .check_host_memory(256, HostUse::CpuReference, 0, need - 1, "--hidden")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("host memory available") && msg.contains("784-256-10"),
            "{msg}"
        );
        // A hardware GPU keeps only two host copies of the parameters.
        assert!(
            c.check_host_memory(256, HostUse::Gpu { software: false }, 0, 2 * 4 * n, "x")
                .is_ok()
        );
        // Data copies dominate: the message says so.
        let msg = c
            .check_host_memory(1, HostUse::Gpu { software: false }, 1 << 40, 1 << 30, "x")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("datasets"), "{msg}");
        // Huge batches on the CPU path blame --batch-size.
        let msg = MlpConfig::new(2, &[8], 3)
            .check_host_memory(1 << 40, HostUse::CpuReference, 0, 1 << 30, "--hidden")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("--batch-size"), "{msg}");
    }
}
