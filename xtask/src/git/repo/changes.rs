//! What a worktree holds that is not committed, as `git status` says:
//! changes, untracked and ignored files.

use anyhow::Result;
use camino::Utf8Path;
use xshell::cmd;

use super::{all_but, literally, Repo};
use crate::git::command::{prep, run, run_untrimmed};

impl Repo {
    /// The files with changes not committed in the worktree at `dir`
    /// (untracked ones too, not ignored ones), but those at the paths of
    /// `except`.
    pub fn uncommitted(&self, dir: &Utf8Path, except: &[String]) -> Result<Vec<String>> {
        let text = self.status(dir, &["--untracked-files=all"], except)?;
        Ok(changed_paths(&text))
    }

    /// Whether the worktree at `dir` has lost tracked files and holds no
    /// other change: what a `git worktree remove` cut short leaves when it
    /// deleted files before `.git` (it deletes them in the folder's order).
    pub fn only_files_deleted(&self, dir: &Utf8Path) -> bool {
        let Ok(text) = self.status(dir, &["--untracked-files=all"], &[]) else {
            return false;
        };
        let mut entries = text
            .split('\0')
            .filter(|entry| !entry.is_empty())
            .peekable();
        entries.peek().is_some() && entries.all(|entry| entry.starts_with(" D "))
    }

    /// `uncommitted`, before a removal that would delete what a
    /// submodule holds: its changes count whatever the user's config says
    /// to show (`submodule.<name>.ignore`), but not its being at another
    /// commit than the worktree records (its work rebased under it by the
    /// merge queue), whose commits `submodule_work_alone` looks for.
    pub fn uncommitted_anywhere(&self, dir: &Utf8Path, except: &[String]) -> Result<Vec<String>> {
        let options = [
            "--porcelain=v2",
            "--untracked-files=all",
            "--ignore-submodules=none",
        ];
        let text = self.status(dir, &options, except)?;
        Ok(changed_paths_v2(&text))
    }

    /// What git ignores in the worktree at `dir` (a folder it ignores whole
    /// as one entry: `target/`), but at the paths of `except`: `git
    /// worktree remove` takes it with the worktree.
    pub fn ignored(&self, dir: &Utf8Path, except: &[String]) -> Result<Vec<String>> {
        let options = ["--ignored=traditional", "--untracked-files=normal"];
        let text = self.status(dir, &options, except)?;
        Ok((text.split('\0'))
            .filter_map(|entry| entry.strip_prefix("!! "))
            .map(str::to_owned)
            .collect())
    }

    /// `git status --porcelain -z` of the worktree at `dir`, with
    /// `options`, but for the paths of `except`. Untrimmed: the first
    /// entry's status may start with a space (` M README.md`); `-z`: names
    /// as they are, not quoted. No optional lock: `status` would take the
    /// index's lock to refresh it, and a person's `git add` there meanwhile
    /// would fail.
    fn status(&self, dir: &Utf8Path, options: &[&str], except: &[String]) -> Result<String> {
        let sh = &self.sh;
        let paths = all_but(except);
        run_untrimmed(prep(cmd!(
            sh,
            "git --no-optional-locks -C {dir} status --porcelain -z {options...} -- {paths...}"
        )))
    }

    /// Those of `paths` (as written, no wildcards) that are untracked files
    /// in the worktree at `dir`.
    pub fn untracked(&self, dir: &Utf8Path, paths: &[String]) -> Result<Vec<String>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let sh = &self.sh;
        let specs = literally(paths);
        let text = run(prep(cmd!(
            sh,
            "git -C {dir} status --porcelain -z --untracked-files=all -- {specs...}"
        )))?;
        Ok(text
            .split('\0')
            .filter_map(|entry| entry.strip_prefix("?? "))
            .map(str::to_owned)
            .collect())
    }
}

/// The paths `git status --porcelain -z` lists: each entry `XY path`, and
/// after a rename's or a copy's, its original path in a field of its own.
fn changed_paths(text: &str) -> Vec<String> {
    let mut fields = text.split('\0').filter(|field| !field.is_empty());
    let mut paths = Vec::new();
    while let Some(entry) = fields.next() {
        let (Some(status), Some(path)) = (entry.get(..2), entry.get(3..)) else {
            continue;
        };
        if status.contains(['R', 'C']) {
            fields.next();
        }
        paths.push(path.to_owned());
    }
    paths
}

/// The paths of a `git status --porcelain=v2 -z`, but a submodule's whose
/// only change is the commit it is at (`1 .M SC.. ...`).
fn changed_paths_v2(text: &str) -> Vec<String> {
    let mut fields = text.split('\0').filter(|field| !field.is_empty());
    let mut paths = Vec::new();
    while let Some(entry) = fields.next() {
        let (kind, words) = match entry.split_at_checked(2) {
            Some(("1 ", rest)) => (1, rest.splitn(8, ' ').collect::<Vec<_>>()),
            Some(("2 ", rest)) => (2, rest.splitn(9, ' ').collect()),
            Some(("u ", rest)) => (3, rest.splitn(10, ' ').collect()),
            Some(("? ", rest)) => (4, vec![rest]),
            _ => continue,
        };
        if kind == 2 {
            // The path it was renamed from.
            fields.next();
        }
        let commit_only = kind == 1 && words.get(..2) == Some(&[".M", "SC.."]);
        if let (Some(path), false) = (words.last(), commit_only) {
            paths.push((*path).to_owned());
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::{changed_paths, changed_paths_v2};

    #[test]
    fn a_submodule_only_at_another_commit_is_no_change_in_status_v2() {
        let status = "1 .M SC.. 160000 160000 160000 a b lib\x001 .M SCM. 160000 160000 160000 a b dirty lib\x002 R. N... 100644 100644 100644 a b R100 new name.rs\x00old name.rs\x00? notes.txt\x00";
        assert_eq!(
            changed_paths_v2(status),
            ["dirty lib", "new name.rs", "notes.txt"]
        );
    }

    #[test]
    fn every_path_of_a_status_is_whole_and_a_rename_names_its_new_path() {
        let status = " M README.md\0R  new name.rs\0old name.rs\0?? notes.txt\0";
        assert_eq!(
            changed_paths(status),
            ["README.md", "new name.rs", "notes.txt"]
        );
        assert!(changed_paths("").is_empty());
    }
}
