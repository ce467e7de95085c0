//! The command line, as clap reads it. Commands live in their own modules;
//! this file says what can be typed, and escapes what clap echoes of it.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand};

use crate::agent::terminal::escaped;

/// Runs the dependency graph of tasks/ (Markdown tasks with YAML
/// frontmatter) with per-phase limits, timeouts, retries, status files under
/// workspace/status/ and a log per task.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    max_term_width = 100,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Repository root holding tasks/ and workspace/ [default: this repository]
    // Listed after each command's own options, not among them: just
    // before --help, which clap lists last (at 999).
    #[arg(long, global = true, value_name = "DIR", display_order = 998)]
    pub root: Option<Utf8PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes and a first few commands, below the list of commands.
const AFTER_HELP: &str = "\
Exit codes (README.md, \"Exit codes\", says each in full):
  0  every selected task completed
  1  a task failed, is blocked or could not start
  2  invalid definitions or usage, or another orchestrator holds the workspace
  3  the budget is reached and tasks were left unstarted (or awaiting approval to start)
  4  nothing more could start but tasks awaiting approval
  130, 143, 129  stopped by SIGINT, SIGTERM or SIGHUP
  141  a view whose reader went away (piped into `head`)

Examples:
  cargo xtask orchestrate --dry-run     what would start, in which order
  cargo xtask orchestrate -j 4          run the graph, at most 4 tasks at once
  cargo xtask progress --watch          follow a run from another terminal
  cargo xtask why 02-build/03-parser    why a task is where it is";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every task whose dependencies are completed, until nothing more can start
    #[command(after_help = "\
Examples:
  cargo xtask orchestrate                          every task that can run
  cargo xtask orchestrate --phase analysis         only the tasks of one phase
  cargo xtask orchestrate --task p/a --task p/b    only these tasks
  cargo xtask orchestrate --rerun-stale            also completed tasks whose files changed since
  cargo xtask orchestrate --dry-run                plan only: launch and write nothing")]
    Orchestrate(Orchestrate),
    /// Run one task in the foreground, if its dependencies and inputs are met
    Launch {
        /// Task id, e.g. 01-analysis/01-run-conformance-tests
        task: String,
    },
    /// Wait for the tasks recorded as running (after a crash) and record their end
    Monitor,
    /// Check the definitions and the outputs of completed tasks
    Validate {
        /// Tasks whose outputs to check [default: every completed task]
        tasks: Vec<String>,
    },
    /// Mark a task (or every task of a phase) failed, and block what depends on it, until `reset`
    Block {
        /// Task id, or a phase (`01-analysis` or `analysis`)
        task: String,
        /// Why, recorded as the task's error
        #[arg(long, value_name = "TEXT", default_value = crate::commands::block::BY_HAND, value_parser = one_line)]
        reason: String,
    },
    /// Approve a task (or a phase's tasks) that awaits approval: to start, or its result
    Approve {
        /// Task id, or a phase (`01-analysis` or `analysis`)
        task: String,
        /// Who approves [default: $USER, else the account's name]
        #[arg(long, value_name = "NAME", value_parser = one_line)]
        by: Option<String>,
        /// Recorded with the approval
        #[arg(long, value_name = "TEXT", value_parser = one_line)]
        note: Option<String>,
    },
    /// Reject a task (or a phase's tasks) that awaits approval: it fails with the reason, and what depends on it is blocked
    Reject {
        /// Task id, or a phase (each of its tasks that awaits approval)
        task: String,
        /// Why, recorded as the task's error
        #[arg(long, value_name = "TEXT", value_parser = one_line)]
        reason: String,
        /// Who rejects [default: $USER, else the account's name]
        #[arg(long, value_name = "NAME", value_parser = one_line)]
        by: Option<String>,
    },
    /// Clear tasks' status (and the blocks they caused) so they run again
    #[command(after_help = "\
Examples:
  cargo xtask reset 01-analysis/02-lint                 run one task again
  cargo xtask reset 01-analysis/02-lint --downstream    and everything after it
  cargo xtask reset 02-build                            every task of a phase")]
    Reset {
        /// Task ids, or phases (every task of the phase)
        #[arg(required = true)]
        tasks: Vec<String>,
        /// Also reset every task downstream of them, completed ones too
        #[arg(long)]
        downstream: bool,
    },
    /// Explain why a task is where it is (what it waits on, its error, its log), or a phase's tasks
    Why {
        /// Task id, or a phase
        task: String,
    },
    /// List the tasks that would start now, and what the first waiting ones wait on
    Next,
    /// Print the prompt a task's next attempt would get, rendered from its template
    Prompt {
        /// Task id
        task: String,
    },
    /// Print the dependency graph (Graphviz DOT or Mermaid), coloured by status
    Graph {
        /// Mermaid (for Markdown: GitHub renders it) or Graphviz DOT (`| dot -Tsvg`)
        #[arg(long, value_enum, default_value = "mermaid")]
        format: Format,
        /// Only this phase (`01-analysis` or `analysis`)
        #[arg(long)]
        phase: Option<String>,
    },
    /// Write workspace/report.html: timeline, critical path, parallelism, tables
    Report,
    /// Print the run's events (workspace/events.jsonl): every change of state, run starts and ends
    Events {
        /// Keep printing events as they come, until Ctrl-C
        #[arg(short, long)]
        follow: bool,
        /// Only this task's events
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// The JSON lines as they are in the file
        #[arg(long)]
        json: bool,
        /// Only the last N events (of --task, with it), then with -f those that come
        #[arg(short = 'n', long, value_name = "N")]
        lines: Option<usize>,
    },
    /// Print or follow a task's log
    #[command(after_help = "\
Examples:
  cargo xtask logs 01-analysis/02-lint -f             follow it while it runs
  cargo xtask logs 01-analysis/02-lint --attempt 1    an earlier attempt's
  cargo xtask logs 01-analysis/02-lint -n 50 -f       its last 50 lines, then follow it")]
    Logs {
        /// Task id, e.g. 01-analysis/01-run-conformance-tests
        task: String,
        /// Keep printing while the task runs (waiting for it to start, if it has not)
        #[arg(short, long)]
        follow: bool,
        /// An earlier attempt's log
        #[arg(long, value_name = "N")]
        attempt: Option<u32>,
        /// Only the last N lines, then with -f what comes (as `tail -n N`)
        #[arg(short = 'n', long, value_name = "N")]
        lines: Option<usize>,
    },
    /// Remove the worktrees and task/* branches whose work is merged; list the others, kept
    Clean {
        /// Say what would be removed; remove nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Run coding agents side by side on a demo repository: worktrees, merges, a conflict
    Demo {
        /// An empty folder for the demo repository [default: a new temporary folder]
        dir: Option<Utf8PathBuf>,
        /// The global `--root`, left out of this command's help: the demo
        /// makes a repository of its own, and refuses it (`main`).
        #[arg(long, hide = true, value_name = "DIR")]
        root: Option<Utf8PathBuf>,
    },
    /// Set a repository up: tasks/, tasks/orchestrator.yaml (every setting, commented), tasks/TEMPLATE.md, workspace/ in .gitignore
    Init,
    /// Create tasks/<phase>/<name>.md from tasks/TEMPLATE.md
    New {
        /// The new task's id, e.g. 01-analysis/07-audit-errors
        task: String,
    },
    /// Show progress per phase and each phase's completion gate
    Progress {
        /// Print one JSON document instead of the dashboard (every task included)
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        /// List every task with its state instead of the dashboard
        #[arg(long, conflicts_with_all = ["watch", "json"])]
        tasks: bool,
        /// Keep a live view of a run started elsewhere, until Ctrl-C
        #[arg(long)]
        watch: bool,
    },
}

/// The graph's output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct Orchestrate {
    /// Print the waves in which tasks would start; launch and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Run only this phase (`01-analysis` or `analysis`)
    #[arg(long, value_name = "PHASE", conflicts_with = "tasks")]
    pub phase: Option<String>,
    /// Run at most N tasks at once [default: max_concurrent_agents]
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Run only this task (repeatable)
    #[arg(long = "task", value_name = "ID")]
    pub tasks: Vec<String>,
    /// Where tasks run [default: `executor` in tasks/orchestrator.yaml, else local]
    #[arg(long, value_enum)]
    pub executor: Option<crate::model::config::ExecutorKind>,
    /// Run again the completed tasks whose task file or inputs changed since, and everything downstream of them
    #[arg(long)]
    pub rerun_stale: bool,
    /// Print only the summary
    #[arg(short, long)]
    pub quiet: bool,
}

/// The command line, or an exit with clap's error (or help), what it
/// echoes of the arguments escaped.
pub fn parse() -> Cli {
    Cli::try_parse().unwrap_or_else(|e| escape_echoed(e).exit())
}

/// `e` with the arguments it quotes written with their control characters
/// escaped: clap echoes a refused value as typed, and an escape sequence
/// in it would act on the terminal (clear it, write over a line).
fn escape_echoed(mut e: clap::Error) -> clap::Error {
    use clap::error::ContextValue;
    // Each quoted text that changed, as typed and as written out.
    let mut changed: Vec<(String, String)> = Vec::new();
    let mut escape = |text: &String| {
        let shown = escaped(text, &[]).into_owned();
        if shown != *text {
            changed.push((text.clone(), shown.clone()));
        }
        shown
    };
    let quoted: Vec<_> = e
        .context()
        .filter_map(|(kind, value)| match value {
            ContextValue::String(text) => Some((kind, ContextValue::String(escape(text)))),
            ContextValue::Strings(texts) => Some((
                kind,
                ContextValue::Strings(texts.iter().map(&mut escape).collect()),
            )),
            _ => None,
        })
        .collect();
    // A tip quotes them again (`to pass '--x' as a value, use '-- --x'`),
    // between clap's own colours, which a terminal shows as typed.
    let tips: Vec<_> = e
        .context()
        .filter_map(|(kind, value)| match value {
            ContextValue::StyledStrs(tips) => Some((
                kind,
                ContextValue::StyledStrs(tips.iter().map(|tip| requoted(tip, &changed)).collect()),
            )),
            _ => None,
        })
        .collect();
    for (kind, value) in quoted.into_iter().chain(tips) {
        e.insert(kind, value);
    }
    e
}

/// `tip` with each text `changed` quotes written out as it is elsewhere
/// in the error: its colours kept.
fn requoted(
    tip: &clap::builder::StyledStr,
    changed: &[(String, String)],
) -> clap::builder::StyledStr {
    let mut text = tip.ansi().to_string();
    for (typed, shown) in changed {
        text = text.replace(typed.as_str(), shown);
    }
    text.into()
}

/// A name or a reason: shown on one line in every view, so one line of
/// text, not empty.
fn one_line(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.contains(crate::agent::terminal::acts_on_a_terminal) {
        return Err("must be one line, without newlines or other control characters".to_owned());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
