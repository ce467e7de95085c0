//! The attempts running now, each in an agent slot: slots are numbered from
//! 1 and reused, lowest first, so the report's lanes stay few.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::executor::Executor;
use crate::model::config::Config;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::run::attempt::{self, Active};
use crate::run::recovery::{self, Ended};
use crate::state::logs;
use crate::state::status::AgentSlot;

pub struct Running {
    active: HashMap<usize, Active>,
    /// The slots attempts hold: the next takes the lowest free one. Made
    /// as needed, not for every task the limits would allow at once (`-j
    /// 4294967295` is a valid limit), nor up to a slot an adopted attempt's
    /// status names.
    held: BTreeSet<usize>,
    /// Adopted attempts a stop could not signal yet: their status named no
    /// pid, and their supervisor had not written it. Each gets the signal
    /// it was due (SIGTERM, or SIGKILL once the grace is over or a second
    /// interrupt came), said in its log, once its pid is known
    /// (`stop_late`).
    unsignalled: HashMap<usize, (i32, String)>,
}

/// What a stop says in a task's log as it sends SIGTERM.
pub const TERM_SAID: &str = "xtask: interrupted: SIGTERM sent to the task's processes";

impl Running {
    pub fn new() -> Running {
        Running {
            active: HashMap::new(),
            unsignalled: HashMap::new(),
            held: BTreeSet::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    pub fn contains(&self, t: usize) -> bool {
        self.active.contains_key(&t)
    }

    pub fn get(&self, t: usize) -> Option<&Active> {
        self.active.get(&t)
    }

    pub fn get_mut(&mut self, t: usize) -> Option<&mut Active> {
        self.active.get_mut(&t)
    }

    /// The running tasks, in no particular order.
    pub fn tasks(&self) -> Vec<usize> {
        self.active.keys().copied().collect()
    }

    /// The slot for the next attempt: the lowest free one.
    pub fn next_slot(&mut self) -> AgentSlot {
        let mut lowest = 1;
        for &slot in &self.held {
            if slot != lowest {
                break;
            }
            lowest += 1;
        }
        AgentSlot(lowest)
    }

    /// Tracks task `t`'s attempt, in its slot.
    pub fn insert(&mut self, t: usize, active: Active) {
        self.held.insert(active.agent.0);
        self.active.insert(t, active);
    }

    /// Task `t`'s attempt ended: its slot is free again.
    pub fn remove(&mut self, t: usize) -> Option<Active> {
        let active = self.active.remove(&t)?;
        self.held.remove(&active.agent.0);
        Some(active)
    }

    /// Whether some attempt was adopted from an earlier orchestrator (and
    /// must be watched by polling).
    pub fn any_adopted(&self) -> bool {
        self.active.values().any(|a| a.adopted.is_some())
    }

    /// When the next pid is due to be written (see `run::PID_AFTER`).
    pub fn next_pid_due(&self) -> Option<Instant> {
        self.active.values().filter_map(|a| a.pid_due).min()
    }

    /// The tasks whose pid is due to be written by `now`; each is taken off
    /// the schedule.
    pub fn take_pids_due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for (&t, active) in self.active.iter_mut() {
            if active.pid_due.is_some_and(|at| at <= now) {
                active.pid_due = None;
                due.push(t);
            }
        }
        due
    }

    /// Applies the limits of the adopted tasks whose supervisor is gone,
    /// as it would have (see `recovery::Orphan`).
    pub fn watch_orphans(&mut self, layout: &Layout, config: &Config, graph: &Graph) {
        for (&t, active) in self.active.iter_mut() {
            let task = &graph.tasks[t];
            recovery::watch_orphan(layout, &task.id, active, |active| {
                let branch = active.worktree.as_ref().map(|w| w.branch.as_str());
                let limits = attempt::limits(layout, config, task, branch, active.started);
                (limits, attempt::kept_stdout(layout, config, task))
            });
        }
    }

    /// The adopted tasks that have ended (see `recovery::adopted_ended`),
    /// all they printed in their logs.
    pub fn adopted_ended(&mut self, layout: &Layout, config: &Config, graph: &Graph) -> Vec<usize> {
        let mut ended = Vec::new();
        for (&t, active) in self.active.iter_mut() {
            let task = &graph.tasks[t];
            let Some(how) = recovery::adopted_ended(layout, &task.id, active) else {
                continue;
            };
            // Nothing copied its stdout into its log since its supervisor
            // died: all of it, now.
            let kept = attempt::kept_stdout(layout, config, task);
            if let Some(kept) = kept.filter(|_| how == Ended::Unseen) {
                let log = layout.log_file(&task.id);
                logs::append_all_of(&log, &kept, recovery::ORPHAN_OUTPUT);
            }
            ended.push(t);
        }
        ended
    }

    /// Asks every attempt to stop: through the executor, or for adopted
    /// ones (no executor of ours), SIGTERM to their group, said in their
    /// log as their supervisor would.
    pub fn stop_all(
        &mut self,
        mut executor: Option<&mut Executor>,
        layout: &Layout,
        graph: &Graph,
    ) {
        // Those whose worktree is being made the stop cuts short itself.
        let handed_over = self.active.iter_mut().filter(|(_, a)| !a.making_worktree);
        for (&t, active) in handed_over {
            let id = &graph.tasks[t].id;
            let asked = match (&mut executor, active.adopted) {
                (Some(executor), None) => executor.stop(id),
                _ => false,
            };
            if asked {
                continue;
            }
            if let Some(supervisor) = active.adopted {
                let alive = recovery::supervisor_runs(supervisor);
                recovery::learn_pid(layout, id, active, alive);
                if active.pid == 0 {
                    self.unsignalled
                        .insert(t, (libc::SIGTERM, TERM_SAID.to_owned()));
                    continue;
                }
            }
            signal_said(layout, id, active, libc::SIGTERM, TERM_SAID);
        }
    }

    /// The signals due to the adopted attempts a stop could not signal
    /// (`stop_all`, `kill_all`), whose pid is known now.
    pub fn stop_late(&mut self, layout: &Layout, graph: &Graph) {
        let active = &self.active;
        self.unsignalled
            .retain(|t, (signal, said)| match active.get(t) {
                Some(a) if a.pid == 0 => true,
                Some(a) => {
                    signal_said(layout, &graph.tasks[*t].id, a, *signal, said);
                    false
                }
                None => false,
            });
    }

    /// SIGKILL to every attempt, now: `grace` after the SIGTERM of a stop,
    /// or at once (`None`: a second interrupt), then also through the
    /// executor for a local task whose pid the run does not know yet.
    pub fn kill_all(
        &mut self,
        mut executor: Option<&mut Executor>,
        layout: &Layout,
        graph: &Graph,
        grace: Option<Duration>,
    ) {
        let said = kill_said(grace);
        let handed_over = self.active.iter().filter(|(_, a)| !a.making_worktree);
        for (&t, active) in handed_over {
            let id = &graph.tasks[t].id;
            if active.adopted.is_some() && active.pid == 0 {
                self.unsignalled.insert(t, (libc::SIGKILL, said.clone()));
            }
            // Said before the signal: reaped at once, the task may be gone
            // before its supervisor could say it.
            signal_said(layout, id, active, libc::SIGKILL, &said);
            match &mut executor {
                Some(executor) if grace.is_none() && active.pid == 0 => executor.kill_now(id),
                Some(executor) => executor.kill(id),
                None => {}
            }
        }
    }
}

/// What a kill says in a task's log as it sends SIGKILL: `grace` after
/// the SIGTERM of a stop, or at once (`None`: a second interrupt).
pub fn kill_said(grace: Option<Duration>) -> String {
    match grace {
        Some(grace) => format!(
            "xtask: still running {} after SIGTERM: SIGKILL sent",
            humantime::format_duration(grace)
        ),
        None => "xtask: interrupted again: SIGKILL sent to the task's processes".to_owned(),
    }
}

/// `signal` to an attempt's processes, when it runs, said in its log
/// (`said`) as its supervisor would.
pub fn signal_said(layout: &Layout, id: &str, active: &Active, signal: i32, said: &str) {
    if active.process().alive() {
        logs::append_line(&layout.log_file(id), said);
        active.process().signal_group(signal);
        if signal == libc::SIGTERM {
            // A stopped process (SIGSTOP) handles its SIGTERM only once it
            // runs again, as the supervisor's stops do.
            active.process().signal_group(libc::SIGCONT);
        }
    }
}
