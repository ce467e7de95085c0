//! Writing (and removing) a file so that no reader ever sees half of it, and a failed
//! write (a full disk) leaves the old content intact.

use std::io::{Seek, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
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

/// Creates `path` with `bytes`, whole or not at all (a full disk leaves no
/// half-written file), never over a file that is there: `false` then.
pub fn create_new(path: &Utf8Path, bytes: &[u8]) -> Result<bool> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = beside(path, &format!("{}.{n}.tmp", std::process::id()))?;
    create_with(&tmp, |file| file.write_all(bytes))?;
    let moved = rename_new(&tmp, path);
    if moved.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    match moved {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot create {path}")),
    }
}

/// Like `write`, for a file that one process at a time writes (a status,
/// under the workspace lock). Its temporary file is its own, kept beside it
/// as `.<name>.prev` with the previous version: the new version is swapped
/// in (`RENAME_EXCHANGE`), so a write frees no inode. On ext4 without a
/// journal, each inode freed makes every file
/// creation nearby slower for minutes (ext4 steps over recently freed inodes
/// one by one), and a rename over a status freed one per task. Returns the
/// `.prev` when it holds the version this write replaced (none on a first
/// write). `first`: the caller expects `path` not to exist yet.
pub fn replace(path: &Utf8Path, bytes: &[u8], first: bool) -> Result<Option<Utf8PathBuf>> {
    let shadow = previous(path)?;
    let swapped = replace_via(path, bytes, first, &shadow)?;
    Ok(swapped.then_some(shadow))
}

/// `replace`, written in `shadow`: its own `.prev`, or a spare (another
/// file's, whose content nobody wants any more) on the same file system,
/// swapped in from where it is rather than moved beside `path` first.
/// Returns whether `shadow` holds the version replaced (else it is gone).
pub fn replace_via(path: &Utf8Path, bytes: &[u8], first: bool, shadow: &Utf8Path) -> Result<bool> {
    create_with(shadow, |file| file.write_all(bytes))?;
    // The likelier case is tried first: a move that never replaces a file
    // for a first write, else the swap. Where it does not apply, it fails
    // as cheaply as the `stat` that would have told; a plain rename is
    // left for file systems without either.
    if first && rename_flags(shadow, path, libc::RENAME_NOREPLACE).is_ok() {
        return Ok(false);
    }
    // A swap with a folder (a person's, put where the status goes) would
    // hide it as the `.prev` and fail the next write, and one with a FIFO
    // would hang it: one `stat`, a microsecond, to say so instead.
    if path.metadata().is_ok_and(|meta| !meta.is_file()) {
        let _ = std::fs::remove_file(shadow);
        bail!(
            "cannot write {path}: {}",
            in_the_way(path).unwrap_or_default()
        );
    }
    if rename_flags(shadow, path, libc::RENAME_EXCHANGE).is_ok() {
        return Ok(true);
    }
    std::fs::rename(shadow, path).with_context(|| format!("cannot write {path}"))?;
    Ok(false)
}

/// Renames `from` to `to`, never over a file that exists there
/// (`AlreadyExists`).
pub fn rename_new(from: &Utf8Path, to: &Utf8Path) -> std::io::Result<()> {
    rename_flags(from, to, libc::RENAME_NOREPLACE)
}

/// `renameat2` with `flags`.
fn rename_flags(from: &Utf8Path, to: &Utf8Path, flags: libc::c_uint) -> std::io::Result<()> {
    let c = |p: &Utf8Path| {
        std::ffi::CString::new(p.as_str())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated paths.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What a person put in the way of the file at `path` under `workspace/`,
/// and what to do: a folder where it goes, or a file where one of its
/// folders goes (a junk file named like a phase's folder of statuses), or
/// what is no file (a FIFO, which would hang a read or a write).
/// Looked for once writing or reading it failed, to say so beside the
/// system's error, which names neither.
pub fn in_the_way(path: &Utf8Path) -> Option<String> {
    if let Ok(meta) = path.metadata() {
        return match meta.is_dir() {
            true => Some("a folder is there; move it away".to_owned()),
            false => (!meta.is_file())
                .then(|| "a FIFO, a socket or a device is there; remove it".to_owned()),
        };
    }
    let nearest = path.ancestors().skip(1).find(|dir| dir.exists())?;
    (!nearest.is_dir()).then(|| format!("{nearest} is a file, where a folder goes; move it away"))
}

/// `what` of `path`, as an error's context, with what is in its way.
fn failed_at(what: &str, path: &Utf8Path) -> String {
    match in_the_way(path) {
        Some(obstacle) => format!("{what} {path}: {obstacle}"),
        None => format!("{what} {path}"),
    }
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
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: a FIFO put where the file goes fails the open (no
    // reader) rather than waiting for one forever.
    let open = || {
        std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NONBLOCK)
            .open(file)
    };
    let mut handle = match open() {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| failed_at("cannot create folder", dir))?;
            open().with_context(|| failed_at("cannot create", file))?
        }
        Err(e) => return Err(e).with_context(|| failed_at("cannot create", file)),
    };
    let written = handle.metadata().and_then(|old| {
        fill(&mut handle)?;
        handle.flush()?;
        if old.len() > 0 {
            // What is left of the old content, if it was longer, goes.
            let end = handle.stream_position()?;
            if end < old.len() {
                handle.set_len(end)?;
            }
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
            Err(e).with_context(|| failed_at("cannot remove", path))
        }
        _ => Ok(()),
    }
}

/// The JSON file at `path` that is read, changed and written again
/// whole (`history.json`, `resets.json`): its default when there is none;
/// an error naming it when it is there but cannot be read, so that what
/// it holds is never written over with a part of it.
pub fn read_to_change<T: serde::de::DeserializeOwned + Default>(path: &Utf8Path) -> Result<T> {
    let bytes = match crate::sys::read_regular_file(path) {
        Ok((bytes, _)) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {path}")),
    };
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{path} cannot be read: it is left as it is; fix it, or move it away to start it again"
        )
    })
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
            replace(&path, content.as_bytes(), false).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_spare_in_another_folder_is_written_over_whole_and_keeps_the_replaced_version() {
        let dir = std::env::temp_dir().join(format!("xtask-spare-{}", std::process::id()));
        let dir = Utf8PathBuf::from_path_buf(dir).unwrap();
        let (a, b) = (dir.join("p/a.json"), dir.join("q/b.json"));
        let first = replace(&a, b"a, first and long", true).unwrap();
        assert_eq!(first, None, "nothing to swap");
        // Expected first, wrongly: swapped all the same.
        let spare = replace(&a, b"a, second", true)
            .unwrap()
            .expect("the first swapped out");
        assert_eq!(spare, previous(&a).unwrap());
        assert_eq!(
            std::fs::read_to_string(&spare).unwrap(),
            "a, first and long"
        );
        replace(&b, b"b, first", true).unwrap();
        assert!(replace_via(&b, b"b", false, &spare).unwrap());
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b");
        assert_eq!(std::fs::read_to_string(&spare).unwrap(), "b, first");
        assert!(!previous(&b).unwrap().exists(), "no file made beside b");
        // Nothing to swap with: the spare is the status now.
        let c = dir.join("q/c.json");
        assert!(!replace_via(&c, b"c", false, &spare).unwrap());
        assert_eq!(std::fs::read_to_string(&c).unwrap(), "c");
        assert!(!spare.exists());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "a, second");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
