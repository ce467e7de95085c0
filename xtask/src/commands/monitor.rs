//! `monitor`: after a crash, waits for the tasks recorded as running and
//! records how they end; starts nothing.

use anyhow::Result;

use crate::commands::orchestrate;
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::run::{Mode, Options};
use crate::state::status::{self, State};
use crate::state::{records, runs};

pub fn run(layout: &Layout) -> Result<i32> {
    let running = |task: &Task| status::state_of(layout, &task.id) == Some(State::Running);
    // Every task file may be gone, while a task of one a killed run left
    // running runs on (see `run::unlisted`): waited for all the same.
    let defs = orchestrate::load_some(layout, &running, true)?;
    let mut only: Vec<String> = defs
        .graph
        .tasks
        .iter()
        .filter(|t| running(t))
        .map(|t| t.id.clone())
        .collect();
    // Also those whose task file is gone since (see `run::unlisted`),
    // which select no task of the graph.
    if only.is_empty() {
        let known = |id: &str| defs.graph.get(id).is_some();
        only.extend(
            records::running_unknown(layout, known, runs::unfinished(layout).is_some())
                .into_iter()
                .map(|(id, _)| id),
        );
    }
    if only.is_empty() {
        println!("No task is recorded as running.");
        return Ok(crate::exit::SUCCESS);
    }
    let options = Options {
        only,
        ..Options::everything(defs.config.executor)
    };
    orchestrate::launch(layout, defs, &options, Mode::Monitor)
}
