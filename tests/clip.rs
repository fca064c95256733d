//! Gradient clipping by global norm: the two GPU kernels (partial sums of squares, then the
//! factor) and the clipped update against the CPU reference, below and above one block of
//! partial sums, clipping and not; and the command-line option.

mod cli_util;
mod common;

use cli_util::{assert_refused_early, ok, s, scratch, wgmlp};
use common::{gpu, rel_err_norm};
use wgmlp::Target;
use wgmlp::optim::clip_scale;
use wgmlp::reference::CpuMlp;
use wgmlp::rng::Rng;
use wgmlp::{GpuMlp, MlpConfig, OptimizerConfig, OptimizerKind};

/// ‖(3, 4)‖ = 5: a limit of 1 scales by 1 / (5 + 1e-6); a limit of 10 leaves the gradient.
#[test]
fn clip_factor_matches_hand_values() {
    let g = [3.0f64, 4.0];
    assert!((clip_scale(1.0, &g) - 1.0 / (5.0 + 1e-6)).abs() < 1e-15);
    assert_eq!(clip_scale(10.0, &g), 1.0);
    assert_eq!(clip_scale(0.0, &g), 1.0);
}

/// Five steps of SGD and Adam with a limit that always clips (1e-3) and one that never does
/// (1e6), on the GPU (f32) and the CPU reference (f64) from the same parameters: relative
/// error ≤ 1e-4 in norm. Models: 1-2 (4 parameters, one partial sum) and 40-500-3 (21,503
/// parameters: two blocks of 16,384), inputs up to |x| = 1e3 so the gradients are large.
#[test]
fn gpu_clipped_steps_match_the_cpu_reference() {
    let ctx = gpu();
    let mut rng = Rng::new(12);
    for (input, hidden, out) in [(1usize, vec![], 2usize), (40, vec![500], 3)] {
        let rows = 9;
        let x: Vec<f32> = (0..rows * input)
            .map(|_| (rng.normal() * 1e3) as f32)
            .collect();
        let y: Vec<u32> = (0..rows).map(|i| (i % out) as u32).collect();
        let config = MlpConfig::new(input, &hidden, out).with_seed(3);
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adam] {
            for clip in [1e-3f32, 1e6] {
                let mut opt = OptimizerConfig::new(kind, 0.01);
                opt.clip_norm = clip;
                let mut cpu = CpuMlp::<f64>::new(&config, opt).unwrap();
                let mut mlp = GpuMlp::new(ctx, &config, opt, rows).unwrap();
                let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
                let before = cpu.params.clone();
                for _ in 0..5 {
                    cpu.train_step(&x64, Target::Labels(&y), rows).unwrap();
                    mlp.train_step(&x, Target::Labels(&y), rows).unwrap();
                }
                let got: Vec<f64> = mlp
                    .params()
                    .unwrap()
                    .iter()
                    .map(|&p| f64::from(p))
                    .collect();
                let err = rel_err_norm(&got, &cpu.params);
                let what = format!("{input}-{hidden:?}-{out} {kind} clip {clip}");
                assert!(err < 1e-4, "{what}: relative error {err:e}");
                if kind == OptimizerKind::Sgd && clip < 1.0 {
                    // Each clipped SGD step moves the parameters by at most lr · clip.
                    let moved: f64 = cpu
                        .params
                        .iter()
                        .zip(&before)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                        .sqrt();
                    assert!(
                        moved <= 5.0 * 0.01 * 1e-3 * (1.0 + 1e-6),
                        "{what}: moved {moved}"
                    );
                    assert!(moved > 0.0);
                }
            }
        }
    }
}

/// --clip-grad-norm trains, is stored with the optimizer state, and bad values are one line.
#[test]
fn clip_grad_norm_option() {
    let dir = scratch("clip");
    let m = dir.join("m.safetensors");
    ok(wgmlp(&[
        "train",
        "--dataset",
        "xor",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--clip-grad-norm",
        "0.5",
        "--checkpoint-every",
        "1",
        "--save",
        s(&m),
    ]));
    let ckpt = wgmlp::checkpoint::load(&m).unwrap();
    assert_eq!(ckpt.training.unwrap().optimizer.clip_norm, 0.5);
    for bad in ["0", "-1", "nan", "inf"] {
        assert_refused_early(
            &[
                "train",
                "--dataset",
                "xor",
                "--epochs",
                "1",
                "--clip-grad-norm",
                bad,
            ],
            &["--clip-grad-norm", "positive"],
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
