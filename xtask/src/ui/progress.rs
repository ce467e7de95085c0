//! The dashboard per phase: counts, each phase's gate, the running and
//! failed tasks, usage. One model for `progress`, `progress --json` and the
//! live view: built from the status files by `progress`, and from the run's
//! own state by a running orchestrator.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

mod seen;
pub use seen::{paused_pools, Seen, Usage};

use crate::state::durations;
use crate::state::status::{self, AgentSlot, Retry, Status};
use crate::ui::format;

#[derive(Debug, Default, Serialize)]
pub struct Progress {
    pub title: String,
    pub phases: Vec<PhaseProgress>,
    pub total: Counts,
    /// What the tasks' latest attempts cost, as their agents reported
    /// (null when none did), and their tokens.
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The tasks whose latest attempt's agent reported no cost (an older
    /// CLI, codex-jsonl without agent.prices): `cost_usd` leaves them out.
    pub cost_unknown_tasks: usize,
    /// The budget, when there is one: it counts every attempt of every run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetLine>,
    /// When the work left is expected to end (see `run::order`): seconds
    /// from now, and the time; null when nothing is left to run.
    pub eta_seconds: Option<f64>,
    pub expected_end: Option<String>,
    /// Whether a run holds the workspace: else the expected end is the
    /// work left, were a run to start now (nothing runs it meanwhile).
    pub run_going_on: bool,
    /// Every task, in id order.
    pub tasks: Vec<TaskLine>,
    /// What could not be read (a status file, its task treated as
    /// pending; a line of the cost ledger) or may mislead.
    pub warnings: Vec<String>,
    /// What is wrong in the definitions (a task file that does not parse,
    /// ...): the dashboard shows the rest.
    pub problems: Vec<String>,
    /// What a live view's heading says of costs.
    #[serde(skip)]
    pub spent: Spent,
}

/// The cost a live view's heading shows: `orchestrate`'s, what its run's
/// attempts cost (failed and retried ones too), as its summary says;
/// `progress --watch`'s, what the latest attempts cost, as `progress`.
#[derive(Debug, Default)]
pub enum Spent {
    #[default]
    LatestAttempts,
    ThisRun(Option<f64>),
}

#[derive(Debug, Serialize)]
pub struct BudgetLine {
    pub usd: f64,
    pub spent_usd: f64,
    pub left_usd: f64,
}

/// One task, as `progress --tasks` and `progress --json` show it.
#[derive(Debug, Serialize)]
pub struct TaskLine {
    pub task_id: String,
    pub phase: String,
    /// pending, running, merging, completed, failed, paused or blocked.
    pub state: &'static str,
    /// Its latest attempt (0: none yet).
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentSlot>,
    /// How long it has run (running tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<u64>,
    /// A task recorded as running whose process is gone: the next
    /// `orchestrate` or `monitor` records how it ended (only when so).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub process_gone: bool,
    /// How long its attempt took (finished tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// The last line of its log (in `--json` and `--tasks`, for every task
    /// that has run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_log_line: Option<String>,
    /// Its git branch, when it runs in a worktree, and the integration
    /// commit its work was merged as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Its branch is gone from the repository since (`clean`,
    /// `worktrees.remove_merged`, a person): no longer where its work is.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub branch_removed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_commit: Option<String>,
    /// Its pool, and until when a rate limit pauses it (paused tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limited_until: Option<String>,
    /// The file that changed since a stale task was built from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_because: Option<String>,
    /// What its latest attempt cost, as its agent reported, and its tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Failed, what its status says of its retry (for the expected end).
    #[serde(skip)]
    pub retry: Option<Retry>,
}

/// A task's attempt, as the views name it.
#[derive(Debug, Default, Clone)]
pub struct Attempt {
    pub number: u32,
    pub agent: Option<AgentSlot>,
    pub branch: Option<String>,
    pub merged_commit: Option<String>,
    pub pool: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    pub total: usize,
    pub completed: usize,
    pub running: usize,
    /// Of the running, those whose process has ended and whose work waits
    /// in the merge queue (counted among the running too).
    pub merging: usize,
    pub blocked: usize,
    pub failed: usize,
    pub pending: usize,
    /// Waiting for a pool a rate limit paused.
    pub paused: usize,
    /// Waiting for a person's approval (before they start, or of their
    /// result).
    pub awaiting_approval: usize,
    /// Completed, but built from a task file or inputs that changed since
    /// (counted among the completed too).
    pub stale: usize,
    /// Completed as a whole percentage of total (0 for an empty phase).
    pub percent: u32,
    /// Of the failed and blocked, those the run showing them is to run
    /// again (a retry waiting for a slot, and what it blocked): the phase
    /// has not ended.
    #[serde(skip)]
    pub to_run_again: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct PhaseProgress {
    pub phase: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub gate: Gate,
    /// Mean duration of the phase's completed tasks, for an ETA (to the
    /// millisecond, as durations are kept).
    pub mean_seconds: Option<f64>,
    /// How many of them the mean is of: those whose duration is known.
    #[serde(skip)]
    pub timed: usize,
    /// CPU time of the phase's finished attempts, and the largest peak
    /// memory among them (from their cgroups; null where none was
    /// measured, as a number not known is).
    pub cpu_seconds: Option<f64>,
    pub peak_memory_mb: Option<f64>,
    /// What the phase's tasks' latest attempts cost, and their tokens
    /// (null when none reported any).
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub running_tasks: Vec<RunningTask>,
    pub failed_tasks: Vec<FailedTask>,
    pub paused_tasks: Vec<PausedTask>,
    pub awaiting_approval_tasks: Vec<AwaitingTask>,
    /// Completed tasks whose task file or inputs changed since.
    pub stale_tasks: Vec<StaleTask>,
}

#[derive(Debug, Serialize)]
pub struct AwaitingTask {
    pub task_id: String,
    /// It ran: its result awaits the approval (else it waits to start).
    pub result: bool,
}

#[derive(Debug, Serialize)]
pub struct StaleTask {
    pub task_id: String,
    /// The file that changed.
    pub changed: String,
}

/// The phase's completion gate: at least one task, every task completed with
/// its outputs validated, and every artifact of `phases.<key>.requires`.
#[derive(Debug, Default, Serialize)]
pub struct Gate {
    pub complete: bool,
    /// What it still waits on: tasks (the first few) and missing artifacts.
    pub waiting_on: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RunningTask {
    pub task_id: String,
    pub agent_id: Option<AgentSlot>,
    pub elapsed_seconds: u64,
    /// False when the process recorded for it is gone: the next
    /// `orchestrate` or `monitor` records how it ended.
    pub alive: bool,
    /// A Slurm job still waiting in the queue.
    pub queued: bool,
    /// Its process ended; its work waits in the merge queue.
    pub merging: bool,
}

#[derive(Debug, Serialize)]
pub struct PausedTask {
    pub task_id: String,
    pub pool: Option<String>,
    pub rate_limited_until: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FailedTask {
    pub task_id: String,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
}

impl Attempt {
    pub fn of(status: Option<&Status>) -> Attempt {
        status.map_or(Attempt::default(), |s| Attempt {
            number: s.attempt,
            agent: s.agent_id,
            branch: s.branch.clone(),
            merged_commit: s.merged_commit.clone(),
            pool: s.pool.clone(),
        })
    }
}

/// `a + b`, where an absent amount is none, not zero.
fn add<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// Builds a `Progress` a task at a time.
pub struct Builder {
    phases: BTreeMap<String, PhaseProgress>,
    tasks: Vec<TaskLine>,
    now: SystemTime,
    cost_unknown_tasks: usize,
}

/// How many unfinished tasks a gate names before it says "and N more".
const GATE_NAMES: usize = 5;

impl Builder {
    pub fn new() -> Builder {
        Builder {
            phases: BTreeMap::new(),
            tasks: Vec::new(),
            now: SystemTime::now(),
            cost_unknown_tasks: 0,
        }
    }

    /// Adds task `id` of phase `phase`.
    /// The last line of the log of the task added last.
    pub fn set_last_log_line(&mut self, line: String) {
        if let Some(task) = self.tasks.last_mut() {
            task.last_log_line = Some(line);
        }
    }

    pub fn add(&mut self, phase: &str, id: &str, seen: Seen, mut attempt: Attempt, usage: Usage) {
        // A pause names the pool it holds the task in (one that never ran
        // has none in its attempt).
        if let Seen::Paused {
            pool: Some(pool), ..
        } = &seen
        {
            attempt.pool = Some(pool.clone());
        }
        let pool = attempt.pool.clone();
        self.tasks.push(self.line(phase, id, &seen, attempt, usage));
        let phase = self
            .phases
            .entry(phase.to_owned())
            .or_insert_with(|| PhaseProgress {
                phase: phase.to_owned(),
                ..PhaseProgress::default()
            });
        if !matches!(
            seen,
            Seen::Completed {
                validated: true,
                ..
            }
        ) {
            phase.gate.waiting_on.push(id.to_owned());
        }
        phase.cpu_seconds = add(phase.cpu_seconds, usage.cpu_seconds);
        phase.cost_usd = add(phase.cost_usd, usage.cost_usd);
        self.cost_unknown_tasks += usize::from(usage.cost_unknown);
        phase.input_tokens = add(phase.input_tokens, usage.input_tokens);
        phase.output_tokens = add(phase.output_tokens, usage.output_tokens);
        phase.peak_memory_mb = match (phase.peak_memory_mb, usage.peak_memory_mb) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let counts = &mut phase.counts;
        counts.total += 1;
        match seen {
            Seen::Pending => counts.pending += 1,
            Seen::AwaitingApproval { ran, .. } => {
                counts.awaiting_approval += 1;
                phase.awaiting_approval_tasks.push(AwaitingTask {
                    task_id: id.to_owned(),
                    result: ran,
                });
            }
            Seen::Completed { seconds, stale, .. } => {
                counts.completed += 1;
                if let Some(changed) = stale {
                    counts.stale += 1;
                    phase.stale_tasks.push(StaleTask {
                        task_id: id.to_owned(),
                        changed,
                    });
                }
                // A duration no task can take (a hand edit) counts for
                // nothing here either.
                if let Some(d) = seconds.filter(|&d| durations::plausible(d)) {
                    phase.timed += 1;
                    let n = phase.timed as f64;
                    phase.mean_seconds = Some(phase.mean_seconds.map_or(d, |m| m + (d - m) / n));
                }
            }
            Seen::Blocked { again, .. } => {
                counts.blocked += 1;
                counts.to_run_again += usize::from(again);
            }
            Seen::Paused { until, .. } => {
                counts.paused += 1;
                phase.paused_tasks.push(PausedTask {
                    task_id: id.to_owned(),
                    pool,
                    rate_limited_until: Some(status::timestamp(until)),
                });
            }
            Seen::Failed {
                error,
                exit_code,
                again,
                ..
            } => {
                counts.failed += 1;
                counts.to_run_again += usize::from(again);
                phase.failed_tasks.push(FailedTask {
                    task_id: id.to_owned(),
                    error,
                    exit_code,
                });
            }
            Seen::Running {
                agent,
                started,
                ended,
                alive,
                queued,
                merging,
            } => {
                counts.running += 1;
                counts.merging += usize::from(merging);
                phase.running_tasks.push(RunningTask {
                    task_id: id.to_owned(),
                    agent_id: agent,
                    elapsed_seconds: elapsed(self.now, started, ended).unwrap_or(0),
                    alive,
                    queued,
                    merging,
                });
            }
        }
        counts.percent = percent(counts.completed, counts.total);
    }

    fn line(&self, phase: &str, id: &str, seen: &Seen, attempt: Attempt, usage: Usage) -> TaskLine {
        let mut line = TaskLine {
            task_id: id.to_owned(),
            phase: phase.to_owned(),
            state: seen.state(),
            attempt: attempt.number,
            agent_id: attempt.agent,
            elapsed_seconds: None,
            process_gone: false,
            duration_seconds: None,
            error: None,
            blocked_by: None,
            last_log_line: None,
            branch: attempt.branch,
            branch_removed: false,
            merged_commit: attempt.merged_commit,
            pool: attempt.pool,
            rate_limited_until: None,
            stale_because: None,
            cost_usd: usage.cost_usd,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            retry: None,
        };
        match seen {
            Seen::Running {
                started,
                ended,
                alive,
                ..
            } => {
                line.elapsed_seconds = elapsed(self.now, *started, *ended);
                line.process_gone = !alive;
            }
            Seen::Completed { seconds, stale, .. } => {
                line.duration_seconds = *seconds;
                line.stale_because = stale.clone();
            }
            Seen::AwaitingApproval { seconds, .. } => line.duration_seconds = *seconds,
            Seen::Failed {
                error,
                seconds,
                retry,
                ..
            } => {
                line.error = error.clone();
                line.duration_seconds = *seconds;
                line.retry = retry.clone();
            }
            Seen::Blocked { by, .. } => line.blocked_by = by.clone(),
            Seen::Paused { until, error, .. } => {
                line.rate_limited_until = Some(status::timestamp(*until));
                line.error = error.clone();
            }
            Seen::Pending => {}
        }
        line
    }

    /// The dashboard; `missing_artifacts(phase)` names what each phase's
    /// gate requires and does not exist.
    pub fn finish(
        self,
        title: String,
        missing_artifacts: impl Fn(&str) -> Vec<String>,
        warnings: Vec<String>,
    ) -> Progress {
        let mut tasks = self.tasks;
        tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        let mut progress = Progress {
            title,
            tasks,
            warnings,
            cost_unknown_tasks: self.cost_unknown_tasks,
            ..Progress::default()
        };
        for mut phase in self.phases.into_values() {
            let missing = missing_artifacts(&phase.phase);
            close_gate(&mut phase, missing);
            phase.mean_seconds = phase.mean_seconds.map(status::seconds_f64);
            phase.cost_usd = phase.cost_usd.map(format::cost_sum);
            progress.total = sum(progress.total, phase.counts);
            progress.cost_usd = add(progress.cost_usd, phase.cost_usd);
            progress.input_tokens = add(progress.input_tokens, phase.input_tokens);
            progress.output_tokens = add(progress.output_tokens, phase.output_tokens);
            progress.phases.push(phase);
        }
        progress.total.percent = percent(progress.total.completed, progress.total.total);
        progress.cost_usd = progress.cost_usd.map(format::cost_sum);
        progress
    }
}

/// How long a running task has run, in whole seconds: until its process
/// `ended`, or until `now`.
fn elapsed(now: SystemTime, started: Option<SystemTime>, ended: Option<SystemTime>) -> Option<u64> {
    let until = ended.unwrap_or(now);
    started
        .and_then(|t| until.duration_since(t).ok())
        .map(|d| d.as_secs())
}

fn close_gate(phase: &mut PhaseProgress, missing_artifacts: Vec<String>) {
    let gate = &mut phase.gate;
    let unfinished = gate.waiting_on.len();
    if unfinished > GATE_NAMES {
        gate.waiting_on.truncate(GATE_NAMES);
        gate.waiting_on.push(format::counted(
            unfinished - GATE_NAMES,
            "more task",
            "more tasks",
        ));
    }
    for artifact in missing_artifacts {
        gate.waiting_on
            .push(format!("workspace/outputs/{artifact}"));
    }
    gate.complete = phase.counts.total > 0 && gate.waiting_on.is_empty();
}

fn sum(a: Counts, b: Counts) -> Counts {
    Counts {
        total: a.total + b.total,
        completed: a.completed + b.completed,
        running: a.running + b.running,
        merging: a.merging + b.merging,
        blocked: a.blocked + b.blocked,
        failed: a.failed + b.failed,
        pending: a.pending + b.pending,
        paused: a.paused + b.paused,
        awaiting_approval: a.awaiting_approval + b.awaiting_approval,
        stale: a.stale + b.stale,
        percent: 0,
        to_run_again: a.to_run_again + b.to_run_again,
    }
}

fn percent(part: usize, whole: usize) -> u32 {
    if whole == 0 {
        return 0;
    }
    (part * 100 / whole) as u32
}

impl Progress {
    /// Sets the expected end, `seconds` from now (none when no work is
    /// left: `None`). Work expected to take no time ends now.
    pub fn set_eta(&mut self, seconds: Option<f64>) {
        let Some(end) = seconds
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .and_then(|d| SystemTime::now().checked_add(d))
        else {
            return;
        };
        let seconds = seconds.unwrap_or_default();
        self.eta_seconds = Some((seconds * 10.0).round() / 10.0);
        self.expected_end = Some(status::timestamp(end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_s_mean_is_of_the_durations_known_to_the_millisecond() {
        let mut builder = Builder::new();
        for (id, seconds) in [("p/a", Some(1.0)), ("p/b", None), ("p/c", Some(3.5269999))] {
            let seen = Seen::Completed {
                validated: true,
                seconds,
                stale: None,
            };
            builder.add("p", id, seen, Attempt::default(), Usage::default());
        }
        let progress = builder.finish(String::new(), |_| Vec::new(), Vec::new());
        assert_eq!(progress.phases[0].mean_seconds, Some(2.263));
    }

    #[test]
    fn a_sum_of_costs_is_given_without_float_noise() {
        let mut builder = Builder::new();
        for (id, cost) in [("p/a", 0.1), ("p/b", 0.2)] {
            let usage = Usage {
                cost_usd: Some(cost),
                ..Usage::default()
            };
            builder.add("p", id, Seen::Pending, Attempt::default(), usage);
        }
        let progress = builder.finish(String::new(), |_| Vec::new(), Vec::new());
        assert_eq!(progress.phases[0].cost_usd, Some(0.3));
        assert_eq!(progress.cost_usd, Some(0.3));
    }
}
