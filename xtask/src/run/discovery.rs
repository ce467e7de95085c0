//! The run's side of task files found while it goes on: the scans of the
//! task folders (at once before an end that may open a phase gate a task
//! waits on, else
//! within `RESCAN_AFTER`), and what tasks added to the graph bring with
//! them (their statuses, recoveries, blocks, stale results), at the start
//! and later alike.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use camino::Utf8PathBuf;

use super::admission::Pause;
use super::load::{self, Disk, Invalid, Reader};
use super::readiness::{Node, Walk};
use super::starts;
use super::Run;
use crate::model::discovery;
use crate::state::approvals as decisions;
use crate::state::events::{self, Event};
use crate::state::records::{self, ExitRecord};
use crate::state::resets;
use crate::state::status::{self, State, Status};
use crate::ui::format;
use crate::ui::printer::Tone;

/// How long after the last scan of the task folders a task's end may leave
/// them unscanned: a task file a task wrote is found this long after it
/// ended at most, unless its end may open a phase gate a task waits on
/// (scanned at once);
/// longer where a scan takes longer (`SCANNING_AT_MOST`).
const RESCAN_AFTER: Duration = Duration::from_millis(20);

/// The share of the run's time the scans after tasks' ends may take, at
/// most, gates aside: a scan of thousands of folders (a folder per
/// feature) takes milliseconds, and one every 20 ms took half the run.
const SCANNING_AT_MOST: u32 = 20; // one twentieth

impl Run<'_> {
    /// Tasks the finished one generated join their phase gates before its
    /// own completion can open them: the task folders are scanned now when
    /// it may open one (or waits for approval), else within `rescan_after`
    /// of the last scan, so that a burst of short tasks pays for one scan.
    pub(super) fn discover_before_completing(&mut self, t: usize, held: bool) {
        if held || self.readiness.may_open_a_gate(&self.graph, t) {
            self.discover();
        } else {
            self.discover_soon();
        }
    }

    /// After a task's end, whatever it was (a failure, a rate limit's
    /// pause, a success that opens no gate): the task folders are scanned
    /// within `rescan_after` of the last scan. A task file that appeared
    /// meanwhile waited for the next success, its slot idle, while `next`
    /// said it would start. Not in a stop: nothing more starts, and the
    /// scan of a large tree would hold it (the next run finds the file).
    pub(super) fn discover_soon(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let after = self.rescan_after();
        if self.discovered_at.elapsed() >= after {
            self.discover();
        } else {
            self.discovery_due.get_or_insert(self.discovered_at + after);
        }
    }

    /// How long the folders may go unscanned after a task's end: what the
    /// last scan took, as `SCANNING_AT_MOST` of the time, `RESCAN_AFTER`
    /// at least.
    fn rescan_after(&self) -> Duration {
        (self.discovery_took * SCANNING_AT_MOST).max(RESCAN_AFTER)
    }

    /// Makes the scan a task's end put off (see `RESCAN_AFTER`), if
    /// one is due, before it is too late for it.
    pub(super) fn discover_if_due(&mut self) {
        if self.discovery_due.is_some() {
            self.discover();
        }
    }

    /// Adds task files that appeared since the last look, and those found
    /// invalid before that were written again since.
    pub(super) fn discover(&mut self) {
        self.discovered_at = Instant::now();
        self.discovery_due = None;
        let phases = self.graph.phases.len();
        let found = load::discover(
            self.layout,
            self.config,
            &mut self.discovery,
            &mut self.graph,
            &self.removed,
        );
        self.discovery_took = self.discovered_at.elapsed();
        // What was said of the files read again is past: said again only
        // if it still holds and differs.
        let reread =
            |file: &Option<Utf8PathBuf>| file.as_ref().is_some_and(|f| found.reread.contains(f));
        let past: Vec<Invalid> = self.invalid.extract_if(.., |i| reread(&i.file)).collect();
        let released: Vec<(Utf8PathBuf, usize)> = self
            .gate_holds
            .extract_if(.., |(file, _)| found.reread.contains(file))
            .collect();
        let mut holds = Vec::new();
        for problem in found.invalid {
            if !past.iter().any(|p| p.said == problem.said) {
                self.printer
                    .line(Tone::Bad, &format!("error: {}", problem.said));
            }
            if let (Some(file), Some(p)) = (&problem.file, problem.phase) {
                if !holds.iter().any(|(held, _)| held == file) {
                    holds.push((file.clone(), p));
                }
            }
            self.invalid.push(problem);
        }
        // Held before the adding, which opens the gates it can: a task that
        // waits on a complete phase, found with an invalid file of that
        // phase, would start beside it. The files still invalid hold their
        // gates before those read again let theirs go (below), so that no
        // gate opens between a file's two readings.
        for (file, p) in holds {
            self.readiness.hold_gates(&self.graph, p);
            self.gate_holds.push((file, p));
        }
        for &t in &found.added {
            let id = &self.graph.tasks[t].id;
            self.printer
                .event(Tone::Plain, "found", id, "new task file");
        }
        // A new file cannot be running yet; recovery records its fate.
        if let Err(e) = self.add_tasks(&found.added) {
            self.printer.line(Tone::Bad, &format!("error: {e:#}"));
        }
        if !found.added.is_empty() {
            self.block_behind_failures();
        }
        // After the adding, which makes the gates of new phases (a folder
        // renamed: its tasks come back as new ones, beside its old ones gone).
        let files = Disk::new(self.layout, self.config, &self.graph);
        for &t in &found.back {
            if self.removed.remove(&t) {
                let id = &self.graph.tasks[t].id;
                // A result that awaited approval when its file went awaits
                // it again (its status kept it), rather than run again.
                let awaiting = status::read(self.layout, id)
                    .ok()
                    .flatten()
                    .is_some_and(|s| {
                        s.status == State::AwaitingApproval && s.completed_at.is_some()
                    });
                self.readiness.rejoin(&self.graph, t, &files, awaiting);
                let line = match awaiting {
                    true => {
                        self.awaiting.insert(t, true);
                        "its task file is back: its result awaits approval"
                    }
                    false => "its task file is back",
                };
                self.printer.event(Tone::Plain, "found", id, line);
                if found.changed.contains(&t) {
                    self.printer.line(
                        Tone::Warn,
                        &format!("warning: {id}: its task file changed while it was gone: this run keeps the task as it first read it (an edit takes effect in the next run)"),
                    );
                }
            }
        }
        for &t in &found.removed {
            self.drop_removed(t);
        }
        if self.graph.phases.len() > phases {
            self.move_holds();
        }
        let files = Disk::new(self.layout, self.config, &self.graph);
        for (_, p) in released {
            self.readiness.release_gates(&self.graph, p, &files);
        }
    }

    /// Phases joined: a hold of a file whose phase the graph had not (it
    /// held the first after it by name) moves to the phase that joined
    /// between, whose gate includes the file. Held there before it lets go
    /// of the other, so that no gate opens between.
    fn move_holds(&mut self) {
        for i in 0..self.gate_holds.len() {
            let (file, p) = &self.gate_holds[i];
            let Some(now) = load::held_phase(self.layout, &self.graph, file) else {
                continue;
            };
            if now != *p {
                let was = *p;
                self.readiness.hold_gates(&self.graph, now);
                self.gate_holds[i].1 = now;
                let files = Disk::new(self.layout, self.config, &self.graph);
                self.readiness.release_gates(&self.graph, was, &files);
            }
        }
    }

    /// Blocks tasks that joined behind a task that failed in this run (a
    /// dependent found once the failure had blocked the others). Each
    /// walk stops at what is blocked already.
    fn block_behind_failures(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let failed: Vec<usize> = (0..self.graph.tasks.len())
            .filter(|&t| self.readiness.node(t) == Node::Failed)
            .collect();
        for t in failed {
            self.block_and_alert(t);
        }
    }

    /// A task whose file was removed: it does not start, unless it has.
    /// One awaiting approval has not, or its result does not count: no one
    /// is asked for it any more (`approve` knows no such task).
    fn drop_removed(&mut self, t: usize) {
        let awaiting = self.awaiting.get(&t).copied();
        if !self.readiness.node(t).is_waiting() && awaiting.is_none() {
            return;
        }
        self.awaiting.remove(&t);
        let files = Disk::new(self.layout, self.config, &self.graph);
        self.readiness.drop_unstarted(&self.graph, t, &files);
        self.removed.insert(t);
        let id = &self.graph.tasks[t].id;
        let fate = match awaiting {
            Some(true) => "its result no longer awaits approval in this run, and what names it as a dependency does not start",
            _ => "it does not start in this run, nor what names it as a dependency",
        };
        self.printer.line(
            Tone::Warn,
            &format!("warning: {id}: its task file was removed: {fate}"),
        );
    }

    /// Whether task `t`, about to start, has lost its file since the
    /// folders were last scanned (they are not at every end): then they
    /// are scanned now, and it does not start. One `stat` per start, so
    /// that a task a person took away never starts.
    pub(super) fn file_gone(&mut self, t: usize) -> bool {
        // A file that cannot be looked at (its folder made unreadable) is
        // there still: the task was read, and runs.
        if !discovery::gone(&self.graph.tasks[t].file) {
            return false;
        }
        self.discover();
        // A folder the scan could not read drops nothing.
        self.drop_removed(t);
        true
    }

    /// Looks for task files, inputs or gate artifacts that appeared, and
    /// what they make ready.
    pub(super) fn rescan(&mut self) {
        self.discover();
        let files = Disk::new(self.layout, self.config, &self.graph);
        self.readiness.recheck(&self.graph, &files);
    }

    /// Reads the statuses of tasks just added to the graph, recovers those
    /// recorded as running, and blocks what depends on recorded failures (a
    /// crash may have come between a failure and the blocking).
    pub(super) fn add_tasks(&mut self, added: &[usize]) -> Result<()> {
        for &t in added {
            self.graph.tasks[t].keep_body();
        }
        let selected = |t: usize| self.options.selects(&self.graph.tasks[t]);
        let reader = Reader {
            layout: self.layout,
            selected: &selected,
            run_id: Some(&self.run_id),
            rerun_stale: self.options.rerun_stale,
        };
        let files = Disk::new(self.layout, self.config, &self.graph);
        let loaded = reader.add_tasks(
            &self.graph,
            &mut self.readiness,
            &mut self.history,
            added,
            &files,
        );
        for warning in &loaded.warnings {
            self.printer
                .line(Tone::Warn, &format!("warning: {warning}"));
        }
        // The graph grew: the order is made again, with the new tasks;
        // not when nothing is left to start (tens of milliseconds for
        // 100,000 tasks, for nothing): tasks that join later order them
        // all, and meanwhile ties go by id (`Readiness::rank_of`).
        if !added.is_empty() && !self.readiness.all_settled() {
            self.order_tasks();
        }
        for late in loaded.late.chunk_by(|a, b| a.0 == b.0) {
            self.say_late(late);
        }
        let mut walked = HashSet::new();
        for t in loaded.failed {
            self.block_dependents(t, Walk::OnStart(&mut walked));
        }
        // Taken up again, but for what a failure blocks still: said when
        // it starts (see `Past::taken_up_from`).
        for (t, from, by) in loaded.requeued {
            if self.readiness.node(t) != Node::Blocked {
                self.history[t].taken_up_from = Some(from);
                self.history[t].was_blocked_by = by.map(|b| b as u32);
            }
        }
        self.awaiting_from_before(&loaded.awaiting)?;
        self.say_stale(&loaded.stale, &loaded.rerun, &loaded.stale_held);
        for (t, from) in loaded.rerun {
            // As `reset` would: what a person decided was on what ran before.
            let id = self.graph.tasks[t].id.clone();
            // Its attempts number on, should this run stop before it
            // starts again: kept before its status (and its number) goes.
            resets::keep(self.layout, &id, self.history[t].attempt, None)?;
            status::remove(self.layout, &id)?;
            decisions::remove(self.layout, &id);
            self.event(Event::change(&id, from, "pending"));
        }
        self.admission.pause(&self.graph, &loaded.paused);
        self.say_paused(&loaded.paused);
        let told = self.mend_events(&loaded.running);
        // A task followed as one whose file was gone, its file back: the
        // task's again, adopted below; else its end would be told twice
        // (the task's, and failed as one whose file is gone).
        let graph = &self.graph;
        let back = |id: &str| (loaded.running.iter()).any(|&(t, _)| graph.tasks[t].id == id);
        self.unlisted.retain(|u| !back(&u.id));
        // One whose end was recorded already, its file back: the graph's
        // task, failed, is in the summary as such; not twice.
        if !self.unlisted_ended.is_empty() {
            self.unlisted_ended
                .retain(|(id, _)| graph.get(id).is_none());
        }
        for (t, status) in loaded.running {
            let told = told.get(&t);
            if let Some(record) = told.and_then(|told| told.start_failure.as_ref()) {
                self.record_told_start_failure(t, record)?;
            }
            self.recover(t, &status, told.and_then(|told| told.started))?;
        }
        Ok(())
    }

    /// Says which tasks taken up wait for a rate limit's pause, and until
    /// when: a run resumed during one would otherwise say nothing until
    /// it ends (off a terminal, with no live view).
    fn say_paused(&self, paused: &[(usize, SystemTime)]) {
        let now = SystemTime::now();
        for &(t, own) in paused {
            // Its own pause over, it waits for its pool's (another task's).
            let held = (self.admission).holding_pause(&self.graph, t, Some(own), || true, now);
            let Some(Pause { pool, until }) = held else {
                continue;
            };
            self.printer.event(
                Tone::Warn,
                "paused",
                &self.graph.tasks[t].id,
                &format!(
                    "rate limited until {} (pool {pool}): it starts again then",
                    format::clock(until)
                ),
            );
        }
    }

    /// Says that a task joined after phases it belongs to were complete and
    /// let what waits on them start (`late`: the task and each phase).
    fn say_late(&self, late: &[(usize, usize)]) {
        let names: Vec<&str> = late
            .iter()
            .map(|&(_, p)| self.graph.phases[p].name.as_str())
            .collect();
        let (phases, were) = match names.len() {
            1 => ("phase", "was"),
            _ => ("phases", "were"),
        };
        self.printer.line(
            Tone::Warn,
            &format!(
                "warning: {} appeared after {phases} {} {were} complete: what waits on {} was let start without it",
                self.graph.tasks[late[0].0].id,
                names.join(", "),
                if names.len() == 1 { "that phase" } else { "them" },
            ),
        );
    }

    /// The events of the attempts an earlier run left running, made whole
    /// before they are taken up: a start the run was killed before telling
    /// is told now, and the changes it told before their statuses said them
    /// are not told twice. Returns what was told of each, where known.
    fn mend_events(&mut self, running: &[(usize, Status)]) -> HashMap<usize, Told> {
        let mut told_of = HashMap::new();
        if running.is_empty() || self.events.is_none() {
            return told_of;
        }
        let attempts = running
            .iter()
            .map(|(t, status)| (self.graph.tasks[*t].id.as_str(), status.attempt))
            .collect();
        let mut told = events::since_start(self.layout, &attempts);
        for (t, status) in running {
            let id = self.graph.tasks[*t].id.clone();
            match told.remove(&id) {
                Some(since) => {
                    let told = Told {
                        started: since.started,
                        start_failure: since.start_failure(status.attempt),
                    };
                    told_of.insert(*t, told);
                    if let Some(log) = &mut self.events {
                        log.told_before(&id, status.attempt, since.changes);
                    }
                }
                None => {
                    let at = status.started().unwrap_or_else(SystemTime::now);
                    let told = Told {
                        started: Some(at),
                        start_failure: None,
                    };
                    told_of.insert(*t, told);
                    self.event(Event {
                        attempt: Some(status.attempt),
                        agent: status.agent_id,
                        ..Event::change(&id, "pending", "running").happened_at(at)
                    });
                }
            }
        }
        told_of
    }

    /// Keeps on disk, as the exit record it never had, the start failure
    /// `record` told of task `t`'s attempt that its run died before writing
    /// the final status of: its end is then recovered from it as any
    /// other's (and not told twice). Taken for a start that never happened,
    /// it was begun again under the same number. A record on disk wins.
    /// One every retry would meet again is not retried in this run either,
    /// as it says (told "not retried", it was then tried again).
    fn record_told_start_failure(&mut self, t: usize, record: &ExitRecord) -> Result<()> {
        let told = record.message.as_deref().unwrap_or_default();
        self.history[t].unstartable = told.contains(starts::NOT_RETRIED);
        let id = &self.graph.tasks[t].id;
        let attempt = record.attempt.unwrap_or(0);
        if records::recorded_end(self.layout, id, attempt).is_some() {
            return Ok(());
        }
        records::write_record(&self.layout.exit_file(id), record)
    }

    /// Says which completed tasks are stale: run again with
    /// `--rerun-stale`, else only counted.
    fn say_stale(
        &self,
        stale: &[(usize, String)],
        rerun: &[(usize, &str)],
        held: &[(usize, usize)],
    ) {
        let notes = load::stale_notes(
            self.layout,
            &self.graph,
            stale,
            rerun,
            held,
            self.options.rerun_stale,
        );
        for note in notes {
            self.printer.note(Tone::Warn, &note);
        }
    }
}

/// What the events file told of an attempt an earlier run left running.
struct Told {
    /// When its start was told, where known.
    started: Option<SystemTime>,
    /// Its start failed, and that was told (`SinceStart::start_failure`).
    start_failure: Option<ExitRecord>,
}
