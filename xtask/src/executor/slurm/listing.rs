//! Finding jobs in what `scontrol` lists: by their name, their log (its
//! path a pattern for sbatch) and their comment; the jobs a workspace has
//! not ended.

use super::*;

/// `--output`'s value for the log `log_file`: sbatch reads it as a pattern
/// (`%x` is the job's name, `%j` its id...), and a `%` in a task's id or
/// the root made another path, which slurmd could not open: the job failed
/// to launch. `%%` is a `%`.
pub(super) fn log_pattern(log_file: &Utf8Path) -> String {
    log_file.as_str().replace('%', "%%")
}

/// Whether `std_out`, the `StdErr` (or `StdOut`) scontrol shows for a job, is the log
/// `log_file` (`log_pattern`). scontrol shows the pattern expanded, and
/// versions do it differently: Slurm 22.05's keeps `%%` and expands the
/// `%x` that follows (`p%%xq` shown as `p%<name>q`, though the log is
/// `p%xq`), a later one may show the path itself; so any expansion of the
/// pattern is taken.
pub(super) fn shows_log(std_out: &str, log_file: &Utf8Path) -> bool {
    std_out == log_file.as_str() || expands_to(log_pattern(log_file).as_bytes(), std_out.as_bytes())
}

/// Whether some reading of the sbatch filename pattern `pattern` gives
/// `text`: `%%` as `%`, or kept as `%` before a `%` read again; a `%`,
/// maybe a width (`%4j`), and a letter as anything (a job's name, a task
/// id, holds `/`); other bytes as they are.
pub(super) fn expands_to(pattern: &[u8], text: &[u8]) -> bool {
    expands_to_seen(pattern, text, &mut HashMap::new())
}

/// `expands_to`, each pair of ends (by their lengths) worked out once: the
/// readings of many `%` branch, which tried every one of them again and
/// again (28 `%` took a second).
pub(super) fn expands_to_seen(
    pattern: &[u8],
    text: &[u8],
    seen: &mut HashMap<(usize, usize), bool>,
) -> bool {
    if let Some(&known) = seen.get(&(pattern.len(), text.len())) {
        return known;
    }
    let mut rest_gives = |pattern: &[u8], text: &[u8]| expands_to_seen(pattern, text, seen);
    let gives = match pattern {
        [] => text.is_empty(),
        [b'%', b'%', rest @ ..] => {
            text.first() == Some(&b'%')
                && (rest_gives(rest, &text[1..]) || rest_gives(&pattern[1..], &text[1..]))
        }
        [b'%', rest @ ..] => {
            let width = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let literal = text.first() == Some(&b'%') && rest_gives(rest, &text[1..]);
            literal
                || match rest.get(width) {
                    Some(letter) if letter.is_ascii_alphabetic() => {
                        let after = &rest[width + 1..];
                        (0..=text.len()).any(|n| rest_gives(after, &text[n..]))
                    }
                    _ => false,
                }
        }
        [byte, rest @ ..] => text.first() == Some(byte) && rest_gives(rest, &text[1..]),
    };
    seen.insert((pattern.len(), text.len()), gives);
    gives
}

/// The field of scontrol's line that shows a job's log: `StdErr`, the same
/// path as `StdOut` (`sbatch_args`), and always followed by `StdIn`, which
/// ends it (`parse_job`), where Slurm's versions print optional fields
/// after `StdOut`.
pub(super) const LOG_FIELD: &str = "StdErr";

/// The comment of attempt `attempt`'s job.
pub(super) fn attempt_mark(attempt: u32) -> String {
    format!("xtask-attempt-{attempt}")
}

/// The job Slurm knows for attempt `attempt` of task `task_id`, whose log
/// is `log_file` (`sbatch_args`: its name, output and comment), if there is
/// one: submitted by an orchestrator killed while its `sbatch` ran, which
/// went on and submitted it with no record. The newest, if several; an
/// error when Slurm does not answer.
pub fn find_submitted(task_id: &str, log_file: &Utf8Path, attempt: u32) -> Result<Option<String>> {
    submitted_job(task_id, log_file, attempt, None)
}

/// As `find_submitted`, of the jobs submitted at `after` or later if
/// given (not an earlier run's of the same attempt: a task reset counts
/// its attempts again), and an error when Slurm does not answer: none
/// found is then no proof that there is none.
pub(super) fn submitted_job(
    task_id: &str,
    log_file: &Utf8Path,
    attempt: u32,
    after: Option<SystemTime>,
) -> Result<Option<String>> {
    let jobs = all_jobs(Some(SHOW_JOBS_WAIT))?;
    let mark = attempt_mark(attempt);
    let field = |fields: &HashMap<String, String>, key| fields.get(key).cloned();
    let found = (jobs.into_iter())
        .filter(|(_, f)| {
            field(f, "JobName").as_deref() == Some(task_id)
                && field(f, LOG_FIELD).is_some_and(|out| shows_log(&out, log_file))
                && field(f, "Comment").as_deref() == Some(mark.as_str())
                && after.is_none_or(|after| slurm_time(f, "SubmitTime") >= Some(after))
        })
        .filter_map(|(id, _)| Some((id.parse::<u64>().ok()?, id)))
        .max();
    Ok(found.map(|(_, id)| id))
}

/// A job Slurm has not ended, of a task of this workspace (see
/// `live_jobs`).
pub struct LiveJob {
    pub task_id: String,
    pub job_id: String,
    pub state: String,
    /// Why it waits, when it does (`Reason`).
    pub reason: String,
}

/// The jobs Slurm has not ended (held, queued, running, finishing) for
/// tasks of this workspace: named by a task id, their output going to its
/// log (`log_file`, `sbatch_args`). A task of one, started again, would
/// run beside it. An error when Slurm does not answer.
pub fn live_jobs(log_file: impl Fn(&str) -> Utf8PathBuf) -> Result<Vec<LiveJob>> {
    let jobs = all_jobs(Some(SHOW_JOBS_WAIT))?;
    let mut live: Vec<LiveJob> = (jobs.into_iter())
        .filter_map(|(job_id, mut f)| {
            let state = f.remove("JobState").filter(|s| stage(s).is_some())?;
            let task_id = f.remove("JobName")?;
            let logs_here =
                (f.get(LOG_FIELD)).is_some_and(|out| shows_log(out, &log_file(&task_id)));
            logs_here.then(|| LiveJob {
                reason: f.remove("Reason").unwrap_or_default(),
                task_id,
                job_id,
                state,
            })
        })
        .collect();
    live.sort_by(|a, b| (&a.task_id, &a.job_id).cmp(&(&b.task_id, &b.job_id)));
    Ok(live)
}

/// Every job Slurm knows (`show_jobs`), by id, with its fields; an error
/// when it fails, or does not answer within `wait` when given: a
/// controller that does not answer holds scontrol for its timeout
/// (MessageTimeout, and more), which `next`, or a run taking up a killed
/// run's tasks, would wait as long (the poller, on its own thread, waits).
pub(super) fn all_jobs(wait: Option<Duration>) -> Result<HashMap<String, HashMap<String, String>>> {
    let scontrol = show_jobs(None);
    let (_, mut command) = slurm_command(&scontrol, &[], None)?;
    let child = (command.stdout(Stdio::piped()).stderr(Stdio::piped()))
        .spawn()
        .context("cannot run scontrol")?;
    let deadline = wait.map(|wait| Instant::now() + wait);
    let Some(output) = crate::sys::process::output_within(child, deadline)? else {
        bail!(
            "Slurm did not answer `scontrol show job` within {}s",
            wait.unwrap_or_default().as_secs()
        );
    };
    if !output.status.success() {
        let said = crate::ui::format::one_line(&String::from_utf8_lossy(&output.stderr));
        bail!("`scontrol show job` failed: {said}");
    }
    Ok(parse_jobs(&String::from_utf8_lossy(&output.stdout)))
}

/// How long `next`'s look for jobs not ended waits for Slurm (`live_jobs`),
/// and a look for a job a submission may have left (`submitted_job`).
pub(super) const SHOW_JOBS_WAIT: Duration = Duration::from_secs(3);
