//! The fused kernel through the trainer and the command line: `--kernel auto|fused|layered`,
//! the choice on train's first line and in the metrics JSON, the fallback of a model just past
//! the kernel's limits, the error for `--kernel fused` on such a model, resuming on the same
//! path, and the trainer's fused and layered paths agreeing epoch by epoch.

mod cli_util;
mod common;

use cli_util::{assert_refused_early, ok, s, scratch, stderr, wgmlp_env};
use common::{gpu, rel_err_norm};
use wgmlp::data::synthetic;
use wgmlp::gpu::fused::KernelChoice;
use wgmlp::{GpuContext, MlpConfig, OptimizerConfig, TrainOptions, Trainer};

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// `wgmlp` with the kernel-choice cache in a scratch directory of its own.
fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    wgmlp_env(args, &[("WGMLP_CACHE_DIR", s(dir))])
}

fn metrics(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn train_names_the_kernel_on_its_first_line_and_in_the_metrics_json() {
    let dir = scratch("fused-kernel-line");
    for (kernel, used) in [("fused", "fused ("), ("layered", "layered")] {
        let json = dir.join(format!("{kernel}.json"));
        let out = run(
            &dir,
            &[
                "train",
                "--epochs",
                "2",
                "--kernel",
                kernel,
                "--metrics-json",
                s(&json),
            ],
        );
        let err = stderr(&out);
        ok(out);
        let first = err.lines().next().unwrap();
        assert!(
            first.starts_with("training 2-64-3") && first.contains(&format!(", kernel {used}")),
            "{first}"
        );
        let m = metrics(&json);
        assert_eq!(m["kernel"]["requested"], kernel);
        assert_eq!(m["kernel"]["used"], kernel);
    }
}

#[test]
fn a_model_just_past_the_limit_falls_back_to_layered_with_a_note() {
    let dir = scratch("fused-fallback");
    let json = dir.join("m.json");
    let out = run(
        &dir,
        &[
            "train",
            "--hidden",
            "129",
            "--epochs",
            "1",
            "--metrics-json",
            s(&json),
        ],
    );
    let err = stderr(&out);
    ok(out);
    assert!(
        err.lines().next().unwrap().contains(", kernel layered"),
        "{err}"
    );
    let note = err
        .lines()
        .find(|l| l.starts_with("note: the fused kernel does not fit"))
        .unwrap_or_else(|| panic!("no fallback note:\n{err}"));
    assert!(note.contains("129") && note.contains("128"), "{note}");
    let m = metrics(&json);
    assert_eq!(
        (
            m["kernel"]["requested"].as_str(),
            m["kernel"]["used"].as_str()
        ),
        (Some("auto"), Some("layered"))
    );
    assert!(m["kernel"]["note"].as_str().unwrap().contains("129"));
}

#[test]
fn kernel_fused_on_a_model_that_does_not_fit_is_a_clear_error() {
    assert_refused_early(
        &[
            "train", "--hidden", "129", "--kernel", "fused", "--epochs", "1",
        ],
        &["--kernel", "fused", "129", "--kernel layered"],
    );
    // What the kernel does not do: dropout, gradient clipping.
    assert_refused_early(
        &[
            "train",
            "--kernel",
            "fused",
            "--dropout",
            "0.2",
            "--epochs",
            "1",
        ],
        &["--kernel", "dropout"],
    );
    assert_refused_early(
        &[
            "train",
            "--kernel",
            "fused",
            "--clip-grad-norm",
            "1",
            "--epochs",
            "1",
        ],
        &["--kernel", "clip"],
    );
    assert_refused_early(
        &["train", "--kernel", "fast", "--epochs", "1"],
        &["--kernel", "auto, fused or layered"],
    );
    assert_refused_early(
        &[
            "train", "--kernel", "fused", "--device", "cpu", "--epochs", "1",
        ],
        &["--kernel", "--device cpu"],
    );
}

/// `auto` measures both paths once and keeps the choice; `wgmlp info` lists it.
#[test]
fn auto_measures_once_and_remembers_the_choice() {
    let dir = scratch("fused-auto");
    let out = run(&dir, &["train", "--epochs", "1", "--batch-size", "32"]);
    let err = stderr(&out);
    ok(out);
    let first = err.lines().next().unwrap();
    assert!(first.contains(", kernel "), "{first}");
    let cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("kernels.json")).unwrap()).unwrap();
    let entries = cache.as_object().unwrap().values().next().unwrap();
    let (key, choice) = entries.as_object().unwrap().iter().next().unwrap();
    assert!(key.starts_with("2-64x1-3") && key.ends_with("@32"), "{key}");
    let used = if first.contains("kernel fused") {
        "fused"
    } else {
        "layered"
    };
    assert_eq!(choice, used);
    let info = ok(run(&dir, &["info"]));
    assert!(
        info.contains("fused kernel (--kernel)") && info.contains(key.as_str()),
        "{info}"
    );
}

/// A run interrupted and resumed on the fused path ends with the same parameters, bit for
/// bit, as an uninterrupted one; the resumed run keeps the path its checkpoint records.
#[test]
fn a_resumed_fused_run_ends_where_an_uninterrupted_one_does() {
    let dir = scratch("fused-resume");
    let (whole, part) = (dir.join("whole.safetensors"), dir.join("part.safetensors"));
    let base = ["train", "--dataset", "xor", "--kernel", "fused"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let args = with(&["--epochs", "4", "--save", s(&whole)]);
    ok(run(
        &dir,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let args = with(&[
        "--epochs",
        "2",
        "--save",
        s(&part),
        "--checkpoint-every",
        "1",
    ]);
    ok(run(
        &dir,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    // Resumed with the default --kernel auto: the checkpoint says fused.
    let out = run(
        &dir,
        &[
            "train",
            "--dataset",
            "xor",
            "--resume",
            s(&part),
            "--epochs",
            "4",
        ],
    );
    let err = stderr(&out);
    ok(out);
    assert!(
        err.lines().next().unwrap().contains("kernel fused"),
        "{err}"
    );
    let a = wgmlp::checkpoint::load(&whole).unwrap();
    let b = wgmlp::checkpoint::load(&part).unwrap();
    assert_eq!(a.params, b.params, "resumed parameters differ");
}

/// The trainer's fused and layered paths: the same losses epoch by epoch (1e-3 relative, as
/// tests/training.rs allows the GPU against the CPU) and parameters within 1e-4 in norm, with
/// a dataset split into many row chunks so batches gather across several.
#[test]
fn trainer_fused_and_layered_paths_agree_over_epochs_with_a_chunked_dataset() {
    let mut ctx = GpuContext::new().expect("adapter");
    // 16 KiB bindings: 2,000 samples of 20 features span 10 chunks, and the fused model's own
    // buffers (partials, row store) still fit.
    ctx.get_mut()
        .unwrap()
        .limits
        .max_storage_buffer_binding_size = 16384;
    let train = synthetic::teacher(2000, 20, 16, 3, 8);
    let test = synthetic::teacher(300, 20, 16, 3, 9);
    let config = MlpConfig::new(20, &[8, 8], 3).with_seed(1);
    let options = TrainOptions {
        batch_size: 32,
        steps_per_submit: 4,
    };
    let opt = OptimizerConfig::adam(0.01);
    let make = |k| {
        Trainer::builder(wgmlp::Device::Gpu(ctx.clone()), &config, opt)
            .options(options.clone())
            .kernel(k)
            .test(test.clone())
            .build(train.clone())
            .unwrap()
    };
    let (mut f, mut l) = (make(KernelChoice::Fused), make(KernelChoice::Layered));
    let chunks = wgmlp::GpuDataset::upload(&ctx, &train)
        .unwrap()
        .chunk_count();
    assert!(chunks >= 10, "{chunks} chunks");
    assert_eq!(f.kernel().unwrap().name(), "fused");
    assert_eq!(l.kernel().unwrap().name(), "layered");
    for _ in 0..3 {
        let (mf, ml) = (f.run_epoch().unwrap(), l.run_epoch().unwrap());
        for (a, b) in [
            (mf.train_loss, ml.train_loss),
            (mf.test_loss.unwrap(), ml.test_loss.unwrap()),
        ] {
            assert!((a - b).abs() <= 1e-3 * b, "{mf:?} vs {ml:?}");
        }
        assert!((mf.train_accuracy - ml.train_accuracy).abs() <= 5.0 / 2000.0);
    }
    let err = rel_err_norm(&to64(&f.params().unwrap()), &to64(&l.params().unwrap()));
    assert!(err < 1e-4, "parameters differ by {err:e}");
    let (ef, el) = (
        f.evaluate_train_set().unwrap(),
        l.evaluate_train_set().unwrap(),
    );
    assert!((ef.0 - el.0).abs() <= 1e-3 * el.0, "{ef:?} vs {el:?}");
    // The shared context of the other tests also works with the fused trainer.
    let _ = gpu();
}
