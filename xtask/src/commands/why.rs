//! `why <task>`: one screen that says why a task is where it is.

use std::io::{Read, Seek, SeekFrom};
use std::time::SystemTime;

use anyhow::Result;

use crate::commands::orchestrate::resolve_task;
use crate::model::definitions::{self, Definitions};
use crate::model::graph::Dep;
use crate::model::layout::Layout;
use crate::state::status::{self, State, Status};

const LOG_LINES: usize = 10;

pub fn run(layout: &Layout, id: &str) -> Result<i32> {
    let Some(defs) = definitions::load_or_report(layout) else {
        return Ok(crate::exit::INVALID);
    };
    let t = resolve_task(&defs, id)?;
    let status = match status::read(layout, id) {
        Ok(status) => status,
        Err(problem) => {
            println!("warning: {problem}");
            None
        }
    };
    match &status {
        None => explain_pending(layout, &defs, t),
        Some(s) => explain(layout, s),
    }
    Ok(crate::exit::SUCCESS)
}

fn explain(layout: &Layout, s: &Status) {
    let agent = s.agent_id.as_deref().unwrap_or("-");
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
            let alive = s.looked_after();
            let since = s.started_at.as_deref().and_then(status::parse_timestamp);
            let elapsed = since
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            println!(
                "{} is running on {agent} (attempt {}) for {}",
                s.task_id,
                s.attempt,
                crate::ui::format::duration(elapsed)
            );
            if !alive {
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
            if let Ok(Some(cause)) = status::read(layout, by) {
                println!(
                    "  {by} is {:?}: {}",
                    cause.status,
                    cause.error.as_deref().unwrap_or("-")
                );
            }
            println!("  it runs again once {by} completes (`cargo xtask why {by}`)");
        }
    }
    print_log_tail(layout, &s.task_id);
}

fn explain_pending(layout: &Layout, defs: &Definitions, t: usize) {
    let graph = &defs.graph;
    let task = &graph.tasks[t];
    let mut unmet = Vec::new();
    for dep in &graph.deps[t] {
        match *dep {
            Dep::Task(d) => {
                let id = &graph.tasks[d].id;
                match status::read(layout, id).ok().flatten() {
                    Some(s) if s.status == State::Completed => {}
                    Some(s) => unmet.push(format!(
                        "{id} is {:?}{}",
                        s.status,
                        s.error.map(|e| format!(": {e}")).unwrap_or_default()
                    )),
                    None => unmet.push(format!("{id} has not run yet")),
                }
            }
            Dep::Phase(p) => {
                let open: Vec<&str> = graph
                    .gate_members(p)
                    .filter(|&m| !is_completed(layout, &graph.tasks[m].id))
                    .map(|m| graph.tasks[m].id.as_str())
                    .collect();
                if !open.is_empty() {
                    let shown: Vec<&str> = open.iter().take(5).copied().collect();
                    unmet.push(format!(
                        "phase {}: {} task(s) of it or earlier phases not completed ({}{})",
                        graph.phases[p].name,
                        open.len(),
                        shown.join(", "),
                        if open.len() > shown.len() {
                            ", ..."
                        } else {
                            ""
                        }
                    ));
                }
                let key = crate::model::task::phase_key(&graph.phases[p].name);
                for artifact in &defs.config.phase(key).requires {
                    if !layout.outputs_dir().join(artifact).exists() {
                        unmet.push(format!(
                            "phase {}: its gate needs workspace/outputs/{artifact}, which does not exist",
                            graph.phases[p].name
                        ));
                    }
                }
            }
        }
    }
    let missing: Vec<&String> = task
        .inputs
        .iter()
        .filter(|input| !layout.outputs_dir().join(input).exists())
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

fn is_completed(layout: &Layout, id: &str) -> bool {
    matches!(status::read(layout, id), Ok(Some(s)) if s.status == State::Completed)
}

fn print_log_tail(layout: &Layout, id: &str) {
    let path = layout.log_file(id);
    let Ok(mut file) = std::fs::File::open(&path) else {
        return;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut tail = Vec::new();
    let _ = file.read_to_end(&mut tail);
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_LINES);
    println!("  last lines of {}:", layout.display(&path));
    for line in &lines[start..] {
        println!("    {line}");
    }
}
