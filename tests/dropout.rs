//! Dropout: the GPU kernel and the CPU reference draw the same masks (checked through the
//! gradients, which the masks shape), reach the same parameters after 20 steps, the
//! hand-derived backward matches finite differences, `--dropout 0` changes nothing, and a
//! run with dropout resumes bit for bit.

mod cli_util;
mod common;

use cli_util::{assert_refused_early, ok, s, scratch, wgmlp};
use common::{gpu, rel_err_norm};
use wgmlp::Target;
use wgmlp::reference::CpuMlp;
use wgmlp::rng::Rng;
use wgmlp::{Activation, GpuMlp, MlpConfig, OptimizerConfig};

fn batch(seed: u64, n: usize, d: usize, classes: usize) -> (Vec<f32>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let x = (0..n * d).map(|_| rng.normal() as f32).collect();
    let y = (0..n).map(|_| rng.below(classes as u64) as u32).collect();
    (x, y)
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Gradients with dropout 0.5 on two hidden layers (13-29-17-5, a batch of 37: 1073 and 629
/// mask bits, more than one 256-invocation workgroup each): GPU f32 against CPU f64 within
/// 1e-4 relative in norm. A single differing mask bit would zero or double a unit's
/// contribution and miss that by orders of magnitude. Then 20 SGD steps (a new mask per
/// step): the parameters agree within 1e-3 relative.
#[test]
fn gpu_and_cpu_draw_the_same_masks_and_reach_the_same_parameters() {
    let ctx = gpu();
    let (x, y) = batch(2, 37, 13, 5);
    let mut config = MlpConfig::new(13, &[29, 17], 5)
        .with_activation(Activation::Tanh)
        .with_seed(3);
    config.dropout = 0.5;
    let opt = OptimizerConfig::sgd(0.1);
    let cpu = CpuMlp::<f64>::new(&config, opt).unwrap();
    let (_, want) = cpu
        .loss_and_gradients(&to64(&x), Target::Labels(&y), 37)
        .unwrap();
    let mut mlp = GpuMlp::new(ctx, &config, opt, 64).unwrap();
    let (_, got) = mlp.loss_and_gradients(&x, Target::Labels(&y), 37).unwrap();
    let err = rel_err_norm(&to64(&got), &want);
    assert!(err < 1e-4, "gradients with dropout: relative error {err:e}");
    // Without dropout the gradients are different (the masks matter).
    let plain = CpuMlp::<f64>::new(
        &MlpConfig {
            dropout: 0.0,
            ..config.clone()
        },
        opt,
    )
    .unwrap();
    let (_, none) = plain
        .loss_and_gradients(&to64(&x), Target::Labels(&y), 37)
        .unwrap();
    assert!(rel_err_norm(&none, &want) > 0.1);
    let mut cpu = CpuMlp::<f32>::new(&config, opt).unwrap();
    for _ in 0..20 {
        cpu.train_step(&x, Target::Labels(&y), 37).unwrap();
        mlp.train_step(&x, Target::Labels(&y), 37).unwrap();
    }
    let err = rel_err_norm(&to64(&mlp.params().unwrap()), &to64(&cpu.params));
    assert!(
        err < 1e-3,
        "parameters after 20 steps: relative error {err:e}"
    );
}

/// The f64 reference's backward with dropout against central differences of its loss (the
/// mask depends on the step, not the parameters, so it is fixed while differencing):
/// relative error below 1e-6 in norm, as for the plain model.
#[test]
fn cpu_f64_dropout_gradients_match_finite_differences() {
    let (x, y) = batch(1, 6, 3, 3);
    let x = to64(&x);
    let mut config = MlpConfig::new(3, &[8, 7], 3)
        .with_activation(Activation::Tanh)
        .with_seed(11);
    config.dropout = 0.3;
    let mlp = CpuMlp::<f64>::new(&config, OptimizerConfig::sgd(0.1)).unwrap();
    let (_, analytic) = mlp.loss_and_gradients(&x, Target::Labels(&y), 6).unwrap();
    let h = 1e-6;
    let fd: Vec<f64> = (0..analytic.len())
        .map(|i| {
            let mut plus = mlp.clone();
            plus.params[i] += h;
            let mut minus = mlp.clone();
            minus.params[i] -= h;
            let lp = plus
                .loss_and_gradients(&x, Target::Labels(&y), 6)
                .unwrap()
                .0
                .loss;
            let lm = minus
                .loss_and_gradients(&x, Target::Labels(&y), 6)
                .unwrap()
                .0
                .loss;
            (lp - lm) / (2.0 * h)
        })
        .collect();
    let err = rel_err_norm(&analytic, &fd);
    assert!(err < 1e-6, "relative error {err:e}");
    assert!(analytic.contains(&0.0), "no unit dropped");
}

fn bits(p: &std::path::Path) -> Vec<u32> {
    let c = wgmlp::checkpoint::load(p).unwrap();
    c.params.iter().map(|x| x.to_bits()).collect()
}

/// `--dropout 0` is bit-identical to no dropout; `--dropout 0.3` differs, is stored in the
/// checkpoint, and resumes bit for bit (the masks follow the restored step counter).
#[test]
fn dropout_zero_changes_nothing_and_dropout_resumes_bit_exact() {
    let dir = scratch("dropout");
    let p = |n: &str| dir.join(n);
    let base = ["train", "--dataset", "xor", "--hidden", "16,16", "--epochs"];
    let run = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        ok(wgmlp(&args))
    };
    run(&["3", "--save", s(&p("none.safetensors"))]);
    run(&["3", "--dropout", "0", "--save", s(&p("zero.safetensors"))]);
    assert_eq!(bits(&p("none.safetensors")), bits(&p("zero.safetensors")));
    let full = p("full.safetensors");
    run(&[
        "4",
        "--dropout",
        "0.3",
        "--checkpoint-every",
        "1",
        "--save",
        s(&full),
    ]);
    assert_ne!(bits(&full), bits(&p("none.safetensors")));
    assert_eq!(wgmlp::checkpoint::load(&full).unwrap().config.dropout, 0.3);
    let half = p("half.safetensors");
    run(&[
        "2",
        "--dropout",
        "0.3",
        "--checkpoint-every",
        "1",
        "--save",
        s(&half),
    ]);
    run(&["4", "--resume", s(&half)]);
    assert_eq!(bits(&full), bits(&half));
    for bad in ["1", "-0.1", "1.5", "nan"] {
        assert_refused_early(
            &[
                "train",
                "--dataset",
                "xor",
                "--epochs",
                "1",
                "--dropout",
                bad,
            ],
            &["--dropout", "probability below 1"],
        );
    }
    assert_refused_early(
        &[
            "train",
            "--dataset",
            "xor",
            "--epochs",
            "1",
            "--dropout",
            "0.5",
            "--activation",
            "prelu",
            "--learn-prelu",
        ],
        &["--dropout", "--learn-prelu"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
