//! The scheduling benchmark: a graph of sleeping tasks whose id order is
//! bad (a long chain of late ids beside short independent tasks of early
//! ids), run with -j 4. The makespan against the lower bound
//! max(critical path, total work / j): on a first run (no durations known
//! yet), on a second (what the first took is known), and in id order (the
//! same graph with priorities that force it); and the run's ETA, read from
//! `progress --json` while it runs, against the real end.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use camino::Utf8Path;

use crate::scratch::Trash;

/// The chain: `CHAIN` tasks of `LONG` seconds each, one after the other.
const CHAIN: usize = 10;
const LONG: f64 = 0.5;
/// Beside it: `SHORT_TASKS` independent tasks of `SHORT` seconds.
const SHORT_TASKS: usize = 30;
const SHORT: f64 = 0.2;
const JOBS: usize = 4;

pub struct Schedule {
    /// Wall times of the runs: first, second, id order.
    pub first: f64,
    pub second: f64,
    pub id_order: f64,
    pub lower_bound: f64,
    /// The ETA's error (expected end against the real one, as a fraction
    /// of the run) at 25, 50 and 75 % of the second run.
    pub eta_errors: Vec<(u32, f64)>,
}

/// Runs the benchmark in `dir` with the orchestrator `xtask`.
pub fn measure(xtask: &Utf8Path, dir: &Utf8Path, trash: &Trash) -> Result<Schedule> {
    let critical = CHAIN as f64 * LONG;
    let work = critical + SHORT_TASKS as f64 * SHORT;
    let lower_bound = critical.max(work / JOBS as f64);

    write_graph(dir, false)?;
    let (first, _) = run(xtask, dir, false)?;
    // The second run knows what each task took: keep history.json only.
    let history = dir.join("workspace/history.json");
    let kept = fs::read(&history).with_context(|| format!("cannot read {history}"))?;
    trash.take(&dir.join("workspace"))?;
    fs::create_dir_all(dir.join("workspace"))?;
    fs::write(&history, kept)?;
    let (second, etas) = run(xtask, dir, true)?;
    trash.take(&dir.join("workspace"))?;

    write_graph(dir, true)?;
    let (id_order, _) = run(xtask, dir, false)?;
    trash.take(&dir.join("workspace"))?;

    let eta_errors = [25, 50, 75]
        .into_iter()
        .filter_map(|percent| {
            let at = second * f64::from(percent) / 100.0;
            let (elapsed, eta) = etas
                .iter()
                .min_by(|a, b| (a.0 - at).abs().total_cmp(&(b.0 - at).abs()))?;
            Some((percent, (elapsed + eta - second) / second))
        })
        .collect();
    Ok(Schedule {
        first,
        second,
        id_order,
        lower_bound,
        eta_errors,
    })
}

/// The graph: `s01`..`s30` (short, independent) and `z01`..`z10` (the
/// chain). With `id_order`, priorities that make the tasks start by id.
fn write_graph(dir: &Utf8Path, id_order: bool) -> Result<()> {
    let tasks = dir.join("tasks/p");
    if dir.join("tasks").exists() {
        fs::remove_dir_all(dir.join("tasks"))?;
    }
    fs::create_dir_all(&tasks).with_context(|| format!("cannot create {tasks}"))?;
    fs::write(
        dir.join("tasks/orchestrator.yaml"),
        format!("max_concurrent_agents: {JOBS}\nmax_memory_gb: 0.25\nphases: {{p: {{max_parallel: {JOBS}}}}}\n"),
    )?;
    let total = SHORT_TASKS + CHAIN;
    let priority = |place: usize| {
        if id_order {
            format!("priority: {}\n", total - place)
        } else {
            String::new()
        }
    };
    for i in 1..=SHORT_TASKS {
        let text = format!(
            "---\n{}command: \"sleep {SHORT}\"\n---\nA short one.\n",
            priority(i)
        );
        fs::write(tasks.join(format!("s{i:02}.md")), text)?;
    }
    for i in 1..=CHAIN {
        let after = if i > 1 {
            format!("dependencies: [p/z{:02}]\n", i - 1)
        } else {
            String::new()
        };
        let text = format!(
            "---\n{after}{}command: \"sleep {LONG}\"\n---\nA link of the chain.\n",
            priority(SHORT_TASKS + i)
        );
        fs::write(tasks.join(format!("z{i:02}.md")), text)?;
    }
    Ok(())
}

/// Runs the graph; its wall time, and (with `watch`) the ETA `progress
/// --json` gave along the way, as (seconds in, ETA in seconds).
fn run(xtask: &Utf8Path, dir: &Utf8Path, watch: bool) -> Result<(f64, Vec<(f64, f64)>)> {
    let start = Instant::now();
    let mut child = Command::new(xtask)
        .args(["--root", dir.as_str(), "orchestrate", "-q"])
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start the orchestrator")?;
    let mut etas = Vec::new();
    let mut looked = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            ensure!(status.success(), "the scheduling graph failed: {status}");
            break;
        }
        if watch && looked.elapsed() >= Duration::from_millis(100) {
            looked = Instant::now();
            let elapsed = start.elapsed().as_secs_f64();
            let out = Command::new(xtask)
                .args(["--root", dir.as_str(), "progress", "--json"])
                .output()?;
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if let Some(eta) = json["eta_seconds"].as_f64() {
                etas.push((elapsed, eta));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((start.elapsed().as_secs_f64(), etas))
}
