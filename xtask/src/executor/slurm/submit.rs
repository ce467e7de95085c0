//! Submitting a job with `sbatch`, and what to do when the controller
//! cannot be reached: the job looked for before any second submission.

use super::*;

/// Submits the job, its id, or why there is none. An sbatch that could not
/// reach the controller, or heard nothing back, may have had the job taken
/// all the same (the controller answers once it has it): the job is looked
/// for (`submitted_job`), and while the controller cannot be reached the
/// submission waits and tries again, said in the run's output and the
/// task's log, for `UNREACHED_FOR` at most. Submitting again at once ran
/// two copies of the task, untracked, and a controller restarting burnt the
/// task's retries in seconds.
pub(super) fn submit_until_known(
    submission: &Submission,
    jobs: &Mutex<Jobs>,
    tell: impl Fn(Event) -> bool,
) -> Result<String, String> {
    let Submission {
        task_id,
        attempt,
        args,
        env,
        layout,
        job,
    } = submission;
    let since = Instant::now();
    // Slurm's times are whole seconds.
    let submitted_after = SystemTime::now() - Duration::from_secs(1);
    let mut wait = FIRST_WAIT;
    // What the last try said, when it did not reach the controller.
    let mut unreached: Option<String> = None;
    loop {
        if let Some(said) = &unreached {
            if since.elapsed() + wait > UNREACHED_FOR {
                return Err(format!(
                    "Slurm's controller could not be reached for {} min: {said}",
                    UNREACHED_FOR.as_secs() / 60
                ));
            }
            let what = format!(
                "Slurm's controller could not be reached ({said}), and may have taken the job: looking for it in {}s",
                wait.as_secs()
            );
            crate::state::logs::append_line(&job.log_file, &format!("xtask: {what}"));
            tell(Event::Queued {
                task_id: task_id.clone(),
                what,
            });
            let stopped = || lock(jobs).stopped.contains_key(task_id);
            let until = Instant::now() + wait;
            while !stopped() && Instant::now() < until {
                std::thread::sleep(STOP_LOOK);
            }
            wait = (wait * 2).min(LONGEST_WAIT);
            if stopped() {
                // A job found is the run's to cancel; none found, the run's
                // stop leaves it interrupted, not failed.
                return match submitted_job(task_id, &job.log_file, *attempt, Some(submitted_after))
                {
                    Ok(Some(job_id)) => Ok(job_id),
                    _ => Err(format!(
                        "stopped while Slurm's controller could not be reached: {said}"
                    )),
                };
            }
            // Submitted again only once Slurm says it has no such job.
            match submitted_job(task_id, &job.log_file, *attempt, Some(submitted_after)) {
                Ok(Some(job_id)) => return Ok(job_id),
                Ok(None) => {}
                Err(e) => {
                    unreached = Some(format!("{e:#}"));
                    continue;
                }
            }
        }
        match sbatch(args, env, &layout.root) {
            Ok(job_id) => return Ok(job_id),
            Err(Unsubmitted::Refused(why)) => return Err(why),
            Err(Unsubmitted::Unreached(said)) => unreached = Some(said),
        }
    }
}

/// How long a submission waits for a controller it cannot reach, in all,
/// before its attempt fails; and its first and longest wait between two
/// tries (doubled each time).
pub(super) const UNREACHED_FOR: Duration = Duration::from_secs(10 * 60);
pub(super) const FIRST_WAIT: Duration = Duration::from_secs(1);
pub(super) const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// How often a submission waiting for the controller looks for a stop.
pub(super) const STOP_LOOK: Duration = Duration::from_millis(100);

/// Why `sbatch` gave no job id.
pub(super) enum Unsubmitted {
    /// The controller refused the job (an invalid partition, too much
    /// memory...), or sbatch could not run: the attempt fails.
    Refused(String),
    /// sbatch could not reach the controller, or had no answer: what it
    /// said. The controller may have taken the job.
    Unreached(String),
}

/// What sbatch (and every Slurm command) says when it did not reach the
/// controller, or heard nothing back from it (Slurm's communication
/// errors, `slurm_strerror`).
pub(super) const UNREACHED: [&str; 4] = [
    "Unable to contact slurm controller",
    "Socket timed out on send/recv operation",
    "Zero Bytes were transmitted or received",
    "Communication connection failure",
];

/// Submits a job (`args`, from `sbatch_args`): its id.
pub(super) fn sbatch(
    args: &[String],
    env: &[(String, String)],
    root: &Utf8Path,
) -> Result<String, Unsubmitted> {
    let output =
        slurm(args, env, Some(root)).map_err(|e| Unsubmitted::Refused(format!("{e:#}")))?;
    if !output.status.success() {
        // Its lines (`sbatch: error: ...` twice, often) as one.
        let said = crate::ui::format::one_line(&String::from_utf8_lossy(&output.stderr));
        if UNREACHED.iter().any(|error| said.contains(error)) {
            return Err(Unsubmitted::Unreached(said));
        }
        return Err(Unsubmitted::Refused(format!(
            "sbatch rejected the job: {said}"
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let job_id = stdout.trim().split(';').next().unwrap_or_default();
    if job_id.is_empty() {
        return Err(Unsubmitted::Refused("sbatch printed no job id".to_owned()));
    }
    Ok(job_id.to_owned())
}
