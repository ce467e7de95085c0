//! What `worktrees.copy` and `link` bring into each task's worktree from
//! the root: a `.env` copied, a `node_modules` linked. Never committed,
//! never merged, removed with the worktree, but for a copy edited there
//! (`copies_changed`), which keeps it.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use camino::Utf8Path;

use super::{make_parent, Worktrees};
use crate::git::repo::Repo;
use crate::model::config::Worktrees as Settings;
use crate::model::mark::Mark;

impl Worktrees {
    /// Copies `worktrees.copy` and links `worktrees.link` from the root
    /// into a new worktree, each that exists in the root (a copy git
    /// tracks is not made: `tracked_copies`), and records the copies as
    /// made (`copies_changed` tells them from the agent's edits).
    pub(super) fn bring_files(&self, worktree: &Utf8Path) -> Result<()> {
        let root = &self.layout.root;
        let there = self.repo.root_in(worktree);
        let mut hashes = BTreeMap::new();
        for name in copied(&self.repo, &self.settings)? {
            let from = root.join(&name);
            let to = there.join(&name);
            if from.is_file() {
                make_parent(&to)?;
                std::fs::copy(&from, &to).with_context(|| format!("cannot copy {from} to {to}"))?;
                hashes.insert(name, content_hash(&to)?);
            }
        }
        self.repo.record_copies(worktree, &hashes)?;
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

/// The paths of `worktrees.copy` (as written) that the repository does
/// not track: those copied into each worktree, for `copies_changed`.
pub fn copied(repo: &Repo, settings: &Settings) -> Result<Vec<String>> {
    Ok(untracked_names(repo, &settings.copy)?
        .into_iter()
        .cloned()
        .collect())
}

/// The files of `copies` (`copied`) in the worktree at `folder` that are
/// someone's work, each with why: edited since it was copied
/// (its content's hash is not the one recorded as it was copied), or put
/// there with none copied (the root had none). The root's file is not what
/// a copy is judged by: it may have changed since. A worktree made before
/// copies were recorded has its copies compared with the root's files
/// (`root`).
pub fn copies_changed(
    repo: &Repo,
    root: &Utf8Path,
    copies: &[String],
    folder: &Utf8Path,
) -> Result<Vec<String>> {
    if copies.is_empty() {
        return Ok(Vec::new());
    }
    let recorded = repo.copies_recorded(folder)?;
    let there = repo.root_in(folder);
    let mut changed = Vec::new();
    for name in copies {
        let path = there.join(name);
        match path.symlink_metadata() {
            // Removed: the root's file is untouched, nothing was lost.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot look at {path}")),
            Ok(_) => {}
        }
        let copied = match &recorded {
            Some(recorded) => recorded.get(name).cloned(),
            None => content_hash(&root.join(name)).ok(),
        };
        // Not a file any more (a folder made there), or unreadable: not
        // taken for the copy.
        let now = content_hash(&path).ok();
        let why = match copied {
            None => "not copied by worktrees.copy: made there",
            Some(hash) if now.as_ref() != Some(&hash) => "edited since worktrees.copy copied it",
            Some(_) => continue,
        };
        changed.push(format!("{} ({why})", repo.root_in_top.join(name)));
    }
    Ok(changed)
}

/// The hash of the content of the file at `path`.
fn content_hash(path: &Utf8Path) -> Result<String> {
    let mark = Mark::of_file(path).with_context(|| format!("cannot read {path}"))?;
    Ok(mark.hash)
}

/// Those of `paths` (from the root, as `copy` and `link` name them) that
/// the repository does not track, from its top.
fn untracked(repo: &Repo, paths: &[String]) -> Result<Vec<String>> {
    Ok((untracked_names(repo, paths)?.into_iter())
        .map(|path| repo.root_in_top.join(path).to_string())
        .collect())
}

/// Those of `paths` (from the root) that the repository does not track,
/// as written.
fn untracked_names<'p>(repo: &Repo, paths: &'p [String]) -> Result<Vec<&'p String>> {
    let tracked = tracked(repo, paths)?;
    Ok(paths
        .iter()
        .filter(|path| !tracked.contains(path))
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
