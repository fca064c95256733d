//! Nothing the user had or trained is lost: a resumed run keeps saving (to the resumed file
//! unless --save says otherwise) with its whole metrics history, Ctrl-C and SIGTERM write
//! the checkpoint and exit 130, a divergence writes the parameters from before the bad step,
//! a killed writer's temporary is cleaned up, and a crafted checkpoint is an error, not a panic.

mod cli_util;

use std::collections::HashMap;
use std::path::Path;

use cli_util::{assert_refused_early, ok, s, scratch, stderr, wgmlp};

/// The `epoch` of each entry of a metrics JSON's `epochs`.
fn epochs_of(json: &serde_json::Value) -> Vec<u64> {
    json["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect()
}

/// The checkpoint's `metrics` metadata, parsed.
fn checkpoint_metrics(path: &Path) -> serde_json::Value {
    let (_, metrics) = wgmlp::checkpoint::load_with_metrics(path).unwrap();
    serde_json::from_str(&metrics.expect("the checkpoint has metrics")).unwrap()
}

#[test]
fn resume_without_save_keeps_saving_to_the_resumed_file_with_the_whole_history() {
    let d = scratch("resume-in-place");
    let (m, j1, j2, curves) = (
        d.join("m.safetensors"),
        d.join("first.json"),
        d.join("second.json"),
        d.join("curves.png"),
    );
    let base = ["train", "--device", "cpu", "--hidden", "8"];
    let mut first = base.to_vec();
    first.extend([
        "--epochs",
        "2",
        "--save",
        s(&m),
        "--checkpoint-every",
        "1",
        "--metrics-json",
        s(&j1),
    ]);
    ok(wgmlp(&first));
    assert_eq!(epochs_of(&checkpoint_metrics(&m)), [1, 2]);
    // Used to train and write nothing.
    let mut second = base.to_vec();
    second.extend([
        "--epochs",
        "4",
        "--resume",
        s(&m),
        "--metrics-json",
        s(&j2),
        "--plot",
        s(&curves),
    ]);
    let stdout = ok(wgmlp(&second));
    assert!(
        stdout.contains(&format!(
            "saved {} (the --resume checkpoint, now at epoch 4",
            m.display()
        )),
        "{stdout}"
    );
    let ckpt = wgmlp::checkpoint::load(&m).unwrap();
    assert_eq!(ckpt.training.unwrap().epoch, 4);
    assert_eq!(epochs_of(&checkpoint_metrics(&m)), [1, 2, 3, 4]);
    // The metrics JSON of the resumed run holds the whole history, the first run's epochs
    // with their original numbers.
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&std::fs::read(&j1).unwrap()).unwrap(),
        serde_json::from_slice(&std::fs::read(&j2).unwrap()).unwrap(),
    );
    assert_eq!(epochs_of(&b), [1, 2, 3, 4]);
    assert_eq!(a["epochs"][1]["train_loss"], b["epochs"][1]["train_loss"]);
    assert_eq!(&std::fs::read(&curves).unwrap()[1..4], b"PNG");
}

#[test]
fn after_divergence_the_parameters_from_before_the_bad_step_are_written() {
    let d = scratch("diverged");
    let m = d.join("m.safetensors");
    let out = wgmlp(&[
        "train",
        "--hidden",
        "8",
        "--lr",
        "1e9",
        "--loss",
        "mse",
        "--optimizer",
        "sgd",
        "--device",
        "cpu",
        "--save",
        s(&m),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("error: training diverged"), "{err}");
    assert!(
        err.contains(&format!(
            "saved the parameters from before that step to {}",
            m.display()
        )),
        "{err}"
    );
    let ckpt = wgmlp::checkpoint::load(&m).expect("a valid checkpoint");
    assert!(ckpt.params.iter().all(|p| p.is_finite()));
    let metrics = checkpoint_metrics(&m);
    let diverged = &metrics["diverged"];
    assert!(diverged["epoch"].as_u64().is_some(), "{metrics}");
    assert!(diverged["step"].as_u64().is_some(), "{metrics}");
    assert!(
        ["inf", "NaN", "-inf"].contains(&diverged["loss"].as_str().unwrap()),
        "{metrics}"
    );
    // The optimizer state is the one after the last good step, and the model evaluates.
    let t = ckpt.training.expect("the optimizer state is kept");
    assert_eq!(
        t.state.step + 1,
        diverged["step"].as_u64().unwrap(),
        "{metrics}"
    );
    let out = ok(wgmlp(&[
        "eval",
        "--model",
        s(&m),
        "--dataset",
        "spirals",
        "--device",
        "cpu",
    ]));
    assert!(out.contains("150 samples"), "{out}");
}

/// A checkpoint whose Adam moment is an empty tensor: the first CPU step of a resumed run
/// used to index it out of bounds (exit 101).
#[test]
fn a_crafted_checkpoint_with_an_empty_moment_is_an_error_not_a_panic() {
    let d = scratch("crafted");
    let m = d.join("m.safetensors");
    ok(wgmlp(&[
        "train",
        "--device",
        "cpu",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--save",
        s(&m),
        "--checkpoint-every",
        "1",
    ]));
    let bytes = std::fs::read(&m).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, info) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta: HashMap<String, String> = info.metadata().clone().unwrap();
    let tensors: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            if name == "optimizer.m" {
                let empty =
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![0], &[])
                        .unwrap();
                (name, empty)
            } else {
                (name, t)
            }
        })
        .collect();
    let crafted = d.join("crafted.safetensors");
    std::fs::write(
        &crafted,
        safetensors::serialize(tensors, Some(meta)).unwrap(),
    )
    .unwrap();
    assert_refused_early(
        &[
            "train",
            "--resume",
            s(&crafted),
            "--device",
            "cpu",
            "--epochs",
            "3",
        ],
        &["crafted.safetensors: tensor optimizer.m", "found [0]"],
    );
}

/// A process killed while writing a checkpoint leaves `.NAME.tmp-PID-N.safetensors`; the
/// next write of the same file removes it once that process is gone.
#[cfg(target_os = "linux")]
#[test]
fn the_next_save_removes_temporaries_of_dead_writers() {
    let d = scratch("stale-temp");
    let m = d.join("m.safetensors");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = d.join(format!(".m.safetensors.tmp-{dead}-0.safetensors"));
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    ok(wgmlp(&[
        "train",
        "--device",
        "cpu",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--save",
        s(&m),
    ]));
    assert!(!stale.exists(), "the stale temporary is still there");
    let left: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["m.safetensors"]);
}
