//! What the views show of a status: its state's name, `stale` for a
//! completed task built from files that changed since, and, read with the
//! other statuses, a task recorded blocked by one that has not failed since
//! as pending, and one whose pool another task's pause holds as paused.

use std::collections::HashSet;
use std::time::SystemTime;

use super::{State, Status};
use crate::model::layout::Layout;
use crate::model::task::Task;

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

/// `shown_state`, and `stale` for a completed task built from a task file
/// or inputs that changed since (see `stale_because`).
pub fn shown_state_now(
    layout: &Layout,
    task: Option<&Task>,
    status: Option<&Status>,
) -> &'static str {
    match status {
        Some(s) if stale_because(layout, task, s).is_some() => "stale",
        _ => shown_state(status),
    }
}

/// Whether the run that recorded a task blocked (`status`) has not
/// finished (`unfinished_run`, see `runs::unfinished`): it keeps it
/// blocked, going on or once resumed, whatever became of what blocked it.
/// So does a status that names nothing that blocked it (written by hand).
pub fn kept_blocked(status: &Status, unfinished_run: Option<&str>) -> bool {
    status.blocked_by.is_none()
        || (unfinished_run.is_some() && status.run_id.as_deref() == unfinished_run)
}

/// Whether a task recorded blocked (`status`) is blocked still: kept so
/// (`kept_blocked`), or what blocked it is `failed` now. Otherwise the run
/// going on, or the next one, takes it up again (what blocked it ran
/// again, or was reset), and the views show it pending.
pub fn still_blocked(
    status: &Status,
    failed: impl Fn(&str) -> bool,
    unfinished_run: Option<&str>,
) -> bool {
    kept_blocked(status, unfinished_run) || status.blocked_by.as_deref().is_some_and(failed)
}

/// What each of `tasks` shows (`shown_state_now`), `statuses` holding
/// their statuses in the same order; a task recorded blocked by one that
/// has not failed since shows as pending (`still_blocked`), as `progress`
/// has it.
pub fn shown_states(
    layout: &Layout,
    tasks: &[Task],
    statuses: &[Option<Status>],
) -> Vec<&'static str> {
    let failed: HashSet<&str> = (statuses.iter().flatten())
        .filter(|s| s.status == State::Failed)
        .map(|s| s.task_id.as_str())
        .collect();
    let unfinished = crate::state::runs::unfinished(layout);
    let blocked_still =
        |s: &Status| still_blocked(s, |by| failed.contains(by), unfinished.as_deref());
    // A task whose own pause is over waits for its pool's, another task's.
    let now = SystemTime::now();
    let paused_pools: HashSet<&str> = (statuses.iter().flatten())
        .filter(|s| s.paused_until().is_some_and(|until| until > now))
        .filter_map(|s| s.pool.as_deref())
        .collect();
    let pool_paused = |s: &Status| {
        s.paused_until().is_some() && s.pool.as_deref().is_some_and(|p| paused_pools.contains(p))
    };
    (tasks.iter().zip(statuses))
        .map(|(task, status)| match status {
            Some(s) if s.status == State::Blocked && !blocked_still(s) => "pending",
            Some(s) if pool_paused(s) => "paused",
            _ => shown_state_now(layout, Some(task), status.as_ref()),
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
