//! What a run does once its loop is over, stopped or not: what it no
//! longer needs removed, what tasks took remembered, the run recorded as
//! ended, the summary said and the notifications sent. Returns the exit
//! code.

use std::time::Duration;

use super::{Incoming, Mode, Run, Stop};
use crate::exit;
use crate::state::events::Event;
use crate::state::records;
use crate::state::runs;
use crate::ui::printer::Tone;

impl Run<'_> {
    /// Ends the run (see the module's comment): its exit code.
    pub(super) fn close(&mut self) -> i32 {
        self.remove_unused();
        // Not at the start: a task that joins during the run (a file fixed)
        // may still be recovered against its supervisor's mark.
        records::remove_stale_handovers(self.layout);
        self.remember_durations();
        if let Some(executor) = self.executor.take() {
            executor.close();
        }
        // Ended in order (also when stopped by a signal or an error): the next
        // run starts afresh. Only a killed orchestrator leaves a run to resume,
        // and a `monitor`, which ran none of what is left of it: the next
        // `orchestrate` resumes it, retry counts and all.
        let ended = match self.mode {
            Mode::Launch => runs::end(self.layout, &self.run_id, self.options.jobs),
            _ => Ok(()),
        };
        // Not written (a full disk): said, and the run still ends as one does,
        // its summary and notifications given, its exit code that of a run
        // that went wrong.
        if let Err(e) = &ended {
            let orchestrate = self.layout.cmd("orchestrate");
            self.printer.line(
                Tone::Bad,
                &format!(
                    "error: {e:#}: the next `{orchestrate}` resumes this run, its final failures kept"
                ),
            );
        }
        let removed = self.remove_merged_worktrees();
        let code = match (self.summary(&removed), &ended) {
            (exit::SUCCESS, Err(_)) => exit::TASK_FAILED,
            (code, _) => code,
        };
        self.event(Event {
            exit_code: Some(code),
            ..Event::run("run_finished")
        });
        if let Some(notifiers) = self.notifiers.take() {
            let (printer, inbox) = (&self.printer, &mut self.inbox);
            let moment = Some(Duration::from_millis(50));
            notifiers.finish(
                self.layout,
                |line| printer.note(Tone::Plain, &format!("{line}; Ctrl-C drops them")),
                |line| printer.line(Tone::Warn, line),
                || matches!(inbox.next(None, moment), Some(Incoming::Signal(_))),
            );
        }
        // Freed with the process: taking 100,000 tasks apart one by one would
        // only make the command end later.
        std::mem::forget(std::mem::take(&mut self.graph));
        code
    }

    /// With `worktrees.remove_merged`, a run that ended in order (not
    /// stopped: a person stopping it wants out) removes the task worktrees
    /// and branches whose work is merged, its queue idle: what was said of
    /// each, for the summary. A git that fails on one keeps it, warned of.
    /// A signal meanwhile stops the removals, and the run is one stopped.
    fn remove_merged_worktrees(&mut self) -> Vec<String> {
        let Some(git) = self.git.as_ref() else {
            return Vec::new();
        };
        if !self.config.worktrees.remove_merged || self.stop.is_some() || self.mode != Mode::Launch
        {
            return Vec::new();
        }
        let (inbox, mut signal) = (&mut self.inbox, None);
        // Nothing else comes to a run that has ended.
        let mut stopped = || {
            if let Some(Incoming::Signal(s)) = inbox.next(None, Some(Duration::ZERO)) {
                signal = Some(s);
            }
            signal.is_some()
        };
        // The summary names them once they are gone; till then (seconds,
        // for a worktree of many files) the run would seem stuck.
        let printer = &self.printer;
        let mut removing = || {
            printer.note(Tone::Plain, "removing the task worktrees whose work is merged (worktrees.remove_merged: true); Ctrl-C stops there");
        };
        let swept = git.remove_merged(self.layout, &mut stopped, &mut removing);
        if let Some(signal) = signal {
            self.stop = Some(Stop::Signal(signal));
            let clean = self.layout.cmd("clean");
            self.printer.line(Tone::Bad, &format!("stopped: the task worktrees whose work is merged that are left stay (`{clean}` removes them)"));
        }
        let dry_run = self.layout.cmd("clean --dry-run");
        match swept {
            Ok(Some(swept)) => {
                if swept.failed {
                    self.printer.line(Tone::Warn, &format!("warning: git failed on a task branch or worktree whose work may be merged, kept: `{dry_run}` says which"));
                }
                swept.removed
            }
            // The integration branch is gone: nothing to judge by.
            Ok(None) => Vec::new(),
            Err(e) => {
                self.printer.line(Tone::Warn, &format!("warning: the worktrees whose work is merged were not removed: {e:#}: `{dry_run}` says what `clean` would do"));
                Vec::new()
            }
        }
    }
}
