//! Whole-model gradients (CPU f64 analytic vs finite differences, GPU f32 vs CPU f64), the
//! seed chapter's "an MLP without nonlinearities is one affine map", and bad input.

mod common;

use common::{gpu, rel_err_norm};
use wgmlp::Target;
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

/// Analytic gradients of the f64 reference against central differences of its loss, for
/// every activation and both losses. h = 1e-6 gives truncation error h²·|L'''| ≈ 1e-12 and
/// cancellation error ε·|L|/h ≈ 2e-10, so a relative error below 1e-6 in norm is a real check
/// of the hand-derived backward pass.
#[test]
fn cpu_f64_gradients_match_finite_differences() {
    let (x, y) = batch(1, 5, 3, 3);
    let x = to64(&x);
    for loss in [Loss::CrossEntropy, Loss::Mse] {
        for (name, act) in Activation::all() {
            let config = MlpConfig::new(3, &[4, 5], 3)
                .with_activation(act)
                .with_loss(loss)
                .with_seed(11);
            let mut mlp = CpuMlp::<f64>::new(&config, OptimizerConfig::sgd(0.1)).unwrap();
            // Biases start at 0, so a sample whose first-layer ReLUs are all off would put the
            // second layer exactly on the kink at 0, where a difference quotient straddles
            // two slopes. Random biases keep every pre-activation away from the kinks.
            let mut rng = Rng::new(17);
            for p in mlp.params.iter_mut() {
                *p += 0.3 * rng.normal();
            }
            let (_, analytic) = mlp.loss_and_gradients(&x, Target::Labels(&y), 5).unwrap();
            let h = 1e-6;
            let mut fd = vec![0.0; analytic.len()];
            for (i, fd_i) in fd.iter_mut().enumerate() {
                let mut plus = mlp.clone();
                plus.params[i] += h;
                let mut minus = mlp.clone();
                minus.params[i] -= h;
                let lp = plus
                    .loss_and_gradients(&x, Target::Labels(&y), 5)
                    .unwrap()
                    .0
                    .loss;
                let lm = minus
                    .loss_and_gradients(&x, Target::Labels(&y), 5)
                    .unwrap()
                    .0
                    .loss;
                *fd_i = (lp - lm) / (2.0 * h);
            }
            let err = rel_err_norm(&analytic, &fd);
            assert!(err < 1e-6, "{name} {loss}: relative error {err:e}");
        }
    }
}

/// GPU f32 gradients of a 13-29-17-5 model on a batch of 37 against the CPU f64 reference
/// from the same parameters: relative error ≤ 1e-4 in norm (f32 carries ~6e-8 relative per
/// operation; the longest reduction here has 37 terms, so ~1e-5 is expected).
#[test]
fn gpu_f32_gradients_match_cpu_f64() {
    let ctx = gpu();
    let (x, y) = batch(2, 37, 13, 5);
    for loss in [Loss::CrossEntropy, Loss::Mse] {
        for (name, act) in Activation::all() {
            let config = MlpConfig::new(13, &[29, 17], 5)
                .with_activation(act)
                .with_loss(loss)
                .with_seed(3);
            let cpu = CpuMlp::<f64>::new(&config, OptimizerConfig::sgd(0.1)).unwrap();
            let (want_loss, want) = cpu
                .loss_and_gradients(&to64(&x), Target::Labels(&y), 37)
                .unwrap();
            let mut mlp = GpuMlp::new(ctx, &config, OptimizerConfig::sgd(0.1), 64).unwrap();
            let (got_loss, got) = mlp.loss_and_gradients(&x, Target::Labels(&y), 37).unwrap();
            let err = rel_err_norm(&to64(&got), &want);
            assert!(
                err <= 1e-4,
                "{name} {loss}: gradient relative error {err:e}"
            );
            let lerr = (got_loss.loss as f64 - want_loss.loss).abs() / want_loss.loss.abs();
            assert!(
                lerr <= 1e-5,
                "{name} {loss}: loss {} vs {}",
                got_loss.loss,
                want_loss.loss
            );
            assert_eq!(
                got_loss.correct, want_loss.correct,
                "{name} {loss}: correct count"
            );
            // The forward pass agrees too.
            let logits = mlp.forward(&x, 37).unwrap();
            let want_logits = cpu.forward(&to64(&x), 37).unwrap();
            let err = rel_err_norm(&to64(&logits), &want_logits);
            assert!(err <= 1e-5, "{name} {loss}: logits relative error {err:e}");
        }
    }
}

/// Logits of ±1e4 neither overflow the log-sum-exp nor lose the answer.
#[test]
fn cross_entropy_is_stable_for_huge_logits() {
    let ctx = gpu();
    // A linear model whose bias sets the logits directly (zero weights).
    let config = MlpConfig::new(1, &[], 3);
    let mut params = vec![0.0f32; config.n_params()];
    params[3..6].copy_from_slice(&[1e4, -1e4, 0.0]);
    let mut mlp = GpuMlp::from_params(ctx, &config, OptimizerConfig::sgd(0.1), 4, &params).unwrap();
    let (r, grads) = mlp
        .loss_and_gradients(&[0.0, 0.0], Target::Labels(&[0, 1]), 2)
        .unwrap();
    // loss = mean(0, 2e4) = 1e4 exactly; label 0 is right, label 1 wrong.
    assert_eq!(r.loss, 1e4);
    assert_eq!(r.correct, 1);
    assert!(grads.iter().all(|g| g.is_finite()));
    // d loss / d bias = mean over the batch of (softmax − onehot) = ((1−1) + 1, (0) + (0 − 1), 0) / 2
    assert_eq!(&grads[3..6], &[0.5, -0.5, 0.0]);
}

/// The seed chapter: without nonlinearities, two affine layers are one, with W = W1·W2 and
/// b = b1·W2 + b2.
#[test]
fn identity_mlp_equals_one_affine_layer() {
    let ctx = gpu();
    let config = MlpConfig::new(6, &[9], 4)
        .with_activation(Activation::Identity)
        .with_seed(5);
    let p = config.init_params();
    let l = config.layers();
    let (w1, b1) = (
        &p[l[0].w_offset..l[0].b_offset],
        &p[l[0].b_offset..l[1].w_offset],
    );
    let (w2, b2) = (&p[l[1].w_offset..l[1].b_offset], &p[l[1].b_offset..]);
    let (k, h, n) = (6, 9, 4);
    let mut w = vec![0.0f64; k * n];
    let mut b = vec![0.0f64; n];
    for j in 0..n {
        for m in 0..h {
            for i in 0..k {
                w[i * n + j] += w1[i * h + m] as f64 * w2[m * n + j] as f64;
            }
            b[j] += b1[m] as f64 * w2[m * n + j] as f64;
        }
        b[j] += b2[j] as f64;
    }
    let (x, _) = batch(6, 33, k, n);
    let mut mlp = GpuMlp::new(ctx, &config, OptimizerConfig::sgd(0.1), 33).unwrap();
    let got = mlp.forward(&x, 33).unwrap();
    let mut want = vec![0.0f64; 33 * n];
    for r in 0..33 {
        for j in 0..n {
            want[r * n + j] = b[j]
                + (0..k)
                    .map(|i| x[r * k + i] as f64 * w[i * n + j])
                    .sum::<f64>();
        }
    }
    let err = rel_err_norm(&to64(&got), &want);
    assert!(err < 1e-5, "relative error {err:e}");
}

#[test]
fn bad_input_is_a_typed_error_never_a_panic() {
    let ctx = gpu();
    let config = MlpConfig::new(3, &[4], 2);
    let opt = OptimizerConfig::sgd(0.1);
    // An empty layer.
    let err = GpuMlp::new(ctx, &MlpConfig::new(3, &[0], 2), opt, 8)
        .err()
        .unwrap();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert!(CpuMlp::<f32>::new(&MlpConfig::new(3, &[4, 0], 2), opt).is_err());
    // Batch size 0.
    assert!(matches!(
        GpuMlp::new(ctx, &config, opt, 0).err().unwrap(),
        Error::Config { .. }
    ));
    let mut mlp = GpuMlp::new(ctx, &config, opt, 8).unwrap();
    let mut cpu = CpuMlp::<f32>::new(&config, opt).unwrap();
    assert!(mlp.train_step(&[], Target::Labels(&[]), 0).is_err());
    assert!(cpu.train_step(&[], Target::Labels(&[]), 0).is_err());
    // Mismatched shapes: 2 rows need 6 values.
    let err = mlp
        .train_step(&[0.0; 5], Target::Labels(&[0, 1]), 2)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert!(
        cpu.train_step(&[0.0; 5], Target::Labels(&[0, 1]), 2)
            .is_err()
    );
    assert!(mlp.train_step(&[0.0; 6], Target::Labels(&[0]), 2).is_err());
    // A batch larger than the buffers.
    assert!(mlp.forward(&[0.0; 27], 9).is_err());
    // Labels out of range.
    let err = mlp
        .train_step(&[0.0; 6], Target::Labels(&[0, 2]), 2)
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidData { .. }) && err.to_string().contains("label 2"),
        "{err}"
    );
    assert!(
        cpu.train_step(&[0.0; 6], Target::Labels(&[0, 2]), 2)
            .is_err()
    );
    // Wrong parameter count.
    assert!(GpuMlp::from_params(ctx, &config, opt, 8, &[0.0; 3]).is_err());
    // A non-positive learning rate.
    assert!(GpuMlp::new(ctx, &config, OptimizerConfig::sgd(0.0), 8).is_err());
    // NaN in a dataset.
    let err = wgmlp::Dataset::new("nan", vec![0.0, f32::NAN, 1.0], vec![0], 3, 2).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
}

/// 3-4-5-3 with pReLU hidden layers whose slopes are learned (two different α), f64: the
/// analytic gradient, dα = Σ dY ⊙ min(0, Z) included, against central differences.
#[test]
fn cpu_f64_gradients_with_learned_prelu_alpha_match_finite_differences() {
    let (x, y) = batch(1, 5, 3, 3);
    let x = to64(&x);
    for loss in [Loss::CrossEntropy, Loss::Mse] {
        let config = MlpConfig::new(3, &[4, 5], 3)
            .with_activation(Activation::Prelu { alpha: 0.25 })
            .with_learn_prelu(true)
            .with_loss(loss)
            .with_seed(11);
        let layers = config.layers();
        let alphas: Vec<usize> = layers.iter().filter_map(|l| l.alpha_offset).collect();
        assert_eq!(alphas.len(), 2);
        let mut mlp = CpuMlp::<f64>::new(&config, OptimizerConfig::sgd(0.1)).unwrap();
        // Random non-zero biases keep every pre-activation off the kink at 0.
        let mut rng = Rng::new(17);
        for p in mlp.params.iter_mut() {
            *p += 0.3 * rng.normal();
        }
        mlp.params[alphas[0]] = 0.1;
        mlp.params[alphas[1]] = 0.4;
        let (_, analytic) = mlp.loss_and_gradients(&x, Target::Labels(&y), 5).unwrap();
        let h = 1e-6;
        let mut fd = vec![0.0; analytic.len()];
        for (i, fd_i) in fd.iter_mut().enumerate() {
            let mut plus = mlp.clone();
            plus.params[i] += h;
            let mut minus = mlp.clone();
            minus.params[i] -= h;
            let lp = plus
                .loss_and_gradients(&x, Target::Labels(&y), 5)
                .unwrap()
                .0
                .loss;
            let lm = minus
                .loss_and_gradients(&x, Target::Labels(&y), 5)
                .unwrap()
                .0
                .loss;
            *fd_i = (lp - lm) / (2.0 * h);
        }
        let err = rel_err_norm(&analytic, &fd);
        assert!(err < 1e-6, "{loss}: relative error {err:e}");
        for &a in &alphas {
            assert!(analytic[a] != 0.0, "{loss}: dα at {a} is 0");
            let err = (analytic[a] - fd[a]).abs() / fd[a].abs();
            assert!(
                err < 1e-6,
                "{loss}: dα at {a}: {} vs {}",
                analytic[a],
                fd[a]
            );
        }
    }
}

/// GPU f32 gradients (dα included) against the CPU f64 reference for a model with learned
/// pReLU slopes, each layer with its own α so a kernel reading the wrong layer's α shows.
fn check_learned_prelu_gradients(ctx: &wgmlp::GpuContext, widths: &[usize], rows: usize) {
    let (input, output) = (widths[0], widths[widths.len() - 1]);
    let (x, y) = batch(2, rows, input, output);
    for loss in [Loss::CrossEntropy, Loss::Mse] {
        let config = MlpConfig::new(input, &widths[1..widths.len() - 1], output)
            .with_activation(Activation::Prelu { alpha: 0.25 })
            .with_learn_prelu(true)
            .with_loss(loss)
            .with_seed(3);
        let mut params = config.init_params();
        let mut rng = Rng::new(5);
        for (i, l) in config.layers().iter().enumerate() {
            for b in &mut params[l.b_offset..l.b_offset + l.fan_out] {
                *b = 0.2 * rng.normal() as f32;
            }
            if let Some(a) = l.alpha_offset {
                params[a] = 0.1 + 0.3 * i as f32;
            }
        }
        let opt = OptimizerConfig::sgd(0.1);
        let cpu = CpuMlp::<f64>::from_params(&config, to64(&params), opt).unwrap();
        let (want_loss, want) = cpu
            .loss_and_gradients(&to64(&x), Target::Labels(&y), rows)
            .unwrap();
        let mut mlp = GpuMlp::from_params(ctx, &config, opt, 64, &params).unwrap();
        let what = format!("{widths:?} {loss} {:?}", mlp.variants());
        let (got_loss, got) = mlp
            .loss_and_gradients(&x, Target::Labels(&y), rows)
            .unwrap();
        let err = rel_err_norm(&to64(&got), &want);
        assert!(err <= 1e-4, "{what}: gradient relative error {err:e}");
        for l in config.layers() {
            if let Some(a) = l.alpha_offset {
                let err = (got[a] as f64 - want[a]).abs() / want[a].abs();
                assert!(
                    err <= 1e-4,
                    "{what}: dα at {a}: GPU {} CPU {}",
                    got[a],
                    want[a]
                );
            }
        }
        let lerr = (got_loss.loss as f64 - want_loss.loss).abs() / want_loss.loss.abs();
        assert!(
            lerr <= 1e-5,
            "{what}: loss {} vs {}",
            got_loss.loss,
            want_loss.loss
        );
        let logits = mlp.forward(&x, rows).unwrap();
        let want_logits = cpu.forward(&to64(&x), rows).unwrap();
        let err = rel_err_norm(&to64(&logits), &want_logits);
        assert!(err <= 1e-5, "{what}: logits relative error {err:e}");
    }
}

#[test]
fn gpu_f32_gradients_with_learned_prelu_alpha_match_cpu_f64() {
    check_learned_prelu_gradients(gpu(), &[13, 29, 17, 5], 37);
    // A layer after a learned α runs the scalar grad_input and reduce_alpha (2 dispatches)
    // where the others run Wᵀ and a forward core (2 dispatches).
    let config =
        MlpConfig::new(13, &[29, 17], 5).with_activation(Activation::Prelu { alpha: 0.25 });
    let opt = OptimizerConfig::sgd(0.1);
    let fixed = GpuMlp::new(gpu(), &config, opt, 8).unwrap();
    let learned = GpuMlp::new(gpu(), &config.with_learn_prelu(true), opt, 8).unwrap();
    assert_eq!(learned.dispatches_per_step(1), fixed.dispatches_per_step(1));
}

/// 20-32-16-4: the first layer runs on each matmul core in turn (the later ones start past a
/// learned α, off the 4-float alignment the vec4 cores need, and run the scalar core).
#[test]
fn gpu_learned_prelu_alpha_on_every_matmul_core() {
    use wgmlp::gpu::MatmulVariant;
    use wgmlp::gpu::autotune::{Autotuner, Policy};
    for variant in MatmulVariant::ALL {
        let mut ctx = wgmlp::GpuContext::new().expect("adapter");
        ctx.get_mut().unwrap().autotune = Autotuner::with(&ctx.info, Policy::Force(variant), None);
        let config = MlpConfig::new(20, &[32, 16], 4)
            .with_activation(Activation::Prelu { alpha: 0.25 })
            .with_learn_prelu(true);
        let mlp = GpuMlp::new(&ctx, &config, OptimizerConfig::sgd(0.1), 64).unwrap();
        assert_eq!(mlp.variants()[0], variant);
        drop(mlp);
        check_learned_prelu_gradients(&ctx, &[20, 32, 16, 4], 50);
    }
}
