//! The library without default features (`--no-default-features`) depends on none of the
//! command line's, the plots' or the benchmarks' crates: `cargo tree` of its normal
//! dependencies names none of them, and does name wgpu (so the check cannot pass on an empty
//! or failed listing).

use std::process::Command;

/// Crates only the `cli`, `plot` and `bench` features may bring in (plotters' font stack
/// included: it needs fontconfig headers to build).
const FORBIDDEN: &[&str] = &[
    "clap",
    "indicatif",
    "env_logger",
    "ctrlc",
    "plotters",
    "matrixmultiply",
    "font-kit",
    "yeslogic-fontconfig-sys",
    "servo-fontconfig",
];

/// `cargo tree` of the library's normal dependencies without default features, one crate a
/// line (`name vX.Y.Z ...`). Offline first (the lock file and the local registry cache are
/// enough); if that fails (index or crates not cached), once more with network access. Both
/// failing is a test failure with cargo's messages, never a skip.
fn dependency_tree() -> String {
    let run = |offline: bool| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "tree",
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
        ]);
        if offline {
            cmd.arg("--offline");
        }
        cmd.output().expect("cargo tree could not be started")
    };
    let offline = run(true);
    if offline.status.success() {
        return String::from_utf8(offline.stdout).expect("cargo tree printed UTF-8");
    }
    eprintln!(
        "cargo tree --offline failed ({}), retrying with network access:\n{}",
        offline.status,
        String::from_utf8_lossy(&offline.stderr)
    );
    let online = run(false);
    assert!(
        online.status.success(),
        "cargo tree failed offline and online ({}):\n{}",
        online.status,
        String::from_utf8_lossy(&online.stderr)
    );
    String::from_utf8(online.stdout).expect("cargo tree printed UTF-8")
}

#[test]
fn library_without_default_features_has_no_cli_plot_or_bench_dependencies() {
    let tree = dependency_tree();
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"wgpu"),
        "wgpu is missing from the dependency tree, so the listing is not the library's:\n{tree}"
    );
    let found: Vec<&str> = FORBIDDEN
        .iter()
        .copied()
        .filter(|f| names.contains(f))
        .collect();
    assert!(
        found.is_empty(),
        "the library without default features depends on {found:?}:\n{tree}"
    );
}
