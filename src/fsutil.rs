//! Atomic file writes: a temporary file in the same directory, then a rename, so a crash or
//! a full disk never leaves a half-written file or destroys the one that was there. A process
//! killed mid-write (SIGKILL, power loss) leaves its temporary behind; the next write to the
//! same target removes the temporaries of processes that no longer exist.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// A temporary path beside `path`: `.NAME.tmp-PID-N.EXT` (the extension is kept so writers
/// that choose a format by extension, like plotters, still work).
fn temp_path(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file_name = path.file_name().ok_or_else(|| {
        Error::config(
            "path",
            format!("{:?} does not name a file", path.display().to_string()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    Ok(dir.join(format!(
        ".{}.tmp-{}-{}{ext}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )))
}

/// The directory of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The process id in a temporary name `.NAME.tmp-PID-N[.EXT]` made by [`temp_path`] for a
/// target whose file name is `file_name`; `None` for any other name.
fn temp_owner(temp_name: &str, file_name: &str) -> Option<u32> {
    let rest = temp_name
        .strip_prefix('.')?
        .strip_prefix(file_name)?
        .strip_prefix(".tmp-")?;
    let (pid, rest) = rest.split_once('-')?;
    let counter = rest.split('.').next()?;
    if counter.is_empty() || !counter.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` may still be running. Only Linux's `/proc` answers "no" with
/// certainty; elsewhere every process counts as alive, so nothing is removed.
fn process_may_be_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") && Path::new("/proc/self").exists() {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes the temporaries that writes of `path` by processes that no longer exist left
/// behind (a process killed during a write cannot clean up). Returns the paths removed.
/// Temporaries of running processes, and of this one, are left alone.
pub fn remove_stale_temporaries(path: &Path) -> Vec<PathBuf> {
    let Some(file_name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(parent_dir(path)) else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_owner(&name, &file_name) else {
            continue;
        };
        if pid == own || process_may_be_alive(pid) {
            continue;
        }
        let stale = entry.path();
        if stale.is_file() && std::fs::remove_file(&stale).is_ok() {
            log::info!("removed {}, left by process {pid}", stale.display());
            removed.push(stale);
        }
    }
    removed
}

/// Lets `write` create a temporary file, then renames it over `path`. On failure the
/// temporary file is removed and `path` is untouched. Stale temporaries of `path` left by
/// dead processes are removed first.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    remove_stale_temporaries(path);
    let tmp = temp_path(path)?;
    let result = write(&tmp)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, "rename", e)));
    match &result {
        Err(_) => {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(()) => {
            // Best effort: make the rename itself durable (not possible on every OS).
            if let Ok(d) = std::fs::File::open(parent_dir(path)) {
                let _ = d.sync_all();
            }
        }
    }
    result
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp).map_err(|e| Error::io(path, "create", e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io(path, "write", e))?;
        f.sync_all().map_err(|e| Error::io(path, "sync", e))
    })
}

/// Checks before a long run that `path` can be written: its directory exists, `path` itself
/// is not a directory, and a file can be created (and is removed again) in that directory.
/// `option` names the flag in the error.
pub fn check_writable(path: &Path, option: &str) -> Result<()> {
    let dir = parent_dir(path);
    let fail = |message: String| Err(Error::io(path, "write", std::io::Error::other(message)));
    if path.is_dir() {
        return fail(format!("{option} names a directory; give a file name"));
    }
    if !dir.is_dir() {
        return fail(format!(
            "the directory {} does not exist; create it or choose another {option}",
            dir.display()
        ));
    }
    let probe = temp_path(path)?;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(file) => {
            drop(file);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => fail(format!(
            "cannot create a file in {} ({e}); choose another {option} or fix the directory's permissions",
            dir.display()
        )),
    }
}

/// Checks that `path` ends in one of `extensions` (compared without case), naming `option`
/// and the accepted extensions in the error.
pub fn check_extension(path: &Path, option: &str, extensions: &[&str]) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if ext
        .as_deref()
        .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
    {
        return Ok(());
    }
    let accepted: Vec<String> = extensions.iter().map(|e| format!(".{e}")).collect();
    let got = match ext {
        Some(e) => format!("ends in .{e}"),
        None => "has no extension".to_string(),
    };
    Err(Error::config(
        option,
        format!(
            "{:?} {got}; the file type is chosen by the extension, so name it {}",
            path.display().to_string(),
            accepted.join(" or ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("wgmlp-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.txt");
        write_atomic(&path, b"old").unwrap();
        let err = write_atomic_with(&path, |_| Err(Error::config("x", "simulated failure")));
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(check_writable(&dir.join("missing/x.json"), "--out").is_err());
        assert!(check_writable(&dir, "--out").is_err());
        assert!(check_writable(&path, "--out").is_ok());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "the probe is left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_owner_reads_only_our_temporary_names() {
        assert_eq!(
            temp_owner(".m.safetensors.tmp-77-3.safetensors", "m.safetensors"),
            Some(77)
        );
        assert_eq!(temp_owner(".p.tmp-5-0", "p"), Some(5));
        assert_eq!(
            temp_owner(".m.safetensors.tmp-77-3.safetensors", "n.safetensors"),
            None
        );
        assert_eq!(
            temp_owner(".m.safetensors.tmp-x-3.safetensors", "m.safetensors"),
            None
        );
        assert_eq!(
            temp_owner(".m.safetensors.tmp-77-.safetensors", "m.safetensors"),
            None
        );
        assert_eq!(temp_owner("m.safetensors", "m.safetensors"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_removes_temporaries_of_dead_processes_only() {
        let dir = std::env::temp_dir().join(format!("wgmlp-fsutil-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A process that has exited: its id names no running process (ids are not reused
        // this soon on Linux, which hands them out in increasing order).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let path = dir.join("m.safetensors");
        let stale = dir.join(format!(".m.safetensors.tmp-{dead}-0.safetensors"));
        let live = dir.join(".m.safetensors.tmp-1-0.safetensors"); // pid 1 always runs
        let own = dir.join(format!(
            ".m.safetensors.tmp-{}-99.safetensors",
            std::process::id()
        ));
        let other = dir.join(format!(".n.safetensors.tmp-{dead}-0.safetensors"));
        for p in [&stale, &live, &own, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        write_atomic(&path, b"new").unwrap();
        assert!(!stale.exists(), "the dead process's temporary is left");
        for p in [&live, &own, &other] {
            assert!(p.exists(), "{} was removed", p.display());
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extensions_are_checked_without_case() {
        let png = ["png", "svg"];
        assert!(check_extension(Path::new("a/curves.PNG"), "--plot", &png).is_ok());
        assert!(check_extension(Path::new("c.svg"), "--plot", &png).is_ok());
        let e = check_extension(Path::new("p"), "--plot", &png)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--plot") && e.contains("no extension") && e.contains(".png or .svg"),
            "{e}"
        );
        let e = check_extension(Path::new("p.jpg"), "--plot", &png)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ends in .jpg"), "{e}");
    }
}
