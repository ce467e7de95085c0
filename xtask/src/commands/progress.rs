//! `progress`: the dashboard per phase, read from the status files alone
//! (no lock, no task parsing), as text or as one JSON document.

use anyhow::Result;

use crate::model::config::Config;
use std::collections::HashMap;

use crate::model::definitions::{self, Definitions};
use crate::model::discovery::Discovery;
use crate::model::layout::Layout;
use crate::model::task::phase_key;
use crate::run::budget::Budget;
use crate::run::order::{self, Left, Order};
use crate::state::durations::Durations;
use crate::state::{logs, outputs, status};
use crate::ui::live;
use crate::ui::progress::{self, Attempt, BudgetLine, Builder, Progress, Seen, TaskLine, Usage};

pub fn run(layout: &Layout, json: bool, tasks: bool) -> Result<i32> {
    let mut progress = collect(layout);
    match definitions::load(layout) {
        Ok(defs) => set_eta(layout, &defs, &mut progress),
        Err(invalid) => {
            progress.problems = invalid.problems.iter().map(|p| p.to_string()).collect();
        }
    }
    // Every task that has run has a log (a few views read one each).
    if json || tasks {
        for task in progress.tasks.iter_mut().filter(|t| t.attempt > 0) {
            task.last_log_line = Some(logs::last_line(&layout.log_file(&task.task_id)));
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&progress)?);
    } else if tasks {
        progress::print_tasks(&progress);
    } else {
        progress::print(&progress);
    }
    Ok(if progress.problems.is_empty() {
        crate::exit::SUCCESS
    } else {
        crate::exit::INVALID
    })
}

/// `progress --watch`: the live view of a run started elsewhere.
pub fn watch(layout: &Layout) -> ! {
    live::watch(layout, || collect(layout))
}

/// The dashboard, from the task files' names and the status files.
pub fn collect(layout: &Layout) -> Progress {
    let config = Config::load(&layout.config_file()).unwrap_or_default();
    let mut builder = Builder::new();
    let mut warnings = Vec::new();
    for file in Discovery::scan(&layout.tasks).files {
        let Some(id) = layout.task_id(&file) else {
            continue;
        };
        let Some((phase, _)) = id.split_once('/') else {
            continue;
        };
        let status = status::read_or_warn(layout, id, &mut warnings);
        let status = status.as_ref();
        builder.add(
            phase,
            id,
            Seen::now(layout, status),
            Attempt::of(status),
            Usage::of(status),
        );
    }
    let missing =
        |phase: &str| outputs::missing_artifacts(layout, &config.phase(phase_key(phase)).requires);
    let mut progress = builder.finish(config.title(layout), missing, warnings);
    let budget = Budget::load(layout, config.agents.budget_usd);
    if let (Some(usd), Some(left_usd)) = (budget.usd, budget.left()) {
        progress.budget = Some(BudgetLine {
            usd,
            spent_usd: budget.spent,
            left_usd,
        });
    }
    progress
}

/// The expected end of the work left, from what each task is expected to
/// take and how far the running ones are (see `run::order`).
fn set_eta(layout: &Layout, defs: &Definitions, progress: &mut Progress) {
    let graph = &defs.graph;
    let order = Order::new(graph, &Durations::load(layout));
    let lines: HashMap<&str, &TaskLine> = progress
        .tasks
        .iter()
        .map(|line| (line.task_id.as_str(), line))
        .collect();
    let left: Vec<Left> = graph
        .tasks
        .iter()
        .map(|task| match lines.get(task.id.as_str()) {
            Some(line) => match line.state {
                "running" | "merging" => Left::Running(line.elapsed_seconds.unwrap_or(0) as f64),
                "pending" | "paused" => Left::All,
                "awaiting_approval" if line.duration_seconds.is_none() => Left::All,
                _ => Left::Nothing,
            },
            None => Left::All,
        })
        .collect();
    let parallel = defs.config.max_concurrent_agents;
    progress.set_eta(order::remaining(graph, &order.expected, &left, parallel));
}
