//! Removing the worktrees and `task/*` branches whose work is in the
//! integration branch (in the branch checked out, once the integration
//! branch is gone; or that have no commit beyond a base another branch
//! holds), saying of every other one why it is kept (its number of
//! unmerged commits...): for `clean`, and for a run that ends with
//! `worktrees.remove_merged`. It touches only branches and folders this
//! orchestrator made (marked in git config; a task's folder under
//! `workspace/worktrees/`, never one where the user checked out a task
//! branch), and forces nothing: a worktree with changes is kept, a branch
//! moved meanwhile too, and one holding commits nowhere else (in its
//! submodules, or in a repository in what git ignores there); only what
//! `worktrees.copy` and `link` brought in is removed first (a copy edited
//! there is a change, which keeps it).

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::repo::{branch_ref, Repo};
use super::worktrees::{self, mark, remove_empty_parents};
use crate::model::branch;
use crate::model::config::Worktrees as Settings;
use crate::model::layout::Layout;
use crate::state::status::{self, State};
use crate::ui::format::{counted, it_or_them};

/// What a sweep did: branches (with their worktrees) removed, or in a dry
/// run that would be, each as said, and how many kept; whether git failed
/// on any.
pub struct Swept {
    pub removed: Vec<String>,
    pub kept: usize,
    pub failed: bool,
}

/// Who sweeps, and how.
pub struct How<'a> {
    /// Says what would go, removing nothing (`clean --dry-run`).
    pub dry_run: bool,
    /// Folders whose removal a killed `clean` left, finished already (no
    /// longer git's).
    pub cut_short: &'a [Utf8PathBuf],
    /// A run's end (`worktrees.remove_merged`): a worktree goes only with
    /// its task completed (one failed, or not run since a `reset`, holds
    /// what a person looks into next: build output, logs), where `clean`,
    /// asked by that person, takes any with nothing unmerged.
    pub completed_only: bool,
}

/// Judges every task branch this orchestrator made, with its worktree,
/// saying each one's fate through `say`: removed (in a dry run, would be)
/// or kept, and why; none after `stopped` says so (asked before each), as
/// a person's Ctrl-C. `removing` is called once, as the first removal
/// begins (a worktree of many files takes seconds). None when nothing can be
/// judged (said): the integration branch is gone and the checkout is on
/// no branch of the user's. Then (not in a dry run) forgets git's records
/// of our worktrees whose folders are gone.
pub fn sweep(
    layout: &Layout,
    repo: &Repo,
    settings: &Settings,
    how: &How,
    say: &mut dyn FnMut(String),
    stopped: &mut dyn FnMut() -> bool,
    removing: &mut dyn FnMut(),
) -> Result<Option<Swept>> {
    let Some(judge) = merged_into(repo, &settings.integration)? else {
        let integration = &settings.integration;
        say(format!("kept every task branch: the integration branch `{integration}` is gone, and the checkout is on no branch of yours to tell merged work by (a detached HEAD, a task's branch, or one with no commit yet): check out the branch you merged it into, then clean again"));
        return Ok(None);
    };
    let (merged_into, integration) = (&judge.rev, &judge.shown);
    let brought = worktrees::brought(repo, settings)?;
    let copies = worktrees::copied(repo, settings)?;
    let mut listed = repo.worktrees()?;
    // Gone from git's records once finished, as in `clean`.
    listed.retain(|(path, _)| !how.cut_short.contains(path));
    let (mut removed, mut kept) = (Vec::new(), 0);
    // Folders whose record git no longer has (pruned while they were away,
    // removed by hand): no longer worktrees, never removed; their branches
    // are judged as those of worktrees gone.
    for folder in repo.worktrees_without_record() {
        kept += 1;
        say(format!(
            "kept     {}: it is no longer a worktree of this repository (git has no record of it): move it away",
            layout.display(&folder)
        ));
    }
    // A task's worktree that its agent moved to a branch of its own (or
    // detached): its commits are on no task branch. Neither the folder nor
    // the task's branch goes (the run's advice names that branch); both
    // are said.
    let moved = moved_worktrees(layout, repo, &listed);
    for (folder, on, branch) in &moved {
        kept += 1;
        let Some(head) = repo.commit_at(folder)? else {
            // `git checkout --orphan`: its files are in no commit.
            say(format!(
                "kept     {branch} and {}: the worktree is on {on}, which has no commit yet: check out {branch} there, keeping what you want of its files, or move the worktree away, then clean again",
                layout.display(folder)
            ));
            continue;
        };
        let unmerged = repo.count(merged_into, &head)?;
        let folder = layout.display(folder);
        // The branch checked out elsewhere (a worktree of the user's):
        // git refuses it a second checkout.
        let elsewhere = (listed.iter())
            .find(|(_, b)| b.as_deref() == Some(branch.as_str()))
            .map(|(path, _)| layout.display(path));
        match (unmerged, elsewhere) {
            (0, Some(other)) => say(format!(
                "kept     {branch} and {folder}: the worktree is on {on}, with nothing that {integration} lacks, and {branch} is checked out at {other}: check out another branch there, then {branch} in {folder}, or move the worktree away, then clean again"
            )),
            (0, None) => say(format!(
                "kept     {branch} and {folder}: the worktree is on {on}, with nothing that {integration} lacks: check out {branch} there, or move the worktree away, then clean again"
            )),
            (_, _) => say(format!(
                "kept     {branch} and {folder}: the worktree is on {on}, with {} not in {integration}: put {} on {branch}, or move the worktree away",
                commits(unmerged),
                it_or_them(unmerged as usize),
            )),
        }
    }
    let mut cleaning = Cleaning {
        layout,
        repo,
        dry_run: how.dry_run,
        completed_only: how.completed_only,
        named: &settings.integration,
        merged_into,
        integration,
        brought: &brought,
        copies: &copies,
        listed: &listed,
        moved: &moved,
        would_go: Vec::new(),
        say,
        removing: Some(removing),
    };
    // A git that fails on one branch or worktree keeps that one, said;
    // the others are cleaned all the same, and the exit code says it.
    let mut failed = false;
    for branch in ours(repo)? {
        if stopped() {
            break;
        }
        match cleaning.branch(branch.clone()) {
            Ok(Fate::Skipped) => {}
            Ok(Fate::Kept) => kept += 1,
            Ok(Fate::Removed(said)) => {
                cleaning.tell(said.clone());
                removed.push(said);
            }
            Err(e) => {
                kept += 1;
                failed = true;
                cleaning.tell(format!("kept     {branch}: git failed on it: {e:#}"));
            }
        }
    }
    if !how.dry_run {
        repo.forget_missing_worktrees()?;
    }
    Ok(Some(Swept {
        removed,
        kept,
        failed,
    }))
}

/// What `clean` found of the branches and worktrees before it judges
/// each task branch (`Cleaning::branch`).
struct Cleaning<'a> {
    layout: &'a Layout,
    repo: &'a Repo,
    dry_run: bool,
    /// See `How::completed_only`.
    completed_only: bool,
    /// The integration branch the config names.
    named: &'a String,
    /// What merged work is judged by, and its name for a person.
    merged_into: &'a str,
    integration: &'a str,
    brought: &'a [String],
    /// What `worktrees.copy` copies into each worktree, as written.
    copies: &'a [String],
    listed: &'a [(Utf8PathBuf, Option<String>)],
    moved: &'a [(Utf8PathBuf, String, String)],
    /// Branches the dry run would remove: they hold nothing for the next.
    would_go: Vec<String>,
    /// Where each branch's fate is said, as it is decided.
    say: &'a mut dyn FnMut(String),
    /// Told as the first removal begins, then dropped.
    removing: Option<&'a mut dyn FnMut()>,
}

/// What became of a task branch.
enum Fate {
    /// Not one for this `clean` to count (moved, said above; its mark
    /// without a branch, taken off).
    Skipped,
    Kept,
    /// Removed, or in a dry run would be: what is said of it.
    Removed(String),
}

impl Cleaning<'_> {
    fn tell(&mut self, line: String) {
        (self.say)(line)
    }

    /// Judges task branch `branch` and its worktree: kept (said why) or
    /// removed.
    fn branch(&mut self, branch: String) -> Result<Fate> {
        let (layout, repo, dry_run, named) = (self.layout, self.repo, self.dry_run, self.named);
        let (merged_into, integration) = (self.merged_into, self.integration);
        let (brought, listed) = (self.brought, self.listed);
        if self.moved.iter().any(|(_, _, b)| *b == branch) {
            return Ok(Fate::Skipped);
        }
        // Another root's (another tasks/ folder of this repository), or
        // made for an integration branch the config no longer names:
        // judged by that root's `clean`, or once the config names it.
        let into = worktrees::integration_of(repo, &branch)?;
        if let Some(other) = into.as_ref().filter(|into| *into != named) {
            self.tell(format!("kept     {branch}: made for the integration branch `{other}`, not `{named}` (another tasks/ folder of this repository cleans it, or this one once worktrees.integration names `{other}` again)"));
            return Ok(Fate::Kept);
        }
        let Some(tip) = repo.branch_commit(&branch)? else {
            // A mark whose branch is gone (a `clean` killed between the
            // two, a branch removed by hand) goes: a branch the user makes
            // later under that name would be taken for ours.
            if !dry_run {
                worktrees::unmark(repo, &branch)?;
            }
            return Ok(Fate::Skipped);
        };
        let base = repo.config_get(&mark(&branch))?.unwrap_or_default();
        let unmerged = repo.count(merged_into, &branch_ref(&branch))?;
        let folder = listed
            .iter()
            .find(|(_, b)| b.as_deref() == Some(branch.as_str()))
            .map(|(path, _)| path.clone());
        if let Some(other) = folder.as_ref().filter(|f| !made_for(layout, f, &branch)) {
            self.tell(format!(
                "kept     {branch}: it is checked out at {}, which cargo xtask did not make and never removes; check out another branch there (or remove that worktree yourself), then clean again",
                layout.display(other)
            ));
            return Ok(Fate::Kept);
        }
        let task = (folder.as_ref())
            .and_then(|f| f.strip_prefix(layout.worktree_dir("")).ok())
            .and_then(|id| Some((id.as_str(), status::state_of(layout, id.as_str())?)));
        match task {
            // An orchestrator killed mid-run leaves its tasks running (the
            // supervisor goes on): the lock is free, but the worktree is not.
            Some((_, State::Running)) => {
                self.tell(format!(
                    "kept     {branch}: its task is recorded as running (`{}` waits for its end and records it)",
                    layout.cmd("monitor")
                ));
                return Ok(Fate::Kept);
            }
            // Merged before the approval (`approve: after`): the worktree
            // is what the person asked to approve it looks at.
            Some((id, State::AwaitingApproval)) => {
                self.tell(format!(
                    "kept     {branch}: its result awaits approval (`{}`)",
                    layout.task_cmd("approve", id)
                ));
                return Ok(Fate::Kept);
            }
            Some((id, state)) if self.completed_only && state != State::Completed => {
                self.tell(format!(
                    "kept     {branch}: its task is not completed (`{}`)",
                    layout.task_cmd("why", id)
                ));
                return Ok(Fate::Kept);
            }
            _ => {}
        }
        // No commit of its own, its base held by another branch (the
        // integration branch made again from one that lacks it): it holds
        // nothing only it holds; so only for a branch that names this
        // root's integration branch (one made before branches named
        // theirs may be another root's). Else it goes only once the branch
        // judged by holds it all (its base may be the last hold of merged
        // work the integration branch dropped).
        let named_ours = into.as_ref() == Some(named);
        let held_elsewhere = || repo.held_by_another_branch(&tip, &branch, &self.would_go);
        if unmerged > 0 && (tip != base || !named_ours || !held_elsewhere()?) {
            let at = folder
                .map(|f| format!(" (worktree {})", layout.display(&f)))
                .unwrap_or_default();
            self.tell(format!(
                "kept     {branch}: {} not in {integration}{at}",
                commits(unmerged)
            ));
            return Ok(Fate::Kept);
        }
        // A folder gone already is for `forget_missing_worktrees`.
        let present = folder.as_ref().filter(|f| f.exists());
        if let Some(folder) = present {
            if !repo.is_own_worktree(folder)? {
                self.tell(format!(
                    "kept     {branch}: {} is no longer a worktree of this repository (its `.git` was removed or replaced): move it away",
                    layout.display(folder)
                ));
                return Ok(Fate::Kept);
            }
            // Locked by a person (`git worktree lock`): theirs to unlock.
            if let Some(reason) = repo.lock_reason(folder)? {
                let shown = layout.display(folder);
                self.tell(format!(
                    "kept     {branch}: its worktree {shown} is locked ({reason}): unlock it (`git worktree unlock {shown}`), then clean again"
                ));
                return Ok(Fate::Kept);
            }
            let mut changed = repo.uncommitted_anywhere(folder, brought)?;
            // A copy is ours to remove only as it was copied.
            changed.extend(worktrees::copies_changed(
                repo,
                &layout.root,
                self.copies,
                folder,
            )?);
            if !changed.is_empty() {
                self.tell(format!(
                    "kept     {branch}: uncommitted changes in {}: {}; commit or remove them, then clean again",
                    layout.display(folder),
                    // A removal cut short by hand leaves thousands.
                    crate::ui::format::first_few(&changed, 10)
                ));
                return Ok(Fate::Kept);
            }
            let alone = repo.submodule_work_alone(folder)?;
            if !alone.is_empty() {
                self.tell(format!(
                    "kept     {branch}: submodules checked out in {} hold commits none of their remotes has, which removing it would delete: {}; push them, then clean again",
                    layout.display(folder),
                    commits_alone(&alone)
                ));
                return Ok(Fate::Kept);
            }
        }
        // What git ignores goes with the worktree, as `git worktree remove`
        // takes it (build output, most often): named, in a dry run first;
        // but never a repository there with commits only it holds.
        let ignored = match present {
            Some(folder) => repo.ignored(folder, brought)?,
            None => Vec::new(),
        };
        if let Some(folder) = present {
            let alone = repo.ignored_work_alone(folder, &ignored)?;
            if !alone.is_empty() {
                self.tell(format!(
                    "kept     {branch}: git repositories in what git ignores in {} hold commits none of their remotes has, which removing it would delete: {}; push them or move them out (or remove them if they are no one's work, as a test's fixture), then clean again",
                    layout.display(folder),
                    commits_alone(&alone)
                ));
                return Ok(Fate::Kept);
            }
        }
        let ignored = ignored_note(&ignored);
        let what = folder
            .as_ref()
            .map(|f| format!(" and {}{ignored}", layout.display(f)))
            .unwrap_or_default();
        if dry_run {
            // Holds nothing for the branches after it, as once removed.
            self.would_go.push(branch.clone());
            return Ok(Fate::Removed(format!("would remove {branch}{what}")));
        }
        if let Some(removing) = self.removing.take() {
            removing();
        }
        // What `copy` and `link` brought in is ours to remove (a link, not
        // what it points to); git keeps a worktree with untracked files.
        if let Some(folder) = present {
            for path in repo.untracked(folder, brought)? {
                let path = folder.join(&path);
                std::fs::remove_file(&path).with_context(|| format!("cannot remove {path}"))?;
            }
        }
        if let Some(folder) = &folder {
            if let Err(e) = repo.remove_worktree(folder) {
                self.tell(format!(
                    "kept     {branch}: its worktree cannot be removed: {e:#}"
                ));
                return Ok(Fate::Kept);
            }
            remove_empty_parents(folder, &layout.worktree_dir(""));
        }
        // Removed, then unmarked: cut short between the two, it leaves a
        // mark without a branch, which the next `clean` (above) or the
        // task's next worktree takes off; the other way round, a branch
        // of ours no `clean` would ever see again.
        repo.delete_branch(&branch, &tip)?;
        // Removed all the same: a mark left is taken off next time.
        if let Err(e) = worktrees::unmark(repo, &branch) {
            self.tell(format!(
                "warning: {branch}: its mark stays in git's config, for the next `clean`: {e:#}"
            ));
        }
        let _ = std::fs::remove_file(layout.setup_done_file(&branch));
        Ok(Fate::Removed(format!("removed  {branch}{what}")))
    }
}

/// The worktrees in task folders (`workspace/worktrees/<id>`) that are not
/// on their task's branch: each with what it is on (for a person), and
/// its task's branch.
fn moved_worktrees(
    layout: &Layout,
    repo: &Repo,
    listed: &[(Utf8PathBuf, Option<String>)],
) -> Vec<(Utf8PathBuf, String, String)> {
    let folders = layout.worktree_dir("");
    listed
        .iter()
        .filter_map(|(path, on)| {
            let id = path.strip_prefix(&folders).ok()?.as_str();
            // The integration worktree, and those being made, are not tasks'.
            if id.starts_with('.') {
                return None;
            }
            // One of the user's put there (unmarked) is no task's: left
            // alone, and not called one.
            repo.worktree_mark(path).ok().flatten()?;
            let branch = branch::branch_name(id);
            let on = match on {
                Some(b) if *b == branch => return None,
                Some(b) => format!("branch `{b}`"),
                None => "a detached HEAD".to_owned(),
            };
            Some((path.clone(), on, branch))
        })
        .collect()
}

/// Whether `folder` is a worktree this orchestrator made for `branch`:
/// its task's worktree, or the folder that one is made in before it is
/// moved in place. Anywhere else the branch is checked out is the user's
/// (the checkout, a worktree of their own to look at an agent's work):
/// neither it nor what `copy` brought into the root is ever removed.
fn made_for(layout: &Layout, folder: &Utf8Path, branch: &str) -> bool {
    let Ok(rel) = folder.strip_prefix(layout.worktree_dir("")) else {
        return false;
    };
    let id = match rel.strip_prefix(".new") {
        Ok(aside) => Layout::id_of_new_worktree(aside.as_str()),
        Err(_) => rel.to_string(),
    };
    branch::branch_name(&id) == branch
}

/// What task branches are judged merged by.
struct Judge {
    rev: String,
    shown: String,
}

/// The integration branch; once it is gone (merged into yours and
/// deleted, as README suggests), the branch checked out, when it is one of
/// the user's with commits: a task branch whose commits it holds loses
/// nothing. None when there is neither (a detached HEAD, a task's branch,
/// an unborn one): nothing can be judged, nothing goes.
fn merged_into(repo: &Repo, integration: &str) -> Result<Option<Judge>> {
    if repo.branch_commit(integration)?.is_some() {
        return Ok(Some(Judge {
            rev: branch_ref(integration),
            shown: integration.to_owned(),
        }));
    }
    let yours = repo
        .branch_at(&repo.top)?
        .filter(|b| !branch::among_task_branches(b));
    let Some(yours) = yours else { return Ok(None) };
    if repo.branch_commit(&yours)?.is_none() {
        return Ok(None);
    }
    Ok(Some(Judge {
        rev: branch_ref(&yours),
        shown: format!("{yours} (the integration branch, {integration}, is gone)"),
    }))
}

/// The branches this orchestrator made: those with its mark in git config.
fn ours(repo: &Repo) -> Result<Vec<String>> {
    let marked = format!(r"^branch\.{}/.*\.xtaskbase$", branch::TASK_BRANCHES);
    let mut branches: Vec<String> = (repo.config_regexp(&marked)?.into_iter())
        .filter_map(|key| {
            key.strip_prefix("branch.")?
                .strip_suffix(".xtaskbase")
                .map(str::to_owned)
        })
        .filter(|name| branch::among_task_branches(name))
        .collect();
    // By name, not in the order their worktrees happened to be made:
    // `clean` says the same of the same branches every time, and its
    // dry run what it does.
    branches.sort();
    Ok(branches)
}

/// `, with what git ignores in it: target/, x.log`, the first few named.
fn ignored_note(ignored: &[String]) -> String {
    const NAMED: usize = 5;
    if ignored.is_empty() {
        return String::new();
    }
    let mut note = format!(
        ", with what git ignores in it: {}",
        ignored[..ignored.len().min(NAMED)].join(", ")
    );
    if ignored.len() > NAMED {
        note += &format!(" and {} more", ignored.len() - NAMED);
    }
    note
}

/// Repositories, each with the commits only it holds: `lib (1 commit)`.
fn commits_alone(alone: &[(String, u64)]) -> String {
    let said: Vec<String> = (alone.iter())
        .map(|(name, n)| format!("{name} ({})", commits(*n)))
        .collect();
    said.join(", ")
}

/// `1 commit`, `3 commits`: git counts them in a `u64`.
fn commits(n: u64) -> String {
    counted(n as usize, "commit", "commits")
}
