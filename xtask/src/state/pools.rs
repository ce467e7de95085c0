//! Each agent pool's state after rate limits, in `workspace/pools.json`:
//! its concurrency as halved, the backoff it is at and when its latest
//! limit was hit (see `run::pools`). A run stopped during a pause and
//! started again keeps them: else, the pause over, all the pool's tasks
//! would start together and hit the limit again, and a limit naming no
//! reset time would start its backoff over. The pause itself is not
//! here: it is the paused tasks' (their statuses say until when), and
//! ends for the pool when they are reset or blocked. One file for the
//! workspace, written atomically when a pool's state changes.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::state::atomic;

/// A pool's state, as kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedPool {
    /// How many of its tasks may run at once, lowered by rate limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// The next wait when a limit names no reset time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_at: Option<String>,
}

/// Every pool's, by name.
pub type SavedPools = BTreeMap<String, SavedPool>;

/// What the file holds (nothing when there is none); an error when it is
/// there but cannot be read (it is then left as it is).
pub fn read(layout: &Layout) -> Result<SavedPools> {
    atomic::read_to_change(&layout.pools_file())
}

pub fn write(layout: &Layout, pools: &SavedPools) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(pools).context("cannot encode the pools' state")?;
    atomic::write(&layout.pools_file(), &bytes)
}
