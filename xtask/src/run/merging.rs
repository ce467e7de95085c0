//! Worktree tasks in the run: each one's worktree made (or found) before it
//! starts, and its work sent through the merge queue after its process
//! ends well. Until its work is merged, its final status waits here, and
//! its exit record in `workspace/pids/` (`run::ends`): a crash before the
//! merge is recorded, of the run or of the run and its supervisor, leaves
//! the task to be ended, and merged, again.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::time::SystemTime;

use anyhow::Result;
use camino::Utf8Path;

use crate::git::cleaning::{self, Swept};
use crate::git::merge::{self, Merged, Queue};
use crate::git::repo::{branch_ref, Repo};
use crate::git::worktrees::{self, Maker, Prepared, Worktrees};
use crate::model::branch::TASK_BRANCHES;
use crate::model::config::Config;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::run::finals::RecordFrom;
use crate::run::Options;
use crate::state::status::{self, AgentSlot, State, Status};
use crate::sys::shell::shell_word;
use crate::ui::format;

pub struct Git {
    pub worktrees: Worktrees,
    /// Makes the tasks' worktrees as they start.
    maker: Maker,
    queue: Queue,
    /// Tasks whose work is in the queue, each with its final status.
    waiting: HashMap<usize, Waiting>,
    /// The queue stopped (`Merged::Stopped`, `Broken`): what waits in it
    /// is left for the next run.
    stopped: bool,
    /// Why it stopped, when a merge could not be done (`Merged::Broken`).
    pub broken: Option<String>,
}

/// How the run's events say a task's worktree was made, and its work
/// merged (`Git::open`).
pub type Told<E> = (fn(usize, Result<Prepared>) -> E, fn(usize, Merged) -> E);

/// A task whose work waits in the merge queue.
pub struct Waiting {
    /// Its final status, completed once the work is merged.
    pub status: Status,
    pub from: RecordFrom,
    /// When its attempt started (to the nanosecond, as `Active::started`).
    pub started: SystemTime,
}

/// `Git::unseen_warnings`, when the run may start a worktree task: one it
/// selects that is not completed (or may be run again, `--rerun-stale`).
/// Else what worktrees would not see is no news worth a warning.
pub fn unseen_warnings(
    git: Option<&Git>,
    layout: &Layout,
    config: &Config,
    graph: &Graph,
    options: &Options,
) -> Vec<String> {
    let left = graph.tasks.iter().any(|task| {
        options.selects(task)
            && task.in_worktree(config)
            && (options.rerun_stale || status::state_of(layout, &task.id) != Some(State::Completed))
    });
    match git {
        Some(git) if left => git
            .remade_warning(layout, graph)
            .into_iter()
            .chain(git.unseen_warnings())
            .collect(),
        _ => Vec::new(),
    }
}

impl Git {
    /// The repository's worktrees, their maker and a merge queue, when
    /// `needed` (a task of the run uses a worktree); an error stops the run
    /// before anything starts. What they do goes to `events`: a worktree
    /// made, `made`, a merge, `merged`.
    pub fn open<E: Send + 'static>(
        layout: &Layout,
        config: &Config,
        needed: bool,
        events: Sender<E>,
        (made, merged): Told<E>,
    ) -> Result<Option<Git>> {
        if !needed {
            return Ok(None);
        }
        let worktrees = Worktrees::open(layout, &config.worktrees)?;
        let target = merge::Target {
            integration: config.worktrees.integration.clone(),
            integration_dir: worktrees.integration_dir(),
            commit_leftovers: config.worktrees.commit_leftovers,
            brought: worktrees::brought(&worktrees.repo, &config.worktrees)?,
        };
        Ok(Some(Git {
            maker: Maker::start(&worktrees, events.clone(), made)?,
            queue: Queue::start(target, worktrees.for_another_thread()?, events, merged)?,
            worktrees,
            waiting: HashMap::new(),
            stopped: false,
            broken: None,
        }))
    }

    /// Warnings of what the tasks' worktrees will not have: changes not
    /// committed in the person's checkout, and commits of `worktrees.base`
    /// (their checkout's HEAD by default) made after the integration
    /// branch was. An agent working from code other than what its person
    /// sees is a surprise found late.
    fn unseen_warnings(&self) -> Vec<String> {
        let integration = &self.worktrees.settings.integration;
        let base = &self.worktrees.settings.base;
        let repo = &self.worktrees.repo;
        let checked_out = repo.branch_at(&repo.top).ok().flatten();
        let merge = || {
            merge_command(
                repo,
                &self.worktrees.integration_dir(),
                base,
                checked_out.as_deref(),
            )
        };
        let mut warnings = Vec::new();
        if self.worktrees.workspace_unignored().unwrap_or(false) {
            warnings.push("warning: git does not ignore `workspace/`, where the worktrees are: a `git add -A` in the checkout (yours, or a `workdir: root` task's) would commit each worktree as a git repository of its own, with the run's logs and statuses; add `/workspace/` to .gitignore (`cargo xtask init` does)".to_owned());
        }
        let changed = self.worktrees.uncommitted_in_checkout().unwrap_or_default();
        if !changed.is_empty() {
            warnings.push(format!(
                "warning: changes not committed in the checkout ({}): worktree tasks start from the integration branch `{integration}` and do not see them; to give them to the agents, commit them and merge them into `{integration}`: {merge}",
                crate::ui::format::first_few(&changed, 3),
                merge = merge(),
            ));
        }
        for copy in self.worktrees.tracked_copies().unwrap_or_default() {
            warnings.push(format!(
                "warning: worktrees.copy `{copy}`: git tracks it, so it is not copied: each worktree has its own checkout of it, the integration branch's (a copy over it would be a change no one made, which stops every merge); commit the version the agents should see, or take it out of `worktrees.copy`"
            ));
        }
        for link in self.worktrees.unignored_links().unwrap_or_default() {
            let name = link.trim_end_matches('/');
            warnings.push(format!(
                "warning: worktrees.link `{link}`: git does not ignore the link it makes in each worktree (.gitignore has no `{name}`, or only `{name}/`, which matches folders, not links): an agent that commits everything (`git add -A`) commits it, and its work is then not merged; write `{name}`, without a `/`, in .gitignore"
            ));
        }
        // A task's branch checked out by hand: its commits are the task's,
        // which reach the integration branch through the queue, never by
        // a merge of the person's.
        if let Some(task_branch) = checked_out
            .as_deref()
            .filter(|b| base == "HEAD" && b.starts_with(&format!("{TASK_BRANCHES}/")))
        {
            warnings.push(format!(
                "warning: the checkout is on `{task_branch}`, a task's branch that cargo xtask made: its work reaches `{integration}` through the merge queue, not by a merge of yours; check out a branch of your own (`git switch -`)"
            ));
        } else if let Ok(n @ 1..) =
            (self.worktrees.base_rev()).and_then(|base| repo.count(&branch_ref(integration), &base))
        {
            warnings.push(format!(
                "warning: `{base}` has {} that the integration branch `{integration}` lacks (it was made from `{base}` once): worktree tasks start from `{integration}` and do not see {them}; merge {them} into it to give {them} to the agents: {merge}",
                format::counted(n as usize, "commit", "commits"),
                them = format::it_or_them(n as usize),
                merge = merge(),
            ));
        }
        warnings
    }

    /// A warning when this run made the integration branch again (it was
    /// deleted) from a base that lacks, by content, what completed tasks
    /// merged into it: what depends on them would start without it. Not
    /// by ancestry: a squash merge of the branch into the base holds that
    /// work, and no warning is due.
    fn remade_warning(&self, layout: &Layout, graph: &Graph) -> Option<String> {
        let start = self.worktrees.made_from.as_ref()?;
        // The last merge recorded: the queue only fast-forwards, so its
        // commit holds every earlier one's.
        let (_, id, last) = (graph.tasks.iter())
            .filter_map(|task| {
                let s = status::read(layout, &task.id).ok()??;
                let ended = status::parse_timestamp(s.completed_at.as_deref()?)?;
                let merged = s.merged_commit.filter(|_| s.status == State::Completed)?;
                Some((ended, &task.id, merged))
            })
            .max()?;
        let repo = &self.worktrees.repo;
        // Gone from the repository (collected as garbage): nothing to
        // compare with.
        repo.commit_of(&last).ok()??;
        let lacking = repo.lacks_work_of(start, &last).ok()?;
        if lacking.is_empty() {
            return None;
        }
        let settings = &self.worktrees.settings;
        let short = &last[..last.len().min(12)];
        Some(format!(
            "warning: the integration branch `{}` was gone: made again from `{}` (worktrees.base), which lacks work completed tasks merged into it ({}: not as in {short}, the merge of {id}); the tasks that depend on them start without it; to give it back, merge it in {}: `git merge {short}`",
            settings.integration,
            settings.base,
            crate::ui::format::first_few(&lacking, 3),
            self.worktrees.integration_dir(),
        ))
    }

    /// Has task `t`'s worktree made (task `id`'s): the run hears of it as
    /// an event.
    pub fn make_worktree(&self, t: usize, id: &str) {
        self.maker.make(t, id);
    }

    /// Sends task `t`'s work to the queue; `waiting` is written once it is
    /// merged.
    pub fn enqueue(&mut self, t: usize, id: &str, worktree: &Prepared, waiting: Waiting) {
        self.queue.push(merge::Request {
            t,
            id: id.to_owned(),
            worktree: worktree.path.clone(),
            branch: worktree.branch.clone(),
            base: worktree.base.clone(),
        });
        self.waiting.insert(t, waiting);
    }

    /// The waiting task `t`, now that the queue is done with it.
    pub fn take(&mut self, t: usize) -> Option<Waiting> {
        self.waiting.remove(&t)
    }

    /// Whether task `t`'s work waits in the queue.
    pub fn holds(&self, t: usize) -> bool {
        self.waiting.contains_key(&t)
    }

    /// The agent slot task `t`'s work in the queue ran in.
    pub fn agent_of(&self, t: usize) -> Option<AgentSlot> {
        self.waiting
            .get(&t)
            .and_then(|waiting| waiting.status.agent_id)
    }

    /// The tasks whose work waits in the queue.
    pub fn queued(&self) -> Vec<usize> {
        self.waiting.keys().copied().collect()
    }

    /// The run stops: a merge waiting for a person gives up.
    pub fn stop(&self) {
        self.queue.stop();
    }

    /// The run ends at once: the merge going on is cut short, and what
    /// waits is left for the next run.
    pub fn cut(&self) {
        self.queue.cut();
    }

    /// The queue stopped: it merges nothing more in this run.
    pub fn stopped(&mut self) {
        self.stopped = true;
    }

    /// Whether the queue stopped: work sent to it now waits for the next
    /// run (and so does what `writes` the same files).
    pub fn merges_no_more(&self) -> bool {
        self.stopped
    }

    /// Nothing more is merged in this run: no work waits in the queue, or
    /// the queue stopped.
    pub fn idle(&self) -> bool {
        self.waiting.is_empty() || self.stopped
    }

    /// The tasks the stopped queue leaves for the next run.
    pub fn left(&self) -> Vec<usize> {
        let mut left = if self.stopped {
            self.queued()
        } else {
            Vec::new()
        };
        left.sort_unstable();
        left
    }

    /// For `worktrees.remove_merged`, at a run's end: the task worktrees
    /// and branches whose work is merged removed, as `clean` removes them
    /// (what it would say of those it keeps, `clean --dry-run` says), until
    /// `stopped`; `removing` told as the first removal begins.
    pub fn remove_merged(
        &self,
        layout: &Layout,
        stopped: &mut dyn FnMut() -> bool,
        removing: &mut dyn FnMut(),
    ) -> Result<Option<Swept>> {
        let (repo, settings) = (&self.worktrees.repo, &self.worktrees.settings);
        let how = cleaning::How {
            dry_run: false,
            cut_short: &[],
            completed_only: true,
        };
        cleaning::sweep(layout, repo, settings, &how, &mut |_| {}, stopped, removing)
    }
}

/// The command, ready to paste, that merges the person's work into the
/// integration branch in its worktree: `worktrees.base` when it names a
/// branch, else the branch checked out (`HEAD`), unless that is a task's
/// (whose work goes through the queue) or none. A branch a tag shares the
/// name of is named in full: git takes the tag first.
fn merge_command(
    repo: &Repo,
    integration_dir: &Utf8Path,
    base: &str,
    checked_out: Option<&str>,
) -> String {
    let task_branch = |b: &str| b.starts_with(&format!("{TASK_BRANCHES}/"));
    let branch = |name: &str| {
        let tagged = matches!(repo.commit_of(&format!("refs/tags/{name}")), Ok(Some(_)));
        let full = tagged && matches!(repo.branch_commit(name), Ok(Some(_)));
        shell_word(&if full {
            branch_ref(name)
        } else {
            name.to_owned()
        })
    };
    let yours = match (base, checked_out) {
        ("HEAD", Some(name)) if !task_branch(name) => branch(name),
        ("HEAD", _) => "<your branch>".to_owned(),
        (base, _) => branch(base),
    };
    format!(
        "`git -C {} merge {yours}`",
        shell_word(integration_dir.as_str())
    )
}
