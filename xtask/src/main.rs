//! `cargo xtask`: runs the dependency graph of long-running tasks (AI
//! agents, analyses, builds) defined as Markdown files in `tasks/`, keeping
//! each task's state in `workspace/status/`. See ARCHITECTURE.md for the map.

mod agent;
mod cli;
mod commands;
mod executor;
mod exit;
mod git;
mod model;
mod run;
mod state;
mod supervisor;
mod sys;
mod ui;

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::cli::{Cli, Command};
use crate::model::layout::Layout;
use crate::model::problem::Invalid;

fn main() {
    state::runs::note_process_start();
    sys::process::inherited_descriptors_close_on_exec();
    sys::process::raise_open_files_limit();
    // As the OS gives them: an argument that is not UTF-8 is clap's to
    // refuse, with a usage error (`std::env::args` would panic on it).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some(executor::protocol::SUPERVISOR_ARG) => std::process::exit(supervisor::main()),
        Some(executor::setup::SETUP_ARG) => {
            // Ours, made from task definitions, which are UTF-8.
            let rest: Vec<String> = (args[2..].iter())
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            std::process::exit(executor::setup::main(&rest))
        }
        _ => {}
    }
    let cli = cli::parse();
    // A dry run launches nothing: a view.
    let launches = match &cli.command {
        Command::Orchestrate(args) => !args.dry_run,
        Command::Launch { .. } | Command::Monitor => true,
        _ => false,
    };
    if !launches {
        // A view piped into `head` ends quietly when the pipe closes, as
        // Unix tools do. A run ignores a closed pipe: it must not stop.
        sys::signals::default_sigpipe();
    }
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            match e.downcast_ref::<Invalid>() {
                Some(invalid) => eprintln!("error: {}", invalid.describe(launches)),
                // It may quote what was typed, or a file's text: what a
                // terminal would act on is written out.
                None => eprintln!(
                    "error: {}",
                    agent::terminal::escaped(&format!("{e:#}"), &['\n', '\t'])
                ),
            }
            exit::INVALID
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    use commands::approve::Decided;
    use state::approvals::Decision;
    // Typed after `demo`, `--root` is the demo's own (hidden from its help).
    let demo_root = match &cli.command {
        Command::Demo { root, .. } => root.as_ref().or(cli.root.as_ref()),
        _ => None,
    };
    if let Some(root) = demo_root {
        // It makes a repository of its own, never in the one it is given.
        anyhow::bail!("demo makes a repository of its own: give its folder as DIR (`demo {root}`, an empty folder), not --root");
    }
    let root_arg = cli.root.as_ref().map(|r| r.to_string());
    let needs_tasks = !matches!(cli.command, Command::Init | Command::Demo { .. });
    let layout = Layout::new(root(cli.root, needs_tasks)?, root_arg);
    match cli.command {
        Command::Orchestrate(args) => commands::orchestrate::run(&layout, &args),
        Command::Launch { task } => commands::launch::run(&layout, &task),
        Command::Monitor => commands::monitor::run(&layout),
        Command::Validate { tasks } => commands::validate::run(&layout, &tasks),
        Command::Block { task, reason } => commands::block::run(&layout, &task, &reason),
        Command::Reset { tasks, downstream } => commands::reset::run(&layout, &tasks, downstream),
        Command::Why { task } => commands::why::run(&layout, &task),
        Command::Approve { task, by, note } => commands::approve::run(
            &layout,
            &task,
            &Decided {
                decision: Decision::Approved,
                by: by.as_deref(),
                note: note.as_deref(),
            },
        ),
        Command::Reject { task, reason, by } => commands::approve::run(
            &layout,
            &task,
            &Decided {
                decision: Decision::Rejected,
                by: by.as_deref(),
                note: Some(&reason),
            },
        ),
        Command::Progress { watch: true, .. } => commands::progress::watch(&layout),
        Command::Progress { json, tasks, .. } => commands::progress::run(&layout, json, tasks),
        Command::Init => commands::init::run(&layout),
        Command::Demo { dir, .. } => commands::demo::run(dir.as_deref()),
        Command::Clean { dry_run } => commands::clean::run(&layout, dry_run),
        Command::New { task } => commands::new::run(&layout, &task),
        Command::Next => commands::next::run(&layout),
        Command::Prompt { task } => commands::prompt::run(&layout, &task),
        Command::Report => commands::report::run(&layout),
        Command::Events {
            follow,
            task,
            json,
            lines,
        } => commands::events::run(&layout, follow, task.as_deref(), json, lines),
        Command::Graph { format, phase } => commands::graph::run(&layout, format, phase.as_deref()),
        Command::Logs {
            task,
            follow,
            attempt,
            lines,
        } => commands::logs::run(&layout, &task, follow, attempt, lines),
    }
}

/// The repository root: `--root`, or the workspace that holds this crate;
/// it must hold `tasks/` unless `init` is to make it.
fn root(flag: Option<Utf8PathBuf>, needs_tasks: bool) -> Result<Utf8PathBuf> {
    let init = match &flag {
        Some(root) => format!(
            "cargo xtask --root {} init",
            sys::shell::shell_word(root.as_str())
        ),
        None => "cargo xtask init".to_owned(),
    };
    let root = match flag {
        Some(root) => root,
        None => Utf8Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the xtask crate lives in the repository")
            .to_owned(),
    };
    let root = match root.canonicalize_utf8() {
        Ok(root) => root,
        Err(e) if root.as_str().is_empty() => {
            bail!("`--root` was given an empty path: name the project's folder (`--root .` for this one): {e}")
        }
        Err(e) => bail!(
            "cannot use {} as the root: {e}",
            agent::terminal::escaped(root.as_str(), &[])
        ),
    };
    if !root.is_dir() {
        bail!("{root} is a file, not a folder: pass --root with the repository's folder");
    }
    if needs_tasks && !root.join("tasks").is_dir() {
        bail!("{root} has no tasks/ folder: pass --root with the repository that holds tasks/, or `{init}` to make one");
    }
    Ok(root)
}
