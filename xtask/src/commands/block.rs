//! `block` and `reset`: editing task states by hand, under the workspace
//! lock so no orchestrator writes at the same time.

use anyhow::{bail, Result};

use crate::commands::orchestrate::resolve_task;
use crate::model::definitions::{self, Definitions};
use crate::model::layout::Layout;
use crate::state::status::{self, State, Status};

/// Marks `id` failed with `reason` and every task that depends on it,
/// directly or not, blocked by it (as the protocol's error handling does).
pub fn block(layout: &Layout, id: &str, reason: &str) -> Result<i32> {
    let Some(defs) = definitions::load_or_report(layout) else {
        return Ok(crate::exit::INVALID);
    };
    let t = resolve_task(&defs, id)?;
    let _lock = crate::state::lock::acquire(layout)?;
    refuse_if_running(layout, id)?;
    let mut failed = Status::new(id, State::Failed);
    failed.error = Some(reason.to_owned());
    failed.held = true;
    failed.completed_at = Some(status::timestamp(std::time::SystemTime::now()));
    status::write(layout, &failed)?;
    let blocked = block_dependents(layout, &defs, t)?;
    println!("ALERT: Task {id} failed, blocking {} tasks", blocked.len());
    for d in blocked {
        println!("  blocked  {}", defs.graph.tasks[d].id);
    }
    Ok(crate::exit::SUCCESS)
}

/// Every task downstream of `t` that has not completed, marked blocked.
fn block_dependents(layout: &Layout, defs: &Definitions, t: usize) -> Result<Vec<usize>> {
    let graph = &defs.graph;
    let mut blocked = graph.downstream(t, |d| {
        let state = status::read(layout, &graph.tasks[d].id)
            .ok()
            .flatten()
            .map(|s| s.status);
        !matches!(state, Some(State::Completed | State::Running))
    });
    for &d in &blocked {
        status::write(
            layout,
            &Status::blocked(&graph.tasks[d].id, &graph.tasks[t].id),
        )?;
    }
    blocked.sort();
    Ok(blocked)
}

/// Clears the status of `ids`, and of the tasks they blocked, so they run again.
pub fn reset(layout: &Layout, ids: &[String]) -> Result<i32> {
    let Some(defs) = definitions::load_or_report(layout) else {
        return Ok(crate::exit::INVALID);
    };
    for id in ids {
        resolve_task(&defs, id)?;
    }
    let _lock = crate::state::lock::acquire(layout)?;
    for id in ids {
        refuse_if_running(layout, id)?;
    }
    for id in ids {
        clear(layout, id)?;
        println!("reset  {id}");
    }
    for task in &defs.graph.tasks {
        let Ok(Some(status)) = status::read(layout, &task.id) else {
            continue;
        };
        if status.status == State::Blocked
            && status.blocked_by.as_ref().is_some_and(|b| ids.contains(b))
        {
            clear(layout, &task.id)?;
            println!(
                "reset  {} (was blocked by {})",
                task.id,
                status.blocked_by.unwrap_or_default()
            );
        }
    }
    Ok(crate::exit::SUCCESS)
}

fn clear(layout: &Layout, id: &str) -> Result<()> {
    status::remove(layout, id)?;
    for file in [layout.exit_file(id), layout.pid_file(id)] {
        let _ = std::fs::remove_file(file);
    }
    Ok(())
}

fn refuse_if_running(layout: &Layout, id: &str) -> Result<()> {
    if let Ok(Some(status)) = status::read(layout, id) {
        if status.status == State::Running && status.looked_after() {
            let by = match (status.pid, status.supervisor_pid) {
                (Some(pid), _) => format!("pid {pid}"),
                (None, Some(pid)) => format!("under supervisor pid {pid}"),
                (None, None) => "on Slurm".to_owned(),
            };
            bail!(
                "{id} is running ({by}): stop it first, or let `cargo xtask monitor` record its end"
            );
        }
    }
    Ok(())
}
