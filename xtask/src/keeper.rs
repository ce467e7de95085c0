//! The keeper: a small process between the orchestrator and each task. It
//! starts the task in a process group of its own, enforces its timeout and
//! idle timeout (SIGTERM to the group, SIGKILL after the grace period), kills
//! whatever the task left behind, and writes the task's exit record. It
//! outlives the orchestrator, so a task's real exit code is never lost, even
//! when the orchestrator is killed while the task runs.
//!
//! Invoked as `xtask __keep <spec> -- <argv...>`, with the task's environment,
//! working directory and log already set up by the executor.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use wait_timeout::ChildExt;

/// The first argument that makes the binary a keeper.
pub const ARG: &str = "__keep";

/// How the task ended, as written to `workspace/pids/<id>.exit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    pub ending: Ending,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    pub ended_at: String,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    Exited,
    Timeout,
    IdleTimeout,
    Interrupted,
    SpawnFailed,
}

/// What the keeper is asked to do, passed on its command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub exit_file: Utf8PathBuf,
    pub pid_file: Utf8PathBuf,
    pub log_file: Utf8PathBuf,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub grace: Duration,
}

impl Spec {
    pub fn to_args(&self, argv: &[String]) -> Vec<String> {
        let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| d.as_millis().to_string());
        let mut args = vec![
            ARG.to_owned(),
            self.exit_file.to_string(),
            self.pid_file.to_string(),
            self.log_file.to_string(),
            ms(self.timeout),
            ms(self.idle_timeout),
            ms(Some(self.grace)),
            "--".to_owned(),
        ];
        args.extend(argv.iter().cloned());
        args
    }

    fn parse(args: &[String]) -> Result<(Spec, Vec<String>)> {
        let ms = |s: &str| -> Result<Option<Duration>> {
            if s == "-" {
                return Ok(None);
            }
            Ok(Some(Duration::from_millis(
                s.parse().context("bad duration")?,
            )))
        };
        let [exit_file, pid_file, log_file, timeout, idle, grace, dashes, argv @ ..] = args else {
            bail!("usage: xtask {ARG} EXIT PID LOG TIMEOUT IDLE GRACE -- ARGV...");
        };
        if dashes != "--" || argv.is_empty() {
            bail!("usage: xtask {ARG} EXIT PID LOG TIMEOUT IDLE GRACE -- ARGV...");
        }
        let spec = Spec {
            exit_file: exit_file.into(),
            pid_file: pid_file.into(),
            log_file: log_file.into(),
            timeout: ms(timeout)?,
            idle_timeout: ms(idle)?,
            grace: ms(grace)?.unwrap_or_default(),
        };
        Ok((spec, argv.to_vec()))
    }
}

pub fn read_record(path: &Utf8Path) -> Option<ExitRecord> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Runs the keeper; returns the exit code for the keeper itself.
pub fn main(args: &[String]) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            // stderr is the task's log.
            eprintln!("xtask keeper: {e:#}");
            125
        }
    }
}

fn run(args: &[String]) -> Result<i32> {
    let (spec, argv) = Spec::parse(args)?;
    crate::signals::unblock();
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, request_stop as *const () as libc::sighandler_t) };
    }
    let mut child = match Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let message = format!("cannot start `{}`: {e}", argv[0]);
            eprintln!("xtask: {message}");
            write_record(&spec, Ending::SpawnFailed, None, Some(message))?;
            return Ok(127);
        }
    };
    let pgid = child.id();
    crate::atomic::write(&spec.pid_file, format!("{pgid}\n").as_bytes())?;
    let (ending, status) = supervise(&spec, &mut child, pgid)?;
    // Whatever the task started and left behind dies with it, before its
    // end is recorded.
    if crate::process::signal_group(pgid, libc::SIGKILL) {
        eprintln!("xtask: killed processes that the task left running");
    }
    crate::process::wait_group_gone(pgid, Duration::from_secs(2));
    write_record(&spec, ending, Some(status), None)?;
    Ok(status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    }))
}

/// Waits for the task, ending it early on timeout, idleness or a stop request.
fn supervise(
    spec: &Spec,
    child: &mut std::process::Child,
    pgid: u32,
) -> Result<(Ending, ExitStatus)> {
    const TICK: Duration = Duration::from_millis(100);
    let start = Instant::now();
    let mut log_size = 0;
    let mut last_growth = Instant::now();
    loop {
        if let Some(status) = child.wait_timeout(TICK).context("waiting for the task")? {
            // A stop requested before this tick saw it still ended the task
            // (a second Ctrl-C kills the group directly).
            let ending = if STOP_REQUESTED.load(Ordering::SeqCst) {
                Ending::Interrupted
            } else {
                Ending::Exited
            };
            return Ok((ending, status));
        }
        let ending = if STOP_REQUESTED.load(Ordering::SeqCst) {
            Ending::Interrupted
        } else if spec.timeout.is_some_and(|t| start.elapsed() >= t) {
            Ending::Timeout
        } else if let Some(idle) = spec.idle_timeout {
            let size = spec.log_file.metadata().map(|m| m.len()).unwrap_or(0);
            if size != log_size {
                log_size = size;
                last_growth = Instant::now();
            }
            if last_growth.elapsed() < idle {
                continue;
            }
            Ending::IdleTimeout
        } else {
            continue;
        };
        return Ok((ending, terminate(child, pgid, spec.grace)?));
    }
}

/// SIGTERM to the whole group, SIGKILL after `grace`. The group is signalled
/// before the leader is reaped, so its id cannot have been reused.
fn terminate(child: &mut std::process::Child, pgid: u32, grace: Duration) -> Result<ExitStatus> {
    crate::process::signal_group(pgid, libc::SIGTERM);
    if let Some(status) = child.wait_timeout(grace).context("waiting for the task")? {
        return Ok(status);
    }
    crate::process::signal_group(pgid, libc::SIGKILL);
    child.wait().context("waiting for the task")
}

fn write_record(
    spec: &Spec,
    ending: Ending,
    status: Option<ExitStatus>,
    message: Option<String>,
) -> Result<()> {
    use std::os::unix::process::ExitStatusExt;
    let record = ExitRecord {
        ending,
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        ended_at: crate::status::timestamp(SystemTime::now()),
        message,
    };
    crate::atomic::write(&spec.exit_file, &serde_json::to_vec(&record)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_through_args() {
        let spec = Spec {
            exit_file: "/w/pids/a.exit".into(),
            pid_file: "/w/pids/a.pid".into(),
            log_file: "/w/logs/a.log".into(),
            timeout: Some(Duration::from_secs(90)),
            idle_timeout: None,
            grace: Duration::from_millis(1500),
        };
        let argv = vec!["sh".to_owned(), "-c".to_owned(), "exit 3".to_owned()];
        let args = spec.to_args(&argv);
        assert_eq!(Spec::parse(&args[1..]).unwrap(), (spec, argv));
    }
}
