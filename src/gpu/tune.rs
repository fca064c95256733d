//! Choosing a matmul core for a layer: the policy (`WGMLP_MATMUL`), the cached choice of the
//! [`Autotuner`](crate::gpu::autotune::Autotuner), and on a miss a short timing of every
//! eligible core on the layer's shape.

use std::time::Instant;

use crate::activation::Activation;
use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::layer::{ResidentLayer, Shape};
use crate::gpu::matmul::{MatmulVariant, subgroups_of_8};
use crate::rng::Rng;

/// The core for a `batch × fan_in → fan_out` product whose parameters sit at `w_offset` and
/// `b_offset`.
pub fn choose(
    ctx: &GpuContext,
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    w_offset: usize,
    b_offset: usize,
) -> Result<MatmulVariant> {
    let eligible =
        MatmulVariant::eligible(subgroups_of_8(ctx), fan_in, fan_out, w_offset, b_offset);
    ctx.autotune
        .choose(batch, fan_in, fan_out, &eligible, |candidates| {
            time_variants(ctx, batch, fan_in, fan_out, candidates)
        })
}

/// Times the forward of each of `candidates` on random data of this shape (at most 256 rows),
/// the median of 3 runs after a warm-up, and returns the fastest.
pub fn time_variants(
    ctx: &GpuContext,
    batch: usize,
    k: usize,
    n: usize,
    candidates: &[MatmulVariant],
) -> Result<MatmulVariant> {
    let shape = Shape {
        batch: batch.clamp(1, 256),
        fan_in: k,
        fan_out: n,
    };
    let mut rng = Rng::new(1);
    let mut rand = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| rng.uniform_range(-1.0, 1.0) as f32)
            .collect()
    };
    let (x, w, b) = (rand(shape.batch * k), rand(k * n), rand(n));
    let mut best = (f64::MAX, MatmulVariant::Scalar);
    for &v in candidates {
        let layer = ResidentLayer::with_variant(
            ctx,
            v,
            Activation::Relu,
            Activation::Identity,
            shape,
            &x,
            &w,
            &b,
            true,
        )?;
        let mut times = Vec::new();
        for rep in 0..4 {
            let start = Instant::now();
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                layer.record_forward(&mut pass);
            }
            ctx.queue.submit([enc.finish()]);
            ctx.wait("autotune")?;
            if rep > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        if times[1] < best.0 {
            best = (times[1], v);
        }
    }
    Ok(best.1)
}
