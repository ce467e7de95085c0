//! `progress`: the dashboard per phase, read from the status files alone
//! (no lock, no task parsing), as text or as one JSON document.

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;

use crate::model::config::Config;
use crate::model::layout::Layout;
use crate::model::task::{phase_key, Discovery};
use crate::state::status::{self, State, Status};
use crate::ui::format;
use crate::ui::printer::{Printer, Tone};

#[derive(Debug, Default, Serialize)]
pub struct Progress {
    pub title: String,
    pub phases: Vec<PhaseProgress>,
    pub total: Counts,
    /// Status files that could not be read, each treated as pending.
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    pub total: usize,
    pub completed: usize,
    pub running: usize,
    pub blocked: usize,
    pub failed: usize,
    pub pending: usize,
    /// Completed as a whole percentage of total (0 for an empty phase).
    pub percent: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct PhaseProgress {
    pub phase: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub gate: Gate,
    /// Mean duration of the phase's completed tasks, for an ETA.
    pub mean_seconds: Option<f64>,
    /// CPU time of the phase's finished attempts, and the largest peak
    /// memory among them (from their cgroups; none where not enforced).
    pub cpu_seconds: f64,
    pub peak_memory_mb: Option<f64>,
    pub running_tasks: Vec<RunningTask>,
    pub failed_tasks: Vec<FailedTask>,
}

/// The phase's completion gate: at least one task, every task completed with
/// its outputs validated, and every artifact of `phases.<key>.requires`.
#[derive(Debug, Default, Serialize)]
pub struct Gate {
    pub complete: bool,
    /// What it still waits on: tasks (the first few) and missing artifacts.
    pub waiting_on: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RunningTask {
    pub task_id: String,
    pub agent_id: Option<String>,
    pub elapsed_seconds: u64,
    /// False when the process recorded for it is gone: the next
    /// `orchestrate` or `monitor` records how it ended.
    pub alive: bool,
    /// A Slurm job still waiting in the queue.
    pub queued: bool,
}

#[derive(Debug, Serialize)]
pub struct FailedTask {
    pub task_id: String,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
}

pub fn run(layout: &Layout, json: bool) -> Result<i32> {
    let progress = collect(layout);
    if json {
        println!("{}", serde_json::to_string_pretty(&progress)?);
    } else {
        print(&progress);
    }
    Ok(crate::exit::SUCCESS)
}

pub fn collect(layout: &Layout) -> Progress {
    let config = Config::load(&layout.config_file()).unwrap_or_default();
    let title = config
        .title
        .clone()
        .unwrap_or_else(|| layout.root.file_name().unwrap_or("tasks").to_owned());
    let mut progress = Progress {
        title,
        ..Progress::default()
    };
    let mut phases: BTreeMap<String, PhaseProgress> = BTreeMap::new();
    let now = SystemTime::now();
    for file in Discovery::scan(&layout.tasks).files {
        let Some(id) = file
            .strip_prefix(&layout.tasks)
            .ok()
            .and_then(|rel| rel.as_str().strip_suffix(".md"))
        else {
            continue;
        };
        let Some((phase_name, _)) = id.split_once('/') else {
            continue;
        };
        let phase = phases
            .entry(phase_name.to_owned())
            .or_insert_with(|| PhaseProgress {
                phase: phase_name.to_owned(),
                ..PhaseProgress::default()
            });
        let status = status::read(layout, id).unwrap_or_else(|warning| {
            progress.warnings.push(warning);
            None
        });
        add(phase, id, status, now);
    }
    for phase in phases.values_mut() {
        close_gate(
            layout,
            phase,
            &config.phase(phase_key(&phase.phase)).requires,
        );
    }
    for phase in phases.into_values() {
        progress.total = sum(progress.total, phase.counts);
        progress.phases.push(phase);
    }
    progress.total.percent = percent(progress.total.completed, progress.total.total);
    progress
}

/// How many unfinished tasks a gate names before it says "and N more".
const GATE_NAMES: usize = 5;

fn add(phase: &mut PhaseProgress, id: &str, status: Option<Status>, now: SystemTime) {
    let done = status
        .as_ref()
        .is_some_and(|s| s.status == State::Completed && s.outputs_validated);
    if !done {
        phase.gate.waiting_on.push(id.to_owned());
    }
    if let Some(s) = &status {
        phase.cpu_seconds += s.cpu_seconds.unwrap_or(0.0);
        phase.peak_memory_mb = match (phase.peak_memory_mb, s.peak_memory_mb) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    let counts = &mut phase.counts;
    counts.total += 1;
    match status {
        None => counts.pending += 1,
        Some(s) => match s.status {
            State::Completed => {
                counts.completed += 1;
                if let Some(d) = s.duration_seconds {
                    let n = counts.completed as f64;
                    phase.mean_seconds = Some(phase.mean_seconds.map_or(d, |m| m + (d - m) / n));
                }
            }
            State::Blocked => counts.blocked += 1,
            State::Failed => {
                counts.failed += 1;
                phase.failed_tasks.push(FailedTask {
                    task_id: id.to_owned(),
                    error: s.error,
                    exit_code: s.exit_code,
                });
            }
            State::Running => {
                counts.running += 1;
                let started = s.started_at.as_deref().and_then(status::parse_timestamp);
                let alive = s.looked_after();
                phase.running_tasks.push(RunningTask {
                    task_id: id.to_owned(),
                    agent_id: s.agent_id,
                    elapsed_seconds: started
                        .and_then(|t| now.duration_since(t).ok())
                        .map_or(0, |d| d.as_secs()),
                    alive,
                    queued: s.queued,
                });
            }
        },
    }
    counts.percent = percent(counts.completed, counts.total);
}

fn close_gate(layout: &Layout, phase: &mut PhaseProgress, requires: &[String]) {
    let gate = &mut phase.gate;
    let unfinished = gate.waiting_on.len();
    if unfinished > GATE_NAMES {
        gate.waiting_on.truncate(GATE_NAMES);
        gate.waiting_on
            .push(format!("{} more task(s)", unfinished - GATE_NAMES));
    }
    for artifact in requires {
        if !layout.outputs_dir().join(artifact).exists() {
            gate.waiting_on
                .push(format!("workspace/outputs/{artifact}"));
        }
    }
    gate.complete = phase.counts.total > 0 && gate.waiting_on.is_empty();
}

fn sum(a: Counts, b: Counts) -> Counts {
    Counts {
        total: a.total + b.total,
        completed: a.completed + b.completed,
        running: a.running + b.running,
        blocked: a.blocked + b.blocked,
        failed: a.failed + b.failed,
        pending: a.pending + b.pending,
        percent: 0,
    }
}

fn percent(part: usize, whole: usize) -> u32 {
    if whole == 0 {
        return 0;
    }
    (part * 100 / whole) as u32
}

fn bar(percent: u32) -> String {
    const WIDTH: usize = 20;
    let filled = (percent as usize * WIDTH / 100).min(WIDTH);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(WIDTH - filled))
}

fn print(progress: &Progress) {
    let printer = Printer::new(false);
    println!("=== {} Status ===", progress.title);
    println!();
    for warning in &progress.warnings {
        printer.line(Tone::Warn, &format!("warning: {warning}"));
    }
    for phase in &progress.phases {
        let c = &phase.counts;
        println!("Phase: {}  {} {}%", phase.phase, bar(c.percent), c.percent);
        println!("  Total: {}", c.total);
        println!("  Completed: {} ({}%)", c.completed, c.percent);
        println!("  Running: {}", c.running);
        println!("  Blocked: {}", c.blocked);
        println!("  Failed: {}", c.failed);
        println!("  Pending: {}", c.pending);
        if let Some(peak) = phase.peak_memory_mb {
            println!(
                "  CPU: {:.1} s, peak memory: {peak:.0} MiB",
                phase.cpu_seconds
            );
        }
        if phase.gate.complete {
            println!("  Gate: {}", printer.paint(Tone::Good, "complete"));
        } else {
            println!("  Gate: waiting on {}", phase.gate.waiting_on.join(", "));
        }
        for task in &phase.running_tasks {
            let elapsed = format::duration(std::time::Duration::from_secs(task.elapsed_seconds));
            let note = match (task.queued, task.alive) {
                (true, _) => "  (queued in Slurm)",
                (false, true) => "",
                (false, false) => "  (its process is gone: the next run records how it ended)",
            };
            println!(
                "    running  {}  {}  {elapsed}{note}",
                task.task_id,
                task.agent_id.as_deref().unwrap_or("-")
            );
        }
        for task in &phase.failed_tasks {
            let error = task.error.as_deref().unwrap_or("failed");
            println!(
                "    {}  {}: {error}",
                printer.paint(Tone::Bad, "failed"),
                task.task_id
            );
        }
        println!();
    }
    let t = &progress.total;
    println!(
        "Overall: {}/{} completed ({}%), {} running, {} failed, {} blocked, {} pending",
        t.completed, t.total, t.percent, t.running, t.failed, t.blocked, t.pending
    );
}
