//! The run loop: decides what starts when, under the global and per-phase
//! limits, reacts to each task's end at once (no polling tick), validates
//! outputs, retries, blocks dependents of failures, and picks up task files
//! that appear during the run. Scheduling is O(tasks + edges) over a run: a
//! task's end touches only its dependents and its phase gates.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::executor::slurm::Slurm;
use crate::executor::{self, local, Executor, Launch, Limits};
use crate::exit;
use crate::model::config::Config;
use crate::model::config::ExecutorKind;
use crate::model::graph::{Dep, Graph};
use crate::model::layout::Layout;
use crate::model::task::{self, Discovery};
use crate::state::outputs;
use crate::state::status::{self, State, Status};
use crate::supervisor::{self, Ending, ExitRecord};
use crate::sys::{process, signals};
use crate::ui::format;
use crate::ui::printer::{Printer, Tone};

mod plan;
mod recovery;

use recovery::recorded_end;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    /// Launch nothing and write nothing: print the waves.
    DryRun,
    /// Launch nothing: wait for the tasks recorded as running.
    Monitor,
    /// Launch nothing and write nothing: say what would start now.
    Next,
}

impl Mode {
    /// Dry run and next: nothing is launched or written.
    fn plans_only(self) -> bool {
        matches!(self, Mode::DryRun | Mode::Next)
    }
}

pub struct Options {
    pub mode: Mode,
    pub jobs: Option<usize>,
    /// Only this phase (folder name); resolved by the caller.
    pub phase: Option<String>,
    /// Only these tasks, when not empty.
    pub only: Vec<String>,
    pub quiet: bool,
    pub executor: ExecutorKind,
}

impl Options {
    pub fn selects(&self, task: &crate::model::task::Task) -> bool {
        if !self.only.is_empty() {
            return self.only.contains(&task.id);
        }
        self.phase.as_ref().is_none_or(|p| *p == task.phase)
    }
}

/// Runs the graph; returns the process exit code.
pub fn run(
    layout: &Layout,
    config: &Config,
    graph: Graph,
    discovery: Discovery,
    options: &Options,
) -> Result<i32> {
    let mut scheduler = Scheduler::new(layout, config, graph, discovery, options);
    if !options.mode.plans_only() {
        signals::forward_to(scheduler.tx.clone(), Event::Signal);
    }
    if options.mode == Mode::DryRun {
        scheduler.start()?;
        return Ok(scheduler.dry_run());
    }
    if options.mode == Mode::Next {
        scheduler.start()?;
        return Ok(scheduler.next());
    }
    let run_id = status::begin_run(layout)?;
    scheduler.run_id = Some(run_id.clone());
    if options.executor == ExecutorKind::Local && options.mode == Mode::Run {
        if let Err(why) = crate::supervisor::cgroups::detect() {
            scheduler.printer.line(
                Tone::Warn,
                &format!("warning: {why}: tasks run without their CPU and memory limits (limits_enforced: false)"),
            );
        }
    }
    let tx = scheduler.tx.clone();
    scheduler.executor = match (options.executor, options.mode) {
        (ExecutorKind::Slurm, _) => Some(Executor::Slurm(Slurm::start(
            &config.slurm,
            tx,
            Event::Executor,
        ))),
        (ExecutorKind::Local, Mode::Run) => Some(Executor::Local(local::Supervisor::start(
            layout,
            tx,
            Event::Executor,
        )?)),
        (ExecutorKind::Local, _) => None,
    };
    scheduler.start()?;
    scheduler.main_loop()?;
    if let Some(executor) = scheduler.executor.take() {
        executor.close();
    }
    // Ended in order (also when stopped by a signal or an error): the next
    // run starts afresh. Only a killed orchestrator leaves a run to resume.
    status::end_run(layout, &run_id)?;
    Ok(scheduler.summary())
}

/// The error of a task stopped by Ctrl-C, SIGTERM or a fatal error.
const INTERRUPTED: &str = "interrupted";

/// A local task's pid goes into its running status once it has run this
/// long. Most short tasks end before, and skip a status write; the
/// supervisor keeps the pid meanwhile, and writes it to disk if this process
/// dies (see `supervisor.rs`). Until then the status names the supervisor,
/// which is what tells whether the task is still looked after.
const PID_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// Selected, waiting for dependencies.
    Waiting,
    Ready,
    /// Dependencies done; an input file is missing.
    NeedsInputs,
    Running,
    Completed,
    Failed,
    Blocked,
    /// Not selected by `--phase`/`--task`, and not completed.
    Unselected,
}

/// Why the run stopped launching and stopped its running tasks.
enum Stop {
    Signal(i32),
    /// The orchestrator cannot go on safely (a status it cannot write).
    Fatal(String),
}

pub enum Event {
    Executor(executor::Event),
    Signal(i32),
}

/// Where a task's exit record came from: what is left to do once its final
/// status is written.
enum RecordFrom {
    /// The supervisor, which keeps it until told the status is written.
    Executor,
    /// `workspace/pids/`, whose files are then removed.
    Disk,
    /// Nowhere: the orchestrator made it (the task could not start).
    Nowhere,
}

struct Active {
    /// The task's pid (its process group), once known; 0 before.
    pid: u32,
    /// Its Slurm job, when it runs on Slurm; queued until the job runs.
    job_id: Option<String>,
    queued: bool,
    pid_start: Option<u64>,
    /// Adopted from an earlier orchestrator, whose supervisor (if still
    /// alive) records the end: watched by pid, not told by our supervisor.
    adopted: Option<Process>,
    agent: usize,
    started: SystemTime,
    since_ns: Option<u64>,
    attempt: u32,
    /// When to write the pid into the running status (see `PID_AFTER`).
    pid_due: Option<Instant>,
}

/// A pid and its start time, to tell it from a later process with the same pid.
#[derive(Clone, Copy)]
struct Process {
    pid: u32,
    start: Option<u64>,
}

impl Process {
    /// The process is alive, or its group still has members (a task's
    /// shell may have ended while what it started runs on).
    fn alive(&self) -> bool {
        self.pid != 0
            && (process::is_same_process(self.pid, self.start)
                || process::signal_group(self.pid, 0))
    }
}

struct Scheduler<'a> {
    layout: &'a Layout,
    config: &'a Config,
    options: &'a Options,
    printer: Printer,
    graph: Graph,
    discovery: Discovery,
    node: Vec<Node>,
    /// Dependencies (tasks and phase gates) not satisfied yet.
    unmet: Vec<u32>,
    gate_unmet: Vec<u32>,
    gate_open: Vec<bool>,
    /// Ready tasks per phase, in id order.
    ready: Vec<BTreeSet<usize>>,
    needs_inputs: BTreeSet<usize>,
    active: HashMap<usize, Active>,
    running_in_phase: Vec<usize>,
    free_agents: BTreeSet<usize>,
    /// Attempts started in this run.
    tries: Vec<u32>,
    /// The latest attempt's number, counting across runs.
    attempt: Vec<u32>,
    /// The latest failed attempt's error and log, for a retry's environment.
    previous: Vec<Option<(String, Utf8PathBuf)>>,
    error: Vec<Option<String>>,
    blocked_by: Vec<Option<usize>>,
    invalid: Vec<String>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    stop: Option<Stop>,
    /// Log folders known to exist.
    log_dirs: std::collections::HashSet<Utf8PathBuf>,
    /// Memory the running tasks may reserve together, in GiB.
    memory_capacity: f64,
    /// When tasks still running after a stop get SIGKILL.
    kill_at: Option<Instant>,
    executor: Option<Executor>,
    /// Final statuses decided but not yet written (see `complete_attempt`).
    unwritten: Vec<(usize, Status, RecordFrom)>,
    /// Set for runs that launch (not dry runs).
    run_id: Option<String>,
    jobs: usize,
    begun: Instant,
    /// Dry run: the tasks of the wave being planned.
    wave: Vec<usize>,
}

impl<'a> Scheduler<'a> {
    fn new(
        layout: &'a Layout,
        config: &'a Config,
        graph: Graph,
        discovery: Discovery,
        options: &'a Options,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        let jobs = options.jobs.unwrap_or(config.max_concurrent_agents).max(1);
        Scheduler {
            layout,
            config,
            options,
            printer: match options.mode {
                Mode::Run | Mode::Monitor => Printer::with_live_view(layout, options.quiet),
                Mode::DryRun | Mode::Next => Printer::new(options.quiet),
            },
            graph,
            discovery,
            node: Vec::new(),
            unmet: Vec::new(),
            gate_unmet: Vec::new(),
            gate_open: Vec::new(),
            ready: Vec::new(),
            needs_inputs: BTreeSet::new(),
            active: HashMap::new(),
            running_in_phase: Vec::new(),
            free_agents: (1..=jobs).collect(),
            tries: Vec::new(),
            attempt: Vec::new(),
            previous: Vec::new(),
            error: Vec::new(),
            blocked_by: Vec::new(),
            invalid: Vec::new(),
            tx,
            rx,
            stop: None,
            kill_at: None,
            // Slurm places jobs by its own accounting: only this machine's
            // tasks reserve this machine's memory.
            memory_capacity: match (config.max_total_memory_gb, options.executor) {
                (Some(total), _) => total,
                (None, ExecutorKind::Local) => machine_memory_gb(),
                (None, ExecutorKind::Slurm) => f64::INFINITY,
            },
            log_dirs: Default::default(),
            executor: None,
            unwritten: Vec::new(),
            run_id: None,
            jobs,
            begun: Instant::now(),
            wave: Vec::new(),
        }
    }

    fn selected(&self, t: usize) -> bool {
        self.options.selects(&self.graph.tasks[t])
    }

    /// Loads every task's status, adopts tasks left running by an earlier
    /// orchestrator, and computes what is ready.
    fn start(&mut self) -> Result<()> {
        let all: Vec<usize> = (0..self.graph.tasks.len()).collect();
        let recovered = self.add_tasks(&all);
        for (t, status) in recovered {
            self.recover(t, status)?;
        }
        if !self.options.mode.plans_only() {
            // The ends recovered from records are on disk before the
            // records go.
            self.write_final_statuses()?;
            self.remove_stale_records();
        }
        Ok(())
    }

    /// Sets up tasks just added to the graph; returns those recorded as
    /// running, to recover once the counters are consistent.
    fn add_tasks(&mut self, added: &[usize]) -> Vec<(usize, Status)> {
        let n = self.graph.tasks.len();
        let phases = self.graph.phases.len();
        self.node.resize(n, Node::Unselected);
        self.unmet.resize(n, 0);
        self.tries.resize(n, 0);
        self.attempt.resize(n, 0);
        self.previous.resize(n, None);
        self.error.resize(n, None);
        self.blocked_by.resize(n, None);
        let new_phases = self.gate_unmet.len()..phases;
        self.gate_unmet.resize(phases, 0);
        self.gate_open.resize(phases, false);
        self.ready.resize(phases, BTreeSet::new());
        self.running_in_phase.resize(phases, 0);

        let mut running = Vec::new();
        for &t in added {
            let status = match status::read(self.layout, &self.graph.tasks[t].id) {
                Ok(status) => status,
                Err(problem) => {
                    self.printer
                        .line(Tone::Warn, &format!("warning: {problem}"));
                    None
                }
            };
            self.node[t] = if self.selected(t) {
                Node::Waiting
            } else {
                Node::Unselected
            };
            if let Some(status) = status {
                self.load_status(t, status, &mut running);
            }
        }
        // Gates: the counts of new phases from scratch, the others updated.
        for p in new_phases.clone() {
            let members: Vec<usize> = self.graph.gate_members(p).collect();
            self.gate_unmet[p] = members
                .iter()
                .filter(|&&t| self.node[t] != Node::Completed)
                .count() as u32;
        }
        for &t in added {
            if self.node[t] == Node::Completed {
                continue;
            }
            let gates: Vec<usize> = self.graph.gates_including(self.graph.phase_of[t]).collect();
            for p in gates.into_iter().filter(|p| !new_phases.contains(p)) {
                if self.gate_open[p] {
                    self.printer.line(
                        Tone::Warn,
                        &format!(
                            "warning: {} appeared after phase {} was complete: tasks waiting on that phase have already started",
                            self.graph.tasks[t].id, self.graph.phases[p].name
                        ),
                    );
                } else {
                    self.gate_unmet[p] += 1;
                }
            }
        }
        for &t in added {
            self.unmet[t] = self.graph.deps[t]
                .iter()
                .filter(|dep| match **dep {
                    Dep::Task(d) => self.node[d] != Node::Completed,
                    Dep::Phase(p) => !self.gate_open[p],
                })
                .count() as u32;
        }
        for p in 0..phases {
            self.try_open_gate(p);
        }
        for &t in added {
            if self.node[t] == Node::Waiting && self.unmet[t] == 0 {
                self.become_ready(t);
            }
        }
        // A crash may have come between a failure and the blocking of its dependents.
        for &t in added {
            if self.node[t] == Node::Failed {
                self.block_dependents(t);
            }
        }
        running
    }

    /// Sets task `t`'s state from its status file. Failed and blocked tasks
    /// are run again by a new run; a run resumed after a crash keeps the
    /// final failures and blocks it had recorded.
    fn load_status(&mut self, t: usize, status: Status, running: &mut Vec<(usize, Status)>) {
        self.attempt[t] = status.attempt;
        let resumed = status.run_id.is_some() && status.run_id == self.run_id;
        if resumed {
            self.tries[t] = status.tries;
        }
        if let (Some(error), Some(log)) = (&status.error, &status.log) {
            self.previous[t] = Some((error.clone(), self.attempt_log(t, status.attempt, log)));
        }
        let selected = self.node[t] == Node::Waiting;
        match status.status {
            State::Completed if status.outputs_validated || self.outputs_still_there(t) => {
                self.node[t] = Node::Completed
            }
            State::Completed => {}
            // A dry run plans it as running now (see `dry_run`).
            State::Running if self.options.mode.plans_only() => self.node[t] = Node::Running,
            State::Running => {
                // Counted as running until recovered, so nothing starts it twice.
                self.node[t] = Node::Running;
                running.push((t, status));
            }
            // Blocked by hand (`block`): stays failed until `reset`.
            State::Failed if status.held && selected => {
                self.node[t] = Node::Failed;
                self.error[t] = status.error;
            }
            State::Failed if resumed && selected => {
                let interrupted = status.error.as_deref() == Some(INTERRUPTED);
                if !interrupted && self.tries[t] > self.graph.tasks[t].retries {
                    self.node[t] = Node::Failed;
                    self.error[t] = status.error;
                }
            }
            State::Blocked if resumed && selected => {
                self.node[t] = Node::Blocked;
                self.blocked_by[t] = status.blocked_by.and_then(|b| self.graph.get(&b));
            }
            State::Failed | State::Blocked => {}
        }
    }

    /// For a task recorded completed without its outputs validated (a status
    /// written by another tool): whether its outputs exist. It runs again
    /// when they do not, as a phase gate counts only validated outputs.
    fn outputs_still_there(&self, t: usize) -> bool {
        let missing = outputs::problems(self.layout, &self.graph.tasks[t], None);
        if !missing.is_empty() {
            let id = &self.graph.tasks[t].id;
            let warning = format!(
                "warning: {id} is recorded completed but {}: it runs again",
                missing.join("; ")
            );
            self.printer.line(Tone::Warn, &warning);
        }
        missing.is_empty()
    }

    /// The log of attempt `attempt` of task `t`, given the path its status names.
    fn attempt_log(&self, t: usize, attempt: u32, latest: &str) -> Utf8PathBuf {
        let id = &self.graph.tasks[t].id;
        let rotated = self.layout.attempt_log_file(id, attempt);
        if rotated.exists() {
            rotated
        } else {
            Utf8PathBuf::from(latest)
        }
    }

    fn main_loop(&mut self) -> Result<()> {
        loop {
            if self.stop.is_none() && self.options.mode == Mode::Run {
                if let Err(e) = self.launch_ready() {
                    self.stop_for(Stop::Fatal(format!("{e:#}")));
                }
            }
            if let Err(e) = self.write_final_statuses() {
                self.stop_for(Stop::Fatal(format!("{e:#}")));
            }
            if self.active.is_empty() {
                if self.stop.is_some() || !self.look_again() {
                    return Ok(());
                }
                continue;
            }
            self.printer.refresh();
            if let Some(executor) = &mut self.executor {
                // Fails only when the supervisor is gone, which it reports.
                let _ = executor.flush();
            }
            let event = match self.wait_limit() {
                Some(limit) => match self.rx.recv_timeout(limit) {
                    Ok(event) => Some(event),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        unreachable!("the scheduler holds a sender")
                    }
                },
                None => Some(self.rx.recv().expect("the scheduler holds a sender")),
            };
            let handled = match event {
                Some(Event::Executor(event)) => self.on_executor(event),
                Some(Event::Signal(signal)) => {
                    self.stop_for(Stop::Signal(signal));
                    Ok(())
                }
                None => Ok(()),
            };
            if self.kill_at.is_some_and(|at| Instant::now() >= at) {
                self.kill_all();
            }
            let checked = handled
                .and_then(|()| self.check_adopted())
                .and_then(|()| self.record_pids());
            if let Err(e) = checked {
                self.stop_for(Stop::Fatal(format!("{e:#}")));
            }
        }
    }

    /// How long the loop may wait for an event before it has something to
    /// do (`None`: as long as it takes).
    fn wait_limit(&self) -> Option<Duration> {
        let polling = self.kill_at.is_some()
            || self.printer.is_live()
            || self.active.values().any(|a| a.adopted.is_some());
        let poll = polling.then_some(Duration::from_millis(200));
        let pid_due = self.active.values().filter_map(|a| a.pid_due).min();
        let until_due = pid_due.map(|due| due.saturating_duration_since(Instant::now()));
        match (poll, until_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes the pid of each task that has run for `PID_AFTER` into its
    /// status.
    fn record_pids(&mut self) -> Result<()> {
        let now = Instant::now();
        let due: Vec<usize> = self
            .active
            .iter()
            .filter(|(_, a)| a.pid_due.is_some_and(|due| due <= now))
            .map(|(&t, _)| t)
            .collect();
        for t in due {
            self.active.get_mut(&t).expect("collected above").pid_due = None;
            self.write_running(t, &self.active[&t])
                .with_context(|| format!("cannot record the pid of {}", self.graph.tasks[t].id))?;
        }
        Ok(())
    }

    /// Nothing runs: look for what may still start (new task files, inputs
    /// or gate artifacts that appeared). Returns whether anything became ready.
    fn look_again(&mut self) -> bool {
        if self.options.mode != Mode::Run {
            // `monitor` only waits: what became ready is for the next run.
            return false;
        }
        self.discover();
        self.recheck_waiting();
        self.ready.iter().any(|r| !r.is_empty())
    }

    fn on_executor(&mut self, event: executor::Event) -> Result<()> {
        match event {
            executor::Event::Started { task_id, pid } => {
                let Some(t) = self.graph.get(&task_id) else {
                    return Ok(());
                };
                let Some(active) = self.active.get_mut(&t) else {
                    return Ok(());
                };
                if active.queued && active.job_id.is_some() {
                    // Left Slurm's queue: the attempt's time starts now.
                    active.started = SystemTime::now();
                    self.printer
                        .event(Tone::Plain, "running", &task_id, "left the Slurm queue");
                }
                let active = self.active.get_mut(&t).expect("looked up above");
                active.queued = false;
                if let Some(pid) = pid {
                    // Nothing to write yet: see `PID_AFTER`.
                    active.pid = pid;
                    active.pid_start = process::start_time(pid);
                    active.pid_due = Some(Instant::now() + PID_AFTER);
                    return Ok(());
                }
                let active = &self.active[&t];
                self.write_running(t, active)
                    .with_context(|| format!("cannot record that {task_id} started"))
            }
            executor::Event::Ended { task_id, record } => match self.graph.get(&task_id) {
                Some(t) if self.active.contains_key(&t) => self.finish(t, record),
                _ => Ok(()),
            },
            executor::Event::Gone => {
                // Its tasks lose their recorder: watch them by pid, and stop.
                let gone = Process {
                    pid: 0,
                    start: None,
                };
                for active in self.active.values_mut() {
                    active.adopted.get_or_insert(gone);
                }
                self.executor = None;
                self.stop_for(Stop::Fatal("the supervisor process died".into()));
                Ok(())
            }
        }
    }

    /// Stops launching and stops every running task: SIGTERM to its group,
    /// SIGKILL after the grace period. A second signal kills them at once.
    fn stop_for(&mut self, reason: Stop) {
        match (&self.stop, &reason) {
            (Some(_), Stop::Signal(_)) => {
                self.printer
                    .line(Tone::Bad, "Killing every running task now");
                self.kill_all();
                return;
            }
            // The first fatal error is the one worth reporting.
            (Some(_), Stop::Fatal(_)) => return,
            (None, _) => {}
        }
        let why = match &reason {
            Stop::Signal(signal) => format!("{} received", process::signal_name(*signal)),
            Stop::Fatal(error) => format!("error: {error}"),
        };
        let hint = match reason {
            Stop::Signal(_) => "; press Ctrl-C again to kill them at once",
            Stop::Fatal(_) => "",
        };
        self.printer.line(
            Tone::Bad,
            &format!(
                "{why}: stopping {} running task(s) (SIGTERM, SIGKILL after {}){hint}",
                self.active.len(),
                format::duration(self.config.kill_grace)
            ),
        );
        self.stop = Some(reason);
        for (&t, active) in &self.active {
            let asked = match (&mut self.executor, active.adopted) {
                (Some(executor), None) => executor.stop(&self.graph.tasks[t].id),
                _ => false,
            };
            // Adopted tasks have no supervisor of ours: signal them here.
            if !asked && active.pid != 0 {
                process::signal_group(active.pid, libc::SIGTERM);
            }
        }
        self.kill_at = Some(Instant::now() + self.config.kill_grace);
    }

    /// SIGKILL to every running task's process group.
    fn kill_all(&mut self) {
        for (&t, active) in &self.active {
            if active.pid != 0 {
                process::signal_group(active.pid, libc::SIGKILL);
            }
            if let (Some(Executor::Slurm(slurm)), Some(_)) = (&mut self.executor, &active.job_id) {
                slurm.stop(&self.graph.tasks[t].id, Some("KILL"));
            }
        }
        self.kill_at = None;
    }

    /// Starts ready tasks while the global and phase limits allow.
    fn launch_ready(&mut self) -> Result<()> {
        while self.active.len() + self.wave.len() < self.jobs {
            let Some(t) = self.pick() else { break };
            let phase = self.graph.phase_of[t];
            self.ready[phase].remove(&t);
            if self.options.mode.plans_only() {
                self.node[t] = Node::Running;
                self.running_in_phase[phase] += 1;
                self.wave.push(t);
            } else {
                self.launch(t)?;
            }
        }
        Ok(())
    }

    /// The first ready task, in id order, whose phase has a free slot.
    /// The first ready task, in id order, whose phase has a free slot and
    /// whose memory fits beside what the running tasks reserve (one task
    /// always may run alone, whatever it asks).
    fn pick(&self) -> Option<usize> {
        let reserved: f64 = self
            .active
            .keys()
            .chain(&self.wave)
            .map(|&t| self.limits(t).memory_gb)
            .sum();
        let idle = self.active.is_empty() && self.wave.is_empty();
        (0..self.ready.len())
            .filter(|&p| self.running_in_phase[p] < self.phase_limit(p))
            .filter_map(|p| {
                self.ready[p]
                    .iter()
                    .copied()
                    .find(|&t| idle || reserved + self.limits(t).memory_gb <= self.memory_capacity)
            })
            .min()
    }

    fn phase_limit(&self, p: usize) -> usize {
        self.config
            .max_parallel(task::phase_key(&self.graph.phases[p].name))
    }

    fn launch(&mut self, t: usize) -> Result<()> {
        let agent = self
            .free_agents
            .pop_first()
            .unwrap_or(self.active.len() + 1);
        let attempt = self.attempt[t] + 1;
        self.attempt[t] = attempt;
        self.tries[t] += 1;
        self.node[t] = Node::Running;
        self.running_in_phase[self.graph.phase_of[t]] += 1;
        let started = SystemTime::now();
        let mut active = Active {
            pid: 0,
            pid_start: None,
            adopted: None,
            job_id: None,
            queued: true,
            agent,
            started,
            since_ns: None,
            attempt,
            pid_due: None,
        };
        let sent = self.start_attempt(t, &mut active);
        let details = self.start_details(&active);
        // Tracked from now on: its end comes as an event from the supervisor.
        self.active.insert(t, active);
        match sent {
            Ok(()) => {
                self.printer
                    .event(Tone::Plain, "start", &self.graph.tasks[t].id, &details);
                Ok(())
            }
            Err(e) => {
                // The task could not even start (log folder not writable,
                // ...): a failed attempt like any other, with the reason.
                let record = ExitRecord {
                    message: Some(format!("{e:#}")),
                    ..ExitRecord::now(Ending::SpawnFailed)
                };
                self.complete_attempt(t, Some(record), RecordFrom::Nowhere)
            }
        }
    }

    fn start_details(&self, active: &Active) -> String {
        let mut details = format!("agent-{}", active.agent);
        if active.attempt > 1 {
            details += &format!("  attempt {}", active.attempt);
        }
        details
    }

    /// Prepares the attempt's files, records it as running, and asks the
    /// supervisor to start it. The status is written first, so a crash in
    /// between can never leave a task running that no status mentions.
    fn start_attempt(&mut self, t: usize, active: &mut Active) -> Result<()> {
        let (agent, attempt) = (active.agent, active.attempt);
        let layout = self.layout;
        let task = &self.graph.tasks[t];
        let id = &task.id;
        let log_path = layout.log_file(id);
        if attempt > 1 && log_path.exists() {
            let kept = layout.attempt_log_file(id, attempt - 1);
            std::fs::rename(&log_path, &kept)
                .with_context(|| format!("cannot keep the previous log as {kept}"))?;
        }
        self.make_output_dir(t)?;
        let task = &self.graph.tasks[t];
        outputs::settle(layout, task);
        self.make_log_dir(&log_path)?;
        // Empties a log made ahead (see `prepare_dependents`), which sets its
        // change time to now: the attempt's start on the file system's clock.
        let log =
            File::create(&log_path).with_context(|| format!("cannot create log {log_path}"))?;
        active.since_ns = Some(outputs::changed_ns(
            &log.metadata()
                .with_context(|| format!("cannot stat {log_path}"))?,
        ));
        self.write_running(t, active)?;

        let launch = self.launch_spec(t, agent, attempt);
        let limits = self.limits(t);
        drop(log);
        let executor = self
            .executor
            .as_mut()
            .context("no executor to start tasks")?;
        active.job_id = executor.launch(layout, &launch, &limits)?;
        if active.job_id.is_some() {
            // Submitted: record the job id at once, so a crash cannot lose it.
            self.write_running(t, active)?;
        }
        self.prepare_dependents(t);
        Ok(())
    }

    /// While `t` runs, makes the files of its dependents that only wait for
    /// running tasks: their output folders, and for a first attempt the log
    /// (empty; emptied again at its start) and the file its status will be
    /// written in (see `atomic::replace`). Fewer files to create between
    /// `t`'s end and their start. A failure here is reported at their start;
    /// a dependent blocked in the end keeps an empty folder and log.
    fn prepare_dependents(&mut self, t: usize) {
        for d in self.graph.dependents[t].clone() {
            let running_deps = self.graph.deps[d]
                .iter()
                .filter(|dep| matches!(dep, Dep::Task(i) if *i == t || self.active.contains_key(i)))
                .count();
            let next_up = self.node[d] == Node::Waiting && self.unmet[d] as usize <= running_deps;
            if next_up {
                let _ = self.make_output_dir(d);
            }
            if next_up && self.attempt[d] == 0 {
                let id = self.graph.tasks[d].id.clone();
                let log = self.layout.log_file(&id);
                if self.make_log_dir(&log).is_ok() {
                    // Never over an existing log: it may be an earlier attempt's.
                    let _ = File::options().write(true).create_new(true).open(&log);
                }
                status::prepare_write(self.layout, &id);
            }
        }
    }

    /// Creates a log's folder, once per run: thousands of tasks share a few.
    fn make_log_dir(&mut self, log: &Utf8Path) -> Result<()> {
        let dir = log.parent().expect("a log file has a folder");
        if !self.log_dirs.contains(dir) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create log folder {dir}"))?;
            self.log_dirs.insert(dir.to_owned());
        }
        Ok(())
    }

    /// Creates the task's output folder (a task may have removed it).
    fn make_output_dir(&self, t: usize) -> Result<()> {
        let output_dir = self.layout.output_dir(&self.graph.tasks[t].id);
        std::fs::create_dir_all(&output_dir).with_context(|| format!("cannot create {output_dir}"))
    }

    /// What the executor needs to start attempt `attempt` of task `t`.
    fn launch_spec(&self, t: usize, agent: usize, attempt: u32) -> Launch {
        let task = &self.graph.tasks[t];
        let mut env = executor::environment(self.layout, task, agent, attempt);
        if let Some((error, previous_log)) = &self.previous[t] {
            env.push(("TASK_PREVIOUS_ERROR".into(), error.clone()));
            env.push(("TASK_PREVIOUS_LOG".into(), previous_log.to_string()));
        }
        Launch {
            task_id: task.id.clone(),
            attempt,
            argv: executor::argv(self.layout, self.config, task),
            env,
            log_file: self.layout.log_file(&task.id),
        }
    }

    fn limits(&self, t: usize) -> Limits {
        let task = &self.graph.tasks[t];
        let phase = self.config.phase(task::phase_key(&task.phase));
        Limits {
            timeout: task.timeout.or(phase.timeout),
            idle_timeout: task.idle_timeout.or(phase.idle_timeout),
            grace: self.config.kill_grace,
            cpus: task.resources.cpus.unwrap_or(self.config.max_cpu_per_agent),
            memory_gb: task
                .resources
                .memory_gb
                .unwrap_or(self.config.max_memory_gb),
        }
    }

    fn write_running(&self, t: usize, active: &Active) -> Result<()> {
        let id = &self.graph.tasks[t].id;
        let mut status = Status::new(id, State::Running);
        status.started_at = Some(status::timestamp(active.started));
        status.agent_id = Some(format!("agent-{}", active.agent));
        status.attempt = active.attempt;
        status.pid = Some(active.pid).filter(|&pid| pid != 0);
        status.pid_start = active.pid_start;
        if let Some(Executor::Local(supervisor)) = &self.executor {
            status.supervisor_pid = Some(supervisor.pid());
            status.supervisor_start = supervisor.start_time();
        }
        status.job_id = active.job_id.clone();
        status.queued = active.job_id.is_some() && active.queued;
        status.log = Some(self.layout.log_file(id).to_string());
        status.attempt_since_ns = active.since_ns;
        status.run_id = self.run_id.clone();
        status.tries = self.tries[t];
        status::write(self.layout, &status)
    }

    /// A task has ended (or vanished): record the result. Its exit record
    /// comes from the executor, or (`None`) from the disk, where a
    /// supervisor whose orchestrator died, or the Slurm poller, left it.
    fn finish(&mut self, t: usize, record: Option<ExitRecord>) -> Result<()> {
        match record {
            Some(record) => self.complete_attempt(t, Some(record), RecordFrom::Executor),
            None => {
                let attempt = self.active.get(&t).map_or(0, |a| a.attempt);
                let record = recorded_end(self.layout, &self.graph.tasks[t].id, attempt);
                self.complete_attempt(t, record, RecordFrom::Disk)
            }
        }
    }

    /// Writes the final statuses of the tasks that ended, then lets go of
    /// where their exit records came from (only now: until the status is on
    /// disk, the record is what a crash would recover from).
    fn write_final_statuses(&mut self) -> Result<()> {
        let mut pending = std::mem::take(&mut self.unwritten).into_iter();
        while let Some((t, status, from)) = pending.next() {
            // A retry that started meanwhile has written a newer status.
            if !self.active.contains_key(&t) {
                if let Err(e) = status::write(self.layout, &status) {
                    // Kept for the summary and a later try; the records too.
                    self.unwritten.push((t, status, from));
                    self.unwritten.extend(pending);
                    return Err(e);
                }
            }
            let id = &status.task_id;
            match from {
                RecordFrom::Executor => {
                    if let Some(executor) = &mut self.executor {
                        executor.written(id, status.attempt);
                    }
                }
                RecordFrom::Disk => {
                    let removed = crate::state::atomic::remove(&self.layout.exit_file(id))
                        .and_then(|()| crate::state::atomic::remove(&self.layout.pid_file(id)));
                    if let Err(e) = removed {
                        self.unwritten.extend(pending);
                        return Err(e);
                    }
                }
                RecordFrom::Nowhere => {}
            }
        }
        Ok(())
    }

    /// Records how the attempt ended, in memory: the final status is written
    /// by `write_final_statuses`, after the tasks this end made ready are
    /// started, so that their start does not wait for it.
    fn complete_attempt(
        &mut self,
        t: usize,
        record: Option<ExitRecord>,
        from: RecordFrom,
    ) -> Result<()> {
        let active = self.active.remove(&t).expect("only running tasks finish");
        self.free_agents.insert(active.agent);
        self.running_in_phase[self.graph.phase_of[t]] -= 1;
        let ended = record
            .as_ref()
            .and_then(|r| status::parse_timestamp(&r.ended_at))
            .filter(|_| active.adopted.is_some())
            .unwrap_or_else(SystemTime::now);
        let duration = ended.duration_since(active.started).unwrap_or_default();
        let task = &self.graph.tasks[t];
        let id = task.id.clone();

        let mut status = Status::new(&id, State::Failed);
        status.started_at = Some(status::timestamp(active.started));
        status.completed_at = Some(status::timestamp(ended));
        status.agent_id = Some(format!("agent-{}", active.agent));
        status.duration_seconds = Some(status::seconds(duration));
        status.attempt = active.attempt;
        status.log = Some(self.layout.log_file(&id).to_string());
        status.attempt_since_ns = active.since_ns;
        status.run_id = self.run_id.clone();
        status.tries = self.tries[t];
        status.job_id = active.job_id.clone();
        if let Some(r) = &record {
            status.limits_enforced = Some(r.limits_enforced);
            status.peak_memory_mb = r
                .peak_memory_bytes
                .map(|b| (b as f64 / 1048576.0 * 10.0).round() / 10.0);
            status.cpu_seconds = r.cpu_seconds.map(status::seconds_f64);
        }
        status.exit_code = record.as_ref().and_then(|r| r.exit_code);
        status.signal = record.as_ref().and_then(|r| r.signal);
        let error = match &record {
            None if self.stop.is_some() => Some(INTERRUPTED.to_owned()),
            None => Some(
                "lost: the task and its supervisor are gone, and no exit code was recorded"
                    .to_owned(),
            ),
            Some(r) => match r.ending {
                Ending::Exited => match (r.exit_code, r.signal) {
                    (Some(0), _) => {
                        let missing = outputs::problems(self.layout, task, active.since_ns);
                        if missing.is_empty() {
                            None
                        } else {
                            Some(format!(
                                "exited 0 but outputs are not right: {}",
                                missing.join("; ")
                            ))
                        }
                    }
                    (Some(code), _) => Some(format!("exit code {code}")),
                    (None, Some(sig)) => Some(format!("killed by {}", process::signal_name(sig))),
                    (None, None) => Some("ended without an exit code".to_owned()),
                },
                Ending::Timeout => Some("Timeout".to_owned()),
                Ending::IdleTimeout => Some("Idle timeout".to_owned()),
                Ending::Interrupted => Some(INTERRUPTED.to_owned()),
                Ending::OutOfMemory => Some(format!(
                    "Out of memory (limit {})",
                    format::gib(self.limits(t).memory_gb)
                )),
                Ending::Lost => Some(format!(
                    "lost: {}",
                    r.message.as_deref().unwrap_or("the node failed")
                )),
                Ending::SpawnFailed => Some(
                    r.message
                        .clone()
                        .unwrap_or_else(|| "could not start".into()),
                ),
            },
        };
        if error.is_none() {
            status.status = State::Completed;
            status.outputs_validated = true;
        }
        status.error = error.clone();
        self.unwritten.push((t, status, from));

        let agent = format!("agent-{}  {}", active.agent, format::duration(duration));
        match error {
            None => {
                self.printer.event(Tone::Good, "done", &id, &agent);
                // Tasks the finished one generated join their phase gates
                // before its own completion can open them.
                self.discover();
                self.on_completed(t);
                self.recheck_waiting();
            }
            Some(error) => {
                self.printer
                    .event(Tone::Bad, "failed", &id, &format!("{agent}  {error}"));
                self.on_failed(t, error);
                self.recheck_waiting();
            }
        }
        Ok(())
    }

    fn on_completed(&mut self, t: usize) {
        self.node[t] = Node::Completed;
        self.error[t] = None;
        for d in self.graph.dependents[t].clone() {
            self.satisfy(d);
        }
        let gates: Vec<usize> = self.graph.gates_including(self.graph.phase_of[t]).collect();
        for p in gates {
            if !self.gate_open[p] {
                self.gate_unmet[p] -= 1;
                self.try_open_gate(p);
            }
        }
    }

    fn on_failed(&mut self, t: usize, error: String) {
        self.previous[t] = Some((
            error.clone(),
            self.layout
                .attempt_log_file(&self.graph.tasks[t].id, self.attempt[t]),
        ));
        let retries = self.graph.tasks[t].retries;
        if self.stop.is_none() && self.tries[t] <= retries {
            self.printer.event(
                Tone::Warn,
                "retry",
                &self.graph.tasks[t].id,
                &format!("attempt {} of {}", self.tries[t] + 1, retries + 1),
            );
            self.node[t] = Node::Waiting;
            self.become_ready(t);
            return;
        }
        self.node[t] = Node::Failed;
        self.error[t] = Some(error);
        if self.stop.is_some() {
            return;
        }
        let blocked = self.block_dependents(t);
        if blocked > 0 {
            self.printer.line(
                Tone::Bad,
                &format!(
                    "ALERT: Task {} failed, blocking {blocked} tasks",
                    self.graph.tasks[t].id
                ),
            );
        }
    }

    /// Marks every task that depends on `failed`, directly or not, as
    /// blocked by it. Returns how many.
    fn block_dependents(&mut self, failed: usize) -> usize {
        let blocked = self.graph.downstream(failed, |d| {
            matches!(
                self.node[d],
                Node::Waiting | Node::Ready | Node::NeedsInputs | Node::Unselected
            )
        });
        for &d in &blocked {
            let phase = self.graph.phase_of[d];
            self.ready[phase].remove(&d);
            self.needs_inputs.remove(&d);
            self.node[d] = Node::Blocked;
            self.blocked_by[d] = Some(failed);
            if !self.options.mode.plans_only() {
                let mut status =
                    Status::blocked(&self.graph.tasks[d].id, &self.graph.tasks[failed].id);
                status.attempt = self.attempt[d];
                status.run_id = self.run_id.clone();
                if let Err(e) = status::write(self.layout, &status) {
                    self.printer.line(Tone::Bad, &format!("error: {e:#}"));
                }
            }
        }
        blocked.len()
    }

    fn satisfy(&mut self, t: usize) {
        self.unmet[t] -= 1;
        if self.unmet[t] == 0 && self.node[t] == Node::Waiting {
            self.become_ready(t);
        }
    }

    fn become_ready(&mut self, t: usize) {
        if self.missing_inputs(t).is_empty() {
            self.node[t] = Node::Ready;
            self.ready[self.graph.phase_of[t]].insert(t);
        } else {
            self.node[t] = Node::NeedsInputs;
            self.needs_inputs.insert(t);
        }
    }

    fn missing_inputs(&self, t: usize) -> Vec<String> {
        self.graph.tasks[t]
            .inputs
            .iter()
            .filter(|input| {
                // A dry run assumes producers that would run write their outputs.
                let assumed = self.options.mode.plans_only()
                    && self
                        .graph
                        .producer(input)
                        .is_some_and(|p| self.node[p] == Node::Completed);
                !assumed && !self.layout.outputs_dir().join(input).exists()
            })
            .cloned()
            .collect()
    }

    fn try_open_gate(&mut self, p: usize) {
        if self.gate_open[p] || self.gate_unmet[p] > 0 || !self.gate_artifacts_missing(p).is_empty()
        {
            return;
        }
        self.gate_open[p] = true;
        for d in self.graph.phases[p].dependents.clone() {
            self.satisfy(d);
        }
    }

    fn gate_artifacts_missing(&self, p: usize) -> Vec<String> {
        let key = task::phase_key(&self.graph.phases[p].name);
        let Some(phase) = self.config.phases.get(key) else {
            return Vec::new();
        };
        phase
            .requires
            .iter()
            .filter(|path| !self.layout.outputs_dir().join(path).exists())
            .cloned()
            .collect()
    }

    /// Inputs and gate artifacts appear when tasks end; look at the few
    /// tasks and phases waiting on them.
    fn recheck_waiting(&mut self) {
        for t in std::mem::take(&mut self.needs_inputs) {
            self.become_ready(t);
        }
        for p in 0..self.graph.phases.len() {
            self.try_open_gate(p);
        }
    }

    /// Adds task files that appeared since the last look.
    fn discover(&mut self) {
        let files = self.discovery.rescan();
        if files.is_empty() {
            return;
        }
        let mut tasks = Vec::new();
        for file in files {
            match task::load(&self.layout.tasks, &file) {
                Ok(task) => tasks.push(task),
                Err(problem) => {
                    self.report_invalid(problem.relative_to(&self.layout.root).to_string())
                }
            }
        }
        let (added, problems) = self.graph.extend(tasks);
        for problem in problems {
            self.report_invalid(problem.relative_to(&self.layout.root).to_string());
        }
        for &t in &added {
            self.printer.event(
                Tone::Plain,
                "found",
                &self.graph.tasks[t].id,
                "new task file",
            );
        }
        let running = self.add_tasks(&added);
        for (t, status) in running {
            // A new file cannot be running yet; recover records its fate.
            let _ = self.recover(t, status);
        }
    }

    fn report_invalid(&mut self, problem: String) {
        self.printer.line(Tone::Bad, &format!("error: {problem}"));
        self.invalid.push(problem);
    }
}

/// The machine's memory in GiB (`MemTotal`).
fn machine_memory_gb() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(f64::INFINITY);
    kib / (1024.0 * 1024.0)
}
