//! `launch <task>`: one task in the foreground, under the same rules as
//! `orchestrate`; refused when its dependencies or inputs are not met.

use anyhow::{bail, Result};

use crate::commands::orchestrate;
use crate::model::graph::{Dep, Graph};
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::run::{Mode, Options};
use crate::state::lock;
use crate::state::status::{self, State};

pub fn run(layout: &Layout, id: &str) -> Result<i32> {
    let wanted = layout.typed_id(id);
    let defs = orchestrate::load(layout, &|task: &Task| task.id == wanted)?;
    let t = defs.task(id)?;
    let id = defs.graph.tasks[t].id.clone();
    if status::state_of(layout, &id) == Some(State::Completed) {
        bail!(
            "{id} is already completed: `{}` to run it again",
            layout.task_cmd("reset", &id)
        );
    }
    // A run going on owns the statuses, and refuses this launch itself,
    // naming its pid.
    let unmet = match lock::run_going_on(layout) {
        Some(_) => Vec::new(),
        None => unmet_dependencies(layout, &defs.graph, t),
    };
    if !unmet.is_empty() {
        let said = refusal(&unmet);
        // A dependency's error may hold what a terminal acts on.
        let said = crate::agent::terminal::escaped(&said, &[]);
        eprintln!("error: cannot launch {id}: {said}");
        return Ok(crate::exit::TASK_FAILED);
    }
    let options = Options {
        jobs: Some(1),
        only: vec![id],
        ..Options::everything(defs.config.executor)
    };
    orchestrate::launch(layout, defs, &options, Mode::Launch)
}

/// A dependency a launch would wait on for good: its state, and what
/// to do about it.
struct Unmet<'a> {
    id: &'a str,
    state: String,
    next: String,
}

/// What is unmet, and how to go on: `its dependency p/a is not completed
/// (not run yet): `cargo xtask launch p/a` runs it first`.
fn refusal(unmet: &[Unmet]) -> String {
    match unmet {
        [one] => format!(
            "its dependency {} is not completed ({}): {}",
            one.id, one.state, one.next
        ),
        many => {
            let each: Vec<String> = (many.iter())
                .map(|u| format!("{} ({}: {})", u.id, u.state, u.next))
                .collect();
            format!("its dependencies are not completed: {}", each.join("; "))
        }
    }
}

/// The dependencies of task `t` that a launch of it alone would wait on
/// for good. The run it starts selects `t` only: it ran, and said they
/// were "not selected in this run". A phase is left to the run's
/// summary, which says what of it is not completed.
fn unmet_dependencies<'a>(layout: &Layout, graph: &'a Graph, t: usize) -> Vec<Unmet<'a>> {
    (graph.deps[t].iter())
        .filter_map(|dep| match *dep {
            Dep::Task(d) => unmet(layout, &graph.tasks[d].id),
            Dep::Phase(_) => None,
        })
        .collect()
}

/// Dependency `id`, when it is not completed and no run would end that
/// for a launch: one that runs (a killed run's, which the launch adopts)
/// or awaits approval is left to the run, which waits for it or says so.
fn unmet<'a>(layout: &Layout, id: &'a str) -> Option<Unmet<'a>> {
    let launch = layout.task_cmd("launch", id);
    let first = format!("`{launch}` runs it first");
    let status = match status::read(layout, id) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let state = "not run yet".to_owned();
            return Some(Unmet {
                id,
                state,
                next: first,
            });
        }
        // Said as every view says it (taken as not run): it ran.
        Err(e) => {
            let state = e.to_string();
            return Some(Unmet {
                id,
                state,
                next: first,
            });
        }
    };
    match (status.status, &status.blocked_by) {
        (State::Completed | State::Running | State::AwaitingApproval, _) => None,
        (State::Blocked, Some(by)) => Some(Unmet {
            id,
            state: format!("blocked by {by}"),
            next: format!("`{}` says what it waits on", layout.task_cmd("why", id)),
        }),
        _ => {
            let shown = status::shown_state(Some(&status));
            let state = match &status.error {
                Some(error) => format!("{shown}: {error}"),
                None => shown.to_owned(),
            };
            // Held by `block`: no run starts it until `reset`.
            let next = match status.held {
                true => format!("`{}` lets it run again", layout.task_cmd("reset", id)),
                false => format!("`{launch}` runs it again"),
            };
            Some(Unmet { id, state, next })
        }
    }
}
