//! Preprocessing belongs to the model: a model trained on byte IDX images stores the ÷255
//! (and the standardisation) in its checkpoint, and `eval`/`predict` apply them to raw
//! CSV rows, so raw 0–255 pixels give the same answers as the IDX files themselves.

mod cli_util;

use std::path::Path;

use cli_util::{ok, s, scratch, stderr, wgmlp};
use wgmlp::data::idx::{write_images_u8, write_labels};
use wgmlp::rng::Rng;

/// A 4-class problem on 3×3 byte images: class c lights pixel block c brightly.
fn images(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let mut px = Vec::with_capacity(n * 9);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = (i % 4) as u8;
        for p in 0..9u8 {
            let base = if p % 4 == c { 200.0 } else { 30.0 };
            px.push((base + 20.0 * rng.normal()).clamp(0.0, 255.0) as u8);
        }
        labels.push(c);
    }
    (px, labels)
}

fn idx_dir(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let (x, y) = images(400, 1);
    write_images_u8(
        &dir.join("train-images-idx3-ubyte"),
        &[400, 3, 3],
        &x,
        false,
    )
    .unwrap();
    write_labels(&dir.join("train-labels-idx1-ubyte"), &y, false).unwrap();
    let (xt, yt) = images(40, 2);
    write_images_u8(
        &dir.join("t10k-images-idx3-ubyte.gz"),
        &[40, 3, 3],
        &xt,
        true,
    )
    .unwrap();
    write_labels(&dir.join("t10k-labels-idx1-ubyte"), &yt, false).unwrap();
    (xt, yt)
}

#[test]
fn byte_image_scaling_is_stored_and_applied_to_raw_csv_rows() {
    let dir = scratch("preprocess-idx");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (xt, yt) = idx_dir(&data);
    let model = dir.join("m.safetensors");
    ok(wgmlp(&[
        "train",
        "--data",
        s(&data),
        "--hidden",
        "8",
        "--epochs",
        "3",
        "--normalize",
        "standard",
        "--device",
        "cpu",
        "--save",
        s(&model),
    ]));
    let ckpt = wgmlp::checkpoint::load(&model).unwrap();
    assert_eq!(ckpt.input_divisor, Some(255.0));
    assert!(ckpt.normalization.is_some());
    // The test images as raw CSV rows (0..255), with and without labels.
    let mut feats = String::new();
    let mut labelled = String::new();
    for (i, row) in xt.chunks(9).enumerate() {
        let cells: Vec<String> = row.iter().map(|b| b.to_string()).collect();
        feats += &format!("{}\n", cells.join(","));
        labelled += &format!("{},{}\n", yt[i], cells.join(","));
    }
    let (raw, raw_l) = (dir.join("raw.csv"), dir.join("raw-labelled.csv"));
    std::fs::write(&raw, feats).unwrap();
    std::fs::write(&raw_l, labelled).unwrap();
    // predict on raw CSV rows equals predict on the IDX image file (which the reader scales).
    let images = data.join("t10k-images-idx3-ubyte.gz");
    let from_csv = ok(wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&raw),
        "--device",
        "cpu",
    ]));
    let from_idx = ok(wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&images),
        "--device",
        "cpu",
    ]));
    assert_eq!(from_csv, from_idx);
    assert_eq!(from_csv.lines().count(), 41);
    // Probabilities are not saturated, as they were when raw rows reached the model unscaled.
    assert!(
        from_csv.lines().skip(1).any(|l| !l.contains("1.000000")),
        "{from_csv}"
    );
    // eval on the raw labelled CSV equals eval on the IDX directory.
    let line = |out: String| {
        out.lines()
            .next()
            .unwrap()
            .split(": ")
            .nth(1)
            .unwrap()
            .to_string()
    };
    let a = line(ok(wgmlp(&[
        "eval",
        "--model",
        s(&model),
        "--test",
        s(&raw_l),
        "--device",
        "cpu",
    ])));
    let b = line(ok(wgmlp(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--device",
        "cpu",
    ])));
    assert_eq!(a, b);
    // Rows already scaled to [0, 1] get a note.
    let scaled = dir.join("scaled.csv");
    std::fs::write(&scaled, "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9\n").unwrap();
    let out = wgmlp(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&scaled),
        "--device",
        "cpu",
    ]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("within [0, 1]"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
