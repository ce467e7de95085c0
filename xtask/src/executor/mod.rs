//! Executors start tasks; this is the only code that does. `local` runs each
//! task through the run's supervisor process on this machine; `slurm` submits
//! each to a Slurm cluster. Both report to the run loop the same way, and
//! both leave an exit record in `workspace/pids/<id>.exit` when a task ends.

pub mod local;
pub mod slurm;

use std::time::Duration;

use camino::Utf8PathBuf;

use crate::model::config::Config;
use crate::model::layout::Layout;
use crate::model::task::{CommandSpec, Task};
use crate::supervisor::ExitRecord;

/// Everything an executor needs to start one attempt of a task.
#[derive(Debug, Clone)]
pub struct Launch {
    pub task_id: String,
    pub attempt: u32,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_file: Utf8PathBuf,
}

/// What an attempt may use and how long.
pub struct Limits {
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub grace: Duration,
    pub cpus: f64,
    pub memory_gb: f64,
}

/// What an executor tells the run loop.
pub enum Event {
    /// The task runs (Slurm: the job left the queue); its pid when local.
    Started { task_id: String, pid: Option<u32> },
    /// It ended: its exit record, or `None` when the record is on disk
    /// (`workspace/pids/<id>.exit`).
    Ended {
        task_id: String,
        record: Option<ExitRecord>,
    },
    /// The local supervisor died (it never closes its reports while we live).
    Gone,
}

/// The executor of a run.
pub enum Executor {
    Local(local::Supervisor),
    Slurm(slurm::Slurm),
}

impl Executor {
    /// Starts the attempt; returns the Slurm job id, if it is one.
    pub fn launch(
        &mut self,
        layout: &Layout,
        launch: &Launch,
        limits: &Limits,
    ) -> anyhow::Result<Option<String>> {
        match self {
            Executor::Local(supervisor) => supervisor.launch(layout, launch, limits).map(|()| None),
            Executor::Slurm(slurm) => slurm.launch(layout, launch, limits).map(Some),
        }
    }

    /// SIGTERM, then SIGKILL after the grace period (Slurm: scancel).
    pub fn stop(&mut self, task_id: &str) -> bool {
        match self {
            Executor::Local(supervisor) => supervisor.stop(task_id).is_ok(),
            Executor::Slurm(slurm) => {
                slurm.stop(task_id, None);
                true
            }
        }
    }

    /// The attempt's final status is written: what the executor kept of
    /// its end can go.
    pub fn written(&mut self, task_id: &str, attempt: u32) {
        if let Executor::Local(supervisor) = self {
            supervisor.written(task_id, attempt);
        }
    }

    /// Sends what is pending (before the scheduler waits for events).
    pub fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Executor::Local(supervisor) => supervisor.flush(),
            Executor::Slurm(_) => Ok(()),
        }
    }

    pub fn close(self) {
        if let Executor::Local(supervisor) = self {
            supervisor.close();
        }
    }
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
