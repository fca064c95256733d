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

mod memory;

pub use memory::{HostUse, available_host_memory};

/// What the model predicts: a class (one output per class) or real-valued targets (one
/// output per target column).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Task {
    /// Classification: integer labels, arg-max of the outputs, accuracy.
    #[default]
    Classify,
    /// Regression: float targets, the outputs are the predictions, MSE/MAE/R².
    Regress,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Task::Classify => "classify",
            Task::Regress => "regress",
        })
    }
}

impl FromStr for Task {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "classify" | "classification" => Ok(Task::Classify),
            "regress" | "regression" => Ok(Task::Regress),
            _ => Err(Error::config(
                "task",
                format!("unknown task {s:?}; choose classify or regress"),
            )),
        }
    }
}

/// The training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Softmax cross-entropy over the logits, averaged over the batch.
    CrossEntropy,
    /// Mean squared error averaged over every element (batch × outputs), as PyTorch's
    /// `MSELoss`: against the one-hot class for classification, the targets for regression.
    Mse,
    /// Mean absolute error against the targets (regression), as PyTorch's `L1Loss`.
    L1,
    /// Huber loss with δ = 1 against the targets (regression), as PyTorch's `HuberLoss`.
    Huber,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loss::CrossEntropy => "ce",
            Loss::Mse => "mse",
            Loss::L1 => "l1",
            Loss::Huber => "huber",
        })
    }
}

impl FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ce" | "cross_entropy" | "crossentropy" => Ok(Loss::CrossEntropy),
            "mse" => Ok(Loss::Mse),
            "l1" | "mae" => Ok(Loss::L1),
            "huber" => Ok(Loss::Huber),
            _ => Err(Error::config(
                "loss",
                format!("unknown loss {s:?}; choose ce, mse, l1 or huber"),
            )),
        }
    }
}

impl Loss {
    /// The loss kernel's `loss_kind` for this loss on `task` (see `shaders/loss.wgsl`).
    pub fn wgsl_id(self, task: Task) -> u32 {
        match (self, task) {
            (Loss::CrossEntropy, _) => 0,
            (Loss::Mse, Task::Classify) => 1,
            (Loss::Mse, Task::Regress) => 2,
            (Loss::L1, _) => 3,
            (Loss::Huber, _) => 4,
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
                "init",
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
    /// Number of outputs (classes, or target columns for regression).
    pub output: usize,
    /// Classification or regression.
    pub task: Task,
    /// Loss function.
    pub loss: Loss,
    /// Weight initialisation.
    pub init: Init,
    /// Seed of the initial weights (and of the shuffling).
    pub seed: u64,
    /// Whether each pReLU layer learns its slope α (one parameter per layer, as PyTorch's
    /// `nn.PReLU()`); when false α is the fixed value of the activation.
    pub learn_prelu: bool,
    /// Inverted dropout probability after every hidden layer during training (0: none).
    pub dropout: f32,
}

impl MlpConfig {
    /// `input → hidden… → output` with ReLU hidden layers, cross-entropy, automatic init, seed 42.
    pub fn new(input: usize, hidden: &[usize], output: usize) -> Self {
        MlpConfig {
            input,
            hidden: hidden.to_vec(),
            activations: vec![Activation::Relu; hidden.len()],
            output,
            task: Task::Classify,
            loss: Loss::CrossEntropy,
            init: Init::Auto,
            seed: 42,
            learn_prelu: false,
            dropout: 0.0,
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

    /// Sets the task; regression switches a cross-entropy loss to MSE.
    pub fn with_task(mut self, task: Task) -> Self {
        self.task = task;
        if task == Task::Regress && self.loss == Loss::CrossEntropy {
            self.loss = Loss::Mse;
        }
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
        if !(self.dropout >= 0.0 && self.dropout < 1.0) {
            return Err(Error::config(
                "dropout",
                format!(
                    "{} is not a probability below 1 (0 keeps every unit; 0.5 drops half)",
                    self.dropout
                ),
            ));
        }
        if self.dropout > 0.0 && self.learn_prelu {
            return Err(Error::config(
                "dropout",
                "does not combine with --learn-prelu yet (the slope's gradient would miss the mask); drop one",
            ));
        }
        match (self.task, self.loss) {
            (Task::Regress, Loss::CrossEntropy) => {
                return Err(Error::config(
                    "loss",
                    "cross-entropy needs class labels; a regression model takes --loss mse, l1 or huber",
                ));
            }
            (Task::Classify, Loss::L1 | Loss::Huber) => {
                return Err(Error::config(
                    "loss",
                    format!(
                        "{} is a regression loss; use --task regress with float targets, or --loss ce|mse to classify",
                        self.loss
                    ),
                ));
            }
            _ => {}
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::config(
                "hidden",
                format!(
                    "hidden layer {} has width 0; every layer needs at least 1 unit",
                    i + 1
                ),
            ));
        }
        if self.activations.len() != self.hidden.len() {
            return Err(Error::config(
                "activations",
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
                "hidden",
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
        match self.task {
            Task::Classify => format!("{} {} {}", widths.join("-"), acts, self.loss),
            Task::Regress => format!("{} {} {} regression", widths.join("-"), acts, self.loss),
        }
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
}
