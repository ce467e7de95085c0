//! A worktree put back on its task's branch, or the advice on where its
//! agent left the work, when it stands elsewhere.

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use xshell::cmd;

use super::{branch_ref, Repo};
use crate::git::command::{output, prep, run};
use crate::sys::shell::shell_word;
use crate::ui::format;

impl Repo {
    /// Puts the worktree at `dir` back on `branch` when something (a rebase
    /// cut short) left it elsewhere; refuses, as git does, when that would
    /// lose changes, and when it stands where commits `branch` lacks were
    /// made (an agent that made a branch of its own, or committed on a
    /// detached HEAD): those are its work, never left behind. `base`, the
    /// commit its mark names, goes into the advice when the agent deleted
    /// the branch (git deletes the mark with it).
    pub fn back_on(&self, dir: &Utf8Path, branch: &str, base: Option<&str>) -> Result<()> {
        let sh = &self.sh;
        let head = output(prep(cmd!(sh, "git -C {dir} symbolic-ref -q HEAD")))?;
        let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        let on = head.strip_prefix("refs/heads/").unwrap_or(&head);
        if on == branch {
            return Ok(());
        }
        let place = match on {
            "" => "a detached HEAD".to_owned(),
            other => format!("branch `{other}`"),
        };
        if self.commit_at(dir)?.is_none() {
            // `git checkout --orphan`: what the agent left is in no commit.
            let dir = shell_word(dir.as_str());
            bail!(
                "the agent left its worktree on {place}, which has no commit yet (`git checkout --orphan`): nothing is merged, and what it left there is committed nowhere; check out `{branch}` there (`git -C {dir} checkout {branch}`) keeping what you want of it, then run it again"
            );
        }
        if self.branch_commit(branch)?.is_none() {
            // The agent deleted it: its work is where HEAD is, or nowhere.
            let head = run(prep(cmd!(sh, "git -C {dir} rev-parse --short HEAD")))?;
            let dir = shell_word(dir.as_str());
            let marked = match base {
                Some(base) => format!(
                    " && git -C {dir} config {} {base}",
                    crate::git::worktrees::mark(branch)
                ),
                None => String::new(),
            };
            bail!(
                "the agent deleted its branch `{branch}` and left its worktree on {place}, at {head}: nothing is merged; make the branch again there, with cargo xtask's mark (`git -C {dir} branch {branch} {head}{marked}`), if that commit is its work, then run it again"
            );
        }
        let range = format!("{}..HEAD", branch_ref(branch));
        let n = run(prep(cmd!(sh, "git -C {dir} rev-list --count {range}")))?;
        let n: usize =
            (n.parse()).with_context(|| format!("git rev-list --count printed `{n}`"))?;
        if n != 0 {
            let head = run(prep(cmd!(sh, "git -C {dir} rev-parse HEAD")))?;
            // On a branch of another's the agent checked out (off the
            // task's history, or made before the task's branch), those
            // commits are that branch's too: merged whole, they would take
            // another's work into the integration.
            // Unknown (a base gone, no reflogs) is taken for another's:
            // the advice then errs on the side of the user's commits.
            let off_history = match base {
                Some(base) => self.count(&head, base).map_or(true, |n| n != 0),
                None => false,
            };
            let older = |other: &str| match (self.made_at(other), self.made_at(branch)) {
                (Some(other), Some(ours)) => other < ours,
                _ => true,
            };
            let own_history = !off_history && (on.is_empty() || !older(on));
            let dir = shell_word(dir.as_str());
            let short = &head[..head.len().min(12)];
            let commits = format::counted(n, "commit", "commits");
            let (they_are, them) = if n == 1 {
                ("it is", "it")
            } else {
                ("they are", "them")
            };
            if !own_history {
                bail!(
                    "the agent left its worktree on {place}, which was not made for the task (it is older than `{branch}`, or lacks its base): of the {commits} there that `{branch}` lacks, only those the agent made are its work, and none is merged; look (`git -C {dir} log {branch}..{short}`), put the agent's on `{branch}` (`git -C {dir} checkout {branch} && git -C {dir} cherry-pick <commit>...`), then run it again"
                );
            }
            bail!(
                "the agent left its worktree on {place}, with {commits} `{branch}` lacks: {they_are} not merged; put {them} on `{branch}` (in that worktree: `git -C {dir} checkout {branch} && git -C {dir} merge --ff-only {short}`, or a rebase), then run it again"
            );
        }
        run(prep(cmd!(sh, "git -C {dir} checkout --quiet {branch}"))).map(drop)
    }

    /// The commit checked out at `dir`; none on a branch with no commit
    /// yet (`git checkout --orphan`).
    pub fn commit_at(&self, dir: &Utf8Path) -> Result<Option<String>> {
        let sh = &self.sh;
        let spec = "HEAD^{commit}";
        let out = output(prep(cmd!(
            sh,
            "git -C {dir} rev-parse --verify --quiet {spec}"
        )))?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// When branch `name` was made, in seconds since the epoch, as the
    /// oldest entry of its reflog says; none without a reflog.
    fn made_at(&self, name: &str) -> Option<u64> {
        let sh = &self.sh;
        let rev = branch_ref(name);
        let out = run(prep(cmd!(sh, "git log -g --date=unix --format=%gd {rev}"))).ok()?;
        let oldest = out.lines().last()?;
        oldest.rsplit_once("@{")?.1.strip_suffix('}')?.parse().ok()
    }
}
