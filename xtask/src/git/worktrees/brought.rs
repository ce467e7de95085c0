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
    /// into a new worktree, each that exists in the root.
    pub(super) fn bring_files(&self, worktree: &Utf8Path) -> Result<()> {
        let root = &self.layout.root;
        let there = self.repo.root_in(worktree);
        for name in &self.settings.copy {
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
        let links = links(&self.repo, &self.settings)?;
        self.repo.not_ignored(&self.integration_dir(), &links)
    }
}

/// The paths `worktrees.copy` and `link` bring into each worktree, from
/// its top (they are the root's, wherever the root is in the repository):
/// never committed, and removed with the worktree. A `link` path git
/// tracks is none: the worktree has its own checkout of it (no link is
/// made over it), and what an agent changes there is committed as any
/// change, not left behind to stop the rebase.
pub fn brought(repo: &Repo, settings: &Settings) -> Result<Vec<String>> {
    let in_top = |path: &String| repo.root_in_top.join(path).to_string();
    Ok((settings.copy.iter().map(in_top))
        .chain(links(repo, settings)?)
        .collect())
}

/// The links `worktrees.link` makes (those the repository does not track),
/// from the top of the repository.
fn links(repo: &Repo, settings: &Settings) -> Result<Vec<String>> {
    let in_top = |path: &String| repo.root_in_top.join(path).to_string();
    let links: Vec<String> = settings.link.iter().map(in_top).collect();
    let tracked = repo.tracked(&links)?;
    Ok(links
        .into_iter()
        .filter(|link| !tracked.contains(link))
        .collect())
}
