//! Task worktrees: each task that asks for one runs in
//! `workspace/worktrees/<task id>`, on the branch `task/<task id>`, made
//! from the integration branch's tip when the worktree is made. What this
//! orchestrator makes it marks (`branch.<name>.xtaskbase` in the
//! repository's git config, holding the commit the branch started from);
//! a branch or folder it did not make is never used, moved or removed.

use std::sync::mpsc::{self, Sender};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::git::merge;
use crate::git::repo::{branch_ref, Repo};
use crate::model::branch::branch_name;
use crate::model::config::Worktrees as Settings;
use crate::model::discovery::Discovery;
use crate::model::layout::Layout;

mod brought;
mod marks;
mod obstacles;

pub use brought::{brought, copied, copies_changed};
use marks::{integration_mark, was_integration};
pub use marks::{integration_of, made_for_another, mark, unmark};
pub use obstacles::Obstacle;
use obstacles::{
    checked_out_elsewhere, in_the_way, not_a_worktree_of_ours, obstacle, worktree_of_another,
};

/// A task's worktree, ready for an attempt.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub path: Utf8PathBuf,
    pub branch: String,
    /// The commit its branch started from.
    pub base: String,
    /// Made now: its setup has not run.
    pub new: bool,
}

/// Held over the steps of a worktree's making that change git's records
/// of worktrees (forgetting those whose folders are gone, a move in
/// place), by the maker's threads and the merge queue's
/// (`remake_for_merge`): one thread's cleanup could otherwise forget the
/// record of a worktree another is moving. Not over the `git worktree
/// add` (git locks the record it makes until its checkout is done, which
/// `forget_missing_worktrees` respects; see `command::ADDING` for the
/// instant before), nor the copies, the catch-up and a reused worktree's
/// checkout, which take the time.
static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How many worktrees are made at once: a checkout that takes minutes (a
/// slow post-checkout hook, Git LFS's smudge filter) holds up three more
/// at most, and a large repository's disk is not asked for eight.
const MAKERS: usize = 4;

/// Makes the tasks' worktrees (`Worktrees::prepare`), `MAKERS` at a time,
/// on threads of their own: a `git worktree add` that takes minutes holds
/// neither the other tasks' starts and ends nor the live view. The run's
/// stop cuts their gits short (`command::cut_by_a_stop`), and refuses the
/// next.
pub struct Maker {
    requests: Sender<(usize, String)>,
}

impl Maker {
    /// Starts the threads, each with its own repository of `worktrees`'s;
    /// each task's worktree, or why it could not be made, goes to
    /// `events`, wrapped.
    pub fn start<E: Send + 'static>(
        worktrees: &Worktrees,
        events: Sender<E>,
        wrap: fn(usize, Result<Prepared>) -> E,
    ) -> Result<Maker> {
        let (requests, asked) = mpsc::channel::<(usize, String)>();
        let asked = std::sync::Arc::new(std::sync::Mutex::new(asked));
        for _ in 0..MAKERS {
            let own = worktrees.for_another_thread()?;
            let (asked, events) = (asked.clone(), events.clone());
            crate::sys::spawn_thread("the tasks' worktrees", move || loop {
                // The lock is held only while waiting for a request.
                let next = crate::sys::lock(&asked).recv();
                let Ok((t, id)) = next else {
                    return;
                };
                if events.send(wrap(t, own.prepare(&id))).is_err() {
                    return;
                }
            })?;
        }
        Ok(Maker { requests })
    }

    /// Has task `t`'s worktree made (task `id`'s).
    pub fn make(&self, t: usize, id: &str) {
        // The threads outlive every request: they end with the run.
        let _ = self.requests.send((t, id.to_owned()));
    }
}

/// What a run does to the integration branch before it merges.
enum Integration {
    /// Makes it, from this commit.
    Make(String),
    /// Marks it as its own (its worktree, ours, was made before branches
    /// were marked), at this tip.
    Mark(String),
    Ready,
}

/// The repository's worktrees, as the run uses them.
pub struct Worktrees {
    pub repo: Repo,
    pub settings: Settings,
    layout: Layout,
    /// The commit this run made the integration branch from, when it made
    /// it (the first run, or one after the branch was deleted).
    pub made_from: Option<String>,
}

impl Worktrees {
    /// Opens the repository of the root and makes the integration branch
    /// (from `worktrees.base`, once) and the orchestrator's own worktree of
    /// it, where merges happen. Fails, before anything runs, when the
    /// branch is checked out anywhere else.
    pub fn open(layout: &Layout, settings: &Settings) -> Result<Worktrees> {
        let repo = Repo::open(layout)?;
        repo.repair_after_a_move()?;
        repo.finish_removals()?;
        let mut worktrees = Worktrees {
            repo,
            settings: settings.clone(),
            layout: layout.clone(),
            made_from: None,
        };
        // Cut short by a stop, as a task's start is: a hook that hangs in
        // `git worktree add` would hold the run before it even starts.
        worktrees.made_from = super::command::cut_by_a_stop(|| worktrees.make_integration())?;
        Ok(worktrees)
    }

    /// The same worktrees, for another thread (a `Repo` is one thread's).
    pub fn for_another_thread(&self) -> Result<Worktrees> {
        Ok(Worktrees {
            repo: self.repo.for_another_thread(&self.layout)?,
            settings: self.settings.clone(),
            layout: self.layout.clone(),
            made_from: None,
        })
    }

    /// The files of the person's checkout (the root's) with changes not
    /// committed, untracked ones too, which no worktree sees: each starts
    /// from the integration branch. But for what reaches the tasks all the
    /// same: `workspace/` and `tasks/` (read and written from the root),
    /// what `worktrees.copy` and `link` bring in, and `.gitignore` (which
    /// `init` edits, and which changes no code).
    pub fn uncommitted_in_checkout(&self) -> Result<Vec<String>> {
        let layout = &self.layout;
        let mut reaching: Vec<String> = [&layout.workspace, &layout.tasks]
            .into_iter()
            .filter_map(|dir| dir.strip_prefix(&layout.root).ok())
            .map(|dir| dir.to_string())
            .chain([".gitignore".to_owned()])
            // A worktree is a checkout of the whole repository, the root
            // only a folder of it: changes anywhere in it are in no
            // worktree.
            .map(|path| self.repo.root_in_top.join(path).to_string())
            .collect();
        // A tracked `copy` path is not brought: the user's change to it
        // reaches no worktree either.
        reaching.extend(brought(&self.repo, &self.settings)?);
        self.repo.uncommitted(&self.repo.top, &reaching)
    }

    /// Whether git does not ignore `workspace/` (the worktrees, the run's
    /// logs and statuses) in the person's checkout: a `git add -A` there
    /// (theirs, or a `workdir: root` task's) would commit each worktree as
    /// a git repository of its own. A `workspace/` elsewhere (a symlink to
    /// a scratch disk, which git does not go into) is none of git's.
    pub fn workspace_unignored(&self) -> Result<bool> {
        let layout = &self.layout;
        let Ok(workspace) = layout.workspace.strip_prefix(&layout.root) else {
            return Ok(false);
        };
        if layout.workspace.is_symlink() {
            return Ok(false);
        }
        let workspace = self.repo.root_in_top.join(workspace);
        let paths = [
            format!("{workspace}/worktrees/"),
            format!("{workspace}/run.json"),
        ];
        Ok(!self.repo.not_ignored(&self.repo.top, &paths)?.is_empty())
    }

    /// Where a task runs in its worktree: the root's folder in it (its top,
    /// unless the root is a folder of the repository), made if the
    /// integration branch has none.
    pub fn workdir(&self, worktree: &Utf8Path) -> Result<Utf8PathBuf> {
        let dir = self.repo.root_in(worktree);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir}"))?;
        Ok(dir)
    }

    /// Task files in the worktree at `worktree` that neither its base
    /// commit `base` nor the root's `tasks/` has (from the root's folder of
    /// the worktree): written by its attempts, this one or an earlier one
    /// in the same worktree. The run reads tasks from the root only, so
    /// these would never join it.
    pub fn task_files_left_in(&self, worktree: &Utf8Path, base: &str) -> Result<Vec<String>> {
        let Ok(tasks) = self.layout.tasks.strip_prefix(&self.layout.root) else {
            return Ok(Vec::new());
        };
        let dir = self.repo.root_in(worktree).join(tasks);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let in_top = self.repo.root_in_top.join(tasks);
        let committed = self.repo.files_at(worktree, base, in_top.as_str())?;
        let found = Discovery::scan(&dir).files;
        Ok(found
            .iter()
            .filter_map(|file| file.strip_prefix(&dir).ok())
            .filter(|rel| !committed.contains(in_top.join(rel).as_str()))
            .filter(|rel| !self.layout.tasks.join(rel).exists())
            .map(|rel| tasks.join(rel).to_string())
            .collect())
    }

    /// How many tasks' worktrees the repository holds: they stay, merged
    /// or not, until `clean` removes those whose work is merged.
    pub fn tasks_kept(&self) -> Result<usize> {
        let (integration, new) = (self.integration_dir(), self.layout.new_worktrees());
        let all = self.layout.worktrees();
        Ok((self.repo.worktrees()?.into_iter())
            .filter(|(dir, _)| dir.starts_with(&all))
            .filter(|(dir, _)| *dir != integration && !dir.starts_with(&new))
            .count())
    }

    /// The orchestrator's worktree of the integration branch.
    pub fn integration_dir(&self) -> Utf8PathBuf {
        self.layout.integration_worktree()
    }

    /// Checks, changing nothing, that a run can make or use worktrees
    /// here: what `orchestrate` would refuse before anything starts (no
    /// repository, no commit to start from, a branch of the user's in the
    /// way...), for `validate` and a plan to say first.
    /// Returns the worktrees, for `check_task`.
    pub fn check(layout: &Layout, settings: &Settings) -> Result<Worktrees> {
        let worktrees = Worktrees {
            repo: Repo::open(layout)?,
            settings: settings.clone(),
            layout: layout.clone(),
            made_from: None,
        };
        worktrees.plan_integration(false)?;
        Ok(worktrees)
    }

    /// `check`, for the definitions' checks (`definitions::Runs`).
    pub fn usable(layout: &Layout, settings: &Settings) -> Result<()> {
        Worktrees::check(layout, settings).map(drop)
    }

    /// Checks, changing nothing, what would fail each task of `ids` as it
    /// starts (see `prepare`): each that would fail, with why. git's
    /// worktrees are listed once for all.
    pub fn check_tasks<'i>(&self, ids: &[&'i str]) -> Vec<(&'i str, anyhow::Error)> {
        let listed = match self.repo.worktrees() {
            Ok(listed) => listed,
            Err(e) => {
                return ids
                    .iter()
                    .map(|&id| (id, anyhow::anyhow!("{e:#}")))
                    .collect()
            }
        };
        (ids.iter())
            .filter_map(|&id| Some((id, self.check_task(id, &listed).err()?)))
            .collect()
    }

    /// What would fail task `id` as it starts, git's worktrees `listed`: a
    /// branch of the user's with its branch's name or in its way, a folder
    /// that is no worktree where its worktree goes, one of another branch,
    /// its branch checked out elsewhere.
    fn check_task(&self, id: &str, listed: &[(Utf8PathBuf, Option<String>)]) -> Result<()> {
        check_folder_name(id)?;
        let branch = branch_name(id);
        self.task_branch(&branch)?;
        let path = self.layout.worktree_dir(id);
        if path.exists() && !path.join(".git").exists() {
            return Err(obstacle(not_a_worktree_of_ours(&path)));
        }
        // A record of a folder gone (moved with the repository: the run
        // links it again first) holds nothing.
        let elsewhere = listed
            .iter()
            .find(|(p, b)| b.as_deref() == Some(branch.as_str()) && *p != path && p.exists());
        if let Some((other, _)) = elsewhere {
            return Err(obstacle(checked_out_elsewhere(&branch, other, &path)));
        }
        match listed.iter().find(|(p, _)| *p == path) {
            Some((_, on)) if on.as_deref() != Some(branch.as_str()) => {
                Err(obstacle(worktree_of_another(&path, on.as_deref(), &branch)))
            }
            _ => Ok(()),
        }
    }

    /// The task branch `branch`: whether it exists, and the mark that
    /// makes it ours (its base); one of the user's with its name, or in
    /// its way, is an error naming it.
    fn task_branch(&self, branch: &str) -> Result<(bool, Option<String>)> {
        let exists = self.repo.branch_commit(branch)?.is_some();
        if !exists {
            self.check_no_branch_holds(branch, "the task's branch")?;
        }
        let base = self.repo.config_get(&mark(branch))?;
        if exists && base.is_none() {
            return Err(obstacle(format!("branch `{branch}` exists and was not made by cargo xtask: rename or remove it, or rename the task")));
        }
        let integration = &self.settings.integration;
        let other = integration_of(&self.repo, branch)?.filter(|into| into != integration);
        if let Some(other) = other.filter(|_| exists) {
            return Err(obstacle(made_for_another(branch, &other, integration)));
        }
        Ok((exists, base))
    }

    /// Names this root's integration branch on task branch `branch`, made
    /// before branches named theirs, as it is taken up (never on a look:
    /// `validate` checks through `task_branch` too): no other root takes
    /// it up then.
    fn claim(&self, branch: &str) -> Result<()> {
        if integration_of(&self.repo, branch)?.is_none() {
            self.repo
                .config_set(&integration_mark(branch), &self.settings.integration)?;
        }
        Ok(())
    }

    /// Returns the commit it made the branch from, if it made it.
    fn make_integration(&self) -> Result<Option<String>> {
        let repo = &self.repo;
        let branch = &self.settings.integration;
        let (plan, add) = self.plan_integration(true)?;
        let mut made_from = None;
        match plan {
            Integration::Make(start) => {
                // Marked first, as a task's branch is: a run killed between
                // the two leaves a mark without a branch (made again next
                // time), never a branch that looks like the user's.
                repo.config_set(&mark(branch), &start)?;
                repo.create_branch(branch, &start)?;
                made_from = Some(start);
            }
            Integration::Mark(tip) => repo.config_set(&mark(branch), &tip)?,
            Integration::Ready => {}
        }
        if add {
            // A worktree whose folder was removed with workspace/ is still
            // registered: forget it first.
            repo.forget_missing_worktrees()?;
            repo.add_worktree(&self.integration_dir(), branch)?;
        }
        Ok(made_from)
    }

    /// What making the integration branch and its worktree takes, every
    /// check done first: the branch to make, or mark, and whether its
    /// worktree is to be added. A person's work in that worktree stops a
    /// run `starting` (the checks beside a run, or before one, leave it to
    /// the run: one going on waits for it).
    fn plan_integration(&self, starting: bool) -> Result<(Integration, bool)> {
        let repo = &self.repo;
        let branch = &self.settings.integration;
        let dir = self.integration_dir();
        let listed = repo.worktrees()?;
        let made = match repo.branch_commit(branch)? {
            None => {
                let base = &self.settings.base;
                self.check_head_settled()?;
                let Some(start) = repo.commit_of(&self.base_rev()?)? else {
                    match repo.commit_of("HEAD")? {
                        None => bail!("worktrees.base `{base}` names no commit: {} has none yet; make a first commit", repo.top),
                        Some(_) => bail!("worktrees.base `{base}` names no commit of {}: set worktrees.base in tasks/orchestrator.yaml to a branch or commit", repo.top),
                    }
                };
                self.check_no_branch_holds(branch, "the integration branch")?;
                Integration::Make(start)
            }
            // Ours when marked, or when our worktree of it is registered
            // (made before branches were marked: marked now); else the
            // user's, never moved.
            Some(tip) if repo.config_get(&mark(branch))?.is_none() => {
                let ours = listed
                    .iter()
                    .any(|(path, b)| *path == dir && b.as_deref() == Some(branch.as_str()));
                if !ours {
                    bail!(
                        "a branch `{branch}` exists and was not made by cargo xtask: merges would move it; set worktrees.integration to a new name, or rename that branch"
                    );
                }
                Integration::Mark(tip)
            }
            Some(_) => Integration::Ready,
        };
        if let Some((elsewhere, _)) = listed
            .iter()
            .find(|(path, b)| b.as_deref() == Some(branch.as_str()) && *path != dir)
        {
            // Ours, at the place the repository was moved from: a run links
            // them again first (`repair_after_a_move`).
            if !elsewhere.exists() && repo.worktrees_left_by_a_move().contains(&dir) {
                return Ok((made, false));
            }
            // Another's, gone: git holds the branch there until it forgets
            // it, and no branch can be checked out in it.
            if !elsewhere.exists() {
                bail!("the integration branch `{branch}` is checked out at {elsewhere}, a worktree whose folder is gone: `git worktree prune` forgets it (unless the folder is to come back, on a disk not mounted now), then run again");
            }
            bail!(
                "the integration branch `{branch}` is checked out at {elsewhere}: merges go into it in {dir}; check out another branch there, or set worktrees.integration"
            );
        }
        // Registered, and still there: a `workspace/` removed since leaves
        // it registered without its folder (pruned below).
        if let Some((_, on)) = listed.iter().find(|(path, _)| *path == dir && dir.exists()) {
            // Ours, of an integration branch the settings named before.
            if let Some(old) = on
                .as_ref()
                .filter(|on| *on != branch && was_integration(repo, on))
            {
                bail!("{dir} is the worktree of `{old}`, the integration branch before worktrees.integration named `{branch}`: remove it (`git worktree remove {dir}`: branch `{old}` and what was merged into it stay), or set worktrees.integration back to `{old}`");
            }
            // Not made from our integration branch, which is yet to be.
            if matches!(made, Integration::Make(_)) && on.as_deref() != Some(branch.as_str()) {
                let on = on.as_ref().map_or("a detached commit".to_owned(), |on| {
                    format!("branch `{on}`")
                });
                bail!("{dir} is a worktree of {on}, not the integration worktree: move it away (cargo xtask merges into `{branch}` there, and would check it out)");
            }
            // Else a person's: a branch checked out there, work in
            // progress, which the merge queue waits for during a run.
            if starting {
                if let Some(work) = merge::persons_work(repo, &dir, branch)? {
                    bail!(merge::refused_for(&dir, &work));
                }
            }
            return Ok((made, false));
        }
        if dir.exists() {
            bail!("{dir} exists and is not the integration worktree git knows: move it away");
        }
        Ok((made, true))
    }

    /// `worktrees.base` as git is to take it: a branch of that name in
    /// full (`refs/heads/main`), when there is one, since a short name is
    /// taken for a tag first (a tag `main` beside the branch); else as
    /// written (`HEAD`, a commit, `origin/main`).
    pub fn base_rev(&self) -> Result<String> {
        let base = &self.settings.base;
        Ok(match self.repo.branch_commit(base)? {
            Some(_) => branch_ref(base),
            None => base.clone(),
        })
    }

    /// With `worktrees.base: HEAD`, the integration branch starts from
    /// the user's checkout as it is: not while it is in the middle of a
    /// rebase, a merge, a cherry-pick or a bisect, or on a detached HEAD,
    /// where HEAD is a passing commit, likely on no branch a moment later.
    fn check_head_settled(&self) -> Result<()> {
        if self.settings.base != "HEAD" {
            return Ok(());
        }
        let top = &self.repo.top;
        let (state, fix) = match self.repo.in_progress(top)? {
            Some(what) => (format!("in the middle of {what}"), "finish it or abort it"),
            None if self.repo.detached(top)? => {
                ("on a detached HEAD".to_owned(), "check out a branch")
            }
            None => return Ok(()),
        };
        bail!(
            "the integration branch `{}` is made from HEAD (worktrees.base), and the checkout {top} is {state}: {fix}, or set worktrees.base in tasks/orchestrator.yaml to the branch to start from, then run again",
            self.settings.integration
        )
    }

    /// Task `id`'s worktree: reused when this orchestrator made it, made
    /// from the integration tip when there is none. A branch or folder of
    /// the same name that it did not make is an error naming it. The run
    /// has it made by its `Maker`.
    fn prepare(&self, id: &str) -> Result<Prepared> {
        super::command::cut_by_a_stop(|| self.prepare_now(id))
    }

    /// Task `id`'s worktree made again for the merge queue, its folder
    /// removed by hand while its work waited to be merged: on its branch,
    /// which holds that work, as `prepare` makes it for a retry. Cut short
    /// by the queue's own stop, not by the run's first (merges end first).
    /// The queue has seen that its branch is there.
    pub fn remake_for_merge(&self, id: &str) -> Result<Prepared> {
        self.prepare_now(id)
    }

    fn prepare_now(&self, id: &str) -> Result<Prepared> {
        check_folder_name(id)?;
        let mut records = crate::sys::lock(&MAKING);
        let repo = &self.repo;
        let branch = branch_name(id);
        let path = self.layout.worktree_dir(id);
        let base = match self.task_branch(&branch)? {
            // A mark left after the branch was removed by hand.
            (false, Some(_)) => {
                unmark(repo, &branch)?;
                None
            }
            (_, base) => base,
        };
        // A worktree is made aside, then moved in place (see below): a
        // making cut short (a killed orchestrator) leaves only the aside
        // folder, which no task ever used, removed here.
        // A move cut short leaves the folder in place with git's record of
        // it still aside: repaired. Records of folders gone are forgotten.
        let aside = self.layout.new_worktree_dir(id);
        let recorded =
            |repo: &Repo| -> Result<bool> { Ok(repo.worktrees()?.iter().any(|(p, _)| *p == path)) };
        if path.join(".git").is_file() && !recorded(repo)? {
            // Git's record of it gone: no longer a worktree, and not ours
            // to remove. `repair` repairs every worktree git records (the
            // user's too: so only when ours needs it), and fails for one it
            // cannot (another task's, whose `.git` its agent replaced):
            // this one is judged by its record after.
            let repaired = repo.repair_worktree(&path);
            if !recorded(repo)? {
                let why = repaired
                    .err()
                    .map(|e| format!(" ({e:#})"))
                    .unwrap_or_default();
                return Err(obstacle(format!("{path} is no longer a worktree of this repository (git has no record of it): move it away{why}")));
            }
        }
        if aside.exists() {
            std::fs::remove_dir_all(&aside).with_context(|| format!("cannot remove {aside}"))?;
        }
        // An `add` cut short leaves its record locked ("initializing"),
        // which pruning skips.
        if repo.worktrees()?.iter().any(|(p, _)| *p == aside) {
            repo.unlock_worktree(&aside)?;
        }
        repo.forget_missing_worktrees()?;
        // A merge of ours cut short in it: undone (the queue redoes it).
        repo.remove_stale_ref_locks(&[&branch])?;
        if base.is_some() && path.join(".git").is_file() && self.made_for(&path, &branch)? {
            // In its own worktree, which changes no record: a checkout
            // (hooks, Git LFS) holds up no other making.
            drop(records);
            repo.remove_stale_worktree_locks(&path)?;
            repo.undo_rebase(&path, &branch)?;
            repo.back_on(&path, &branch, base.as_deref())?;
            records = crate::sys::lock(&MAKING);
        }
        let listed = repo.worktrees()?;
        let here = listed.iter().find(|(p, _)| *p == path);
        let elsewhere = listed
            .iter()
            .find(|(p, b)| b.as_deref() == Some(branch.as_str()) && *p != path);
        if let Some((other, _)) = elsewhere {
            return Err(obstacle(checked_out_elsewhere(&branch, other, &path)));
        }
        match (here, &base) {
            (Some((_, Some(b))), Some(base)) if *b == branch => {
                self.claim(&branch)?;
                drop(records);
                let base = self.catch_up(&path, &branch, base)?;
                return self.checked(Prepared {
                    path,
                    branch,
                    base,
                    new: false,
                });
            }
            (Some((_, other)), _) => return Err(obstacle(worktree_of_another(&path, other.as_deref(), &branch))),
            // Ours, its `.git` removed (by its agent): what it committed
            // is on its branch.
            (None, Some(_)) if path.exists() && !path.join(".git").exists() => return Err(obstacle(format!(
                "{path} is no longer a worktree of this repository (its `.git` was removed): move it away; what was committed on `{branch}` stays there"
            ))),
            (None, _) if path.exists() => {
                return Err(obstacle(not_a_worktree_of_ours(&path)))
            }
            (None, _) => {}
        }
        // A branch made now starts at the integration tip: nothing to
        // catch up with.
        let made_now = base.is_none();
        let base = match base {
            Some(base) => {
                self.claim(&branch)?;
                base
            }
            None => {
                let integration = &self.settings.integration;
                let start = repo
                    .branch_commit(integration)?
                    .with_context(|| format!("the integration branch `{integration}` is gone"))?;
                // Marked first: a making cut short between the two leaves a
                // mark without a branch (dropped next time), never a
                // branch of ours that looks like someone else's.
                repo.config_set(&mark(&branch), &start)?;
                repo.config_set(&integration_mark(&branch), integration)?;
                repo.create_branch(&branch, &start)?;
                start
            }
        };
        drop(records);
        let made = self.make_aside(&aside, &branch, base, made_now);
        let records = crate::sys::lock(&MAKING);
        let moved = made.and_then(|base| {
            make_parent(&path)?;
            repo.move_worktree(&aside, &path)?;
            Ok(base)
        });
        if moved.is_err() {
            self.drop_aside(&aside);
        }
        repo.remove_unused_folder(&self.layout.new_worktrees());
        drop(records);
        let base = moved?;
        self.checked(Prepared {
            path,
            branch,
            base,
            new: true,
        })
    }

    /// Removes the worktree made at `aside` and git's record of it: its
    /// making failed (a hook refused the checkout, a stop cut it), nothing
    /// ran there, and it is not left in `git worktree list` until the task
    /// is made again. Its branch keeps what it had. A move cut short left
    /// no aside: the next making repairs it.
    fn drop_aside(&self, aside: &Utf8Path) {
        if std::fs::remove_dir_all(aside).is_ok() {
            // Not cut by the stop that may have cut the making: one quick
            // git, no hook.
            let _ = super::command::beyond_a_stop(|| self.repo.forget_missing_worktrees());
        }
    }

    /// Makes the worktree of `branch` at `aside`, with what it brings, and
    /// returns its base: `base`, or, made again on a branch an earlier
    /// worktree left (`workspace/` removed since, not `made_now`), the
    /// integration tip it is brought to, as a reused one is.
    fn make_aside(
        &self,
        aside: &Utf8Path,
        branch: &str,
        base: String,
        made_now: bool,
    ) -> Result<String> {
        self.repo.add_worktree(aside, branch)?;
        self.repo.mark_worktree(aside, branch)?;
        self.bring_files(aside)?;
        match made_now {
            true => Ok(base),
            false => self.catch_up(aside, branch, &base),
        }
    }

    /// Whether the worktree at `path` is the one this orchestrator made for
    /// `branch`: marked so, or, made before worktrees were marked, on that
    /// branch or in a rebase of ours (marked now). One of someone else's
    /// there (on a branch of theirs) is never checked out or used.
    fn made_for(&self, path: &Utf8Path, branch: &str) -> Result<bool> {
        let repo = &self.repo;
        if let Some(marked) = repo.worktree_mark(path)? {
            return Ok(marked == branch);
        }
        let on_branch = repo
            .worktrees()?
            .iter()
            .any(|(p, b)| p == path && b.as_deref() == Some(branch));
        let ours = on_branch || repo.rebase_marked(path)?;
        if ours {
            repo.mark_worktree(path, branch)?;
        }
        Ok(ours)
    }

    /// Fails when a branch is named like a folder of `branch` (`task`,
    /// `task/01-build` for `task/01-build/a`), or is in the folder `branch`
    /// would be (`integration/mine` for `integration`): git cannot have
    /// both, and that branch is the user's, never moved. `what`: the
    /// branch's role.
    fn check_no_branch_holds(&self, branch: &str, what: &str) -> Result<()> {
        let folders = branch.match_indices('/').map(|(end, _)| &branch[..end]);
        for folder in folders {
            if self.repo.branch_commit(folder)?.is_some() {
                return Err(obstacle(in_the_way(folder, what, branch)));
            }
        }
        if let Some(under) = self.repo.branch_under(branch)? {
            return Err(obstacle(in_the_way(&under, what, branch)));
        }
        Ok(())
    }

    /// A reused worktree, or one made again on its branch, whose work is
    /// all in the integration branch (none of its own yet, or merged) and
    /// that holds no change is brought to the integration tip, so that a
    /// task run again starts from what its dependencies merged since;
    /// returns its base. One with work of its own not merged (a conflict to
    /// resolve) or changes is left as its last attempt left it.
    fn catch_up(&self, path: &Utf8Path, branch: &str, base: &str) -> Result<String> {
        let repo = &self.repo;
        let integration = &self.settings.integration;
        let Some(tip) = repo.branch_commit(integration)? else {
            return Ok(base.to_owned());
        };
        let merged = repo.count(&branch_ref(integration), &branch_ref(branch))? == 0;
        if tip == base
            || !merged
            || !repo
                .uncommitted(path, &brought(repo, &self.settings)?)?
                .is_empty()
        {
            return Ok(base.to_owned());
        }
        repo.fast_forward(path, integration)?;
        repo.config_set(&mark(branch), &tip)?;
        Ok(tip)
    }

    /// The worktree is what it claims: its own top folder, with its branch
    /// checked out (an agent never runs in another checkout by mistake).
    fn checked(&self, prepared: Prepared) -> Result<Prepared> {
        let head = self.repo.head(&prepared.path)?;
        let tip = self.repo.branch_commit(&prepared.branch)?;
        if tip.as_deref() != Some(head.as_str()) {
            return Err(obstacle(format!(
                "{} does not have `{}` checked out: move it away",
                prepared.path, prepared.branch
            )));
        }
        Ok(prepared)
    }
}

/// Fails for a task whose worktree folder git cannot make: named `@`
/// (git takes it for `-`, then cannot find the worktree it made).
fn check_folder_name(id: &str) -> Result<()> {
    if id.rsplit('/').next() == Some("@") {
        return Err(obstacle(
            "git cannot make a worktree in a folder named `@`: rename the task's file (`@.md`)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Removes the folders that held `path` (a worktree gone or moved) while
/// they are empty, up to `top` (kept): task ids nest, and their phases'
/// folders would pile up empty under `workspace/worktrees/`.
pub fn remove_empty_parents(path: &Utf8Path, top: &Utf8Path) {
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| d.starts_with(top) && *d != top) {
        // Fails on a folder that holds anything: the walk ends there.
        if std::fs::remove_dir(d).is_err() {
            return;
        }
        dir = d.parent();
    }
}

fn make_parent(path: &Utf8Path) -> Result<()> {
    let dir = path.parent().expect("a file has a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))
}
