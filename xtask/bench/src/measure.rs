//! Timing: one run of a process tree measured with `wait4` (wall time, CPU
//! of the tree, peak RSS), a runner's run of a whole graph from nothing
//! done, the orchestrator's own commands, the latencies the chain's tasks
//! recorded, and the medians and percentiles reported.

use std::fs::{self, File};
use std::io;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::graphs::Graph;
use crate::runners::Runner;
use crate::scratch::Trash;
use crate::tables::CommandRow;

/// One run of one process tree.
#[derive(Clone, Copy, Default)]
pub struct Sample {
    /// Seconds from spawn to reaped.
    pub wall: f64,
    /// User + system seconds of the process and every descendant it reaped.
    pub cpu: f64,
    /// The largest resident set of the process or any descendant, in KiB
    /// (Linux's wait4 reports the maximum over the reaped tree, not a sum).
    pub rss_kib: u64,
}

impl Sample {
    /// The median of each figure on its own.
    pub fn median(samples: &[Sample]) -> Sample {
        let mut wall: Vec<f64> = samples.iter().map(|s| s.wall).collect();
        let mut cpu: Vec<f64> = samples.iter().map(|s| s.cpu).collect();
        let mut rss: Vec<f64> = samples.iter().map(|s| s.rss_kib as f64).collect();
        Sample {
            wall: median(&mut wall),
            cpu: median(&mut cpu),
            rss_kib: median(&mut rss) as u64,
        }
    }
}

pub struct Measured {
    pub sample: Sample,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Measured {
    /// Both streams' last lines, to show what went wrong.
    pub fn tail(&self) -> String {
        let text = format!("{}{}", self.stdout, self.stderr);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Runs `command` to its end with its output going to files (a pipe could
/// fill up, and writing to a file is cheap for every runner alike), and
/// takes its resource usage from wait4: per process tree, unlike
/// getrusage(RUSAGE_CHILDREN), whose peak memory is over every child ever.
pub fn measure(command: &mut Command, logs: &Utf8Path) -> Result<Measured> {
    let (out, err) = (logs.with_extension("out"), logs.with_extension("err"));
    let create =
        |path: &Utf8Path| File::create(path).with_context(|| format!("cannot create {path}"));
    // Linux charges a spawned process with the peak memory of the process
    // it was spawned from (exec records the old address space's peak): lower
    // ours to our current size first. What remains is the `baseline`.
    let _ = fs::write("/proc/self/clear_refs", "5");
    command
        .stdin(Stdio::null())
        .stdout(create(&out)?)
        .stderr(create(&err)?);
    let begun = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {:?}", command.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // We reap the child ourselves (std's Child never waits on drop).
    // SAFETY: both pointers are to live locals of the right types.
    while unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).context("wait4");
        }
    }
    let wall = begun.elapsed().as_secs_f64();
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let read =
        |path: &Utf8Path| fs::read_to_string(path).with_context(|| format!("cannot read {path}"));
    Ok(Measured {
        sample: Sample {
            wall,
            cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
            rss_kib: usage.ru_maxrss as u64,
        },
        code,
        stdout: read(&out)?,
        stderr: read(&err)?,
    })
}

/// What every measured run shares.
pub struct Bench {
    pub jobs: usize,
    pub runs: usize,
    /// Where the measured processes' output goes (`.out`, `.err`).
    pub logs: Utf8PathBuf,
    /// Where what earlier runs left is moved (see `Trash`).
    pub trash: Trash,
}

impl Bench {
    /// Runs `graph` with `runner` from nothing done; checks it succeeded and
    /// that every task's file is there.
    pub fn run_graph(&self, runner: &Runner, dir: &Utf8Path, graph: &Graph) -> Result<Sample> {
        runner.reset(dir, &self.trash)?;
        let run = measure(&mut runner.command(dir, self.jobs), &self.logs)?;
        if run.code != 0 {
            bail!(
                "{} exited with {} on the {}-task graph in {dir}:\n{}",
                runner.name(),
                run.code,
                graph.tasks.len(),
                run.tail()
            );
        }
        let target = graph.work.target();
        if let Some(i) =
            (0..graph.tasks.len()).find(|&i| !runner.output(dir, graph, i, target).exists())
        {
            bail!(
                "{} exited 0 but did not write {}",
                runner.name(),
                runner.output(dir, graph, i, target)
            );
        }
        Ok(run.sample)
    }

    /// The orchestrator's own commands on `graph` in `dir`, which its last
    /// run left completed: progress, a resume, then a dry run with the
    /// statuses cleared (the parsed task files still cached), and one with
    /// no workspace at all (the first command on a graph: nothing cached).
    pub fn commands(
        &self,
        orchestrator: &Runner,
        dir: &Utf8Path,
        graph: &Graph,
    ) -> Result<Vec<CommandRow>> {
        let n = graph.tasks.len();
        let summary = format!("Summary: {n} completed, 0 failed, 0 blocked, 0 not started");
        let resumed = |run: &Measured| {
            // Not quiet, so a launch would show as a `start` event line.
            run.stdout.contains(&summary)
                && !run
                    .stdout
                    .lines()
                    .any(|l| l.split_whitespace().nth(1) == Some("start"))
        };
        let planned = |run: &Measured| run.stdout.contains("Wave 1:");
        let any = |_: &Measured| true;
        let jobs = self.jobs.to_string();
        type Check<'a> = &'a dyn Fn(&Measured) -> bool;
        let mut rows = Vec::new();
        let dry_run: &[&str] = &["orchestrate", "--dry-run", "-j", &jobs];
        // The last two clear what is named first: a dry run of a completed
        // graph plans nothing.
        let cases: [(&str, &[&str], Check, Option<&str>); 5] = [
            ("progress", &["progress"], &any, None),
            ("progress --json", &["progress", "--json"], &any, None),
            (
                "orchestrate (resume)",
                &["orchestrate", "-j", &jobs],
                &resumed,
                None,
            ),
            (
                "--dry-run (statuses cleared)",
                dry_run,
                &planned,
                Some("workspace/status"),
            ),
            (
                "--dry-run (no workspace)",
                dry_run,
                &planned,
                Some("workspace"),
            ),
        ];
        for (name, args, check, cleared) in cases {
            if let Some(cleared) = cleared {
                self.trash.take(&dir.join(cleared))?;
            }
            let mut samples = Vec::new();
            for _ in 0..self.runs {
                let mut command = Command::new(&orchestrator.program);
                command.args(["--root", dir.as_str()]).args(args);
                let run = measure(&mut command, &self.logs)?;
                if run.code != 0 || !check(&run) {
                    bail!(
                        "`{name}` on {n} tasks went wrong (exit {}):\n{}",
                        run.code,
                        run.tail()
                    );
                }
                samples.push(run.sample);
            }
            eprintln!("  N={n:<6} {name}");
            rows.push(CommandRow {
                name,
                n,
                sample: Sample::median(&samples),
            });
        }
        Ok(rows)
    }
}

/// Milliseconds from each task's end (its last act) to its dependent's
/// start (its first act), as the tasks themselves recorded them.
pub fn chain_latencies(runner: &Runner, dir: &Utf8Path, chain: &Graph) -> Result<Vec<f64>> {
    let stamp = |i, name| -> Result<i64> {
        let path = runner.output(dir, chain, i, name);
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        text.trim()
            .parse()
            .with_context(|| format!("{path} does not hold a time in nanoseconds: {text:?}"))
    };
    (1..chain.tasks.len())
        .map(|i| Ok((stamp(i, "start")? - stamp(i - 1, "end")?) as f64 / 1e6))
        .collect()
}

/// The median; the mean of the two middle values for an even count.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// The smallest value with at least `p` of the values at or below it.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = (p * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentile() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let mut values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&mut values, 0.9), 9.0);
        assert_eq!(percentile(&mut [5.0], 0.9), 5.0);
    }
}
