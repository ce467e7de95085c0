//! The supervisor: one process per run, between the orchestrator and the
//! tasks. It starts each task in a process group of its own, enforces its
//! timeout and idle timeout (SIGTERM to the group, SIGKILL after the grace
//! period), kills whatever the task left behind, and writes the task's exit
//! record. It outlives the orchestrator: when the orchestrator dies, it goes
//! on until its tasks end, so a task's real exit code is never lost.
//!
//! While the orchestrator lives, nothing goes through the disk: the exit
//! record travels in the report, and the supervisor keeps it until the
//! orchestrator acknowledges (`ack`) that the task's final status is
//! written. When the orchestrator is gone (its end of the pipe closes), the
//! supervisor writes what the next orchestrator needs to take over: a pid
//! file for each running task, the records not yet acknowledged, and from
//! then on the record of each task that ends (`workspace/pids/`).
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

use crate::sys::process;
pub mod cgroups;

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
    Started { task_id: String, pid: u32 },
    Ended { task_id: String, record: ExitRecord },
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
    /// The attempt it ended, so that a record left from an earlier attempt
    /// is never taken for the current one (`None`: Slurm's, or unknown).
    #[serde(default)]
    pub attempt: Option<u32>,
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
            ended_at: crate::state::status::timestamp(SystemTime::now()),
            message: None,
            limits_enforced: false,
            peak_memory_bytes: None,
            cpu_seconds: None,
            attempt: None,
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
    /// A slot's task started.
    Started {
        slot: usize,
        pid: u32,
    },
    /// A slot's task ended, or could not start; the slot is free again.
    Ended {
        slot: usize,
        outcome: Outcome,
    },
}

/// How a task ended, as its slot saw it.
enum Outcome {
    Exited {
        status: ExitStatus,
        usage: cgroups::Usage,
        enforced: bool,
    },
    SpawnFailed(String),
}

struct Running {
    spec: Spec,
    /// 0 until its slot reports the start.
    pid: u32,
    started: Instant,
    /// Why it is being stopped, once it is.
    stopping: Option<Ending>,
    kill_at: Option<Instant>,
    log_size: u64,
    last_growth: Instant,
}

/// A thread that starts tasks one after the other and waits for each, in
/// cgroups of its own that every task of the slot reuses. There are as many
/// slots as tasks ever ran at once.
struct Slot {
    jobs: Sender<Spec>,
    thread: std::thread::JoinHandle<()>,
}

/// The supervisor's state, owned by its main loop.
struct Supervisor {
    tx: Sender<Message>,
    hierarchy: Option<cgroups::Hierarchy>,
    slots: Vec<Slot>,
    /// The running tasks, by slot.
    running: HashMap<usize, Running>,
    /// Records reported but not yet acknowledged, by task id and attempt.
    unacked: HashMap<(String, u32), (Utf8PathBuf, ExitRecord)>,
    orchestrator_gone: bool,
}

/// Runs the supervisor; returns its exit code.
pub fn main() -> i32 {
    // Tasks inherit the signal mask: undo the orchestrator's.
    crate::sys::signals::unblock();
    let (tx, rx) = mpsc::channel();
    read_requests(tx.clone());
    let hierarchy = cgroups::detect().ok();
    if let Some(hierarchy) = &hierarchy {
        hierarchy.clean_stale();
    }
    let mut supervisor = Supervisor {
        tx,
        hierarchy,
        slots: Vec::new(),
        running: HashMap::new(),
        unacked: HashMap::new(),
        orchestrator_gone: false,
    };
    while !(supervisor.orchestrator_gone && supervisor.running.is_empty()) {
        match rx.recv_timeout(TICK) {
            Ok(Message::Request(Request::Launch(spec))) => supervisor.launch(spec),
            Ok(Message::Request(Request::Stop { task_id })) => supervisor.stop(&task_id),
            Ok(Message::Request(Request::Ack { attempts })) => {
                for attempt in attempts {
                    supervisor.unacked.remove(&attempt);
                }
            }
            Ok(Message::Eof) => supervisor.orchestrator_left(),
            Ok(Message::Started { slot, pid }) => supervisor.started(slot, pid),
            Ok(Message::Ended { slot, outcome }) => {
                if let Some(task) = supervisor.running.remove(&slot) {
                    let record = ended(&task, outcome);
                    supervisor.record(&task.spec, record);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        for task in supervisor.running.values_mut() {
            enforce(task);
        }
    }
    // Each slot's thread removes its groups once it has no more work.
    for slot in supervisor.slots {
        drop(slot.jobs);
        let _ = slot.thread.join();
    }
    0
}

impl Supervisor {
    /// Hands the task to a free slot, or to a new one.
    fn launch(&mut self, spec: Spec) {
        let slot = (0..self.slots.len())
            .find(|slot| !self.running.contains_key(slot))
            .unwrap_or_else(|| {
                let slot = Slot::start(self.slots.len(), self.hierarchy.clone(), self.tx.clone());
                self.slots.push(slot);
                self.slots.len() - 1
            });
        self.running.insert(slot, Running::new(spec.clone()));
        if self.slots[slot].jobs.send(spec).is_err() {
            let message = "the supervisor's slot thread is gone".to_owned();
            let _ = self.tx.send(Message::Ended {
                slot,
                outcome: Outcome::SpawnFailed(message),
            });
        }
    }

    fn stop(&mut self, task_id: &str) {
        if let Some(task) = self
            .running
            .values_mut()
            .find(|t| t.spec.task_id == task_id)
        {
            task.stopping.get_or_insert(Ending::Interrupted);
        }
    }

    fn started(&mut self, slot: usize, pid: u32) {
        let Some(task) = self.running.get_mut(&slot) else {
            return;
        };
        task.pid = pid;
        if self.orchestrator_gone {
            write_pid_file(task);
        }
        report(&Report::Started {
            task_id: task.spec.task_id.clone(),
            pid,
        });
    }

    /// The orchestrator is gone: what only this process knows goes to disk.
    fn orchestrator_left(&mut self) {
        self.orchestrator_gone = true;
        for task in self.running.values().filter(|t| t.pid != 0) {
            write_pid_file(task);
        }
        // Oldest attempt first: a task's latest record is the one left.
        let mut unacked: Vec<_> = self.unacked.drain().collect();
        unacked.sort_by_key(|((_, attempt), _)| *attempt);
        for (_, (exit_file, record)) in unacked {
            write_record(&exit_file, &record);
        }
    }

    /// Keeps the record until the orchestrator has used it (on disk once
    /// nobody else will), then reports it.
    fn record(&mut self, spec: &Spec, record: ExitRecord) {
        if self.orchestrator_gone {
            write_record(&spec.exit_file, &record);
        } else {
            let attempt = (spec.task_id.clone(), spec.attempt);
            let kept = (spec.exit_file.clone(), record.clone());
            self.unacked.insert(attempt, kept);
        }
        report(&Report::Ended {
            task_id: spec.task_id.clone(),
            record,
        });
    }
}

fn write_pid_file(task: &Running) {
    let pid = format!("{}\n", task.pid);
    if let Err(e) = crate::state::atomic::write(&task.spec.pid_file, pid.as_bytes()) {
        eprintln!("xtask supervisor: {e:#}");
    }
}

fn write_record(exit_file: &Utf8Path, record: &ExitRecord) {
    let written = serde_json::to_vec(record)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| crate::state::atomic::write(exit_file, &bytes));
    if let Err(e) = written {
        eprintln!("xtask supervisor: {e:#}");
    }
}

impl Running {
    fn new(spec: Spec) -> Running {
        let now = Instant::now();
        Running {
            spec,
            pid: 0,
            started: now,
            stopping: None,
            kill_at: None,
            log_size: 0,
            last_growth: now,
        }
    }
}

/// The exit record of a task, from how its slot saw it end.
fn ended(task: &Running, outcome: Outcome) -> ExitRecord {
    let record = match outcome {
        Outcome::Exited {
            status,
            usage,
            enforced,
        } => {
            let ending = match task.stopping {
                Some(ending) => ending,
                // A child killed for memory whose parent still succeeded is
                // not a failure of the task.
                None if usage.oom_killed && !status.success() => Ending::OutOfMemory,
                None => Ending::Exited,
            };
            ExitRecord {
                exit_code: status.code(),
                signal: status.signal(),
                limits_enforced: enforced,
                peak_memory_bytes: usage.peak_memory_bytes,
                cpu_seconds: usage.cpu_seconds,
                ..ExitRecord::now(ending)
            }
        }
        Outcome::SpawnFailed(message) => {
            append_to_log(&task.spec.log_file, &format!("xtask: {message}"));
            ExitRecord {
                message: Some(message),
                ..ExitRecord::now(Ending::SpawnFailed)
            }
        }
    };
    ExitRecord {
        attempt: Some(task.spec.attempt),
        ..record
    }
}

impl Slot {
    fn start(index: usize, hierarchy: Option<cgroups::Hierarchy>, tx: Sender<Message>) -> Slot {
        let (jobs, specs) = mpsc::channel::<Spec>();
        let thread = std::thread::spawn(move || {
            let name = format!("{}-{index}", std::process::id());
            let mut groups = SlotGroups::new(hierarchy, name);
            let mut programs = Programs::default();
            for spec in specs {
                let prepared = groups.prepare(&spec);
                let outcome = run(&spec, prepared, &mut programs, |pid| {
                    let _ = tx.send(Message::Started { slot: index, pid });
                });
                let ended = Message::Ended {
                    slot: index,
                    outcome,
                };
                if tx.send(ended).is_err() {
                    break;
                }
                groups.after(&spec);
            }
            groups.remove();
        });
        Slot { jobs, thread }
    }
}

/// A slot's cgroups, and the counters its next task is measured from. A
/// task that leaves too much charged to them (page cache, files in tmpfs)
/// gets them replaced, so that the next one is limited and measured on its
/// own.
struct SlotGroups {
    /// `None` once groups cannot be made here.
    hierarchy: Option<cgroups::Hierarchy>,
    name: String,
    made: u32,
    /// Creations that failed in a row.
    failures: u32,
    group: Option<cgroups::Group>,
    baseline: Option<cgroups::Baseline>,
}

impl SlotGroups {
    fn new(hierarchy: Option<cgroups::Hierarchy>, name: String) -> SlotGroups {
        let mut groups = SlotGroups {
            hierarchy,
            name,
            made: 0,
            failures: 0,
            group: None,
            baseline: None,
        };
        groups.renew();
        groups
    }

    /// Replaces the groups with new ones (the slot's thread moves along).
    fn renew(&mut self) {
        self.remove();
        let Some(hierarchy) = &self.hierarchy else {
            return;
        };
        self.made += 1;
        let name = format!("{}-{}", self.name, self.made);
        match hierarchy.create(&name) {
            Ok(group) => {
                self.group = Some(group);
                self.failures = 0;
            }
            Err(e) => {
                eprintln!("xtask supervisor: cannot create cgroup {name}: {e}");
                // Tried again after the next task; given up after a few.
                self.failures += 1;
                if self.failures >= 3 {
                    self.hierarchy = None;
                }
            }
        }
    }

    /// The groups with the task's limits, and the counters to measure it
    /// from: `None` when they cannot be had, and the task runs outside any
    /// group (its limits reported as not enforced).
    fn prepare(&mut self, spec: &Spec) -> Option<(&cgroups::Group, cgroups::Baseline)> {
        let group = self.group.as_mut()?;
        let baseline = match self.baseline.take() {
            Some(baseline) => Ok(baseline),
            None => group.baseline(),
        };
        let ready = baseline.and_then(|b| group.limit(spec.cpus, spec.memory_bytes).map(|()| b));
        match ready {
            Ok(baseline) => Some((self.group.as_ref()?, baseline)),
            Err(e) => {
                eprintln!(
                    "xtask supervisor: cannot set up a cgroup for {}: {e}",
                    spec.task_id
                );
                // Out of the groups, or the task would run in them anyway.
                self.remove();
                None
            }
        }
    }

    /// After a task: the counters for the next one, and the same limits
    /// (most likely the next task's), set now rather than at its start.
    fn after(&mut self, last: &Spec) {
        let Some(group) = &mut self.group else {
            return self.renew();
        };
        match group.baseline() {
            Ok(baseline) if group.reusable() => {
                let _ = group.limit(last.cpus, last.memory_bytes);
                self.baseline = Some(baseline);
            }
            _ => self.renew(),
        }
    }

    fn remove(&mut self) {
        self.baseline = None;
        if let Some(group) = self.group.take() {
            group.remove();
        }
    }
}

/// Starts one task in the slot's groups and waits for it; then kills
/// whatever it left running and waits for that to be gone, so that nothing
/// of the task is alive once its end is recorded.
fn run(
    spec: &Spec,
    prepared: Option<(&cgroups::Group, cgroups::Baseline)>,
    programs: &mut Programs,
    started: impl FnOnce(u32),
) -> Outcome {
    let join = prepared
        .as_ref()
        .map(|(group, _)| group.procs_files_to_join())
        .unwrap_or_default();
    let pid = match spawn(spec, programs, join) {
        Ok(child) => child.id(),
        Err(e) => return Outcome::SpawnFailed(format!("{e:#}")),
    };
    started(pid);
    let (status, rusage) = process::wait(pid);
    let mut leftovers = process::signal_group(pid, libc::SIGKILL);
    process::wait_group_gone(pid, Duration::from_secs(2));
    if let Some((group, _)) = &prepared {
        leftovers |= group.kill_strays();
    }
    if leftovers {
        append_to_log(
            &spec.log_file,
            "xtask: killed processes that the task left running",
        );
    }
    // Where the group cannot tell, what the kernel tells the parent: the largest
    // process's peak (at least the supervisor's size, which a child shares
    // until its exec) and the CPU time of the task and what it reaped.
    let mut usage = match &prepared {
        Some((group, baseline)) => group.usage(baseline),
        None => cgroups::Usage::default(),
    };
    usage.peak_memory_bytes.get_or_insert(rusage.peak_bytes);
    usage.cpu_seconds.get_or_insert(rusage.cpu_seconds);
    Outcome::Exited {
        status,
        usage,
        enforced: prepared.is_some(),
    }
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

/// Applies the timeout, the idle timeout and a requested stop to a task.
fn enforce(task: &mut Running) {
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
    // A task stopped before its start is reported is signalled once it is.
    if task.stopping.is_none() || task.pid == 0 {
        return;
    }
    match task.kill_at {
        None => {
            process::signal_group(task.pid, libc::SIGTERM);
            task.kill_at = Some(now + Duration::from_millis(task.spec.grace_ms));
        }
        Some(at) if now >= at => {
            process::signal_group(task.pid, libc::SIGKILL);
        }
        Some(_) => {}
    }
}

/// One report line on stdout. The orchestrator may be gone (a broken pipe):
/// the files written when its end of the pipe closes are what count then.
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
