//! Validation from the command line: a seeded stratified `--val-split` or a `--val` file is
//! evaluated every epoch, `--early-stopping` stops and saves the best epoch's parameters,
//! and a run interrupted on the way resumes to the same parameters bit for bit.

mod cli_util;

use std::path::Path;

use cli_util::{assert_refused_early, ok, s, scratch, small_csv, wgmlp};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn params(path: &Path) -> Vec<u32> {
    let c = wgmlp::checkpoint::load(path).unwrap();
    c.params.iter().map(|p| p.to_bits()).collect()
}

const BASE: [&str; 10] = [
    "train",
    "--dataset",
    "spirals",
    "--device",
    "cpu",
    "--val-split",
    "0.1",
    "--lr",
    "0.05",
    "--hidden",
];

fn run(extra: &[&str]) -> String {
    let args: Vec<&str> = BASE
        .iter()
        .copied()
        .chain(["16"])
        .chain(extra.iter().copied())
        .collect();
    ok(wgmlp(&args))
}

/// The acceptance test. `--val-split 0.1 --early-stopping 3` stops before the epoch
/// limit and names the best epoch B; the saved parameters are bit-identical to those of the
/// same run trained for exactly B epochs (the CPU reference is deterministic), so they are
/// the best epoch's; a run stopped at an earlier epoch with --checkpoint-every and resumed
/// ends with the same parameters and best epoch, bit for bit.
#[test]
fn early_stopping_saves_the_best_epoch_and_resume_is_bit_exact() {
    let dir = scratch("val-early");
    let (a, am) = (dir.join("a.safetensors"), dir.join("a.json"));
    let out = run(&[
        "--early-stopping",
        "3",
        "--epochs",
        "300",
        "--save",
        s(&a),
        "--metrics-json",
        s(&am),
    ]);
    let fin = &json(&am)["final"];
    let best = fin["best_epoch"].as_u64().unwrap() as usize;
    let epochs = fin["epochs"].as_u64().unwrap() as usize;
    assert!(fin["stopped_early"].as_bool().unwrap(), "{fin}");
    assert_eq!(epochs, best + 3, "{fin}");
    assert!(epochs < 300);
    assert!(
        out.contains(&format!("best epoch {best} (val loss")),
        "{out}"
    );
    assert!(
        fin["test_accuracy"].as_f64().unwrap() > 0.5 && fin["val_loss"].is_number(),
        "{fin}"
    );
    // Per-epoch entries name the validation set; the best epoch has the lowest val loss.
    let hist = json(&am)["epochs"].as_array().unwrap().clone();
    assert_eq!(hist.len(), epochs);
    let losses: Vec<f64> = hist
        .iter()
        .map(|e| e["val_loss"].as_f64().unwrap())
        .collect();
    let argmin = (0..losses.len())
        .min_by(|&i, &j| losses[i].total_cmp(&losses[j]))
        .unwrap();
    assert_eq!(argmin + 1, best, "{losses:?}");
    assert!(hist[0].get("test_loss").is_none());
    // The saved parameters are the best epoch's.
    let b = dir.join("b.safetensors");
    let best_text = best.to_string();
    run(&["--epochs", &best_text, "--save", s(&b)]);
    assert_eq!(
        params(&a),
        params(&b),
        "saved parameters are not epoch {best}'s"
    );
    // Interrupted (here: stopped by --epochs) two epochs before the best, then resumed.
    let c = dir.join("c.safetensors");
    let cut = (best - 2).max(1).to_string();
    run(&[
        "--early-stopping",
        "3",
        "--epochs",
        &cut,
        "--checkpoint-every",
        "1",
        "--save",
        s(&c),
    ]);
    let ckpt = wgmlp::checkpoint::load(&c).unwrap();
    assert!(ckpt.early_stopping.is_some());
    let out = run(&[
        "--early-stopping",
        "3",
        "--epochs",
        "300",
        "--resume",
        s(&c),
    ]);
    assert!(
        out.contains(&format!("best epoch {best} (val loss")),
        "{out}"
    );
    assert_eq!(params(&a), params(&c), "resumed run differs");
    // A run that stopped early has nothing left to resume.
    let d = dir.join("d.safetensors");
    run(&[
        "--early-stopping",
        "3",
        "--epochs",
        "300",
        "--checkpoint-every",
        "5",
        "--save",
        s(&d),
    ]);
    assert_refused_early(
        &[
            "train",
            "--dataset",
            "spirals",
            "--device",
            "cpu",
            "--val-split",
            "0.1",
            "--hidden",
            "16",
            "--early-stopping",
            "3",
            "--epochs",
            "400",
            "--resume",
            s(&d),
        ],
        &["stopped early", "nothing to resume"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--monitor val_accuracy` keeps the epoch with the highest validation accuracy; `--val FILE`
/// is evaluated every epoch and the test file only at the end.
#[test]
fn monitor_val_accuracy_and_val_file() {
    let dir = scratch("val-file");
    let m = dir.join("m.json");
    run(&[
        "--early-stopping",
        "2",
        "--monitor",
        "val_accuracy",
        "--epochs",
        "100",
        "--metrics-json",
        s(&m),
    ]);
    let v = json(&m);
    let best = v["final"]["best_epoch"].as_u64().unwrap() as usize;
    let accs: Vec<f64> = v["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["val_accuracy"].as_f64().unwrap())
        .collect();
    let top = accs.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(accs[best - 1], top, "{accs:?}");
    assert_eq!(accs.iter().position(|&a| a == top).unwrap() + 1, best);
    let (tr, va, te) = (dir.join("tr.csv"), dir.join("va.csv"), dir.join("te.csv"));
    small_csv(&tr, 60, 3);
    small_csv(&va, 30, 3);
    small_csv(&te, 20, 3);
    let mj = dir.join("f.json");
    let out = ok(wgmlp(&[
        "train",
        "--train",
        s(&tr),
        "--val",
        s(&va),
        "--test",
        s(&te),
        "--hidden",
        "8",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--metrics-json",
        s(&mj),
    ]));
    assert!(
        out.contains("test accuracy") && out.contains("val loss"),
        "{out}"
    );
    let v = json(&mj);
    assert!(v["epochs"][2]["val_loss"].is_number() && v["final"]["test_loss"].is_number());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad values: one error line, exit code 2, nothing trained.
#[test]
fn bad_validation_options_are_one_line_errors() {
    let sp = [
        "train",
        "--dataset",
        "spirals",
        "--epochs",
        "1",
        "--device",
        "cpu",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        sp.iter().copied().chain(extra.iter().copied()).collect()
    };
    assert_refused_early(
        &with(&["--val-split", "1.5"]),
        &["--val-split", "between 0 and 1"],
    );
    assert_refused_early(
        &with(&["--val-split", "0"]),
        &["--val-split", "between 0 and 1"],
    );
    assert_refused_early(
        &with(&["--val-split", "0.001"]),
        &["--val-split", "0 for validation"],
    );
    assert_refused_early(
        &with(&["--early-stopping", "3"]),
        &["--early-stopping", "--val-split"],
    );
    assert_refused_early(
        &with(&["--val-split", "0.1", "--early-stopping", "0"]),
        &["--early-stopping", "at least 1"],
    );
    assert_refused_early(
        &with(&[
            "--val-split",
            "0.1",
            "--early-stopping",
            "2",
            "--monitor",
            "val_f1",
        ]),
        &["--monitor", "val_loss or val_accuracy"],
    );
    assert_refused_early(
        &[
            "train",
            "--dataset",
            "wave",
            "--val-split",
            "0.1",
            "--early-stopping",
            "2",
            "--monitor",
            "val_accuracy",
            "--epochs",
            "1",
        ],
        &["--monitor", "classifier"],
    );
    assert_refused_early(&with(&["--val", "v.csv"]), &["--val", "--val-split"]);
    let dir = scratch("val-bad");
    let tr = dir.join("tr.csv");
    small_csv(&tr, 30, 3);
    let va = dir.join("va.csv");
    std::fs::write(&va, "label,x\n0,1\n").unwrap();
    assert_refused_early(
        &["train", "--train", s(&tr), "--val", s(&va), "--epochs", "1"],
        &["va.csv", "--val needs the same columns"],
    );
    assert_refused_early(
        &[
            "train",
            "--train",
            s(&tr),
            "--val",
            s(&va),
            "--val-split",
            "0.1",
            "--epochs",
            "1",
        ],
        &["--val-split", "not both"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
