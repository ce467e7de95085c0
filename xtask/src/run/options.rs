//! What a run selects (`--phase`, `--task`), how it shows itself, and
//! whether it launches.

use clap::ValueEnum;

use crate::model::config::ExecutorKind;
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::state::lock;
use crate::state::runs;
use crate::sys::shell::shell_word;

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

    /// The arguments that run again what it runs, where and as widely,
    /// for a shell: ` --executor slurm` (when not the config's
    /// `executor`, `configured`: else the tasks it stopped would go on
    /// elsewhere), ` -j N`, then ` --phase P` or ` --task A --task B`
    /// (`--task=-x`: a value that begins with `-` would be read as a flag).
    pub fn args_again(&self, configured: ExecutorKind) -> String {
        let arg = |flag: &str, value: &str| {
            let join = if value.starts_with('-') { "=" } else { " " };
            format!(" {flag}{join}{}", shell_word(value))
        };
        let executor = (self.executor != configured)
            .then(|| self.executor.to_possible_value())
            .flatten()
            .map(|kind| format!(" --executor {}", kind.get_name()));
        let jobs = self.jobs.map(|n| format!(" -j {n}"));
        let phase = self.phase.iter().map(|p| arg("--phase", p));
        let tasks = self.only.iter().map(|id| arg("--task", id));
        (executor.into_iter().chain(jobs))
            .chain(phase)
            .chain(tasks)
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selection_is_given_back_as_a_shell_takes_it() {
        let mut options = Options::everything(ExecutorKind::Local);
        assert_eq!(options.args_again(ExecutorKind::Local), "");
        options.phase = Some("01-build".to_owned());
        assert_eq!(options.args_again(ExecutorKind::Local), " --phase 01-build");
        options.phase = None;
        options.only = vec!["p/a".to_owned(), "-x/a b".to_owned()];
        assert_eq!(
            options.args_again(ExecutorKind::Local),
            " --task p/a --task='-x/a b'"
        );
    }

    #[test]
    fn the_executor_and_jobs_given_are_given_back() {
        let mut options = Options::everything(ExecutorKind::Slurm);
        options.jobs = Some(2);
        assert_eq!(
            options.args_again(ExecutorKind::Local),
            " --executor slurm -j 2"
        );
        assert_eq!(options.args_again(ExecutorKind::Slurm), " -j 2");
    }
}
