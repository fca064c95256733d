//! The measurements behind `wgmlp bench`: activation bandwidth against the copy shader, fused
//! layer throughput against an unfused layer and a CPU sgemm, training throughput against the
//! CPU reference, and the fixed costs of a dispatch, a submit and a tiny training step.
//!
//! GPU work is timed with timestamp queries around each compute pass where the adapter has
//! `TIMESTAMP_QUERY`, else with the wall clock around submit + wait ([`Timer`]). Every kernel
//! runs once untimed first (the first dispatch compiles the shader), every input is random,
//! and each figure is the median of several runs with their min and max ([`Summary`]).
//! Kernels that are compared run interleaved, so a ratio sees the same machine load.
//! Nothing here asserts on timings.

mod fused;
mod options;
mod report;
mod stats;
mod timer;

use std::time::Instant;

use crate::activation::Activation;
use crate::config::MlpConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::gpu::elementwise;
use crate::gpu::kernels::Kernel;
use crate::gpu::layer::{ResidentLayer, Shape};
use crate::model::Device;
use crate::optim::OptimizerConfig;
use crate::rng::Rng;
use crate::train::{TrainOptions, Trainer};

pub use fused::{FusedCase, FusedResult, fused, fused_case, fused_cases};
pub use options::{BenchOptions, ModelShape, TrainCase};
pub use report::{Report, utc_now_iso8601};
pub use stats::{Summary, gbps, gflops, ratio};
pub use timer::{Clock, Timer, interval_seconds};

/// `len` random floats uniform in [lo, hi).
pub fn random_vec(rng: &mut Rng, len: usize, lo: f64, hi: f64) -> Vec<f32> {
    (0..len).map(|_| rng.uniform_range(lo, hi) as f32).collect()
}

/// One activation's forward and backward bandwidth against the adapter's own
/// `copy_buffer_to_buffer` (the bar a streaming kernel is measured against).
#[derive(Clone, Debug)]
pub struct ActivationResult {
    /// The activation as written on the command line (`swish:1`).
    pub name: String,
    /// Forward GB/s (8 bytes per float: read x, write y).
    pub forward: Summary,
    /// Backward GB/s (12 bytes per float: read z and dy, write dx).
    pub backward: Summary,
    /// `copy_buffer_to_buffer` GB/s (8 bytes per float), measured between this activation's
    /// runs.
    pub copy_buffer: Summary,
}

impl ActivationResult {
    /// Forward median over the median of the `copy_buffer_to_buffer` runs between its runs.
    pub fn forward_ratio(&self) -> f64 {
        ratio(self.forward.median, self.copy_buffer.median)
    }
    /// Backward median over that `copy_buffer_to_buffer` median.
    pub fn backward_ratio(&self) -> f64 {
        ratio(self.backward.median, self.copy_buffer.median)
    }
}

/// The activations section.
#[derive(Clone, Debug)]
pub struct ActivationsReport {
    /// Floats per buffer.
    pub len: usize,
    /// Every copy-shader run of the section, GB/s.
    pub copy: Summary,
    /// Every `copy_buffer_to_buffer` run of the section, GB/s (8 bytes per float).
    pub copy_buffer: Summary,
    /// The streaming layout the kernels ran in on this adapter.
    pub layout: &'static str,
    /// The clock `copy_buffer` was timed with.
    pub copy_buffer_clock: Clock,
    /// One row per activation.
    pub rows: Vec<ActivationResult>,
}

fn summary(samples: &[f64], what: &str) -> Result<Summary> {
    Summary::of(samples).ok_or_else(|| Error::gpu("benchmark", format!("no valid run of {what}")))
}

/// Forward and backward of every activation over `opts.elementwise_len` random floats,
/// interleaved with `copy_buffer_to_buffer` (the ratios' base) and the copy shader.
pub fn activations(
    ctx: &GpuContext,
    timer: &Timer,
    opts: &BenchOptions,
) -> Result<ActivationsReport> {
    let len = opts.elementwise_len;
    let mut rng = Rng::new(1);
    let x = ctx.storage_from("bench.x", &random_vec(&mut rng, len, -4.0, 4.0));
    let dy = ctx.storage_from("bench.dy", &random_vec(&mut rng, len, -1.0, 1.0));
    let out = ctx.storage_zeroed("bench.out", (len * 4) as u64);
    let n = len as u64;
    let copy = elementwise::prepare(ctx, Kernel::Copy, Activation::Identity, &[&x], &out, n)?;
    let acts = Activation::all();
    let mut kernels = Vec::new();
    for (name, act) in &acts {
        let f = elementwise::prepare(ctx, Kernel::ActForward, *act, &[&x], &out, n)?;
        let b = elementwise::prepare(ctx, Kernel::ActBackward, *act, &[&x, &dy], &out, n)?;
        kernels.push((name.to_string(), f, b));
    }
    let bytes = (len * 4) as u64;
    let copy_buffer =
        |enc: &mut wgpu::CommandEncoder| enc.copy_buffer_to_buffer(&x, 0, &out, 0, bytes);
    // Warm-up: the first dispatch of each pipeline compiles it.
    timer.time_pass(|p| copy.record(p))?;
    timer.time_encoder(copy_buffer)?;
    for (_, f, b) in &kernels {
        timer.time_pass(|p| f.record(p))?;
        timer.time_pass(|p| b.record(p))?;
    }
    let mut samples = vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; kernels.len()];
    for _ in 0..opts.runs {
        for ((_, f, b), s) in kernels.iter().zip(samples.iter_mut()) {
            s[0].push(timer.time_encoder(copy_buffer)?);
            s[1].push(timer.time_pass(|p| f.record(p))?);
            s[2].push(timer.time_pass(|p| b.record(p))?);
            s[3].push(timer.time_pass(|p| copy.record(p))?);
        }
    }
    let rate = |bytes_per_float: f64| move |s: f64| gbps(bytes_per_float * len as f64, s);
    let mut rows = Vec::new();
    for ((name, _, _), s) in kernels.iter().zip(&samples) {
        rows.push(ActivationResult {
            name: name.clone(),
            copy_buffer: summary(
                &s[0].iter().map(|&t| rate(8.0)(t)).collect::<Vec<_>>(),
                "copy_buffer_to_buffer",
            )?,
            forward: summary(
                &s[1].iter().map(|&t| rate(8.0)(t)).collect::<Vec<_>>(),
                name,
            )?,
            backward: summary(
                &s[2].iter().map(|&t| rate(12.0)(t)).collect::<Vec<_>>(),
                name,
            )?,
        });
    }
    let all = |i: usize| -> Vec<f64> {
        samples
            .iter()
            .flat_map(|s| s[i].iter().map(|&t| rate(8.0)(t)))
            .collect()
    };
    Ok(ActivationsReport {
        len,
        copy: summary(&all(3), "copy")?,
        copy_buffer: summary(&all(0), "copy_buffer_to_buffer")?,
        layout: elementwise::layout_for(ctx)?.name(),
        copy_buffer_clock: timer.encoder_clock(),
        rows,
    })
}

/// One layer shape: fused and unfused forward, backward, and a CPU sgemm.
#[derive(Clone, Debug)]
pub struct LayerResult {
    /// The shape (m = batch, k = fan_in, n = fan_out).
    pub shape: Shape,
    /// The activation.
    pub activation: String,
    /// The matmul core the autotuner chose for this shape (the one a model would use).
    pub core: String,
    /// Fused forward GFLOP/s (2·m·k·n): Z = X·W + b and Y = act(Z) in one dispatch, Z kept.
    pub fused: Summary,
    /// The same forward unfused: the affine kernel with Identity, then an elementwise dispatch.
    pub unfused: Summary,
    /// Backward GFLOP/s (dW = Xᵀ·dZ and dX = dZ·Wᵀ: 4·m·k·n).
    pub backward: Summary,
    /// `matrixmultiply::sgemm` of the same m×k by k×n product on one CPU thread.
    pub cpu_sgemm: Summary,
}

impl LayerResult {
    /// Fused over unfused (medians).
    pub fn fused_ratio(&self) -> f64 {
        ratio(self.fused.median, self.unfused.median)
    }
    /// The best GPU matmul figure (fused, unfused or backward).
    pub fn best_gpu(&self) -> f64 {
        self.fused
            .median
            .max(self.unfused.median)
            .max(self.backward.median)
    }
    /// The best GPU figure over the CPU sgemm's.
    pub fn gpu_cpu_ratio(&self) -> f64 {
        ratio(self.best_gpu(), self.cpu_sgemm.median)
    }
}

/// Seconds of one single-threaded `matrixmultiply::sgemm` C = A·B.
fn cpu_sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) -> f64 {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let start = Instant::now();
    // SAFETY: A is m×k, B is k×n and C is m×n, row-major (row stride = columns, column
    // stride 1), and the asserts above guarantee the slices hold them; C does not alias A or B.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    start.elapsed().as_secs_f64()
}

/// Each shape of `opts.layers`: fused forward, unfused forward, backward and CPU sgemm,
/// interleaved run by run.
pub fn layers(ctx: &GpuContext, timer: &Timer, opts: &BenchOptions) -> Result<Vec<LayerResult>> {
    let act = opts.layer_activation;
    let mut out = Vec::new();
    for (i, &(shape, runs)) in opts.layers.iter().enumerate() {
        let Shape {
            batch: m,
            fan_in: k,
            fan_out: n,
        } = shape;
        // A model pads its output layer to a multiple of 4 columns (src/gpu/mlp/layout.rs) so
        // the vec4 cores can run it; the bench does the same and counts only the real columns.
        let n_dev = n.div_ceil(4) * 4;
        let mut rng = Rng::new(100 + i as u64);
        let scale = 1.0 / (k as f64).sqrt();
        let x = random_vec(&mut rng, m * k, -1.0, 1.0);
        let w_real = random_vec(&mut rng, k * n, -scale, scale);
        let mut w = vec![0.0; k * n_dev];
        for (row, src) in w.chunks_mut(n_dev).zip(w_real.chunks(n)) {
            row[..n].copy_from_slice(src);
        }
        let mut b = random_vec(&mut rng, n, -0.1, 0.1);
        b.resize(n_dev, 0.0);
        let shape = Shape {
            fan_out: n_dev,
            ..shape
        };
        let n = n_dev;
        let core = crate::gpu::tune::choose(ctx, m, k, n, 0, k * n)?;
        let fused = ResidentLayer::with_variant(ctx, core, act, act, shape, &x, &w, &b, true)?;
        fused.write_backward_inputs(
            ctx,
            &random_vec(&mut rng, m * n, -1.0, 1.0),
            &random_vec(&mut rng, m * k, -1.0, 1.0),
        )?;
        // Unfused: the affine kernel writes Z (as Y, with Identity), then a separate
        // elementwise dispatch reads Z and writes act(Z).
        let affine = ResidentLayer::with_variant(
            ctx,
            core,
            Activation::Identity,
            act,
            shape,
            &x,
            &w,
            &b,
            false,
        )?;
        let act_pass = elementwise::prepare(
            ctx,
            Kernel::ActForward,
            act,
            &[affine.y()],
            affine.z(),
            (m * n) as u64,
        )?;
        let real_n = opts.layers[i].0.fan_out;
        let mut c = vec![0f32; m * real_n];
        let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        // Run 0 of the first shape is the warm-up (shader compilation, first touch of the
        // buffers); later shapes reuse the same pipelines and need none.
        let first = usize::from(i == 0);
        for run in 0..runs + first {
            let fused_s = timer.time_pass(|p| fused.record_forward(p))?;
            let unfused_s = timer.time_pass(|p| {
                affine.record_forward(p);
                act_pass.record(p);
            })?;
            let backward_s = timer.time_pass(|p| fused.record_backward(p))?;
            let cpu_s = cpu_sgemm(m, k, real_n, &x, &w_real, &mut c);
            if run >= first {
                for (v, s) in t.iter_mut().zip([fused_s, unfused_s, backward_s, cpu_s]) {
                    v.push(s);
                }
            }
        }
        let flops = |products: usize| move |s: f64| gflops(m, k, real_n, products, s);
        let sum = |v: &Vec<f64>, products: usize, what: &str| {
            summary(
                &v.iter().map(|&s| flops(products)(s)).collect::<Vec<_>>(),
                what,
            )
        };
        out.push(LayerResult {
            shape: opts.layers[i].0,
            activation: act.to_string(),
            core: if n == real_n {
                core.name().to_string()
            } else {
                format!("{} (n padded to {n})", core.name())
            },
            fused: sum(&t[0], 1, "fused forward")?,
            unfused: sum(&t[1], 1, "unfused forward")?,
            backward: sum(&t[2], 2, "backward")?,
            cpu_sgemm: sum(&t[3], 1, "CPU sgemm")?,
        });
    }
    Ok(out)
}

/// Training throughput of one model on the GPU and on the CPU reference.
#[derive(Clone, Debug)]
pub struct TrainResult {
    /// `784-256-10`.
    pub model: String,
    /// Samples per step.
    pub batch_size: usize,
    /// GPU samples per second, one value per epoch (wall clock of `Trainer::run_epoch`).
    pub gpu: Summary,
    /// CPU reference samples per second.
    pub cpu: Summary,
    /// Steps timed on the GPU and on the CPU.
    pub steps: (usize, usize),
}

impl TrainResult {
    /// GPU over CPU samples per second (medians).
    pub fn ratio(&self) -> f64 {
        ratio(self.gpu.median, self.cpu.median)
    }
}

/// `n` random samples: features uniform in [-0.5, 0.5) (the scale of normalised pixels, so
/// SGD at lr 0.1 stays finite) and uniform random labels.
pub fn random_dataset(rng: &mut Rng, n: usize, features: usize, classes: usize) -> Result<Dataset> {
    let x = random_vec(rng, n * features, -0.5, 0.5);
    let labels = (0..n).map(|_| rng.below(classes as u64) as u32).collect();
    Dataset::new("random", x, labels, features, classes)
}

/// Samples per second of each epoch after `warmup` untimed epochs.
fn epochs_per_second(trainer: &mut Trainer, warmup: usize, epochs: usize) -> Result<Vec<f64>> {
    for _ in 0..warmup {
        trainer.run_epoch()?;
    }
    (0..epochs)
        .map(|_| trainer.run_epoch().map(|m| m.samples_per_second))
        .collect()
}

/// One model: samples/s on the GPU engine and on the CPU reference (SGD, lr 0.1).
pub fn train_case(ctx: &GpuContext, case: &TrainCase, batch_size: usize) -> Result<TrainResult> {
    let m = &case.model;
    let config = MlpConfig::new(m.input, &m.hidden, m.output);
    let options = TrainOptions {
        batch_size,
        ..TrainOptions::default()
    };
    let mut rng = Rng::new(7);
    let data = random_dataset(&mut rng, case.gpu_samples, m.input, m.output)?;
    let opt = OptimizerConfig::sgd(0.1);
    let mut gpu = Trainer::builder(Device::Gpu(ctx.clone()), &config, opt)
        .options(options.clone())
        .build(data.clone())?;
    let gpu_sps = epochs_per_second(&mut gpu, 1, case.gpu_epochs)?;
    let cpu_data = data.subset(&(0..case.cpu_samples.min(data.len())).collect::<Vec<_>>());
    let mut cpu = Trainer::builder(Device::Cpu, &config, opt)
        .options(options)
        .build(cpu_data)?;
    let cpu_sps = epochs_per_second(&mut cpu, 0, case.cpu_epochs)?;
    Ok(TrainResult {
        model: m.name(),
        batch_size,
        gpu: summary(&gpu_sps, "GPU training")?,
        cpu: summary(&cpu_sps, "CPU training")?,
        steps: (
            gpu.steps_per_epoch() * case.gpu_epochs,
            cpu.steps_per_epoch() * case.cpu_epochs,
        ),
    })
}

/// Every case of `opts.train`.
pub fn train(ctx: &GpuContext, opts: &BenchOptions) -> Result<Vec<TrainResult>> {
    opts.train
        .iter()
        .map(|c| train_case(ctx, c, opts.batch_size))
        .collect()
}

/// Fixed costs on this adapter, in microseconds.
#[derive(Clone, Debug)]
pub struct Overhead {
    /// Per dispatch, many tiny dispatches in one pass, on the [`Timer`]'s clock.
    pub dispatch: Summary,
    /// Per dispatch on the host's wall clock, recording, submit and wait included.
    pub dispatch_host: Summary,
    /// Per compute pass (one tiny dispatch each), wall clock.
    pub pass: Summary,
    /// Per submit + wait of one tiny dispatch, wall clock.
    pub submit: Summary,
    /// Per readback of 4 floats (`GpuContext::read`), wall clock.
    pub readback: Summary,
    /// Per training step of 2-16-16-2 at batch 64 on the GPU engine, wall clock.
    pub tiny_step: Summary,
    /// Compute dispatches in that step.
    pub tiny_step_dispatches: usize,
    /// Per training step of the same model on the CPU reference.
    pub tiny_step_cpu: Summary,
    /// Tiny dispatches per timed pass.
    pub dispatches_per_pass: usize,
}

/// Costs per dispatch, pass, submit and readback, and per step of a tiny MLP.
pub fn overhead(ctx: &GpuContext, timer: &Timer, opts: &BenchOptions) -> Result<Overhead> {
    let us = 1e6;
    let mut rng = Rng::new(3);
    let src = ctx.storage_from("bench.tiny", &random_vec(&mut rng, 4, -1.0, 1.0));
    let dst = ctx.storage_zeroed("bench.tiny_out", 16);
    let tiny = elementwise::prepare(ctx, Kernel::Copy, Activation::Identity, &[&src], &dst, 4)?;
    let n = opts.tiny_dispatches.max(1);
    let many = |p: &mut wgpu::ComputePass<'_>| {
        for _ in 0..n {
            tiny.record(p);
        }
    };
    let wall = Timer::with_clock(ctx, Clock::Wall);
    timer.time_pass(many)?;
    let (mut dispatch, mut dispatch_host, mut pass, mut submit, mut readback) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..opts.runs {
        dispatch.push(timer.time_pass(many)? / n as f64 * us);
        let start = Instant::now();
        wall.time_pass(many)?;
        dispatch_host.push(start.elapsed().as_secs_f64() / n as f64 * us);
        let passes = (n / 4).max(1);
        let t = wall.time_submit(|enc| {
            for _ in 0..passes {
                let mut p = enc.begin_compute_pass(&Default::default());
                tiny.record(&mut p);
            }
        })?;
        pass.push(t / passes as f64 * us);
    }
    for _ in 0..opts.submits {
        submit.push(wall.time_pass(|p| tiny.record(p))? * us);
        let start = Instant::now();
        ctx.read::<f32>(&dst, 4)?;
        readback.push(start.elapsed().as_secs_f64() * us);
    }
    // The tiny MLP: fixed costs dominate its step.
    let config = MlpConfig::new(2, &[16, 16], 2);
    let data = random_dataset(&mut rng, 64 * opts.tiny_steps.max(1), 2, 2)?;
    let options = TrainOptions {
        batch_size: 64,
        ..TrainOptions::default()
    };
    let opt = OptimizerConfig::sgd(0.1);
    let mut gpu = Trainer::builder(Device::Gpu(ctx.clone()), &config, opt)
        .options(options.clone())
        .build(data.clone())?;
    let steps = gpu.steps_per_epoch() as f64;
    let step_us = |sps: &[f64]| -> Vec<f64> {
        sps.iter()
            .map(|s| data.len() as f64 / s / steps * us)
            .collect()
    };
    let tiny_step = step_us(&epochs_per_second(&mut gpu, 1, opts.runs)?);
    let tiny_step_dispatches = crate::gpu::GpuMlp::new(ctx, &config, opt, 64)?
        .dispatches_per_step(crate::gpu::GpuDataset::upload(ctx, &data)?.chunk_count());
    let mut cpu = Trainer::builder(Device::Cpu, &config, opt)
        .options(options)
        .build(data.clone())?;
    let tiny_step_cpu = step_us(&epochs_per_second(&mut cpu, 1, opts.runs)?);
    Ok(Overhead {
        dispatch: summary(&dispatch, "dispatch")?,
        dispatch_host: summary(&dispatch_host, "dispatch (host)")?,
        pass: summary(&pass, "pass")?,
        submit: summary(&submit, "submit")?,
        readback: summary(&readback, "readback")?,
        tiny_step: summary(&tiny_step, "tiny step")?,
        tiny_step_dispatches,
        tiny_step_cpu: summary(&tiny_step_cpu, "tiny step (CPU)")?,
        dispatches_per_pass: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_dataset_has_no_zeros_and_valid_labels() {
        let d = random_dataset(&mut Rng::new(1), 100, 7, 3).unwrap();
        assert_eq!((d.len(), d.n_features), (100, 7));
        assert!(
            d.features
                .iter()
                .all(|&v| v != 0.0 && (-0.5..0.5).contains(&v))
        );
        assert!(d.labels.iter().all(|&l| l < 3));
    }
}
