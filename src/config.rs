//! `MlpConfig`: the shape of a network, its activations, loss, initialisation and seed.
//!
//! Parameters of the whole model live in one flat `f32` vector (the same layout on the GPU
//! and on the CPU): for each layer `l`, its weight `W_l` as a row-major `[fan_in × fan_out]`
//! matrix (so the forward pass is `Z = X·W + b`), then its bias `b_l` of length `fan_out`.
//! Checkpoints transpose `W_l` to PyTorch's `[out, in]` on the way out.

use std::fmt;
use std::str::FromStr;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Softmax cross-entropy over the logits, averaged over the batch.
    CrossEntropy,
    /// Mean squared error between the outputs and the one-hot target, averaged over
    /// every element (batch × outputs), as PyTorch's `MSELoss` does.
    Mse,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loss::CrossEntropy => "ce",
            Loss::Mse => "mse",
        })
    }
}

impl FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ce" | "cross_entropy" | "crossentropy" => Ok(Loss::CrossEntropy),
            "mse" => Ok(Loss::Mse),
            _ => Err(Error::config(
                "--loss",
                format!("unknown loss {s:?}; choose ce or mse"),
            )),
        }
    }
}

/// Weight initialisation. Biases always start at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// He for ReLU-like layers, Glorot for sigmoid, tanh and the affine output layer.
    Auto,
    /// He/Kaiming normal: N(0, 2 / fan_in).
    He,
    /// Glorot/Xavier uniform: U(−a, a) with a = √(6 / (fan_in + fan_out)).
    Glorot,
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Init::Auto => "auto",
            Init::He => "he",
            Init::Glorot => "glorot",
        })
    }
}

impl FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Init::Auto),
            "he" | "kaiming" => Ok(Init::He),
            "glorot" | "xavier" => Ok(Init::Glorot),
            _ => Err(Error::config(
                "--init",
                format!("unknown initialisation {s:?}; choose auto, he or glorot"),
            )),
        }
    }
}

/// One affine layer `Y = act(X·W + b)` of the network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layer {
    /// Input width (rows of W).
    pub fan_in: usize,
    /// Output width (columns of W).
    pub fan_out: usize,
    /// Activation after the affine map (Identity for the output layer).
    pub activation: Activation,
    /// Offset of W (row-major fan_in × fan_out) in the flat parameter vector.
    pub w_offset: usize,
    /// Offset of b (fan_out) in the flat parameter vector.
    pub b_offset: usize,
    /// Offset of the learned pReLU slope α (one value, right after b), when the layer has one.
    pub alpha_offset: Option<usize>,
}

impl Layer {
    /// Number of parameters of this layer: W, b and a learned α if there is one.
    pub fn n_params(&self) -> usize {
        self.fan_in * self.fan_out + self.fan_out + usize::from(self.alpha_offset.is_some())
    }
}

/// The architecture and training-independent settings of an MLP.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpConfig {
    /// Number of input features.
    pub input: usize,
    /// Widths of the hidden layers (may be empty: a linear model).
    pub hidden: Vec<usize>,
    /// One activation per hidden layer.
    pub activations: Vec<Activation>,
    /// Number of outputs (classes).
    pub output: usize,
    /// Loss function.
    pub loss: Loss,
    /// Weight initialisation.
    pub init: Init,
    /// Seed of the initial weights (and of the shuffling).
    pub seed: u64,
    /// Whether each pReLU layer learns its slope α (one parameter per layer, as PyTorch's
    /// `nn.PReLU()`); when false α is the fixed value of the activation.
    pub learn_prelu: bool,
}

impl MlpConfig {
    /// `input → hidden… → output` with ReLU hidden layers, cross-entropy, automatic init, seed 42.
    pub fn new(input: usize, hidden: &[usize], output: usize) -> Self {
        MlpConfig {
            input,
            hidden: hidden.to_vec(),
            activations: vec![Activation::Relu; hidden.len()],
            output,
            loss: Loss::CrossEntropy,
            init: Init::Auto,
            seed: 42,
            learn_prelu: false,
        }
    }

    /// The same activation for every hidden layer.
    pub fn with_activation(mut self, act: Activation) -> Self {
        self.activations = vec![act; self.hidden.len()];
        self
    }

    /// Sets the loss.
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets whether pReLU layers learn their slope α.
    pub fn with_learn_prelu(mut self, learn: bool) -> Self {
        self.learn_prelu = learn;
        self
    }

    /// Sets the initialisation.
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Checks every size and that there is one activation per hidden layer.
    pub fn validate(&self) -> Result<()> {
        if self.input == 0 {
            return Err(Error::config("input", "the input width must be at least 1"));
        }
        if self.output == 0 {
            return Err(Error::config(
                "output",
                "the output width must be at least 1",
            ));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::config(
                "--hidden",
                format!(
                    "hidden layer {} has width 0; every layer needs at least 1 unit",
                    i + 1
                ),
            ));
        }
        if self.activations.len() != self.hidden.len() {
            return Err(Error::config(
                "--activation",
                format!(
                    "{} activations for {} hidden layers; give one, or one per hidden layer",
                    self.activations.len(),
                    self.hidden.len()
                ),
            ));
        }
        let widest = self.widths().into_iter().max().unwrap_or(0);
        if widest > (1 << 20) {
            return Err(Error::config(
                "--hidden",
                format!("a layer of width {widest} is larger than the 1048576 wgmlp supports"),
            ));
        }
        Ok(())
    }

    /// Layer widths from input to output: `[input, hidden…, output]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.input];
        w.extend(&self.hidden);
        w.push(self.output);
        w
    }

    /// The affine layers with their parameter offsets.
    pub fn layers(&self) -> Vec<Layer> {
        let widths = self.widths();
        let mut offset = 0;
        (0..widths.len() - 1)
            .map(|l| {
                let (fan_in, fan_out) = (widths[l], widths[l + 1]);
                let activation = self
                    .activations
                    .get(l)
                    .copied()
                    .unwrap_or(Activation::Identity);
                let b_offset = offset + fan_in * fan_out;
                let learned = self.learn_prelu && matches!(activation, Activation::Prelu { .. });
                let layer = Layer {
                    fan_in,
                    fan_out,
                    activation,
                    w_offset: offset,
                    b_offset,
                    alpha_offset: learned.then_some(b_offset + fan_out),
                };
                offset += layer.n_params();
                layer
            })
            .collect()
    }

    /// Total number of parameters.
    pub fn n_params(&self) -> usize {
        self.layers().iter().map(Layer::n_params).sum()
    }

    /// The initial parameters: identical for the same config on every machine and adapter.
    /// A learned α starts at the activation's α.
    pub fn init_params(&self) -> Vec<f32> {
        let mut rng = Rng::new(self.seed);
        let mut params = vec![0.0f32; self.n_params()];
        for layer in self.layers() {
            let he = match self.init {
                Init::He => true,
                Init::Glorot => false,
                Init::Auto => layer.activation.is_relu_like(),
            };
            let w = &mut params[layer.w_offset..layer.b_offset];
            if he {
                let std = (2.0 / layer.fan_in as f64).sqrt();
                for v in w.iter_mut() {
                    *v = (rng.normal() * std) as f32;
                }
            } else {
                let a = (6.0 / (layer.fan_in + layer.fan_out) as f64).sqrt();
                for v in w.iter_mut() {
                    *v = rng.uniform_range(-a, a) as f32;
                }
            }
            if let Some(a) = layer.alpha_offset {
                params[a] = layer.activation.param();
            }
        }
        params
    }

    /// A one-line description: `784-256-10 relu ce`.
    pub fn describe(&self) -> String {
        let widths: Vec<String> = self.widths().iter().map(|w| w.to_string()).collect();
        let acts: Vec<String> = self.activations.iter().map(|a| a.to_string()).collect();
        let acts = if acts.is_empty() {
            "linear".to_string()
        } else if acts.iter().all(|a| *a == acts[0]) {
            acts[0].clone()
        } else {
            acts.join(",")
        };
        format!("{} {} {}", widths.join("-"), acts, self.loss)
    }
}

/// Parses `--hidden`: comma-separated layer widths (`256,128`), or `none` (or nothing) for a
/// linear model. Widths are checked for range by [`MlpConfig::validate`].
pub fn parse_hidden(text: &str) -> Result<Vec<usize>> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    t.split(',')
        .map(|w| {
            let w = w.trim();
            w.parse::<usize>().map_err(|_| {
                let what = if w.starts_with('-') && w[1..].parse::<f64>().is_ok() {
                    format!("{w} is negative; a layer needs at least 1 unit")
                } else if w.parse::<f64>().is_ok_and(|v| v >= 0.0) {
                    format!("{w:?} is not a whole number of units")
                } else {
                    format!(
                        "{:?} is not a layer width",
                        w.chars().take(40).collect::<String>()
                    )
                };
                Error::config(
                    "--hidden",
                    format!("{what}; write widths like 256,128 (or none for a linear model)"),
                )
            })
        })
        .collect()
}

/// Parses `--activation`: one activation for every hidden layer, or one per layer
/// (`relu,tanh`), for a network of `layers` hidden layers.
pub fn parse_activations(text: &str, layers: usize) -> Result<Vec<Activation>> {
    let acts: Vec<Activation> = text.split(',').map(|a| a.parse()).collect::<Result<_>>()?;
    match acts.len() {
        1 => Ok(vec![acts[0]; layers]),
        n if n == layers => Ok(acts),
        n => Err(Error::config(
            "--activation",
            format!("{n} activations for {layers} hidden layers; give one, or one per layer"),
        )),
    }
}

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
    fn layout_is_contiguous_weights_then_bias() {
        let c = MlpConfig::new(3, &[4], 2);
        let l = c.layers();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].w_offset, l[0].b_offset), (0, 12));
        assert_eq!((l[1].w_offset, l[1].b_offset), (16, 24));
        assert_eq!(c.n_params(), 26);
        assert_eq!(l[1].activation, Activation::Identity);
    }

    #[test]
    fn same_seed_same_weights_and_biases_start_at_zero() {
        let c = MlpConfig::new(5, &[7, 3], 2).with_seed(9);
        assert_eq!(c.init_params(), c.init_params());
        assert_ne!(c.init_params(), c.clone().with_seed(10).init_params());
        let p = c.init_params();
        for l in c.layers() {
            assert!(
                p[l.b_offset..l.b_offset + l.fan_out]
                    .iter()
                    .all(|&b| b == 0.0)
            );
        }
    }

    #[test]
    fn learned_prelu_alpha_follows_each_bias() {
        let c = MlpConfig::new(3, &[4, 2], 2)
            .with_activation(Activation::Prelu { alpha: 0.3 })
            .with_learn_prelu(true);
        let l = c.layers();
        assert_eq!(
            (l[0].w_offset, l[0].b_offset, l[0].alpha_offset),
            (0, 12, Some(16))
        );
        assert_eq!(
            (l[1].w_offset, l[1].b_offset, l[1].alpha_offset),
            (17, 25, Some(27))
        );
        assert_eq!(
            (l[2].w_offset, l[2].b_offset, l[2].alpha_offset),
            (28, 32, None)
        );
        assert_eq!(c.n_params(), 34);
        let p = c.init_params();
        assert_eq!((p[16], p[27]), (0.3, 0.3));
        // The weights are the same draws as without the learned slopes.
        let fixed = c.clone().with_learn_prelu(false);
        assert_eq!(fixed.n_params(), 32);
        assert_eq!(&p[..16], &fixed.init_params()[..16]);
        // Only pReLU layers get a slope.
        let relu = MlpConfig::new(3, &[4], 2).with_learn_prelu(true);
        assert_eq!(relu.n_params(), 26);
    }

    #[test]
    fn invalid_configs_are_errors() {
        assert!(MlpConfig::new(0, &[4], 2).validate().is_err());
        assert!(MlpConfig::new(3, &[4, 0], 2).validate().is_err());
        assert!(MlpConfig::new(3, &[4], 0).validate().is_err());
        let mut c = MlpConfig::new(3, &[4], 2);
        c.activations.push(Activation::Tanh);
        assert!(c.validate().is_err());
        assert!(MlpConfig::new(3, &[], 2).validate().is_ok());
    }

    #[test]
    fn hidden_lists_parse_and_name_what_is_wrong() {
        assert_eq!(parse_hidden("256, 128").unwrap(), vec![256, 128]);
        assert_eq!(parse_hidden("none").unwrap(), Vec::<usize>::new());
        assert_eq!(parse_hidden(" ").unwrap(), Vec::<usize>::new());
        let e = parse_hidden("-5").unwrap_err().to_string();
        assert!(
            e.contains("--hidden") && e.contains("-5 is negative"),
            "{e}"
        );
        let e = parse_hidden("2.5").unwrap_err().to_string();
        assert!(e.contains("not a whole number"), "{e}");
        let e = parse_hidden("64,,8").unwrap_err().to_string();
        assert!(e.contains("\"\" is not a layer width"), "{e}");
        let e = parse_hidden("99999999999999999999999")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--hidden"), "{e}");
    }

    #[test]
    fn activation_lists_give_one_per_layer() {
        assert_eq!(
            parse_activations("tanh", 2).unwrap(),
            vec![Activation::Tanh; 2]
        );
        assert_eq!(
            parse_activations("relu,tanh", 2).unwrap(),
            vec![Activation::Relu, Activation::Tanh]
        );
        assert!(parse_activations("relu,tanh", 3).is_err());
        assert!(parse_activations("relu,", 2).is_err());
    }

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
