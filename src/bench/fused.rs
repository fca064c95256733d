//! `wgmlp bench fused`: the fused kernel against the layered GPU path and the CPU reference,
//! training and inference samples/s for narrow models (the shapes of the fused-kernel issue).
//!
//! Each run times, interleaved so the ratios see the same machine load: `steps` fused training
//! steps (gather, fused, reduce, update, pack) in one submit, as many layered steps (gather,
//! forwards, loss, backwards, update), the CPU reference's steps, then the same for inference
//! (gather, forward, loss and metrics; the CPU's forward). The batch stays on the GPU as a
//! resident dataset; every figure is a median over the runs. The first fused step of a shape
//! compiles its kernel; that time is reported on its own.

use std::time::Instant;

use super::{ModelShape, Summary, random_vec};
use crate::config::MlpConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::fused::FusedMlp;
use crate::gpu::{GpuContext, GpuDataset, GpuMlp};
use crate::optim::OptimizerConfig;
use crate::reference::CpuMlp;
use crate::rng::Rng;
use crate::train::epoch_permutation;

/// One model at one batch size.
#[derive(Clone, Debug)]
pub struct FusedCase {
    /// The model.
    pub model: ModelShape,
    /// Samples per step.
    pub batch_size: usize,
}

/// The cases of the full run (`quick`: the two small models only).
pub fn fused_cases(quick: bool) -> Vec<FusedCase> {
    let case = |input, hidden: &[usize], output, batch_size| FusedCase {
        model: ModelShape::new(input, hidden, output),
        batch_size,
    };
    if quick {
        return vec![case(2, &[16, 16], 2, 64), case(2, &[64, 64], 3, 1024)];
    }
    vec![
        case(2, &[16, 16], 2, 64),
        case(2, &[16, 16], 2, 1024),
        case(2, &[64, 64], 3, 64),
        case(2, &[64, 64], 3, 1024),
        case(32, &[64, 64, 64, 64], 3, 16_384),
        case(784, &[128], 10, 256),
    ]
}

/// Samples/s of the three engines on one case.
#[derive(Clone, Debug)]
pub struct FusedResult {
    /// `2-64-64-3`.
    pub model: String,
    /// Samples per step.
    pub batch_size: usize,
    /// Fused training.
    pub fused: Summary,
    /// Layered GPU training.
    pub layered: Summary,
    /// CPU reference training.
    pub cpu: Summary,
    /// Fused inference (forward, loss, metrics).
    pub fused_infer: Summary,
    /// Layered inference (gather, forwards, loss, metrics).
    pub layered_infer: Summary,
    /// CPU reference forward.
    pub cpu_infer: Summary,
    /// Seconds of the first fused step (pipeline compilation included).
    pub first_use_seconds: f64,
    /// The kernel shape (`FusedShape::describe`).
    pub kernel: String,
    /// Compute dispatches per training step: (fused, layered).
    pub dispatches: (usize, usize),
}

impl FusedResult {
    /// Fused over layered training samples/s (medians).
    pub fn train_ratio(&self) -> f64 {
        self.fused.median / self.layered.median
    }
    /// Fused over CPU training samples/s (medians).
    pub fn cpu_ratio(&self) -> f64 {
        self.fused.median / self.cpu.median
    }
    /// Fused over layered inference samples/s (medians).
    pub fn infer_ratio(&self) -> f64 {
        self.fused_infer.median / self.layered_infer.median
    }
}

fn summary(samples: &[f64], what: &str) -> Result<Summary> {
    Summary::of(samples).ok_or_else(|| Error::gpu("benchmark", format!("no valid run of {what}")))
}

/// Seconds of `f()`.
fn seconds(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

/// Measures one case over `runs` interleaved runs.
pub fn fused_case(ctx: &GpuContext, case: &FusedCase, runs: usize) -> Result<FusedResult> {
    let m = &case.model;
    let b = case.batch_size;
    let config = MlpConfig::new(m.input, &m.hidden, m.output);
    let opt = OptimizerConfig::sgd(0.01);
    let mut rng = Rng::new(11);
    let x = random_vec(&mut rng, b * m.input, -0.5, 0.5);
    let labels: Vec<u32> = (0..b).map(|_| rng.below(m.output as u64) as u32).collect();
    let steps = (131_072 / b).clamp(2, 32);
    let cpu_steps = (16_384 / b).clamp(1, 16);

    let data = Dataset::new("bench", x.clone(), labels.clone(), m.input, m.output)?;
    let resident = GpuDataset::upload(ctx, &data)?;
    resident.set_permutation(ctx, &epoch_permutation(1, 1, b))?;
    let mut fused = FusedMlp::new(ctx, &config, opt, b)?;
    let run_fused = |f: &mut FusedMlp, n: usize, infer: bool| -> Result<()> {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        for _ in 0..n {
            if infer {
                f.encode_eval_batch(&mut enc, &resident, 0, b)?;
            } else {
                f.encode_train_step(&mut enc, &resident, 0, b)?;
            }
        }
        ctx.queue.submit([enc.finish()]);
        ctx.wait("fused benchmark")
    };
    let first_use_seconds = seconds(|| run_fused(&mut fused, 1, false))?;
    run_fused(&mut fused, 1, true)?;

    let mut layered = GpuMlp::new(ctx, &config, opt, b)?;
    let run_layered = |g: &mut GpuMlp, n: usize, infer: bool| -> Result<()> {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        for _ in 0..n {
            if infer {
                g.encode_eval_batch(&mut enc, &resident, 0, b)?;
            } else {
                g.encode_train_step(&mut enc, &resident, 0, b)?;
            }
        }
        ctx.queue.submit([enc.finish()]);
        ctx.wait("layered benchmark")
    };
    run_layered(&mut layered, 1, false)?;
    run_layered(&mut layered, 1, true)?;
    let mut cpu = CpuMlp::<f32>::new(&config, opt)?;

    let rate = |steps: usize, s: f64| (steps * b) as f64 / s;
    let mut t: [Vec<f64>; 6] = Default::default();
    for _ in 0..runs.max(1) {
        t[0].push(rate(
            steps,
            seconds(|| run_fused(&mut fused, steps, false))?,
        ));
        t[1].push(rate(
            steps,
            seconds(|| run_layered(&mut layered, steps, false))?,
        ));
        t[2].push(rate(
            cpu_steps,
            seconds(|| {
                for _ in 0..cpu_steps {
                    cpu.train_step(&x, crate::Target::Labels(&labels), b)?;
                }
                Ok(())
            })?,
        ));
        t[3].push(rate(steps, seconds(|| run_fused(&mut fused, steps, true))?));
        t[4].push(rate(
            steps,
            seconds(|| run_layered(&mut layered, steps, true))?,
        ));
        t[5].push(rate(
            cpu_steps,
            seconds(|| {
                for _ in 0..cpu_steps {
                    cpu.forward(&x, b)?;
                }
                Ok(())
            })?,
        ));
    }
    Ok(FusedResult {
        model: m.name(),
        batch_size: b,
        fused: summary(&t[0], "fused training")?,
        layered: summary(&t[1], "layered training")?,
        cpu: summary(&t[2], "CPU training")?,
        fused_infer: summary(&t[3], "fused inference")?,
        layered_infer: summary(&t[4], "layered inference")?,
        cpu_infer: summary(&t[5], "CPU inference")?,
        first_use_seconds,
        kernel: fused.shape().describe(),
        dispatches: (
            fused.dispatches_per_step(resident.chunk_count()),
            layered.dispatches_per_step(resident.chunk_count()),
        ),
    })
}

/// Every case of the full (or quick) run.
pub fn fused(ctx: &GpuContext, quick: bool, runs: usize) -> Result<Vec<FusedResult>> {
    fused_cases(quick)
        .iter()
        .map(|c| fused_case(ctx, c, runs))
        .collect()
}
