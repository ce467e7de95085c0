//! The merge queue's fast-forward of the integration worktree, marked
//! while it runs: a person merges their own work there (README), so the
//! changes not committed there are theirs, but for what a fast-forward of
//! ours cut short (a kill, a failure halfway) left. The mark names the
//! commit it went to; a change is ours only when the file is as that
//! commit has it, or, for a path the fast-forward changes, on its way
//! there: gone (git unlinks a file before it writes it again, and one the
//! commit has not), or written in part (created empty, a kill before its
//! last byte). Put back as HEAD has it, none of these loses anything that
//! is in no commit; a path the fast-forward leaves as HEAD has it, gone or
//! cut short, is the person's (an unstaged `rm`).

use std::collections::HashMap;

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::cmd;

use super::{remove_file_if_there, Repo};
use crate::git::command::{output, prep, run, run_untrimmed};

/// The mark's file, in the worktree's own git folder.
const MARK: &str = "xtask-fast-forward";

/// A changed path as it is in the worktree (see `Repo::as_here`).
enum Here {
    File(String),
    Link(String),
    Gone,
}

/// The changes not committed in the integration worktree, told apart.
#[derive(Debug, Default)]
pub struct Changes {
    /// Left by a fast-forward of ours cut short.
    pub ours: Vec<String>,
    /// A person's.
    pub persons: Vec<String>,
}

/// How far back `moved_outside` looks in the branch's reflog.
const REFLOG_LOOKED_AT: &str = "8";

/// The integration branch moved outside the merge queue (`moved_outside`).
#[derive(Debug, Clone)]
pub struct Moved {
    /// Its ref, `refs/heads/<name>`.
    pub branch: String,
    /// The tip its worktree still has checked out.
    pub from: String,
    /// Where it is now.
    pub to: String,
}

impl Repo {
    /// Fast-forwards the integration worktree at `dir` to branch `to`,
    /// marked until it is done (see above). A failure keeps the mark:
    /// what it may have left is told apart by it all the same.
    pub fn fast_forward_marked(&self, dir: &Utf8Path, to: &str) -> Result<()> {
        let mark = self.fast_forward_mark(dir)?;
        let commit = self
            .branch_commit(to)?
            .with_context(|| format!("branch `{to}` is gone: nothing to fast-forward to"))?;
        // Whole or not at all: a kill while it is written leaves no mark
        // that names no commit.
        crate::state::atomic::write(&mark, commit.as_bytes())?;
        self.fast_forward(dir, to)?;
        remove_file_if_there(&mark)
    }

    /// When the branch checked out in the integration worktree at `dir`
    /// was moved by something other than the merge queue (`git
    /// update-ref`, an agent): its index and files are still those of an
    /// earlier tip, so the changes git shows there only undo the move.
    /// Returns that earlier tip and the branch's (its ref, and the two
    /// commits), found in the branch's reflog.
    pub fn moved_outside(&self, dir: &Utf8Path) -> Result<Option<Moved>> {
        let sh = &self.sh;
        let head = output(prep(cmd!(sh, "git -C {dir} symbolic-ref -q HEAD")))?;
        if !head.status.success() {
            return Ok(None);
        }
        let branch = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        // Files as the index has them: else a person edited some too.
        if !output(prep(cmd!(sh, "git -C {dir} diff --quiet")))?
            .status
            .success()
        {
            return Ok(None);
        }
        let reflog = run(prep(cmd!(
            sh,
            "git -C {dir} log -g --format=%H -n {REFLOG_LOOKED_AT} {branch} --"
        )))?;
        let mut tips = reflog.lines();
        let Some(to) = tips.next() else {
            return Ok(None);
        };
        for from in tips.filter(|&from| from != to) {
            let staged = output(prep(cmd!(
                sh,
                "git -C {dir} diff --cached --quiet {from} --"
            )))?;
            if staged.status.success() {
                return Ok(Some(Moved {
                    branch,
                    from: from.to_owned(),
                    to: to.to_owned(),
                }));
            }
        }
        Ok(None)
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
        // A mark that names no commit (written by an older version, or
        // by hand) tells nothing apart: every change is the person's.
        let Ok(as_there) = self.blobs_at(dir, &commit, &changed) else {
            return Ok(Changes {
                ours: Vec::new(),
                persons: changed,
            });
        };
        let as_here = self.as_here(dir, &changed)?;
        let as_head_has = self.blobs_at(dir, "HEAD", &changed)?;
        let as_staged = self.blobs_staged(dir, &changed)?;
        let mut changes = Changes::default();
        for (path, here) in changed.into_iter().zip(as_here) {
            // What is staged is the commit's (a fast-forward cut short
            // after it wrote the index) or nothing new: else the person's.
            let staged = as_staged.get(&path);
            let index_ours = staged == as_there.get(&path) || staged == as_head_has.get(&path);
            // Only a path the fast-forward changes can be on its way
            // there (gone, written in part): one it leaves as HEAD has it
            // is the person's (an unstaged `rm`, a file cut short).
            let ours_to_write = as_there.get(&path) != as_head_has.get(&path);
            // A name not in UTF-8 is read with U+FFFD in it: not the
            // file's, so never taken for gone.
            let as_commit_has = index_ours
                && !path.contains('\u{fffd}')
                && match (here, as_there.get(&path)) {
                    (Here::File(blob), Some(there)) => {
                        blob == *there || (ours_to_write && self.written_in_part(dir, &path, there))
                    }
                    // git keeps a link as a blob of the path it holds.
                    (Here::Link(target), Some(there)) => {
                        let sh = &self.sh;
                        let held =
                            run_untrimmed(prep(cmd!(sh, "git -C {dir} cat-file blob {there}")));
                        held.is_ok_and(|held| held == target)
                    }
                    (Here::Gone, _) => ours_to_write,
                    _ => false,
                };
            match as_commit_has {
                true => changes.ours.push(path),
                false => changes.persons.push(path),
            }
        }
        Ok(changes)
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
            self.put_back(dir, &changes.ours)?;
        }
        remove_file_if_there(&mark)
    }

    /// Puts `paths`, and only them (a person may be making others
    /// meanwhile), back as HEAD has them: in the index, then in the
    /// worktree; one HEAD lacks is removed.
    fn put_back(&self, dir: &Utf8Path, paths: &[String]) -> Result<()> {
        let sh = &self.sh;
        let specs = super::literally(paths);
        run(prep(cmd!(
            sh,
            "git -C {dir} reset --quiet HEAD -- {specs...}"
        )))?;
        let in_head = self.blobs_at(dir, "HEAD", paths)?;
        let (kept, made): (Vec<&String>, Vec<&String>) =
            paths.iter().partition(|p| in_head.contains_key(*p));
        if !kept.is_empty() {
            let specs = super::literally(&kept.into_iter().cloned().collect::<Vec<_>>());
            run(prep(cmd!(
                sh,
                "git -C {dir} checkout --quiet HEAD -- {specs...}"
            )))?;
        }
        for path in made {
            remove_file_if_there(&dir.join(path))?;
        }
        Ok(())
    }

    /// Whether the file `path` in the worktree at `dir` is the start of
    /// `blob` as git writes it there (its filters applied), shorter: a
    /// write of git's cut short.
    fn written_in_part(&self, dir: &Utf8Path, path: &str, blob: &str) -> bool {
        let Ok(here) = std::fs::read(dir.join(path)) else {
            return false;
        };
        let sh = &self.sh;
        let path = format!("--path={path}");
        let whole = output(prep(cmd!(
            sh,
            "git -C {dir} cat-file --filters {path} {blob}"
        )));
        whole.is_ok_and(|whole| {
            whole.status.success()
                && here.len() < whole.stdout.len()
                && whole.stdout.starts_with(&here)
        })
    }

    /// The blob staged for each of `paths`, by path (those in the index).
    fn blobs_staged(&self, dir: &Utf8Path, paths: &[String]) -> Result<HashMap<String, String>> {
        let sh = &self.sh;
        let specs = super::literally(paths);
        let text = run(prep(cmd!(sh, "git -C {dir} ls-files -s -z -- {specs...}")))?;
        // `<mode> <id> <stage>\t<path>`
        Ok(blob_ids(&text, 1))
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
    ) -> Result<HashMap<String, String>> {
        let sh = &self.sh;
        let specs = super::literally(paths);
        let text = run(prep(cmd!(
            sh,
            "git -C {dir} ls-tree -r -z {commit} -- {specs...}"
        )))?;
        // `<mode> blob <id>\t<path>`
        Ok(blob_ids(&text, 2))
    }

    /// Each of `paths` as it is in the worktree at `dir`: a file's blob
    /// (its filters applied, as `add` would), a link's target, or gone.
    fn as_here(&self, dir: &Utf8Path, paths: &[String]) -> Result<Vec<Here>> {
        // Looked at once: the person may be changing them meanwhile.
        let mut here: Vec<Here> = (paths.iter())
            .map(|p| match dir.join(p).symlink_metadata() {
                Ok(meta) if meta.is_symlink() => match dir.join(p).read_link_utf8() {
                    Ok(target) => Here::Link(target.into_string()),
                    Err(_) => Here::Gone,
                },
                Ok(meta) if meta.is_file() => Here::File(String::new()),
                _ => Here::Gone,
            })
            .collect();
        let files: Vec<&String> = (paths.iter().zip(&here))
            .filter(|(_, h)| matches!(h, Here::File(_)))
            .map(|(p, _)| p)
            .collect();
        if files.is_empty() {
            return Ok(here);
        }
        let sh = &self.sh;
        let hashed = run(prep(cmd!(sh, "git -C {dir} hash-object -- {files...}")))?;
        let mut hashed = hashed.lines();
        for h in &mut here {
            if let Here::File(blob) = h {
                *blob = hashed.next().unwrap_or_default().to_owned();
            }
        }
        Ok(here)
    }
}

/// The blob of each entry of git's `-z` listing `text` (`ls-tree`,
/// `ls-files -s`), by path: its `field`th word before the tab.
fn blob_ids(text: &str, field: usize) -> HashMap<String, String> {
    (text.split('\0'))
        .filter_map(|entry| {
            let (info, path) = entry.split_once('\t')?;
            let id = info.split(' ').nth(field)?;
            Some((path.to_owned(), id.to_owned()))
        })
        .collect()
}
