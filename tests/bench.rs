//! The measurements behind `wgmlp bench` run end to end at toy sizes and fill every field of
//! the report. Nothing here asserts on how fast anything is: only that each figure exists,
//! is a finite number and counts the runs asked for.

mod common;

use common::gpu;
use wgmlp::Activation;
use wgmlp::bench::{self, BenchOptions, Clock, ModelShape, Report, Summary, Timer, TrainCase};
use wgmlp::gpu::layer::Shape;

fn toy_options() -> BenchOptions {
    BenchOptions {
        quick: true,
        runs: 3,
        // Not a multiple of 4 or of a workgroup: the padded tail is exercised too.
        elementwise_len: 4099,
        layers: vec![(
            Shape {
                batch: 33,
                fan_in: 17,
                fan_out: 9,
            },
            2,
        )],
        layer_activation: Activation::Relu,
        train: vec![TrainCase {
            model: ModelShape::new(12, &[8], 3),
            gpu_samples: 40,
            gpu_epochs: 2,
            cpu_samples: 20,
            cpu_epochs: 2,
        }],
        batch_size: 16,
        tiny_dispatches: 5,
        submits: 3,
        tiny_steps: 2,
    }
}

fn assert_summary(what: &str, s: &Summary, runs: usize) {
    assert_eq!(s.runs, runs, "{what}: runs");
    assert!(
        s.min.is_finite() && s.min <= s.median && s.median <= s.max && s.max.is_finite(),
        "{what}: {s:?}"
    );
}

fn run_all(timer: &Timer) -> Report {
    let ctx = gpu();
    let opts = toy_options();
    let activations = bench::activations(ctx, timer, &opts).unwrap();
    assert_eq!(activations.rows.len(), Activation::all().len());
    for r in &activations.rows {
        assert_summary(&r.name, &r.forward, opts.runs);
        assert_summary(&r.name, &r.backward, opts.runs);
        assert_summary(&r.name, &r.copy_buffer, opts.runs);
    }
    // The section-wide figures hold every interleaved run: one per activation per run.
    let all_runs = opts.runs * activations.rows.len();
    assert_summary("copy_buffer_to_buffer", &activations.copy_buffer, all_runs);
    assert_summary("copy shader", &activations.copy, all_runs);
    let layers = bench::layers(ctx, timer, &opts).unwrap();
    assert_eq!(layers.len(), 1);
    for s in [
        &layers[0].fused,
        &layers[0].unfused,
        &layers[0].backward,
        &layers[0].cpu_sgemm,
    ] {
        assert_summary("layer", s, 2);
    }
    let train = bench::train(ctx, &opts).unwrap();
    assert_eq!(train[0].model, "12-8-3");
    assert_eq!(train[0].steps, (3 * 2, 2 * 2));
    assert_summary("GPU training", &train[0].gpu, 2);
    assert_summary("CPU training", &train[0].cpu, 2);
    let overhead = bench::overhead(ctx, timer, &opts).unwrap();
    assert_summary("dispatch", &overhead.dispatch, opts.runs);
    assert_summary("submit", &overhead.submit, opts.submits);
    assert_summary("tiny step", &overhead.tiny_step, opts.runs);
    assert!(overhead.tiny_step_dispatches > 0);
    Report {
        date: bench::utc_now_iso8601(),
        quick: true,
        clock: timer.clock(),
        activations: Some(activations),
        layers: Some(layers),
        train: Some(train),
        overhead: Some(overhead),
        fused: None,
    }
}

#[test]
fn bench_sections_fill_every_field_with_the_default_clock() {
    let report = run_all(&Timer::new(gpu()));
    let json = report.to_json(serde_json::json!({"name": "test"}), serde_json::json!({}));
    for key in [
        "name",
        "forward_gbps",
        "backward_gbps",
        "copy_buffer_to_buffer_gbps",
        "forward_ratio",
        "backward_ratio",
    ] {
        assert!(
            json["activations"][0].get(key).is_some(),
            "activations.{key}"
        );
    }
    for key in [
        "m",
        "k",
        "n",
        "activation",
        "fused_gflops",
        "unfused_gflops",
        "backward_gflops",
        "cpu_sgemm_gflops",
    ] {
        assert!(json["layers"][0].get(key).is_some(), "layers.{key}");
    }
    for key in [
        "model",
        "batch_size",
        "gpu_samples_per_second",
        "cpu_samples_per_second",
    ] {
        assert!(json["train"][0].get(key).is_some(), "train.{key}");
    }
    for key in [
        "dispatch_us",
        "submit_us",
        "tiny_step_us",
        "dispatch_us_min",
        "submit_us_max",
    ] {
        assert!(json["overhead"].get(key).is_some(), "overhead.{key}");
    }
}

#[test]
fn bench_sections_run_on_the_wall_clock_too() {
    // The path of adapters without TIMESTAMP_QUERY.
    let timer = Timer::with_clock(gpu(), Clock::Wall);
    assert_eq!(timer.clock(), Clock::Wall);
    let report = run_all(&timer);
    assert_eq!(report.clock, Clock::Wall);
}
