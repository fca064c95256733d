//! `CpuMlp`: the same math as the WGSL kernels in plain loops, generic over `f32` and `f64`.
//!
//! Readable first: it is the reference every GPU test compares with, and the `--device cpu`
//! path. Shapes and conventions follow `shaders/` exactly (see `config.rs` for the layout).

use crate::activation::{Activation, Real};
use crate::config::{Layer, Loss, MlpConfig, Task};
use crate::error::{Error, Result};
use crate::optim::{self, OptimizerConfig, OptimizerState};

/// An MLP on the CPU: configuration, flat parameters and optimizer state.
#[derive(Clone, Debug)]
pub struct CpuMlp<T: Real> {
    /// Architecture.
    pub config: MlpConfig,
    /// Flat parameters (layout of [`MlpConfig::layers`]).
    pub params: Vec<T>,
    /// Optimizer settings.
    pub optimizer: OptimizerConfig,
    /// Optimizer state.
    pub state: OptimizerState<T>,
    /// Per-output scale of the regression error metrics (the targets' std, or 1), as
    /// `GpuMlp::set_target_scale`.
    pub target_scale: Vec<f32>,
    layers: Vec<Layer>,
}

/// What a batch is compared with: class labels or regression targets.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// One class index per sample (classification).
    Labels(&'a [u32]),
    /// `batch × outputs` float targets, row-major (regression).
    Values(&'a [f32]),
}

/// What the forward pass keeps for the backward pass: each layer's input and pre-activation.
#[derive(Clone, Debug)]
pub struct ForwardCache<T> {
    /// `inputs[l]` is the input X of layer l (`inputs[0]` the batch itself).
    pub inputs: Vec<Vec<T>>,
    /// `z[l]` = X_l·W_l + b_l.
    pub z: Vec<Vec<T>>,
    /// The network's outputs (logits), `[batch × output]`.
    pub output: Vec<T>,
}

/// Loss (mean over the batch), the number of correctly classified samples and, for
/// regression, the summed squared and absolute errors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLoss<T> {
    /// Mean loss over the batch.
    pub loss: T,
    /// Samples whose arg-max output equals the label (0 for regression).
    pub correct: usize,
    /// Regression: Σ over samples and outputs of (scale · (output − target))².
    pub sq_err: T,
    /// Regression: Σ over samples and outputs of |scale · (output − target)|.
    pub abs_err: T,
}

impl BatchLoss<f32> {
    /// The batch metrics a GPU state holds (its running sums over exactly one batch).
    pub fn from_state(s: &crate::gpu::TrainState) -> Self {
        BatchLoss {
            loss: s.mean_loss(),
            correct: s.correct as usize,
            sq_err: s.sq_err,
            abs_err: s.abs_err,
        }
    }
}

impl<T: Real> CpuMlp<T> {
    /// A model with the config's seeded initial parameters.
    pub fn new(config: &MlpConfig, optimizer: OptimizerConfig) -> Result<Self> {
        config.validate()?;
        let params = config
            .init_params()
            .iter()
            .map(|&p| T::from_f64(p as f64))
            .collect();
        Self::from_params(config, params, optimizer)
    }

    /// A model with the given flat parameters.
    pub fn from_params(
        config: &MlpConfig,
        params: Vec<T>,
        optimizer: OptimizerConfig,
    ) -> Result<Self> {
        config.validate()?;
        optimizer.validate()?;
        if params.len() != config.n_params() {
            return Err(Error::shape(
                "CpuMlp parameters",
                format!("{} values for {}", config.n_params(), config.describe()),
                params.len(),
            ));
        }
        Ok(CpuMlp {
            target_scale: vec![1.0; config.output],
            layers: config.layers(),
            state: OptimizerState::zeros(params.len()),
            config: config.clone(),
            params,
            optimizer,
        })
    }

    /// Checks a batch: `x` is `[batch × input]`, `labels` has `batch` entries below `output`.
    pub fn check_batch(&self, x: &[T], labels: Option<&[u32]>, batch: usize) -> Result<()> {
        check_batch(&self.config, x.len(), labels, batch)
    }

    /// The activation parameter of a layer: its learned α if it has one, else the fixed one.
    fn act_param(&self, layer: &Layer) -> T {
        match layer.alpha_offset {
            Some(a) => self.params[a],
            None => T::from_f64(layer.activation.param() as f64),
        }
    }

    /// Forward pass keeping what the backward pass needs (no dropout: inference).
    pub fn forward_cache(&self, x: &[T], batch: usize) -> Result<ForwardCache<T>> {
        self.forward_with(x, batch, false)
    }

    /// The dropout factor (0 or 1 / (1 − p)) of element `i` of hidden layer `layer`'s batch
    /// at the current optimizer step, as `shaders/dropout.wgsl` draws it.
    fn dropout_factor(&self, layer: usize, i: usize) -> T {
        use crate::dropout;
        let p = self.config.dropout;
        let seed = dropout::mask_seed(self.config.seed);
        if dropout::keep(seed, self.state.step as u32, layer as u32, i as u32, p) {
            T::from_f64(f64::from(dropout::scale(p)))
        } else {
            T::ZERO
        }
    }

    /// Forward pass; with `training` and dropout on, every hidden layer's output is
    /// multiplied by its mask (so the next layer's input is the dropped one).
    fn forward_with(&self, x: &[T], batch: usize, training: bool) -> Result<ForwardCache<T>> {
        self.check_batch(x, None, batch)?;
        let mut inputs = Vec::with_capacity(self.layers.len());
        let mut zs = Vec::with_capacity(self.layers.len());
        let mut cur = x.to_vec();
        for layer in &self.layers {
            let z = affine(&self.params, layer, &cur, batch);
            let p = self.act_param(layer);
            let mut y: Vec<T> = z
                .iter()
                .map(|&v| layer.activation.forward_with_param(v, p))
                .collect();
            let l = inputs.len();
            if training && self.config.dropout > 0.0 && l + 1 < self.layers.len() {
                for (i, v) in y.iter_mut().enumerate() {
                    *v *= self.dropout_factor(l, i);
                }
            }
            inputs.push(std::mem::replace(&mut cur, y));
            zs.push(z);
        }
        Ok(ForwardCache {
            inputs,
            z: zs,
            output: cur,
        })
    }

    /// The network's outputs (logits) for a batch.
    pub fn forward(&self, x: &[T], batch: usize) -> Result<Vec<T>> {
        Ok(self.forward_cache(x, batch)?.output)
    }

    /// The batch's loss and metrics (class labels or regression targets), with the gradient
    /// of the mean loss w.r.t. every parameter (flat, same layout as the parameters).
    pub fn loss_and_gradients(
        &self,
        x: &[T],
        target: Target,
        batch: usize,
    ) -> Result<(BatchLoss<T>, Vec<T>)> {
        check_target(&self.config, x.len(), Some(target), batch)?;
        let cache = self.forward_with(x, batch, true)?;
        let (loss, mut dz) = self.batch_loss(&cache.output, target, batch, true);
        let mut grads = vec![T::ZERO; self.params.len()];
        for l in (0..self.layers.len()).rev() {
            let layer = &self.layers[l];
            let (k, n) = (layer.fan_in, layer.fan_out);
            let xin = &cache.inputs[l];
            // dW = Xᵀ·dZ, db = Σ_rows dZ
            for b in 0..batch {
                for j in 0..n {
                    let d = dz[b * n + j];
                    grads[layer.b_offset + j] += d;
                    for i in 0..k {
                        grads[layer.w_offset + i * n + j] += xin[b * k + i] * d;
                    }
                }
            }
            if l > 0 {
                // dY_prev = dZ·Wᵀ; dZ_prev = dY_prev ⊙ act'(Z_prev);
                // a learned α gets dα = Σ dY_prev ⊙ ∂f/∂α(Z_prev) = Σ dY_prev ⊙ min(0, Z_prev).
                let prev = &self.layers[l - 1];
                let act: Activation = prev.activation;
                let p = self.act_param(prev);
                let z_prev = &cache.z[l - 1];
                let mut next = vec![T::ZERO; batch * k];
                let mut d_alpha = T::ZERO;
                for b in 0..batch {
                    for i in 0..k {
                        let mut s = T::ZERO;
                        for j in 0..n {
                            s += dz[b * n + j] * self.params[layer.w_offset + i * n + j];
                        }
                        let zv = z_prev[b * k + i];
                        next[b * k + i] = s * act.grad_with_param(zv, p);
                        if self.config.dropout > 0.0 {
                            next[b * k + i] *= self.dropout_factor(l - 1, b * k + i);
                        }
                        d_alpha += s * act.grad_param(zv);
                    }
                }
                if let Some(a) = prev.alpha_offset {
                    grads[a] = d_alpha;
                }
                dz = next;
            }
        }
        Ok((loss, grads))
    }

    /// The loss, metrics and (if `want_grad`) dLoss/dlogits of a batch's outputs.
    pub fn batch_loss(
        &self,
        logits: &[T],
        target: Target,
        batch: usize,
        want_grad: bool,
    ) -> (BatchLoss<T>, Vec<T>) {
        match target {
            Target::Labels(labels) => {
                loss_and_grad(self.config.loss, logits, labels, batch, want_grad)
            }
            Target::Values(values) => regression_loss_and_grad(
                self.config.loss,
                logits,
                values,
                &self.target_scale,
                batch,
                want_grad,
            ),
        }
    }

    /// One optimizer step on a batch (class labels or regression targets); returns the
    /// batch's loss and metrics. A non-finite loss is an error and leaves the parameters
    /// untouched.
    pub fn train_step(&mut self, x: &[T], target: Target, batch: usize) -> Result<BatchLoss<T>> {
        let (loss, grads) = self.loss_and_gradients(x, target, batch)?;
        if !loss.loss.to_f64().is_finite() {
            return Err(Error::Diverged {
                epoch: 0,
                step: self.state.step + 1,
                loss: loss.loss.to_f64() as f32,
            });
        }
        optim::apply(&self.optimizer, &mut self.state, &mut self.params, &grads);
        Ok(loss)
    }
}

/// Shared shape checks of a batch and its labels or targets against a config: labels need
/// a classification model, targets a regression model with one output per target.
pub fn check_target(
    config: &MlpConfig,
    x_len: usize,
    target: Option<Target>,
    batch: usize,
) -> Result<()> {
    match (target, config.task) {
        (Some(Target::Values(v)), Task::Regress) => {
            check_batch(config, x_len, None, batch)?;
            if v.len() != batch * config.output {
                return Err(Error::shape(
                    "batch targets",
                    format!(
                        "{batch} × {} = {} values",
                        config.output,
                        batch * config.output
                    ),
                    format!("{} values", v.len()),
                ));
            }
            Ok(())
        }
        (Some(Target::Labels(labels)), Task::Classify) => {
            check_batch(config, x_len, Some(labels), batch)
        }
        (None, _) => check_batch(config, x_len, None, batch),
        (Some(_), task) => Err(Error::config(
            "task",
            format!(
                "a {task} model needs {}",
                match task {
                    Task::Classify => "class labels, not float targets",
                    Task::Regress => "float targets, not class labels",
                }
            ),
        )),
    }
}

/// Shared shape checks of a batch against a config (CPU and GPU paths alike).
pub fn check_batch(
    config: &MlpConfig,
    x_len: usize,
    labels: Option<&[u32]>,
    batch: usize,
) -> Result<()> {
    if batch == 0 {
        return Err(Error::config("batch size", "must be at least 1 (got 0)"));
    }
    if x_len != batch * config.input {
        return Err(Error::shape(
            "batch features",
            format!(
                "{batch} × {} = {} values",
                config.input,
                batch * config.input
            ),
            format!("{x_len} values"),
        ));
    }
    if let Some(labels) = labels {
        if labels.len() != batch {
            return Err(Error::shape(
                "batch labels",
                format!("{batch} labels"),
                labels.len(),
            ));
        }
        if let Some((i, &bad)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l as usize >= config.output)
        {
            return Err(Error::InvalidData {
                what: "labels".into(),
                message: format!(
                    "label {bad} of sample {i} is out of range: the model has {} outputs (classes 0..{})",
                    config.output,
                    config.output - 1
                ),
            });
        }
    }
    Ok(())
}

/// Z = X·W + b for one layer.
fn affine<T: Real>(params: &[T], layer: &Layer, x: &[T], batch: usize) -> Vec<T> {
    let (k, n) = (layer.fan_in, layer.fan_out);
    let mut z = vec![T::ZERO; batch * n];
    for b in 0..batch {
        for j in 0..n {
            let mut s = T::ZERO;
            for i in 0..k {
                s += x[b * k + i] * params[layer.w_offset + i * n + j];
            }
            z[b * n + j] = s + params[layer.b_offset + j];
        }
    }
    z
}

/// Index of the first largest value (NaN never wins), as `loss.wgsl` computes it.
pub fn argmax<T: Real>(row: &[T]) -> usize {
    let mut best = 0;
    for c in 1..row.len() {
        if row[c] > row[best] {
            best = c;
        }
    }
    best
}

/// Mean loss, correct count and (if `want_grad`) dLoss/dlogits of a batch, as `loss.wgsl`.
pub fn loss_and_grad<T: Real>(
    loss: Loss,
    logits: &[T],
    labels: &[u32],
    batch: usize,
    want_grad: bool,
) -> (BatchLoss<T>, Vec<T>) {
    let c_len = logits.len() / batch;
    let inv_b = T::ONE / T::from_f64(batch as f64);
    let mut grad = if want_grad {
        vec![T::ZERO; logits.len()]
    } else {
        Vec::new()
    };
    let mut total = T::ZERO;
    let mut correct = 0;
    for b in 0..batch {
        let row = &logits[b * c_len..(b + 1) * c_len];
        let label = labels[b] as usize;
        if argmax(row) == label {
            correct += 1;
        }
        match loss {
            Loss::CrossEntropy => {
                let mx = row[argmax(row)];
                let s: T = row.iter().map(|&v| (v - mx).exp()).sum();
                total += mx + s.ln() - row[label];
                if want_grad {
                    for c in 0..c_len {
                        let p = (row[c] - mx).exp() / s;
                        let onehot = if c == label { T::ONE } else { T::ZERO };
                        grad[b * c_len + c] = (p - onehot) * inv_b;
                    }
                }
            }
            // validate() keeps L1 and Huber out of classification.
            Loss::Mse | Loss::L1 | Loss::Huber => {
                let cf = T::from_f64(c_len as f64);
                let mut r = T::ZERO;
                for c in 0..c_len {
                    let onehot = if c == label { T::ONE } else { T::ZERO };
                    let diff = row[c] - onehot;
                    r += diff * diff;
                    if want_grad {
                        grad[b * c_len + c] = T::from_f64(2.0) * diff * inv_b / cf;
                    }
                }
                total += r / cf;
            }
        }
    }
    (
        BatchLoss {
            loss: total * inv_b,
            correct,
            sq_err: T::ZERO,
            abs_err: T::ZERO,
        },
        grad,
    )
}

/// −1, 0 or 1 (0 for 0 and NaN), as WGSL's `sign`.
fn sign<T: Real>(d: T) -> T {
    if d > T::ZERO {
        T::ONE
    } else if d < T::ZERO {
        T::ZERO - T::ONE
    } else {
        T::ZERO
    }
}

/// Mean regression loss (MSE, L1 or Huber with δ = 1, averaged over every element), the
/// summed squared and absolute errors scaled per output by `scale`, and (if `want_grad`)
/// dLoss/dlogits, as `loss.wgsl` computes them.
pub fn regression_loss_and_grad<T: Real>(
    loss: Loss,
    logits: &[T],
    targets: &[f32],
    scale: &[f32],
    batch: usize,
    want_grad: bool,
) -> (BatchLoss<T>, Vec<T>) {
    let c_len = logits.len() / batch;
    let per = T::ONE / T::from_f64((batch * c_len) as f64);
    let mut grad = if want_grad {
        vec![T::ZERO; logits.len()]
    } else {
        Vec::new()
    };
    let (mut total, mut sq, mut ab) = (T::ZERO, T::ZERO, T::ZERO);
    let half = T::from_f64(0.5);
    for (i, (&l, &t)) in logits.iter().zip(targets).enumerate() {
        let d = l - T::from_f64(f64::from(t));
        let ad = d.abs();
        let (value, slope) = match loss {
            Loss::L1 => (ad, sign(d)),
            Loss::Huber if ad > T::ONE => (ad - half, sign(d)),
            Loss::Huber => (half * d * d, d),
            _ => (d * d, T::from_f64(2.0) * d),
        };
        total += value;
        let e = d * T::from_f64(f64::from(scale.get(i % c_len).copied().unwrap_or(1.0)));
        sq += e * e;
        ab += e.abs();
        if want_grad {
            grad[i] = slope * per;
        }
    }
    (
        BatchLoss {
            loss: total * per,
            correct: 0,
            sq_err: sq,
            abs_err: ab,
        },
        grad,
    )
}
