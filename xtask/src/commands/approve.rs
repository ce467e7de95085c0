//! `approve <task|phase> [--by NAME] [--note TEXT]` and `reject <task>
//! --reason TEXT`: a person's decision on tasks that wait for one
//! (`approve: before | after`). The decision goes to
//! `workspace/approvals/`, where a running orchestrator picks it up; with
//! no orchestrator running, the statuses are updated here, under the
//! workspace lock.

use std::time::SystemTime;

use anyhow::{bail, Result};

use crate::model::config::Approve;
use crate::model::definitions::{self, Definitions};
use crate::model::layout::Layout;
use crate::run::notify::Told;
use crate::run::plan::Plan;
use crate::run::Options;
use crate::state::approvals::{self, Approval, Decision};
use crate::state::events::Event;
use crate::state::lock::{self, Held};
use crate::state::outputs;
use crate::state::resets;
use crate::state::runs;
use crate::state::status::{self, State, Status};

/// What a person decided, and who.
pub struct Decided<'a> {
    pub decision: Decision,
    pub by: Option<&'a str>,
    /// The note of an approval, the reason of a rejection.
    pub note: Option<&'a str>,
}

pub fn run(layout: &Layout, name: &str, decided: &Decided) -> Result<i32> {
    let defs = definitions::load(layout)?;
    let named = defs.tasks_named(name)?;
    let single = named.len() == 1;
    let by_id = defs.graph.get(&layout.typed_id(name)).is_some();
    let mut chosen = Vec::new();
    for t in named {
        match decidable(layout, &defs, t, decided.decision, by_id) {
            Ok(()) => chosen.push(t),
            Err(why) if single => bail!("{why}"),
            Err(why) => println!("skipped  {why}"),
        }
    }
    if chosen.is_empty() {
        bail!("nothing in {name} awaits this decision: every task was skipped (above)");
    }
    let by = decided
        .by
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .or_else(account_name)
        .unwrap_or_else(|| "someone".into());
    let held = lock::acquire_unless_a_run(layout)?;
    // What this command applies itself (no orchestrator runs) reaches the
    // notifiers from here, as a run's changes do. Beside a run's own
    // lines, from this process: each event is one write.
    let ours = matches!(held, Held::Ours(_));
    let mut changes = Told::open(layout, &defs.config.notify, ours)?;
    // What the running orchestrator, if any, selects; one that has ended
    // its run is closing (waiting for its notifiers): it decides nothing
    // more.
    let last = runs::last(layout);
    let ending = match (&held, &last) {
        (Held::By(pid), Some(run)) => run.ended_by.is_some_and(|by| pid.trim() == by.to_string()),
        _ => false,
    };
    let run = last.filter(|run| !run.finished);
    for &t in &chosen {
        let task = &defs.graph.tasks[t];
        let after = task.approval(&defs.config) == Some(Approve::After);
        let seen = approvals::seen(layout, &defs.config, &defs.graph, t, after);
        // An approval that holds, replaced by this one: said (its note
        // and name are gone from the record).
        let approves = decided.decision == Decision::Approved;
        let earlier =
            approvals::read(layout, task).filter(|a| approves && a.decision == Decision::Approved);
        let approval = Approval {
            decision: decided.decision,
            by: by.clone(),
            at: status::timestamp(SystemTime::now()),
            note: decided.note.map(str::to_owned),
            seen,
        };
        approvals::write(layout, &task.id, &approval)?;
        if let Some(earlier) = earlier {
            eprintln!(
                "note: this approval replaces the one {} gave at {}",
                earlier.by, earlier.at
            );
        }
        // A result approved once what it was built from changed is stale
        // as soon as it counts: said now.
        let recorded = status::read(layout, &task.id).ok().flatten();
        let built_from = recorded
            .as_ref()
            .filter(|_| after)
            .and_then(|s| s.fingerprint.as_ref());
        if let Some(changed) = built_from
            .and_then(|built| {
                crate::state::fingerprint::changed(layout, built, Some(task), &task.id)
            })
            .filter(|_| approves)
        {
            eprintln!(
                "warning: {changed} changed since {} ran: approved, its result is stale at once, and `{}` runs it again",
                task.id,
                layout.cmd("orchestrate --rerun-stale")
            );
        }
        // Given ahead of time, it cannot cover an input not made yet: the
        // person is told now, not when the run asks again.
        let absent = (approval.seen.iter())
            .filter(|(_, mark)| mark.is_absent() || (mark.is_listing() && mark.size == 0));
        for (path, _) in absent.filter(|_| approves) {
            eprintln!(
                "warning: {}'s input {path} is not made yet (or names no file yet): once it is, this approval no longer holds, and the task waits for one given with it there",
                task.id
            );
        }
        let verb = match decided.decision {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        };
        changes.append(Event {
            task: Some(task.id.clone()),
            by: Some(by.clone()),
            note: decided.note.map(str::to_owned),
            ..Event::run(verb)
        })?;
        match &held {
            Held::By(pid) => {
                let who = lock::shown_pid(pid);
                let selected = run
                    .as_ref()
                    .is_none_or(|run| run.selects(&task.id, task.phase()));
                match (lock::command_of(pid), selected) {
                    // Another command kept the workspace past the wait.
                    (Some(command), _) if !lock::runs_tasks(pid) => println!(
                        "{verb} {}: recorded; `{command}`{who} holds the workspace: the next `{}` acts on it",
                        task.id,
                        layout.cmd("orchestrate")
                    ),
                    _ if ending => println!(
                        "{verb} {}: recorded; the run{who} is ending (it waits for its notifiers): the next `{}` acts on it",
                        task.id,
                        layout.cmd("orchestrate")
                    ),
                    // It reads each task file once: an approval of the
                    // file as edited since is not of what it would run.
                    (_, true)
                        if approves
                            && (run.as_ref()).is_some_and(|r| r.started_before_change_of(&task.file)) =>
                    {
                        println!(
                            "{verb} {}: recorded; {} changed after the running orchestrator{who} started: if it read it before, it leaves this approval to the next `{}`, and says so",
                            task.id,
                            layout.display(&task.file),
                            layout.cmd("orchestrate")
                        )
                    }
                    (_, true) => println!(
                        "{verb} {}: the running orchestrator{who} acts on it",
                        task.id
                    ),
                    (_, false) => println!(
                        "{verb} {}: the running orchestrator{who} did not select it; the next `{}` that does acts on it",
                        task.id,
                        layout.cmd("orchestrate")
                    ),
                }
            }
            Held::Ours(_) => {
                // Before what it blocks, which `apply` says.
                println!("{verb} {}", task.id);
                apply(layout, &defs, t, &approval, &mut changes)?;
            }
        }
    }
    // Decided and applied: a run may start while the notifiers finish.
    drop(held);
    changes.finish();
    Ok(crate::exit::SUCCESS)
}

/// Whether task `t` can take `decision` now; else why not. `named`: the
/// task was named by its id, not by its phase (only such a task is
/// approved to start ahead of time: a phase's are those that await).
fn decidable(
    layout: &Layout,
    defs: &Definitions,
    t: usize,
    decision: Decision,
    named: bool,
) -> Result<(), String> {
    let task = &defs.graph.tasks[t];
    let id = &task.id;
    let Some(kind) = task.approval(&defs.config) else {
        return Err(format!(
            "{id} does not wait for approval (`approve: before` or `after` in its frontmatter or its phase's settings)"
        ));
    };
    let recorded = status::read(layout, id).ok().flatten();
    let state = recorded.as_ref().map(|s| s.status);
    let ran = recorded.as_ref().is_some_and(|s| s.completed_at.is_some());
    // What was to be approved is gone: approved, it would count as
    // completed with outputs that are not there.
    let missing = match (kind, state, decision) {
        (Approve::After, Some(State::AwaitingApproval), Decision::Approved) => {
            outputs::problems(layout, task, None, false)
        }
        _ => Vec::new(),
    };
    match (kind, state, decision) {
        _ if !missing.is_empty() => Err(format!(
            "{id}'s result cannot be approved: {}; the next `{}` runs it again",
            missing.join("; "),
            layout.cmd("orchestrate")
        )),
        (_, Some(State::AwaitingApproval), _) => Ok(()),
        // A task may be approved to start before it is ready.
        (Approve::Before, None, Decision::Approved) if named => Ok(()),
        (Approve::Before, None, Decision::Approved) => Err(format!(
            "{id} does not await approval yet: approve it by its id to approve it ahead"
        )),
        (Approve::After, None | Some(State::Running), _) => Err(format!(
            "{id} has not completed: its result can be approved once it has"
        )),
        (_, Some(state), _) if state == State::Completed && !ran => {
            Err(format!("{id} is completed"))
        }
        (_, _, _) => Err(format!(
            "{id} does not await approval: it is {}",
            status::shown_state(recorded.as_ref())
        )),
    }
}

/// With no orchestrator running: the decision on task `t` recorded in its
/// status (and, for a rejection, its dependents blocked), as a run would.
fn apply(
    layout: &Layout,
    defs: &Definitions,
    t: usize,
    approval: &Approval,
    log: &mut Told,
) -> Result<()> {
    let graph = &defs.graph;
    let id = &graph.tasks[t].id;
    let recorded = status::read(layout, id).ok().flatten();
    let before = status::shown_state(recorded.as_ref());
    // Planned before the status changes, so that what the rejection blocks
    // is still waiting in the plan.
    let options = Options::everything(defs.config.executor);
    let mut plan = Plan::new(defs, &options);
    let mut recorded = recorded.unwrap_or_else(|| Status::new(id, State::Failed));
    match approval.decision {
        // Its result approved: completed, with who approved it.
        Decision::Approved if recorded.completed_at.is_some() => {
            approvals::record(&mut recorded, approval);
            recorded.status = State::Completed;
            status::write(layout, &recorded)?;
            log.append(Event::change(id, before, "completed").of_attempt(&recorded))?;
        }
        // Approved to start: pending again (or still), the approval in
        // `workspace/approvals/` for the run that starts it.
        Decision::Approved => {
            if before == "awaiting_approval" {
                // Its latest attempt and the failure before the wait go
                // to its next attempt, as after a reset: the status that
                // said them is removed.
                let failure = recorded.failure_to_tell();
                let latest = failure.as_ref().map_or(0, |f| f.attempt);
                let latest = recorded.attempt.max(latest);
                // The approval is recorded already: a resets.json that
                // cannot be read (kept as it is) costs only this record.
                let kept = match latest {
                    0 => Ok(()),
                    _ => resets::keep(layout, id, latest, failure.as_ref()),
                };
                if let Err(e) = kept {
                    eprintln!(
                        "warning: {e:#}: {id}'s next attempt is not told what failed before, and is numbered by its logs"
                    );
                }
                status::remove(layout, id)?;
                log.append(Event::change(id, before, "pending"))?;
            }
        }
        Decision::Rejected => {
            let reason = approval.note.as_deref().unwrap_or("no reason given");
            let error = format!("rejected by {}: {reason}", approval.by);
            recorded.status = State::Failed;
            recorded.error = Some(error.clone());
            // The rejection is the failure to tell, not the one before it.
            recorded.previous = None;
            recorded.held = true;
            recorded.completed_at = Some(status::timestamp(SystemTime::now()));
            status::write(layout, &recorded)?;
            log.append(Event {
                error: Some(error),
                ..Event::change(id, before, "failed").of_attempt(&recorded)
            })?;
            let blocked = plan.hold(t);
            let ids = blocked
                .iter()
                .map(|&d| (graph.tasks[d].id.as_str(), plan.attempt(d), None));
            let froms = status::write_blocked(layout, ids, id, None, true)?;
            for (d, from) in blocked.into_iter().zip(froms) {
                if let Some(from) = from {
                    log.append(Event::blocked(&graph.tasks[d].id, from, id))?;
                }
                println!("  blocked  {} (depends on it)", graph.tasks[d].id);
            }
        }
    }
    Ok(())
}

/// The account this runs as (`id -un`), where `$USER` is not set (cron, a
/// service, `env -i`).
fn account_name() -> Option<String> {
    let sh = xshell::Shell::new().ok()?;
    let name = xshell::cmd!(sh, "id -un")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?;
    Some(name.trim().to_owned()).filter(|n| !n.is_empty())
}
