//! What the run would do, without running anything: `next` (what starts
//! now, and what the first waiting tasks wait on), a dry run (the waves in
//! which tasks would start, as if each wave ended before the next began),
//! and why a task waits, which the run's summary and `why` also tell.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::time::SystemTime;

use anyhow::Result;

use crate::agent::terminal::escaped;
use crate::executor::{slurm, Limits};
use crate::exit;
use crate::model::config::{Approve, Config, ExecutorKind};
use crate::model::definitions::Definitions;
use crate::model::graph::{Dep, Graph};
use crate::model::layout::Layout;
use crate::run::admission::{Admission, Pause};
use crate::run::approvals;
use crate::run::attempt;
use crate::run::budget::Budget;
use crate::run::history::{self, Past};
use crate::run::load::{self, Disk, Reader};
use crate::run::order::Order;
use crate::run::readiness::{Node, Readiness, Walk};
use crate::run::reorder;
use crate::run::Options;
use crate::state::runs;
use crate::state::status::AgentSlot;
use crate::sys::parallel;
use crate::sys::shell;
use crate::ui::format;
use gone::Gone;

mod gone;
mod waits;
pub use waits::{never_starting, waiting, Waits};

/// How the order is said, before the tasks with their expected duration
/// and remaining path.
const ORDER: &str = "Order: priority (a task's own, or the highest of what waits on it), then the longest remaining path to the end (~expected duration, path: it and what waits on it), then id";

/// What pause holds each task of `defs` now (`Plan::pause`), as the run
/// going on, or the next, reads it: for the views that read statuses
/// (`progress`, `graph`, `report`), which show a task pending that one
/// holds as paused. None, and no plan made, unless a status says a pause
/// is `on`: only such a status pauses a pool.
pub fn pauses(defs: &Definitions, on: bool) -> Vec<Option<Pause>> {
    if !on {
        return Vec::new();
    }
    let options = Options::of_the_run_going_on(&defs.layout, defs.config.executor);
    let plan = Plan::new(defs, &options);
    (0..defs.graph.tasks.len())
        .map(|t| plan.pause(t).cloned())
        .collect()
}

/// The run's state as a new run would start from it, to plan with.
pub struct Plan<'a> {
    layout: &'a Layout,
    config: &'a Config,
    options: &'a Options,
    graph: &'a Graph,
    readiness: Readiness,
    history: Vec<Past>,
    admission: Admission<'a>,
    /// Tasks planned as running: the wave being planned, after the tasks
    /// running now.
    wave: Vec<usize>,
    /// How many of the wave's first tasks really run now (`next`).
    running_now: usize,
    warnings: Vec<String>,
    budget: Budget,
    /// The order ready tasks start in, and what each is expected to take.
    order: Order,
    /// Tasks whose decisions the run forgets (stale, run again).
    undecided: HashSet<usize>,
    /// Tasks a rate limit's pause holds now, in order (`pauses`' keys).
    paused: Vec<usize>,
    /// What pause holds each of them (`Admission::holding_pause`).
    pauses: BTreeMap<usize, Pause>,
    /// Tasks recorded as running whose process is gone, and how the run
    /// will find each.
    gone: Vec<(usize, Gone)>,
    /// What the run would say of stale completed tasks.
    stale_notes: Vec<String>,
    /// `orchestrate` would refuse to run (`next` found a task running on
    /// without its status): nothing starts until it has ended.
    refused: bool,
    /// Why the wave planned last starts no more agents, the budget left
    /// being what the agents in it are expected to cost (a ready agent
    /// not in it waits for that).
    spoken_for: Option<String>,
}

impl<'a> Plan<'a> {
    /// Reads every status, as the next run would: it resumes a run that
    /// did not end in order (killed), keeping its final failures and
    /// blocks and its retry counts.
    pub fn new(defs: &'a Definitions, options: &'a Options) -> Plan<'a> {
        let (layout, config, graph) = (&defs.layout, &defs.config, &defs.graph);
        let mut readiness = Readiness::new(true);
        let mut history = Vec::new();
        let selected = |t: usize| options.selects(&graph.tasks[t]);
        let mut unread_run = Vec::new();
        let resumed = runs::last_or_warn(layout, &mut unread_run).filter(|run| !run.finished);
        let reader = Reader {
            layout,
            selected: &selected,
            run_id: resumed.as_ref().map(|run| run.id.as_str()),
            rerun_stale: options.rerun_stale,
        };
        let files = Disk::new(layout, config, graph);
        let all: Vec<usize> = (0..graph.tasks.len()).collect();
        let loaded = reader.add_tasks(graph, &mut readiness, &mut history, &all, &files);
        let mut walked = HashSet::new();
        for t in loaded.failed {
            readiness.block_downstream(graph, t, Walk::OnStart(&mut walked));
        }
        let stopping = resumed.is_some() && runs::resumes_a_stop(layout);
        let gone: Vec<(usize, Gone)> = (loaded.gone.iter())
            .map(|&(t, merging)| {
                let tries = history[t].tries;
                (t, gone::judge(layout, graph, t, merging, tries, stopping))
            })
            .collect();
        gone::plan(
            graph,
            &mut readiness,
            &mut history,
            &gone,
            &files,
            &selected,
        );
        // A result whose `approve: after` is gone counts, as the run has it.
        for &t in &loaded.awaiting {
            if graph.tasks[t].approval(config) != Some(Approve::After) {
                readiness.approved_result(graph, t, &files);
            }
        }
        // `--rerun-stale` forgets what was decided on what ran before.
        let undecided = loaded.rerun.iter().map(|&(t, _)| t).collect();
        let mut admission = Admission::new(config, options.jobs, options.executor);
        // As the run takes it up; one it cannot read is said by the run.
        if let Ok(saved) = crate::state::pools::read(layout) {
            admission.restore_pools(graph, &saved);
        }
        admission.pause(graph, &loaded.paused);
        let known = history::known_seconds(graph, &readiness, &history, &defs.durations);
        let order = Order::new(graph, known, |t| reorder::weighs_nothing(readiness.node(t)));
        let running = (loaded.gone.iter().map(|&(t, _)| t)).chain(loaded.alive.iter().copied());
        let budget = Budget::seen(layout, config, graph, running);
        readiness.set_order(order.rank.clone());
        let mut plan = Plan {
            layout,
            config,
            options,
            graph,
            readiness,
            history,
            admission,
            wave: Vec::new(),
            running_now: 0,
            warnings: defs
                .durations
                .unread
                .iter()
                .cloned()
                .chain(unread_run)
                .chain(loaded.warnings)
                .chain(budget.skipped_warning(layout))
                .collect(),
            budget,
            order,
            undecided,
            paused: Vec::new(),
            pauses: BTreeMap::new(),
            gone,
            refused: false,
            spoken_for: None,
            stale_notes: load::stale_notes(
                layout,
                graph,
                &loaded.stale,
                &loaded.rerun,
                &loaded.stale_held,
                options.rerun_stale,
            ),
        };
        plan.find_pauses(&loaded.paused);
        plan
    }

    /// The tasks a rate limit's pause holds (`Admission::holding_pause`):
    /// those it paused (`own`, each until when its status says), and the
    /// ready ones in a pool it pauses that wait for no person.
    fn find_pauses(&mut self, own: &[(usize, SystemTime)]) {
        // Only a paused task's status pauses a pool: no ready task is
        // asked about without one.
        if own.is_empty() {
            return;
        }
        let now = SystemTime::now();
        let ready: Vec<usize> = self.readiness.tasks_in(Node::Ready).collect();
        let own: HashMap<usize, SystemTime> = own.iter().copied().collect();
        for t in own.keys().copied().chain(ready) {
            let is_ready = || {
                self.readiness.node(t) == Node::Ready
                    && !self.waits_for_approval(t, Approve::Before)
            };
            let own = own.get(&t).copied();
            if let Some(pause) = self
                .admission
                .holding_pause(self.graph, t, own, is_ready, now)
            {
                self.pauses.insert(t, pause);
            }
        }
        self.paused = self.pauses.keys().copied().collect();
    }

    /// Whether task `t` would wait for a person: `when` it is to approve,
    /// and no decision holds (or the run would forget it).
    fn waits_for_approval(&self, t: usize, when: Approve) -> bool {
        let task = &self.graph.tasks[t];
        match self.undecided.contains(&t) {
            true => task.approval(self.config) == Some(when),
            false => approvals::waits(self.layout, self.config, task, when),
        }
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The budget as the next run starts with it: what the ledger holds,
    /// and what the attempts that ended unseen cost (`Budget::seen`).
    pub fn into_budget(self) -> Budget {
        self.budget
    }

    /// The budget as the run going on, or the next, starts with it
    /// (`into_budget`), for the views that say what is left (`why`,
    /// `prompt`): what the attempts that ended unseen cost counts too.
    pub fn seen_budget(defs: &Definitions) -> Budget {
        let options = Options::of_the_run_going_on(&defs.layout, defs.config.executor);
        Plan::new(defs, &options).into_budget()
    }

    /// Whether task `t` waits for a rate limit's pause: its own, or its
    /// pool's (another task's).
    pub fn is_paused(&self, t: usize) -> bool {
        self.pauses.contains_key(&t)
    }

    /// The pause that holds task `t` now, if one does (see
    /// `Admission::holding_pause`).
    pub fn pause(&self, t: usize) -> Option<&Pause> {
        self.pauses.get(&t)
    }

    /// Until when task `t`'s pool pauses for a rate limit, if it does now.
    pub fn pool_paused_until(&self, t: usize) -> Option<std::time::SystemTime> {
        let now = std::time::SystemTime::now();
        self.admission.pool_paused_until(self.graph, t, now)
    }

    /// The latest attempt's number of task `t`.
    pub fn attempt(&self, t: usize) -> u32 {
        self.history[t].attempt
    }

    /// Fails task `t` by hand and blocks what depends on it; returns the
    /// tasks blocked.
    pub fn hold(&mut self, t: usize) -> Vec<usize> {
        self.readiness.hold(self.graph, t);
        self.readiness.block_downstream(self.graph, t, Walk::InRun)
    }

    /// `next`: what would start now, in order, and the first tasks that
    /// wait, with what each waits on.
    pub fn next(mut self) -> i32 {
        self.refused = self.print_warnings();
        let refused = self.refused;
        println!("Limits: {}", self.admission.describe());
        for note in &self.stale_notes {
            println!("{note}");
        }
        self.print_memory_note();
        self.print_budget();
        self.start_from_running();
        let running = self.running_now;
        let starting = &self.wave[running..];
        if running > 0 {
            println!("Running now: {running}");
        }
        for line in self.gone_lines() {
            println!("{line}");
        }
        if starting.is_empty() {
            println!("Nothing more would start now.");
        } else {
            println!("{ORDER}");
            match refused {
                false => println!("Would start now, in this order:"),
                // Nothing starts until the stray is settled.
                true => println!(
                    "Would start once what the warning names has ended or been stopped (`orchestrate` refuses until then), in this order:"
                ),
            }
        }
        let shown = self.shown();
        for &t in starting {
            println!(
                "  {} {}  {}",
                format::padded(&self.graph.tasks[t].id, 40),
                shown.expectation(t),
                command_line(&shown.command(t, AgentSlot(0)))
            );
        }
        for t in self.readiness.tasks_in(Node::AwaitingApproval) {
            let id = &self.graph.tasks[t].id;
            println!(
                "Awaits approval: {id} (`{}`)",
                self.layout.task_cmd("approve", id)
            );
        }
        const SHOWN: usize = 10;
        // The ready ones first, in the order they would start, each with
        // what it is expected to take (they were listed by id, and the
        // order was not to be seen past the first tasks); the others by id.
        let mut waiting = self.not_started_tasks();
        let ready = |t: usize| self.readiness.node(t) == Node::Ready;
        waiting.sort_by_key(|&(t, _)| match ready(t) {
            true => (0, shown.order.rank.get(t).copied().unwrap_or(u32::MAX)),
            false => (1, 0),
        });
        if !waiting.is_empty() {
            println!("Waiting ({}):", waiting.len());
        }
        for (t, line) in waiting.iter().take(SHOWN) {
            match ready(*t) {
                true => println!("  {line}; {}", shown.expectation(*t)),
                false => println!("  {line}"),
            }
        }
        if waiting.len() > SHOWN {
            println!("  ... and {} more", waiting.len() - SHOWN);
        }
        // Beside a run of one phase or of some tasks (`next` plans what it
        // selects): the others wait for a run after it.
        let unselected: Vec<&str> = (self.readiness.tasks_in(Node::Unselected))
            .map(|t| self.graph.tasks[t].id.as_str())
            .collect();
        if !unselected.is_empty() {
            let more = match unselected.len() {
                n if n > SHOWN => format!(" ... and {} more", n - SHOWN),
                _ => String::new(),
            };
            println!(
                "Not selected by the run going on ({}), for a run after it: {}{more}",
                unselected.len(),
                unselected[..unselected.len().min(SHOWN)].join(", ")
            );
        }
        exit::SUCCESS
    }

    /// What holds the ready task `t` back now, as `next` says it (the
    /// limits, a pool, a write overlap), or `None` when it would start now.
    pub fn held_back(mut self, t: usize) -> Option<String> {
        self.start_from_running();
        let starting = &self.wave[self.running_now..];
        (!starting.contains(&t)).then(|| self.waits().reason(t))
    }

    /// Plans the first wave beside the tasks running now, which hold their
    /// slots and memory.
    fn start_from_running(&mut self) {
        self.wave = self.readiness.tasks_in(Node::Running).collect();
        self.running_now = self.wave.len();
        self.plan_wave();
    }

    /// A dry run: the waves in which tasks would start, each with the
    /// command it would run.
    pub fn dry_run(mut self) -> Result<i32> {
        self.print_warnings();
        println!("Dry run: nothing is launched or written.");
        for note in &self.stale_notes {
            println!("{note}");
        }
        self.print_memory_note();
        self.print_budget();
        // A line per task: one write each, as `println!` would make, costs
        // a fifth of a second for 100,000 tasks.
        let mut out = BufWriter::new(std::io::stdout().lock());
        let ids = |tasks: &[usize]| -> String {
            let ids: Vec<&str> = tasks
                .iter()
                .map(|&t| self.graph.tasks[t].id.as_str())
                .collect();
            format!("({}): {}", ids.len(), ids.join(", "))
        };
        let completed: Vec<usize> = self
            .readiness
            .tasks_in(Node::Completed)
            .filter(|&t| self.options.selects(&self.graph.tasks[t]))
            .collect();
        if !completed.is_empty() {
            writeln!(out, "Already completed {}", ids(&completed))?;
        }
        let running: Vec<usize> = self.readiness.tasks_in(Node::Running).collect();
        if !running.is_empty() {
            writeln!(out, "Running now {}", ids(&running))?;
        }
        for line in self.gone_lines() {
            writeln!(out, "{line}")?;
        }
        // Planned as if they ended first.
        self.wave = running;
        self.end_wave();
        let mut waves = Vec::new();
        loop {
            self.plan_wave();
            if self.wave.is_empty() {
                break;
            }
            waves.push(self.wave.clone());
            self.end_wave();
        }
        // The waves' lines made on every CPU once all are planned: with
        // 100,000 tasks, a fifth of a second for one.
        let slots: Vec<(usize, usize)> = (waves.iter())
            .flat_map(|wave| wave.iter().copied().enumerate())
            .collect();
        let shown = self.shown();
        let mut lines = parallel::map(&slots, |&(i, t)| {
            let agent = AgentSlot(i + 1);
            format!(
                "  {} {agent}  {}  {}",
                format::padded(&shown.graph.tasks[t].id, 40),
                shown.expectation(t),
                command_line(&shown.started(t, agent))
            )
        })
        .into_iter();
        for (number, wave) in waves.iter().enumerate() {
            if number == 0 {
                writeln!(out, "{ORDER}")?;
            }
            writeln!(out, "Wave {}:", number + 1)?;
            for line in lines.by_ref().take(wave.len()) {
                writeln!(out, "{line}")?;
            }
        }
        for t in self.readiness.tasks_in(Node::AwaitingApproval) {
            let task = &self.graph.tasks[t];
            let what = match task.approval(self.config) {
                Some(Approve::After) => "approval of its result",
                _ => "approval",
            };
            writeln!(out, "  would await {what}: {}", task.id)?;
        }
        // What a rate limit's pause holds waits it out in the run: not
        // stuck. Under a reached budget the run waits for no pause: it
        // starts nothing, and exits 3.
        let behind = match self.budget.reached() {
            true => HashSet::new(),
            false => self.behind_a_pause(),
        };
        let (paused, stuck): (Vec<_>, Vec<_>) = self
            .not_started_tasks()
            .into_iter()
            .partition(|(t, _)| behind.contains(t));
        for (_, line) in &paused {
            writeln!(out, "  would wait for a rate limit's pause: {line}")?;
        }
        for (_, line) in &stuck {
            writeln!(out, "  would not start: {line}")?;
        }
        out.flush()?;
        Ok(if stuck.is_empty() {
            exit::SUCCESS
        } else {
            exit::TASK_FAILED
        })
    }

    /// The tasks a rate limit's pause holds (`find_pauses`), and those
    /// that wait on one of them (and on nothing that failed: those are
    /// blocked).
    fn behind_a_pause(&self) -> HashSet<usize> {
        let mut queue = self.paused.clone();
        let mut behind: HashSet<usize> = queue.iter().copied().collect();
        while let Some(t) = queue.pop() {
            for d in self.graph.waiting_on(t) {
                if self.readiness.node(d).is_waiting() && behind.insert(d) {
                    queue.push(d);
                }
            }
        }
        behind
    }

    /// Selected tasks that have not started, each with why (its line) and
    /// by id: those that wait, and those the next run keeps failed (a
    /// block by hand, a rejection, the final failure of the killed run it
    /// resumes) or blocked by them.
    fn not_started_tasks(&self) -> Vec<(usize, String)> {
        let waits = self.waits();
        let mut lines: Vec<(usize, String)> = (0..self.graph.tasks.len())
            .filter(|&t| self.readiness.node(t).is_waiting())
            .map(|t| (t, waits.reason(t)))
            .collect();
        for t in 0..self.graph.tasks.len() {
            let task = &self.graph.tasks[t];
            if !self.options.selects(task) {
                continue;
            }
            let why = match self.readiness.node(t) {
                Node::Failed => {
                    let error = self.history[t].error.as_deref().unwrap_or("failed");
                    let reset = self.layout.task_cmd("reset", &task.id);
                    format!("failed, and stays so: {error} (`{reset}` runs it again)")
                }
                Node::Blocked => {
                    let failed: Vec<String> = self.graph.deps[t]
                        .iter()
                        .filter_map(|dep| match *dep {
                            Dep::Task(d) => Some(d),
                            Dep::Phase(_) => None,
                        })
                        .filter(|&d| matches!(self.readiness.node(d), Node::Failed | Node::Blocked))
                        .map(|d| format!("{} ({})", self.graph.tasks[d].id, waits.describe(d)))
                        .collect();
                    // What blocked it, when not among its own: a task of a
                    // phase it waits on, or one the run that blocked it
                    // keeps it blocked by (its dependencies changed since).
                    let own = |by: usize| self.graph.deps[t].contains(&Dep::Task(by));
                    match (self.readiness.blocked_by(t), failed.is_empty()) {
                        (Some(by), _) if !own(by) => {
                            format!("blocked by {}", self.graph.tasks[by].id)
                        }
                        (_, false) => format!("blocked: waits on {}", failed.join(", ")),
                        (_, true) => "blocked: a phase it depends on has a failed task".to_owned(),
                    }
                }
                _ => continue,
            };
            lines.push((t, why));
        }
        lines.sort_by(|a, b| self.graph.tasks[a.0].id.cmp(&self.graph.tasks[b.0].id));
        lines
            .into_iter()
            .map(|(t, why)| (t, format!("{}: {why}", self.graph.tasks[t].id)))
            .collect()
    }

    /// Each task recorded as running whose process is gone, as the run
    /// will find it.
    fn gone_lines(&self) -> Vec<String> {
        (self.gone.iter())
            .map(|&(t, how)| gone::line(&self.graph.tasks[t].id, how))
            .collect()
    }

    /// Says so when memory caps how many tasks run at once.
    fn print_memory_note(&self) {
        let to_run: Vec<usize> = (0..self.graph.tasks.len())
            .filter(|&t| self.readiness.node(t).is_waiting())
            .collect();
        if let Some(note) = self.admission.memory_note(self.graph, &to_run) {
            println!("{note}");
        }
    }

    /// Says what the budget leaves, when there is one.
    fn print_budget(&self) {
        if let (Some(usd), Some(left)) = (self.budget.usd, self.budget.left()) {
            println!(
                "Budget: {} of {} spent, {} left",
                format::usd(self.budget.spent),
                format::usd(usd),
                format::usd(left)
            );
        }
    }

    /// On stderr: the plan on stdout stays what a script reads. Also a
    /// task whose file is gone that a run waits for, and a task the run
    /// would refuse to start beside itself (asked here, not
    /// by the other commands that plan): whether it would, so refuse.
    fn print_warnings(&self) -> bool {
        for warning in &self.warnings {
            eprintln!("warning: {warning}");
        }
        // No task of the graph, but waited for by the run as one is.
        let known = |id: &str| self.graph.get(id).is_some();
        for warning in super::unlisted::said(self.layout, known) {
            eprintln!("warning: {warning}");
        }
        let mut unasked = Vec::new();
        let (layout, config, graph) = (self.layout, self.config, self.graph);
        let stray = super::recovery::second_copy(layout, config, graph, self.options, &mut unasked);
        if let Some(stray) = &stray {
            eprintln!("warning: {stray}; until then `orchestrate` refuses to run (exit 2)");
        }
        for warning in &unasked {
            eprintln!("warning: {warning}");
        }
        stray.is_some()
    }

    fn waits(&self) -> Waits<'_> {
        Waits {
            layout: self.layout,
            config: self.config,
            graph: self.graph,
            readiness: &self.readiness,
            admission: &self.admission,
            running: &self.wave,
            planned: &self.wave[self.running_now.min(self.wave.len())..],
            budget: self.budget.reached().then(|| self.budget.reached_message()),
            agents_held: self.spoken_for.as_deref(),
            stopped: None,
            paused: &self.paused,
            retries: &[],
            refused: self.refused,
            removed: None,
        }
    }

    /// Adds to the wave every task the limits let start beside it.
    fn plan_wave(&mut self) {
        self.spoken_for = None;
        if self.budget.reached() {
            // Nothing starts; what waits for a person says so, as in a run.
            for t in self.readiness.all_ready() {
                if self.waits_for_approval(t, Approve::Before) {
                    self.readiness.await_approval(self.graph, t);
                }
            }
            return;
        }
        loop {
            // As a run holds its agents while the budget left is spoken for.
            let held = self.budget.spoken_for(self.graph, self.config, &self.wave);
            self.admission.hold_agents(held.is_some());
            let none = &|_, _| false;
            let picked = (self.admission).pick(self.graph, &self.readiness, &self.wave, &[], none);
            let Some(t) = picked else {
                self.spoken_for = held;
                break;
            };
            if self.waits_for_approval(t, Approve::Before) {
                self.readiness.await_approval(self.graph, t);
                continue;
            }
            self.readiness.start(self.graph, t);
            self.wave.push(t);
        }
        self.admission.hold_agents(false);
    }

    /// The wave's tasks end, completed; what depends on one whose result
    /// awaits approval (`approve: after`) waits, as in a run.
    fn end_wave(&mut self) {
        let files = Disk::new(self.layout, self.config, self.graph);
        for t in std::mem::take(&mut self.wave) {
            if self.waits_for_approval(t, Approve::After) {
                self.readiness.await_approval_of_result(self.graph, t);
            } else {
                self.readiness.complete(self.graph, t, &files);
            }
        }
    }

    /// What shows the tasks it would start (shared by the threads that
    /// make a dry run's lines: the plan itself is not).
    fn shown(&self) -> Shown<'_> {
        Shown {
            layout: self.layout,
            config: self.config,
            graph: self.graph,
            history: &self.history,
            order: &self.order,
            executor: self.options.executor,
        }
    }
}

/// How a plan shows a task it would start: its expected duration and the
/// command of its next attempt.
struct Shown<'p> {
    layout: &'p Layout,
    config: &'p Config,
    graph: &'p Graph,
    history: &'p [Past],
    order: &'p Order,
    executor: ExecutorKind,
}

impl Shown<'_> {
    /// `~2m 10s, path 1h 05m`: what task `t` is expected to take, and its
    /// remaining path; `, priority 5` when it has one (its own, or what
    /// waits on it lends it), which comes first.
    fn expectation(&self, t: usize) -> String {
        let priority = match self.order.priority[t] {
            0 => String::new(),
            p => format!(", priority {p}"),
        };
        format!(
            "~{}, path {}{priority}",
            format::seconds(self.order.expected[t]),
            format::seconds(self.order.path[t])
        )
    }

    /// How the next attempt of task `t` would start.
    fn start(&self, t: usize, agent: AgentSlot) -> attempt::Start<'_> {
        let past = &self.history[t];
        attempt::Start {
            agent,
            attempt: past.attempt.saturating_add(1),
            previous: past.previous.as_deref(),
            worktree: None,
            workdir: None,
            budget_left: None,
            prompt: None,
        }
    }

    /// The command the next attempt of task `t` would run.
    fn command(&self, t: usize, agent: AgentSlot) -> Vec<String> {
        let start = self.start(t, agent);
        attempt::command(self.layout, self.config, &self.graph.tasks[t], &start)
    }

    /// What starting the next attempt of task `t` would run: its command
    /// locally (no environment made for it: a dry run shows 100,000),
    /// `sbatch` wrapping it on Slurm.
    fn started(&self, t: usize, agent: AgentSlot) -> Vec<String> {
        let (config, task) = (self.config, &self.graph.tasks[t]);
        match self.executor {
            ExecutorKind::Local => self.command(t, agent),
            ExecutorKind::Slurm => {
                let launch = attempt::launch(self.layout, config, task, &self.start(t, agent));
                slurm::sbatch_args(&config.slurm, &launch, &Limits::of(config, task))
            }
        }
    }
}

/// A task's argv as the plans show it: as a shell would need it typed,
/// what a terminal would act on written out (a script's line breaks and
/// tabs kept: it reads as written).
fn command_line(argv: &[String]) -> String {
    escaped(&shell::shell_words(argv), &['\n', '\t']).into_owned()
}
