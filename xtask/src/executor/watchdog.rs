//! When a running task must be stopped: its timeout has passed, its log
//! has not grown for its idle timeout, or its log has been still for a
//! while and ends with a question (a headless agent waiting for an answer
//! nobody will give). One watchdog per running task, used alike by the
//! supervisor (local tasks) and the Slurm poller (jobs, whose logs are on
//! the shared file system).

use std::time::{Duration, Instant};

use camino::Utf8PathBuf;

use crate::agent::prompts;
use crate::state::logs;
use crate::state::status::Ending;

pub struct Watchdog {
    timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    /// How long the log must be still before its last line is read for a
    /// question, and the texts of a question.
    prompt: Option<(Duration, Vec<String>)>,
    log: Utf8PathBuf,
    started: Instant,
    log_size: u64,
    last_growth: Instant,
    /// The log size at which its last line was last read for a question.
    asked_at: Option<u64>,
}

/// Why a task must be stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub ending: Ending,
    /// The question it waits on (`WaitingForInput`).
    pub detail: Option<String>,
}

impl Watchdog {
    /// Watches a task that started at `started`, writing to `log`.
    pub fn new(
        log: Utf8PathBuf,
        timeout: Option<Duration>,
        idle_timeout: Option<Duration>,
        started: Instant,
    ) -> Watchdog {
        Watchdog {
            timeout,
            idle_timeout,
            prompt: None,
            log,
            started,
            log_size: 0,
            last_growth: started,
            asked_at: None,
        }
    }

    /// Also stops the task when its log has been still for `idle` and its
    /// last line matches one of `patterns`.
    pub fn with_prompts(mut self, idle: Duration, patterns: Vec<String>) -> Watchdog {
        if !patterns.is_empty() {
            self.prompt = Some((idle, patterns));
        }
        self
    }

    /// Why the task must be stopped at `now`, if it must. Reads the log's
    /// size only when there is an idle timeout or prompts to look for, and
    /// its last line only once it has been still for the prompts' while.
    pub fn check(&mut self, now: Instant) -> Option<Alarm> {
        let alarm = |ending| Alarm {
            ending,
            detail: None,
        };
        if self.timeout.is_some_and(|t| now - self.started >= t) {
            return Some(alarm(Ending::Timeout));
        }
        if self.idle_timeout.is_none() && self.prompt.is_none() {
            return None;
        }
        let size = self.log.metadata().map(|m| m.len()).unwrap_or(0);
        if size != self.log_size {
            self.log_size = size;
            self.last_growth = now;
        }
        let still = now - self.last_growth;
        if let Some((idle, patterns)) = &self.prompt {
            if still >= *idle && self.asked_at != Some(size) {
                self.asked_at = Some(size);
                let line = logs::last_line(&self.log);
                if prompts::waiting_for_input(patterns, &line).is_some() {
                    return Some(Alarm {
                        ending: Ending::WaitingForInput,
                        detail: Some(line),
                    });
                }
            }
        }
        self.idle_timeout
            .filter(|idle| still >= *idle)
            .map(|_| alarm(Ending::IdleTimeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(name: &str) -> Utf8PathBuf {
        let dir = Utf8PathBuf::from_path_buf(std::env::temp_dir()).unwrap();
        let path = dir.join(format!("xtask-watchdog-{}-{name}.log", std::process::id()));
        std::fs::write(&path, "").unwrap();
        path
    }

    #[test]
    fn timeout_counts_from_the_start() {
        let start = Instant::now();
        let secs = Duration::from_secs;
        let mut dog = Watchdog::new(log("timeout"), Some(secs(3)), None, start);
        assert_eq!(dog.check(start + Duration::from_millis(2999)), None);
        assert_eq!(dog.check(start + secs(3)).unwrap().ending, Ending::Timeout);
    }

    #[test]
    fn idle_timeout_counts_from_the_last_growth() {
        let path = log("idle");
        let start = Instant::now();
        let secs = Duration::from_secs;
        let mut dog = Watchdog::new(path.clone(), None, Some(secs(10)), start);
        assert_eq!(dog.check(start + secs(9)), None);
        std::fs::write(&path, "still working\n").unwrap();
        assert_eq!(dog.check(start + secs(12)), None, "the log grew");
        assert_eq!(dog.check(start + secs(21)), None);
        assert_eq!(
            dog.check(start + secs(22)).unwrap().ending,
            Ending::IdleTimeout
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_still_log_that_ends_with_a_question_stops_the_task() {
        let path = log("prompt");
        let start = Instant::now();
        let secs = Duration::from_secs;
        let patterns = vec!["(y/n)".to_owned()];
        let mut dog =
            Watchdog::new(path.clone(), None, None, start).with_prompts(secs(30), patterns);
        std::fs::write(&path, "Overwrite config? (y/n)\n").unwrap();
        assert_eq!(dog.check(start + secs(1)), None, "it just wrote it");
        assert_eq!(dog.check(start + secs(30)), None, "still for 29s only");
        let alarm = dog.check(start + secs(31)).unwrap();
        assert_eq!(alarm.ending, Ending::WaitingForInput);
        assert_eq!(alarm.detail.as_deref(), Some("Overwrite config? (y/n)"));
        // A still log that asks nothing is left alone.
        std::fs::write(&path, "Overwrite config? (y/n)\nthinking...\n").unwrap();
        assert_eq!(dog.check(start + secs(32)), None);
        assert_eq!(dog.check(start + secs(100)), None);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn no_limits_never_stop() {
        let start = Instant::now();
        let mut dog = Watchdog::new(log("none"), None, None, start);
        assert_eq!(dog.check(start + Duration::from_secs(1 << 30)), None);
    }
}
