//! Learning-rate schedules: the rate written into the GPU optimizer's uniform between epochs
//! gives the same steps as the CPU reference, and a scheduled run resumes bit for bit.

mod cli_util;
mod common;

use cli_util::{assert_refused_early, ok, s, scratch, wgmlp};
use common::{gpu, rel_err_norm};
use wgmlp::data::synthetic;
use wgmlp::schedule::{LrSchedule, ScheduleKind};
use wgmlp::{Control, Device, MlpConfig, OptimizerConfig, OptimizerKind, TrainOptions, Trainer};

/// SGD under cosine with a warmup of 2 over 6 epochs, on the GPU (the rate written into the
/// optimizer uniform, no readback) and the CPU reference: parameters within 1e-4 relative in
/// norm after 6 epochs (f32 summation order only); and the rates are really applied: the
/// parameters differ from those of the constant rate.
#[test]
fn scheduled_rates_reach_the_gpu_optimizer_and_match_the_cpu_reference() {
    let (train, _) = synthetic::builtin("xor", 4).unwrap();
    let config = MlpConfig::new(2, &[16], 2).with_seed(5);
    let opt = OptimizerConfig::new(OptimizerKind::Momentum, 0.3);
    let options = TrainOptions {
        batch_size: 100,
        steps_per_submit: 3,
    };
    let sched = LrSchedule {
        kind: ScheduleKind::Cosine,
        warmup: 2,
        epochs: 6,
    };
    // The trainer applies the schedule before each epoch (TrainerBuilder::lr_schedule).
    let run = |device: Device, sched: Option<LrSchedule>| {
        let mut builder = Trainer::builder(device, &config, opt).options(options.clone());
        if let Some(s) = sched {
            builder = builder.lr_schedule(s);
        }
        let mut t = builder.build(train.clone()).unwrap();
        t.fit(6, |_| Ok(Control::Continue)).unwrap();
        t.params()
            .unwrap()
            .iter()
            .map(|&p| f64::from(p))
            .collect::<Vec<f64>>()
    };
    let gpu = || Device::Gpu(gpu().clone());
    let (g, c) = (run(gpu(), Some(sched)), run(Device::Cpu, Some(sched)));
    let err = rel_err_norm(&g, &c);
    assert!(err < 1e-4, "GPU vs CPU under a schedule: {err:e}");
    let constant = run(gpu(), None);
    assert!(
        rel_err_norm(&g, &constant) > 1e-3,
        "the schedule changed nothing"
    );
}

/// A run with --lr-schedule cosine --warmup 2 stopped after 3 of 8 epochs (with its
/// optimizer state) and resumed ends bit-identical to the uninterrupted run.
#[test]
fn scheduled_run_resumes_bit_exact() {
    let dir = scratch("schedule-resume");
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    let base = [
        "train",
        "--dataset",
        "xor",
        "--hidden",
        "8",
        "--lr-schedule",
        "cosine",
        "--warmup",
        "2",
        "--checkpoint-every",
        "1",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|x| x.to_string()).collect()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(wgmlp(&refs))
    };
    run(with(&["--epochs", "8", "--save", s(&a)]));
    run(with(&["--epochs", "3", "--save", s(&b)]));
    let ckpt = wgmlp::checkpoint::load(&b).unwrap();
    assert_eq!(
        ckpt.lr_schedule,
        Some(LrSchedule {
            kind: ScheduleKind::Cosine,
            warmup: 2,
            epochs: 3
        })
    );
    // The resumed run takes the schedule from the flags (here the same, over 8 epochs).
    run(with(&["--epochs", "8", "--resume", s(&b)]));
    let bits = |p: &std::path::Path| -> Vec<u32> {
        let c = wgmlp::checkpoint::load(p).unwrap();
        c.params.iter().map(|x| x.to_bits()).collect()
    };
    assert_eq!(bits(&a), bits(&b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_schedule_values_are_one_line_errors() {
    let base = ["train", "--dataset", "xor", "--epochs", "10"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    assert_refused_early(
        &with(&["--lr-schedule", "linear"]),
        &["--lr-schedule", "cosine"],
    );
    assert_refused_early(
        &with(&["--lr-schedule", "step:0:0.5"]),
        &["--lr-schedule", "EVERY"],
    );
    assert_refused_early(
        &with(&["--lr-schedule", "step:2:1.5"]),
        &["--lr-schedule", "GAMMA"],
    );
    assert_refused_early(
        &with(&["--warmup", "10"]),
        &["--warmup", "10 warmup epochs of 10"],
    );
}
