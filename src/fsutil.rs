//! Atomic file writes: a temporary file in the same directory, then a rename, so a crash or
//! a full disk never leaves a half-written file or destroys the one that was there.

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

/// Lets `write` create a temporary file, then renames it over `path`. On failure the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path)?;
    let result = write(&tmp)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, "rename", e)));
    match &result {
        Err(_) => {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(()) => {
            // Best effort: make the rename itself durable (not possible on every OS).
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if let Ok(d) = std::fs::File::open(dir) {
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

/// Checks before a long run that `path` can be written: its directory exists and is a
/// directory, and `path` itself is not a directory.
pub fn check_writable(path: &Path, option: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.is_dir() {
        return Err(Error::io(
            path,
            "write",
            std::io::Error::other(format!("{option} names a directory; give a file name")),
        ));
    }
    if !dir.is_dir() {
        return Err(Error::io(
            path,
            "write",
            std::io::Error::other(format!(
                "the directory {} does not exist; create it or choose another {option}",
                dir.display()
            )),
        ));
    }
    Ok(())
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
