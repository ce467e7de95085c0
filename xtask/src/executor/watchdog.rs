//! When a running task must be stopped: its timeout has passed, or its log
//! has not grown for its idle timeout. One watchdog per running task, used
//! alike by the supervisor (local tasks) and the Slurm poller (jobs, whose
//! logs are on the shared file system).

use std::time::{Duration, Instant};

use camino::Utf8PathBuf;

use crate::state::status::Ending;

pub struct Watchdog {
    timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    log: Utf8PathBuf,
    started: Instant,
    log_size: u64,
    last_growth: Instant,
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
            log,
            started,
            log_size: 0,
            last_growth: started,
        }
    }

    /// Why the task must be stopped at `now`, if it must. Reads the log's
    /// size only when there is an idle timeout.
    pub fn check(&mut self, now: Instant) -> Option<Ending> {
        if self.timeout.is_some_and(|t| now - self.started >= t) {
            return Some(Ending::Timeout);
        }
        let idle = self.idle_timeout?;
        let size = self.log.metadata().map(|m| m.len()).unwrap_or(0);
        if size != self.log_size {
            self.log_size = size;
            self.last_growth = now;
        }
        (now - self.last_growth >= idle).then_some(Ending::IdleTimeout)
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
        assert_eq!(dog.check(start + secs(3)), Some(Ending::Timeout));
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
        assert_eq!(dog.check(start + secs(22)), Some(Ending::IdleTimeout));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn no_limits_never_stop() {
        let start = Instant::now();
        let mut dog = Watchdog::new(log("none"), None, None, start);
        assert_eq!(dog.check(start + Duration::from_secs(1 << 30)), None);
    }
}
