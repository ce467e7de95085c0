//! `workspace/ledger.jsonl`: what every finished attempt of every run cost,
//! one JSON line each, appended. The budget counts it; `reset` does not
//! clear it (removing `workspace/` does).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::state::status;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    time: String,
    task: String,
    attempt: u32,
    cost_usd: f64,
}

/// What the attempts recorded so far cost, in USD.
pub fn spent(layout: &Layout) -> f64 {
    let Ok(file) = File::open(layout.ledger_file()) else {
        return 0.0;
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Entry>(&line).ok())
        .map(|entry| entry.cost_usd)
        .sum()
}

/// Records what an attempt cost, as one appended line.
pub fn record(layout: &Layout, task: &str, attempt: u32, cost_usd: f64) -> Result<()> {
    let path = layout.ledger_file();
    let entry = Entry {
        time: status::timestamp(SystemTime::now()),
        task: task.to_owned(),
        attempt,
        cost_usd,
    };
    let mut line = serde_json::to_vec(&entry)?;
    line.push(b'\n');
    File::options()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(&line))
        .with_context(|| format!("cannot append to {path}"))
}
