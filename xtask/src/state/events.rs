//! `workspace/events.jsonl`: every change of a task's state, and the run's
//! own events, one JSON object per line, appended. Each line is one
//! `write` on a file opened with `O_APPEND`, so that writers in several
//! processes (the run, `block`, `reset`) never interleave within a line and
//! readers never see half of one. Times are the orchestrator's clock, to
//! the millisecond: a start and an end are comparable.

use std::collections::HashMap;
use std::time::SystemTime;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::state::jsonl;
use crate::state::records::ExitRecord;
use crate::state::status::{self, AgentSlot, Ending, Status};

/// One line of the file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Event {
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// A run-level event: `run_started`, `run_finished`, `rate_limited`
    /// (with the task), `budget_reached`, `revoked` (an approval that no
    /// longer holds, with the task); `approved` and `rejected` (with the
    /// task, written by those commands); absent for a task's change of
    /// state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The states before and after (`pending`, `running`, `merging`,
    /// `completed`, `failed`, `paused`, `blocked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentSlot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<Ending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// What the attempt that ended cost, as its agent reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// `rate_limited`: until when the task's pool waits, and the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// `budget_reached`: the budget and what was spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_usd: Option<f64>,
    /// `approved`, `rejected`: who decided, and their note or reason;
    /// `revoked`: who had approved, and why it no longer holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `run_finished`: the run's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Event {
    /// Task `task` went from `from` to `to`, now.
    pub fn change(task: &str, from: &str, to: &str) -> Event {
        Event {
            task: Some(task.to_owned()),
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
            ..Event::now()
        }
    }

    /// Task `task` went from `from` to blocked, by the failure of `by`.
    pub fn blocked(task: &str, from: &str, by: &str) -> Event {
        Event {
            blocked_by: Some(by.to_owned()),
            ..Event::change(task, from, "blocked")
        }
    }

    /// The event of the attempt `status` records: its number and agent,
    /// when it ran one.
    pub fn of_attempt(self, status: &Status) -> Event {
        Event {
            attempt: (status.attempt > 0).then_some(status.attempt),
            agent: status.agent_id,
            ..self
        }
    }

    /// The event as it happened at `when`, not now (an end recorded while
    /// no orchestrator was alive, found by the next run).
    pub fn happened_at(self, when: SystemTime) -> Event {
        Event {
            time: status::timestamp_millis(when),
            ..self
        }
    }

    /// A run-level event, now.
    pub fn run(event: &str) -> Event {
        Event {
            event: Some(event.to_owned()),
            ..Event::now()
        }
    }

    fn now() -> Event {
        Event {
            time: status::timestamp_millis(SystemTime::now()),
            ..Event::default()
        }
    }

    /// Its kind, as notifiers name it: the run-level event, else the state
    /// the task went to.
    pub fn kind(&self) -> &str {
        self.event.as_deref().or(self.to.as_deref()).unwrap_or("")
    }

    /// When it happened.
    pub fn at(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.time).ok()
    }
}

/// The file, open for appending.
pub struct Log {
    file: jsonl::Appender,
    run_id: Option<String>,
    /// Per task, what the file told of an attempt an earlier run left
    /// running (see `told_before`).
    told: HashMap<String, ToldBefore>,
}

impl Log {
    /// Opens `workspace/events.jsonl` for appending; events carry `run_id`.
    pub fn open(layout: &Layout, run_id: Option<&str>) -> Result<Log> {
        let file = jsonl::open_to_append(&layout.events_file())?;
        Ok(Log {
            file,
            run_id: run_id.map(str::to_owned),
            told: HashMap::new(),
        })
    }

    /// `changes` of attempt `attempt` of `task`, told by a run killed
    /// before its statuses said them (between telling an attempt's end and
    /// writing its final status): this run, which takes the attempt up,
    /// tells them again as it goes, and they are not written twice.
    pub fn told_before(&mut self, task: &str, attempt: u32, changes: Vec<Event>) {
        self.told
            .insert(task.to_owned(), ToldBefore { attempt, changes });
    }

    /// Whether `event` is one of the changes told before (`told_before`):
    /// it and those before it are then taken as told. Any change of
    /// another attempt of the task (its next start) ends what was told.
    pub fn retold(&mut self, event: &Event) -> bool {
        let Some(task) = event.task.as_deref() else {
            return false;
        };
        let Some(told) = self.told.get_mut(task) else {
            return false;
        };
        let another = event.to.as_deref() == Some("running")
            || event.attempt.is_some_and(|a| a != told.attempt);
        let same = |e: &Event| {
            (&e.event, &e.from, &e.to, e.attempt)
                == (&event.event, &event.from, &event.to, event.attempt)
        };
        let at = told.changes.iter().position(same).filter(|_| !another);
        if let Some(at) = at {
            told.changes.drain(..=at);
        }
        if another || told.changes.is_empty() {
            self.told.remove(task);
        }
        at.is_some()
    }

    /// Appends `event`, as one write; returns its line (without the
    /// newline).
    pub fn append(&mut self, mut event: Event) -> Result<String> {
        event.run_id = event.run_id.or_else(|| self.run_id.clone());
        let mut line = serde_json::to_string(&event)?;
        line.push('\n');
        self.file.append(line.as_bytes())?;
        line.pop();
        Ok(line)
    }
}

/// What the file told of an attempt an earlier run left running.
struct ToldBefore {
    attempt: u32,
    changes: Vec<Event>,
}

/// The events from the start of the last run that started a task to the
/// end of the file, oldest first, and that run's id (`None` when no task
/// started, or its start named no run: then every event is read). Read
/// from the file's end: what a report of the last run costs is that run,
/// not the weeks of runs before it in a long-lived workspace's file.
pub fn since_last_start(layout: &Layout) -> (Vec<Event>, Option<String>) {
    let mut read = Vec::new();
    // The run of the latest start, once it is found, and whether one of
    // its `run_started` was passed.
    let mut run: Option<Option<String>> = None;
    let mut passed_its_start = false;
    for line in jsonl::lines_backwards(&layout.events_file()) {
        let Ok(event) = serde_json::from_slice::<Event>(&line) else {
            continue;
        };
        if run.is_none() && event.to.as_deref() == Some("running") {
            run = Some(event.run_id.clone());
        }
        if let Some(Some(id)) = &run {
            // Every event of a run comes after its `run_started`, and a
            // killed run is resumed under its id (each resume starting it
            // again) before another run begins: the first event of another
            // run before one of its starts is before all of it.
            if passed_its_start && event.run_id.as_ref().is_some_and(|other| other != id) {
                break;
            }
            passed_its_start |=
                event.event.as_deref() == Some("run_started") && event.run_id.as_ref() == Some(id);
        }
        read.push(event);
    }
    read.reverse();
    (read, run.flatten())
}

/// What the file tells of an attempt an earlier run left running.
pub struct SinceStart {
    /// When its start was told (`None`: to a file since moved away), on
    /// the machine's clock: its end is never told before it.
    pub started: Option<SystemTime>,
    /// The events of its task told since.
    pub changes: Vec<Event>,
}

impl SinceStart {
    /// The exit record of attempt `attempt`, whose start failed (a branch
    /// in its worktree's way, a template that does not render), when that
    /// failure was told: its run died before the final status was written,
    /// and a start failure has no exit record on disk, as a task that ran
    /// has, to recover its end from.
    pub fn start_failure(&self, attempt: u32) -> Option<ExitRecord> {
        let told = (self.changes.iter().rev()).find(|e| {
            e.attempt == Some(attempt)
                && e.to.as_deref() == Some("failed")
                && e.ending == Some(Ending::SpawnFailed)
        })?;
        let message = told.error.clone().unwrap_or_default();
        Some(ExitRecord {
            attempt: Some(attempt),
            ended_at: told.time.clone(),
            ..ExitRecord::with_message(Ending::SpawnFailed, message)
        })
    }
}

/// What the file tells of attempts an earlier run left running (`attempts`:
/// each task's attempt): per task whose attempt's start was told, when,
/// and the events of the task told since. A task with none has its start untold:
/// a run killed between writing its running status and telling it. A
/// change of the attempt with no start before it says the start was told,
/// to a file since moved away (kept aside by hand, or by logrotate): told
/// again, it would come after that change. Read line by line, and only
/// the lines that name one of those tasks are parsed: the file of a
/// long-lived workspace holds millions.
pub fn since_start(layout: &Layout, attempts: &HashMap<&str, u32>) -> HashMap<String, SinceStart> {
    let mut since: HashMap<String, SinceStart> = HashMap::new();
    // How each task's name appears in a line: as serde_json writes it.
    let named: Vec<(String, &str, u32)> = attempts
        .iter()
        .filter_map(|(&task, &attempt)| {
            Some((
                format!("\"task\":{}", serde_json::to_string(task).ok()?),
                task,
                attempt,
            ))
        })
        .collect();
    for line in jsonl::lines(&layout.events_file()) {
        let Ok(line) = std::str::from_utf8(&line) else {
            continue;
        };
        let Some(&(_, task, attempt)) = named.iter().find(|(key, ..)| line.contains(key.as_str()))
        else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        if event.task.as_deref() != Some(task) {
            continue;
        }
        let of_attempt = event.attempt == Some(attempt);
        if of_attempt && event.to.as_deref() == Some("running") {
            let started = event.at();
            let changes = Vec::new();
            since.insert(task.to_owned(), SinceStart { started, changes });
        } else if let Some(told) = since.get_mut(task) {
            told.changes.push(event);
        } else if of_attempt {
            let changes = vec![event];
            since.insert(
                task.to_owned(),
                SinceStart {
                    started: None,
                    changes,
                },
            );
        }
    }
    since
}
