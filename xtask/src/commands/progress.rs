//! `progress`: the dashboard per phase, read from the status files alone
//! (no lock, no task parsing), as text or as one JSON document.

use anyhow::Result;

use crate::model::config::Config;
use std::collections::{HashMap, HashSet};

use crate::model::definitions::{self, Definitions};
use crate::model::discovery::Discovery;
use crate::model::layout::Layout;
use crate::model::task::{self, phase_key, Task};
use crate::run::admission::Admission;
use crate::run::budget::Budget;
use crate::run::order::{self, seconds_until, Left};
use crate::state::{durations, lock, logs, outputs, runs, status};
use crate::sys::parallel;
use crate::ui::progress::{
    paused_pools, Attempt, BudgetLine, Builder, Progress, Seen, TaskLine, Usage,
};
use crate::ui::progress_text;
use crate::ui::{format, live};

pub fn run(layout: &Layout, json: bool, tasks: bool) -> Result<i32> {
    // The statuses (and logs) are read while the definitions load: neither
    // needs the other, and with 100,000 tasks each takes most of a second.
    let (mut progress, defs) = crate::sys::parallel::both(
        || {
            let mut progress = collect(layout);
            if json || tasks {
                add_last_log_lines(layout, &mut progress);
            }
            progress
        },
        || definitions::load(layout),
    );
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
    if json {
        println!("{}", serde_json::to_string_pretty(&progress)?);
    } else if tasks {
        progress_text::print_tasks(&progress);
    } else {
        progress_text::print(&progress);
    }
    Ok(if progress.problems.is_empty() {
        crate::exit::SUCCESS
    } else {
        crate::exit::INVALID
    })
}

/// The last line of the log of every task that has run (every such task
/// has a log).
fn add_last_log_lines(layout: &Layout, progress: &mut Progress) {
    let lines = parallel::map(&progress.tasks, |task| {
        (task.attempt > 0).then(|| logs::last_line(&layout.log_file(&task.task_id)))
    });
    for (task, line) in progress.tasks.iter_mut().zip(lines) {
        task.last_log_line = line;
    }
}

/// `progress --watch`: the live view of a run started elsewhere, with its
/// expected end as the run's own view shows it (from the definitions read
/// once: tasks added since count once they have a status).
pub fn watch(layout: &Layout) -> ! {
    let defs = definitions::load(layout).ok();
    live::watch(layout, || {
        let mut progress = collect(layout);
        if let Some(defs) = &defs {
            set_eta(defs, &mut progress);
        }
        progress
    })
}

/// The dashboard, from the task files' names and the status files.
pub fn collect(layout: &Layout) -> Progress {
    let files = Discovery::scan(&layout.tasks).files;
    let config = Config::load(&layout.config_file()).unwrap_or_default();
    let mut builder = Builder::new();
    let mut warnings = Vec::new();
    let ids: Vec<&str> = files
        .iter()
        .filter_map(|file| layout.task_id(file))
        .filter(|id| id.contains('/'))
        .collect();
    let unfinished_run = runs::unfinished(layout);
    let read = parallel::map(&ids, |id| {
        let status = status::read(layout, id);
        let found = status.as_ref().ok().and_then(Option::as_ref);
        let seen = (
            Seen::now(layout, found),
            Attempt::of(found),
            Usage::of(found),
        );
        let kept = found.is_some_and(|s| status::kept_blocked(s, unfinished_run.as_deref()));
        (seen, kept, status.err())
    });
    let paused = paused_pools(
        read.iter()
            .map(|((seen, attempt, _), _, _)| (seen, attempt)),
    );
    let failed: HashSet<&str> = (ids.iter().zip(&read))
        .filter(|(_, ((seen, _, _), _, _))| matches!(seen, Seen::Failed { .. }))
        .map(|(id, _)| *id)
        .collect();
    for (id, ((seen, attempt, usage), kept, error)) in ids.iter().zip(read) {
        warnings.extend(error.map(|e| e.to_string()));
        let seen = match kept {
            true => seen,
            false => seen.blocked_only_by(&failed),
        };
        let seen = seen.in_pool(attempt.pool.as_deref(), &paused);
        builder.add(task::phase_of(id), id, seen, attempt, usage);
    }
    let missing =
        |phase: &str| outputs::missing_artifacts(layout, &config.phase(phase_key(phase)).requires);
    let mut progress = builder.finish(config.title(layout), missing, warnings);
    let budget = Budget::load(layout, config.agents.budget_usd);
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

/// The tasks that wait for an input no task produces, and what waits on
/// them: no run starts them until a person writes that file.
fn never_starting(defs: &Definitions) -> HashSet<usize> {
    let graph = &defs.graph;
    let mut never: HashSet<usize> = (0..graph.tasks.len())
        .filter(|&t| {
            (graph.tasks[t].inputs.iter()).any(|input| {
                graph.producer(input).is_none() && !outputs::input_exists(&defs.layout, input)
            })
        })
        .collect();
    let mut queue: Vec<usize> = never.iter().copied().collect();
    while let Some(t) = queue.pop() {
        for d in graph.waiting_on(t) {
            if never.insert(d) {
                queue.push(d);
            }
        }
    }
    never
}

/// The expected end of the work left, from what each task is expected to
/// take and how far the running ones are (see `run::order`).
fn set_eta(defs: &Definitions, progress: &mut Progress) {
    let graph = &defs.graph;
    let lines: HashMap<&str, &TaskLine> = progress
        .tasks
        .iter()
        .map(|line| (line.task_id.as_str(), line))
        .collect();
    let gone: HashSet<&str> = (progress.phases.iter())
        .flat_map(|phase| &phase.running_tasks)
        .filter(|task| !task.alive)
        .map(|task| task.task_id.as_str())
        .collect();
    // With the budget reached, nothing new starts: only the running end.
    let starts = progress.budget.as_ref().is_none_or(|b| b.left_usd > 0.0);
    let to_start = |left: Left| if starts { left } else { Left::Nothing };
    // A run of a phase or of some tasks (`--phase`, `--task`), going on
    // (its orchestrator holds the lock), ends with them: its live view
    // says the same.
    let going_on = lock::run_going_on(&defs.layout).is_some();
    let unfinished = runs::last(&defs.layout).filter(|run| !run.finished);
    let run = unfinished.as_ref().filter(|_| going_on);
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
            let retries = graph.get(&line.task_id).map(|t| graph.tasks[t].retries);
            match (&line.retry, retries) {
                (Some(retry), Some(retries)) => {
                    retry.taken_up(retries, retry.written_by(unfinished))
                }
                _ => false,
            }
        })
        .map(|line| line.task_id.as_str())
        .collect();
    let unblocked =
        |line: &TaskLine| (line.blocked_by.as_deref()).is_some_and(|by| retried.contains(by));
    let never = never_starting(defs);
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
            match lines.get(task.id.as_str()) {
                _ if !selected(task) => Left::Nothing,
                Some(line) => match line.state {
                    // Its process has ended: only the merge is left, no work.
                    "merging" => Left::Nothing,
                    // Gone with no one to record its end: the next run records
                    // it, or runs it again.
                    "running" if gone.contains(line.task_id.as_str()) => start(Left::All),
                    "running" => Left::Running(line.elapsed_seconds.unwrap_or(0) as f64),
                    "pending" => start(Left::All),
                    "paused" => {
                        let until = line.rate_limited_until.as_deref();
                        let until = until.and_then(status::parse_timestamp);
                        start(Left::Paused(until.map_or(0.0, seconds_until)))
                    }
                    "awaiting_approval" if line.duration_seconds.is_none() => start(Left::All),
                    "failed" if retried.contains(line.task_id.as_str()) => start(Left::All),
                    "blocked" if unblocked(line) => start(Left::All),
                    _ => Left::Nothing,
                },
                None => start(Left::All),
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
        let line = lines.get(graph.tasks[t].id.as_str());
        (line.filter(|l| matches!(l.state, "completed" | "stale")))
            .and_then(|l| l.duration_seconds)
            .filter(|&seconds| durations::plausible(seconds))
            .or_else(|| kept(t))
    });
    // The run's own `-j` is not known here: the configured limits are.
    let admission = Admission::new(&defs.config, None, defs.config.executor);
    progress.set_eta(order::remaining(graph, &expected, &left, |own| {
        admission.spread(graph, own)
    }));
}
