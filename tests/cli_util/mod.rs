//! Shared pieces of the command-line tests: run the `wgmlp` binary, scratch directories, and the
//! check that bad input is one error line with exit code 2.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `wgmlp` with `args` and waits for it.
pub fn wgmlp(args: &[&str]) -> Output {
    wgmlp_env(args, &[])
}

/// Runs `wgmlp` with `args` and extra environment variables.
pub fn wgmlp_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgmlp"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run wgmlp")
}

/// Bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stderr without Mesa's harmless "XDG_RUNTIME_DIR is invalid" lines.
pub fn stderr(out: &Output) -> String {
    text(&out.stderr)
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts success; returns stdout.
pub fn ok(out: Output) -> String {
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
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgmlp-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A path as `&str`.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Bad input: exit code 2, one error line naming every one of `parts`, no panic, and (the
/// point of checking early) no epoch trained and no summary. Returns the error line.
pub fn assert_refused_early(args: &[&str], parts: &[&str]) -> String {
    let out = wgmlp(args);
    let err = stderr(&out);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one error line:\n{err}");
    for p in parts {
        assert!(
            lines[0].contains(p),
            "{args:?}: {:?} does not mention {p:?}",
            lines[0]
        );
    }
    assert!(
        !err.lines().any(|l| l.starts_with("epoch ")),
        "{args:?}: trained before refusing:\n{err}"
    );
    assert!(
        !stdout.contains("trained") && !stdout.contains("samples, loss"),
        "{args:?}: worked before refusing:\n{stdout}"
    );
    lines[0].to_string()
}

/// A labelled CSV of `rows` rows: label `i % classes`, two features.
pub fn small_csv(path: &Path, rows: usize, classes: usize) {
    let mut t = String::from("label,x,y\n");
    for i in 0..rows {
        t += &format!("{},{},{}\n", i % classes, i as f32 * 0.1, (i % 7) as f32);
    }
    std::fs::write(path, t).unwrap();
}
