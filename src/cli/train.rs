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

use wgmlp::checkpoint::{self, Checkpoint, TrainingState};
use wgmlp::config::{HostUse, parse_activations, parse_hidden};
use wgmlp::gpu::fused::{KernelChoice, KernelDecision};
use wgmlp::infer::{self, Device, DeviceChoice};
use wgmlp::plot::{self, Series};
use wgmlp::{
    Activation, Dataset, EpochMetrics, Error, GpuContext, Init, Loss, MlpConfig, Normalization,
    OptimizerConfig, OptimizerKind, Result, TrainOptions, Trainer,
};

use super::common::{Source, adapter_json, open_device, parse_count, parse_seed, write_json};

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
    /// Loss: ce (softmax cross-entropy) or mse.
    #[arg(long)]
    pub loss: Option<String>,
    /// Optimizer: sgd, momentum, adam, adamw. Default: sgd for file data, adam for built-ins.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Learning rate. Default: 0.1 for sgd/momentum, 0.01 for adam/adamw.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Weight decay (L2 for sgd/momentum/adam, decoupled for adamw).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,
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
    loss: Loss,
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
    let loss = match &args.loss {
        Some(l) => l.parse()?,
        None => Loss::CrossEntropy,
    };
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
    Ok(Settings {
        optimizer,
        hidden,
        activations,
        loss,
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

/// An epoch's metrics as JSON (the `epochs` entries of `--metrics-json` and of the
/// checkpoint's `metrics` metadata).
fn epoch_json(m: &EpochMetrics) -> serde_json::Value {
    serde_json::json!({
        "epoch": m.epoch, "train_loss": m.train_loss, "train_accuracy": m.train_accuracy,
        "test_loss": m.test_loss, "test_accuracy": m.test_accuracy,
        "seconds": m.seconds, "samples_per_second": m.samples_per_second,
    })
}

/// The inverse of [`epoch_json`]; `None` for an entry that is not one.
fn epoch_from_json(v: &serde_json::Value) -> Option<EpochMetrics> {
    let f = |k: &str| v.get(k).and_then(|x| x.as_f64());
    Some(EpochMetrics {
        epoch: usize::try_from(v.get("epoch")?.as_u64()?).ok()?,
        train_loss: f("train_loss")? as f32,
        train_accuracy: f("train_accuracy")? as f32,
        test_loss: f("test_loss").map(|x| x as f32),
        test_accuracy: f("test_accuracy").map(|x| x as f32),
        seconds: f("seconds").unwrap_or(0.0),
        samples_per_second: f("samples_per_second").unwrap_or(0.0),
    })
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
    let metrics = metrics.and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok());
    let kernel = metrics
        .as_ref()
        .and_then(|v| v.get("kernel")?.as_str()?.parse().ok());
    let history = metrics
        .and_then(|v| v.get("epochs")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(epoch_from_json)
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
    let mut config =
        MlpConfig::new(train.n_features, &s.hidden, train.n_classes).with_seed(args.seed);
    config.activations = s.activations.clone();
    config.learn_prelu = args.learn_prelu;
    config.loss = s.loss;
    config.init = s.init;
    config.validate()?;
    Ok(Plan {
        config,
        optimizer: s.optimizer,
        batch_size: s.batch_size,
        epochs: s.epochs,
        normalization: s.standardize.then(|| Normalization::fit(train)),
        origin: "--hidden".to_string(),
    })
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
    if args.optimizer.is_none() && args.lr.is_none() && args.weight_decay.is_none() {
        plan.optimizer = r.training.optimizer;
    }
    plan.normalization = r.ckpt.normalization.clone();
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
        .map(|d| d.features.len() + d.labels.len())
        .sum();
    if let Some(available) = wgmlp::config::available_host_memory() {
        plan.config
            .check_host_memory(batch, host, values as u64 * 4, available, &plan.origin)?;
    }
    Ok(())
}

fn epoch_line(m: &EpochMetrics, epochs: usize) -> String {
    let test = match (m.test_loss, m.test_accuracy) {
        (Some(l), Some(a)) => format!("  test loss {l:.4}  test acc {a:.4}"),
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
    let loaded = source.load(args.seed)?;
    loaded.print_notes();
    let (mut train, mut test) = (loaded.train, loaded.test);
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
    let mut plan = plan(args, &settings, &train)?;
    if let Some(r) = &resume {
        apply_resume(args, r, &mut plan)?;
        // A resumed run keeps its GPU path, so it ends where an uninterrupted run would.
        if let (KernelChoice::Auto, Some(k)) = (kernel, r.kernel) {
            kernel = k;
        }
    }
    if let Some(norm) = &plan.normalization {
        norm.apply_to(&mut train)?;
        if let Some(t) = &mut test {
            norm.apply_to(t)?;
        }
    }
    // 3. The device, and the memory the model needs, before anything is allocated.
    let ctx: Option<GpuContext> = open_device(choice)?;
    check_memory(ctx.as_ref(), &plan, &train, test.as_ref())?;
    let device = match &ctx {
        Some(c) => Device::Gpu(c),
        None => Device::Cpu,
    };
    let options = TrainOptions {
        batch_size: plan.batch_size,
        steps_per_submit: args.steps_per_submit.max(1),
    };
    let mut trainer = match device {
        Device::Gpu(c) => Trainer::gpu_with_kernel(
            c,
            &plan.config,
            plan.optimizer,
            &train,
            test.as_ref(),
            options,
            kernel,
        )?,
        Device::Cpu => Trainer::cpu(&plan.config, plan.optimizer, &train, test.as_ref(), options)?,
    };
    if let Some(r) = &resume {
        trainer.restore(&r.ckpt.params, &r.training.state, r.training.epoch)?;
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
    if trainer.epoch > 0 {
        eprintln!("resuming after epoch {}", trainer.epoch);
    }
    let start = Instant::now();
    let mut history: Vec<EpochMetrics> = resume.map(|r| r.history).unwrap_or_default();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(plan.epochs as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} epochs {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_position(trainer.epoch as u64);
        bar
    });
    let outcome: Result<()> = loop {
        if trainer.epoch >= plan.epochs {
            break Ok(());
        }
        if stop.load(Ordering::SeqCst) {
            break Err(Error::Interrupted {
                epoch: trainer.epoch + 1,
                step: 0,
                completed: trainer.epoch,
            });
        }
        let m = match trainer.run_epoch() {
            Ok(m) => m,
            Err(e) => break Err(e),
        };
        match &bar {
            Some(bar) => {
                bar.set_position(m.epoch as u64);
                bar.set_message(format!(
                    "loss {:.4} train acc {:.4}{}",
                    m.train_loss,
                    m.train_accuracy,
                    m.test_accuracy
                        .map(|a| format!(" test acc {a:.4}"))
                        .unwrap_or_default()
                ));
                if m.epoch % (plan.epochs / 10).max(1) == 0 || m.epoch == plan.epochs {
                    bar.println(epoch_line(&m, plan.epochs));
                }
            }
            None => eprintln!("{}", epoch_line(&m, plan.epochs)),
        }
        history.push(m);
        if let (Some(every), Some(path)) = (args.checkpoint_every, &save_path) {
            if trainer.epoch % every == 0 || trainer.epoch == plan.epochs {
                save(path, &plan, &trainer, true, &history, None)?;
            }
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = start.elapsed().as_secs_f64();
    let report = Report {
        args,
        plan: &plan,
        source: &source,
        device,
        history: &history,
        seconds,
        kernel: kernel_json(kernel, trainer.kernel()),
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
    device: Device<'a>,
    history: &'a [EpochMetrics],
    seconds: f64,
    /// `{"requested", "used", "detail", "note"}`: the GPU path (`used` is "cpu" on the CPU).
    kernel: serde_json::Value,
}

/// The metrics JSON's `kernel` object.
fn kernel_json(requested: KernelChoice, used: Option<&KernelDecision>) -> serde_json::Value {
    serde_json::json!({
        "requested": requested.to_string(),
        "used": used.map_or("cpu", |k| k.name()),
        "detail": used.map(|k| k.describe()),
        "note": used.and_then(|k| k.note.clone()),
    })
}

/// After the last epoch: the summary, the checkpoint, the metrics and the plots.
fn finish(
    r: &Report,
    trainer: &mut Trainer,
    save_path: Option<&Path>,
    train: &Dataset,
) -> Result<()> {
    let last = r.history.last().cloned();
    let (final_train_loss, final_train_acc) = trainer.evaluate_train_set()?;
    let summary = match last.as_ref().and_then(|m| m.test_accuracy.zip(m.test_loss)) {
        Some((acc, loss)) => format!("test accuracy {acc:.4}, test loss {loss:.4}"),
        None => format!("train accuracy {final_train_acc:.4}"),
    };
    println!(
        "trained {} for {} epochs in {:.1} s on {}: {summary}",
        r.plan.config.describe(),
        trainer.epoch,
        r.seconds,
        r.device.describe()
    );
    if let Some(path) = save_path {
        let with_state = r.args.checkpoint_every.is_some() || r.args.resume.is_some();
        save(path, r.plan, trainer, with_state, r.history, None)?;
        let what = match (r.args.save.is_none(), with_state) {
            (true, _) => format!(
                " (the --resume checkpoint, now at epoch {}; --resume it again to go on)",
                trainer.epoch
            ),
            (false, true) => format!(
                " (epoch {}, with the optimizer state for --resume)",
                trainer.epoch
            ),
            (false, false) => String::new(),
        };
        println!("saved {}{what}", path.display());
    }
    let last = last.as_ref();
    let final_json = serde_json::json!({
        "epochs": trainer.epoch,
        "test_accuracy": last.and_then(|m| m.test_accuracy),
        "test_loss": last.and_then(|m| m.test_loss),
        "train_accuracy": final_train_acc,
        "train_loss": final_train_loss,
        "seconds": r.seconds,
    });
    write_outputs(r, final_json)?;
    if let Some(path) = &r.args.plot_boundary {
        draw_boundary(path, r.device, &r.plan.config, &trainer.params()?, train)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Training stopped early (a signal, a divergence, another error): the parameters it
/// reached are written where a checkpoint was asked for, with the reason in the metadata,
/// and so are the metrics and curves so far; then the error is returned.
fn stopped(r: &Report, trainer: &Trainer, save_path: Option<&Path>, e: Error) -> Result<()> {
    let event = match &e {
        Error::Interrupted {
            epoch,
            step,
            completed,
        } => serde_json::json!({"interrupted": {
            "epoch": epoch, "steps": step, "epochs_complete": completed,
        }}),
        Error::Diverged { epoch, step, loss } => serde_json::json!({"diverged": {
            "epoch": epoch, "step": step, "loss": loss.to_string(),
        }}),
        _ => return Err(e),
    };
    let (key, value) = event
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("one key");
    match save_path {
        Some(path) => {
            save(
                path,
                r.plan,
                trainer,
                true,
                r.history,
                Some((&key, value.clone())),
            )?;
            let what = match &e {
                Error::Diverged { .. } => "the parameters from before that step".to_string(),
                _ => format!(
                    "the parameters after the last finished step ({} epochs complete)",
                    trainer.epoch
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
    let final_json = serde_json::json!({
        "epochs": trainer.epoch,
        "test_accuracy": last.and_then(|m| m.test_accuracy),
        "test_loss": last.and_then(|m| m.test_loss),
        "seconds": r.seconds,
        key: value,
    });
    write_outputs(r, final_json)?;
    Err(e)
}

/// `--metrics-json` (the whole history, a resumed run's included) and `--plot`.
fn write_outputs(r: &Report, final_json: serde_json::Value) -> Result<()> {
    if let Some(path) = &r.args.metrics_json {
        let c = &r.plan.config;
        let value = serde_json::json!({
            "adapter": adapter_json(r.device),
            "config": {
                "widths": c.widths(),
                "activations": c.activations.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "learn_prelu": c.learn_prelu,
                "loss": c.loss.to_string(),
                "init": c.init.to_string(),
                "optimizer": r.plan.optimizer.kind.to_string(),
                "lr": r.plan.optimizer.lr,
                "weight_decay": r.plan.optimizer.weight_decay,
                "batch_size": r.plan.batch_size,
                "epochs": r.plan.epochs,
                "seed": c.seed,
                "normalize": if r.plan.normalization.is_some() { "standard" } else { "none" },
                "data": r.source.describe(),
                "resumed_from": r.args.resume.as_ref().map(|p| p.display().to_string()),
            },
            "kernel": r.kernel,
            "epochs": r.history.iter().map(epoch_json).collect::<Vec<_>>(),
            "final": final_json,
        });
        write_json(path, &value)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &r.args.plot {
        draw_curves(path, r.history)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Writes the checkpoint: the model, the optimizer state when `with_state`, and in the
/// `metrics` metadata the history of every epoch (and `event`, e.g. a divergence).
fn save(
    path: &Path,
    plan: &Plan,
    trainer: &Trainer,
    with_state: bool,
    history: &[EpochMetrics],
    event: Option<(&str, serde_json::Value)>,
) -> Result<()> {
    let training = if with_state {
        Some(TrainingState {
            epoch: trainer.epoch,
            optimizer: plan.optimizer,
            state: trainer.optimizer_state()?,
        })
    } else {
        None
    };
    let mut metrics = serde_json::json!({
        "epochs": history.iter().map(epoch_json).collect::<Vec<_>>(),
        "kernel": trainer.kernel().map(|k| k.name()),
    });
    if let (Some((key, value)), Some(map)) = (event, metrics.as_object_mut()) {
        map.insert(key.to_string(), value);
    }
    checkpoint::save_with_metrics(
        path,
        &Checkpoint {
            config: plan.config.clone(),
            params: trainer.params()?,
            normalization: plan.normalization.clone(),
            training,
        },
        Some(&metrics.to_string()),
    )
}

fn draw_curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let pts = |f: &dyn Fn(&EpochMetrics) -> Option<f32>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|m| f(m).map(|v| (m.epoch as f64, v as f64)))
            .collect()
    };
    let mut series = vec![
        Series {
            label: "train loss",
            points: pts(&|m| Some(m.train_loss)),
        },
        Series {
            label: "train acc",
            points: pts(&|m| Some(m.train_accuracy)),
        },
    ];
    let test = pts(&|m| m.test_accuracy);
    if !test.is_empty() {
        series.push(Series {
            label: "test acc",
            points: test,
        });
    }
    wgmlp::fsutil::write_atomic_with(path, |tmp| plot::line_chart(tmp, "epoch", "", &series))
}

fn draw_boundary(
    path: &Path,
    device: Device,
    config: &MlpConfig,
    params: &[f32],
    data: &Dataset,
) -> Result<()> {
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
    let logits = infer::logits(device, config, params, &grid, res * res)?;
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
