//! `launch <task>`: one task in the foreground, under the same rules as
//! `orchestrate`; refused when its dependencies or inputs are not met.

use anyhow::{bail, Result};

use crate::commands::orchestrate;
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::run::{Mode, Options};
use crate::state::status::{self, State};

pub fn run(layout: &Layout, id: &str) -> Result<i32> {
    let wanted = layout.typed_id(id);
    let defs = orchestrate::load(layout, &|task: &Task| task.id == wanted)?;
    let id = defs.graph.tasks[defs.task(id)?].id.clone();
    if status::state_of(layout, &id) == Some(State::Completed) {
        bail!(
            "{id} is already completed: `{}` to run it again",
            layout.task_cmd("reset", &id)
        );
    }
    let options = Options {
        jobs: Some(1),
        only: vec![id],
        ..Options::everything(defs.config.executor)
    };
    orchestrate::launch(layout, defs, &options, Mode::Launch)
}
