//! The run's side of starting an attempt: picking what fits the limits,
//! its worktree, its files and running status, the executor's request, and
//! the files made ahead for what it unblocks.

use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use camino::Utf8Path;

use super::approvals;
use super::attempt::{self, Active, Ahead};
use super::finals::RecordFrom;
use super::order;
use super::prompt;
use super::readiness::Node;
use super::{merging, Incoming, Run};
use crate::executor::Executor;
use crate::git::worktrees::{Obstacle, Prepared};
use crate::model::config::ResultFormat;
use crate::model::discovery;
use crate::model::graph::Dep;
use crate::state::events::Event;
use crate::state::records::ExitRecord;
use crate::state::status::{self, Ending};
use crate::state::{logs, outputs};
use crate::ui::printer::Tone;

/// What the error of a start that every retry would meet again says (a
/// branch in its worktree's way, a template that does not render); read
/// back by a run that takes up such a failure told before a kill.
pub(super) const NOT_RETRIED: &str = "not retried, each attempt would fail the same way";

impl Run<'_> {
    /// Starts ready tasks while the limits allow.
    pub(super) fn launch_ready(&mut self) -> Result<()> {
        let launched = self.launch_while_allowed();
        // The budget's hold on agents is of these picks only.
        self.admission.hold_agents(false);
        launched
    }

    fn launch_while_allowed(&mut self) -> Result<()> {
        loop {
            // A signal not yet handled: nothing more starts.
            if crate::git::starts_stopped() {
                return Ok(());
            }
            let running = self.running.tasks();
            let merging = self
                .git
                .as_ref()
                .map(|git| git.queued())
                .unwrap_or_default();
            let agents_held = self.hold_agents_for_the_budget(&running);
            // When the held one fits, worked out once a pick asks.
            let held_fits_in = std::cell::OnceCell::new();
            let may_pass = |held: usize, t: usize| {
                let fits_in = || {
                    let running_on = self.expected_left(&running);
                    self.admission.fits_in(&self.graph, held, &running_on)
                };
                self.may_pass(held, t, || *held_fits_in.get_or_init(fits_in))
            };
            let picked =
                (self.admission).pick(&self.graph, &self.readiness, &running, &merging, &may_pass);
            let Some(t) = picked else {
                if let Some(why) = agents_held {
                    self.say_agents_held(&why, &running, &merging);
                }
                if running.len() < self.admission.jobs && self.set_aside_held_for_approval()? {
                    continue;
                }
                return Ok(());
            };
            if self.file_gone(t) {
                continue;
            }
            if !self.held_for_approval(t)? {
                self.launch(t)?;
            }
        }
    }

    /// Whether task `t` may start before `held`, the first in the order,
    /// which waits for memory: `held` waits for a person's approval to
    /// start (it holds nothing back then), or `t`, whose duration is known
    /// (a guess could be hours short), is expected to end before the
    /// running tasks leave room for `held` (in `held_fits_in()` seconds).
    fn may_pass(&self, held: usize, t: usize, held_fits_in: impl FnOnce() -> f64) -> bool {
        if approvals::waits_to_start(self.layout, self.config, &self.graph.tasks[held]) {
            return true;
        }
        let known = order::kept(&self.graph, &self.durations)(t);
        known.is_some_and(|seconds| seconds <= held_fits_in())
    }

    /// The task held by the memory, if it waits for a person's approval to
    /// start, is set aside now, its notice sent, not once the memory has
    /// room for it. Returns whether one was.
    fn set_aside_held_for_approval(&mut self) -> Result<bool> {
        let running = self.running.tasks();
        let held = self
            .admission
            .waiting_for_memory(&self.graph, &self.readiness, &running);
        match held {
            Some(h)
                if approvals::waits_to_start(self.layout, self.config, &self.graph.tasks[h]) =>
            {
                self.held_for_approval(h)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Each of the `running` tasks with the seconds it is expected to run
    /// on: what is left of its expected duration, or, past it, a tenth of
    /// it (an overrun says little of the end: admission stays cautious).
    fn expected_left(&self, running: &[usize]) -> Vec<(usize, f64)> {
        let now = std::time::SystemTime::now();
        (running.iter())
            .map(|&r| {
                let expected = self.expected(r);
                let started = self.running.get(r).map(|a| a.started);
                let ran = started.and_then(|s| now.duration_since(s).ok());
                let ran = ran.map_or(0.0, |d| d.as_secs_f64());
                (r, (expected - ran).max(expected / 10.0))
            })
            .collect()
    }

    /// What task `t` is expected to take (a second where the order, made
    /// before it joined, does not say).
    fn expected(&self, t: usize) -> f64 {
        self.order.expected.get(t).copied().unwrap_or(1.0)
    }

    /// A task this run took up again (`Past::taken_up_from`) leaves the
    /// state its status said: its change to pending, as it next changes.
    pub(super) fn say_taken_up(&mut self, t: usize) {
        if let Some(from) = self.history[t].taken_up_from.take() {
            self.event(Event::change(&self.graph.tasks[t].id, from, "pending"));
        }
    }

    pub(super) fn launch(&mut self, t: usize) -> Result<()> {
        let agent = self.running.next_slot();
        let made = self.made_ahead.remove(&t).unwrap_or(Ahead::Nothing);
        if self.history[t].attempt == 0 && made == Ahead::Nothing && !self.history[t].undone {
            // No status says it ran (a log made ahead says nothing ran
            // since; a first try that never started left the log its
            // attempt writes over): after a `reset`, attempts number on
            // from its logs.
            let id = &self.graph.tasks[t].id;
            self.history[t].attempt = logs::latest_attempt_on_disk(self.layout, id);
        }
        // Its pause over: the task is pending again, then starts.
        if self.history[t].paused.is_some() {
            let id = &self.graph.tasks[t].id;
            self.event(Event::change(id, "paused", "pending"));
        }
        self.say_taken_up(t);
        let (attempt, again) = self.history[t].begin();
        self.readiness.start(&self.graph, t);
        let mut active = Active::new(agent, attempt);
        active.pool = self.graph.tasks[t].pool(self.config).map(str::to_owned);
        let sent = self.start_attempt(t, &mut active, made, again);
        let mut details = agent.to_string();
        if attempt > 1 {
            details += &format!("  attempt {attempt}");
        }
        // Tracked from now on: its end comes as an event from the executor.
        let told = SystemTime::now();
        active.told_running = Some(told);
        self.running.insert(t, active);
        self.event(Event {
            attempt: Some(attempt),
            agent: Some(agent),
            ..Event::change(&self.graph.tasks[t].id, "pending", "running").happened_at(told)
        });
        match sent {
            Ok(()) => {
                self.printer
                    .event(Tone::Plain, "start", &self.graph.tasks[t].id, &details);
                Ok(())
            }
            // The task could not even start (log folder not writable, ...):
            // a failed attempt like any other, with the reason. (Nothing
            // starts once the run stops: not the stop's doing.)
            Err(e) => self.start_failed(t, e, false),
        }
    }

    /// Task `t`'s Slurm job was submitted (`job`, its id), or could not be
    /// (why): the status names the job, so that a crash cannot lose it.
    pub(super) fn on_submitted(&mut self, t: usize, job: Result<String, String>) -> Result<()> {
        let Some(active) = self.running.get_mut(t) else {
            return Ok(());
        };
        match job {
            Ok(job_id) => {
                active.job_id = Some(job_id);
                let id = &self.graph.tasks[t].id;
                self.write_running(t)
                    .with_context(|| format!("cannot record the Slurm job of {id}"))
            }
            // Failed, or cut short by the run's stop (an interruption).
            Err(why) => self.start_failed(t, anyhow!(why), self.stop.is_some()),
        }
    }

    /// Task `t`'s start failed with `error`, said in its log: `stopped`, by
    /// the run's stop (it cut its worktree's making short, or came first).
    fn start_failed(&mut self, t: usize, error: anyhow::Error, stopped: bool) -> Result<()> {
        // What every retry would meet again: not retried in this run.
        let again = match () {
            _ if error.is::<prompt::Unrenderable>() => Some("fix the template"),
            _ if error.is::<Obstacle>() => Some("clear the way"),
            _ => None,
        };
        self.history[t].unstartable = again.is_some();
        let error = match again {
            Some(fix) => anyhow!("{error:#}; {NOT_RETRIED}: {fix}, then run the task again"),
            None => error,
        };
        let log = self.layout.log_file(&self.graph.tasks[t].id);
        logs::append_line(&log, &format!("xtask: not started: {error:#}"));
        let ending = match stopped {
            true => Ending::Interrupted,
            false => Ending::SpawnFailed,
        };
        // One line, for the summary and the views (a hook's stderr has
        // several); the log has them as they were.
        let said = crate::ui::format::one_line(&format!("{error:#}"));
        let record = ExitRecord::with_message(ending, said);
        self.complete(t, Some(record), RecordFrom::Nowhere)
    }

    /// Prepares the attempt's files and records it as running, then has its
    /// worktree made (`on_prepared` goes on), or asks the executor to start
    /// it. The status is written first, so a crash in between can never
    /// leave a task running that no status mentions.
    fn start_attempt(
        &mut self,
        t: usize,
        active: &mut Active,
        made: Ahead,
        again: bool,
    ) -> Result<()> {
        let task = &self.graph.tasks[t];
        active.since_ns = Some(attempt::prepare(
            self.layout,
            task,
            active.attempt,
            again,
            made,
            task.result_format(self.config) != ResultFormat::None,
            &mut self.log_dirs,
        )?);
        active.built_from = attempt::built_from(self.layout, self.config, &self.graph, t);
        if active.built_from.is_some() {
            // Said once a run: not walked again once said.
            let unsaid = (task.inputs.iter()).filter(|input| !self.big_folders.contains(*input));
            let big: Vec<String> = unsaid
                .filter(|input| outputs::folder_not_looked_into(self.layout, input))
                .cloned()
                .collect();
            for folder in big {
                let line = format!(
                    "its input folder {folder} holds more than {} files or {} MiB: not looked into, for it or any task of this run (a change in it does not make a result stale; name what a task is built from by a glob)",
                    outputs::FOLDER_FILES,
                    outputs::FOLDER_BYTES >> 20
                );
                self.printer.event(Tone::Warn, "inputs", &task.id, &line);
                self.big_folders.insert(folder);
            }
        }
        let in_worktree = task.in_worktree(self.config);
        if in_worktree {
            // Before its worktree is made (minutes, with Git LFS) for nothing.
            attempt::task_port(self.config, active.agent)?;
            self.open_git()?;
        }
        let task = &self.graph.tasks[t];
        let mut run = self.run_info(t);
        if in_worktree {
            // No supervisor has it until its worktree is made: a crash
            // meanwhile leaves a task that never started, not one its
            // supervisor may still run.
            run.recorder = None;
        }
        status::write(
            self.layout,
            &active.running_status(self.layout, &task.id, &run),
        )?;
        if !in_worktree {
            return self.hand_over(t, active, None);
        }
        let git = (self.git.as_ref()).context("no git repository for worktree tasks")?;
        // The line the live view shows while it lasts (Git LFS may take
        // minutes), and the log's record of where the time went.
        logs::append_line(
            &self.layout.log_file(&task.id),
            "xtask: preparing its worktree, then it starts",
        );
        git.make_worktree(t, &task.id);
        active.making_worktree = true;
        Ok(())
    }

    /// The repository's worktrees and merge queue, for a worktree task
    /// that a task added during a run that began with none (a planning
    /// task writing the tasks it planned): opened as a run that began with
    /// one opens them, its warnings said then. Every such task failed, "no
    /// git repository for worktree tasks", in a repository.
    fn open_git(&mut self) -> Result<()> {
        if self.git.is_some() {
            return Ok(());
        }
        let told: merging::Told<Incoming> = (Incoming::Prepared, Incoming::Merged);
        self.git = merging::Git::open(self.layout, self.config, true, self.tx.clone(), told)?;
        for warning in merging::unseen_warnings(
            self.git.as_ref(),
            self.layout,
            self.config,
            &self.graph,
            self.options,
        ) {
            self.printer.line(Tone::Warn, &warning);
        }
        Ok(())
    }

    /// Task `t`'s worktree is made, or could not be: it starts in it, now
    /// that its status names its branch, unless the run stopped meanwhile.
    pub(super) fn on_prepared(&mut self, t: usize, made: Result<Prepared>) -> Result<()> {
        let Some(mut active) = self.running.remove(t) else {
            return Ok(());
        };
        active.making_worktree = false;
        if made.is_ok() && self.stop.is_none() && discovery::gone(&self.graph.tasks[t].file) {
            // Taken away while its worktree was made (minutes, with Git
            // LFS): it never starts, as one whose file is gone before.
            self.running.insert(t, active);
            self.reopen_never_started(t)?;
            self.file_gone(t);
            return Ok(());
        }
        let started = match made {
            Ok(_) if self.stop.is_some() => Err(anyhow!("the run stopped before it started")),
            Ok(worktree) => self.start_in(t, &mut active, worktree),
            Err(e) => Err(e),
        };
        // Its end comes from the executor now, or is decided below.
        self.running.insert(t, active);
        match started {
            Ok(()) => Ok(()),
            Err(e) => {
                let stopped = self.stop.is_some() || crate::git::a_start_cut_short();
                self.start_failed(t, e, stopped)
            }
        }
    }

    /// Starts task `t`'s attempt in its `worktree`, just made.
    fn start_in(&mut self, t: usize, active: &mut Active, worktree: Prepared) -> Result<()> {
        let git = (self.git.as_ref()).context("no git repository for worktree tasks")?;
        if worktree.new {
            // A new worktree's setup runs again.
            let _ = std::fs::remove_file(self.layout.setup_done_file(&worktree.branch));
        }
        active.setup = attempt::setup_needed(self.layout, self.config, &worktree.branch).is_some();
        let workdir = git.worktrees.workdir(&worktree.path)?;
        let id = &self.graph.tasks[t].id;
        // The line the live view shows of a task that prints nothing, in
        // the place of the one above.
        logs::append_line(&self.layout.log_file(id), "xtask: its worktree is ready");
        active.worktree = Some(worktree);
        let status = active.running_status(self.layout, id, &self.run_info(t));
        status::write(self.layout, &status)?;
        self.hand_over(t, active, Some(&workdir))
    }

    /// Asks the executor to start task `t`'s attempt, its files made, in
    /// `workdir` (its worktree's) or the root.
    fn hand_over(
        &mut self,
        t: usize,
        active: &mut Active,
        workdir: Option<&Utf8Path>,
    ) -> Result<()> {
        let task = &self.graph.tasks[t];
        let previous = self.history[t].previous.as_deref();
        let rendered = {
            let on_disk = prompt::on_disk(self.layout, &self.graph);
            let finals = &self.finals;
            let upstream = |d| finals.unwritten(d).cloned().or_else(|| on_disk(d));
            prompt::prepare(
                self.layout,
                self.config,
                &self.graph,
                t,
                &prompt::Attempt {
                    number: active.attempt,
                    previous,
                    workdir,
                    budget_left: self.budget.left(),
                    upstream: &upstream,
                },
            )?
        };
        let start = attempt::Start {
            agent: active.agent,
            attempt: active.attempt,
            previous,
            worktree: active.worktree.as_ref(),
            workdir,
            budget_left: self.budget.left(),
            prompt: rendered.as_ref(),
        };
        let launch = attempt::launch(self.layout, self.config, task, &start);
        active.workdir = workdir.map(ToOwned::to_owned);
        let branch = active.worktree.as_ref().map(|w| w.branch.as_str());
        let limits = attempt::limits(self.layout, self.config, task, branch, SystemTime::now());
        let executor = self
            .executor
            .as_mut()
            .context("no executor to start tasks")?;
        if let (Some(kept), Executor::Local(_)) = (&launch.stdout_file, &*executor) {
            active.held_stdout = Some(logs::HeldLog::made(kept)?);
        }
        executor.launch(self.layout, &launch, &limits)?;
        self.prepare_dependents(t);
        Ok(())
    }

    /// While `t` runs, makes ahead the files of its dependents that only
    /// wait for running tasks (see `attempt::make_ahead`); those that do not
    /// start after all lose them at the end of the run.
    fn prepare_dependents(&mut self, t: usize) {
        for &d in &self.graph.dependents[t] {
            let running_deps = self.graph.deps[d]
                .iter()
                .filter(|dep| matches!(dep, Dep::Task(i) if *i == t || self.running.contains(*i)))
                .count();
            let next_up = self.readiness.node(d) == Node::Waiting
                && self.readiness.unmet(d) as usize <= running_deps;
            if !next_up {
                continue;
            }
            let id = &self.graph.tasks[d].id;
            let first = self.history[d].attempt == 0;
            let made = attempt::make_ahead(self.layout, id, first, &mut self.log_dirs);
            if made != Ahead::Nothing {
                self.made_ahead.insert(d, made);
            }
        }
    }

    /// Removes what was made ahead for tasks that did not start after all
    /// (blocked, or the run stopped): no empty log of a task that never ran.
    pub(super) fn remove_unused(&mut self) {
        for t in std::mem::take(&mut self.made_ahead).into_keys() {
            attempt::remove_made_ahead(self.layout, &self.graph.tasks[t].id);
        }
    }
}
