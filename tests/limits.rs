//! Grid and loop limits: no kernel may silently compute a wrong answer because a shape is
//! larger than one grid row, one grid, or one invocation's loop budget.
//!
//! llvmpipe (lavapipe) stops every loop of an invocation after 65,535 iterations in total,
//! without an error, and every adapter caps workgroups per grid dimension (65,535). Real sizes
//! past those limits are too slow for a software adapter, so these tests lower both limits on
//! their own context (4 workgroups per dimension, reductions of at most 5 terms per dispatch)
//! and check every kernel of a training step — gather, forward, loss, dW/db, Wᵀ and dX,
//! grad_input with learned α, optimizer — against the CPU reference in f64; shapes past what a
//! grid can hold must be typed errors before anything runs.
//!
//! Tolerances: f32 sums of up to 48 terms against f64, relative error of whole gradient and
//! logit vectors in the 2-norm ≤ 1e-4 (Higham: γ_n·Σ|terms| ≈ 48·6e-8 relative per element,
//! well under 1e-5; 1e-4 leaves room for cancellation in the softmax differences).

mod common;

use common::rel_err_norm;
use wgmlp::Target;
use wgmlp::gpu::MatmulVariant;
use wgmlp::gpu::autotune::{Autotuner, Policy};
use wgmlp::reference::CpuMlp;
use wgmlp::rng::Rng;
use wgmlp::{
    Activation, Dataset, Error, GpuContext, GpuMlp, Loss, MlpConfig, OptimizerConfig, TrainOptions,
};

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A context whose grids hold at most 4 workgroups per dimension and whose reductions are
/// split every 5 terms, with `variant` forced as every layer's matmul core.
fn small_limits(variant: MatmulVariant) -> GpuContext {
    let mut ctx = GpuContext::new().unwrap_or_else(|e| {
        panic!(
            "GPU tests need an adapter: {e}\nhint: {}",
            wgmlp::gpu::NO_ADAPTER_HINT
        )
    });
    eprintln!("[adapter] {}", ctx.adapter_summary());
    ctx.get_mut().unwrap().max_workgroups_per_dim = 4;
    ctx.get_mut().unwrap().max_loop_trip = 5;
    ctx.get_mut().unwrap().autotune = Autotuner::with(&ctx.info, Policy::Force(variant), None);
    ctx
}

fn batch(seed: u64, n: usize, d: usize, classes: usize) -> (Vec<f32>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let x = (0..n * d).map(|_| rng.normal() as f32).collect();
    let y = (0..n).map(|_| rng.below(classes as u64) as u32).collect();
    (x, y)
}

fn check_against_cpu(ctx: &GpuContext, config: &MlpConfig, rows: usize, what: &str) {
    let (x, y) = batch(7, rows, config.input, config.output);
    let mut params = config.init_params();
    let mut rng = Rng::new(9);
    for l in config.layers() {
        for b in &mut params[l.b_offset..l.b_offset + l.fan_out] {
            *b = 0.2 * rng.normal() as f32;
        }
    }
    let opt = OptimizerConfig::sgd(0.1);
    let cpu = CpuMlp::<f64>::from_params(config, to64(&params), opt).unwrap();
    let mut gpu = GpuMlp::from_params(ctx, config, opt, rows, &params).unwrap();
    let what = format!(
        "{what} {:?} dX {:?}",
        gpu.variants(),
        gpu.grad_input_variants()
    );
    let logits = gpu.forward(&x, rows).unwrap();
    let want = cpu.forward(&to64(&x), rows).unwrap();
    let err = rel_err_norm(&to64(&logits), &want);
    assert!(err <= 1e-4, "{what}: logits relative error {err:e}");
    let (got_loss, got) = gpu
        .loss_and_gradients(&x, Target::Labels(&y), rows)
        .unwrap();
    let (want_loss, want) = cpu
        .loss_and_gradients(&to64(&x), Target::Labels(&y), rows)
        .unwrap();
    let err = rel_err_norm(&to64(&got), &want);
    assert!(err <= 1e-4, "{what}: gradient relative error {err:e}");
    let lerr = (got_loss.loss as f64 - want_loss.loss).abs() / want_loss.loss.abs();
    assert!(
        lerr <= 1e-5,
        "{what}: loss {} vs {}",
        got_loss.loss,
        want_loss.loss
    );
    assert_eq!(got_loss.correct, want_loss.correct, "{what}: correct count");
}

/// 300 rows: 10 row blocks of 32 (5 of 64) spill from grid y into z; 48 inputs to the second
/// layer: its forward sums k in 10 dispatches, its dW the batch in 60, the loss 2 row parts.
#[test]
fn every_layer_kernel_matches_the_cpu_when_grids_spill_and_reductions_split() {
    for variant in MatmulVariant::ALL {
        let ctx = small_limits(variant);
        for (loss, act) in [
            (Loss::CrossEntropy, Activation::Relu),
            (Loss::Mse, Activation::Tanh),
        ] {
            let config = MlpConfig::new(3, &[48, 16], 8)
                .with_activation(act)
                .with_loss(loss)
                .with_seed(4);
            check_against_cpu(&ctx, &config, 300, &format!("{act} {loss}"));
        }
    }
}

#[test]
fn learned_prelu_alpha_gradients_survive_split_reductions() {
    let ctx = small_limits(MatmulVariant::Scalar);
    let config = MlpConfig::new(3, &[48, 16], 8)
        .with_activation(Activation::Prelu { alpha: 0.25 })
        .with_learn_prelu(true)
        .with_seed(4);
    check_against_cpu(&ctx, &config, 100, "learned prelu");
}

/// Two epochs of training through the resident-data path (gather with a 2-row grid, the
/// optimizer over 1,061 parameters on a 2-row grid) equal the CPU f32 reference.
#[test]
fn training_with_split_grids_matches_the_cpu_reference() {
    let ctx = small_limits(MatmulVariant::Vec4);
    let (x, y) = batch(3, 1200, 3, 5);
    let data = Dataset::new("random", x, y, 3, 5).unwrap();
    let config = MlpConfig::new(3, &[48, 16], 5).with_seed(2);
    assert_eq!(config.n_params(), 1061);
    // SGD: the update is linear in the gradient, so parameters differ as little as gradients
    // do (Adam's g/√v magnifies the f32 noise of near-zero gradients).
    let opt = OptimizerConfig::sgd(0.1);
    let options = TrainOptions {
        batch_size: 400,
        ..Default::default()
    };
    let make = |device| {
        common::trainer(device, &config, opt, &data, Some(&data), options.clone()).unwrap()
    };
    let (mut g, mut c) = (
        make(wgmlp::Device::Gpu(ctx.clone())),
        make(wgmlp::Device::Cpu),
    );
    for _ in 0..2 {
        let (mg, mc) = (g.run_epoch().unwrap(), c.run_epoch().unwrap());
        assert!(
            (mg.train_loss - mc.train_loss).abs() <= 1e-4 * mc.train_loss.abs(),
            "train loss {} vs {}",
            mg.train_loss,
            mc.train_loss
        );
        assert!((mg.test_loss.unwrap() - mc.test_loss.unwrap()).abs() <= 1e-4);
    }
    let err = rel_err_norm(&to64(&g.params().unwrap()), &to64(&c.params().unwrap()));
    assert!(
        err <= 1e-5,
        "parameters after 2 epochs: relative error {err:e}"
    );
}

/// A layer wider than a grid can hold, or a batch longer, is an error before anything runs,
/// never a smaller grid.
#[test]
fn shapes_past_the_grid_are_typed_errors_not_wrong_answers() {
    let ctx = small_limits(MatmulVariant::Scalar);
    let opt = OptimizerConfig::sgd(0.1);
    // 4 column blocks of 32: 129 outputs do not fit.
    let wide = MlpConfig::new(3, &[129], 2);
    let err = GpuMlp::new(&ctx, &wide, opt, 8).err().expect("refused");
    assert!(matches!(err, Error::Shape { .. }), "{err:?}");
    assert!(err.to_string().contains("matmul grid"), "{err}");
    // 4 × 4 row blocks of 32: 513 rows do not fit.
    let err = GpuMlp::new(&ctx, &MlpConfig::new(3, &[8], 2), opt, 513)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("rows"), "{err}");
}

/// The loss of a row costs about 3 × classes loop iterations; where the driver caps them, a
/// model with too many outputs is refused with the reason instead of a silently wrong loss.
#[test]
fn a_loss_past_the_drivers_loop_limit_is_refused_with_the_reason() {
    let mut ctx = small_limits(MatmulVariant::Scalar);
    ctx.get_mut().unwrap().loop_limit = Some(100);
    let opt = OptimizerConfig::sgd(0.1);
    assert!(GpuMlp::new(&ctx, &MlpConfig::new(2, &[4], 20), opt, 4).is_ok());
    let err = GpuMlp::new(&ctx, &MlpConfig::new(2, &[4], 40), opt, 4)
        .err()
        .expect("refused");
    assert!(matches!(err, Error::AdapterUnsuitable { .. }), "{err:?}");
    assert!(err.to_string().contains("loop iterations"), "{err}");
}

/// The reported case at full size: a 70,000-wide hidden layer makes the output layer sum
/// 70,000 terms per output, past llvmpipe's 65,535 loop iterations; the GPU's losses must
/// equal the CPU reference's (they differed by 50% before the reductions were split).
#[test]
fn a_70000_wide_hidden_layer_trains_like_the_cpu_reference() {
    let ctx = common::gpu();
    let (x, y) = batch(5, 64, 2, 3);
    let data = Dataset::new("random", x, y, 2, 3).unwrap();
    let config = MlpConfig::new(2, &[70_000], 3).with_seed(1);
    // A small step: with 70,000 hidden units a larger one overshoots to losses in the hundreds,
    // where f32 rounding differences between any two correct implementations grow chaotically.
    let opt = OptimizerConfig::sgd(1e-3);
    let options = TrainOptions::default();
    let make =
        |device| common::trainer(device, &config, opt, &data, None, options.clone()).unwrap();
    let (mut g, mut c) = (
        make(wgmlp::Device::Gpu(ctx.clone())),
        make(wgmlp::Device::Cpu),
    );
    for epoch in 1..=3 {
        let (mg, mc) = (g.run_epoch().unwrap(), c.run_epoch().unwrap());
        eprintln!(
            "epoch {epoch}: train loss GPU {} CPU {}",
            mg.train_loss, mc.train_loss
        );
        assert!(
            (mg.train_loss - mc.train_loss).abs() <= 1e-3 * mc.train_loss.abs(),
            "epoch {epoch}: train loss GPU {} vs CPU {}",
            mg.train_loss,
            mc.train_loss
        );
    }
}
