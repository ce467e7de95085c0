//! What the run knows of each task's earlier attempts: how many it started
//! in this run (retries count against them), the latest attempt's number
//! across runs, and the latest failure, which a retry is told of; and, as
//! the run ends, how long each task that completed took, kept in
//! `workspace/history.json` for the order of later runs.

use std::time::SystemTime;

use camino::Utf8PathBuf;

use crate::agent::result::{Report, ThreadUsage};
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::run::order;
use crate::run::readiness::{self, Readiness};
use crate::state::approvals::Approval;
use crate::state::durations::Durations;
use crate::state::logs;
use crate::state::resets::Cleared;
use crate::state::status::Failure;
use crate::ui::printer::Tone;

/// One task's past. What most tasks never have is boxed: a run keeps one
/// per task (100,000 of them, 424 bytes each unboxed).
#[derive(Debug, Default, Clone)]
pub struct Past {
    /// Attempts started in this run.
    pub tries: u32,
    /// The latest attempt's number, counting across runs.
    pub attempt: u32,
    /// The latest failed attempt, for a retry's environment.
    pub previous: Option<Box<Previous>>,
    /// Why the task failed, while it is failed.
    pub error: Option<String>,
    /// How long its completed attempt took, for the live view's ETA.
    pub seconds: Option<f64>,
    /// Since when it has been failing on rate limits, attempt after attempt.
    pub limited_since: Option<SystemTime>,
    /// While it waits for its pool, paused by a rate limit: until when,
    /// and the pool.
    pub paused: Option<Box<(SystemTime, String)>>,
    /// What the agent reported of its latest ended attempt.
    pub report: Option<Box<Report>>,
    /// A person's approval, once given.
    pub approval: Option<Box<Approval>>,
    /// What its status said (failed, blocked) when the run took it up
    /// again: its change to pending is an event once it starts, so that
    /// the events never say pending of a task whose status never did.
    pub taken_up_from: Option<&'static str>,
    /// The task its status said it was blocked by, when taken up from
    /// blocked: the live view shows it blocked while that one shows
    /// failed, as `progress` does.
    pub was_blocked_by: Option<u32>,
    /// Its attempt recorded as begun never started (`undo`): the next
    /// attempt, of the same number, finds that try's log.
    pub undone: bool,
    /// Its latest attempt could not start for what every retry would meet
    /// again: its prompt cannot be made from its template (a mistake in
    /// its definition), or a branch or folder not ours is in its worktree's
    /// way (`worktrees::Obstacle`). It is not retried, and the failure its
    /// next attempt is told of stays the one before.
    pub unstartable: bool,
}

#[derive(Debug, Clone)]
pub struct Previous {
    pub attempt: u32,
    pub error: String,
    /// That attempt's log.
    pub log: Utf8PathBuf,
    /// The agent's session, which a retry may resume.
    pub session_id: Option<String>,
    /// Its totals (`Failure::thread_usage`).
    pub thread_usage: Option<ThreadUsage>,
}

impl Previous {
    /// What a status tells of it (`Status::failure_to_tell`); its log is
    /// `log`.
    pub fn told(failure: Failure, log: Utf8PathBuf) -> Previous {
        Previous {
            attempt: failure.attempt,
            error: failure.error,
            log,
            session_id: failure.session_id,
            thread_usage: failure.thread_usage,
        }
    }

    /// As a status keeps it.
    pub fn failure(&self) -> Failure {
        Failure {
            attempt: self.attempt,
            error: self.error.clone(),
            session_id: self.session_id.clone(),
            thread_usage: self.thread_usage,
        }
    }

    /// What a reset task's latest attempt failed with (`state::resets`),
    /// for its next attempt, unless a later attempt left a log since (its
    /// status removed by hand). A quiet attempt leaves an empty log, which
    /// counts as none (`logs::latest_attempt_on_disk`).
    pub fn after_reset(layout: &Layout, id: &str, cleared: &Cleared) -> Option<Previous> {
        let failed = cleared.failed.unwrap_or(cleared.attempt);
        let error = cleared.error.clone()?;
        (logs::latest_attempt_on_disk(layout, id) <= cleared.attempt).then(|| Previous {
            attempt: failed,
            error,
            // Kept under its number once the next attempt starts.
            log: layout.attempt_log_file(id, failed),
            session_id: cleared.session_id.clone(),
            thread_usage: cleared.thread_usage,
        })
    }
}

impl Past {
    /// Its status says failed while the run holds its retry (for a slot,
    /// the budget, a stop): it is failed until it starts again.
    pub fn failed_until_retried(&self) -> bool {
        self.taken_up_from == Some("failed")
    }

    /// A new attempt begins; returns its number, and whether a try of that
    /// number began before and never started (`undo`): that try's log is
    /// this attempt's, not the one's before it.
    pub fn begin(&mut self) -> (u32, bool) {
        self.paused = None;
        self.unstartable = false;
        let again = std::mem::take(&mut self.undone);
        // A status edited by hand may name any number: no overflow.
        self.attempt = self.attempt.saturating_add(1);
        self.tries += 1;
        (self.attempt, again)
    }

    /// The latest attempt does not count against the retries (it hit a
    /// rate limit); its number stays taken.
    pub fn forgive(&mut self) {
        self.tries = self.tries.saturating_sub(1);
    }

    /// The attempt recorded as begun never started.
    pub fn undo(&mut self) {
        self.undone = true;
        self.tries = self.tries.saturating_sub(1);
        self.attempt = self.attempt.saturating_sub(1);
    }
}

/// What each task took when it last completed, by task index: its
/// completed attempt's, in this run or one whose status is kept, else what
/// `history.json` keeps (written as a run ends: a run killed, or one going
/// on, has not written what it learned there yet). The expected durations
/// (`order::expected`) are made of it, so that the first run of a graph
/// expects its phase's tasks to take what the first of them took, not a
/// second each.
pub fn known_seconds<'a>(
    graph: &'a Graph,
    readiness: &'a Readiness,
    history: &'a [Past],
    durations: &'a Durations,
) -> impl Fn(usize) -> Option<f64> + 'a {
    let kept = order::kept(graph, durations);
    move |t| match readiness.node(t) {
        readiness::Node::Completed => history[t].seconds.or_else(|| kept(t)),
        _ => kept(t),
    }
}

impl super::Run<'_> {
    /// Keeps how long each task that completed took, for the order and the
    /// ETA of later runs.
    pub(super) fn remember_durations(&mut self) {
        let learned: Vec<(&String, f64)> = self
            .readiness
            .tasks_in(readiness::Node::Completed)
            .filter_map(|t| Some((&self.graph.tasks[t].id, self.history[t].seconds?)))
            .filter(|(id, seconds)| self.durations.tasks.get(*id) != Some(seconds))
            .collect();
        if learned.is_empty() {
            // The file already says it all (a resume of a finished run of
            // 100,000 tasks would write megabytes for nothing).
            return;
        }
        // Into the file as it is now, under the workspace lock: the
        // durations were read before it was taken, while another run may
        // have been saving its own.
        let mut durations = match Durations::load_to_change(self.layout) {
            Ok(durations) => durations,
            Err(e) => {
                let said = format!("warning: {e:#}: this run's durations are not kept");
                self.printer.line(Tone::Warn, &said);
                return;
            }
        };
        durations.tasks.extend(
            learned
                .into_iter()
                .map(|(id, seconds)| (id.clone(), seconds)),
        );
        if let Err(e) = durations.save(self.layout) {
            self.printer.line(
                Tone::Warn,
                &format!("warning: {e:#}: the next run does not know how long these tasks took"),
            );
        }
    }
}
