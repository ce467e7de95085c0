//! Notifiers (`notify:`): each runs its command, with an event's JSON line
//! on stdin, for the kinds of event it listens for; one command at a time
//! per notifier, in the order of the events, on a thread of its own, so the
//! run never waits for one. What a command prints, and how it ended, goes
//! to `workspace/logs/notify.log`. Nothing a notifier does changes the run:
//! a failure is logged (and said on the console, once), a command still running after its `timeout` (30 s)
//! is killed (its whole process group), and when the run ends each notifier
//! gets its own timeout more for what is queued; what is left then is
//! dropped, and logged, but for `run_finished`, which always gets its own
//! timeout: a slow command for an earlier event never costs the end of the
//! run. A signal meanwhile ends the wait at once, killing what runs.
//! Commands run with std's `Command` and `wait-timeout`, not xshell: they
//! need a timeout and a process group of their own.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};
use wait_timeout::ChildExt;

use crate::model::config::Notifier;
use crate::model::layout::Layout;
use crate::state::events::{self, Event};
use crate::state::status;
use crate::ui::format;

pub struct Notifiers {
    workers: Vec<Worker>,
    /// Set by a signal while the queues drain: what is left is dropped.
    interrupted: Arc<AtomicBool>,
    /// Whether `run_finished` was sent (a run's notifiers, not a
    /// command's): the wait says it gets a timeout of its own.
    run_finished: AtomicBool,
}

struct Worker {
    on: Vec<String>,
    /// Each event's line, and whether it is the run's end.
    queue: Sender<(String, bool)>,
    thread: JoinHandle<()>,
    /// What its thread shares with the run.
    shared: Arc<Shared>,
    timeout: Duration,
}

/// What a worker's thread and the run both see.
#[derive(Default)]
struct Shared {
    /// Set when the run ends: no command runs past it.
    deadline: OnceLock<Instant>,
    /// Events sent and not yet done with.
    queued: AtomicUsize,
    /// The process group of the command running now (0: none).
    running: AtomicI32,
    /// Commands run, and those of them that failed (an exit code other
    /// than 0, a signal, its timeout, a start that failed).
    ran: AtomicUsize,
    failed: AtomicUsize,
    /// How its first failure ended, and for which event.
    first_failure: OnceLock<String>,
    /// That first failure has been said on the console.
    told: AtomicBool,
}

/// What a worker needs to run its commands.
struct Job {
    number: usize,
    command: String,
    timeout: Duration,
    root: Utf8PathBuf,
    log: Utf8PathBuf,
    shared: Arc<Shared>,
    interrupted: Arc<AtomicBool>,
}

impl Notifiers {
    /// A worker per notifier of the config; `None` when there is none.
    pub fn start(layout: &Layout, notifiers: &[Notifier]) -> anyhow::Result<Option<Notifiers>> {
        if notifiers.is_empty() {
            return Ok(None);
        }
        let interrupted = Arc::new(AtomicBool::new(false));
        let log = layout.notify_log_file();
        if let Some(dir) = log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let workers = notifiers
            .iter()
            .enumerate()
            .map(|(i, notifier)| {
                let (queue, events) = mpsc::channel::<(String, bool)>();
                let shared = Arc::new(Shared::default());
                let job = Job {
                    number: i + 1,
                    command: notifier.command.clone(),
                    timeout: notifier.timeout,
                    root: layout.root.clone(),
                    log: log.clone(),
                    shared: shared.clone(),
                    interrupted: interrupted.clone(),
                };
                let thread = crate::sys::spawn_thread("a notifier", move || {
                    for (event, last) in events {
                        job.run(&event, last);
                        job.shared.queued.fetch_sub(1, Ordering::Relaxed);
                    }
                })?;
                Ok(Worker {
                    on: notifier.on.clone(),
                    queue,
                    thread,
                    shared,
                    timeout: notifier.timeout,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Some(Notifiers {
            workers,
            interrupted,
            run_finished: AtomicBool::new(false),
        }))
    }

    /// Queues the event `line`, of kind `kind`, for the notifiers that
    /// listen for it.
    pub fn send(&self, kind: &str, line: &str) {
        if kind == "run_finished" {
            self.run_finished.store(true, Ordering::Relaxed);
        }
        for worker in self
            .workers
            .iter()
            .filter(|w| w.on.iter().any(|k| k == kind))
        {
            worker.shared.queued.fetch_add(1, Ordering::Relaxed);
            let _ = worker.queue.send((line.to_owned(), kind == "run_finished"));
        }
    }

    /// What the console is to say of notifiers whose first failure it has
    /// not said yet, once each: the log says every failure, and a notifier
    /// that fails (a webhook's address unset, a program missing) would
    /// otherwise page nobody in silence, with a task awaiting approval.
    pub fn failures_to_tell(&self, layout: &Layout) -> Vec<String> {
        let log = layout.notify_log_file();
        (self.workers.iter().enumerate())
            .filter_map(|(i, w)| {
                let first = w.shared.first_failure.get()?;
                (!w.shared.told.swap(true, Ordering::Relaxed)).then(|| {
                    format!(
                        "warning: notifier {} failed ({first}): see {}, where its later failures go too",
                        i + 1,
                        layout.display(&log)
                    )
                })
            })
            .collect()
    }

    /// The run has ended: waits for the queues to drain, each notifier
    /// for its own timeout at most (and `run_finished` its own), saying so
    /// when there is anything to wait for. `interrupted` waits a moment
    /// for a signal, and says whether one came: the wait ends then, what
    /// runs is killed and what is queued dropped.
    /// Then `warn`s of each notifier that failed, how many times.
    pub fn finish(
        self,
        layout: &Layout,
        say: impl FnOnce(&str),
        warn: impl Fn(&str),
        mut interrupted: impl FnMut() -> bool,
    ) {
        let now = Instant::now();
        let busy: Vec<&Worker> = self
            .workers
            .iter()
            .filter(|w| w.shared.queued.load(Ordering::Relaxed) > 0)
            .collect();
        if let Some(longest) = busy.iter().map(|w| w.timeout).max() {
            let events: usize = busy
                .iter()
                .map(|w| w.shared.queued.load(Ordering::Relaxed))
                .sum();
            // Each notifier drains within its timeout, and `run_finished`
            // gets one more of its own.
            let last = match self.run_finished.load(Ordering::Relaxed) {
                true => ", and run_finished its own",
                false => "",
            };
            say(&format!(
                "waiting for the notifiers ({} left: each notifier gets its timeout more, {} at most{last})",
                format::counted(events, "event", "events"),
                humantime::format_duration(longest)
            ));
        }
        for worker in &self.workers {
            let _ = worker.shared.deadline.set(now + worker.timeout);
        }
        let mut threads = Vec::new();
        for worker in self.workers {
            drop(worker.queue);
            threads.push((worker.thread, worker.shared));
        }
        let mut stopping = false;
        while threads.iter().any(|(thread, _)| !thread.is_finished()) {
            if !stopping {
                stopping = interrupted();
                self.interrupted.store(stopping, Ordering::Relaxed);
                continue;
            }
            // Again until every worker is done: one may be starting a
            // command as the signal comes (nothing starts once it sees
            // the flag).
            for (_, shared) in &threads {
                let group = shared.running.load(Ordering::Relaxed);
                if group > 0 {
                    // SAFETY: signals the process group a command leads.
                    unsafe { libc::kill(-group, libc::SIGKILL) };
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for (i, (thread, shared)) in threads.into_iter().enumerate() {
            let _ = thread.join();
            let failed = shared.failed.load(Ordering::Relaxed);
            if failed > 0 {
                let ran = shared.ran.load(Ordering::Relaxed);
                warn(&format!(
                    "warning: notifier {} failed {failed} of its {}: see {}",
                    i + 1,
                    format::counted(ran, "command", "commands"),
                    layout.display(&layout.notify_log_file())
                ));
            }
        }
    }
}

/// A warning for each notifier whose command starts with a program the
/// shell does not find from the repository root (a typo, a tool not
/// installed), said as a run starts and by `validate`: its every command
/// would fail, and a page for a task awaiting approval never reach anyone.
/// Only a first word that is plain is looked at: not `VAR=x cmd`, `$TOOL`
/// or a quoted word, which only the command's shell can read.
pub fn missing_programs(layout: &Layout, notifiers: &[Notifier]) -> Vec<String> {
    let Ok(sh) = xshell::Shell::new() else {
        return Vec::new();
    };
    sh.change_dir(&layout.root);
    let plain = |c: char| c.is_alphanumeric() || "_-./+@%:,".contains(c);
    (notifiers.iter().enumerate())
        .filter_map(|(i, notifier)| {
            let word = notifier.command.split_whitespace().next()?;
            if !word.chars().all(plain) {
                return None;
            }
            // `command -v`, as the shell that runs the command finds it
            // (a builtin, a keyword, a path).
            let found = xshell::cmd!(sh, "sh -c {LOOK_UP} sh {word}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run();
            found.is_err().then(|| {
                format!(
                    "notifier {}'s command runs `{word}`, which the shell does not find (on PATH, or from the repository root): each of its commands would fail",
                    i + 1
                )
            })
        })
        .collect()
}

/// The shell's own look-up of a program (`$1`).
const LOOK_UP: &str = r#"command -v -- "$1""#;

/// Where a command that changes tasks itself (`approve`, `reject`,
/// `block`, `reset`, `validate`) tells its changes: the events' log and,
/// when no orchestrator runs (which would tell them), the notifiers,
/// waited for when the command is done, as a run waits for its own.
pub struct Told {
    layout: Layout,
    log: events::Log,
    notifiers: Option<Notifiers>,
}

impl Told {
    /// `notify`: whether the notifiers hear of this command's changes.
    pub fn open(layout: &Layout, notifiers: &[Notifier], notify: bool) -> anyhow::Result<Told> {
        Ok(Told {
            layout: layout.clone(),
            log: events::Log::open(layout, None)?,
            notifiers: match notify {
                true => Notifiers::start(layout, notifiers)?,
                false => None,
            },
        })
    }

    pub fn append(&mut self, event: Event) -> anyhow::Result<()> {
        let kind = event.kind().to_owned();
        let line = self.log.append(event)?;
        if let Some(notifiers) = &self.notifiers {
            notifiers.send(&kind, &line);
        }
        Ok(())
    }

    /// Waits for the notifiers (see `Drop`).
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for Told {
    /// Waits for the notifiers (`Notifiers::finish`), also when the command
    /// fails after telling some changes: they reach the notifiers all the
    /// same. Nothing to watch for meanwhile: a Ctrl-C ends the command.
    fn drop(&mut self) {
        if let Some(notifiers) = self.notifiers.take() {
            let moment = || {
                std::thread::sleep(Duration::from_millis(50));
                false
            };
            // Warnings on stderr, as the command's others.
            let (say, warn) = (
                |line: &str| println!("{line}"),
                |line: &str| eprintln!("{line}"),
            );
            notifiers.finish(&self.layout, say, warn, moment);
        }
    }
}

impl Job {
    /// Runs the command for one event, and logs how it went; `last`: the
    /// run's end, which is never dropped.
    fn run(&self, event: &str, last: bool) {
        let limit = match self.shared.deadline.get() {
            Some(deadline) if !last => deadline
                .saturating_duration_since(Instant::now())
                .min(self.timeout),
            _ => self.timeout,
        };
        // Cut short by the end of the notifiers' time, not its own timeout.
        let cut = match limit < self.timeout {
            true => "the run had ended, and its notifiers' time with it",
            false => "it took too long",
        };
        let started = status::timestamp(SystemTime::now());
        let (summary, printed) = if self.interrupted.load(Ordering::Relaxed) {
            let why = "dropped: interrupted while the run's notifiers finished";
            (why.to_owned(), String::new())
        } else if limit.is_zero() {
            let why = "dropped: the run had ended, and its notifiers' time with it";
            (why.to_owned(), String::new())
        } else {
            let (ended, printed) = self.run_command(event, limit, cut);
            self.shared.ran.fetch_add(1, Ordering::Relaxed);
            // One a Ctrl-C killed as the run closed failed of nothing.
            let killed_by_us = self.interrupted.load(Ordering::Relaxed);
            if ended != SUCCEEDED && !killed_by_us {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                let first = format!("{ended}, for {}", named(event));
                let _ = self.shared.first_failure.set(first);
            }
            (ended, printed)
        };
        // One write: the notifiers run at once, and their blocks must not
        // interleave.
        self.log(&format!(
            "{started} notifier {} (`{}`) for {event}\n{printed}  notifier {} for {}: {summary}\n",
            self.number,
            self.command,
            self.number,
            named(event)
        ));
    }

    /// Runs the command for `event`, `limit` at most (`cut`: why a
    /// command still running then is killed); how it ended, and what it
    /// printed (`Printed`).
    fn run_command(&self, event: &str, limit: Duration, cut: &str) -> (String, String) {
        let (reader, output) = match std::io::pipe() {
            Ok(pipe) => pipe,
            Err(e) => return (format!("cannot start: {e}"), String::new()),
        };
        let errors = match output.try_clone() {
            Ok(pipe) => pipe,
            Err(e) => return (format!("cannot start: {e}"), String::new()),
        };
        let mut command = Command::new("sh");
        let orchestrator = std::process::id() as i32;
        // Killed with the orchestrator, even by SIGKILL: no one would
        // enforce its timeout then, and a hung command would live on. The
        // kernel tells the shell that leads its process group (`GUARD`),
        // which kills the group: the command's own shell, and what it
        // runs (a `curl` that hangs), not only the one process told.
        // SAFETY: prctl and getppid are async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                let set = libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                match set == 0 && libc::getppid() == orchestrator {
                    true => Ok(()),
                    // Dead already, between the fork and the prctl.
                    false => Err(std::io::Error::from_raw_os_error(libc::ESRCH)),
                }
            })
        };
        let spawned = crate::sys::signals::unblocked_in(&mut command)
            .args(["-c", GUARD, "notifier"])
            .arg(&self.command)
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(output)
            .stderr(errors)
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return (format!("cannot start: {e}"), String::new()),
        };
        // The command holds the pipe's write ends: dropped, so that the
        // reader sees its end once the command's processes close theirs
        // (kept, every command took the reader's half-second wait more).
        drop(command);
        let printed = Printed::read(reader);
        self.shared
            .running
            .store(child.id() as i32, Ordering::Relaxed);
        if let Some(mut stdin) = child.stdin.take() {
            // Written aside: a command that does not read its input would
            // block a write larger than the pipe, and the timeout with it.
            // (One that closes it first makes the write fail.)
            let line = format!("{event}\n");
            // No thread to spare (a limit of threads reached): the command
            // reads the end of its input instead of the event.
            let _ = crate::sys::spawn_thread("a notifier's input", move || {
                // A command that ends without reading it all closes the
                // pipe: its SIGPIPE would end `block` or `approve`, whose
                // SIGPIPE is a view's, halfway through their changes.
                crate::sys::signals::block_sigpipe_in_this_thread();
                let _ = stdin.write_all(line.as_bytes());
            });
        }
        let waited = child.wait_timeout(limit);
        if let Ok(Some(_)) = waited {
            // What it left running in its process group (a `cmd &`) ends
            // with it, as a task's leftovers do: no process of the run's
            // outlives it. (The group's number is not reused while a
            // member is left.)
            // SAFETY: signals the process group the command led.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        }
        let ended = match waited {
            Ok(Some(status)) => match (
                status.code(),
                std::os::unix::process::ExitStatusExt::signal(&status),
            ) {
                (Some(0), _) => SUCCEEDED.to_owned(),
                (Some(code), _) => format!("exit {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => status.to_string(),
            },
            Ok(None) => {
                // SAFETY: signals the process group the command leads.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                let limit = Duration::from_millis(limit.as_millis() as u64);
                format!("killed after {}: {cut}", humantime::format_duration(limit))
            }
            Err(e) => format!("cannot wait for it: {e}"),
        };
        self.shared.running.store(0, Ordering::Relaxed);
        (ended, printed.text())
    }

    /// Appends `text` to the log, as one write.
    fn log(&self, text: &str) {
        if let Some(mut file) = open_log(&self.log) {
            let _ = file.write_all(text.as_bytes());
        }
    }
}

/// How a command that succeeded ended, as the log says it.
const SUCCEEDED: &str = "exit 0";

/// The most of what one command prints that the log keeps: a notifier
/// that prints without end fills no disk.
const PRINTED_KEPT: usize = 64 << 10;

/// What a notifier's command prints (stdout and stderr), read on a thread
/// of its own as it comes: the first `PRINTED_KEPT` bytes kept, the rest
/// counted.
struct Printed {
    read: Arc<std::sync::Mutex<(Vec<u8>, u64)>>,
    done: mpsc::Receiver<()>,
}

impl Printed {
    fn read(mut pipe: std::io::PipeReader) -> Printed {
        let read = Arc::new(std::sync::Mutex::new((Vec::new(), 0)));
        let (tell, done) = mpsc::channel();
        let kept = read.clone();
        let _ = crate::sys::spawn_thread("a notifier's output", move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = std::io::Read::read(&mut pipe, &mut chunk) {
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                let room = PRINTED_KEPT.saturating_sub(kept.0.len()).min(n);
                kept.0.extend_from_slice(&chunk[..room]);
                kept.1 += (n - room) as u64;
            }
            let _ = tell.send(());
        });
        Printed { read, done }
    }

    /// What was printed, once the pipe is closed (a moment at most: a
    /// daemon the command left may hold it open), each line indented, and
    /// how much more was not kept.
    fn text(self) -> String {
        let _ = self.done.recv_timeout(Duration::from_millis(500));
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = String::new();
        for line in String::from_utf8_lossy(&read.0).lines() {
            text += &format!("    {line}\n");
        }
        if read.1 > 0 {
            text += &format!("    [... {} more bytes, not kept]\n", read.1);
        }
        text
    }
}

/// The shell that runs a notifier's command (`$1`, in a shell of its
/// own, given the event on its stdin) and, on SIGTERM (the orchestrator
/// died: `PR_SET_PDEATHSIG`), kills its process group. The command runs
/// in the background so that the trap runs at once (a shell runs traps
/// between commands), its stdin passed by a descriptor (a background
/// command's is /dev/null); the guard exits with the command's status.
const GUARD: &str = r#"trap 'kill -KILL 0' TERM; exec 3<&0; sh -c "$1" <&3 3<&- & wait $!"#;

/// An event, named in a few words for the log (`p/a -> failed`,
/// `p/a approved`, `run_finished`): each notifier's end is logged after
/// the others' lines. A task's change of state is written as `events`
/// writes it: `notifier 1 for p/a failed: exit 0` read as the notifier
/// failing.
fn named(event: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(event).unwrap_or_default();
    let text = |key: &str| value.get(key).and_then(serde_json::Value::as_str);
    match (text("task"), text("event"), text("to")) {
        (Some(task), None, Some(to)) => format!("{task} -> {to}"),
        (Some(task), Some(what), _) => format!("{task} {what}"),
        (None, Some(what), _) | (None, None, Some(what)) => what.to_owned(),
        (task, None, None) => task.unwrap_or("an event").to_owned(),
    }
}

fn open_log(path: &Utf8Path) -> Option<File> {
    File::options().create(true).append(true).open(path).ok()
}
