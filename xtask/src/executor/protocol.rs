//! What travels between the orchestrator and its supervisor: requests on
//! the supervisor's stdin and reports on its stdout, one JSON line each. A
//! task's end is reported with its exit record (`state::records`).

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

use crate::executor::launch::Setup;
pub use crate::state::records::ExitRecord;

/// The first argument that makes the binary a supervisor.
pub const SUPERVISOR_ARG: &str = "__supervise";

/// The supervisor's environment variable that holds the prompt patterns
/// (`prompt_patterns`, the same for every task), as a JSON list.
pub const PROMPTS_ENV: &str = "XTASK_PROMPT_PATTERNS";

/// The supervisor's environment variable that holds how many slots to make
/// as it starts (`Admission::likely_at_once`): a slot's
/// groups take the kernel a grace period to join (about 10 ms here), better
/// spent while the orchestrator reads statuses than before the first task.
pub const SLOTS_ENV: &str = "XTASK_SLOTS";

/// The supervisor's environment variable that holds the folder where it
/// marks that it handed over (`Layout::handover_mark`).
pub const PIDS_DIR_ENV: &str = "XTASK_PIDS_DIR";

/// What the orchestrator asks. Both enums here are tagged by their one
/// key (`{"launch": {...}}`), which serde reads in one pass: a tag inside
/// the object makes it buffer the whole line first, twice the work for
/// each of the two lines of every task.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    Launch(Box<Spec>),
    /// Stop the task: SIGTERM to its group, SIGKILL after the grace period.
    Stop {
        task_id: String,
    },
    /// Kill the task now: SIGKILL to its group (asked by a second Ctrl-C).
    Kill {
        task_id: String,
    },
    /// The final statuses of these attempts (task id, attempt) are
    /// written: their records can go.
    Ack {
        attempts: Vec<(String, u32)>,
    },
}

/// One task to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub task_id: String,
    pub attempt: u32,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_file: Utf8PathBuf,
    /// Where its stdout is kept apart too, when its result is read from it.
    pub stdout_file: Option<Utf8PathBuf>,
    /// The folder it runs in.
    pub cwd: Utf8PathBuf,
    /// A log that has not grown for this long and ends with one of the
    /// prompt patterns (given to the supervisor once, in `PROMPTS_ENV`) is
    /// a question nobody will answer: it stops the task.
    pub prompt_idle_ms: Option<u64>,
    pub exit_file: Utf8PathBuf,
    pub pid_file: Utf8PathBuf,
    pub timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    /// The worktree's setup it runs first, if it does (see
    /// `Watchdog::after_setup`).
    #[serde(default)]
    pub setup: Option<Setup>,
    pub grace_ms: u64,
    /// Enforced with a cgroup where cgroups can be written.
    pub cpus: f64,
    pub memory_bytes: u64,
}

impl Spec {
    /// Whether process `pid` has this attempt's environment.
    pub fn carried_by(&self, pid: u32) -> bool {
        let var = |name| {
            self.env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let workspace = var("WORKSPACE").unwrap_or_default();
        crate::sys::process::carries_task(pid, workspace, &self.task_id, self.attempt)
    }
}

/// What the supervisor reports: every task's end, the start of a task
/// still running after a tick (a shorter one's end comes first and says
/// all), and a signal that told it to stop (the run stops with it).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    Started { task_id: String, pid: u32 },
    Ended { task_id: String, record: ExitRecord },
    Stopping { signal: i32 },
}
