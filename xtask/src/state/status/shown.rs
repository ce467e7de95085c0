//! What the views show of a status: its state's name, `stale` for a
//! completed task built from files that changed since, and, read with the
//! other statuses and the graph, a task recorded blocked that no failure
//! blocks now as pending, and one whose pool another task's pause holds as paused.

use std::time::SystemTime;

use super::{State, Status};
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::state::outputs;

/// The state a view shows for a task: its status's, `merging` for a
/// running task whose work waits in the merge queue, or pending without one.
pub fn shown_state(status: Option<&Status>) -> &'static str {
    match status {
        None => "pending",
        Some(s) if s.merging => "merging",
        Some(s) => match s.paused_until() {
            Some(until) if until > SystemTime::now() => "paused",
            // Its pause is over: it starts again with the next run.
            Some(_) => "pending",
            None => s.status.name(),
        },
    }
}

/// `shown_state`, `stale` for a completed task built from a task file
/// or inputs that changed since (see `stale_because`), and pending for a
/// result awaiting approval whose outputs are gone: nothing is left to
/// approve, and the next run runs it again (as `progress` counts it).
pub fn shown_state_now(
    layout: &Layout,
    task: Option<&Task>,
    status: Option<&Status>,
) -> &'static str {
    match status {
        Some(s) if stale_because(layout, task, s).is_some() => "stale",
        Some(s) if result_gone(layout, task, s) => "pending",
        _ => shown_state(status),
    }
}

/// Whether `status` is a result awaiting approval whose outputs are gone.
fn result_gone(layout: &Layout, task: Option<&Task>, status: &Status) -> bool {
    let ran = status.status == State::AwaitingApproval && status.completed_at.is_some();
    ran && task.is_some_and(|task| outputs_gone(layout, task))
}

/// Whether an output `task` declares is missing or empty: a result
/// awaiting approval with such an output has nothing left to approve, and
/// the next run runs it again.
pub fn outputs_gone(layout: &Layout, task: &Task) -> bool {
    !outputs::problems(layout, task, None, false).is_empty()
}

/// Whether the run that recorded a task blocked (`status`) has not
/// finished (`unfinished_run`, see `runs::unfinished`): it keeps it
/// blocked, going on or once resumed, whatever became of what blocked it.
/// So does a status that names nothing that blocked it (written by hand).
pub fn kept_blocked(status: &Status, unfinished_run: Option<&str>) -> bool {
    status.blocked_by.is_none()
        || (unfinished_run.is_some() && status.run_id.as_deref() == unfinished_run)
}

/// What a task's status is to the walk of failures that tells which
/// tasks recorded blocked are blocked still (`blocked_now`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Link {
    /// Failed (not paused by a rate limit): it blocks what waits on it.
    Failed,
    /// Recorded blocked; `kept` so by the run that blocked it
    /// (`kept_blocked`), whatever became of what blocked it.
    Blocked { kept: bool },
    /// Without a status: yet to run, or reset.
    Unrun,
    /// Running, done, awaiting approval or paused: a failure above it
    /// does not block it.
    Other,
}

impl Link {
    pub fn of(status: Option<&Status>, unfinished_run: Option<&str>) -> Link {
        match status {
            None => Link::Unrun,
            Some(s) if s.status == State::Blocked => Link::Blocked {
                kept: kept_blocked(s, unfinished_run),
            },
            Some(s) if s.status == State::Failed && s.rate_limited_until.is_none() => Link::Failed,
            Some(_) => Link::Other,
        }
    }
}

/// For each task of `graph` (`links` in its order), the failed task that
/// blocks it now, if one does: one it waits on, through blocked tasks and
/// ones yet to run (`Graph::blocked_by_failures`, as `failed_upstream`
/// walks); the one its status names (`recorded`) where that one does, else
/// the first. Walked only when a task recorded blocked is not kept so:
/// otherwise none.
pub fn blocked_now(
    graph: &Graph,
    links: &[Link],
    recorded: impl Fn(usize) -> Option<usize>,
) -> Vec<Option<usize>> {
    let unkept = |t: usize| links[t] == Link::Blocked { kept: false };
    if !(0..links.len()).any(unkept) {
        return vec![None; links.len()];
    }
    let through = |t: usize| matches!(links[t], Link::Blocked { .. } | Link::Unrun);
    let mut by = graph.blocked_by_failures(|t| links[t] == Link::Failed, through);
    // Another failure reached it first: the one its status names, if it is
    // failed still, may reach it too: at once where the task waits on it
    // directly (as it mostly does), else by a walk from each such one.
    let mut named = Vec::new();
    for t in (0..links.len()).filter(|&t| unkept(t)) {
        let Some(r) = recorded(t).filter(|&r| links[r] == Link::Failed) else {
            continue;
        };
        match by[t] {
            Some(first) if first != r && graph.waits_directly_on(t, r) => by[t] = Some(r),
            Some(first) if first != r => named.push((r, t)),
            _ => {}
        }
    }
    named.sort_unstable();
    for group in named.chunk_by(|a, b| a.0 == b.0) {
        let r = group[0].0;
        let reached = graph.blocked_by_failures(|t| t == r, through);
        for &(_, t) in group {
            if reached[t].is_some() {
                by[t] = Some(r);
            }
        }
    }
    by
}

/// What a task recorded blocked shows: blocked (`Some`, by the task to
/// name, when known) or pending (`None`). Kept so, it is blocked by what
/// its status names (`recorded`); otherwise while a failed task blocks it
/// now (`now`: `blocked_now`, `failed_upstream`). Pending, the run going on
/// or the next one takes it up again: what blocked it ran again, was
/// reset, or is no longer waited on.
pub fn shown_blocker<'a>(
    kept: bool,
    recorded: Option<&'a str>,
    now: Option<&'a str>,
) -> Option<Option<&'a str>> {
    match kept {
        true => Some(recorded),
        false => now.map(Some),
    }
}

/// What each task of `graph` shows (`shown_state_now`), `statuses` holding
/// their statuses in the same order; a task recorded blocked that nothing
/// failed blocks now (`blockers`, from `shown_blockers`) shows as pending,
/// as `progress` has it, and one shown pending that a rate limit's pause
/// holds (`held`: `run::plan::pauses`, another task's limit) as paused.
pub fn shown_states(
    layout: &Layout,
    graph: &Graph,
    statuses: &[Option<Status>],
    blockers: &[Option<Option<String>>],
    held: impl Fn(usize) -> bool,
) -> Vec<&'static str> {
    (graph.tasks.iter().zip(statuses).zip(blockers).enumerate())
        .map(|(t, ((task, status), blocked))| {
            let state = match status {
                Some(s) if s.status == State::Blocked && blocked.is_none() => "pending",
                _ => shown_state_now(layout, Some(task), status.as_ref()),
            };
            match state {
                "pending" if held(t) => "paused",
                state => state,
            }
        })
        .collect()
}

/// Whether one of `statuses` says a rate limit's pause is on: only then
/// may a pause hold a task (`run::plan::pauses`).
pub fn pause_on(statuses: &[Option<Status>]) -> bool {
    (statuses.iter().flatten()).any(|s| shown_state(Some(s)) == "paused")
}

/// For each task of `graph` recorded blocked (`statuses` in its order),
/// the task it shows blocked by (`shown_blocker`): `None` where it shows
/// pending, and for every task not recorded blocked.
pub fn shown_blockers(
    layout: &Layout,
    graph: &Graph,
    statuses: &[Option<Status>],
) -> Vec<Option<Option<String>>> {
    let unfinished = crate::state::runs::unfinished(layout);
    let links: Vec<Link> = (statuses.iter())
        .map(|s| Link::of(s.as_ref(), unfinished.as_deref()))
        .collect();
    let recorded = |t: usize| {
        let s = statuses[t].as_ref()?;
        graph.get(s.blocked_by.as_deref()?)
    };
    let now = blocked_now(graph, &links, recorded);
    (statuses.iter().zip(&links).zip(now))
        .map(|((status, link), now)| {
            let (Some(s), Link::Blocked { kept }) = (status, link) else {
                return None;
            };
            let now = now.map(|f| graph.tasks[f].id.as_str());
            shown_blocker(*kept, s.blocked_by.as_deref(), now).map(|by| by.map(str::to_owned))
        })
        .collect()
}

/// The file that changed since the completed task `status` was built from
/// it, if one did; its task file judged as `task` was read, when given
/// (see `fingerprint::changed`).
pub fn stale_because(layout: &Layout, task: Option<&Task>, status: &Status) -> Option<String> {
    let fingerprint = status.fingerprint.as_ref()?;
    if status.status != State::Completed {
        return None;
    }
    crate::state::fingerprint::changed(layout, fingerprint, task, &status.task_id)
}
