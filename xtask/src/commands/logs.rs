//! `logs <task> [-f] [--attempt N] [-n N]`: prints or follows a task's
//! log, or its last lines.

use std::io::{Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::agent::terminal::escaped;
use crate::model::definitions;
use crate::model::layout::Layout;
use crate::model::task;
use crate::state::status::{self, State, Status};
use crate::state::{lock, logs, resets, runs};

pub fn run(
    layout: &Layout,
    id: &str,
    follow: bool,
    attempt: Option<u32>,
    lines: Option<usize>,
) -> Result<i32> {
    let typed = layout.typed_id(id);
    let id: &str = &typed;
    if !layout.task_file(id).is_file() && !layout.log_file(id).exists() {
        // Read the definitions only now: a log is shown even while they
        // have problems.
        definitions::suggest_task(layout, id)?;
        bail!(
            "no task `{}` (ids are paths under tasks/ without .md; `{}` lists them)",
            escaped(id, &[]),
            layout.cmd("progress --tasks")
        );
    }
    let mut warnings = Vec::new();
    let found = status::read_or_warn(layout, id, &mut warnings);
    // A status of a task that never ran (blocked) records no attempt.
    let recorded = found.as_ref().map(|s| s.attempt).filter(|&n| n > 0);
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    // With no status (a reset cleared it) the reset's record and the logs
    // on disk say which attempt the latest log is.
    let latest = recorded.unwrap_or_else(|| {
        let cleared = resets::read(layout).remove(id);
        resets::latest_attempt(layout, id, cleared.as_ref())
    });
    let missing = |path: &camino::Utf8Path| match (recorded, attempt) {
        (None, Some(n)) => {
            anyhow::anyhow!("{id} has no log of attempt {n} ({})", layout.display(path))
        }
        (None, None) => anyhow::anyhow!(
            "{id} has no log yet ({}): it has not run",
            layout.display(path)
        ),
        (Some(n), _) => anyhow::anyhow!(
            "{id}'s log is gone ({}), though its status records attempt {n}: it was removed",
            layout.display(path)
        ),
    };
    let path = match attempt {
        Some(n) if n == 0 || (latest > 0 && n > latest) => {
            bail!("{id} has no attempt {n}: {}", attempts_there(latest))
        }
        // A kept log names its attempt; the latest one is the task's log.
        Some(n) if n < latest || latest == 0 || layout.attempt_log_file(id, n).exists() => {
            layout.attempt_log_file(id, n)
        }
        _ => layout.log_file(id),
    };
    // A first attempt's log is made, empty, ahead of its start.
    let started = |file: &std::fs::File| latest > 0 || file.metadata().is_ok_and(|m| m.len() > 0);
    // Reset since its last attempt, or waiting for approval to start
    // again: the log there is an earlier attempt's, and the one to follow
    // is the next one's.
    let earlier_log = follow && attempt.is_none() && latest > 0 && waits_to_start(found.as_ref());
    // The run whose attempt is followed: the last one as the log is
    // opened (a run records itself before it makes a log), or, for a log
    // waited for, as it appears. A later run's attempt is another
    // following (see below).
    let last_run = || runs::last(layout).map(|run| run.id);
    let mut followed_run = last_run();
    let mut awaited = |earlier_log| {
        let file = wait_for_start(layout, id, &path, earlier_log);
        followed_run = last_run();
        file
    };
    let mut file = match std::fs::File::open(&path) {
        _ if earlier_log => awaited(true)?,
        Ok(file) if started(&file) => file,
        Ok(_) if !follow => return Err(missing(&path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && (!follow || latest > 0) => {
            return Err(missing(&path))
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot open {path}"))
        }
        // Followed before it starts (`orchestrate & logs -f T`): as
        // `tail -F` would, wait for it.
        _ => awaited(false)?,
    };
    if let Some(n) = lines {
        logs::start_of_last_lines(&file, n)
            .and_then(|start| file.seek(SeekFrom::Start(start)))
            .with_context(|| format!("cannot read {path}"))?;
    }
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut file, &mut out).with_context(|| format!("cannot read {path}"))?;
    if !follow {
        return Ok(crate::exit::SUCCESS);
    }
    // Follow while the task runs, like `tail -f`, then print what is left.
    // A retry renames the log to `<id>.attempt-N.log` and starts a new one:
    // after the old file's rest, go on with the new one, said. A later
    // run's attempt is another following: the task had ended (a run
    // started right after the last, between two looks at its status).
    let mut looked = None;
    loop {
        // Running, and looked after: a status left `running` by a killed
        // orchestrator and supervisor is followed no more. Paused by a
        // rate limit, it goes on once the pause ends, in the run going on,
        // unless that run's --phase or --task leave it out.
        let status = status::read(layout, id).ok().flatten();
        let running = status.as_ref().is_some_and(|s| s.status == State::Running);
        let gone = (status.as_ref())
            .filter(|s| {
                running && (!s.looked_after(layout) || job_ended_unseen(layout, s, &mut looked))
            })
            .map(Status::gone_note);
        let selected = || {
            let run = runs::last(layout).filter(|run| !run.finished);
            run.is_some_and(|run| run.selects(id, task::phase_of(id)))
        };
        let paused = (status.as_ref()).is_some_and(|s| s.paused_until().is_some())
            && lock::run_starting_tasks(layout)
            && selected();
        let running = (running && gone.is_none()) || paused;
        std::io::copy(&mut file, &mut out).with_context(|| format!("cannot read {path}"))?;
        out.flush()?;
        let rotated = attempt.is_none() && crate::sys::replaced(&path, &file);
        if rotated && last_run() != followed_run {
            let follow = layout.task_cmd("logs -f", id);
            eprintln!(
                "{id} ended, and a later run started its next attempt: `{follow}` follows that one"
            );
            return Ok(crate::exit::SUCCESS);
        }
        if rotated {
            if let Ok(next) = std::fs::File::open(&path) {
                file = next;
                eprintln!("{id}: its next attempt started, its log follows");
                continue;
            }
        }
        if !running {
            // Why the following ends: its process gone, or its end.
            match (gone, &status) {
                (Some(note), _) => eprintln!("{id}: {note}"),
                (None, Some(s)) => eprintln!("{id} ended: {}", status::shown_state(Some(s))),
                (None, None) => eprintln!("{id} ended: its status is gone (reset?)"),
            }
            return Ok(crate::exit::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How often `logs -f` asks Slurm whether a job ended at most: each look
/// lists every job.
const SLURM_LOOKS: Duration = Duration::from_secs(1);

/// Whether Slurm lists the job of running task `s` ended while no run is
/// on to record it: its process is gone, as a local task's whose
/// supervisor recorded its end (`looked`: when Slurm was last asked).
fn job_ended_unseen(layout: &Layout, s: &Status, looked: &mut Option<Instant>) -> bool {
    if s.job_id.is_none() || looked.is_some_and(|at: Instant| at.elapsed() < SLURM_LOOKS) {
        return false;
    }
    *looked = Some(Instant::now());
    crate::executor::slurm::end_unseen(layout, s).is_some()
}

/// Whether a task whose status is `status` has not started its next
/// attempt: it has no status (never run, or reset), or waits for a
/// person's approval to start (not of a result: it ran).
fn waits_to_start(status: Option<&Status>) -> bool {
    status.is_none_or(|s| s.status == State::AwaitingApproval && s.completed_at.is_none())
}

/// Waits until task `id` has started writing its log at `path`; says so
/// on stderr meanwhile (Ctrl-C ends the wait). Ends too when the task
/// reaches any other state than pending without a log to show (blocked,
/// say, or a quick run seen only once it ended). `earlier_log`: the log at
/// `path` is an earlier attempt's (a reset since), not the one waited for.
fn wait_for_start(
    layout: &Layout,
    id: &str,
    path: &camino::Utf8Path,
    earlier_log: bool,
) -> Result<std::fs::File> {
    let shown = layout.display(path);
    match earlier_log {
        true => eprintln!(
            "{id} has not started its next attempt: waiting for its log ({shown}; the last attempt's is shown by `{}`)",
            layout.task_cmd("logs", id)
        ),
        false => eprintln!("{id} has not started yet: waiting for its log ({shown})"),
    }
    loop {
        let status = status::read(layout, id).ok().flatten();
        let state = status.as_ref().map(|s| s.status);
        let waits = waits_to_start(status.as_ref());
        // The earlier attempt's log, until the next one starts (a blocked
        // task's never does).
        let old_log = earlier_log && (waits || state == Some(State::Blocked));
        match std::fs::File::open(path) {
            Ok(file) if !old_log && (!waits || file.metadata().is_ok_and(|m| m.len() > 0)) => {
                return Ok(file)
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot open {path}"))
            }
            _ if !waits && state != Some(State::Running) => {
                bail!(
                    "{id} is {}, with no log: it did not run",
                    state.unwrap_or(State::Running)
                )
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The attempts a task has had, up to `latest`, said in words.
fn attempts_there(latest: u32) -> String {
    match latest {
        0 => "it has not run".to_owned(),
        1 => "its only attempt is 1".to_owned(),
        _ => format!("its attempts are 1 to {latest}"),
    }
}
