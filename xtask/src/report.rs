//! Lines the orchestrator prints as tasks start and end: plain text, one per
//! event, coloured only on a terminal and when NO_COLOR is unset.

use std::io::IsTerminal;
use std::time::{Duration, SystemTime};

pub struct Printer {
    color: bool,
    quiet: bool,
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
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer { color, quiet }
    }

    /// One event line: time, what happened, the task, then details.
    pub fn event(&self, tone: Tone, what: &str, task: &str, details: &str) {
        if self.quiet {
            return;
        }
        let clock = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let clock = clock.get(11..19).unwrap_or(&clock);
        let what = self.paint(tone, &format!("{what:<7}"));
        println!("{clock} {what} {task:<44} {details}");
    }

    pub fn line(&self, tone: Tone, text: &str) {
        println!("{}", self.paint(tone, text));
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

/// `1.2s`, `3m 04s`, `2h 05m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, secs % 3600 / 60)
    }
}
