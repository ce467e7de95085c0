//! What `workspace/pids/` holds for a task whose orchestrator died: its pid
//! (written by the supervisor), its exit record (by the supervisor, or the
//! Slurm poller) and its Slurm job. The next orchestrator reads them to take
//! over, and removes them once the task's final status is written.

use std::time::SystemTime;

use anyhow::Result;
use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::state::atomic;
use crate::state::status::{self, Ending};

/// How the task ended, as written to `workspace/pids/<id>.exit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    pub ending: Ending,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    pub ended_at: String,
    #[serde(default)]
    pub message: Option<String>,
    /// Whether the task ran in a cgroup with its CPU and memory limits, and
    /// what it used (from the cgroup).
    #[serde(default)]
    pub limits_enforced: bool,
    #[serde(default)]
    pub peak_memory_bytes: Option<u64>,
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// The attempt it ended, so that a record left from an earlier attempt
    /// is never taken for the current one (`None`: Slurm's, or unknown).
    #[serde(default)]
    pub attempt: Option<u32>,
}

impl ExitRecord {
    /// A record of an ending at this moment, with nothing else known yet.
    pub fn now(ending: Ending) -> ExitRecord {
        ExitRecord {
            ending,
            exit_code: None,
            signal: None,
            ended_at: status::timestamp(SystemTime::now()),
            message: None,
            limits_enforced: false,
            peak_memory_bytes: None,
            cpu_seconds: None,
            attempt: None,
        }
    }

    /// The same, with a message.
    pub fn with_message(ending: Ending, message: impl Into<String>) -> ExitRecord {
        ExitRecord {
            message: Some(message.into()),
            ..ExitRecord::now(ending)
        }
    }
}

/// The exit record at `path`, if there is a readable one.
pub fn read_record(path: &Utf8Path) -> Option<ExitRecord> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes an exit record, atomically.
pub fn write_record(path: &Utf8Path, record: &ExitRecord) -> Result<()> {
    atomic::write(path, &serde_json::to_vec(record)?)
}

/// The exit record of attempt `attempt` of task `id` on disk, if there is
/// one: a record of another attempt is not this one's.
pub fn recorded_end(layout: &Layout, id: &str, attempt: u32) -> Option<ExitRecord> {
    read_record(&layout.exit_file(id)).filter(|r| r.attempt.is_none_or(|a| a == attempt))
}

/// The pid the supervisor wrote for a running task, if it did.
pub fn recorded_pid(layout: &Layout, id: &str) -> Option<u32> {
    read_pid(&layout.pid_file(id))
}

fn read_pid(path: &Utf8Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Records that task `id` was submitted as Slurm job `job_id`, in
/// `workspace/pids/<id>.job`: as soon as sbatch answers, since the running
/// status names the job only a moment later, and a crash in between must
/// not lose a job that runs on regardless.
pub fn write_job(layout: &Layout, id: &str, job_id: &str) -> Result<()> {
    atomic::write(&layout.job_file(id), format!("{job_id}\n").as_bytes())
}

/// The Slurm job task `id` was submitted as, if its record was written at
/// `since` or later: a record older than the attempt's running status
/// (written before its submission) is an earlier attempt's.
pub fn submitted_job(layout: &Layout, id: &str, since: SystemTime) -> Option<String> {
    let path = layout.job_file(id);
    let written = path.metadata().and_then(|m| m.modified()).ok()?;
    if written < since {
        return None;
    }
    let job = std::fs::read_to_string(&path).ok()?;
    Some(job.trim().to_owned()).filter(|job| !job.is_empty())
}

/// Removes the exit record and pid file of task `id` (its Slurm job file
/// stays, naming the job of its latest attempt).
pub fn remove(layout: &Layout, id: &str) -> Result<()> {
    atomic::remove(&layout.exit_file(id))?;
    atomic::remove(&layout.pid_file(id))
}

/// Removes the files under `workspace/pids/` of tasks that `running` says
/// are not running: a record written for a task whose final status was
/// written just before its orchestrator died, say. A later attempt of that
/// task must never be mistaken for the one they describe.
pub fn remove_stale(layout: &Layout, running: impl Fn(&str) -> bool) {
    let pids = layout.pids_dir();
    let mut folders = vec![pids.clone()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = folder.read_dir_utf8() else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(path.to_owned());
                continue;
            }
            // A dot-file is an atomic write in progress, maybe by the
            // supervisor of the orchestrator that died.
            if entry.file_name().starts_with('.') {
                continue;
            }
            let id = path
                .strip_prefix(&pids)
                .ok()
                .and_then(|rel| rel.as_str().rsplit_once('.'))
                .map(|(id, _)| id);
            if !id.is_some_and(&running) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_record_older_than_the_attempt_is_not_its() {
        let dir = std::env::temp_dir().join(format!("xtask-job-{}", std::process::id()));
        let layout = Layout::new(
            camino::Utf8PathBuf::from_path_buf(dir.clone()).unwrap(),
            None,
        );
        let before = SystemTime::now() - std::time::Duration::from_secs(1);
        assert_eq!(submitted_job(&layout, "p/a", before), None);
        write_job(&layout, "p/a", "4242").unwrap();
        assert_eq!(
            submitted_job(&layout, "p/a", before).as_deref(),
            Some("4242")
        );
        // An attempt that started after the record was written.
        let after = SystemTime::now() + std::time::Duration::from_secs(1);
        assert_eq!(submitted_job(&layout, "p/a", after), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
