//! Writing (and removing) a file so that no reader ever sees half of it, and a failed
//! write (a full disk) leaves the old content intact.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use camino::Utf8Path;

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`. A rename within one folder is atomic: readers see the old file or
/// the new one. Survives a crash of this process; not a power loss (no fsync,
/// see BENCHMARKS.md).
pub fn write(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().context("a file path has a folder")?;
    let name = path.file_name().unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Starts with a dot and ends in .tmp, so no scan mistakes it for the real file.
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let mut file = match std::fs::File::create(&tmp) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {dir}"))?;
            std::fs::File::create(&tmp).with_context(|| format!("cannot create {tmp}"))?
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {tmp}")),
    };
    let written = file.write_all(bytes).and_then(|()| file.flush());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {path}"));
    }
    Ok(())
}

/// Removes a file; one that is already gone is fine.
pub fn remove(path: &Utf8Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {path}"))
        }
        _ => Ok(()),
    }
}
