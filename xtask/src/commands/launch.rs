//! `launch <task>`: one task in the foreground, under the same rules as
//! `orchestrate`; refused when its dependencies or inputs are not met.

use anyhow::{bail, Result};

use crate::commands::orchestrate;
use crate::model::definitions;
use crate::model::layout::Layout;
use crate::run::{Mode, Options};
use crate::state::status::{self, State};

pub fn run(layout: &Layout, id: &str) -> Result<i32> {
    let defs = definitions::load(layout)?;
    defs.task(id)?;
    if status::state_of(layout, id) == Some(State::Completed) {
        bail!("{id} is already completed: `cargo xtask reset {id}` to run it again");
    }
    let options = Options {
        jobs: Some(1),
        phase: None,
        only: vec![id.to_owned()],
        quiet: false,
        executor: defs.config.executor,
    };
    orchestrate::check(layout, &defs, &options)?;
    orchestrate::launch(layout, defs, &options, Mode::Launch)
}
