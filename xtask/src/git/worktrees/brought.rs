//! What `worktrees.copy` and `link` bring into each task's worktree from
//! the root: a `.env` copied, a `node_modules` linked. Never committed,
//! never merged, removed with the worktree.

use anyhow::{Context, Result};
use camino::Utf8Path;

use super::{make_parent, Worktrees};
use crate::git::repo::Repo;
use crate::model::config::Worktrees as Settings;

impl Worktrees {
    /// Copies `worktrees.copy` and links `worktrees.link` from the root
    /// into a new worktree, each that exists in the root (a copy git
    /// tracks is not made: `tracked_copies`).
    pub(super) fn bring_files(&self, worktree: &Utf8Path) -> Result<()> {
        let root = &self.layout.root;
        let there = self.repo.root_in(worktree);
        let tracked = self.tracked_copies()?;
        for name in self.settings.copy.iter().filter(|n| !tracked.contains(n)) {
            let from = root.join(name);
            let to = there.join(name);
            if from.is_file() {
                make_parent(&to)?;
                std::fs::copy(&from, &to).with_context(|| format!("cannot copy {from} to {to}"))?;
            }
        }
        for name in &self.settings.link {
            let from = root.join(name);
            let to = there.join(name);
            if from.exists() && !to.exists() {
                make_parent(&to)?;
                std::os::unix::fs::symlink(&from, &to)
                    .with_context(|| format!("cannot link {to} to {from}"))?;
            }
        }
        Ok(())
    }

    /// The links `worktrees.link` makes that git does not ignore as links
    /// (a `node_modules/` pattern matches folders only): an agent's `git
    /// add -A` commits them, and its work is then never merged. Asked in
    /// the integration worktree, where they are not.
    pub fn unignored_links(&self) -> Result<Vec<String>> {
        let links = untracked(&self.repo, &self.settings.link)?;
        self.repo.not_ignored(&self.integration_dir(), &links)
    }

    /// The paths of `worktrees.copy` (as written) that git tracks: each
    /// worktree has its own checkout of them, and a copy over it would be
    /// a change no one made, which stops the rebase of every merge.
    pub fn tracked_copies(&self) -> Result<Vec<String>> {
        tracked(&self.repo, &self.settings.copy)
    }
}

/// The paths `worktrees.copy` and `link` bring into each worktree, from
/// its top (they are the root's, wherever the root is in the repository):
/// never committed, and removed with the worktree. A path git tracks is
/// none: the worktree has its own checkout of it (nothing is copied or
/// linked over it), and what an agent changes there is committed as any
/// change, not left behind to stop the rebase.
pub fn brought(repo: &Repo, settings: &Settings) -> Result<Vec<String>> {
    Ok((untracked(repo, &settings.copy)?.into_iter())
        .chain(untracked(repo, &settings.link)?)
        .collect())
}

/// Those of `paths` (from the root, as `copy` and `link` name them) that
/// the repository does not track, from its top.
fn untracked(repo: &Repo, paths: &[String]) -> Result<Vec<String>> {
    let tracked = tracked(repo, paths)?;
    Ok((paths.iter())
        .filter(|path| !tracked.contains(path))
        .map(|path| repo.root_in_top.join(path).to_string())
        .collect())
}

/// Those of `paths` (from the root) that the repository tracks, as
/// written.
fn tracked(repo: &Repo, paths: &[String]) -> Result<Vec<String>> {
    let in_top = |path: &String| repo.root_in_top.join(path).to_string();
    let tracked = repo.tracked(&paths.iter().map(in_top).collect::<Vec<_>>())?;
    Ok((paths.iter())
        .filter(|path| tracked.contains(&in_top(path)))
        .cloned()
        .collect())
}
