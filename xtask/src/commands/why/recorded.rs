//! What `why` says of a task from its status: one account per state.

use std::time::SystemTime;

use super::{merge_held_by_person, Unfinished, Why, FAILURES_SHOWN, UNNAMED_POOL};
use crate::run::admission::Pause;
use crate::run::plan::Plan;
use crate::run::unseen::EndedUnseen;
use crate::state::approvals::{self, Decision};
use crate::state::status::{self, State, Status};
use crate::state::{lock, outputs, runs};
use crate::ui::format;

impl Why<'_> {
    /// What its status `s` says; `unseen`: its attempt, recorded running,
    /// ended unseen.
    pub(super) fn recorded(&mut self, t: usize, s: &Status, unseen: Option<&EndedUnseen>) {
        let layout = self.layout;
        let id = &s.task_id;
        let paused = self.pause(t, s);
        if s.merging {
            println!("{id} has ended; its work waits in the merge queue");
            if let Some(line) = merge_held_by_person(layout, self.defs) {
                println!("  {line}");
            }
        }
        let agent = s.agent_id.map_or("-".to_owned(), |a| a.to_string());
        match s.status {
            State::Completed => self.completed(t, s, &agent),
            // Said above: its agent has ended.
            State::Running if s.merging => {}
            State::Running => self.running(s, &agent, unseen),
            State::Failed if paused.is_some() => self.paused(s, paused.as_ref()),
            // Its pause over: pending, as `progress` has it.
            State::Failed if s.paused_until().is_some() => self.pause_over(t, s),
            State::Failed => self.failed(s),
            State::AwaitingApproval => self.awaiting_approval(t, s, &agent),
            State::Blocked => self.blocked(t, s),
        }
    }

    /// A completed task: its attempt, its approval, whether it is stale.
    fn completed(&self, t: usize, s: &Status, agent: &str) {
        let layout = self.layout;
        let id = &s.task_id;
        println!(
            "{id} is completed (attempt {}, {agent}, {}s, outputs validated: {})",
            s.attempt,
            s.duration_seconds.unwrap_or(0.0),
            s.outputs_validated
        );
        if let Some(by) = &s.approved_by {
            let note = s
                .approval_note
                .as_deref()
                .map_or(String::new(), |n| format!(": {n}"));
            println!(
                "  approved by {by} at {}{note}",
                s.approved_at.as_deref().unwrap_or("?")
            );
        }
        if let Some(changed) = status::stale_because(layout, Some(&self.defs.graph.tasks[t]), s) {
            println!(
                "  but it is stale: {changed} changed since it started; `{}` runs it again, and what depends on it",
                layout.cmd("orchestrate --rerun-stale")
            );
        }
    }

    /// A running task, or one whose attempt ended unseen (`unseen`): it
    /// ran until its end, as `progress` says.
    fn running(&self, s: &Status, agent: &str, unseen: Option<&EndedUnseen>) {
        let layout = self.layout;
        let id = &s.task_id;
        let end = unseen.and_then(|unseen| unseen.end.as_ref());
        // Ended unseen: it ran until its end, as `progress` says.
        let until = (unseen.and_then(EndedUnseen::ended_at)).unwrap_or_else(SystemTime::now);
        let elapsed = s
            .started()
            .and_then(|t| until.duration_since(t).ok())
            .unwrap_or_default();
        // Gone, it ran (its status says running until a run
        // records its end, as `progress` says), for as long as it
        // did: until its end, else at most until now.
        let gone = unseen.is_some();
        let (runs, for_) = match (gone, end) {
            (false, _) => ("is running", "for"),
            (true, Some(_)) => ("ran", "for"),
            (true, None) => ("ran", "for at most"),
        };
        match (&s.job_id, s.queued) {
            (Some(job), true) if !gone => println!(
                "{id} is queued in Slurm as job {job} (attempt {}, {agent}) for {}: `squeue -j {job}` says what it waits for",
                s.attempt,
                format::duration(elapsed)
            ),
            (job, _) => println!(
                "{id} {runs} on {agent}{} (attempt {}) {for_} {}",
                job.as_ref().map_or(String::new(), |job| format!(" as Slurm job {job}")),
                s.attempt,
                format::duration(elapsed)
            ),
        }
        let (orchestrate, monitor) = (layout.cmd("orchestrate"), layout.cmd("monitor"));
        if let Some(end) = end {
            println!(
                "  and ended at {} ({}), with no orchestrator to see it: the next `{}` or `{}` records its end (its status says running until then)",
                end.ended_at_shown(),
                end.how(),
                orchestrate,
                monitor
            );
        } else if gone {
            println!(
                "  and its process is gone: the next `{}` or `{}` records how it ended (its status says running until then)",
                orchestrate, monitor
            );
        }
    }

    /// A task a rate limit paused, until `paused`.
    fn paused(&self, s: &Status, pause: Option<&Pause>) {
        let id = &s.task_id;
        let until = pause.map_or("?".to_owned(), |pause| format::clock(pause.until));
        let pool = pause.map_or(UNNAMED_POOL, |pause| pause.pool.as_str());
        println!("{id} is paused: rate limited until {until} (pool {pool})");
        say_limit_hit(s);
        println!("  not counted against its retries; no task of pool {pool} starts before then");
        // Nor after, while the budget is reached.
        let budget = Plan::seen_budget(self.defs);
        if budget.reached() {
            println!(
                "  {}: it does not start again, its pause over or not, until budget.usd is raised",
                budget.reached_message()
            );
        }
    }

    /// A task whose pause for a rate limit is over: pending, as `progress`
    /// has it, and what holds it now.
    fn pause_over(&mut self, t: usize, s: &Status) {
        let id = &s.task_id;
        let ended = s.paused_until().map_or("?".to_owned(), format::clock);
        let pool = s.pool.as_deref().unwrap_or(UNNAMED_POOL);
        println!("{id} is pending: its pause for a rate limit ended at {ended} (pool {pool})");
        say_limit_hit(s);
        println!("  not counted against its retries");
        self.what_holds(t);
    }

    /// A failed task, with its next step (`reset`).
    fn failed(&self, s: &Status) {
        let id = &s.task_id;
        println!(
            "{id} failed: {}",
            s.error.as_deref().unwrap_or("no error recorded")
        );
        // The exit code, unless the error already says it.
        let error = s.error.as_deref().unwrap_or("");
        let code = (s.exit_code.filter(|_| !error.starts_with("exit code")))
            .map_or(String::new(), |code| format!("exit code {code}, "));
        // A task blocked by hand after a `reset` ran on no agent.
        let on = s.agent_id.map_or(String::new(), |a| format!(", {a}"));
        println!("  {code}attempt {}{on}", s.attempt);
        println!("  {}", self.next_step(s));
    }

    /// A task that awaits approval, to start or of its result.
    fn awaiting_approval(&self, t: usize, s: &Status, agent: &str) {
        let layout = self.layout;
        let id = &s.task_id;
        let approve = layout.task_cmd("approve", id);
        let reject = layout.task_cmd("reject --reason TEXT", id);
        let task = &self.defs.graph.tasks[t];
        let missing = match s.completed_at {
            Some(_) => outputs::problems(layout, task, None, false),
            None => Vec::new(),
        };
        if !missing.is_empty() {
            println!(
                "{id} completed (attempt {}, {agent}), and its result awaited approval, but {}: nothing is left to approve; the next run runs it again",
                s.attempt,
                missing.join("; ")
            );
            return;
        }
        if s.completed_at.is_some() {
            println!(
                "{id} completed (attempt {}, {agent}) and awaits approval of its result: what depends on it waits",
                s.attempt
            );
        } else {
            println!("{id} awaits approval before it starts");
        }
        if let Some(revoked) = approvals::revoked(layout, task) {
            println!("  {}", revoked.said);
        }
        let budget = Plan::seen_budget(self.defs);
        if budget.reached() && s.completed_at.is_none() {
            println!(
                "  {}: approved, it starts once budget.usd is raised",
                budget.reached_message()
            );
        }
        // Decided already, for a run to act on: no one is to
        // decide again (given for its file as edited after the run
        // going on read it, or as a run ended).
        if let Some(decided) = approvals::read(layout, task) {
            let verb = match decided.decision {
                Decision::Approved => "approved",
                Decision::Rejected => "rejected",
            };
            let orchestrate = layout.cmd("orchestrate");
            let read_before =
                runs::last(layout).is_some_and(|run| run.started_before_change_of(&task.file));
            let who = match lock::run_going_on(layout) {
                Some(pid) if !read_before => {
                    format!("the run going on{} acts on it", lock::shown_pid(&pid))
                }
                _ => format!("the next `{orchestrate}` acts on it"),
            };
            println!("  {verb} by {} at {}: {who}", decided.by, decided.at);
        } else {
            println!("  `{approve}` lets it go on (`--by NAME --note TEXT` are recorded); `{reject}` fails it and blocks what depends on it");
        }
    }

    /// A blocked task: by what failed upstream, or recorded so by a run.
    fn blocked(&mut self, t: usize, s: &Status) {
        let layout = self.layout;
        let id = &s.task_id;
        let causes = self.failed_upstream(t);
        let graph = &self.defs.graph;
        let names: Vec<&str> = causes.iter().map(|&c| graph.tasks[c].id.as_str()).collect();
        let unfinished = self.unfinished_run(s);
        // The run that blocked it, unfinished, keeps it blocked by
        // what it names, whatever fails upstream now.
        let kept = unfinished.is_some()
            && (s.blocked_by.as_deref()).is_some_and(|by| !names.contains(&by));
        let shown = match (names.is_empty() || kept, &s.blocked_by) {
            (false, _) => {
                let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
                format::first_few(&names, FAILURES_SHOWN)
            }
            // What blocked it has not failed since (run again, or
            // reset), or is no longer waited on.
            (true, Some(by)) => {
                let orchestrate = layout.cmd("orchestrate");
                let next = match unfinished {
                    Some(Unfinished::Stopped) => format!(
                        "the next `{orchestrate}` resumes the run that blocked it, which keeps it blocked; `{}` runs it again",
                        layout.task_cmd("reset", id)
                    ),
                    Some(Unfinished::Live) => format!(
                        "the run going on keeps it blocked; the next `{orchestrate}` takes it up again"
                    ),
                    // A later run, going on, took it up at its start
                    // (a `monitor` starts nothing).
                    None if lock::run_starting_tasks(layout) => {
                        "the run going on took it up again, unless its --phase or --task leave it out".to_owned()
                    }
                    None => format!("the next `{orchestrate}` takes it up again"),
                };
                let since = match graph.get(by).and_then(|f| self.status(f)) {
                    Some(f) if f.paused_until().is_some() => {
                        "which a rate limit paused since (it waits for that pause)"
                    }
                    Some(f) if f.status == State::Failed => "which it no longer waits on",
                    _ => "which has not failed since",
                };
                println!("{id} is recorded blocked by {by}, {since}: {next}");
                // Taken up again, it may still wait (a gate's
                // artifact, an input, a dependency to run).
                if unfinished.is_none() {
                    self.what_holds(t);
                }
                return;
            }
            // Written by hand, or by a tool: nothing upstream
            // failed, so nothing holds it.
            (true, None) => {
                let reset = layout.task_cmd("reset", id);
                println!("{id} is recorded blocked, by nothing that failed upstream (its status names none): `{reset}` clears it");
                return;
            }
        };
        println!("{id} is blocked by {shown}");
        // A phase of thousands failed: the first few, each with
        // its error; `progress --tasks` lists them all.
        for &c in causes.iter().take(FAILURES_SHOWN) {
            let cause = self.status(c);
            let error = cause.as_ref().and_then(|s| s.error.clone());
            let error = error.unwrap_or_else(|| "-".into());
            // No run retries it: said, with what does.
            let held = match cause.as_ref().and_then(|s| self.held(s)) {
                Some(how) => format!(
                    " ({how}: it stays failed until `{}`)",
                    layout.task_cmd("reset", &graph.tasks[c].id)
                ),
                None => String::new(),
            };
            println!("  {} failed: {error}{held}", graph.tasks[c].id);
        }
        let every = layout.cmd("progress --tasks");
        if let Some(more) =
            crate::ui::format::more_listed(causes.len(), FAILURES_SHOWN, "failed", &every)
        {
            println!("  {more}");
        }
        let whys: Vec<String> = names
            .iter()
            .map(|n| format!("`{}`", layout.task_cmd("why", n)))
            .collect();
        println!(
            "  it runs once {} completed ({})",
            if names.len() > 1 {
                "they have"
            } else {
                "that has"
            },
            format::first_few(&whys, FAILURES_SHOWN)
        );
    }
}

/// The limit a rate-limited task's attempt hit, as its status keeps it.
fn say_limit_hit(s: &Status) {
    let error = s.error.as_deref().unwrap_or("-");
    println!("  its attempt {} hit the limit: {error}", s.attempt);
}
