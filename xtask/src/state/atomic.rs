//! Writing (and removing) a file so that no reader ever sees half of it, and a failed
//! write (a full disk) leaves the old content intact.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`. A rename within one folder is atomic: readers see the old file or
/// the new one. Survives a crash of this process; not a power loss (no fsync,
/// see BENCHMARKS.md).
pub fn write(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// `write`, with the content written by `fill` as it is made: a large
/// file (the cache of 100,000 parsed tasks) is never held whole in memory.
pub fn write_with(
    path: &Utf8Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = beside(path, &format!("{}.{n}.tmp", std::process::id()))?;
    create_with(&tmp, fill)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("cannot write {path}"))
    })
}

/// Like `write`, for a file that one process at a time writes (a status,
/// under the workspace lock). Its temporary file is its own, kept beside it
/// as `.<name>.prev` with the previous version: the new version is swapped
/// in (`RENAME_EXCHANGE`), so a write frees no inode. On ext4 without a
/// journal, each inode freed makes every file
/// creation nearby slower for minutes (ext4 steps over recently freed inodes
/// one by one), and a rename over a status freed one per task.
pub fn replace(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    let shadow = previous(path)?;
    create_with(&shadow, |file| file.write_all(bytes))?;
    let c = |p: &Utf8Path| std::ffi::CString::new(p.as_str()).context("a path holds a NUL byte");
    // The first write has nothing to swap with: a plain rename (a failed
    // exchange costs as much as a rename).
    if !path.exists() {
        return std::fs::rename(&shadow, path).with_context(|| format!("cannot write {path}"));
    }
    let (from, to) = (c(&shadow)?, c(path)?);
    // SAFETY: both are valid NUL-terminated paths.
    let swapped = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if swapped == 0 {
        return Ok(());
    }
    // A file system without the exchange: a plain rename.
    std::fs::rename(&shadow, path).with_context(|| format!("cannot write {path}"))
}

/// Where `replace` keeps the previous version of `path`.
pub fn previous(path: &Utf8Path) -> Result<Utf8PathBuf> {
    beside(path, "prev")
}

/// A temporary name beside `path`: starts with a dot and names the file, so
/// that no scan mistakes it for the real one.
fn beside(path: &Utf8Path, suffix: &str) -> Result<Utf8PathBuf> {
    let dir = path.parent().context("a file path has a folder")?;
    let name = path.file_name().unwrap_or_default();
    Ok(dir.join(format!(".{name}.{suffix}")))
}

/// Creates (or truncates) `file`, and its folder if missing, and has
/// `fill` write it. A failed write (a full disk) removes what it left.
fn create_with(
    file: &Utf8Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = file.parent().context("a file path has a folder")?;
    let mut handle = match std::fs::File::create(file) {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {dir}"))?;
            std::fs::File::create(file).with_context(|| format!("cannot create {file}"))?
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {file}")),
    };
    if let Err(e) = fill(&mut handle).and_then(|()| handle.flush()) {
        drop(handle);
        let _ = std::fs::remove_file(file);
        return Err(e).with_context(|| format!("cannot write {file}"));
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
