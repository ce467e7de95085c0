//! The repository, through git: the only code that runs git. Each command
//! runs through xshell (every value one argument, no shell), never
//! interactively (no editor, no prompt), and an error names the command and
//! what git printed on stderr (how each process is started: `command.rs`).

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xshell::{cmd, Cmd, Shell};

use super::command::{output, prep, run, run_to_end, run_untrimmed};
use crate::model::layout::Layout;

mod back_on;
mod changes;
mod fast_forward;
mod locks;
mod rebase;
mod records;

pub use fast_forward::Moved;
pub use locks::{HeldLock, EDITOR_CLOSES};
pub use rebase::Rebased;

/// Who commits when git has no identity configured (a fresh CI machine):
/// leftovers and rebased commits still need an author and a committer.
const NAME: &str = "cargo xtask";
const EMAIL: &str = "xtask@localhost";

/// How long a write of the repository's config waits for another git's
/// lock on it. The config is shared by every worktree: an agent or the
/// user may run `git config` at any moment, and git itself never waits for
/// that lock. A live git holds it for milliseconds.
const CONFIG_LOCK_WAIT: Duration = Duration::from_secs(2);

/// A git repository or worktree of its own inside a worktree
/// (`nested_repositories`).
pub struct Nested {
    /// From the worktree's top.
    pub path: String,
    /// Made by `git worktree add`, not `git init` or `git clone`.
    pub worktree: bool,
}

/// Whether `dot_git`, the text of a `.git` file, points into a
/// repository's `worktrees/` (`gitdir: /repo/.git/worktrees/<name>`).
fn names_a_worktree(dot_git: &str) -> bool {
    (dot_git.trim().strip_prefix("gitdir: "))
        .and_then(|gitdir| Utf8Path::new(gitdir).parent())
        .is_some_and(|records| records.file_name() == Some("worktrees"))
}

pub struct Repo {
    sh: Shell,
    /// The repository's top folder (the main worktree).
    pub top: Utf8PathBuf,
    /// The root's folder in the repository, from its top (empty when the
    /// root is the top): where the root is in every worktree too.
    pub root_in_top: Utf8PathBuf,
    /// Where this orchestrator's worktrees are (`workspace/worktrees`).
    ours: Utf8PathBuf,
    /// The config's lock stayed longer than `CONFIG_LOCK_WAIT`: later
    /// writes try once, until one gets through (shared with the `Repo`s
    /// of other threads, `for_another_thread`).
    config_lock_stale: Arc<AtomicBool>,
}

/// Which of the task branches `named` (as their statuses name them) are
/// gone from the repository of `layout` (`clean`, `worktrees.remove_merged`
/// or a person removed them): no longer where their work is, which the
/// views say. One listing of the branches, none when no branch is named;
/// none gone when git cannot tell.
pub fn branches_gone<'a>(
    layout: &Layout,
    named: impl IntoIterator<Item = &'a str>,
) -> HashSet<String> {
    let mut named = named.into_iter().peekable();
    if named.peek().is_none() {
        return HashSet::new();
    }
    let Ok(there) = Repo::open(layout).and_then(|repo| repo.branches()) else {
        return HashSet::new();
    };
    named
        .filter(|branch| !there.contains(*branch))
        .map(str::to_owned)
        .collect()
}

impl Repo {
    /// The root's folder in `worktree`, a checkout of this repository.
    pub fn root_in(&self, worktree: &Utf8Path) -> Utf8PathBuf {
        match self.root_in_top.as_str() {
            "" => worktree.to_owned(),
            folder => worktree.join(folder),
        }
    }

    /// The repository that holds the root of `layout`.
    pub fn open(layout: &Layout) -> Result<Repo> {
        let dir = &layout.root;
        let sh = Shell::new().context("cannot start a shell for git")?;
        sh.change_dir(dir);
        let ours = layout.worktrees();
        for (var, value) in [
            ("GIT_EDITOR", "true"),
            ("GIT_SEQUENCE_EDITOR", "true"),
            ("GIT_TERMINAL_PROMPT", "0"),
            ("GIT_MERGE_AUTOEDIT", "no"),
            // git run in a folder of ours never looks above them: in a
            // worktree whose `.git` an agent removed, it would find the
            // repository above, the user's checkout, and act there
            // (switch its branch, abort its rebase, remove its locks).
            // It fails there instead: not a git repository.
            ("GIT_CEILING_DIRECTORIES", ours.as_str()),
        ] {
            sh.set_var(var, value);
        }
        let found = run(prep(cmd!(
            sh,
            "git rev-parse --show-toplevel --show-prefix"
        )))
        .with_context(|| {
            format!("{dir} is not in a git repository: worktree tasks need one (`git init`)")
        })?;
        let mut lines = found.lines();
        let top = lines.next().unwrap_or_default().into();
        let root_in_top = lines
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .into();
        let repo = Repo {
            sh,
            top,
            root_in_top,
            ours,
            config_lock_stale: Arc::default(),
        };
        repo.sh.change_dir(&repo.top);
        if repo.config_get("user.email")?.is_none() {
            for (var, value) in [
                ("GIT_AUTHOR_NAME", NAME),
                ("GIT_AUTHOR_EMAIL", EMAIL),
                ("GIT_COMMITTER_NAME", NAME),
                ("GIT_COMMITTER_EMAIL", EMAIL),
            ] {
                repo.sh.set_var(var, value);
            }
        }
        Ok(repo)
    }

    /// The same repository, for another thread (a `Repo` is one
    /// thread's): what one learns of the config's lock, the others know.
    pub fn for_another_thread(&self, layout: &Layout) -> Result<Repo> {
        Ok(Repo {
            config_lock_stale: self.config_lock_stale.clone(),
            ..Repo::open(layout)?
        })
    }

    /// The commit `rev` names, if it names one.
    pub fn commit_of(&self, rev: &str) -> Result<Option<String>> {
        let sh = &self.sh;
        let spec = format!("{rev}^{{commit}}");
        let out = output(prep(cmd!(sh, "git rev-parse --verify --quiet {spec}")))?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// Makes `dir` a new repository on branch `main`.
    pub fn init(dir: &Utf8Path) -> Result<()> {
        let sh = Shell::new().context("cannot start a shell for git")?;
        sh.change_dir(dir);
        run(prep(cmd!(sh, "git init --quiet --initial-branch=main"))).map(drop)
    }

    /// `git log --graph` of `branch`, one line a commit.
    pub fn graph(&self, branch: &str) -> Result<String> {
        let sh = &self.sh;
        let branch = branch_ref(branch);
        run(prep(cmd!(sh, "git log --graph --format=%h%x20%s {branch}")))
    }

    /// A branch in the folder of branches `branch/`, if there is one.
    pub fn branch_under(&self, branch: &str) -> Result<Option<String>> {
        let sh = &self.sh;
        let folder = format!("{}/", branch_ref(branch));
        let found = run(prep(cmd!(
            sh,
            "git for-each-ref --count=1 --format=%(refname) {folder}"
        )))?;
        Ok(found
            .strip_prefix("refs/heads/")
            .map(str::to_owned)
            .filter(|b| !b.is_empty()))
    }

    /// Every branch, by name (one `git for-each-ref`).
    pub fn branches(&self) -> Result<HashSet<String>> {
        Ok(self.branches_holding(None)?.into_iter().collect())
    }

    /// The branches, by name, that hold commit `commit` (every branch with
    /// none): one `git for-each-ref`.
    fn branches_holding(&self, commit: Option<&str>) -> Result<Vec<String>> {
        let sh = &self.sh;
        let contains = commit.map(|commit| format!("--contains={commit}"));
        let text = run(prep(cmd!(
            sh,
            "git for-each-ref {contains...} --format=%(refname) refs/heads"
        )))?;
        let names = text
            .lines()
            .filter_map(|name| name.strip_prefix("refs/heads/"));
        Ok(names.map(str::to_owned).collect())
    }

    /// The commit a branch points to, if the branch exists.
    pub fn branch_commit(&self, branch: &str) -> Result<Option<String>> {
        self.commit_of(&branch_ref(branch))
    }

    pub fn config_get(&self, key: &str) -> Result<Option<String>> {
        let sh = &self.sh;
        let out = output(prep(cmd!(sh, "git config --get {key}")))?;
        // Exit 1: the key is not set.
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// The names of the config keys that match `pattern` (a regex).
    pub fn config_regexp(&self, pattern: &str) -> Result<Vec<String>> {
        let sh = &self.sh;
        let out = output(prep(cmd!(
            sh,
            "git config --get-regexp --name-only {pattern}"
        )))?;
        // Exit 1: no key matches.
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    pub fn config_set(&self, key: &str, value: &str) -> Result<()> {
        let sh = &self.sh;
        self.write_config(|| prep(cmd!(sh, "git config {key} {value}")))
    }

    pub fn config_unset(&self, key: &str) -> Result<()> {
        let sh = &self.sh;
        self.write_config(|| prep(cmd!(sh, "git config --unset {key}")))
    }

    /// Runs the config write `cmd` makes (in the C locale, `prep`, so
    /// that git's message is known), again while another git holds the config's lock,
    /// for up to `CONFIG_LOCK_WAIT`. A lock that stayed that long is taken
    /// for stale: later writes try once, so that the run's loop, where
    /// worktrees are made, does not stall at every start.
    fn write_config<'a>(&self, cmd: impl Fn() -> Cmd<'a>) -> Result<()> {
        let wait = if self.config_lock_stale.load(Ordering::Relaxed) {
            Duration::ZERO
        } else {
            CONFIG_LOCK_WAIT
        };
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(5);
        loop {
            let done = run_to_end(cmd());
            let locked = done.as_ref().is_err_and(|e| {
                let said = e.to_string();
                said.contains("could not lock config file") && said.contains("File exists")
            });
            if !locked {
                self.config_lock_stale.store(false, Ordering::Relaxed);
                return done.map(drop);
            }
            if Instant::now() >= deadline {
                self.config_lock_stale.store(true, Ordering::Relaxed);
                return done.map(drop).context(format!(
                    "the repository's config is locked, and stayed so for {}s: another git is writing it, or one was killed while it did; when no git runs, remove the `config.lock` beside it",
                    CONFIG_LOCK_WAIT.as_secs()
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Creates branch `name` at `start`.
    pub fn create_branch(&self, name: &str, start: &str) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git branch {name} {start}"))).map(drop)
    }

    /// Deletes branch `name`, only if it still points to `expected` (no
    /// force: a branch moved meanwhile is left alone).
    pub fn delete_branch(&self, name: &str, expected: &str) -> Result<()> {
        let sh = &self.sh;
        let reference = branch_ref(name);
        run(prep(cmd!(sh, "git update-ref -d {reference} {expected}"))).map(drop)
    }

    /// Those of `paths` (from the top, as written, no wildcards) that git
    /// tracks in the user's checkout: a file, or a folder with one.
    pub fn tracked(&self, paths: &[String]) -> Result<Vec<String>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let sh = &self.sh;
        let top = &self.top;
        let specs = literally(paths);
        let text = run_untrimmed(prep(cmd!(sh, "git -C {top} ls-files -z -- {specs...}")))?;
        let files: Vec<&str> = text.split('\0').filter(|f| !f.is_empty()).collect();
        let under = |path: &str, file: &str| {
            file == path
                || file
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        Ok((paths.iter())
            .filter(|path| files.iter().any(|file| under(path, file)))
            .cloned()
            .collect())
    }

    /// Commits everything in the worktree at `dir` but the paths of
    /// `except`, also when the agent staged them itself (`git add -A`):
    /// those are taken out of the index (back to the commit's version)
    /// first, so that a copied `.env` is never committed. Without the
    /// repository's hooks (as every git here, `prep`): a formatter hook that edits
    /// files would leave them unstaged and stop the rebase, and a
    /// commit-msg hook would refuse this fixed message, every retry; the
    /// hooks are the agent's commits' to pass (`commit_leftovers: false`
    /// fails a task that leaves changes).
    pub fn commit_all(&self, dir: &Utf8Path, message: &str, except: &[String]) -> Result<()> {
        let sh = &self.sh;
        // `add --all` leaves ignored files out by itself; one named in an
        // exclude makes it fail ("paths are ignored"). `--sparse`: a file
        // the agent made outside the user's sparse-checkout cone (which
        // every worktree gets) is its work too; git refused to stage it.
        let paths = all_but(&self.not_ignored(dir, except)?);
        run(prep(cmd!(
            sh,
            "git -C {dir} add --all --sparse -- {paths...}"
        )))?;
        self.unstage(dir, except)?;
        run(prep(cmd!(sh, "git -C {dir} commit --quiet -m {message}"))).map(drop)
    }

    /// Those of `paths` (from the top of the worktree at `dir`) that git
    /// does not ignore there; a tracked file never is.
    pub fn not_ignored(&self, dir: &Utf8Path, paths: &[String]) -> Result<Vec<String>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let sh = &self.sh;
        // One name a line; with `core.quotePath` off, only a name with a
        // quote, a backslash or a control character is quoted (and not
        // matched here: left in the excludes).
        let out = output(prep(cmd!(
            sh,
            "git -c core.quotePath=false -C {dir} check-ignore -- {paths...}"
        )))?;
        // Exit 1: none of them is ignored.
        if !matches!(out.status.code(), Some(0 | 1)) {
            bail!(
                "`git check-ignore` in {dir} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let ignored: Vec<&str> = text.lines().collect();
        Ok(paths
            .iter()
            .filter(|path| !ignored.contains(&path.as_str()))
            .cloned()
            .collect())
    }

    /// Takes `paths` (as written, no wildcards) out of the index of the
    /// worktree at `dir`, back to the commit's version; the files stay as
    /// they are.
    pub fn unstage(&self, dir: &Utf8Path, paths: &[String]) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let sh = &self.sh;
        let specs = literally(paths);
        run(prep(cmd!(sh, "git -C {dir} reset --quiet -- {specs...}"))).map(drop)
    }

    /// Whether a branch other than `branch` and those `gone` holds commit
    /// `commit`.
    pub fn held_by_another_branch(
        &self,
        commit: &str,
        branch: &str,
        gone: &[String],
    ) -> Result<bool> {
        let holding = self.branches_holding(Some(commit))?;
        Ok((holding.iter())
            .filter(|name| *name != branch)
            .any(|name| !gone.contains(name)))
    }

    /// How many commits `to` has that `from` has not (revisions: a branch
    /// is named by `branch_ref`).
    pub fn count(&self, from: &str, to: &str) -> Result<u64> {
        let sh = &self.sh;
        let range = format!("{from}..{to}");
        let n = run(prep(cmd!(sh, "git rev-list --count {range}")))?;
        n.parse()
            .with_context(|| format!("git rev-list --count printed `{n}`"))
    }

    /// The files of commit `commit` under `folder` (from the top of the
    /// repository), as paths from the top.
    pub fn files_at(
        &self,
        dir: &Utf8Path,
        commit: &str,
        folder: &str,
    ) -> Result<std::collections::HashSet<String>> {
        let sh = &self.sh;
        let spec = literally(&[folder.to_owned()]);
        let text = run(prep(cmd!(
            sh,
            "git -C {dir} ls-tree -r --name-only -z --full-tree {commit} -- {spec...}"
        )))?;
        Ok(nul_separated(&text).into_iter().collect())
    }

    /// What of `commit`'s work the commit `other` lacks, by content: the
    /// paths `commit` changed since the two parted whose content `other`
    /// does not have. A squash merge of `commit` into `other` lacks none;
    /// a later change there to one of those paths counts.
    pub fn lacks_work_of(&self, other: &str, commit: &str) -> Result<Vec<String>> {
        let sh = &self.sh;
        let since_parted = format!("{other}...{commit}");
        let changed = run_untrimmed(prep(cmd!(
            sh,
            "git diff --name-only -z --no-renames {since_parted}"
        )))?;
        let changed: Vec<String> = nul_separated(&changed);
        if changed.is_empty() {
            return Ok(changed);
        }
        let specs = literally(&changed);
        let differ = run_untrimmed(prep(cmd!(
            sh,
            "git diff --name-only -z --no-renames {commit} {other} -- {specs...}"
        )))?;
        Ok(nul_separated(&differ))
    }

    /// Those of `paths` (as written, no wildcards) that a commit of
    /// `from..to` changes, in the worktree at `dir`.
    pub fn changed_in_commits(
        &self,
        dir: &Utf8Path,
        from: &str,
        to: &str,
        paths: &[String],
    ) -> Result<Vec<String>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let sh = &self.sh;
        let (range, specs) = (format!("{from}..{to}"), literally(paths));
        let text = run(prep(cmd!(
            sh,
            "git -C {dir} log --format= --name-only -z {range} -- {specs...}"
        )))?;
        let mut names: Vec<String> = text
            .split(['\0', '\n'])
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    /// The paths where `to` holds, against its merge base with `from`, a
    /// git repository of its own (a gitlink, mode 160000) that its
    /// `.gitmodules` does not name: what an agent's `git clone` or `git
    /// init` inside its worktree leaves, which `git add` records as a
    /// commit id alone, without its files, that nobody can fetch.
    pub fn embedded_repositories(
        &self,
        dir: &Utf8Path,
        from: &str,
        to: &str,
    ) -> Result<Vec<String>> {
        let sh = &self.sh;
        let range = format!("{from}...{to}");
        let diff = run_untrimmed(prep(cmd!(
            sh,
            "git -C {dir} diff --raw --no-renames -z {range}"
        )))?;
        // `:<old mode> <new mode> <old> <new> <status>` then the path.
        let fields = nul_separated(&diff);
        let linked: Vec<String> = (fields.chunks(2))
            .filter(|pair| pair[0].split(' ').nth(1) == Some("160000"))
            .filter_map(|pair| pair.get(1).cloned())
            .collect();
        if linked.is_empty() {
            return Ok(linked);
        }
        let named = self.submodule_paths(dir, "--blob", &format!("{to}:.gitmodules"))?;
        Ok(linked
            .into_iter()
            .filter(|path| !named.contains(path))
            .collect())
    }

    /// Those of `paths` (changes in the worktree at `dir`, from its top;
    /// a folder git does not go into ends in `/`) that are a git
    /// repository or worktree of their own, a folder with its own `.git`,
    /// which the worktree's `.gitmodules` does not name: committed, git
    /// would keep its commit id alone, not its files.
    pub fn nested_repositories(&self, dir: &Utf8Path, paths: &[String]) -> Result<Vec<Nested>> {
        let nested: Vec<Nested> = (paths.iter())
            .map(|path| path.trim_end_matches('/'))
            .filter_map(|path| {
                let git = dir.join(path).join(".git");
                let meta = std::fs::symlink_metadata(&git).ok()?;
                // A worktree's `.git` is a file naming its record, in a
                // repository's `worktrees/` (a submodule's names its
                // `modules/`).
                let worktree = meta.is_file()
                    && std::fs::read_to_string(&git).is_ok_and(|text| names_a_worktree(&text));
                let path = path.to_owned();
                Some(Nested { path, worktree })
            })
            .collect();
        if nested.is_empty() {
            return Ok(nested);
        }
        let named = self.submodule_paths(dir, "--file", ".gitmodules")?;
        Ok(nested
            .into_iter()
            .filter(|nested| !named.contains(&nested.path))
            .collect())
    }

    /// The paths of the submodules a `.gitmodules` names: the one `from`
    /// (`--blob` or `--file`) says, in the worktree at `dir`. None when
    /// there is no such file.
    fn submodule_paths(&self, dir: &Utf8Path, from: &str, modules: &str) -> Result<Vec<String>> {
        let sh = &self.sh;
        let paths = r"^submodule\..*\.path$";
        let named = output(prep(cmd!(
            sh,
            "git -C {dir} config --null {from} {modules} --get-regexp {paths}"
        )))?;
        // `<key>\n<value>\0` each: a name or a path may hold spaces.
        let named = String::from_utf8_lossy(&named.stdout);
        Ok((named.split('\0'))
            .filter_map(|entry| entry.split_once('\n').map(|(_, path)| path.to_owned()))
            .collect())
    }

    /// Why the worktree at `dir` is locked (`git worktree lock`), if it is:
    /// the reason given, else "no reason given".
    pub fn lock_reason(&self, dir: &Utf8Path) -> Result<Option<String>> {
        let lock = self.own_git_dir(dir)?.join("locked");
        Ok(std::fs::read_to_string(&lock)
            .ok()
            .map(|reason| match reason.trim() {
                "" => "no reason given".to_owned(),
                reason => format!("\"{reason}\""),
            }))
    }

    /// The git folder of the worktree at `dir` alone (not the one its
    /// worktrees share).
    fn own_git_dir(&self, dir: &Utf8Path) -> Result<Utf8PathBuf> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git -C {dir} rev-parse --absolute-git-dir"))).map(Utf8PathBuf::from)
    }

    /// The files of the checkout at `dir` with a conflict not resolved,
    /// named as they are (`-z`: not quoted, as `"na\303\257ve.txt"`), for
    /// the messages the agent's retry is told.
    pub fn unmerged(&self, dir: &Utf8Path) -> Result<Vec<String>> {
        let sh = &self.sh;
        let listed = run_untrimmed(prep(cmd!(
            sh,
            "git -C {dir} diff --name-only -z --diff-filter=U"
        )))?;
        Ok(nul_separated(&listed))
    }

    /// What the checkout at `dir` is in the middle of (a rebase, a merge, a
    /// cherry-pick, a revert, a bisect), by the state files git keeps
    /// meanwhile in its git folder.
    pub fn in_progress(&self, dir: &Utf8Path) -> Result<Option<&'static str>> {
        const STATES: [(&str, &str); 7] = [
            ("rebase-merge", "a rebase"),
            ("rebase-apply", "a rebase"),
            ("MERGE_HEAD", "a merge"),
            // `git merge --squash` stages the merge and writes no MERGE_HEAD.
            ("SQUASH_MSG", "a squash merge"),
            ("CHERRY_PICK_HEAD", "a cherry-pick"),
            ("REVERT_HEAD", "a revert"),
            ("BISECT_LOG", "a bisect"),
        ];
        let sh = &self.sh;
        let args: Vec<&str> = STATES
            .iter()
            .flat_map(|(file, _)| ["--git-path", file])
            .collect();
        let paths = run(prep(cmd!(sh, "git -C {dir} rev-parse {args...}")))?;
        // Each path is relative to `dir` unless git said it whole.
        Ok(paths
            .lines()
            .zip(STATES)
            .find(|(path, _)| dir.join(path).exists())
            .map(|(_, (_, what))| what))
    }

    /// Whether the checkout at `dir` has a detached HEAD (no branch).
    pub fn detached(&self, dir: &Utf8Path) -> Result<bool> {
        Ok(self.branch_at(dir)?.is_none())
    }

    /// The branch checked out at `dir`: none when its HEAD is detached.
    pub fn branch_at(&self, dir: &Utf8Path) -> Result<Option<String>> {
        let sh = &self.sh;
        // Not `--short`: beside a tag of the same name it says
        // `heads/integration`.
        let out = output(prep(cmd!(sh, "git -C {dir} symbolic-ref -q HEAD")))?;
        let head = String::from_utf8_lossy(&out.stdout);
        let branch = head.trim().strip_prefix("refs/heads/");
        Ok(branch.filter(|_| out.status.success()).map(str::to_owned))
    }

    /// Where git keeps `name` (`packed-refs.lock`, a ref's lock): in the
    /// shared git folder, wherever a worktree's is.
    fn git_path(&self, name: &str) -> Result<Utf8PathBuf> {
        let sh = &self.sh;
        let path = run(prep(cmd!(sh, "git rev-parse --git-path {name}")))?;
        // Relative to the top folder, or absolute (then `join` keeps it).
        Ok(self.top.join(path))
    }

    /// Fast-forwards the branch checked out at `dir` to branch `to`;
    /// refuses anything but a fast-forward.
    pub fn fast_forward(&self, dir: &Utf8Path, to: &str) -> Result<()> {
        let sh = &self.sh;
        let to = branch_ref(to);
        run(prep(cmd!(sh, "git -C {dir} merge --ff-only --quiet {to}"))).map(drop)
    }

    /// Whether `dir` is still a worktree of this repository, its own top
    /// folder: an agent may have removed or replaced its `.git`.
    pub fn is_own_worktree(&self, dir: &Utf8Path) -> Result<bool> {
        let sh = &self.sh;
        // The common folder is said relative to `dir` when it is not
        // absolute (`--path-format=absolute` needs git 2.31).
        let ask = |dir: &Utf8Path| -> Result<Option<(Utf8PathBuf, Utf8PathBuf)>> {
            let out = output(prep(cmd!(
                sh,
                "git -C {dir} rev-parse --show-toplevel --git-common-dir"
            )))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            Ok(match (out.status.success(), lines.next(), lines.next()) {
                (true, Some(top), Some(common)) => Some((top.into(), dir.join(common))),
                _ => None,
            })
        };
        let (Some((top, common)), Some((_, ours))) = (ask(dir)?, ask(&self.top)?) else {
            return Ok(false);
        };
        let same =
            |a: &Utf8Path, b: &Utf8Path| a.canonicalize_utf8().ok() == b.canonicalize_utf8().ok();
        Ok(same(&top, dir) && same(&common, &ours))
    }

    /// The commit checked out at `dir`.
    pub fn head(&self, dir: &Utf8Path) -> Result<String> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git -C {dir} rev-parse HEAD")))
    }
}

/// The full name of branch `name`, for git to take as a revision: a short
/// name is taken for a tag first when a tag has the same name (a user's tag
/// `integration`, or one named like a task's branch).
pub fn branch_ref(name: &str) -> String {
    format!("refs/heads/{name}")
}

/// Pathspecs of everything but the paths of `except`, each taken as it
/// is written (no wildcards).
fn all_but(except: &[String]) -> Vec<String> {
    std::iter::once(".".to_owned())
        .chain(
            except
                .iter()
                .map(|path| format!(":(exclude,literal){path}")),
        )
        .collect()
}

/// The names of a `-z` listing.
fn nul_separated(text: &str) -> Vec<String> {
    (text.split('\0'))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Pathspecs of `paths`, each taken as it is written (no wildcards).
fn literally(paths: &[String]) -> Vec<String> {
    paths.iter().map(|p| format!(":(literal){p}")).collect()
}

/// Removes the file at `path`, if there is one. A file where a folder of
/// its path should be (a branch `task` is a file where `task/<id>.lock`
/// would be) means there is none either.
fn remove_file_if_there(path: &Utf8Path) -> Result<()> {
    use std::io::ErrorKind::{NotADirectory, NotFound};
    match std::fs::remove_file(path) {
        Err(e) if !matches!(e.kind(), NotFound | NotADirectory) => {
            Err(e).with_context(|| format!("cannot remove {path}"))
        }
        _ => Ok(()),
    }
}
