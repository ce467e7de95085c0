//! The benchmark's scratch folder under the system's temporary folder,
//! removed at the end even on error, and its trash: where the files of
//! earlier runs are moved aside until then.

use std::cell::Cell;
use std::fs;
use std::io;

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

/// The scratch folder; dropping it removes it, so an error on the way does
/// not leave 10,000 task files behind.
pub struct Scratch {
    pub path: Utf8PathBuf,
    keep: bool,
}

impl Scratch {
    /// `xtask-bench-<pid>` in the temporary folder; kept at the end with
    /// `keep` (`--keep`).
    pub fn new(keep: bool) -> Result<Scratch> {
        let tmp = Utf8PathBuf::try_from(std::env::temp_dir())
            .context("the temporary folder's path is not UTF-8")?;
        let path = tmp.join(format!("xtask-bench-{}", std::process::id()));
        // A leftover of a killed run with a recycled pid: ours to reuse.
        if path.exists() {
            remove_dir(&path)?;
        }
        fs::create_dir_all(&path).with_context(|| format!("cannot create {path}"))?;
        Ok(Scratch { path, keep })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("Kept {}", self.path);
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Files of earlier runs, moved aside rather than deleted until the
/// benchmark ends (with the scratch folder). On ext4 without a journal, as
/// on the machine of BENCHMARKS.md, every file deleted makes each file
/// created nearby in the next minutes slower (ext4 steps over recently freed
/// inodes one by one): deleting a run's thousands of files just before the
/// next run would charge that run, most of all the runner that creates the
/// most files, for the benchmark's own cleaning.
pub struct Trash {
    dir: Utf8PathBuf,
    count: Cell<usize>,
}

impl Trash {
    pub fn new(scratch: &Utf8Path) -> Result<Trash> {
        let dir = scratch.join("trash");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir}"))?;
        Ok(Trash {
            dir,
            count: Default::default(),
        })
    }

    /// Moves `path` (if it exists) into the trash.
    pub fn take(&self, path: &Utf8Path) -> Result<()> {
        let n = self.count.get();
        self.count.set(n + 1);
        match fs::rename(path, self.dir.join(n.to_string())) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot move {path} to {}", self.dir))
            }
            _ => Ok(()),
        }
    }
}

fn remove_dir(path: &Utf8Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {path}"))
        }
        _ => Ok(()),
    }
}
