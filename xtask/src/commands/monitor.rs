//! `monitor`: after a crash, waits for the tasks recorded as running and
//! records how they end; starts nothing.

use anyhow::Result;

use crate::commands::orchestrate;
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::run::{Mode, Options};
use crate::state::status::{self, State};

pub fn run(layout: &Layout) -> Result<i32> {
    let running = |task: &Task| status::state_of(layout, &task.id) == Some(State::Running);
    let defs = orchestrate::load(layout, &running)?;
    let only: Vec<String> = defs
        .graph
        .tasks
        .iter()
        .filter(|t| running(t))
        .map(|t| t.id.clone())
        .collect();
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
