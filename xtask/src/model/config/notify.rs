//! `notify:`: commands run with an event's JSON on stdin when the run
//! records an event of a kind they listen for.

use std::time::Duration;

use serde_yaml::Value;

use crate::model::problem::nearest;
use crate::model::yaml;

/// One notifier: a shell command and the kinds of event it is run for.
#[derive(Debug, Clone, PartialEq)]
pub struct Notifier {
    /// Event kinds: the state a task went to (`failed`, `blocked`, ...), or
    /// a run-level event (`run_finished`, `budget_reached`, ...).
    pub on: Vec<String>,
    /// Run with `sh -c`, from the repository root.
    pub command: String,
    /// How long the command may run before it is killed.
    pub timeout: Duration,
}

/// A notifier's default `timeout`.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The kinds of event a notifier may listen for.
pub const KINDS: &[&str] = &[
    "running",
    "merging",
    "completed",
    "failed",
    "paused",
    "blocked",
    "pending",
    "awaiting_approval",
    "run_started",
    "run_finished",
    "rate_limited",
    "budget_reached",
    "revoked",
];

/// `notify: [{on: [failed, run_finished], command: "..."}]`.
pub fn notifiers(value: &Value) -> Result<Vec<Notifier>, String> {
    let Value::Sequence(items) = value else {
        return Err(format!(
            "must be a list of {{on: [...], command: \"...\"}}, found {}",
            yaml::type_name(value)
        ));
    };
    // Every item's problem at once, not the first only.
    let mut notifiers = Vec::new();
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match notifier(item) {
            Ok(notifier) => notifiers.push(notifier),
            Err(e) => problems.push(format!("item {}: {e}", i + 1)),
        }
    }
    match problems.is_empty() {
        true => Ok(notifiers),
        false => Err(problems.join("; ")),
    }
}

fn notifier(item: &Value) -> Result<Notifier, String> {
    let Value::Mapping(map) = item else {
        return Err(format!(
            "must be {{on: [...], command: \"...\"}}, found {}",
            yaml::type_name(item)
        ));
    };
    let mut on = None;
    let mut command = None;
    let mut timeout = TIMEOUT;
    for (key, value) in map {
        match key.as_str() {
            Some("on") => on = Some(kinds(value)?),
            Some("command") => {
                command = Some(yaml::non_empty_text(value).map_err(|e| format!("`command`: {e}"))?)
            }
            Some("timeout") => {
                timeout = yaml::duration(value).map_err(|e| format!("`timeout`: {e}"))?
            }
            Some(other) => return Err(unknown_key(other)),
            None => return Err(yaml::non_text_key(key, "")),
        }
    }
    match (on, command) {
        (Some(on), Some(command)) => Ok(Notifier {
            on,
            command,
            timeout,
        }),
        _ => Err("needs both `on` (the events) and `command`".into()),
    }
}

/// An item's key it does not know, with the nearest known one, as every
/// other unknown key of the config is said.
fn unknown_key(key: &str) -> String {
    const KEYS: [&str; 3] = ["on", "command", "timeout"];
    match nearest(key, KEYS.into_iter()) {
        Some(near) => format!("unknown key `{key}`: did you mean `{near}`?"),
        None => format!("unknown key `{key}`: the keys are `on`, `command` and `timeout`"),
    }
}

/// The kinds of event listed; every unknown one is named at once.
fn kinds(value: &Value) -> Result<Vec<String>, String> {
    let kinds = yaml::text_list(value).map_err(|e| format!("`on`: {e}"))?;
    if kinds.is_empty() {
        return Err(format!(
            "`on` lists no event: name those to run it for ({})",
            KINDS.join(", ")
        ));
    }
    let unknown: Vec<String> = kinds
        .iter()
        .filter(|kind| !KINDS.contains(&kind.as_str()))
        .map(|kind| match nearest(kind, KINDS.iter().copied()) {
            Some(near) => format!("no event `{kind}`: did you mean `{near}`?"),
            None => format!("no event `{kind}`"),
        })
        .collect();
    if unknown.is_empty() {
        return Ok(kinds);
    }
    Err(format!(
        "`on`: {} (the events are {})",
        unknown.join("; "),
        KINDS.join(", ")
    ))
}
