//! `wgmlp train`: train an MLP on a built-in dataset, an IDX directory or CSV files.
//!
//! Everything that can be checked before the work starts is: the options first (before any
//! data is read), then what depends on the data (dimensions, classes, a checkpoint to
//! resume), then the memory the model needs (before anything is allocated). Once training
//! runs, nothing is lost: the checkpoint is written on Ctrl-C / SIGTERM, after a divergence
//! and at the end (to `--save`, or back to the `--resume` file), with the metrics history.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wgmlp::checkpoint::{self, Checkpoint, EarlyStopState, TrainingState};
use wgmlp::config::{HostUse, parse_activations, parse_hidden};
use wgmlp::data::csv::{ClassOrder, LabelOptions, TargetColumns};
use wgmlp::gpu::fused::KernelChoice;
use wgmlp::infer::{self, Predictor};
use wgmlp::plot::{self, Series};
use wgmlp::schedule::{LrSchedule, ScheduleKind};
use wgmlp::{
    Activation, Control, Dataset, Device, EpochMetrics, Error, Event, GpuContext, Init, Loss,
    MlpConfig, Model, Normalization, OptimizerConfig, OptimizerKind, Result, Task, TrainOptions,
    Trainer,
};

use super::common::{DeviceChoice, Source, open_device, parse_count, parse_seed, write_json};
use super::json::{self, CheckpointMetrics, Epoch, KernelPath, Scaling, Set};

/// Options of `wgmlp train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Built-in dataset: spirals (default), xor, circles, teacher.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Directory with the four MNIST/Fashion-MNIST IDX files (plain or .gz).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Training CSV (label first, optional header).
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Test CSV (same columns as --train).
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Hidden layer widths, comma-separated (e.g. 256,256); `none` for a linear model.
    /// Default: 256 for file data, 64 for built-in datasets.
    #[arg(long, allow_hyphen_values = true)]
    pub hidden: Option<String>,
    /// Activation of the hidden layers: one, or one per layer (relu, prelu:0.1, swish:2, ...).
    #[arg(long)]
    pub activation: Option<String>,
    /// Learn the slope α of every pReLU layer (one parameter per layer, as PyTorch's nn.PReLU()).
    #[arg(long)]
    pub learn_prelu: bool,
    /// Loss: ce (softmax cross-entropy) or mse for classification; mse (default), l1 or
    /// huber for regression.
    #[arg(long)]
    pub loss: Option<String>,
    /// classify or regress. Default: what the data holds (a CSV whose first column has a
    /// non-integer value, or a built-in wave dataset, is regression).
    #[arg(long)]
    pub task: Option<String>,
    /// Regression: the first N CSV columns are targets (default 1). Implies --task regress.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub targets: Option<usize>,
    /// Regression: the target columns by header name or 1-based index, comma-separated
    /// (the other columns are features). Implies --task regress.
    #[arg(long)]
    pub target_columns: Option<String>,
    /// Classification CSV: the label column by header name, 1-based index, or `last`
    /// (default: the first column). Labels may be integers or class names.
    #[arg(long, allow_hyphen_values = true)]
    pub label_column: Option<String>,
    /// How string class labels are numbered: first-seen (default) or sorted.
    #[arg(long, default_value = "first-seen")]
    pub class_order: String,
    /// Learning-rate schedule per epoch: constant (default), step:EVERY:GAMMA (the rate
    /// times GAMMA every EVERY epochs) or cosine (down to 0 at the last epoch).
    #[arg(long)]
    pub lr_schedule: Option<String>,
    /// Epochs of linear warmup before the schedule: epoch e runs at lr · e / (WARMUP + 1).
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub warmup: Option<usize>,
    /// Hold out this fraction of the training data (stratified by class, seeded) as a
    /// validation set, evaluated every epoch; the test set is then evaluated at the end.
    #[arg(long, allow_negative_numbers = true)]
    pub val_split: Option<f64>,
    /// A validation CSV (same columns as --train), evaluated every epoch.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Stop when the monitored validation metric has not improved for this many epochs;
    /// the best epoch's parameters are kept and saved.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub early_stopping: Option<usize>,
    /// What early stopping watches: val_loss (default) or val_accuracy.
    #[arg(long, default_value = "val_loss")]
    pub monitor: String,
    /// Regression target normalisation: none or standard (per-target mean/std of the
    /// training set, stored in the checkpoint and undone by predict).
    #[arg(long, default_value = "none")]
    pub normalize_targets: String,
    /// Optimizer: sgd, momentum, adam, adamw. Default: sgd for file data, adam for built-ins.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Learning rate. Default: 0.1 for sgd/momentum, 0.01 for adam/adamw.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Weight decay (L2 for sgd/momentum/adam, decoupled for adamw).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,
    /// Inverted dropout after every hidden layer while training, with this probability
    /// (0 ≤ P < 1; masks from a counter-based hash, the same on the GPU and the CPU). Off in
    /// evaluation and prediction.
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f32>,
    /// Clip the gradients to this global L2 norm before each update (on the GPU; PyTorch's
    /// clip_grad_norm_). Default: off.
    #[arg(long, allow_negative_numbers = true)]
    pub clip_grad_norm: Option<f32>,
    /// Samples per step. Default: 256 for file data, 64 for built-ins.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub batch_size: Option<usize>,
    /// Epochs in total (a resumed run continues up to this number). Default: 10 for file data, 100 for built-ins.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Seed of the data, the initial weights and the shuffling.
    #[arg(long, default_value = "42", value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Weight initialisation: auto, he, glorot.
    #[arg(long, default_value = "auto")]
    pub init: String,
    /// Input normalisation: none or standard (per-feature mean/std of the training set, stored in the checkpoint).
    #[arg(long, default_value = "none")]
    pub normalize: String,
    /// auto (GPU, else software adapter, else CPU reference), gpu, or cpu.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Save the trained model (safetensors, PyTorch nn.Sequential layout). Also written on
    /// Ctrl-C / SIGTERM and after a divergence, with the optimizer state.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Continue training from a checkpoint written with --checkpoint-every (or on Ctrl-C);
    /// without --save the checkpoint is updated in place.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Every N epochs, write --save (or the --resume file) with the optimizer state and epoch.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub checkpoint_every: Option<usize>,
    /// Write per-epoch metrics as JSON.
    #[arg(long)]
    pub metrics_json: Option<PathBuf>,
    /// Draw training curves (loss, train and test accuracy per epoch) to a PNG/SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// For 2-D data: draw the decision regions with the points to a PNG file.
    #[arg(long)]
    pub plot_boundary: Option<PathBuf>,
    /// Training steps recorded per GPU submit.
    #[arg(long, default_value = "64", value_parser = parse_count, allow_negative_numbers = true)]
    pub steps_per_submit: usize,
    /// GPU path: auto (the fused kernel when the model fits it and it was measured faster on
    /// this adapter), fused (whole network in one dispatch; hidden widths up to 128), layered.
    #[arg(long, default_value = "auto")]
    pub kernel: String,
}

/// What the options alone decide, checked before any data is read.
struct Settings {
    optimizer: OptimizerConfig,
    hidden: Vec<usize>,
    activations: Vec<Activation>,
    /// None: the task's default (ce, or mse for regression).
    loss: Option<Loss>,
    /// None: decided by the data.
    task: Option<Task>,
    /// Regression target columns asked for on the command line.
    targets: Option<TargetColumns>,
    standardize_targets: bool,
    /// Where the CSV label is and how string labels are numbered.
    labels: LabelOptions,
    /// `val_accuracy` (true) or `val_loss` is what early stopping watches.
    monitor_accuracy: bool,
    /// The learning-rate schedule over the run's epochs.
    lr_schedule: LrSchedule,
    init: Init,
    standardize: bool,
    batch_size: usize,
    epochs: usize,
}

/// Everything resolved from the flags, the data and an optional checkpoint.
struct Plan {
    config: MlpConfig,
    optimizer: OptimizerConfig,
    batch_size: usize,
    epochs: usize,
    normalization: Option<Normalization>,
    /// Regression target standardisation (the model predicts standardised targets).
    target_normalization: Option<Normalization>,
    /// The class names of string labels (index = class), or empty.
    class_names: Vec<String>,
    /// What the data reader divided raw inputs by (255 for u8 IDX images).
    input_divisor: Option<f32>,
    /// `val` when a validation set is evaluated every epoch, else `test`.
    held_out: &'static str,
    /// Early stopping's progress, when it is on.
    early: Option<EarlyStopState>,
    /// The learning rate of each epoch.
    lr_schedule: LrSchedule,
    /// Where the hidden widths come from, for memory errors: `--hidden` or the checkpoint.
    origin: String,
}

/// A checkpoint to continue from, with the metrics history it carries.
struct Resume {
    path: PathBuf,
    ckpt: Checkpoint,
    training: TrainingState,
    history: Vec<EpochMetrics>,
    /// The GPU path the checkpointed run used (`kernel` in its metrics), if recorded.
    kernel: Option<KernelChoice>,
}

fn settings(args: &TrainArgs, file_data: bool) -> Result<Settings> {
    let optimizer_kind: OptimizerKind = match &args.optimizer {
        Some(o) => o.parse()?,
        None if file_data => OptimizerKind::Sgd,
        None => OptimizerKind::Adam,
    };
    let lr = args.lr.unwrap_or(match optimizer_kind {
        OptimizerKind::Sgd | OptimizerKind::Momentum => 0.1,
        _ => 0.01,
    });
    let mut optimizer = OptimizerConfig::new(optimizer_kind, lr);
    if let Some(wd) = args.weight_decay {
        optimizer.weight_decay = wd;
    }
    if let Some(c) = args.clip_grad_norm {
        if !(c.is_finite() && c > 0.0) {
            return Err(Error::config(
                "--clip-grad-norm",
                format!("{c} must be a positive number (the largest gradient norm, e.g. 1.0)"),
            ));
        }
        optimizer.clip_norm = c;
    }
    optimizer.validate()?;
    let hidden = match &args.hidden {
        Some(h) => parse_hidden(h)?,
        None if file_data => vec![256],
        None => vec![64],
    };
    let activations =
        parse_activations(args.activation.as_deref().unwrap_or("relu"), hidden.len())?;
    if args.learn_prelu
        && args.resume.is_none()
        && !activations
            .iter()
            .any(|a| matches!(a, Activation::Prelu { .. }))
    {
        let acts = match activations.first() {
            None => "there are no hidden layers".to_string(),
            Some(_) => format!(
                "the hidden layers use {}",
                activations
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        return Err(Error::config(
            "--learn-prelu",
            format!(
                "no hidden layer uses prelu ({acts}), so there is no slope to learn; add --activation prelu (or prelu:0.1), or drop --learn-prelu"
            ),
        ));
    }
    let loss: Option<Loss> = args.loss.as_deref().map(str::parse).transpose()?;
    let mut task: Option<Task> = match args.task.as_deref().map(str::trim) {
        None | Some("auto") => None,
        Some(t) => Some(t.parse()?),
    };
    let targets = match (args.targets, &args.target_columns) {
        (Some(_), Some(_)) => {
            return Err(Error::config(
                "--targets",
                "give either --targets N (the first N columns) or --target-columns NAMES, not both",
            ));
        }
        (Some(0), None) => {
            return Err(Error::config(
                "--targets",
                "must be at least 1 (got 0): a regression CSV needs a target column",
            ));
        }
        (Some(n), None) => Some(TargetColumns::First(n)),
        (None, Some(names)) => {
            let names: Vec<String> = names.split(',').map(|n| n.trim().to_string()).collect();
            if names.iter().any(String::is_empty) {
                return Err(Error::config(
                    "--target-columns",
                    "an empty column name; write names or 1-based indices like y1,y2 or 1,3",
                ));
            }
            Some(TargetColumns::Named(names))
        }
        (None, None) => None,
    };
    if targets.is_some() {
        if task == Some(Task::Classify) {
            return Err(Error::config(
                "--task",
                "--targets/--target-columns name regression targets; drop them or use --task regress",
            ));
        }
        task = Some(Task::Regress);
    }
    // With the task given, a loss that does not fit it is refused now; otherwise once the
    // data has decided the task.
    if let (Some(l), Some(t)) = (loss, task) {
        MlpConfig::new(1, &[], 1)
            .with_task(t)
            .with_loss(l)
            .validate()?;
    }
    let standardize_targets = match args.normalize_targets.trim().to_ascii_lowercase().as_str() {
        "none" => false,
        "standard" => true,
        other => {
            return Err(Error::config(
                "--normalize-targets",
                format!("unknown normalisation {other:?}; choose none or standard"),
            ));
        }
    };
    let labels = LabelOptions {
        column: args.label_column.clone(),
        order: args.class_order.parse::<ClassOrder>()?,
        classes: None,
    };
    if labels.column.is_some() && task == Some(Task::Regress) {
        return Err(Error::config(
            "--label-column",
            "names a class label; a regression CSV names its targets with --targets or --target-columns",
        ));
    }
    if standardize_targets && task == Some(Task::Classify) {
        return Err(Error::config(
            "--normalize-targets",
            "standardises regression targets; a classification model has class labels",
        ));
    }
    if args.val_split.is_some() && args.val.is_some() {
        return Err(Error::config(
            "--val-split",
            "give either --val-split F (part of the training data) or --val FILE, not both",
        ));
    }
    if let Some(f) = args.val_split {
        if !(f > 0.0 && f < 1.0) {
            return Err(Error::config(
                "--val-split",
                format!("{f} is not a fraction between 0 and 1 (e.g. 0.1)"),
            ));
        }
    }
    if args.val.is_some() && args.train.is_none() {
        return Err(Error::config(
            "--val",
            "a validation CSV goes with --train FILE.csv; for built-in or IDX data use --val-split F",
        ));
    }
    if args.early_stopping == Some(0) {
        return Err(Error::config(
            "--early-stopping",
            "must be at least 1 (epochs without improvement before stopping)",
        ));
    }
    if args.early_stopping.is_some() && args.val_split.is_none() && args.val.is_none() {
        return Err(Error::config(
            "--early-stopping",
            "watches a validation set; add --val-split 0.1 (or --val FILE.csv)",
        ));
    }
    let monitor_accuracy = match args.monitor.trim() {
        "val_loss" => false,
        "val_accuracy" => true,
        other => {
            return Err(Error::config(
                "--monitor",
                format!("unknown metric {other:?}; choose val_loss or val_accuracy"),
            ));
        }
    };
    if monitor_accuracy && task == Some(Task::Regress) {
        return Err(Error::config(
            "--monitor",
            "val_accuracy needs a classifier; a regression model is watched by val_loss",
        ));
    }
    let init = args.init.parse::<Init>()?;
    let batch_size = args.batch_size.unwrap_or(if file_data { 256 } else { 64 });
    if batch_size == 0 {
        return Err(Error::config("--batch-size", "must be at least 1 (got 0)"));
    }
    let epochs = args.epochs.unwrap_or(if file_data { 10 } else { 100 });
    if epochs == 0 {
        return Err(Error::config(
            "--epochs",
            "0 epochs would train nothing and write a model that was never trained; give 1 or more",
        ));
    }
    let standardize = match args.normalize.trim().to_ascii_lowercase().as_str() {
        "none" => false,
        "standard" => true,
        other => {
            return Err(Error::config(
                "--normalize",
                format!("unknown normalisation {other:?}; choose none or standard"),
            ));
        }
    };
    if args.checkpoint_every == Some(0) {
        return Err(Error::config("--checkpoint-every", "must be at least 1"));
    }
    if args.checkpoint_every.is_some() && args.save.is_none() && args.resume.is_none() {
        return Err(Error::config(
            "--checkpoint-every",
            "needs --save FILE.safetensors (or --resume FILE) to know where to write",
        ));
    }
    let lr_schedule = LrSchedule {
        kind: match &args.lr_schedule {
            Some(k) => k.parse::<ScheduleKind>()?,
            None => ScheduleKind::Constant,
        },
        warmup: args.warmup.unwrap_or(0),
        epochs,
    };
    lr_schedule.validate()?;
    Ok(Settings {
        optimizer,
        hidden,
        activations,
        loss,
        task,
        targets,
        standardize_targets,
        labels,
        monitor_accuracy,
        lr_schedule,
        init,
        standardize,
        batch_size,
        epochs,
    })
}

/// Checks every output before the work starts: extensions that choose the file type, and
/// that each directory exists and a file can be created there.
fn check_outputs(args: &TrainArgs, save: Option<&Path>) -> Result<()> {
    if let Some(p) = &args.plot {
        wgmlp::fsutil::check_extension(p, "--plot", &["png", "svg"])?;
    }
    if let Some(p) = &args.plot_boundary {
        wgmlp::fsutil::check_extension(p, "--plot-boundary", &["png"])?;
    }
    let save_option = if args.save.is_some() {
        "--save"
    } else {
        "--resume"
    };
    for (path, option) in [
        (save, save_option),
        (args.metrics_json.as_deref(), "--metrics-json"),
        (args.plot.as_deref(), "--plot"),
        (args.plot_boundary.as_deref(), "--plot-boundary"),
    ] {
        if let Some(p) = path {
            wgmlp::fsutil::check_writable(p, option)?;
        }
    }
    Ok(())
}

/// Loads the checkpoint to resume, and checks before any data is read that it can be
/// resumed and that `--epochs` (or its default) asks for more epochs than it holds.
fn load_resume(path: &Path, epochs: usize, epochs_given: bool) -> Result<Resume> {
    if !path.exists() {
        return Err(Error::io(
            path,
            "read",
            std::io::Error::other(
                "--resume: no such file; give a checkpoint written with --save and --checkpoint-every",
            ),
        ));
    }
    let (ckpt, metrics) = checkpoint::load_with_metrics(path)?;
    let Some(training) = ckpt.training.clone() else {
        return Err(Error::data(
            path,
            "metadata epoch",
            "this checkpoint holds a model but no optimizer state; resume needs one written with --checkpoint-every N",
        ));
    };
    if epochs <= training.epoch {
        let given = if epochs_given {
            format!("--epochs {epochs}")
        } else {
            format!("the default --epochs {epochs}")
        };
        return Err(Error::config(
            "--epochs",
            format!(
                "{} already holds {} epochs, so {given} leaves nothing to train; --epochs counts all epochs, \
                 so give --epochs {} or more to continue",
                path.display(),
                training.epoch,
                training.epoch + 1
            ),
        ));
    }
    let metrics: CheckpointMetrics = metrics
        .and_then(|m| serde_json::from_str(&m).ok())
        .unwrap_or_default();
    let kernel = metrics.kernel.and_then(KernelPath::choice);
    let history = metrics
        .epochs
        .into_iter()
        .map(EpochMetrics::from)
        .filter(|m| m.epoch <= training.epoch)
        .collect();
    Ok(Resume {
        path: path.to_path_buf(),
        ckpt,
        training,
        history,
        kernel,
    })
}

fn plan(args: &TrainArgs, s: &Settings, train: &Dataset) -> Result<Plan> {
    let (task, outputs) = match train.is_regression() {
        true => (Task::Regress, train.n_targets),
        false => (Task::Classify, train.n_classes),
    };
    if s.standardize_targets && task == Task::Classify {
        return Err(Error::config(
            "--normalize-targets",
            "standardises regression targets, but the data has class labels; drop it or add --task regress",
        ));
    }
    let mut config = MlpConfig::new(train.n_features, &s.hidden, outputs)
        .with_seed(args.seed)
        .with_task(task);
    config.activations = s.activations.clone();
    config.learn_prelu = args.learn_prelu;
    config.dropout = args.dropout.unwrap_or(0.0);
    if let Some(loss) = s.loss {
        config.loss = loss;
    }
    config.init = s.init;
    config.validate()?;
    Ok(Plan {
        config,
        optimizer: s.optimizer,
        batch_size: s.batch_size,
        epochs: s.epochs,
        normalization: s.standardize.then(|| Normalization::fit(train)),
        target_normalization: s
            .standardize_targets
            .then(|| Normalization::fit_targets(train)),
        class_names: train.class_names.clone(),
        input_divisor: None,
        held_out: "test",
        early: None,
        lr_schedule: s.lr_schedule,
        origin: "--hidden".to_string(),
    })
}

/// Reads a validation CSV like the training CSV: the same columns, the training set's
/// class names, labels among its classes.
fn read_val(
    path: &Path,
    seed: u64,
    train: &Dataset,
    targets: Option<&TargetColumns>,
    labels: &LabelOptions,
) -> Result<Dataset> {
    let opts = LabelOptions {
        classes: (!train.class_names.is_empty()).then(|| train.class_names.clone()),
        ..labels.clone()
    };
    let mut val = Source::Csv(path, None).load(seed, targets, &opts)?.train;
    if (val.n_features, val.n_targets) != (train.n_features, train.n_targets) {
        return Err(Error::data(
            path,
            "row 1",
            format!(
                "has {} feature and {} target columns but the training data has {} and {}; --val needs the same columns",
                val.n_features, val.n_targets, train.n_features, train.n_targets
            ),
        ));
    }
    if let Some(i) = val
        .labels
        .iter()
        .position(|&l| l as usize >= train.n_classes)
    {
        return Err(Error::data(
            path,
            format!("sample {}", i + 1),
            format!(
                "label {} is not one of the {} classes of the training data",
                val.labels[i], train.n_classes
            ),
        ));
    }
    val.n_classes = train.n_classes;
    Ok(val)
}

/// Replaces the plan's model with the checkpoint's, checking that flags given explicitly agree.
fn apply_resume(args: &TrainArgs, r: &Resume, plan: &mut Plan) -> Result<()> {
    let path = &r.path;
    if args.hidden.is_some() || args.activation.is_some() || args.learn_prelu {
        checkpoint::check_compatible(path, &r.ckpt, &plan.config)?;
    }
    if r.ckpt.config.input != plan.config.input {
        return Err(Error::data(
            path,
            "metadata widths",
            format!(
                "the checkpoint expects {} input features but the data has {}",
                r.ckpt.config.input, plan.config.input
            ),
        ));
    }
    if plan.config.task != r.ckpt.config.task {
        return Err(Error::data(
            path,
            "metadata task",
            format!(
                "the checkpoint is a {} model but the data is for {}; resume on the data it was trained on",
                r.ckpt.config.task, plan.config.task
            ),
        ));
    }
    if plan.config.task == Task::Regress && plan.config.output != r.ckpt.config.output {
        return Err(Error::data(
            path,
            "metadata widths",
            format!(
                "the checkpoint's model predicts {} targets but the data has {}",
                r.ckpt.config.output, plan.config.output
            ),
        ));
    }
    if plan.config.output > r.ckpt.config.output {
        return Err(Error::data(
            path,
            "metadata widths",
            format!(
                "the checkpoint's model has {} outputs but the data has {} classes; resume on the data it was trained on",
                r.ckpt.config.output, plan.config.output
            ),
        ));
    }
    plan.config = r.ckpt.config.clone();
    if let Some(p) = args.dropout {
        plan.config.dropout = p;
        plan.config.validate()?;
    }
    if args.optimizer.is_none() && args.lr.is_none() && args.weight_decay.is_none() {
        plan.optimizer = r.training.optimizer;
        if let Some(c) = args.clip_grad_norm {
            plan.optimizer.clip_norm = c;
        }
    }
    plan.normalization = r.ckpt.normalization.clone();
    plan.target_normalization = r.ckpt.target_normalization.clone();
    plan.class_names = r.ckpt.class_names.clone();
    plan.input_divisor = r.ckpt.input_divisor.or(plan.input_divisor);
    if let (Some(sched), None, None) = (r.ckpt.lr_schedule, &args.lr_schedule, args.warmup) {
        plan.lr_schedule = sched;
    }
    if let Some(es) = &r.ckpt.early_stopping {
        if es.wait >= es.patience {
            return Err(Error::data(
                path,
                "metadata early_stopping",
                format!(
                    "this run stopped early ({} epochs without improvement after its best epoch {}); \
                     there is nothing to resume: train a new model, with a larger --early-stopping",
                    es.wait, es.best_epoch
                ),
            ));
        }
        plan.early = Some(es.clone());
    }
    plan.origin = format!("the widths of {}", path.display());
    Ok(())
}

/// Checks, before anything is allocated, that the model, its optimizer state and a batch of
/// activations fit the adapter's buffers and the host memory.
fn check_memory(
    ctx: Option<&GpuContext>,
    plan: &Plan,
    train: &Dataset,
    test: Option<&Dataset>,
) -> Result<()> {
    let batch = plan.batch_size.min(train.len()).max(1);
    let host = match ctx {
        Some(c) => {
            let limit = c
                .limits
                .max_storage_buffer_binding_size
                .min(c.limits.max_buffer_size);
            plan.config
                .check_gpu_buffers(batch, limit, &c.info.name, &plan.origin)?;
            HostUse::Gpu {
                software: c.is_software(),
            }
        }
        None => HostUse::CpuReference,
    };
    // The trainer keeps its own copy of both datasets.
    let values: usize = std::iter::once(train)
        .chain(test)
        .map(|d| d.features.len() + d.labels.len() + d.targets.len())
        .sum();
    if let Some(available) = wgmlp::config::available_host_memory() {
        plan.config
            .check_host_memory(batch, host, values as u64 * 4, available, &plan.origin)?;
    }
    Ok(())
}

fn epoch_line(m: &EpochMetrics, epochs: usize, held: &str) -> String {
    if let Some(tr) = &m.train_regression {
        let test = match (m.test_loss, &m.test_regression) {
            (Some(l), Some(t)) => format!(
                "  {held} loss {l:.4}  {held} mse {:.4}  {held} mae {:.4}  {held} r2 {:.4}",
                t.mse, t.mae, t.r2
            ),
            _ => String::new(),
        };
        return format!(
            "epoch {:>3}/{epochs}  train loss {:.4}  train r2 {:.4}{test}  {:.0} samples/s",
            m.epoch, m.train_loss, tr.r2, m.samples_per_second
        );
    }
    let test = match (m.test_loss, m.test_accuracy) {
        (Some(l), Some(a)) => format!("  {held} loss {l:.4}  {held} acc {a:.4}"),
        _ => String::new(),
    };
    format!(
        "epoch {:>3}/{epochs}  train loss {:.4}  train acc {:.4}{test}  {:.0} samples/s",
        m.epoch, m.train_loss, m.train_accuracy, m.samples_per_second
    )
}

/// Catches Ctrl-C and SIGTERM: the first sets the returned flag (training stops after the
/// work already submitted and the checkpoint is written), a second exits at once.
fn install_stop_handler(save: Option<&Path>) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&flag);
    let then = match save {
        Some(p) => format!("and writing the checkpoint to {}", p.display()),
        None => "(nothing will be saved: there is no --save)".to_string(),
    };
    let installed = ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting at once");
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: finishing the work already submitted {then}; interrupt again to exit at once"
        );
    });
    if let Err(e) = installed {
        log::warn!("cannot catch Ctrl-C: {e}");
    }
    flag
}

/// Runs the subcommand.
pub fn run(args: &TrainArgs) -> Result<()> {
    // 1. The options alone, before any data is read.
    let source = Source::from_flags(
        args.dataset.as_deref(),
        args.data.as_ref(),
        args.train.as_ref(),
        args.test.as_ref(),
    )?;
    let choice: DeviceChoice = args.device.parse()?;
    let mut kernel: KernelChoice = args.kernel.parse()?;
    if kernel == KernelChoice::Fused && args.device.trim().eq_ignore_ascii_case("cpu") {
        return Err(Error::config(
            "--kernel",
            "fused is a GPU kernel and --device cpu trains on the CPU reference; drop one of them",
        ));
    }
    let settings = settings(args, source.is_file_data())?;
    let save_path: Option<PathBuf> = args.save.clone().or_else(|| args.resume.clone());
    check_outputs(args, save_path.as_deref())?;
    let resume = args
        .resume
        .as_deref()
        .map(|p| load_resume(p, settings.epochs, args.epochs.is_some()))
        .transpose()?;
    // 2. The data, and what depends on it.
    let targets = match (&settings.task, &source) {
        (Some(Task::Regress), _) => {
            Some(settings.targets.clone().unwrap_or(TargetColumns::First(1)))
        }
        (None, Source::Csv(train, _)) if settings.labels.column.is_none() => {
            let (task, hint) = wgmlp::data::csv::detect_task(train)?;
            if let Some(h) = hint {
                eprintln!("note: {h}");
            }
            (task == Task::Regress).then(|| {
                eprintln!(
                    "note: {} has non-integer targets in its first column: training a regression model (--task regress); \
                     pass --task classify to refuse",
                    train.display()
                );
                TargetColumns::First(1)
            })
        }
        _ => None,
    };
    let mut labels = settings.labels.clone();
    if let Some(r) = resume.as_ref().filter(|r| !r.ckpt.class_names.is_empty()) {
        labels.classes = Some(r.ckpt.class_names.clone());
    }
    if labels.column.is_some() && targets.is_some() {
        return Err(Error::config(
            "--label-column",
            "names a class label, but the data is read as regression targets; add --task classify",
        ));
    }
    let loaded = source.load(args.seed, targets.as_ref(), &labels)?;
    loaded.print_notes();
    let loaded_divisor = loaded.input_divisor;
    let (mut train, mut test) = (loaded.train, loaded.test);
    if settings.task == Some(Task::Classify) && train.is_regression() {
        return Err(Error::config(
            "--task",
            format!(
                "{} holds regression targets; drop --task classify (or use --task regress)",
                source.describe()
            ),
        ));
    }
    if args.plot_boundary.is_some() && train.is_regression() {
        return Err(Error::config(
            "--plot-boundary",
            "draws the class regions of a classifier; a regression model has none (--plot draws its curves)",
        ));
    }
    if args.plot_boundary.is_some() && train.n_features != 2 {
        return Err(Error::config(
            "--plot-boundary",
            format!(
                "draws 2-D data, but {} has {} features; drop --plot-boundary (--plot draws the training curves of any data)",
                source.describe(),
                train.n_features
            ),
        ));
    }
    let mut val: Option<Dataset> = match (args.val_split, &args.val) {
        (Some(f), _) => {
            let (tr, va) = train.validation_split(f, args.seed)?;
            train = tr;
            Some(va)
        }
        (None, Some(path)) => Some(read_val(
            path,
            args.seed,
            &train,
            targets.as_ref(),
            &labels,
        )?),
        _ => None,
    };
    let mut plan = plan(args, &settings, &train)?;
    plan.input_divisor = loaded_divisor;
    if let Some(r) = &resume {
        apply_resume(args, r, &mut plan)?;
        // A resumed run keeps its GPU path, so it ends where an uninterrupted run would.
        if let (KernelChoice::Auto, Some(k)) = (kernel, r.kernel) {
            kernel = k;
        }
    }
    if settings.monitor_accuracy && plan.config.task == Task::Regress {
        return Err(Error::config(
            "--monitor",
            "val_accuracy needs a classifier; a regression model is watched by val_loss",
        ));
    }
    if val.is_some() {
        plan.held_out = "val";
    }
    if let Some(patience) = args.early_stopping {
        let es = plan.early.get_or_insert_with(|| EarlyStopState {
            monitor: args.monitor.trim().to_string(),
            patience,
            best_epoch: 0,
            best_value: f32::NAN,
            wait: 0,
            best_params: Vec::new(),
        });
        es.patience = patience;
    } else {
        plan.early = None;
    }
    if let Some(norm) = &plan.normalization {
        norm.apply_to(&mut train)?;
        for t in test.iter_mut().chain(val.iter_mut()) {
            norm.apply_to(t)?;
        }
    }
    if let Some(norm) = &plan.target_normalization {
        norm.apply_to_targets(&mut train)?;
        for t in test.iter_mut().chain(val.iter_mut()) {
            norm.apply_to_targets(t)?;
        }
    }
    // Every epoch evaluates the validation set when there is one, else the test set. The
    // trainer shares the datasets (no copies).
    let train = Arc::new(train);
    let (val, test) = (val.map(Arc::new), test.map(Arc::new));
    let held_out = val.as_ref().or(test.as_ref());
    // 3. The device, and the memory the model needs, before anything is allocated.
    let device = open_device(choice)?;
    check_memory(device.context(), &plan, &train, held_out.map(|t| &**t))?;
    let options = TrainOptions {
        batch_size: plan.batch_size,
        steps_per_submit: args.steps_per_submit.max(1),
    };
    let mut builder = Trainer::builder(device.clone(), &plan.config, plan.optimizer)
        .options(options)
        .kernel(kernel);
    if !plan.lr_schedule.is_constant() {
        builder = builder.lr_schedule(plan.lr_schedule);
    }
    if let Some(t) = held_out {
        builder = builder.test(Arc::clone(t));
    }
    let mut trainer = builder.build(Arc::clone(&train))?;
    if let Some(r) = &resume {
        trainer.restore(&r.ckpt.params, &r.training.state, r.training.epoch)?;
    }
    if let Some(norm) = &plan.target_normalization {
        trainer.set_target_scale(&norm.std)?;
    }
    // 4. Training; from here on nothing is lost.
    let stop = install_stop_handler(save_path.as_deref());
    trainer.set_stop_flag(Arc::clone(&stop));
    eprintln!(
        "training {} on {} ({} train, {} test samples) with {} lr {} batch {} on {}{}",
        plan.config.describe(),
        source.describe(),
        train.len(),
        test.as_ref().map_or(0, |t| t.len()),
        plan.optimizer.kind,
        plan.optimizer.lr,
        plan.batch_size,
        device.describe(),
        trainer
            .kernel()
            .map(|k| format!(", kernel {}", k.describe()))
            .unwrap_or_default()
    );
    if let Some(note) = trainer.kernel().and_then(|k| k.note.as_deref()) {
        eprintln!("note: {note}");
    }
    if trainer.epoch() > 0 {
        eprintln!("resuming after epoch {}", trainer.epoch());
    }
    let start = Instant::now();
    let mut history: Vec<EpochMetrics> = resume.map(|r| r.history).unwrap_or_default();
    // On a terminal: a bar in samples that moves every submit (GPU) or step (CPU), with
    // samples/s and the time left; the epoch's numbers in its message.
    let n_train = train.len() as u64;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(plan.epochs as u64 * n_train);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} epoch {prefix} {percent:>3}%  {rate} samples/s  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}", state.per_sec());
                },
            ),
        );
        bar.set_position(trainer.epoch() as u64 * n_train);
        bar.set_prefix(format!("{}/{}", trainer.epoch() + 1, plan.epochs));
        bar
    });
    let kernel_name = trainer.kernel().map(KernelPath::from);
    let outcome: Result<()> = trainer
        .fit(plan.epochs, |event| {
            let (m, model) = match event {
                Event::Progress { epoch, done, steps } => {
                    if let Some(bar) = &bar {
                        let within = n_train * done as u64 / steps.max(1) as u64;
                        bar.set_position((epoch as u64 - 1) * n_train + within);
                    }
                    return Ok(Control::Continue);
                }
                Event::Epoch { metrics, model } => (metrics, model),
            };
            match &bar {
                Some(bar) => {
                    bar.set_position(m.epoch as u64 * n_train);
                    bar.set_prefix(format!(
                        "{}/{}",
                        (m.epoch + 1).min(plan.epochs),
                        plan.epochs
                    ));
                    bar.set_message(match &m.train_regression {
                        Some(r) => format!(
                            "loss {:.4} train r2 {:.4}{}",
                            m.train_loss,
                            r.r2,
                            m.test_regression
                                .map(|t| format!(" test r2 {:.4}", t.r2))
                                .unwrap_or_default()
                        ),
                        None => format!(
                            "loss {:.4} train acc {:.4}{}",
                            m.train_loss,
                            m.train_accuracy,
                            m.test_accuracy
                                .map(|a| format!(" test acc {a:.4}"))
                                .unwrap_or_default()
                        ),
                    });
                    if m.epoch % (plan.epochs / 10).max(1) == 0 || m.epoch == plan.epochs {
                        bar.println(epoch_line(m, plan.epochs, plan.held_out));
                    }
                }
                None => eprintln!("{}", epoch_line(m, plan.epochs, plan.held_out)),
            }
            let stop_now = match plan.early.as_mut() {
                Some(es) => {
                    let value = if settings.monitor_accuracy {
                        m.test_accuracy
                    } else {
                        m.test_loss
                    };
                    let value = value.unwrap_or(f32::NAN);
                    let better = es.best_epoch == 0
                        || if settings.monitor_accuracy {
                            value > es.best_value
                        } else {
                            value < es.best_value
                        };
                    if better {
                        es.best_epoch = m.epoch;
                        es.best_value = value;
                        es.wait = 0;
                        es.best_params = model.params()?;
                    } else {
                        es.wait += 1;
                    }
                    es.wait >= es.patience
                }
                None => false,
            };
            history.push(m.clone());
            if let (Some(every), Some(path)) = (args.checkpoint_every, &save_path) {
                if !stop_now && (m.epoch % every == 0 || m.epoch == plan.epochs) {
                    let at = (model, m.epoch, kernel_name);
                    save(path, &plan, at, true, &history, None)?;
                }
            }
            Ok(if stop_now {
                Control::Stop
            } else {
                Control::Continue
            })
        })
        .map(|_| ());
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = start.elapsed().as_secs_f64();
    let report = Report {
        args,
        plan: &plan,
        source: &source,
        device: &device,
        history: &history,
        seconds,
        kernel: json::Kernel::new(kernel, trainer.kernel()),
        final_test: if plan.held_out == "val" {
            test.as_deref()
        } else {
            None
        },
    };
    match outcome {
        Ok(()) => finish(&report, &mut trainer, save_path.as_deref(), &train),
        Err(e) => stopped(&report, &trainer, save_path.as_deref(), e),
    }
}

/// What the outputs of a run are made from.
struct Report<'a> {
    args: &'a TrainArgs,
    plan: &'a Plan,
    source: &'a Source<'a>,
    device: &'a Device,
    history: &'a [EpochMetrics],
    seconds: f64,
    /// The test set, evaluated once at the end (when a validation set took its place
    /// during training).
    final_test: Option<&'a Dataset>,
    /// The GPU path (`used` is "cpu" on the CPU).
    kernel: json::Kernel,
}

/// After the last epoch: the summary, the checkpoint, the metrics and the plots.
fn finish(
    r: &Report,
    trainer: &mut Trainer,
    save_path: Option<&Path>,
    train: &Dataset,
) -> Result<()> {
    // Early stopping keeps the best epoch's parameters: they are what is evaluated and saved.
    // A run that reached --epochs and is saved for --resume keeps its last parameters (the
    // best are in the checkpoint's early-stopping state), so resuming it stays bit-exact.
    let with_state = r.args.checkpoint_every.is_some() || r.args.resume.is_some();
    let best = r.plan.early.as_ref().filter(|es| es.best_epoch > 0);
    if let Some(es) = best {
        let stopped_early = es.wait >= es.patience;
        if es.best_epoch < trainer.epoch() && (stopped_early || !with_state) {
            let state = trainer.optimizer_state()?;
            let epoch = trainer.epoch();
            trainer.restore(&es.best_params, &state, epoch)?;
        }
    }
    let best_metrics = best.and_then(|es| r.history.iter().find(|m| m.epoch == es.best_epoch));
    let held_out = if r.plan.held_out == "val" {
        best_metrics.or(r.history.last()).cloned()
    } else {
        None
    };
    let mut last = r.history.last().cloned();
    if r.plan.held_out == "val" {
        // The per-epoch metrics were the validation set's; the test set is evaluated now.
        last = match r.final_test {
            Some(t) => Some(final_test_metrics(r, trainer, t)?),
            None => None,
        };
    }
    let (final_train_loss, final_train_acc, final_train_reg) = trainer.evaluate_train_set_full()?;
    let test_reg = last.as_ref().and_then(|m| m.test_regression);
    let summary = match (
        last.as_ref().and_then(|m| m.test_accuracy.zip(m.test_loss)),
        test_reg,
        final_train_reg,
    ) {
        (_, Some(t), _) => format!(
            "test R² {:.4}, test MSE {:.4}, test MAE {:.4}",
            t.r2, t.mse, t.mae
        ),
        (_, None, Some(t)) => format!(
            "train R² {:.4}, train MSE {:.4}, train MAE {:.4}",
            t.r2, t.mse, t.mae
        ),
        (Some((acc, loss)), None, None) => {
            format!("test accuracy {acc:.4}, test loss {loss:.4}")
        }
        (None, None, None) => format!("train accuracy {final_train_acc:.4}"),
    };
    let summary = match (&held_out, best) {
        (Some(v), Some(es)) => format!(
            "{summary}; best epoch {} (val loss {:.4}{}){}",
            es.best_epoch,
            v.test_loss.unwrap_or(f32::NAN),
            v.test_accuracy
                .filter(|_| v.test_regression.is_none())
                .map(|a| format!(", val acc {a:.4}"))
                .unwrap_or_default(),
            if es.wait >= es.patience {
                format!(
                    ", stopped early after {} epochs without improvement",
                    es.wait
                )
            } else {
                String::new()
            }
        ),
        (Some(v), None) => format!("{summary}; val loss {:.4}", v.test_loss.unwrap_or(f32::NAN)),
        _ => summary,
    };
    println!(
        "trained {} for {} epochs in {:.1} s on {}: {summary}",
        r.plan.config.describe(),
        trainer.epoch(),
        r.seconds,
        r.device.describe()
    );
    if let Some(path) = save_path {
        save(path, r.plan, at(trainer), with_state, r.history, None)?;
        let what = match (r.args.save.is_none(), with_state) {
            (true, _) => format!(
                " (the --resume checkpoint, now at epoch {}; --resume it again to go on)",
                trainer.epoch()
            ),
            (false, true) => format!(
                " (epoch {}, with the optimizer state for --resume)",
                trainer.epoch()
            ),
            (false, false) => String::new(),
        };
        println!("saved {}{what}", path.display());
    }
    let last = last.as_ref();
    let mut final_json = json::Final {
        epochs: trainer.epoch(),
        test_accuracy: last.and_then(|m| m.test_accuracy),
        test_loss: last.and_then(|m| m.test_loss),
        train_accuracy: Some(final_train_acc),
        train_loss: Some(final_train_loss),
        seconds: r.seconds,
        val_loss: held_out.as_ref().map(|v| v.test_loss),
        val_accuracy: held_out.as_ref().map(|v| v.test_accuracy),
        best_epoch: best.map(|es| es.best_epoch),
        stopped_early: best.map(|es| es.wait >= es.patience),
        ..json::Final::default()
    };
    let regression = &mut final_json.regression;
    regression.set(Set::Train, final_train_reg.as_ref());
    regression.set(Set::Test, test_reg.as_ref());
    regression.set(
        Set::Val,
        held_out.as_ref().and_then(|v| v.test_regression.as_ref()),
    );
    write_outputs(r, final_json)?;
    if let Some(path) = &r.args.plot_boundary {
        let predictor = Predictor::of_model(r.device, trainer.model())?;
        draw_boundary(path, &predictor, train)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The test set's metrics with the trainer's current parameters, as an epoch's held-out
/// metrics (only the loss, accuracy and regression fields are filled in).
fn final_test_metrics(r: &Report, trainer: &Trainer, test: &Dataset) -> Result<EpochMetrics> {
    let predictor = Predictor::of_model(r.device, trainer.model())?;
    let mut m = EpochMetrics {
        epoch: trainer.epoch(),
        train_loss: f32::NAN,
        train_accuracy: f32::NAN,
        test_loss: None,
        test_accuracy: None,
        train_regression: None,
        test_regression: None,
        seconds: 0.0,
        samples_per_second: 0.0,
    };
    if test.is_regression() {
        let mut t = test.clone();
        if let Some(norm) = &r.plan.target_normalization {
            norm.invert(&mut t.targets);
        }
        let tn = r.plan.target_normalization.as_ref();
        let ev = infer::evaluate_regression(&predictor, tn, &t)?;
        m.test_loss = Some(ev.loss);
        m.test_accuracy = Some(0.0);
        m.test_regression = Some(ev.metrics);
    } else {
        let ev = infer::evaluate(&predictor, test)?;
        m.test_loss = Some(ev.loss);
        m.test_accuracy = Some(ev.accuracy);
    }
    Ok(m)
}

/// Training stopped early (a signal, a divergence, another error): the parameters it
/// reached are written where a checkpoint was asked for, with the reason in the metadata,
/// and so are the metrics and curves so far; then the error is returned.
fn stopped(r: &Report, trainer: &Trainer, save_path: Option<&Path>, e: Error) -> Result<()> {
    let Some(event) = json::Event::of(&e) else {
        return Err(e);
    };
    let key = event.key();
    match save_path {
        Some(path) => {
            save(path, r.plan, at(trainer), true, r.history, Some(&event))?;
            let what = match &e {
                Error::Diverged { .. } => "the parameters from before that step".to_string(),
                _ => format!(
                    "the parameters after the last finished step ({} epochs complete)",
                    trainer.epoch()
                ),
            };
            eprintln!(
                "saved {what} to {} with the optimizer state (metadata metrics.{key}); continue with --resume {}",
                path.display(),
                path.display()
            );
        }
        None => eprintln!("nothing saved: give --save FILE.safetensors to keep the parameters"),
    }
    let last = r.history.last();
    let final_json = json::Final {
        epochs: trainer.epoch(),
        test_accuracy: last.and_then(|m| m.test_accuracy),
        test_loss: last.and_then(|m| m.test_loss),
        seconds: r.seconds,
        event: Some(event),
        ..json::Final::default()
    };
    write_outputs(r, final_json)?;
    Err(e)
}

/// `--metrics-json` (the whole history, a resumed run's included) and `--plot`.
fn write_outputs(r: &Report, final_json: json::Final) -> Result<()> {
    if let Some(path) = &r.args.metrics_json {
        let (c, held) = (&r.plan.config, Set::held_out(r.plan.held_out));
        let value = json::TrainMetrics {
            adapter: r.device.into(),
            config: json::RunConfig {
                widths: c.widths(),
                activations: c.activations.iter().map(|a| a.to_string()).collect(),
                learn_prelu: c.learn_prelu,
                dropout: c.dropout,
                task: c.task.into(),
                loss: c.loss.into(),
                normalize_targets: Scaling::of(r.plan.target_normalization.as_ref()),
                init: c.init.into(),
                optimizer: r.plan.optimizer.kind.into(),
                lr: r.plan.optimizer.lr,
                lr_schedule: r.plan.lr_schedule.kind.to_string(),
                warmup: r.plan.lr_schedule.warmup,
                weight_decay: r.plan.optimizer.weight_decay,
                clip_grad_norm: r.plan.optimizer.clip_norm,
                batch_size: r.plan.batch_size,
                epochs: r.plan.epochs,
                seed: c.seed,
                normalize: Scaling::of(r.plan.normalization.as_ref()),
                data: r.source.describe(),
                resumed_from: r.args.resume.as_ref().map(|p| p.display().to_string()),
            },
            kernel: r.kernel.clone(),
            epochs: r.history.iter().map(|m| Epoch::new(m, held)).collect(),
            result: final_json,
            notes: json::Notes::new(held),
        };
        write_json(path, &value)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &r.args.plot {
        draw_curves(path, r)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// A model at an epoch, trained by a GPU path (`None`: the CPU): what a checkpoint saves.
type At<'a> = (&'a dyn Model, usize, Option<KernelPath>);

/// The trainer's model, epoch and kernel.
fn at(trainer: &Trainer) -> At<'_> {
    (
        trainer.model(),
        trainer.epoch(),
        trainer.kernel().map(KernelPath::from),
    )
}

/// Writes the checkpoint: the model, the optimizer state when `with_state`, and in the
/// `metrics` metadata the history of every epoch (and `event`, e.g. a divergence).
fn save(
    path: &Path,
    plan: &Plan,
    (model, epoch, kernel): At,
    with_state: bool,
    history: &[EpochMetrics],
    event: Option<&json::Event>,
) -> Result<()> {
    let training = if with_state {
        Some(TrainingState {
            epoch,
            optimizer: plan.optimizer,
            state: model.optimizer_state()?,
        })
    } else {
        None
    };
    let held = Set::held_out(plan.held_out);
    let metrics = CheckpointMetrics {
        epochs: history.iter().map(|m| Epoch::new(m, held)).collect(),
        kernel,
        event: event.cloned(),
    };
    let metrics = json::tree(path, &metrics)?.to_string();
    checkpoint::save_with_metrics(
        path,
        &Checkpoint {
            config: plan.config.clone(),
            params: model.params()?,
            normalization: plan.normalization.clone(),
            target_normalization: plan.target_normalization.clone(),
            class_names: plan.class_names.clone(),
            input_divisor: plan.input_divisor,
            lr_schedule: Some(plan.lr_schedule),
            early_stopping: plan
                .early
                .clone()
                .filter(|es| with_state && es.best_epoch > 0),
            training,
        },
        Some(&metrics),
    )
}

fn draw_curves(path: &Path, r: &Report) -> Result<()> {
    let history = r.history;
    let held = r.plan.held_out;
    let pts = |f: &dyn Fn(&EpochMetrics) -> Option<f32>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|m| f(m).map(|v| (m.epoch as f64, v as f64)))
            .collect()
    };
    let (train_loss, held_loss) = ("train loss".to_string(), format!("{held} loss"));
    let mut losses = vec![Series {
        label: &train_loss,
        points: pts(&|m| Some(m.train_loss)),
    }];
    let held_points = pts(&|m| m.test_loss);
    if !held_points.is_empty() {
        losses.push(Series {
            label: &held_loss,
            points: held_points,
        });
    }
    let regress = history.iter().any(|m| m.train_regression.is_some());
    let (train_metric, held_metric) = match regress {
        true => ("train R²".to_string(), format!("{held} R²")),
        false => ("train accuracy".to_string(), format!("{held} accuracy")),
    };
    let metric = |m: &EpochMetrics, train: bool| -> Option<f32> {
        match (regress, train) {
            (true, true) => m.train_regression.map(|r| r.r2),
            (true, false) => m.test_regression.map(|r| r.r2),
            (false, true) => Some(m.train_accuracy),
            (false, false) => m.test_accuracy,
        }
    };
    let mut metrics = vec![Series {
        label: &train_metric,
        points: pts(&|m| metric(m, true)),
    }];
    let held_points = pts(&|m| metric(m, false));
    if !held_points.is_empty() {
        metrics.push(Series {
            label: &held_metric,
            points: held_points,
        });
    }
    let o = &r.plan.optimizer;
    let title = format!(
        "{} on {}, {} lr {}{}, batch {}",
        r.plan.config.describe(),
        r.source.describe(),
        o.kind,
        o.lr,
        if r.plan.lr_schedule.is_constant() {
            String::new()
        } else {
            format!(" ({})", r.plan.lr_schedule.kind)
        },
        r.plan.batch_size
    );
    let left = plot::Panel {
        y_label: "loss",
        series: &losses,
    };
    let right = plot::Panel {
        y_label: if regress { "R²" } else { "accuracy" },
        series: &metrics,
    };
    wgmlp::fsutil::write_atomic_with(path, |tmp| {
        plot::training_curves(tmp, &title, &left, &right)
    })
}

fn draw_boundary(path: &Path, predictor: &Predictor, data: &Dataset) -> Result<()> {
    let config = predictor.config();
    if data.n_features != 2 {
        return Err(Error::config(
            "--plot-boundary",
            format!(
                "needs 2-D data; this dataset has {} features",
                data.n_features
            ),
        ));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for i in 0..data.len() {
        let r = data.row(i);
        x0 = x0.min(r[0] as f64);
        x1 = x1.max(r[0] as f64);
        y0 = y0.min(r[1] as f64);
        y1 = y1.max(r[1] as f64);
    }
    let (px, py) = (0.1 * (x1 - x0).max(1e-3), 0.1 * (y1 - y0).max(1e-3));
    let (xr, yr) = ((x0 - px, x1 + px), (y0 - py, y1 + py));
    let res = 200;
    let mut grid = Vec::with_capacity(res * res * 2);
    for j in 0..res {
        for i in 0..res {
            grid.push((xr.0 + (i as f64 + 0.5) * (xr.1 - xr.0) / res as f64) as f32);
            grid.push((yr.0 + (j as f64 + 0.5) * (yr.1 - yr.0) / res as f64) as f32);
        }
    }
    let logits = predictor.logits(&grid, res * res)?;
    let classes: Vec<usize> = logits
        .chunks(config.output)
        .map(wgmlp::reference::argmax)
        .collect();
    let points: Vec<(f64, f64, usize)> = (0..data.len())
        .map(|i| {
            (
                data.row(i)[0] as f64,
                data.row(i)[1] as f64,
                data.labels[i] as usize,
            )
        })
        .collect();
    wgmlp::fsutil::write_atomic_with(path, |tmp| {
        plot::decision_regions(tmp, xr, yr, res, &classes, &points)
    })
}
