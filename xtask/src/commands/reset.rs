//! `reset <task|phase>... [--downstream]`: clears tasks' statuses, and those
//! of the tasks they blocked (with `--downstream`, of every task downstream,
//! completed ones too), so that they run again; an approval or rejection
//! given them is forgotten. Under the workspace lock.

use std::collections::BTreeSet;

use anyhow::Result;

use crate::commands::block::refuse_if_running;
use crate::model::definitions;
use crate::model::layout::Layout;
use crate::run::notify::Told;
use crate::state::events::Event;
use crate::state::status::{self, State, Status};
use crate::state::{approvals, lock, records, resets};

pub fn run(layout: &Layout, names: &[String], downstream: bool) -> Result<i32> {
    let defs = definitions::load(layout)?;
    let graph = &defs.graph;
    let mut chosen = BTreeSet::new();
    for name in names {
        chosen.extend(defs.tasks_named(name)?);
    }
    if downstream {
        for t in chosen.clone() {
            chosen.extend(graph.downstream(t, |_| true));
        }
    }
    let held = lock::acquire(layout)?;
    // No orchestrator runs (it holds the lock): the notifiers hear of the
    // changes from here.
    let mut events = Told::open(layout, &defs.config.notify, true)?;
    for &t in &chosen {
        refuse_if_running(layout, &defs.config, &graph.tasks[t])?;
    }
    for &t in &chosen {
        let id = &graph.tasks[t].id;
        if status::state_of(layout, id).is_some() || !downstream {
            clear(layout, &mut events, id)?;
            println!("reset  {id}");
        }
    }
    let ids: Vec<&str> = chosen.iter().map(|&t| graph.tasks[t].id.as_str()).collect();
    let mut warnings = Vec::new();
    for (t, task) in graph.tasks.iter().enumerate() {
        if chosen.contains(&t) {
            continue;
        }
        let Some(status) = status::read_or_warn(layout, &task.id, &mut warnings) else {
            continue;
        };
        let by = status.blocked_by.clone().unwrap_or_default();
        if status.status != State::Blocked || !ids.contains(&by.as_str()) {
            continue;
        }
        // Another failure upstream (a rejection, say) blocks it still: it
        // stays blocked, by that one.
        let reset_now = |d: usize| chosen.contains(&d);
        let still = status::failed_upstream(graph, t, |d| {
            (!reset_now(d)).then(|| status::read(layout, &graph.tasks[d].id).ok().flatten())?
        });
        match still.first() {
            Some(&other) => {
                let other = &graph.tasks[other].id;
                status::write(
                    layout,
                    &Status {
                        blocked_by: Some(other.clone()),
                        ..status
                    },
                )?;
                println!("kept   {} blocked: {other} failed too", task.id);
            }
            None => {
                clear(layout, &mut events, &task.id)?;
                println!("reset  {} (was blocked by {by})", task.id);
            }
        }
    }
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    // Done: a run may start while the notifiers finish.
    drop(held);
    events.finish();
    Ok(crate::exit::SUCCESS)
}

fn clear(layout: &Layout, events: &mut Told, id: &str) -> Result<()> {
    let before = status::read(layout, id).ok().flatten();
    // Its failure (a rejection's reason too) is told to its next attempt,
    // as its status would tell it (`failure_to_tell`: never a rate limit,
    // and a blocked status's kept one, or one awaiting approval to start
    // again), and its latest attempt numbers the
    // next; one kept by an earlier reset stays while it has not run since
    // (a blocked status of a task reset before it ran again numbers no
    // attempt of its own), and goes once it ran.
    match &before {
        Some(s)
            if matches!(
                s.status,
                State::Failed | State::Blocked | State::AwaitingApproval
            ) =>
        {
            match s.failure_to_tell() {
                Some(failure) => {
                    let latest = s.attempt.max(failure.attempt);
                    resets::keep(layout, id, latest, Some(&failure))?;
                }
                None if s.attempt > 0 => resets::keep(layout, id, s.attempt, None)?,
                None => {}
            }
        }
        Some(s) if s.attempt > 0 => resets::keep(layout, id, s.attempt, None)?,
        _ => {}
    }
    status::remove(layout, id)?;
    records::remove(layout, id)?;
    // A decision was on what ran before: the task is decided on afresh.
    approvals::remove(layout, id);
    if let Some(before) = before {
        events.append(Event::change(id, before.status.name(), "pending"))?;
    }
    Ok(())
}
