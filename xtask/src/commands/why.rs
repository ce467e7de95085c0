//! `why <task>`: one screen that says why a task is where it is.

use std::time::SystemTime;

use anyhow::Result;

use crate::model::definitions::{self, Definitions};
use crate::model::graph::Dep;
use crate::model::layout::Layout;
use crate::model::task::phase_key;
use crate::run::plan::Plan;
use crate::run::readiness::Node;
use crate::run::Options;
use crate::state::status::{self, State, Status};
use crate::state::{logs, outputs};
use crate::ui::format;

const LOG_LINES: usize = 10;

pub fn run(layout: &Layout, id: &str) -> Result<i32> {
    let defs = definitions::load(layout)?;
    let t = defs.task(id)?;
    let id = &defs.graph.tasks[t].id;
    let mut warnings = Vec::new();
    match status::read_or_warn(layout, id, &mut warnings) {
        None => explain_pending(layout, &defs, t, &mut warnings),
        Some(s) => explain(layout, &s, &mut warnings),
    }
    for warning in warnings {
        println!("warning: {warning}");
    }
    Ok(crate::exit::SUCCESS)
}

fn explain(layout: &Layout, s: &Status, warnings: &mut Vec<String>) {
    let agent = s.agent_id.map_or("-".to_owned(), |a| a.to_string());
    match s.status {
        State::Completed => {
            println!(
                "{} is completed (attempt {}, {agent}, {}s, outputs validated: {})",
                s.task_id,
                s.attempt,
                s.duration_seconds.unwrap_or(0.0),
                s.outputs_validated
            );
        }
        State::Running => {
            let since = s.started_at.as_deref().and_then(status::parse_timestamp);
            let elapsed = since
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            println!(
                "{} is running on {agent} (attempt {}) for {}",
                s.task_id,
                s.attempt,
                format::duration(elapsed)
            );
            if !s.looked_after() {
                println!("  but its process is gone: the next `cargo xtask orchestrate` or `monitor` records how it ended");
            }
        }
        State::Failed => {
            println!(
                "{} failed: {}",
                s.task_id,
                s.error.as_deref().unwrap_or("no error recorded")
            );
            if let Some(code) = s.exit_code {
                println!("  exit code {code}, attempt {}, {agent}", s.attempt);
            }
            println!(
                "  `cargo xtask reset {}` clears it; the next run retries it anyway",
                s.task_id
            );
        }
        State::Blocked => {
            let by = s.blocked_by.as_deref().unwrap_or("?");
            println!("{} is blocked by {by}", s.task_id);
            if let Some(cause) = status::read_or_warn(layout, by, warnings) {
                println!(
                    "  {by} is {}: {}",
                    cause.status,
                    cause.error.as_deref().unwrap_or("-")
                );
            }
            println!("  it runs again once {by} completes (`cargo xtask why {by}`)");
        }
    }
    let log = layout.log_file(&s.task_id);
    println!("  last lines of {}:", layout.display(&log));
    for line in logs::tail(&log, LOG_LINES) {
        println!("    {line}");
    }
}

/// What a task without a status waits on, as the next run would see it.
fn explain_pending(layout: &Layout, defs: &Definitions, t: usize, warnings: &mut Vec<String>) {
    let graph = &defs.graph;
    let options = Options::everything(defs.config.executor);
    let plan = Plan::new(layout, &defs.config, graph, &options);
    let readiness = plan.readiness();
    let mut unmet = Vec::new();
    for dep in &graph.deps[t] {
        match *dep {
            Dep::Task(d) if readiness.node(d) != Node::Completed => {
                let id = &graph.tasks[d].id;
                unmet.push(match status::read_or_warn(layout, id, warnings) {
                    Some(s) => format!(
                        "{id} is {}{}",
                        s.status,
                        s.error.map(|e| format!(": {e}")).unwrap_or_default()
                    ),
                    None => format!("{id} has not run yet"),
                });
            }
            Dep::Task(_) => {}
            Dep::Phase(p) => {
                let name = &graph.phases[p].name;
                let open: Vec<&str> = graph
                    .gate_members(p)
                    .filter(|&m| readiness.node(m) != Node::Completed)
                    .map(|m| graph.tasks[m].id.as_str())
                    .collect();
                if !open.is_empty() {
                    let shown: Vec<&str> = open.iter().take(5).copied().collect();
                    let more = if open.len() > shown.len() {
                        ", ..."
                    } else {
                        ""
                    };
                    unmet.push(format!(
                        "phase {name}: {} task(s) of it or earlier phases not completed ({}{more})",
                        open.len(),
                        shown.join(", "),
                    ));
                }
                let requires = &defs.config.phase(phase_key(name)).requires;
                for artifact in outputs::missing_artifacts(layout, requires) {
                    unmet.push(format!(
                        "phase {name}: its gate needs workspace/outputs/{artifact}, which does not exist"
                    ));
                }
            }
        }
    }
    let task = &graph.tasks[t];
    let missing: Vec<&String> = task
        .inputs
        .iter()
        .filter(|input| !outputs::input_exists(layout, input))
        .collect();
    println!("{} is pending (it has not run yet, or was reset)", task.id);
    for line in &unmet {
        println!("  waits on {line}");
    }
    for input in &missing {
        println!("  needs input workspace/outputs/{input}, which does not exist");
    }
    if unmet.is_empty() && missing.is_empty() {
        println!("  nothing: it starts on the next `cargo xtask orchestrate`");
    }
}
