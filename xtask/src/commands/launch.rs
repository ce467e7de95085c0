//! `launch <task>`: one task in the foreground, under the same rules as
//! `orchestrate`; refused when its dependencies or inputs are not met.

use anyhow::{bail, Result};

use crate::commands::orchestrate;
use crate::model::config::Config;
use crate::model::graph::{Dep, Graph};
use crate::model::layout::Layout;
use crate::model::task::{phase_key, Task};
use crate::run::{Mode, Options};
use crate::state::lock;
use crate::state::outputs;
use crate::state::status::{self, State};
use crate::sys::parallel;
use crate::sys::shell::shell_word;
use crate::ui::format;

/// How many of a phase's tasks not completed a refusal names.
const LISTED: usize = 5;

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
        None => unmet_dependencies(layout, &defs.config, &defs.graph, t),
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

/// A dependency a launch would wait on for good (a task, or `phase
/// 01-a`): its state, and what to do about it.
struct Unmet {
    id: String,
    state: String,
    next: String,
    /// Held by `block`: no run starts it until `reset`.
    held: bool,
}

impl Unmet {
    /// Phase `p` as an unmet dependency (`phase 01-a`).
    fn phase(graph: &Graph, p: usize, state: String, next: String) -> Unmet {
        Unmet {
            id: format!("phase {}", graph.phases[p].name),
            state,
            next,
            held: false,
        }
    }
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
/// were "not selected in this run" (a phase: "waits on phase 01-a").
/// A completed dependency is met, its outputs gone since or not, as a run
/// takes it: only an input is looked for (by the run).
fn unmet_dependencies(layout: &Layout, config: &Config, graph: &Graph, t: usize) -> Vec<Unmet> {
    (graph.deps[t].iter())
        .filter_map(|dep| match *dep {
            Dep::Task(d) => unmet(layout, &graph.tasks[d].id),
            Dep::Phase(p) => {
                unmet_phase(layout, graph, p).or_else(|| missing_required(layout, config, graph, p))
            }
        })
        .collect()
}

/// Phase `p`, its tasks (and the earlier phases') completed, when its gate
/// or an earlier one requires an artifact that is not there
/// (`phases.<key>.requires`): no run opens it. The way on is the task
/// that declares it, run again, or the config.
fn missing_required(layout: &Layout, config: &Config, graph: &Graph, p: usize) -> Option<Unmet> {
    let missing: Vec<(usize, String)> = (graph.phases_through(p))
        .flat_map(|q| {
            let requires = &config.phase(phase_key(&graph.phases[q].name)).requires;
            outputs::missing_artifacts(layout, requires)
                .into_iter()
                .map(move |artifact| (q, artifact))
        })
        .collect();
    let (q, artifact) = missing.first()?;
    let state = format!(
        "its gate requires {}, which is not there",
        layout.display(&layout.outputs_dir().join(artifact))
    );
    let next = match graph.declaring_producer(artifact) {
        Some(d) => {
            let id = &graph.tasks[d].id;
            format!(
                "`{}` and `{}` make it again",
                layout.task_cmd("reset", id),
                layout.task_cmd("launch", id)
            )
        }
        None => format!(
            "no task declares it among its outputs: write it, or take it out of `phases.{}.requires` in {}",
            phase_key(&graph.phases[*q].name),
            layout.display(&layout.config_file())
        ),
    };
    Some(Unmet::phase(graph, p, state, next))
}

/// Phase `p`, when a task of its gate (of it or an earlier phase) is
/// unmet as a dependency would be: the first few such tasks, each with
/// its state, and the runs of their phases that go on.
fn unmet_phase(layout: &Layout, graph: &Graph, p: usize) -> Option<Unmet> {
    let members: Vec<usize> = graph.gate_members(p).collect();
    // A gate of thousands of tasks: their statuses read on every CPU.
    let unmet: Vec<(usize, Unmet)> =
        parallel::map(&members, |&m| Some((m, unmet(layout, &graph.tasks[m].id)?)))
            .into_iter()
            .flatten()
            .collect();
    if unmet.is_empty() {
        return None;
    }
    let shown: Vec<String> = (unmet.iter().take(LISTED))
        .map(|(_, u)| format!("{} ({})", u.id, u.state))
        .collect();
    let every = layout.cmd("progress --tasks");
    let state = match format::more_listed(unmet.len(), LISTED, "not completed", &every) {
        Some(more) => format!("{} {more}", shown.join(", ")),
        None => shown.join(", "),
    };
    // `--phase` selects one phase: each that holds one of them, in the
    // order of their gates.
    let runs: Vec<String> = (graph.phases_through(p))
        .filter(|&q| unmet.iter().any(|&(m, _)| graph.phase_of[m] == q))
        .map(|q| {
            let phase = shell_word(&graph.phases[q].name);
            format!("`{}`", layout.cmd(&format!("orchestrate --phase={phase}")))
        })
        .collect();
    let them = format::it_or_them(unmet.len());
    let next = match runs.as_slice() {
        [one] => format!("{one} runs {them} first"),
        many => format!("{} run {them} first", many.join(", then ")),
    };
    // `--phase` starts none of them.
    let held: Vec<&str> = (unmet.iter())
        .filter(|(_, u)| u.held)
        .map(|(_, u)| u.id.as_str())
        .collect();
    let next = match held.as_slice() {
        [] => next,
        [one] => format!(
            "`{}` (`block` holds it), then {next}",
            layout.task_cmd("reset", one)
        ),
        many => format!(
            "a `{}` of each that `block` holds ({}{}), then {next}",
            layout.cmd("reset"),
            many[..many.len().min(LISTED)].join(", "),
            format::more_listed(many.len(), LISTED, "held", &every)
                .map_or(String::new(), |more| format!(" {more}"))
        ),
    };
    Some(Unmet::phase(graph, p, state, next))
}

/// Dependency `id`, when it is not completed and no run would end that
/// for a launch: one that runs (a killed run's, which the launch adopts)
/// or awaits approval is left to the run, which waits for it or says so.
fn unmet(layout: &Layout, id: &str) -> Option<Unmet> {
    let launch = layout.task_cmd("launch", id);
    let first = format!("`{launch}` runs it first");
    let status = match status::read(layout, id) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let state = "not run yet".to_owned();
            return Some(Unmet {
                id: id.to_owned(),
                state,
                next: first,
                held: false,
            });
        }
        // Said as every view says it (taken as not run): it ran.
        Err(e) => {
            let state = e.to_string();
            return Some(Unmet {
                id: id.to_owned(),
                state,
                next: first,
                held: false,
            });
        }
    };
    match (status.status, &status.blocked_by) {
        (State::Completed | State::Running | State::AwaitingApproval, _) => None,
        (State::Blocked, Some(by)) => Some(Unmet {
            id: id.to_owned(),
            state: format!("blocked by {by}"),
            next: format!("`{}` says what it waits on", layout.task_cmd("why", id)),
            held: false,
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
            let id = id.to_owned();
            let held = status.held;
            Some(Unmet {
                id,
                state,
                next,
                held,
            })
        }
    }
}
