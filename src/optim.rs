//! Optimizer settings and the CPU reference of the updates in `shaders/optim.wgsl`.

use std::fmt;
use std::str::FromStr;

use crate::activation::Real;
use crate::error::{Error, Result};

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Plain SGD (with optional L2 weight decay).
    Sgd,
    /// SGD with (PyTorch-style) momentum.
    Momentum,
    /// Adam (with optional L2 weight decay).
    Adam,
    /// Adam with decoupled weight decay.
    AdamW,
}

impl OptimizerKind {
    /// The id `optim.wgsl` uses.
    pub fn wgsl_id(self) -> u32 {
        match self {
            OptimizerKind::Sgd => 0,
            OptimizerKind::Momentum => 1,
            OptimizerKind::Adam => 2,
            OptimizerKind::AdamW => 3,
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        })
    }
}

impl FromStr for OptimizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sgd" => Ok(OptimizerKind::Sgd),
            "momentum" => Ok(OptimizerKind::Momentum),
            "adam" => Ok(OptimizerKind::Adam),
            "adamw" => Ok(OptimizerKind::AdamW),
            _ => Err(Error::config(
                "optimizer",
                format!("unknown optimizer {s:?}; choose sgd, momentum, adam or adamw"),
            )),
        }
    }
}

/// An optimizer and its hyper-parameters (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerConfig {
    /// Update rule.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub lr: f32,
    /// Momentum μ (Momentum only). Default 0.9.
    pub momentum: f32,
    /// Adam β1. Default 0.9.
    pub beta1: f32,
    /// Adam β2. Default 0.999.
    pub beta2: f32,
    /// Adam ε. Default 1e-8.
    pub eps: f32,
    /// L2 weight decay (decoupled for AdamW). Default 0 (AdamW: 0.01).
    pub weight_decay: f32,
    /// Gradient clipping by global norm before each update (PyTorch's `clip_grad_norm_`);
    /// 0 (default): off.
    pub clip_norm: f32,
}

impl OptimizerConfig {
    /// An optimizer of `kind` with learning rate `lr` and PyTorch's other defaults.
    pub fn new(kind: OptimizerKind, lr: f32) -> Self {
        OptimizerConfig {
            kind,
            lr,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: if kind == OptimizerKind::AdamW {
                0.01
            } else {
                0.0
            },
            clip_norm: 0.0,
        }
    }

    /// Plain SGD.
    pub fn sgd(lr: f32) -> Self {
        Self::new(OptimizerKind::Sgd, lr)
    }

    /// Adam.
    pub fn adam(lr: f32) -> Self {
        Self::new(OptimizerKind::Adam, lr)
    }

    /// Checks the hyper-parameters.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config(
                "lr",
                format!("learning rate {} must be a positive number", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return Err(Error::config("beta", "Adam's betas must be in [0, 1)"));
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::config("momentum", "momentum must be in [0, 1]"));
        }
        if !(self.clip_norm.is_finite() && self.clip_norm >= 0.0) {
            return Err(Error::config(
                "clip_norm",
                format!(
                    "{} must be a positive number (the largest gradient norm)",
                    self.clip_norm
                ),
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::config(
                "weight_decay",
                "weight decay must be a non-negative number",
            ));
        }
        Ok(())
    }
}

/// Optimizer state: the step count and the moment buffers (empty until needed).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T> {
    /// Updates applied so far.
    pub step: u64,
    /// Momentum buffer, or Adam's first moment.
    pub m: Vec<T>,
    /// Adam's second moment.
    pub v: Vec<T>,
}

impl<T> OptimizerState<T> {
    /// Checks that the moments hold `n` values each (a state for `n` parameters).
    pub fn check_len(&self, n: usize) -> crate::error::Result<()> {
        if self.m.len() != n || self.v.len() != n {
            return Err(crate::error::Error::shape(
                "optimizer state",
                format!("{n} values per moment"),
                format!("{} and {}", self.m.len(), self.v.len()),
            ));
        }
        Ok(())
    }
}

impl<T: Real> OptimizerState<T> {
    /// Zeroed state for `n` parameters.
    pub fn zeros(n: usize) -> Self {
        OptimizerState {
            step: 0,
            m: vec![T::ZERO; n],
            v: vec![T::ZERO; n],
        }
    }
}

/// Gradient clipping's factor, as `clip.wgsl` computes it: with the global norm
/// ‖g‖ = √Σ g², coef = clip / (‖g‖ + 1e-6), the factor is coef when coef < 1, else 1.
pub fn clip_scale<T: Real>(clip: f32, grads: &[T]) -> T {
    if clip <= 0.0 {
        return T::ONE;
    }
    let sum: T = grads.iter().map(|&g| g * g).sum();
    let coef = T::from_f64(f64::from(clip)) / (sum.sqrt() + T::from_f64(1e-6));
    if coef < T::ONE { coef } else { T::ONE }
}

/// One update of `params` from `grads`, exactly as `optim.wgsl` does it.
pub fn apply<T: Real>(
    cfg: &OptimizerConfig,
    state: &mut OptimizerState<T>,
    params: &mut [T],
    grads: &[T],
) {
    state.step += 1;
    let c = |v: f32| T::from_f64(v as f64);
    let (lr, wd) = (c(cfg.lr), c(cfg.weight_decay));
    let t = state.step as i32;
    let bc1 = T::ONE - c(cfg.beta1).powi(t);
    let bc2 = T::ONE - c(cfg.beta2).powi(t);
    let scale = clip_scale(cfg.clip_norm, grads);
    for i in 0..params.len() {
        let mut p = params[i];
        let mut g = grads[i];
        if cfg.clip_norm > 0.0 {
            g *= scale;
        }
        match cfg.kind {
            OptimizerKind::Sgd => {
                g += wd * p;
                p -= lr * g;
            }
            OptimizerKind::Momentum => {
                g += wd * p;
                let m = c(cfg.momentum) * state.m[i] + g;
                state.m[i] = m;
                p -= lr * m;
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                if cfg.kind == OptimizerKind::AdamW {
                    p *= T::ONE - lr * wd;
                } else {
                    g += wd * p;
                }
                let m = c(cfg.beta1) * state.m[i] + (T::ONE - c(cfg.beta1)) * g;
                let v = c(cfg.beta2) * state.v[i] + (T::ONE - c(cfg.beta2)) * g * g;
                state.m[i] = m;
                state.v[i] = v;
                p -= lr * (m / bc1) / ((v / bc2).sqrt() + c(cfg.eps));
            }
        }
        params[i] = p;
    }
}
