//! When a running task must be stopped: its timeout has passed, its log
//! has not grown for its idle timeout, or its log has been still for a
//! while and ends with a question (a headless agent waiting for an answer
//! nobody will give). One watchdog per running task, used alike by the
//! supervisor (local tasks) and the Slurm poller (jobs, whose logs are on
//! the shared file system).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};

use crate::agent::prompts;
use crate::executor::launch::Setup;
use crate::state::logs;
use crate::state::status::Ending;

pub struct Watchdog {
    timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    /// How long the log must be still before its last line is read for a
    /// question, and the texts of a question.
    prompt: Option<(Duration, Arc<[String]>)>,
    log: Utf8PathBuf,
    started: Instant,
    log_size: u64,
    last_growth: Instant,
    /// The log size at which its last line was last read for a question.
    asked_at: Option<u64>,
    /// How long its log had been still when a question was found, or
    /// had asked it again and again (`asked_again`).
    asked_after: Duration,
    /// The question was found asked again and again, not in a still log:
    /// `why` says which, the log having grown all along.
    asked_again: bool,
    /// The question its log's end has asked again and again, with nothing
    /// else between, at every look since it was first seen.
    repeats: Option<Repeats>,
    /// The log size at which its end was last read for those.
    repeats_looked_at: Option<u64>,
    /// Whether the log has been looked at yet.
    watched: bool,
    /// The suspensions of its Slurm job, each by when it ended and how long
    /// it lasted: the log could not grow meanwhile, so a first look takes
    /// them off its age.
    pauses: Vec<(Instant, Duration)>,
    /// The file a worktree's setup makes once done, while the setup runs:
    /// the timeout and the idle timeout count from the command's start.
    setup_done: Option<Utf8PathBuf>,
    /// The task's stdout kept apart, when nothing copies it into the log
    /// (its supervisor is gone): looked at beside the log.
    kept: Option<Utf8PathBuf>,
    /// The error a retry was told its previous attempt failed with: a
    /// last line that quotes it asks nothing.
    told: Option<String>,
}

/// A question a log's end asks again and again, since `since`.
struct Repeats {
    question: prompts::Repeated,
    since: Instant,
}

impl Repeats {
    /// Whether `repeated`, found at the end of the log once it had
    /// `grown` since these were last seen, goes on from them: the same
    /// question, and all written since more of it, its repeats reaching
    /// back past the end seen by one at least; or the end read, all of its
    /// repeats (`fills`), could not reach that far.
    fn go_on(&self, repeated: &prompts::Repeated, grown: u64, fills: bool) -> bool {
        let reaches_back = grown + repeated.text.len() as u64 <= repeated.bytes as u64;
        self.question.text == repeated.text && (reaches_back || fills)
    }
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
            asked_after: Duration::ZERO,
            asked_again: false,
            repeats: None,
            repeats_looked_at: None,
            watched: false,
            pauses: Vec::new(),
            setup_done: None,
            kept: None,
            told: None,
        }
    }

    /// The task's process started at `at`, after the watch began: its
    /// supervisor's slot was still making its cgroups ready (new ones after
    /// a task that left them charged, up to half a second), which neither
    /// its timeout nor its idle timeout counts.
    pub fn spawned(&mut self, at: Instant) {
        self.started = self.started.max(at);
        self.last_growth = self.last_growth.max(at);
    }

    /// The task was suspended for `pause` and runs again at `now`: neither
    /// its timeout nor its idle timeout nor the prompts' while counts the
    /// pause.
    pub fn resumed(&mut self, pause: Duration, now: Instant) {
        self.started += pause;
        self.last_growth += pause;
        self.paused(pause, now);
    }

    /// The task was suspended for `pause` until `now`, which its start
    /// leaves out already (Slurm's `RunTime`): only its log's stillness
    /// is told.
    pub fn paused(&mut self, pause: Duration, now: Instant) {
        self.pauses.push((now, pause));
    }

    /// Also watches `kept`, the task's stdout that nothing copies into its
    /// log: what the task writes there is output too, and the last line
    /// it wrote, a question maybe, is in whichever file it wrote last.
    pub fn also_watching(mut self, kept: Option<Utf8PathBuf>) -> Watchdog {
        self.kept = kept;
        self
    }

    /// Holds the timeout and the idle timeout while the worktree's setup
    /// runs (it has `setup_timeout`): a quiet `npm ci` is not an idle
    /// agent. A question in the setup's output is still one.
    pub fn after_setup(mut self, setup: Option<&Setup>) -> Watchdog {
        self.setup_done = setup.map(|s| s.done.clone());
        self
    }

    /// A retry, told that its previous attempt failed with `told`: an
    /// agent that repeats it (`waiting for input: Continue? (y/n)`, as it
    /// repeats its prompt) and then works quietly is not asking.
    pub fn told(mut self, told: Option<String>) -> Watchdog {
        self.told = told;
        self
    }

    /// Also stops the task when its log has been still for `idle` and its
    /// last line matches one of `patterns`.
    pub fn with_prompts(mut self, idle: Duration, patterns: Arc<[String]>) -> Watchdog {
        if !patterns.is_empty() {
            self.prompt = Some((idle, patterns));
        }
        self
    }

    /// Why the task must be stopped at `now`, if it must. Looks at the log
    /// only once the task has run as long as the shorter of its idle
    /// timeout and the prompts' while (before that, neither can be due: a
    /// short task's log is never looked at), and reads its last line only
    /// once it has been still for the prompts' while.
    pub fn check(&mut self, now: Instant) -> Option<Alarm> {
        let alarm = |ending| Alarm {
            ending,
            detail: None,
        };
        let in_setup = self.in_setup(now);
        let ran = now.saturating_duration_since(self.started);
        if !in_setup && self.timeout.is_some_and(|t| ran >= t) {
            return Some(alarm(Ending::Timeout));
        }
        let earliest = match (self.idle_timeout, &self.prompt) {
            (Some(idle), Some((asked, _))) => idle.min(*asked),
            (Some(idle), None) => idle,
            (None, Some((asked, _))) => *asked,
            (None, None) => return None,
        };
        if ran < earliest {
            return None;
        }
        // Its log was removed (by hand, with workspace/logs): what the task
        // writes goes on into the file it still has open, which cannot be
        // seen. Not taken for silence: only its timeout applies until a
        // log is there again.
        let (size, last_written) = self.look(now)?;
        let still = now - self.last_growth;
        let idle_due = self.idle_timeout.filter(|idle| !in_setup && still >= *idle);
        if let Some((asked, patterns)) = &self.prompt {
            // An idle timeout due before the prompts' while stops a
            // question as the question it is, not as silence.
            let after = idle_due.map_or(*asked, |idle| idle.min(*asked));
            if still >= after && self.asked_at != Some(size) {
                self.asked_at = Some(size);
                let line = logs::last_short_line(&last_written);
                let told = self.told.as_deref();
                let quoted =
                    told.is_some_and(|told| prompts::quotes_the_question(patterns, told, &line));
                if !quoted && prompts::waiting_for_input(patterns, &line).is_some() {
                    self.asked_after = after;
                    return Some(Alarm {
                        ending: Ending::WaitingForInput,
                        detail: Some(prompts::unboxed(&line).to_owned()),
                    });
                }
            }
        }
        if let Some(asked) = self.asked_again(now, size, &last_written) {
            return Some(asked);
        }
        idle_due.map(|_| alarm(Ending::IdleTimeout))
    }

    /// Appends `line`, the run's own (the task's process was stopped or
    /// continued), to the log at `now`: it is not the task's output, so
    /// neither the idle timeout nor a question's while counts it as growth.
    pub fn say(&mut self, line: &str, now: Instant) {
        let seen = self.look(now);
        logs::append_line(&self.log, line);
        if let (Some(_), Some((size, ..))) = (seen, self.output()) {
            self.log_size = size;
        }
    }

    /// The question the task's log, `size` long, `last_written` its file
    /// written last, has asked again and again for the prompts' while,
    /// with nothing else between, as far as its ends show: each look since
    /// found it ending with that question, printed back to back, and
    /// everything written since the look before more of it (or, grown by
    /// more than it read, its whole read end). Its log never goes still,
    /// but it waits as a quiet question does.
    fn asked_again(&mut self, now: Instant, size: u64, last_written: &Utf8Path) -> Option<Alarm> {
        let (asked, patterns) = self.prompt.clone()?;
        if self.repeats_looked_at != Some(size) {
            let grown = self
                .repeats_looked_at
                .replace(size)
                .map(|at| size.checked_sub(at));
            let end = logs::end_of(last_written, logs::LAST_LINE_BYTES).ok();
            let found = end.and_then(|end| {
                let repeated = prompts::asked_again(&patterns, &end.text)?;
                // Less than a repeat before them: the read began in one
                // (in a character, maybe, read as U+FFFD).
                let fills = !end.whole && end.text.len() - repeated.bytes < repeated.text.len();
                Some((repeated, fills))
            });
            self.repeats = match (self.repeats.take(), found) {
                (Some(seen), Some((repeated, fills)))
                    if grown
                        .flatten()
                        .is_some_and(|g| seen.go_on(&repeated, g, fills)) =>
                {
                    Some(seen)
                }
                (_, found) => found.map(|(question, _)| Repeats {
                    question,
                    since: now,
                }),
            };
        }
        let repeats = self.repeats.as_ref()?;
        let question = repeats.question.question();
        let quoted = (self.told.as_deref())
            .is_some_and(|told| prompts::quotes_the_question(&patterns, told, &question));
        if now.saturating_duration_since(repeats.since) < asked || quoted {
            return None;
        }
        self.asked_after = asked;
        self.asked_again = true;
        Some(Alarm {
            ending: Ending::WaitingForInput,
            detail: Some(question),
        })
    }

    /// Takes in, at `now`, how the log has grown since the last look: its
    /// size and the file the task last wrote to. `None`, and no look
    /// taken, when its log is gone.
    fn look(&mut self, now: Instant) -> Option<(u64, Utf8PathBuf)> {
        let Some((size, modified, last_written)) = self.output() else {
            self.watched = false;
            return None;
        };
        if !self.watched {
            // The first look: the log last grew when it was last written.
            // A time ahead of our clock (a file server's clock ahead of
            // ours) was written just now, not never.
            let ran = now.saturating_duration_since(self.started);
            self.watched = true;
            self.log_size = size;
            let age = modified
                .map(|at| SystemTime::now().duration_since(at).unwrap_or_default())
                .unwrap_or(ran);
            self.last_growth = now - self.stillness(age, now).min(ran);
        } else if size != self.log_size {
            self.log_size = size;
            self.last_growth = now;
        }
        Some((size, last_written))
    }

    /// How much the task has written, when it last wrote, and the file it
    /// last wrote to: its log, and its kept stdout when watched too.
    /// `None` when its log is gone.
    fn output(&self) -> Option<(u64, Option<SystemTime>, Utf8PathBuf)> {
        let log = self.log.metadata().ok()?;
        let mut output = (log.len(), log.modified().ok(), self.log.clone());
        let kept = self
            .kept
            .as_ref()
            .and_then(|k| Some((k, k.metadata().ok()?)));
        if let Some((kept, meta)) = kept {
            output.0 += meta.len();
            if meta.modified().ok() > output.1 {
                output = (output.0, meta.modified().ok(), kept.clone());
            }
        }
        Some(output)
    }

    /// How long a log last written `age` before `now` has been still
    /// while the task could run: `age` less the suspensions since.
    fn stillness(&self, age: Duration, now: Instant) -> Duration {
        let written = now.checked_sub(age).unwrap_or(now);
        let paused: Duration = (self.pauses.iter())
            .map(|&(end, length)| {
                let start = end.checked_sub(length).unwrap_or(end);
                end.saturating_duration_since(start.max(written))
            })
            .sum();
        age.saturating_sub(paused)
    }

    /// Whether the worktree's setup still runs. Once it is done, the task
    /// started when it said so (the time of its mark, which a watchdog of a
    /// run that took the task up after a crash sees long after), was not
    /// idle before, and its log is looked at afresh: its first look dates
    /// the agent's first output by the log's time, not by when it is seen.
    fn in_setup(&mut self, now: Instant) -> bool {
        let Some(done) = &self.setup_done else {
            return false;
        };
        let Ok(meta) = done.metadata() else {
            return true;
        };
        let since = meta
            .modified()
            .ok()
            .and_then(|at| SystemTime::now().duration_since(at).ok())
            .unwrap_or_default();
        let ran = now.saturating_duration_since(self.started);
        self.started = now.checked_sub(since.min(ran)).unwrap_or(now);
        self.last_growth = self.last_growth.max(self.started);
        self.watched = false;
        self.setup_done = None;
        false
    }
}

/// How far the stop of a task has got: SIGTERM sent and SIGKILL due at
/// `kill_at`, SIGKILL sent (`killed`).
#[derive(Default)]
pub struct Escalation {
    pub kill_at: Option<Instant>,
    pub killed: bool,
}

impl Escalation {
    /// One step of stopping a task, at `now`, for `why`: SIGTERM and
    /// SIGCONT to its group (through `signal`), then, `grace` later,
    /// SIGKILL, sent again
    /// at each step until it is gone; each said once in its `log`. For the
    /// supervisor, and for a run whose adopted task's supervisor is gone.
    pub fn step(
        &mut self,
        why: &str,
        log: &Utf8Path,
        grace: Duration,
        now: Instant,
        signal: impl Fn(i32),
    ) {
        match self.kill_at {
            None => {
                logs::append_line(
                    log,
                    &format!("xtask: {why}: SIGTERM sent to the task's processes"),
                );
                signal(libc::SIGTERM);
                // A stopped process (SIGSTOP, a shell's ^Z) would handle
                // its SIGTERM only once continued: else it waits out the
                // grace for SIGKILL (systemd does the same).
                signal(libc::SIGCONT);
                self.kill_at = Some(now + grace);
            }
            Some(at) if now >= at => self.kill(log, grace, signal),
            Some(_) => {}
        }
    }

    /// The grace is over: SIGKILL (through `signal`), said once in `log`.
    pub fn kill(&mut self, log: &Utf8Path, grace: Duration, signal: impl Fn(i32)) {
        if !self.killed {
            let grace = humantime::format_duration(grace);
            logs::append_line(
                log,
                &format!("xtask: still running {grace} after SIGTERM: SIGKILL sent"),
            );
            self.killed = true;
        }
        signal(libc::SIGKILL);
    }
}

impl Watchdog {
    /// The log it watches.
    pub fn log(&self) -> &Utf8Path {
        &self.log
    }

    /// Why the task is being stopped for `alarm` (`None`: asked to stop),
    /// as its log says it.
    pub fn why(&self, alarm: Option<&Alarm>) -> String {
        let limit = |d: Option<Duration>| humantime::format_duration(d.unwrap_or_default());
        match alarm.map(|a| a.ending) {
            Some(Ending::Timeout) => format!("timed out after {}", limit(self.timeout)),
            Some(Ending::IdleTimeout) => format!(
                "idle for {} (its log did not grow)",
                limit(self.idle_timeout)
            ),
            Some(Ending::WaitingForInput) if self.asked_again => format!(
                "waiting for input: its log has ended with the same question, asked again and again with nothing else between, for {}",
                limit(Some(self.asked_after))
            ),
            Some(Ending::WaitingForInput) => format!(
                "waiting for input: its log has been still for {} and ends with a question",
                limit(Some(self.asked_after))
            ),
            _ => "interrupted".to_owned(),
        }
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

    /// A log that is not there.
    fn no_log() -> Utf8PathBuf {
        Utf8PathBuf::from("/nonexistent/xtask-watchdog.log")
    }

    #[test]
    fn timeout_counts_from_the_start() {
        let start = Instant::now();
        let secs = Duration::from_secs;
        // A timeout needs no log: none is made (nothing left behind).
        let mut dog = Watchdog::new(no_log(), Some(secs(3)), None, start);
        assert_eq!(dog.check(start + Duration::from_millis(2999)), None);
        assert_eq!(dog.check(start + secs(3)).unwrap().ending, Ending::Timeout);
    }

    /// Its slot made its cgroups ready for half a second after the watch
    /// began: the task's 3 s count from its process's start.
    #[test]
    fn timeout_counts_from_the_process_s_start() {
        let start = Instant::now();
        let (secs, ms) = (Duration::from_secs, Duration::from_millis);
        let mut dog = Watchdog::new(no_log(), Some(secs(3)), None, start);
        dog.spawned(start + ms(500));
        assert_eq!(dog.check(start + ms(3499)), None);
        assert_eq!(dog.check(start + ms(3500)).unwrap().ending, Ending::Timeout);
    }

    #[test]
    fn the_timeouts_count_from_the_end_of_the_worktree_s_setup() {
        let secs = Duration::from_secs;
        let done = log("setup-done");
        std::fs::remove_file(&done).unwrap();
        let setup = Setup {
            done: done.clone(),
            timeout: secs(60),
        };
        let start = Instant::now();
        let mut dog =
            Watchdog::new(no_log(), Some(secs(3)), Some(secs(1)), start).after_setup(Some(&setup));
        assert_eq!(dog.check(start + secs(10)), None, "held while it runs");
        // Its mark was made 2 s before the next look: 1 s is left.
        std::fs::write(&done, "").unwrap();
        written_ago(&done, secs(2));
        let mut dog = Watchdog::new(no_log(), Some(secs(3)), None, start).after_setup(Some(&setup));
        assert_eq!(dog.check(start + secs(10)), None);
        assert_eq!(dog.check(start + secs(11)).unwrap().ending, Ending::Timeout);
        std::fs::remove_file(&done).unwrap();
    }

    /// Sets the log's modification time to `ago` before now.
    fn written_ago(path: &Utf8PathBuf, ago: Duration) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - ago).unwrap();
    }

    #[test]
    fn idle_timeout_counts_from_the_last_growth() {
        let path = log("idle");
        let start = Instant::now();
        let secs = Duration::from_secs;
        let mut dog = Watchdog::new(path.clone(), None, Some(secs(10)), start);
        assert_eq!(dog.check(start + secs(9)), None, "too early to look");
        // At the first look (12 s in), the log was written 3 s before.
        std::fs::write(&path, "still working\n").unwrap();
        written_ago(&path, secs(3));
        assert_eq!(dog.check(start + secs(12)), None, "the log grew at 9 s");
        assert_eq!(dog.check(start + secs(18)), None);
        assert_eq!(
            dog.check(start + secs(19)).unwrap().ending,
            Ending::IdleTimeout
        );
        std::fs::remove_file(path).unwrap();
    }

    /// A Slurm job suspended before the log's first look: the pause is
    /// taken off the log's stillness, the silence before it is not.
    #[test]
    fn a_suspension_is_taken_off_the_idle_time_and_only_it() {
        let path = log("paused");
        let start = Instant::now();
        let secs = Duration::from_secs;
        let mut dog = Watchdog::new(path.clone(), None, Some(secs(10)), start);
        // Written at 2 s, suspended from 5 s to 25 s, looked at first at
        // 30 s: still for 3 + 5 = 8 s of its running time.
        std::fs::write(&path, "working\n").unwrap();
        written_ago(&path, secs(28));
        dog.resumed(secs(20), start + secs(25));
        assert_eq!(dog.check(start + secs(30)), None, "still for 8 s only");
        assert_eq!(dog.check(start + secs(31)), None);
        assert_eq!(
            dog.check(start + secs(32)).unwrap().ending,
            Ending::IdleTimeout,
            "still for 10 s of its running time"
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn growth_seen_after_the_first_look_counts_from_then() {
        let path = log("grows");
        let start = Instant::now();
        let secs = Duration::from_secs;
        let mut dog = Watchdog::new(path.clone(), None, Some(secs(10)), start);
        // The log made at the start, never written since.
        written_ago(&path, secs(10));
        assert_eq!(
            dog.check(start + secs(10)).unwrap().ending,
            Ending::IdleTimeout,
            "silent from the start"
        );
        let mut dog = Watchdog::new(path.clone(), None, Some(secs(10)), start);
        std::fs::write(&path, "a\n").unwrap();
        assert_eq!(dog.check(start + secs(10)), None);
        std::fs::write(&path, "a\nb\n").unwrap();
        assert_eq!(dog.check(start + secs(15)), None, "it grew since");
        assert_eq!(dog.check(start + secs(24)), None);
        assert_eq!(
            dog.check(start + secs(25)).unwrap().ending,
            Ending::IdleTimeout
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_still_log_that_ends_with_a_question_stops_the_task() {
        let path = log("prompt");
        let start = Instant::now();
        let secs = Duration::from_secs;
        let patterns: Arc<[String]> = vec!["(y/n)".to_owned()].into();
        let mut dog =
            Watchdog::new(path.clone(), None, None, start).with_prompts(secs(30), patterns);
        std::fs::write(&path, "Overwrite config? (y/n)\n").unwrap();
        assert_eq!(dog.check(start + secs(1)), None, "too early to look");
        // Written 1 s after the start: at 30 s, still for 29 s only.
        written_ago(&path, secs(29));
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

    /// A retry that quotes the question it was told of is not asking it;
    /// one that asks it again, in its own words, is.
    #[test]
    fn a_question_quoted_from_the_error_told_is_none() {
        let path = log("told");
        let start = Instant::now();
        let secs = Duration::from_secs;
        let patterns: Arc<[String]> = vec!["(y/n)$".to_owned()].into();
        let asked = "waiting for input: Overwrite config? (y/n)";
        for (told, last, asks) in [
            (
                asked,
                "Retrying. Last time: waiting for input: Overwrite config? (y/n)",
                false,
            ),
            (asked, "Overwrite config? (y/n)", true),
            // What it was told asked nothing: the question is its own.
            (
                "exit code 1",
                "Retrying after exit code 1. Continue? (y/n)",
                true,
            ),
        ] {
            let mut dog = Watchdog::new(path.clone(), None, None, start)
                .with_prompts(secs(1), patterns.clone())
                .told(Some(told.to_owned()));
            std::fs::write(&path, format!("{last}\n")).unwrap();
            written_ago(&path, secs(5));
            let alarm = dog.check(start + secs(5));
            assert_eq!(alarm.is_some(), asks, "{last}");
        }
        std::fs::remove_file(path).unwrap();
    }

    /// A log that grows by nothing but one question, again and again, for
    /// the prompts' while stops the task; anything else printed between
    /// starts that while again.
    #[test]
    fn a_question_asked_again_and_again_stops_the_task() {
        let path = log("again");
        let start = Instant::now();
        let secs = Duration::from_secs;
        let patterns: Arc<[String]> = vec!["(y/n)$".to_owned(), "[o/n]$".to_owned()].into();
        let append = |text: &str| {
            use std::io::Write;
            let mut file = std::fs::File::options().append(true).open(&path).unwrap();
            file.write_all(text.as_bytes()).unwrap();
        };
        let asks = "Continue? (y/n) ";
        let mut dog =
            Watchdog::new(path.clone(), None, None, start).with_prompts(secs(2), patterns.clone());
        append(&format!("working\n{}", asks.repeat(3)));
        assert_eq!(dog.check(start + secs(2)), None, "first seen");
        append(&asks.repeat(2));
        assert_eq!(dog.check(start + secs(3)), None);
        append(&format!("step\n{}", asks.repeat(2)));
        assert_eq!(dog.check(start + secs(4)), None, "seen again from here");
        append(asks);
        assert_eq!(dog.check(start + secs(5)), None);
        append(asks);
        let alarm = dog.check(start + secs(6)).unwrap();
        assert_eq!(alarm.ending, Ending::WaitingForInput);
        assert_eq!(alarm.detail.as_deref(), Some("Continue? (y/n)"));
        assert!(dog.why(Some(&alarm)).contains("asked again and again"));
        // Grown past the end read, which begins inside a character (the
        // second byte of a `«`).
        std::fs::write(&path, "").unwrap();
        let asks = "Écraser « config.backup.toml » ? [o/n] ";
        let mut dog =
            Watchdog::new(path.clone(), None, None, start).with_prompts(secs(2), patterns);
        append(&format!("working\n{}", asks.repeat(100)));
        assert_eq!(dog.check(start + secs(2)), None);
        append(&asks.repeat(80));
        let alarm = dog.check(start + secs(4)).unwrap();
        let question = "Écraser « config.backup.toml » ? [o/n]";
        assert_eq!(alarm.detail.as_deref(), Some(question));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn no_limits_never_stop() {
        let start = Instant::now();
        let mut dog = Watchdog::new(no_log(), None, None, start);
        assert_eq!(dog.check(start + Duration::from_secs(1 << 30)), None);
    }
}
