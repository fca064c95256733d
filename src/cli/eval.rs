//! `wgmlp eval` and `wgmlp predict`: use a saved model.

use std::io::Write;
use std::path::PathBuf;

use wgmlp::checkpoint::{self, Checkpoint};
use wgmlp::config::HostUse;
use wgmlp::infer::{self, Device, DeviceChoice};
use wgmlp::{Error, GpuContext, Loss, Result};

use super::common::{Source, adapter_json, open_device, parse_seed, write_json};

/// Options of `wgmlp eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The model (safetensors written by `wgmlp train --save`).
    #[arg(long)]
    pub model: PathBuf,
    /// IDX directory: the test files (t10k-*/test-*) are evaluated.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Labelled CSV to evaluate.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Built-in dataset whose test split is evaluated (with --seed).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Seed of a built-in dataset.
    #[arg(long, default_value = "42", value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Print the per-class confusion matrix.
    #[arg(long)]
    pub confusion: bool,
    /// Write the metrics as JSON.
    #[arg(long)]
    pub metrics_json: Option<PathBuf>,
    /// auto, gpu or cpu.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// Options of `wgmlp predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// The model (safetensors written by `wgmlp train --save`).
    #[arg(long)]
    pub model: PathBuf,
    /// CSV of features (no label column, optional header).
    #[arg(long)]
    pub input: PathBuf,
    /// auto, gpu or cpu.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// Loads the model; the device is opened later, once the input has been checked.
fn load_model(model: &PathBuf) -> Result<Checkpoint> {
    if !model.exists() {
        return Err(Error::io(
            model,
            "read",
            std::io::Error::other("no such file; give a model written by `wgmlp train --save`"),
        ));
    }
    checkpoint::load(model)
}

/// Checks that running `config` on `rows` rows fits the adapter's buffers (inference runs
/// batches of up to 1024 rows on the GPU, 256 on the CPU) and the host memory.
fn check_inference_memory(
    ctx: Option<&GpuContext>,
    config: &wgmlp::MlpConfig,
    rows: usize,
    model: &std::path::Path,
) -> Result<()> {
    let origin = format!("the widths of {}", model.display());
    let (batch, host) = match ctx {
        Some(c) => {
            let limit = c
                .limits
                .max_storage_buffer_binding_size
                .min(c.limits.max_buffer_size);
            let batch = rows.clamp(1, 1024);
            config.check_gpu_buffers(batch, limit, &c.info.name, &origin)?;
            let software = c.is_software();
            (batch, HostUse::Gpu { software })
        }
        None => (rows.clamp(1, 256), HostUse::CpuReference),
    };
    if let Some(available) = wgmlp::config::available_host_memory() {
        config.check_host_memory(batch, host, 0, available, &origin)?;
    }
    Ok(())
}

/// Runs `wgmlp eval`.
pub fn run_eval(args: &EvalArgs) -> Result<()> {
    let source = match (&args.data, &args.test, &args.dataset) {
        (Some(d), None, None) => Source::Idx(d),
        (None, Some(t), None) => Source::Csv(t, None),
        (None, None, Some(n)) => Source::Builtin(n),
        _ => {
            return Err(Error::config(
                "--data/--test/--dataset",
                "give exactly one of --data DIR, --test FILE.csv or --dataset NAME",
            ));
        }
    };
    let choice: DeviceChoice = args.device.parse()?;
    if let Some(path) = &args.metrics_json {
        wgmlp::fsutil::check_writable(path, "--metrics-json")?;
    }
    let ckpt = load_model(&args.model)?;
    let config = &ckpt.config;
    let loaded = source.load_for_model(args.seed, config.input, config.output, &args.model)?;
    loaded.print_notes();
    let mut data = loaded.train;
    if let Some(norm) = &ckpt.normalization {
        norm.apply_to(&mut data)?;
    }
    let ctx: Option<GpuContext> = open_device(choice)?;
    check_inference_memory(ctx.as_ref(), config, data.len(), &args.model)?;
    let device = match &ctx {
        Some(c) => Device::Gpu(c),
        None => Device::Cpu,
    };
    let ev = infer::evaluate(device, config, &ckpt.params, &data)?;
    println!(
        "{}: {} samples, loss {:.4}, accuracy {:.4} ({} on {})",
        source.describe(),
        data.len(),
        ev.loss,
        ev.accuracy,
        config.describe(),
        device.describe()
    );
    if args.confusion {
        println!("confusion matrix (rows: true class, columns: predicted class)");
        let header: Vec<String> = (0..config.output).map(|c| format!("{c:>6}")).collect();
        println!("{:>6}{}", "", header.join(""));
        for (c, row) in ev.confusion.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:>6}")).collect();
            println!("{c:>6}{}", cells.join(""));
        }
    }
    if let Some(path) = &args.metrics_json {
        write_json(
            path,
            &serde_json::json!({
                "adapter": adapter_json(device),
                "model": args.model.display().to_string(),
                "data": source.describe(),
                "samples": data.len(),
                "loss": ev.loss,
                "accuracy": ev.accuracy,
                "confusion": ev.confusion,
            }),
        )?;
    }
    Ok(())
}

/// Runs `wgmlp predict`: `index,class,p0,p1,...` on stdout (probabilities are the softmax of
/// the outputs for cross-entropy models, the raw outputs for MSE models).
pub fn run_predict(args: &PredictArgs) -> Result<()> {
    let choice: DeviceChoice = args.device.parse()?;
    let ckpt = load_model(&args.model)?;
    let config = &ckpt.config;
    let (mut x, n, cols) = wgmlp::data::csv::read_features(&args.input, Some(config.input))?;
    debug_assert_eq!(cols, config.input);
    if let Some(norm) = &ckpt.normalization {
        norm.apply(&mut x)?;
    }
    let ctx: Option<GpuContext> = open_device(choice)?;
    check_inference_memory(ctx.as_ref(), config, n, &args.model)?;
    let device = match &ctx {
        Some(c) => Device::Gpu(c),
        None => Device::Cpu,
    };
    let logits = infer::logits(device, config, &ckpt.params, &x, n)?;
    let probs = match config.loss {
        Loss::CrossEntropy => infer::softmax_rows(&logits, config.output),
        Loss::Mse => logits,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let header: Vec<String> = (0..config.output).map(|c| format!("p{c}")).collect();
    let io = |e| Error::io("stdout", "write", e);
    writeln!(out, "index,class,{}", header.join(",")).map_err(io)?;
    for (i, row) in probs.chunks(config.output).enumerate() {
        let cells: Vec<String> = row.iter().map(|p| format!("{p:.6}")).collect();
        writeln!(
            out,
            "{i},{},{}",
            wgmlp::reference::argmax(row),
            cells.join(",")
        )
        .map_err(io)?;
    }
    out.flush().map_err(io)
}
