//! A task's latest attempt when it was `reset` (or taken up again by
//! `--rerun-stale`, or approved to start with no run going on), and what
//! it failed with, in `workspace/resets.json`:
//! the reset removes its status, where a retry finds the previous error and
//! its attempt number, so that a task run again after a rejection or a
//! failure is told what went wrong (`previous`, `TASK_PREVIOUS_ERROR`) all
//! the same, and no attempt's number is given twice (a quiet attempt's
//! empty log counts for none). Also a try that never started, its status
//! removed as a reset's (see `run::ends`), with the tries its run counted.
//! One file for the workspace: read once by a run, rarely written.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::agent::result::ThreadUsage;
use crate::model::layout::Layout;
use crate::state::status::Failure;
use crate::state::{atomic, logs};

/// The attempt a reset cleared, and its failure, if any.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cleared {
    /// The task's latest attempt then: the failure is its next attempt's
    /// previous one, and no later attempt's.
    pub attempt: u32,
    /// What it failed with; none for a task that had not failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The attempt that failed, when an earlier one than the latest (the
    /// latest hit a rate limit, or was blocked): its log is that one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u32>,
    /// The agent's session of the attempt that failed, which the next may
    /// resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// That session's totals (`Failure::thread_usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_usage: Option<ThreadUsage>,
    /// The tries counted against its retries by the run that removed the
    /// status of a try that never started: the run that resumes that run
    /// (killed) counts on from them, as it would from the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries: Option<RunTries>,
}

/// The tries a run (`run_id`) had counted for a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunTries {
    pub run_id: String,
    pub tries: u32,
}

impl Cleared {
    /// The tries it keeps, when of run `run_id`.
    pub fn tries_of(&self, run_id: Option<&str>) -> Option<u32> {
        let kept = self.tries.as_ref()?;
        (Some(kept.run_id.as_str()) == run_id).then_some(kept.tries)
    }
}

/// Every task's failure cleared by a reset, by task id (none when the
/// file is missing or unreadable: a run goes on without them).
pub fn read(layout: &Layout) -> BTreeMap<String, Cleared> {
    atomic::read_to_change(&layout.resets_file()).unwrap_or_default()
}

/// The latest attempt of a task with no status to say it (`reset`, or
/// its status removed by hand), `cleared` what a reset recorded of it: the
/// reset's, or a later one whose log is on disk. A quiet attempt's empty
/// log counts for none, but the reset's record does: its number is not
/// given again, and its log is shown.
pub fn latest_attempt(layout: &Layout, id: &str, cleared: Option<&Cleared>) -> u32 {
    logs::latest_attempt_on_disk(layout, id).max(cleared.map_or(0, |c| c.attempt))
}

/// Keeps `latest`, task `id`'s latest attempt, and `failure`, what it
/// last failed with (none: it completed since, or failed in no way to
/// tell), for its next attempt, in place of what an earlier reset kept.
/// Under the workspace lock. An error when the file is there but cannot be
/// read: writing it again would lose the other tasks' failures.
pub fn keep(layout: &Layout, id: &str, latest: u32, failure: Option<&Failure>) -> Result<()> {
    keep_counted(layout, id, latest, failure, None)
}

/// `keep`, with the `tries` a run counted (a try that never started had
/// its status removed, which held them: see `run::ends`).
pub fn keep_counted(
    layout: &Layout,
    id: &str,
    latest: u32,
    failure: Option<&Failure>,
    tries: Option<RunTries>,
) -> Result<()> {
    let mut all: BTreeMap<String, Cleared> = atomic::read_to_change(&layout.resets_file())?;
    let cleared = Cleared {
        attempt: latest,
        error: failure.map(|f| f.error.clone()),
        failed: failure.filter(|f| f.attempt != latest).map(|f| f.attempt),
        session_id: failure.and_then(|f| f.session_id.clone()),
        thread_usage: failure.and_then(|f| f.thread_usage),
        tries,
    };
    all.insert(id.to_owned(), cleared);
    write(layout, &all)
}

fn write(layout: &Layout, all: &BTreeMap<String, Cleared>) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(all).context("cannot encode the resets")?;
    atomic::write(&layout.resets_file(), &bytes)
}
