//! The merge queue: the work of finished worktree tasks brought into the
//! integration branch one at a time, in the order they finished, on a
//! thread of its own so that the run goes on meanwhile. Each task's branch
//! is rebased onto the integration tip (in the task's own worktree, without
//! an editor or a prompt) and the integration branch fast-forwarded to it
//! (in the orchestrator's worktree of it). A conflict aborts the rebase,
//! leaving the branch as it was.
//!
//! Every step can be done again: an orchestrator killed during a merge
//! leaves a rebase in progress (marked as its own), which the next one
//! aborts and redoes, or a merge done but not recorded, which the next one
//! finds done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::git::command::{self, Cut};
use crate::git::repo::{branch_ref, HeldLock, Moved, Nested, Rebased, Repo, EDITOR_CLOSES};
use crate::git::worktrees::Worktrees;
use crate::sys::shell::shell_word;

/// A finished task's work to merge.
#[derive(Debug, Clone)]
pub struct Request {
    pub t: usize,
    pub id: String,
    pub worktree: Utf8PathBuf,
    pub branch: String,
    /// The commit its branch started from.
    pub base: String,
}

/// How it went.
#[derive(Debug, Clone)]
pub enum Merged {
    /// In the integration branch: at this commit, or `None` when the task
    /// made no commit of its own.
    Done(Option<String>),
    /// Not merged, with why (`merge conflict: a.txt`): the branch keeps its
    /// commits.
    Failed(String),
    /// Not final: the merge waits for a person's work in the integration
    /// worktree (`a merge`, `a rebase`..., or changes not committed) to be
    /// finished.
    Waits(PersonsWork),
    /// Not merged, left for the next run, which merges it (the task's
    /// exit record stays): the run stopped while the merge waited for a
    /// person's work (`Some`), or cut the merge short (a second Ctrl-C).
    /// The branch keeps its commits; the queue merges nothing more.
    Stopped(Option<PersonsWork>),
    /// Not merged for want of a usable integration worktree (see
    /// `QueueSide`), not for anything in the task's work: left for the
    /// next run as `Stopped` is, with why. Failing the task would run its
    /// agent again, at a cost, for work that is done.
    Broken(String),
}

/// A person's work in progress in the integration worktree, which the
/// queue never touches: merging their own commits in there is what README
/// tells them to do, and the reset before a merge would throw it away.
#[derive(Debug, Clone)]
pub enum PersonsWork {
    /// A live git at work there, holding one of its locks (a `git commit`
    /// waiting on its editor).
    Git(HeldLock),
    /// An operation of git's (`a merge`, `a rebase`...).
    Operation(&'static str),
    /// Files changed, staged or untracked, that no fast-forward of ours
    /// left.
    Changes(Vec<String>),
    /// The branch moved by something else (`git update-ref`, an agent):
    /// the changes git shows there only undo that move, and committed,
    /// they would.
    Moved(Moved),
    /// Another branch (`Some`) or a detached HEAD checked out there by
    /// hand: a merge would go onto it, not into the integration branch.
    OffBranch {
        on: Option<String>,
        integration: String,
    },
    /// The integration branch checked out in another worktree too (the
    /// user's checkout, by `git checkout --ignore-other-worktrees`): a
    /// merge would move it under that checkout, whose files and index
    /// would then undo the work merged, and take it out once committed.
    AlsoAt {
        at: Utf8PathBuf,
        integration: String,
    },
}

impl std::fmt::Display for PersonsWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PersonsWork::Git(held) => write!(f, "{held}"),
            PersonsWork::Operation(what) => write!(f, "{what}"),
            PersonsWork::Changes(files) => {
                let files = crate::ui::format::first_few(files, 3);
                write!(f, "changes not committed ({files})")
            }
            PersonsWork::Moved(moved) => write!(
                f,
                "its branch moved outside the merge queue, to {}",
                short(&moved.to)
            ),
            PersonsWork::OffBranch { on: Some(on), .. } => {
                write!(f, "branch `{on}` checked out")
            }
            PersonsWork::OffBranch { on: None, .. } => write!(f, "a detached HEAD checked out"),
            PersonsWork::AlsoAt { at, integration } => {
                write!(
                    f,
                    "the integration branch `{integration}` checked out at {at} too"
                )
            }
        }
    }
}

/// What a person is doing in the integration worktree `dir` of branch
/// `integration`, if anything.
pub fn persons_work(repo: &Repo, dir: &Utf8Path, integration: &str) -> Result<Option<PersonsWork>> {
    // A git at work first: what it does is not done yet.
    if let Some(held) = repo.held_lock(dir, Duration::from_secs(1))? {
        return Ok(Some(PersonsWork::Git(held)));
    }
    // An operation next: a rebase leaves HEAD detached.
    if let Some(what) = repo.in_progress(dir)? {
        return Ok(Some(PersonsWork::Operation(what)));
    }
    let on = repo.branch_at(dir)?;
    if on.as_deref() != Some(integration) {
        let integration = integration.to_owned();
        return Ok(Some(PersonsWork::OffBranch { on, integration }));
    }
    // A record whose folder is gone (a repository moved) checks nothing
    // out: the run links it again as it starts.
    if let Some((at, _)) = repo
        .worktrees()?
        .into_iter()
        .find(|(at, on)| on.as_deref() == Some(integration) && at != dir && at.exists())
    {
        let integration = integration.to_owned();
        return Ok(Some(PersonsWork::AlsoAt { at, integration }));
    }
    // What a fast-forward of ours cut short left is not: `restore_clean`
    // removes it.
    let persons = repo.changes_in_integration(dir)?.persons;
    if persons.is_empty() {
        return Ok(None);
    }
    Ok(Some(match repo.moved_outside(dir)? {
        Some(moved) => PersonsWork::Moved(moved),
        None => PersonsWork::Changes(persons),
    }))
}

/// A commit's id, as short as the messages show it.
fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// What to do about the branch moved outside the merge queue: keep the
/// move, or undo it; never commit what git shows there.
fn keep_or_undo(dir: &Utf8Path, moved: &Moved) -> String {
    format!(
        "it was moved (by `git update-ref`, or an agent?) from {}, which {dir} still has checked out, to {}: to keep the move, `git -C {dir} reset --hard` (it only undoes the changes git shows there); to undo it, `git update-ref {} {}`; committing those changes would undo what the move brought",
        short(&moved.from),
        short(&moved.to),
        moved.branch,
        moved.from,
    )
}

pub struct Queue {
    requests: Sender<Request>,
    /// Set when the run stops: a merge waiting for a person gives up.
    stopping: Arc<AtomicBool>,
    /// Cuts short the queue's gits when the run must end at once.
    cut: Arc<Cut>,
}

/// What the queue's thread needs.
pub struct Target {
    pub integration: String,
    /// The orchestrator's worktree of the integration branch.
    pub integration_dir: Utf8PathBuf,
    pub commit_leftovers: bool,
    /// What `worktrees.copy` and `link` bring into each worktree: never
    /// committed.
    pub brought: Vec<String>,
}

impl Queue {
    /// Starts the queue's thread, with `worktrees` of its own (see
    /// `Worktrees::for_another_thread`); each request's result goes to
    /// `events`, wrapped.
    pub fn start<E: Send + 'static>(
        target: Target,
        worktrees: Worktrees,
        events: Sender<E>,
        wrap: fn(usize, Merged) -> E,
    ) -> Result<Queue> {
        let (requests, queued) = mpsc::channel::<Request>();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let cut = Arc::new(Cut::default());
        let cuts = cut.clone();
        crate::sys::spawn_thread("the merge queue", move || {
            command::cut_by(cuts.clone());
            for request in queued {
                let said = |merged| events.send(wrap(request.t, merged)).is_ok();
                let merged = if cuts.is_cut() {
                    Ok(Merged::Stopped(None))
                } else {
                    match wait_for_person(&worktrees.repo, &target, &stop, &said) {
                        Ok(Some(what)) => Ok(Merged::Stopped(Some(what))),
                        Ok(None) => merge(&worktrees, &target, &request),
                        Err(e) => Err(e.context(QueueSide)),
                    }
                };
                let merged = match merged {
                    Ok(merged @ (Merged::Done(_) | Merged::Stopped(_))) => merged,
                    // A failure once cut may be the cut's doing: the
                    // next run merges it again, and finds out.
                    _ if cuts.is_cut() => Merged::Stopped(None),
                    Ok(merged) => merged,
                    Err(e) if e.is::<QueueSide>() => Merged::Broken(format!("{e:#}")),
                    Err(e) => Merged::Failed(format!("merge failed: {e:#}")),
                };
                let last = matches!(merged, Merged::Stopped(_) | Merged::Broken(_));
                if !said(merged) || last {
                    return;
                }
            }
        })?;
        Ok(Queue {
            requests,
            stopping,
            cut,
        })
    }

    pub fn push(&self, request: Request) {
        // The thread outlives every request: it ends with the run.
        let _ = self.requests.send(request);
    }

    /// The run stops: a merge waiting for a person gives up (see
    /// `wait_for_person`).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The run ends at once (a second Ctrl-C): the merge going on is cut
    /// short, git and what it runs (a hook) stopped, and nothing more is
    /// merged; what is left, the next run merges.
    pub fn cut(&self) {
        self.stop();
        self.cut.cut();
    }
}

/// How often a merge waiting for a person looks again (a `git status`
/// of the integration worktree each time).
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// Waits while a person's work is in progress in the integration worktree
/// (merging their own commits in, as README says): a merge there now would
/// reset it away, and failing the task would run its agent again. Says so
/// once (`Merged::Waits`). Returns the work when the run stopped
/// meanwhile, `None` when there is none (any more).
fn wait_for_person(
    repo: &Repo,
    target: &Target,
    stopping: &AtomicBool,
    say: &dyn Fn(Merged) -> bool,
) -> Result<Option<PersonsWork>> {
    let mut said = false;
    let (dir, integration) = (&target.integration_dir, &target.integration);
    while let Some(what) = persons_work(repo, dir, integration)? {
        if stopping.load(Ordering::Relaxed) {
            return Ok(Some(what));
        }
        if !said {
            said = true;
            say(Merged::Waits(what));
        }
        std::thread::sleep(LOOK_AGAIN);
    }
    Ok(None)
}

/// What fails a merge before the task's work is looked at: the
/// integration worktree cannot be made ready (its `.git` made unusable,
/// locks, git failing there). No failure of the task's: the work is left
/// for the next run (`Merged::Broken`).
#[derive(Debug)]
struct QueueSide;

impl std::fmt::Display for QueueSide {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the integration worktree cannot be made ready")
    }
}

/// The integration worktree made ready for a merge: what an orchestrator
/// killed during one left (locks, a rebase of its own) undone, on the
/// integration branch, clean. A person's work in progress there was waited
/// out just before (`wait_for_person`).
fn prepare_integration(repo: &Repo, target: &Target, request: &Request) -> Result<()> {
    let dir = &target.integration_dir;
    if !repo.is_own_worktree(dir)? {
        bail!("{dir} is no longer a worktree of this repository (its `.git` was removed or replaced): move it away");
    }
    repo.remove_stale_ref_locks(&[&request.branch, &target.integration])?;
    repo.settle_packed_refs_lock()?;
    repo.remove_stale_worktree_locks(dir)?;
    repo.undo_rebase(dir, &target.integration)?;
    repo.back_on(dir, &target.integration, None)?;
    repo.restore_clean(dir)
}

fn merge(worktrees: &Worktrees, target: &Target, request: &Request) -> Result<Merged> {
    let (repo, worktree) = (&worktrees.repo, &request.worktree);
    if !worktree.exists() {
        // Removed by hand while its work waited here (a run stopped, then
        // `rm -rf`): its branch holds what it committed. Made again on
        // it, as a retry's is, and merged: its agent does not run again.
        // With its branch gone too, there is no work to merge: the task's
        // failure, not the queue's.
        let Some(tip) = repo.branch_commit(&request.branch)? else {
            return Ok(Merged::Failed(format!(
                "its worktree and its branch `{}` are gone: nothing to merge",
                request.branch
            )));
        };
        // What the agent left uncommitted is committed here, at the merge:
        // it went with the folder. A branch with no commit of its own then
        // holds nothing of its work, which completing would pass over.
        if repo.count(&request.base, &tip)? == 0 {
            return Ok(Merged::Failed(format!(
                "its worktree was removed before its work was merged, and its branch `{}` holds no commit of its own: what its agent left uncommitted went with it; nothing was merged",
                request.branch
            )));
        }
        worktrees.remake_for_merge(&request.id)?;
    }
    if !repo.is_own_worktree(worktree)? {
        return Ok(no_longer_a_worktree(request));
    }
    // Made for another integration branch (worktrees.integration changed
    // since its task started, which a run adopting it after a kill does
    // not check): never merged here.
    let other = super::worktrees::integration_of(repo, &request.branch)?;
    if let Some(other) = other.filter(|into| *into != target.integration) {
        let why = super::worktrees::made_for_another(&request.branch, &other, &target.integration);
        return Ok(Merged::Failed(format!("{why}: nothing was merged")));
    }
    prepare_integration(repo, target, request).context(QueueSide)?;
    // A person's git at work in the task's worktree: left for the next
    // run, as the integration worktree's would be (not the task's doing).
    if let Err(e) = repo.remove_stale_worktree_locks(worktree) {
        // Removed by hand as its merge began (an `rm -rf` going on when
        // it was found there): the task's, as found gone, not the queue's.
        if !repo.is_own_worktree(worktree)? {
            return Ok(no_longer_a_worktree(request));
        }
        return Ok(Merged::Broken(format!("{e:#}")));
    }
    repo.undo_rebase(worktree, &request.branch)?;
    repo.back_on(worktree, &request.branch, Some(&request.base))?;
    if let Some(failed) = left_unfinished(repo, worktree)? {
        return Ok(Merged::Failed(failed));
    }
    // A brought file the agent staged would go into a commit, or, alone in
    // the index, stop the rebase: it stays in the worktree, unstaged.
    repo.unstage(worktree, &target.brought)?;
    let leftovers = repo.uncommitted(worktree, &target.brought)?;
    let nested = repo.nested_repositories(worktree, &leftovers)?;
    if !nested.is_empty() {
        return Ok(Merged::Failed(nested_left(worktree, &nested)));
    }
    if !leftovers.is_empty() {
        if !target.commit_leftovers {
            return Ok(Merged::Failed(format!(
                "uncommitted changes left by the agent (worktrees.commit_leftovers is false): {}",
                leftovers.join(", ")
            )));
        }
        let message = format!("{}: uncommitted changes left by the agent", request.id);
        if let Err(e) = repo.commit_all(worktree, &message, &target.brought) {
            return Ok(Merged::Failed(format!(
                "cannot commit what the agent left uncommitted ({}): {e:#}: nothing was merged",
                leftovers.join(", ")
            )));
        }
    }
    let integration = &target.integration;
    let tip = repo.head(worktree)?;
    // Committed, a brought file (a `.env` secret) would reach the
    // integration branch and its history: nothing is merged.
    let brought =
        repo.changed_in_commits(worktree, &branch_ref(integration), &tip, &target.brought)?;
    if !brought.is_empty() {
        return Ok(Merged::Failed(format!(
            "its commits change {}, which worktrees.copy or link brings in: the user's, never merged. Nothing was merged; take them out of the commits on `{}` (`git rebase -i {integration}` in its worktree), or out of worktrees.copy and link if they belong in the repository",
            brought.join(", "),
            request.branch
        )));
    }
    let embedded = repo.embedded_repositories(worktree, &branch_ref(integration), &tip)?;
    if !embedded.is_empty() {
        return Ok(Merged::Failed(format!(
            "its commits add {}, a git repository of its own (a `git clone` or `git init` in its worktree): git keeps its commit id, not its files, which nobody could fetch. Nothing was merged; remove its `.git` and commit its files on `{}`, or make it a submodule (`git submodule add URL PATH`)",
            embedded.join(", "),
            request.branch
        )));
    }
    if repo.count(&branch_ref(integration), &branch_ref(&request.branch))? == 0 {
        // Nothing the integration branch lacks: no commit of its own, or
        // merged already (by an orchestrator killed before recording it).
        // A branch moved back below its start (a `reset --hard`) merged
        // nothing either.
        let merged = (repo.count(&request.base, &tip)? > 0).then_some(tip);
        return Ok(Merged::Done(merged));
    }
    if let Rebased::Conflict(files) = repo.rebase(worktree, integration)? {
        // The queue rebases: a merge commit resolving the conflict would
        // be dropped by it, and the conflict replayed.
        return Ok(Merged::Failed(format!(
            "merge conflict: {}: rebase `{}` onto `{integration}` to resolve it (the queue rebases: a merge commit is not kept)",
            files.join(", "),
            request.branch
        )));
    }
    // Rebased, its commits may all have gone empty (their changes merged
    // already, by another task): nothing of its own to merge, or to name.
    if repo.count(&branch_ref(integration), &branch_ref(&request.branch))? == 0 {
        return Ok(Merged::Done(None));
    }
    // Its failure may be the task's commits' doing (a name too long for
    // the file system, a signature `merge.verifySignatures` wants): the
    // task's, as a failed rebase is.
    repo.fast_forward_marked(&target.integration_dir, &request.branch)?;
    Ok(Merged::Done(Some(repo.head(&target.integration_dir)?)))
}

/// The task's failure when its worktree is no longer one of this
/// repository's (its `.git` removed or replaced, by its agent or by hand).
fn no_longer_a_worktree(request: &Request) -> Merged {
    Merged::Failed(format!(
        "{} is no longer a worktree of this repository (its `.git` was removed or replaced): nothing was merged; what was committed on `{}` stays there",
        request.worktree, request.branch
    ))
}

/// Why the work in the task's worktree `dir` is not merged, when the agent
/// left a merge, cherry-pick or revert unfinished, or a conflict
/// unresolved: committed as leftovers, its conflict markers would be
/// merged. (A squash merge with no conflict is only staged changes.)
fn left_unfinished(repo: &Repo, dir: &Utf8Path) -> Result<Option<String>> {
    let unmerged = repo.unmerged(dir)?;
    let operation = repo
        .in_progress(dir)?
        .filter(|&what| what != "a squash merge" || !unmerged.is_empty());
    if operation.is_none() && unmerged.is_empty() {
        return Ok(None);
    }
    let shown = shell_word(dir.as_str());
    let conflicts = unmerged.join(", ");
    let left = match operation {
        Some(what) if unmerged.is_empty() => format!("{what} unfinished"),
        Some(what) => format!("{what} unfinished, with conflicts in {conflicts},"),
        None => format!("conflicts in {conflicts} unresolved"),
    };
    let undo = match operation {
        Some("a merge") => format!("`git -C {shown} merge --abort`"),
        Some("a cherry-pick") => format!("`git -C {shown} cherry-pick --abort`"),
        Some("a revert") => format!("`git -C {shown} revert --abort`"),
        Some("a bisect") => format!("`git -C {shown} bisect reset`"),
        _ => format!("`git -C {shown} reset --merge`"),
    };
    Ok(Some(format!(
        "the agent left {left} in its worktree {shown}: nothing was merged; finish it (resolve, `git add`, `git commit`) or undo it ({undo}), then run the task again"
    )))
}

/// Why the work in the task's worktree `dir` is not merged, when the
/// agent left `nested` git repositories or worktrees of their own there,
/// uncommitted: the leftovers commit would record each as a commit id
/// alone, not its files. The way out depends on what it is.
fn nested_left(dir: &Utf8Path, nested: &[Nested]) -> String {
    let shown = shell_word(dir.as_str());
    let each: Vec<String> = (nested.iter())
        .map(|Nested { path, worktree }| match worktree {
            true => format!(
                "{path} is a git worktree (`git worktree add`): remove it (`git -C {shown} worktree remove {}`)",
                shell_word(path)
            ),
            false => format!(
                "{path} is a git repository of its own (a `git clone` or `git init`): remove its `.git` to commit its files, add it to .gitignore, or make it a submodule (`git submodule add URL PATH`)"
            ),
        })
        .collect();
    format!(
        "the agent left a git repository or worktree of its own in its worktree {shown}, uncommitted (committed, git would keep its commit id, not its files): nothing was committed or merged; {}; then run the task again",
        each.join("; ")
    )
}

/// What the run and `why` say of a merge queue held by a person's work
/// `what` in the integration worktree `dir`.
pub fn held_by_person(dir: &Utf8Path, what: &PersonsWork) -> String {
    match what {
        PersonsWork::Git(_) => format!("{dir} has {what}, not cargo xtask's: the merge queue waits until it ends ({EDITOR_CLOSES})"),
        PersonsWork::Operation(_) => format!("{dir} is in the middle of {what}, not cargo xtask's: the merge queue waits until it is committed or aborted there"),
        PersonsWork::Changes(_) => format!("{dir} has {what}, not cargo xtask's: the merge queue waits until they are committed or stashed there"),
        PersonsWork::Moved(moved) => format!("the integration branch moved outside the merge queue: the queue waits; {}", keep_or_undo(dir, moved)),
        PersonsWork::OffBranch { integration, .. } => format!("{dir} has {what}, not the integration branch `{integration}`: the merge queue waits until it is checked out there again (`git -C {dir} switch {integration}`)"),
        PersonsWork::AlsoAt { at, .. } => format!("{what}: the merge queue waits until another branch is checked out there (`git -C {at} switch <your branch>`)"),
    }
}

/// Why a run does not start on a person's work in the integration
/// worktree `dir`: the orchestrator only fast-forwards there, and would
/// reset it away (merging their own commits in is what README tells them
/// to do there).
pub fn refused_for(dir: &Utf8Path, work: &PersonsWork) -> String {
    match work {
        PersonsWork::Git(_) => {
            format!("{dir} has {work}, not cargo xtask's: let it end ({EDITOR_CLOSES}), then run again")
        }
        PersonsWork::Operation(what) => format!(
            "{dir} is in the middle of {what}, not one of cargo xtask's (it only fast-forwards there): finish it (`git commit`, `git rebase --continue`) or abort it (`git merge --abort`, `git rebase --abort`, `git reset --merge` for a squash merge) there, then run again"
        ),
        PersonsWork::Changes(_) => format!(
            "{dir} has {work}, not cargo xtask's (it only fast-forwards there, and would reset them away): commit them there, or stash them (`git -C {dir} stash -u`), then run again"
        ),
        PersonsWork::Moved(moved) => format!(
            "the integration branch moved outside the merge queue: {}; then run again",
            keep_or_undo(dir, moved)
        ),
        PersonsWork::OffBranch { integration, .. } => format!(
            "{dir} has {work}, not the integration branch `{integration}`: check it out there again (`git -C {dir} switch {integration}`: merges go into it there, and move no other branch), then run again"
        ),
        PersonsWork::AlsoAt { at, .. } => format!(
            "{work}: merges go into it in {dir}; check out another branch there (`git -C {at} switch <your branch>`), then run again"
        ),
    }
}
