//! Inference with a trained model: [`Predictor`] (forward-only, on the GPU or the CPU
//! reference), probabilities, and evaluation metrics with a confusion matrix.

use std::sync::Mutex;

use crate::config::{Loss, MlpConfig, Task};
use crate::data::Dataset;
use crate::data::Normalization;
use crate::error::{Error, Result};
use crate::gpu::GpuMlp;
use crate::model::Device;
use crate::reference::{CpuMlp, argmax, loss_and_grad, regression_loss_and_grad};
use crate::train::RegressionMetrics;

/// Rows per GPU forward pass of a [`Predictor`] (larger inputs run in several).
pub const PREDICT_BATCH: usize = 1024;

/// A trained model for inference only: no gradients, no optimizer state, no loss buffers.
/// `predict`-style methods take `&self` and any number of rows (run in batches), so one
/// predictor can be shared between threads (`Send + Sync`; GPU calls run one at a time).
///
/// ```
/// use wgmlp::{Device, MlpConfig, Predictor};
///
/// # fn main() -> wgmlp::Result<()> {
/// let config = MlpConfig::new(2, &[4], 3).with_seed(1);
/// let predictor = Predictor::new(&Device::Cpu, &config, &config.init_params())?;
/// let probs = predictor.probabilities(&[0.5, -1.0, 2.0, 0.0], 2)?;
/// assert_eq!(probs.len(), 2 * 3);
/// assert!((probs[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub struct Predictor {
    config: MlpConfig,
    engine: Engine,
}

enum Engine {
    Gpu(Box<Mutex<GpuMlp>>),
    Cpu(Box<CpuMlp<f32>>),
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor")
            .field("model", &self.config.describe())
            .field("device", &self.device_name())
            .finish()
    }
}

impl Predictor {
    /// A predictor of `config` with flat parameters `params` (from [`crate::Model::params`] or
    /// a checkpoint) on `device`.
    pub fn new(device: &Device, config: &MlpConfig, params: &[f32]) -> Result<Predictor> {
        let engine = match device {
            Device::Gpu(ctx) => Engine::Gpu(Box::new(Mutex::new(GpuMlp::for_inference(
                ctx,
                config,
                PREDICT_BATCH,
                params,
            )?))),
            Device::Cpu => Engine::Cpu(Box::new(CpuMlp::from_params(
                config,
                params.to_vec(),
                crate::optim::OptimizerConfig::sgd(0.1),
            )?)),
        };
        Ok(Predictor {
            config: config.clone(),
            engine,
        })
    }

    /// A predictor of a model's current parameters, on `device`.
    pub fn of_model(device: &Device, model: &dyn crate::Model) -> Result<Predictor> {
        Predictor::new(device, model.config(), &model.params()?)
    }

    /// The architecture.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// Where it runs, in words.
    pub fn device_name(&self) -> String {
        match &self.engine {
            Engine::Gpu(m) => m
                .lock()
                .map(|m| m.context().adapter_summary())
                .unwrap_or_else(|p| p.into_inner().context().adapter_summary()),
            Engine::Cpu(_) => "CPU reference (f32)".to_string(),
        }
    }

    /// The network's outputs (logits for a classifier, predictions on the trained scale for
    /// a regression model) for `n` rows of `features`, row-major `[n × output]`.
    pub fn logits(&self, features: &[f32], n: usize) -> Result<Vec<f32>> {
        let config = &self.config;
        if features.len() != n * config.input {
            return Err(Error::shape(
                "features",
                format!("{n} rows × {} features", config.input),
                format!("{} values", features.len()),
            ));
        }
        let d = config.input;
        let mut out = Vec::with_capacity(n * config.output);
        match &self.engine {
            Engine::Gpu(mlp) => {
                let mut mlp = mlp.lock().unwrap_or_else(|p| p.into_inner());
                for start in (0..n).step_by(PREDICT_BATCH) {
                    let b = PREDICT_BATCH.min(n - start);
                    out.extend(mlp.forward(&features[start * d..(start + b) * d], b)?);
                }
            }
            Engine::Cpu(mlp) => {
                for start in (0..n).step_by(256) {
                    let b = 256.min(n - start);
                    out.extend(mlp.forward(&features[start * d..(start + b) * d], b)?);
                }
            }
        }
        Ok(out)
    }

    /// Class probabilities `[n × classes]` of a classifier: the softmax of the logits for
    /// a cross-entropy model, the outputs themselves for one trained with MSE, L1 or Huber
    /// on one-hot targets.
    pub fn probabilities(&self, features: &[f32], n: usize) -> Result<Vec<f32>> {
        self.classifier("probabilities")?;
        let logits = self.logits(features, n)?;
        Ok(match self.config.loss {
            Loss::CrossEntropy => softmax_rows(&logits, self.config.output),
            Loss::Mse | Loss::L1 | Loss::Huber => logits,
        })
    }

    /// The predicted class (arg-max output) of each of `n` rows.
    pub fn classes(&self, features: &[f32], n: usize) -> Result<Vec<usize>> {
        self.classifier("classes")?;
        let logits = self.logits(features, n)?;
        Ok(logits.chunks(self.config.output).map(argmax).collect())
    }

    fn classifier(&self, what: &str) -> Result<()> {
        match self.config.task {
            Task::Classify => Ok(()),
            Task::Regress => Err(Error::config(
                what,
                "the model is a regression model; use logits (or predictions with the target normalisation)",
            )),
        }
    }
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

/// Per-class precision, recall and F1 from a confusion matrix (`confusion[true][predicted]`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassReport {
    /// TP / (TP + FP): of the samples predicted as the class, the share that are (0 when
    /// nothing was predicted as it).
    pub precision: f32,
    /// TP / (TP + FN): of the class's samples, the share found (0 when it has none).
    pub recall: f32,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f32,
    /// Samples of the class (TP + FN).
    pub support: usize,
}

/// The per-class report of a confusion matrix, as scikit-learn's `classification_report`
/// (with `zero_division=0`).
pub fn class_report(confusion: &[Vec<usize>]) -> Vec<ClassReport> {
    let c = confusion.len();
    (0..c)
        .map(|k| {
            let tp = confusion[k][k] as f64;
            let support: usize = confusion[k].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[k]).sum();
            let ratio = |a: f64, b: usize| if b == 0 { 0.0 } else { a / b as f64 };
            let (p, r) = (ratio(tp, predicted), ratio(tp, support));
            let f1 = if p + r == 0.0 {
                0.0
            } else {
                2.0 * p * r / (p + r)
            };
            ClassReport {
                precision: p as f32,
                recall: r as f32,
                f1: f1 as f32,
                support,
            }
        })
        .collect()
}

/// Evaluates a classifier on `data` (features already normalised as the model expects).
pub fn evaluate(predictor: &Predictor, data: &Dataset) -> Result<Evaluation> {
    let config = predictor.config();
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
    let out = predictor.logits(&data.features, data.len())?;
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
    predictor: &Predictor,
    target_norm: Option<&Normalization>,
    features: &[f32],
    n: usize,
) -> Result<Vec<f32>> {
    let mut out = predictor.logits(features, n)?;
    if let Some(norm) = target_norm {
        norm.invert(&mut out);
    }
    Ok(out)
}

/// Evaluates a regression model on `data` (features already normalised as the model
/// expects, targets in their own units); the loss is the training loss on the model's
/// (standardised, when `target_norm` is given) scale.
pub fn evaluate_regression(
    predictor: &Predictor,
    target_norm: Option<&Normalization>,
    data: &Dataset,
) -> Result<RegressionEvaluation> {
    let config = predictor.config();
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
    let pred = predictions(predictor, target_norm, &data.features, data.len())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed from a 3-class matrix in which class 2 never appears.
    #[test]
    fn class_report_matches_hand_values() {
        // rows: true class; columns: predicted
        let m = vec![vec![2, 1, 0], vec![1, 1, 0], vec![0, 0, 0]];
        let r = class_report(&m);
        // class 0: TP 2, predicted 3, support 3
        assert!(
            (r[0].precision - 2.0 / 3.0).abs() < 1e-6 && (r[0].recall - 2.0 / 3.0).abs() < 1e-6
        );
        assert!((r[0].f1 - 2.0 / 3.0).abs() < 1e-6 && r[0].support == 3);
        // class 1: TP 1, predicted 2, support 2
        assert!((r[1].precision - 0.5).abs() < 1e-6 && (r[1].recall - 0.5).abs() < 1e-6);
        // class 2: nothing predicted, no support: all 0
        assert_eq!(
            (r[2].precision, r[2].recall, r[2].f1, r[2].support),
            (0.0, 0.0, 0.0, 0)
        );
    }
}
