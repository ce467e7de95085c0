//! `orchestrate`: load and check the definitions, take the workspace lock,
//! and run the graph (or, with `--dry-run`, print the plan).

use anyhow::Result;

use crate::cli;
use crate::model::definitions::{self, Definitions};
use crate::model::layout::Layout;
use crate::run::plan::Plan;
use crate::run::{self, Mode, Options};
use crate::state::lock;

pub fn run(layout: &Layout, args: &cli::Orchestrate) -> Result<i32> {
    let defs = definitions::load(layout)?;
    let phase = args.phase.as_deref().map(|p| defs.phase(p)).transpose()?;
    for id in &args.tasks {
        defs.task(id)?;
    }
    let options = Options {
        jobs: args.jobs.map(|j| j as usize),
        phase,
        only: args.tasks.clone(),
        quiet: args.quiet,
        executor: args.executor.unwrap_or(defs.config.executor),
    };
    check(layout, &defs, &options)?;
    if args.dry_run {
        // A dry run writes nothing, so it needs no lock and may run beside a real run.
        return Ok(Plan::new(layout, &defs.config, &defs.graph, &options).dry_run());
    }
    launch(layout, defs, &options, Mode::Launch)
}

/// The programs the selected tasks run can be run.
pub fn check(layout: &Layout, defs: &Definitions, options: &Options) -> Result<()> {
    let selected: Vec<usize> = (0..defs.graph.tasks.len())
        .filter(|&t| options.selects(&defs.graph.tasks[t]))
        .collect();
    definitions::check_programs(layout, defs, &selected, options.executor)?;
    Ok(())
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
