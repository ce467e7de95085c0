//! `monitor`: after a crash, waits for the tasks recorded as running and
//! records how they end; starts nothing.

use anyhow::Result;

use crate::commands::orchestrate;
use crate::model::definitions;
use crate::model::layout::Layout;
use crate::run::{Mode, Options};
use crate::state::status::{self, State};

pub fn run(layout: &Layout) -> Result<i32> {
    let defs = definitions::load(layout)?;
    let running: Vec<String> = defs
        .graph
        .tasks
        .iter()
        .filter(|t| status::state_of(layout, &t.id) == Some(State::Running))
        .map(|t| t.id.clone())
        .collect();
    if running.is_empty() {
        println!("No task is recorded as running.");
        return Ok(crate::exit::SUCCESS);
    }
    let options = Options {
        jobs: None,
        phase: None,
        only: running,
        quiet: false,
        executor: defs.config.executor,
    };
    orchestrate::check(layout, &defs, &options)?;
    orchestrate::launch(layout, defs, &options, Mode::Monitor)
}
