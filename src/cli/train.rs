//! `wgmlp train`: train an MLP on a built-in dataset, an IDX directory or CSV files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use wgmlp::checkpoint::{self, Checkpoint, TrainingState};
use wgmlp::infer::{self, Device, DeviceChoice};
use wgmlp::plot::{self, Series};
use wgmlp::{
    Activation, Dataset, EpochMetrics, Error, GpuContext, Init, Loss, MlpConfig, Normalization,
    OptimizerConfig, OptimizerKind, Result, TrainOptions, Trainer,
};

use super::common::{Source, adapter_json, write_json};

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
    #[arg(long)]
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
    #[arg(long)]
    pub lr: Option<f32>,
    /// Weight decay (L2 for sgd/momentum/adam, decoupled for adamw).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Samples per step. Default: 256 for file data, 64 for built-ins.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Epochs in total (a resumed run continues up to this number). Default: 10 for file data, 100 for built-ins.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of the data, the initial weights and the shuffling.
    #[arg(long, default_value_t = 42)]
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
    /// Save the trained model (safetensors, PyTorch nn.Sequential layout).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Continue training from a checkpoint written with --checkpoint-every.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Every N epochs, write --save with the optimizer state and epoch (for --resume).
    #[arg(long)]
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
    #[arg(long, default_value_t = 64)]
    pub steps_per_submit: usize,
}

/// Everything resolved from the flags, the data and an optional checkpoint.
struct Plan {
    config: MlpConfig,
    optimizer: OptimizerConfig,
    batch_size: usize,
    epochs: usize,
    normalization: Option<Normalization>,
    resume: Option<TrainingState>,
    resume_params: Option<Vec<f32>>,
}

fn parse_hidden(text: &str) -> Result<Vec<usize>> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    t.split(',')
        .map(|w| {
            w.trim().parse::<usize>().map_err(|_| {
                Error::config(
                    "--hidden",
                    format!("{w:?} is not a layer width; write widths like 256,128 (or none)"),
                )
            })
        })
        .collect()
}

fn parse_activations(text: &str, layers: usize) -> Result<Vec<Activation>> {
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

fn resolve(args: &TrainArgs, file_data: bool, train: &Dataset) -> Result<Plan> {
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
    let mut config =
        MlpConfig::new(train.n_features, &hidden, train.n_classes).with_seed(args.seed);
    config.activations = activations;
    config.learn_prelu = args.learn_prelu;
    config.loss = match &args.loss {
        Some(l) => l.parse()?,
        None => Loss::CrossEntropy,
    };
    config.init = args.init.parse::<Init>()?;
    config.validate()?;
    let batch_size = args.batch_size.unwrap_or(if file_data { 256 } else { 64 });
    if batch_size == 0 {
        return Err(Error::config("--batch-size", "must be at least 1 (got 0)"));
    }
    let epochs = args.epochs.unwrap_or(if file_data { 10 } else { 100 });
    let normalization = match args.normalize.trim().to_ascii_lowercase().as_str() {
        "none" => None,
        "standard" => Some(Normalization::fit(train)),
        other => {
            return Err(Error::config(
                "--normalize",
                format!("unknown normalisation {other:?}; choose none or standard"),
            ));
        }
    };
    Ok(Plan {
        config,
        optimizer,
        batch_size,
        epochs,
        normalization,
        resume: None,
        resume_params: None,
    })
}

/// Replaces the plan's model with the checkpoint's, checking that flags given explicitly agree.
fn apply_resume(args: &TrainArgs, path: &Path, plan: &mut Plan) -> Result<()> {
    if !path.exists() {
        return Err(Error::io(
            path,
            "read",
            std::io::Error::other(
                "--resume: no such file; give a checkpoint written with --save and --checkpoint-every",
            ),
        ));
    }
    let ckpt = checkpoint::load(path)?;
    if args.hidden.is_some() || args.activation.is_some() || args.learn_prelu {
        checkpoint::check_compatible(path, &ckpt, &plan.config)?;
    }
    let Some(training) = ckpt.training.clone() else {
        return Err(Error::data(
            path,
            "metadata epoch",
            "this checkpoint holds a model but no optimizer state; resume needs one written with --checkpoint-every N",
        ));
    };
    if ckpt.config.input != plan.config.input {
        return Err(Error::data(
            path,
            "metadata widths",
            format!(
                "the checkpoint expects {} input features but the data has {}",
                ckpt.config.input, plan.config.input
            ),
        ));
    }
    plan.config = ckpt.config.clone();
    if args.optimizer.is_none() && args.lr.is_none() && args.weight_decay.is_none() {
        plan.optimizer = training.optimizer;
    }
    plan.normalization = ckpt.normalization.clone();
    plan.resume_params = Some(ckpt.params);
    plan.resume = Some(training);
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

/// Runs the subcommand.
pub fn run(args: &TrainArgs) -> Result<()> {
    let source = Source::from_flags(
        args.dataset.as_deref(),
        args.data.as_ref(),
        args.train.as_ref(),
        args.test.as_ref(),
    )?;
    for (path, option) in [
        (&args.save, "--save"),
        (&args.metrics_json, "--metrics-json"),
        (&args.plot, "--plot"),
        (&args.plot_boundary, "--plot-boundary"),
    ] {
        if let Some(p) = path {
            wgmlp::fsutil::check_writable(p, option)?;
        }
    }
    if args.checkpoint_every.is_some() && args.save.is_none() {
        return Err(Error::config(
            "--checkpoint-every",
            "needs --save FILE.safetensors to know where to write",
        ));
    }
    if args.checkpoint_every == Some(0) {
        return Err(Error::config("--checkpoint-every", "must be at least 1"));
    }
    let choice: DeviceChoice = args.device.parse()?;
    let (mut train, mut test) = source.load(args.seed)?;
    let mut plan = resolve(args, source.is_file_data(), &train)?;
    if let Some(path) = &args.resume {
        apply_resume(args, path, &mut plan)?;
    }
    if let Some(norm) = &plan.normalization {
        norm.apply_to(&mut train)?;
        if let Some(t) = &mut test {
            norm.apply_to(t)?;
        }
    }
    let ctx: Option<GpuContext> = infer::open_device(choice)?;
    let device = match &ctx {
        Some(c) => Device::Gpu(c),
        None => Device::Cpu,
    };
    let options = TrainOptions {
        batch_size: plan.batch_size,
        steps_per_submit: args.steps_per_submit.max(1),
    };
    let mut trainer = match device {
        Device::Gpu(c) => Trainer::gpu(
            c,
            &plan.config,
            plan.optimizer,
            &train,
            test.as_ref(),
            options,
        )?,
        Device::Cpu => Trainer::cpu(&plan.config, plan.optimizer, &train, test.as_ref(), options)?,
    };
    if let (Some(state), Some(params)) = (&plan.resume, &plan.resume_params) {
        trainer.restore(params, &state.state, state.epoch)?;
    }
    eprintln!(
        "training {} on {} ({} train, {} test samples) with {} lr {} batch {} on {}",
        plan.config.describe(),
        source.describe(),
        train.len(),
        test.as_ref().map_or(0, |t| t.len()),
        plan.optimizer.kind,
        plan.optimizer.lr,
        plan.batch_size,
        device.describe()
    );
    if trainer.epoch > 0 {
        eprintln!("resuming after epoch {}", trainer.epoch);
    }
    let start = Instant::now();
    let mut history: Vec<EpochMetrics> = Vec::new();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(plan.epochs as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} epochs {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_position(trainer.epoch as u64);
        bar
    });
    while trainer.epoch < plan.epochs {
        let m = trainer.run_epoch()?;
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
        if let (Some(every), Some(path)) = (args.checkpoint_every, &args.save) {
            if trainer.epoch % every == 0 || trainer.epoch == plan.epochs {
                save(path, &plan, &trainer, true)?;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = start.elapsed().as_secs_f64();
    let last = history.last().cloned();
    let (final_train_loss, final_train_acc) = trainer.evaluate_train_set()?;
    let summary = match last.as_ref().and_then(|m| m.test_accuracy.zip(m.test_loss)) {
        Some((acc, loss)) => format!("test accuracy {acc:.4}, test loss {loss:.4}"),
        None => format!("train accuracy {final_train_acc:.4}"),
    };
    println!(
        "trained {} for {} epochs in {seconds:.1} s on {}: {summary}",
        plan.config.describe(),
        trainer.epoch,
        device.describe()
    );
    if let Some(path) = &args.save {
        save(path, &plan, &trainer, args.checkpoint_every.is_some())?;
        println!("saved {}", path.display());
    }
    if let Some(path) = &args.metrics_json {
        let epochs: Vec<serde_json::Value> = history
            .iter()
            .map(|m| {
                serde_json::json!({
                    "epoch": m.epoch, "train_loss": m.train_loss, "train_accuracy": m.train_accuracy,
                    "test_loss": m.test_loss, "test_accuracy": m.test_accuracy,
                    "seconds": m.seconds, "samples_per_second": m.samples_per_second,
                })
            })
            .collect();
        let c = &plan.config;
        let value = serde_json::json!({
            "adapter": adapter_json(device),
            "config": {
                "widths": c.widths(),
                "activations": c.activations.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "learn_prelu": c.learn_prelu,
                "loss": c.loss.to_string(),
                "init": c.init.to_string(),
                "optimizer": plan.optimizer.kind.to_string(),
                "lr": plan.optimizer.lr,
                "weight_decay": plan.optimizer.weight_decay,
                "batch_size": plan.batch_size,
                "epochs": plan.epochs,
                "seed": c.seed,
                "normalize": if plan.normalization.is_some() { "standard" } else { "none" },
                "data": source.describe(),
            },
            "epochs": epochs,
            "final": {
                "epochs": trainer.epoch,
                "test_accuracy": last.as_ref().and_then(|m| m.test_accuracy),
                "test_loss": last.as_ref().and_then(|m| m.test_loss),
                "train_accuracy": final_train_acc,
                "train_loss": final_train_loss,
                "seconds": seconds,
            },
        });
        write_json(path, &value)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        draw_curves(path, &history)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.plot_boundary {
        draw_boundary(path, device, &plan.config, &trainer.params()?, &train)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn save(path: &Path, plan: &Plan, trainer: &Trainer, with_state: bool) -> Result<()> {
    let training = if with_state {
        Some(TrainingState {
            epoch: trainer.epoch,
            optimizer: plan.optimizer,
            state: trainer.optimizer_state()?,
        })
    } else {
        None
    };
    checkpoint::save(
        path,
        &Checkpoint {
            config: plan.config.clone(),
            params: trainer.params()?,
            normalization: plan.normalization.clone(),
            training,
        },
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
