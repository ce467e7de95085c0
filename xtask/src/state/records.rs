//! What `workspace/pids/` holds for a task whose orchestrator died: its pid
//! (written by the supervisor), its exit record (by the supervisor, the
//! Slurm poller, or the run while the task's work waits in the merge
//! queue) and its Slurm job. The next orchestrator reads them to take
//! over, and removes them once the task's final status is written.

use std::time::SystemTime;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::model::layout::{handover_of, Layout};
use crate::state::atomic;
use crate::state::status::{self, Ending, Status};
use crate::sys::process::{self, Process};
use crate::sys::walk::{walk, Step};

/// How the task ended, as written to `workspace/pids/<id>.exit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    pub ending: Ending,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    /// To the millisecond (to the microsecond from a supervisor, whose
    /// task's exit an adopting run compares with its stop): an adopted
    /// task's duration is taken from it.
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
    /// The timeout or idle timeout that stopped it, as its supervisor was
    /// given it: the config may set another by the time a run judges it
    /// (edited before a run adopted it).
    #[serde(default)]
    pub limit_ms: Option<u64>,
    /// Likewise the memory limit of its group, for one that limit killed.
    #[serde(default)]
    pub memory_limit_bytes: Option<u64>,
}

impl ExitRecord {
    /// How it ended, in a few words: `exit code 0`, `signal 9`.
    pub fn how(&self) -> String {
        match (self.exit_code, self.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "no exit code".to_owned(),
        }
    }

    /// When it ended, as the views say it: to the millisecond (a
    /// supervisor's record is finer).
    pub fn ended_at_shown(&self) -> String {
        status::parse_timestamp(&self.ended_at)
            .map_or_else(|| self.ended_at.clone(), status::timestamp_millis)
    }

    /// A record of an ending at this moment, with nothing else known yet.
    pub fn now(ending: Ending) -> ExitRecord {
        ExitRecord {
            ending,
            exit_code: None,
            signal: None,
            ended_at: status::timestamp_millis(SystemTime::now()),
            message: None,
            limits_enforced: false,
            peak_memory_bytes: None,
            cpu_seconds: None,
            attempt: None,
            limit_ms: None,
            memory_limit_bytes: None,
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

/// The timeouts a supervisor enforced on a task, written in its pid file
/// after the pid: a run that takes the task up once that supervisor is
/// gone enforces them in its stead, also when the task's file, which set
/// them, is gone too (see `run::unlisted`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforced {
    pub timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub prompt_idle_ms: Option<u64>,
}

/// Writes a task's pid file: `pid start` (the start when known), then on
/// a line of its own what its supervisor enforced.
pub fn write_pid(path: &Utf8Path, task: Process, enforced: &Enforced) -> Result<()> {
    let start = task
        .start
        .map_or(String::new(), |start| format!(" {start}"));
    let enforced = serde_json::to_string(enforced)?;
    atomic::write(
        path,
        format!("{}{start}\n{enforced}\n", task.pid).as_bytes(),
    )
}

/// The pid the supervisor wrote for a running task, if it did, with the
/// process's start time (`pid start`), by which a process that reused the
/// pid since is not taken for the task. (A file of an older version has
/// the pid alone.)
pub fn recorded_pid(layout: &Layout, id: &str) -> Option<Process> {
    let text = std::fs::read_to_string(layout.pid_file(id)).ok()?;
    let mut fields = text.lines().next()?.split_whitespace();
    let pid = fields.next()?.parse().ok()?;
    let start = fields.next().and_then(|start| start.parse().ok());
    Some(Process { pid, start })
}

/// What the supervisor of task `id` enforced on it, as its pid file says
/// (`None`: no pid file, or one of an older version that says nothing).
pub fn recorded_enforced(layout: &Layout, id: &str) -> Option<Enforced> {
    let text = std::fs::read_to_string(layout.pid_file(id)).ok()?;
    serde_json::from_str(text.lines().nth(1)?).ok()
}

/// The pid of attempt `attempt` of task `id`, whose status has none: the
/// pid file its supervisor wrote, or, `orphaned` (its supervisor died too
/// before anyone wrote it, in its first second), the process that carries
/// its environment, if it still runs.
pub fn task_process(layout: &Layout, id: &str, attempt: u32, orphaned: bool) -> Option<Process> {
    let workspace = layout.workspace.as_str();
    let recorded = recorded_pid(layout, id).map(|task| match task.start {
        Some(_) => task,
        // A pid alone (an older version's file): the process there now is
        // the task's only if it carries its environment. One that does not
        // came since, so the task's group is gone (see `Process::alive`):
        // a start no process but init has says so.
        None => Process {
            start: match process::start_time(task.pid) {
                Some(_) if !process::carries_task(task.pid, workspace, id, attempt) => Some(0),
                start => start,
            },
            ..task
        },
    });
    recorded.or_else(|| {
        let pid = orphaned.then(|| process::find_task(workspace, id, attempt))??;
        // Found by its environment: the process there now is the task's.
        Some(Process {
            pid,
            start: process::start_time(pid),
        })
    })
}

/// The Slurm job an attempt was submitted as, in `workspace/pids/<id>.job`:
/// written as soon as sbatch answers, since the running status names the
/// job only a moment later, and a crash in between must not lose a job
/// that runs on regardless.
#[derive(Serialize, Deserialize)]
struct JobRecord {
    job_id: String,
    attempt: u32,
}

/// Records that attempt `attempt` of task `id` was submitted as `job_id`.
pub fn write_job(layout: &Layout, id: &str, job_id: &str, attempt: u32) -> Result<()> {
    let record = JobRecord {
        job_id: job_id.to_owned(),
        attempt,
    };
    atomic::write(&layout.job_file(id), &serde_json::to_vec(&record)?)
}

/// Records that attempt `attempt` of task `id` is being submitted, its
/// job id not known yet (a job record with none): written before its
/// sbatch runs, so that a run that takes up a killed one finds the task in
/// `workspace/pids/` also when its task file is gone since (see
/// `run::unlisted`).
pub fn write_submitting(layout: &Layout, id: &str, attempt: u32) -> Result<()> {
    write_job(layout, id, "", attempt)
}

/// The job record of task `id`, if it is of attempt `attempt`.
fn job_record(layout: &Layout, id: &str, attempt: u32) -> Option<JobRecord> {
    let bytes = std::fs::read(layout.job_file(id)).ok()?;
    let record: JobRecord = serde_json::from_slice(&bytes).ok()?;
    (record.attempt == attempt).then_some(record)
}

/// The Slurm job attempt `attempt` of task `id` was submitted as, if its
/// record says so: another attempt's job is not this one's, and a record
/// written as its sbatch started names none. (A run removes the records of
/// tasks not running at its start: `remove_stale`.)
pub fn submitted_job(layout: &Layout, id: &str, attempt: u32) -> Option<String> {
    let record = job_record(layout, id, attempt)?;
    (!record.job_id.is_empty()).then_some(record.job_id)
}

/// Whether attempt `attempt` of task `id` was handed to sbatch (see
/// `write_submitting`), its job recorded or not.
pub fn submitting(layout: &Layout, id: &str, attempt: u32) -> bool {
    job_record(layout, id, attempt).is_some()
}

/// Removes the exit record and pid file of task `id` (its Slurm job record
/// stays, naming the job of its latest attempt, until the next run starts
/// with the task not running).
pub fn remove(layout: &Layout, id: &str) -> Result<()> {
    atomic::remove(&layout.exit_file(id))?;
    atomic::remove(&layout.pid_file(id))
}

/// Removes the files under `workspace/pids/` of tasks that `running` says
/// are not running: a record written for a task whose final status was
/// written just before its orchestrator died, say. A later attempt of that
/// task must never be mistaken for the one they describe. The pid file of
/// a task process alive stays (see `live_unrecorded`).
pub fn remove_stale(layout: &Layout, running: impl Fn(&str) -> bool) {
    for (path, id) in files(layout) {
        let live = || path.extension() == Some("pid") && live_process(layout, &id).is_some();
        if !running(&id) && !live() {
            let _ = std::fs::remove_file(&path);
        }
    }
    remove_cut_writes(layout);
}

/// Removes the temporary files of atomic writes (`.<name>.<pid>.<n>.tmp`)
/// whose writer is gone: a supervisor killed as it wrote its records
/// (which it does as its orchestrator dies) never renames them. One whose
/// writer lives is a write in progress, left alone.
fn remove_cut_writes(layout: &Layout) {
    walk([layout.pids_dir()], |entry| {
        let writer = (entry.name().and_then(|name| name.strip_prefix('.')))
            .and_then(|name| name.strip_suffix(".tmp"))
            .and_then(|name| name.rsplit('.').nth(1))
            .and_then(|pid| pid.parse::<u32>().ok());
        if writer.is_some_and(|pid| pid != 0 && !process::is_same_process(pid, None)) {
            let _ = std::fs::remove_file(entry.path());
        }
        Step::Into
    });
}

/// The tasks whose process the supervisor recorded and is alive, but that
/// `running` says are not running: their status was removed, or cannot be
/// read, while they ran on under a supervisor whose orchestrator died. A
/// new attempt would run beside them.
pub fn live_unrecorded(layout: &Layout, running: impl Fn(&str) -> bool) -> Vec<(String, Process)> {
    (files(layout).into_iter())
        .filter(|(path, id)| path.extension() == Some("pid") && !running(id))
        .filter_map(|(_, id)| Some((id.clone(), live_process(layout, &id)?)))
        .collect()
}

/// The tasks recorded running that `known` does not know, each with its
/// status: a killed run's supervisor handed them over, and their task
/// files are gone since (see `run::unlisted`). Found by their files in
/// `workspace/pids/`, which holds only what a killed run left: no other
/// status is read, unless `every_status`: then also among all the status
/// files, as is asked while the last run is unfinished (`runs::unfinished`):
/// one going on, whose running tasks have no record there (its supervisor
/// writes them only if the run dies) and may have lost their files since
/// the run read them, or one killed with its supervisor, which wrote none.
pub fn running_unknown(
    layout: &Layout,
    known: impl Fn(&str) -> bool,
    every_status: bool,
) -> Vec<(String, Status)> {
    let recorded = files(layout).into_iter().map(|(_, id)| id);
    let listed = every_status.then(|| status::ids_on_disk(layout));
    let mut ids: Vec<String> = (recorded.chain(listed.into_iter().flatten()))
        .filter(|id| !known(id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    (ids.into_iter())
        .filter_map(|id| {
            let status = status::read(layout, &id).ok().flatten()?;
            (status.status == status::State::Running).then_some((id, status))
        })
        .collect()
}

/// The process recorded for task `id`, if it is the one recorded (its
/// start time says so) and alive.
fn live_process(layout: &Layout, id: &str) -> Option<Process> {
    recorded_pid(layout, id).filter(|p| p.start.is_some() && p.alive())
}

/// The files under `workspace/pids/`, each with the task it is of, but
/// atomic writes in progress (dot-files, maybe by the supervisor of an
/// orchestrator that died).
fn files(layout: &Layout) -> Vec<(Utf8PathBuf, String)> {
    let pids = layout.pids_dir();
    let mut found = Vec::new();
    walk([pids.clone()], |entry| {
        let Some(path) = entry.utf8() else {
            return Step::Past;
        };
        if !entry.is_folder && !path.file_name().unwrap_or_default().starts_with('.') {
            let id = (path.strip_prefix(&pids).ok())
                .and_then(|rel| rel.as_str().rsplit_once('.'))
                .map(|(id, _)| id.to_owned());
            found.extend(id.map(|id| (path.to_owned(), id)));
        }
        Step::Into
    });
    found
}

/// Removes the hand-over marks (`Layout::handover_mark`) of supervisors
/// gone, at a run's end: a task under one of them was settled by that run
/// (adopted by its pid, or never started); only a supervisor alive then
/// has tasks whose fate waits on its mark.
pub fn remove_stale_handovers(layout: &Layout) {
    let Ok(entries) = layout.pids_dir().read_dir_utf8() else {
        return;
    };
    for entry in entries.flatten() {
        let Some((pid, start)) = handover_of(entry.file_name()) else {
            continue;
        };
        let supervisor = crate::sys::process::Process { pid, start };
        if !supervisor.alive() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_record_names_the_job_of_its_attempt_only() {
        let dir = std::env::temp_dir().join(format!("xtask-job-{}", std::process::id()));
        let layout = Layout::new(
            camino::Utf8PathBuf::from_path_buf(dir.clone()).unwrap(),
            None,
        );
        assert_eq!(submitted_job(&layout, "p/a", 1), None);
        write_job(&layout, "p/a", "4242", 1).unwrap();
        assert_eq!(submitted_job(&layout, "p/a", 1).as_deref(), Some("4242"));
        // Attempt 2 written as running, and a crash before its submission:
        // attempt 1's job is not its own.
        assert_eq!(submitted_job(&layout, "p/a", 2), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
