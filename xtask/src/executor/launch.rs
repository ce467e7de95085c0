//! What an executor is given to start one attempt of a task: its argv with
//! the placeholders filled in, its environment, its log, and its limits.

use std::sync::Arc;
use std::time::Duration;

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

use crate::model::config::Config;
use crate::model::layout::Layout;
use crate::model::task::{phase_key, Task};
use crate::state::records::Enforced;
use crate::state::status::AgentSlot;

/// Everything an executor needs to start one attempt of a task.
#[derive(Debug, Clone)]
pub struct Launch {
    pub task_id: String,
    pub attempt: u32,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_file: Utf8PathBuf,
    /// Where its stdout is kept apart too, when its result is read from it
    /// (by the local executor; a Slurm job's stdout shares its log).
    pub stdout_file: Option<Utf8PathBuf>,
    /// Where it runs: its worktree, or the repository root.
    pub cwd: Utf8PathBuf,
}

/// The variable that tells a retry what its previous attempt failed with.
pub const PREVIOUS_ERROR: &str = "TASK_PREVIOUS_ERROR";

/// What the environment `env` tells an attempt its previous attempt failed
/// with, if it is a retry: what the agent may repeat (`Watchdog::told`).
pub fn told_error(env: &[(String, String)]) -> Option<String> {
    env.iter()
        .find(|(name, _)| name == PREVIOUS_ERROR)
        .map(|(_, error)| error.clone())
}

/// What an attempt may use and how long.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// A log still this long whose last line matches one of the patterns
    /// is a question nobody will answer (see `agent::prompts`).
    pub prompt_idle: Duration,
    pub prompt_patterns: Arc<[String]>,
    pub grace: Duration,
    pub cpus: f64,
    pub memory_gb: f64,
    /// The worktree's setup the attempt runs first, if it does: its
    /// timeout and idle timeout count from the setup's end, which has a
    /// timeout of its own.
    pub setup: Option<Setup>,
}

/// A worktree's setup, run before an attempt's command in its process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    /// The file it makes once it has succeeded, as the command starts.
    pub done: Utf8PathBuf,
    pub timeout: Duration,
}

impl Limits {
    /// The task's own settings, else its phase's, else the config's.
    pub fn of(config: &Config, task: &Task) -> Limits {
        let phase = config.phase(phase_key(task.phase()));
        Limits {
            timeout: Limits::timeout_of(config, task),
            idle_timeout: task.idle_timeout.or(phase.idle_timeout),
            prompt_idle: task.prompt_idle(config),
            prompt_patterns: config.agents.prompt_patterns.clone(),
            grace: config.kill_grace,
            cpus: task.resources.cpus.unwrap_or(config.max_cpu_per_agent),
            memory_gb: memory_gb(config, task),
            setup: None,
        }
    }

    /// The task's timeout, else its phase's (for the expected end, which
    /// wants no more of the limits, 100,000 times a frame).
    pub fn timeout_of(config: &Config, task: &Task) -> Option<Duration> {
        task.timeout
            .or(config.phase(phase_key(task.phase())).timeout)
    }

    /// Those of a task of phase `phase` whose file is gone, which set its
    /// own: as its supervisor recorded them (`enforced`), else its
    /// phase's, else the config's. Its resources are the config's: they
    /// are asked of no one.
    pub fn of_gone(config: &Config, phase: &str, enforced: Option<Enforced>) -> Limits {
        let phase = config.phase(phase_key(phase));
        let ms = |ms: Option<u64>| ms.map(Duration::from_millis);
        let (timeout, idle_timeout, prompt_idle) = match enforced {
            Some(e) => (
                ms(e.timeout_ms),
                ms(e.idle_timeout_ms),
                ms(e.prompt_idle_ms),
            ),
            None => (phase.timeout, phase.idle_timeout, phase.prompt_idle),
        };
        Limits {
            timeout,
            idle_timeout,
            prompt_idle: prompt_idle.unwrap_or(config.agents.prompt_idle),
            prompt_patterns: config.agents.prompt_patterns.clone(),
            grace: config.kill_grace,
            cpus: config.max_cpu_per_agent,
            memory_gb: config.max_memory_gb,
            setup: None,
        }
    }
}

/// The memory `task` reserves for admission: its own `resources`, else
/// the config's `max_memory_gb`.
pub fn memory_gb(config: &Config, task: &Task) -> f64 {
    task.resources.memory_gb.unwrap_or(config.max_memory_gb)
}

/// The environment every attempt gets, besides the orchestrator's own.
pub fn environment(
    layout: &Layout,
    task: &Task,
    agent: AgentSlot,
    attempt: u32,
) -> Vec<(String, String)> {
    [
        ("TASK_ID", task.id.clone()),
        ("TASK_FILE", task.file.to_string()),
        ("TASK_PHASE", task.phase().to_owned()),
        ("TASK_OUTPUT_DIR", layout.output_dir(&task.id).to_string()),
        ("TASK_LOG", layout.log_file(&task.id).to_string()),
        ("TASK_ATTEMPT", attempt.to_string()),
        ("AGENT_ID", agent.to_string()),
        ("WORKSPACE", layout.workspace.to_string()),
        ("TASKS_DIR", layout.tasks.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(no_git_maintenance())
    .collect()
}

/// Settings given to every git a task runs: no automatic maintenance. A
/// `git commit` otherwise starts `git maintenance run --auto --detach`,
/// which, once the repository has enough loose objects, packs refs and
/// objects in the background: killed with what the task left running when
/// the task ended, it left `packed-refs.lock` in the user's repository,
/// failing their git until they removed it. The orchestrator's own git
/// commands (the merge queue's) still start it, and it runs to its end.
/// No task inherits `GIT_CONFIG_COUNT` (`sys/env.rs`): these are the only
/// ones.
fn no_git_maintenance() -> Vec<(String, String)> {
    [
        ("GIT_CONFIG_COUNT", "2"),
        ("GIT_CONFIG_KEY_0", "maintenance.auto"),
        ("GIT_CONFIG_VALUE_0", "false"),
        ("GIT_CONFIG_KEY_1", "gc.auto"),
        ("GIT_CONFIG_VALUE_1", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}
