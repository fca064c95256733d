//! The command line end to end: train on each data format, evaluate and predict with the
//! saved model, check the numbers against the CPU reference and an independent reader of
//! the checkpoint, resume bit for bit, and every kind of bad input (exit code 2, one line).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wgmlp::data::{Dataset, csv, idx, synthetic};
use wgmlp::rng::Rng;

fn wgmlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgmlp"))
        .args(args)
        .output()
        .expect("run wgmlp")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stderr without Mesa's harmless "XDG_RUNTIME_DIR is invalid" lines.
fn stderr(out: &Output) -> String {
    text(&out.stderr)
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "wgmlp failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        stderr(&out)
    );
    text(&out.stdout)
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgmlp-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Bad input: exit code 2, one error line naming `parts`, no panic.
fn assert_bad(args: &[&str], parts: &[&str]) {
    let out = wgmlp(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: expected one error line, got:\n{err}"
    );
    for p in parts {
        assert!(
            lines[0].contains(p),
            "{args:?}: {:?} does not mention {p:?}",
            lines[0]
        );
    }
}

/// A small image-like dataset: 4×4 pixels, the class lights one of three quadrants.
fn images(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let (mut px, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let c = rng.below(3) as usize;
        for p in 0..16 {
            let (r, col) = (p / 4, p % 4);
            let quadrant = (r / 2) * 2 + col / 2;
            let base = if quadrant == c { 200.0 } else { 40.0 };
            px.push((base + rng.normal() * 30.0).clamp(0.0, 255.0) as u8);
        }
        labels.push(c as u8);
    }
    (px, labels)
}

fn idx_dir(name: &str) -> PathBuf {
    let d = scratch(name);
    let (tx, ty) = images(300, 1);
    let (vx, vy) = images(90, 2);
    idx::write_images_u8(
        &d.join("train-images-idx3-ubyte.gz"),
        &[300, 4, 4],
        &tx,
        true,
    )
    .unwrap();
    idx::write_labels(&d.join("train-labels-idx1-ubyte"), &ty, false).unwrap();
    idx::write_images_u8(&d.join("t10k-images-idx3-ubyte"), &[90, 4, 4], &vx, false).unwrap();
    idx::write_labels(&d.join("t10k-labels-idx1-ubyte.gz"), &vy, true).unwrap();
    d
}

fn parse_after(text: &str, key: &str) -> f64 {
    let i = text
        .find(key)
        .unwrap_or_else(|| panic!("{key:?} not in {text}"))
        + key.len();
    text[i..]
        .split(|c: char| c != '.' && !c.is_ascii_digit())
        .find(|t| !t.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

/// Forward pass read straight from the safetensors file with the `safetensors` crate alone:
/// `x·Wᵀ + b` per `nn.Linear` (PyTorch's [out, in] layout), ReLU between them.
fn independent_forward(model: &Path, x: &[f32], n: usize) -> Vec<Vec<f64>> {
    let bytes = std::fs::read(model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let floats = |name: &str| -> (Vec<usize>, Vec<f64>) {
        let t = st.tensor(name).unwrap();
        let v = t
            .data()
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect();
        (t.shape().to_vec(), v)
    };
    let mut rows: Vec<Vec<f64>> = x
        .chunks(x.len() / n)
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
    let mut l = 0;
    while st.tensor(&format!("{l}.weight")).is_ok() {
        let (shape, w) = floats(&format!("{l}.weight"));
        let (_, b) = floats(&format!("{l}.bias"));
        let (out, inp) = (shape[0], shape[1]);
        let last = st.tensor(&format!("{}.weight", l + 2)).is_err();
        rows = rows
            .iter()
            .map(|r| {
                (0..out)
                    .map(|o| {
                        let z = b[o] + (0..inp).map(|i| r[i] * w[o * inp + i]).sum::<f64>();
                        if last { z } else { z.max(0.0) }
                    })
                    .collect()
            })
            .collect();
        l += 2;
    }
    rows
}

#[test]
fn readme_main_command_trains_the_builtin_dataset_to_097() {
    let d = scratch("main");
    let (m, c, b) = (
        d.join("m.json"),
        d.join("curves.png"),
        d.join("boundary.png"),
    );
    let out = wgmlp(&[
        "train",
        "--metrics-json",
        s(&m),
        "--plot",
        s(&c),
        "--plot-boundary",
        s(&b),
    ]);
    let err = stderr(&out);
    let stdout = ok(out);
    let acc = parse_after(&stdout, "test accuracy ");
    assert!(acc >= 0.97, "test accuracy {acc}\n{stdout}");
    assert!(stdout.contains(" on "), "names the device: {stdout}");
    assert!(
        err.contains("epoch 100/100"),
        "one line per epoch when not a terminal:\n{err}"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    for key in ["adapter", "config", "epochs", "final"] {
        assert!(json.get(key).is_some(), "metrics JSON lacks {key}: {json}");
    }
    let e = &json["epochs"][0];
    for key in [
        "epoch",
        "train_loss",
        "train_accuracy",
        "test_loss",
        "test_accuracy",
        "seconds",
        "samples_per_second",
    ] {
        assert!(e.get(key).is_some(), "epoch entry lacks {key}: {e}");
    }
    assert!(json["final"]["test_accuracy"].as_f64().unwrap() >= 0.97);
    for p in [&c, &b] {
        let png = std::fs::read(p).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{}", p.display());
    }
}

#[test]
fn idx_directory_train_eval_predict_agree_with_the_cpu_reference() {
    let d = idx_dir("idx");
    let model = d.join("m.safetensors");
    let common = [
        "--hidden",
        "16",
        "--epochs",
        "8",
        "--batch-size",
        "32",
        "--lr",
        "0.5",
        "--normalize",
        "standard",
    ];
    let mut args = vec!["train", "--data", s(&d), "--save", s(&model)];
    args.extend(common);
    let stdout = ok(wgmlp(&args));
    assert!(parse_after(&stdout, "test accuracy ") > 0.9, "{stdout}");
    // eval on the GPU and on the CPU reference give the same numbers.
    let gpu = ok(wgmlp(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&d),
        "--confusion",
    ]));
    let cpu = ok(wgmlp(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&d),
        "--device",
        "cpu",
    ]));
    let (ga, ca) = (
        parse_after(&gpu, "accuracy "),
        parse_after(&cpu, "accuracy "),
    );
    let (gl, cl) = (parse_after(&gpu, "loss "), parse_after(&cpu, "loss "));
    assert_eq!(ga, ca, "{gpu}\n{cpu}");
    assert!((gl - cl).abs() <= 1e-3 * cl.max(1e-3), "{gpu}\n{cpu}");
    assert!(gpu.contains("confusion matrix"), "{gpu}");
    // predict: the same classes as the CPU reference path, probabilities within 1e-5.
    let (vx, _) = images(90, 2);
    let feats: Vec<f32> = vx.iter().map(|&p| p as f32 / 255.0).collect();
    let input = d.join("x.csv");
    let mut csv_text = String::new();
    for r in feats.chunks(16) {
        csv_text += &r
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",");
        csv_text += "\n";
    }
    std::fs::write(&input, csv_text).unwrap();
    let pred = ok(wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&input),
    ]));
    let pred_cpu = ok(wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--device",
        "cpu",
    ]));
    let lines: Vec<&str> = pred.lines().collect();
    assert!(lines[0].starts_with("index,class,p0,p1,p2"), "{}", lines[0]);
    assert_eq!(lines.len(), 91);
    for (a, b) in lines.iter().zip(pred_cpu.lines()).skip(1) {
        let (va, vb): (Vec<f64>, Vec<f64>) = (
            a.split(',').map(|v| v.parse().unwrap()).collect(),
            b.split(',').map(|v| v.parse().unwrap()).collect(),
        );
        assert_eq!(va[1], vb[1], "{a} vs {b}");
        for (x, y) in va[2..].iter().zip(&vb[2..]) {
            assert!((x - y).abs() <= 1e-5, "{a} vs {b}");
        }
    }
}

#[test]
fn csv_train_eval_predict_and_an_independent_reader_of_the_checkpoint() {
    let d = scratch("csv");
    let train: Dataset = synthetic::circles(400, 0.05, 3);
    let test: Dataset = synthetic::circles(100, 0.05, 4);
    let (tp, vp, model) = (
        d.join("train.csv"),
        d.join("test.csv"),
        d.join("m.safetensors"),
    );
    csv::write_labeled(&tp, &train).unwrap();
    csv::write_labeled(&vp, &test).unwrap();
    let stdout = ok(wgmlp(&[
        "train",
        "--train",
        s(&tp),
        "--test",
        s(&vp),
        "--hidden",
        "16,16",
        "--optimizer",
        "adam",
        "--lr",
        "0.02",
        "--epochs",
        "40",
        "--batch-size",
        "32",
        "--save",
        s(&model),
    ]));
    assert!(parse_after(&stdout, "test accuracy ") >= 0.95, "{stdout}");
    let ev = ok(wgmlp(&["eval", "--model", s(&model), "--test", s(&vp)]));
    assert!(parse_after(&ev, "accuracy ") >= 0.95, "{ev}");
    // predict on the test features (no label column).
    let input = d.join("x.csv");
    let mut t = String::from("x0,x1\n");
    for i in 0..test.len() {
        t += &format!("{},{}\n", test.row(i)[0], test.row(i)[1]);
    }
    std::fs::write(&input, t).unwrap();
    let pred = ok(wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&input),
    ]));
    let reference = independent_forward(&model, &test.features, test.len());
    for (line, logits) in pred.lines().skip(1).zip(&reference) {
        let cells: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        let best = (0..logits.len()).fold(0, |b, i| if logits[i] > logits[b] { i } else { b });
        assert_eq!(cells[1] as usize, best, "{line} vs {logits:?}");
        let mx = logits[best];
        let z: f64 = logits.iter().map(|l| (l - mx).exp()).sum();
        for (c, l) in logits.iter().enumerate() {
            assert!(
                (cells[2 + c] - (l - mx).exp() / z).abs() < 1e-5,
                "{line} vs {logits:?}"
            );
        }
    }
}

/// `--learn-prelu` on the GPU and on the CPU path: each pReLU slope is learned and saved as
/// PyTorch's `nn.PReLU()` weight at Sequential index 2l+1.
#[test]
fn learn_prelu_trains_and_saves_each_slope_as_a_prelu_weight() {
    let d = scratch("learn-prelu");
    for device in ["auto", "cpu"] {
        let path = d.join(format!("{device}.safetensors"));
        ok(wgmlp(&[
            "train",
            "--dataset",
            "spirals",
            "--hidden",
            "8,8",
            "--activation",
            "prelu",
            "--learn-prelu",
            "--epochs",
            "3",
            "--device",
            device,
            "--save",
            s(&path),
        ]));
        let ckpt = wgmlp::checkpoint::load(&path).unwrap();
        assert!(ckpt.config.learn_prelu, "{device}");
        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (l, name) in [(0, "1.weight"), (1, "3.weight")] {
            let t = st.tensor(name).unwrap();
            assert_eq!(t.shape(), [1], "{device} {name}");
            let alpha = f32::from_le_bytes(t.data().try_into().unwrap());
            let offset = ckpt.config.layers()[l].alpha_offset.unwrap();
            assert_eq!(alpha, ckpt.params[offset], "{device} {name}");
            assert!(
                (alpha - 0.25).abs() > 1e-4,
                "{device} {name}: α stayed {alpha}"
            );
        }
    }
}

#[test]
fn resumed_run_ends_bit_identical_to_an_uninterrupted_one() {
    let d = scratch("resume");
    let (a, b, c) = (
        d.join("a.safetensors"),
        d.join("b.safetensors"),
        d.join("c.safetensors"),
    );
    let base = [
        "train",
        "--dataset",
        "spirals",
        "--hidden",
        "32",
        "--optimizer",
        "adamw",
        "--checkpoint-every",
        "2",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        ok(wgmlp(&args))
    };
    run(&["--epochs", "2", "--save", s(&a)]);
    run(&["--epochs", "5", "--resume", s(&a), "--save", s(&b)]);
    run(&["--epochs", "5", "--save", s(&c)]);
    let (cb, cc) = (
        wgmlp::checkpoint::load(&b).unwrap(),
        wgmlp::checkpoint::load(&c).unwrap(),
    );
    assert_eq!(cb.params, cc.params, "parameters differ after resuming");
    let (tb, tc) = (cb.training.unwrap(), cc.training.unwrap());
    assert_eq!((tb.epoch, tb.state.step), (5, tc.state.step));
    assert_eq!(tb.state, tc.state, "optimizer state differs after resuming");
}

#[test]
fn bad_idx_files_are_one_line_errors_with_exit_code_2() {
    let d = idx_dir("badidx");
    let images = d.join("t10k-images-idx3-ubyte");
    let good = std::fs::read(&images).unwrap();
    let train = |_: ()| {
        vec![
            "train".to_string(),
            "--data".into(),
            s(&d).into(),
            "--epochs".into(),
            "1".into(),
        ]
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        ([&[9u8, 9][..], &good[2..]].concat(), "not an IDX"),
        (good[..good.len() - 7].to_vec(), "t10k-images"),
        ([&good[..], &[1, 2, 3]].concat(), "t10k-images"),
        (
            {
                let mut g = good.clone();
                g[3] = 2;
                g
            },
            "t10k-images",
        ),
    ];
    for (bytes, part) in cases {
        std::fs::write(&images, bytes).unwrap();
        let args = train(());
        let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        assert_bad(&args, &["t10k-images", part]);
    }
    std::fs::write(&images, &good).unwrap();
    // A corrupt gzip stream: a valid gzip header followed by garbage.
    let gz = d.join("train-images-idx3-ubyte.gz");
    let original = std::fs::read(&gz).unwrap();
    std::fs::write(
        &gz,
        [&original[..10], &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3][..]].concat(),
    )
    .unwrap();
    assert_bad(&["train", "--data", s(&d)], &["train-images", "gzip"]);
    std::fs::write(&gz, &original).unwrap();
    // Image and label counts that differ.
    idx::write_labels(&d.join("t10k-labels-idx1-ubyte.gz"), &[0, 1, 2], true).unwrap();
    assert_bad(&["train", "--data", s(&d)], &["t10k"]);
    // A missing directory.
    assert_bad(&["train", "--data", s(&d.join("nope"))], &["nope"]);
}

#[test]
fn bad_csv_files_are_one_line_errors_naming_row_and_column() {
    let d = scratch("badcsv");
    let f = d.join("t.csv");
    for (content, parts) in [
        ("label,a,b\n0,1,2\n1,3\n", &["t.csv", "row 3"][..]),
        ("0,1,2\n1,abc,2\n", &["t.csv", "row 2", "abc"][..]),
        ("0,1,2\n1,NaN,2\n", &["t.csv", "row 2"][..]),
        ("0,1,2\n1,inf,2\n", &["t.csv", "row 2"][..]),
        ("", &["t.csv"][..]),
        ("0,1,2\n-1,1,2\n", &["t.csv", "row 2"][..]),
    ] {
        std::fs::write(&f, content).unwrap();
        assert_bad(&["train", "--train", s(&f), "--epochs", "1"], parts);
    }
}

#[test]
fn bad_models_outputs_and_resumes_never_panic_or_lose_files() {
    let d = scratch("badmodel");
    let model = d.join("m.safetensors");
    ok(wgmlp(&[
        "train",
        "--epochs",
        "3",
        "--hidden",
        "8",
        "--save",
        s(&model),
        "--checkpoint-every",
        "3",
    ]));
    let saved = std::fs::read(&model).unwrap();
    // Feature count that does not match the model, at eval and at predict.
    let f = d.join("three.csv");
    std::fs::write(&f, "0,1,2,3\n1,2,3,4\n").unwrap();
    assert_bad(
        &["eval", "--model", s(&model), "--test", s(&f)],
        &["three.csv", "expects 2"],
    );
    std::fs::write(&f, "1,2,3\n4,5,6\n").unwrap();
    assert_bad(
        &["predict", "--model", s(&model), "--input", s(&f)],
        &["three.csv", "2"],
    );
    // Labels the model cannot output: the file and row are named.
    std::fs::write(&f, "7,0.1,0.2\n").unwrap();
    assert_bad(
        &["eval", "--model", s(&model), "--test", s(&f)],
        &["three.csv: row 1, column 1", "label 7", "3 classes"],
    );
    // A corrupt model file.
    let bad = d.join("bad.safetensors");
    std::fs::write(&bad, b"definitely not safetensors").unwrap();
    assert_bad(
        &["eval", "--model", s(&bad), "--dataset", "spirals"],
        &["bad.safetensors"],
    );
    std::fs::write(&bad, &saved[..saved.len() / 2]).unwrap();
    assert_bad(
        &["predict", "--model", s(&bad), "--input", s(&f)],
        &["bad.safetensors"],
    );
    // A model from a different architecture on --resume.
    assert_bad(
        &[
            "train",
            "--resume",
            s(&model),
            "--hidden",
            "32",
            "--epochs",
            "4",
        ],
        &["m.safetensors", "2-8-3", "2-32-3"],
    );
    // --resume of a missing file; an output path that cannot be written.
    assert_bad(
        &["train", "--resume", s(&d.join("missing.safetensors"))],
        &["missing.safetensors"],
    );
    assert_bad(
        &["train", "--save", "/nonexistent-dir/m.safetensors"],
        &["/nonexistent-dir"],
    );
    assert_bad(&["train", "--metrics-json", s(&d)], &["directory"]);
    // A run that fails before training (a bad option) leaves the existing checkpoint
    // untouched. (A run that diverges writes the parameters it reached to --save: see
    // nothing_lost.rs.)
    assert_bad(
        &["train", "--hidden", "8", "--lr", "0", "--save", s(&model)],
        &["--lr", "positive"],
    );
    assert_eq!(
        std::fs::read(&model).unwrap(),
        saved,
        "the checkpoint was changed by a failed run"
    );
    assert!(
        std::fs::read_dir(&d).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp-"))
    );
    // Unknown names are usage errors too.
    assert_bad(&["train", "--activation", "softmax"], &["softmax"]);
    assert_bad(&["train", "--dataset", "mnist"], &["mnist"]);
    assert_bad(&["train", "--batch-size", "0"], &["batch"]);
}
