//! The run as its live view shows it: the dashboard built from the run's
//! own state, with no file read but each running task's last log line, and
//! whether the inputs no task makes are there yet (`never_starting`).

use std::collections::HashSet;
use std::time::SystemTime;

use crate::model::config::Config;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::model::task::phase_key;
use crate::run::admission::Admission;
use crate::run::approvals;
use crate::run::history::{self, Past};
use crate::run::order::{self, Left};
use crate::run::plan;
use crate::run::readiness::{Node, Readiness};
use crate::run::running::Running;
use crate::state::durations::Durations;
use crate::state::outputs;
use crate::state::status::{self, AgentSlot, Link};
use crate::ui::progress::{Attempt, Builder, Progress, Seen, Spent, Usage};

/// What the run knows now, as the dashboard.
pub struct Snapshot<'a> {
    pub layout: &'a Layout,
    pub config: &'a Config,
    pub graph: &'a Graph,
    pub readiness: &'a Readiness,
    pub history: &'a [Past],
    pub running: &'a Running,
    /// What `history.json` says tasks took, for what each is expected to
    /// take (see `order`), with what this run learned.
    pub durations: &'a Durations,
    /// The limits the work left is spread over, for the expected end.
    pub admission: &'a Admission<'a>,
    /// Whether new tasks start (not once the budget is reached, or the run
    /// is stopping): what waits counts for the expected end only then.
    pub starting: bool,
    /// Tasks whose files were removed before they started: no tasks any
    /// more, as `progress` (which reads the task folders) has them.
    pub removed: &'a std::collections::HashSet<usize>,
    /// What the run's attempts cost, once one reported a cost.
    pub spent: Option<f64>,
    /// The merge queue, where a task whose process has ended waits.
    pub git: Option<&'a super::merging::Git>,
}

impl Snapshot<'_> {
    pub fn progress(&self) -> Progress {
        let mut builder = Builder::new();
        let blocked_now = self.blocked_now();
        for (t, task) in self.graph.tasks.iter().enumerate() {
            if self.removed.contains(&t) {
                continue;
            }
            let past = &self.history[t];
            let active = self.running.get(t);
            let attempt = Attempt {
                number: past.attempt,
                agent: self.agent_of(t),
                branch: active
                    .and_then(|a| a.worktree.as_ref())
                    .map(|w| w.branch.clone()),
                merged_commit: None,
                pool: past.paused.as_ref().map(|paused| paused.1.clone()),
            };
            builder.add(
                task.phase(),
                &task.id,
                self.seen(t, blocked_now[t]),
                attempt,
                Usage::reported(past.report.as_deref()),
            );
        }
        let missing = |phase: &str| {
            outputs::missing_artifacts(self.layout, &self.config.phase(phase_key(phase)).requires)
        };
        let mut progress = builder.finish(self.config.title(self.layout), missing, Vec::new());
        progress.run_going_on = true;
        progress.spent = Spent::ThisRun(self.spent);
        let never = plan::never_starting(self.layout, self.config, self.graph);
        let left: Vec<Left> = (0..self.graph.tasks.len())
            .map(|t| self.left(t, &never))
            .collect();
        // Made again at each frame (at most every 500 ms, on a terminal):
        // the first tasks of a phase to complete tell what the others take.
        let known =
            history::known_seconds(self.graph, self.readiness, self.history, self.durations);
        let expected = order::expected(self.graph, known);
        let longest = order::longest(self.graph, self.config);
        progress.set_eta(order::remaining(
            self.graph,
            &expected,
            &left,
            &longest,
            |own| self.admission.spread(self.graph, own),
        ));
        progress
    }

    /// The agent slot task `t` runs in, or ran in, its work now waiting
    /// in the merge queue.
    fn agent_of(&self, t: usize) -> Option<AgentSlot> {
        let active = self.running.get(t).map(|a| a.agent);
        active.or_else(|| self.git.and_then(|git| git.agent_of(t)))
    }

    /// What is left of task `t` in this run; nothing of one still to start
    /// that is among those `never` starting (it waits for a file no task
    /// produces: no run starts it until a person writes it), as `progress`
    /// leaves it out.
    fn left(&self, t: usize, never: &HashSet<usize>) -> Left {
        match self.readiness.node(t) {
            // Its process has ended: only the merge is left, no work.
            Node::Merging => Left::Nothing,
            // Waiting in Slurm's queue: none of it has run yet.
            Node::Running
                if self
                    .running
                    .get(t)
                    .is_some_and(|a| a.queued && a.job_id.is_some()) =>
            {
                Left::All
            }
            Node::Running => {
                let started = self.running.get(t).map(|a| a.started);
                let ran = started
                    .and_then(|s| SystemTime::now().duration_since(s).ok())
                    .map_or(0.0, |d| d.as_secs_f64());
                Left::Running(ran)
            }
            _ if !self.starting || never.contains(&t) => Left::Nothing,
            Node::Waiting | Node::NeedsInputs | Node::Ready => {
                let now = SystemTime::now();
                // Its own pause, or its pool's (another task's limit).
                let own = self.history[t].paused.as_deref().map(|(until, _)| *until);
                let pool = self.admission.pool_paused_until(self.graph, t, now);
                match own.max(pool) {
                    Some(until) => Left::Paused(order::seconds_until(until)),
                    None => Left::All,
                }
            }
            Node::AwaitingApproval if self.history[t].seconds.is_none() => Left::All,
            _ => Left::Nothing,
        }
    }

    /// For each task taken up again from blocked and not started yet, the
    /// failed task that blocks it as `progress` shows the statuses
    /// (`status::blocked_now`), if one does: a task shown failed (failed in
    /// this run, or taken up again with its status still saying failed)
    /// it waits on, through tasks blocked or without a status.
    fn blocked_now(&self) -> Vec<Option<usize>> {
        let link = |t: usize| {
            let past = &self.history[t];
            match self.readiness.node(t) {
                Node::Failed => Link::Failed,
                // This run's, unfinished: it keeps them blocked.
                Node::Blocked => Link::Blocked { kept: true },
                Node::Waiting | Node::NeedsInputs | Node::Ready | Node::Unselected => {
                    match past.taken_up_from {
                        Some("failed") => Link::Failed,
                        Some("blocked") => Link::Blocked { kept: false },
                        Some(_) => Link::Other,
                        None if past.paused.is_some() => Link::Other,
                        None => Link::Unrun,
                    }
                }
                _ => Link::Other,
            }
        };
        let links: Vec<Link> = (0..self.graph.tasks.len()).map(link).collect();
        let recorded = |t: usize| self.history[t].was_blocked_by.map(|b| b as usize);
        status::blocked_now(self.graph, &links, recorded)
    }

    /// What the view shows of task `t`; `blocked_now`: the failed task that
    /// blocks it now, if it was taken up again from blocked.
    fn seen(&self, t: usize, blocked_now: Option<usize>) -> Seen {
        let past = &self.history[t];
        let node = self.readiness.node(t);
        if let (Node::Ready | Node::Waiting, Some((until, _))) = (node, past.paused.as_deref()) {
            // Its own pause over, it waits for its pool's (another task's),
            // as `progress` has it.
            let now = SystemTime::now();
            let held = (self.admission).holding_pause(self.graph, t, Some(*until), || true, now);
            if let Some(pause) = held {
                let error = past.previous.as_ref().map(|p| p.error.clone());
                return Seen::held_by(pause, error);
            }
        }
        match node {
            Node::Completed => Seen::Completed {
                validated: true,
                seconds: past.seconds,
                stale: None,
            },
            Node::AwaitingApproval => Seen::AwaitingApproval {
                ran: past.seconds.is_some(),
                seconds: past.seconds,
            },
            Node::Running | Node::Merging => {
                let active = self.running.get(t);
                Seen::Running {
                    agent: self.agent_of(t),
                    started: active.map(|a| a.started),
                    ended: None,
                    alive: true,
                    queued: active.is_some_and(|a| a.job_id.is_some() && a.queued),
                    merging: self.readiness.node(t) == Node::Merging,
                }
            }
            Node::Failed => Seen::Failed {
                error: past.error.clone(),
                exit_code: None,
                seconds: None,
                retry: None,
                again: false,
            },
            Node::Blocked => Seen::Blocked {
                again: false,
                by: self
                    .readiness
                    .blocked_by(t)
                    .map(|b| self.graph.tasks[b].id.clone()),
            },
            // Taken up again but not started yet: its status still says
            // failed (a retry waiting for a slot), or blocked by one that
            // does, as `progress` shows it (one whose blocker is not
            // failed now is pending there).
            Node::Waiting | Node::NeedsInputs | Node::Ready if past.failed_until_retried() => {
                Seen::Failed {
                    error: past.previous.as_ref().map(|p| p.error.clone()),
                    exit_code: None,
                    seconds: None,
                    retry: None,
                    again: self.starting,
                }
            }
            Node::Waiting | Node::NeedsInputs | Node::Ready
                if past.taken_up_from == Some("blocked") =>
            {
                match blocked_now {
                    Some(b) => Seen::Blocked {
                        by: Some(self.graph.tasks[b].id.clone()),
                        again: self.starting,
                    },
                    None => self.pending(t),
                }
            }
            Node::Waiting | Node::NeedsInputs | Node::Ready | Node::Unselected => self.pending(t),
        }
    }

    /// A task yet to start: paused while its pool's pause (another task's
    /// limit) holds it, ready and waiting for no person, as `next` says it;
    /// else pending.
    fn pending(&self, t: usize) -> Seen {
        let (layout, config, graph) = (self.layout, self.config, self.graph);
        let ready = || approvals::ready_for_no_one(layout, config, graph, self.readiness, t);
        let now = SystemTime::now();
        match (self.admission).holding_pause(self.graph, t, None, ready, now) {
            Some(pause) => Seen::held_by(pause, None),
            None => Seen::Pending,
        }
    }
}
