//! The fuzz targets' inputs, replayed in the normal test suite: the committed seed corpus
//! (`fuzz/corpus/TARGET/`, valid files that must parse) and every input that once made a
//! parser crash, panic or allocate without bound (`fuzz/regressions/TARGET/`, which must now
//! be handled). The checks are the fuzz targets' own (`fuzz/checks.rs`).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Runs `check` on every seed and regression input of `target`; returns the seeds.
fn replay(target: &str, check: fn(&[u8])) -> Vec<(PathBuf, Vec<u8>)> {
    let seeds: Vec<(PathBuf, Vec<u8>)> = files("corpus", target)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    assert!(!seeds.is_empty(), "no seed corpus for {target}");
    for (p, bytes) in &seeds {
        eprintln!("seed {}", p.display());
        check(bytes);
    }
    for p in files("regressions", target) {
        eprintln!("regression {}", p.display());
        check(&std::fs::read(&p).unwrap());
    }
    seeds
}

#[test]
fn idx_seeds_parse_and_regressions_are_handled() {
    for (p, bytes) in replay("idx", checks::idx) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let read = if name.contains("labels") {
            wgmlp::data::idx::labels_from_bytes(&p, &bytes).map(|_| ())
        } else {
            wgmlp::data::idx::images_from_bytes(&p, &bytes).map(|_| ())
        };
        assert!(read.is_ok(), "{name}: {read:?}");
    }
}

#[test]
fn idx_gz_seeds_parse_and_regressions_are_handled() {
    for (p, bytes) in replay("idx_gz", checks::idx_gz) {
        let read = wgmlp::data::idx::images_from_bytes(&p, &bytes);
        assert!(read.is_ok(), "{}: {read:?}", p.display());
    }
}

#[test]
fn csv_seeds_parse_and_regressions_are_handled() {
    for (p, bytes) in replay("csv", checks::csv) {
        let read = wgmlp::data::csv::features_from_bytes(&p, &bytes, None);
        assert!(read.is_ok(), "{}: {read:?}", p.display());
    }
}

#[test]
fn checkpoint_seeds_load_and_regressions_are_handled() {
    for (p, bytes) in replay("checkpoint", checks::checkpoint) {
        let read = wgmlp::checkpoint::from_bytes(&p, &bytes);
        assert!(read.is_ok(), "{}: {read:?}", p.display());
    }
}

#[test]
fn checkpoint_metadata_regressions_are_handled() {
    replay("checkpoint_metadata", checks::checkpoint_metadata);
}

#[test]
fn cli_list_seeds_parse_and_regressions_are_handled() {
    for (p, bytes) in replay("cli_lists", checks::cli_lists) {
        let text = String::from_utf8(bytes).unwrap();
        let ok = wgmlp::config::parse_hidden(&text).is_ok()
            || (1..=4).any(|k| wgmlp::config::parse_activations(&text, k).is_ok());
        assert!(ok, "{}: {text:?} parses as neither list", p.display());
    }
}
