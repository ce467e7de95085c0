//! Runs a task on this machine under a keeper (see `keeper.rs`): the
//! orchestrator spawns `xtask __keep ...`, which spawns the task.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use super::Launch;
use crate::keeper;
use crate::layout::Layout;

pub struct Limits {
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub grace: Duration,
}

/// Starts the keeper for `launch`, its stdout and stderr going to the log
/// the caller created. The keeper leads a process group of its own, so a
/// Ctrl-C in the terminal reaches only the orchestrator, which then stops
/// tasks deliberately.
pub fn spawn(layout: &Layout, launch: &Launch, log: File, limits: &Limits) -> Result<Child> {
    let spec = keeper::Spec {
        exit_file: layout.exit_file(&launch.task_id),
        pid_file: layout.pid_file(&launch.task_id),
        log_file: launch.log_file.clone(),
        timeout: limits.timeout,
        idle_timeout: limits.idle_timeout,
        grace: limits.grace,
    };
    let exe = std::env::current_exe().context("cannot find the xtask binary to start a keeper")?;
    let stderr = log
        .try_clone()
        .context("cannot duplicate the log file handle")?;
    Command::new(&exe)
        .args(spec.to_args(&launch.argv))
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&layout.root)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))
}

/// Asks a keeper to stop its task: SIGTERM to the task's group, SIGKILL
/// after the grace period; the keeper records the task as interrupted.
pub fn interrupt(keeper_pid: u32) {
    crate::process::signal(keeper_pid, libc::SIGTERM);
}

/// Kills a task's process group at once (a second Ctrl-C).
pub fn kill_now(layout: &Layout, task_id: &str) {
    let pid_file = layout.pid_file(task_id);
    if let Some(pgid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        crate::process::signal_group(pgid, libc::SIGKILL);
    }
}
