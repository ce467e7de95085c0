//! The merge queue's fast-forward of the integration worktree, marked
//! while it runs: a person merges their own work there (README), so the
//! changes not committed there are theirs, but for what a fast-forward of
//! ours cut short (a kill, a failure halfway) left. The mark names the
//! commit it went to; a change is ours only when the file is as that
//! commit has it (or gone, where it has none).

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::cmd;

use super::{remove_file_if_there, Repo};
use crate::git::command::{prep, run};

/// The mark's file, in the worktree's own git folder.
const MARK: &str = "xtask-fast-forward";

/// The changes not committed in the integration worktree, told apart.
#[derive(Debug, Default)]
pub struct Changes {
    /// Left by a fast-forward of ours cut short.
    pub ours: Vec<String>,
    /// A person's.
    pub persons: Vec<String>,
}

impl Repo {
    /// Fast-forwards the integration worktree at `dir` to branch `to`,
    /// marked until it is done (see above). A failure keeps the mark:
    /// what it may have left is told apart by it all the same.
    pub fn fast_forward_marked(&self, dir: &Utf8Path, to: &str) -> Result<()> {
        let mark = self.fast_forward_mark(dir)?;
        let commit = self.branch_commit(to)?.unwrap_or_default();
        std::fs::write(&mark, commit).with_context(|| format!("cannot write {mark}"))?;
        self.fast_forward(dir, to)?;
        remove_file_if_there(&mark)
    }

    /// The changes not committed in the integration worktree at `dir`:
    /// a person's, but for those a fast-forward of ours cut short left.
    pub fn changes_in_integration(&self, dir: &Utf8Path) -> Result<Changes> {
        let changed = self.uncommitted(dir, &[])?;
        let commit = match std::fs::read_to_string(self.fast_forward_mark(dir)?) {
            Ok(commit) if !changed.is_empty() => commit.trim().to_owned(),
            _ => {
                return Ok(Changes {
                    ours: Vec::new(),
                    persons: changed,
                })
            }
        };
        let as_there = self.blobs_at(dir, &commit, &changed)?;
        let as_here = self.blobs_here(dir, &changed)?;
        let (ours, persons) = changed
            .into_iter()
            .zip(as_here)
            .partition(|(path, here)| as_there.get(path) == here.as_ref());
        let names = |v: Vec<(String, Option<String>)>| v.into_iter().map(|(p, _)| p).collect();
        Ok(Changes {
            ours: names(ours),
            persons: names(persons),
        })
    }

    /// Removes from the integration worktree at `dir` what a fast-forward
    /// of ours cut short left, once nothing else is there (the commit
    /// stays, no branch moves); then its mark.
    pub fn restore_clean(&self, dir: &Utf8Path) -> Result<()> {
        let mark = self.fast_forward_mark(dir)?;
        if !mark.exists() {
            return Ok(());
        }
        let changes = self.changes_in_integration(dir)?;
        if !changes.persons.is_empty() {
            // The queue waits for them first (`git::merge`).
            return Ok(());
        }
        if !changes.ours.is_empty() {
            let sh = &self.sh;
            run(prep(cmd!(sh, "git -C {dir} reset --quiet --hard HEAD")))?;
            run(prep(cmd!(sh, "git -C {dir} clean --quiet -d --force")))?;
        }
        remove_file_if_there(&mark)
    }

    /// The mark's path: the worktree's `.git` file names its git folder
    /// (read, not asked of git: this is looked up at every merge).
    fn fast_forward_mark(&self, dir: &Utf8Path) -> Result<Utf8PathBuf> {
        let link = std::fs::read_to_string(dir.join(".git")).unwrap_or_default();
        match link.trim().strip_prefix("gitdir: ") {
            Some(gitdir) => Ok(dir.join(gitdir).join(MARK)),
            None => Ok(self.own_git_dir(dir)?.join(MARK)),
        }
    }

    /// The blob of each of `paths` at `commit`, by path (those it has).
    fn blobs_at(
        &self,
        dir: &Utf8Path,
        commit: &str,
        paths: &[String],
    ) -> Result<std::collections::HashMap<String, String>> {
        let sh = &self.sh;
        let specs = super::literally(paths);
        let text = run(prep(cmd!(
            sh,
            "git -C {dir} ls-tree -r -z {commit} -- {specs...}"
        )))?;
        // `<mode> blob <id>\t<path>`, each ended by NUL.
        Ok(text
            .split('\0')
            .filter_map(|entry| {
                let (info, path) = entry.split_once('\t')?;
                let id = info.split(' ').nth(2)?;
                Some((path.to_owned(), id.to_owned()))
            })
            .collect())
    }

    /// The blob each of `paths` would be as it is in the worktree at
    /// `dir` (its filters applied, as `add` would), `None` for one gone.
    fn blobs_here(&self, dir: &Utf8Path, paths: &[String]) -> Result<Vec<Option<String>>> {
        let there: Vec<&String> = paths.iter().filter(|p| dir.join(p).is_file()).collect();
        let sh = &self.sh;
        let hashed = match there.is_empty() {
            true => String::new(),
            false => run(prep(cmd!(sh, "git -C {dir} hash-object -- {there...}")))?,
        };
        let mut hashed = hashed.lines();
        Ok(paths
            .iter()
            .map(|p| match dir.join(p).is_file() {
                true => hashed.next().map(str::to_owned),
                false => None,
            })
            .collect())
    }
}
