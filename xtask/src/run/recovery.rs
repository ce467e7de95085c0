//! Taking over from an orchestrator that died: tasks its statuses say are
//! running may still run (under its supervisor, which outlives it, or on
//! Slurm), may have ended (their exit records say how), may never have
//! started, or may be lost.

use super::*;

impl Scheduler<'_> {
    /// Removes the files under `workspace/pids/` of tasks that are not
    /// running: a record written for a task whose final status was written
    /// just before its orchestrator died, say. A later attempt of that task
    /// must never be mistaken for the one they describe.
    pub(super) fn remove_stale_records(&self) {
        let pids = self.layout.workspace.join("pids");
        let mut folders = vec![pids.clone()];
        while let Some(folder) = folders.pop() {
            let Ok(entries) = folder.read_dir_utf8() else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    folders.push(path.to_owned());
                    continue;
                }
                // A dot-file is an atomic write in progress, maybe by the
                // supervisor of the orchestrator that died.
                if entry.file_name().starts_with('.') {
                    continue;
                }
                let running = path
                    .strip_prefix(&pids)
                    .ok()
                    .and_then(|rel| rel.as_str().rsplit_once('.'))
                    .and_then(|(id, _)| self.graph.get(id))
                    .is_some_and(|t| self.active.contains_key(&t));
                if !running {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }

    /// Hands a job submitted by an earlier run to our Slurm poller. Returns
    /// false when this run does not use Slurm (the job cannot be followed).
    fn follow_job(&mut self, t: usize, status: &Status) -> bool {
        let limits = self.limits(t);
        let (Some(job_id), Some(Executor::Slurm(slurm))) = (&status.job_id, &mut self.executor)
        else {
            return false;
        };
        slurm.follow(self.layout, &self.graph.tasks[t].id, job_id, &limits);
        true
    }

    /// A task recorded as running: it may still run (under the supervisor
    /// of an orchestrator that died), may have ended meanwhile (its exit
    /// record tells how), may never have started, or may be lost.
    pub(super) fn recover(&mut self, t: usize, status: Status) -> Result<()> {
        if self.options.mode.plans_only() {
            return Ok(());
        }
        let id = self.graph.tasks[t].id.clone();
        let supervisor = Process {
            pid: status.supervisor_pid.unwrap_or(0),
            start: status.supervisor_start,
        };
        let recorded = recorded_end(self.layout, &id, status.attempt).is_some();
        let submitted = status.job_id.is_some();
        let pid = status
            .pid
            .or_else(|| read_pid(&self.layout.pid_file(&id)))
            .or_else(|| {
                // Its supervisor died too before anyone wrote its pid (its
                // first second): a task still running says who it is.
                let orphaned = !recorded && !submitted && !supervisor.alive();
                orphaned.then(|| {
                    process::find_task(self.layout.workspace.as_str(), &id, status.attempt)
                })?
            });
        let task = Process {
            pid: pid.unwrap_or(0),
            start: status.pid_start,
        };
        if task.pid == 0 && !recorded && !supervisor.alive() && !submitted {
            // The orchestrator died before the task started: pending again.
            self.node[t] = if self.selected(t) {
                Node::Waiting
            } else {
                Node::Unselected
            };
            self.tries[t] = self.tries[t].saturating_sub(1);
            self.attempt[t] = self.attempt[t].saturating_sub(1);
            if self.node[t] == Node::Waiting && self.unmet[t] == 0 {
                self.become_ready(t);
            }
            return Ok(());
        }
        let agent = status
            .agent_id
            .as_deref()
            .and_then(|a| a.strip_prefix("agent-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        self.free_agents.remove(&agent);
        // A Slurm job is followed by our poller, which records its end; with
        // no poller (another executor), nothing can follow it: lost.
        let job_id = status
            .job_id
            .clone()
            .filter(|_| self.follow_job(t, &status));
        let active = Active {
            pid: task.pid,
            pid_start: task.start.or_else(|| process::start_time(task.pid)),
            adopted: if job_id.is_some() {
                None
            } else {
                Some(supervisor)
            },
            queued: job_id.is_some() && status.queued,
            job_id,
            agent,
            started: status
                .started_at
                .as_deref()
                .and_then(status::parse_timestamp)
                .unwrap_or_else(SystemTime::now),
            since_ns: status.attempt_since_ns,
            attempt: status.attempt,
            pid_due: None,
        };
        self.running_in_phase[self.graph.phase_of[t]] += 1;
        self.active.insert(t, active);
        self.tries[t] = self.tries[t].max(1);
        if task.alive() {
            self.printer.event(
                Tone::Plain,
                "adopt",
                &id,
                &format!("still running, pid {}", task.pid),
            );
        }
        self.check_adopted()
    }

    /// Tasks adopted from an earlier orchestrator end when their exit record
    /// appears; when neither the task nor its supervisor is alive and there
    /// is no record, the task is lost.
    pub(super) fn check_adopted(&mut self) -> Result<()> {
        let mut ended = Vec::new();
        for (&t, active) in self.active.iter_mut() {
            let Some(supervisor) = active.adopted else {
                continue;
            };
            let id = &self.graph.tasks[t].id;
            if active.pid == 0 {
                if let Some(pid) = read_pid(&self.layout.pid_file(id)) {
                    active.pid = pid;
                    active.pid_start = process::start_time(pid);
                }
            }
            let task = Process {
                pid: active.pid,
                start: active.pid_start,
            };
            let recorded = recorded_end(self.layout, id, active.attempt).is_some();
            if recorded || (!task.alive() && !supervisor.alive()) {
                ended.push(t);
            }
        }
        for t in ended {
            self.finish(t, None)?;
        }
        Ok(())
    }
}

/// The exit record of attempt `attempt` of task `id` on disk, if there is
/// one: a record of another attempt is not this one's.
pub(super) fn recorded_end(layout: &Layout, id: &str, attempt: u32) -> Option<ExitRecord> {
    supervisor::read_record(&layout.exit_file(id))
        .filter(|r| r.attempt.is_none_or(|a| a == attempt))
}

/// The pid in a pid file, if there is one.
fn read_pid(path: &Utf8Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
