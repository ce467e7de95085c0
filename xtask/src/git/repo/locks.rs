//! The lock files a git killed with an earlier orchestrator left: in a
//! task's worktree and on the branches only this orchestrator writes
//! (removed on recovery), and the shared `packed-refs.lock`, waited out
//! before a merge.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::{remove_file_if_there, Repo};
use crate::git::command;
use crate::sys::walk::{walk, Step};

/// How the git a person left at work most often ends: what the queue and
/// a run refused say to wait for.
pub const EDITOR_CLOSES: &str = "a `git commit` waiting on its editor ends as the editor closes";

impl Repo {
    /// Removes the lock files a git killed with an earlier orchestrator left
    /// in the worktree at `dir`: every `*.lock` of its own git folder (its
    /// index, HEAD, merge message...), once none is held open by a live
    /// process (waited for, 10 s at most: see `held_lock`). One held is a
    /// live git's, a person's: removed, that git would later rename the
    /// orchestrator's own lock over the index. Then this fails, naming it.
    pub fn remove_stale_worktree_locks(&self, dir: &Utf8Path) -> Result<()> {
        if let Some(held) = self.held_lock(dir, Duration::from_secs(10))? {
            bail!("{held}, not cargo xtask's: let it end ({EDITOR_CLOSES}), then run again");
        }
        for lock in self.worktree_locks(dir)? {
            remove_lock(&lock)?;
        }
        Ok(())
    }

    /// A lock file in the worktree at `dir`'s own git folder that a live
    /// process holds open (an editor's `git status`), or that is there
    /// while a live git works in `dir` (a person's `git commit -a` waiting
    /// on its editor, which closed it), still held after waiting up to
    /// `settle` for it to go (a `git status` holds `index.lock` for
    /// milliseconds), or a second Ctrl-C.
    pub fn held_lock(&self, dir: &Utf8Path, settle: Duration) -> Result<Option<HeldLock>> {
        let until = Instant::now() + settle;
        loop {
            let Some(held) = HeldLock::among(dir, self.worktree_locks(dir)?) else {
                return Ok(None);
            };
            if Instant::now() >= until || command::cut_here() {
                return Ok(Some(held));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `*.lock` files of the worktree at `dir`'s own git folder.
    fn worktree_locks(&self, dir: &Utf8Path) -> Result<Vec<Utf8PathBuf>> {
        let mut locks = Vec::new();
        walk([self.own_git_dir(dir)?], |entry| {
            match entry.utf8().filter(|path| path.as_str().ends_with(".lock")) {
                Some(lock) if !entry.is_folder => locks.push(lock.to_owned()),
                _ => {}
            }
            Step::Into
        });
        Ok(locks)
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

/// A lock file a live process other than this one holds open.
#[derive(Debug, Clone)]
pub struct HeldLock {
    pub lock: Utf8PathBuf,
    pub pid: u32,
}

impl HeldLock {
    /// The first of `locks`, of the worktree at `dir`, a live process
    /// holds open, else the first while a live git works in `dir`.
    fn among(dir: &Utf8Path, locks: Vec<Utf8PathBuf>) -> Option<HeldLock> {
        let first = locks.first()?.clone();
        locks.into_iter().find_map(HeldLock::of).or_else(|| {
            let dir = std::fs::canonicalize(dir).ok()?;
            let pid = crate::sys::process::git_working_in(&dir)?;
            Some(HeldLock { lock: first, pid })
        })
    }

    fn of(lock: Utf8PathBuf) -> Option<HeldLock> {
        let real = std::fs::canonicalize(&lock).ok()?;
        let pid = crate::sys::process::other_holder(&real)?;
        Some(HeldLock { lock, pid })
    }
}

impl std::fmt::Display for HeldLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a git at work (pid {} holds {})", self.pid, self.lock)
    }
}

fn remove_lock(path: &Utf8Path) -> Result<()> {
    remove_file_if_there(path).context("cannot remove a stale lock")
}
