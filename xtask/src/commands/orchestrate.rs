//! `orchestrate`: load and check the definitions, take the workspace lock,
//! and run the graph (or, with `--dry-run`, print the plan).

use anyhow::Result;

use crate::cli;
use crate::model::definitions::{self, names_phase, Definitions, Runs};
use crate::model::layout::Layout;
use crate::model::task::{self, Task};
use crate::run::plan::Plan;
use crate::run::{self, Mode, Options};
use crate::state::{lock, status};

pub fn run(layout: &Layout, args: &cli::Orchestrate) -> Result<i32> {
    let ids: Vec<&str> = args.tasks.iter().map(|id| task::normalize_id(id)).collect();
    let selects = |task: &Task| match &args.phase {
        Some(phase) => names_phase(phase, &task.phase),
        None => ids.is_empty() || ids.contains(&task.id.as_str()),
    };
    let runs = Runs {
        tasks: &selects,
        executor: args.executor,
    };
    let defs = definitions::load_to_run(layout, &runs)?;
    let phase = args.phase.as_deref().map(|p| defs.phase(p)).transpose()?;
    let mut only = Vec::new();
    for id in &args.tasks {
        only.push(defs.graph.tasks[defs.task(id)?].id.clone());
    }
    let options = Options {
        jobs: args.jobs.map(|j| j as usize),
        phase,
        only,
        quiet: args.quiet,
        executor: args.executor.unwrap_or(defs.config.executor),
    };
    let stale = stale_tasks(layout, &defs);
    if !stale.is_empty() && !args.dry_run {
        if args.rerun_stale {
            let ids: Vec<String> = stale.iter().map(|(id, _)| id.clone()).collect();
            for (id, changed) in &stale {
                println!("stale  {id}: {changed} changed since it completed");
            }
            crate::commands::reset::run(layout, &ids, true)?;
        } else {
            println!(
                "note: {} completed task(s) are stale, built from files that changed since ({}): `{}` runs them again, and what depends on them",
                stale.len(),
                stale
                    .iter()
                    .take(3)
                    .map(|(id, changed)| format!("{id}: {changed}"))
                    .collect::<Vec<_>>()
                    .join("; "),
                layout.cmd("orchestrate --rerun-stale")
            );
        }
    }
    if args.dry_run {
        // A dry run writes nothing, so it needs no lock and may run beside a real run.
        return Ok(Plan::new(layout, &defs.config, &defs.graph, &options).dry_run());
    }
    launch(layout, defs, &options, Mode::Launch)
}

/// The definitions, with the programs of the tasks `selects` accepts
/// checked (on the config's executor).
pub fn load(layout: &Layout, selects: &dyn Fn(&Task) -> bool) -> Result<Definitions> {
    let runs = Runs {
        tasks: selects,
        executor: None,
    };
    Ok(definitions::load_to_run(layout, &runs)?)
}

/// Takes the workspace lock and runs.
pub fn launch(layout: &Layout, defs: Definitions, options: &Options, mode: Mode) -> Result<i32> {
    let _lock = lock::acquire(layout)?;
    run::run(
        layout,
        &defs.config,
        defs.graph,
        defs.discovery,
        options,
        mode,
    )
}

/// The completed tasks built from a task file or inputs that changed
/// since, each with the first file that did.
fn stale_tasks(layout: &Layout, defs: &Definitions) -> Vec<(String, String)> {
    defs.graph
        .tasks
        .iter()
        .filter_map(|task| {
            let recorded = status::read(layout, &task.id).ok().flatten()?;
            let changed = status::stale_because(layout, &recorded)?;
            Some((task.id.clone(), changed))
        })
        .collect()
}
