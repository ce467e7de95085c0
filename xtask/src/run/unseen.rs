//! Attempts that ended while no orchestrator ran ("ended unseen"): their
//! status says running until the next run records their end. The one
//! reading of them for the views and the budget, for local and Slurm tasks
//! alike: a local attempt's process is gone (`Status::process_gone`), a
//! Slurm job is ended as Slurm lists it (one look for all, while no run
//! holds the workspace to record it); it ran until its end, and what its
//! agent printed is read as the next run will read it.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::agent::result::Report;
use crate::model::config::Config;
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::state::records::{self, ExitRecord};
use crate::state::status::{self, Ending, State, Status};

/// An attempt that ended unseen.
pub struct EndedUnseen {
    /// How it ended, as its supervisor recorded it or Slurm lists it; none
    /// for a process nobody looked after, whose end is not known.
    pub end: Option<ExitRecord>,
    /// What its agent reported (`EndedUnseen::read`): none for a command,
    /// for work left in the merge queue (counted as its attempt ended),
    /// or when its output holds no result.
    pub report: Option<Report>,
}

/// The ends Slurm lists of the jobs of tasks recorded running, while no
/// run holds the workspace to record them.
#[derive(Default)]
pub struct SlurmEnds(HashMap<String, ExitRecord>);

impl SlurmEnds {
    /// One look at Slurm for the jobs of those of `statuses` recorded
    /// running: none while a run holds the workspace (it records their
    /// ends), or when Slurm does not answer (the run, too, takes their ends
    /// later); no look when none runs on Slurm.
    pub fn look<'a>(layout: &Layout, statuses: impl IntoIterator<Item = &'a Status>) -> SlurmEnds {
        let jobs: Vec<(&str, &str)> = (statuses.into_iter())
            .filter(|s| s.status == State::Running)
            .filter_map(|s| Some((s.task_id.as_str(), s.job_id.as_deref()?)))
            .collect();
        if jobs.is_empty() || status::a_run_holds(layout) {
            return SlurmEnds::default();
        }
        SlurmEnds(crate::executor::slurm::ended_records(layout, &jobs))
    }
}

impl EndedUnseen {
    /// Whether the attempt that `status` names, recorded running, ended
    /// unseen, and how; its agent's report not read (`read` reads it).
    pub fn of(layout: &Layout, status: &Status, slurm: &SlurmEnds) -> Option<EndedUnseen> {
        if status.status != State::Running {
            return None;
        }
        // Gone: a local process, or a Slurm job whose end its poller
        // recorded before its run died; its end as recorded, if it is.
        if status.process_gone(layout) {
            let end = records::recorded_end(layout, &status.task_id, status.attempt);
            return Some(EndedUnseen { end, report: None });
        }
        let end = slurm.0.get(status.job_id.as_ref()?)?.clone();
        Some(EndedUnseen {
            end: Some(end),
            report: None,
        })
    }

    /// `of`, with what the agent of `task` reported read as the next run
    /// will read it.
    pub fn read(
        layout: &Layout,
        config: &Config,
        task: &Task,
        status: &Status,
        slurm: &SlurmEnds,
    ) -> Option<EndedUnseen> {
        let ended = EndedUnseen::of(layout, status, slurm)?;
        Some(ended.with_report(layout, config, task, status))
    }

    /// With what the agent of `task`, whose latest attempt `status` names,
    /// reported, as the next run will read it (`verdict::unseen_report`):
    /// none of one that never started.
    pub fn with_report(
        self,
        layout: &Layout,
        config: &Config,
        task: &Task,
        status: &Status,
    ) -> EndedUnseen {
        let told = status.previous.clone();
        let started = !(self.end.as_ref()).is_some_and(|end| end.ending == Ending::SpawnFailed);
        let report = (started && !status.merging && task.is_agent(config))
            .then(|| super::verdict::unseen_report(layout, config, task, status.attempt, told))
            .flatten();
        EndedUnseen { report, ..self }
    }

    /// When it ended, if known.
    pub fn ended_at(&self) -> Option<SystemTime> {
        status::parse_timestamp(&self.end.as_ref()?.ended_at)
    }
}
