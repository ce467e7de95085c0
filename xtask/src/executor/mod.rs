//! Executors start tasks; this is the only code that does. `local` runs each
//! task through the run's supervisor process on this machine.

pub mod local;

use camino::Utf8PathBuf;

use crate::config::Config;
use crate::layout::Layout;
use crate::task::{CommandSpec, Task};

/// Everything an executor needs to start one attempt of a task.
#[derive(Debug, Clone)]
pub struct Launch {
    pub task_id: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_file: Utf8PathBuf,
}

/// The argv a task runs: its own `command`, or the agent command, with the
/// placeholders filled in.
pub fn argv(layout: &Layout, config: &Config, task: &Task) -> Vec<String> {
    let raw = match &task.command {
        Some(CommandSpec::Shell(script)) => vec!["sh".into(), "-c".into(), script.clone()],
        Some(CommandSpec::Argv(argv)) => argv.clone(),
        None => config.agent.command.clone(),
    };
    let task_file = task.file.to_string();
    let output_dir = layout.output_dir(&task.id).to_string();
    let log_file = layout.log_file(&task.id).to_string();
    raw.into_iter()
        .map(|arg| {
            arg.replace("{task_id}", &task.id)
                .replace("{task_file}", &task_file)
                .replace("{output_dir}", &output_dir)
                .replace("{log_file}", &log_file)
        })
        .collect()
}

/// The environment every attempt gets, besides the orchestrator's own.
pub fn environment(
    layout: &Layout,
    task: &Task,
    agent: usize,
    attempt: u32,
) -> Vec<(String, String)> {
    [
        ("TASK_ID", task.id.clone()),
        ("TASK_FILE", task.file.to_string()),
        ("TASK_PHASE", task.phase.clone()),
        ("TASK_OUTPUT_DIR", layout.output_dir(&task.id).to_string()),
        ("TASK_LOG", layout.log_file(&task.id).to_string()),
        ("TASK_ATTEMPT", attempt.to_string()),
        ("AGENT_ID", format!("agent-{agent}")),
        ("WORKSPACE", layout.workspace.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
