//! Regression: the loss kernel's MSE, L1 and Huber (values, gradients, error sums) against the
//! CPU reference, hand-derived gradients against finite differences, and whole training runs
//! on the GPU and the CPU reference.

mod common;

use common::{assert_close, gpu, rel_err_norm};
use wgmlp::data::synthetic;
use wgmlp::reference::{CpuMlp, Target, regression_loss_and_grad};
use wgmlp::rng::Rng;
use wgmlp::{
    Activation, GpuMlp, Loss, MlpConfig, Normalization, OptimizerConfig, Task, TrainOptions,
};

const LOSSES: [Loss; 3] = [Loss::Mse, Loss::L1, Loss::Huber];

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn normals(rng: &mut Rng, n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|_| (rng.normal() * scale) as f32).collect()
}

/// Hand-derived loss values: with d = output − target, MSE d², L1 |d|, Huber d²/2 inside
/// |d| ≤ 1 and |d| − 1/2 outside, each averaged over batch × outputs.
#[test]
fn regression_losses_match_hand_computed_values() {
    // One row, two outputs: d = (0.5, −3).
    let logits = [1.5f64, -1.0];
    let targets = [1.0f32, 2.0];
    let scale = [1.0f32, 2.0];
    let cases = [
        // (0.25 + 9) / 2; gradient 2d / 2 = d
        (Loss::Mse, 4.625, [0.5, -3.0]),
        // (0.5 + 3) / 2; gradient sign(d) / 2
        (Loss::L1, 1.75, [0.5, -0.5]),
        // (0.125 + 2.5) / 2; gradient clamp(d, −1, 1) / 2
        (Loss::Huber, 1.3125, [0.25, -0.5]),
    ];
    for (loss, want, want_grad) in cases {
        let (r, g) = regression_loss_and_grad(loss, &logits, &targets, &scale, 1, true);
        assert!((r.loss - want).abs() < 1e-12, "{loss}: {}", r.loss);
        assert_eq!(g, want_grad, "{loss}");
        // Error sums in the scaled units: (0.5·1)² + (−3·2)² = 36.25, |0.5| + |−6| = 6.5.
        assert!((r.sq_err - 36.25).abs() < 1e-12 && (r.abs_err - 6.5).abs() < 1e-12);
        assert_eq!(r.correct, 0);
    }
}

/// Analytic gradients of the f64 reference against central differences, for each regression
/// loss and a few activations, 3 outputs. h = 1e-6: truncation h²·|L'''| ≈ 1e-12, cancellation
/// ε·|L|/h ≈ 2e-10, so a norm-relative error below 1e-6 checks the backward pass. Targets are
/// drawn far enough from the outputs that no |d| sits within h of L1's kink at 0 (checked).
#[test]
fn cpu_f64_regression_gradients_match_finite_differences() {
    let mut rng = Rng::new(4);
    let x = to64(&normals(&mut rng, 5 * 3, 1.0));
    let t = normals(&mut rng, 5 * 3, 2.0);
    for loss in LOSSES {
        for act in [Activation::Tanh, Activation::Relu, Activation::Gelu] {
            let config = MlpConfig::new(3, &[4, 5], 3)
                .with_activation(act)
                .with_task(Task::Regress)
                .with_loss(loss)
                .with_seed(11);
            let mut mlp = CpuMlp::<f64>::new(&config, OptimizerConfig::sgd(0.1)).unwrap();
            for p in mlp.params.iter_mut() {
                *p += 0.3 * rng.normal();
            }
            let out = mlp.forward(&x, 5).unwrap();
            let closest = out
                .iter()
                .zip(&t)
                .map(|(o, &y)| {
                    let a = (o - f64::from(y)).abs();
                    a.min((a - 1.0).abs())
                })
                .fold(f64::INFINITY, f64::min);
            assert!(closest > 1e-4, "a residual sits on a kink: {closest}");
            let target = Target::Values(&t);
            let (_, analytic) = mlp.loss_and_gradients(&x, target, 5).unwrap();
            let h = 1e-6;
            let fd: Vec<f64> = (0..analytic.len())
                .map(|i| {
                    let mut plus = mlp.clone();
                    plus.params[i] += h;
                    let mut minus = mlp.clone();
                    minus.params[i] -= h;
                    let lp = plus.loss_and_gradients(&x, target, 5).unwrap().0.loss;
                    let lm = minus.loss_and_gradients(&x, target, 5).unwrap().0.loss;
                    (lp - lm) / (2.0 * h)
                })
                .collect();
            let err = rel_err_norm(&analytic, &fd);
            assert!(err < 1e-6, "{act} {loss}: relative error {err:e}");
        }
    }
}

/// GPU f32 loss, error sums and gradients against the CPU f64 reference from the same
/// parameters, for every regression loss at odd shapes: batch 1, 7, 300 (more rows than the
/// kernel's 256 invocations) and 1000; 1, 3 and 5 outputs; target scales ≠ 1. Tolerance:
/// relative 1e-4 (f32 sums of up to 1000 × 5 terms, ~1e-5 expected).
#[test]
fn gpu_regression_loss_and_gradients_match_cpu_f64_at_odd_sizes() {
    let ctx = gpu();
    let mut rng = Rng::new(9);
    for &(rows, outputs) in &[(1usize, 1usize), (7, 3), (300, 5), (1000, 1)] {
        let x = normals(&mut rng, rows * 6, 1.0);
        let t = normals(&mut rng, rows * outputs, 1.5);
        let scale: Vec<f32> = (0..outputs).map(|j| 0.5 + j as f32).collect();
        for loss in LOSSES {
            let config = MlpConfig::new(6, &[9], outputs)
                .with_activation(Activation::Tanh)
                .with_task(Task::Regress)
                .with_loss(loss)
                .with_seed(5);
            let mut cpu = CpuMlp::<f64>::new(&config, OptimizerConfig::sgd(0.1)).unwrap();
            cpu.target_scale = scale.clone();
            let (want, want_g) = cpu
                .loss_and_gradients(&to64(&x), Target::Values(&t), rows)
                .unwrap();
            let mut mlp = GpuMlp::new(ctx, &config, OptimizerConfig::sgd(0.1), rows).unwrap();
            mlp.set_target_scale(&scale).unwrap();
            let (got, got_g) = mlp
                .loss_and_gradients(&x, Target::Values(&t), rows)
                .unwrap();
            let what = format!("{rows}x{outputs} {loss}");
            assert_close(
                &format!("{what} loss, sq_err, abs_err"),
                &[],
                &[got.loss, got.sq_err, got.abs_err],
                &[want.loss, want.sq_err, want.abs_err],
                1e-6,
                1e-4,
            );
            let err = rel_err_norm(&to64(&got_g), &want_g);
            assert!(err < 1e-4, "{what} gradients: relative error {err:e}");
        }
    }
}

/// Large and non-finite targets: |d| = 1e15 stays finite in f32 (d² = 1e30); an infinite
/// target gives an infinite loss and a NaN target a NaN loss, on the GPU as in the reference,
/// and a training step with either is a divergence that keeps the parameters.
#[test]
fn gpu_regression_loss_with_huge_infinite_and_nan_targets() {
    let ctx = gpu();
    let config = MlpConfig::new(2, &[3], 2)
        .with_task(Task::Regress)
        .with_seed(1);
    let x = [0.5f32, -0.25, 1.0, 2.0];
    for loss in LOSSES {
        let config = config.clone().with_loss(loss);
        let cpu = CpuMlp::<f64>::new(&config, OptimizerConfig::sgd(0.1)).unwrap();
        let mut mlp = GpuMlp::new(ctx, &config, OptimizerConfig::sgd(0.1), 2).unwrap();
        for t in [
            [1e15f32, -1e15, 0.0, 3.0],
            [f32::INFINITY, 0.0, 0.0, 0.0],
            [0.0, f32::NEG_INFINITY, 0.0, 0.0],
            [0.0, 0.0, f32::NAN, 0.0],
        ] {
            let (want, _) = cpu
                .loss_and_gradients(&to64(&x), Target::Values(&t), 2)
                .unwrap();
            let (got, _) = mlp.loss_and_gradients(&x, Target::Values(&t), 2).unwrap();
            assert_close(
                &format!("{loss} {t:?}"),
                &t,
                &[got.loss],
                &[want.loss],
                0.0,
                1e-5,
            );
            if !want.loss.is_finite() {
                let before = mlp.params().unwrap();
                let e = mlp.train_step(&x, Target::Values(&t), 2).unwrap_err();
                assert!(matches!(e, wgmlp::Error::Diverged { .. }), "{e}");
                assert_eq!(mlp.params().unwrap(), before);
            }
        }
    }
}

/// A regression model refuses class labels and a classifier refuses float targets (typed
/// errors, no panic); targets of the wrong length are a shape error.
#[test]
fn targets_and_labels_must_match_the_task() {
    let reg = MlpConfig::new(2, &[3], 2).with_task(Task::Regress);
    let cls = MlpConfig::new(2, &[3], 2);
    let x = [0.0f32; 4];
    let cpu = CpuMlp::<f32>::new(&reg, OptimizerConfig::sgd(0.1)).unwrap();
    let e = cpu
        .loss_and_gradients(&x, Target::Labels(&[0, 1]), 2)
        .unwrap_err();
    assert!(e.to_string().contains("float targets"), "{e}");
    let e = cpu
        .loss_and_gradients(&x, Target::Values(&[0.0; 3]), 2)
        .unwrap_err();
    assert!(e.to_string().contains("batch targets"), "{e}");
    let cpu = CpuMlp::<f32>::new(&cls, OptimizerConfig::sgd(0.1)).unwrap();
    let e = cpu
        .loss_and_gradients(&x, Target::Values(&[0.0; 4]), 2)
        .unwrap_err();
    assert!(e.to_string().contains("class labels"), "{e}");
    let e = cls.clone().with_loss(Loss::Huber).validate().unwrap_err();
    assert!(e.to_string().contains("regression loss"), "{e}");
    let mut ce = reg.clone();
    ce.loss = Loss::CrossEntropy;
    assert!(ce.validate().unwrap_err().to_string().contains("--loss"));
}

fn trainer_run(gpu_side: bool, epochs: usize) -> (Vec<f32>, Vec<wgmlp::EpochMetrics>) {
    let (mut train, mut test) = synthetic::builtin("wave3", 3).unwrap();
    let norm = Normalization::fit(&train);
    norm.apply_to(&mut train).unwrap();
    norm.apply_to(&mut test).unwrap();
    let tnorm = Normalization::fit_targets(&train);
    tnorm.apply_to_targets(&mut train).unwrap();
    tnorm.apply_to_targets(&mut test).unwrap();
    let config = MlpConfig::new(2, &[32], 3)
        .with_activation(Activation::Tanh)
        .with_task(Task::Regress)
        .with_seed(8);
    let opt = OptimizerConfig::new(wgmlp::OptimizerKind::Adam, 0.01);
    let options = TrainOptions {
        batch_size: 50,
        steps_per_submit: 7,
    };
    let device = if gpu_side {
        wgmlp::Device::Gpu(gpu().clone())
    } else {
        wgmlp::Device::Cpu
    };
    let mut t = common::trainer(device, &config, opt, &train, Some(&test), options).unwrap();
    t.set_target_scale(&tnorm.std).unwrap();
    let history = (0..epochs).map(|_| t.run_epoch().unwrap()).collect();
    (t.params().unwrap(), history)
}

/// The GPU trainer and the CPU reference trainer (f32 both) on 3 standardised targets: the
/// same parameters after 3 epochs (60 Adam steps) within 1e-3 relative in norm (the two
/// differ only in f32 summation order; Adam's normalised steps keep that small), and the same
/// per-epoch MSE, MAE and R² (in the targets' units) within 1e-3 relative.
#[test]
fn gpu_and_cpu_regression_trainers_agree() {
    let (gp, gh) = trainer_run(true, 3);
    let (cp, ch) = trainer_run(false, 3);
    let err = rel_err_norm(&to64(&gp), &to64(&cp));
    assert!(err < 1e-3, "parameters differ by {err:e}");
    for (g, c) in gh.iter().zip(&ch) {
        for (gr, cr) in [
            (g.train_regression.unwrap(), c.train_regression.unwrap()),
            (g.test_regression.unwrap(), c.test_regression.unwrap()),
        ] {
            assert_close(
                &format!("epoch {}", g.epoch),
                &[],
                &[gr.mse, gr.mae, gr.r2],
                &[f64::from(cr.mse), f64::from(cr.mae), f64::from(cr.r2)],
                1e-5,
                1e-3,
            );
        }
        assert!(g.train_accuracy == 0.0 && g.test_accuracy == Some(0.0));
    }
    // It learns: the test R² rises over the three epochs (from about 0 to about 0.15).
    let r2: Vec<f32> = gh.iter().map(|m| m.test_regression.unwrap().r2).collect();
    assert!(r2[2] > r2[0] + 0.1, "{r2:?}");
}

/// R² from the trainer equals 1 − SS_res/SS_tot computed here from the CPU model's
/// predictions in the targets' original units (standardisation undone).
#[test]
fn reported_r2_is_computed_in_the_original_units() {
    let (train, _) = synthetic::builtin("wave3", 6).unwrap();
    let mut scaled = train.clone();
    let tnorm = Normalization::fit_targets(&scaled);
    tnorm.apply_to_targets(&mut scaled).unwrap();
    let config = MlpConfig::new(2, &[8], 3).with_task(Task::Regress);
    let opt = OptimizerConfig::sgd(0.05);
    let options = TrainOptions {
        batch_size: 100,
        steps_per_submit: 1,
    };
    let mut t = common::trainer(wgmlp::Device::Cpu, &config, opt, &scaled, None, options).unwrap();
    t.set_target_scale(&tnorm.std).unwrap();
    t.run_epoch().unwrap();
    let (_, _, reg) = t.evaluate_train_set_full().unwrap();
    let reg = reg.unwrap();
    let mlp = CpuMlp::<f64>::from_params(&config, to64(&t.params().unwrap()), opt).unwrap();
    let mut pred = mlp.forward(&to64(&train.features), train.len()).unwrap();
    for row in pred.chunks_mut(3) {
        for (j, p) in row.iter_mut().enumerate() {
            *p = *p * f64::from(tnorm.std[j]) + f64::from(tnorm.mean[j]);
        }
    }
    let y = to64(&train.targets);
    let ss_res: f64 = pred.iter().zip(&y).map(|(p, y)| (p - y) * (p - y)).sum();
    let mut ss_tot = 0.0;
    for j in 0..3 {
        let col: Vec<f64> = y.iter().skip(j).step_by(3).copied().collect();
        let m = col.iter().sum::<f64>() / col.len() as f64;
        ss_tot += col.iter().map(|v| (v - m) * (v - m)).sum::<f64>();
    }
    let mse = ss_res / y.len() as f64;
    assert_close(
        "mse, r2",
        &[],
        &[reg.mse, reg.r2],
        &[mse, 1.0 - ss_res / ss_tot],
        1e-6,
        1e-4,
    );
}
