//! A worktree's setup, run before the task's command in the same process:
//! the executor starts `xtask __setup TIMEOUT_MS DONE_FILE COMMAND -- ARGV...`
//! instead of ARGV. It runs COMMAND with `sh -c` (same folder, environment
//! and log), and only when it succeeds, marks DONE_FILE and becomes ARGV
//! (`exec`, so the task's pid, exit code and signals are ARGV's). Local and
//! Slurm tasks alike: the setup needs nothing but this binary.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::time::Duration;

use camino::Utf8Path;
use wait_timeout::ChildExt;

/// The first argument that makes the binary run a setup.
pub const SETUP_ARG: &str = "__setup";

/// The exit code of a setup that ran out of time (as `timeout(1)`'s).
pub const TIMED_OUT: i32 = 124;

/// `argv`, preceded by the setup `command`.
pub fn wrap(
    exe: &Utf8Path,
    command: &str,
    timeout: Duration,
    done: &Utf8Path,
    argv: &[String],
) -> Vec<String> {
    let mut wrapped = vec![
        exe.to_string(),
        SETUP_ARG.to_owned(),
        timeout.as_millis().to_string(),
        done.to_string(),
        command.to_owned(),
        "--".to_owned(),
    ];
    wrapped.extend(argv.iter().cloned());
    wrapped
}

/// `xtask __setup ...`: returns only when the setup or the exec failed.
pub fn main(args: &[String]) -> i32 {
    let [timeout_ms, done, command, dashes, argv @ ..] = args else {
        return usage();
    };
    let (Ok(timeout_ms), "--", false) =
        (timeout_ms.parse::<u64>(), dashes.as_str(), argv.is_empty())
    else {
        return usage();
    };
    let timeout = Duration::from_millis(timeout_ms);
    let mut child = match Command::new("sh").arg("-c").arg(command).spawn() {
        Ok(child) => child,
        Err(e) => return say(&format!("worktree setup could not start: {e}"), 127),
    };
    let status = match child.wait_timeout(timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            // Its processes left behind are the task's, killed with it.
            let _ = child.kill();
            let _ = child.wait();
            let after = humantime::format_duration(timeout);
            return say(
                &format!("worktree setup timed out after {after}"),
                TIMED_OUT,
            );
        }
        Err(e) => return say(&format!("worktree setup: cannot wait for it: {e}"), 127),
    };
    if !status.success() {
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        return say(&format!("worktree setup failed (exit {code})"), code);
    }
    if let Err(e) =
        std::fs::create_dir_all(Utf8Path::new(done).parent().unwrap_or(Utf8Path::new(".")))
            .and_then(|()| std::fs::write(done, ""))
    {
        return say(
            &format!("worktree setup: cannot mark it done in {done}: {e}"),
            127,
        );
    }
    let e = Command::new(&argv[0]).args(&argv[1..]).exec();
    say(&format!("cannot start `{}`: {e}", argv[0]), 127)
}

fn usage() -> i32 {
    say(
        "usage: xtask __setup TIMEOUT_MS DONE_FILE COMMAND -- ARGV...",
        2,
    )
}

/// A line in the task's log (its stdout); returns `code`.
fn say(line: &str, code: i32) -> i32 {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "xtask: {line}");
    code
}
