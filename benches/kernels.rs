//! Criterion benchmarks of single kernels: every activation's forward and backward against
//! the copy shader, and the fused layer forward and backward at the textbook shapes.
//!
//! Each iteration is timed like `wgmlp bench`: GPU timestamps around one compute pass where
//! the adapter has them, wall clock around submit + wait otherwise. Sample counts are small
//! so a full `cargo bench` stays within a few minutes on a software adapter.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgmlp::bench::{Timer, random_vec};
use wgmlp::gpu::elementwise;
use wgmlp::gpu::kernels::{Dispatch, Kernel};
use wgmlp::gpu::layer::{ResidentLayer, Shape};
use wgmlp::rng::Rng;
use wgmlp::{Activation, GpuContext};

/// Floats per activation buffer (16 MiB: larger than most CPU caches).
const LEN: usize = 4 << 20;

fn context() -> GpuContext {
    let ctx = GpuContext::new().unwrap_or_else(|e| {
        panic!(
            "benchmarks need an adapter: {e}\nhint: {}",
            wgmlp::gpu::NO_ADAPTER_HINT
        )
    });
    eprintln!("[adapter] {}", ctx.adapter_summary());
    ctx
}

/// Sums the timer's measurements of `iters` passes, each recorded by `record`.
fn time_dispatches(
    timer: &Timer,
    iters: u64,
    record: impl Fn(&mut wgpu::ComputePass<'_>),
) -> Duration {
    let total: f64 = (0..iters)
        .map(|_| timer.time_pass(&record).expect("timed pass"))
        .sum();
    Duration::from_secs_f64(total)
}

/// Records `d` once.
fn one(d: &Dispatch) -> impl Fn(&mut wgpu::ComputePass<'_>) + '_ {
    move |p| d.record(p)
}

fn activations(c: &mut Criterion) {
    let ctx = context();
    let timer = Timer::new(&ctx);
    let mut rng = Rng::new(1);
    let x = ctx.storage_from("x", &random_vec(&mut rng, LEN, -4.0, 4.0));
    let dy = ctx.storage_from("dy", &random_vec(&mut rng, LEN, -1.0, 1.0));
    let out = ctx.storage_zeroed("out", (LEN * 4) as u64);
    let n = LEN as u64;
    let mut group = c.benchmark_group("activation");
    group.throughput(Throughput::Bytes(8 * n));
    let copy =
        elementwise::prepare(&ctx, Kernel::Copy, Activation::Identity, &[&x], &out, n).unwrap();
    group.bench_function("copy", |b| {
        b.iter_custom(|iters| time_dispatches(&timer, iters, one(&copy)))
    });
    for (name, act) in Activation::all() {
        let f = elementwise::prepare(&ctx, Kernel::ActForward, act, &[&x], &out, n).unwrap();
        let bw = elementwise::prepare(&ctx, Kernel::ActBackward, act, &[&x, &dy], &out, n).unwrap();
        group.throughput(Throughput::Bytes(8 * n));
        group.bench_function(format!("{name}/forward"), |b| {
            b.iter_custom(|iters| time_dispatches(&timer, iters, one(&f)))
        });
        group.throughput(Throughput::Bytes(12 * n));
        group.bench_function(format!("{name}/backward"), |b| {
            b.iter_custom(|iters| time_dispatches(&timer, iters, one(&bw)))
        });
    }
    group.finish();
}

fn layers(c: &mut Criterion) {
    let ctx = context();
    let timer = Timer::new(&ctx);
    let mut group = c.benchmark_group("layer");
    for (m, k, n) in [(256, 784, 256), (256, 256, 10)] {
        let shape = Shape {
            batch: m,
            fan_in: k,
            fan_out: n,
        };
        let mut rng = Rng::new(2);
        let scale = 1.0 / (k as f64).sqrt();
        let layer = ResidentLayer::new(
            &ctx,
            Activation::Relu,
            Activation::Relu,
            shape,
            &random_vec(&mut rng, m * k, -1.0, 1.0),
            &random_vec(&mut rng, k * n, -scale, scale),
            &random_vec(&mut rng, n, -0.1, 0.1),
            true,
        )
        .unwrap();
        layer
            .write_backward_inputs(
                &ctx,
                &random_vec(&mut rng, m * n, -1.0, 1.0),
                &random_vec(&mut rng, m * k, -1.0, 1.0),
            )
            .unwrap();
        // Throughput in flops: 2·m·k·n forward, 4·m·k·n backward (dW and dX).
        let flops = 2 * (m * k * n) as u64;
        group.throughput(Throughput::Elements(flops));
        group.bench_function(format!("{m}x{k}->{n}/forward_fused_relu"), |b| {
            b.iter_custom(|iters| time_dispatches(&timer, iters, |p| layer.record_forward(p)))
        });
        group.throughput(Throughput::Elements(2 * flops));
        group.bench_function(format!("{m}x{k}->{n}/backward"), |b| {
            b.iter_custom(|iters| time_dispatches(&timer, iters, |p| layer.record_backward(p)))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = activations, layers
}
criterion_main!(benches);
