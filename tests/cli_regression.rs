//! Regression from the command line: generated CSVs of a known smooth function plus noise,
//! trained on the GPU and the CPU reference to R² ≥ 0.95, evaluated and predicted with the
//! saved model; task detection; every new option's bad values.

mod cli_util;

use std::path::{Path, PathBuf};

use cli_util::{assert_refused_early, ok, s, scratch, stderr, wgmlp};
use wgmlp::data::{csv, synthetic};

/// Writes train/test CSVs of `synthetic::wave` (y = sin(3·x₁)·x₂ + 0.05·ε, and with 3 targets
/// also cos(2·x₁) + x₂² and x₁·x₂): targets first, header `y0,…,f0,f1`.
fn wave_csvs(dir: &Path, targets: usize) -> (PathBuf, PathBuf) {
    let (tr, te) = (dir.join("train.csv"), dir.join("test.csv"));
    csv::write_regression(&tr, &synthetic::wave(2000, targets, 1)).unwrap();
    csv::write_regression(&te, &synthetic::wave(500, targets, 2)).unwrap();
    (tr, te)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn final_metric(path: &Path, key: &str) -> f64 {
    json(path)["final"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("no final.{key} in {}", path.display()))
}

/// Trains on `device`, returns the metrics JSON path.
fn train(dir: &Path, tr: &Path, te: &Path, targets: usize, device: &str) -> PathBuf {
    let m = dir.join(format!("metrics-{device}.json"));
    let model = dir.join(format!("model-{device}.safetensors"));
    let t = targets.to_string();
    let out = ok(wgmlp(&[
        "train",
        "--train",
        s(tr),
        "--test",
        s(te),
        "--task",
        "regress",
        "--targets",
        &t,
        "--normalize",
        "standard",
        "--hidden",
        "64",
        "--activation",
        "tanh",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "64",
        "--epochs",
        "40",
        "--device",
        device,
        "--save",
        s(&model),
        "--metrics-json",
        s(&m),
    ]));
    assert!(out.contains("test R²"), "{out}");
    m
}

/// The acceptance test, one target and three: R² ≥ 0.95 on the test split with
/// `--task regress --normalize standard`, on the GPU and the CPU reference. The two paths
/// run the same steps in f32 with different summation orders over 40 epochs of Adam, so
/// they are compared within 1e-3 in R² and 1% in MSE (measured gap: below 1e-6 in R², with
/// R² 0.974 for one target and 0.979 for three).
#[test]
fn wave_regression_reaches_r2_095_on_gpu_and_cpu_and_they_agree() {
    for targets in [1usize, 3] {
        let dir = scratch(&format!("regress-wave{targets}"));
        let (tr, te) = wave_csvs(&dir, targets);
        let g = train(&dir, &tr, &te, targets, "gpu");
        let c = train(&dir, &tr, &te, targets, "cpu");
        let (gr2, cr2) = (final_metric(&g, "test_r2"), final_metric(&c, "test_r2"));
        assert!(
            gr2 >= 0.95 && cr2 >= 0.95,
            "{targets} targets: R² {gr2} (GPU), {cr2} (CPU)"
        );
        eprintln!("{targets} targets: test R² {gr2} (GPU), {cr2} (CPU)");
        assert!((gr2 - cr2).abs() < 1e-3, "R² {gr2} vs {cr2}");
        let (gm, cm) = (final_metric(&g, "test_mse"), final_metric(&c, "test_mse"));
        assert!((gm - cm).abs() <= 0.01 * cm, "MSE {gm} vs {cm}");
        let epochs = json(&g)["epochs"].as_array().unwrap().clone();
        assert_eq!(epochs.len(), 40);
        assert!(epochs[0]["train_r2"].is_number() && epochs[39]["test_mae"].is_number());
        assert_eq!(json(&g)["config"]["task"], "regress");
        assert!(json(&g)["notes"]["final.train_loss"].is_string());
        // eval on the test CSV reproduces the last epoch's test metrics (the model is saved
        // after it): both are the same forward pass over the same rows.
        let model = dir.join("model-gpu.safetensors");
        let em = dir.join("eval.json");
        let out = ok(wgmlp(&[
            "eval",
            "--model",
            s(&model),
            "--test",
            s(&te),
            "--device",
            "gpu",
            "--metrics-json",
            s(&em),
        ]));
        assert!(out.contains("R²") && out.contains("MAE"), "{out}");
        let e = json(&em);
        assert!(
            (e["r2"].as_f64().unwrap() - gr2).abs() < 1e-4,
            "{e} vs {gr2}"
        );
        // predict writes index,y0,... in the targets' units.
        let input = dir.join("points.csv");
        std::fs::write(&input, "x1,x2\n0.5,0.8\n-0.3,-0.6\n").unwrap();
        let out = ok(wgmlp(&[
            "predict",
            "--model",
            s(&model),
            "--input",
            s(&input),
        ]));
        let lines: Vec<&str> = out.lines().collect();
        let header: Vec<String> = (0..targets).map(|j| format!("y{j}")).collect();
        assert_eq!(lines[0], format!("index,{}", header.join(",")));
        let y0: f64 = lines[1].split(',').nth(1).unwrap().parse().unwrap();
        let want = (1.5f64).sin() * 0.8;
        assert!(
            (y0 - want).abs() < 0.15,
            "predicted {y0}, sin(1.5)·0.8 = {want}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Target standardisation is stored in the checkpoint and undone by predict: the
/// predictions of a model trained on targets ×1000 + 500 are in those units.
#[test]
fn standardised_targets_are_stored_and_undone_at_predict() {
    let dir = scratch("regress-scaled");
    let mut d = synthetic::wave(1000, 1, 3);
    for y in &mut d.targets {
        *y = *y * 1000.0 + 500.0;
    }
    let tr = dir.join("big.csv");
    csv::write_regression(&tr, &d).unwrap();
    let model = dir.join("m.safetensors");
    let out = ok(wgmlp(&[
        "train",
        "--train",
        s(&tr),
        "--normalize-targets",
        "standard",
        "--hidden",
        "32",
        "--activation",
        "tanh",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "50",
        "--epochs",
        "30",
        "--device",
        "cpu",
        "--save",
        s(&model),
    ]));
    // The first column holds floats: detected as regression with a note.
    assert!(out.contains("regression"), "{out}");
    let ckpt = wgmlp::checkpoint::load(&model).unwrap();
    let tn = ckpt.target_normalization.unwrap();
    assert!(
        (tn.mean[0] - 500.0).abs() < 50.0 && tn.std[0] > 100.0,
        "{tn:?}"
    );
    let input = dir.join("p.csv");
    std::fs::write(&input, "0.5,0.8\n").unwrap();
    let out = ok(wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--device",
        "cpu",
    ]));
    let y: f64 = out
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let want = (1.5f64).sin() * 0.8 * 1000.0 + 500.0;
    assert!((y - want).abs() < 150.0, "predicted {y}, want about {want}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Float targets in the first column are detected (the issue's `label "-0.141120" is
/// negative` case), named target columns anywhere in the row work, and an integer label
/// column with many distinct values gets a hint.
#[test]
fn task_detection_named_columns_and_hint() {
    let dir = scratch("regress-detect");
    let p = dir.join("named.csv");
    let mut t = String::from("a,target,b\n");
    for i in 0..200 {
        let (a, b) = ((i % 17) as f32 * 0.1, (i % 5) as f32 * 0.2);
        t += &format!("{a},{},{b}\n", 2.0 * a - b);
    }
    std::fs::write(&p, &t).unwrap();
    let out = wgmlp(&[
        "train",
        "--train",
        s(&p),
        "--target-columns",
        "target",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--device",
        "cpu",
    ]);
    let stdout = ok(out);
    assert!(stdout.contains("2-8-1 relu mse regression"), "{stdout}");
    let neg = dir.join("neg.csv");
    std::fs::write(&neg, "-0.141120,1,2\n0.5,2,3\n0.25,3,1\n").unwrap();
    let out = wgmlp(&[
        "train",
        "--train",
        s(&neg),
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("training a regression model"), "{err}");
    let many = dir.join("many.csv");
    let t: String = (0..300).map(|i| format!("{},{}\n", i * 3, i)).collect();
    std::fs::write(&many, t).unwrap();
    let out = wgmlp(&[
        "train",
        "--train",
        s(&many),
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]);
    assert!(stderr(&out).contains("--task regress"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// --loss l1 and --loss huber train regression models and are named in the summary; the
/// step schedule runs end to end.
#[test]
fn l1_and_huber_losses_train() {
    for loss in ["l1", "huber"] {
        let out = ok(wgmlp(&[
            "train",
            "--dataset",
            "wave",
            "--loss",
            loss,
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--lr-schedule",
            "step:1:0.5",
        ]));
        assert!(
            out.contains(&format!("2-64-1 relu {loss} regression")),
            "{out}"
        );
        assert!(out.contains("test R²"), "{out}");
    }
}

/// Every new option's bad values: one error line, exit code 2, nothing trained.
#[test]
fn bad_regression_options_are_one_line_errors() {
    let dir = scratch("regress-bad");
    let (tr, _) = wave_csvs(&dir, 1);
    let t = s(&tr);
    let base = ["train", "--train", t, "--device", "cpu", "--epochs", "1"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    assert_refused_early(
        &with(&["--task", "cluster"]),
        &["--task", "classify or regress"],
    );
    assert_refused_early(&with(&["--targets", "0"]), &["--targets", "at least 1"]);
    assert_refused_early(&with(&["--targets", "3"]), &["no feature column"]);
    assert_refused_early(
        &with(&["--target-columns", "nope"]),
        &["train.csv", "no column \"nope\"", "y0,f0,f1"],
    );
    assert_refused_early(
        &with(&["--targets", "1", "--target-columns", "y0"]),
        &["--targets", "not both"],
    );
    assert_refused_early(&with(&["--loss", "hinge"]), &["--loss", "l1 or huber"]);
    assert_refused_early(
        &with(&["--loss", "ce", "--task", "regress"]),
        &["--loss", "cross-entropy"],
    );
    assert_refused_early(
        &with(&["--task", "classify", "--targets", "1"]),
        &["--task", "regression targets"],
    );
    assert_refused_early(
        &with(&["--normalize-targets", "minmax"]),
        &["--normalize-targets", "minmax"],
    );
    assert_refused_early(
        &[
            "train",
            "--dataset",
            "spirals",
            "--loss",
            "huber",
            "--epochs",
            "1",
        ],
        &["--loss", "regression loss"],
    );
    assert_refused_early(
        &[
            "train",
            "--dataset",
            "spirals",
            "--normalize-targets",
            "standard",
            "--epochs",
            "1",
        ],
        &["--normalize-targets", "class labels"],
    );
    let png = dir.join("b.png");
    assert_refused_early(
        &[
            "train",
            "--dataset",
            "wave",
            "--plot-boundary",
            s(&png),
            "--epochs",
            "1",
        ],
        &["--plot-boundary", "regression"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
