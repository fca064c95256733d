//! What each fuzz target does with one input, shared by the fuzz targets and by the
//! regression test of the normal suite (`tests/fuzz_regressions.rs`), which replays the
//! seed corpus and every saved crash input. A parser may fail (a typed `wgmlp::Error`) but
//! must not panic, and what it accepts must be consistent; the asserts below check that.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use wgmlp::checkpoint;
use wgmlp::data::{csv, idx};

/// IDX bytes as found on disk (plain, or gzip by magic bytes), as images and as labels.
pub fn idx(data: &[u8]) {
    let path = Path::new("fuzz.idx");
    if let Ok((x, n, k)) = idx::images_from_bytes(path, data) {
        assert_eq!(x.len(), n * k, "features are n × k");
        assert!(k > 0, "zero features accepted");
        assert!(
            x.iter().all(|v| v.is_finite()),
            "non-finite feature accepted"
        );
    }
    if let Ok(labels) = idx::labels_from_bytes(path, data) {
        assert!(
            labels.iter().all(|&l| l <= wgmlp::data::MAX_LABEL),
            "label above the limit"
        );
    }
}

/// The input gzip-compressed, then read as an IDX file: the fuzzer explores headers and
/// data behind the streaming gzip reader.
pub fn idx_gz(data: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("writing to a Vec");
    let gz = enc.finish().expect("finishing a Vec");
    let plain = idx::images_from_bytes(Path::new("p"), data).map_err(|e| e.to_string());
    let packed = idx::images_from_bytes(Path::new("p"), &gz).map_err(|e| e.to_string());
    // Compressed or not, the same bytes give the same data (unless the input itself starts
    // with the gzip magic bytes, in which case the "plain" read decompresses it).
    if let Ok(a) = &plain {
        if !data.starts_with(&[0x1f, 0x8b]) {
            assert_eq!(
                Some(a),
                packed.as_ref().ok(),
                "gzip changed or refused the data"
            );
        }
    }
    idx(&gz);
}

/// CSV bytes as a labelled file (free classes, 3 classes) and as a feature file.
pub fn csv(data: &[u8]) {
    let path = Path::new("fuzz.csv");
    if let Ok(d) = csv::labeled_from_bytes(path, data, None) {
        assert_eq!(d.features.len(), d.len() * d.n_features);
        assert!(d.labels.iter().all(|&l| (l as usize) < d.n_classes));
    }
    if let Ok(d) = csv::labeled_from_bytes(path, data, Some(3)) {
        assert!(d.labels.iter().all(|&l| l < 3));
    }
    for expected in [None, Some(2)] {
        if let Ok((x, n, k)) = csv::features_from_bytes(path, data, expected) {
            assert_eq!(x.len(), n * k);
            assert!(expected.is_none_or(|e| e == k));
        }
    }
}

/// A whole safetensors file as a checkpoint.
pub fn checkpoint(data: &[u8]) {
    if let Ok((ckpt, metrics)) = checkpoint::from_bytes(Path::new("fuzz.safetensors"), data) {
        let n = ckpt.config.n_params();
        assert_eq!(ckpt.params.len(), n, "parameter count");
        if let Some(t) = &ckpt.training {
            assert_eq!((t.state.m.len(), t.state.v.len()), (n, n), "moments");
        }
        if let Some(norm) = &ckpt.normalization {
            assert_eq!(norm.mean.len(), ckpt.config.input);
        }
        let tensors = checkpoint::to_torch_tensors(&ckpt.config, &ckpt.params);
        let back = checkpoint::from_torch_tensors(&ckpt.config, &tensors).expect("round trip");
        assert_eq!(back, ckpt.params, "PyTorch layout round trip");
        if let Some(m) = metrics {
            let _ = m.len();
        }
    }
}

/// A valid 3-2-2 checkpoint's metadata with fuzzed values (mode byte 0: `key=value` lines
/// override keys), or a fuzzed JSON header in front of valid tensor data (mode byte 1).
pub fn checkpoint_metadata(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        let mut meta = base_metadata();
        for line in text.lines() {
            match line.split_once('=') {
                Some((k, v)) => drop(meta.insert(k.to_string(), v.to_string())),
                None => drop(meta.remove(line)),
            }
        }
        let tensors = base_tensors();
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(name, shape, bytes)| {
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    shape.clone(),
                    bytes,
                )
                .expect("valid tensor");
                (name.clone(), view)
            })
            .collect();
        match safetensors::serialize(views, Some(meta)) {
            Ok(f) => f,
            Err(_) => return,
        }
    } else {
        let mut f = (rest.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(rest);
        f.extend_from_slice(&[0u8; 64]);
        f
    };
    checkpoint(&file);
}

fn base_metadata() -> HashMap<String, String> {
    [
        ("format", "wgmlp"),
        ("version", "1"),
        ("widths", "3,2,2"),
        ("activations", "relu"),
        ("loss", "ce"),
        ("init", "auto"),
        ("seed", "42"),
        ("normalization", "none"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn base_tensors() -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let t = |name: &str, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        let bytes = (0..n)
            .flat_map(|i| (i as f32 * 0.25).to_le_bytes())
            .collect();
        (name.to_string(), shape, bytes)
    };
    vec![
        t("0.weight", vec![2, 3]),
        t("0.bias", vec![2]),
        t("2.weight", vec![2, 2]),
        t("2.bias", vec![2]),
    ]
}

/// The command line's list parsers: `--hidden` and `--activation` (for 0 to 3 layers).
pub fn cli_lists(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(widths) = wgmlp::config::parse_hidden(&text) {
        let config = wgmlp::MlpConfig::new(2, &widths, 3);
        if config.validate().is_ok() {
            assert!(widths.iter().all(|&w| w >= 1));
        }
    }
    for layers in 0..4 {
        if let Ok(acts) = wgmlp::config::parse_activations(&text, layers) {
            assert_eq!(acts.len(), layers, "one activation per layer");
            for a in acts {
                let again: wgmlp::Activation = a.to_string().parse().expect("round trip");
                assert_eq!(again.to_string(), a.to_string(), "name round trip");
            }
        }
    }
}
