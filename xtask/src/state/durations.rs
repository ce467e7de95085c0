//! `workspace/history.json`: how long each task took when it last
//! completed, by task id, across runs; kept when statuses are cleared
//! (`reset`, or `rm -rf workspace/status`). What the run's order and its
//! ETA expect of a task (see `run::order`).

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::state::atomic;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Durations {
    /// Seconds, by task id.
    pub tasks: BTreeMap<String, f64>,
}

impl Durations {
    /// What the file holds (nothing when there is none, or it is not
    /// readable: the order then knows less, nothing breaks).
    pub fn load(layout: &Layout) -> Durations {
        std::fs::read(layout.durations_file())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Writes the file, atomically.
    pub fn save(&self, layout: &Layout) -> Result<()> {
        atomic::write(&layout.durations_file(), &serde_json::to_vec(self)?)
    }
}
