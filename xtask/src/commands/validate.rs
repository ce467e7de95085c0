//! `validate`: checks the definitions (as `orchestrate` does before it
//! launches anything) and the outputs of completed tasks, recording what it
//! finds in their status.

use anyhow::Result;

use crate::git::worktrees::Worktrees;
use crate::model::definitions::{self, Definitions, Runs};
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::run::notify::{self, Told};
use crate::state::events::Event;
use crate::state::lock;
use crate::state::status::{self, State};
use crate::ui::format::counted;

pub fn run(layout: &Layout, ids: &[String]) -> Result<i32> {
    let every = |_: &Task| true;
    let runs = Runs {
        tasks: &every,
        executor: None,
        worktrees_usable: Worktrees::usable,
        jobs: None,
        none_needed: false,
    };
    let defs = definitions::load_to_run(layout, &runs)?;
    let chosen: Vec<usize> = if ids.is_empty() {
        (0..defs.graph.tasks.len()).collect()
    } else {
        ids.iter().map(|id| defs.task(id)).collect::<Result<_>>()?
    };
    for warning in notify::missing_programs(layout, &defs.config.notify) {
        eprintln!("warning: {warning}");
    }
    // The run going on owns the statuses: what it finds is said, not
    // recorded (the run would go on taking the task for completed, its
    // summary saying so against its status).
    let run = lock::run_going_on(layout);
    let mut wrong = 0;
    let mut checked = 0;
    let mut unreadable = 0;
    let mut events = None;
    for &t in &chosen {
        let task = &defs.graph.tasks[t];
        let mut status = match status::read(layout, &task.id) {
            Ok(Some(status)) if status.status == State::Completed => status,
            Ok(Some(status)) if !ids.is_empty() => {
                println!("skip   {}: {}, not completed", task.id, status.status);
                continue;
            }
            // Named, it is said as the others are: no status is pending.
            Ok(None) if !ids.is_empty() => {
                println!("skip   {}: pending, not completed", task.id);
                continue;
            }
            Err(problem) => {
                eprintln!("warning: {problem}");
                unreadable += 1;
                continue;
            }
            _ => continue,
        };
        checked += 1;
        // Outputs of a completed task were fresh when it completed; now
        // they only have to be there.
        let missing = crate::state::outputs::problems(layout, task, None, false);
        if missing.is_empty() {
            if !status.outputs_validated && run.is_none() {
                status.outputs_validated = true;
                status::write_unlocked(layout, &status)?;
            }
            println!("ok     {}", task.id);
            continue;
        }
        wrong += 1;
        if let Some(pid) = &run {
            println!(
                "FAILED {}: {} (not recorded: the run going on, pid {}, owns the statuses; validate again once it has ended)",
                task.id,
                missing.join("; "),
                pid.trim()
            );
            continue;
        }
        status.status = State::Failed;
        status.outputs_validated = false;
        status.error = Some(format!(
            "outputs gone after completion: {}",
            missing.join("; ")
        ));
        status::write_unlocked(layout, &status)?;
        // Opened at the first change: a check that changes nothing makes
        // no workspace. No lock: a run that has ended and waits for its
        // notifiers would not tell this change, so they hear of it from
        // here.
        let log = match events.take() {
            Some(log) => log,
            None => Told::open(layout, &defs.config.notify, true)?,
        };
        let log = events.insert(log);
        log.append(Event {
            error: status.error.clone(),
            ..Event::change(&task.id, "completed", "failed")
        })?;
        println!("FAILED {}: {}", task.id, missing.join("; "));
    }
    let unreadable_said = match unreadable {
        0 => String::new(),
        n => format!("; {} unreadable", counted(n, "status file", "status files")),
    };
    let obstacles = worktree_obstacles(layout, &defs, &chosen);
    for line in &obstacles {
        println!("FAILS  {line}");
    }
    let obstacles_said = match obstacles.len() {
        0 => String::new(),
        1 => "; 1 task would fail as it starts".to_owned(),
        n => format!("; {n} tasks would fail as they start"),
    };
    println!(
        "{} valid; {} checked, {wrong} with problems{unreadable_said}{obstacles_said}",
        counted(
            defs.graph.tasks.len(),
            "task definition",
            "task definitions"
        ),
        counted(checked, "completed task", "completed tasks"),
    );
    if let Some(told) = events {
        told.finish();
    }
    Ok(if wrong + unreadable + obstacles.len() == 0 {
        crate::exit::SUCCESS
    } else {
        crate::exit::TASK_FAILED
    })
}

/// The worktree tasks not completed nor running that would fail as they start, each
/// with why: a branch or folder of the user's where theirs goes
/// (`Worktrees::check_tasks`). What keeps every worktree from being made
/// is the definitions' check, said before.
pub fn worktree_obstacles(layout: &Layout, defs: &Definitions, chosen: &[usize]) -> Vec<String> {
    let to_start: Vec<&Task> = chosen
        .iter()
        .map(|&t| &defs.graph.tasks[t])
        .filter(|t| t.in_worktree(&defs.config))
        // Not one recorded running: its worktree is made, or being made
        // (under `worktrees/.new/`), by the run that started it; a run
        // after a kill takes up what that one left.
        .filter(|t| {
            !matches!(
                status::state_of(layout, &t.id),
                Some(State::Completed | State::Running)
            )
        })
        .collect();
    if to_start.is_empty() {
        return Vec::new();
    }
    let Ok(worktrees) = Worktrees::check(layout, &defs.config.worktrees) else {
        return Vec::new();
    };
    let ids: Vec<&str> = to_start.iter().map(|t| t.id.as_str()).collect();
    (worktrees.check_tasks(&ids).into_iter())
        .map(|(id, e)| format!("{id}: {e:#}"))
        .collect()
}
