//! The fused MLP kernel (`wgmlp::gpu::fused`) against the CPU f64 reference and the layered
//! GPU path: forward, gradients and training steps for hidden widths 16 to 128, every
//! activation, both losses, every optimizer, batch sizes 1 to 70,000, both ways of exchanging
//! values between lanes; float-target regression; models that do not fit; bad input.
//!
//! Tolerances. f32 carries u ≈ 6e-8 relative per operation. A forward output is a sum of at
//! most 129 products per layer (3 layers): its relative error in norm stays near √n·u ≈ 1e-6,
//! so 1e-5 is a real check. A weight gradient sums over the batch: chunks of ≥ 32 rows in
//! registers, then ≤ 32 chunk partials; with n ≤ 1,000 rows the error in norm is ~√n·u ≈ 2e-6
//! and the bound 1e-4 (the layered path's) leaves room for the activations' few-ulp error.
//! At 70,000 rows γ_n = n·u ≈ 4e-3 bounds the worst case and √n·u ≈ 2e-5 is typical: 1e-3.

mod common;

use common::{gpu, rel_err_norm};
use wgmlp::Target;
use wgmlp::gpu::fused::{Exchange, FusedMlp, LaneSetup, codegen};
use wgmlp::gpu::kernels::workgroup_bytes;
use wgmlp::optim::OptimizerKind;
use wgmlp::reference::CpuMlp;
use wgmlp::rng::Rng;
use wgmlp::{Activation, Error, GpuMlp, Loss, MlpConfig, OptimizerConfig};

fn batch(seed: u64, n: usize, d: usize, classes: usize) -> (Vec<f32>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let x = (0..n * d).map(|_| rng.normal() as f32).collect();
    let y = (0..n).map(|_| rng.below(classes as u64) as u32).collect();
    (x, y)
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Parameters with random biases (they start at 0), so no pre-activation sits on a kink.
fn params(config: &MlpConfig, seed: u64) -> Vec<f32> {
    let mut p = config.init_params();
    let mut rng = Rng::new(seed);
    for l in config.layers() {
        for b in &mut p[l.b_offset..l.b_offset + l.fan_out] {
            *b = (0.3 * rng.normal()) as f32;
        }
    }
    p
}

/// Forward, loss, correct count and gradients of the fused kernel against the CPU f64
/// reference (and the layered GPU path when `layered`), from the same parameters.
fn check_against_reference(
    what: &str,
    config: &MlpConfig,
    setup: Option<LaneSetup>,
    n: usize,
    grad_tol: f64,
    layered: bool,
) {
    let ctx = gpu();
    let (x, y) = batch(7, n, config.input, config.output);
    let p = params(config, 11);
    let opt = OptimizerConfig::sgd(0.1);
    let cpu = CpuMlp::<f64>::from_params(config, to64(&p), opt).unwrap();
    let setup = setup.unwrap_or_else(|| LaneSetup::for_adapter(ctx.features, &ctx.info));
    let mut fused = FusedMlp::with_lanes(ctx, config, opt, n, &p, setup).unwrap();
    let x64 = to64(&x);

    let want = cpu.forward(&x64, n).unwrap();
    let got = fused.forward(&x, n).unwrap();
    let err = rel_err_norm(&to64(&got), &want);
    assert!(err <= 1e-5, "{what}: forward relative error {err:e}");

    let (want_loss, want_grads) = cpu.loss_and_gradients(&x64, Target::Labels(&y), n).unwrap();
    let (got_loss, got_grads) = fused.loss_and_gradients(&x, Target::Labels(&y), n).unwrap();
    let err = rel_err_norm(&to64(&got_grads), &want_grads);
    assert!(err <= grad_tol, "{what}: gradient relative error {err:e}");
    let lerr = (got_loss.loss as f64 - want_loss.loss).abs() / want_loss.loss.abs();
    assert!(
        lerr <= 1e-5,
        "{what}: loss {} vs {}",
        got_loss.loss,
        want_loss.loss
    );
    assert_eq!(got_loss.correct, want_loss.correct, "{what}: correct count");

    if layered {
        let mut g = GpuMlp::from_params(ctx, config, opt, n, &p).unwrap();
        let lay = g.forward(&x, n).unwrap();
        let err = rel_err_norm(&to64(&got), &to64(&lay));
        assert!(err <= 2e-5, "{what}: fused vs layered forward {err:e}");
        let (_, lay_grads) = g.loss_and_gradients(&x, Target::Labels(&y), n).unwrap();
        let err = rel_err_norm(&to64(&got_grads), &to64(&lay_grads));
        assert!(
            err <= 2.0 * grad_tol,
            "{what}: fused vs layered gradients {err:e}"
        );
    }
}

#[test]
fn forward_and_gradients_match_cpu_f64_and_layered_for_widths_16_to_128() {
    for width in [16, 32, 64, 100, 128] {
        let config = MlpConfig::new(5, &[width, width], 3).with_seed(3);
        check_against_reference(
            &format!("5-{width}-{width}-3"),
            &config,
            None,
            63,
            1e-4,
            true,
        );
    }
}

/// Hidden layers of different widths (padded to the widest), every activation, both losses:
/// one kernel shape serves them all (the activation is chosen per layer at run time).
#[test]
fn every_activation_and_both_losses_match_cpu_f64() {
    for loss in [Loss::CrossEntropy, Loss::Mse] {
        for (name, act) in Activation::all() {
            let config = MlpConfig::new(6, &[24, 17, 9], 4)
                .with_activation(act)
                .with_loss(loss)
                .with_seed(5);
            check_against_reference(&format!("{name} {loss}"), &config, None, 37, 1e-4, false);
        }
    }
    // Mixed activations, layer by layer.
    let mut config = MlpConfig::new(6, &[24, 17, 9], 4).with_seed(5);
    config.activations = vec![Activation::Tanh, Activation::Gelu, Activation::Relu];
    check_against_reference("tanh,gelu,relu", &config, None, 37, 1e-4, true);
}

#[test]
fn learned_prelu_slopes_get_their_gradient() {
    let config = MlpConfig::new(6, &[24, 17], 4)
        .with_activation(Activation::Prelu { alpha: 0.2 })
        .with_learn_prelu(true)
        .with_seed(8);
    check_against_reference("learned prelu", &config, None, 45, 1e-4, true);
}

/// Batch 1 (one chunk, one row), 63 (a partial chunk), 1,000 (many chunks), 70,000 (chunks of
/// thousands of rows: the slot count is capped), with small widths to keep it cheap.
#[test]
fn batch_sizes_1_63_1000_and_70000() {
    let config = MlpConfig::new(3, &[16, 16], 2).with_seed(9);
    for (n, tol) in [(1, 1e-4), (63, 1e-4), (1000, 1e-4), (70_000, 1e-3)] {
        check_against_reference(&format!("batch {n}"), &config, None, n, tol, n <= 1000);
    }
}

/// The workgroup-memory exchange (adapters without subgroups) gives the same results.
#[test]
fn workgroup_exchange_matches_cpu_f64() {
    let setup = LaneSetup {
        lanes: 8,
        exchange: Exchange::Workgroup,
    };
    for width in [16, 64, 128] {
        let config = MlpConfig::new(11, &[width, width / 2], 5)
            .with_activation(Activation::Gelu)
            .with_seed(4);
        check_against_reference(
            &format!("workgroup 11-{width}-{}-5", width / 2),
            &config,
            Some(setup),
            70,
            1e-4,
            false,
        );
    }
}

/// A wide input is streamed in blocks (784 inputs: several blocks, the last partial).
#[test]
fn wide_input_streams_in_blocks() {
    let config = MlpConfig::new(784, &[32], 10).with_seed(12);
    check_against_reference("784-32-10", &config, None, 40, 1e-4, true);
}

/// 20 steps of every optimizer (with weight decay) on the fused path, the CPU f32 reference
/// and the layered path agree within 1e-3 per loss (as tests/training.rs) and the parameters
/// within 1e-4 in norm.
#[test]
fn twenty_training_steps_every_optimizer_agree_with_cpu_and_layered() {
    let ctx = gpu();
    let config = MlpConfig::new(10, &[32, 32], 4).with_seed(21);
    let (x, y) = batch(3, 5 * 48, 10, 4);
    for kind in [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ] {
        let lr = if matches!(kind, OptimizerKind::Sgd | OptimizerKind::Momentum) {
            0.05
        } else {
            0.005
        };
        let mut opt = OptimizerConfig::new(kind, lr);
        opt.weight_decay = 0.01;
        let mut fused = FusedMlp::new(ctx, &config, opt, 48).unwrap();
        let mut layered = GpuMlp::new(ctx, &config, opt, 48).unwrap();
        let mut cpu = CpuMlp::<f32>::new(&config, opt).unwrap();
        let mut losses = Vec::new();
        for step in 0..20 {
            let b = step % 5;
            let (xb, yb) = (&x[b * 480..(b + 1) * 480], &y[b * 48..(b + 1) * 48]);
            let lf = fused.train_step(xb, Target::Labels(yb), 48).unwrap().loss;
            let ll = layered.train_step(xb, Target::Labels(yb), 48).unwrap().loss;
            let lc = cpu.train_step(xb, Target::Labels(yb), 48).unwrap().loss;
            assert!(
                (lf - lc).abs() <= 1e-3 * lc.abs() && (lf - ll).abs() <= 1e-3 * ll.abs(),
                "{kind} step {}: fused {lf} layered {ll} cpu {lc}",
                step + 1
            );
            losses.push(lf);
        }
        // Both GPU paths update through optim.wgsl, so they agree to rounding (4e-8 seen);
        // against the CPU, Adam's bias correction pow(β, t) in f32 differs from the reference's
        // powi, and Adam turns tiny gradient differences into full-size steps: both GPU paths
        // were 3.6e-4 from the CPU after 20 Adam steps, so Adam gets 1e-3 there.
        let fp = to64(&fused.params().unwrap());
        let err = rel_err_norm(&fp, &to64(&layered.params().unwrap()));
        assert!(
            err < 1e-6,
            "{kind}: parameters differ from layered by {err:e}"
        );
        let tol = match kind {
            OptimizerKind::Adam | OptimizerKind::AdamW => 1e-3,
            _ => 1e-4,
        };
        let err = rel_err_norm(&fp, &to64(&cpu.params));
        assert!(
            err < tol,
            "{kind}: parameters differ from the CPU by {err:e}"
        );
        assert!(
            losses[19] < losses[0],
            "{kind}: the loss went down: {losses:?}"
        );
        let state = fused.optimizer_state().unwrap();
        assert_eq!(state.step, 20, "{kind}: step counter");
    }
}

/// Float targets (regression, MSE): gradients against an f64 reference written here, which
/// backpropagates dL/dY = 2 (Y − T) / (batch · outputs) through the CPU reference's forward.
#[test]
fn float_target_mse_matches_an_f64_reference() {
    let ctx = gpu();
    let config = MlpConfig::new(4, &[20, 20], 3)
        .with_activation(Activation::Tanh)
        .with_loss(Loss::Mse)
        .with_seed(2);
    let n = 50;
    let mut rng = Rng::new(5);
    let x: Vec<f32> = (0..n * 4).map(|_| rng.normal() as f32).collect();
    let t: Vec<f32> = (0..n * 3).map(|_| rng.uniform() as f32).collect();
    let p = params(&config, 6);
    let cpu = CpuMlp::<f64>::from_params(&config, to64(&p), OptimizerConfig::sgd(0.1)).unwrap();
    let (want_loss, want) = mse_targets_reference(&cpu, &to64(&x), &to64(&t), n);
    let mut fused = FusedMlp::from_params(ctx, &config, OptimizerConfig::sgd(0.1), n, &p).unwrap();
    let (got_loss, got) = fused.loss_and_gradients(&x, Target::Values(&t), n).unwrap();
    let err = rel_err_norm(&to64(&got), &want);
    assert!(err <= 1e-4, "gradient relative error {err:e}");
    assert!(
        (got_loss.loss as f64 - want_loss).abs() <= 1e-5 * want_loss,
        "loss {} vs {want_loss}",
        got_loss.loss
    );
    // Training lowers the loss.
    let first = fused.train_step(&x, Target::Values(&t), n).unwrap().loss;
    let mut last = first;
    for _ in 0..30 {
        last = fused.train_step(&x, Target::Values(&t), n).unwrap().loss;
    }
    assert!(last < first, "MSE went from {first} to {last}");
    // Float targets need the MSE loss.
    let ce = config.clone().with_loss(Loss::CrossEntropy);
    let mut fused = FusedMlp::new(ctx, &ce, OptimizerConfig::sgd(0.1), n).unwrap();
    assert!(matches!(
        fused.loss_and_gradients(&x, Target::Values(&t), n),
        Err(Error::Config { .. })
    ));
}

/// Mean loss and flat gradients of MSE against float targets, in f64 (the test's reference).
fn mse_targets_reference(cpu: &CpuMlp<f64>, x: &[f64], t: &[f64], n: usize) -> (f64, Vec<f64>) {
    let cache = cpu.forward_cache(x, n).unwrap();
    let layers = cpu.config.layers();
    let o = cpu.config.output;
    let mut loss = 0.0;
    let mut dz: Vec<f64> = cache
        .output
        .iter()
        .zip(t)
        .map(|(y, t)| {
            loss += (y - t) * (y - t) / o as f64;
            2.0 * (y - t) / (n * o) as f64
        })
        .collect();
    let mut grads = vec![0.0; cpu.params.len()];
    for l in (0..layers.len()).rev() {
        let layer = &layers[l];
        let (k, m) = (layer.fan_in, layer.fan_out);
        let xin = &cache.inputs[l];
        for b in 0..n {
            for j in 0..m {
                grads[layer.b_offset + j] += dz[b * m + j];
                for i in 0..k {
                    grads[layer.w_offset + i * m + j] += xin[b * k + i] * dz[b * m + j];
                }
            }
        }
        if l > 0 {
            let prev = &layers[l - 1];
            let mut next = vec![0.0; n * k];
            for b in 0..n {
                for i in 0..k {
                    let dy: f64 = (0..m)
                        .map(|j| dz[b * m + j] * cpu.params[layer.w_offset + i * m + j])
                        .sum();
                    next[b * k + i] = dy * prev.activation.grad_f64(cache.z[l - 1][b * k + i]);
                }
            }
            dz = next;
        }
    }
    (loss / n as f64, grads)
}

/// A non-finite loss stops the optimizer: the parameters from before the step are kept.
#[test]
fn divergence_keeps_the_parameters() {
    let ctx = gpu();
    let config = MlpConfig::new(2, &[8], 2).with_seed(1);
    let mut fused = FusedMlp::new(ctx, &config, OptimizerConfig::sgd(0.1), 4).unwrap();
    let before = fused.params().unwrap();
    let x = [f32::INFINITY, 1.0, 0.5, 0.5];
    match fused.train_step(&x, Target::Labels(&[0, 1]), 2) {
        Err(Error::Diverged { step: 1, .. }) => {}
        other => panic!("expected divergence at step 1, got {other:?}"),
    }
    assert_eq!(fused.params().unwrap(), before);
}

#[test]
fn models_that_do_not_fit_are_clear_errors() {
    let ctx = gpu();
    for (config, why) in [
        (MlpConfig::new(4, &[129], 3), "wider than"),
        (MlpConfig::new(4, &[], 3), "linear model"),
        (MlpConfig::new(4, &[8; 16], 3), "layers"),
    ] {
        assert!(FusedMlp::fits(ctx, &config).is_err());
        let err = FusedMlp::new(ctx, &config, OptimizerConfig::sgd(0.1), 8)
            .err()
            .expect("does not fit");
        let text = err.to_string();
        assert!(
            matches!(err, Error::Config { .. }) && text.contains(why) && text.contains("--kernel"),
            "{text}"
        );
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let ctx = gpu();
    let config = MlpConfig::new(3, &[8], 2);
    let mut fused = FusedMlp::new(ctx, &config, OptimizerConfig::sgd(0.1), 4).unwrap();
    assert!(matches!(
        fused.forward(&[0.0; 5], 2),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        fused.forward(&[0.0; 15], 5),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        fused.loss_and_gradients(&[0.0; 6], Target::Labels(&[0, 2]), 2),
        Err(Error::InvalidData { .. })
    ));
    assert!(matches!(
        fused.set_params(&[0.0; 3]),
        Err(Error::Shape { .. })
    ));
    assert!(FusedMlp::new(ctx, &config, OptimizerConfig::sgd(0.1), 0).is_err());
}

/// Every generated shape the tests and the bench use validates with naga and uses far less
/// than WebGPU's 16 KiB of workgroup memory (wgpu does not check the limit itself).
#[test]
fn generated_kernels_validate_and_fit_16_kib_of_workgroup_memory() {
    let configs = [
        MlpConfig::new(2, &[16, 16], 2),
        MlpConfig::new(2, &[64, 64], 3),
        MlpConfig::new(32, &[64, 64, 64, 64], 3),
        MlpConfig::new(784, &[128], 10),
        MlpConfig::new(5, &[128, 128], 3),
        MlpConfig::new(2, &[64, 64, 64, 64, 64], 3),
    ];
    for config in &configs {
        for (lanes, exchange) in [
            (8, Exchange::Subgroup),
            (32, Exchange::Subgroup),
            (8, Exchange::Workgroup),
            (64, Exchange::Workgroup),
        ] {
            let setup = LaneSetup { lanes, exchange };
            let shape = wgmlp::gpu::fused::FusedShape::for_model(config, setup).unwrap();
            let name = shape.describe();
            let module = wgmlp::gpu::fused::validate(&name, &codegen::source(&shape))
                .unwrap_or_else(|e| panic!("{e}"));
            let bytes = workgroup_bytes(&module);
            assert!(bytes <= 16384, "{name}: {bytes} bytes of workgroup memory");
        }
    }
}

/// The fused benchmark runs end to end on a tiny case (no timing assertions).
#[test]
fn fused_benchmark_runs_on_a_tiny_case() {
    use wgmlp::bench::{FusedCase, ModelShape, fused_case, fused_cases};
    let case = FusedCase {
        model: ModelShape::new(2, &[8], 2),
        batch_size: 16,
    };
    let r = fused_case(gpu(), &case, 1).unwrap();
    assert_eq!((r.model.as_str(), r.batch_size), ("2-8-2", 16));
    for s in [
        r.fused,
        r.layered,
        r.cpu,
        r.fused_infer,
        r.layered_infer,
        r.cpu_infer,
    ] {
        assert!(s.median > 0.0 && s.median.is_finite(), "{r:?}");
    }
    assert_eq!(r.dispatches.0, 5, "gather, fused, reduce, update, pack");
    assert!(r.dispatches.1 > 5, "{r:?}");
    assert!(r.kernel.contains("2-8x1-2"), "{}", r.kernel);
    assert!(fused_cases(true).len() < fused_cases(false).len());
}
