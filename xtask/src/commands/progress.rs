//! `progress`: the dashboard per phase, read from the status files alone
//! (no lock, no task parsing), as text or as one JSON document.

use anyhow::Result;

use crate::agent::terminal::escaped;
use crate::model::config::Config;
use std::collections::{HashMap, HashSet};

use crate::model::definitions::{self, Definitions};
use crate::model::discovery::Discovery;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::model::task::{self, phase_key, Task};
use crate::run::admission::Admission;
use crate::run::budget::Budget;
use crate::run::order::{self, seconds_until, Left};
use crate::run::plan;
use crate::run::unseen::{EndedUnseen, SlurmEnds};
use crate::state::status::State;
use crate::state::{durations, fingerprint, lock, logs, outputs, runs, status};
use crate::sys::parallel;
use crate::ui::progress::{
    paused_pools, Attempt, BudgetLine, Builder, Progress, Seen, TaskLine, Usage,
};
use crate::ui::progress_text;
use crate::ui::{format, live};

pub fn run(layout: &Layout, json: bool, tasks: bool) -> Result<i32> {
    // The statuses (and logs) are read while the definitions load: neither
    // needs the other, and with 100,000 tasks each takes most of a second.
    let (read, defs) = crate::sys::parallel::both(
        || Read::statuses(layout, json || tasks),
        || definitions::load(layout),
    );
    let mut progress = read.progress(layout, defs.as_ref().ok());
    progress.run_going_on = lock::run_going_on(layout).is_some();
    match defs {
        Ok(defs) => {
            set_eta(&defs, &mut progress);
            progress.warnings.extend(defs.durations.unread.clone());
            // Freed with the process: taking 100,000 tasks apart one by one
            // would only make the command end later.
            std::mem::forget(defs);
        }
        Err(invalid) => {
            progress.problems = invalid.problems.iter().map(|p| p.to_string()).collect();
        }
    }
    if json || tasks {
        mark_branches_removed(layout, &mut progress.tasks);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&progress)?);
    } else if tasks {
        progress_text::print_tasks(&progress);
    } else {
        progress_text::print(&progress, &layout.cmd("progress --tasks"));
    }
    Ok(if progress.problems.is_empty() {
        crate::exit::SUCCESS
    } else {
        crate::exit::INVALID
    })
}

/// Marks the task lines whose branch is gone from the repository since
/// (one listing of its branches), as `why` says it.
fn mark_branches_removed(layout: &Layout, tasks: &mut [TaskLine]) {
    let named = tasks.iter().filter_map(|line| line.branch.as_deref());
    let gone = crate::git::repo::branches_gone(layout, named);
    for line in tasks.iter_mut() {
        line.branch_removed = line.branch.as_ref().is_some_and(|b| gone.contains(b));
    }
}

/// `progress --watch`: the live view of a run started elsewhere, with its
/// expected end as the run's own view shows it (from the definitions read
/// once: tasks added since count once they have a status).
pub fn watch(layout: &Layout) -> ! {
    let defs = definitions::load(layout).ok();
    live::watch(layout, || {
        let mut progress = Read::statuses(layout, false).progress(layout, defs.as_ref());
        progress.run_going_on = lock::run_going_on(layout).is_some();
        if let Some(defs) = &defs {
            set_eta(defs, &mut progress);
        }
        progress
    })
}

/// What the dashboard is made of: each task file's status, read on every
/// CPU (while the definitions load, in `run`).
struct Read {
    ids: Vec<String>,
    tasks: Vec<ReadTask>,
}

struct ReadTask {
    seen: Seen,
    attempt: Attempt,
    usage: Usage,
    /// Its status, recorded running.
    running: Option<status::Status>,
    /// Its attempt, recorded running, that ended unseen: what its agent
    /// printed counts.
    unseen: Option<EndedUnseen>,
    link: status::Link,
    /// A completed task's files, but its task file, judged.
    unjudged: Option<fingerprint::Unjudged>,
    error: Option<status::ReadError>,
    /// The last line of its log, when asked for and it has run.
    last_log_line: Option<String>,
}

/// Marks the running tasks whose attempt ended unseen (one look at Slurm
/// for those on Slurm, only then).
fn mark_ended_unseen(layout: &Layout, tasks: &mut [ReadTask]) {
    let slurm = SlurmEnds::look(layout, tasks.iter().filter_map(|t| t.running.as_ref()));
    for task in tasks {
        task.unseen = (task.running.as_ref()).and_then(|s| EndedUnseen::of(layout, s, &slurm));
        if let Some(unseen) = &task.unseen {
            task.seen.ended_unseen(unseen);
        }
    }
}

impl Read {
    /// The statuses of the task files found, and the last lines of their
    /// logs (`log_lines`: every task that has run has one).
    fn statuses(layout: &Layout, log_lines: bool) -> Read {
        let files = Discovery::scan(&layout.tasks).files;
        let ids: Vec<String> = files
            .iter()
            .filter_map(|file| layout.task_id(file))
            .filter(|id| id.contains('/'))
            // An invalid file's name (its problem says so) is shown, not
            // acted on by the terminal; no valid id changes.
            .map(|id| escaped(id, &[]).into_owned())
            .collect();
        let unfinished_run = runs::unfinished(layout);
        let mut tasks = parallel::map(&ids, |id| {
            let status = status::read(layout, id);
            let found = status.as_ref().ok().and_then(Option::as_ref);
            let attempt = Attempt::of(found);
            let ran = log_lines && attempt.number > 0;
            ReadTask {
                seen: Seen::of(found),
                usage: Usage::of(found),
                running: found.filter(|s| s.status == State::Running).cloned(),
                unseen: None,
                link: status::Link::of(found, unfinished_run.as_deref()),
                unjudged: (found.filter(|s| s.status == State::Completed))
                    .and_then(|s| s.fingerprint.as_ref())
                    .map(|fingerprint| fingerprint::Unjudged::of(layout, fingerprint, id)),
                // A log with no line has none: left out, as a field that
                // does not apply is.
                last_log_line: ran
                    .then(|| logs::last_line(&layout.log_file(id)))
                    .filter(|line| !line.is_empty()),
                attempt,
                error: status.err(),
            }
        });
        mark_ended_unseen(layout, &mut tasks);
        Read { ids, tasks }
    }

    /// The dashboard; a task recorded blocked shows blocked while a
    /// failure in the graph of `defs` blocks it (`status::shown_blocker`),
    /// or, without the graph (task files that do not load, or added since
    /// `--watch` read them), while what its status names is failed. A task
    /// shown pending, or paused, that a rate limit's pause holds is paused
    /// until when it holds it, in its pool, as `next` reads it
    /// (`plan::pauses`; without the definitions, as its status says).
    fn progress(self, layout: &Layout, defs: Option<&Definitions>) -> Progress {
        let graph = defs.map(|defs| &defs.graph);
        let config = Config::load(&layout.config_file()).unwrap_or_default();
        let mut builder = Builder::new();
        let mut warnings = Vec::new();
        // The attempts that ended unseen, with what their agents reported.
        let mut ended_unseen = Vec::new();
        let on = (self.tasks.iter()).any(|task| matches!(task.seen, Seen::Paused { .. }));
        let pauses = defs.map_or(Vec::new(), |defs| plan::pauses(defs, on));
        let blockers = self.blockers(graph);
        let tasks = self.ids.iter().zip(self.tasks).zip(blockers);
        for (n, ((id, task), blocker)) in tasks.enumerate() {
            warnings.extend(task.error.map(|e| e.to_string()));
            let seen = match (task.seen, blocker) {
                (Seen::Blocked { .. }, None) => Seen::Pending,
                (Seen::Blocked { again, .. }, Some(by)) => Seen::Blocked { by, again },
                (seen, _) => seen,
            };
            let index = || graph?.get_guessing(id, n);
            let seen = match (seen, index().and_then(|t| pauses.get(t)?.as_ref())) {
                (Seen::Pending, Some(pause)) => Seen::held_by(pause.clone(), None),
                (Seen::Paused { error, .. }, Some(pause)) => Seen::held_by(pause.clone(), error),
                (seen, _) => seen,
            };
            // Its task file judged as the definitions read it (no second
            // `stat` of it), or by a `stat` without them.
            let read = || Some(&graph?.tasks[index()?]);
            let stale = (task.unjudged).and_then(|unjudged| unjudged.changed(layout, read(), id));
            let seen = seen.stale_because(stale);
            let seen = match (seen, read()) {
                (Seen::AwaitingApproval { ran: true, .. }, Some(task))
                    if status::outputs_gone(layout, task) =>
                {
                    Seen::Pending
                }
                (seen, _) => seen,
            };
            // Read once, for its line and the budget.
            let unseen = match (task.unseen, &task.running, read()) {
                (Some(unseen), Some(status), Some(defined)) => {
                    let unseen = unseen.with_report(layout, &config, defined, status);
                    unseen.report.map(|report| (status.clone(), report))
                }
                _ => None,
            };
            let usage = match &unseen {
                Some((status, report)) => Usage::with_report(status, Some(report)),
                None => task.usage,
            };
            ended_unseen.extend(unseen);
            builder.add(task::phase_of(id), id, seen, task.attempt, usage);
            if let Some(line) = task.last_log_line {
                builder.set_last_log_line(line);
            }
        }
        let missing = |phase: &str| {
            outputs::missing_artifacts(layout, &config.phase(phase_key(phase)).requires)
        };
        warnings.extend(unlisted_running(layout, &self.ids));
        let mut progress = builder.finish(config.title(layout), missing, warnings);
        let budget = Budget::load(layout, config.agents.budget_usd);
        let budget = match graph {
            // What the attempts that ended unseen cost too, as the next
            // run counts it.
            Some(graph) => {
                let unseen = ended_unseen.iter().map(|(s, report)| (s, Some(report)));
                budget.with_unseen(layout, &config, graph, unseen)
            }
            None => budget,
        };
        progress.warnings.extend(budget.skipped_warning(layout));
        if let (Some(usd), Some(left_usd)) = (budget.usd, budget.left()) {
            progress.budget = Some(BudgetLine {
                usd,
                spent_usd: format::cost_sum(budget.spent),
                left_usd: format::cost_sum(left_usd),
            });
        }
        progress
    }

    /// For each task recorded blocked, what it shows blocked by, or
    /// `None`: pending (`status::shown_blocker`); `None` for the others.
    fn blockers(&self, graph: Option<&Graph>) -> Vec<Option<Option<String>>> {
        // Only a task not kept blocked asks what fails upstream now.
        let unkept = status::Link::Blocked { kept: false };
        let asked = self.tasks.iter().any(|task| task.link == unkept);
        let index: HashMap<&str, usize> = (self.ids.iter().enumerate())
            .filter(|_| asked)
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let link_of = |id: &str| index.get(id).map(|&i| self.tasks[i].link);
        let failed = |id: &str| link_of(id) == Some(status::Link::Failed);
        // The graph's tasks without a status file found are yet to run.
        let now: Vec<Option<usize>> = match graph.filter(|_| asked) {
            Some(graph) => {
                let links: Vec<status::Link> = (graph.tasks.iter())
                    .map(|task| link_of(&task.id).unwrap_or(status::Link::Unrun))
                    .collect();
                let recorded =
                    |t: usize| match &self.tasks[*index.get(graph.tasks[t].id.as_str())?].seen {
                        Seen::Blocked { by: Some(by), .. } => graph.get(by),
                        _ => None,
                    };
                status::blocked_now(graph, &links, recorded)
            }
            None => Vec::new(),
        };
        // `None` for a task the graph does not know.
        let now_of = |id: &str| {
            let (graph, t) = graph.and_then(|graph| Some((graph, graph.get(id)?)))?;
            Some(now[t].map(|f| graph.tasks[f].id.as_str()))
        };
        (self.ids.iter().zip(&self.tasks))
            .map(|(id, task)| {
                let (status::Link::Blocked { kept }, Seen::Blocked { by, .. }) =
                    (task.link, &task.seen)
                else {
                    return None;
                };
                let by = by.as_deref();
                // Not in the graph: blocked while what it names is failed.
                let now = match kept {
                    true => None,
                    false => now_of(id).unwrap_or_else(|| by.filter(|by| failed(by))),
                };
                status::shown_blocker(kept, by, now).map(|by| by.map(str::to_owned))
            })
            .collect()
    }
}

/// What is said of each task recorded running whose task file is gone
/// (not in `ids`): see `run::unlisted::said`.
fn unlisted_running(layout: &Layout, ids: &[String]) -> Vec<String> {
    let known = std::cell::OnceCell::new();
    let known = |id: &str| {
        let ids: &HashSet<&str> = known.get_or_init(|| ids.iter().map(String::as_str).collect());
        ids.contains(id)
    };
    crate::run::unlisted::said(layout, known)
}

/// The expected end of the work left, from what each task is expected to
/// take and how far the running ones are (see `run::order`).
fn set_eta(defs: &Definitions, progress: &mut Progress) {
    let graph = &defs.graph;
    // Each graph task's line, found without hashing when the lines are
    // in the graph's order (`Graph::get_guessing`).
    let mut line_of: Vec<Option<&TaskLine>> = vec![None; graph.tasks.len()];
    for (n, line) in progress.tasks.iter().enumerate() {
        if let Some(t) = graph.get_guessing(&line.task_id, n) {
            line_of[t] = Some(line);
        }
    }
    let gone: HashSet<&str> = (progress.phases.iter())
        .flat_map(|phase| &phase.running_tasks)
        .filter(|task| !task.alive)
        .map(|task| task.task_id.as_str())
        .collect();
    // Waiting in Slurm's queue: none of it has run yet (its time counted
    // from its submission had it run past what it is expected to take).
    let queued: HashSet<&str> = (progress.phases.iter())
        .flat_map(|phase| &phase.running_tasks)
        .filter(|task| task.queued)
        .map(|task| task.task_id.as_str())
        .collect();
    // Its result awaits approval: it ran, nothing of it is left to run.
    let ran: HashSet<&str> = (progress.phases.iter())
        .flat_map(|phase| &phase.awaiting_approval_tasks)
        .filter(|task| task.result)
        .map(|task| task.task_id.as_str())
        .collect();
    // With the budget reached, nothing new starts: only the running end.
    let starts = progress.budget.as_ref().is_none_or(|b| b.left_usd > 0.0);
    let to_start = |left: Left| if starts { left } else { Left::Nothing };
    // A run of a phase or of some tasks (`--phase`, `--task`), going on
    // (its orchestrator holds the lock), ends with them: its live view
    // says the same.
    let unfinished = runs::last(&defs.layout).filter(|run| !run.finished);
    let run = unfinished.as_ref().filter(|_| progress.run_going_on);
    let selected = |task: &Task| {
        run.as_ref()
            .is_none_or(|r| r.selects(&task.id, task.phase()))
    };
    // A failed task whose retry a run owes (the one going on, the one that
    // resumes a stopped run, or a new one) runs again, and so does what
    // it blocked.
    let unfinished = unfinished.as_ref().map(|run| run.id.as_str());
    let retried: HashSet<&str> = (progress.tasks.iter())
        .filter(|line| {
            let Some(retry) = &line.retry else {
                return false;
            };
            let retries = graph.get(&line.task_id).map(|t| graph.tasks[t].retries);
            retries.is_some_and(|retries| retry.taken_up(retries, retry.written_by(unfinished)))
        })
        .map(|line| line.task_id.as_str())
        .collect();
    let unblocked =
        |line: &TaskLine| (line.blocked_by.as_deref()).is_some_and(|by| retried.contains(by));
    let never = crate::run::plan::never_starting(&defs.layout, &defs.config, graph);
    // Each pool a rate limit pauses, until when (its paused tasks say):
    // its other tasks wait for it too.
    let pool_paused = paused_pools(progress.tasks.iter().filter_map(|line| {
        let until = line
            .rate_limited_until
            .as_deref()
            .and_then(status::parse_timestamp);
        Some((line.pool.as_deref()?, until?))
    }));
    let pending = |t: usize| {
        let pool = graph.tasks[t].counts_in_pool(&defs.config);
        match pool.and_then(|pool| pool_paused.get(pool)) {
            Some(until) => Left::Paused(seconds_until(*until)),
            None => Left::All,
        }
    };
    let left: Vec<Left> = graph
        .tasks
        .iter()
        .enumerate()
        .map(|(t, task)| {
            // What is left to start of it: nothing while it waits for an
            // input no task produces.
            let start = |left: Left| match never.contains(&t) {
                true => Left::Nothing,
                false => to_start(left),
            };
            match line_of[t] {
                _ if !selected(task) => Left::Nothing,
                Some(line) => match line.state {
                    // Its process has ended: only the merge is left, no work.
                    "merging" => Left::Nothing,
                    // Gone with no one to record its end: the next run records
                    // it, or runs it again.
                    "running" if gone.contains(line.task_id.as_str()) => start(Left::All),
                    "running" if queued.contains(line.task_id.as_str()) => Left::All,
                    "running" => Left::Running(line.elapsed_seconds.unwrap_or(0) as f64),
                    "pending" => start(pending(t)),
                    "paused" => {
                        let until = line.rate_limited_until.as_deref();
                        let until = until.and_then(status::parse_timestamp);
                        start(Left::Paused(until.map_or(0.0, seconds_until)))
                    }
                    "awaiting_approval" if !ran.contains(line.task_id.as_str()) => start(Left::All),
                    "failed" if retried.contains(line.task_id.as_str()) => start(pending(t)),
                    "blocked" if unblocked(line) => start(pending(t)),
                    _ => Left::Nothing,
                },
                None => start(pending(t)),
            }
        })
        .collect();
    // A finished run: no order to work out.
    if left.iter().all(|l| *l == Left::Nothing) {
        return;
    }
    // The expected durations only, not the order (what is left is in
    // `left`), from what completed tasks took as their statuses say (a run
    // going on, or killed, has not written it to history.json yet), else
    // as kept there.
    let kept = order::kept(graph, &defs.durations);
    let expected = order::expected(graph, |t| {
        let line = line_of[t];
        (line.filter(|l| matches!(l.state, "completed" | "stale")))
            .and_then(|l| l.duration_seconds)
            .filter(|&seconds| durations::plausible(seconds))
            .or_else(|| kept(t))
    });
    // The limits of the run going on (its `-j`, its `--executor`), else
    // the configured ones; each pool as rate limits left it, as a run
    // takes it up.
    let jobs = run.and_then(|run| run.jobs);
    let executor = run
        .and_then(|run| run.executor)
        .unwrap_or(defs.config.executor);
    let mut admission = Admission::new(&defs.config, jobs, executor);
    if let Ok(saved) = crate::state::pools::read(&defs.layout) {
        admission.restore_pools(graph, &saved);
    }
    let longest = order::longest(graph, &defs.config);
    progress.set_eta(order::remaining(graph, &expected, &left, &longest, |own| {
        admission.spread(graph, own)
    }));
}
