//! The run's side of an attempt's end: its verdict, the merge queue for a
//! worktree task's work, its final status, and what the end means for the
//! graph (dependents satisfied, a retry, or a block downstream).

use std::time::SystemTime;

use anyhow::Result;

use super::finals::RecordFrom;
use super::load::Disk;
use super::merging::Waiting;
use super::readiness::Walk;
use super::verdict;
use super::{Mode, Run};
use crate::agent::result::Report;
use crate::git::merge::{Merged, PersonsWork};
use crate::run::attempt::Active;
use crate::run::history::Previous;
use crate::state::events::Event;
use crate::state::logs;
use crate::state::records::{self, recorded_end, ExitRecord};
use crate::state::status::{self, Ending, Status};
use crate::state::{atomic, resets};
use crate::supervisor::cgroups;
use crate::sys::process;
use crate::ui::format;
use crate::ui::printer::Tone;

/// Why the work of a task is left in a merge queue that stopped at
/// another's.
const QUEUE_STOPPED: &str = "was not done: the merge queue stopped";

/// The error of a Slurm job cancelled by someone else than the run.
const SLURM_CANCELLED: &str =
    "cancelled in Slurm, not by this run (scancel, or the cluster's administrators)";

impl Run<'_> {
    /// A task has ended (or vanished): record the result. Its exit record
    /// comes from the executor, or (`None`) from the disk, where a
    /// supervisor whose orchestrator died, or the Slurm poller, left it.
    pub(super) fn finish(&mut self, t: usize, record: Option<ExitRecord>) -> Result<()> {
        match record {
            Some(record) => self.complete(t, Some(record), RecordFrom::Executor),
            None => {
                let attempt = self.running.get(t).map_or(0, |a| a.attempt);
                // Else, what this run stopped it for, its supervisor gone.
                let record = recorded_end(self.layout, &self.graph.tasks[t].id, attempt)
                    .or_else(|| self.running.get(t)?.orphan.as_ref()?.ended());
                if record.is_none() && self.never_reached_its_supervisor(t) {
                    return self.reopen_never_started(t);
                }
                self.complete(t, record, RecordFrom::Disk)
            }
        }
    }

    /// Whether adopted task `t`, gone with its supervisor and no exit
    /// recorded, never reached that supervisor: no pid is known of it, and
    /// the supervisor marked that it had written the pid file of every
    /// task it had (its orchestrator died between the task's running
    /// status and its request). Not `lost`: it never ran.
    fn never_reached_its_supervisor(&self, t: usize) -> bool {
        let Some(active) = self.running.get(t) else {
            return false;
        };
        let Some(supervisor) = active.adopted.filter(|_| active.pid == 0) else {
            return false;
        };
        let id = &self.graph.tasks[t].id;
        records::recorded_pid(self.layout, id).is_none()
            && process::find_task(self.layout.workspace.as_str(), id, active.attempt).is_none()
            && self
                .layout
                .handover_mark(supervisor.pid, supervisor.start)
                .exists()
    }

    /// Task `t`, adopted as running, never started: pending again, its
    /// attempt not counted.
    pub(super) fn reopen_never_started(&mut self, t: usize) -> Result<()> {
        self.running.remove(t);
        self.history[t].undo();
        let id = self.graph.tasks[t].id.clone();
        // Pending on disk too, as the event says, for every view and a
        // later run (this one may not start it: a selection, a `monitor`,
        // a stop).
        self.forget_never_started(t)?;
        self.event(Event::change(&id, "running", "pending"));
        let selected = self.options.selects(&self.graph.tasks[t]);
        let files = Disk::new(self.layout, self.config, &self.graph);
        self.readiness.reopen(&self.graph, t, selected, &files);
        Ok(())
    }

    /// Removes the running status of task `t`'s try that never started, as
    /// a reset does: its number and the failure it was told of are kept
    /// first (`resets.json`), so that the next attempt, here or in a later
    /// run, takes the same number and is told the same failure. Its log
    /// goes too: it holds nothing that ran, and kept under its number by
    /// the next attempt, it would pass for an attempt that did.
    fn forget_never_started(&self, t: usize) -> Result<()> {
        let id = &self.graph.tasks[t].id;
        let past = &self.history[t];
        let failure = past.previous.as_ref().map(|p| p.failure());
        // Its tries too, which the status held: a run that resumes this
        // one (killed before the task starts again) counts on from them.
        let tries = resets::RunTries {
            run_id: self.run_id.clone(),
            tries: past.tries,
        };
        if past.attempt > 0 {
            resets::keep_counted(self.layout, id, past.attempt, failure.as_ref(), Some(tries))?;
        }
        status::remove(self.layout, id)?;
        atomic::remove(&self.layout.log_file(id))
    }

    /// Writes the final statuses of the tasks that ended (see `Finals`).
    pub(super) fn write_final_statuses(&mut self) -> Result<()> {
        self.finals.write(
            self.layout,
            self.config,
            self.executor.as_mut(),
            &self.running,
            &self.graph,
        )
    }

    /// Records how the attempt ended, in memory: the final status is written
    /// by `write_final_statuses`, after the tasks this end made ready are
    /// started, so that their start does not wait for it.
    pub(super) fn complete(
        &mut self,
        t: usize,
        record: Option<ExitRecord>,
        from: RecordFrom,
    ) -> Result<()> {
        let active = self.running.remove(t).expect("only running tasks finish");
        // Removed since it ended (`workspace/logs` cleared), before its
        // result was read here: put back.
        if let Some(held) = &active.held_stdout {
            if let Err(e) = held.put_back_if_gone() {
                let id = &self.graph.tasks[t].id;
                eprintln!("warning: {id}: what its agent printed is lost: {e:#}");
            }
        }
        if let Some(supervisor) = active.adopted.filter(|s| s.pid != 0) {
            let known = self
                .dead_supervisors
                .iter()
                .any(|s| s.pid == supervisor.pid);
            if !known {
                self.dead_supervisors.push(supervisor);
            }
        }
        // The end its record says, for a task that may have ended before
        // this run saw it (adopted after a crash; a Slurm job, whose end is
        // Slurm's, as its start is): else now, on the clock of its start.
        // (Slurm's times are whole seconds: an end never before the start,
        // which may be the submission's, taken here to the millisecond.)
        let ended = record
            .as_ref()
            .and_then(|r| status::parse_timestamp(&r.ended_at))
            .filter(|_| active.adopted.is_some() || active.job_id.is_some())
            .map(|ended| ended.max(active.started))
            .unwrap_or_else(SystemTime::now);
        // Its end event is never before its start event, which is on the
        // machine's clock: a Slurm job's end is Slurm's, in whole seconds,
        // from a controller's clock that may be behind (the report drew
        // it ending before it started).
        let told_end = active.told_running.map_or(ended, |told| ended.max(told));
        let task = &self.graph.tasks[t];
        let mut verdict = verdict::judge(
            self.layout,
            self.config,
            task,
            record.as_ref(),
            self.stopped_at,
            &active,
            self.history[t].previous.as_deref(),
        );
        // Its record made by the run: it could not start, nor its agent.
        verdict.agent_started &= !matches!(from, RecordFrom::Nowhere);
        if verdict.ending == Ending::Lost
            && record.is_none()
            && active.adopted.is_some()
            && active.ended_when_adopted
            && self.resumed_a_stop
        {
            // The killed run was stopping it when it died with its
            // supervisor (a stop cut short by SIGKILL): an interruption,
            // tried again, not a failure of the task's. (One this run saw
            // supervised, lost later, died of its own: the OOM killer.)
            verdict.ending = Ending::Interrupted;
            verdict.error = Some(status::INTERRUPTED.to_owned());
        }
        if verdict.error.is_none() {
            verdict.error = self.task_files_left_in_worktree(&active);
        }
        if verdict.ending == Ending::Interrupted
            && active.job_id.is_some()
            && self.stop.is_none()
            && !self.resumed_a_stop
        {
            // A failure, unlike a stop's (see below): said apart from it.
            verdict.error = Some(SLURM_CANCELLED.to_owned());
        }
        let run = self.run_info(t);
        let mut status = active.ended_status(
            self.layout,
            &task.id,
            &run,
            ended,
            record.as_ref(),
            &verdict,
        );
        let id = task.id.clone();
        self.count_cost(t, &status, &verdict);
        if status.ending == Some(Ending::Interrupted)
            && (self.stop.is_some() || active.adopted.is_some())
        {
            // Stopped by this run, or by the earlier run that started it
            // (its end recorded by its supervisor after that run was
            // killed): no failure of the task's, retried as a stopped
            // run's tasks are, not held against its retries, also by a run
            // that resumes this one, killed before its stop ended (the
            // status keeps the count). (One this run started and did not
            // stop, a Slurm job cancelled by hand, is a failure.)
            self.history[t].forgive();
            status.tries = self.history[t].tries;
        }
        // Also in a stop: the limit holds for the next run to wait out, and
        // the attempt is no failure of the task's to count or to tell.
        match &verdict.rate_limit {
            Some(limit) => self.rate_limited(t, &mut status, limit, active.started),
            None => self.history[t].limited_since = None,
        }
        // Its work goes into the integration branch first: the task is
        // completed once it is there. Told before its status says so: a
        // kill in between has the next run tell it again, never not at all.
        let merges = active.worktree.is_some() && self.git.is_some() && verdict.error.is_none();
        if merges && !active.merging_told {
            self.event(Event {
                attempt: Some(active.attempt),
                agent: Some(active.agent),
                ..Event::change(&id, "running", "merging").happened_at(told_end)
            });
        }
        let from = match merges {
            true => self.keep_end_while_merging(&id, active.attempt, record.as_ref(), from)?,
            false => from,
        };
        match (&active.worktree, &mut self.git) {
            (Some(worktree), Some(git)) if merges => {
                let mut merging = active.running_status(self.layout, &id, &run);
                merging.merging = true;
                status::write(self.layout, &merging)?;
                let started = active.started;
                git.enqueue(
                    t,
                    &id,
                    worktree,
                    Waiting {
                        status,
                        from,
                        started,
                    },
                );
                self.readiness.merging(&self.graph, t);
                if self.git.as_ref().is_some_and(|git| git.merges_no_more()) {
                    self.say_left(t, QUEUE_STOPPED);
                    return Ok(());
                }
                let into = &self.config.worktrees.integration;
                let line = format!("{}  {} into {into}", active.agent, worktree.branch);
                self.printer.event(Tone::Plain, "merging", &id, &line);
            }
            _ => self.conclude(t, status, from, active.started, "running", told_end),
        }
        Ok(())
    }

    /// Keeps the end of an attempt whose work waits in the merge queue on
    /// disk (`workspace/pids/<id>.exit`) for as long as it waits, and lets
    /// the executor forget it: killed with its supervisor (a power cut, the
    /// OOM killer taking the session), the run would leave an end that only
    /// the two of them knew, and the next would fail the task as `lost`
    /// and pay its agent again, where it finds the end and merges the
    /// work. Returns where the end is kept now.
    fn keep_end_while_merging(
        &mut self,
        id: &str,
        attempt: u32,
        record: Option<&ExitRecord>,
        from: RecordFrom,
    ) -> Result<RecordFrom> {
        let (RecordFrom::Executor, Some(record)) = (&from, record) else {
            return Ok(from);
        };
        let record = ExitRecord {
            attempt: Some(attempt),
            ..record.clone()
        };
        records::write_record(&self.layout.exit_file(id), &record)?;
        if let Some(executor) = &mut self.executor {
            executor.written(id, attempt);
        }
        Ok(RecordFrom::Disk)
    }

    /// The error of a worktree task that wrote task files in its worktree,
    /// which the run never reads: generated tasks lost, and the phase gate
    /// they should hold would open without them.
    fn task_files_left_in_worktree(&self, active: &Active) -> Option<String> {
        let (worktree, git) = (active.worktree.as_ref()?, self.git.as_ref()?);
        let left = git
            .worktrees
            .task_files_left_in(&worktree.path, &worktree.base)
            .ok()?;
        (!left.is_empty()).then(|| {
            let tasks = &self.layout.tasks;
            format!(
                "it wrote task files in its worktree, where the run does not read them: {}; write them in {tasks} ($TASKS_DIR), or give the task `workdir: root`",
                left.join(", ")
            )
        })
    }

    /// The merge queue is done with task `t`'s work.
    pub(super) fn on_merged(&mut self, t: usize, merged: Merged) {
        let dir = self.layout.integration_worktree();
        let (commit, error, ending) = match merged {
            Merged::Waits(what) => {
                let id = &self.graph.tasks[t].id;
                let line = crate::git::merge::held_by_person(&dir, &what);
                self.printer.event(Tone::Warn, "waiting", id, &line);
                return;
            }
            Merged::Done(commit) => (commit, None, None),
            Merged::Failed(error) => (None, Some(error), None),
            Merged::Stopped(what) => {
                let why = match what {
                    // It names where that is, not in the integration worktree.
                    Some(what @ PersonsWork::AlsoAt { .. }) => {
                        format!("waited for {what} when the run stopped")
                    }
                    Some(what) => format!(
                        "waited for {what} in {} when the run stopped",
                        self.layout.integration_worktree()
                    ),
                    None => "was cut short by the stop".to_owned(),
                };
                self.left_in_queue(t, &why, "was not done when the run stopped");
                return;
            }
            Merged::Broken(error) => {
                let reset = self.layout.task_cmd("reset", &self.graph.tasks[t].id);
                let why = format!(
                    "could not be done ({error}): fix that (or `{reset}` runs its agent again)"
                );
                if let Some(git) = self.git.as_mut() {
                    git.broken = Some(error);
                }
                self.left_in_queue(t, &why, QUEUE_STOPPED);
                return;
            }
        };
        let Some(waiting) = self.git.as_mut().and_then(|git| git.take(t)) else {
            return;
        };
        let mut status = waiting.status;
        status.merged_commit = commit;
        if let Some(error) = error {
            status.ending = ending.or(status.ending);
            status.status = status::State::Failed;
            status.outputs_validated = false;
            status.error = Some(error);
        }
        let (from, started) = (waiting.from, waiting.started);
        self.conclude(t, status, from, started, "merging", SystemTime::now());
    }

    /// The merge queue stopped at task `t`'s work, whose merge `why` says
    /// (the others' `others`): what waits in it is left for the next run,
    /// which merges it without running its agent again (its status says
    /// merging, its exit record stays), as after a kill. So is the work
    /// of tasks that end later in this run (`say_left`).
    fn left_in_queue(&mut self, t: usize, why: &str, others: &str) {
        let Some(git) = self.git.as_mut() else {
            return;
        };
        git.stopped();
        let left = git.left();
        // Its own first: the others' say only that the queue stopped.
        self.say_left(t, why);
        for left in left.into_iter().filter(|&left| left != t) {
            self.say_left(left, others);
        }
    }

    /// Says, and writes in its log, that task `t`'s merge `why`, and that
    /// its work is left for the next run.
    fn say_left(&self, t: usize, why: &str) {
        let next = self.layout.cmd("orchestrate");
        let id = &self.graph.tasks[t].id;
        let line = format!("its merge {why}: left in the merge queue, for the next `{next}` to merge (its commits stay on its branch)");
        logs::append_line(&self.layout.log_file(id), &format!("xtask: {line}"));
        self.printer.event(Tone::Warn, "left", id, &line);
    }

    /// Task `t`'s attempt, `started` then, has its final status, reached
    /// at `when` (its recorded end, for a task that ended while no
    /// orchestrator was alive): written soon (see `Finals`), and what it
    /// means for the graph done now.
    fn conclude(
        &mut self,
        t: usize,
        mut status: Status,
        from: RecordFrom,
        started: SystemTime,
        was: &str,
        when: SystemTime,
    ) {
        let id = self.graph.tasks[t].id.clone();
        let held = status.error.is_none() && self.result_held_for_approval(t, &mut status);
        let seconds = status.duration_seconds;
        let error = status.error.clone();
        let attempt = status.attempt;
        let cost = status.agent.as_ref().and_then(|a| a.cost_usd);
        // An attempt cut short before it named a session (its timeout, a
        // crash) leaves the one before it to resume: its work is there.
        // Not one whose resume missed: that session is not to be found
        // (another machine's, or folder's), and the retry starts afresh.
        let earlier = (self.history[t].previous.as_ref())
            .filter(|_| !status.agent.as_ref().is_some_and(Report::resume_missed));
        let own = (status.agent.as_ref())
            .and_then(Report::session_to_resume)
            .map(str::to_owned);
        let session = own
            .clone()
            .or_else(|| earlier.and_then(|p| p.session_id.clone()));
        // One that resumed the earlier session and printed no totals (its
        // turn failed, or was cut) keeps the earlier ones, in its status
        // too: the next resume counts from them.
        let earlier_usage = earlier
            .filter(|p| p.session_id == session)
            .and_then(|p| p.thread_usage);
        let thread_usage = (status.agent.as_ref().and_then(|a| a.thread_usage)).or(earlier_usage);
        if let Some(agent) = status.agent.as_mut().filter(|_| own.is_some()) {
            agent.thread_usage = thread_usage;
        }
        self.history[t].report = status.agent.clone().map(Box::new);
        let paused = status.rate_limited_until.clone().zip(status.pool.clone());
        self.event(Event {
            attempt: Some(attempt),
            agent: status.agent_id,
            error: error.clone(),
            ending: status.ending,
            cost_usd: cost,
            until: paused.as_ref().map(|(until, _)| until.clone()),
            pool: paused.as_ref().map(|(_, pool)| pool.clone()),
            // A pause is told a pause, though its end, kept to the whole
            // second, may be past already (a view would show it pending):
            // the next event of the task is from `paused`.
            ..Event::change(
                &id,
                was,
                match paused {
                    Some(_) => "paused",
                    None => status::shown_state(Some(&status)),
                },
            )
            .happened_at(when)
        });
        let mut details = format!(
            "{}  {}",
            status.agent_id.map_or("-".into(), |a| a.to_string()),
            format::seconds(seconds.unwrap_or(0.0))
        );
        if let Some(cost) = cost {
            details += &format!("  {}", format::usd(cost));
        }
        if let Some(commit) = &status.merged_commit {
            details += &format!("  merged as {}", &commit[..commit.len().min(12)]);
        }
        // A success that did less than asked: said where it is seen, and
        // in its log with the calls and how to allow them, as `why` says.
        let refused = (status.agent.as_ref()).and_then(|a| a.refused().zip(a.refused_in_full()));
        if let Some((refused, in_full)) = refused {
            details += &format!("  {refused}");
            logs::append_line(&self.layout.log_file(&id), &format!("xtask: {in_full}"));
        }
        // Its status keeps the earlier session to resume, for a retry in a
        // later run (a Ctrl-C, a crash): its own `agent` names none.
        if let (Some(error), None, None, None) = (&error, &own, &paused, &status.previous) {
            status.previous = session.clone().map(|session| status::Failure {
                attempt,
                error: error.clone(),
                session_id: Some(session),
                thread_usage,
            });
        }
        if self.history[t].unstartable {
            // The failure to tell stays the attempt's before, which its
            // prompt never reached an agent to change.
            status.previous = self.history[t].previous.as_ref().map(|p| p.failure());
        }
        if !self.budget.unrecorded.remove(&t) {
            self.finals.push(t, status, from);
        }
        let previous = |error: &str| Previous {
            attempt,
            error: error.to_owned(),
            log: self.layout.attempt_log_file(&id, attempt),
            session_id: session.clone(),
            thread_usage,
        };
        match error {
            Some(error) if paused.is_some() => {
                // What the next attempt is told stays what last failed (a
                // rate limit is no news to an agent, and its empty session
                // is nothing to resume).
                let (until, pool) = paused.expect("paused");
                self.on_paused(t, &until, &pool, &error);
                self.discover_soon();
            }
            Some(error) => {
                self.printer
                    .event(Tone::Bad, "failed", &id, &format!("{details}  {error}"));
                self.discover_soon();
                if !self.history[t].unstartable {
                    self.history[t].previous = Some(Box::new(previous(&error)));
                }
                self.on_failed(t, error);
            }
            None => {
                self.printer.event(Tone::Good, "done", &id, &details);
                self.discover_before_completing(t, held);
                let files = Disk::new(self.layout, self.config, &self.graph);
                if held {
                    self.readiness.await_approval_of_result(&self.graph, t);
                    self.awaits(t, true);
                } else {
                    self.readiness.complete(&self.graph, t, &files);
                }
                self.history[t].error = None;
                self.history[t].seconds = seconds;
                if let Some(seconds) = seconds {
                    self.learn_duration(t, seconds);
                }
                let pool = self.admission.pool_of(&self.graph, t).map(str::to_owned);
                // Its start to the nanosecond (its status says the second):
                // whether it started after a limit hit within that second.
                if let Some(pool) = pool {
                    self.admission.pools.succeeded(&pool, started);
                    self.save_pools();
                }
            }
        }
        let files = Disk::new(self.layout, self.config, &self.graph);
        self.readiness.recheck(&self.graph, &files);
        self.say_budget_reached_by(t);
    }

    fn on_failed(&mut self, t: usize, error: String) {
        let id = &self.graph.tasks[t].id;
        let retries = self.graph.tasks[t].retries;
        let tries = self.history[t].tries;
        if self.stop.is_none() && tries <= retries && !self.history[t].unstartable {
            let (next, of) = (tries + 1, retries + 1);
            // Adopted, outside this run's `--task`/`--phase`: its retry is
            // a run's that selects it, not a slot of this one's.
            let selected = self.options.selects(&self.graph.tasks[t]);
            let line = match (self.mode, selected) {
                (Mode::Launch, true) => format!("try {next} of {of} in this run"),
                (Mode::Launch, false) => format!(
                    "try {next} of {of}: outside this run's selection; the next run that selects it runs it again"
                ),
                (Mode::Monitor, _) => {
                    format!("try {next} of {of}: {}", super::MONITOR_STARTS_NOTHING)
                }
            };
            self.printer.event(Tone::Warn, "retry", id, &line);
            let files = Disk::new(self.layout, self.config, &self.graph);
            self.readiness.reopen(&self.graph, t, selected, &files);
            // Its status says failed until the retry starts: the change to
            // pending is told then, once, whichever run starts it (held by
            // the budget or a stop, the next run's).
            self.history[t].taken_up_from = Some("failed");
            return;
        }
        self.readiness.fail(&self.graph, t);
        self.history[t].error = Some(error);
        if self.stop.is_some() {
            return;
        }
        self.block_and_alert(t);
    }

    /// Blocks what depends on the failed task `t`, with an alert when
    /// anything was: the tasks this run would have run, and apart those
    /// outside its selection (`--task`, `--phase`), which its summary does
    /// not count.
    pub(super) fn block_and_alert(&mut self, t: usize) {
        let blocked = self.block_dependents(t, Walk::InRun);
        let outside = (blocked.iter())
            .filter(|&&d| !self.options.selects(&self.graph.tasks[d]))
            .count();
        let tasks = |n| format::counted(n, "task", "tasks");
        let count = match (blocked.len() - outside, outside) {
            (_, 0) => tasks(blocked.len()),
            (0, outside) => format!("{} outside this run's selection", tasks(outside)),
            (inside, outside) => {
                format!(
                    "{}, and {outside} outside this run's selection",
                    tasks(inside)
                )
            }
        };
        if !blocked.is_empty() {
            self.chain_dropped();
            self.printer.note(
                Tone::Bad,
                &format!(
                    "ALERT: Task {} failed, blocking {count}",
                    self.graph.tasks[t].id
                ),
            );
        }
    }

    /// Marks every task downstream of the failed task `t` blocked by it, on
    /// disk too (see `Readiness::block_downstream` for `walk`). Returns
    /// them.
    pub(super) fn block_dependents(&mut self, t: usize, walk: Walk) -> Vec<usize> {
        // The start's walks block what no run took up since: their
        // statuses say what they change from. A run's took them up, but
        // for those it took up and did not start: their statuses say it.
        // Tasks outside its selection (`--task`, `--phase`, a `monitor`)
        // it never takes up: their statuses (failed, blocked by this
        // very task) say it too.
        let on_start = matches!(walk, Walk::OnStart(_));
        let blocked = self.readiness.block_downstream(&self.graph, t, walk);
        let (from_disk, from_pending): (Vec<usize>, Vec<usize>) = blocked.iter().partition(|&&d| {
            on_start
                || self.history[d].taken_up_from.take().is_some()
                || !self.options.selects(&self.graph.tasks[d])
        });
        for (tasks, from_disk) in [(from_disk, true), (from_pending, false)] {
            self.write_blocked(&tasks, t, from_disk);
        }
        blocked
    }

    /// Writes the blocked statuses of `tasks`, blocked by `t`, and their
    /// events: each from the state its status said (`from_disk`, the
    /// same block no event), else from pending.
    fn write_blocked(&mut self, tasks: &[usize], t: usize, from_disk: bool) {
        let ids = tasks.iter().map(|&d| {
            let past = &self.history[d];
            let previous = past.previous.as_ref().map(|p| p.failure());
            (self.graph.tasks[d].id.as_str(), past.attempt, previous)
        });
        let by = &self.graph.tasks[t].id;
        let run_id = Some(self.run_id.as_str());
        let froms = match status::write_blocked(self.layout, ids, by, run_id, from_disk) {
            Ok(froms) => froms,
            Err(e) => {
                self.printer.line(Tone::Bad, &format!("error: {e:#}"));
                Vec::new()
            }
        };
        let changes: Vec<Event> = tasks
            .iter()
            .zip(froms)
            .filter_map(|(&d, from)| Some(Event::blocked(&self.graph.tasks[d].id, from?, by)))
            .collect();
        for change in changes {
            self.event(change);
        }
    }

    /// Once no task adopted from a supervisor that died runs any more,
    /// kills what those tasks left running in its groups (a daemon in a
    /// session of its own, which their process groups' signals missed):
    /// its own supervisor would have, at each task's end.
    pub(super) fn sweep_dead_supervisors(&mut self) {
        if self.dead_supervisors.is_empty() || self.running.any_adopted() {
            return;
        }
        let Ok(hierarchy) = cgroups::detect() else {
            self.dead_supervisors.clear();
            return;
        };
        for supervisor in std::mem::take(&mut self.dead_supervisors) {
            if hierarchy.sweep(supervisor) {
                let pid = supervisor.pid;
                self.printer.note(
                    Tone::Warn,
                    &format!(
                        "killed processes left running by tasks of a supervisor that died (pid {pid})"
                    ),
                );
            }
        }
    }
}
