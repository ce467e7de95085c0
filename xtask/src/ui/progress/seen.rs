//! What a view knows of one task (`Seen`), from its status or the run's
//! own state, and what its attempt used (`Usage`).

use std::collections::HashMap;
use std::time::SystemTime;

use crate::agent::result::Report;
use crate::run::admission::Pause;
use crate::run::unseen::EndedUnseen;
use crate::state::status::{AgentSlot, Retry, State, Status};

/// What a view knows of one task.
pub enum Seen {
    Pending,
    Running {
        agent: Option<AgentSlot>,
        started: Option<SystemTime>,
        /// When its process ended, once it ended unseen with its end known
        /// (`Seen::ended_unseen`): it ran until then, not until now.
        ended: Option<SystemTime>,
        alive: bool,
        queued: bool,
        /// Its process ended; its work waits in the merge queue.
        merging: bool,
    },
    Completed {
        /// Its outputs were validated: it counts for its phase's gate.
        validated: bool,
        seconds: Option<f64>,
        /// The file that changed since it was built from it, if one did.
        stale: Option<String>,
    },
    /// Waits for a person's approval: to start, or (`ran`) of its result.
    AwaitingApproval {
        ran: bool,
        /// What its attempt took, when it ran.
        seconds: Option<f64>,
    },
    Failed {
        error: Option<String>,
        exit_code: Option<i32>,
        seconds: Option<f64>,
        /// Read from its status (a run knows its retries itself).
        retry: Option<Retry>,
        /// The run showing it is to try it again (its retry waits for a
        /// slot): its phase has not ended.
        again: bool,
    },
    Blocked {
        by: Option<String>,
        /// The run showing it is to run it again, once what blocks it
        /// has (a retry waiting for a slot): its phase has not ended.
        again: bool,
    },
    /// Waits for its pool, paused by a rate limit until `until`.
    Paused {
        until: SystemTime,
        error: Option<String>,
        /// The pool, when known (`None`: its status names none).
        pool: Option<String>,
    },
}

/// The pools a rate limit pauses now (`Seen::Paused` tasks), each until
/// its latest pause.
pub fn paused_pools<'a>(
    paused_tasks: impl Iterator<Item = (&'a str, SystemTime)>,
) -> HashMap<String, SystemTime> {
    let mut paused: HashMap<String, SystemTime> = HashMap::new();
    for (pool, until) in paused_tasks {
        let latest = paused.entry(pool.to_owned()).or_insert(until);
        *latest = (*latest).max(until);
    }
    paused
}

impl Seen {
    /// A completed task built from files that changed since: `stale`
    /// names the first.
    pub fn stale_because(self, changed: Option<String>) -> Seen {
        match self {
            Seen::Completed {
                validated, seconds, ..
            } => Seen::Completed {
                validated,
                seconds,
                stale: changed,
            },
            seen => seen,
        }
    }

    /// A task the rate limit's `pause` holds (its own, or its pool's),
    /// with the `error` its own limit gave, if it hit one.
    pub fn held_by(pause: Pause, error: Option<String>) -> Seen {
        Seen::Paused {
            until: pause.until,
            error,
            pool: Some(pause.pool),
        }
    }

    /// What a status file says: a running task's attempt goes on until
    /// `ended_unseen` says it ended; whether a completed task is stale is
    /// `stale_because`'s.
    pub fn of(status: Option<&Status>) -> Seen {
        let Some(s) = status else {
            return Seen::Pending;
        };
        match s.status {
            State::Completed => Seen::Completed {
                validated: s.outputs_validated,
                seconds: s.duration_seconds,
                stale: None,
            },
            State::AwaitingApproval => Seen::AwaitingApproval {
                ran: s.completed_at.is_some(),
                seconds: s.duration_seconds,
            },
            State::Running => Seen::Running {
                agent: s.agent_id,
                started: s.started(),
                ended: None,
                alive: true,
                queued: s.queued,
                merging: s.merging,
            },
            State::Failed if s.paused_until().is_some() => {
                match s.paused_until().filter(|until| *until > SystemTime::now()) {
                    Some(until) => Seen::Paused {
                        until,
                        error: s.error.clone(),
                        pool: s.pool.clone(),
                    },
                    // Its pause is over: it starts again with the next run.
                    None => Seen::Pending,
                }
            }
            State::Failed => Seen::Failed {
                error: s.error.clone(),
                exit_code: s.exit_code,
                seconds: s.duration_seconds,
                retry: Some(s.retry()),
                again: false,
            },
            State::Blocked => Seen::Blocked {
                again: false,
                by: s.blocked_by.clone(),
            },
        }
    }

    pub(super) fn state(&self) -> &'static str {
        match self {
            Seen::Pending => "pending",
            Seen::Running { merging: true, .. } => "merging",
            Seen::Running { .. } => "running",
            Seen::Completed { stale: Some(_), .. } => "stale",
            Seen::Completed { .. } => "completed",
            Seen::AwaitingApproval { .. } => "awaiting_approval",
            Seen::Failed { .. } => "failed",
            Seen::Blocked { .. } => "blocked",
            Seen::Paused { .. } => "paused",
        }
    }

    /// A running task whose attempt ended unseen (`run::unseen`) is gone:
    /// it ran until its end, when known, not until now.
    pub fn ended_unseen(&mut self, unseen: &EndedUnseen) {
        if let Seen::Running { alive, ended, .. } = self {
            *alive = false;
            *ended = unseen.ended_at();
        }
    }
}

/// What an attempt used, from its status: CPU and memory, and what its
/// agent reported.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub cpu_seconds: Option<f64>,
    pub peak_memory_mb: Option<f64>,
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Its agent reported, but no cost.
    pub cost_unknown: bool,
}

impl Usage {
    pub fn of(status: Option<&Status>) -> Usage {
        status.map_or(Usage::default(), |s| {
            Usage::with_report(s, s.agent.as_ref())
        })
    }

    /// What `status` says was used, with what its agent reported taken
    /// from `report` (one the status does not hold yet: its attempt ended
    /// unseen).
    pub fn with_report(status: &Status, report: Option<&Report>) -> Usage {
        Usage {
            cpu_seconds: status.cpu_seconds,
            peak_memory_mb: status.peak_memory_mb,
            ..Usage::reported(report)
        }
    }

    /// What an agent reported.
    pub fn reported(report: Option<&Report>) -> Usage {
        report.map_or(Usage::default(), |r| Usage {
            cost_usd: r.cost_usd,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cost_unknown: r.cost_usd.is_none(),
            ..Usage::default()
        })
    }
}
