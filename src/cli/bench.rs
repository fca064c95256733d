//! `wgmlp bench`: kernel, layer, training and fixed-cost measurements on the chosen adapter,
//! printed as tables and optionally written as JSON.

use std::path::PathBuf;
use std::time::Instant;

use wgmlp::Device;
use wgmlp::Result;
use wgmlp::bench::{self, BenchOptions, Report, Summary, Timer};

use super::common::write_json;
use super::json;

/// Which measurements to run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Every activation's forward and backward against `copy_buffer_to_buffer`.
    Activations,
    /// Fused layer forward and backward against unfused and a CPU sgemm.
    Layers,
    /// Training samples/s on the GPU against the CPU reference.
    Train,
    /// Costs per dispatch, pass, submit, readback and tiny training step.
    Overhead,
    /// The fused MLP kernel against the layered path and the CPU reference (training and
    /// inference samples/s, narrow models).
    Fused,
    /// All of the above.
    All,
}

/// Options of `wgmlp bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum, default_value = "all")]
    pub what: Section,
    /// A shorter run (1M floats instead of 16M, fewer runs and steps, no 1024³ layer).
    /// Without it, hardware GPUs also run a 4096³ layer.
    #[arg(long)]
    pub quick: bool,
    /// Also write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The CPU model and hardware threads of this machine.
fn host_json() -> json::Host {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    json::Host {
        cpu,
        threads,
        os: std::env::consts::OS.to_string(),
    }
}

/// `median [min–max]` with `prec` decimals.
fn fmt(s: &Summary, prec: usize) -> String {
    format!("{:.prec$} [{:.prec$}–{:.prec$}]", s.median, s.min, s.max)
}

/// Runs the chosen measurements and prints a table after each.
pub fn run(args: &BenchArgs) -> Result<()> {
    let started = Instant::now();
    // Minutes of measurements must not be lost to an output path that cannot be written.
    if let Some(path) = &args.json {
        wgmlp::fsutil::check_writable(path, "--json")?;
    }
    let ctx = super::common::open_context()?;
    let opts = match (args.quick, ctx.is_software()) {
        (true, _) => BenchOptions::quick(),
        (false, true) => BenchOptions::full(),
        (false, false) => BenchOptions::full().with_large_layer(),
    };
    let timer = Timer::new(&ctx);
    let host = host_json();
    println!("adapter: {}", ctx.adapter_summary());
    println!("host:    {} ({} threads)", host.cpu, host.threads);
    println!(
        "timing:  {}; each figure is median [min–max] of {} runs after a warm-up{}",
        timer.clock().name(),
        opts.runs,
        if args.quick { " (--quick)" } else { "" }
    );
    let want = |s: Section| args.what == s || args.what == Section::All;
    let mut report = Report {
        date: bench::utc_now_iso8601(),
        quick: args.quick,
        clock: timer.clock(),
        activations: None,
        layers: None,
        train: None,
        overhead: None,
        fused: None,
    };
    if want(Section::Activations) {
        let a = bench::activations(&ctx, &timer, &opts)?;
        print_activations(&a);
        report.activations = Some(a);
    }
    if want(Section::Layers) {
        let l = bench::layers(&ctx, &timer, &opts)?;
        print_layers(&l);
        report.layers = Some(l);
    }
    if want(Section::Train) {
        let t = bench::train(&ctx, &opts)?;
        print_train(&t);
        report.train = Some(t);
    }
    if want(Section::Overhead) {
        let o = bench::overhead(&ctx, &timer, &opts)?;
        print_overhead(&o, timer.clock());
        report.overhead = Some(o);
    }
    if want(Section::Fused) {
        let f = bench::fused(&ctx, args.quick, opts.runs)?;
        print_fused(&f);
        report.fused = Some(f);
    }
    println!("\n(finished in {:.1} s)", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        let adapter = json::Adapter::from(&Device::Gpu(ctx.clone()));
        let report = report.to_json(json::tree(path, &adapter)?, json::tree(path, &host)?);
        write_json(path, &report)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn print_activations(a: &bench::ActivationsReport) {
    println!(
        "\nactivations over {} floats ({} MiB per buffer), GB/s counting bytes read + written",
        a.len,
        (a.len * 4) >> 20
    );
    println!(
        "(forward 8 B/float, backward 12 B/float; ratio = median over copy_buffer_to_buffer's, measured between them)"
    );
    println!(
        "{:<14} {:>24} {:>6} {:>24} {:>6} {:>24}",
        "activation", "forward", "ratio", "backward", "ratio", "copy_buffer_to_buffer"
    );
    for r in &a.rows {
        println!(
            "{:<14} {:>24} {:>6.2} {:>24} {:>6.2} {:>24}",
            r.name,
            fmt(&r.forward, 2),
            r.forward_ratio(),
            fmt(&r.backward, 2),
            r.backward_ratio(),
            fmt(&r.copy_buffer, 2)
        );
    }
    println!(
        "copy shader, all runs:     {} GB/s ({} layout)",
        fmt(&a.copy, 2),
        a.layout
    );
    println!(
        "copy_buffer_to_buffer:     {} GB/s ({})",
        fmt(&a.copy_buffer, 2),
        a.copy_buffer_clock.name()
    );
}

fn print_layers(layers: &[bench::LayerResult]) {
    let act = layers.first().map_or("", |l| l.activation.as_str());
    println!("\nlayers (activation {act}), GFLOP/s: forward 2·m·k·n, backward 4·m·k·n (dW and dX)");
    println!(
        "(unfused = affine with Identity, then an elementwise dispatch in the same pass; CPU = matrixmultiply sgemm, 1 thread)"
    );
    println!(
        "{:<16} {:>7} {:>20} {:>20} {:>7} {:>20} {:>20} {:>8}",
        "m×k→n", "core", "fused fwd", "unfused fwd", "f/unf", "backward", "CPU sgemm", "GPU/CPU"
    );
    for r in layers {
        let s = r.shape;
        println!(
            "{:<16} {:>7} {:>20} {:>20} {:>7.2} {:>20} {:>20} {:>8.3}",
            format!("{}×{}→{}", s.batch, s.fan_in, s.fan_out),
            r.core,
            fmt(&r.fused, 2),
            fmt(&r.unfused, 2),
            r.fused_ratio(),
            fmt(&r.backward, 2),
            fmt(&r.cpu_sgemm, 1),
            r.gpu_cpu_ratio()
        );
    }
}

fn print_fused(rows: &[bench::FusedResult]) {
    println!(
        "\nfused kernel, samples/s (SGD lr 0.01, random data; wall clock of interleaved runs)"
    );
    println!(
        "{:<18} {:>6} {:>24} {:>24} {:>24} {:>8} {:>8} {:>24} {:>24} {:>8} {:>7}",
        "model",
        "batch",
        "fused train",
        "layered train",
        "CPU train",
        "f/layer",
        "f/CPU",
        "fused infer",
        "layered infer",
        "f/layer",
        "1st s"
    );
    for r in rows {
        println!(
            "{:<18} {:>6} {:>24} {:>24} {:>24} {:>8.2} {:>8.2} {:>24} {:>24} {:>8.2} {:>7.1}",
            r.model,
            r.batch_size,
            fmt(&r.fused, 0),
            fmt(&r.layered, 0),
            fmt(&r.cpu, 0),
            r.train_ratio(),
            r.cpu_ratio(),
            fmt(&r.fused_infer, 0),
            fmt(&r.layered_infer, 0),
            r.infer_ratio(),
            r.first_use_seconds
        );
    }
    println!("1st s: the first fused step, its compilation included (Mesa caches it on disk)");
    for r in rows {
        println!(
            "  {:<18} kernel {}, {} dispatches per step (layered {})",
            r.model, r.kernel, r.dispatches.0, r.dispatches.1
        );
    }
}

fn print_train(train: &[bench::TrainResult]) {
    println!("\ntraining, samples/s (SGD lr 0.1, random data, wall clock per epoch)");
    println!(
        "{:<20} {:>6} {:>26} {:>26} {:>8} {:>12}",
        "model", "batch", "GPU engine", "CPU reference", "GPU/CPU", "steps g/c"
    );
    for r in train {
        println!(
            "{:<20} {:>6} {:>26} {:>26} {:>8.2} {:>12}",
            r.model,
            r.batch_size,
            fmt(&r.gpu, 0),
            fmt(&r.cpu, 0),
            r.ratio(),
            format!("{}/{}", r.steps.0, r.steps.1)
        );
    }
}

fn print_overhead(o: &bench::Overhead, clock: bench::Clock) {
    println!("\nfixed costs, µs");
    let rows = [
        (
            format!(
                "per dispatch ({} in one pass, {})",
                o.dispatches_per_pass,
                clock.name()
            ),
            &o.dispatch,
        ),
        (
            "per dispatch, host wall clock (record + submit + wait)".to_string(),
            &o.dispatch_host,
        ),
        (
            "per compute pass (one tiny dispatch each)".to_string(),
            &o.pass,
        ),
        (
            "per submit + wait (one tiny dispatch)".to_string(),
            &o.submit,
        ),
        ("per readback of 16 bytes".to_string(), &o.readback),
        (
            format!(
                "per training step, 2-16-16-2 batch 64, GPU ({} dispatches)",
                o.tiny_step_dispatches
            ),
            &o.tiny_step,
        ),
        (
            "per training step, 2-16-16-2 batch 64, CPU reference".to_string(),
            &o.tiny_step_cpu,
        ),
    ];
    for (what, s) in rows {
        println!("{what:<62} {:>26}", fmt(s, 1));
    }
}
