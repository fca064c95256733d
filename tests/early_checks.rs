//! Everything that can be checked before the work starts is checked then: each case here
//! used to be found only after training (or evaluating, or benchmarking), or to abort the
//! process, or to answer with the wrong file or the wrong cause. Each must now be one error
//! line with exit code 2 before any epoch runs.

mod cli_util;

use cli_util::{assert_refused_early, ok, s, scratch, small_csv, stderr, text, wgmlp, wgmlp_env};
use wgmlp::data::idx;

#[test]
fn a_plot_path_without_a_known_extension_is_refused_before_training() {
    let d = scratch("plot-ext");
    let p = d.join("p");
    assert_refused_early(
        &["train", "--epochs", "50", "--plot", s(&p)],
        &["--plot", "no extension", ".png or .svg"],
    );
    assert_refused_early(
        &[
            "train",
            "--epochs",
            "50",
            "--plot-boundary",
            s(&d.join("b.svg")),
        ],
        &["--plot-boundary", "ends in .svg", ".png"],
    );
    assert!(!p.exists());
}

#[test]
fn a_decision_boundary_of_data_that_is_not_2_d_is_refused_before_training() {
    let d = scratch("boundary-dims");
    assert_refused_early(
        &[
            "train",
            "--dataset",
            "teacher",
            "--plot-boundary",
            s(&d.join("b.png")),
        ],
        &["--plot-boundary", "built-in teacher has 32 features"],
    );
}

/// A directory that exists but where no file can be created (even by root: /proc).
#[cfg(target_os = "linux")]
#[test]
fn an_unwritable_save_directory_is_found_before_training() {
    assert_refused_early(
        &[
            "train",
            "--device",
            "cpu",
            "--save",
            "/proc/model.safetensors",
        ],
        &[
            "/proc/model.safetensors",
            "cannot create a file in /proc",
            "--save",
        ],
    );
    assert_refused_early(
        &["train", "--device", "cpu", "--metrics-json", "/proc/m.json"],
        &["/proc/m.json", "--metrics-json"],
    );
}

#[test]
fn eval_and_bench_outputs_into_a_missing_directory_fail_before_the_work() {
    let d = scratch("eval-missing-dir");
    let model = d.join("m.safetensors");
    ok(wgmlp(&[
        "train",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--hidden",
        "4",
        "--save",
        s(&model),
    ]));
    let missing = d.join("no/such/dir/m.json");
    assert_refused_early(
        &[
            "eval",
            "--model",
            s(&model),
            "--dataset",
            "spirals",
            "--metrics-json",
            s(&missing),
        ],
        &["no/such/dir", "does not exist", "--metrics-json"],
    );
    let out = wgmlp(&["bench", "--quick", "--json", s(&missing), "activations"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--json"), "{}", stderr(&out));
    assert_eq!(text(&out.stdout), "", "bench measured before refusing");
}

#[test]
fn a_model_too_large_for_memory_is_refused_naming_size_limit_and_layer() {
    // 2-100000-100000-3 needs 40 GB for its parameters alone: this used to abort the
    // process (`memory allocation of … bytes failed`, exit 134) on both paths.
    for device in ["cpu", "auto"] {
        let line = assert_refused_early(
            &[
                "train",
                "--hidden",
                "100000,100000",
                "--epochs",
                "1",
                "--device",
                device,
            ],
            &[
                "2-100000-100000-3",
                "layer 2 (100000 → 100000, from --hidden)",
                "needs",
                "narrow --hidden",
            ],
        );
        assert!(line.contains("bytes"), "{line}");
    }
}

/// On the GPU (lavapipe: 128 MiB storage bindings) 2-20000-20000-3 was refused only after
/// 14 s and 1.9 GB, blaming --batch-size; the parameters are the cause.
#[test]
fn a_wide_model_over_the_adapters_buffer_limit_blames_the_layers_not_the_batch() {
    let line = assert_refused_early(
        &[
            "train",
            "--hidden",
            "20000,20000",
            "--epochs",
            "1",
            "--device",
            "gpu",
        ],
        &[
            "layer 2 (20000 → 20000, from --hidden)",
            "storage buffer limit of adapter",
            "narrow --hidden",
        ],
    );
    assert!(!line.contains("--batch-size"), "{line}");
}

#[test]
fn a_huge_csv_label_names_the_file_and_row_not_the_hidden_layers() {
    let d = scratch("huge-label");
    let f = d.join("l.csv");
    std::fs::write(&f, "0,1,2\n4000000000,3,4\n").unwrap();
    let line = assert_refused_early(
        &[
            "train",
            "--train",
            s(&f),
            "--epochs",
            "1",
            "--device",
            "cpu",
        ],
        &["l.csv: row 2, column 1", "above 65535"],
    );
    assert!(!line.contains("--hidden"), "{line}");
}

#[test]
fn a_test_label_the_training_set_lacks_is_an_error_not_a_bigger_model() {
    let d = scratch("test-label");
    let (tr, te) = (d.join("tr.csv"), d.join("te.csv"));
    small_csv(&tr, 20, 2);
    std::fs::write(&te, "label,x,y\n0,1,2\n5,3,4\n").unwrap();
    assert_refused_early(
        &[
            "train",
            "--train",
            s(&tr),
            "--test",
            s(&te),
            "--device",
            "cpu",
        ],
        &[
            "te.csv: row 3, column 1",
            "label 5 is not one of the 2 classes (0..=1) of the training labels in",
        ],
    );
    // The same for IDX files.
    let dir = scratch("test-label-idx");
    idx::write_images_u8(
        &dir.join("train-images-idx3-ubyte"),
        &[4, 2],
        &[1; 8],
        false,
    )
    .unwrap();
    idx::write_labels(&dir.join("train-labels-idx1-ubyte"), &[0, 1, 2, 1], false).unwrap();
    idx::write_images_u8(&dir.join("t10k-images-idx3-ubyte"), &[2, 2], &[1; 4], false).unwrap();
    idx::write_labels(&dir.join("t10k-labels-idx1-ubyte"), &[0, 7], false).unwrap();
    assert_refused_early(
        &["train", "--data", s(&dir), "--device", "cpu"],
        &[
            "t10k-labels-idx1-ubyte: sample 1",
            "label 7 is not one of the 3 classes",
        ],
    );
}

#[test]
fn negative_numbers_reach_wgmlps_own_checks() {
    assert_refused_early(
        &["train", "--lr", "-1"],
        &["invalid --lr", "learning rate -1 must be a positive number"],
    );
    assert_refused_early(
        &["train", "--weight-decay", "-0.5"],
        &["--weight-decay", "non-negative"],
    );
    assert_refused_early(
        &["train", "--hidden", "-5"],
        &["invalid --hidden", "-5 is negative"],
    );
    assert_refused_early(&["train", "--hidden", "64,-5"], &["invalid --hidden", "-5"]);
    assert_refused_early(
        &["train", "--seed", "-1"],
        &["--seed", "\"-1\" is negative"],
    );
    assert_refused_early(
        &["train", "--epochs", "-3"],
        &["--epochs", "\"-3\" is negative"],
    );
    assert_refused_early(
        &["train", "--batch-size", "-64"],
        &["--batch-size", "\"-64\" is negative"],
    );
    assert_refused_early(
        &[
            "eval",
            "--model",
            "m.safetensors",
            "--dataset",
            "xor",
            "--seed",
            "-2",
        ],
        &["--seed", "negative"],
    );
}

#[test]
fn options_that_would_do_nothing_are_errors_not_false_summaries() {
    assert_refused_early(
        &["train", "--epochs", "0"],
        &["invalid --epochs", "0 epochs would train nothing"],
    );
    assert_refused_early(
        &["train", "--learn-prelu", "--device", "cpu"],
        &[
            "invalid --learn-prelu",
            "no hidden layer uses prelu",
            "relu",
        ],
    );
    assert_refused_early(
        &["train", "--learn-prelu", "--hidden", "none"],
        &["--learn-prelu", "there are no hidden layers"],
    );
    // --resume with --epochs at or below the checkpoint's epoch used to report
    // "trained … for 2 epochs in 0.0 s" and exit 0.
    let d = scratch("resume-nothing");
    let m = d.join("m.safetensors");
    ok(wgmlp(&[
        "train",
        "--device",
        "cpu",
        "--hidden",
        "4",
        "--epochs",
        "2",
        "--save",
        s(&m),
        "--checkpoint-every",
        "1",
    ]));
    let before = std::fs::read(&m).unwrap();
    for epochs in ["1", "2"] {
        assert_refused_early(
            &[
                "train",
                "--resume",
                s(&m),
                "--epochs",
                epochs,
                "--device",
                "cpu",
            ],
            &[
                "invalid --epochs",
                "already holds 2 epochs",
                "--epochs 3 or more",
            ],
        );
    }
    assert_eq!(std::fs::read(&m).unwrap(), before, "the checkpoint changed");
}

#[test]
fn plain_and_gz_copies_say_which_is_read_and_other_doubles_are_refused() {
    let dir = scratch("idx-both");
    for gz in [false, true] {
        let sfx = if gz { ".gz" } else { "" };
        let p = |n: &str| dir.join(format!("{n}{sfx}"));
        idx::write_images_u8(&p("train-images-idx3-ubyte"), &[6, 2], &[3; 12], gz).unwrap();
        idx::write_labels(&p("train-labels-idx1-ubyte"), &[0, 1, 0, 1, 0, 1], gz).unwrap();
        idx::write_images_u8(&p("t10k-images-idx3-ubyte"), &[2, 2], &[1; 4], gz).unwrap();
        idx::write_labels(&p("t10k-labels-idx1-ubyte"), &[0, 1], gz).unwrap();
    }
    let out = wgmlp(&[
        "train",
        "--data",
        s(&dir),
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]);
    let err = stderr(&out);
    ok(out);
    assert!(
        err.contains("both train-images-idx3-ubyte and train-images-idx3-ubyte.gz exist; reading train-images-idx3-ubyte"),
        "{err}"
    );
    std::fs::write(dir.join("train-images-old"), b"?").unwrap();
    assert_refused_early(
        &["train", "--data", s(&dir), "--device", "cpu"],
        &[
            "3 files match train-images*",
            "train-images-old",
            "keep only one",
        ],
    );
}

#[test]
fn eval_reads_only_the_test_files_and_blames_the_data_not_the_model() {
    let d = scratch("eval-test-only");
    let model = d.join("m1.safetensors");
    ok(wgmlp(&[
        "train",
        "--device",
        "cpu",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--save",
        s(&model),
    ]));
    // A directory with only the test files: 2 features, labels 0..2.
    let dir = d.join("idx");
    std::fs::create_dir_all(&dir).unwrap();
    idx::write_images_f32(
        &dir.join("t10k-images-idx3-ubyte"),
        &[3, 2],
        &[0.1; 6],
        false,
    )
    .unwrap();
    idx::write_labels(&dir.join("t10k-labels-idx1-ubyte.gz"), &[0, 2, 1], true).unwrap();
    let out = ok(wgmlp(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&dir),
        "--device",
        "cpu",
    ]));
    assert!(out.contains("3 samples"), "{out}");
    // A data mismatch names the data: the built-in dataset, the IDX images file's header.
    let line = assert_refused_early(
        &["eval", "--model", s(&model), "--dataset", "teacher"],
        &[
            "invalid --dataset",
            "built-in teacher has 32 features",
            "expects 2",
        ],
    );
    assert!(
        !line.starts_with(&format!("error: {}", model.display())),
        "{line}"
    );
    idx::write_images_u8(
        &dir.join("t10k-images-idx3-ubyte"),
        &[3, 5],
        &[1; 15],
        false,
    )
    .unwrap();
    let line = assert_refused_early(
        &["eval", "--model", s(&model), "--data", s(&dir)],
        &[
            "t10k-images-idx3-ubyte: header",
            "5 features per sample",
            "expects 2",
        ],
    );
    assert!(!line.contains("row 1"), "{line}");
}

#[test]
fn with_device_auto_and_no_adapter_the_explanation_is_printed_once() {
    let out = wgmlp_env(
        &["train", "--epochs", "1", "--hidden", "4"],
        &[("WGPU_ADAPTER_NAME", "no-such-adapter-for-this-test")],
    );
    let err = stderr(&out);
    ok(out);
    assert_eq!(err.matches("no GPU adapter").count(), 1, "{err}");
    assert!(err.contains("CPU reference"), "{err}");
}
