//! Runs tasks on this machine through the run's supervisor (see
//! `supervisor/`): the orchestrator starts one `xtask __supervise` per run
//! and sends it a request per task. Its reports are read by the run's own
//! thread, when the pipe is readable (`reports_fd`): a task's end reaches
//! the run with no other thread woken on the way.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use camino::Utf8PathBuf;

use super::protocol::{
    Report, Request, Spec, PIDS_DIR_ENV, PROMPTS_ENV, SLOTS_ENV, SUPERVISOR_ARG,
};
use super::{Event, Launch, Limits};
use crate::model::layout::Layout;
use crate::sys::env::{self, GIT_REPOSITORY_VARS};

/// The orchestrator's handle on its supervisor.
pub struct Supervisor {
    child: Child,
    /// Its start time, recorded in each running status.
    start: Option<u64>,
    /// The mark it leaves when this process is gone (`Layout::handover_mark`).
    handover: Utf8PathBuf,
    requests: ChildStdin,
    /// Its reports, read without blocking; `None` once it closed them.
    reports: Option<ChildStdout>,
    /// What was read of a report line not whole yet.
    partial: Vec<u8>,
    /// What each read of the reports goes into, made once: a buffer made
    /// at each read was zeroed each time, 16 KiB twice per task.
    buffer: Box<[u8]>,
    /// Reports read while a request waited to be written, for `read_events`.
    early: Vec<Event>,
    /// Attempts whose final status is written, to tell the supervisor with
    /// the next request rather than in a write of their own.
    written: Vec<(String, u32)>,
}

impl Supervisor {
    /// Starts the supervisor, in a session of its own: a Ctrl-C in the
    /// terminal reaches only the orchestrator, which then stops tasks
    /// deliberately, and no task has a controlling terminal. A task that
    /// asks on the terminal (git's `Username for ...`, ssh's passphrase,
    /// sudo) would otherwise print over the live view and, reading from
    /// the background, be stopped by the kernel: stopped, its log never
    /// shows the question, and it hangs until its timeout. Without one,
    /// opening `/dev/tty` fails at once and the program says so. It makes
    /// `slots` slots as it starts.
    pub fn start(layout: &Layout, prompt_patterns: &[String], slots: usize) -> Result<Supervisor> {
        let exe = std::env::current_exe()
            .context("cannot find the xtask binary to start the supervisor")?;
        let mut command = Command::new(&exe);
        // Every task inherits the supervisor's environment: none may get
        // the user's repository from a git hook that started the run.
        for var in GIT_REPOSITORY_VARS {
            command.env_remove(var);
        }
        command.envs(env::make_flags_for_tasks());
        command
            .arg(SUPERVISOR_ARG)
            .env(PROMPTS_ENV, serde_json::to_string(prompt_patterns)?)
            .env(SLOTS_ENV, slots.to_string())
            .env(PIDS_DIR_ENV, layout.pids_dir())
            .current_dir(&layout.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        // SAFETY: setsid is async-signal-safe and takes no argument.
        unsafe {
            command.pre_exec(|| match libc::setsid() {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            })
        };
        let mut child = command.spawn().map_err(|e| {
            let hint = crate::sys::limit_hint(&e);
            anyhow::anyhow!("cannot start the supervisor {}: {e}{hint}", exe.display())
        })?;
        let requests = child.stdin.take().expect("stdin is piped");
        let reports = child.stdout.take().expect("stdout is piped");
        // Neither side ever waits for the other with its own pipe full:
        // the supervisor may be writing a report when a request comes.
        [reports.as_raw_fd(), requests.as_raw_fd()]
            .into_iter()
            .try_for_each(crate::sys::poll::set_nonblocking)
            .context("cannot set up the pipes to the supervisor")?;
        let start = crate::sys::process::start_time(child.id());
        Ok(Supervisor {
            handover: layout.handover_mark(child.id(), start),
            child,
            start,
            requests,
            reports: Some(reports),
            partial: Vec::new(),
            buffer: vec![0; 16 * 1024].into_boxed_slice(),
            early: Vec::new(),
            written: Vec::new(),
        })
    }

    /// The pipe of its reports, to wait on until `read_events` has
    /// something; `None` once it is closed.
    pub fn reports_fd(&self) -> Option<RawFd> {
        self.reports.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// The reports that have come, without waiting; `Gone` when the
    /// supervisor closed its end (it never does while we live).
    pub fn read_events(&mut self) -> Vec<Event> {
        let mut events = std::mem::take(&mut self.early);
        let Some(reports) = &mut self.reports else {
            return events;
        };
        let buffer = &mut self.buffer;
        let gone = loop {
            match reports.read(buffer) {
                Ok(0) => break true,
                // A read short of the buffer emptied the pipe: what comes
                // next makes it readable again for the run's `poll`.
                Ok(n) if n < buffer.len() => {
                    self.partial.extend_from_slice(&buffer[..n]);
                    break false;
                }
                Ok(n) => self.partial.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        let whole = self
            .partial
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        for line in self
            .partial
            .drain(..whole)
            .as_slice()
            .split(|&b| b == b'\n')
        {
            match serde_json::from_slice(line) {
                Ok(Report::Started { task_id, pid }) => events.push(Event::Started {
                    task_id,
                    pid: Some(pid),
                    since: None,
                }),
                Ok(Report::Ended { task_id, record }) => events.push(Event::Ended {
                    task_id,
                    record: Some(record),
                }),
                Ok(Report::Stopping { signal }) => events.push(Event::Stopping(signal)),
                Err(_) => {}
            }
        }
        if gone {
            self.reports = None;
            events.push(Event::Gone);
        }
        events
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start_time(&self) -> Option<u64> {
        self.start
    }

    pub fn launch(&mut self, layout: &Layout, launch: &Launch, limits: &Limits) -> Result<()> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let spec = Spec {
            task_id: launch.task_id.clone(),
            attempt: launch.attempt,
            argv: launch.argv.clone(),
            env: launch.env.clone(),
            log_file: launch.log_file.clone(),
            stdout_file: launch.stdout_file.clone(),
            cwd: launch.cwd.clone(),
            prompt_idle_ms: Some(ms(limits.prompt_idle)),
            exit_file: layout.exit_file(&launch.task_id),
            pid_file: layout.pid_file(&launch.task_id),
            timeout_ms: limits.timeout.map(ms),
            idle_timeout_ms: limits.idle_timeout.map(ms),
            setup: limits.setup.clone(),
            grace_ms: ms(limits.grace),
            cpus: limits.cpus,
            memory_bytes: (limits.memory_gb * (1u64 << 30) as f64) as u64,
        };
        self.send(&Request::Launch(Box::new(spec)))
    }

    /// Asks the supervisor to stop a task: SIGTERM to its group, SIGKILL
    /// after the grace period; it records the task as interrupted.
    pub fn stop(&mut self, task_id: &str) -> Result<()> {
        self.send(&Request::Stop {
            task_id: task_id.to_owned(),
        })
    }

    /// Asks the supervisor to kill a task now, whether or not it has
    /// reported its pid yet.
    pub fn kill(&mut self, task_id: &str) -> Result<()> {
        self.send(&Request::Kill {
            task_id: task_id.to_owned(),
        })
    }

    /// The attempt's final status is written: the supervisor may forget its
    /// exit record (it is told with the next request, or by `flush`).
    pub fn written(&mut self, task_id: &str, attempt: u32) {
        self.written.push((task_id.to_owned(), attempt));
    }

    /// Tells the supervisor of the statuses written, if any.
    pub fn flush(&mut self) -> Result<()> {
        if self.written.is_empty() {
            return Ok(());
        }
        self.write(Vec::new())
    }

    fn send(&mut self, request: &Request) -> Result<()> {
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        self.write(line)
    }

    /// Writes `lines` after the pending `ack` request, in one write.
    fn write(&mut self, lines: Vec<u8>) -> Result<()> {
        let mut bytes = Vec::new();
        if !self.written.is_empty() {
            let attempts = std::mem::take(&mut self.written);
            serde_json::to_writer(&mut bytes, &Request::Ack { attempts })?;
            bytes.push(b'\n');
        }
        bytes.extend(lines);
        let mut sent = 0;
        while sent < bytes.len() {
            match self.requests.write(&bytes[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.wait_to_write(),
                Err(e) => return Err(e).context("the supervisor is gone"),
            }
        }
        Ok(())
    }

    /// Waits until its requests pipe has room, reading its reports
    /// meanwhile: it may be waiting for room in its own pipe to go on.
    fn wait_to_write(&mut self) {
        let mut fds = vec![(self.requests.as_raw_fd(), libc::POLLOUT)];
        fds.extend(self.reports_fd().map(|fd| (fd, libc::POLLIN)));
        crate::sys::poll::wait(&fds, None);
        let read = self.read_events();
        self.early.extend(read);
    }

    /// Ends the conversation: the supervisor exits once its tasks have ended.
    pub fn close(mut self) {
        // Unacknowledged records would be written to disk for nobody.
        let _ = self.flush();
        let Supervisor {
            mut child,
            requests,
            handover,
            ..
        } = self;
        drop(requests);
        let _ = child.wait();
        // It took the closed pipe for its orchestrator's death; this run
        // settles every task it had, so nothing waits on its mark.
        let _ = std::fs::remove_file(handover);
    }
}
