//! `workspace/ledger.jsonl`: what every finished attempt of every run cost,
//! one JSON line each, appended. The budget counts it; `reset` does not
//! clear it (removing `workspace/` does).

use std::collections::HashSet;
use std::time::SystemTime;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::state::{jsonl, status};

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    time: String,
    task: String,
    attempt: u32,
    /// When the attempt started (`attempt_since_ns` of its status): with
    /// the task and the attempt's number, what tells one attempt from
    /// another, also across a `rm -rf workspace/status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since_ns: Option<u64>,
    #[serde(deserialize_with = "a_cost")]
    cost_usd: f64,
    /// A rate limit refused the attempt: what it cost says nothing of what
    /// its task's work costs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    rate_limited: bool,
}

/// A cost as the ledger holds one: a line with a cost below zero (edited
/// by hand) does not parse, rather than lowering what was spent.
fn a_cost<'de, D: serde::Deserializer<'de>>(cost: D) -> Result<f64, D::Error> {
    let usd = f64::deserialize(cost)?;
    if usd >= 0.0 {
        Ok(usd)
    } else {
        Err(serde::de::Error::custom(format!(
            "a cost below zero: {usd}"
        )))
    }
}

/// One attempt, as the ledger tells them apart.
pub type Attempt = (String, u32, Option<u64>);

/// What the ledger holds: each attempt counted once. An attempt's end is
/// recorded before its final status is written, so an orchestrator killed
/// (or stopped by a status it could not write) in between has the next
/// one take the same end again: its second line is not counted.
#[derive(Default)]
pub struct Ledger {
    pub spent: f64,
    pub counted: HashSet<Attempt>,
    /// What each counted attempt cost, with its task, in the ledger's
    /// order, but those a rate limit refused: what attempts are expected
    /// to cost.
    pub costs: Vec<(String, f64)>,
    /// The lines that do not parse, by number, but those of an attempt
    /// another line counts: not counted.
    pub skipped: Vec<usize>,
}

/// What the ledger holds now.
pub fn read(layout: &Layout) -> Ledger {
    let (entries, skipped) = jsonl::read_noting_skipped::<Entry>(&layout.ledger_file());
    let mut ledger = Ledger::default();
    for entry in entries {
        let attempt = (entry.task.clone(), entry.attempt, entry.since_ns);
        if ledger.counted.insert(attempt) {
            ledger.spent += entry.cost_usd;
            if !entry.rate_limited {
                ledger.costs.push((entry.task, entry.cost_usd));
            }
        }
    }
    // A line cut by a kill before its attempt's final status: the run
    // after it took that end again, and its line counts it.
    let counted = |text: &str| {
        let task = field(text, "\"task\":\"").and_then(|t| t.split('"').next());
        let attempt = field(text, "\"attempt\":").and_then(|a| {
            let digits: String = a.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let (Some(task), Some(attempt)) = (task, attempt) else {
            return false;
        };
        (ledger.counted.iter()).any(|(t, a, _)| t == task && *a == attempt)
    };
    ledger.skipped = (skipped.into_iter())
        .filter(|(_, text)| !counted(text))
        .map(|(n, _)| n)
        .collect();
    ledger
}

/// What follows `key` in `text`, if it is there.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.find(key).map(|at| &text[at + key.len()..])
}

/// Records what an attempt cost, as one appended line, and whether a rate
/// limit refused it.
pub fn record(layout: &Layout, attempt: &Attempt, cost_usd: f64, rate_limited: bool) -> Result<()> {
    let path = layout.ledger_file();
    let (task, number, since_ns) = attempt;
    let entry = Entry {
        time: status::timestamp(SystemTime::now()),
        task: task.clone(),
        attempt: *number,
        since_ns: *since_ns,
        cost_usd,
        rate_limited,
    };
    let mut line = serde_json::to_vec(&entry)?;
    line.push(b'\n');
    jsonl::open_to_append(&path)?.append(&line)
}
