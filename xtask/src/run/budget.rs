//! The budget (`budget.usd`): what the work in this workspace may cost,
//! counted in `workspace/ledger.jsonl` over every attempt of every run.
//! Once what finished attempts cost reaches it, nothing new starts; the
//! tasks running finish, and the run ends with exit code 3.

use std::collections::{HashMap, HashSet};

use super::unseen::{EndedUnseen, SlurmEnds};
use super::verdict::{self, Verdict};
use super::{Run, Stop};
use crate::agent::result::{Report, MOST_COST_USD};
use crate::model::config::{Config, ResultFormat};
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::state::events::Event;
use crate::state::status::{self, Ending, Failure, Status};
use crate::state::{ledger, logs, records};
use crate::ui::format;
use crate::ui::printer::Tone;

pub struct Budget {
    /// `None`: no budget.
    pub usd: Option<f64>,
    /// What the ledger holds.
    pub spent: f64,
    /// The attempts the ledger holds, each counted once.
    counted: HashSet<ledger::Attempt>,
    /// What this run's attempts cost, once one reported a cost.
    pub this_run: Option<f64>,
    /// This run's agent attempts that ended with no cost counted (none
    /// reported, or one refused): what `this_run` leaves out.
    pub uncounted: usize,
    /// Why attempts that reported no cost did not, each warned about once
    /// (an unreadable result, an old CLI's cost field: each its own fix).
    warned: Vec<&'static str>,
    /// Tasks whose attempt's cost the ledger could not take: their final
    /// status is not written, so that the next run takes their end again
    /// from its exit record and counts it then (see `count_cost`).
    pub unrecorded: HashSet<usize>,
    /// The ledger's lines that do not parse, by number.
    skipped: Vec<usize>,
    /// The task whose cost reached the budget, until its end is told: the
    /// budget is said after it, not before the line with that cost.
    reached_by: Option<usize>,
    /// The run has said that the budget is reached (once is enough: a
    /// resumed run's recovered ends may reach it before the run starts).
    told_reached: bool,
    /// What each task's latest counted attempt cost (but one a rate limit
    /// refused): what its next one is expected to cost.
    latest: HashMap<String, f64>,
    /// Every counted attempt's cost (but those a rate limit refused),
    /// sorted: their median is what an attempt of a task with none counted
    /// is expected to cost.
    sorted: Vec<f64>,
    /// Whether the run said that the running agents are expected to spend
    /// what is left, since a start last went ahead (said once a hold).
    pub said_spoken_for: bool,
    /// For a view (`seen`): the tasks recorded as running whose attempt
    /// ended unseen, its cost counted: expected to cost nothing more.
    ended_unseen: HashSet<String>,
}

impl Budget {
    pub fn load(layout: &Layout, usd: Option<f64>) -> Budget {
        let ledger = ledger::read(layout);
        let mut sorted: Vec<f64> = ledger.costs.iter().map(|(_, cost)| *cost).collect();
        sorted.sort_by(f64::total_cmp);
        Budget {
            usd,
            spent: ledger.spent,
            counted: ledger.counted,
            this_run: None,
            uncounted: 0,
            warned: Vec::new(),
            unrecorded: HashSet::new(),
            skipped: ledger.skipped,
            reached_by: None,
            told_reached: false,
            latest: ledger.costs.into_iter().collect(),
            sorted,
            said_spoken_for: false,
            ended_unseen: HashSet::new(),
        }
    }

    /// What a view counts (`progress`, `next`, the dry run, `why`): also
    /// what the attempts of the tasks `running` (recorded as running) that
    /// ended unseen (`run::unseen`: while no orchestrator ran) cost, as
    /// their agents printed it, which the next run counts as it takes their
    /// ends, before it starts anything: a view that left them out said
    /// money was left that was spent, and planned starts that run would
    /// not make.
    pub fn seen(
        layout: &Layout,
        config: &Config,
        graph: &Graph,
        running: impl IntoIterator<Item = usize>,
    ) -> Budget {
        let budget = Budget::load(layout, config.agents.budget_usd);
        if budget.usd.is_none() {
            return budget;
        }
        let read = |t: usize| {
            let task = &graph.tasks[t];
            let status = task
                .is_agent(config)
                .then(|| status::read(layout, &task.id));
            Some((task, status?.ok()??))
        };
        let statuses: Vec<_> = running.into_iter().filter_map(read).collect();
        let slurm = SlurmEnds::look(layout, statuses.iter().map(|(_, s)| s));
        let unseen: Vec<(Status, Option<Report>)> = (statuses.into_iter())
            .filter_map(|(task, s)| {
                let ended = EndedUnseen::read(layout, config, task, &s, &slurm)?;
                Some((s, ended.report))
            })
            .collect();
        let unseen = unseen.iter().map(|(s, report)| (s, report.as_ref()));
        budget.with_unseen(layout, config, graph, unseen)
    }

    /// `seen`, given the attempts that ended unseen, each its status with
    /// what its agent reported (`EndedUnseen::report`), read once by a
    /// view that shows it too.
    pub fn with_unseen<'a>(
        mut self,
        layout: &Layout,
        config: &Config,
        graph: &Graph,
        unseen: impl IntoIterator<Item = (&'a Status, Option<&'a Report>)>,
    ) -> Budget {
        if self.usd.is_none() {
            return self;
        }
        for (status, report) in unseen {
            self.add_unseen(status, |_| report.and_then(|r| r.cost_usd));
        }
        // Those whose task file is gone that a killed run left (see
        // `run::unlisted`): the run that records their end counts what
        // their agents printed.
        let known = |id: &str| graph.get(id).is_some();
        let every_status = crate::state::runs::unfinished(layout).is_some();
        for (id, status) in records::running_unknown(layout, known, every_status) {
            self.add_unseen(&status, |told| {
                let report = verdict::gone_report(layout, config, &id, status.attempt, told);
                report?.cost_usd
            });
        }
        self.this_run = None;
        self
    }

    /// Counts, for a view, the attempt that running `status` names, as
    /// `cost` reads it (given the failure it was told of), unless counted
    /// already: ended unseen, it costs nothing more.
    fn add_unseen(&mut self, status: &Status, cost: impl FnOnce(Option<Failure>) -> Option<f64>) {
        let id = &status.task_id;
        let attempt = (id.clone(), status.attempt, status.attempt_since_ns);
        if self.counted.contains(&attempt) {
            return;
        }
        if let Some(cost) = cost(status.previous.clone()) {
            self.counted.insert(attempt);
            self.add(cost);
            self.expect(id, cost);
            self.ended_unseen.insert(id.clone());
        }
    }

    /// Counts an attempt that cost `cost`.
    fn add(&mut self, cost: f64) {
        self.spent += cost;
        *self.this_run.get_or_insert(0.0) += cost;
    }

    /// Takes what an attempt of task `id` cost as what its task's next
    /// attempts, and others', are expected to cost.
    fn expect(&mut self, id: &str, cost: f64) {
        self.latest.insert(id.to_owned(), cost);
        let at = self.sorted.partition_point(|&c| c < cost);
        self.sorted.insert(at, cost);
    }

    /// What an attempt of task `id` is expected to cost: what its latest
    /// counted attempt cost, else the median of all counted attempts';
    /// nothing before one is counted.
    fn expected_cost(&self, id: &str) -> f64 {
        let median = || match self.sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => self.sorted[n / 2],
            n => (self.sorted[n / 2 - 1] + self.sorted[n / 2]) / 2.0,
        };
        self.latest.get(id).copied().unwrap_or_else(median)
    }

    /// Why no more agents start though the budget is not reached: what is
    /// left of it is no more than the agents among the `running` tasks
    /// are expected to cost, so that a next one would likely take the
    /// work past it (five agents started with $0.04 left spend five
    /// agents' worth). With no agent running, one starts while anything
    /// is left, as before costs were known.
    pub fn spoken_for(&self, graph: &Graph, config: &Config, running: &[usize]) -> Option<String> {
        let left = self.left().filter(|&left| left > 0.0)?;
        let (mut agents, mut expected) = (0, 0.0);
        for task in running.iter().map(|&r| &graph.tasks[r]) {
            // Ended, its cost counted (a view's `seen`): the run that takes
            // its end has it running no more.
            if task.is_agent(config) && !self.ended_unseen.contains(&task.id) {
                agents += 1;
                expected += self.expected_cost(&task.id);
            }
        }
        (agents > 0 && expected > 0.0 && left <= expected).then(|| {
            let them = match agents {
                1 => "the running agent is".to_owned(),
                n => format!("the {n} running agents are"),
            };
            format!(
                "{} left of budget.usd, no more than {them} expected to cost ({}, from what attempts cost): the next agent starts once one ends",
                format::usd(left),
                format::usd(expected)
            )
        })
    }

    /// What a budget counts short of: the ledger's lines that do not parse
    /// and no other line counts (one cut by a kill is taken again by the
    /// run after it, and is not said; one mangled by hand is lost to the
    /// count).
    pub fn skipped_warning(&self, layout: &Layout) -> Option<String> {
        if self.usd.is_none() || self.skipped.is_empty() {
            return None;
        }
        let shown: Vec<String> = self.skipped.iter().take(5).map(|n| n.to_string()).collect();
        let (lines, them) = match (self.skipped.len(), shown.as_slice()) {
            (1, [one]) => (format!("line {one} does not parse"), "it"),
            (n, _) if n > 5 => (
                format!("lines {} and {} more do not parse", shown.join(", "), n - 5),
                "them",
            ),
            (_, [first @ .., last]) => (
                format!("lines {} and {last} do not parse", first.join(", ")),
                "them",
            ),
            _ => (String::new(), "them"),
        };
        Some(format!(
            "{}: {lines}: the budget does not count {them} ({} spent by the others); mend {them}, or the budget may let more be spent than budget.usd",
            layout.display(&layout.ledger_file()),
            format::usd(self.spent)
        ))
    }

    /// Whether what was spent reached it. A sum of costs is taken as
    /// written (`format::cost_sum`), without float noise: ten attempts of
    /// $0.10 add up to 0.9999999999999999, which a budget of $1 is
    /// reached by.
    pub fn reached(&self) -> bool {
        self.usd
            .is_some_and(|usd| format::cost_sum(self.spent) >= usd)
    }

    /// What is left of it, when there is one (none, not float noise, once
    /// it is reached).
    pub fn left(&self) -> Option<f64> {
        self.usd
            .map(|usd| format::cost_sum((usd - format::cost_sum(self.spent)).max(0.0)))
    }

    /// `budget of $50.00 reached ($51.20 spent)`.
    pub fn reached_message(&self) -> String {
        format!(
            "budget of {} reached ({} spent)",
            format::usd(self.usd.unwrap_or(0.0)),
            format::usd(self.spent)
        )
    }
}

impl Run<'_> {
    /// What the run starts with: a budget counting short, one reached.
    pub(super) fn say_budget(&mut self, mode: super::Mode) {
        if let Some(warning) = self.budget.skipped_warning(self.layout) {
            self.printer
                .line(Tone::Warn, &format!("warning: {warning}"));
        }
        if self.budget.reached() && mode == super::Mode::Launch && !self.budget.told_reached {
            let budget = self.budget.reached_message();
            (self.printer).note(Tone::Bad, &format!("{budget}: nothing new starts"));
        }
    }

    /// Under a budget, says that task `t`'s attempt, whose final status is
    /// `status`, cost what is not counted: once per run for an attempt that
    /// ended by itself and reported no cost (how costs are read is wrong
    /// for every such attempt); each time an agent's attempt was stopped
    /// before it could report one (a timeout, a question, its memory
    /// limit, a stop), since it spent what no one knows. One refused
    /// before it started, or lost, spent nothing known either way; one
    /// stopped before its agent started (`verdict`: as its worktree was
    /// made, in its setup) spent nothing.
    fn warn_uncounted(&mut self, t: usize, status: &Status, verdict: &Verdict) {
        if self.budget.usd.is_none() || !verdict.agent_started {
            return;
        }
        let task = &self.graph.tasks[t];
        let id = &task.id;
        let warning = match status.ending {
            Some(Ending::Exited) if task.is_agent(self.config) => {
                let why = no_cost_because(task.result_format(self.config), self.config, status);
                if self.budget.warned.contains(&why) {
                    return;
                }
                self.budget.warned.push(why);
                format!("warning: budget.usd is set, but {id} reported no cost ({why}): the budget does not count it")
            }
            Some(
                Ending::Timeout
                | Ending::IdleTimeout
                | Ending::WaitingForInput
                | Ending::OutOfMemory
                | Ending::Interrupted,
            ) if task.is_agent(self.config) => format!(
                "warning: budget.usd is set, but {id} (attempt {}) was stopped before its agent reported a cost ({}): what it spent is not counted",
                status.attempt,
                status.error.as_deref().unwrap_or("stopped")
            ),
            Some(Ending::Lost) if task.is_agent(self.config) => format!(
                "warning: budget.usd is set, but {id} (attempt {}) was lost before its agent's cost could be read ({}): what it spent is not counted",
                status.attempt,
                status.error.as_deref().unwrap_or("lost")
            ),
            _ => return,
        };
        self.printer.line(Tone::Warn, &warning);
    }

    /// Counts what task `t`'s attempt cost, as its final `status` says;
    /// one a rate limit refused (`verdict`) is not what its task is
    /// expected to cost: it spent nothing (or little) on the work.
    pub(super) fn count_cost(&mut self, t: usize, status: &Status, verdict: &Verdict) {
        let cost = status.agent.as_ref().and_then(|a| a.cost_usd);
        if cost.is_none() && verdict.agent_started && self.graph.tasks[t].is_agent(self.config) {
            self.budget.uncounted += 1;
        }
        if let Some(refused) = status
            .agent
            .as_ref()
            .and_then(|a| a.cost_refused.as_deref())
        {
            self.say_cost_refused(t, refused);
            return;
        }
        let Some(cost) = cost else {
            self.warn_uncounted(t, status, verdict);
            return;
        };
        match self.add_cost(status, cost, verdict.rate_limit.is_some()) {
            Ok(true) => self.budget.reached_by = Some(t),
            Ok(false) => {}
            // Its end is taken again by the next run (see `unrecorded`).
            Err(()) => {
                self.budget.unrecorded.insert(t);
            }
        }
    }

    /// Counts what the attempt of a task whose file is gone, whose final
    /// status is `status`, cost, if its agent said (see `run::unlisted`),
    /// saying so when that reaches the budget. `Err` when the ledger
    /// could not take it: the run stops, its status is not to be written,
    /// so that the next run takes its end again and counts it then.
    pub(super) fn count_gone_cost(&mut self, status: &Status) -> Result<(), ()> {
        let Some(cost) = status.agent.as_ref().and_then(|a| a.cost_usd) else {
            return Ok(());
        };
        if self.add_cost(status, cost, false)? {
            self.tell_budget_reached();
        }
        Ok(())
    }

    /// Records in the ledger, and counts, that `status`'s attempt cost
    /// `cost`, unless counted already (its end taken again after a crash):
    /// whether that reached the budget. A `rate_limited` attempt's is not
    /// what its task is expected to cost. `Err` when the ledger could not
    /// take it: said, and the run stops, as for a status it cannot write.
    fn add_cost(&mut self, status: &Status, cost: f64, rate_limited: bool) -> Result<bool, ()> {
        let id = &status.task_id;
        let attempt = (id.clone(), status.attempt, status.attempt_since_ns);
        if self.budget.counted.contains(&attempt) {
            return Ok(false);
        }
        if let Err(e) = ledger::record(self.layout, &attempt, cost, rate_limited) {
            // A cost only this run knows would be lost, and the budget
            // would count short ever after.
            let cost = format::usd(cost);
            let said = format!(
                "{e:#}: what {id} cost ({cost}) is not recorded; its end is taken again, and counted, by the next run"
            );
            // A run stopping already (a signal) keeps its reason: said now.
            if self.stop.is_some() {
                self.printer.line(Tone::Bad, &format!("error: {said}"));
            }
            self.stop_for(Stop::Fatal(said));
            return Err(());
        }
        self.budget.counted.insert(attempt);
        let was_reached = self.budget.reached();
        self.budget.add(cost);
        if !rate_limited {
            self.budget.expect(id, cost);
        }
        Ok(self.budget.reached() && !was_reached)
    }

    /// Says, in the output and task `t`'s log, that its agent reported a
    /// cost no attempt has (`refused`, as it said it), which nothing counts.
    fn say_cost_refused(&self, t: usize, refused: &str) {
        let id = &self.graph.tasks[t].id;
        let said = format!(
            "{id}'s agent reported a cost of {refused} USD, refused (not a cost of one attempt: 0 to {}): the ledger and the budget leave it out",
            format::usd(MOST_COST_USD)
        );
        logs::append_line(&self.layout.log_file(id), &format!("xtask: {said}"));
        self.printer.line(Tone::Warn, &format!("warning: {said}"));
    }

    /// Holds the agents back from the picks while what the budget leaves
    /// is spoken for by the `running` ones (`Budget::spoken_for`); returns
    /// why, when it does.
    pub(super) fn hold_agents_for_the_budget(&mut self, running: &[usize]) -> Option<String> {
        let why = self.budget.spoken_for(&self.graph, self.config, running);
        self.admission.hold_agents(why.is_some());
        if why.is_none() {
            self.budget.said_spoken_for = false;
        }
        why
    }

    /// Says `why` the budget holds the agents back, once a hold, when an
    /// agent would start but for it (`merging`: as the pick had it).
    pub(super) fn say_agents_held(&mut self, why: &str, running: &[usize], merging: &[usize]) {
        if self.budget.said_spoken_for {
            return;
        }
        self.admission.hold_agents(false);
        let none = &|_, _| false;
        let would = (self.admission).pick(&self.graph, &self.readiness, running, merging, none);
        if would.is_some_and(|t| self.graph.tasks[t].is_agent(self.config)) {
            self.budget.said_spoken_for = true;
            self.printer.note(Tone::Warn, why);
        }
    }

    /// Says the budget is reached, once the end of the task whose cost
    /// reached it (`t`) is told.
    pub(super) fn say_budget_reached_by(&mut self, t: usize) {
        if self.budget.reached_by != Some(t) {
            return;
        }
        self.budget.reached_by = None;
        self.tell_budget_reached();
    }

    /// Says the budget is reached, in its output and its events.
    fn tell_budget_reached(&mut self) {
        self.budget.told_reached = true;
        let running = match self.running.is_empty() {
            true => "",
            false => "; the running tasks finish",
        };
        self.printer.note(
            Tone::Bad,
            &format!(
                "{}: nothing new starts{running}",
                self.budget.reached_message()
            ),
        );
        self.event(Event {
            budget_usd: self.budget.usd,
            spent_usd: Some(format::cost_sum(self.budget.spent)),
            ..Event::run("budget_reached")
        });
    }
}

/// Why an attempt that ended by itself, read as `format`, has no cost.
fn no_cost_because(format: ResultFormat, config: &Config, status: &Status) -> &'static str {
    // A session alone was found in an output whose result was not.
    let result = status.agent.as_ref().filter(|r| r.is_result());
    match (format, result) {
        (ResultFormat::None, _) => "its result is not read: agent.result is none",
        (_, None) => "its result was unreadable",
        (ResultFormat::CodexJsonl, Some(_)) if config.agents.prices.is_none() => {
            "codex-jsonl counts tokens, not dollars: agent.prices turns them into a cost"
        }
        (ResultFormat::ClaudeJson, Some(_)) => {
            "its result has no total_cost_usd that is a number, 0 or more (Claude Code releases older than the field named it otherwise: update the CLI)"
        }
        (ResultFormat::CodexJsonl, Some(_)) => "its result has no token counts",
    }
}
