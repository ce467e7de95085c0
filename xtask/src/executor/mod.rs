//! Executors hand tasks to what starts them (the run never starts one
//! itself): `local` runs each
//! task through the run's supervisor process on this machine; `slurm` submits
//! each to a Slurm cluster. Both report the same `Event`s (the supervisor's
//! read by the run loop from its pipe, `read_events`; Slurm's sent on the
//! run's channel), and both leave an exit record in
//! `workspace/pids/<id>.exit` when a task ends with no orchestrator to take
//! it. The run loop calls `Executor`'s methods without knowing which one it
//! has.

pub mod launch;
pub mod local;
pub mod protocol;
pub mod setup;
pub mod slurm;
pub mod watchdog;

use std::sync::mpsc::Sender;

use anyhow::Result;

pub use launch::{Launch, Limits};
use protocol::ExitRecord;

use crate::model::config::{Config, ExecutorKind};
use crate::model::layout::Layout;

/// What an executor tells the run loop.
pub enum Event {
    /// The task runs (Slurm: the job left the queue); its pid when local,
    /// and when it started if that was before this moment (a job seen
    /// running by a poller that has just taken it up).
    Started {
        task_id: String,
        pid: Option<u32>,
        since: Option<std::time::SystemTime>,
    },
    /// The task's job is back in Slurm's queue (requeued, preempted,
    /// held) or suspended, as `what` says: its time does not run until it
    /// runs again.
    Queued { task_id: String, what: String },
    /// The task's Slurm job, suspended, runs again: its time goes on from
    /// where it stopped.
    Resumed { task_id: String },
    /// It ended: its exit record, or `None` when the record is on disk
    /// (`workspace/pids/<id>.exit`).
    Ended {
        task_id: String,
        record: Option<ExitRecord>,
    },
    /// A Slurm job was submitted for the task (its id), or could not be
    /// (why).
    Submitted {
        task_id: String,
        job: Result<String, String>,
    },
    /// The local supervisor died (it never closes its reports while we live).
    Gone,
    /// The local supervisor was sent this signal: it stops its tasks, and
    /// the run stops as if it had been sent it.
    Stopping(i32),
}

/// The executor of a run.
pub enum Executor {
    Local(local::Supervisor),
    Slurm(slurm::Slurm),
}

impl Executor {
    /// Starts the executor of `kind`, for a run of at most `parallel` tasks
    /// at once. Slurm's events go to `events`, wrapped; the local
    /// supervisor's are read with `read_events`.
    pub fn start<E: Send + 'static>(
        kind: ExecutorKind,
        layout: &Layout,
        config: &Config,
        parallel: usize,
        events: Sender<E>,
        wrap: fn(Event) -> E,
    ) -> Result<Executor> {
        Ok(match kind {
            ExecutorKind::Local => Executor::Local(local::Supervisor::start(
                layout,
                &config.agents.prompt_patterns,
                parallel,
            )?),
            ExecutorKind::Slurm => {
                Executor::Slurm(slurm::Slurm::start(&config.slurm, events, wrap)?)
            }
        })
    }

    /// What to wait on for `read_events` (the local supervisor's reports).
    pub fn reports_fd(&self) -> Option<std::os::fd::RawFd> {
        match self {
            Executor::Local(supervisor) => supervisor.reports_fd(),
            Executor::Slurm(_) => None,
        }
    }

    /// The local supervisor's reports that have come, without waiting
    /// (Slurm's come on the channel given to `start`).
    pub fn read_events(&mut self) -> Vec<Event> {
        match self {
            Executor::Local(supervisor) => supervisor.read_events(),
            Executor::Slurm(_) => Vec::new(),
        }
    }

    /// Starts the attempt (Slurm: has it submitted, its job id told by
    /// `Event::Submitted`).
    pub fn launch(&mut self, layout: &Layout, launch: &Launch, limits: &Limits) -> Result<()> {
        match self {
            Executor::Local(supervisor) => supervisor.launch(layout, launch, limits),
            Executor::Slurm(slurm) => {
                slurm.launch(layout, launch, limits);
                Ok(())
            }
        }
    }

    /// The Slurm job of attempt `attempt` of task `task_id` that an
    /// orchestrator killed while its sbatch ran left with no record (see
    /// `slurm::find_submitted`; an error when Slurm does not answer); none
    /// locally.
    pub fn find_submitted(
        &self,
        layout: &Layout,
        task_id: &str,
        attempt: u32,
    ) -> anyhow::Result<Option<String>> {
        match self {
            Executor::Slurm(_) => {
                slurm::find_submitted(task_id, &layout.log_file(task_id), attempt)
            }
            Executor::Local(_) => Ok(None),
        }
    }

    /// Follows a Slurm job submitted by an earlier orchestrator, for an
    /// attempt told `told` (`TASK_PREVIOUS_ERROR`), whose result is read
    /// from its log when `reads_result`; false when this
    /// executor cannot (it is not Slurm).
    pub fn follow(
        &mut self,
        layout: &Layout,
        task_id: &str,
        job_id: &str,
        limits: &Limits,
        told: Option<String>,
        reads_result: bool,
    ) -> bool {
        match self {
            Executor::Slurm(slurm) => {
                slurm.follow(layout, task_id, job_id, limits, told, reads_result);
                true
            }
            Executor::Local(_) => false,
        }
    }

    /// SIGTERM, then SIGKILL after the grace period (Slurm: scancel).
    /// Returns whether the executor took the request.
    pub fn stop(&mut self, task_id: &str) -> bool {
        match self {
            Executor::Local(supervisor) => supervisor.stop(task_id).is_ok(),
            Executor::Slurm(slurm) => {
                slurm.stop(task_id, None);
                true
            }
        }
    }

    /// Kills the task at once where only the executor can reach it (a
    /// Slurm job); local tasks are killed by their process group.
    pub fn kill(&mut self, task_id: &str) {
        if let Executor::Slurm(slurm) = self {
            slurm.stop(task_id, Some("KILL"));
        }
    }

    /// `kill`, asked for by a second interrupt: a local task through the
    /// supervisor too, which knows its pid before the run does.
    pub fn kill_now(&mut self, task_id: &str) {
        match self {
            // Fails only when the supervisor is gone, which it reports.
            Executor::Local(supervisor) => {
                let _ = supervisor.kill(task_id);
            }
            Executor::Slurm(_) => self.kill(task_id),
        }
    }

    /// Who records a local task's end: the supervisor's pid and start time.
    pub fn recorder(&self) -> Option<(u32, Option<u64>)> {
        match self {
            Executor::Local(supervisor) => Some((supervisor.pid(), supervisor.start_time())),
            Executor::Slurm(_) => None,
        }
    }

    /// The attempt's final status is written: what the executor kept of
    /// its end can go.
    pub fn written(&mut self, task_id: &str, attempt: u32) {
        if let Executor::Local(supervisor) = self {
            supervisor.written(task_id, attempt);
        }
    }

    /// Sends what is pending (before the run loop waits for events).
    /// The events of one look at the Slurm jobs followed, taken now (see
    /// `Slurm::look_now`); none locally, where the supervisor's records
    /// give the ends of tasks that ended unseen.
    pub fn look_now(&self) -> Vec<Event> {
        match self {
            Executor::Slurm(slurm) => slurm.look_now(),
            Executor::Local(_) => Vec::new(),
        }
    }

    pub fn flush(&mut self) -> Result<()> {
        match self {
            Executor::Local(supervisor) => supervisor.flush(),
            Executor::Slurm(_) => Ok(()),
        }
    }

    pub fn close(self) {
        if let Executor::Local(supervisor) = self {
            supervisor.close();
        }
    }
}
