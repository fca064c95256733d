//! The JSON the CLI writes, and reads back: `train --metrics-json`, the checkpoint's
//! `metrics` metadata (which `--resume` reads), `eval --metrics-json`, and the adapter and
//! host of `bench --json`.
//!
//! Each type is the contract of one JSON object: a field is a key, `Option` is a value that
//! may be null, `skip_serializing_if` a key that is only there in some runs. Everything is
//! written through [`tree`] (a `serde_json::Value`, whose objects are sorted maps): the keys
//! come out in alphabetical order and f32 values as their exact f64 value, as they always
//! have, so `--resume` reads the history back bit-exact.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use wgmlp::Device;
use wgmlp::gpu::fused::{KernelChoice, KernelDecision};
use wgmlp::infer::ClassReport;
use wgmlp::{EpochMetrics, Error, Init, Loss, OptimizerKind, RegressionMetrics, Result, Task};

/// `value` as a JSON tree (see the module's documentation); `path` names the file in errors.
pub fn tree(path: &Path, value: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::io(path, "serialise", std::io::Error::other(e)))
}

/// The device (`adapter` of every JSON output).
#[derive(Clone, Debug, Serialize)]
pub struct Adapter {
    pub name: String,
    /// wgpu's backend (`Vulkan`, `Metal`, `Dx12`, `Gl`), or `cpu`.
    pub backend: String,
    /// wgpu's device type (`DiscreteGpu`, `IntegratedGpu`, `Cpu`, ...).
    pub device_type: String,
    pub driver: String,
}

impl From<&Device> for Adapter {
    fn from(device: &Device) -> Self {
        match device {
            Device::Gpu(ctx) => Adapter {
                name: ctx.info.name.clone(),
                backend: format!("{:?}", ctx.info.backend),
                device_type: format!("{:?}", ctx.info.device_type),
                driver: format!("{} {}", ctx.info.driver, ctx.info.driver_info)
                    .trim()
                    .to_string(),
            },
            Device::Cpu => Adapter {
                name: "CPU reference (f32)".into(),
                backend: "cpu".into(),
                device_type: "Cpu".into(),
                driver: String::new(),
            },
        }
    }
}

/// The machine `bench` ran on (`host` of `bench --json`).
#[derive(Clone, Debug, Serialize)]
pub struct Host {
    /// The CPU model, else the architecture.
    pub cpu: String,
    /// Hardware threads.
    pub threads: usize,
    /// `linux`, `macos`, `windows`, ...
    pub os: String,
}

/// What a model does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskName {
    Classify,
    Regress,
}

impl From<Task> for TaskName {
    fn from(t: Task) -> Self {
        match t {
            Task::Classify => TaskName::Classify,
            Task::Regress => TaskName::Regress,
        }
    }
}

/// The loss, as `--loss` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossName {
    #[serde(rename = "ce")]
    CrossEntropy,
    Mse,
    L1,
    Huber,
}

impl From<Loss> for LossName {
    fn from(l: Loss) -> Self {
        match l {
            Loss::CrossEntropy => LossName::CrossEntropy,
            Loss::Mse => LossName::Mse,
            Loss::L1 => LossName::L1,
            Loss::Huber => LossName::Huber,
        }
    }
}

/// The initialisation, as `--init` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitName {
    Auto,
    He,
    Glorot,
}

impl From<Init> for InitName {
    fn from(i: Init) -> Self {
        match i {
            Init::Auto => InitName::Auto,
            Init::He => InitName::He,
            Init::Glorot => InitName::Glorot,
        }
    }
}

/// The optimizer, as `--optimizer` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    Sgd,
    Momentum,
    Adam,
    AdamW,
}

impl From<OptimizerKind> for OptimizerName {
    fn from(k: OptimizerKind) -> Self {
        match k {
            OptimizerKind::Sgd => OptimizerName::Sgd,
            OptimizerKind::Momentum => OptimizerName::Momentum,
            OptimizerKind::Adam => OptimizerName::Adam,
            OptimizerKind::AdamW => OptimizerName::AdamW,
        }
    }
}

/// Whether inputs (`normalize`) or targets (`normalize_targets`) were standardised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    None,
    Standard,
}

impl Scaling {
    /// `Standard` when a normalisation was fitted.
    pub fn of<T>(normalization: Option<&T>) -> Self {
        match normalization {
            Some(_) => Scaling::Standard,
            None => Scaling::None,
        }
    }
}

/// `--kernel`, as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelRequested {
    Auto,
    Fused,
    Layered,
}

impl From<KernelChoice> for KernelRequested {
    fn from(k: KernelChoice) -> Self {
        match k {
            KernelChoice::Auto => KernelRequested::Auto,
            KernelChoice::Fused => KernelRequested::Fused,
            KernelChoice::Layered => KernelRequested::Layered,
        }
    }
}

/// The path that trained the model: the fused kernel, the layer-by-layer kernels, or the
/// CPU reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelPath {
    Cpu,
    Fused,
    Layered,
}

impl From<&KernelDecision> for KernelPath {
    fn from(k: &KernelDecision) -> Self {
        match k.fused {
            Some(_) => KernelPath::Fused,
            None => KernelPath::Layered,
        }
    }
}

impl KernelPath {
    /// The `--kernel` that takes this path again (none for the CPU).
    pub fn choice(self) -> Option<KernelChoice> {
        match self {
            KernelPath::Cpu => None,
            KernelPath::Fused => Some(KernelChoice::Fused),
            KernelPath::Layered => Some(KernelChoice::Layered),
        }
    }
}

/// `kernel` of `train --metrics-json`: the GPU path asked for and taken.
#[derive(Clone, Debug, Serialize)]
pub struct Kernel {
    pub requested: KernelRequested,
    /// `cpu` on the CPU.
    pub used: KernelPath,
    /// `fused (2-64x2-3, 8 lanes (subgroup))` or `layered`; null on the CPU.
    pub detail: Option<String>,
    /// Why this path (a fallback, a measurement), if there is something to say.
    pub note: Option<String>,
}

impl Kernel {
    pub fn new(requested: KernelChoice, used: Option<&KernelDecision>) -> Self {
        Kernel {
            requested: requested.into(),
            used: used.map_or(KernelPath::Cpu, KernelPath::from),
            detail: used.map(|k| k.describe()),
            note: used.and_then(|k| k.note.clone()),
        }
    }
}

/// One epoch of the history: `epochs` of `train --metrics-json` and of the checkpoint's
/// `metrics`. The held-out set's keys are `test_*`, or `val_*` when a validation set took
/// the test set's place; its loss and accuracy keys are there (null) even without the set,
/// its regression keys only for regression. Older files may lack the optional keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Epoch {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    /// Outer `None`: no key (the held-out set is the validation set); inner: null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<Option<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<Option<f32>>,
    /// As `test_loss`, for the validation set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<Option<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<Option<f32>>,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub samples_per_second: f64,
    #[serde(flatten)]
    pub regression: Regression,
}

/// The regression metrics of an epoch or a run, each set's three keys together or not at all
/// (`r2` may be null: R² of constant targets).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_mse: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_mae: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_r2: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mse: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mae: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_r2: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_mse: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_mae: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_r2: Option<f32>,
}

/// Which set a metric belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    Train,
    Test,
    Val,
}

impl Set {
    /// `val` is the validation set, anything else the test set (`Plan::held_out`).
    pub fn held_out(name: &str) -> Self {
        match name {
            "val" => Set::Val,
            _ => Set::Test,
        }
    }
}

impl Regression {
    /// Sets `set`'s keys from `r` (none when `r` is `None`).
    pub fn set(&mut self, set: Set, r: Option<&RegressionMetrics>) {
        let (mse, mae, r2) = match set {
            Set::Train => (&mut self.train_mse, &mut self.train_mae, &mut self.train_r2),
            Set::Test => (&mut self.test_mse, &mut self.test_mae, &mut self.test_r2),
            Set::Val => (&mut self.val_mse, &mut self.val_mae, &mut self.val_r2),
        };
        (*mse, *mae, *r2) = (r.map(|r| r.mse), r.map(|r| r.mae), r.map(|r| r.r2));
    }

    /// `set`'s metrics, when its MSE and MAE are there (a missing R² is NaN).
    pub fn get(&self, set: Set) -> Option<RegressionMetrics> {
        let (mse, mae, r2) = match set {
            Set::Train => (self.train_mse, self.train_mae, self.train_r2),
            Set::Test => (self.test_mse, self.test_mae, self.test_r2),
            Set::Val => (self.val_mse, self.val_mae, self.val_r2),
        };
        Some(RegressionMetrics {
            mse: mse?,
            mae: mae?,
            r2: r2.unwrap_or(f32::NAN),
        })
    }
}

impl Epoch {
    /// `m` with its held-out metrics under `held`'s keys.
    pub fn new(m: &EpochMetrics, held: Set) -> Self {
        let mut e = Epoch {
            epoch: m.epoch,
            train_loss: m.train_loss,
            train_accuracy: m.train_accuracy,
            seconds: m.seconds,
            samples_per_second: m.samples_per_second,
            ..Epoch::default()
        };
        let (loss, accuracy) = match held {
            Set::Val => (&mut e.val_loss, &mut e.val_accuracy),
            _ => (&mut e.test_loss, &mut e.test_accuracy),
        };
        (*loss, *accuracy) = (Some(m.test_loss), Some(m.test_accuracy));
        e.regression.set(Set::Train, m.train_regression.as_ref());
        e.regression.set(held, m.test_regression.as_ref());
        e
    }
}

impl From<Epoch> for EpochMetrics {
    /// The held-out metrics are the test set's, else the validation set's.
    fn from(e: Epoch) -> Self {
        let r = &e.regression;
        EpochMetrics {
            epoch: e.epoch,
            train_loss: e.train_loss,
            train_accuracy: e.train_accuracy,
            test_loss: e.test_loss.flatten().or(e.val_loss.flatten()),
            test_accuracy: e.test_accuracy.flatten().or(e.val_accuracy.flatten()),
            train_regression: r.get(Set::Train),
            test_regression: r.get(Set::Test).or(r.get(Set::Val)),
            seconds: e.seconds,
            samples_per_second: e.samples_per_second,
        }
    }
}

/// Why a run stopped before its last epoch: `interrupted` or `diverged` in `final` of
/// `train --metrics-json` and at the top of the checkpoint's `metrics`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// Ctrl-C or SIGTERM.
    Interrupted {
        /// The epoch that was running (1-based).
        epoch: usize,
        /// Steps of that epoch that had finished.
        steps: u64,
        /// Epochs completed before it.
        epochs_complete: usize,
    },
    /// A step whose loss was not finite.
    Diverged {
        epoch: usize,
        step: u64,
        /// The loss as text (`NaN`, `inf`: JSON has no such numbers).
        loss: String,
    },
}

impl Event {
    /// The event of an error that stops training, if it is one.
    pub fn of(e: &Error) -> Option<Self> {
        match *e {
            Error::Interrupted {
                epoch,
                step,
                completed,
            } => Some(Event::Interrupted {
                epoch,
                steps: step,
                epochs_complete: completed,
            }),
            Error::Diverged { epoch, step, loss } => Some(Event::Diverged {
                epoch,
                step,
                loss: loss.to_string(),
            }),
            _ => None,
        }
    }

    /// Its key: `interrupted` or `diverged`.
    pub fn key(&self) -> &'static str {
        match self {
            Event::Interrupted { .. } => "interrupted",
            Event::Diverged { .. } => "diverged",
        }
    }
}

/// The checkpoint's `metrics` metadata: the history of every epoch, the GPU path, and why
/// the run stopped, if it stopped early.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetrics {
    /// An entry that is not an epoch (e.g. a NaN loss, written as null) is skipped on reading.
    #[serde(default, deserialize_with = "epochs_that_parse")]
    pub epochs: Vec<Epoch>,
    /// `fused` or `layered`; null on the CPU (and in files from before it was recorded).
    #[serde(default)]
    pub kernel: Option<KernelPath>,
    #[serde(flatten)]
    pub event: Option<Event>,
}

fn epochs_that_parse<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Epoch>, D::Error> {
    let entries = Vec::<serde_json::Value>::deserialize(d)?;
    Ok(entries
        .into_iter()
        .filter_map(|v| Epoch::deserialize(v).ok())
        .collect())
}

/// `config` of `train --metrics-json`: the run's settings.
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    /// Input, hidden and output widths.
    pub widths: Vec<usize>,
    /// One per hidden layer (`relu`, `prelu:0.1`, `swish:2`, ...).
    pub activations: Vec<String>,
    pub learn_prelu: bool,
    pub dropout: f32,
    pub task: TaskName,
    pub loss: LossName,
    pub normalize_targets: Scaling,
    pub init: InitName,
    pub optimizer: OptimizerName,
    pub lr: f32,
    /// `constant`, `step:EVERY:GAMMA` or `cosine`.
    pub lr_schedule: String,
    pub warmup: usize,
    pub weight_decay: f32,
    /// 0: off.
    pub clip_grad_norm: f32,
    pub batch_size: usize,
    pub epochs: usize,
    pub seed: u64,
    pub normalize: Scaling,
    /// The data source, described.
    pub data: String,
    /// The `--resume` checkpoint.
    pub resumed_from: Option<String>,
}

/// `final` of `train --metrics-json`: the run's result. `test_*` are null without a test
/// set; `train_*` are missing when the run stopped early (see `event`); `val_*` are there
/// when a validation set was the held-out set; `best_epoch` and `stopped_early` with early
/// stopping.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Final {
    pub epochs: usize,
    pub test_accuracy: Option<f32>,
    pub test_loss: Option<f32>,
    /// A clean pass over the training set with the final parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_accuracy: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f32>,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<Option<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<Option<f32>>,
    #[serde(flatten)]
    pub regression: Regression,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<bool>,
    #[serde(flatten)]
    pub event: Option<Event>,
}

/// `notes` of `train --metrics-json`: what the numbers mean.
#[derive(Clone, Debug, Serialize)]
pub struct Notes {
    #[serde(rename = "epochs.train_loss")]
    pub epochs_train_loss: &'static str,
    #[serde(rename = "final.train_loss")]
    pub final_train_loss: &'static str,
    pub held_out: &'static str,
}

impl Notes {
    pub fn new(held: Set) -> Self {
        Notes {
            epochs_train_loss: "running: the mean over the epoch's batches, each measured with the parameters as they were at that step (while they changed), as PyTorch loops usually report it",
            final_train_loss: "clean: one pass over the whole training set with the final parameters after training, no updates and no dropout; it is usually lower than the last epoch's running value",
            held_out: match held {
                Set::Val => {
                    "epochs.val_* are the validation set's after each epoch; final.test_* the test set's, evaluated once at the end"
                }
                _ => {
                    "epochs.test_* are the test set's after each epoch; final.test_* are the last epoch's"
                }
            },
        }
    }
}

/// `train --metrics-json`.
#[derive(Clone, Debug, Serialize)]
pub struct TrainMetrics {
    pub adapter: Adapter,
    pub config: RunConfig,
    pub kernel: Kernel,
    /// Every epoch, a resumed run's earlier ones included.
    pub epochs: Vec<Epoch>,
    #[serde(rename = "final")]
    pub result: Final,
    pub notes: Notes,
}

/// What every `eval --metrics-json` holds.
#[derive(Clone, Debug, Serialize)]
pub struct EvalOf {
    pub adapter: Adapter,
    /// The checkpoint's path.
    pub model: String,
    /// The data source, described.
    pub data: String,
    pub samples: usize,
}

/// `eval --metrics-json` of a regression model (errors in the targets' own units).
#[derive(Clone, Debug, Serialize)]
pub struct EvalRegression {
    #[serde(flatten)]
    pub of: EvalOf,
    /// Always `regress`.
    pub task: TaskName,
    pub loss: f32,
    pub mse: f32,
    pub mae: f32,
    pub r2: f32,
}

/// `eval --metrics-json` of a classifier.
#[derive(Clone, Debug, Serialize)]
pub struct EvalClassification {
    #[serde(flatten)]
    pub of: EvalOf,
    pub loss: f32,
    pub accuracy: f32,
    /// `confusion[true class][predicted class]`.
    pub confusion: Vec<Vec<usize>>,
    /// The class names of string labels (index = class), or empty.
    pub class_names: Vec<String>,
    pub per_class: Vec<PerClass>,
}

/// One class's row of `per_class`.
#[derive(Clone, Debug, Serialize)]
pub struct PerClass {
    pub precision: f32,
    pub recall: f32,
    pub f1: f32,
    pub support: usize,
}

impl From<&ClassReport> for PerClass {
    fn from(r: &ClassReport) -> Self {
        PerClass {
            precision: r.precision,
            recall: r.recall,
            f1: r.f1,
            support: r.support,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(regression: bool) -> EpochMetrics {
        let r = |x: f32| RegressionMetrics {
            mse: x,
            mae: x / 2.0,
            r2: 0.9,
        };
        EpochMetrics {
            epoch: 3,
            train_loss: 0.1,
            train_accuracy: 0.75,
            test_loss: Some(0.2),
            test_accuracy: None,
            train_regression: regression.then(|| r(0.3)),
            test_regression: regression.then(|| r(0.4)),
            seconds: 1.5,
            samples_per_second: 1e6,
        }
    }

    #[test]
    fn epochs_have_the_held_out_sets_keys_and_read_back_bit_exact() {
        for (held, prefix) in [(Set::Test, "test"), (Set::Val, "val")] {
            for regression in [false, true] {
                let m = metrics(regression);
                let v = serde_json::to_value(Epoch::new(&m, held)).unwrap();
                let o = v.as_object().unwrap();
                let other = if prefix == "val" { "test" } else { "val" };
                assert_eq!(v[format!("{prefix}_loss")], 0.2f32 as f64, "{v}");
                assert!(v[format!("{prefix}_accuracy")].is_null(), "{v}");
                assert!(o.contains_key(&format!("{prefix}_accuracy")), "{v}");
                assert!(!o.contains_key(&format!("{other}_loss")), "{v}");
                assert_eq!(o.contains_key("train_mse"), regression, "{v}");
                assert_eq!(o.contains_key(&format!("{prefix}_r2")), regression, "{v}");
                assert!(!o.contains_key(&format!("{other}_mse")), "{v}");
                let text = v.to_string();
                let back: Epoch = serde_json::from_str(&text).unwrap();
                assert_eq!(EpochMetrics::from(back), m);
            }
        }
    }

    #[test]
    fn checkpoint_metrics_read_older_and_odd_entries() {
        // An entry from before seconds and samples/s were recorded, one without the
        // mandatory train loss (NaN, written as null) and one that is not an object.
        let text = r#"{"epochs":[{"epoch":1,"train_loss":0.5,"train_accuracy":0.25,"test_loss":null,"test_accuracy":null},
            {"epoch":2,"train_loss":null,"train_accuracy":0.5},7]}"#;
        let m: CheckpointMetrics = serde_json::from_str(text).unwrap();
        assert_eq!(m.epochs.len(), 1);
        assert_eq!((m.kernel, &m.event), (None, &None));
        let e = EpochMetrics::from(m.epochs[0].clone());
        assert_eq!((e.epoch, e.train_loss, e.test_loss), (1, 0.5, None));
        assert_eq!((e.seconds, e.train_regression), (0.0, None));
        // A regression entry without R² (NaN) keeps its MSE and MAE.
        let e: Epoch = serde_json::from_str(
            r#"{"epoch":1,"train_loss":1,"train_accuracy":0,"val_loss":2,"val_mse":3,"val_mae":4}"#,
        )
        .unwrap();
        let e = EpochMetrics::from(e);
        let r = e.test_regression.unwrap();
        assert_eq!((e.test_loss, r.mse, r.mae), (Some(2.0), 3.0, 4.0));
        assert!(r.r2.is_nan());
    }

    #[test]
    fn the_event_is_a_key_beside_the_history() {
        let m = CheckpointMetrics {
            epochs: Vec::new(),
            kernel: Some(KernelPath::Fused),
            event: Event::of(&Error::Diverged {
                epoch: 2,
                step: 7,
                loss: f32::NAN,
            }),
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"epochs": [], "kernel": "fused",
                "diverged": {"epoch": 2, "step": 7, "loss": "NaN"}})
        );
        let back: CheckpointMetrics = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.event.unwrap().key(), "diverged");
        let f = Final {
            event: Event::of(&Error::Interrupted {
                epoch: 3,
                step: 4,
                completed: 2,
            }),
            ..Final::default()
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(
            v["interrupted"],
            serde_json::json!({"epoch": 3, "steps": 4, "epochs_complete": 2})
        );
        assert!(
            v["test_loss"].is_null() && v.get("train_loss").is_none(),
            "{v}"
        );
    }
}
