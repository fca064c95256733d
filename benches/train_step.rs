//! Criterion benchmark of one training step of 784-256-10 (batch 256, SGD lr 0.1) on the GPU
//! engine: with the batch resident on the GPU (gather by index, as `Trainer` does), and with
//! the batch uploaded from the host and the loss read back (`GpuMlp::train_step`).
//! Wall clock per step, submit and wait included.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgmlp::bench::random_dataset;
use wgmlp::rng::Rng;
use wgmlp::{GpuContext, GpuDataset, GpuMlp, MlpConfig, OptimizerConfig};

const BATCH: usize = 256;

fn train_step(c: &mut Criterion) {
    let ctx = GpuContext::new().unwrap_or_else(|e| {
        panic!(
            "benchmarks need an adapter: {e}\nhint: {}",
            wgmlp::gpu::NO_ADAPTER_HINT
        )
    });
    eprintln!("[adapter] {}", ctx.adapter_summary());
    let config = MlpConfig::new(784, &[256], 10);
    let mut rng = Rng::new(5);
    let data = random_dataset(&mut rng, 16 * BATCH, 784, 10).unwrap();
    let mut mlp = GpuMlp::new(&ctx, &config, OptimizerConfig::sgd(0.1), BATCH).unwrap();
    let resident = GpuDataset::upload(&ctx, &data).unwrap();
    resident
        .set_permutation(&ctx, &rng.permutation(data.len()))
        .unwrap();
    let steps = data.len() / BATCH;

    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut step = 0usize;
    group.bench_function("784-256-10/resident", |b| {
        b.iter(|| {
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            mlp.encode_train_step(&mut enc, &resident, (step % steps) * BATCH, BATCH)
                .unwrap();
            ctx.queue.submit([enc.finish()]);
            ctx.wait("train step").unwrap();
            step += 1;
        })
    });
    let d = data.n_features;
    group.bench_function("784-256-10/host_batch", |b| {
        b.iter(|| {
            let s = step % steps;
            let x = &data.features[s * BATCH * d..(s + 1) * BATCH * d];
            let y = &data.labels[s * BATCH..(s + 1) * BATCH];
            mlp.train_step(x, wgmlp::Target::Labels(y), BATCH).unwrap();
            step += 1;
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = train_step
}
criterion_main!(benches);
