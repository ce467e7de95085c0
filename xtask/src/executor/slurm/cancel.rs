//! How a job is stopped: a running one gets SIGTERM (and SIGCONT), then
//! SIGKILL `kill_grace` later, as a local task does (`scancel --signal=...
//! --full`);
//! one queued or suspended is cancelled. Each `scancel` that Slurm did not
//! take is owed, and sent again at the next look.

use std::time::{Duration, Instant, SystemTime};

use super::ends::{StopRecord, Terminated};
use super::{slurm, Job};
use crate::executor::watchdog::{Alarm, Escalation};
use crate::state::status::Ending;

impl Job {
    /// Cancels job `id`, this job, for the run's stop.
    pub(super) fn cancel(&mut self, id: &str, signal: Option<&'static str>) {
        if self.stopping.is_none() {
            let alarm = Alarm {
                ending: Ending::Interrupted,
                detail: None,
            };
            self.stop_for(id, alarm);
        }
        if let Some(signal) = signal {
            // Said once: the end of the grace may have sent it already.
            let killed = self.escalation.as_ref().is_some_and(|e| e.killed);
            if !(killed && signal == "KILL") {
                let said =
                    format!("xtask: SIG{signal} sent to job {id} (`scancel --signal={signal}`)");
                crate::state::logs::append_line(&self.log_file, &said);
            }
            if signal == "KILL" {
                if let Some(escalation) = self.escalation.as_mut() {
                    escalation.killed = true;
                }
                // A job taken up is not stopped again at the first look
                // (a SIGTERM and a new grace): its SIGKILL, sent or owed,
                // ends it.
                self.stop_again = false;
            }
            self.cancel_owed = Some(Some(signal));
        }
        self.send_cancel(id);
    }

    /// Has job `id`, this job, cancelled for `alarm` (at the next look),
    /// recorded on disk first (`StopRecord`), and said in its log, as the
    /// local supervisor says why it stops a task: Slurm's own line says
    /// only that the job was cancelled.
    pub(super) fn stop_for(&mut self, id: &str, alarm: Alarm) {
        if let Err(e) = StopRecord::write(&self.exit_file, id, &alarm, None) {
            eprintln!("warning: {e:#}");
        }
        // Not run yet, no limit of its own stopped it: a stop of the run's.
        let why = (self.watchdog.as_ref())
            .map_or_else(|| "interrupted".to_owned(), |w| w.why(Some(&alarm)));
        self.stopping = Some(alarm);
        if self.runs() {
            // SIGTERM to its processes, SIGKILL `kill_grace` later, as
            // locally: Slurm's own cancel would leave them the cluster's
            // KillWait instead, and cut a longer cleanup short.
            self.escalation = Some(Escalation::default());
            self.escalate(&why, Instant::now());
            return;
        }
        // Queued or suspended: cancelled, it runs no more.
        let said = format!("xtask: {why}: `scancel {id}` sent (Slurm sends SIGTERM, then SIGKILL after its KillWait)");
        crate::state::logs::append_line(&self.log_file, &said);
        self.cancel_owed.get_or_insert(None);
    }

    /// Stops job `id`, this job, again if a killed run was stopping it, as
    /// the first look finds it: one that runs keeps the rest of its
    /// `kill_grace` from the SIGTERM Slurm took (`grace_goes_on`; a plain
    /// `scancel` gave it the cluster's KillWait instead, and cut a longer
    /// cleanup short); one whose SIGTERM is not known taken, or was taken
    /// by a start before a requeue, gets it and a whole `kill_grace`; one
    /// waiting is cancelled.
    pub(super) fn stop_again(&mut self, id: &str) {
        if !std::mem::take(&mut self.stop_again) {
            return;
        }
        let Some(alarm) = self.stopping.clone() else {
            return;
        };
        // A job requeued and started again since: its SIGTERM was its
        // earlier start's.
        let restarts = self.restarts;
        let taken = (self.terminated).filter(|term| self.runs() && term.of_the_start(restarts));
        match taken {
            Some(term) => self.grace_goes_on(term.at),
            None => self.stop_for(id, alarm),
        }
    }

    /// The rest of the grace of a job that runs, whose SIGTERM Slurm took
    /// at `at` (a killed run's): a second SIGTERM would reach what its
    /// cleanup started (a `git commit` in a trap), so SIGKILL only, once
    /// the grace from `at` is over.
    fn grace_goes_on(&mut self, at: SystemTime) {
        let spent = SystemTime::now().duration_since(at).unwrap_or_default();
        let left = self.grace.saturating_sub(spent);
        let sent = crate::ui::format::clock(at);
        let said = if left.is_zero() {
            format!("xtask: taken up as it was being stopped: its SIGTERM was sent at {sent}, and its kill_grace is over: SIGKILL now")
        } else {
            // Whole seconds, rounded up: "in 0s" read as now.
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            format!(
                "xtask: taken up as it was being stopped: its SIGTERM was sent at {sent}; SIGKILL once its kill_grace is over, in {}",
                humantime::format_duration(Duration::from_secs(secs))
            )
        };
        crate::state::logs::append_line(&self.log_file, &said);
        self.escalation = Some(Escalation {
            kill_at: Some(Instant::now() + left),
            killed: false,
        });
    }

    /// Whether it runs, as last seen: out of the queue, not suspended.
    fn runs(&self) -> bool {
        self.watchdog.is_some() && self.suspended.is_none()
    }

    /// One step of the stop of a job that runs, at `now`, for `why` (see
    /// `Escalation::step`): the signal it owes, sent to every process of
    /// the job (`scancel --signal=... --full`) at this look or the next.
    pub(super) fn escalate(&mut self, why: &str, now: Instant) {
        let Some(escalation) = self.escalation.as_mut() else {
            return;
        };
        let owed = std::cell::Cell::new(self.cancel_owed);
        escalation.step(why, &self.log_file, self.grace, now, |signal| {
            // The SIGCONT after a SIGTERM is `send_cancel`'s, owed as any.
            let name = match signal {
                libc::SIGTERM => "TERM",
                libc::SIGKILL => "KILL",
                _ => return,
            };
            owed.set(Some(Some(name)));
        });
        self.cancel_owed = owed.get();
    }

    /// Runs the `scancel` owed to job `id`, this job, if one is; a SIGTERM
    /// Slurm took is recorded (`StopRecord`), for a run that takes the job
    /// up after a kill.
    pub(super) fn send_cancel(&mut self, id: &str) {
        let Some(signal) = self.cancel_owed else {
            return;
        };
        if !scancel(id, signal) {
            return;
        }
        self.cancel_owed = None;
        if let (Some("TERM"), Some(alarm)) = (signal, &self.stopping) {
            let terminated = Terminated {
                at: SystemTime::now(),
                restarts: self.restarts,
            };
            self.terminated = Some(terminated);
            if let Err(e) = StopRecord::write(&self.exit_file, id, alarm, Some(terminated)) {
                eprintln!("warning: {e:#}");
            }
        }
        // A process stopped in the job (SIGSTOP, a ^Z on the node) handles
        // its SIGTERM only once continued, as locally: Slurm sends no
        // SIGCONT with a signal, and it waited out its grace for the
        // SIGKILL. Owed too, if Slurm did not take it.
        if signal == Some("TERM") && !scancel(id, Some("CONT")) {
            self.cancel_owed = Some(Some("CONT"));
        }
    }
}

/// Cancels job `job_id` (with `signal`, else Slurm's TERM then KILL):
/// whether Slurm took it (scancel says 0 also of a job already ended).
pub(super) fn scancel(job_id: &str, signal: Option<&str>) -> bool {
    let mut args = vec!["scancel".to_owned()];
    if let Some(signal) = signal {
        args.extend([format!("--signal={signal}"), "--full".to_owned()]);
    }
    args.push(job_id.to_owned());
    slurm(&args, &[], None).is_ok_and(|output| output.status.success())
}
