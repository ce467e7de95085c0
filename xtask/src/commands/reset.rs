//! `reset <task>...`: clears tasks' statuses, and those of the tasks they
//! blocked, so that they run again. Under the workspace lock.

use anyhow::Result;

use crate::commands::block::refuse_if_running;
use crate::model::definitions;
use crate::model::layout::Layout;
use crate::state::status::{self, State};
use crate::state::{lock, records};

pub fn run(layout: &Layout, ids: &[String]) -> Result<i32> {
    let defs = definitions::load(layout)?;
    let ids = ids
        .iter()
        .map(|id| Ok(defs.graph.tasks[defs.task(id)?].id.clone()))
        .collect::<Result<Vec<String>>>()?;
    let ids = ids.as_slice();
    let _lock = lock::acquire(layout)?;
    for id in ids {
        refuse_if_running(layout, id)?;
    }
    for id in ids {
        clear(layout, id)?;
        println!("reset  {id}");
    }
    let mut warnings = Vec::new();
    for task in &defs.graph.tasks {
        let Some(status) = status::read_or_warn(layout, &task.id, &mut warnings) else {
            continue;
        };
        let by = status.blocked_by.unwrap_or_default();
        if status.status == State::Blocked && ids.contains(&by) {
            clear(layout, &task.id)?;
            println!("reset  {} (was blocked by {by})", task.id);
        }
    }
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(crate::exit::SUCCESS)
}

fn clear(layout: &Layout, id: &str) -> Result<()> {
    status::remove(layout, id)?;
    records::remove(layout, id)
}
