//! Status files, `workspace/status/<task id>.json`: the state of each task on
//! disk, what a status holds; `files.rs` reads and writes them, every write
//! atomic.

use std::fmt;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::agent::result::{Report, ThreadUsage};
use crate::model::graph::{Dep, Graph};
use crate::model::layout::Layout;
use crate::state::fingerprint::Fingerprint;

mod files;
mod shown;
pub use files::{
    ids_on_disk, prepare_write, read, read_or_warn, remove, state_of, write, write_blocked,
    write_over, write_unlocked, ReadError,
};
pub use shown::{
    blocked_now, kept_blocked, outputs_gone, pause_on, shown_blocker, shown_blockers, shown_state,
    shown_state_now, shown_states, stale_because, Link,
};

/// The version of the status file format this build writes and reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Completed,
    Failed,
    Blocked,
    /// Waits for a person's approval: before it starts (`approve: before`),
    /// or, completed, before what depends on it may start (`after`).
    #[serde(rename = "awaiting_approval")]
    AwaitingApproval,
}

impl State {
    /// The state's name, as in the file: `completed`.
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Completed => "completed",
            State::Failed => "failed",
            State::Blocked => "blocked",
            State::AwaitingApproval => "awaiting_approval",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a run holds the workspace: another process than this one (an
/// `orchestrate` loading statuses is not the run that wrote them, which
/// died), and one that runs tasks (not an `approve` holding it a moment).
pub fn a_run_holds(layout: &Layout) -> bool {
    use crate::state::lock;
    lock::holder(layout)
        .is_some_and(|holder| holder != std::process::id().to_string() && lock::runs_tasks(&holder))
}

/// `Status::gone_note`, of a task whose work is `merging` or not.
pub fn gone_note(merging: bool) -> &'static str {
    if merging {
        "its work is left in the merge queue: the next run merges it"
    } else {
        "its process is gone: the next run records how it ended"
    }
}

/// How an attempt ended, as data (the error text is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The process exited, or was killed by a signal nobody here sent.
    Exited,
    Timeout,
    IdleTimeout,
    /// Stopped by Ctrl-C, SIGTERM or a fatal error of the orchestrator;
    /// or, a Slurm job, cancelled outside the run (`scancel`).
    Interrupted,
    SpawnFailed,
    /// Killed by its memory limit (the kernel's OOM counter, or Slurm's
    /// OUT_OF_MEMORY).
    OutOfMemory,
    /// The process and its record are gone (Slurm: the node failed).
    Lost,
    /// Its log was still and ended with a question nobody will answer.
    WaitingForInput,
}

impl Ending {
    /// Whether the attempt was stopped before its own end: by the run (a
    /// Ctrl-C, a timeout, a question) or by its memory limit.
    pub fn is_a_stop(self) -> bool {
        !matches!(self, Ending::Exited | Ending::SpawnFailed | Ending::Lost)
    }
}

/// The agent slot an attempt ran in, written `agent-N`: slots are numbered
/// from 1, and a slot runs one task at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentSlot(pub usize);

impl fmt::Display for AgentSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "agent-{}", self.0)
    }
}

impl Serialize for AgentSlot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AgentSlot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AgentSlot, D::Error> {
        let text = String::deserialize(d)?;
        text.strip_prefix("agent-")
            .and_then(|n| n.parse().ok())
            .map(AgentSlot)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("`{text}` is not an agent slot (agent-N)"))
            })
    }
}

/// An `agent_id` of another form (written by another tool) reads as none:
/// it names no slot of ours.
fn agent_slot<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AgentSlot>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    Ok(text
        .as_deref()
        .and_then(|t| t.strip_prefix("agent-")?.parse().ok())
        .map(AgentSlot))
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
    #[serde(
        default,
        deserialize_with = "agent_slot",
        skip_serializing_if = "Option::is_none"
    )]
    pub agent_id: Option<AgentSlot>,
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
    /// How the attempt ended (absent while it runs, and in statuses
    /// written by other tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<Ending>,
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
    /// The git branch of a task that runs in a worktree, the commit it
    /// started from, and the integration commit its work was merged as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_commit: Option<String>,
    /// What the agent reported of the attempt (see `agent::result`), when
    /// its result is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Report>,
    /// The pool of an agent task, and, after it hit a rate limit, until
    /// when its pool waits and since when it has been waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited_since: Option<String>,
    /// Who approved the task (`approve`), when, and their note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_note: Option<String>,
    /// What a completed task was built from: its task file and inputs (see
    /// `state::fingerprint`); a change makes it stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// A running task whose process has ended and whose work waits in the
    /// merge queue.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merging: bool,
    /// When this attempt began, by the file system's clock in nanoseconds:
    /// an output counts only if it changed after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_since_ns: Option<u64>,
    /// The latest attempt that failed, kept where this status is not it
    /// (a rate-limited attempt, a block), or this one with an earlier
    /// attempt's session to resume, where this one named none (cut short
    /// before it did): what the next attempt is told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Failure>,
}

/// An attempt's failure, as the task's next attempt is told of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub attempt: u32,
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// That session's totals, as Codex printed them (`Report::thread_usage`):
    /// a retry that resumes it counts only what it adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_usage: Option<ThreadUsage>,
}

/// The error of a task stopped by Ctrl-C, SIGTERM or a fatal error.
pub const INTERRUPTED: &str = "interrupted";

fn version_one() -> u32 {
    1
}

/// What a failed status says of whether a run takes its task up again.
#[derive(Debug, Clone)]
pub struct Retry {
    tries: u32,
    spares_its_try: bool,
    held: bool,
    run_id: Option<String>,
}

impl Retry {
    /// Whether a run takes the task up again: a new run does, unless a
    /// person holds it (a block by hand, a rejection); the run that wrote
    /// it (`resumed`: going on, or stopped and resumed by the next) does
    /// while it owes the task a retry of its `retries`, or when the
    /// failure spares its try.
    pub fn taken_up(&self, retries: u32, resumed: bool) -> bool {
        !self.held && (!resumed || self.spares_its_try || self.tries <= retries)
    }

    /// Whether the run `run` wrote it.
    pub fn written_by(&self, run: Option<&str>) -> bool {
        self.run_id.is_some() && self.run_id.as_deref() == run
    }
}

impl Status {
    /// Blocked by the failure of `by`.
    pub fn blocked(task_id: &str, by: &str) -> Status {
        Status {
            blocked_by: Some(by.to_owned()),
            ..Status::new(task_id, State::Blocked)
        }
    }

    /// The failure the task's next attempt is told of: the one kept with
    /// this status (`previous`), else this attempt's own, unless it hit a
    /// rate limit, waiting for it or given up on it (no news to an agent,
    /// and an empty session to resume).
    pub fn failure_to_tell(&self) -> Option<Failure> {
        if self.previous.is_some() {
            return self.previous.clone();
        }
        let limited = self.rate_limited_until.is_some() || self.rate_limited_since.is_some();
        let own = self.status == State::Failed && !limited;
        Some(Failure {
            attempt: self.attempt,
            // Also with no log: a rejection before its start says why.
            error: self.error.clone().filter(|_| own)?,
            session_id: (self.agent.as_ref())
                .and_then(|a| a.session_to_resume())
                .map(str::to_owned),
            thread_usage: self.agent.as_ref().and_then(|a| a.thread_usage),
        })
    }

    /// Whether its failure is none to count against the retries: the
    /// attempt was interrupted, or a rate limit paused it. A resumed run
    /// tries it again whatever its tries.
    pub fn spares_its_try(&self) -> bool {
        self.interrupted() || self.rate_limited_until.is_some()
    }

    /// What a failed status says of its retry.
    pub fn retry(&self) -> Retry {
        Retry {
            tries: self.tries,
            spares_its_try: self.spares_its_try(),
            held: self.held,
            run_id: self.run_id.clone(),
        }
    }

    /// Its attempt was stopped by the run, which stopped too.
    pub fn interrupted(&self) -> bool {
        self.error.as_deref() == Some(INTERRUPTED)
    }

    /// When its attempt started: to the nanosecond where the status says
    /// (`attempt_since_ns`, by the file system's clock) and that agrees
    /// with `started_at` (this machine's clock, to the second), else to
    /// the second: on a network file system the clock is the server's.
    pub fn started(&self) -> Option<SystemTime> {
        let whole = self.started_at.as_deref().and_then(parse_timestamp);
        let precise = self.attempt_since_ns.map(crate::state::outputs::from_ns);
        let agree = |whole: SystemTime, precise: SystemTime| {
            let early = whole.checked_sub(Duration::from_millis(500));
            let late = whole.checked_add(Duration::from_millis(1500));
            early.is_some_and(|e| precise >= e) && late.is_some_and(|l| precise < l)
        };
        match (whole, precise) {
            (Some(whole), Some(precise)) if agree(whole, precise) => Some(precise),
            (Some(whole), _) => Some(whole),
            (None, precise) => precise,
        }
    }

    /// Until when a rate limit pauses the task, if one did: it waits for
    /// its pool, and has not failed.
    pub fn paused_until(&self) -> Option<SystemTime> {
        if self.status != State::Failed {
            return None;
        }
        self.rate_limited_until.as_deref().and_then(parse_timestamp)
    }

    /// Whether a running task's process is gone: nobody looks after it, or
    /// its supervisor recorded its end (`records::recorded_end`). The next
    /// run records how it ended.
    pub fn process_gone(&self, layout: &Layout) -> bool {
        !self.looked_after(layout) || self.end_recorded(layout)
    }

    /// What a view says of it once its process is gone: its work left in
    /// the merge queue by a stopped run is merged by the next run (its
    /// agent not run again), else its end is recorded.
    pub fn gone_note(&self) -> &'static str {
        gone_note(self.merging)
    }

    /// Whether the end of its latest attempt is recorded, by its
    /// supervisor once its run died, or by its run while the attempt's
    /// work waits in the merge queue (`run::ends`): then only once no run
    /// holds the workspace, for until then that run merges it.
    pub fn end_recorded(&self, layout: &Layout) -> bool {
        crate::state::records::recorded_end(layout, &self.task_id, self.attempt).is_some()
            && !(self.merging && a_run_holds(layout))
    }

    /// Whether a running task is still looked after: its process or its
    /// supervisor is alive (a Slurm job runs elsewhere: assumed so), or,
    /// with none of them yet (its worktree being made, its job being
    /// submitted), the run starting it holds the workspace: another
    /// process than this one (an `orchestrate` loading statuses is not
    /// the run that wrote them, which died). A process its status does not
    /// name yet (its run and supervisor killed in its first second, before
    /// its pid was written) is looked for as the next run looks for it
    /// (`records::task_process`): it runs on.
    pub fn looked_after(&self, layout: &Layout) -> bool {
        let alive = |pid: Option<u32>, start| {
            pid.is_some_and(|pid| crate::sys::process::is_same_process(pid, start))
        };
        let unnamed_runs = || {
            let records = crate::state::records::task_process;
            self.pid.is_none()
                && records(layout, &self.task_id, self.attempt, true).is_some_and(|p| p.alive())
        };
        self.job_id.is_some()
            || alive(self.pid, self.pid_start)
            || alive(self.supervisor_pid, self.supervisor_start)
            || (self.being_started() && a_run_holds(layout))
            || (self.supervisor_pid.is_some() && unnamed_runs())
    }

    /// Whether a running task was still being started as this status was
    /// written: no process, no supervisor, no Slurm job named yet (its
    /// worktree being made, its sbatch not answered).
    pub fn being_started(&self) -> bool {
        self.pid.is_none() && self.supervisor_pid.is_none() && self.job_id.is_none()
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
            ending: None,
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
            branch: None,
            base_commit: None,
            merged_commit: None,
            pool: None,
            agent: None,
            approved_by: None,
            approved_at: None,
            approval_note: None,
            fingerprint: None,
            rate_limited_until: None,
            rate_limited_since: None,
            merging: false,
            attempt_since_ns: None,
            previous: None,
        }
    }
}

pub fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A timestamp to the millisecond, where a duration is taken from it.
pub fn timestamp_millis(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// To the microsecond: what is compared with another process's clock
/// reading (an exit against a stop), where a millisecond holds both.
pub fn timestamp_micros(time: SystemTime) -> String {
    humantime::format_rfc3339_micros(time).to_string()
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

/// The failed tasks that task `t` waits on, directly or through tasks that
/// are blocked or pending themselves (and through phase gates), by the
/// statuses `status` gives; a task a rate limit paused has not failed (it
/// waits). In order.
pub fn failed_upstream(
    graph: &Graph,
    t: usize,
    mut status: impl FnMut(usize) -> Option<Status>,
) -> Vec<usize> {
    let mut found = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // A gate's members are looked at once: the thousands of tasks that
    // wait on one phase would each go through all of it again.
    let mut gates = std::collections::HashSet::new();
    let mut queue = vec![t];
    while let Some(current) = queue.pop() {
        let upstream: Vec<usize> = graph.deps[current]
            .iter()
            .flat_map(|dep| match *dep {
                Dep::Task(d) => vec![d],
                Dep::Phase(p) if gates.insert(p) => graph.gate_members(p).collect(),
                Dep::Phase(_) => Vec::new(),
            })
            .collect();
        for d in upstream {
            if !seen.insert(d) {
                continue;
            }
            match status(d) {
                Some(s) if s.status == State::Failed && s.rate_limited_until.is_none() => {
                    found.push(d)
                }
                Some(s) if s.status == State::Blocked => queue.push(d),
                None => queue.push(d),
                Some(_) => {}
            }
        }
    }
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests;
