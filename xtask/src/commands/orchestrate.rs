//! `orchestrate`, `launch` and `monitor`: load and check the definitions,
//! take the workspace lock, and hand over to the scheduler.

use anyhow::{bail, Result};

use crate::cli;
use crate::model::definitions::{self, Definitions};
use crate::model::layout::Layout;
use crate::model::problem::nearest;
use crate::model::task::phase_key;
use crate::run::{self, Mode, Options};
use crate::state::status::{self, State};

pub fn orchestrate(layout: &Layout, args: &cli::Orchestrate) -> Result<i32> {
    let Some(defs) = definitions::load_or_report(layout) else {
        return Ok(crate::exit::INVALID);
    };
    let phase = args
        .phase
        .as_deref()
        .map(|p| resolve_phase(&defs, p))
        .transpose()?;
    for id in &args.tasks {
        resolve_task(&defs, id)?;
    }
    let options = Options {
        mode: if args.dry_run {
            Mode::DryRun
        } else {
            Mode::Run
        },
        jobs: args.jobs.map(|j| j as usize),
        phase,
        only: args.tasks.clone(),
        quiet: args.quiet,
        executor: args.executor.unwrap_or(defs.config.executor),
    };
    run(layout, defs, &options)
}

pub fn launch(layout: &Layout, id: &str) -> Result<i32> {
    let Some(defs) = definitions::load_or_report(layout) else {
        return Ok(crate::exit::INVALID);
    };
    resolve_task(&defs, id)?;
    if let Ok(Some(status)) = status::read(layout, id) {
        if status.status == State::Completed {
            bail!("{id} is already completed: `cargo xtask reset {id}` to run it again");
        }
    }
    let options = Options {
        mode: Mode::Run,
        jobs: Some(1),
        phase: None,
        only: vec![id.to_owned()],
        quiet: false,
        executor: defs.config.executor,
    };
    run(layout, defs, &options)
}

pub fn monitor(layout: &Layout) -> Result<i32> {
    let Some(defs) = definitions::load_or_report(layout) else {
        return Ok(crate::exit::INVALID);
    };
    let running: Vec<String> = defs
        .graph
        .tasks
        .iter()
        .filter(
            |t| matches!(status::read(layout, &t.id), Ok(Some(s)) if s.status == State::Running),
        )
        .map(|t| t.id.clone())
        .collect();
    if running.is_empty() {
        println!("No task is recorded as running.");
        return Ok(crate::exit::SUCCESS);
    }
    let options = Options {
        mode: Mode::Monitor,
        jobs: None,
        phase: None,
        only: running,
        quiet: false,
        executor: defs.config.executor,
    };
    run(layout, defs, &options)
}

fn run(layout: &Layout, defs: Definitions, options: &Options) -> Result<i32> {
    let selected: Vec<usize> = (0..defs.graph.tasks.len())
        .filter(|&t| options.selects(&defs.graph.tasks[t]))
        .collect();
    let mut problems = definitions::missing_programs(layout, &defs, &selected);
    if options.executor == crate::model::config::ExecutorKind::Slurm {
        problems.extend(definitions::missing_slurm_commands());
    }
    if !problems.is_empty() {
        return Ok(definitions::report(layout, &problems));
    }
    // A dry run writes nothing, so it needs no lock and may run beside a real run.
    let _lock = match options.mode {
        Mode::DryRun | Mode::Next => None,
        Mode::Run | Mode::Monitor => Some(crate::state::lock::acquire(layout)?),
    };
    run::run(layout, &defs.config, defs.graph, defs.discovery, options)
}

/// The phase folder named by `name`, as a folder (`01-analysis`) or a key (`analysis`).
pub fn resolve_phase(defs: &Definitions, name: &str) -> Result<String> {
    let phases = &defs.graph.phases;
    if let Some(phase) = phases
        .iter()
        .find(|p| p.name == name || phase_key(&p.name) == name)
    {
        return Ok(phase.name.clone());
    }
    let known: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
    bail!("no phase `{name}`: the phases are {}", known.join(", "))
}

pub fn resolve_task(defs: &Definitions, id: &str) -> Result<usize> {
    if let Some(t) = defs.graph.get(id) {
        return Ok(t);
    }
    match nearest(id, defs.graph.tasks.iter().map(|t| t.id.as_str())) {
        Some(near) => bail!("no task `{id}`: did you mean `{near}`?"),
        None => bail!(
            "no task `{id}` (ids are paths under tasks/ without .md, e.g. 01-analysis/01-setup)"
        ),
    }
}

/// `next`: what would start now, and what the first waiting tasks wait on.
pub fn next(layout: &Layout) -> Result<i32> {
    let Some(defs) = definitions::load_or_report(layout) else {
        return Ok(crate::exit::INVALID);
    };
    let options = Options {
        mode: Mode::Next,
        jobs: None,
        phase: None,
        only: Vec::new(),
        quiet: false,
        executor: defs.config.executor,
    };
    run(layout, defs, &options)
}
