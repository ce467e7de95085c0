//! `prompt TASK`: the prompt the task's next attempt would get, rendered
//! from its template with what is on disk now.

use anyhow::Result;

use crate::git::repo::Repo;
use crate::model::definitions;
use crate::run::history::Previous;
use crate::run::plan::Plan;
use crate::run::prompt::{self, Attempt};
use crate::state::{logs, resets, status};

pub fn run(layout: &crate::model::layout::Layout, name: &str) -> Result<i32> {
    let defs = definitions::load(layout)?;
    let t = defs.task(name)?;
    let task = &defs.graph.tasks[t];
    let recorded = status::read_or_warn(layout, &task.id, &mut Vec::new());
    // After a `reset`, attempts number on from the reset's record and the
    // logs, as the run does.
    let cleared = resets::read(layout).remove(&task.id);
    let number = match (&recorded, &cleared) {
        (Some(status), _) => status.attempt,
        (None, cleared) => resets::latest_attempt(layout, &task.id, cleared.as_ref()),
    } + 1;
    let previous = match &recorded {
        // Its next attempt is told of how the running one ends, not known
        // yet (the running status keeps the failure *it* was told of).
        Some(s) if s.status == status::State::Running => None,
        Some(s) => s.failure_to_tell().map(|failure| {
            let log = logs::of_attempt(layout, &task.id, failure.attempt);
            Previous::told(failure, log)
        }),
        // Reset after a failure: its next attempt is told of it, its log
        // kept under its number by then (here, still the latest log).
        None => cleared
            .as_ref()
            .and_then(|cleared| Previous::after_reset(layout, &task.id, cleared))
            .map(|previous| Previous {
                log: logs::of_attempt(layout, &task.id, previous.attempt),
                ..previous
            }),
    };
    // Where it would run: the root's folder in its worktree.
    let workdir = task.in_worktree(&defs.config).then(|| {
        let worktree = layout.worktree_dir(&task.id);
        match Repo::open(layout) {
            Ok(repo) => repo.root_in(&worktree),
            Err(_) => worktree,
        }
    });
    let attempt = Attempt {
        number,
        previous: previous.as_ref(),
        workdir: workdir.as_deref(),
        // What an agent that ended unseen spent counts, as the next run
        // counts it before it starts this one.
        budget_left: Plan::seen_budget(&defs).left(),
        upstream: &prompt::on_disk(layout, &defs.graph),
    };
    match prompt::render(layout, &defs.config, &defs.graph, t, &attempt) {
        None => {
            eprintln!(
                "{} gets no prompt: its command asks for none. Put `{{prompt_file}}` (or `{{prompt}}`) in it for the built-in one (its body, what its dependencies produced, why its last attempt failed), or give it a template (agent.prompt, or its own prompt:). Its task file is {}",
                task.id,
                layout.display(&task.file)
            );
            Ok(crate::exit::SUCCESS)
        }
        Some(Ok(text)) => {
            // As the agent gets it, byte for byte: no newline added to a
            // template's text that ends without one.
            print!("{text}");
            Ok(crate::exit::SUCCESS)
        }
        Some(Err(e)) => {
            eprintln!("error: {e:#}");
            Ok(crate::exit::INVALID)
        }
    }
}
