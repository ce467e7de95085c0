//! `block <task|phase>`: marks a task (or every task of a phase) failed by
//! hand and every task downstream blocked, as the run does when a task
//! fails; it holds across runs until `reset`. Under the workspace lock, so
//! no orchestrator writes meanwhile.

use std::time::SystemTime;

use anyhow::{bail, Result};

use crate::model::config::Config;
use crate::model::definitions;
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::run::notify::Told;
use crate::run::plan::Plan;
use crate::run::readiness::Node;
use crate::run::Options;
use crate::state::events::Event;
use crate::state::lock;
use crate::state::records;
use crate::state::status::{self, Failure, State, Status};
use crate::sys::process;
use crate::ui::format;

/// The error a task blocked with no `--reason` records.
pub const BY_HAND: &str = "blocked by hand";

pub fn run(layout: &Layout, name: &str, reason: &str) -> Result<i32> {
    let defs = definitions::load(layout)?;
    let named = defs.tasks_named(name)?;
    let graph = &defs.graph;
    let held = lock::acquire(layout)?;
    for &t in &named {
        refuse_if_running(layout, &defs.config, &graph.tasks[t])?;
    }
    let options = Options::everything(defs.config.executor);
    let mut plan = Plan::new(&defs, &options);
    // No orchestrator runs (it holds the lock): the notifiers hear of the
    // changes from here.
    let mut events = Told::open(layout, &defs.config.notify, true)?;
    let completed = |t: usize| plan.readiness().node(t) == Node::Completed;
    if named.iter().all(|&t| completed(t)) {
        let what = match graph.get(&layout.typed_id(name)) {
            Some(_) => format!("{name} is"),
            None => format!("every task of {name} is"),
        };
        bail!(
            "nothing to block: {what} completed (`{}` first)",
            layout.task_cmd("reset", name)
        );
    }
    for t in named {
        let id = &graph.tasks[t].id;
        if plan.readiness().node(t) == Node::Completed {
            println!(
                "skipped  {id}: completed (`{}` first)",
                layout.task_cmd("reset", id)
            );
            continue;
        }
        let recorded = status::read(layout, id).ok().flatten();
        let before = status::shown_state(recorded.as_ref());
        let was = recorded
            .as_ref()
            .filter(|s| s.status == State::Failed && s.held)
            .and_then(|s| s.error.clone());
        let failed = match recorded {
            // A task paused by a rate limit is held: no longer paused, and
            // what failed before the limit is what its reason names.
            Some(paused)
                if paused.status == State::Failed && paused.rate_limited_until.is_some() =>
            {
                let previous = match paused.previous.clone() {
                    Some(p) => held_previous(reason, p, paused.held),
                    // It never failed otherwise: the reason alone, and no
                    // session to resume (the limit's was refused).
                    None => Failure {
                        attempt: paused.attempt,
                        error: reason.to_owned(),
                        session_id: None,
                        thread_usage: None,
                    },
                };
                Status {
                    error: Some(previous.error.clone()),
                    held: true,
                    rate_limited_until: None,
                    rate_limited_since: None,
                    previous: Some(previous),
                    ..paused
                }
            }
            // A failed attempt keeps its record (its exit code, its times),
            // and its error stays in the reason: a retry after `reset` is
            // told what failed, not only why it was held.
            Some(attempt) if attempt.status == State::Failed => {
                let error = match failure_of(&attempt) {
                    Some(error) => held_because(reason, error),
                    None => reason.to_owned(),
                };
                // What the retry is told when the status keeps it apart
                // (`Status::previous`: with an earlier session to resume,
                // or what failed before a limit given up on) says the
                // reason too.
                let previous =
                    (attempt.previous.clone()).map(|p| held_previous(reason, p, attempt.held));
                Status {
                    error: Some(error),
                    held: true,
                    previous,
                    ..attempt
                }
            }
            recorded => {
                // Blocked, or awaiting approval to start again, after a
                // failure of its own: that failure stays what its retry
                // after `reset` is told, with the reason, as for a failed
                // attempt.
                let previous = recorded
                    .filter(|s| matches!(s.status, State::Blocked | State::AwaitingApproval))
                    .and_then(|s| s.failure_to_tell())
                    .map(|p| held_previous(reason, p, false));
                Status {
                    error: Some(previous.as_ref().map_or(reason, |p| &p.error).to_owned()),
                    held: true,
                    attempt: plan.attempt(t),
                    completed_at: Some(status::timestamp(SystemTime::now())),
                    previous,
                    ..Status::new(id, State::Failed)
                }
            }
        };
        // Held already, for the same reason: no change to tell.
        let again = was.is_some() && was == failed.error;
        if !again {
            status::write(layout, &failed)?;
        }
        let blocked = plan.hold(t);
        let ids = blocked
            .iter()
            .map(|&d| (graph.tasks[d].id.as_str(), plan.attempt(d), None));
        let froms = status::write_blocked(layout, ids, id, None, true)?;
        if !again {
            events.append(Event {
                error: failed.error.clone(),
                ..Event::change(id, before, "failed")
            })?;
        }
        for (&d, from) in blocked.iter().zip(froms) {
            if let Some(from) = from {
                events.append(Event::blocked(&graph.tasks[d].id, from, id))?;
            }
        }
        // The reason, unless it is the default that says "by hand" again.
        let why = if reason == BY_HAND {
            String::new()
        } else {
            format!(" ({reason})")
        };
        println!(
            "blocked  {id} by hand{why}: it stays failed until `{}`",
            layout.task_cmd("reset", id)
        );
        for d in blocked {
            println!("  blocked  {} (depends on it)", graph.tasks[d].id);
        }
    }
    // Done: a run may start while the notifiers finish.
    drop(held);
    events.finish();
    Ok(crate::exit::SUCCESS)
}

/// How a block's reason names the failure it holds.
const HAD_FAILED: &str = " (it had failed: ";

/// A block's `reason`, naming the failure (`error`) it holds.
fn held_because(reason: &str, error: &str) -> String {
    format!("{reason}{HAD_FAILED}{error})")
}

/// `previous`, the failure a retry is told of, as a block's `reason` holds
/// it (`held`: a block's reason is in it already, and is replaced).
fn held_previous(reason: &str, previous: Failure, held: bool) -> Failure {
    Failure {
        error: held_because(
            reason,
            unheld(&previous.error, held).unwrap_or(&previous.error),
        ),
        ..previous
    }
}

/// The failure a failed status records: its error, or, blocked by hand
/// already, the failure its reason names (a block of a task that had not
/// failed names none).
fn failure_of(status: &Status) -> Option<&str> {
    unheld(status.error.as_deref()?, status.held)
}

/// The failure in `error`, without the reason of a block (`held`).
fn unheld(error: &str, held: bool) -> Option<&str> {
    match held {
        false => Some(error),
        true => error.split_once(HAD_FAILED)?.1.strip_suffix(')'),
    }
}

/// A task that ended while no orchestrator ran, its end recorded (its
/// supervisor's exit record) but not taken yet: blocked or reset now, its
/// completion (and what its agent reported) would be lost, and the work
/// run again.
fn refuse_if_ended_unseen(
    layout: &Layout,
    config: &Config,
    task: &Task,
    attempt: u32,
) -> Result<()> {
    let id = &task.id;
    let Some(end) = records::recorded_end(layout, id, attempt) else {
        // Lost with its supervisor, no end recorded: an agent that printed
        // its result first has it read by the next run, its cost counted
        // and its session kept for its retry; made pending now, its cost
        // would never reach the ledger, and the budget would count short.
        let Some(report) = crate::run::printed_result(layout, config, task) else {
            return Ok(());
        };
        let cost = report
            .cost_usd
            .map_or_else(|| "its cost unknown".to_owned(), format::usd);
        bail!(
            "{id}'s agent printed its result ({cost}) after its supervisor died, while no orchestrator ran, and it is not recorded yet (nor counted in {}): `{}` (or `{}`) records it first",
            layout.display(&layout.ledger_file()),
            layout.cmd("monitor"),
            layout.cmd("orchestrate")
        )
    };
    Err(ended_unseen(layout, id, &end))
}

/// The refusal of task `id`, which ended as `end` says while no
/// orchestrator ran: its end is the next run's (or `monitor`'s) to record.
fn ended_unseen(layout: &Layout, id: &str, end: &records::ExitRecord) -> anyhow::Error {
    anyhow::anyhow!(
        "{id} ended at {} ({}) while no orchestrator ran, and its end is not recorded yet: `{}` (or `{}`) records it first",
        end.ended_at_shown(),
        end.how(),
        layout.cmd("monitor"),
        layout.cmd("orchestrate")
    )
}

/// A task that runs cannot be edited by hand.
pub fn refuse_if_running(layout: &Layout, config: &Config, task: &Task) -> Result<()> {
    let id = &task.id;
    let mut warnings = Vec::new();
    let status = status::read_or_warn(layout, id, &mut warnings);
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    let Some(status) = status.filter(|s| s.status == State::Running) else {
        return Ok(());
    };
    // Looked after, by what its status names (not only found by its
    // environment, which the other branch says).
    let supervisor_alive = (status.supervisor_pid)
        .is_some_and(|pid| process::is_same_process(pid, status.supervisor_start));
    let named = status.pid.is_some() || status.supervisor_pid.is_none() || supervisor_alive;
    // A Slurm job is taken to run; Slurm may list it ended, as a local
    // task's supervisor records its end.
    if let Some(end) = crate::executor::slurm::end_unseen(layout, &status) {
        return Err(ended_unseen(layout, id, &end));
    }
    let by = if named && status.looked_after(layout) {
        match (status.pid, status.supervisor_pid) {
            (Some(pid), _) => format!("pid {pid}"),
            (None, Some(pid)) => format!("under supervisor pid {pid}"),
            (None, None) => match &status.job_id {
                Some(job) => format!("as Slurm job {job}: `scancel {job}` stops it"),
                None => "being started by the run going on".to_owned(),
            },
        }
    } else {
        // Its orchestrator and supervisor died before its pid was written
        // (its first second): the task may run on all the same, and made
        // pending it would be started beside itself.
        let job = records::submitted_job(layout, id, status.attempt);
        match (
            job,
            process::find_task(layout.workspace.as_str(), id, status.attempt),
        ) {
            (Some(job), _) => format!("Slurm job {job}, submitted before its status said so"),
            (None, Some(pid)) => {
                format!("pid {pid}, found by its environment; nothing looks after it")
            }
            // Work left in the merge queue keeps its end on disk on
            // purpose: the run took it.
            (None, None) if status.merging => return Ok(()),
            (None, None) => return refuse_if_ended_unseen(layout, config, task, status.attempt),
        }
    };
    bail!(
        "{id} is running ({by}): stop it first, or let `{}` adopt it and record its end",
        layout.cmd("orchestrate")
    )
}
