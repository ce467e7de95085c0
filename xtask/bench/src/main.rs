//! `cargo xtask-bench`: measures the orchestrator (`cargo xtask
//! orchestrate`) against GNU make, ninja and a spawn floor on generated
//! graphs, as BENCHMARKS.md describes. This file holds the command line and
//! the flow; graphs.rs makes the graphs, runners.rs the runners, measure.rs
//! the timing, tables.rs the output, scratch.rs the temporary folder.
//!
//! Every runner gets the same graph of trivial tasks (each writes one small
//! file), so the differences are what each runner adds on top of spawning a
//! shell per task. Everything happens in a scratch folder under the system's
//! temporary folder, removed at the end, even on error.

mod graphs;
mod measure;
mod runners;
mod schedule;
mod scratch;
mod tables;

use std::fs;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use camino::Utf8PathBuf;
use clap::Parser;

use crate::graphs::{Graph, CHAIN, LAYERS};
use crate::measure::{chain_latencies, measure, median, percentile, Bench, Sample};
use crate::scratch::{Scratch, Trash};
use crate::tables::{GraphRow, LatencyRow, Report};

/// Measures the orchestrator against GNU make, ninja and a spawn floor (a
/// C loop that only spawns the commands), on the same generated graphs of
/// trivial tasks, and prints the medians as tables (see BENCHMARKS.md).
///
/// It builds the orchestrator first (`cargo build --package xtask`, this
/// benchmark's profile) and measures a copy of it. make, ninja and a C
/// compiler (`cc`, for the floor) are optional: when one is missing, it
/// says how to install it and skips what needs it.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask-bench",
    bin_name = "cargo xtask-bench",
    version,
    max_term_width = 100,
    after_help = "\
Examples:
  cargo xtask-bench                          N = 100, 1,000, 10,000; -j2; 3 runs each (minutes)
  cargo xtask-bench --sizes 100 --runs 1     the smoke run CI does (seconds)
  cargo xtask-bench --markdown results.md    the tables, also as Markdown
  cargo xtask-bench --sizes 1000 --keep      keeps the generated graphs, to profile"
)]
struct Cli {
    /// Graph sizes to measure (tasks per graph, comma-separated)
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "100,1000,10000"
    )]
    sizes: Vec<usize>,
    /// Parallelism for every runner
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 2)]
    jobs: usize,
    /// Repetitions per measurement (the median is reported)
    #[arg(long, value_name = "N", default_value_t = 3)]
    runs: usize,
    /// Write the results as Markdown to this file as well
    #[arg(long, value_name = "FILE")]
    markdown: Option<Utf8PathBuf>,
    /// Keep the scratch folder (its graphs, ready to run again or to profile)
    #[arg(long)]
    keep: bool,
}

/// The exit code of an error (invalid usage, a missing essential program,
/// a runner that failed), as `cargo xtask` uses for invalid usage.
const FAILED: i32 = 2;

fn main() {
    if let Err(e) = run(&Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(FAILED);
    }
}

fn run(args: &Cli) -> Result<()> {
    ensure!(args.jobs >= 1, "-j must be at least 1");
    ensure!(args.runs >= 1, "--runs must be at least 1");
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    ensure!(
        sizes.first().is_some_and(|&n| n >= LAYERS),
        "--sizes needs at least one size, each at least {LAYERS} (one task per layer)"
    );
    let largest = *sizes.last().expect("checked above");

    runners::check_essentials()?;
    let built = runners::build_orchestrator()?;
    let scratch = Scratch::new(args.keep)?;
    eprintln!("Benchmarking in {}", scratch.path);
    let mut notes = Vec::new();
    let runners = runners::runners(&scratch.path, &built, &mut notes)?;
    let orchestrator = &runners[0];
    let bench = Bench {
        jobs: args.jobs,
        runs: args.runs,
        logs: scratch.path.join("run"),
        trash: Trash::new(&scratch.path)?,
    };

    let mut graph_rows = Vec::new();
    let mut commands = Vec::new();
    let mut baseline = 0;
    for &n in &sizes {
        let dir = scratch.path.join(format!("n{n}"));
        let graph = Graph::layered(n);
        for runner in &runners {
            runner.write(&dir, &graph, args.jobs)?;
        }
        baseline = baseline.max(
            measure(&mut Command::new("true"), &bench.logs)?
                .sample
                .rss_kib,
        );
        // Runners take turns within each repetition, so a burst of load from
        // elsewhere on the machine hits all of them rather than one.
        let mut samples = vec![Vec::new(); runners.len()];
        for rep in 1..=args.runs {
            for (runner, samples) in runners.iter().zip(&mut samples) {
                let sample = bench.run_graph(runner, &dir, &graph)?;
                eprintln!(
                    "  N={n:<6} run {rep}/{}  {:<12} {:.3} s",
                    args.runs,
                    runner.name(),
                    sample.wall
                );
                samples.push(sample);
            }
        }
        for (runner, samples) in runners.iter().zip(&samples) {
            graph_rows.push(GraphRow {
                runner: runner.name(),
                n,
                sample: Sample::median(samples),
            });
        }
        if n == largest {
            // The orchestrator's last run left this graph completed: just
            // what progress and a resume should be measured on.
            commands = bench.commands(orchestrator, &dir, &graph)?;
        }
        if !args.keep {
            bench.trash.take(&dir)?;
        }
    }

    let chain_dir = scratch.path.join("chain");
    let chain = Graph::chain(CHAIN, runners::compile_stamp(&scratch.path, &mut notes)?);
    let mut latencies = Vec::new();
    for runner in &runners {
        runner.write(&chain_dir, &chain, args.jobs)?;
        let (mut medians, mut p90s) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            bench.run_graph(runner, &chain_dir, &chain)?;
            let mut lat = chain_latencies(runner, &chain_dir, &chain)?;
            medians.push(median(&mut lat));
            p90s.push(percentile(&mut lat, 0.9));
        }
        eprintln!("  chain        {:<12} done", runner.name());
        latencies.push(LatencyRow {
            runner: runner.name(),
            median_ms: median(&mut medians),
            p90_ms: median(&mut p90s),
        });
    }

    let schedule_dir = scratch.path.join("schedule");
    let schedule = schedule::measure(&built, &schedule_dir, &bench.trash)?;
    eprintln!("  scheduling   done");

    notes.push(format!(
        "every peak RSS includes at least {}, the size of this benchmark process, which \
         Linux charges to each process it spawns (measured by spawning `true`): a figure \
         near it means \"at most that\"",
        tables::mib(baseline)
    ));
    let report = Report {
        command: format!(
            "cargo xtask-bench --sizes {} -j {} --runs {}",
            sizes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
            args.jobs,
            args.runs
        ),
        notes,
        tables: vec![
            tables::machine_table(),
            tables::graph_table(&graph_rows, args.jobs),
            tables::latency_table(&latencies),
            tables::commands_table(&commands),
            tables::schedule_table(&schedule),
            tables::targets_table(&graph_rows, &latencies, &commands),
        ],
    };
    print!("{}", report.text());
    if let Some(path) = &args.markdown {
        fs::write(path, report.markdown()).with_context(|| format!("cannot write {path}"))?;
        println!("Wrote {path}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_full_run() {
        use clap::Parser;
        let cli = super::Cli::parse_from(["xtask-bench"]);
        assert_eq!(cli.sizes, [100, 1000, 10000]);
        assert_eq!((cli.jobs, cli.runs, cli.keep), (2, 3, false));
        let cli = super::Cli::parse_from(["xtask-bench", "--sizes", "100,500", "-j4"]);
        assert_eq!((cli.sizes, cli.jobs), (vec![100, 500], 4));
    }
}
