//! The end of a run: what it tells, gathered from the run, then a line of
//! counts, every failed, blocked and waiting task with why, and the exit
//! code.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::exit;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::run::history::Past;
use crate::run::load::Invalid;
use crate::run::readiness::{Node, Readiness};
use crate::run::{approvals, plan, Mode, Run, Stop};
use crate::state::status;
use crate::ui::format;
use crate::ui::printer::{Printer, Tone};

/// What the summary tells.
pub struct Outcome<'a> {
    pub layout: &'a Layout,
    pub graph: &'a Graph,
    pub readiness: &'a Readiness,
    pub history: &'a [Past],
    /// The tasks the run selected.
    pub selected: Vec<usize>,
    /// Each selected task that waits, with why; one whose status says
    /// failed while its retry waits (`Past::failed_until_retried`) is
    /// failed, as `progress` says.
    pub not_started: Vec<(usize, String)>,
    /// The problems of task files found invalid during the run.
    pub invalid: &'a [Invalid],
    pub stop: Option<&'a Stop>,
    pub elapsed: Duration,
    /// What the run's attempts cost, when any reported a cost.
    pub cost: Option<f64>,
    /// The run's agent attempts whose cost `cost` leaves out (none
    /// reported, or one refused).
    pub uncounted: usize,
    /// The budget, when it is reached.
    pub budget_reached: Option<String>,
    /// Tasks awaiting approval: each with whether it ran (its result
    /// awaits it) and what is to be done: the command that gives it, or
    /// that the next run acts on one given already.
    pub awaiting: Vec<(usize, bool, String)>,
    /// A `monitor`'s: the tasks it did not wait for and not completed, for
    /// the next run (its exit code is of those it waited for).
    pub left_for_next: Vec<String>,
    /// Tasks whose work a stopped merge queue left for the next run.
    pub left_to_merge: Vec<usize>,
    /// Why the queue stopped, when a merge could not be done.
    pub queue_broken: Option<String>,
    /// Tasks a killed run left running whose files are gone, whose end
    /// the run recorded (failed), each with its error (`run::unlisted`):
    /// failures it waited for, though no task of its graph.
    pub unlisted_ended: &'a [(String, String)],
    /// What was said of each task worktree removed at the run's end.
    pub worktrees_removed: &'a [String],
    /// How many tasks' worktrees stay in the repository, when the run
    /// used any.
    pub worktrees_kept: usize,
    /// `worktrees.remove_merged`: the run's end removes the merged ones.
    pub removes_merged: bool,
    /// The command that goes on after a stop: the run's, what it selected
    /// selected again (a plain `orchestrate` would start everything else),
    /// on its executor (`Run::go_on`).
    pub go_on: String,
}

impl Run<'_> {
    /// For a `monitor` (which waits for the tasks recorded as running
    /// only): the other tasks not completed, left for the next run.
    fn left_for_next(&self) -> Vec<String> {
        if self.mode != Mode::Monitor {
            return Vec::new();
        }
        (self.graph.tasks.iter())
            .filter(|task| !self.options.selects(task))
            .filter(|task| {
                status::state_of(self.layout, &task.id) != Some(status::State::Completed)
            })
            .map(|task| task.id.clone())
            .collect()
    }

    /// The command that goes on after a stop: the run's again, on its
    /// executor; a `monitor`'s is a plain `orchestrate` (it selects only
    /// what a killed run left running: the rest is left for that run, as
    /// its `Left for the next` says).
    fn go_on(&self) -> String {
        let args = match self.mode {
            Mode::Monitor => String::new(),
            Mode::Launch => self.options.args_again(self.config.executor),
        };
        self.layout.cmd(&format!("orchestrate{args}"))
    }

    /// Prints the end-of-run summary; returns the exit code.
    /// `removed`: what was said of each task worktree the run's end
    /// removed (`worktrees.remove_merged`).
    pub(super) fn summary(&mut self, removed: &[String]) -> i32 {
        let running = self.running.tasks();
        // Its own pause, or, ready, its pool's (another task's limit), as
        // the views and `next` have it.
        let now = std::time::SystemTime::now();
        let (layout, config, graph) = (self.layout, self.config, &self.graph);
        let paused: Vec<usize> = (0..self.graph.tasks.len())
            .filter(|&t| {
                let ready =
                    || approvals::ready_for_no_one(layout, config, graph, &self.readiness, t);
                self.history[t].paused.is_some()
                    || (self.admission)
                        .holding_pause(graph, t, None, ready, now)
                        .is_some()
            })
            .collect();
        let retries: Vec<usize> = (0..self.graph.tasks.len())
            .filter(|&t| self.history[t].failed_until_retried())
            .collect();
        let waits = plan::Waits {
            layout: self.layout,
            config: self.config,
            graph: &self.graph,
            readiness: &self.readiness,
            admission: &self.admission,
            running: &running,
            planned: &[],
            budget: self.budget.reached().then(|| self.budget.reached_message()),
            agents_held: None,
            stopped: match (&self.stop, self.mode) {
                (Some(_), _) => Some("the run was stopped"),
                (None, Mode::Monitor) => Some(super::MONITOR_STARTS_NOTHING),
                (None, Mode::Launch) => None,
            },
            paused: &paused,
            retries: &retries,
            refused: false,
            removed: Some(&self.removed),
        };
        let outcome = Outcome {
            layout: self.layout,
            graph: &self.graph,
            readiness: &self.readiness,
            history: &self.history,
            selected: (0..self.graph.tasks.len())
                .filter(|&t| self.options.selects(&self.graph.tasks[t]))
                .filter(|t| !self.removed.contains(t))
                .collect(),
            not_started: plan::waiting(&waits),
            invalid: &self.invalid,
            stop: self.stop.as_ref(),
            elapsed: self.begun.elapsed(),
            cost: self.budget.this_run,
            uncounted: self.budget.uncounted,
            awaiting: self
                .awaiting
                .iter()
                .filter(|(&t, _)| self.wants_decided(t))
                .map(|(&t, &ran)| {
                    let task = &self.graph.tasks[t];
                    // Given for its file as edited after this run read it:
                    // no one is to approve it again.
                    let next = crate::state::approvals::revoked(self.layout, task)
                        .filter(|revoked| revoked.for_the_next_run);
                    let then = match next {
                        Some(revoked) => format!(
                            "approved by {} for {} as edited after this run read it: the next `{}` acts on it",
                            revoked.approval.by,
                            self.layout.display(&task.file),
                            self.layout.cmd("orchestrate")
                        ),
                        None => format!("`{}`", self.layout.task_cmd("approve", &task.id)),
                    };
                    (t, ran, then)
                })
                .collect(),
            budget_reached: self.budget.reached().then(|| self.budget.reached_message()),
            left_for_next: self.left_for_next(),
            left_to_merge: self.git.as_ref().map_or(Vec::new(), |git| git.left()),
            queue_broken: self.git.as_ref().and_then(|git| git.broken.clone()),
            unlisted_ended: &self.unlisted_ended,
            worktrees_removed: removed,
            worktrees_kept: (self.git.as_ref())
                .and_then(|git| git.worktrees.tasks_kept().ok())
                .unwrap_or(0),
            removes_merged: self.config.worktrees.remove_merged,
            go_on: self.go_on(),
        };
        print(&mut self.printer, &outcome)
    }
}

impl Run<'_> {
    /// Whether the summary names task `t`, awaiting approval: selected, or
    /// waited on by a selected task not completed (a result from before,
    /// which the run takes up whatever it selects, and nothing it selects
    /// needs, is not this run's: its exit was 4 with every selected task
    /// completed).
    fn wants_decided(&self, t: usize) -> bool {
        if self.options.selects(&self.graph.tasks[t]) {
            return true;
        }
        let mut seen = HashSet::from([t]);
        let mut queue = vec![t];
        while let Some(t) = queue.pop() {
            for d in self.graph.waiting_on(t) {
                if !seen.insert(d) {
                    continue;
                }
                if self.options.selects(&self.graph.tasks[d])
                    && self.readiness.node(d) != Node::Completed
                {
                    return true;
                }
                queue.push(d);
            }
        }
        false
    }
}

/// How many tasks of each kind (failed, blocked, waiting) the summary
/// names, each on a line.
const LISTED: usize = 20;

/// Prints the summary; returns the run's exit code.
pub fn print(printer: &mut Printer, o: &Outcome) -> i32 {
    printer.finish();
    let count = |node: Node| {
        o.selected
            .iter()
            .filter(|&&t| o.readiness.node(t) == node)
            .count()
    };
    let retried = |t: &usize| o.history[*t].failed_until_retried();
    let held_retries = o.not_started.iter().filter(|(t, _)| retried(t)).count();
    let (completed, failed, blocked) = (
        count(Node::Completed),
        count(Node::Failed) + held_retries + o.unlisted_ended.len(),
        count(Node::Blocked),
    );
    let left_to_merge = o.left_to_merge.len();
    let clean =
        failed + blocked + o.not_started.len() + o.invalid.len() + o.awaiting.len() + left_to_merge
            == 0;
    printer.note(Tone::Plain, "");
    printer.line(
        if clean { Tone::Good } else { Tone::Bad },
        &format!(
            "Summary: {completed} completed, {}{failed} failed, {blocked} blocked, {}{} not started{} ({}{})",
            match left_to_merge {
                0 => String::new(),
                n => format!("{n} left to merge, "),
            },
            match o.awaiting.len() {
                0 => String::new(),
                n => format!("{n} awaiting approval, "),
            },
            o.not_started.len() - held_retries,
            match invalid_files(o.invalid) {
                0 => String::new(),
                n => format!(", {}", format::counted(n, "invalid task file", "invalid task files")),
            },
            format::duration(o.elapsed),
            spent(o.cost, o.uncounted),
        ),
    );
    let waiting: HashMap<usize, &str> = o
        .not_started
        .iter()
        .map(|(t, why)| (*t, why.as_str()))
        .collect();
    // Each kind's first lines: thousands of tasks blocked by one failure
    // scrolled the summary's first line, and the failures, away.
    let (mut failed_said, mut blocked_said) = (0, 0);
    for &t in &o.selected {
        let id = &o.graph.tasks[t].id;
        let failure = match o.readiness.node(t) {
            Node::Failed => Some(failed_line(o, t, o.history[t].error.as_deref())),
            _ if retried(&t) && waiting.contains_key(&t) => {
                // Why it failed, as its status says (a rate limit, which
                // a retry is not told of, too).
                let told = o.history[t].previous.as_ref().map(|p| p.error.as_str());
                let error = o.history[t].error.as_deref().or(told);
                Some(format!("{}; {}", failed_line(o, t, error), waiting[&t]))
            }
            Node::Blocked => {
                blocked_said += 1;
                if blocked_said <= LISTED {
                    printer.plain(&format!(
                        "  blocked  {id}: blocked by {}",
                        o.readiness
                            .blocked_by(t)
                            .map_or("?", |b| o.graph.tasks[b].id.as_str())
                    ));
                }
                None
            }
            _ => None,
        };
        if let Some(line) = failure {
            failed_said += 1;
            if failed_said <= LISTED {
                printer.plain(&line);
            }
        }
    }
    let every = o.layout.cmd("progress --tasks");
    for (said, what) in [(failed_said, "failed"), (blocked_said, "blocked")] {
        if let Some(more) = format::more_listed(said, LISTED, what, &every) {
            printer.plain(&format!("  ... {more}"));
        }
    }
    for (id, error) in o.unlisted_ended {
        printer.plain(&failed_id_line(o, id, Some(error)));
    }
    for &t in &o.left_to_merge {
        printer.plain(&format!(
            "  merging  {}: left in the merge queue: the next `{}` merges it (its agent does not run again)",
            o.graph.tasks[t].id,
            o.layout.cmd("orchestrate")
        ));
    }
    if let Some(why) = &o.queue_broken {
        printer.plain(&format!(
            "The merge queue stopped: {why}: fix that first (`reset TASK` runs a task's agent again instead)"
        ));
    }
    for (t, ran, then) in &o.awaiting {
        let what = if *ran {
            "its result awaits approval"
        } else {
            "awaits approval to start"
        };
        printer.plain(&format!(
            "  awaiting {}: {what}: {then}",
            o.graph.tasks[*t].id
        ));
    }
    let waiting: Vec<_> = o.not_started.iter().filter(|(t, _)| !retried(t)).collect();
    for (t, why) in waiting.iter().take(LISTED) {
        printer.plain(&format!("  waiting  {}: {why}", o.graph.tasks[*t].id));
    }
    if let Some(more) = format::more_listed(waiting.len(), LISTED, "waiting", &every) {
        printer.plain(&format!("  ... {more}"));
    }
    for problem in o.invalid {
        printer.plain(&format!("  invalid  {}", problem.said));
    }
    if !o.left_for_next.is_empty() {
        const SHOWN: usize = 5;
        let more = o.left_for_next.len().saturating_sub(SHOWN);
        let named = o.left_for_next[..o.left_for_next.len().min(SHOWN)].join(", ");
        printer.plain(&format!(
            "Left for the next `{}`: {} not completed ({named}{})",
            o.layout.cmd("orchestrate"),
            format::counted(o.left_for_next.len(), "task", "tasks"),
            match more {
                0 => String::new(),
                n => format!(" and {n} more"),
            }
        ));
    }
    if !o.worktrees_removed.is_empty() {
        printer
            .plain("Task worktrees whose work is merged, removed (worktrees.remove_merged: true):");
        for said in o.worktrees_removed.iter().take(LISTED) {
            printer.plain(&format!("  {said}"));
        }
        // Gone: no command lists them after.
        if let Some(more) = o.worktrees_removed.len().checked_sub(LISTED + 1) {
            printer.plain(&format!("  ... and {} more", more + 1));
        }
    }
    if o.worktrees_kept > 0 {
        // Piled up unseen, they were the first complaint about agent
        // runners: the key that removes them as each run ends is named.
        let at_each_end = match o.removes_merged {
            true => "",
            false => "; `worktrees.remove_merged: true` removes them as each run ends",
        };
        printer.plain(&format!(
            "{} kept in {}: `{}` removes those whose work is merged, and lists the rest (`--dry-run` first to see){at_each_end}",
            format::counted(o.worktrees_kept, "task worktree", "task worktrees"),
            o.layout.display(&o.layout.worktrees()),
            o.layout.cmd("clean")
        ));
    }
    match o.stop {
        Some(Stop::Signal(signal)) => {
            printer.plain(&how_to_go_on(o));
            return 128 + signal;
        }
        Some(Stop::Fatal(error)) => {
            printer.line(Tone::Bad, &format!("error: {error}"));
            return exit::TASK_FAILED;
        }
        None => {}
    }
    let done = completed == o.selected.len();
    if let Some(budget) = o.budget_reached.as_ref().filter(|_| !done) {
        printer.line(
            Tone::Bad,
            &format!(
                "{budget}: nothing more starts until budget.usd in {} is raised",
                o.layout.display(&o.layout.config_file())
            ),
        );
        // Exit 3 says the budget left work undone; when everything ran
        // (and some failed), the failures are the news. A task awaiting
        // approval to start is held by the budget too: approved, it would
        // not start (the next run says 3 of it), so exit 4 would mislead.
        let to_start = o.awaiting.iter().any(|(_, ran, _)| !ran);
        if !o.not_started.is_empty() || to_start {
            return exit::BUDGET;
        }
    }
    // Exit 4 says a person's approval is all the run waits for: not when
    // a task also could not start for a missing input, or for a task the
    // run did not select.
    let missing_input = count(Node::NeedsInputs);
    if !o.awaiting.is_empty()
        && failed + blocked + missing_input == 0
        && o.invalid.is_empty()
        && only_approvals_hold(o)
    {
        return exit::AWAITING_APPROVAL;
    }
    if done && o.invalid.is_empty() && o.unlisted_ended.is_empty() {
        exit::SUCCESS
    } else {
        exit::TASK_FAILED
    }
}

/// After a stop (Ctrl-C): that the next run goes on, and what of the
/// tasks listed `failed ... interrupted` (they look lost, and to be
/// `reset`, but their tries are spared).
fn how_to_go_on(o: &Outcome) -> String {
    // One an earlier stop interrupted, whose retry this run had not
    // started, is listed as such ("its retry ready, not started").
    let interrupted = (o.selected.iter())
        .map(|&t| &o.history[t])
        .filter(|past| past.error.as_deref() == Some(status::INTERRUPTED))
        .filter(|past| !past.failed_until_retried())
        .count();
    let again = match interrupted {
        0 => String::new(),
        n => format!(
            ", and runs again the {} this stop interrupted (not counted against {} retries)",
            format::counted(n, "task", "tasks"),
            if n == 1 { "its" } else { "their" }
        ),
    };
    format!("Stopped: the next `{}` goes on from here{again}", o.go_on)
}

/// `failed <id>: <error> (log: <its log>)`.
fn failed_line(o: &Outcome, t: usize, error: Option<&str>) -> String {
    failed_id_line(o, &o.graph.tasks[t].id, error)
}

/// `failed_line`, of task `id` (one whose file is gone too).
fn failed_id_line(o: &Outcome, id: &str, error: Option<&str>) -> String {
    let log = o.layout.log_file(id);
    let shown = if log.exists() {
        format!(" (log: {})", o.layout.display(&log))
    } else {
        String::new()
    };
    format!("  failed   {id}: {}{shown}", error.unwrap_or("failed"))
}

/// Whether every selected task that did not complete awaits approval,
/// or waits downstream of one that does through selected tasks only (one
/// not selected between them would hold it after the approval too).
fn only_approvals_hold(o: &Outcome) -> bool {
    let selected: HashSet<usize> = o.selected.iter().copied().collect();
    let mut behind: HashSet<usize> = o.awaiting.iter().map(|(t, ..)| *t).collect();
    let mut queue: Vec<usize> = behind.iter().copied().collect();
    while let Some(t) = queue.pop() {
        for d in o.graph.waiting_on(t) {
            if selected.contains(&d) && behind.insert(d) {
                queue.push(d);
            }
        }
    }
    o.selected
        .iter()
        .all(|&t| o.readiness.node(t) == Node::Completed || behind.contains(&t))
}

/// How many files the problems found during the run are in (a file may
/// have several; a problem of no one file counts as one).
fn invalid_files(invalid: &[Invalid]) -> usize {
    let files: HashSet<_> = invalid.iter().filter_map(|i| i.file.as_ref()).collect();
    files.len() + invalid.iter().filter(|i| i.file.is_none()).count()
}

/// What the run's attempts cost, for its summary's first line: a sum that
/// leaves out attempts whose cost is not known says so, lest it be read
/// as the run's whole cost. With none known, no sum is shown.
fn spent(cost: Option<f64>, uncounted: usize) -> String {
    match (cost, uncounted) {
        (None, _) => String::new(),
        (Some(c), 0) => format!(", {} spent", format::usd(c)),
        (Some(c), n) => format!(
            ", {} spent, not counting {} of unknown cost",
            format::usd(c),
            format::counted(n, "agent attempt", "agent attempts")
        ),
    }
}
