//! `orchestrate`: load and check the definitions, take the workspace lock,
//! and run the graph (or, with `--dry-run`, print the plan).

use anyhow::Result;

use crate::cli;
use crate::commands::validate;
use crate::git::worktrees::Worktrees;
use crate::model::definitions::{self, names_phase, Definitions, Runs};
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::run::plan::Plan;
use crate::run::{self, Mode, Options};
use crate::state::lock;

pub fn run(layout: &Layout, args: &cli::Orchestrate) -> Result<i32> {
    let ids: Vec<std::borrow::Cow<str>> = args.tasks.iter().map(|id| layout.typed_id(id)).collect();
    // A phase too may be named by its folder's path from where one stands.
    let typed_phase = args.phase.as_deref().map(|phase| layout.typed_id(phase));
    let selects = |task: &Task| match &typed_phase {
        Some(phase) => names_phase(phase, task.phase()),
        None => ids.is_empty() || ids.iter().any(|id| *id == task.id),
    };
    let runs = Runs {
        tasks: &selects,
        executor: args.executor,
        worktrees_usable: Worktrees::usable,
        jobs: args.jobs.map(|j| j as usize),
        none_needed: false,
    };
    let defs = definitions::load_to_run(layout, &runs)?;
    let phase = typed_phase.as_deref().map(|p| defs.phase(p)).transpose()?;
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
        rerun_stale: args.rerun_stale,
    };
    if args.dry_run {
        // A dry run writes nothing, so it needs no lock and may run beside a real run.
        let mut code = Plan::new(&defs, &options).dry_run()?;
        // What the run would fail as it starts: a branch or folder of the
        // user's where a task's worktree goes.
        let selected: Vec<usize> = (0..defs.graph.tasks.len())
            .filter(|&t| options.selects(&defs.graph.tasks[t]))
            .collect();
        for line in validate::worktree_obstacles(layout, &defs, &selected) {
            println!("  would fail as it starts: {line}");
            code = crate::exit::TASK_FAILED;
        }
        // Freed with the process, as `progress` does.
        std::mem::forget(defs);
        return Ok(code);
    }
    launch(layout, defs, &options, Mode::Launch)
}

/// The definitions, with the programs of the tasks `selects` accepts
/// checked (on the config's executor).
pub fn load(layout: &Layout, selects: &dyn Fn(&Task) -> bool) -> Result<Definitions> {
    load_some(layout, selects, false)
}

/// `load`, which finds no task file no problem if `none_needed`.
pub fn load_some(
    layout: &Layout,
    selects: &dyn Fn(&Task) -> bool,
    none_needed: bool,
) -> Result<Definitions> {
    let runs = Runs {
        tasks: selects,
        executor: None,
        worktrees_usable: Worktrees::usable,
        jobs: None,
        none_needed,
    };
    Ok(definitions::load_to_run(layout, &runs)?)
}

/// Takes the workspace lock and runs.
pub fn launch(
    layout: &Layout,
    mut defs: Definitions,
    options: &Options,
    mode: Mode,
) -> Result<i32> {
    let _lock = lock::acquire(layout)?;
    defs.save_cache();
    run::run(
        layout,
        &defs.config,
        defs.graph,
        defs.discovery,
        defs.durations,
        options,
        mode,
    )
}
