//! Taking over from an orchestrator that died: a task its status says is
//! running may still run (under its supervisor, which outlives it, or on
//! Slurm), may have ended (its exit record says how), may never have
//! started, or may be lost; and what must not be started again beside
//! itself.

use std::time::{Duration, Instant, SystemTime};

use camino::Utf8PathBuf;

use crate::executor::watchdog::{Alarm, Escalation, Watchdog};
use crate::executor::{self, Limits};
use crate::git::worktrees::Prepared;
use crate::model::config::{Config, ExecutorKind};
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::run::attempt::Active;
use crate::run::options::Options;
use crate::state::logs;
use crate::state::records::{self, recorded_end, ExitRecord};
use crate::state::status::{self, AgentSlot, Status};
use crate::sys::process::{self, Process};
use crate::ui::format;

/// A task recorded as running, as found.
pub enum Found {
    /// The orchestrator died before the task started: it is pending again.
    NeverStarted,
    /// It runs, or has ended with a record: followed until its end is known.
    Adopt(Box<Active>),
}

/// The Slurm job of the attempt that `status` says is running: the one it
/// names, or, when the orchestrator died between the job's submission and
/// that status, the one the attempt's job record names.
pub fn submitted_job(layout: &Layout, id: &str, status: &Status) -> Option<String> {
    status
        .job_id
        .clone()
        .or_else(|| records::submitted_job(layout, id, status.attempt))
}

/// What became of the task `id` that `status` says is running, submitted
/// as Slurm job `job` (see `submitted_job`) if any. `follows_job` says
/// whether this run can follow that job.
pub fn assess(
    layout: &Layout,
    id: &str,
    status: &Status,
    job: Option<String>,
    follows_job: bool,
) -> Found {
    let supervisor = Process {
        pid: status.supervisor_pid.unwrap_or(0),
        start: status.supervisor_start,
    };
    let supervisor_alive = supervisor_runs(supervisor);
    let recorded = recorded_end(layout, id, status.attempt).is_some();
    let submitted = job.is_some();
    let orphaned = !recorded && !submitted && !supervisor_alive;
    let task = match status.pid {
        Some(pid) => Process {
            pid,
            start: status.pid_start.or_else(|| process::start_time(pid)),
        },
        None => records::task_process(layout, id, status.attempt, orphaned).unwrap_or(Process {
            pid: 0,
            start: None,
        }),
    };
    let pid = task.pid;
    // Never handed to a supervisor (none recorded), or handed to one that
    // marked it had written the pid file of every task it had: it never
    // started. Gone with a supervisor that did not mark, it may have run
    // and ended unseen: adopted, then `lost` (its retries decide), never
    // silently run again.
    let handed_over = status.supervisor_pid.is_none()
        || layout
            .handover_mark(supervisor.pid, supervisor.start)
            .exists();
    if pid == 0 && !recorded && !supervisor_alive && !submitted && handed_over {
        return Found::NeverStarted;
    }
    // A Slurm job is followed by our poller, which records its end; with
    // no poller (another executor), nothing can follow it: lost.
    let job_id = job.filter(|_| follows_job);
    Found::Adopt(Box::new(Active {
        agent: status.agent_id.unwrap_or(AgentSlot(0)),
        attempt: status.attempt,
        // Its start to the nanosecond where recorded (the file system's
        // clock), not `started_at`'s whole seconds: the duration goes into
        // the history that orders later runs.
        started: status.started().unwrap_or_else(SystemTime::now),
        told_running: None,
        since_ns: status.attempt_since_ns,
        pid,
        // Its process holds it: see `held_stdout`.
        held_stdout: None,
        pid_start: task.start,
        adopted: job_id.is_none().then_some(supervisor),
        queued: job_id.is_some() && status.queued,
        job_id,
        pid_due: None,
        worktree: status.branch.clone().map(|branch| Prepared {
            path: layout.worktree_dir(id),
            branch,
            base: status.base_commit.clone().unwrap_or_default(),
            new: false,
        }),
        // Not recorded: a relative path its command named is looked for
        // in the root.
        workdir: None,
        making_worktree: false,
        // Set by the run, which knows the config (see `Run::recover`).
        setup: false,
        pool: status.pool.clone(),
        orphan: None,
        ended_when_adopted: !supervisor_alive && !task.alive(),
        built_from: None,
        merging_told: status.merging,
    }))
}

/// How an adopted task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its supervisor recorded its end.
    Recorded,
    /// Neither its process nor its supervisor is alive, and no end was
    /// recorded: it ended unseen (lost).
    Unseen,
}

/// Whether an adopted task has ended, and how: its exit record is there,
/// or neither its process nor its supervisor is alive (lost). Picks up the
/// pid its supervisor wrote meanwhile. What a lost task left running in
/// its group is killed, as its supervisor would have (`supervisor::slot`):
/// a background child of a task that has ended would otherwise keep the
/// task `running` for as long as it lives, and run beside its retry.
pub fn adopted_ended(layout: &Layout, id: &str, active: &mut Active) -> Option<Ended> {
    let ended = how_adopted_ended(layout, id, active);
    if ended == Some(Ended::Unseen) {
        kill_leftovers(layout, id, active);
        let held = active.orphan.as_ref().and_then(|o| o.stdout.as_ref());
        if let Some((path, file)) = held {
            if let Err(e) = logs::put_back(path, file) {
                eprintln!("warning: {id}: what it printed is lost: {e:#}");
            }
        }
    }
    ended
}

/// The kept stdout `kept` of the task process `pid`, which its supervisor
/// (dead) gave it as its stdout, opened through that process while it
/// lives: removed by hand (`workspace/logs` cleared), it is still the
/// task's, and its result is read from it once the task ends.
fn held_stdout(pid: u32, kept: &Utf8PathBuf) -> Option<(Utf8PathBuf, std::fs::File)> {
    let fd = format!("/proc/{pid}/fd/1");
    let target = std::fs::read_link(&fd).ok()?;
    let target = target.to_str()?;
    let named = target.strip_suffix(" (deleted)").unwrap_or(target);
    let file = std::fs::File::open(&fd)
        .ok()
        .filter(|_| named == kept.as_str())?;
    Some((kept.clone(), file))
}

/// `adopted_ended`, but what a lost task left running is left alone:
/// for the plans of `next` and the dry run.
pub fn how_adopted_ended(layout: &Layout, id: &str, active: &mut Active) -> Option<Ended> {
    let supervisor = active.adopted?;
    let supervisor_alive = supervisor_runs(supervisor);
    learn_pid(layout, id, active, supervisor_alive);
    if recorded_end(layout, id, active.attempt).is_some() {
        return Some(Ended::Recorded);
    }
    if supervisor_alive || active.process().alive() {
        return None;
    }
    Some(Ended::Unseen)
}

/// Fills in the pid of an adopted attempt whose status named none (it
/// began in its first second), once its supervisor has written it, or,
/// that supervisor gone too (`supervisor_alive` false), found by the
/// task's environment: never taken for ended while it runs, nor left
/// unsignalled by a stop.
pub fn learn_pid(layout: &Layout, id: &str, active: &mut Active, supervisor_alive: bool) {
    if active.pid != 0 {
        return;
    }
    if let Some(task) = records::task_process(layout, id, active.attempt, !supervisor_alive) {
        active.pid = task.pid;
        active.pid_start = task.start;
    }
}

/// SIGKILL to what an attempt whose own process has ended left running in
/// its group: the members that carry its environment, never those of a
/// newcomer's group that took the number since. Said in its log.
fn kill_leftovers(layout: &Layout, id: &str, active: &Active) {
    let workspace = layout.workspace.as_str();
    let ours = |pid| process::carries_task(pid, workspace, id, active.attempt);
    if active.pid != 0 && process::kill_members(active.pid, ours) {
        let said = "xtask: killed processes that the task left running";
        logs::append_line(&layout.log_file(id), said);
    }
}

/// Applies to adopted attempt `active` of task `id`, once its supervisor
/// is gone, the limits that supervisor would (see `Orphan`), given by
/// `watched` the first time (its limits and, when kept apart, its
/// stdout). A Slurm job is the poller's to watch; one that has ended (its
/// supervisor recorded it, or it ended unseen) is `adopted_ended`'s.
pub fn watch_orphan(
    layout: &Layout,
    id: &str,
    active: &mut Active,
    watched: impl FnOnce(&Active) -> (Limits, Option<Utf8PathBuf>),
) {
    let Some(supervisor) = active.adopted else {
        return;
    };
    if active.pid == 0 || active.job_id.is_some() || supervisor_runs(supervisor) {
        return;
    }
    let ended = || recorded_end(layout, id, active.attempt).is_some() || !active.process().alive();
    if active.orphan.is_none() && ended() {
        return;
    }
    if active.orphan.is_none() {
        let (limits, kept) = watched(active);
        let log = layout.log_file(id);
        // What it was told (`TASK_PREVIOUS_ERROR`), as its running status
        // keeps it: its environment may be gone from /proc (a process that
        // exec'd with another).
        let running = status::read(layout, id).ok().flatten();
        let told = running
            .and_then(|s| s.previous)
            .map(|previous| previous.error);
        let held = kept.as_ref().and_then(|kept| held_stdout(active.pid, kept));
        let mut orphan = Orphan::new(log, kept, &limits, active.started).told(told);
        orphan.stdout = held;
        active.orphan = Some(Box::new(orphan));
    }
    let process = active.process();
    if let Some(orphan) = &mut active.orphan {
        orphan.enforce(process);
    }
}

/// Said in the log of a task whose supervisor died while it ran, once it
/// has ended, before all it printed on stdout: nothing copied that into
/// its log since (a copy while it ran would put its lines after a question
/// it asked on stderr meanwhile, which the watchdog looks for last).
pub const ORPHAN_OUTPUT: &str = "xtask: its supervisor died while it ran: all it printed on stdout follows, from its start (what it printed before its supervisor died is above too)";

/// What the supervisor of an adopted task would enforce, once it is gone
/// (killed with its orchestrator): the task's timeout, idle timeout and
/// question check, then SIGTERM to its group and, `kill_grace` later,
/// SIGKILL, each said in its log. The task's end is then that alarm's.
pub struct Orphan {
    watchdog: Watchdog,
    grace: Duration,
    stopping: Option<Alarm>,
    escalation: Escalation,
    /// Its kept stdout, where its result is read, and that file open
    /// (`held_stdout`): put back once it ends if the path no longer has it.
    stdout: Option<(Utf8PathBuf, std::fs::File)>,
}

impl Orphan {
    /// Watches a task that started at `started` (its status says), its
    /// log and its `stdout` when kept apart (which nothing copies into the
    /// log now).
    pub fn new(
        log: Utf8PathBuf,
        stdout: Option<Utf8PathBuf>,
        limits: &Limits,
        started: SystemTime,
    ) -> Orphan {
        let ran = started.elapsed().unwrap_or_default();
        let now = Instant::now();
        let watchdog = Watchdog::new(
            log,
            limits.timeout,
            limits.idle_timeout,
            now.checked_sub(ran).unwrap_or(now),
        )
        .with_prompts(limits.prompt_idle, limits.prompt_patterns.clone())
        .after_setup(limits.setup.as_ref())
        .also_watching(stdout);
        Orphan {
            watchdog,
            grace: limits.grace,
            stopping: None,
            escalation: Escalation::default(),
            stdout: None,
        }
    }

    /// A retry, told that its previous attempt failed with `told` (see
    /// `Watchdog::told`).
    fn told(mut self, told: Option<String>) -> Orphan {
        self.watchdog = self.watchdog.told(told);
        self
    }

    /// Applies its limits, at this moment, to `task`'s group.
    pub fn enforce(&mut self, task: Process) {
        let now = Instant::now();
        if self.stopping.is_none() {
            self.stopping = self.watchdog.check(now);
        }
        if self.stopping.is_none() || !task.alive() {
            return;
        }
        let why = self.watchdog.why(self.stopping.as_ref());
        self.escalation
            .step(&why, self.watchdog.log(), self.grace, now, |signal| {
                task.signal_group(signal);
            });
    }

    /// The end of a task it stopped, as its supervisor would have recorded
    /// it (no exit code: the supervisor that would reap it is gone).
    pub fn ended(&self) -> Option<ExitRecord> {
        let alarm = self.stopping.as_ref()?;
        Some(ExitRecord {
            message: alarm.detail.clone(),
            ..ExitRecord::now(alarm.ending)
        })
    }

    /// `ended`, its message saying why it was stopped (`timed out after
    /// 2s`), then what the alarm tells (the question): for an end no
    /// verdict words, of a task whose file is gone (see `run::unlisted`).
    pub fn ended_said(&self) -> Option<ExitRecord> {
        let record = self.ended()?;
        let why = self.watchdog.why(self.stopping.as_ref());
        let message = match record.message {
            Some(detail) => format!("{why}: {detail}"),
            None => why,
        };
        Some(ExitRecord {
            message: Some(message),
            ..record
        })
    }
}

/// Whether the supervisor `supervisor` still runs. Its process alone: it
/// leads a process group of its own, which its zombie (an exit not reaped
/// yet, by a slow init) keeps in being, and which `Process::alive` would
/// take for a live member.
pub fn supervisor_runs(supervisor: Process) -> bool {
    process::is_same_process(supervisor.pid, supervisor.start)
}

/// Why a run must refuse to start, before it records anything: a task it
/// selects runs on already while its status does not say so (removed,
/// unreadable, of another version, or edited), under a supervisor whose
/// orchestrator died (`records::live_unrecorded`), or as a Slurm job its
/// status does not name (`slurm::live_jobs`: one `scontrol` per run, where
/// the config or the run says Slurm; a Slurm that does not answer is added
/// to `warnings`). Started again, it would run beside itself, in the same
/// outputs. `next` and the dry run say it.
pub fn second_copy(
    layout: &Layout,
    config: &Config,
    graph: &Graph,
    options: &Options,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let recorded_running =
        |id: &str| recorded(layout, id).is_some_and(|s| s.status == status::State::Running);
    let strays = records::live_unrecorded(layout, recorded_running);
    let selected = |id: &str| {
        graph
            .get(id)
            .is_some_and(|t| options.selects(&graph.tasks[t]))
    };
    let strays: Vec<_> = (strays.into_iter())
        .filter(|(id, _)| selected(id))
        .collect();
    let local = (!strays.is_empty()).then(|| {
        let listed: Vec<_> = (strays.iter())
            .map(|(id, process)| (id.clone(), format!("pid {}", process.pid)))
            .collect();
        let said = together(
            &listed,
            |id, pid| format!("{id} is still running ({pid}, started by a run that was killed), but its status {} does not say so (gone, unreadable, or edited): started again, it would run beside itself", status_path(layout, id)),
            |n, list| format!("{n} tasks are still running, started by a run that was killed, but their statuses do not say so (gone, unreadable, or edited): {list}; started again, each would run beside itself"),
        );
        let pids = strays.iter().map(|(_, process)| process.pid.to_string());
        refusal(&[said], strays.len(), "stop", "kill", pids, "")
    });
    // Also a local run of a config that says Slurm: its earlier jobs.
    let slurm_said = [options.executor, config.executor].contains(&ExecutorKind::Slurm);
    let slurm = slurm_said.then(|| slurm_strays(layout, options, &selected, warnings));
    match (local, slurm.flatten()) {
        (Some(local), Some(slurm)) => Some(format!("{local}. And {slurm}")),
        (local, slurm) => local.or(slurm),
    }
}

/// The refusal of `second_copy` for the Slurm jobs not ended of tasks it
/// selects whose statuses do not name them (or that a local run cannot
/// follow).
fn slurm_strays(
    layout: &Layout,
    options: &Options,
    selected: &dyn Fn(&str) -> bool,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let jobs = match executor::slurm::live_jobs(|id| layout.log_file(id)) {
        Ok(jobs) => jobs,
        Err(e) => {
            warnings.push(format!("{e:#}: jobs of tasks whose status was lost cannot be looked for; such a task would be submitted again beside its job"));
            return None;
        }
    };
    // A running status without a job names the one a killed run was
    // submitting: found then by its name and log (`find_submitted`).
    let names = |id: &str, job: &str| {
        recorded(layout, id).is_some_and(|s| {
            s.status == status::State::Running && s.job_id.as_deref().is_none_or(|j| j == job)
        })
    };
    // Named, a job is followed by a run on Slurm; a local run would take
    // it for lost and start the task again beside it.
    let run_on_slurm = options.executor == ExecutorKind::Slurm;
    let jobs: Vec<_> = (jobs.into_iter())
        .filter(|job| selected(&job.task_id))
        .map(|job| {
            let named = names(&job.task_id, &job.job_id);
            (job, named)
        })
        .filter(|&(_, named)| !(run_on_slurm && named))
        .collect();
    if jobs.is_empty() {
        return None;
    }
    let listed = |local: bool| -> Vec<(String, String)> {
        (jobs.iter())
            .filter(|&&(_, named)| named == local)
            .map(|(job, _)| {
                (
                    job.task_id.clone(),
                    format!("job {}, {}", job.job_id, job.state),
                )
            })
            .collect()
    };
    let (unnamed, unfollowed) = (listed(false), listed(true));
    let mut said = Vec::new();
    if !unnamed.is_empty() {
        said.push(together(
            &unnamed,
            |id, job| format!("{id} has a Slurm job not ended ({job}), which its status {} does not name (gone, unreadable, edited, or of another attempt): started again, it would run beside it", status_path(layout, id)),
            |n, list| format!("{n} Slurm jobs not ended are not named by their tasks' statuses (gone, unreadable, edited, or of another attempt): {list}; started again, a task would run beside its job"),
        ));
    }
    if !unfollowed.is_empty() {
        said.push(together(
            &unfollowed,
            |id, job| format!("{id} has a Slurm job not ended ({job}), which a run on the local executor cannot follow (it would start the task again beside it): run on Slurm, without `--executor local`"),
            |n, list| format!("{n} Slurm jobs not ended cannot be followed by a run on the local executor (it would start their tasks again beside them): {list}; run on Slurm, without `--executor local`"),
        ));
    }
    // A held job does not end by itself.
    let held: Vec<&str> = (jobs.iter())
        .filter(|(job, _)| executor::slurm::is_held(&job.state, &job.reason))
        .map(|(job, _)| job.job_id.as_str())
        .collect();
    let release = match held.is_empty() {
        true => String::new(),
        false => format!(
            " (a held job once released: `scontrol release {}`)",
            held.join(" ")
        ),
    };
    let numbers = jobs.iter().map(|(job, _)| job.job_id.clone());
    Some(refusal(
        &said,
        jobs.len(),
        "cancel",
        "scancel",
        numbers,
        &release,
    ))
}

/// Task `id`'s status, if one can be read.
fn recorded(layout: &Layout, id: &str) -> Option<status::Status> {
    status::read(layout, id).ok().flatten()
}

/// Task `id`'s status file, as a person finds it.
fn status_path(layout: &Layout, id: &str) -> Utf8PathBuf {
    layout.display(&layout.status_file(id)).to_owned()
}

/// Strays of one kind, each an id and what names it (a pid, a job): one is
/// said in full (`one`), several counted and listed once (`several`, with
/// `id (what), ...`).
fn together(
    strays: &[(String, String)],
    one: impl Fn(&str, &str) -> String,
    several: impl Fn(usize, &str) -> String,
) -> String {
    match strays {
        [(id, what)] => one(id, what),
        _ => {
            let list: Vec<String> = (strays.iter())
                .map(|(id, what)| format!("{id} ({what})"))
                .collect();
            several(strays.len(), &list.join(", "))
        }
    }
}

/// The refusal `second_copy` says: what was found (`said`, of `count`
/// strays), then what to do about them all (`verb` them with `command` and
/// their pids or jobs; `ending`, how one that does not end by itself does).
fn refusal(
    said: &[String],
    count: usize,
    verb: &str,
    command: &str,
    ids: impl Iterator<Item = String>,
    ending: &str,
) -> String {
    let them = format::it_or_them(count);
    let ids: Vec<String> = ids.collect();
    format!(
        "{}. Let {them} end{ending}, or {verb} {them} (`{command} {}`), then run again",
        said.join(". "),
        ids.join(" ")
    )
}
