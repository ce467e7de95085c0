//! `why <task|phase>`: one screen that says why a task is where it is, and
//! what to do about it; for a phase, a line per task.

use std::collections::HashMap;

use anyhow::Result;

use crate::git::merge;
use crate::git::repo::{branches_gone, Repo};
use crate::model::config::{Approve, Config, UNNAMED_POOL};
use crate::model::definitions::{self, Definitions};
use crate::model::graph::Dep;
use crate::model::layout::Layout;
use crate::model::task::{phase_key, Task};
use crate::run::admission::Pause;
use crate::run::plan::Plan;
use crate::run::readiness::Node;
use crate::run::unseen::{EndedUnseen, SlurmEnds};
use crate::run::{self, Options};
use crate::state::approvals::{self, Decision};
use crate::state::status::{self, State, Status};
use crate::state::{lock, logs, outputs, runs};
use crate::ui::format;
use crate::ui::progress_text::rate_limited;

/// How many of the failures that block a task `why` names, each with its
/// error: a phase of thousands that failed made a line of thousands.
const FAILURES_SHOWN: usize = 5;

mod agent;
mod recorded;
use agent::{describe_report, print_message};

const LOG_LINES: usize = 10;

pub fn run(layout: &Layout, name: &str) -> Result<i32> {
    let defs = definitions::load(layout)?;
    let mut why = Why {
        layout,
        defs: &defs,
        statuses: HashMap::new(),
        warnings: Vec::new(),
    };
    let is_task = defs.graph.get(&layout.typed_id(name)).is_some();
    match defs.phase(name) {
        Ok(phase) if !is_task => why.phase(&phase),
        _ => {
            // Neither: a phase near it is suggested as `reset` and the
            // others that take either do.
            let t = defs
                .task(name)
                .or_else(|e| defs.tasks_named(name).and(Err(e)))?;
            why.task(t);
        }
    }
    for warning in &why.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(crate::exit::SUCCESS)
}

struct Why<'a> {
    layout: &'a Layout,
    defs: &'a Definitions,
    /// Statuses read so far, by task.
    statuses: HashMap<usize, Option<Status>>,
    warnings: Vec<String>,
}

impl Why<'_> {
    fn status(&mut self, t: usize) -> Option<Status> {
        if !self.statuses.contains_key(&t) {
            let id = &self.defs.graph.tasks[t].id;
            let status = status::read_or_warn(self.layout, id, &mut self.warnings);
            self.statuses.insert(t, status);
        }
        self.statuses[&t].clone()
    }

    /// A line per task of the phase.
    fn phase(&mut self, name: &str) {
        let graph = &self.defs.graph;
        let p = graph.phase(name).expect("a phase of the graph");
        let tasks = format::counted(graph.phases[p].tasks.len(), "task", "tasks");
        println!("phase {name}: {tasks}");
        let tasks = graph.phases[p].tasks.clone();
        let unfinished = runs::unfinished(self.layout);
        // A task whose pool another task's pause holds is paused.
        let options = Options::of_the_run_going_on(self.layout, self.defs.config.executor);
        let plan = Plan::new(self.defs, &options);
        for t in tasks {
            let status = self.status(t);
            // As `progress` has it: blocked while a failed task blocks it.
            let blocker = (status.as_ref())
                .filter(|s| s.status == State::Blocked)
                .map(|s| self.shown_blocker(t, s, unfinished.as_deref()));
            let pending = blocker.as_ref().is_some_and(Option::is_none);
            let detail = (status.as_ref().filter(|_| !pending))
                .and_then(|s| {
                    s.error.clone().or(blocker
                        .flatten()
                        .flatten()
                        .map(|b| format!("blocked by {b}")))
                })
                .unwrap_or_default();
            let graph = &self.defs.graph;
            let state = match pending {
                true => "pending",
                false => {
                    status::shown_state_now(self.layout, Some(&graph.tasks[t]), status.as_ref())
                }
            };
            // As `progress` has it: paused while a pause holds it, its own
            // or its pool's (another task's limit), as it says it.
            let (state, detail) = match (state, plan.pause(t)) {
                ("pending" | "paused", Some(pause)) => (
                    "paused",
                    rate_limited(&format::clock(pause.until), &pause.pool),
                ),
                _ => (state, detail),
            };
            let line = format!("  {state:<10} {}  {detail}", graph.tasks[t].id);
            println!("{}", line.trim_end());
        }
        println!("`{}` explains one of them", self.layout.cmd("why TASK"));
    }

    fn task(&mut self, t: usize) {
        match self.status(t) {
            None => self.pending(t),
            Some(s) => {
                let task = &self.defs.graph.tasks[t];
                let slurm = SlurmEnds::look(self.layout, [&s]);
                let unseen = EndedUnseen::read(self.layout, &self.defs.config, task, &s, &slurm);
                self.recorded(t, &s, unseen.as_ref());
                if let Some(branch) = &s.branch {
                    let base = s.base_commit.as_deref().unwrap_or("?");
                    let removed = !branches_gone(self.layout, [branch.as_str()]).is_empty();
                    let gone = if removed { ": removed since" } else { "" };
                    println!(
                        "  branch {branch}, from {}{gone}",
                        &base[..base.len().min(12)]
                    );
                }
                if let Some(commit) = &s.merged_commit {
                    println!("  merged into the integration branch as {commit}");
                }
                // Ended unseen, what it printed is read as the next run
                // will record it (the budget counts its cost already).
                let unseen = (unseen.as_ref())
                    .filter(|_| s.agent.is_none())
                    .and_then(|unseen| unseen.report.as_ref());
                let recorded = match unseen {
                    Some(_) => " (the next run records it)",
                    None => "",
                };
                if let Some(agent) = s.agent.as_ref().or(unseen) {
                    let stopped = s.ending.filter(|e| e.is_a_stop());
                    let said = describe_report(agent, stopped);
                    println!("  agent reported{recorded}: {said}");
                    if let Some(refused) = agent.refused_in_full() {
                        println!("  {refused}");
                    }
                    if let Some(said) = &agent.final_message {
                        print_message(said);
                    }
                }
                let prompt = self.layout.prompt_file(&s.task_id, s.attempt);
                if s.attempt > 0 && prompt.exists() {
                    let prompt = self.layout.display(&prompt);
                    println!("  its prompt (attempt {}): {prompt}", s.attempt);
                }
                let log = self.layout.log_file(&s.task_id);
                // A task blocked before it ever ran may have the empty log
                // made ready for it: it has no log of its own (as `logs`
                // says).
                let never_ran = s.attempt == 0 && logs::tail(&log, 1).is_empty();
                if log.exists() && !never_ran {
                    // A task waiting to start, or blocked before it started,
                    // has not run since: the log is an earlier attempt's.
                    let waits = s.status == State::AwaitingApproval && s.completed_at.is_none();
                    let blocked = s.status == State::Blocked && s.started_at.is_none();
                    let earlier = match waits || blocked {
                        true => format!(
                            " (attempt {}, which ran before)",
                            // Its status keeps the latest attempt's
                            // number; a quiet one's empty log counts for
                            // none on disk.
                            s.attempt
                                .max(logs::latest_attempt_on_disk(self.layout, &s.task_id))
                        ),
                        false => String::new(),
                    };
                    println!("  last lines of {}{earlier}:", self.layout.display(&log));
                    let lines = logs::tail(&log, LOG_LINES);
                    if lines.is_empty() {
                        println!("    (empty)");
                    }
                    for line in lines {
                        println!("    {line}");
                    }
                }
            }
        }
    }

    /// The rate limit's pause that holds task `t` of status `s`, until the
    /// latest of its own pause and its pool's (another task's limit, which
    /// may end later, or go on once its own is over, the pool halved
    /// meanwhile: the run starts it after that), as `next` reads it
    /// (`Plan::pause`); no plan made for a status that names no pause.
    fn pause(&self, t: usize, s: &Status) -> Option<Pause> {
        s.paused_until()?;
        let options = Options::of_the_run_going_on(self.layout, self.defs.config.executor);
        Plan::new(self.defs, &options).pause(t).cloned()
    }

    /// Whether the run that wrote `s` has not finished: it goes on (`live`),
    /// or it was stopped before it ended, and the next run resumes it,
    /// keeping its final failures and blocks.
    fn unfinished_run(&self, s: &Status) -> Option<Unfinished> {
        runs::last(self.layout)
            .filter(|run| !run.finished && s.run_id.as_deref() == Some(run.id.as_str()))?;
        Some(match lock::run_going_on(self.layout) {
            Some(_) => Unfinished::Live,
            None => Unfinished::Stopped,
        })
    }

    /// How a failed task is held failed, which no run retries: rejected,
    /// or blocked by hand.
    fn held(&self, s: &Status) -> Option<&'static str> {
        if !s.held {
            return None;
        }
        let graph = &self.defs.graph;
        let rejected = (graph.get(&s.task_id))
            .and_then(|t| approvals::read(self.layout, &graph.tasks[t]))
            .is_some_and(|a| a.decision == Decision::Rejected);
        Some(if rejected {
            "rejected"
        } else {
            "blocked by hand"
        })
    }

    /// What the next run (or the one going on) does with a failed task,
    /// and how to change it.
    fn next_step(&self, s: &Status) -> String {
        let reset = self.layout.task_cmd("reset", &s.task_id);
        let orchestrate = self.layout.cmd("orchestrate");
        if let Some(how) = self.held(s) {
            return format!(
                "it was {how}: it stays failed, and what depends on it blocked, until `{reset}`"
            );
        }
        let budget = Plan::seen_budget(self.defs);
        if budget.reached() {
            return format!(
                "{}: nothing starts, its retry neither, until budget.usd is raised; `{reset}` clears it now",
                budget.reached_message()
            );
        }
        let Some(unfinished) = self.unfinished_run(s) else {
            return format!("the next `{orchestrate}` retries it; `{reset}` clears it now");
        };
        let graph = &self.defs.graph;
        let retries = graph.get(&s.task_id).map(|t| graph.tasks[t].retries);
        let owed = retries.filter(|&r| s.retry().taken_up(r, true));
        match (unfinished, owed) {
            (Unfinished::Live, Some(retries)) => format!(
                "the run going on tries it again (try {} of {})",
                s.tries + 1,
                retries + 1
            ),
            (Unfinished::Live, None) => format!(
                "the run going on keeps it failed; once it ends, the next `{orchestrate}` retries it, or `{reset}` clears it"
            ),
            (Unfinished::Stopped, Some(retries)) => format!(
                "its run was stopped before it ended: the next `{orchestrate}` resumes that run and tries it again (try {} of {}); `{reset}` clears it now",
                s.tries + 1,
                retries + 1
            ),
            (Unfinished::Stopped, None) => format!(
                "its run was stopped before it ended: the next `{orchestrate}` resumes that run, which keeps it failed; `{reset}` runs it again"
            ),
        }
    }

    /// What the task `t`, recorded blocked (`s`), shows blocked by, or
    /// `None`: pending (see `status::shown_blocker`).
    fn shown_blocker(
        &mut self,
        t: usize,
        s: &Status,
        unfinished_run: Option<&str>,
    ) -> Option<Option<String>> {
        let kept = status::kept_blocked(s, unfinished_run);
        let upstream = if kept {
            Vec::new()
        } else {
            self.failed_upstream(t)
        };
        let graph = &self.defs.graph;
        let names: Vec<&str> = upstream
            .iter()
            .map(|&f| graph.tasks[f].id.as_str())
            .collect();
        // The one its status names, if among them.
        let recorded = s.blocked_by.as_deref().filter(|r| names.contains(r));
        let now = recorded.or(names.first().copied());
        let shown = status::shown_blocker(kept, s.blocked_by.as_deref(), now);
        shown.map(|by| by.map(str::to_owned))
    }

    /// The failed tasks that `t` waits on (see `status::failed_upstream`).
    fn failed_upstream(&mut self, t: usize) -> Vec<usize> {
        let graph = &self.defs.graph;
        status::failed_upstream(graph, t, |d| self.status(d))
    }

    /// What a task without a status waits on, as the next run would see it.
    fn pending(&mut self, t: usize) {
        let task = &self.defs.graph.tasks[t];
        println!("{} is pending (it has not run yet, or was reset)", task.id);
        if let Some(decided) = decided_in_advance(self.layout, &self.defs.config, task) {
            println!("  {decided}");
        }
        self.what_holds(t);
    }

    /// What a task still to start waits on, or that nothing holds it.
    fn what_holds(&mut self, t: usize) {
        let (layout, defs) = (self.layout, self.defs);
        let graph = &defs.graph;
        let options = Options::of_the_run_going_on(layout, defs.config.executor);
        let plan = Plan::new(defs, &options);
        let readiness = plan.readiness();
        let mut unmet = Vec::new();
        for dep in &graph.deps[t] {
            match *dep {
                Dep::Task(d) if readiness.node(d) != Node::Completed => {
                    let id = &graph.tasks[d].id;
                    // `waits on p/a (running)`, as `next` names one.
                    unmet.push(match self.status(d) {
                        Some(s) if s.status == State::AwaitingApproval => {
                            format!("{id} (awaiting approval)")
                        }
                        Some(s) => format!(
                            "{id} ({}{})",
                            match plan.is_paused(d) {
                                true => "paused",
                                false => status::shown_state(Some(&s)),
                            },
                            s.error.map(|e| format!(": {e}")).unwrap_or_default()
                        ),
                        None => format!("{id} (not run yet)"),
                    });
                }
                Dep::Task(_) => {}
                Dep::Phase(p) => {
                    let name = &graph.phases[p].name;
                    let open: Vec<&str> = graph
                        .gate_members(p)
                        .filter(|&m| readiness.node(m) != Node::Completed)
                        .map(|m| graph.tasks[m].id.as_str())
                        .collect();
                    if !open.is_empty() {
                        let shown: Vec<&str> = open.iter().take(5).copied().collect();
                        let more = if open.len() > shown.len() {
                            ", ..."
                        } else {
                            ""
                        };
                        unmet.push(format!(
                            "phase {name}: {} of it or earlier phases not completed ({}{more})",
                            format::counted(open.len(), "task", "tasks"),
                            shown.join(", "),
                        ));
                    }
                    // A phase is complete with the earlier ones.
                    for q in graph.phases_through(p) {
                        let name = &graph.phases[q].name;
                        let requires = &defs.config.phase(phase_key(name)).requires;
                        for artifact in outputs::missing_artifacts(layout, requires) {
                            unmet.push(format!(
                                "phase {name}: its gate needs workspace/outputs/{artifact}, which does not exist"
                            ));
                        }
                    }
                }
            }
        }
        let task = &graph.tasks[t];
        let missing: Vec<&String> = task
            .inputs
            .iter()
            .filter(|input| !outputs::input_exists(layout, input))
            .collect();
        // A running task whose `writes` may overlap: this one waits for it.
        for (other, o) in graph.tasks.iter().enumerate() {
            if other != t
                && task.writes_overlap(o)
                && self
                    .status(other)
                    .is_some_and(|s| s.status == State::Running)
            {
                unmet.push(format!(
                    "{} to end (running): their `writes` may overlap",
                    o.id
                ));
            }
        }
        for line in &unmet {
            println!("  waits on {line}");
        }
        for input in &missing {
            println!("  needs input workspace/outputs/{input}, which does not exist");
        }
        if !unmet.is_empty() || !missing.is_empty() {
            return;
        }
        // Ready: what holds it still is a person, or the budget.
        let budget = Plan::seen_budget(defs);
        if budget.reached() {
            println!("  waits on the budget: {}", budget.reached_message());
        } else if run::approvals::waits_to_start(layout, &defs.config, task) {
            let approve = layout.task_cmd("approve", &task.id);
            match approvals::revoked(layout, task) {
                Some(revoked) => {
                    println!("  awaits approval to start: {} (`{approve}`)", revoked.said)
                }
                None => println!("  awaits approval to start (`{approve}`)"),
            }
        } else if let Some(pid) = lock::run_going_on(layout) {
            let by = lock::shown_pid(&pid);
            let options = Options::of_the_run_going_on(layout, defs.config.executor);
            let orchestrate = layout.cmd("orchestrate");
            if !options.selects(task) {
                println!(
                    "  nothing of its own; a run is going on{by}, which did not select it: the next `{orchestrate}` after it starts it"
                );
                return;
            }
            match Plan::new(defs, &options).held_back(t) {
                // What `next` says of it: the limits, a pool, a write overlap.
                Some(held) => println!("  {held}; the run going on{by} starts it then"),
                None => println!(
                    "  nothing of its own: it is ready; the run going on{by} starts it now"
                ),
            }
        } else {
            // No run going on: `options` selects everything.
            let refused =
                run::second_copy(layout, &defs.config, graph, &options, &mut self.warnings);
            let orchestrate = layout.cmd("orchestrate");
            let paused = plan.pool_paused_until(t);
            match (refused, paused) {
                (Some(stray), _) => println!(
                    "  nothing of its own: it is ready, but `{orchestrate}` refuses to run now: {stray}"
                ),
                // Another task's limit: the pool starts nothing before.
                (None, Some(until)) => println!(
                    "  its pool's pause: rate limited until {} (pool {}); the next `{orchestrate}` starts it then",
                    format::clock(until),
                    task.counts_in_pool(&defs.config).unwrap_or(UNNAMED_POOL)
                ),
                (None, None) => println!("  nothing: it starts on the next `{orchestrate}`"),
            }
        }
    }
}

/// The approval a person gave task `task`, which waits for one before it
/// starts, before it was ready (`approve` takes one in advance): it starts
/// without waiting.
fn decided_in_advance(layout: &Layout, config: &Config, task: &Task) -> Option<String> {
    if task.approval(config) != Some(Approve::Before) {
        return None;
    }
    let approval = approvals::read(layout, task)?;
    if approval.decision != Decision::Approved {
        return None;
    }
    let note = (approval.note.as_deref()).map_or(String::new(), |n| format!(": {n}"));
    Some(format!(
        "approved in advance by {} at {}{note}: it starts without waiting for approval once ready",
        approval.by, approval.at
    ))
}

/// A run that has not finished.
#[derive(Clone, Copy)]
enum Unfinished {
    /// It goes on: it holds the workspace lock.
    Live,
    /// It was stopped before it ended: the next run resumes it.
    Stopped,
}

/// What holds the merge queue when a person's work (a merge or rebase of
/// their own in progress, changes not committed) is in the integration
/// worktree: the run waits for it (see `git::merge`), and says so once, in
/// its own output only.
fn merge_held_by_person(layout: &Layout, defs: &Definitions) -> Option<String> {
    let dir = layout.integration_worktree();
    let integration = &defs.config.worktrees.integration;
    let what = merge::persons_work(&Repo::open(layout).ok()?, &dir, integration).ok()??;
    Some(merge::held_by_person(&dir, &what))
}
