//! The runners measured: the orchestrator (built by cargo, then pinned),
//! GNU make, ninja and the floor (a C spawn loop compiled here). Each one
//! writes its own description of a graph, resets what its last run left,
//! and gives the command that runs the whole graph.
//!
//! Nothing is installed: a missing optional program (make, ninja, cc) is
//! reported with the command that installs it, and its rows are skipped; a
//! missing essential one stops the benchmark with the same advice.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::process::{Command, Stdio};

use anyhow::{bail, ensure, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::graphs::Graph;
use crate::scratch::Trash;

/// The floor's source: see the comment at its top.
const FLOOR_C: &str = include_str!("floor.c");
/// The latency chain's task: the time as its first act, and as its last.
const STAMP_C: &str = include_str!("stamp.c");
/// The Debian packages that give a working `cc`, with the C library's
/// headers and static archive (`stamp` is linked statically).
const CC_PACKAGES: &str = "gcc libc6-dev";

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Orchestrate,
    Make,
    Ninja,
    Floor,
}

pub struct Runner {
    pub kind: Kind,
    pub program: Utf8PathBuf,
}

/// Prints a note and keeps it for the report.
fn note(notes: &mut Vec<String>, note: String) {
    println!("{note}");
    notes.push(note);
}

/// Stops with a clear error when a program every runner needs is missing:
/// every task is a `/bin/sh -c` command, and spawning `true` measures the
/// benchmark's own share of every peak RSS.
pub fn check_essentials() -> Result<()> {
    ensure!(
        works(Command::new("/bin/sh").args(["-c", ":"])),
        "/bin/sh is missing or does not run: every task of every runner runs in \
         `/bin/sh -c`; install it with `apt-get install dash`"
    );
    ensure!(
        works(&mut Command::new("true")),
        "`true` is missing: the benchmark spawns it to measure its own share of every \
         peak RSS; install it with `apt-get install coreutils`"
    );
    Ok(())
}

/// Builds the orchestrator with `$CARGO build --package xtask` (the cargo
/// that runs this benchmark, else `cargo` from PATH), with this benchmark's
/// profile, and returns the binary: beside this benchmark's own executable,
/// where cargo puts every binary of a profile. That binary (dev profile,
/// `opt-level = 1` for the xtask package) is the one `cargo xtask` runs.
pub fn build_orchestrator() -> Result<Utf8PathBuf> {
    let exe = std::env::current_exe().context("cannot find the benchmark's own executable")?;
    let exe = Utf8PathBuf::try_from(exe).context("the benchmark's path is not UTF-8")?;
    let dir = exe
        .parent()
        .context("the benchmark's executable has no folder")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The workspace of this package, whatever the current folder.
    let manifest = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let mut command = Command::new(&cargo);
    command.args([
        "build",
        "--package",
        "xtask",
        "--manifest-path",
        manifest.as_str(),
    ]);
    // cargo puts the dev and test profiles in debug/, release and bench in
    // release/, any other profile in a folder of its name.
    match dir.file_name() {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    eprintln!("Building the orchestrator: cargo build --package xtask");
    let status = command.status().with_context(|| {
        format!(
            "cannot run {cargo} to build the orchestrator: run the benchmark with \
             `cargo xtask-bench`, or set CARGO to cargo's path"
        )
    })?;
    ensure!(
        status.success(),
        "cannot build the orchestrator: `cargo build --package xtask` failed ({status})"
    );
    let xtask = dir.join("xtask");
    ensure!(
        xtask.is_file(),
        "cargo built the orchestrator, but it is not at {xtask}, beside the benchmark \
         (was the benchmark built for another target?): run it with `cargo xtask-bench`"
    );
    Ok(xtask)
}

/// The runners available here, the orchestrator first. make, ninja and the
/// floor are skipped (with a note saying how to install what is missing)
/// when they cannot run, so a machine without them still measures the rest.
pub fn runners(
    scratch: &Utf8Path,
    orchestrator: &Utf8Path,
    notes: &mut Vec<String>,
) -> Result<Vec<Runner>> {
    let mut runners = vec![Runner {
        kind: Kind::Orchestrate,
        program: pin_binary(scratch, orchestrator)?,
    }];
    for (kind, program, package) in [
        (Kind::Make, "make", "make"),
        (Kind::Ninja, "ninja", "ninja-build"),
    ] {
        if have(program) {
            runners.push(Runner {
                kind,
                program: program.into(),
            });
        } else {
            note(
                notes,
                format!(
                    "{program} is not available: its rows are skipped; \
                     install it with `apt-get install {package}`"
                ),
            );
        }
    }
    if !have("cc") {
        need_date()?;
        note(
            notes,
            format!(
                "cc is not available: the floor is skipped and the latency chain uses \
                 `date`; install a C compiler with `apt-get install {CC_PACKAGES}`"
            ),
        );
        return Ok(runners);
    }
    match compile_floor(scratch) {
        Ok(program) => runners.push(Runner {
            kind: Kind::Floor,
            program,
        }),
        Err(e) => note(notes, format!("the floor is skipped: {e:#}")),
    }
    Ok(runners)
}

/// A copy of the orchestrator to measure: a `cargo build` elsewhere during
/// the benchmark then cannot swap the orchestrator, or its supervisor,
/// halfway through.
fn pin_binary(scratch: &Utf8Path, orchestrator: &Utf8Path) -> Result<Utf8PathBuf> {
    let pinned = scratch.join("xtask");
    fs::copy(orchestrator, &pinned)
        .with_context(|| format!("cannot copy {orchestrator} to {pinned}"))?;
    Ok(pinned)
}

fn works(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `program --version` runs and succeeds.
fn have(program: &str) -> bool {
    works(Command::new(program).arg("--version"))
}

fn compile_floor(scratch: &Utf8Path) -> Result<Utf8PathBuf> {
    compile(scratch, "floor", FLOOR_C, &[])
}

/// The stamp program, static where the C library allows; `None` (and a
/// note, unless cc is missing, already noted) when it cannot be compiled,
/// and the chain uses `date`: an error if `date` is missing too.
pub fn compile_stamp(scratch: &Utf8Path, notes: &mut Vec<String>) -> Result<Option<Utf8PathBuf>> {
    if have("cc") {
        match compile(scratch, "stamp", STAMP_C, &["-static"])
            .or_else(|_| compile(scratch, "stamp", STAMP_C, &[]))
        {
            Ok(program) => return Ok(Some(program)),
            Err(e) => note(
                notes,
                format!("the latency chain uses `date`, not `stamp`: {e:#}"),
            ),
        }
    }
    need_date()?;
    Ok(None)
}

/// Without `stamp`, the latency chain's tasks run `date`: then essential.
fn need_date() -> Result<()> {
    ensure!(
        have("date"),
        "the latency chain needs `stamp` (compiled with cc) or `date`, and neither is \
         here: install a C compiler with `apt-get install {CC_PACKAGES}`, or `date` with \
         `apt-get install coreutils`"
    );
    Ok(())
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
    pub fn name(&self) -> &'static str {
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
    pub fn output(&self, dir: &Utf8Path, graph: &Graph, i: usize, name: &str) -> Utf8PathBuf {
        match self.kind {
            Kind::Orchestrate => dir.join("workspace/outputs").join(graph.id(i)).join(name),
            _ => dir.join(format!("o/t{i}.{name}")),
        }
    }

    /// Writes this runner's description of `graph` into `dir`.
    pub fn write(&self, dir: &Utf8Path, graph: &Graph, jobs: usize) -> Result<()> {
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
    pub fn reset(&self, dir: &Utf8Path, trash: &Trash) -> Result<()> {
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
    pub fn command(&self, dir: &Utf8Path, jobs: usize) -> Command {
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
