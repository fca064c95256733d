//! `wgmlp eval` and `wgmlp predict`: use a saved model.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use wgmlp::checkpoint::{self, Checkpoint};
use wgmlp::config::HostUse;
use wgmlp::data::csv::{LabelOptions, TargetColumns};
use wgmlp::infer::{self, Predictor};
use wgmlp::{Error, GpuContext, Result, Task};

use super::common::{DeviceChoice, Source, open_device, parse_seed, write_json};
use super::json;

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
    /// Labelled CSV: the label column by header name, 1-based index, or `last` (default: the first).
    #[arg(long, allow_hyphen_values = true)]
    pub label_column: Option<String>,
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
    /// Write the predictions to this CSV file (atomically) instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Classification: write the K most probable classes and their probabilities per row
    /// (`index,class1,p1,…,classK,pK`) instead of every probability.
    #[arg(long, value_parser = super::common::parse_count, allow_negative_numbers = true)]
    pub top_k: Option<usize>,
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
    let regress = config.task == Task::Regress;
    let spec = regress.then_some(TargetColumns::First(config.output));
    let labels = LabelOptions {
        column: args.label_column.clone(),
        classes: (!ckpt.class_names.is_empty()).then(|| ckpt.class_names.clone()),
        ..Default::default()
    };
    let loaded = source.load_for_model(
        args.seed,
        config.input,
        config.output,
        &args.model,
        spec.as_ref(),
        &labels,
    )?;
    loaded.print_notes();
    let mut data = loaded.train;
    if let (Some(d), Source::Csv(..)) = (ckpt.input_divisor, &source) {
        // The model saw its raw inputs divided by d (u8 IDX images ÷ 255); a CSV holds raw values.
        data.features.iter_mut().for_each(|x| *x /= d);
    }
    if !regress && data.is_regression() {
        return Err(Error::config(
            "--dataset",
            format!(
                "{} holds regression targets but {} is a classifier",
                source.describe(),
                args.model.display()
            ),
        ));
    }
    if let Some(norm) = &ckpt.normalization {
        norm.apply_to(&mut data)?;
    }
    let device = open_device(choice)?;
    check_inference_memory(device.context(), config, data.len(), &args.model)?;
    let predictor = Predictor::new(&device, config, &ckpt.params)?;
    if regress {
        let ev = infer::evaluate_regression(&predictor, ckpt.target_normalization.as_ref(), &data)?;
        let m = ev.metrics;
        println!(
            "{}: {} samples, loss {:.4}, MSE {:.4}, MAE {:.4}, R² {:.4} ({} on {})",
            source.describe(),
            data.len(),
            ev.loss,
            m.mse,
            m.mae,
            m.r2,
            config.describe(),
            device.describe()
        );
        if let Some(path) = &args.metrics_json {
            let of = json::EvalOf {
                adapter: (&device).into(),
                model: args.model.display().to_string(),
                data: source.describe(),
                samples: data.len(),
            };
            write_json(
                path,
                &json::EvalRegression {
                    of,
                    task: json::TaskName::Regress,
                    loss: ev.loss,
                    mse: m.mse,
                    mae: m.mae,
                    r2: m.r2,
                },
            )?;
            println!("wrote {}", path.display());
        }
        return Ok(());
    }
    let ev = infer::evaluate(&predictor, &data)?;
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
        let name = |c: usize| class_name(&ckpt.class_names, c);
        let width = (0..config.output)
            .map(|c| name(c).chars().count())
            .max()
            .unwrap_or(1)
            .clamp(5, 16)
            + 1;
        let short = |c: usize| name(c).chars().take(width - 1).collect::<String>();
        let header: Vec<String> = (0..config.output)
            .map(|c| format!("{:>width$}", short(c)))
            .collect();
        let report = infer::class_report(&ev.confusion);
        println!(
            "{:>width$}{}   precision  recall      f1  support",
            "",
            header.join("")
        );
        for (c, row) in ev.confusion.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:>width$}")).collect();
            let r = &report[c];
            println!(
                "{:>width$}{}   {:>9.4} {:>7.4} {:>7.4} {:>8}",
                short(c),
                cells.join(""),
                r.precision,
                r.recall,
                r.f1,
                r.support
            );
        }
    }
    if let Some(path) = &args.metrics_json {
        let of = json::EvalOf {
            adapter: (&device).into(),
            model: args.model.display().to_string(),
            data: source.describe(),
            samples: data.len(),
        };
        let report = infer::class_report(&ev.confusion);
        write_json(
            path,
            &json::EvalClassification {
                of,
                loss: ev.loss,
                accuracy: ev.accuracy,
                confusion: ev.confusion,
                class_names: ckpt.class_names,
                per_class: report.iter().map(json::PerClass::from).collect(),
            },
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Runs `wgmlp predict`: `index,class,p0,p1,...` on stdout (probabilities are the softmax of
/// the outputs for cross-entropy models, the raw outputs for MSE models); for a regression
/// model `index,y0,y1,...` in the targets' own units.
pub fn run_predict(args: &PredictArgs) -> Result<()> {
    let choice: DeviceChoice = args.device.parse()?;
    if args.top_k == Some(0) {
        return Err(Error::config("--top-k", "must be at least 1 (got 0)"));
    }
    if let Some(path) = &args.output {
        wgmlp::fsutil::check_writable(path, "--output")?;
    }
    let ckpt = load_model(&args.model)?;
    let config = &ckpt.config;
    let (mut x, n) = read_inputs(&args.input, &ckpt)?;
    if let Some(norm) = &ckpt.normalization {
        norm.apply(&mut x)?;
    }
    let device = open_device(choice)?;
    check_inference_memory(device.context(), config, n, &args.model)?;
    let predictor = Predictor::new(&device, config, &ckpt.params)?;
    let mut out = String::new();
    if config.task == Task::Regress {
        let pred = infer::predictions(&predictor, ckpt.target_normalization.as_ref(), &x, n)?;
        let header: Vec<String> = (0..config.output).map(|c| format!("y{c}")).collect();
        let _ = writeln!(out, "index,{}", header.join(","));
        for (i, row) in pred.chunks(config.output).enumerate() {
            let cells: Vec<String> = row.iter().map(|y| format!("{y:.6}")).collect();
            let _ = writeln!(out, "{i},{}", cells.join(","));
        }
        return emit(args, &out);
    }
    let probs = predictor.probabilities(&x, n)?;
    let names = &ckpt.class_names;
    match args.top_k {
        Some(k) => {
            let k = k.min(config.output);
            let cols: Vec<String> = (1..=k).map(|j| format!("class{j},p{j}")).collect();
            let _ = writeln!(out, "index,{}", cols.join(","));
            for (i, row) in probs.chunks(config.output).enumerate() {
                let mut order: Vec<usize> = (0..row.len()).collect();
                // Highest first; ties keep the lower class first, as arg-max does.
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                let cells: Vec<String> = order[..k]
                    .iter()
                    .map(|&c| format!("{},{:.6}", csv_cell(&class_name(names, c)), row[c]))
                    .collect();
                let _ = writeln!(out, "{i},{}", cells.join(","));
            }
        }
        None => {
            let header: Vec<String> = (0..config.output)
                .map(|c| match names.get(c) {
                    Some(name) => csv_cell(&format!("p_{name}")),
                    None => format!("p{c}"),
                })
                .collect();
            let _ = writeln!(out, "index,class,{}", header.join(","));
            for (i, row) in probs.chunks(config.output).enumerate() {
                let cells: Vec<String> = row.iter().map(|p| format!("{p:.6}")).collect();
                let class = class_name(names, wgmlp::reference::argmax(row));
                let _ = writeln!(out, "{i},{},{}", csv_cell(&class), cells.join(","));
            }
        }
    }
    emit(args, &out)
}

/// The rows to predict: a CSV of raw features (divided by the model's input divisor, with a
/// note when they look already scaled), or an IDX image file (u8 images are divided by 255
/// by the reader, as in training). Returns (features, rows).
fn read_inputs(path: &std::path::Path, ckpt: &Checkpoint) -> Result<(Vec<f32>, usize)> {
    let k = ckpt.config.input;
    if wgmlp::data::idx::looks_like_idx(path)? {
        let (x, n, cols) = wgmlp::data::idx::read_images(path)?;
        if cols != k {
            return Err(Error::data(
                path,
                "header",
                format!("{cols} values per image but the model expects {k} features"),
            ));
        }
        return Ok((x, n));
    }
    let (mut x, n, _) = wgmlp::data::csv::read_features(path, Some(k))?;
    if let Some(d) = ckpt.input_divisor {
        if d > 1.0 && x.iter().all(|v| (0.0..=1.0).contains(v)) {
            eprintln!(
                "note: every input of {} is within [0, 1], but the model divides raw inputs by {d} \
                 (it was trained on byte images); give the raw values (0 to {d})",
                path.display()
            );
        }
        x.iter_mut().for_each(|v| *v /= d);
    }
    Ok((x, n))
}

/// The name of class `c`: its string label when the model has names, else its index.
fn class_name(names: &[String], c: usize) -> String {
    names.get(c).cloned().unwrap_or_else(|| c.to_string())
}

/// A CSV cell: quoted (with doubled quotes) when it holds a comma, a quote or a line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Writes predictions to `--output` (atomically, then says where) or to stdout.
fn emit(args: &PredictArgs, text: &str) -> Result<()> {
    match &args.output {
        Some(path) => {
            wgmlp::fsutil::write_atomic(path, text.as_bytes())?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
        None => {
            let mut out = std::io::stdout().lock();
            let io = |e| Error::io("stdout", "write", e);
            out.write_all(text.as_bytes()).map_err(io)?;
            out.flush().map_err(io)
        }
    }
}
