//! Status files, `workspace/status/<task id>.json`: the state of each task on
//! disk. The only code that writes them; every write is atomic.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;

/// The version of the status file format this build writes and reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Completed,
    Failed,
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Absent in files written by the protocol's scripts, which are version 1.
    #[serde(default = "version_one")]
    pub version: u32,
    pub task_id: String,
    pub status: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub outputs_validated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended the task, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// 1 for the first run of the task, counting across orchestrator runs.
    #[serde(default)]
    pub attempt: u32,
    /// The task's pid (its process group), and its start time (to tell it
    /// from a later process that reuses the pid). Written once the task has
    /// run for a second: a shorter task's status names only its supervisor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// The supervisor that records the task's end, and its start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_start: Option<u64>,
    /// The Slurm job of the attempt, and whether it still waits in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Whether the attempt ran under its CPU and memory limits (a cgroup),
    /// and what it used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits_enforced: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_mb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Set by `block`: the task stays failed, and its dependents blocked,
    /// until `reset`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// The run that wrote this status, and how many attempts that run has
    /// started of the task: a run resumed after a crash keeps counting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default)]
    pub tries: u32,
    /// When this attempt began, by the file system's clock in nanoseconds:
    /// an output counts only if it changed after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_since_ns: Option<u64>,
}

fn version_one() -> u32 {
    1
}

impl Status {
    /// Blocked by the failure of `by`.
    pub fn blocked(task_id: &str, by: &str) -> Status {
        Status {
            blocked_by: Some(by.to_owned()),
            ..Status::new(task_id, State::Blocked)
        }
    }

    /// Whether a running task is still looked after: its process or its
    /// supervisor is alive (a Slurm job runs elsewhere: assumed so).
    pub fn looked_after(&self) -> bool {
        let alive = |pid: Option<u32>, start| {
            pid.is_some_and(|pid| crate::sys::process::is_same_process(pid, start))
        };
        self.job_id.is_some()
            || alive(self.pid, self.pid_start)
            || alive(self.supervisor_pid, self.supervisor_start)
    }

    pub fn new(task_id: &str, status: State) -> Status {
        Status {
            version: VERSION,
            task_id: task_id.to_owned(),
            status,
            started_at: None,
            completed_at: None,
            agent_id: None,
            outputs_validated: false,
            duration_seconds: None,
            exit_code: None,
            signal: None,
            error: None,
            blocked_by: None,
            attempt: 0,
            pid: None,
            pid_start: None,
            supervisor_pid: None,
            supervisor_start: None,
            job_id: None,
            queued: false,
            log: None,
            held: false,
            limits_enforced: None,
            peak_memory_mb: None,
            cpu_seconds: None,
            run_id: None,
            tries: 0,
            attempt_since_ns: None,
        }
    }
}

/// Reads a task's status: `Ok(None)` when there is none (pending), `Err`
/// with the reason when the file is unreadable, corrupt or of another version.
pub fn read(layout: &Layout, id: &str) -> Result<Option<Status>, String> {
    let path = layout.status_file(id);
    let mut tries = 0;
    let status: Status = loop {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: cannot read: {e}", layout.display(&path))),
        };
        match serde_json::from_slice(&bytes) {
            Ok(status) => break status,
            // A reader slow between its open and its read may see the file
            // it opened rewritten as the next version's (`atomic::replace`):
            // the file at the path is whole.
            Err(_) if tries < 2 => tries += 1,
            Err(e) => {
                return Err(format!(
                    "{}: corrupt status file ({e}): treated as pending; `cargo xtask reset {id}` removes it",
                    layout.display(&path)
                ))
            }
        }
    };
    if status.version != VERSION {
        return Err(format!(
            "{}: status file of version {} (this build reads {VERSION}): treated as pending",
            layout.display(&path),
            status.version
        ));
    }
    Ok(Some(status))
}

/// Writes a status; for the holder of the workspace lock, the only writer.
pub fn write(layout: &Layout, status: &Status) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(status)?;
    crate::state::atomic::replace(&layout.status_file(&status.task_id), &bytes)
}

/// Makes, ahead, the file the task's next status will be written in, so
/// that writing it creates no file. Best effort: `write` makes it anyway.
pub fn prepare_write(layout: &Layout, id: &str) {
    if let Ok(file) = crate::state::atomic::previous(&layout.status_file(id)) {
        let _ = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(file);
    }
}

/// Writes a status without holding the lock (`validate`): with a temporary
/// file of its own, never the one `write` reuses.
pub fn write_unlocked(layout: &Layout, status: &Status) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(status)?;
    crate::state::atomic::write(&layout.status_file(&status.task_id), &bytes)
}

/// Removes a task's status, making it pending, and the previous version
/// kept beside it.
pub fn remove(layout: &Layout, id: &str) -> Result<()> {
    let path = layout.status_file(id);
    crate::state::atomic::remove(&path)?;
    crate::state::atomic::remove(&crate::state::atomic::previous(&path)?)
}

/// `workspace/run.json`: the current run, and whether it ended in order.
#[derive(Debug, Serialize, Deserialize)]
struct Run {
    id: String,
    finished: bool,
}

/// Starts a run, or resumes the last one when it did not end in order (its
/// orchestrator was killed). Returns the run's id.
pub fn begin_run(layout: &Layout) -> Result<String> {
    let path = layout.workspace.join("run.json");
    let last: Option<Run> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(run) = last.filter(|r| !r.finished) {
        return Ok(run.id);
    }
    let id = format!("{}-{}", timestamp(SystemTime::now()), std::process::id());
    let run = Run {
        id: id.clone(),
        finished: false,
    };
    crate::state::atomic::write(&path, &serde_json::to_vec(&run)?)?;
    Ok(id)
}

/// The id of the last run started on this workspace.
pub fn last_run_id(layout: &Layout) -> Option<String> {
    let bytes = std::fs::read(layout.workspace.join("run.json")).ok()?;
    serde_json::from_slice::<Run>(&bytes).ok().map(|run| run.id)
}

/// Marks the run as ended in order: the next one starts afresh.
pub fn end_run(layout: &Layout, id: &str) -> Result<()> {
    let run = Run {
        id: id.to_owned(),
        finished: true,
    };
    crate::state::atomic::write(
        &layout.workspace.join("run.json"),
        &serde_json::to_vec(&run)?,
    )
}

pub fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// Seconds rounded to milliseconds, as stored in `duration_seconds`.
pub fn seconds(d: Duration) -> f64 {
    seconds_f64(d.as_secs_f64())
}

pub fn seconds_f64(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}
