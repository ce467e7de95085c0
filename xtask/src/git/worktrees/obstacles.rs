//! What stands in a task's worktree's way: a folder or branch cargo xtask
//! did not make, or a worktree of ours no longer one; each an `Obstacle`,
//! said with what to do.

use camino::Utf8Path;

/// A folder or branch in a task's worktree's way that cargo xtask did not
/// make, or a worktree of ours no longer one: a person's to clear, which
/// every attempt would meet again until then (the run does not retry it).
#[derive(Debug)]
pub struct Obstacle(String);

impl std::fmt::Display for Obstacle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Obstacle {}

pub(super) fn obstacle(said: String) -> anyhow::Error {
    Obstacle(said).into()
}

/// Why the user's branch `theirs` stops making `branch` (`what`).
pub(super) fn in_the_way(theirs: &str, what: &str, branch: &str) -> String {
    format!("a branch `{theirs}` is in the way of {what} `{branch}`: git cannot have a branch and a folder of branches of the same name; rename yours (`git branch -m {theirs} <new name>`)")
}

/// What a folder in the way of a task's worktree is said to be.
pub(super) fn not_a_worktree_of_ours(path: &Utf8Path) -> String {
    format!("{path} exists and is not a worktree made by cargo xtask: move it away")
}

/// A task's branch checked out at `other`, not its worktree `path`.
pub(super) fn checked_out_elsewhere(branch: &str, other: &Utf8Path, path: &Utf8Path) -> String {
    format!("branch `{branch}` is checked out at {other}: a task's branch is only checked out in its own worktree, {path}")
}

/// The worktree at a task's `path`, on `on` (a branch, or none: detached),
/// not on the task's `branch`.
pub(super) fn worktree_of_another(path: &Utf8Path, on: Option<&str>, branch: &str) -> String {
    let on = on.unwrap_or("a detached commit");
    format!("{path} is a worktree of {on}, not of `{branch}`: move it away")
}
