//! The run taking up what a killed orchestrator left: each task recorded
//! running is followed (a local process, its supervisor's exit record, a
//! Slurm job) or made pending again; `recovery` judges which.

use std::time::SystemTime;

use anyhow::{Context, Result};

use super::attempt;
use super::recovery::{self, Found};
use super::Run;
use crate::state::records;
use crate::state::status::Status;
use crate::ui::printer::Tone;

impl Run<'_> {
    /// Says each Slurm job taken up that is still in flight, once the look
    /// at Slurm as the run starts has taken the ends of those that ended,
    /// as a local task is said adopted once its process is found alive.
    pub(super) fn say_adopted_jobs(&self) {
        for t in self.running.tasks() {
            let Some(active) = self.running.get(t) else {
                continue;
            };
            let Some(job) = &active.job_id else {
                continue;
            };
            let how = if active.queued { "queued" } else { "running" };
            let said = format!("still {how}, Slurm job {job}");
            (self.printer).event(Tone::Plain, "adopt", &self.graph.tasks[t].id, &said);
        }
    }

    /// A task recorded as running: adopted, or pending again if it never
    /// started; `told_running`, when its start was told (`mend_events`).
    pub(super) fn recover(
        &mut self,
        t: usize,
        status: &Status,
        told_running: Option<SystemTime>,
    ) -> Result<()> {
        let id = &self.graph.tasks[t].id;
        // Being started when its orchestrator died, by nothing that records
        // (a worktree being made, an sbatch not answered yet): Slurm may
        // have the job all the same.
        let executor = self.executor.as_ref().filter(|_| status.being_started());
        let job = match (recovery::submitted_job(self.layout, id, status), executor) {
            (Some(job), _) => Some(job),
            (None, Some(executor)) => executor
                .find_submitted(self.layout, id, status.attempt)
                .with_context(|| {
                    format!("whether the sbatch of {id} that the killed run waited for reached Slurm cannot be told, and submitting it again could run it twice: run again once Slurm answers")
                })?,
            (None, None) => None,
        };
        let follows_job = match (&mut self.executor, &job) {
            (Some(executor), Some(job)) => {
                let (task, branch) = (&self.graph.tasks[t], status.branch.as_deref());
                let started = status.started().unwrap_or_else(SystemTime::now);
                let limits = attempt::limits(self.layout, self.config, task, branch, started);
                // What its attempt was told, as its running status keeps it.
                let told = status.previous.as_ref().map(|p| p.error.clone());
                let reads_result = attempt::kept_stdout(self.layout, self.config, task).is_some();
                executor.follow(self.layout, id, job, &limits, told, reads_result)
            }
            _ => false,
        };
        match recovery::assess(self.layout, id, status, job, follows_job) {
            Found::NeverStarted => self.reopen_never_started(t)?,
            Found::Adopt(mut active) => {
                active.told_running = told_running;
                // A setup not marked done ran in this attempt, and did not
                // succeed (or has not ended).
                active.setup = active.worktree.as_ref().is_some_and(|w| {
                    attempt::setup_needed(self.layout, self.config, &w.branch).is_some()
                });
                let task = active.process();
                // Its pid not known yet (its supervisor, alive, has not
                // written it since its orchestrator died): its supervisor
                // says it runs.
                let ended = records::recorded_end(self.layout, id, active.attempt).is_some();
                let under = active
                    .adopted
                    .filter(|&s| active.pid == 0 && !ended && recovery::supervisor_runs(s));
                let said = match under {
                    Some(supervisor) => Some(format!(
                        "still running, under its supervisor (pid {})",
                        supervisor.pid
                    )),
                    None => task
                        .alive()
                        .then(|| format!("still running, pid {}", active.pid)),
                };
                if let Some(said) = said {
                    self.printer.event(Tone::Plain, "adopt", id, &said);
                }
                self.history[t].tries = self.history[t].tries.max(1);
                self.running.insert(t, *active);
            }
        }
        self.check_adopted()
    }

    /// Tasks adopted from an earlier orchestrator end when their exit record
    /// appears, or are lost when they and their supervisor are gone.
    pub(super) fn check_adopted(&mut self) -> Result<()> {
        self.running
            .watch_orphans(self.layout, self.config, &self.graph);
        let ended = self
            .running
            .adopted_ended(self.layout, self.config, &self.graph);
        // Their pids learnt meanwhile: what a stop could not signal.
        self.running.stop_late(self.layout, &self.graph);
        for t in ended {
            self.finish(t, None)?;
        }
        self.check_unlisted();
        Ok(())
    }
}
