//! The merge queue's rebase of a task's branch onto the integration
//! branch, marked as ours while it may be in progress, and undone when an
//! orchestrator killed during it left it so.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::cmd;

use super::{branch_ref, remove_file_if_there, Repo};
use crate::git::command::{self, output, prep, run};
use crate::sys::shell::shell_word;

/// How a rebase went.
pub enum Rebased {
    Done,
    /// It stopped on conflicts in these files, and was aborted: the branch
    /// is as it was.
    Conflict(Vec<String>),
}

impl Repo {
    /// Rebases the branch checked out at `dir` onto branch `onto`, without an
    /// editor; on conflicts, aborts and names the conflicted files. It is
    /// marked as ours while it may be in progress (see `undo_rebase`): the
    /// mark is written before it starts, and stays when an orchestrator is
    /// killed during it.
    pub fn rebase(&self, dir: &Utf8Path, onto: &str) -> Result<Rebased> {
        let mark = self.rebase_mark(dir)?;
        std::fs::write(&mark, onto).with_context(|| format!("cannot write {mark}"))?;
        let rebased = self.rebase_unmarked(dir, onto);
        if !self.rebase_in_progress(dir)? {
            // Before the mark goes: once it has, that file is the agent's.
            self.drop_our_cherry_pick_head(dir)?;
            remove_file_if_there(&mark)?;
        }
        rebased
    }

    /// Whether a rebase of ours is marked in the worktree at `dir` (left
    /// in progress by a killed orchestrator).
    pub fn rebase_marked(&self, dir: &Utf8Path) -> Result<bool> {
        Ok(self.rebase_mark(dir)?.exists())
    }

    /// Where `rebase` marks a rebase of ours in the worktree at `dir`: in
    /// its own git folder, beside git's state of the rebase, which nothing
    /// commits.
    fn rebase_mark(&self, dir: &Utf8Path) -> Result<Utf8PathBuf> {
        Ok(self.own_git_dir(dir)?.join("xtask-rebase"))
    }

    fn rebase_unmarked(&self, dir: &Utf8Path, onto: &str) -> Result<Rebased> {
        let sh = &self.sh;
        let upstream = branch_ref(onto);
        // The user's config does not change what the queue does: with
        // `rebase.updateRefs` git would move every branch of the user's
        // that points into the commits rebased, and with
        // `rebase.rebaseMerges` keep merge commits the queue does not
        // (`-c`, not `--no-update-refs`, which git before 2.38 refuses).
        let out = output(prep(cmd!(
            sh,
            "git -c rebase.updateRefs=false -c rebase.rebaseMerges=false -C {dir} rebase --no-autostash {upstream}"
        )))?;
        if out.status.success() {
            return Ok(Rebased::Done);
        }
        let files = self.unmerged(dir)?;
        if self.rebase_in_progress(dir)? {
            run(prep(cmd!(sh, "git -C {dir} rebase --abort")))?;
        }
        if files.is_empty() {
            // Undone: git's hints (`git rebase --continue`) are no one's to follow.
            let stderr = String::from_utf8_lossy(&out.stderr);
            // What a terminal would show of a line redrawn after `\r` (its progress).
            let shown = stderr.lines().filter_map(|l| l.rsplit('\r').next());
            let said: Vec<&str> = shown.filter(|l| !l.starts_with("hint:")).collect();
            bail!(
                "`git rebase {onto}` in {dir} failed, and was undone: {}{}",
                said.join("\n").trim(),
                command::signing_hint(&stderr)
            );
        }
        Ok(Rebased::Conflict(files))
    }

    /// Whether a rebase was left in progress in the worktree at `dir` (an
    /// orchestrator killed during it).
    fn rebase_in_progress(&self, dir: &Utf8Path) -> Result<bool> {
        Ok(self.in_progress(dir)? == Some("a rebase"))
    }

    /// Undoes a rebase of ours (one `rebase` marked) left in progress in
    /// the worktree at `dir` by a killed orchestrator, back to `branch` as
    /// it was. A rebase killed before it had written where it started from
    /// cannot be aborted: its state is dropped, and what it had checked out
    /// is set back to the branch's commit. That discards only the rebase's
    /// own work: the merge queue commits everything in a worktree before it
    /// rebases, and a rebase moves the branch only once it is done. A
    /// rebase in progress that is not ours (the agent's, stopped to edit a
    /// commit or on a conflict) holds commits on no branch: it is an error,
    /// and left as it is. The callers then put the worktree back on the
    /// branch (`back_on`).
    pub fn undo_rebase(&self, dir: &Utf8Path, branch: &str) -> Result<()> {
        let mark = self.rebase_mark(dir)?;
        if !self.rebase_in_progress(dir)? {
            if mark.exists() {
                // An undo of ours (or the rebase's end) killed after git
                // had left it.
                self.drop_our_cherry_pick_head(dir)?;
            }
            return remove_file_if_there(&mark);
        }
        if !mark.exists() {
            let dir = shell_word(dir.as_str());
            bail!(
                "a rebase cargo xtask did not start (the agent's own) is in progress in the worktree {dir}: what it committed meanwhile is on no branch, and nothing was merged; finish it (`git -C {dir} rebase --continue`) or abort it (`git -C {dir} rebase --abort`), then run the task again"
            );
        }
        let sh = &self.sh;
        if run(prep(cmd!(sh, "git -C {dir} rebase --abort"))).is_err() {
            run(prep(cmd!(sh, "git -C {dir} rebase --quit")))?;
            let tip = branch_ref(branch);
            run(prep(cmd!(sh, "git -C {dir} reset --quiet --hard {tip}")))?;
        }
        self.drop_our_cherry_pick_head(dir)?;
        remove_file_if_there(&mark)
    }

    /// Removes the `CHERRY_PICK_HEAD` a rebase of ours left in the worktree
    /// at `dir` (called only while its mark is there). Git writes it for
    /// every commit a rebase picks, and deletes it (the pick done, or in
    /// `rebase --abort`) under the shared `packed-refs.lock`; when a git
    /// killed with an earlier orchestrator left that lock (a SIGTERM
    /// taken just as git opened it), git says so and goes on, exit 0, the
    /// file left: `left_unfinished` would take it for the agent's
    /// cherry-pick. It is ours: `merge` checks that the agent left none
    /// before the rebase is marked, and a worktree made again for a retry
    /// is undone (`undo_rebase`) before its agent runs. Removed as a file,
    /// in the worktree's own git folder: `git update-ref -d` needs that
    /// lock too.
    fn drop_our_cherry_pick_head(&self, dir: &Utf8Path) -> Result<()> {
        remove_file_if_there(&self.own_git_dir(dir)?.join("CHERRY_PICK_HEAD"))
    }
}
