//! git's records of the worktrees: listing them, making, moving and
//! repairing them, and forgetting those of ours whose folders are gone.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::cmd;

use super::Repo;
use crate::git::command::{self, output, prep, run};
use crate::git::worktrees::remove_empty_parents;
use crate::sys::walk::{walk, Step};

/// The file in a worktree's own git folder that marks it as ours.
const WORKTREE_MARK: &str = "xtask-worktree";

/// The file in a worktree's own git folder that records what
/// `worktrees.copy` copied into it, each path (as the config names it)
/// with the hash of its content as copied (JSON).
const COPIES_RECORD: &str = "xtask-copies";

/// The folder, in ours, of the marks of worktree removals going on.
const REMOVING: &str = ".removing";

/// Writes the empty file `mark`, and the folders it is in.
fn write_mark(mark: &Utf8Path) -> Result<()> {
    if let Some(parent) = mark.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot make {parent}"))?;
    }
    std::fs::write(mark, "").with_context(|| format!("cannot write {mark}"))
}

/// Gives its owner read, write and search permission on every folder
/// under `dir` that lacks one (not following links), so that what is in
/// it can be deleted. A folder that is not ours stays as it is.
fn let_folders_be_emptied(dir: &Utf8Path) {
    let_be_emptied(dir.as_std_path());
    walk([dir], |entry| {
        if entry.is_folder {
            let_be_emptied(entry.path());
        }
        Step::Into
    });
}

/// Gives its owner read, write and search permission on the folder
/// `dir` if it lacks one (and is a folder, not a link to one).
fn let_be_emptied(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = dir.symlink_metadata() else {
        return;
    };
    let mode = meta.permissions().mode();
    if meta.is_dir() && mode & 0o700 != 0o700 {
        let emptiable = std::fs::Permissions::from_mode(mode | 0o700);
        let _ = std::fs::set_permissions(dir, emptiable);
    }
}

impl Repo {
    /// The worktrees git knows: each one's folder and the branch checked
    /// out there (none when detached).
    pub fn worktrees(&self) -> Result<Vec<(Utf8PathBuf, Option<String>)>> {
        let sh = &self.sh;
        let text = match run(prep(cmd!(sh, "git worktree list --porcelain"))) {
            Ok(text) => text,
            // A record half written by an `add` killed with an earlier
            // orchestrator makes git refuse to list any.
            Err(e) if self.drop_unfinished_adds()? => {
                run(prep(cmd!(sh, "git worktree list --porcelain"))).context(e)?
            }
            Err(e) => return Err(e),
        };
        let real = real_path(&self.ours);
        let mut found = Vec::new();
        for block in text.split("\n\n") {
            let mut path = None;
            let mut branch = None;
            for line in block.lines() {
                if let Some(p) = line.strip_prefix("worktree ") {
                    path = Some(self.as_ours(p, &real));
                } else if let Some(b) = line.strip_prefix("branch refs/heads/") {
                    branch = Some(b.to_owned());
                }
            }
            if let Some(path) = path {
                found.push((path, branch));
            }
        }
        Ok(found)
    }

    /// `path`, as git says it (its symlinks resolved), in the form of this
    /// orchestrator's own paths when it is under `real`, the resolved
    /// folder of its worktrees: a `workspace/` that is a symlink (to a
    /// scratch disk) leads git elsewhere than the paths the run compares.
    fn as_ours(&self, path: &str, real: &Utf8Path) -> Utf8PathBuf {
        let path = Utf8PathBuf::from(path);
        match path.strip_prefix(real) {
            Ok(rest) => self.ours.join(rest),
            Err(_) => path,
        }
    }

    /// Removes the records of worktrees whose `add` was cut short before it
    /// had written them whole: locked as "initializing", without the file
    /// that names the repository (or with it empty), and either for a
    /// folder of ours or not touched for a while (an `add` of someone else's, in progress, writes
    /// its records in microseconds). Returns whether it removed any.
    fn drop_unfinished_adds(&self) -> Result<bool> {
        let real = real_path(&self.ours);
        let mut dropped = false;
        for dir in self.worktree_records()? {
            let dir = dir.as_path();
            let locked = std::fs::read_to_string(dir.join("locked")).unwrap_or_default();
            // Killed before it wrote the file, or while it did (empty).
            let commondir = std::fs::read_to_string(dir.join("commondir")).unwrap_or_default();
            let unfinished = locked.trim() == "initializing" && commondir.trim().is_empty();
            let quiet = dir
                .join("locked")
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() >= 2));
            let gitdir = std::fs::read_to_string(dir.join("gitdir")).unwrap_or_default();
            let gitdir = self.as_ours(gitdir.trim(), &real);
            let mine = gitdir.starts_with(&self.ours);
            // Another thread's, whole in a moment.
            let adding = command::being_added(&gitdir);
            if unfinished && (mine || quiet) && !adding {
                std::fs::remove_dir_all(dir).with_context(|| {
                    format!("cannot remove the unfinished worktree record {dir}")
                })?;
                dropped = true;
            }
        }
        Ok(dropped)
    }

    /// Adds a worktree at `path` with `branch` checked out.
    pub fn add_worktree(&self, path: &Utf8Path, branch: &str) -> Result<()> {
        let _adding = command::adding(path);
        let sh = &self.sh;
        let add = || run(prep(cmd!(sh, "git worktree add {path} {branch}"))).map(drop);
        let mut wait = command::HalfWritten::new();
        loop {
            let e = match add() {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let said = format!("{e:#}");
            if !said.contains("failed to read") {
                return Err(e);
            }
            // A record an `add` killed with an earlier orchestrator left
            // half written fails every later add: dropped, then again.
            if self.drop_unfinished_adds()? {
                return add();
            }
            // One another `add` is writing (another task's, beside this
            // one), whole in a moment: run again. Only while git made
            // nothing of this one: it reads the records before it makes
            // the folder, and runs a hook only in a worktree it made (and
            // keeps), so no hook runs twice. (Its stderr cannot tell: a
            // hook's follows git's "Preparing worktree" line as this
            // error does.)
            if !command::read_a_record(&said) || path.exists() || !wait.pause() {
                return Err(e);
            }
        }
    }

    /// Removes the folder `dir` when it is empty and no worktree is being
    /// added in this process (one may be about to be made in it).
    pub fn remove_unused_folder(&self, dir: &Utf8Path) {
        command::unless_adding(|| {
            // Fails on a folder that holds anything: left.
            let _ = std::fs::remove_dir(dir);
        });
    }

    /// Moves the worktree at `from` to `to`.
    pub fn move_worktree(&self, from: &Utf8Path, to: &Utf8Path) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git worktree move {from} {to}"))).map(drop)
    }

    /// The repositories of the submodules checked out in the worktree at
    /// `dir` (in its own git folder's `modules/`, nested ones too), by
    /// their path there, each with how many commits its branches and
    /// `HEAD` hold that none of its remotes' branches has: an agent's
    /// commit in a submodule, which removing the worktree would delete
    /// (its repository is the worktree's own). Those holding none are
    /// left out.
    pub fn submodule_work_alone(&self, dir: &Utf8Path) -> Result<Vec<(String, u64)>> {
        let modules = self.own_git_dir(dir)?.join("modules");
        let mut alone = Vec::new();
        for git_dir in module_repositories(&modules) {
            let count = self.commits_alone(&git_dir, &["HEAD", "--branches"]);
            if count > 0 {
                let name = git_dir.strip_prefix(&modules).unwrap_or(&git_dir);
                alone.push((name.to_string(), count));
            }
        }
        Ok(alone)
    }

    /// How many commits of `revs` in the repository whose git folder is
    /// `git_dir` none of its remotes' branches has. One git cannot count
    /// in (a `HEAD` with no commit yet, a repository half made) is taken
    /// to hold work: kept, and the other worktrees cleaned all the same.
    fn commits_alone(&self, git_dir: &Utf8Path, revs: &[&str]) -> u64 {
        let sh = &self.sh;
        let count = run(prep(cmd!(
            sh,
            "git --git-dir={git_dir} rev-list --count {revs...} --not --remotes"
        )));
        count.ok().and_then(|n| n.trim().parse().ok()).unwrap_or(1)
    }

    /// The git repositories of their own in what git ignores in the
    /// worktree at `dir` (`ignored`, from its top: a folder ends in `/`),
    /// by their path there, each with how many commits its refs and `HEAD`
    /// hold that none of its remotes' branches has: an agent's commit in a
    /// dependency it cloned into an ignored `vendor/`, which removing the
    /// worktree would delete (git's `worktree remove` takes ignored files).
    /// Those holding none are left out; links are not followed.
    pub fn ignored_work_alone(
        &self,
        dir: &Utf8Path,
        ignored: &[String],
    ) -> Result<Vec<(String, u64)>> {
        let folders = (ignored.iter())
            .filter(|entry| entry.ends_with('/'))
            .map(|entry| dir.join(entry.trim_end_matches('/')));
        let mut found = Vec::new();
        walk(folders, |entry| {
            match entry.is_folder && entry.name() == Some(".git") {
                true => {
                    found.extend(entry.utf8().map(Utf8Path::to_owned));
                    Step::Past
                }
                false => Step::Into,
            }
        });
        found.sort();
        let mut alone = Vec::new();
        for git_dir in found {
            let count = self.commits_alone(&git_dir, &["--all"]);
            if count > 0 {
                let repository = git_dir.parent().expect("a .git is in a folder");
                let name = repository.strip_prefix(dir).unwrap_or(repository);
                alone.push((name.to_string(), count));
            }
        }
        Ok(alone)
    }

    /// Removes the worktree at `path`; git refuses when it has changes,
    /// and so do we (no force), but for one whose submodules are checked
    /// out, which git refuses whatever they hold: its caller has found it
    /// clean and its submodules' work elsewhere (`uncommitted`,
    /// `submodule_work_alone`). Its folders are made emptiable first: a
    /// read-only folder (a Go module cache is made so) stopped git halfway,
    /// for any user but root.
    ///
    /// git deletes the files, `.git` among them, in the folder's order,
    /// before its record of the worktree: a removal cut short (a killed
    /// `clean`, a folder it could not empty) leaves a folder with no
    /// `.git`, which nothing would tell from a worktree whose agent removed
    /// its `.git`, or a worktree with its `.git` and files deleted, which
    /// would be kept as one with changes not committed. So the removal is
    /// marked while it goes on, and one cut short is finished by
    /// `finish_removals`.
    pub fn remove_worktree(&self, path: &Utf8Path) -> Result<()> {
        let submodules = (self.own_git_dir(path)).is_ok_and(|git| git.join("modules").exists());
        let force = submodules.then_some("--force");
        let mark = self.removal_mark(path);
        if let Some(mark) = &mark {
            write_mark(mark)?;
        }
        let_folders_be_emptied(path);
        let sh = &self.sh;
        let removed = run(prep(cmd!(sh, "git worktree remove {force...} {path}"))).map(drop);
        // Refused before it deleted anything, the worktree stays whole.
        if let Some(mark) = mark.filter(|_| removed.is_ok() || !self.removal_cut_short(path)) {
            self.remove_mark(&mark)?;
        }
        removed
    }

    /// Where the removal of our worktree at `path` is marked while it goes
    /// on (`.removing/<its path under our folder>`); none for a worktree
    /// elsewhere.
    fn removal_mark(&self, path: &Utf8Path) -> Option<Utf8PathBuf> {
        // git names it by its real path (the root's symlinks resolved).
        let path = self.as_ours(path.as_str(), &real_path(&self.ours));
        let under = path.strip_prefix(&self.ours).ok()?;
        Some(self.ours.join(REMOVING).join(under))
    }

    /// The folders of our worktrees whose removal was cut short (see
    /// `remove_worktree`): marked, with no `.git` left (gone whole, or in
    /// part) or with files of it deleted and no other change, which
    /// `finish_removals` removes with git's record of them. What a dry run
    /// of `clean` says it would finish.
    pub fn removals_cut_short(&self) -> Vec<Utf8PathBuf> {
        let marks_dir = self.ours.join(REMOVING);
        (self.removal_marks().iter())
            .map(|mark| {
                self.ours
                    .join(mark.strip_prefix(&marks_dir).expect("found under it"))
            })
            .filter(|path| self.removal_cut_short(path))
            .collect()
    }

    /// Whether git began deleting the worktree at `path`: its `.git` is
    /// gone, or files of it are (git went through the folder in its own
    /// order, `.git` not yet reached), nothing else changed.
    fn removal_cut_short(&self, path: &Utf8Path) -> bool {
        !path.join(".git").exists() || self.only_files_deleted(path)
    }

    /// Finishes the removals of our worktrees that were cut short: what is
    /// left of each folder goes, with git's record of it (git had found
    /// the worktree clean before it began). A mark whose worktree still
    /// is whole was left before git deleted anything: dropped.
    /// Returns the folders it removed what was left of.
    pub fn finish_removals(&self) -> Result<Vec<Utf8PathBuf>> {
        let marks = self.removal_marks();
        if marks.is_empty() {
            return Ok(Vec::new());
        }
        let cut_short = self.removals_cut_short();
        let mut finished = Vec::new();
        for path in &cut_short {
            if path.exists() {
                let_folders_be_emptied(path);
                std::fs::remove_dir_all(path).with_context(|| {
                    format!("cannot remove {path}, a worktree whose removal was cut short")
                })?;
                remove_empty_parents(path, &self.ours);
                finished.push(path.clone());
            }
        }
        // Only their records: one of ours whose folder is gone for another
        // reason is `clean`'s to name with its branch, as its dry run does.
        self.forget_missing(|folder| cut_short.iter().any(|p| p == folder))?;
        for mark in &marks {
            self.remove_mark(mark)?;
        }
        Ok(finished)
    }

    /// The marks of the removals going on, or cut short.
    fn removal_marks(&self) -> Vec<Utf8PathBuf> {
        let mut marks = Vec::new();
        walk([self.ours.join(REMOVING)], |entry| {
            if !entry.is_folder {
                marks.extend(entry.utf8().map(Utf8Path::to_owned));
            }
            Step::Into
        });
        marks
    }

    /// Removes a removal's mark, and the folders that held it once empty.
    fn remove_mark(&self, mark: &Utf8Path) -> Result<()> {
        std::fs::remove_file(mark).with_context(|| format!("cannot remove {mark}"))?;
        remove_empty_parents(mark, &self.ours);
        Ok(())
    }

    /// Points git's record of the worktree at `path` back to it (after a
    /// move cut short).
    pub fn repair_worktree(&self, path: &Utf8Path) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git worktree repair {path}"))).map(drop)
    }

    /// Our worktrees (in the orchestrator's folder of them) whose link to
    /// the repository leads nowhere while git still has their record: the
    /// repository (or the root) was moved since they were made, and git
    /// records absolute paths both ways (`git worktree repair` links them
    /// again).
    pub fn worktrees_left_by_a_move(&self) -> Vec<Utf8PathBuf> {
        let records = self.records_dir();
        (self.links_leading_nowhere().into_iter())
            .filter(|(_, name)| records.as_ref().is_ok_and(|r| r.join(name).is_dir()))
            .map(|(path, _)| path)
            .collect()
    }

    /// Our worktree folders whose link leads nowhere and whose record git
    /// no longer has (removed by hand, or pruned while the folder was away,
    /// a scratch disk not mounted): no longer worktrees, which no repair
    /// links again; kept, as a folder that is no longer a worktree is.
    pub fn worktrees_without_record(&self) -> Vec<Utf8PathBuf> {
        let records = self.records_dir();
        (self.links_leading_nowhere().into_iter())
            .filter(|(_, name)| !records.as_ref().is_ok_and(|r| r.join(name).is_dir()))
            .map(|(path, _)| path)
            .collect()
    }

    /// Our folders with a `.git` file whose link to the repository leads
    /// nowhere, each with the name of the record it names.
    fn links_leading_nowhere(&self) -> Vec<(Utf8PathBuf, String)> {
        let mut found = Vec::new();
        // Each task's at its id's path (`<phase>/<name>`, deeper for ids
        // of folders), the integration's at `.integration`: every folder,
        // but inside a worktree.
        walk([self.ours.clone()], |entry| {
            let Some(path) = entry.utf8() else {
                return Step::Past;
            };
            let Ok(link) = std::fs::read_to_string(path.join(".git")) else {
                return Step::Into;
            };
            // Relative with `worktree.useRelativePaths`: to it.
            let gitdir = link.trim().strip_prefix("gitdir: ").unwrap_or("");
            if !path.join(gitdir).exists() {
                let name = Utf8Path::new(gitdir).file_name().unwrap_or_default();
                found.push((path.to_owned(), name.to_owned()));
            }
            Step::Past
        });
        found
    }

    /// Links our worktrees left by a move of the repository back to it,
    /// both ways (`git worktree repair`). One git cannot repair (its record
    /// pruned meanwhile) stays as it is, for the checks of its task or of
    /// the integration worktree to name.
    pub fn repair_after_a_move(&self) -> Result<()> {
        let moved = self.worktrees_left_by_a_move();
        if !moved.is_empty() {
            let sh = &self.sh;
            let _ = output(prep(cmd!(sh, "git worktree repair {moved...}")))?;
        }
        Ok(())
    }

    /// Unlocks the record of the worktree at `path` (locked while `add`
    /// makes it); one not locked is fine.
    pub fn unlock_worktree(&self, path: &Utf8Path) -> Result<()> {
        let sh = &self.sh;
        let _ = output(prep(cmd!(sh, "git worktree unlock {path}")))?;
        Ok(())
    }

    /// Marks the worktree at `dir` as made by this orchestrator for
    /// `branch`, in its own git folder: git makes that folder new for each
    /// worktree, so one of someone else's made later at the same path
    /// never has the mark.
    pub fn mark_worktree(&self, dir: &Utf8Path, branch: &str) -> Result<()> {
        let mark = self.own_git_dir(dir)?.join(WORKTREE_MARK);
        std::fs::write(&mark, branch).with_context(|| format!("cannot write {mark}"))
    }

    /// Records, in the own git folder of the worktree at `dir`, the files
    /// `worktrees.copy` copied into it, each with its content's hash as
    /// copied: what tells a copy edited since from one as it came, whatever
    /// the root's file became meanwhile.
    pub fn record_copies(&self, dir: &Utf8Path, copies: &BTreeMap<String, String>) -> Result<()> {
        let record = self.own_git_dir(dir)?.join(COPIES_RECORD);
        let text = serde_json::to_string(copies)?;
        std::fs::write(&record, text).with_context(|| format!("cannot write {record}"))
    }

    /// What `record_copies` recorded of the worktree at `dir`; none for a
    /// worktree made before copies were recorded.
    pub fn copies_recorded(&self, dir: &Utf8Path) -> Result<Option<BTreeMap<String, String>>> {
        let record = self.own_git_dir(dir)?.join(COPIES_RECORD);
        match std::fs::read_to_string(&record) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("cannot read {record}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {record}")),
        }
    }

    /// The branch this orchestrator made the worktree at `dir` for, if it
    /// marked it (`mark_worktree`).
    pub fn worktree_mark(&self, dir: &Utf8Path) -> Result<Option<String>> {
        let mark = self.own_git_dir(dir)?.join(WORKTREE_MARK);
        match std::fs::read_to_string(&mark) {
            Ok(branch) => Ok(Some(branch)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {mark}")),
        }
    }

    /// Forgets the worktrees of ours (in the orchestrator's folder of them)
    /// whose folders are gone, as `git worktree prune` does (`workspace/`
    /// removed, an agent that removed its `.git`), but only those: the
    /// prune would forget a user's worktree whose folder is away for now
    /// (on a disk not mounted), and the commits only it held. A locked
    /// record is kept, as the prune keeps it.
    pub fn forget_missing_worktrees(&self) -> Result<()> {
        self.forget_missing(|_| true)
    }

    /// `forget_missing_worktrees`, of the worktrees whose folder `of` takes.
    fn forget_missing(&self, of: impl Fn(&Utf8Path) -> bool) -> Result<()> {
        let real = real_path(&self.ours);
        for record in self.worktree_records()? {
            let Ok(gitdir) = std::fs::read_to_string(record.join("gitdir")) else {
                continue;
            };
            let gitdir = gitdir.trim();
            let ours = self.as_ours(gitdir, &real);
            let mine = ours.starts_with(&self.ours) && ours.parent().is_some_and(&of);
            let gone = !Utf8Path::new(gitdir).exists();
            if mine && gone && !record.join("locked").exists() {
                std::fs::remove_dir_all(&record)
                    .with_context(|| format!("cannot remove the worktree record {record}"))?;
            }
        }
        Ok(())
    }

    /// The folder that holds git's records of the worktrees.
    fn records_dir(&self) -> Result<Utf8PathBuf> {
        let sh = &self.sh;
        let common = run(prep(cmd!(sh, "git rev-parse --git-common-dir")))?;
        Ok(self.top.join(common).join("worktrees"))
    }

    /// The folders where git keeps its record of each worktree.
    fn worktree_records(&self) -> Result<Vec<Utf8PathBuf>> {
        Ok(self
            .records_dir()?
            .read_dir_utf8()
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().to_owned())
            .collect())
    }
}

/// `path` with its symlinks resolved, as git writes it, also when its end
/// does not exist (a `workspace/` removed): the part that exists resolved.
fn real_path(path: &Utf8Path) -> Utf8PathBuf {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = at.canonicalize_utf8() {
            return missing
                .iter()
                .rev()
                .fold(real, |real, name| real.join(name));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name);
                at = parent;
            }
            _ => return path.to_owned(),
        }
    }
}

/// The git folders under `modules` (a submodule's, named by its path,
/// which may have slashes; each with its own `modules/` for those nested
/// in it).
fn module_repositories(modules: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![modules.to_owned()];
    // A repository's own submodules are in its `modules`, by name: walked
    // after, its other folders left out.
    while !folders.is_empty() {
        let mut nested = Vec::new();
        walk(std::mem::take(&mut folders), |entry| {
            let Some(path) = entry.utf8() else {
                return Step::Past;
            };
            if !entry.is_folder || !path.join("HEAD").is_file() || !path.join("objects").is_dir() {
                return Step::Into;
            }
            nested.push(path.join("modules"));
            found.push(path.to_owned());
            Step::Past
        });
        folders = nested;
    }
    found.sort();
    found
}
