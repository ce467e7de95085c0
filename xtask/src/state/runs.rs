//! `workspace/run.json`: the current run, and whether it ended in order. A
//! run killed mid-way is resumed by the next orchestrator; one that ended
//! in order is followed by a fresh one.

use std::time::SystemTime;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::config::ExecutorKind;
use crate::model::layout::Layout;
use crate::state::atomic;
use crate::state::status::timestamp;

/// `workspace/run.json`: the current run, and whether it ended in order.
#[derive(Debug, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    /// It ended in order; else it was killed, and the next run resumes it.
    pub finished: bool,
    /// What the orchestrator running it selects (`--phase`, `--task`, the
    /// running tasks of a `monitor`): a decision on another task waits for
    /// a later run, and `approve` says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// Its `-j` and `--executor`, when given: for the views that say what
    /// it starts next (its `-j` kept once it ended, for the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorKind>,
    /// It was stopping its tasks (a signal, or an error it could not go
    /// on after): said by `Layout::stopping_mark` too, which a full disk
    /// still lets be made where this file could not be written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopping: bool,
    /// The pid of the orchestrator that ended it: while that one holds
    /// the workspace still, it is closing (its notifiers), deciding
    /// nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<u32>,
    /// When its orchestrator (the last to take it up) started, before it
    /// read the task files: one changed since may not be what it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

impl Run {
    /// Whether `file` changed after this run's orchestrator started: it
    /// may run the task as it was before (it reads each file once).
    pub fn started_before_change_of(&self, file: &camino::Utf8Path) -> bool {
        let started = self
            .started_at
            .as_deref()
            .and_then(crate::state::status::parse_timestamp);
        let changed = file
            .metadata()
            .ok()
            .map(|meta| crate::model::mark::changed_ns(&meta));
        match (started, changed) {
            (Some(started), Some(changed)) => crate::state::outputs::from_ns(changed) >= started,
            _ => false,
        }
    }

    /// Whether its orchestrator selects task `id` of phase `phase`.
    pub fn selects(&self, id: &str, phase: &str) -> bool {
        selects(self.phase.as_deref(), &self.only, id, || phase)
    }
}

/// Whether a run of the tasks `only` (all when empty), or else of phase
/// `phase` (all when `None`), selects task `id` of phase `task_phase`.
/// A run of everything reads neither: asked of 100,000 tasks in several
/// passes, reading each id cost tens of ms.
pub fn selects<'a>(
    phase: Option<&str>,
    only: &[String],
    id: &str,
    task_phase: impl FnOnce() -> &'a str,
) -> bool {
    match only.is_empty() {
        false => only.iter().any(|o| o == id),
        true => phase.is_none_or(|p| p == task_phase()),
    }
}

/// What a run selects and how it runs them, as `run.json` keeps it.
pub struct Selection {
    pub phase: Option<String>,
    pub only: Vec<String>,
    pub jobs: Option<usize>,
    pub executor: Option<ExecutorKind>,
}

/// When this process started, before it read any task file (noted first
/// thing by `main`): what a run records as its `started_at`.
static PROCESS_START: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();

pub fn note_process_start() {
    PROCESS_START.get_or_init(SystemTime::now);
}

/// Starts a run, or resumes the last one when it did not end in order (its
/// orchestrator was killed), with what it selects. Returns the run's id;
/// a `run.json` that cannot be read is said in `warnings`.
pub fn begin(layout: &Layout, selects: Selection, warnings: &mut Vec<String>) -> Result<String> {
    let id = match last_or_warn(layout, warnings).filter(|r| !r.finished) {
        Some(run) => run.id,
        None => format!("{}-{}", timestamp(SystemTime::now()), std::process::id()),
    };
    let run = Run {
        id: id.clone(),
        finished: false,
        phase: selects.phase,
        only: selects.only,
        jobs: selects.jobs,
        executor: selects.executor,
        stopping: false,
        ended_by: None,
        started_at: Some(crate::state::status::timestamp_millis(
            PROCESS_START.get().copied().unwrap_or_else(SystemTime::now),
        )),
    };
    atomic::write(&layout.run_file(), &serde_json::to_vec(&run)?)?;
    // Read by now (`resumes_a_stop`): a stop is this run's to mark again.
    atomic::remove(&layout.stopping_mark())?;
    Ok(id)
}

/// The id of the last run, if it has not finished (going on, or killed).
pub fn unfinished(layout: &Layout) -> Option<String> {
    last(layout).filter(|run| !run.finished).map(|run| run.id)
}

/// The last run started on this workspace.
pub fn last(layout: &Layout) -> Option<Run> {
    last_or_warn(layout, &mut Vec::new())
}

/// `last`, which says in `warnings` when `run.json` is there but cannot be
/// read (a disk that failed, a hand edit): taken for a run that ended in
/// order, whose tasks failed for good are tried again, where a resumed run
/// keeps them failed.
pub fn last_or_warn(layout: &Layout, warnings: &mut Vec<String>) -> Option<Run> {
    let path = layout.run_file();
    let read = crate::sys::read_regular_file(&path)
        .map(|(bytes, _)| bytes)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice::<Run>(&bytes).map_err(|e| e.to_string()));
    match read {
        Ok(run) => Some(run),
        Err(_) if !path.exists() => None,
        Err(e) => {
            warnings.push(format!(
                "{path} cannot be read ({e}): taken for a run that ended in order, so a run killed before is not resumed and the tasks it had failed for good are tried again"
            ));
            None
        }
    }
}

/// Marks the run as ended in order: the next one starts afresh. Its `-j`
/// (`jobs`) stays, for the report of the limits it ran under.
pub fn end(layout: &Layout, id: &str, jobs: Option<usize>) -> Result<()> {
    let run = Run {
        id: id.to_owned(),
        finished: true,
        phase: None,
        only: Vec::new(),
        jobs,
        executor: None,
        stopping: false,
        ended_by: Some(std::process::id()),
        started_at: None,
    };
    atomic::write(&layout.run_file(), &serde_json::to_vec(&run)?)?;
    atomic::remove(&layout.stopping_mark())
}

/// Marks the run as stopping its tasks, before it sends them SIGTERM:
/// killed then, what it was stopping is lost with it only as an
/// interruption (see `run::ends`). An empty file (`Layout::stopping_mark`),
/// which a full disk still lets be made: a run stopped because its disk
/// filled writes neither `run.json` nor its tasks' ends, and the run that
/// resumes it would take the tasks it stopped for lost.
/// `run.json` says so too, where it can be written (run `id`'s).
pub fn mark_stopping(layout: &Layout, id: &str) -> Result<()> {
    atomic::write(&layout.stopping_mark(), b"")?;
    let Some(mut run) = last(layout).filter(|run| run.id == id) else {
        return Ok(());
    };
    run.stopping = true;
    atomic::write(&layout.run_file(), &serde_json::to_vec(&run)?)
}

/// Whether the run a new one resumes was killed while it stopped its
/// tasks (or ended without `run.json` saying so: a full disk).
pub fn resumes_a_stop(layout: &Layout) -> bool {
    let marked = || layout.stopping_mark().exists();
    last(layout).is_some_and(|run| !run.finished && (run.stopping || marked()))
}
