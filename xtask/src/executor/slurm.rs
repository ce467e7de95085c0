//! Runs tasks on a Slurm cluster: each attempt is one `sbatch` job, and one
//! `scontrol -a show job -o` per interval tells the state of every job in
//! flight (never one process per job). When a job ends, its exit record is
//! written like the local supervisor's, so the run loop treats both alike.
//! `workspace/` must be on a file system shared with the compute nodes.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::launch::{told_error, Setup};
use super::watchdog::{Alarm, Escalation, Watchdog};
use super::{Event, Launch, Limits};
use crate::model::config::SlurmConfig;
use crate::model::layout::Layout;
use crate::state::logs::HeldLog;
use crate::state::records::{write_record, ExitRecord};
use crate::state::status::{Ending, Status};
use crate::sys::env::GIT_REPOSITORY_VARS;
use crate::sys::lock;

mod cancel;
mod ends;
mod fields;
mod listing;
mod submit;
#[cfg(test)]
mod tests;

use cancel::scancel;
use ends::*;
use fields::*;
use listing::*;
pub use listing::{find_submitted, live_jobs};
use submit::*;

/// How job `job_id` of task `task_id` ended, if Slurm lists it ended (one
/// look, given `SHOW_JOBS_WAIT`), as the poller records it: none while it
/// waits or runs, once Slurm no longer lists it, or when Slurm is silent.
pub fn ended_record(layout: &Layout, task_id: &str, job_id: &str) -> Option<ExitRecord> {
    ended_records(layout, &[(task_id, job_id)]).remove(job_id)
}

/// Of the `jobs` (each a task id and its job id), how those Slurm lists
/// ended, by job id (one look for all: `ended_record`).
pub fn ended_records(layout: &Layout, jobs: &[(&str, &str)]) -> HashMap<String, ExitRecord> {
    let Ok(listed) = all_jobs(Some(SHOW_JOBS_WAIT)) else {
        return HashMap::new();
    };
    let ended = |&(task_id, job_id): &(&str, &str)| {
        let fields = listed.get(job_id)?;
        let state = fields.get("JobState").filter(|state| !state.is_empty())?;
        if stage(state).is_some() {
            return None;
        }
        let stopping = StopRecord::read(&layout.exit_file(task_id), job_id).map(|s| s.alarm);
        let mut record = final_record(state, fields, stopping.as_ref().map(|a| a.ending));
        if let Some(detail) = stopping.and_then(|a| a.detail) {
            record.message = Some(detail);
        }
        Some((job_id.to_owned(), record))
    };
    jobs.iter().filter_map(ended).collect()
}

/// How the Slurm job of running task `s` ended, when Slurm lists it ended
/// and no run is on to record it (one look, given `SHOW_JOBS_WAIT`), as
/// the local supervisor's record of an end tells it: for the commands that
/// would take a job the run no longer follows for one that runs.
pub fn end_unseen(layout: &Layout, s: &Status) -> Option<ExitRecord> {
    let job = s.job_id.as_deref()?;
    if crate::state::status::a_run_holds(layout) {
        return None;
    }
    ended_record(layout, &s.task_id, job)
}

/// Reasons for which a pending job will never start.
const HOPELESS: [&str; 6] = [
    "PartitionConfig",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "InvalidAccount",
    "InvalidQOS",
    "BadConstraints",
];

/// How many `sbatch` may run at once: one slow submission holds up no
/// other, and a busy controller is not flooded.
const SUBMITTERS: usize = 4;

pub struct Slurm {
    config: SlurmConfig,
    jobs: Arc<Mutex<Jobs>>,
    /// To the threads that run `sbatch` (`SUBMITTERS`): a slow controller
    /// (seconds per submission on a busy cluster) holds neither the run's
    /// other tasks nor its view.
    submissions: Sender<Submission>,
}

/// The jobs in flight, by job id, and the tasks the run stopped, each with
/// the signal asked for: a job whose submission was going on then is
/// cancelled as soon as it has its id.
#[derive(Default)]
struct Jobs {
    in_flight: HashMap<String, Job>,
    stopped: HashMap<String, Option<&'static str>>,
}

/// An attempt to submit.
struct Submission {
    task_id: String,
    attempt: u32,
    args: Vec<String>,
    env: Vec<(String, String)>,
    layout: Layout,
    job: Job,
}

/// A job in flight.
struct Job {
    task_id: String,
    exit_file: Utf8PathBuf,
    timeout: Option<Duration>,
    /// The idle timeout: the job is cancelled when its log (on the shared
    /// file system) has not grown for this long.
    idle_timeout: Option<Duration>,
    log_file: Utf8PathBuf,
    /// Set when the job leaves the queue: its time counts from then.
    watchdog: Option<Watchdog>,
    /// A still log ending with one of these is a question: see `Watchdog`.
    prompt: (Duration, std::sync::Arc<[String]>),
    /// The error it was told its previous attempt failed with, if known:
    /// see `Watchdog::told`.
    told: Option<String>,
    /// The worktree's setup it runs first, if it does.
    setup: Option<Setup>,
    /// Why we cancelled it, once we did.
    stopping: Option<Alarm>,
    /// Whether it is a job a killed run was stopping, to stop again as the
    /// first look finds it (`stop_again`).
    stop_again: bool,
    /// The SIGTERM of its stop Slurm took, once it did (recorded in its
    /// `StopRecord`, for a run that takes it up).
    terminated: Option<Terminated>,
    /// How far its stop has got, for a job stopped as it ran: SIGTERM
    /// first, SIGKILL `grace` later, as a local task's.
    escalation: Option<Escalation>,
    /// Its `kill_grace`: from its SIGTERM to its SIGKILL.
    grace: Duration,
    /// The `scancel` owed it (with its signal) until one reaches Slurm: one
    /// that failed (a controller busy or restarting) is tried again at
    /// each look, else the job ran on to its own end.
    cancel_owed: Option<Option<&'static str>>,
    /// When it was first seen suspended, while it is: the pause is taken
    /// off its time when it resumes (`Watchdog::resumed`).
    suspended: Option<Instant>,
    /// Whether the run was told it is held, while it is: said once.
    said_held: bool,
    /// How often Slurm had requeued it (`Restarts`) when last seen running:
    /// more now, and it was requeued and started again between two looks.
    restarts: Option<u32>,
    /// Its log, open, for a job whose result is read from it (an agent's):
    /// removed with `workspace/logs` while the job runs, it is put back
    /// from here once the job has ended (`put_back_log`).
    held_log: Option<HeldLog>,
}

impl Slurm {
    pub fn start<E: Send + 'static>(
        config: &SlurmConfig,
        events: Sender<E>,
        wrap: fn(Event) -> E,
    ) -> anyhow::Result<Slurm> {
        let jobs: Arc<Mutex<Jobs>> = Arc::default();
        let watched = Arc::clone(&jobs);
        let interval = config.poll_interval;
        let told = events.clone();
        crate::sys::spawn_thread("following Slurm's jobs", move || loop {
            std::thread::sleep(interval);
            for event in poll(&watched, None) {
                if told.send(wrap(event)).is_err() {
                    return;
                }
            }
        })?;
        let (submissions, to_submit) = mpsc::channel::<Submission>();
        let to_submit = Arc::new(Mutex::new(to_submit));
        for _ in 0..SUBMITTERS {
            let (to_submit, followed) = (Arc::clone(&to_submit), Arc::clone(&jobs));
            let events = events.clone();
            crate::sys::spawn_thread("submitting to Slurm", move || loop {
                // One idle submitter waits for the next, the others for it.
                let Ok(submission) = lock(&to_submit).recv() else {
                    return;
                };
                let tell = |event| events.send(wrap(event)).is_ok();
                if !submit(submission, &followed, tell) {
                    return;
                }
            })?;
        }
        Ok(Slurm {
            config: config.clone(),
            jobs,
            submissions,
        })
    }

    /// Has the attempt submitted: its job id comes as `Event::Submitted`.
    /// The task's environment is the submitter's, which sbatch exports to
    /// the job.
    pub fn launch(&mut self, layout: &Layout, launch: &Launch, limits: &Limits) {
        let submission = Submission {
            task_id: launch.task_id.clone(),
            attempt: launch.attempt,
            args: sbatch_args(&self.config, launch, limits),
            env: launch.env.clone(),
            layout: layout.clone(),
            job: Job::new(layout, &launch.task_id, limits, told_error(&launch.env))
                .holding_log(launch.stdout_file.is_some()),
        };
        // The thread outlives every submission: it ends with the run.
        let _ = self.submissions.send(submission);
    }

    /// Follows a job submitted by an orchestrator that died, told `told`
    /// as its attempt was (`Watchdog::told`), its log held open where its
    /// result is read (`reads_result`); one it was cancelling is stopped
    /// again as the first look finds it (`Job::stop_again`) and ends for
    /// the reason it was cancelled for (`StopRecord`).
    pub fn follow(
        &mut self,
        layout: &Layout,
        task_id: &str,
        job_id: &str,
        limits: &Limits,
        told: Option<String>,
        reads_result: bool,
    ) {
        let mut job = Job::new(layout, task_id, limits, told).holding_log(reads_result);
        if let Some(stopping) = StopRecord::read(&job.exit_file, job_id) {
            job.stopping = Some(stopping.alarm);
            job.terminated = stopping.terminated;
            job.stop_again = true;
        }
        lock(&self.jobs).in_flight.insert(job_id.to_owned(), job);
    }

    /// Looks at the jobs followed once now, as the poller does at each
    /// interval (Slurm given `SHOW_JOBS_WAIT` to answer): the events it
    /// gives, an end among them, are the run's to take at once.
    pub fn look_now(&self) -> Vec<Event> {
        poll(&self.jobs, Some(SHOW_JOBS_WAIT))
    }

    /// Cancels the task's job (Slurm sends TERM, then KILL after KillWait),
    /// or the job its submission going on makes, once it has its id.
    pub fn stop(&mut self, task_id: &str, signal: Option<&'static str>) {
        let mut jobs = lock(&self.jobs);
        jobs.stopped.insert(task_id.to_owned(), signal);
        let stopping = (jobs.in_flight.iter_mut()).filter(|(_, j)| j.task_id == task_id);
        for (id, job) in stopping {
            job.cancel(id, signal);
        }
    }
}

impl Job {
    fn new(layout: &Layout, task_id: &str, limits: &Limits, told: Option<String>) -> Job {
        Job {
            task_id: task_id.to_owned(),
            exit_file: layout.exit_file(task_id),
            timeout: limits.timeout,
            idle_timeout: limits.idle_timeout,
            log_file: layout.log_file(task_id),
            prompt: (limits.prompt_idle, limits.prompt_patterns.clone()),
            told,
            setup: limits.setup.clone(),
            watchdog: None,
            stopping: None,
            stop_again: false,
            terminated: None,
            escalation: None,
            grace: limits.grace,
            cancel_owed: None,
            suspended: None,
            said_held: false,
            restarts: None,
            held_log: None,
        }
    }

    /// The job, its log held open when `reads_result` (see `held_log`):
    /// the file the run made for it, which Slurm appends to.
    fn holding_log(mut self, reads_result: bool) -> Job {
        self.held_log = reads_result.then(|| HeldLog::hold(&self.log_file));
        self
    }

    /// Once the job has ended: its log put back if it was removed
    /// meanwhile (see `HeldLog`).
    fn put_back_log(&self) {
        let Some(held) = &self.held_log else {
            return;
        };
        if let Err(e) = held.put_back_if_gone() {
            eprintln!(
                "warning: {}: what its job printed is lost: {e:#}",
                self.task_id
            );
        }
    }
}

/// Runs `sbatch` for a submission, and `tell`s the run its job id, or why
/// there is none; the job is followed from then on (its events come after
/// that id), cancelled at once if the run stopped its task meanwhile.
/// Returns what `tell` did: false once the run is gone.
fn submit(submission: Submission, jobs: &Mutex<Jobs>, tell: impl Fn(Event) -> bool) -> bool {
    // On disk before sbatch runs: a crash while it runs leaves the task
    // found in `workspace/pids/`, its task file gone or not.
    let (layout, task_id) = (&submission.layout, &submission.task_id);
    let marked = crate::state::records::write_submitting(layout, task_id, submission.attempt);
    if let Err(e) = marked {
        eprintln!("warning: {e:#}");
    }
    let submitted = submit_until_known(&submission, jobs, &tell);
    let Submission {
        task_id,
        attempt,
        layout,
        mut job,
        ..
    } = submission;
    if let Ok(job_id) = &submitted {
        // On disk first: a crash now leaves a job the next run adopts.
        let recorded = crate::state::records::write_job(&layout, &task_id, job_id, attempt);
        if let Err(e) = recorded {
            // The running status names the job a moment later.
            eprintln!("warning: {e:#}");
        }
    }
    let told = tell(Event::Submitted {
        task_id: task_id.clone(),
        job: submitted.clone(),
    });
    if let Ok(job_id) = submitted {
        let mut jobs = lock(jobs);
        if let Some(&signal) = jobs.stopped.get(&task_id) {
            job.cancel(&job_id, signal);
        }
        jobs.in_flight.insert(job_id, job);
    }
    told
}

/// The `sbatch` command line for an attempt (also what a dry run prints).
pub fn sbatch_args(config: &SlurmConfig, launch: &Launch, limits: &Limits) -> Vec<String> {
    let mut args = vec![
        "sbatch".to_owned(),
        "--parsable".to_owned(),
        format!("--job-name={}", launch.task_id),
        // stdout and stderr both into the log: the result is read from it
        // (`run::verdict`), the watchdog sees it grow, `why` shows it whole.
        format!("--output={}", log_pattern(&launch.log_file)),
        format!("--error={}", log_pattern(&launch.log_file)),
        // Slurm truncates the log as the job starts, by default: what the run
        // wrote there first (a controller it waited for) was erased. Each
        // attempt has a log of its own (`logs::keep_attempt_log`).
        "--open-mode=append".to_owned(),
        format!("--chdir={}", launch.cwd),
        // The task's variables go with sbatch's environment, also where the
        // submitter's says `SBATCH_EXPORT=NONE` (a site's default, maybe).
        "--export=ALL".to_owned(),
        // What finds the job again after a crash before sbatch answered
        // (`find_submitted`), with its name and log.
        format!("--comment={}", attempt_mark(launch.attempt)),
        format!("--cpus-per-task={}", limits.cpus.ceil().max(1.0)),
        format!("--mem={}M", (limits.memory_gb * 1024.0).ceil()),
    ];
    if let Some(timeout) = limits.timeout {
        // Slurm counts whole minutes; ours is enforced to the second by
        // scancel, from the end of the worktree's setup, which has its own.
        // Not lengthened by `kill_grace`: a timeout set to a partition's
        // longest time would be refused (Slurm's limit may cut the grace).
        let setup = limits.setup.as_ref().map_or(Duration::ZERO, |s| s.timeout);
        let minutes = (timeout + setup).as_secs().div_ceil(60).max(1);
        args.push(format!("--time={minutes}"));
    }
    if let Some(partition) = &config.partition {
        args.push(format!("--partition={partition}"));
    }
    if let Some(account) = &config.account {
        args.push(format!("--account={account}"));
    }
    args.extend(config.extra_args.iter().cloned());
    // `exec`: the task is the batch step's process, not a child of the
    // shell sbatch wraps the command in, so that its death by a signal is
    // Slurm's (not the shell's exit code 128+n), and scancel's TERM
    // reaches it first (not a shell whose end has Slurm kill the rest).
    args.push(format!(
        "--wrap=exec {}",
        crate::sys::shell::shell_words(&launch.argv)
    ));
    args
}

/// Where a job not ended stands, by its state (Slurm's names, "JOB STATE
/// CODES" in `squeue(1)`); any other state is an end.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// Queued, held, requeued or suspended: its task's time does not run
    /// (a requeued job's counts again from its next start; a suspended
    /// one's, and its log's stillness, go on from where they stopped).
    Waiting,
    /// Running, stopped, being signalled, resized or finishing: it holds
    /// its allocation and its time runs.
    Running,
}

fn stage(state: &str) -> Option<Stage> {
    match state {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_FED" | "REQUEUE_HOLD"
        | "SPECIAL_EXIT" | "RESV_DEL_HOLD" | "SUSPENDED" => Some(Stage::Waiting),
        "RUNNING" | "STOPPED" | "SIGNALING" | "RESIZING" | "STAGE_OUT" | "COMPLETING" => {
            Some(Stage::Running)
        }
        _ => None,
    }
}

/// What became of a job that waits now, for the run to say: `requeued`
/// after it ran (its time counts again from its next start), held as well
/// or held before it ever ran (and how to let it go on), or suspended (its
/// time stops meanwhile).
fn waiting_now(job_id: &str, state: &str, reason: &str, requeued: bool) -> String {
    if state == "SUSPENDED" {
        return format!(
            "Slurm suspended its job ({state}, {reason}): its time stops until it resumes"
        );
    }
    let held = is_held(state, reason);
    if !requeued && held {
        return format!(
            "Slurm holds its job in the queue ({state}, {reason}) until `scontrol release {job_id}`"
        );
    }
    let release = match held {
        true => format!(", held until `scontrol release {job_id}`"),
        false => String::new(),
    };
    format!("Slurm put its job back in the queue ({state}, {reason}{release}): its time counts again from its next start")
}

/// Whether a job's state or the reason it waits holds it until a person
/// releases it (`scontrol requeuehold` without a state leaves it `PENDING`
/// with a reason of its own; Slurm holds a job requeued too often, or
/// whose launch failed, with others).
pub fn is_held(state: &str, reason: &str) -> bool {
    matches!(state, "REQUEUE_HOLD" | "SPECIAL_EXIT" | "RESV_DEL_HOLD")
        || reason.starts_with("JobHeld")
        || [
            "JobHoldMaxRequeue",
            "job_requeued_in_held_state",
            "launch failed requeued held",
        ]
        .contains(&reason)
}

/// How long a running job has run: Slurm's `RunTime` (`[D-]HH:MM:SS`),
/// which leaves out the time it was suspended, else since its `start`.
fn time_run(fields: &HashMap<String, String>, start: Option<SystemTime>) -> Duration {
    let run_time = fields.get("RunTime").and_then(|text| {
        let (days, clock) = text.split_once('-').unwrap_or(("0", text));
        let secs = clock.split(':').try_fold(0u64, |total, part| {
            Some(total * 60 + part.parse::<u64>().ok()?)
        })?;
        Some(days.parse::<u64>().ok()? * 86_400 + secs)
    });
    match run_time {
        Some(secs) => Duration::from_secs(secs),
        None => start.and_then(|s| s.elapsed().ok()).unwrap_or_default(),
    }
}

/// Runs a Slurm command (`argv`, its program first) to its end, built by
/// xshell (each value one argument), with `env` added, in `dir` (else
/// here). It keeps the signals the orchestrator blocks blocked, on
/// purpose: a Ctrl-C in the terminal reaches the whole process group, and
/// an `sbatch` cut after the controller took the job would leave a job
/// that nothing records or cancels. The run hears the Ctrl-C at once
/// (sbatch runs on a submitter's thread) and cancels the job as soon as
/// sbatch gives its id (`Jobs::stopped`). It dies with the orchestrator
/// (SIGKILL, which no mask blocks): an sbatch left running would submit a
/// job after it, unrecorded, and be taken for the task by the next run
/// (it carries the task's environment, to export it); one killed after
/// the controller took the job leaves a job the next run finds
/// (`find_submitted`).
fn slurm(argv: &[String], env: &[(String, String)], dir: Option<&Utf8Path>) -> Result<Output> {
    let (program, mut command) = slurm_command(argv, env, dir)?;
    command
        .output()
        .with_context(|| format!("cannot run {program}"))
}

/// The command that runs Slurm's `argv`, and its program's name.
fn slurm_command<'a>(
    argv: &'a [String],
    env: &[(String, String)],
    dir: Option<&Utf8Path>,
) -> Result<(&'a str, Command)> {
    let sh = xshell::Shell::new().context("cannot start a shell for Slurm's commands")?;
    if let Some(dir) = dir {
        sh.change_dir(dir);
    }
    let (program, args) = argv
        .split_first()
        .context("a Slurm command names its program")?;
    // sbatch exports its environment to the job: no task may get the
    // user's repository from a git hook that started the run, nor a make
    // jobserver it cannot reach. Nor may sbatch wait for its job's end
    // (`SBATCH_WAIT`, which no option undoes): the job's id came only then,
    // and its timeout never applied.
    let cmd = (GIT_REPOSITORY_VARS.iter().chain(&["SBATCH_WAIT"]))
        .fold(xshell::cmd!(sh, "{program} {args...}"), |cmd, var| {
            cmd.env_remove(var)
        })
        .envs(crate::sys::env::make_flags_for_tasks())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .quiet();
    let mut command = Command::from(cmd);
    // SAFETY: prctl is async-signal-safe and takes integer arguments.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    };
    Ok((program, command))
}

/// The `scontrol` command that lists every job Slurm knows (`job`: that
/// one), one line each. `-a`: also in partitions hidden from the user, who
/// would not see their own jobs there otherwise.
fn show_jobs(job: Option<&str>) -> Vec<String> {
    let mut argv = ["scontrol", "-a", "show", "job", "-o"]
        .map(str::to_owned)
        .to_vec();
    argv.extend(job.map(str::to_owned));
    argv
}

/// What Slurm says of one job asked for by its id.
enum Lookup {
    Listed(HashMap<String, String>),
    /// It knows no such job (its record purged): not only that it did not
    /// answer.
    Unknown,
}

/// What Slurm says of job `job`, or `None` when it does not answer.
fn look_up(job: &str) -> Option<Lookup> {
    let output = slurm(&show_jobs(Some(job)), &[], None).ok()?;
    if String::from_utf8_lossy(&output.stderr).contains("Invalid job id specified") {
        return Some(Lookup::Unknown);
    }
    let mut listed = parse_jobs(&String::from_utf8_lossy(&output.stdout));
    (output.status.success())
        .then(|| listed.remove(job).map(Lookup::Listed))
        .flatten()
}

/// One `scontrol` call for all jobs in flight; writes the exit record of each
/// job that ended and returns the events to send.
fn poll(jobs: &Mutex<Jobs>, wait: Option<Duration>) -> Vec<Event> {
    // One look at a time (the poller's and the run's `look_now`): an older
    // listing taken in after a newer one would tell a job back in time.
    static LOOKING: Mutex<()> = Mutex::new(());
    let _looking = lock(&LOOKING);
    let followed: Vec<String> = lock(jobs).in_flight.keys().cloned().collect();
    if followed.is_empty() {
        return Vec::new();
    }
    let Ok(mut states) = all_jobs(wait) else {
        return Vec::new();
    };
    let missing: Vec<&String> = (followed.iter())
        .filter(|id| !states.contains_key(*id))
        .collect();
    // Slurm keeps a job from the moment sbatch gives its id until
    // MinJobAge after its end, so a job the listing leaves out was purged
    // after an end we did not see, or this listing hid it from us (a
    // partition hidden from it, before `-a`; a controller taking over from
    // another). Only Slurm saying it knows no such job is taken for the
    // first: a job lost at once on one listing was submitted again beside
    // itself.
    let mut unknown = Vec::new();
    for id in missing {
        match look_up(id) {
            Some(Lookup::Listed(fields)) => {
                states.insert(id.clone(), fields);
            }
            Some(Lookup::Unknown) => unknown.push(id.clone()),
            None => {}
        }
    }
    let mut jobs = lock(jobs);
    let jobs = &mut jobs.in_flight;
    let mut events = Vec::new();
    let mut ended = Vec::new();
    for (id, job) in jobs.iter_mut() {
        let Some(fields) = states.get(id) else {
            if unknown.contains(id) {
                // Purged before we saw its end: nothing tells how it ended.
                ended.push((id.clone(), lost_record("Slurm no longer knows the job")));
            }
            // Else the next look tells.
            continue;
        };
        let state = fields.get("JobState").map(String::as_str).unwrap_or("");
        let reason = fields.get("Reason").map(String::as_str).unwrap_or("None");
        let stage = stage(state);
        match stage {
            Some(Stage::Waiting) => {
                let held = is_held(state, reason);
                let restarted = (fields.get("Restarts")).is_some_and(|n| n != "0");
                let mut requeued = restarted;
                let tell = if state == "SUSPENDED" {
                    // Its watchdog waits for it, its time stopped: said once.
                    let first = job.suspended.is_none();
                    job.suspended.get_or_insert_with(Instant::now);
                    first
                } else {
                    // Seen running before: requeued (or preempted and
                    // requeued). Its time counts again from its next start.
                    // A held job is said once, also one never seen running
                    // (taken up after a crash): it waits for a person.
                    job.suspended = None;
                    let ran = job.watchdog.take().is_some();
                    requeued |= ran;
                    let tell = ran || (held && !job.said_held);
                    job.said_held = held;
                    tell
                };
                if tell {
                    events.push(Event::Queued {
                        task_id: job.task_id.clone(),
                        what: waiting_now(id, state, reason, requeued),
                    });
                }
                if job.escalation.take().is_some() {
                    // Stopped as it ran, waiting again (requeued,
                    // suspended): a signal would wait with it.
                    job.cancel_owed = Some(None);
                }
                // Recorded ended once Slurm took the cancel: else the job
                // would wait on, and the next look tries again.
                if HOPELESS.contains(&reason) && scancel(id, None) {
                    let why = format!("Slurm cannot run the job: Reason={reason}");
                    ended.push((
                        id.clone(),
                        ExitRecord::with_message(Ending::SpawnFailed, why),
                    ));
                }
            }
            Some(Stage::Running) => {
                let now = Instant::now();
                let restarts = fields.get("Restarts").and_then(|n| n.parse().ok());
                if job.watchdog.is_some() && restarts != job.restarts {
                    // Requeued and started again while no look saw it wait
                    // (looks that failed for a while): as for a requeue
                    // seen, its time counts from its new start.
                    job.watchdog = None;
                    job.suspended = None;
                    events.push(Event::Queued {
                        task_id: job.task_id.clone(),
                        what: format!("Slurm requeued its job and started it again (Restarts={}): its time counts from its new start", restarts.unwrap_or(0)),
                    });
                }
                job.restarts = restarts;
                let resumed = job.suspended.take();
                if let (Some(at), Some(watchdog)) = (resumed, job.watchdog.as_mut()) {
                    watchdog.resumed(now.saturating_duration_since(at), now);
                    events.push(Event::Resumed {
                        task_id: job.task_id.clone(),
                    });
                }
                if let Some(held) = job.held_log.as_mut().filter(|_| job.watchdog.is_none()) {
                    // (Re)started: Slurm opened its log by its path.
                    held.again();
                }
                let watchdog = job.watchdog.get_or_insert_with(|| {
                    // Slurm's start, not when this poller first saw it (an
                    // orchestrator that took the job up after a crash):
                    // its timeout counts from it, less the time it was
                    // suspended.
                    let since = slurm_time(fields, "StartTime").filter(|s| *s <= SystemTime::now());
                    let ran = time_run(fields, since);
                    events.push(Event::Started {
                        task_id: job.task_id.clone(),
                        pid: None,
                        since,
                    });
                    let started = now.checked_sub(ran).unwrap_or(now);
                    let mut watchdog =
                        Watchdog::new(job.log_file.clone(), job.timeout, job.idle_timeout, started)
                            .with_prompts(job.prompt.0, job.prompt.1.clone())
                            .after_setup(job.setup.as_ref())
                            .told(job.told.clone());
                    if let Some(at) = resumed {
                        // First seen suspended (taken up after a crash):
                        // `RunTime` leaves the pause out already; its log's
                        // stillness does not count the pause seen.
                        watchdog.paused(now.saturating_duration_since(at), now);
                    }
                    watchdog
                });
                if let Some(alarm) = job
                    .stopping
                    .is_none()
                    .then(|| watchdog.check(now))
                    .flatten()
                {
                    job.stop_for(id, alarm);
                }
                job.escalate("", now);
            }
            None => {
                // Ended before a look saw it run (a short job, or one that
                // ended while no orchestrator looked): its time counts
                // from Slurm's start, not from its submission.
                let mut record =
                    final_record(state, fields, job.stopping.as_ref().map(|a| a.ending));
                let since = slurm_time(fields, "StartTime").filter(|s| *s <= SystemTime::now());
                // A job cancelled in the queue never ran: Slurm gives it
                // its cancel as its start, so that it took no time.
                let ran = matches!(
                    state,
                    "COMPLETED" | "FAILED" | "TIMEOUT" | "OUT_OF_MEMORY" | "CANCELLED"
                ) && record.ending != Ending::SpawnFailed;
                if let Some(since) = since.filter(|_| ran && job.watchdog.is_none()) {
                    events.push(Event::Started {
                        task_id: job.task_id.clone(),
                        pid: None,
                        since: Some(since),
                    });
                }
                if let Some(detail) = job.stopping.as_ref().and_then(|a| a.detail.clone()) {
                    record.message = Some(detail);
                }
                ended.push((id.clone(), record));
            }
        }
        if stage.is_some() {
            job.stop_again(id);
            job.send_cancel(id);
        }
    }
    for (id, record) in ended {
        let Some(job) = jobs.remove(&id) else {
            continue;
        };
        job.put_back_log();
        if let Err(e) = write_record(&job.exit_file, &record) {
            eprintln!("error: {e:#}");
        }
        // On disk: a job outlives the orchestrator, and its record must too.
        events.push(Event::Ended {
            task_id: job.task_id,
            record: None,
        });
    }
    events
}
