//! Lines the orchestrator prints as tasks start and end: plain text, one per
//! event, coloured only on a terminal and when NO_COLOR is unset.

use std::io::Write;
use std::time::{Duration, SystemTime};

use crate::model::layout::Layout;
use crate::ui::format;
use crate::ui::live::Live;
use crate::ui::progress::Progress;

/// The width of an event line's type column: that of its widest types
/// (`approval`, `approved`, `rejected`), so every line's task id starts in
/// one column.
const WHAT_WIDTH: usize = 8;

pub struct Printer {
    color: bool,
    quiet: bool,
    /// The live view, on a terminal: lines go above its frame.
    live: Option<Live>,
}

#[derive(Clone, Copy)]
pub enum Tone {
    Good,
    Bad,
    Warn,
    Plain,
}

impl Printer {
    pub fn new(quiet: bool) -> Printer {
        let color = crate::ui::stdout_takes_escapes()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer {
            color,
            quiet,
            live: None,
        }
    }

    /// A printer that also draws the live view, where it is wanted.
    pub fn with_live_view(layout: &Layout, quiet: bool) -> Printer {
        let live = Live::new(layout, quiet);
        Printer {
            live,
            ..Printer::new(quiet)
        }
    }

    /// Redraws the live view (it limits itself to a few times a second)
    /// with the dashboard `progress` makes.
    pub fn refresh(&mut self, progress: impl FnOnce() -> Progress) {
        if let Some(live) = &mut self.live {
            live.refresh(progress);
        }
    }

    /// How long until the live view's frame is due again, if there is one:
    /// the run's loop waits no longer.
    pub fn redraw_in(&self) -> Option<Duration> {
        self.live
            .as_ref()
            .map(|live| live.redraw_in().unwrap_or_default())
    }

    /// Removes the live view, before the summary.
    pub fn finish(&mut self) {
        if let Some(live) = self.live.take() {
            live.finish();
        }
    }

    fn emit(&self, text: &str) {
        match &self.live {
            Some(live) => live.println(text),
            // Nobody reading (a closed pipe) must not stop a run.
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
            }
        }
    }

    /// One event line: time, what happened, the task, then details.
    pub fn event(&self, tone: Tone, what: &str, task: &str, details: &str) {
        if self.quiet {
            return;
        }
        debug_assert!(
            what.len() <= WHAT_WIDTH,
            "`{what}` is wider than its column"
        );
        let clock = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let clock = clock.get(11..19).unwrap_or(&clock);
        let what = self.paint(tone, &format!("{what:<WHAT_WIDTH$}"));
        self.emit(&format!(
            "{clock} {what} {} {details}",
            format::padded(task, 44)
        ));
    }

    /// A line that is always printed (warnings, errors, the summary).
    pub fn line(&self, tone: Tone, text: &str) {
        self.emit(&self.paint(tone, text));
    }

    /// A plain line, always printed.
    pub fn plain(&self, text: &str) {
        self.emit(text);
    }

    /// A line about the run's course (an alert, a blank line before the
    /// summary): not printed with `--quiet`.
    pub fn note(&self, tone: Tone, text: &str) {
        if !self.quiet {
            self.line(tone, text);
        }
    }

    pub fn paint(&self, tone: Tone, text: &str) -> String {
        let code = match tone {
            Tone::Good => "32",
            Tone::Bad => "31;1",
            Tone::Warn => "33",
            Tone::Plain => return text.to_owned(),
        };
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}
