//! `cargo xtask`: runs the dependency graph of long-running tasks (AI
//! agents, analyses, builds) defined as Markdown files in `tasks/`, keeping
//! each task's state in `workspace/status/`. See ARCHITECTURE.md for the map.

mod atomic;
mod bench;
mod cgroups;
mod config;
mod definitions;
mod diagram;
mod edit;
mod executor;
mod exit;
mod flags;
mod graph;
mod layout;
mod live;
mod lock;
mod logs;
mod new;
mod orchestrate;
mod outputs;
mod problem;
mod process;
mod progress;
mod report;
mod scheduler;
mod signals;
mod status;
mod supervisor;
mod task;
mod timeline;
mod validate;
mod why;

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};
use clap::Parser;

use crate::flags::{Cli, Command};
use crate::layout::Layout;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(supervisor::ARG) {
        std::process::exit(supervisor::main());
    }
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::INVALID
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    let layout = Layout::new(root(cli.root)?);
    match cli.command {
        Command::Orchestrate(args) => orchestrate::orchestrate(&layout, &args),
        Command::Launch { task } => orchestrate::launch(&layout, &task),
        Command::Monitor => orchestrate::monitor(&layout),
        Command::Validate { tasks } => validate::run(&layout, &tasks),
        Command::Block { task, reason } => edit::block(&layout, &task, &reason),
        Command::Reset { tasks } => edit::reset(&layout, &tasks),
        Command::Why { task } => why::run(&layout, &task),
        Command::Progress {
            json: _,
            watch: true,
        } => live::watch(&layout),
        Command::Progress { json, watch: false } => progress::run(&layout, json),
        Command::New { task } => new::run(&layout, &task),
        Command::Next => orchestrate::next(&layout),
        Command::Report => timeline::run(&layout),
        Command::Graph { format, phase } => diagram::run(&layout, format, phase.as_deref()),
        Command::Logs {
            task,
            follow,
            attempt,
        } => logs::run(&layout, &task, follow, attempt),
        Command::Bench(args) => bench::run(&layout, &args),
    }
}

/// The repository root: `--root`, or the workspace that holds this crate.
fn root(flag: Option<Utf8PathBuf>) -> Result<Utf8PathBuf> {
    let root = match flag {
        Some(root) => root,
        None => Utf8Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the xtask crate lives in the repository")
            .to_owned(),
    };
    let root = match root.canonicalize_utf8() {
        Ok(root) => root,
        Err(e) => bail!("cannot use {root} as the root: {e}"),
    };
    if !root.join("tasks").is_dir() {
        bail!("{root} has no tasks/ folder: pass --root with the repository that holds tasks/");
    }
    Ok(root)
}
