//! The exit record of a job Slurm says has ended, as the local supervisor
//! writes one, and why the run cancelled it (`StopRecord`).

use super::*;

/// The exit record of a job in a final state.
pub(super) fn final_record(
    state: &str,
    fields: &HashMap<String, String>,
    stopping: Option<Ending>,
) -> ExitRecord {
    // ExitCode=3:0 is exit code 3, no signal; 0:9 is killed by signal 9.
    let (code, signal) = fields
        .get("ExitCode")
        .and_then(|e| e.split_once(':'))
        .map(|(c, s)| {
            (
                c.parse::<i32>().ok(),
                s.parse::<i32>().ok().filter(|&s| s != 0),
            )
        })
        .unwrap_or((None, None));
    let reason = fields.get("Reason").map_or("", String::as_str);
    let mut record = match never_launched(state, reason, signal) {
        // Its log could not be opened on the node, say: slurmd's log there
        // tells. Its exit code and signal are Slurm's, not the task's.
        true => ExitRecord::with_message(
            Ending::SpawnFailed,
            format!("Slurm could not launch the job: {reason}"),
        ),
        false => ending_record(state, code.filter(|_| signal.is_none()), signal, stopping),
    };
    // When Slurm says it ended, not when the poller saw it (after a
    // crash, maybe much later): the task's duration is taken from it.
    if let Some(ended) = slurm_end(fields) {
        record.ended_at = crate::state::status::timestamp_millis(ended);
    }
    record
}

/// When Slurm says a job ended (`EndTime`), if it says. None for a job
/// that ended suspended (cancelled while suspended): Slurm gives it the
/// time of its suspension (`SuspendTime`, the last suspension's or
/// resumption's) as its end, and it ended when the look that saw it
/// ended, within a poll interval of its cancel (one after a crash: later).
pub(super) fn slurm_end(fields: &HashMap<String, String>) -> Option<SystemTime> {
    let ended = slurm_time(fields, "EndTime").filter(|e| *e <= SystemTime::now())?;
    let suspended = slurm_time(fields, "SuspendTime");
    suspended.is_none_or(|s| ended > s).then_some(ended)
}

/// Whether a job that ended in `state`, for `reason`, with `signal`, never
/// ran its command. Slurm says `JobLaunchFailure` of a job whose batch
/// script a signal killed too (`kill -9 $$`: `0:9`); one it could not
/// launch has a "signal" of Slurm's own past the standard ones (slurmstepd
/// unable to open the log: `0:53`), or none.
pub(super) fn never_launched(state: &str, reason: &str, signal: Option<i32>) -> bool {
    let killed = signal.is_some_and(|signal| (1..=31).contains(&signal));
    state == "FAILED" && reason == "JobLaunchFailure" && !killed
}

/// A time `scontrol` gives (`2026-12-02T08:21:39`, in the machine's local
/// time), if it gives one (`Unknown`, `None` otherwise).
pub(super) fn slurm_time(fields: &HashMap<String, String>, key: &str) -> Option<SystemTime> {
    let local = humantime::parse_rfc3339_weak(fields.get(key)?).ok()?;
    let offset = crate::agent::limits::local_offset();
    let shift = Duration::from_secs(offset.unsigned_abs());
    match offset >= 0 {
        true => local.checked_sub(shift),
        false => local.checked_add(shift),
    }
}

/// The exit record of a job that ended in `state`.
pub(super) fn ending_record(
    state: &str,
    code: Option<i32>,
    signal: Option<i32>,
    stopping: Option<Ending>,
) -> ExitRecord {
    // Slurm's limit, reached in the grace of a stop of ours (a timeout of
    // whole minutes): the end is that stop's.
    if let (Some(stop), "TIMEOUT" | "DEADLINE") = (stopping, state) {
        return record(stop, code, signal);
    }
    match state {
        "COMPLETED" | "FAILED" => record(stopping.unwrap_or(Ending::Exited), code, signal),
        // Slurm says 0:0 of a cancelled job that never ran (no exit code
        // of its own: nor of one that caught the TERM and exited 0, the
        // same words), 0:15 of one the TERM killed, and 7:0 of one that
        // caught it and exited 7, its own code, kept as locally.
        "CANCELLED" => {
            let own = code.filter(|&c| c != 0);
            record(stopping.unwrap_or(Ending::Interrupted), own, signal)
        }
        // Slurm's limit, not one the watchdog enforced: said, so that the
        // error does not name the task's timeout for it.
        "TIMEOUT" | "DEADLINE" => {
            let limit = match state {
                "TIMEOUT" => "time limit",
                _ => "deadline",
            };
            let mut record = record(Ending::Timeout, code, signal);
            record.message = Some(format!("Slurm ended the job at its {limit}"));
            record
        }
        "OUT_OF_MEMORY" => record(Ending::OutOfMemory, code, signal),
        "NODE_FAIL" | "BOOT_FAIL" | "PREEMPTED" => lost_record(&format!("Slurm reports {state}")),
        other => {
            let mut record = record(Ending::Exited, code, signal);
            record.message = Some(format!("Slurm job state {other}"));
            record
        }
    }
}

pub(super) fn record(ending: Ending, exit_code: Option<i32>, signal: Option<i32>) -> ExitRecord {
    ExitRecord {
        exit_code,
        signal,
        ..ExitRecord::now(ending)
    }
}

pub(super) fn lost_record(why: &str) -> ExitRecord {
    ExitRecord::with_message(Ending::Lost, why)
}

/// Why the orchestrator cancelled a job, on disk beside its exit record
/// (`<task id>.stopping` in `workspace/pids/`, removed with it by the next
/// run, `records::remove_stale`) before the cancel: an orchestrator killed
/// before the job's end leaves it to the next, which records the job's end
/// as a timeout, not as the `interrupted` a cancel by no one of ours is.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct StopRecord {
    /// The job it was of: an earlier attempt's record is not this job's.
    job_id: String,
    ending: Ending,
    detail: Option<String>,
    /// When Slurm took the SIGTERM of a job stopped as it ran (to the
    /// millisecond): the run that takes the job up gives it the rest of
    /// its grace, not a second SIGTERM, which would reach what its
    /// cleanup started (a `git commit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    terminated_at: Option<String>,
    /// The job's `Restarts` then: requeued since, it was started again,
    /// and that start has had no SIGTERM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restarts: Option<u32>,
}

/// A stop of a job, as its `StopRecord` keeps it.
pub(super) struct Stopping {
    pub alarm: Alarm,
    /// When Slurm took its SIGTERM, if it was sent.
    pub terminated: Option<Terminated>,
}

/// The SIGTERM Slurm took for a job's stop.
#[derive(Clone, Copy)]
pub(super) struct Terminated {
    pub at: SystemTime,
    /// The job's `Restarts` then (none: not known), to tell its start
    /// from a later one.
    pub restarts: Option<u32>,
}

impl Terminated {
    /// Whether it was the start `restarts` tells (Slurm's `Restarts` of the
    /// job running now) that took it: a requeued job started again has not.
    pub fn of_the_start(&self, restarts: Option<u32>) -> bool {
        self.restarts.is_none_or(|then| Some(then) == restarts)
    }
}

impl StopRecord {
    fn path(exit_file: &Utf8Path) -> Utf8PathBuf {
        exit_file.with_extension("stopping")
    }

    /// Records why job `job_id` is stopped, and when its SIGTERM was
    /// taken (`terminated`), once it was.
    pub(super) fn write(
        exit_file: &Utf8Path,
        job_id: &str,
        alarm: &Alarm,
        terminated: Option<Terminated>,
    ) -> Result<()> {
        let record = StopRecord {
            job_id: job_id.to_owned(),
            ending: alarm.ending,
            detail: alarm.detail.clone(),
            terminated_at: terminated.map(|t| crate::state::status::timestamp_millis(t.at)),
            restarts: terminated.and_then(|t| t.restarts),
        };
        let path = StopRecord::path(exit_file);
        let bytes = serde_json::to_vec(&record)?;
        crate::state::atomic::write(&path, &bytes)
            .with_context(|| format!("cannot record why job {job_id} is cancelled in {path}"))
    }

    /// Why job `job_id` was being cancelled, if it was.
    pub(super) fn read(exit_file: &Utf8Path, job_id: &str) -> Option<Stopping> {
        let bytes = std::fs::read(StopRecord::path(exit_file)).ok()?;
        let record: StopRecord = serde_json::from_slice(&bytes).ok()?;
        let terminated = (record.terminated_at.as_deref())
            .and_then(crate::state::status::parse_timestamp)
            .map(|at| Terminated {
                at,
                restarts: record.restarts,
            });
        (record.job_id == job_id).then_some(Stopping {
            alarm: Alarm {
                ending: record.ending,
                detail: record.detail,
            },
            terminated,
        })
    }
}
