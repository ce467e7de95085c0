//! `workspace/run.json`: the current run, and whether it ended in order. A
//! run killed mid-way is resumed by the next orchestrator; one that ended
//! in order is followed by a fresh one.

use std::time::SystemTime;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::state::atomic;
use crate::state::status::timestamp;

/// `workspace/run.json`: the current run, and whether it ended in order.
#[derive(Debug, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    /// It ended in order; else it was killed, and the next run resumes it.
    pub finished: bool,
}

/// Starts a run, or resumes the last one when it did not end in order (its
/// orchestrator was killed). Returns the run's id.
pub fn begin(layout: &Layout) -> Result<String> {
    if let Some(run) = last(layout).filter(|r| !r.finished) {
        return Ok(run.id);
    }
    let id = format!("{}-{}", timestamp(SystemTime::now()), std::process::id());
    let run = Run {
        id: id.clone(),
        finished: false,
    };
    atomic::write(&layout.run_file(), &serde_json::to_vec(&run)?)?;
    Ok(id)
}

/// The last run started on this workspace.
pub fn last(layout: &Layout) -> Option<Run> {
    let bytes = std::fs::read(layout.run_file()).ok()?;
    serde_json::from_slice::<Run>(&bytes).ok()
}

/// Marks the run as ended in order: the next one starts afresh.
pub fn end(layout: &Layout, id: &str) -> Result<()> {
    let run = Run {
        id: id.to_owned(),
        finished: true,
    };
    atomic::write(&layout.run_file(), &serde_json::to_vec(&run)?)
}
