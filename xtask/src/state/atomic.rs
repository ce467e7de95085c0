//! Writing (and removing) a file so that no reader ever sees half of it, and a failed
//! write (a full disk) leaves the old content intact.

use std::io::{Seek, Write};
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

/// Creates (or rewrites) `file`, and its folder if missing, and has
/// `fill` write it. A failed write (a full disk) removes what it left.
///
/// An existing file is not opened with `O_TRUNC` but written over and cut
/// to its new length: ext4 takes a file truncated to nothing and written
/// again for a file being replaced, and starts writing it to disk when it
/// is closed (`auto_da_alloc`), which cost the run's thread more than the
/// rest of a status write (the statuses' `.prev` files are rewritten so).
fn create_with(
    file: &Utf8Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = file.parent().context("a file path has a folder")?;
    let open = || {
        std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(file)
    };
    let mut handle = match open() {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {dir}"))?;
            open().with_context(|| format!("cannot create {file}"))?
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {file}")),
    };
    let written = handle.metadata().and_then(|old| {
        fill(&mut handle)?;
        handle.flush()?;
        if old.len() > 0 {
            // What is left of the old content, if it was longer, goes.
            let end = handle.stream_position()?;
            handle.set_len(end)?;
        }
        Ok(())
    });
    if let Err(e) = written {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_holds_exactly_its_last_content_whatever_the_lengths() {
        let dir = std::env::temp_dir().join(format!("xtask-atomic-{}", std::process::id()));
        let path = Utf8PathBuf::from_path_buf(dir.join("status.json")).unwrap();
        for content in [
            "a long first version",
            "short",
            "",
            "a longer third version",
            "x",
        ] {
            replace(&path, content.as_bytes()).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
