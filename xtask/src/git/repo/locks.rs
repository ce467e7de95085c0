//! The lock files a git killed with an earlier orchestrator left: in a
//! task's worktree and on the branches only this orchestrator writes
//! (removed on recovery), and the shared `packed-refs.lock`, waited out
//! before a merge.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use camino::Utf8Path;

use super::{remove_file_if_there, Repo};
use crate::git::command;
use crate::sys::walk::{walk, Step};

impl Repo {
    /// Removes the lock files a git killed with an earlier orchestrator left
    /// in the worktree at `dir`: every `*.lock` of its own git folder (its
    /// index, HEAD, merge message...). Nothing but this orchestrator runs
    /// git there while it holds the workspace.
    pub fn remove_stale_worktree_locks(&self, dir: &Utf8Path) -> Result<()> {
        let mut failed = Ok(());
        walk([self.own_git_dir(dir)?], |entry, folder| {
            if folder || !entry.file_name().ends_with(".lock") {
                return Step::Into;
            }
            failed = remove_lock(entry.path());
            match failed {
                Ok(()) => Step::Into,
                Err(_) => Step::Stop,
            }
        });
        failed
    }

    /// Removes the lock files a git killed with an earlier orchestrator left
    /// on `branches`, which only this orchestrator writes.
    pub fn remove_stale_ref_locks(&self, branches: &[&str]) -> Result<()> {
        for branch in branches {
            remove_lock(&self.git_path(&format!("refs/heads/{branch}.lock"))?)?;
        }
        Ok(())
    }

    /// Removes the shared `packed-refs.lock` a git killed with an earlier
    /// orchestrator left (a ref's deletion holds it: AUTO_MERGE's, at the
    /// end of a rebase or merge): every later deletion of a ref would fail
    /// on it, the merge queue's and the user's. Only one surely stale: this
    /// user's, untouched for seconds, and open in no process (git holds it
    /// open for the milliseconds it needs it).
    ///
    /// Until then, and while a live git holds it, the merge waits (10 s at
    /// most, then goes on as before): a git that cannot take it to delete
    /// a ref says an error and goes on, exit 0, leaving the ref. A rebase,
    /// or its abort after an orchestrator was killed during it, then left
    /// CHERRY_PICK_HEAD in the task's worktree, and the queue took it for
    /// a cherry-pick the agent left unfinished: the task failed.
    /// A lock waited for in vain is not waited for again by the merges
    /// after (one held by a hung git cost each of them the 10 s), and a
    /// second Ctrl-C, which cuts the merge going on, ends the wait.
    pub fn settle_packed_refs_lock(&self) -> Result<()> {
        // The lock waited for in vain, by device, inode and change time (a
        // later lock may be given the same inode), forgotten once gone.
        static IN_VAIN: std::sync::Mutex<Option<(u64, u64, i64, i64)>> =
            std::sync::Mutex::new(None);
        use std::os::unix::fs::MetadataExt;
        let path = self.git_path("packed-refs.lock")?;
        let mut in_vain = IN_VAIN.lock().unwrap_or_else(|e| e.into_inner());
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            remove_if_stale(&path)?;
            let Ok(meta) = path.metadata() else {
                *in_vain = None;
                return Ok(());
            };
            let lock = Some((meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec()));
            if *in_vain == lock || command::cut_here() {
                return Ok(());
            }
            if Instant::now() >= until {
                *in_vain = lock;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Removes the lock at `path` if it is stale: see `settle_packed_refs_lock`.
fn remove_if_stale(path: &Utf8Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = path.metadata() else {
        return Ok(());
    };
    // SAFETY: geteuid has no preconditions.
    let mine = meta.uid() == unsafe { libc::geteuid() };
    let age = meta.modified().ok().and_then(|at| at.elapsed().ok());
    let still = age.is_some_and(|age| age >= Duration::from_secs(5));
    let open =
        std::fs::canonicalize(path).map_or(true, |real| crate::sys::process::open_anywhere(&real));
    match mine && still && !open {
        true => remove_lock(path),
        false => Ok(()),
    }
}

fn remove_lock(path: &Utf8Path) -> Result<()> {
    remove_file_if_there(path).context("cannot remove a stale lock")
}
