//! Label columns and class names from the command line: string labels in the last column
//! train, the names are stored in the checkpoint and printed by `eval --confusion` and
//! `predict` (with `--top-k` and `--output`); bad values are one-line errors.

mod cli_util;

use std::path::{Path, PathBuf};

use cli_util::{assert_refused_early, ok, s, scratch, stderr, text, wgmlp};
use wgmlp::rng::Rng;

const SPECIES: [&str; 3] = ["virginica", "setosa", "versicolor"];

/// Three well-separated blobs with the species name in the last column (a header row).
fn species_csv(path: &Path, rows: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut t = String::from("length,width,species\n");
    for i in 0..rows {
        let c = i % 3;
        let (a, b) = (
            3.0 * c as f64 + 0.3 * rng.normal(),
            -2.0 * c as f64 + 0.3 * rng.normal(),
        );
        t += &format!("{a:.4},{b:.4},{}\n", SPECIES[c]);
    }
    std::fs::write(path, t).unwrap();
}

fn files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (tr, te) = (dir.join("train.csv"), dir.join("test.csv"));
    species_csv(&tr, 300, 1);
    species_csv(&te, 60, 2);
    let pts = dir.join("points.csv");
    std::fs::write(&pts, "length,width\n0,0\n3,-2\n6,-4\n").unwrap();
    (tr, te, pts)
}

/// The acceptance test: a CSV with string labels in the last column trains, the
/// names (first-seen order) are in the checkpoint, `eval --confusion` and `predict` print them.
#[test]
fn string_labels_in_the_last_column_train_and_predict_prints_class_names() {
    let dir = scratch("labels-species");
    let (tr, te, pts) = files(&dir);
    let model = dir.join("m.safetensors");
    let out = ok(wgmlp(&[
        "train",
        "--train",
        s(&tr),
        "--test",
        s(&te),
        "--label-column",
        "species",
        "--normalize",
        "standard",
        "--hidden",
        "16",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "32",
        "--epochs",
        "15",
        "--save",
        s(&model),
    ]));
    assert!(
        out.contains("2-16-3 relu ce") && out.contains("test accuracy 1.0000"),
        "{out}"
    );
    let ckpt = wgmlp::checkpoint::load(&model).unwrap();
    assert_eq!(ckpt.class_names, SPECIES.map(String::from).to_vec());
    let out = ok(wgmlp(&[
        "eval",
        "--model",
        s(&model),
        "--test",
        s(&te),
        "--label-column",
        "last",
        "--confusion",
    ]));
    assert!(out.contains("accuracy 1.0000"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("confusion"))
        .collect();
    assert!(
        rows[1].contains("precision") && rows[1].contains("f1"),
        "{out}"
    );
    for (i, name) in SPECIES.iter().enumerate() {
        assert!(rows[1].contains(name), "{out}");
        // Every sample right: precision, recall and F1 1, support 20.
        assert!(
            rows[2 + i].ends_with("1.0000  1.0000  1.0000       20"),
            "{out}"
        );
        let cells: Vec<&str> = rows[2 + i].split_whitespace().collect();
        assert_eq!(cells[0], *name, "{out}");
        assert_eq!(cells[1 + i], "20", "{out}");
    }
    let out = ok(wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&pts),
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "index,class,p_virginica,p_setosa,p_versicolor");
    for (i, name) in SPECIES.iter().enumerate() {
        assert!(lines[1 + i].starts_with(&format!("{i},{name},")), "{out}");
    }
    // --top-k 2 --output: the two most probable names per row, written to the file.
    let csv_out = dir.join("top.csv");
    let o = wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&pts),
        "--top-k",
        "2",
        "--output",
        s(&csv_out),
    ]);
    assert!(
        o.status.success() && text(&o.stdout).is_empty(),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("wrote"), "{}", stderr(&o));
    let top = std::fs::read_to_string(&csv_out).unwrap();
    let lines: Vec<&str> = top.lines().collect();
    assert_eq!(lines[0], "index,class1,p1,class2,p2");
    assert!(lines[2].starts_with("1,setosa,"), "{top}");
    let p1: f64 = lines[2].split(',').nth(2).unwrap().parse().unwrap();
    let p2: f64 = lines[2].split(',').nth(4).unwrap().parse().unwrap();
    assert!(p1 > 0.9 && p2 <= p1, "{top}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--class-order sorted` numbers the names alphabetically; an unseen test name is an error
/// naming the file, row and label.
#[test]
fn sorted_class_order_and_unknown_test_label() {
    let dir = scratch("labels-sorted");
    let (tr, te, _) = files(&dir);
    let model = dir.join("m.safetensors");
    ok(wgmlp(&[
        "train",
        "--train",
        s(&tr),
        "--label-column",
        "3",
        "--class-order",
        "sorted",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--save",
        s(&model),
    ]));
    let ckpt = wgmlp::checkpoint::load(&model).unwrap();
    assert_eq!(ckpt.class_names, ["setosa", "versicolor", "virginica"]);
    let text = std::fs::read_to_string(&te)
        .unwrap()
        .replace("setosa", "daisy");
    std::fs::write(&te, text).unwrap();
    assert_refused_early(
        &[
            "train",
            "--train",
            s(&tr),
            "--test",
            s(&te),
            "--label-column",
            "species",
            "--epochs",
            "1",
            "--device",
            "cpu",
        ],
        &["test.csv", "row 3, column 3", "\"daisy\""],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad values of the new options: one error line, exit code 2, nothing done.
#[test]
fn bad_label_options_are_one_line_errors() {
    let dir = scratch("labels-bad");
    let (tr, _, pts) = files(&dir);
    let t = s(&tr);
    assert_refused_early(
        &[
            "train",
            "--train",
            t,
            "--label-column",
            "kind",
            "--epochs",
            "1",
        ],
        &["train.csv", "no column \"kind\"", "length,width,species"],
    );
    assert_refused_early(
        &[
            "train",
            "--train",
            t,
            "--label-column",
            "9",
            "--epochs",
            "1",
        ],
        &["no column \"9\""],
    );
    assert_refused_early(
        &[
            "train",
            "--train",
            t,
            "--label-column",
            "last",
            "--class-order",
            "random",
        ],
        &["--class-order", "first-seen or sorted"],
    );
    assert_refused_early(
        &[
            "train",
            "--train",
            t,
            "--label-column",
            "last",
            "--task",
            "regress",
        ],
        &["--label-column", "--target-columns"],
    );
    let model = dir.join("m.safetensors");
    ok(wgmlp(&[
        "train",
        "--train",
        t,
        "--label-column",
        "last",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--save",
        s(&model),
    ]));
    let out = wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&pts),
        "--top-k",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--top-k"), "{}", stderr(&out));
    let bad_out = dir.join("no/such/dir/p.csv");
    let out = wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&pts),
        "--output",
        s(&bad_out),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--output"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
