//! What a task's latest attempt failed with when it was `reset`, in
//! `workspace/resets.json`: the reset removes its status, where a retry
//! finds the previous error, and a task run again after a rejection or a
//! failure is told what went wrong (`previous`, `TASK_PREVIOUS_ERROR`)
//! all the same. One file for the workspace: read once by a run, rarely
//! written.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::state::atomic;
use crate::state::status::Failure;

/// The failure a reset cleared.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cleared {
    /// The task's latest attempt then: the failure is its next attempt's
    /// previous one, and no later attempt's.
    pub attempt: u32,
    pub error: String,
    /// The attempt that failed, when an earlier one than the latest (the
    /// latest hit a rate limit, or was blocked): its log is that one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u32>,
    /// The agent's session of the attempt that failed, which the next may
    /// resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// Every task's failure cleared by a reset, by task id (none when the
/// file is missing or unreadable: a run goes on without them).
pub fn read(layout: &Layout) -> BTreeMap<String, Cleared> {
    atomic::read_to_change(&layout.resets_file()).unwrap_or_default()
}

/// Keeps `failure`, what task `id` last failed with, for its next
/// attempt; `latest` is its latest attempt. Under the workspace lock. An
/// error when the file is there but cannot be read: writing it again would
/// lose the other tasks' failures.
pub fn keep(layout: &Layout, id: &str, latest: u32, failure: &Failure) -> Result<()> {
    let mut all: BTreeMap<String, Cleared> = atomic::read_to_change(&layout.resets_file())?;
    let cleared = Cleared {
        attempt: latest,
        error: failure.error.clone(),
        failed: (failure.attempt != latest).then_some(failure.attempt),
        session_id: failure.session_id.clone(),
    };
    all.insert(id.to_owned(), cleared);
    write(layout, &all)
}

/// Forgets what a reset kept for task `id`: it completed since, and runs
/// again for another reason. Under the workspace lock.
pub fn forget(layout: &Layout, id: &str) -> Result<()> {
    let mut all: BTreeMap<String, Cleared> = atomic::read_to_change(&layout.resets_file())?;
    match all.remove(id) {
        Some(_) => write(layout, &all),
        None => Ok(()),
    }
}

fn write(layout: &Layout, all: &BTreeMap<String, Cleared>) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(all).context("cannot encode the resets")?;
    atomic::write(&layout.resets_file(), &bytes)
}
