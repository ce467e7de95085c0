//! The repository, through git: the only code that runs git. Each command
//! runs through xshell (every value one argument, no shell), never
//! interactively (no editor, no prompt), and an error names the command and
//! what git printed on stderr.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::{cmd, Cmd, Shell};

/// Who commits when git has no identity configured (a fresh CI machine):
/// leftovers and rebased commits still need an author and a committer.
const NAME: &str = "cargo xtask";
const EMAIL: &str = "xtask@localhost";

pub struct Repo {
    sh: Shell,
    /// The repository's top folder (the main worktree).
    pub top: Utf8PathBuf,
}

/// How a rebase went.
pub enum Rebased {
    Done,
    /// It stopped on conflicts in these files, and was aborted: the branch
    /// is as it was.
    Conflict(Vec<String>),
}

impl Repo {
    /// The repository that holds `dir`.
    pub fn open(dir: &Utf8Path) -> Result<Repo> {
        let sh = Shell::new().context("cannot start a shell for git")?;
        sh.change_dir(dir);
        for (var, value) in [
            ("GIT_EDITOR", "true"),
            ("GIT_SEQUENCE_EDITOR", "true"),
            ("GIT_TERMINAL_PROMPT", "0"),
            ("GIT_MERGE_AUTOEDIT", "no"),
        ] {
            sh.set_var(var, value);
        }
        let top = run(prep(cmd!(sh, "git rev-parse --show-toplevel"))).with_context(|| {
            format!("{dir} is not in a git repository: worktree tasks need one (`git init`)")
        })?;
        let repo = Repo {
            sh,
            top: Utf8PathBuf::from(top),
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

    /// The commit `rev` names, if it names one.
    pub fn commit_of(&self, rev: &str) -> Result<Option<String>> {
        let sh = &self.sh;
        let spec = format!("{rev}^{{commit}}");
        let out = prep(cmd!(sh, "git rev-parse --verify --quiet {spec}"))
            .ignore_status()
            .output()?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// The commit a branch points to, if the branch exists.
    pub fn branch_commit(&self, branch: &str) -> Result<Option<String>> {
        self.commit_of(&format!("refs/heads/{branch}"))
    }

    /// Whether `name` is a valid branch name.
    pub fn valid_branch_name(&self, name: &str) -> bool {
        let sh = &self.sh;
        prep(cmd!(sh, "git check-ref-format --branch {name}"))
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
    }

    pub fn config_get(&self, key: &str) -> Result<Option<String>> {
        let sh = &self.sh;
        let out = prep(cmd!(sh, "git config --get {key}"))
            .ignore_status()
            .output()?;
        // Exit 1: the key is not set.
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// The names of the config keys that match `pattern` (a regex).
    pub fn config_regexp(&self, pattern: &str) -> Result<Vec<String>> {
        let sh = &self.sh;
        let out = prep(cmd!(sh, "git config --get-regexp --name-only {pattern}"))
            .ignore_status()
            .output()?;
        // Exit 1: no key matches.
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    pub fn config_set(&self, key: &str, value: &str) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git config {key} {value}"))).map(drop)
    }

    pub fn config_unset(&self, key: &str) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git config --unset {key}"))).map(drop)
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
        let reference = format!("refs/heads/{name}");
        run(prep(cmd!(sh, "git update-ref -d {reference} {expected}"))).map(drop)
    }

    /// The worktrees git knows: each one's folder and the branch checked
    /// out there (none when detached).
    pub fn worktrees(&self) -> Result<Vec<(Utf8PathBuf, Option<String>)>> {
        let sh = &self.sh;
        let text = run(prep(cmd!(sh, "git worktree list --porcelain")))?;
        let mut found = Vec::new();
        for block in text.split("\n\n") {
            let mut path = None;
            let mut branch = None;
            for line in block.lines() {
                if let Some(p) = line.strip_prefix("worktree ") {
                    path = Some(Utf8PathBuf::from(p));
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

    /// Adds a worktree at `path` with `branch` checked out.
    pub fn add_worktree(&self, path: &Utf8Path, branch: &str) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git worktree add {path} {branch}"))).map(drop)
    }

    /// Removes the worktree at `path`; git refuses when it has changes,
    /// and so do we (no force).
    pub fn remove_worktree(&self, path: &Utf8Path) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git worktree remove {path}"))).map(drop)
    }

    /// Forgets worktrees whose folders are gone.
    pub fn prune_worktrees(&self) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git worktree prune"))).map(drop)
    }

    /// The files with changes not committed in the worktree at `dir`
    /// (untracked ones too, not ignored ones).
    pub fn uncommitted(&self, dir: &Utf8Path) -> Result<Vec<String>> {
        let sh = &self.sh;
        let text = run(prep(cmd!(
            sh,
            "git -C {dir} status --porcelain --untracked-files=all"
        )))?;
        Ok(text
            .lines()
            .filter(|l| l.len() > 3)
            .map(|l| l[3..].to_owned())
            .collect())
    }

    /// Commits everything in the worktree at `dir`.
    pub fn commit_all(&self, dir: &Utf8Path, message: &str) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git -C {dir} add --all")))?;
        run(prep(cmd!(
            sh,
            "git -C {dir} commit --quiet --no-verify -m {message}"
        )))
        .map(drop)
    }

    /// How many commits `to` has that `from` has not.
    pub fn count(&self, from: &str, to: &str) -> Result<u64> {
        let sh = &self.sh;
        let range = format!("{from}..{to}");
        let n = run(prep(cmd!(sh, "git rev-list --count {range}")))?;
        n.parse()
            .with_context(|| format!("git rev-list --count printed `{n}`"))
    }

    /// Rebases the branch checked out at `dir` onto `onto`, without an
    /// editor; on conflicts, aborts and names the conflicted files.
    pub fn rebase(&self, dir: &Utf8Path, onto: &str) -> Result<Rebased> {
        let sh = &self.sh;
        let out = prep(cmd!(sh, "git -C {dir} rebase --no-autostash {onto}"))
            .ignore_status()
            .output()?;
        if out.status.success() {
            return Ok(Rebased::Done);
        }
        let conflicted = run(prep(cmd!(
            sh,
            "git -C {dir} diff --name-only --diff-filter=U"
        )))?;
        let files: Vec<String> = conflicted.lines().map(str::to_owned).collect();
        if self.rebase_in_progress(dir)? {
            self.abort_rebase(dir)?;
        }
        if files.is_empty() {
            bail!(
                "`git rebase {onto}` in {dir} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Rebased::Conflict(files))
    }

    /// Whether a rebase was left in progress in the worktree at `dir` (an
    /// orchestrator killed during it).
    pub fn rebase_in_progress(&self, dir: &Utf8Path) -> Result<bool> {
        let sh = &self.sh;
        for state in ["rebase-merge", "rebase-apply"] {
            let path = run(prep(cmd!(sh, "git -C {dir} rev-parse --git-path {state}")))?;
            if dir.join(&path).exists() || Utf8Path::new(&path).exists() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn abort_rebase(&self, dir: &Utf8Path) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git -C {dir} rebase --abort"))).map(drop)
    }

    /// Fast-forwards the branch checked out at `dir` to `to`; refuses
    /// anything but a fast-forward.
    pub fn fast_forward(&self, dir: &Utf8Path, to: &str) -> Result<()> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git -C {dir} merge --ff-only --quiet {to}"))).map(drop)
    }

    /// The commit checked out at `dir`.
    pub fn head(&self, dir: &Utf8Path) -> Result<String> {
        let sh = &self.sh;
        run(prep(cmd!(sh, "git -C {dir} rev-parse HEAD")))
    }
}

/// A git command made to act on the repository of the shell's folder,
/// whatever the orchestrator's environment says (it may run from a git
/// hook), and not echoed.
fn prep(cmd: Cmd<'_>) -> Cmd<'_> {
    [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_COMMON_DIR",
    ]
    .into_iter()
    .fold(cmd.quiet(), |cmd, var| cmd.env_remove(var))
}

/// Runs a git command; its stdout, trimmed, or an error with the command
/// and its stderr.
fn run(cmd: Cmd<'_>) -> Result<String> {
    let shown = cmd.to_string();
    let out = cmd
        .ignore_status()
        .output()
        .with_context(|| format!("cannot run `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
