//! Tasks a killed run left running whose task file is gone since (renamed,
//! moved to another phase, removed) before the next run read the folders:
//! no task of its graph, so no adoption looks for them. They are found by
//! what the killed run's supervisor handed over in `workspace/pids/` (the
//! statuses of those alone are read), said once as the run starts, and
//! followed as adopted tasks are (stopped by a stop of the run, and then
//! `interrupted`; their supervisor gone, their timeouts enforced as it
//! recorded them in their pid files), their end recorded in their status
//! as `failed`: their definition is gone, so nothing can judge their
//! outputs (an agent's result is read, and its cost counted). None stays
//! `running`, and their records go. Nothing waits on them: nothing
//! starts, or is held back, for them. The views and plans say them too
//! (`said`).

use std::time::SystemTime;

use camino::Utf8PathBuf;

use super::recovery::{self, Ended, Found};
use super::{verdict, Run};
use crate::executor::Limits;
use crate::model::config::Config;
use crate::model::layout::Layout;
use crate::model::task;
use crate::run::attempt::{self, Active};
use crate::state::events::Event;
use crate::state::logs;
use crate::state::records::{self, ExitRecord};
use crate::state::runs;
use crate::state::status::{self, Ending, State, Status};
use crate::ui::printer::Tone;

/// A task recorded running, whose file is gone, followed to its end.
pub struct Unlisted {
    pub id: String,
    /// Its running status, which its final status is made of.
    status: Status,
    active: Box<Active>,
}

impl Unlisted {
    /// Whether it has ended, and how (see `recovery::adopted_ended`):
    /// its exit record, or `None` if it was lost.
    fn ended(&mut self, layout: &Layout) -> Option<Option<ExitRecord>> {
        Some(
            match recovery::adopted_ended(layout, &self.id, &mut self.active)? {
                Ended::Recorded => records::recorded_end(layout, &self.id, self.active.attempt),
                Ended::Unseen => {
                    // Nothing copied its stdout into its log since its
                    // supervisor died: all of it, now.
                    if let Some(kept) = kept_stdout(layout, &self.id) {
                        let log = layout.log_file(&self.id);
                        logs::append_all_of(&log, &kept, recovery::ORPHAN_OUTPUT);
                    }
                    // Stopped by this run: that stop's end.
                    self.active.orphan.as_ref().and_then(|o| o.ended_said())
                }
            },
        )
    }

    /// Its supervisor gone, the limits it enforced are this run's to
    /// enforce (see `recovery::watch_orphan`): as its pid file records
    /// them, else its phase's (`Limits::of_gone`).
    fn watch(&mut self, layout: &Layout, config: &Config) {
        recovery::watch_orphan(layout, &self.id, &mut self.active, |active| {
            let enforced = records::recorded_enforced(layout, &self.id);
            let own = Limits::of_gone(config, task::phase_of(&self.id), enforced);
            let branch = active.worktree.as_ref().map(|w| w.branch.as_str());
            let limits = attempt::with_setup(layout, config, own, branch, active.started);
            (limits, kept_stdout(layout, &self.id))
        });
    }
}

/// What the views and plans say of each task recorded running whose task
/// file is gone (`known` knows the tasks whose files are there). Without a
/// run going on, found by what a killed run left in `workspace/pids/`: the
/// next run records its end. With one, also among all the statuses (see
/// `records::running_unknown`): that run may have read its file as it
/// started (then it judges its end as the task's), or may have started it
/// itself (a Slurm job's record, work waiting in its merge queue, its file
/// removed since), which none of this tells.
pub fn said(layout: &Layout, known: impl Fn(&str) -> bool) -> Vec<String> {
    let going_on = crate::state::lock::run_going_on(layout).is_some();
    let found = records::running_unknown(layout, known, runs::unfinished(layout).is_some());
    (found.into_iter())
        .map(|(id, status)| {
            let pid = (status.pid).or_else(|| records::recorded_pid(layout, &id).map(|p| p.pid));
            if going_on {
                let pid = pid.map_or(String::new(), |pid| format!(" (pid {pid})"));
                format!("{id} is recorded running{pid}, but its task file is gone: the run going on records its end (as the task's, if it read its file as it started; else failed, its outputs not judged)")
            } else {
                let pid = pid.map_or(String::new(), |pid| format!(", pid {pid}"));
                format!("{id} is recorded running (started by a run that was killed{pid}), but its task file is gone: the next `orchestrate` or `monitor` records its end (failed: its outputs are not judged)")
            }
        })
        .collect()
}

/// Said of every task whose file is gone when its end is recorded.
const NOT_JUDGED: &str = "its task file is gone, so its outputs were not judged";

impl Run<'_> {
    /// Finds the tasks recorded running whose files in `workspace/pids/`
    /// (or, resuming a killed run, whose statuses) name no task of the
    /// graph, says each, and follows those that run on; the end of one that
    /// ended already is recorded now.
    pub(super) fn take_up_unlisted(&mut self) {
        let graph = &self.graph;
        let known = |id: &str| graph.get(id).is_some();
        for (id, status) in records::running_unknown(self.layout, known, self.resumes_a_kill) {
            // Its sbatch cut short by the kill, no job recorded: the
            // controller may have taken the job all the same.
            let cut_short =
                status.being_started() && records::submitting(self.layout, &id, status.attempt);
            let job = match recovery::submitted_job(self.layout, &id, &status) {
                None if cut_short => {
                    let log = self.layout.log_file(&id);
                    match crate::executor::slurm::find_submitted(&id, &log, status.attempt) {
                        Ok(Some(job)) => Some(job),
                        Ok(None) => {
                            let record = ExitRecord::with_message(
                                Ending::Lost,
                                "its sbatch was cut short, and Slurm has no job of it",
                            );
                            self.record_unlisted(status, None, Some(record));
                            continue;
                        }
                        Err(e) => {
                            self.printer.line(
                                Tone::Warn,
                                &format!("warning: {id}: its task file is gone (renamed, moved or removed), and the run that was killed was submitting it to Slurm, which did not answer whether it took the job ({e:#}): recorded failed (`squeue --name {id}` shows the job if it took it; `scancel` it)"),
                            );
                            let record = ExitRecord::with_message(
                                Ending::Lost,
                                "its sbatch was cut short, and whether Slurm took its job could not be told",
                            );
                            self.record_unlisted(status, None, Some(record));
                            continue;
                        }
                    }
                }
                job => job,
            };
            // A Slurm job that ended meanwhile: its end as Slurm tells it.
            let ended = (job.as_deref())
                .and_then(|job| crate::executor::slurm::ended_record(self.layout, &id, job));
            if let Some(record) = ended {
                self.record_unlisted(status, None, Some(record));
                continue;
            }
            // A Slurm job: nothing follows it without its task.
            if let Some(job) = job {
                self.printer.line(
                    Tone::Warn,
                    &format!("warning: {id}: its task file is gone (renamed, moved or removed), but the run that was killed left it running as Slurm job {job}, which nothing follows now: recorded failed (`scancel {job}` if it runs on)"),
                );
                let record = ExitRecord::with_message(
                    Ending::Lost,
                    format!("its Slurm job {job} was not followed"),
                );
                self.record_unlisted(status, None, Some(record));
                continue;
            }
            let mut active = match recovery::assess(self.layout, &id, &status, None, false) {
                Found::Adopt(active) => active,
                // Nothing of it ran: nothing to wait for.
                Found::NeverStarted => {
                    let record = ExitRecord::with_message(Ending::Lost, "it never started");
                    self.record_unlisted(status, None, Some(record));
                    continue;
                }
            };
            let supervisor = active.adopted.filter(|&s| recovery::supervisor_runs(s));
            recovery::learn_pid(self.layout, &id, &mut active, supervisor.is_some());
            let runs = match (active.pid, supervisor) {
                (0, Some(s)) => Some(format!("under its supervisor, pid {}", s.pid)),
                (pid, _) => active.process().alive().then(|| format!("pid {pid}")),
            };
            if let Some(runs) = runs {
                self.printer.line(
                    Tone::Warn,
                    &format!("warning: {id}: its task file is gone (renamed, moved or removed), but the run that was killed left it running ({runs}): this run waits for it and records its end in its status (failed: its outputs are not judged); nothing waits on it"),
                );
            }
            self.unlisted.push(Unlisted { id, status, active });
        }
        self.check_unlisted();
    }

    /// Enforces the limits of each task whose file is gone whose
    /// supervisor is gone too, and records the end of each that has ended.
    pub(super) fn check_unlisted(&mut self) {
        let (layout, config) = (self.layout, self.config);
        let mut ended = Vec::new();
        for u in &mut self.unlisted {
            u.watch(layout, config);
        }
        self.unlisted.retain_mut(|u| match u.ended(layout) {
            Some(record) => {
                ended.push((u.status.clone(), u.active.started, record));
                false
            }
            None => true,
        });
        for (status, started, record) in ended {
            self.record_unlisted(status, Some(started), record);
        }
    }

    /// Writes the final status of a task whose file is gone, recorded
    /// running in `status` (started at `started`, if known better), ended
    /// as `record` says (`None`: lost), and removes its records. A status
    /// that cannot be written is said, its records kept for the next run.
    fn record_unlisted(
        &mut self,
        status: Status,
        started: Option<SystemTime>,
        record: Option<ExitRecord>,
    ) {
        let id = status.task_id.clone();
        let now = SystemTime::now();
        let ended = (record.as_ref())
            .and_then(|r| status::parse_timestamp(&r.ended_at))
            .unwrap_or(now);
        let started = started.or_else(|| status.started()).unwrap_or(ended);
        // Stopped by this run's stop, as an adopted task is (see
        // `verdict::judge`): interrupted, as the tasks it stopped are,
        // its try spared (a file put back runs it again).
        let interrupted = self.stopped_at.is_some()
            && (record.as_ref()).is_none_or(|r| verdict::adopted_stopped_here(self.stopped_at, r));
        let (ending, error) = match interrupted {
            true => (Ending::Interrupted, status::INTERRUPTED.to_owned()),
            false => ended_error(&status, record.as_ref()),
        };
        let tries = match interrupted {
            true => status.tries.saturating_sub(1),
            false => status.tries,
        };
        // What its agent said, if it was one whose result is read: the
        // money it spent is counted, as any attempt's.
        let told = status.previous.clone();
        let agent = verdict::gone_report(self.layout, self.config, &id, status.attempt, told);
        let final_status = Status {
            status: State::Failed,
            agent,
            completed_at: Some(status::timestamp(ended)),
            duration_seconds: Some(status::seconds(
                ended.duration_since(started).unwrap_or_default(),
            )),
            exit_code: record.as_ref().and_then(|r| r.exit_code),
            signal: record.as_ref().and_then(|r| r.signal),
            ending: Some(ending),
            tries,
            error: Some(error.clone()),
            pid: None,
            pid_start: None,
            supervisor_pid: None,
            supervisor_start: None,
            queued: false,
            merging: false,
            previous: None,
            ..status
        };
        if self.count_gone_cost(&final_status).is_err() {
            return;
        }
        // Told before its status says so, as every end is: a kill in
        // between has the next run tell it again, never not at all.
        self.event(Event {
            attempt: Some(final_status.attempt),
            agent: final_status.agent_id,
            error: Some(error.clone()),
            ending: Some(ending),
            // What it cost, counted above, as every attempt's end tells.
            cost_usd: final_status.agent.as_ref().and_then(|a| a.cost_usd),
            ..Event::change(&id, "running", "failed").happened_at(ended)
        });
        if let Err(e) = status::write(self.layout, &final_status) {
            self.printer.line(Tone::Bad, &format!("error: {e:#}"));
            return;
        }
        if let Err(e) = records::remove(self.layout, &id) {
            self.printer.line(Tone::Warn, &format!("warning: {e:#}"));
        }
        self.printer.event(Tone::Bad, "failed", &id, &error);
        self.unlisted_ended.push((id, error));
    }

    /// `signal` to the tasks whose file is gone that run, said in their
    /// logs (`said`): a stop of the run stops them as it does adopted ones.
    pub(super) fn signal_unlisted(&mut self, signal: i32, said: &str) {
        for u in &mut self.unlisted {
            let alive = u.active.adopted.is_some_and(recovery::supervisor_runs);
            recovery::learn_pid(self.layout, &u.id, &mut u.active, alive);
            super::running::signal_said(self.layout, &u.id, &u.active, signal, said);
        }
    }
}

/// The stdout of task `id`, whose file is gone, if its supervisor kept it
/// apart from its log (only when its result was to be read from it).
fn kept_stdout(layout: &Layout, id: &str) -> Option<Utf8PathBuf> {
    Some(layout.stdout_file(id)).filter(|f| f.exists())
}

/// The ending and error of a task whose file is gone, recorded running in
/// `status`, that ended as `record` says (`None`: lost), not by a stop.
fn ended_error(status: &Status, record: Option<&ExitRecord>) -> (Ending, String) {
    let (ending, how) = match record {
        Some(r) => {
            let code = (r.exit_code.is_some() || r.signal.is_some()).then(|| r.how());
            let said: Vec<String> = code.into_iter().chain(r.message.clone()).collect();
            (r.ending, said.join(", "))
        }
        None => (Ending::Lost, verdict::LOST.to_owned()),
    };
    let mut error = format!("{how}; {NOT_JUDGED}");
    // Its work waited in the merge queue: it stays on its branch.
    if let Some(branch) = status.branch.as_ref().filter(|_| status.merging) {
        error.push_str(&format!(
            ", and its work, on branch {branch}, was not merged"
        ));
    }
    (ending, error)
}
