//! The run's side of approvals (`approve: before | after`): a ready task
//! that waits for a person before it starts, a completed one whose
//! dependents wait until its result is approved, and the decisions that
//! `approve` and `reject` leave in `workspace/approvals/`, picked up while
//! the run goes on and recorded in the tasks' statuses.

use std::time::SystemTime;

use anyhow::Result;

use super::load::Disk;
use super::readiness::{Node, Readiness};
use super::Run;
use crate::model::config::{Approve, Config};
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::state::approvals::{self, Approval, Decision};
use crate::state::events::Event;
use crate::state::status::{self, State, Status};
use crate::ui::printer::Tone;

/// Whether `task` waits for a person's approval before it starts, and has
/// none (that still holds) yet.
pub fn waits_to_start(layout: &Layout, config: &Config, task: &Task) -> bool {
    waits(layout, config, task, Approve::Before)
}

/// Whether task `t` is ready to start and waits for no person's approval
/// to: only its pool's pause may hold it then (`Admission::holding_pause`).
pub fn ready_for_no_one(
    layout: &Layout,
    config: &Config,
    graph: &Graph,
    readiness: &Readiness,
    t: usize,
) -> bool {
    readiness.node(t) == Node::Ready && !waits_to_start(layout, config, &graph.tasks[t])
}

/// Whether `task` waits for a person's approval `when` it is to be given
/// (before it starts, or of its result), with none given that holds.
pub fn waits(layout: &Layout, config: &Config, task: &Task, when: Approve) -> bool {
    task.approval(config) == Some(when)
        && approvals::read(layout, task).is_none_or(|a| a.decision != Decision::Approved)
}

impl Run<'_> {
    /// Whether the ready task `t` waits for a person's approval before it
    /// starts: when it does, it is set aside until the decision comes.
    pub(super) fn held_for_approval(&mut self, t: usize) -> Result<bool> {
        let task = &self.graph.tasks[t];
        if task.approval(self.config) != Some(Approve::Before) {
            return Ok(false);
        }
        match approvals::read(self.layout, task) {
            Some(approval) if approval.decision == Decision::Approved => {
                self.history[t].approval = Some(Box::new(approval));
                Ok(false)
            }
            Some(rejection) => {
                self.readiness.await_approval(&self.graph, t);
                // From awaiting approval, the rejection is its change.
                if self.history[t].taken_up_from == Some("awaiting_approval") {
                    self.history[t].taken_up_from = None;
                }
                self.say_taken_up(t);
                self.on_rejected(t, &rejection)?;
                Ok(true)
            }
            None => {
                self.readiness.await_approval(&self.graph, t);
                let id = &self.graph.tasks[t].id;
                let recorded = status::read(self.layout, id).ok().flatten();
                // Said once: a later run finds it awaiting already.
                if recorded.as_ref().map(|s| s.status) != Some(State::AwaitingApproval) {
                    self.say_revoked(t);
                    let id = &self.graph.tasks[t].id;
                    // It keeps the failure before the wait (its failed
                    // status, or the one a reset kept), which its next
                    // attempt is told of, whichever run starts it.
                    let waiting = Status {
                        attempt: self.history[t].attempt,
                        previous: self.history[t].previous.as_ref().map(|p| p.failure()),
                        run_id: Some(self.run_id.clone()),
                        ..Status::new(id, State::AwaitingApproval)
                    };
                    status::write(self.layout, &waiting)?;
                    self.say_taken_up(t);
                    let id = &self.graph.tasks[t].id;
                    // The person paged is told that approving is not all.
                    let budget = (self.budget.reached()).then(|| {
                        let reached = self.budget.reached_message();
                        format!("{reached}: approved, it starts once budget.usd is raised")
                    });
                    self.event(Event {
                        attempt: Some(self.history[t].attempt),
                        note: budget,
                        ..Event::change(id, "pending", "awaiting_approval")
                    });
                }
                self.awaits(t, false);
                Ok(true)
            }
        }
    }

    /// Says, once, that the approval given for task `t` no longer holds
    /// (what it covered changed since), when it does not: on the terminal
    /// and in the events (`revoked`, with who gave it), for the person who
    /// is to approve it again.
    fn say_revoked(&mut self, t: usize) {
        let id = self.graph.tasks[t].id.clone();
        let Some(revoked) = approvals::revoked(self.layout, &self.graph.tasks[t]) else {
            return;
        };
        if !self.revoked.insert(t) {
            return;
        }
        let (approval, text) = (revoked.approval, revoked.said);
        if revoked.for_the_next_run {
            // Not revoked: the next run acts on it; no one is asked again.
            self.printer.event(Tone::Warn, "approval", &id, &text);
            return;
        }
        self.printer.event(Tone::Warn, "revoked", &id, &text);
        self.event(Event {
            task: Some(id),
            by: Some(approval.by.clone()),
            note: Some(text),
            ..Event::run("revoked")
        });
    }

    /// With the budget reached nothing starts, yet a ready task that waits
    /// for a person says so, as it does when it is to start: a run shows
    /// it awaiting approval whether the budget was reached before it became
    /// ready or after (the next run), and a rejection still fails it.
    pub(super) fn set_aside_for_approval(&mut self) -> Result<()> {
        for t in self.readiness.all_ready() {
            self.held_for_approval(t)?;
        }
        Ok(())
    }

    /// Whether the completed task `t` (its final status `status`) waits
    /// for a person to approve its result; when it does, its status says
    /// so, and what depends on it waits.
    pub(super) fn result_held_for_approval(&mut self, t: usize, status: &mut Status) -> bool {
        let task = &self.graph.tasks[t];
        if task.approval(self.config) != Some(Approve::After) {
            return false;
        }
        // An approval given before this result existed saw other outputs:
        // reading it revokes it.
        if let Some(approval) =
            approvals::read(self.layout, task).filter(|a| a.decision == Decision::Approved)
        {
            approvals::record(status, &approval);
            self.history[t].approval = Some(Box::new(approval));
            return false;
        }
        status.status = State::AwaitingApproval;
        true
    }

    /// Task `t` now waits for a decision: said, and looked for from now on.
    pub(super) fn awaits(&mut self, t: usize, ran: bool) {
        let id = self.graph.tasks[t].id.clone();
        let what = if ran {
            "its result awaits approval"
        } else {
            "awaits approval to start"
        };
        let approve = self.layout.task_cmd("approve", &id);
        self.printer
            .event(Tone::Warn, "approval", &id, &format!("{what}: `{approve}`"));
        self.awaiting.insert(t, ran);
    }

    /// Completed tasks whose result awaited approval when the run began.
    /// One whose definition no longer asks for it (its `approve: after`
    /// removed since) is completed: `approve` and `reject` would refuse
    /// it, and nothing would ever decide on it.
    pub(super) fn awaiting_from_before(&mut self, tasks: &[usize]) -> Result<()> {
        for &t in tasks {
            if self.graph.tasks[t].approval(self.config) == Some(Approve::After) {
                self.awaiting.insert(t, true);
                continue;
            }
            self.result_accepted(t, None)?;
            let id = &self.graph.tasks[t].id;
            let line = "its result no longer asks for approval (its `approve: after` is gone)";
            self.printer.event(Tone::Good, "done", id, line);
        }
        Ok(())
    }

    /// Task `t`'s result, which awaited approval, counts: approved by
    /// `decision`, or no longer asked to be.
    fn result_accepted(&mut self, t: usize, decision: Option<&Approval>) -> Result<()> {
        let id = self.graph.tasks[t].id.clone();
        let files = Disk::new(self.layout, self.config, &self.graph);
        self.readiness.approved_result(&self.graph, t, &files);
        let mut event = Event::change(&id, "awaiting_approval", "completed");
        if let Some(mut recorded) = status::read(self.layout, &id).ok().flatten() {
            recorded.status = State::Completed;
            if let Some(decision) = decision {
                approvals::record(&mut recorded, decision);
            }
            status::write(self.layout, &recorded)?;
            event = event.of_attempt(&recorded);
        }
        self.event(event);
        Ok(())
    }

    /// Acts on the decisions made since the last look, from this terminal
    /// or another.
    pub(super) fn check_approvals(&mut self) -> Result<()> {
        let waiting: Vec<(usize, bool)> = self.awaiting.iter().map(|(&t, &r)| (t, r)).collect();
        for (t, ran) in waiting {
            let id = self.graph.tasks[t].id.clone();
            let Some(decision) = approvals::read(self.layout, &self.graph.tasks[t]) else {
                // Given, then revoked before the run took it up.
                self.say_revoked(t);
                continue;
            };
            self.awaiting.remove(&t);
            if decision.decision == Decision::Rejected {
                self.on_rejected(t, &decision)?;
                continue;
            }
            let by = format!("approved by {}", decision.by);
            self.history[t].approval = Some(Box::new(decision.clone()));
            if ran {
                // Its completion may open a phase gate: task files written
                // meanwhile join first (see `discover_before_completing`).
                self.discover_if_due();
                self.result_accepted(t, Some(&decision))?;
                self.printer.event(Tone::Good, "approved", &id, &by);
            } else {
                let files = Disk::new(self.layout, self.config, &self.graph);
                self.readiness.approved_to_start(&self.graph, t, &files);
                // Told here, not again as it starts.
                if self.history[t].taken_up_from == Some("awaiting_approval") {
                    self.history[t].taken_up_from = None;
                }
                self.event(Event::change(&id, "awaiting_approval", "pending"));
                self.printer.event(Tone::Good, "approved", &id, &by);
            }
            let files = Disk::new(self.layout, self.config, &self.graph);
            self.readiness.recheck(&self.graph, &files);
        }
        Ok(())
    }

    /// Task `t`, awaiting approval, is rejected: failed (held until
    /// `reset`), and what depends on it blocked.
    fn on_rejected(&mut self, t: usize, rejection: &Approval) -> Result<()> {
        let id = self.graph.tasks[t].id.clone();
        let reason = rejection.note.as_deref().unwrap_or("no reason given");
        let error = format!("rejected by {}: {reason}", rejection.by);
        self.readiness.reject(t);
        self.history[t].error = Some(error.clone());
        let mut failed = status::read(self.layout, &id)
            .ok()
            .flatten()
            .unwrap_or_else(|| Status::new(&id, State::Failed));
        failed.status = State::Failed;
        failed.error = Some(error.clone());
        // The rejection is the failure to tell, not the one before it.
        failed.previous = None;
        failed.held = true;
        failed.completed_at = Some(status::timestamp(SystemTime::now()));
        status::write(self.layout, &failed)?;
        self.printer.event(Tone::Bad, "rejected", &id, &error);
        self.event(Event {
            error: Some(error),
            ..Event::change(&id, "awaiting_approval", "failed").of_attempt(&failed)
        });
        self.block_and_alert(t);
        Ok(())
    }
}
