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

pub mod cgroups;
mod slot;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use crate::executor::protocol::{ExitRecord, Report, Request, Spec, PROMPTS_ENV};
use crate::executor::watchdog::{Alarm, Watchdog};
use crate::state::records::write_record;
use crate::state::status::Ending;
use crate::sys::process;
use slot::Slot;

/// How often idle timeouts are checked.
const TICK: Duration = Duration::from_millis(100);

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
    watchdog: Watchdog,
    /// Why it is being stopped, once it is.
    stopping: Option<Alarm>,
    kill_at: Option<Instant>,
    /// SIGKILL has been sent.
    killed: bool,
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
    /// The prompt patterns, the same for every task (see `PROMPTS_ENV`).
    prompts: Arc<[String]>,
}

/// Runs the supervisor; returns its exit code.
pub fn main() -> i32 {
    // Tasks inherit the signal mask: undo the orchestrator's.
    crate::sys::signals::unblock();
    process::become_subreaper();
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
        prompts: std::env::var(PROMPTS_ENV)
            .ok()
            .and_then(|json| serde_json::from_str::<Vec<String>>(&json).ok())
            .unwrap_or_default()
            .into(),
    };
    while !(supervisor.orchestrator_gone && supervisor.running.is_empty()) {
        match rx.recv_timeout(TICK) {
            Ok(Message::Request(Request::Launch(spec))) => supervisor.launch(*spec),
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
        self.running
            .insert(slot, Running::new(spec.clone(), &self.prompts));
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
            task.stopping.get_or_insert(Alarm {
                ending: Ending::Interrupted,
                detail: None,
            });
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
            keep_record(&exit_file, &record);
        }
    }

    /// Keeps the record until the orchestrator has used it (on disk once
    /// nobody else will), then reports it.
    fn record(&mut self, spec: &Spec, record: ExitRecord) {
        if self.orchestrator_gone {
            keep_record(&spec.exit_file, &record);
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

fn keep_record(exit_file: &Utf8Path, record: &ExitRecord) {
    if let Err(e) = write_record(exit_file, record) {
        eprintln!("xtask supervisor: {e:#}");
    }
}

impl Running {
    fn new(spec: Spec, prompts: &Arc<[String]>) -> Running {
        let ms = |ms: u64| Duration::from_millis(ms);
        let watchdog = Watchdog::new(
            spec.log_file.clone(),
            spec.timeout_ms.map(ms),
            spec.idle_timeout_ms.map(ms),
            Instant::now(),
        );
        let watchdog = match spec.prompt_idle_ms {
            Some(idle) => watchdog.with_prompts(ms(idle), prompts.clone()),
            None => watchdog,
        };
        Running {
            spec,
            pid: 0,
            watchdog,
            stopping: None,
            kill_at: None,
            killed: false,
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
            let ending = match &task.stopping {
                Some(alarm) => alarm.ending,
                // A child killed for memory whose parent still succeeded is
                // not a failure of the task.
                None if usage.oom_killed && !status.success() => {
                    let limit = task.spec.memory_bytes as f64 / (1u64 << 30) as f64;
                    append_to_log(
                        &task.spec.log_file,
                        &format!("xtask: out of memory: killed by the kernel at its limit of {limit:.2} GiB"),
                    );
                    Ending::OutOfMemory
                }
                None => Ending::Exited,
            };
            ExitRecord {
                exit_code: status.code(),
                signal: status.signal(),
                limits_enforced: enforced,
                peak_memory_bytes: usage.peak_memory_bytes,
                cpu_seconds: usage.cpu_seconds,
                message: task.stopping.as_ref().and_then(|a| a.detail.clone()),
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

/// Applies the timeout, the idle timeout and a requested stop to a task.
fn enforce(task: &mut Running) {
    let now = Instant::now();
    if task.stopping.is_none() {
        task.stopping = task.watchdog.check(now);
    }
    // A task stopped before its start is reported is signalled once it is.
    if task.stopping.is_none() || task.pid == 0 {
        return;
    }
    let grace = Duration::from_millis(task.spec.grace_ms);
    match task.kill_at {
        None => {
            let why = why_stopped(&task.spec, task.stopping.as_ref());
            append_to_log(
                &task.spec.log_file,
                &format!("xtask: {why}: SIGTERM sent to the task's processes"),
            );
            process::signal_group(task.pid, libc::SIGTERM);
            task.kill_at = Some(now + grace);
        }
        Some(at) if now >= at => {
            if !task.killed {
                let grace = humantime::format_duration(grace);
                append_to_log(
                    &task.spec.log_file,
                    &format!("xtask: still running {grace} after SIGTERM: SIGKILL sent"),
                );
                task.killed = true;
            }
            process::signal_group(task.pid, libc::SIGKILL);
        }
        Some(_) => {}
    }
}

/// Why a task is being stopped, said in its log.
fn why_stopped(spec: &Spec, stopping: Option<&Alarm>) -> String {
    let limit =
        |ms: Option<u64>| humantime::format_duration(Duration::from_millis(ms.unwrap_or(0)));
    match stopping.map(|a| a.ending) {
        Some(Ending::Timeout) => format!("timed out after {}", limit(spec.timeout_ms)),
        Some(Ending::IdleTimeout) => format!(
            "idle for {} (its log did not grow)",
            limit(spec.idle_timeout_ms)
        ),
        Some(Ending::WaitingForInput) => format!(
            "waiting for input: its log has been still for {} and ends with a question",
            limit(spec.prompt_idle_ms)
        ),
        _ => "interrupted".to_owned(),
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
