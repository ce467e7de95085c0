//! The output: the tables (machine, graphs, latency, the orchestrator's
//! own commands, the targets of BENCHMARKS.md) built from the medians, and
//! the report that prints them as aligned text or writes them as Markdown.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;

use crate::graphs::{CHAIN, LAYERS};
use crate::measure::Sample;
use crate::schedule::Schedule;

pub struct GraphRow {
    pub runner: &'static str,
    pub n: usize,
    pub sample: Sample,
}

pub struct LatencyRow {
    pub runner: &'static str,
    pub median_ms: f64,
    pub p90_ms: f64,
}

pub struct CommandRow {
    pub name: &'static str,
    pub n: usize,
    pub sample: Sample,
}

fn find<'a>(rows: &'a [GraphRow], runner: &str, n: usize) -> Option<&'a Sample> {
    rows.iter()
        .find(|r| r.runner == runner && r.n == n)
        .map(|r| &r.sample)
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn graph_table(rows: &[GraphRow], jobs: usize) -> Table {
    let mut table = Table::new(
        &format!("Graphs: {LAYERS} layers, each task writes one file, -j{jobs} (medians)"),
        &[
            "runner",
            "N",
            "wall",
            "CPU",
            "peak RSS",
            "vs make",
            "over floor per task",
        ],
    );
    for row in rows {
        let s = &row.sample;
        let vs_make =
            find(rows, "make", row.n).map_or("n/a".into(), |m| format!("{:.2}x", s.wall / m.wall));
        let over_floor = match find(rows, "floor", row.n) {
            Some(_) if row.runner == "floor" => "-".into(),
            Some(f) => format!("{:.3} ms", (s.wall - f.wall) / row.n as f64 * 1e3),
            None => "n/a".into(),
        };
        table.row(vec![
            row.runner.into(),
            row.n.to_string(),
            format!("{:.3} s", s.wall),
            format!("{:.3} s", s.cpu),
            mib(s.rss_kib),
            vs_make,
            over_floor,
        ]);
    }
    table
}

pub fn latency_table(rows: &[LatencyRow]) -> Table {
    let mut table = Table::new(
        &format!("Exit-to-dependent-launch latency, chain of {CHAIN} tasks (median of runs)"),
        &["runner", "median", "p90", "median over floor"],
    );
    // The floor's latency is what starting the next task costs by itself
    // (a shell, and the stamp program): a runner's excess over it is the
    // time it takes from an exit to the next launch.
    let floor = rows.iter().find(|r| r.runner == "floor");
    for row in rows {
        table.row(vec![
            row.runner.into(),
            format!("{:.2} ms", row.median_ms),
            format!("{:.2} ms", row.p90_ms),
            match floor {
                Some(_) if row.runner == "floor" => "-".into(),
                Some(f) => format!("{:.2} ms", row.median_ms - f.median_ms),
                None => "n/a".into(),
            },
        ]);
    }
    table
}

pub fn commands_table(rows: &[CommandRow]) -> Table {
    let mut table = Table::new(
        "The orchestrator's own commands on the largest graph (medians)",
        &["command", "N", "wall", "CPU", "peak RSS"],
    );
    for row in rows {
        table.row(vec![
            row.name.into(),
            row.n.to_string(),
            format!("{:.1} ms", row.sample.wall * 1e3),
            format!("{:.1} ms", row.sample.cpu * 1e3),
            mib(row.sample.rss_kib),
        ]);
    }
    table
}

/// The scheduling benchmark: makespans against the lower bound, and the
/// ETA's error.
pub fn schedule_table(s: &Schedule) -> Table {
    let mut table = Table::new(
        "Scheduling: 10 chained tasks of 0.5 s (late ids) beside 30 of 0.2 s, -j 4",
        &["run", "makespan", "over the lower bound"],
    );
    let over = |wall: f64| format!("{:+.1} %", (wall / s.lower_bound - 1.0) * 100.0);
    table.row(vec![
        "lower bound: max(critical path, work / 4)".into(),
        format!("{:.2} s", s.lower_bound),
        "-".into(),
    ]);
    table.row(vec![
        "first run (no durations known)".into(),
        format!("{:.2} s", s.first),
        over(s.first),
    ]);
    table.row(vec![
        "second run (durations known)".into(),
        format!("{:.2} s", s.second),
        over(s.second),
    ]);
    table.row(vec![
        "id order (forced by priorities)".into(),
        format!("{:.2} s", s.id_order),
        over(s.id_order),
    ]);
    for (percent, error) in &s.eta_errors {
        table.row(vec![
            format!("ETA at {percent} % of the second run"),
            format!("{:+.1} % of the run", error * 100.0),
            "-".into(),
        ]);
    }
    table
}

/// The targets of BENCHMARKS.md, each only when this run measured it at
/// the size the target names (a smoke run at N=100 says nothing about
/// N=10,000).
pub fn targets_table(
    graphs: &[GraphRow],
    latencies: &[LatencyRow],
    commands: &[CommandRow],
) -> Table {
    let mut table = Table::new("Targets of BENCHMARKS.md", &["target", "measured", "met"]);
    let mut check = |target: String, measured: String, met: bool| {
        table.row(vec![
            target,
            measured,
            if met { "yes" } else { "NO" }.into(),
        ]);
    };
    let orchestrate = |n| find(graphs, "orchestrate", n);
    for n in [1000, 10000] {
        if let (Some(o), Some(m)) = (orchestrate(n), find(graphs, "make", n)) {
            let ratio = o.wall / m.wall;
            check(
                format!("within 2x of make at N={n}"),
                format!("{ratio:.2}x"),
                ratio <= 2.0,
            );
        }
    }
    if let (Some(small), Some(large)) = (orchestrate(1000), orchestrate(10000)) {
        let growth = large.wall / small.wall;
        check(
            "N=10000 at most 12x N=1000".into(),
            format!("{growth:.1}x"),
            growth <= 12.0,
        );
    }
    if let Some(row) = latencies.iter().find(|r| r.runner == "orchestrate") {
        // From an exit to the dependent's launch is what the runner adds to
        // the floor's figure (which is the next task's own start); the
        // total is reported too.
        if let Some(floor) = latencies.iter().find(|r| r.runner == "floor") {
            let launch = row.median_ms - floor.median_ms;
            check(
                "exit-to-launch latency (median over floor) under 2 ms".into(),
                format!("{launch:.2} ms"),
                launch < 2.0,
            );
        }
        check(
            "latency median, with the task's own start, under 2 ms".into(),
            format!("{:.2} ms", row.median_ms),
            row.median_ms < 2.0,
        );
    }
    for row in commands.iter().filter(|r| r.n == 10000) {
        let limit = if row.name.starts_with("progress") {
            0.1
        } else {
            1.0
        };
        check(
            format!("{} on 10000 under {} ms", row.name, limit * 1e3),
            format!("{:.1} ms", row.sample.wall * 1e3),
            row.sample.wall < limit,
        );
    }
    if let Some(o) = orchestrate(10000) {
        check(
            "peak memory at N=10000 under 30 MiB".into(),
            mib(o.rss_kib),
            o.rss_kib < 30 * 1024,
        );
    }
    table
}

/// What the figures were measured on.
pub fn machine_table() -> Table {
    let mut table = Table::new("Machine", &["what", "value"]);
    table.left = 2;
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map_or("?".into(), |(_, v)| v.trim().to_string())
    };
    let first_line = |program: &str| {
        Command::new(program)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "not available".into())
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    // /proc/meminfo says "24683656 kB".
    let memory = field(&meminfo, "MemTotal");
    let memory = match memory.trim_end_matches(" kB").parse::<f64>() {
        Ok(kib) => format!("{:.1} GiB", kib / (1024.0 * 1024.0)),
        Err(_) => memory,
    };
    for (what, value) in [
        ("CPUs available", cpus.to_string()),
        ("CPU model", field(&cpuinfo, "model name")),
        ("memory", memory),
        ("kernel", kernel.trim().to_string()),
        ("make", first_line("make")),
        ("ninja", first_line("ninja")),
        ("cc", first_line("cc")),
    ] {
        table.row(vec![what.into(), value]);
    }
    table
}

/// A table printed either as aligned text or as Markdown, so the two never
/// disagree. The first `left` columns are text (left-aligned), the others
/// figures (right-aligned).
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    left: usize,
}

impl Table {
    fn new(title: &str, headers: &[&str]) -> Table {
        Table {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            left: 1,
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn text(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                std::iter::once(&self.headers)
                    .chain(&self.rows)
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = format!("\n{}\n", self.title);
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, &w))| {
                    if c < self.left {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            writeln!(text, "  {}", cells.join("  ").trim_end()).expect("writing to a String");
        }
        text
    }

    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let rule: Vec<String> = (0..self.headers.len())
            .map(|c| if c < self.left { "---" } else { "---:" }.to_string())
            .collect();
        let mut text = format!(
            "### {}\n\n{}{}",
            self.title,
            line(&self.headers),
            line(&rule)
        );
        for row in &self.rows {
            text += &line(row);
        }
        text
    }
}

pub struct Report {
    pub command: String,
    pub notes: Vec<String>,
    pub tables: Vec<Table>,
}

impl Report {
    pub fn text(&self) -> String {
        let mut text: String = self.tables.iter().map(Table::text).collect();
        for note in &self.notes {
            writeln!(text, "note: {note}").expect("writing to a String");
        }
        text
    }

    pub fn markdown(&self) -> String {
        let mut text = format!("Measured with `{}`.\n", self.command);
        if !self.notes.is_empty() {
            text += "\n";
        }
        for note in &self.notes {
            writeln!(text, "- {note}").expect("writing to a String");
        }
        for table in &self.tables {
            text += "\n";
            text += &table.markdown();
        }
        text
    }
}
