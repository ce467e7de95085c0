//! How a run stops: on a signal (a second one kills every task at once),
//! or on an error it cannot go on after; the stop marked (`run.stopping`,
//! then `run.json`) before the first SIGTERM, for the run that resumes it.

use std::time::{Instant, SystemTime};

use super::Run;
use crate::state::runs;
use crate::sys::process;
use crate::ui::format;
use crate::ui::printer::Tone;

/// Why the run stopped launching and stopped its running tasks.
pub enum Stop {
    Signal(i32),
    /// The orchestrator cannot go on safely (a status it cannot write).
    Fatal(String),
}

impl Run<'_> {
    /// Stops launching and stops every running task: SIGTERM to its group,
    /// SIGKILL after the grace period. A second signal kills them at once.
    pub(super) fn stop_for(&mut self, reason: Stop) {
        // Those a stopped queue left are not merged in this run.
        let merges = (self.git.as_ref())
            .filter(|git| !git.merges_no_more())
            .map_or(0, |git| git.queued().len());
        match (&self.stop, &reason) {
            (Some(_), Stop::Signal(_)) => {
                let left = match merges {
                    0 => String::new(),
                    n => format!(
                        ", and leaving the {} in the queue to the next run",
                        format::counted(n, "merge", "merges")
                    ),
                };
                self.printer
                    .line(Tone::Bad, &format!("Killing every running task now{left}"));
                self.kill_all(true);
                if let Some(git) = &self.git {
                    git.cut();
                }
                return;
            }
            // The first fatal error is the one worth reporting.
            (Some(_), Stop::Fatal(_)) => return,
            (None, _) => {}
        }
        let why = match &reason {
            Stop::Signal(signal) => format!("{} received", process::signal_name(*signal)),
            Stop::Fatal(error) => format!("error: {error}"),
        };
        let hint = match reason {
            Stop::Signal(_) if merges > 0 => {
                "; press Ctrl-C again to kill them at once and leave the merges to the next run"
            }
            Stop::Signal(_) => "; press Ctrl-C again to kill them at once",
            Stop::Fatal(_) => "",
        };
        let what = match self.running.len() + self.unlisted.len() {
            0 if merges > 0 => {
                let again = match reason {
                    Stop::Signal(_) => "; press Ctrl-C again to leave them to the next run",
                    Stop::Fatal(_) => "",
                };
                let end = if merges == 1 { "ends" } else { "end" };
                let merges = format::counted(merges, "merge", "merges");
                format!("nothing new starts; the {merges} in the queue {end} first{again}")
            }
            0 => "nothing runs; nothing new starts".to_owned(),
            n => format!(
                "stopping {} (SIGTERM, SIGKILL after {}){hint}",
                format::counted(n, "running task", "running tasks"),
                format::duration(self.config.kill_grace)
            ),
        };
        // Before the first SIGTERM (and before it is said): killed during
        // the stop, this run is resumed knowing that what it finds lost
        // was being stopped.
        if let Err(e) = runs::mark_stopping(self.layout, &self.run_id) {
            self.printer.line(Tone::Warn, &format!("warning: {e:#}"));
        }
        self.printer.line(Tone::Bad, &format!("{why}: {what}"));
        self.stop = Some(reason);
        self.stopped_at.get_or_insert_with(SystemTime::now);
        // A worktree being made is for a task that will not run now (the
        // thread that hears a signal has cut it short already).
        crate::git::stop_starts();
        self.running
            .stop_all(self.executor.as_mut(), self.layout, &self.graph);
        self.signal_unlisted(libc::SIGTERM, super::running::TERM_SAID);
        if let Some(git) = &self.git {
            git.stop();
        }
        self.kill_at = Some(Instant::now() + self.config.kill_grace);
    }

    /// SIGKILL to every running task: once the grace period is over, or
    /// `asked` by a second interrupt (then the supervisor is asked too).
    pub(super) fn kill_all(&mut self, asked: bool) {
        let grace = (!asked).then_some(self.config.kill_grace);
        self.running
            .kill_all(self.executor.as_mut(), self.layout, &self.graph, grace);
        self.signal_unlisted(libc::SIGKILL, &super::running::kill_said(grace));
        self.kill_at = None;
    }
}
