//! The run loop: starts what is ready under the limits, reacts to each
//! task's end at once (no polling tick), validates outputs, retries, blocks
//! dependents of failures, and picks up task files that appear during the
//! run. Scheduling is O(tasks + edges) over a run: a task's end touches only
//! its dependents and its phase gates (`readiness`).
//!
//! The parts: `readiness` (what may start), `admission` (the limits),
//! `load` (statuses into the run's state), `attempt` (one attempt's files
//! and statuses), `verdict` (what an attempt's end makes of it),
//! `recovery` (tasks an earlier orchestrator left running) and `adopting`
//! (the run taking them up), `plan` (a dry run, `next`, why a task waits),
//! `summary`; the rest (the order, pools, the merge queue, notifiers, the
//! budget...) are named in ARCHITECTURE.md.

pub mod admission;
mod adopting;
pub mod approvals;
mod attempt;
pub mod budget;
mod closing;
mod discovery;
mod ends;
mod finals;
pub mod history;
mod inbox;
mod limited;
mod load;
mod merging;
pub mod notify;
mod options;
pub mod order;
pub mod plan;
mod pools;
pub mod prompt;
pub mod readiness;
mod recovery;
mod reorder;
mod running;
mod starts;
mod stopping;
mod summary;
pub mod unlisted;
pub mod unseen;
mod verdict;
mod view;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use camino::Utf8PathBuf;

use crate::executor::{self, Executor};
use crate::git::merge::Merged;
use crate::git::worktrees::Prepared;
use crate::model::config::{Config, ExecutorKind};
use crate::model::discovery::Discovery;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::state::durations::Durations;
use crate::state::events::{self, Event};
use crate::state::pools::SavedPools;
use crate::state::records::{self};
use crate::state::runs;
use crate::state::status;
use crate::sys::process::{self, Process};
use crate::sys::signals;
use crate::ui::printer::{Printer, Tone};
use admission::Admission;
use attempt::RunInfo;
use finals::Finals;
use history::Past;
use inbox::Inbox;
pub use options::{Mode, Options};
use order::Order;
use readiness::Readiness;
pub use recovery::second_copy;
use running::Running;
pub use stopping::Stop;
pub use verdict::printed_result;

/// Runs the graph; returns the process exit code.
pub fn run(
    layout: &Layout,
    config: &Config,
    mut graph: Graph,
    discovery: Discovery,
    durations: Durations,
    options: &Options,
    mode: Mode,
) -> Result<i32> {
    // Its prompts are made of the task files as it reads them now.
    (graph.tasks.iter_mut()).for_each(crate::model::task::Task::keep_body);
    let (tx, rx) = mpsc::channel();
    // First: the threads started after it inherit the signals blocked.
    // A task's start that hangs in git (a hook) is cut short at once: the
    // run's thread would not hear the signal until it ends.
    signals::forward_to(tx.clone(), Incoming::Signal, crate::git::stop_starts)?;
    let inbox = Inbox::new(rx)?;
    // Before anything is recorded: a repository that cannot take worktree
    // tasks stops the run here.
    let uses_worktrees = graph
        .tasks
        .iter()
        .any(|t| options.selects(t) && t.in_worktree(config));
    let told: merging::Told<Incoming> = (Incoming::Prepared, Incoming::Merged);
    let git = match merging::Git::open(layout, config, uses_worktrees, tx.clone(), told) {
        // Stopped while the integration worktree was made (a hook that
        // hangs): nothing started, and the exit code says the signal. The
        // git it cut short failed of the stop, which is no error.
        Err(_) if crate::git::a_start_cut_short() => {
            let signal = signals::latest();
            eprintln!(
                "{} received: stopped before any task started (the git preparing the integration branch was stopped; the next run goes on from there)",
                process::signal_name(signal)
            );
            return Ok(128 + signal);
        }
        git => git?,
    };
    let mut warnings = Vec::new();
    let selection = runs::Selection {
        phase: options.phase.clone(),
        only: options.only.clone(),
        jobs: options.jobs,
        executor: Some(options.executor),
    };
    if mode == Mode::Launch {
        if let Some(stray) = recovery::second_copy(layout, config, &graph, options, &mut warnings) {
            anyhow::bail!("{stray}");
        }
    }
    let resumed_a_stop = runs::resumes_a_stop(layout);
    let resumes_a_kill = runs::unfinished(layout).is_some();
    let run_id = runs::begin(layout, selection, &mut warnings)?;
    let printer = Printer::with_live_view(layout, options.quiet);
    warnings.extend(notify::missing_programs(layout, &config.notify));
    for warning in &warnings {
        printer.line(Tone::Warn, &format!("warning: {warning}"));
    }
    for warning in merging::unseen_warnings(git.as_ref(), layout, config, &graph, options) {
        printer.line(Tone::Warn, &warning);
    }
    if let Some(unread) = &durations.unread {
        printer.line(Tone::Warn, &format!("warning: {unread}"));
    }
    if options.executor == ExecutorKind::Local && mode == Mode::Launch {
        if let Err(why) = crate::supervisor::cgroups::detect() {
            printer.line(
                Tone::Warn,
                &format!("warning: {why:#}: tasks run without their CPU and memory limits (limits_enforced: false; root may write cgroups), what they leave running is still killed"),
            );
        }
    }
    let mut admission = Admission::new(config, options.jobs, options.executor);
    let pools_written = limited::restore_pools(layout, &mut admission, &graph, &printer);
    let selected = graph.tasks.iter().filter(|t| options.selects(t)).count();
    // `monitor` starts no supervisor: adopted tasks have theirs.
    let executor = match (options.executor, mode) {
        (ExecutorKind::Local, Mode::Monitor) => None,
        (kind, _) => Some(Executor::start(
            kind,
            layout,
            config,
            admission.likely_at_once(selected),
            tx.clone(),
            Incoming::Executor,
        )?),
    };
    let mut run = Run {
        layout,
        config,
        options,
        mode,
        running: Running::new(),
        admission,
        pools_written,
        graph,
        discovery,
        readiness: Readiness::new(false),
        history: Vec::new(),
        executor,
        printer,
        finals: Finals::default(),
        stop: None,
        stopped_at: None,
        kill_at: None,
        run_id: run_id.clone(),
        tx,
        inbox,
        invalid: Vec::new(),
        gate_holds: Vec::new(),
        log_dirs: HashSet::new(),
        made_ahead: HashMap::new(),
        big_folders: HashSet::new(),
        events: None,
        git,
        budget: budget::Budget::load(layout, config.agents.budget_usd),
        notifiers: notify::Notifiers::start(layout, &config.notify)?,
        awaiting: BTreeMap::new(),
        revoked: HashSet::new(),
        durations,
        order: Order::empty(),
        ordered: reorder::Ordered::new(),
        begun: Instant::now(),
        discovered_at: Instant::now(),
        discovery_took: Duration::ZERO,
        discovery_due: None,
        dead_supervisors: Vec::new(),
        removed: HashSet::new(),
        unlisted: Vec::new(),
        unlisted_ended: Vec::new(),
        resumed_a_stop,
        resumes_a_kill,
    };
    run.events = match events::Log::open(layout, Some(&run_id)) {
        Ok(log) => Some(log),
        Err(e) => {
            run.printer.line(
                Tone::Warn,
                &format!("warning: {e:#}: the run's events are not recorded"),
            );
            None
        }
    };
    run.event(Event::run("run_started"));
    run.start()?;
    run.say_budget(mode);
    run.main_loop()?;
    let code = run.close();
    // The process ends next: what the run read (the strings of 100,000
    // tasks, the folders seen, their durations) is left to it whole, not
    // freed piece by piece (about 1 % of a resume of a finished run).
    std::mem::forget((run.graph, run.discovery, run.durations, run.history));
    Ok(code)
}

/// What a task `monitor` would have retried waits for.
const MONITOR_STARTS_NOTHING: &str = "`monitor` starts nothing; the next `orchestrate` does";

/// A local task's pid goes into its running status once it has run this
/// long. Most short tasks end before, and skip a status write; the
/// supervisor keeps the pid meanwhile, and writes it to disk if this process
/// dies (see `supervisor/`). Until then the status names the supervisor,
/// which is what tells whether the task is still looked after.
const PID_AFTER: Duration = Duration::from_secs(1);

/// What wakes the loop up.
pub enum Incoming {
    Executor(executor::Event),
    Signal(i32),
    /// A task's worktree was made (or could not be).
    Prepared(usize, Result<Prepared>),
    /// The merge queue merged (or could not merge) a task's work.
    Merged(usize, Merged),
}

struct Run<'a> {
    layout: &'a Layout,
    config: &'a Config,
    options: &'a Options,
    mode: Mode,
    graph: Graph,
    discovery: Discovery,
    readiness: Readiness,
    history: Vec<Past>,
    admission: Admission<'a>,
    /// The pools' state as last written to `workspace/pools.json`; none
    /// when that file is not to be written (it could not be read).
    pools_written: Option<SavedPools>,
    running: Running,
    executor: Option<Executor>,
    printer: Printer,
    /// Final statuses decided but not yet written.
    finals: Finals,
    stop: Option<Stop>,
    /// When the run began to stop its tasks.
    stopped_at: Option<SystemTime>,
    /// When tasks still running after a stop get SIGKILL.
    kill_at: Option<Instant>,
    run_id: String,
    /// Held so that the channel of other threads' events never closes;
    /// given to the git side opened during the run (`open_git`).
    tx: Sender<Incoming>,
    inbox: Inbox,
    /// The problems of task files found invalid during the run.
    invalid: Vec<load::Invalid>,
    /// The invalid files that hold their phases' gates closed, each with
    /// its phase.
    gate_holds: Vec<(Utf8PathBuf, usize)>,
    /// Log folders known to exist.
    log_dirs: HashSet<Utf8PathBuf>,
    /// Tasks whose files were made ahead of their start, and which.
    made_ahead: HashMap<usize, attempt::Ahead>,
    /// Folder inputs said too big to look into: said once a run.
    big_folders: HashSet<String>,
    /// `workspace/events.jsonl`, while it can be written.
    events: Option<events::Log>,
    /// Git worktrees and the merge queue, when a selected task uses one.
    git: Option<merging::Git>,
    /// What the work may still cost.
    budget: budget::Budget,
    /// The config's `notify:` commands, at work.
    notifiers: Option<notify::Notifiers>,
    /// Tasks that wait for a person's approval, each with whether it ran
    /// (its result awaits the approval) or waits to start.
    awaiting: BTreeMap<usize, bool>,
    /// Tasks awaiting approval whose approval, given during the run, was
    /// revoked since (and said so).
    revoked: HashSet<usize>,
    /// How long tasks took in earlier runs, and the order and expected
    /// durations made of them.
    durations: Durations,
    order: Order,
    ordered: reorder::Ordered,
    begun: Instant,
    /// When the task folders were last scanned, how long that took, and
    /// when they are to be again, at the latest (see
    /// `discovery::RESCAN_AFTER`).
    discovered_at: Instant,
    discovery_took: Duration,
    discovery_due: Option<Instant>,
    /// Supervisors that died under their tasks: what those tasks left
    /// running in their groups is killed once none of them runs (see
    /// `sweep_dead_supervisors`).
    dead_supervisors: Vec<Process>,
    /// Tasks whose files were removed before they started: no longer the
    /// run's to finish.
    removed: HashSet<usize>,
    /// Tasks a killed run left running whose files are gone since: waited
    /// for, their end recorded, nothing else (see `unlisted`).
    unlisted: Vec<unlisted::Unlisted>,
    /// Those whose end this run recorded (failed), each with its error:
    /// in the summary and the exit code.
    unlisted_ended: Vec<(String, String)>,
    /// The run this one resumes was killed while it stopped its tasks:
    /// an adopted task lost with it was being stopped (`ends`).
    resumed_a_stop: bool,
    /// This run resumes one that was killed: maybe with its supervisor,
    /// which then handed nothing over (`unlisted`).
    resumes_a_kill: bool,
}

impl Run<'_> {
    /// Loads every task's status, adopts tasks left running by an earlier
    /// orchestrator, and computes what is ready.
    fn start(&mut self) -> Result<()> {
        let all: Vec<usize> = (0..self.graph.tasks.len()).collect();
        self.add_tasks(&all)?;
        self.take_up_unlisted();
        let to_run: Vec<usize> = all
            .into_iter()
            .filter(|&t| self.readiness.node(t).is_waiting())
            .collect();
        if let Some(note) = self.admission.memory_note(&self.graph, &to_run) {
            self.printer.note(Tone::Warn, &note);
        }
        if self.config.agents.prompt_patterns.is_empty() {
            let config_file = self.layout.config_file();
            let config_file = self.layout.display(&config_file);
            self.printer.note(Tone::Plain, &format!("note: {config_file}: `prompt_patterns: []` turns the question watch off: a task waiting on a question nobody answers waits for its timeout"));
        }
        // The ends recovered from records are on disk before the records go.
        self.write_final_statuses()?;
        // A task whose work waits in the merge queue still needs its record.
        // One whose file is gone needs its records until its end is
        // written (not yet if its status could not be: for the next run).
        let (graph, running, git) = (&self.graph, &self.running, &self.git);
        let layout = self.layout;
        records::remove_stale(self.layout, |id| match graph.get(id) {
            Some(t) => running.contains(t) || git.as_ref().is_some_and(|g| g.holds(t)),
            None => status::state_of(layout, id) == Some(status::State::Running),
        });
        // Adopted Slurm jobs that ended while no run was on end before
        // anything starts, as a local task whose end its supervisor
        // recorded does: what they cost counts against the budget first.
        let events = (self.executor.as_ref()).map(|e| e.look_now());
        for event in events.unwrap_or_default() {
            self.on_executor(event)?;
        }
        self.say_adopted_jobs();
        self.write_final_statuses()
    }

    fn main_loop(&mut self) -> Result<()> {
        loop {
            self.reorder_if_due();
            let started = if self.launching() {
                self.launch_ready()
            } else if self.held_by_budget() {
                self.set_aside_for_approval()
            } else {
                Ok(())
            };
            if let Err(e) = started {
                self.stop_for(Stop::Fatal(format!("{e:#}")));
            }
            if let Err(e) = self.write_final_statuses() {
                self.stop_for(Stop::Fatal(format!("{e:#}")));
            }
            self.sweep_dead_supervisors();
            let merging = self.git.as_ref().is_some_and(|git| !git.idle());
            let idle = self.running.is_empty() && self.unlisted.is_empty();
            if idle && !merging && !self.signal_pending() {
                if !self.launching() {
                    // What a scan the last end put off finds counts in the
                    // summary.
                    self.discover_if_due();
                    return Ok(());
                }
                if !self.look_again() {
                    return Ok(());
                }
                // Work a stopped merge queue left counts as merging still:
                // what `writes` the same files waits for it.
                let left = self.git.as_ref().map(|git| git.left()).unwrap_or_default();
                let startable =
                    self.admission
                        .pick(&self.graph, &self.readiness, &[], &left, &|_, _| false);
                if startable.is_some() {
                    continue;
                }
                let paused = (self.admission.pools.next_wake(SystemTime::now())).is_some();
                if !left.is_empty()
                    && !paused
                    && (self
                        .admission
                        .pick(&self.graph, &self.readiness, &[], &[], &|_, _| false))
                    .is_some()
                {
                    // It holds what is ready: nothing more starts here.
                    return Ok(());
                }
                // What is ready waits for a pool a rate limit paused: the
                // loop sleeps until the pause ends.
            }
            let snapshot = view::Snapshot {
                layout: self.layout,
                config: self.config,
                graph: &self.graph,
                readiness: &self.readiness,
                history: &self.history,
                running: &self.running,
                durations: &self.durations,
                admission: &self.admission,
                starting: self.stop.is_none() && !self.budget.reached(),
                removed: &self.removed,
                spent: self.budget.this_run,
                git: self.git.as_ref(),
            };
            self.printer.refresh(|| snapshot.progress());
            if let Some(executor) = &mut self.executor {
                // Fails only when the supervisor is gone, which it reports.
                let _ = executor.flush();
            }
            let limit = self.wait_limit();
            let handled = match self.inbox.next(self.executor.as_mut(), limit) {
                Some(Incoming::Executor(event)) => self.on_executor(event),
                Some(Incoming::Signal(signal)) => {
                    self.stop_for(Stop::Signal(signal));
                    Ok(())
                }
                Some(Incoming::Prepared(t, made)) => self.on_prepared(t, made),
                Some(Incoming::Merged(t, merged)) => {
                    self.on_merged(t, merged);
                    Ok(())
                }
                None => Ok(()),
            };
            if self.kill_at.is_some_and(|at| Instant::now() >= at) {
                self.kill_all(false);
            }
            if self.discovery_due.is_some_and(|at| Instant::now() >= at) {
                self.rescan();
            }
            let checked = handled
                .and_then(|()| self.check_adopted())
                .and_then(|()| self.record_pids())
                .and_then(|()| self.check_approvals());
            if let Err(e) = checked {
                self.stop_for(Stop::Fatal(format!("{e:#}")));
            }
        }
    }

    /// Whether the run starts tasks now: not a `monitor`, not stopping,
    /// and the budget not reached.
    fn launching(&self) -> bool {
        self.mode == Mode::Launch && self.stop.is_none() && !self.budget.reached()
    }

    /// A signal heard but not yet handled: the thread that hears it stops
    /// the starts at once (`git::stop_starts`), and the loop goes on to
    /// the inbox, where it waits.
    fn signal_pending(&self) -> bool {
        self.stop.is_none() && crate::git::starts_stopped()
    }

    /// Whether the budget alone keeps the run from starting tasks.
    fn held_by_budget(&self) -> bool {
        self.mode == Mode::Launch && self.stop.is_none() && self.budget.reached()
    }

    /// How long the loop may wait for an event before it has something to
    /// do (`None`: as long as it takes): the next poll, live view's frame,
    /// pid to record, or end of a pool's pause.
    fn wait_limit(&self) -> Option<Duration> {
        let polling =
            self.kill_at.is_some() || self.running.any_adopted() || !self.unlisted.is_empty();
        let poll = polling.then_some(Duration::from_millis(200));
        // The live view's next frame: soon after an event line, else
        // every 500 ms (its elapsed times, its log lines).
        let frame = self.printer.redraw_in();
        // A decision may come from another terminal.
        let approvals = (!self.awaiting.is_empty()).then_some(Duration::from_millis(500));
        let now = SystemTime::now();
        let pause_end = self
            .admission
            .pools
            .next_wake(now)
            .map(|end| end.duration_since(now).unwrap_or_default());
        let pid_due = self.running.next_pid_due();
        let until_due = [pid_due, self.discovery_due]
            .into_iter()
            .flatten()
            .min()
            .map(|due| due.saturating_duration_since(Instant::now()));
        [poll, frame, approvals, pause_end, until_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// Nothing runs: look for what may still start (new task files, inputs
    /// or gate artifacts that appeared). Returns whether anything became ready.
    fn look_again(&mut self) -> bool {
        if self.mode == Mode::Monitor {
            // `monitor` only waits: what became ready is for the next run.
            return false;
        }
        self.rescan();
        self.readiness.any_ready()
    }

    fn on_executor(&mut self, event: executor::Event) -> Result<()> {
        match event {
            // The run stops as if it had been sent the signal itself.
            executor::Event::Stopping(signal) => {
                if self.stop.is_none() {
                    self.stop_for(Stop::Signal(signal));
                }
                Ok(())
            }
            executor::Event::Started {
                task_id,
                pid,
                since,
            } => {
                let Some(t) = self.graph.get(&task_id) else {
                    return Ok(());
                };
                let Some(active) = self.running.get_mut(t) else {
                    return Ok(());
                };
                if active.queued && active.job_id.is_some() {
                    // Left Slurm's queue: the attempt's time starts then.
                    active.started = since.unwrap_or_else(SystemTime::now);
                    self.printer
                        .event(Tone::Plain, "running", &task_id, "left the Slurm queue");
                }
                active.queued = false;
                if let Some(pid) = pid {
                    // Nothing to write yet: see `PID_AFTER`. Its start time
                    // is read then too: its end is not reported yet, so
                    // its pid cannot have been reused.
                    active.pid = pid;
                    active.pid_due = Some(Instant::now() + PID_AFTER);
                    return Ok(());
                }
                self.write_running(t)
                    .with_context(|| format!("cannot record that {task_id} started"))
            }
            executor::Event::Submitted { task_id, job } => match self.graph.get(&task_id) {
                Some(t) => self.on_submitted(t, job),
                None => Ok(()),
            },
            executor::Event::Queued { task_id, what } => {
                let Some(t) = self.graph.get(&task_id) else {
                    return Ok(());
                };
                let Some(active) = self.running.get_mut(t) else {
                    return Ok(());
                };
                active.queued = true;
                self.printer.event(Tone::Warn, "queued", &task_id, &what);
                self.write_running(t)
                    .with_context(|| format!("cannot record that {task_id} is queued again"))
            }
            executor::Event::Resumed { task_id } => {
                let Some(t) = self.graph.get(&task_id) else {
                    return Ok(());
                };
                let Some(active) = self.running.get_mut(t) else {
                    return Ok(());
                };
                active.queued = false;
                self.printer
                    .event(Tone::Plain, "running", &task_id, "Slurm resumed its job");
                self.write_running(t)
                    .with_context(|| format!("cannot record that {task_id} runs again"))
            }
            executor::Event::Ended { task_id, record } => match self.graph.get(&task_id) {
                Some(t) if self.running.contains(t) => self.finish(t, record),
                _ => Ok(()),
            },
            executor::Event::Gone => {
                // Its tasks lose their recorder: watch them by pid, and stop.
                if let Some((pid, start)) = self.executor.as_ref().and_then(Executor::recorder) {
                    self.dead_supervisors.push(Process { pid, start });
                }
                let gone = Process {
                    pid: 0,
                    start: None,
                };
                for t in self.running.tasks() {
                    // One whose worktree is being made never reached it:
                    // the stop ends it when its worktree is made.
                    let handed = self.running.get_mut(t).filter(|a| !a.making_worktree);
                    if let Some(active) = handed {
                        active.adopted.get_or_insert(gone);
                    }
                }
                self.executor = None;
                self.stop_for(Stop::Fatal("the supervisor process died".into()));
                Ok(())
            }
        }
    }

    fn run_info(&self, t: usize) -> RunInfo {
        RunInfo {
            id: self.run_id.clone(),
            tries: self.history[t].tries,
            recorder: self.executor.as_ref().and_then(Executor::recorder),
            approval: self.history[t].approval.as_deref().cloned(),
            told: self.history[t].previous.as_ref().map(|p| p.failure()),
        }
    }

    fn write_running(&self, t: usize) -> Result<()> {
        let id = &self.graph.tasks[t].id;
        let active = self
            .running
            .get(t)
            .expect("only running tasks have a running status");
        let status = active.running_status(self.layout, id, &self.run_info(t));
        status::write(self.layout, &status)
    }

    /// Writes the pid of each task that has run for `PID_AFTER` into its
    /// status.
    fn record_pids(&mut self) -> Result<()> {
        for t in self.running.take_pids_due(Instant::now()) {
            if let Some(active) = self.running.get_mut(t) {
                active.pid_start = process::start_time(active.pid);
            }
            self.write_running(t)
                .with_context(|| format!("cannot record the pid of {}", self.graph.tasks[t].id))?;
        }
        Ok(())
    }

    /// Appends an event to `workspace/events.jsonl`; a failure is said once,
    /// and the run goes on without the file.
    fn event(&mut self, event: Event) {
        let Some(log) = &mut self.events else {
            return;
        };
        if log.retold(&event) {
            return;
        }
        let kind = event.kind().to_owned();
        match log.append(event) {
            Ok(line) => {
                if let Some(notifiers) = &self.notifiers {
                    notifiers.send(&kind, &line);
                    // Said at the next event after it: the commands run
                    // on threads of their own.
                    for warning in notifiers.failures_to_tell(self.layout) {
                        self.printer.line(Tone::Warn, &warning);
                    }
                }
            }
            Err(e) => {
                self.printer.line(
                    Tone::Warn,
                    &format!("warning: {e:#}: the run's events are no longer recorded"),
                );
                self.events = None;
            }
        }
    }
}
