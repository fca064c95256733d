//! Inference with a trained model on the GPU or the CPU reference: logits, probabilities,
//! and evaluation metrics with a confusion matrix.

use crate::config::{Loss, MlpConfig};
use crate::data::Dataset;
use crate::data::Normalization;
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuMlp};
use crate::optim::OptimizerConfig;
use crate::reference::{CpuMlp, argmax, loss_and_grad, regression_loss_and_grad};
use crate::train::RegressionMetrics;

/// Where to run: a GPU context, or the CPU reference path.
#[derive(Clone, Copy, Debug)]
pub enum Device<'c> {
    /// The GPU (or software adapter) behind this context.
    Gpu(&'c GpuContext),
    /// The CPU reference path (f32).
    Cpu,
}

impl Device<'_> {
    /// A human-readable name of the device.
    pub fn describe(&self) -> String {
        match self {
            Device::Gpu(ctx) => ctx.adapter_summary(),
            Device::Cpu => "CPU reference (f32)".to_string(),
        }
    }
}

/// How `--device` chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A hardware GPU, else a software adapter, else the CPU reference.
    Auto,
    /// A GPU adapter (hardware or software); an error if there is none.
    Gpu,
    /// The CPU reference path.
    Cpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "gpu" => Ok(DeviceChoice::Gpu),
            "cpu" => Ok(DeviceChoice::Cpu),
            _ => Err(Error::config(
                "--device",
                format!("unknown device {s:?}; choose auto, gpu or cpu"),
            )),
        }
    }
}

/// Opens the device `choice` asks for. With `Auto` and no adapter, falls back to the CPU
/// reference path and logs why.
pub fn open_device(choice: DeviceChoice) -> Result<Option<GpuContext>> {
    match choice {
        DeviceChoice::Cpu => Ok(None),
        DeviceChoice::Gpu => GpuContext::new().map(Some),
        DeviceChoice::Auto => match GpuContext::new() {
            Ok(ctx) => Ok(Some(ctx)),
            Err(e) => {
                log::warn!("{e}; using the CPU reference path");
                eprintln!("note: no GPU adapter ({e}); training on the CPU reference path");
                Ok(None)
            }
        },
    }
}

/// The outputs (logits) of the model for `n` rows of `features`, in batches.
pub fn logits(
    device: Device,
    config: &MlpConfig,
    params: &[f32],
    features: &[f32],
    n: usize,
) -> Result<Vec<f32>> {
    if features.len() != n * config.input {
        return Err(Error::shape(
            "features",
            format!("{n} rows × {} features", config.input),
            format!("{} values", features.len()),
        ));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let opt = OptimizerConfig::sgd(0.1);
    let d = config.input;
    let mut out = Vec::with_capacity(n * config.output);
    match device {
        Device::Gpu(ctx) => {
            let batch = n.min(1024);
            let mut mlp = GpuMlp::from_params(ctx, config, opt, batch, params)?;
            for start in (0..n).step_by(batch) {
                let b = batch.min(n - start);
                out.extend(mlp.forward(&features[start * d..(start + b) * d], b)?);
            }
        }
        Device::Cpu => {
            let mlp = CpuMlp::<f32>::from_params(config, params.to_vec(), opt)?;
            for start in (0..n).step_by(256) {
                let b = 256.min(n - start);
                out.extend(mlp.forward(&features[start * d..(start + b) * d], b)?);
            }
        }
    }
    Ok(out)
}

/// Row-wise softmax (stable: the row maximum is subtracted first).
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f32> {
    let mut p = logits.to_vec();
    for row in p.chunks_mut(classes) {
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0.0;
        for v in row.iter_mut() {
            *v = (*v - mx).exp();
            s += *v;
        }
        for v in row.iter_mut() {
            *v /= s;
        }
    }
    p
}

/// Loss, accuracy and confusion matrix of a model on a labelled dataset.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Mean loss.
    pub loss: f32,
    /// Fraction classified correctly.
    pub accuracy: f32,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// Evaluates `params` on `data` (features already normalised as the model expects).
pub fn evaluate(
    device: Device,
    config: &MlpConfig,
    params: &[f32],
    data: &Dataset,
) -> Result<Evaluation> {
    if data.n_features != config.input {
        return Err(Error::shape(
            "evaluation data",
            format!("{} features (the model's input width)", config.input),
            data.n_features,
        ));
    }
    if data.n_classes > config.output {
        return Err(Error::shape(
            "evaluation data",
            format!("at most {} classes (the model's outputs)", config.output),
            data.n_classes,
        ));
    }
    let out = logits(device, config, params, &data.features, data.len())?;
    let loss: Loss = config.loss;
    let (r, _) = loss_and_grad(loss, &out, &data.labels, data.len(), false);
    let c = config.output;
    let mut confusion = vec![vec![0usize; c]; c];
    for (row, &label) in out.chunks(c).zip(&data.labels) {
        confusion[label as usize][argmax(row)] += 1;
    }
    Ok(Evaluation {
        loss: r.loss,
        accuracy: r.correct as f32 / data.len().max(1) as f32,
        confusion,
    })
}

/// Loss and MSE/MAE/R² of a regression model on a dataset.
#[derive(Clone, Debug)]
pub struct RegressionEvaluation {
    /// Mean training loss (on standardised targets when the model was trained on them).
    pub loss: f32,
    /// MSE, MAE and R² in the targets' own units.
    pub metrics: RegressionMetrics,
}

/// The predictions of a regression model in the targets' own units: the outputs with the
/// target standardisation (if any) undone.
pub fn predictions(
    device: Device,
    config: &MlpConfig,
    params: &[f32],
    target_norm: Option<&Normalization>,
    features: &[f32],
    n: usize,
) -> Result<Vec<f32>> {
    let mut out = logits(device, config, params, features, n)?;
    if let Some(norm) = target_norm {
        norm.invert(&mut out);
    }
    Ok(out)
}

/// Evaluates a regression model on `data` (features already normalised as the model
/// expects, targets in their own units); the loss is the training loss on the model's
/// (standardised, when `target_norm` is given) scale.
pub fn evaluate_regression(
    device: Device,
    config: &MlpConfig,
    params: &[f32],
    target_norm: Option<&Normalization>,
    data: &Dataset,
) -> Result<RegressionEvaluation> {
    if data.n_features != config.input || data.n_targets != config.output {
        return Err(Error::shape(
            "evaluation data",
            format!(
                "{} features and {} targets (the model's widths)",
                config.input, config.output
            ),
            format!(
                "{} features and {} targets",
                data.n_features, data.n_targets
            ),
        ));
    }
    let pred = predictions(
        device,
        config,
        params,
        target_norm,
        &data.features,
        data.len(),
    )?;
    let ones = vec![1.0; config.output];
    let (raw, _) = regression_loss_and_grad(
        config.loss,
        &pred,
        &data.targets,
        &ones,
        data.len().max(1),
        false,
    );
    let loss = match target_norm {
        None => raw.loss,
        Some(norm) => {
            let mut p = pred.clone();
            let mut t = data.targets.clone();
            norm.apply(&mut p)?;
            norm.apply(&mut t)?;
            regression_loss_and_grad::<f32>(config.loss, &p, &t, &ones, data.len().max(1), false)
                .0
                .loss
        }
    };
    Ok(RegressionEvaluation {
        loss,
        metrics: RegressionMetrics::from_sums(
            f64::from(raw.sq_err),
            f64::from(raw.abs_err),
            data.len(),
            data.n_targets,
            data.target_sum_of_squares(None),
        ),
    })
}
