//! What a run selects (`--phase`, `--task`), how it shows itself, and
//! whether it launches.

use crate::model::config::ExecutorKind;
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::state::lock;
use crate::state::runs;

/// What the run selects and how it shows itself.
pub struct Options {
    pub jobs: Option<usize>,
    /// Only this phase (folder name); resolved by the caller.
    pub phase: Option<String>,
    /// Only these tasks, when not empty.
    pub only: Vec<String>,
    pub quiet: bool,
    pub executor: ExecutorKind,
    /// Run again the completed tasks built from files that changed since,
    /// and what is downstream of them (`--rerun-stale`).
    pub rerun_stale: bool,
}

impl Options {
    /// Every task, with the config's limits.
    pub fn everything(executor: ExecutorKind) -> Options {
        Options {
            jobs: None,
            phase: None,
            only: Vec::new(),
            quiet: false,
            executor,
            rerun_stale: false,
        }
    }

    /// What the run going on selects (its `--phase`, `--task`), with its
    /// limits (its `-j`, its executor); with none going on, every task
    /// with the config's: what `next` and `why` plan with.
    pub fn of_the_run_going_on(layout: &Layout, executor: ExecutorKind) -> Options {
        let live = lock::run_going_on(layout)
            .and_then(|_| runs::last(layout))
            .filter(|run| !run.finished);
        let mut options = Options::everything(executor);
        if let Some(run) = live {
            options.jobs = run.jobs;
            options.executor = run.executor.unwrap_or(executor);
            options.phase = run.phase;
            options.only = run.only;
        }
        options
    }

    /// The arguments that select what it selects, as typed: ` --phase P`,
    /// ` --task A --task B`, or nothing.
    pub fn selection_args(&self) -> String {
        let phase = self.phase.iter().map(|p| format!(" --phase {p}"));
        let tasks = self.only.iter().map(|id| format!(" --task {id}"));
        phase.chain(tasks).collect()
    }

    pub fn selects(&self, task: &Task) -> bool {
        runs::selects(self.phase.as_deref(), &self.only, &task.id, || task.phase())
    }
}

/// Whether the run launches tasks, or only waits for those recorded as
/// running (`monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Launch,
    Monitor,
}
