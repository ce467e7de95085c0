//! The supervisor: one process per run, between the orchestrator and the
//! tasks. It starts each task in a process group of its own, enforces its
//! timeout and idle timeout (SIGTERM to the group, SIGKILL after the grace
//! period), kills whatever the task left behind, and writes the task's exit
//! record. It outlives the orchestrator: when the orchestrator dies, it goes
//! on until its tasks end, so a task's real exit code is never lost.
//!
//! It costs one exec per run, not one per task: the orchestrator sends it
//! requests as JSON lines on its stdin and reads reports on its stdout.
//! Invoked as `xtask __supervise`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::{cgroups, process};

/// The first argument that makes the binary a supervisor.
pub const ARG: &str = "__supervise";

/// How often idle timeouts are checked.
const TICK: Duration = Duration::from_millis(100);

/// What the orchestrator asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Launch(Spec),
    /// Stop the task: SIGTERM to its group, SIGKILL after the grace period.
    Stop {
        task_id: String,
    },
}

/// One task to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub task_id: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_file: Utf8PathBuf,
    pub exit_file: Utf8PathBuf,
    pub pid_file: Utf8PathBuf,
    pub timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub grace_ms: u64,
    /// Enforced with a cgroup where cgroups can be written.
    pub cpus: f64,
    pub memory_bytes: u64,
}

/// What the supervisor reports.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Report {
    Started {
        task_id: String,
        pid: u32,
    },
    /// The task's exit record is written.
    Ended {
        task_id: String,
    },
}

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    Exited,
    Timeout,
    IdleTimeout,
    Interrupted,
    SpawnFailed,
    /// Set by an executor that knows (Slurm's OUT_OF_MEMORY).
    OutOfMemory,
    /// The node or the job was lost (Slurm's NODE_FAIL): retried like a failure.
    Lost,
}

impl ExitRecord {
    /// A record of an ending at this moment, with nothing else known yet.
    pub fn now(ending: Ending) -> ExitRecord {
        ExitRecord {
            ending,
            exit_code: None,
            signal: None,
            ended_at: crate::status::timestamp(SystemTime::now()),
            message: None,
            limits_enforced: false,
            peak_memory_bytes: None,
            cpu_seconds: None,
        }
    }
}

pub fn read_record(path: &Utf8Path) -> Option<ExitRecord> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

enum Message {
    Request(Request),
    /// The orchestrator closed our stdin: it ended, or died.
    Eof,
    Reaped(u32, ExitStatus),
}

struct Running {
    spec: Spec,
    group: Option<cgroups::Group>,
    started: Instant,
    /// Why it is being stopped, once it is.
    stopping: Option<Ending>,
    kill_at: Option<Instant>,
    log_size: u64,
    last_growth: Instant,
}

/// Runs the supervisor; returns its exit code.
pub fn main() -> i32 {
    // Tasks inherit the signal mask: undo the orchestrator's.
    crate::signals::unblock();
    let (tx, rx) = mpsc::channel();
    read_requests(tx.clone());
    let mut tasks: HashMap<u32, Running> = HashMap::new();
    let mut programs = Programs::default();
    let hierarchy = cgroups::detect().ok();
    if let Some(hierarchy) = &hierarchy {
        hierarchy.clean_stale();
    }
    let mut groups = 0u64;
    let mut spare = new_group(hierarchy.as_ref(), &mut groups);
    let mut orchestrator_gone = false;
    loop {
        if orchestrator_gone && tasks.is_empty() {
            if let Some(group) = spare.take() {
                group.remove();
            }
            return 0;
        }
        match rx.recv_timeout(TICK) {
            Ok(Message::Request(Request::Launch(spec))) => {
                let group = spare
                    .take()
                    .or_else(|| new_group(hierarchy.as_ref(), &mut groups))
                    .and_then(|group| match group.limit(spec.cpus, spec.memory_bytes) {
                        Ok(()) => Some(group),
                        Err(e) => {
                            eprintln!("xtask supervisor: cannot set the limits of a cgroup: {e}");
                            group.remove();
                            None
                        }
                    });
                launch(spec, group, &mut programs, &tx, &mut tasks);
                // The next task's groups, made while this one starts.
                spare = new_group(hierarchy.as_ref(), &mut groups);
            }
            Ok(Message::Request(Request::Stop { task_id })) => {
                if let Some(task) = tasks.values_mut().find(|t| t.spec.task_id == task_id) {
                    task.stopping.get_or_insert(Ending::Interrupted);
                }
            }
            Ok(Message::Eof) => orchestrator_gone = true,
            Ok(Message::Reaped(pid, status)) => {
                if let Some(task) = tasks.remove(&pid) {
                    let usage = task
                        .group
                        .as_ref()
                        .map(cgroups::Group::usage)
                        .unwrap_or_default();
                    let ending = match task.stopping {
                        Some(ending) => ending,
                        // A child killed for memory whose parent still
                        // succeeded is not a failure of the task.
                        None if usage.oom_killed && !status.success() => Ending::OutOfMemory,
                        None => Ending::Exited,
                    };
                    let enforced = task.group.is_some();
                    record(
                        &task.spec,
                        ending,
                        Some(status),
                        None,
                        Some((enforced, usage)),
                    );
                    // Removed once the orchestrator has heard of the end.
                    if let Some(group) = task.group {
                        group.remove();
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return 0,
        }
        for (&pid, task) in tasks.iter_mut() {
            enforce(pid, task);
        }
    }
}

/// A new, empty group for a task to come, named after this supervisor.
fn new_group(hierarchy: Option<&cgroups::Hierarchy>, count: &mut u64) -> Option<cgroups::Group> {
    let hierarchy = hierarchy?;
    *count += 1;
    let name = format!("{}-{count}", std::process::id());
    hierarchy
        .create(&name)
        .map_err(|e| eprintln!("xtask supervisor: cannot create cgroup {name}: {e}"))
        .ok()
}

/// Forwards each request line to the loop; a line that does not parse is
/// reported on stderr and skipped.
fn read_requests(tx: Sender<Message>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str(&line) {
                Ok(request) => {
                    if tx.send(Message::Request(request)).is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("xtask supervisor: bad request ({e}): {line}"),
            }
        }
        let _ = tx.send(Message::Eof);
    });
}

/// Programs found on PATH, by name. Without this every start would search
/// PATH again, one failed exec per folder before the right one.
#[derive(Default)]
struct Programs(HashMap<String, std::path::PathBuf>);

impl Programs {
    fn resolve(&mut self, program: &str) -> std::path::PathBuf {
        if program.contains('/') {
            return program.into();
        }
        if let Some(path) = self.0.get(program) {
            return path.clone();
        }
        let Ok(path) = which::which(program) else {
            return program.into();
        };
        self.0.insert(program.to_owned(), path.clone());
        path
    }
}

fn launch(
    spec: Spec,
    group: Option<cgroups::Group>,
    programs: &mut Programs,
    tx: &Sender<Message>,
    tasks: &mut HashMap<u32, Running>,
) {
    let procs = group
        .as_ref()
        .map(cgroups::Group::procs_files)
        .unwrap_or_default();
    match spawn(&spec, programs, procs) {
        Ok(child) => {
            let pid = child.id();
            if let Err(e) = crate::atomic::write(&spec.pid_file, format!("{pid}\n").as_bytes()) {
                eprintln!("xtask supervisor: {e:#}");
            }
            report(&Report::Started {
                task_id: spec.task_id.clone(),
                pid,
            });
            wait_in_background(child, spec.log_file.clone(), tx.clone());
            let now = Instant::now();
            tasks.insert(
                pid,
                Running {
                    spec,
                    group,
                    started: now,
                    stopping: None,
                    kill_at: None,
                    log_size: 0,
                    last_growth: now,
                },
            );
        }
        Err(e) => {
            let message = format!("{e:#}");
            append_to_log(&spec.log_file, &format!("xtask: {message}"));
            if let Some(group) = group {
                group.remove();
            }
            record(&spec, Ending::SpawnFailed, None, Some(message), None);
        }
    }
}

fn spawn(
    spec: &Spec,
    programs: &mut Programs,
    cgroup_procs: Vec<std::ffi::CString>,
) -> Result<std::process::Child> {
    let log = File::options()
        .append(true)
        .open(&spec.log_file)
        .with_context(|| format!("cannot open log {}", spec.log_file))?;
    let stderr = log
        .try_clone()
        .context("cannot duplicate the log file handle")?;
    let mut command = Command::new(programs.resolve(&spec.argv[0]));
    if !cgroup_procs.is_empty() {
        // SAFETY: `join` only makes async-signal-safe system calls, on
        // strings prepared before the fork.
        unsafe { command.pre_exec(move || cgroups::join(&cgroup_procs)) };
    }
    command
        .args(&spec.argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start `{}`", spec.argv[0]))
}

/// Waits for the task on a thread of its own, then kills whatever it left
/// running in its group and waits for the group to be gone, so that nothing
/// of the task is alive once its end is recorded.
fn wait_in_background(mut child: std::process::Child, log: Utf8PathBuf, tx: Sender<Message>) {
    std::thread::spawn(move || {
        let pid = child.id();
        let status = child
            .wait()
            .unwrap_or_else(|_| ExitStatus::from_raw(0xff00));
        if process::signal_group(pid, libc::SIGKILL) {
            append_to_log(&log, "xtask: killed processes that the task left running");
        }
        process::wait_group_gone(pid, Duration::from_secs(2));
        let _ = tx.send(Message::Reaped(pid, status));
    });
}

/// Applies the timeout, the idle timeout and a requested stop to a task.
fn enforce(pgid: u32, task: &mut Running) {
    let now = Instant::now();
    if task.stopping.is_none() {
        let spec = &task.spec;
        if spec
            .timeout_ms
            .is_some_and(|ms| now - task.started >= Duration::from_millis(ms))
        {
            task.stopping = Some(Ending::Timeout);
        } else if let Some(idle) = spec.idle_timeout_ms.map(Duration::from_millis) {
            let size = spec.log_file.metadata().map(|m| m.len()).unwrap_or(0);
            if size != task.log_size {
                task.log_size = size;
                task.last_growth = now;
            }
            if now - task.last_growth >= idle {
                task.stopping = Some(Ending::IdleTimeout);
            }
        }
    }
    if task.stopping.is_none() {
        return;
    }
    match task.kill_at {
        None => {
            process::signal_group(pgid, libc::SIGTERM);
            task.kill_at = Some(now + Duration::from_millis(task.spec.grace_ms));
        }
        Some(at) if now >= at => {
            process::signal_group(pgid, libc::SIGKILL);
        }
        Some(_) => {}
    }
}

/// Writes the task's exit record, then tells the orchestrator.
fn record(
    spec: &Spec,
    ending: Ending,
    status: Option<ExitStatus>,
    message: Option<String>,
    limits: Option<(bool, cgroups::Usage)>,
) {
    let (limits_enforced, usage) = limits.unwrap_or_default();
    let record = ExitRecord {
        ending,
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        ended_at: crate::status::timestamp(SystemTime::now()),
        message,
        limits_enforced,
        peak_memory_bytes: usage.peak_memory_bytes,
        cpu_seconds: usage.cpu_seconds,
    };
    let written = serde_json::to_vec(&record)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| crate::atomic::write(&spec.exit_file, &bytes));
    if let Err(e) = written {
        eprintln!("xtask supervisor: {e:#}");
    }
    report(&Report::Ended {
        task_id: spec.task_id.clone(),
    });
}

/// One report line on stdout. The orchestrator may be gone (a broken pipe):
/// the exit record on disk is what counts then.
fn report(report: &Report) {
    let Ok(line) = serde_json::to_string(report) else {
        return;
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn append_to_log(log: &Utf8Path, line: &str) {
    if let Ok(mut file) = File::options().append(true).open(log) {
        let _ = writeln!(file, "{line}");
    }
}
