//! `block <task>`: marks a task failed by hand and every task downstream of
//! it blocked, as the run does when a task fails; it holds across runs until
//! `reset`. Under the workspace lock, so no orchestrator writes meanwhile.

use std::time::SystemTime;

use anyhow::{bail, Result};

use crate::model::definitions;
use crate::model::layout::Layout;
use crate::run::plan::Plan;
use crate::run::Options;
use crate::state::lock;
use crate::state::status::{self, State, Status};

pub fn run(layout: &Layout, id: &str, reason: &str) -> Result<i32> {
    let defs = definitions::load(layout)?;
    let t = defs.task(id)?;
    let id = &defs.graph.tasks[t].id;
    let _lock = lock::acquire(layout)?;
    refuse_if_running(layout, id)?;
    let options = Options::everything(defs.config.executor);
    let mut plan = Plan::new(layout, &defs.config, &defs.graph, &options);
    let mut failed = Status::new(id, State::Failed);
    failed.error = Some(reason.to_owned());
    failed.held = true;
    failed.attempt = plan.attempt(t);
    failed.completed_at = Some(status::timestamp(SystemTime::now()));
    status::write(layout, &failed)?;
    let blocked = plan.hold(t);
    let ids = blocked
        .iter()
        .map(|&d| (defs.graph.tasks[d].id.as_str(), plan.attempt(d)));
    status::write_blocked(layout, ids, id, None)?;
    println!("ALERT: Task {id} failed, blocking {} tasks", blocked.len());
    for d in blocked {
        println!("  blocked  {}", defs.graph.tasks[d].id);
    }
    Ok(crate::exit::SUCCESS)
}

/// A task that runs cannot be edited by hand.
pub fn refuse_if_running(layout: &Layout, id: &str) -> Result<()> {
    let mut warnings = Vec::new();
    let status = status::read_or_warn(layout, id, &mut warnings);
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(status) = status {
        if status.status == State::Running && status.looked_after() {
            let by = match (status.pid, status.supervisor_pid) {
                (Some(pid), _) => format!("pid {pid}"),
                (None, Some(pid)) => format!("under supervisor pid {pid}"),
                (None, None) => "on Slurm".to_owned(),
            };
            bail!(
                "{id} is running ({by}): stop it first, or let `{}` record its end",
                layout.cmd("monitor")
            );
        }
    }
    Ok(())
}
