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
//!
//! Its threads share its state under one lock, so that a task's start and
//! end each cross as few threads as they can (every hand-over costs a
//! wake-up): the thread that reads requests hands a task to its slot, the
//! slot's thread reports its end, and the main thread only enforces
//! timeouts and reports, every tick, the starts of the tasks still running
//! (a short task's start is never reported: its end says all).

pub mod cgroups;
mod slot;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use crate::executor::launch::told_error;
use crate::executor::protocol::{
    ExitRecord, Report, Request, Spec, PIDS_DIR_ENV, PROMPTS_ENV, SLOTS_ENV,
};
use crate::executor::watchdog::{Alarm, Escalation, Watchdog};
use crate::model::layout::handover_mark_in;
use crate::state::logs;
use crate::state::records::{write_pid, write_record, Enforced};
use crate::state::status::Ending;
use crate::sys::{lock, process, signals};
use slot::Slot;

/// How often idle timeouts are checked.
const TICK: Duration = Duration::from_millis(100);

/// How long a task runs before its start (and pid) is reported. The
/// orchestrator writes a pid only after a second (`run::PID_AFTER`), and
/// until then the supervisor, which keeps it, is who answers for the task.
const REPORT_START_AFTER: Duration = TICK;

/// How a task ended, as its slot saw it.
enum Outcome {
    Exited {
        status: ExitStatus,
        usage: cgroups::Usage,
        enforced: bool,
        /// When its own process exited (what it left may have ended later).
        at: std::time::SystemTime,
    },
    SpawnFailed(String),
}

struct Running {
    spec: Spec,
    /// 0 until its slot reports the start.
    pid: u32,
    /// When its slot reported the start, until the start is reported on.
    start_unreported: Option<Instant>,
    /// The `cgroup.procs` of the groups it runs in, if any: a stop's
    /// signals reach what they hold out of its process group too.
    cgroup_procs: Option<std::path::PathBuf>,
    watchdog: Watchdog,
    /// Why it is being stopped, once it is.
    stopping: Option<Alarm>,
    escalation: Escalation,
    /// Its own process has exited: its end is the one it had (no timeout
    /// or stop changes it any more), and what it left is its slot's to end
    /// (`Supervisor::exited`).
    exited: bool,
}

/// The supervisor's state, shared by its threads (see the module's
/// comment).
struct Supervisor {
    /// Wakes the main thread: its loop ends when the orchestrator is gone
    /// and no task runs.
    wake: Sender<()>,
    hierarchy: Option<cgroups::Hierarchy>,
    slots: Vec<Slot>,
    /// The running tasks, by slot.
    running: HashMap<usize, Running>,
    /// Records reported but not yet acknowledged, by task id and attempt.
    unacked: HashMap<(String, u32), (Utf8PathBuf, ExitRecord)>,
    orchestrator_gone: bool,
    /// Told to stop by a signal: no task starts any more.
    stopped: bool,
    /// The prompt patterns, the same for every task (see `PROMPTS_ENV`).
    prompts: Arc<[String]>,
    /// Where to mark, once its orchestrator is gone, that the pid file of
    /// every task it has is written (`Layout::handover_mark`); `None` once
    /// marked, or when it was not told where.
    handover: Option<Utf8PathBuf>,
}

type Shared = Arc<Mutex<Supervisor>>;

/// Runs the supervisor; returns its exit code.
pub fn main() -> i32 {
    // Tasks inherit the signal mask: undo the orchestrator's. SIGTERM,
    // SIGINT and SIGHUP (a `kill`, or a service manager stopping
    // everything) stop its tasks as an interruption would, their ends
    // recorded, rather than end it and leave them unwatched. Handled
    // before the unblocking, which delivers one sent while blocked.
    signals::count_received();
    signals::unblock();
    process::become_subreaper();
    let (prompts, slots, pids_dir) = take_settings();
    let me = std::process::id();
    let handover = pids_dir.map(|dir| handover_mark_in(&dir, me, process::start_time(me)));
    let (wake, woken) = mpsc::channel();
    let hierarchy = cgroups::detect().ok();
    if let Some(hierarchy) = &hierarchy {
        hierarchy.clean_stale();
    }
    let shared = Arc::new(Mutex::new(Supervisor {
        wake,
        hierarchy,
        slots: Vec::new(),
        running: HashMap::new(),
        unacked: HashMap::new(),
        orchestrator_gone: false,
        stopped: false,
        prompts: prompts.into(),
        handover,
    }));
    // The reader first: the slots made ahead may take what a per-user
    // limit of threads leaves, and a task without a slot is said to fail.
    if let Err(e) = read_requests(shared.clone()) {
        eprintln!("error: {e:#}");
        return 1;
    }
    let _ = lock(&shared).make_slots(slots, &shared);
    let mut signals_seen = 0;
    loop {
        {
            let mut supervisor = lock(&shared);
            let (received, signal) = signals::received();
            if received > signals_seen {
                // Two at once (systemd's SIGTERM and SIGHUP) are one stop:
                // only a signal after the stop began kills at once.
                supervisor.told_to_stop(signals_seen == 0, signal);
                signals_seen = received;
            }
            if supervisor.orchestrator_gone && supervisor.running.is_empty() {
                break;
            }
            // Reported under the lock: a task's end, reported once its slot
            // has the lock, always comes after its start.
            supervisor.tick().iter().for_each(report);
        }
        // Woken early when the loop may end; `wake` lives in the state.
        let _ = woken.recv_timeout(TICK);
    }
    // Each slot's thread ends once it has no more work; its groups are
    // removed once it has left them by ending, which costs the kernel
    // nothing, where moving out of them took a grace period (10 to 20 ms)
    // that the orchestrator waited for.
    let slots = std::mem::take(&mut lock(&shared).slots);
    let groups: Vec<_> = slots
        .into_iter()
        .filter_map(|slot| {
            drop(slot.jobs);
            slot.thread.join().ok().flatten()
        })
        .collect();
    groups.into_iter().for_each(cgroups::Group::remove_emptied);
    0
}

/// What the orchestrator set in the environment for the supervisor (the
/// prompt patterns, the slots to make at once), taken out of it so that no
/// task inherits them. Called before any thread is started: changing the
/// environment while another thread may read it is unsound.
fn take_settings() -> (Vec<String>, usize, Option<Utf8PathBuf>) {
    let take = |name| {
        let value = std::env::var(name).ok();
        std::env::remove_var(name);
        value
    };
    let prompts = take(PROMPTS_ENV).and_then(|json| serde_json::from_str(&json).ok());
    let slots = take(SLOTS_ENV).and_then(|n| n.parse().ok());
    let pids_dir = take(PIDS_DIR_ENV).map(Utf8PathBuf::from);
    (prompts.unwrap_or_default(), slots.unwrap_or(0), pids_dir)
}

impl Supervisor {
    /// Makes slots up to `count`, each setting up its groups on its own thread.
    /// Fewer when a thread cannot start: more are made when a task needs
    /// one, and the error is that task's.
    fn make_slots(&mut self, count: usize, shared: &Shared) -> anyhow::Result<()> {
        while self.slots.len() < count {
            let slot = Slot::start(self.slots.len(), self.hierarchy.clone(), shared.clone())?;
            self.slots.push(slot);
        }
        Ok(())
    }

    /// The supervisor got SIGTERM, SIGINT or SIGHUP (`signal`, the latest):
    /// its tasks are stopped (SIGKILL after their grace, or at once when
    /// not the `first` time), nothing starts any more, and its
    /// orchestrator, if alive, is told, to stop the run likewise.
    fn told_to_stop(&mut self, first: bool, signal: i32) {
        self.stopped = true;
        if first && !self.orchestrator_gone {
            report(&Report::Stopping { signal });
        }
        let ids: Vec<String> = self
            .running
            .values()
            .map(|t| t.spec.task_id.clone())
            .collect();
        for id in ids {
            match first {
                true => self.stop(&id),
                false => self.kill(&id),
            }
        }
    }

    /// Hands the task to a free slot, or to a new one. What it returns is
    /// to report (a task its slot could not take).
    fn launch(&mut self, spec: Spec, shared: &Shared) -> Option<Report> {
        if self.stopped {
            let message = "the supervisor was told to stop (SIGTERM, SIGINT or SIGHUP)";
            return Some(self.spawn_failed(&spec, message.to_owned()));
        }
        let free = (0..self.slots.len()).find(|slot| !self.running.contains_key(slot));
        let slot = match free {
            Some(slot) => slot,
            None => match self.make_slots(self.slots.len() + 1, shared) {
                Ok(()) => self.slots.len() - 1,
                Err(e) => return Some(self.spawn_failed(&spec, format!("{e:#}"))),
            },
        };
        self.running
            .insert(slot, Running::new(spec.clone(), &self.prompts));
        if self.slots[slot].jobs.send(spec).is_err() {
            let message = "the supervisor's slot thread is gone".to_owned();
            return self.ended(slot, Outcome::SpawnFailed(message));
        }
        None
    }

    /// The record of a task that could not start, said in its log.
    fn spawn_failed(&mut self, spec: &Spec, message: String) -> Report {
        logs::append_line(&spec.log_file, &format!("xtask: {message}"));
        let record = ExitRecord {
            message: Some(message),
            attempt: Some(spec.attempt),
            ..ExitRecord::now(Ending::SpawnFailed)
        };
        self.record(spec, record)
    }

    /// SIGTERM to the task's group now (or as soon as it has a pid),
    /// SIGKILL after the grace period.
    fn stop(&mut self, task_id: &str) {
        if let Some(task) = self.interrupt(task_id) {
            enforce(task);
        }
    }

    /// SIGKILL to the task's group now, or as soon as it has a pid.
    fn kill(&mut self, task_id: &str) {
        let Some(task) = self.interrupt(task_id) else {
            return;
        };
        if !task.escalation.killed {
            logs::append_line(
                &task.spec.log_file,
                "xtask: interrupted again: SIGKILL sent to the task's processes",
            );
            task.escalation.killed = true;
        }
        task.escalation.kill_at = Some(Instant::now());
        enforce(task);
    }

    /// The running task, marked as being stopped (interrupted, unless a
    /// timeout stops it already). One that has exited keeps the end it
    /// had: only what it left, in its grace, is there to stop (`None`
    /// when nothing is).
    fn interrupt(&mut self, task_id: &str) -> Option<&mut Running> {
        let task = self
            .running
            .values_mut()
            .find(|t| t.spec.task_id == task_id)?;
        if task.exited {
            return task.escalation.kill_at.is_some().then_some(task);
        }
        task.stopping.get_or_insert(Alarm {
            ending: Ending::Interrupted,
            detail: None,
        });
        Some(task)
    }

    /// Says `line` in the log of slot `slot`'s task, `log`, through its
    /// watchdog, which does not take it for the task's output.
    fn say(&mut self, slot: usize, log: &Utf8Path, line: &str) {
        match self.running.get_mut(&slot) {
            Some(task) => task.watchdog.say(line, Instant::now()),
            None => logs::append_line(log, line),
        }
    }

    fn started(&mut self, slot: usize, pid: u32, cgroup_procs: Option<std::path::PathBuf>) {
        let Some(task) = self.running.get_mut(&slot) else {
            return;
        };
        task.pid = pid;
        task.cgroup_procs = cgroup_procs;
        let now = Instant::now();
        task.watchdog.spawned(now);
        task.start_unreported = Some(now);
        if self.orchestrator_gone {
            write_pid_file(task);
        }
        // A stop that came before the pid is carried out now.
        enforce(task);
        self.mark_handover();
    }

    /// A slot's task has exited, processes of it still running if
    /// `left_running`: its start, if not reported yet, never will be; its
    /// pid is no longer its own; what it left is its slot's to end, which
    /// `signal`s it. Left by a task being stopped, that gets the rest of
    /// the stop's grace; else SIGTERM now and a grace of its own, the
    /// same `kill_grace` (its cleanup is no shorter for the task having
    /// ended first): returns whether so.
    fn exited(&mut self, slot: usize, left_running: bool, signal: impl Fn(i32)) -> bool {
        let Some(task) = self.running.get_mut(&slot) else {
            return false;
        };
        task.start_unreported = None;
        task.exited = true;
        if !left_running || task.escalation.kill_at.is_some() {
            return false;
        }
        let why = "its process exited and left others running";
        let grace = task.grace();
        let log = &task.spec.log_file;
        task.escalation
            .step(why, log, grace, Instant::now(), signal);
        true
    }

    /// When what a slot's exited task left gets SIGKILL: at the end of its
    /// grace, or at once after a second stop (`None`: nothing is left).
    fn kill_at(&self, slot: usize) -> Option<Instant> {
        self.running.get(&slot)?.escalation.kill_at
    }

    /// The grace of what a slot's exited task left is over: SIGKILL
    /// through `signal`, said in its log (once, whoever sent it first).
    fn overdue(&mut self, slot: usize, signal: impl Fn(i32)) {
        if let Some(task) = self.running.get_mut(&slot) {
            let grace = task.grace();
            task.escalation.kill(&task.spec.log_file, grace, signal);
        }
    }

    /// A slot's task ended, or could not start: its record, to report.
    fn ended(&mut self, slot: usize, outcome: Outcome) -> Option<Report> {
        let task = self.running.remove(&slot)?;
        let record = exit_record(&task, outcome);
        if self.orchestrator_gone {
            // The main thread's loop may end now.
            let _ = self.wake.send(());
        }
        let report = self.record(&task.spec, record);
        // Once its record is on disk (a task that could not start has no
        // pid file to say it came).
        self.mark_handover();
        Some(report)
    }

    /// Timeouts and stops enforced, ended orphans reaped; the starts that
    /// are due, to report.
    fn tick(&mut self) -> Vec<Report> {
        self.reap_orphans();
        let now = Instant::now();
        let mut due = Vec::new();
        for task in self.running.values_mut() {
            enforce(task);
            let started = task.start_unreported;
            if started.is_some_and(|at| now.duration_since(at) >= REPORT_START_AFTER) {
                task.start_unreported = None;
                due.push(Report::Started {
                    task_id: task.spec.task_id.clone(),
                    pid: task.pid,
                });
            }
        }
        due
    }

    /// Reaps the tasks' orphans that have ended (this process is their
    /// reaper, `become_subreaper`): else each is a zombie until its task
    /// ends, hours later for an agent, holding a pid and counting against
    /// the user's limit of processes. Never a task's own process, which
    /// its slot waits for: nothing is reaped while a task's pid is not
    /// known yet (its slot may have started it), and an ended child that
    /// is a task's ends the look (its slot reaps it; the rest are reaped
    /// at the next tick).
    fn reap_orphans(&self) {
        if self.running.values().any(|t| t.pid == 0) {
            return;
        }
        loop {
            // SAFETY: an all-zero siginfo_t is a valid value.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            // SAFETY: info is a live, writable local.
            if unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) } != 0 {
                return;
            }
            // SAFETY: waitid filled it in (0: no child has ended).
            let pid = unsafe { info.si_pid() };
            let own = |t: &Running| t.pid as libc::pid_t == pid;
            if pid <= 0 || self.running.values().any(own) {
                return;
            }
            process::reap(pid);
        }
    }

    /// The orchestrator is gone: what only this process knows goes to disk.
    fn orchestrator_left(&mut self) {
        // Marked also with nothing running: its orchestrator may have
        // died after a task's running status named this supervisor and
        // before its request. (An orchestrator that ends in order removes
        // the mark once this process has exited.)
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
        self.mark_handover();
    }

    /// Once its orchestrator is gone and every task it has has its pid
    /// file (one still starting writes it when it starts, or its record if
    /// it cannot), marks so: a task the next run finds with neither, under
    /// this supervisor gone, never reached it (its orchestrator died
    /// between its running status and its request) and is started again
    /// rather than taken for lost.
    fn mark_handover(&mut self) {
        if !self.orchestrator_gone || self.running.values().any(|t| t.pid == 0) {
            return;
        }
        if let Some(mark) = self.handover.take() {
            if let Err(e) = crate::state::atomic::write(&mark, b"") {
                eprintln!("xtask supervisor: {e:#}");
            }
        }
    }

    /// Keeps the record until the orchestrator has used it (on disk once
    /// nobody else will); the report that carries it.
    fn record(&mut self, spec: &Spec, record: ExitRecord) -> Report {
        if self.orchestrator_gone {
            keep_record(&spec.exit_file, &record);
        } else {
            let attempt = (spec.task_id.clone(), spec.attempt);
            let kept = (spec.exit_file.clone(), record.clone());
            self.unacked.insert(attempt, kept);
        }
        Report::Ended {
            task_id: spec.task_id.clone(),
            record,
        }
    }
}

/// The task's pid file (see `records::write_pid`): the task is this
/// process's child, not reaped yet, so the start read now is the task's.
fn write_pid_file(task: &Running) {
    let process = process::Process {
        pid: task.pid,
        start: process::start_time(task.pid),
    };
    let enforced = Enforced {
        timeout_ms: task.spec.timeout_ms,
        idle_timeout_ms: task.spec.idle_timeout_ms,
        prompt_idle_ms: task.spec.prompt_idle_ms,
    };
    if let Err(e) = write_pid(&task.spec.pid_file, process, &enforced) {
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
        )
        .after_setup(spec.setup.as_ref())
        .told(told_error(&spec.env));
        let watchdog = match spec.prompt_idle_ms {
            Some(idle) => watchdog.with_prompts(ms(idle), prompts.clone()),
            None => watchdog,
        };
        Running {
            spec,
            pid: 0,
            start_unreported: None,
            cgroup_procs: None,
            watchdog,
            stopping: None,
            escalation: Escalation::default(),
            exited: false,
        }
    }

    /// How long after SIGTERM its processes get SIGKILL.
    fn grace(&self) -> Duration {
        Duration::from_millis(self.spec.grace_ms)
    }
}

/// The exit record of a task, from how its slot saw it end.
fn exit_record(task: &Running, outcome: Outcome) -> ExitRecord {
    let record = match outcome {
        Outcome::Exited {
            status,
            usage,
            enforced,
            at,
        } => {
            let ending = match &task.stopping {
                Some(alarm) => alarm.ending,
                // A child killed for memory whose parent still succeeded is
                // not a failure of the task.
                None if usage.oom_killed && !status.success() => {
                    // Written as its status's error writes it.
                    let limit = task.spec.memory_bytes as f64 / (1u64 << 30) as f64;
                    let limit = crate::ui::format::gib(limit);
                    logs::append_line(
                        &task.spec.log_file,
                        &format!(
                            "xtask: out of memory: killed by the kernel at its limit of {limit}"
                        ),
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
                // Its own end: a run that adopted it judges a stop of its
                // by it (`run::verdict`).
                ended_at: crate::state::status::timestamp_micros(at),
                ..ExitRecord::now(ending)
            }
        }
        Outcome::SpawnFailed(message) => {
            logs::append_line(&task.spec.log_file, &format!("xtask: {message}"));
            ExitRecord {
                message: Some(message),
                ..ExitRecord::now(Ending::SpawnFailed)
            }
        }
    };
    let spec = &task.spec;
    ExitRecord {
        attempt: Some(spec.attempt),
        limit_ms: match record.ending {
            Ending::Timeout => spec.timeout_ms,
            Ending::IdleTimeout => spec.idle_timeout_ms,
            _ => None,
        },
        memory_limit_bytes: (record.ending == Ending::OutOfMemory).then_some(spec.memory_bytes),
        ..record
    }
}

/// Carries out each request line as it comes; a line that does not parse
/// is reported on stderr and skipped. The end of stdin is the
/// orchestrator's.
fn read_requests(shared: Shared) -> anyhow::Result<()> {
    crate::sys::spawn_thread("the supervisor's requests", move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let request = match serde_json::from_str(&line) {
                Ok(request) => request,
                Err(e) => {
                    eprintln!("xtask supervisor: bad request ({e}): {line}");
                    continue;
                }
            };
            let mut supervisor = lock(&shared);
            match request {
                Request::Launch(spec) => {
                    let failed = supervisor.launch(*spec, &shared);
                    drop(supervisor);
                    failed.iter().for_each(report);
                }
                Request::Stop { task_id } => supervisor.stop(&task_id),
                Request::Kill { task_id } => supervisor.kill(&task_id),
                Request::Ack { attempts } => {
                    for attempt in attempts {
                        supervisor.unacked.remove(&attempt);
                    }
                }
            }
        }
        let mut supervisor = lock(&shared);
        supervisor.orchestrator_left();
        let _ = supervisor.wake.send(());
    })
    .map(drop)
}

/// Applies the timeout, the idle timeout and a requested stop to a task,
/// until it exits (then its slot ends what it left).
fn enforce(task: &mut Running) {
    if task.exited {
        return;
    }
    let now = Instant::now();
    if task.stopping.is_none() {
        task.stopping = task.watchdog.check(now);
    }
    // A task stopped before its start is reported is signalled once it is.
    if task.stopping.is_none() || task.pid == 0 {
        return;
    }
    if killed_by_another(task, now) {
        return;
    }
    let grace = task.grace();
    let why = task.watchdog.why(task.stopping.as_ref());
    let pid = task.pid;
    let procs = task.cgroup_procs.as_deref();
    task.escalation
        .step(&why, &task.spec.log_file, grace, now, |signal| {
            process::signal_group(pid, signal);
            // A daemon that left the group (`setsid`) is still in its
            // cgroup: it gets the SIGTERM too, to clean up in the grace,
            // not only the SIGKILL after it.
            let strays = procs.map(|p| cgroups::outside_group(p, pid));
            for stray in strays.unwrap_or_default() {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(stray as libc::pid_t, signal) };
            }
        });
}

/// Whether the task's SIGKILL is due and it is dead already, its slot not
/// having reaped it yet: the run's SIGKILL, a safety net should this
/// supervisor fail to send its own, came first and said so in its log
/// (said again here, the log had the line twice). Looked at only then:
/// not a `/proc` read per task at every tick.
fn killed_by_another(task: &Running, now: Instant) -> bool {
    let due = task.escalation.kill_at.is_some_and(|at| now >= at);
    due && !task.escalation.killed && process::start_time(task.pid).is_none()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// A supervisor with task `p/a` handed to slot 0, its process not
    /// started yet, and the task's log in `dir`.
    fn handed_over(dir: &Utf8Path) -> Supervisor {
        let (wake, _) = mpsc::channel();
        let log_file = dir.join("a.log");
        std::fs::write(&log_file, "").unwrap();
        let spec = Spec {
            task_id: "p/a".into(),
            attempt: 1,
            argv: vec!["sleep".into(), "30".into()],
            env: Vec::new(),
            log_file,
            stdout_file: None,
            cwd: dir.to_owned(),
            prompt_idle_ms: None,
            exit_file: dir.join("a.exit"),
            pid_file: dir.join("a.pid"),
            timeout_ms: None,
            idle_timeout_ms: None,
            setup: None,
            grace_ms: 30_000,
            cpus: 1.0,
            memory_bytes: 1 << 30,
        };
        let prompts: Arc<[String]> = Vec::new().into();
        let running = HashMap::from([(0, Running::new(spec, &prompts))]);
        Supervisor {
            wake,
            hierarchy: None,
            slots: Vec::new(),
            running,
            unacked: HashMap::new(),
            orchestrator_gone: false,
            stopped: false,
            prompts,
            handover: None,
        }
    }

    fn temp_dir(name: &str) -> Utf8PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Utf8PathBuf::from_path_buf(dir).unwrap()
    }

    /// A stop or a kill that comes while the slot is still starting the
    /// task (no pid yet) is carried out as soon as the slot reports it.
    #[test]
    fn a_stop_or_kill_before_the_task_has_a_pid_reaches_it_once_it_has() {
        let dir = temp_dir("early-stop");
        for (how, signal, said) in [
            ("stop", libc::SIGTERM, "interrupted: SIGTERM sent"),
            ("kill", libc::SIGKILL, "SIGKILL sent"),
        ] {
            let mut supervisor = handed_over(&dir);
            match how {
                "stop" => supervisor.stop("p/a"),
                _ => supervisor.kill("p/a"),
            }
            let mut task = std::process::Command::new("sleep")
                .arg("30")
                .process_group(0)
                .spawn()
                .unwrap();
            supervisor.started(0, task.id(), None);
            let status = task.wait().unwrap();
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(signal),
                "{how}"
            );
            let log = std::fs::read_to_string(dir.join("a.log")).unwrap();
            assert!(log.contains(said), "{how}: {log}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
