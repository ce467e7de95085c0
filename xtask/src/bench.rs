//! `bench`: measures the orchestrator against GNU make, ninja and a spawn
//! floor on generated graphs (see BENCHMARKS.md and issue #4).
//!
//! Every runner gets the same graph of trivial tasks (each writes one small
//! file), so the differences are what each runner adds on top of spawning a
//! shell per task. Everything happens in a scratch folder under the system's
//! temporary folder, removed at the end, even on error.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::cli;
use crate::model::layout::Layout;

/// Layers of the throughput graphs: the issue's "5-layer graph".
const LAYERS: usize = 5;
/// Length of the chain that measures exit-to-dependent-launch latency.
const CHAIN: usize = 200;

pub fn run(_layout: &Layout, args: &cli::Bench) -> Result<i32> {
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

    let scratch = Scratch::new(args.keep)?;
    eprintln!("Benchmarking in {}", scratch.path);
    let mut notes = Vec::new();
    let runners = runners(&scratch.path, &mut notes)?;
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
    let chain = Graph::chain(CHAIN, compile_stamp(&scratch.path, &mut notes));
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

    notes.push(format!(
        "every peak RSS includes at least {}, the size of this benchmark process, which \
         Linux charges to each process it spawns (measured by spawning `true`): a figure \
         near it means \"at most that\"",
        mib(baseline)
    ));
    let report = Report {
        command: format!(
            "cargo xtask bench --sizes {} -j {} --runs {}",
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
            machine_table(),
            graph_table(&graph_rows, args.jobs),
            latency_table(&latencies),
            commands_table(&commands),
            targets_table(&graph_rows, &latencies, &commands),
        ],
    };
    print!("{}", report.text());
    if let Some(path) = &args.markdown {
        fs::write(path, report.markdown()).with_context(|| format!("cannot write {path}"))?;
        println!("Wrote {path}");
    }
    Ok(crate::exit::SUCCESS)
}

/// The scratch folder; dropping it removes it, so an error on the way does
/// not leave 10,000 task files behind.
struct Scratch {
    path: Utf8PathBuf,
    keep: bool,
}

impl Scratch {
    fn new(keep: bool) -> Result<Scratch> {
        let tmp = Utf8PathBuf::try_from(std::env::temp_dir())
            .context("the temporary folder's path is not UTF-8")?;
        let path = tmp.join(format!("xtask-bench-{}", std::process::id()));
        // A leftover of a killed run with a recycled pid: ours to reuse.
        if path.exists() {
            remove_dir(&path)?;
        }
        fs::create_dir_all(&path).with_context(|| format!("cannot create {path}"))?;
        Ok(Scratch { path, keep })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("Kept {}", self.path);
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Files of earlier runs, moved aside rather than deleted until the
/// benchmark ends (with the scratch folder). On ext4 without a journal, as
/// on the machine of BENCHMARKS.md, every file deleted makes each file
/// created nearby in the next minutes slower (ext4 steps over recently freed
/// inodes one by one): deleting a run's thousands of files just before the
/// next run would charge that run, most of all the runner that creates the
/// most files, for the benchmark's own cleaning.
struct Trash {
    dir: Utf8PathBuf,
    count: std::cell::Cell<usize>,
}

impl Trash {
    fn new(scratch: &Utf8Path) -> Result<Trash> {
        let dir = scratch.join("trash");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir}"))?;
        Ok(Trash {
            dir,
            count: Default::default(),
        })
    }

    /// Moves `path` (if it exists) into the trash.
    fn take(&self, path: &Utf8Path) -> Result<()> {
        let n = self.count.get();
        self.count.set(n + 1);
        match fs::rename(path, self.dir.join(n.to_string())) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot move {path} to {}", self.dir))
            }
            _ => Ok(()),
        }
    }
}

fn remove_dir(path: &Utf8Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {path}"))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// The graphs

/// What every task of a graph does; the only thing the two kinds of graph
/// differ in besides their edges.
#[derive(Clone, PartialEq)]
enum Work {
    /// Writes one small file, `out`: the throughput graphs.
    Echo,
    /// Writes the time it starts to `start`, then as its very last act the
    /// time it ends to `end`: the latency chain. With `stamp` (a small
    /// static C program) when a C compiler is here, else with `date`, whose
    /// own start costs more and shows in every runner's figure.
    Stamps { stamp: Option<Utf8PathBuf> },
}

impl Work {
    /// The file that marks a task done: make's and ninja's target.
    fn target(&self) -> &'static str {
        match self {
            Work::Echo => "out",
            Work::Stamps { .. } => "end",
        }
    }

    /// The outputs the orchestrator is told to validate.
    fn outputs(&self) -> &'static str {
        match self {
            Work::Echo => "[out]",
            Work::Stamps { .. } => "[start, end]",
        }
    }

    /// The shell command of task `i`, writing its files at `prefix` + name.
    fn command(&self, i: usize, prefix: &str) -> String {
        match self {
            Work::Echo => format!("echo {i} > {prefix}out"),
            Work::Stamps { stamp: Some(stamp) } => format!("{stamp} {prefix}"),
            Work::Stamps { stamp: None } => {
                format!("date +%s%N > {prefix}start; date +%s%N > {prefix}end")
            }
        }
    }
}

/// A task graph, tasks in a topological order (dependencies come first),
/// which the floor relies on.
struct Graph {
    work: Work,
    tasks: Vec<Node>,
}

struct Node {
    /// The orchestrator's phase folder: `L0`..`L4`, or `chain`.
    folder: String,
    deps: Vec<usize>,
}

impl Graph {
    /// `n` tasks in 5 layers; each task past the first layer depends on 1 to
    /// 3 distinct tasks of earlier layers. Seeded by `n`, so every runner and
    /// every machine gets the same graph for the same size.
    fn layered(n: usize) -> Graph {
        let mut rng = Lcg(n as u64);
        let mut tasks = Vec::with_capacity(n);
        for layer in 0..LAYERS {
            // The first n % LAYERS layers take one task more.
            let size = n / LAYERS + usize::from(layer < n % LAYERS);
            let earlier = tasks.len();
            for _ in 0..size {
                let mut deps = Vec::new();
                if layer > 0 {
                    let want = (1 + rng.below(3)).min(earlier);
                    while deps.len() < want {
                        let dep = rng.below(earlier);
                        if !deps.contains(&dep) {
                            deps.push(dep);
                        }
                    }
                    deps.sort_unstable();
                }
                tasks.push(Node {
                    folder: format!("L{layer}"),
                    deps,
                });
            }
        }
        Graph {
            work: Work::Echo,
            tasks,
        }
    }

    /// `n` tasks, each depending on the one before.
    fn chain(n: usize, stamp: Option<Utf8PathBuf>) -> Graph {
        let tasks = (0..n)
            .map(|i| Node {
                folder: "chain".into(),
                deps: i.checked_sub(1).into_iter().collect(),
            })
            .collect();
        Graph {
            work: Work::Stamps { stamp },
            tasks,
        }
    }

    fn id(&self, i: usize) -> String {
        format!("{}/t{i}", self.tasks[i].folder)
    }

    /// The phase folders, in order, once each.
    fn folders(&self) -> Vec<&str> {
        let mut folders: Vec<&str> = self.tasks.iter().map(|t| t.folder.as_str()).collect();
        folders.dedup();
        folders
    }
}

/// Knuth's MMIX linear congruential generator: deterministic and good enough
/// to scatter edges, without a dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // The high bits: the low bits of an LCG have short periods.
        ((self.0 >> 33) % bound as u64) as usize
    }
}

// ---------------------------------------------------------------------------
// The runners

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Orchestrate,
    Make,
    Ninja,
    Floor,
}

struct Runner {
    kind: Kind,
    program: Utf8PathBuf,
}

/// The runners available here, the orchestrator first. make and ninja are
/// installed when missing and skipped (with a note) when that fails, so a
/// machine without a package manager still measures the rest.
fn runners(scratch: &Utf8Path, notes: &mut Vec<String>) -> Result<Vec<Runner>> {
    let mut runners = vec![Runner {
        kind: Kind::Orchestrate,
        program: pin_binary(scratch)?,
    }];
    install_missing(&[("make", "make"), ("ninja", "ninja-build")]);
    for (kind, program) in [(Kind::Make, "make"), (Kind::Ninja, "ninja")] {
        if works(Command::new(program).arg("--version")) {
            runners.push(Runner {
                kind,
                program: program.into(),
            });
        } else {
            let note = format!("{program} is not available: its rows are skipped");
            println!("{note}");
            notes.push(note);
        }
    }
    match compile_floor(scratch) {
        Ok(program) => runners.push(Runner {
            kind: Kind::Floor,
            program,
        }),
        Err(e) => {
            let note = format!("the floor is skipped: {e:#}");
            println!("{note}");
            notes.push(note);
        }
    }
    Ok(runners)
}

/// A copy of this binary (the one `cargo xtask` built, with its profile) to
/// measure: a `cargo build` elsewhere during the benchmark then cannot swap
/// the orchestrator, or its supervisor, halfway through.
fn pin_binary(scratch: &Utf8Path) -> Result<Utf8PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running xtask binary")?;
    let pinned = scratch.join("xtask");
    fs::copy(&exe, &pinned)
        .with_context(|| format!("cannot copy {} to {pinned}", exe.display()))?;
    Ok(pinned)
}

fn works(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the packages of the missing programs with apt-get (via `sudo -n`
/// when not root). Failing is not an error: the caller skips those runners.
fn install_missing(programs: &[(&str, &str)]) {
    let packages: Vec<&str> = programs
        .iter()
        .filter(|(program, _)| !works(Command::new(program).arg("--version")))
        .map(|&(_, package)| package)
        .collect();
    if packages.is_empty() {
        return;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        command.args(args);
        works(&mut command)
    };
    let install = [
        &["install", "-y", "--no-install-recommends"][..],
        &["-o", "DPkg::Lock::Timeout=600"],
        &packages,
    ]
    .concat();
    println!(
        "Installing {} with apt-get install (missing)...",
        packages.join(" ")
    );
    // A fresh container often has no package lists yet: fetch them once.
    let installed =
        apt(&install) || (apt(&["update", "-o", "DPkg::Lock::Timeout=600"]) && apt(&install));
    if !installed {
        println!("apt-get could not install {}", packages.join(" "));
    }
}

/// The floor: starts each command with posix_spawn of `/bin/sh -c`, at most
/// `jobs` at once, and does nothing else.
///
/// It takes the commands in the list's (topological) order: the next one
/// starts as soon as fewer than `jobs` run and its own dependencies have
/// ended, otherwise it waits for any child. So it honours every edge, but
/// never starts a later ready task ahead of a blocked earlier one; with
/// dependencies only on earlier layers that head-of-line wait is rare and
/// short, and it makes the floor slightly slower, never faster.
const FLOOR_C: &str = r#"
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

/* Line format: "<ndeps> <dep>... <command>", deps being earlier line numbers.
   Returns whether every dependency is done; sets *command. */
static int ready(char *line, const char *done, char **command) {
    char *p = line;
    long ndeps = strtol(p, &p, 10);
    int ok = 1;
    for (long d = 0; d < ndeps; d++) {
        if (!done[strtol(p, &p, 10)]) ok = 0;
    }
    *command = p + 1;
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: floor JOBS LIST\n");
        return 2;
    }
    int jobs = atoi(argv[1]);
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 2;
    }
    size_t cap = 1 << 20, len = 0, got;
    char *text = malloc(cap);
    while ((got = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) text = realloc(text, cap *= 2);
    }
    text[len] = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    char **lines = malloc(n * sizeof *lines);
    char *line = text;
    for (size_t i = 0; i < n; i++) {
        char *end = strchr(line, '\n');
        *end = 0;
        lines[i] = line;
        line = end + 1;
    }
    char *done = calloc(n, 1);
    pid_t *pids = calloc(jobs, sizeof *pids);
    size_t *slot_task = calloc(jobs, sizeof *slot_task);
    size_t next = 0;
    int running = 0, failed = 0;
    while (next < n || running > 0) {
        char *command;
        if (next < n && running < jobs && ready(lines[next], done, &command)) {
            char *args[] = {"sh", "-c", command, NULL};
            int slot = 0;
            while (pids[slot]) slot++;
            int e = posix_spawn(&pids[slot], "/bin/sh", NULL, NULL, args, environ);
            if (e) {
                fprintf(stderr, "posix_spawn: %s\n", strerror(e));
                return 1;
            }
            slot_task[slot] = next++;
            running++;
            continue;
        }
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR) continue;
            perror("wait");
            return 1;
        }
        for (int slot = 0; slot < jobs; slot++) {
            if (pids[slot] == pid) {
                done[slot_task[slot]] = 1;
                pids[slot] = 0;
                running--;
            }
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
    return failed;
}
"#;

/// The latency chain's task: the time as its first act, and as its last.
/// Static, so that it starts with no dynamic loader.
const STAMP_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static void put(const char *prefix, const char *name) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char path[4096], text[32];
    snprintf(path, sizeof path, "%s%s", prefix, name);
    int n = snprintf(text, sizeof text, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, n) != n) _exit(1);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    put(argv[1], "start");
    put(argv[1], "end");
    return 0;
}
"#;

fn compile_floor(scratch: &Utf8Path) -> Result<Utf8PathBuf> {
    compile(scratch, "floor", FLOOR_C, &[])
}

/// The stamp program, static where the C library allows; `None` (and a
/// note) without a C compiler, and the chain uses `date`.
fn compile_stamp(scratch: &Utf8Path, notes: &mut Vec<String>) -> Option<Utf8PathBuf> {
    match compile(scratch, "stamp", STAMP_C, &["-static"])
        .or_else(|_| compile(scratch, "stamp", STAMP_C, &[]))
    {
        Ok(program) => Some(program),
        Err(e) => {
            let note = format!("the latency chain uses `date`, not `stamp`: {e:#}");
            println!("{note}");
            notes.push(note);
            None
        }
    }
}

fn compile(scratch: &Utf8Path, name: &str, source: &str, flags: &[&str]) -> Result<Utf8PathBuf> {
    let source_file = scratch.join(format!("{name}.c"));
    let program = scratch.join(name);
    fs::write(&source_file, source).with_context(|| format!("cannot write {source_file}"))?;
    let output = Command::new("cc")
        .args(["-O2", "-o", program.as_str(), source_file.as_str()])
        .args(flags)
        .output()
        .context("cannot run cc")?;
    if !output.status.success() {
        bail!(
            "cc -O2 {} failed: {}",
            flags.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(program)
}

impl Runner {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Orchestrate => "orchestrate",
            Kind::Make => "make",
            Kind::Ninja => "ninja",
            Kind::Floor => "floor",
        }
    }

    /// Where task `i`'s command writes its files: in its output folder for
    /// the orchestrator, as `o/t<i>.<name>` (relative to the graph's folder)
    /// for the others.
    fn prefix(&self, i: usize) -> String {
        match self.kind {
            Kind::Orchestrate => "$TASK_OUTPUT_DIR/".into(),
            _ => format!("o/t{i}."),
        }
    }

    /// The file `name` that task `i` wrote.
    fn output(&self, dir: &Utf8Path, graph: &Graph, i: usize, name: &str) -> Utf8PathBuf {
        match self.kind {
            Kind::Orchestrate => dir.join("workspace/outputs").join(graph.id(i)).join(name),
            _ => dir.join(format!("o/t{i}.{name}")),
        }
    }

    /// Writes this runner's description of `graph` into `dir`.
    fn write(&self, dir: &Utf8Path, graph: &Graph, jobs: usize) -> Result<()> {
        let work = &graph.work;
        let command = |i| work.command(i, &self.prefix(i));
        // make's and ninja's targets, by task.
        let target = |i| format!("o/t{i}.{}", work.target());
        let targets = |deps: &[usize]| deps.iter().map(|&d| target(d)).collect::<Vec<_>>();
        match self.kind {
            Kind::Orchestrate => {
                let mut config = format!("max_concurrent_agents: {jobs}\nphases:\n");
                for folder in graph.folders() {
                    writeln!(config, "  {folder}: {{ max_parallel: {jobs} }}")?;
                    let folder = dir.join("tasks").join(folder);
                    fs::create_dir_all(&folder)
                        .with_context(|| format!("cannot create {folder}"))?;
                }
                write_file(&dir.join("tasks/orchestrator.yaml"), &config)?;
                for (i, task) in graph.tasks.iter().enumerate() {
                    let deps: Vec<String> = task.deps.iter().map(|&d| graph.id(d)).collect();
                    let text = format!(
                        "---\ndependencies: [{}]\noutputs: {}\ncommand: \"{}\"\n---\n",
                        deps.join(", "),
                        work.outputs(),
                        command(i)
                    );
                    write_file(&dir.join(format!("tasks/{}.md", graph.id(i))), &text)?;
                }
            }
            Kind::Make => {
                let all: Vec<String> = (0..graph.tasks.len()).map(target).collect();
                let mut text = format!(".PHONY: all\nall: {}\n", all.join(" "));
                for (i, task) in graph.tasks.iter().enumerate() {
                    let deps = targets(&task.deps).join(" ");
                    write!(text, "{}: {deps}\n\t{}\n", target(i), command(i))?;
                }
                write_file(&dir.join("Makefile"), &text)?;
            }
            Kind::Ninja => {
                // Without a `default`, ninja builds every target that no
                // other target uses, which brings in all the others.
                let mut text = String::from("rule sh\n  command = $cmd\n");
                for (i, task) in graph.tasks.iter().enumerate() {
                    let deps = targets(&task.deps).join(" ");
                    write!(
                        text,
                        "build {}: sh {deps}\n  cmd = {}\n",
                        target(i),
                        command(i)
                    )?;
                }
                write_file(&dir.join("build.ninja"), &text)?;
            }
            Kind::Floor => {
                let mut text = String::new();
                for (i, task) in graph.tasks.iter().enumerate() {
                    write!(text, "{}", task.deps.len())?;
                    for dep in &task.deps {
                        write!(text, " {dep}")?;
                    }
                    writeln!(text, " {}", command(i))?;
                }
                write_file(&dir.join("floor.txt"), &text)?;
            }
        }
        Ok(())
    }

    /// Removes what a run of this runner left in `dir`, so that the next
    /// run starts from nothing done.
    fn reset(&self, dir: &Utf8Path, trash: &Trash) -> Result<()> {
        if self.kind == Kind::Orchestrate {
            return trash.take(&dir.join("workspace"));
        }
        // make, ninja and the floor share o/; ninja also keeps a log of
        // what it built, which would not change its decisions but is state.
        trash.take(&dir.join("o"))?;
        for file in [".ninja_log", ".ninja_deps"] {
            let path = dir.join(file);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {path}"))
                }
                _ => {}
            }
        }
        let out = dir.join("o");
        fs::create_dir(&out).with_context(|| format!("cannot create {out}"))
    }

    /// The command that runs the whole graph in `dir`, its output silenced
    /// as far as the runner allows (what is left goes to a file).
    fn command(&self, dir: &Utf8Path, jobs: usize) -> Command {
        let mut command = Command::new(&self.program);
        let jobs = jobs.to_string();
        match self.kind {
            Kind::Orchestrate => {
                command.args(["--root", dir.as_str(), "orchestrate", "-j", &jobs, "-q"])
            }
            // -r: no built-in implicit rules, which every target would
            // otherwise be checked against; a tuned Makefile would do the same.
            Kind::Make => command
                .args(["-r", "-s", "-j", &jobs, "-f", "Makefile", "-C"])
                .arg(dir),
            Kind::Ninja => command.args(["--quiet", "-j", &jobs, "-C", dir.as_str()]),
            Kind::Floor => command.arg(&jobs).arg(dir.join("floor.txt")),
        };
        command.current_dir(dir);
        command
    }
}

fn write_file(path: &Utf8Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("cannot write {path}"))
}

// ---------------------------------------------------------------------------
// Measuring

/// One run of one process tree.
#[derive(Clone, Copy, Default)]
struct Sample {
    /// Seconds from spawn to reaped.
    wall: f64,
    /// User + system seconds of the process and every descendant it reaped.
    cpu: f64,
    /// The largest resident set of the process or any descendant, in KiB
    /// (Linux's wait4 reports the maximum over the reaped tree, not a sum).
    rss_kib: u64,
}

impl Sample {
    /// The median of each figure on its own.
    fn median(samples: &[Sample]) -> Sample {
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

struct Measured {
    sample: Sample,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Measured {
    /// Both streams' last lines, to show what went wrong.
    fn tail(&self) -> String {
        let text = format!("{}{}", self.stdout, self.stderr);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Runs `command` to its end with its output going to files (a pipe could
/// fill up, and writing to a file is cheap for every runner alike), and
/// takes its resource usage from wait4: per process tree, unlike
/// getrusage(RUSAGE_CHILDREN), whose peak memory is over every child ever.
fn measure(command: &mut Command, logs: &Utf8Path) -> Result<Measured> {
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

struct Bench {
    jobs: usize,
    runs: usize,
    /// Where the measured processes' output goes (`.out`, `.err`).
    logs: Utf8PathBuf,
    /// Where what earlier runs left is moved (see `Trash`).
    trash: Trash,
}

impl Bench {
    /// Runs `graph` with `runner` from nothing done; checks it succeeded and
    /// that every task's file is there.
    fn run_graph(&self, runner: &Runner, dir: &Utf8Path, graph: &Graph) -> Result<Sample> {
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
    /// run left completed: progress, a resume, then (on a cleared
    /// workspace) a dry run.
    fn commands(
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
        let cases: [(&str, &[&str], Check, bool); 4] = [
            ("progress", &["progress"], &any, false),
            ("progress --json", &["progress", "--json"], &any, false),
            (
                "orchestrate (resume)",
                &["orchestrate", "-j", &jobs],
                &resumed,
                false,
            ),
            (
                "orchestrate --dry-run",
                &["orchestrate", "--dry-run", "-j", &jobs],
                &planned,
                true,
            ),
        ];
        for (name, args, check, fresh) in cases {
            if fresh {
                // A dry run of a completed graph plans nothing: measure it
                // on the same graph with nothing done.
                self.trash.take(&dir.join("workspace"))?;
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
fn chain_latencies(runner: &Runner, dir: &Utf8Path, chain: &Graph) -> Result<Vec<f64>> {
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
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// The smallest value with at least `p` of the values at or below it.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = (p * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

// ---------------------------------------------------------------------------
// Reporting

struct GraphRow {
    runner: &'static str,
    n: usize,
    sample: Sample,
}

struct LatencyRow {
    runner: &'static str,
    median_ms: f64,
    p90_ms: f64,
}

struct CommandRow {
    name: &'static str,
    n: usize,
    sample: Sample,
}

fn find<'a>(rows: &'a [GraphRow], runner: &str, n: usize) -> Option<&'a Sample> {
    rows.iter()
        .find(|r| r.runner == runner && r.n == n)
        .map(|r| &r.sample)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn graph_table(rows: &[GraphRow], jobs: usize) -> Table {
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

fn latency_table(rows: &[LatencyRow]) -> Table {
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

fn commands_table(rows: &[CommandRow]) -> Table {
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

/// Issue #4's targets, each only when this run measured it at the size the
/// target names (a smoke run at N=100 says nothing about N=10,000).
fn targets_table(graphs: &[GraphRow], latencies: &[LatencyRow], commands: &[CommandRow]) -> Table {
    let mut table = Table::new("Targets of issue #4", &["target", "measured", "met"]);
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
fn machine_table() -> Table {
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
struct Table {
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

    fn text(&self) -> String {
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

    fn markdown(&self) -> String {
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

struct Report {
    command: String,
    notes: Vec<String>,
    tables: Vec<Table>,
}

impl Report {
    fn text(&self) -> String {
        let mut text: String = self.tables.iter().map(Table::text).collect();
        for note in &self.notes {
            writeln!(text, "note: {note}").expect("writing to a String");
        }
        text
    }

    fn markdown(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layered_graph_has_five_layers_and_earlier_deps() {
        let graph = Graph::layered(1003);
        assert_eq!(graph.tasks.len(), 1003);
        assert_eq!(graph.folders(), ["L0", "L1", "L2", "L3", "L4"]);
        let first_layer = graph.tasks.iter().take_while(|t| t.folder == "L0").count();
        for (i, task) in graph.tasks.iter().enumerate() {
            if i < first_layer {
                assert!(task.deps.is_empty());
                continue;
            }
            assert!(
                (1..=3).contains(&task.deps.len()),
                "task {i}: {:?}",
                task.deps
            );
            for &dep in &task.deps {
                assert!(graph.tasks[dep].folder < task.folder, "task {i} -> {dep}");
            }
            let mut distinct = task.deps.clone();
            distinct.dedup();
            assert_eq!(distinct, task.deps);
        }
    }

    #[test]
    fn layered_graph_is_the_same_every_time() {
        let deps = |g: Graph| g.tasks.into_iter().map(|t| t.deps).collect::<Vec<_>>();
        assert_eq!(deps(Graph::layered(500)), deps(Graph::layered(500)));
    }

    #[test]
    fn median_and_percentile() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let mut values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&mut values, 0.9), 9.0);
        assert_eq!(percentile(&mut [5.0], 0.9), 5.0);
    }
}
