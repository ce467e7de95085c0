//! Notifiers (`notify:`): each runs its command, with an event's JSON line
//! on stdin, for the kinds of event it listens for; one command at a time
//! per notifier, in the order of the events, on a thread of its own, so the
//! run never waits for one. What a command prints, and how it ended, goes
//! to `workspace/logs/notify.log`. Nothing a notifier does changes the run:
//! a failure is logged, a command still running after its `timeout` (30 s)
//! is killed (its whole process group), and when the run ends the notifiers
//! get one timeout more for what is queued; what is left then is dropped,
//! and logged, but for `run_finished`, which always gets its own timeout:
//! a slow command for an earlier event never costs the end of the run.
//! Commands run with std's `Command` and `wait-timeout`, not xshell: they
//! need a timeout and a process group of their own.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};
use wait_timeout::ChildExt;

use crate::model::config::Notifier;
use crate::model::layout::Layout;
use crate::state::status;

pub struct Notifiers {
    workers: Vec<Worker>,
    /// Set when the run ends: no command runs past it.
    deadline: Arc<OnceLock<Instant>>,
    /// How long the queues may take to drain once the run has ended.
    drain: Duration,
}

struct Worker {
    on: Vec<String>,
    /// Each event's line, and whether it is the run's end.
    queue: Sender<(String, bool)>,
    thread: JoinHandle<()>,
}

/// What a worker needs to run its commands.
struct Job {
    number: usize,
    command: String,
    timeout: Duration,
    root: Utf8PathBuf,
    log: Utf8PathBuf,
    deadline: Arc<OnceLock<Instant>>,
}

impl Notifiers {
    /// A worker per notifier of the config; `None` when there is none.
    pub fn start(layout: &Layout, notifiers: &[Notifier]) -> Option<Notifiers> {
        if notifiers.is_empty() {
            return None;
        }
        let deadline = Arc::new(OnceLock::new());
        let log = layout.notify_log_file();
        if let Some(dir) = log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let workers = notifiers
            .iter()
            .enumerate()
            .map(|(i, notifier)| {
                let (queue, events) = mpsc::channel::<(String, bool)>();
                let job = Job {
                    number: i + 1,
                    command: notifier.command.clone(),
                    timeout: notifier.timeout,
                    root: layout.root.clone(),
                    log: log.clone(),
                    deadline: deadline.clone(),
                };
                let thread = std::thread::spawn(move || {
                    for (event, last) in events {
                        job.run(&event, last);
                    }
                });
                Worker {
                    on: notifier.on.clone(),
                    queue,
                    thread,
                }
            })
            .collect();
        let drain = notifiers
            .iter()
            .map(|n| n.timeout)
            .max()
            .unwrap_or_default();
        Some(Notifiers {
            workers,
            deadline,
            drain,
        })
    }

    /// Queues the event `line`, of kind `kind`, for the notifiers that
    /// listen for it.
    pub fn send(&self, kind: &str, line: &str) {
        for worker in self
            .workers
            .iter()
            .filter(|w| w.on.iter().any(|k| k == kind))
        {
            let _ = worker.queue.send((line.to_owned(), kind == "run_finished"));
        }
    }

    /// The run has ended: waits for the queues to drain, for one timeout
    /// at most.
    pub fn finish(self) {
        let _ = self.deadline.set(Instant::now() + self.drain);
        for worker in self.workers {
            drop(worker.queue);
            let _ = worker.thread.join();
        }
    }
}

impl Job {
    /// Runs the command for one event, and logs how it went; `last`: the
    /// run's end, which is never dropped.
    fn run(&self, event: &str, last: bool) {
        let limit = match self.deadline.get() {
            Some(deadline) if !last => deadline
                .saturating_duration_since(Instant::now())
                .min(self.timeout),
            _ => self.timeout,
        };
        self.log(&format!(
            "{} notifier {} (`{}`) for {event}\n",
            status::timestamp(SystemTime::now()),
            self.number,
            self.command
        ));
        let summary = if limit.is_zero() {
            "dropped: the run had ended, and its notifiers' time with it".to_owned()
        } else {
            self.run_command(event, limit)
        };
        self.log(&format!("  notifier {}: {summary}\n", self.number));
    }

    fn run_command(&self, event: &str, limit: Duration) -> String {
        let output = match open_log(&self.log) {
            Some(file) => file,
            None => return "cannot open the log".into(),
        };
        let errors = match output.try_clone() {
            Ok(file) => file,
            Err(e) => return format!("cannot start: {e}"),
        };
        let spawned = crate::sys::signals::unblocked_in(&mut Command::new("sh"))
            .arg("-c")
            .arg(&self.command)
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(output)
            .stderr(errors)
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return format!("cannot start: {e}"),
        };
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its input may close it first.
            let _ = stdin.write_all(format!("{event}\n").as_bytes());
        }
        match child.wait_timeout(limit) {
            Ok(Some(status)) if status.success() => "exit 0".into(),
            Ok(Some(status)) => format!("failed: {status}"),
            Ok(None) => {
                // SAFETY: signals the process group the command leads.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                format!(
                    "killed after {}: it took too long",
                    humantime::format_duration(limit)
                )
            }
            Err(e) => format!("cannot wait for it: {e}"),
        }
    }

    /// Appends `text` to the log, as one write.
    fn log(&self, text: &str) {
        if let Some(mut file) = open_log(&self.log) {
            let _ = file.write_all(text.as_bytes());
        }
    }
}

fn open_log(path: &Utf8Path) -> Option<File> {
    File::options().create(true).append(true).open(path).ok()
}
