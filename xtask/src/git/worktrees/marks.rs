//! What marks a branch as this orchestrator's, in the repository's git
//! config: `branch.<name>.xtaskbase`, the commit it started from (every
//! branch it makes, the integration branch too), and, for a task branch,
//! `branch.<name>.xtaskinto`, the integration branch its work goes into.
//! Two `tasks/` folders of one repository (roots, each with an integration
//! branch of its own) may have tasks of the same id, so branches of the
//! same name: one is never taken for the other's.

use anyhow::Result;

use crate::git::repo::Repo;
use crate::model::branch::TASK_BRANCHES;

/// The git config key that marks a branch as made by this orchestrator.
pub fn mark(branch: &str) -> String {
    format!("branch.{branch}.xtaskbase")
}

/// The git config key that names the integration branch a task branch is
/// for.
pub(super) fn integration_mark(branch: &str) -> String {
    format!("branch.{branch}.xtaskinto")
}

/// The integration branch the task branch `branch` was made for: none for
/// one made before branches named theirs (any root's).
pub fn integration_of(repo: &Repo, branch: &str) -> Result<Option<String>> {
    repo.config_get(&integration_mark(branch))
}

/// Why the task branch `branch`, made for the integration branch `other`,
/// is not taken up, nor merged into `integration`, and what to do.
pub fn made_for_another(branch: &str, other: &str, integration: &str) -> String {
    format!("branch `{branch}` was made by cargo xtask for the integration branch `{other}`, not `{integration}` (another tasks/ folder of this repository, or worktrees.integration named it then): its work is that one's, never merged here; set worktrees.integration back to `{other}`, or rename the task, or, if that work is not wanted, remove its worktree and `git branch -D {branch}`")
}

/// Takes this orchestrator's marks off `branch` (removed, or gone).
pub fn unmark(repo: &Repo, branch: &str) -> Result<()> {
    repo.config_unset(&mark(branch))?;
    if integration_of(repo, branch)?.is_some() {
        repo.config_unset(&integration_mark(branch))?;
    }
    Ok(())
}

/// Whether `branch` is one this orchestrator made as its integration
/// branch (marked so, not a task's).
pub(super) fn was_integration(repo: &Repo, branch: &str) -> bool {
    let task_branch = branch.starts_with(&format!("{TASK_BRANCHES}/"));
    !task_branch && repo.config_get(&mark(branch)).is_ok_and(|m| m.is_some())
}
