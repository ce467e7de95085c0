//! A slot of the supervisor: a thread that starts tasks one after the
//! other and waits for each, in cgroups of its own that every task of the
//! slot reuses. There are as many slots as the run may run tasks at once
//! (made as the supervisor starts), more if more ever ran at once.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use camino::Utf8Path;

use super::{cgroups, report, Outcome, Shared};
use crate::executor::protocol::Spec;
use crate::state::logs;
use crate::sys::poll::{self, Bell, Written};
use crate::sys::{lock, process};

/// A thread that starts tasks one after the other and waits for each, in
/// cgroups of its own that every task of the slot reuses.
pub(super) struct Slot {
    pub(super) jobs: Sender<Spec>,
    /// Ends with the slot's groups, to remove once it has ended.
    pub(super) thread: std::thread::JoinHandle<Option<cgroups::Group>>,
}

impl Slot {
    /// The slot, or why its thread could not start (a per-user process
    /// limit, which counts threads, reached).
    pub(super) fn start(
        index: usize,
        hierarchy: Option<cgroups::Hierarchy>,
        shared: Shared,
    ) -> Result<Slot> {
        let (jobs, specs) = mpsc::channel::<Spec>();
        let thread = crate::sys::spawn_thread("the task", move || {
            let me = std::process::id();
            let start = crate::sys::process::start_time(me).unwrap_or(0);
            let name = format!("{}{index}", cgroups::group_prefix(me, start));
            let keep_open = index < cgroups::KEPT_OPEN_SLOTS;
            let mut groups = SlotGroups::new(hierarchy, name, keep_open);
            let mut programs = Programs::default();
            for spec in specs {
                let prepared = groups.prepare(&spec);
                let outcome = run(&spec, prepared, &mut programs, index, &shared);
                // Reported from here, the lock released: the end reaches
                // the orchestrator with no other thread woken on the way.
                let ended = lock(&shared).ended(index, outcome);
                ended.iter().for_each(report);
                groups.after(&spec);
            }
            groups.group.take()
        })?;
        Ok(Slot { jobs, thread })
    }
}

/// A slot's cgroups, and the counters its next task is measured from. A
/// task that leaves too much charged to them (page cache, files in tmpfs)
/// gets them replaced, so that the next one is limited and measured on its
/// own.
struct SlotGroups {
    /// `None` once groups cannot be made here.
    hierarchy: Option<cgroups::Hierarchy>,
    name: String,
    /// Whether its groups' control files stay open.
    keep_open: bool,
    made: u32,
    /// Creations that failed in a row.
    failures: u32,
    group: Option<cgroups::Group>,
    baseline: Option<cgroups::Baseline>,
}

impl SlotGroups {
    fn new(hierarchy: Option<cgroups::Hierarchy>, name: String, keep_open: bool) -> SlotGroups {
        let mut groups = SlotGroups {
            hierarchy,
            name,
            keep_open,
            made: 0,
            failures: 0,
            group: None,
            baseline: None,
        };
        groups.renew();
        groups
    }

    /// Replaces the groups with new ones (the slot's thread moves along).
    fn renew(&mut self) {
        self.remove();
        let Some(hierarchy) = &self.hierarchy else {
            return;
        };
        self.made += 1;
        let name = format!("{}-{}", self.name, self.made);
        match hierarchy.create(&name, self.keep_open) {
            Ok(group) => {
                self.group = Some(group);
                self.failures = 0;
            }
            Err(e) => {
                eprintln!("xtask supervisor: {e:#}");
                // Tried again after the next task; given up after a few.
                self.failures += 1;
                if self.failures >= 3 {
                    self.hierarchy = None;
                }
            }
        }
    }

    /// The groups with the task's limits, and the counters to measure it
    /// from: `None` when they cannot be had, and the task runs outside any
    /// group (its limits reported as not enforced).
    fn prepare(&mut self, spec: &Spec) -> Option<(&cgroups::Group, cgroups::Baseline)> {
        let group = self.group.as_mut()?;
        let baseline = match self.baseline.take() {
            Some(baseline) => Ok(baseline),
            None => group.baseline(),
        };
        let ready = baseline.and_then(|b| group.limit(spec.cpus, spec.memory_bytes).map(|()| b));
        match ready {
            Ok(baseline) => Some((self.group.as_ref()?, baseline)),
            Err(e) => {
                eprintln!(
                    "xtask supervisor: cannot set up a cgroup for {}: {e:#}",
                    spec.task_id
                );
                // Out of the groups, or the task would run in them anyway.
                self.remove();
                None
            }
        }
    }

    /// After a task: the counters for the next one, and the same limits
    /// (most likely the next task's), set now rather than at its start.
    fn after(&mut self, last: &Spec) {
        let Some(group) = &mut self.group else {
            return self.renew();
        };
        match group.baseline() {
            Ok(baseline) if group.reusable() => {
                let _ = group.limit(last.cpus, last.memory_bytes);
                self.baseline = Some(baseline);
            }
            _ => self.renew(),
        }
    }

    fn remove(&mut self) {
        self.baseline = None;
        if let Some(group) = self.group.take() {
            group.remove();
        }
    }
}

/// Starts one task in the slot's groups and waits for it; then ends
/// whatever it left running and waits for that to be gone, so that nothing
/// of the task is alive once its end is recorded.
fn run(
    spec: &Spec,
    prepared: Option<(&cgroups::Group, cgroups::Baseline)>,
    programs: &mut Programs,
    index: usize,
    shared: &Shared,
) -> Outcome {
    let join = prepared
        .as_ref()
        .map(|(group, _)| group.procs_files_to_join())
        .unwrap_or_default();
    let (pid, follower) = match spawn(spec, programs, join) {
        Ok((child, follower)) => (child.id(), follower),
        Err(e) => return Outcome::SpawnFailed(format!("{e:#}")),
    };
    let procs = prepared.as_ref().map(|(group, _)| group.procs_file());
    lock(shared).started(index, pid, procs);
    let (status, rusage) = process::wait(pid, |paused| {
        lock(shared).say(index, &spec.log_file, &said_paused(pid, paused));
    });
    let exited_at = std::time::SystemTime::now();
    let group = prepared.as_ref().map(|(group, _)| *group);
    let leftovers = end_leftovers(pid, group, spec, index, shared);
    // Its stdout is whole: the rest of it is copied into its log.
    if let Some(following) = follower {
        following.finish();
    }
    if leftovers {
        logs::append_line(
            &spec.log_file,
            "xtask: killed processes that the task left running",
        );
    }
    // Where the group cannot tell, what the kernel tells the parent: the largest
    // process's peak (at least the supervisor's size, which a child shares
    // until its exec) and the CPU time of the task and what it reaped.
    let mut usage = match &prepared {
        Some((group, baseline)) => group.usage(baseline),
        None => cgroups::Usage::default(),
    };
    usage.peak_memory_bytes.get_or_insert(rusage.peak_bytes);
    usage.cpu_seconds.get_or_insert(rusage.cpu_seconds);
    Outcome::Exited {
        status,
        usage,
        enforced: prepared.is_some(),
        at: exited_at,
    }
}

/// Ends what the task whose process `pid` has exited left running, and
/// waits for it to be gone: its process group, and what else is in its
/// cgroup (a daemon that called `setsid`). Left by a task being stopped,
/// it gets the rest of the stop's grace; else SIGTERM and a grace of its
/// own (`Supervisor::exited`); SIGKILL after, at once on a second stop.
/// Where no cgroup holds the task, its daemons out of the group are found
/// among our orphans once the group is gone, and get SIGKILL. Returns
/// whether it left any (not counting a stopped group's members that were
/// still on their way out).
fn end_leftovers(
    pid: u32,
    group: Option<&cgroups::Group>,
    spec: &Spec,
    index: usize,
    shared: &Shared,
) -> bool {
    let signal = |signal| {
        process::signal_group(pid, signal);
        for stray in group.map(cgroups::Group::members).unwrap_or_default() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(stray as libc::pid_t, signal) };
        }
    };
    // Reaps those that have ended and were ours (a zombie still counts as
    // a member of its group until reaped), then looks for the others.
    let left_running = || {
        process::reap(-(pid as libc::pid_t));
        let strays = group.map(cgroups::Group::members).unwrap_or_default();
        strays.iter().for_each(|&p| process::reap(p as libc::pid_t));
        process::signal_group(pid, 0) || !strays.is_empty()
    };
    let left = left_running();
    let mut leftovers = lock(shared).exited(index, left, signal);
    let mut look_every = FIRST_LOOK;
    while left && left_running() {
        let kill_at = lock(shared).kill_at(index);
        if kill_at.is_none_or(|at| Instant::now() >= at) {
            lock(shared).overdue(index, signal);
            leftovers = true;
            break;
        }
        std::thread::sleep(look_every);
        look_every = (look_every * 2).min(LONGEST_LOOK);
    }
    // Nothing joins an emptied group or cgroup: only the daemons no
    // cgroup holds can be left then.
    if left {
        process::wait_group_gone(pid, Duration::from_secs(2));
    }
    let strays = match group {
        Some(group) => left && group.kill_strays(),
        None => process::kill_adopted_since(pid, |p| spec.carried_by(p)),
    };
    leftovers | strays
}

/// What the task's log says when its process `pid` was stopped or
/// continued: a task stopped (a program that suspends itself, a person's
/// `kill -STOP`) waits for a SIGCONT that nothing here sends, and its
/// timeouts still count; its log, and so `progress` and the live view,
/// would show it working.
fn said_paused(pid: u32, paused: process::Paused) -> String {
    match paused {
        process::Paused::Stopped(signal) => format!(
            "xtask: its process was stopped by {}: it waits for `kill -CONT -{pid}`, which nothing here sends; its timeouts still count",
            process::signal_name(signal)
        ),
        process::Paused::Continued => "xtask: its process was continued".to_owned(),
    }
}

/// How often the slot looks whether what a task left has ended, in its
/// grace: soon at first (most die at once on SIGTERM), then less often (on
/// cgroup v1 the looks are charged to the task's CPU, the slot's thread
/// being in its groups).
const FIRST_LOOK: Duration = Duration::from_millis(5);
const LONGEST_LOOK: Duration = Duration::from_millis(50);

/// Programs found on PATH, by name. Without this every start would search
/// PATH again, one failed exec per folder before the right one.
#[derive(Default)]
struct Programs(HashMap<String, std::path::PathBuf>);

impl Programs {
    fn resolve(&mut self, program: &str) -> std::path::PathBuf {
        if program.contains('/') {
            return program.into();
        }
        if let Some(path) = self.0.get(program) {
            return path.clone();
        }
        let Ok(path) = which::which(program) else {
            return program.into();
        };
        self.0.insert(program.to_owned(), path.clone());
        path
    }
}

/// Starts the task; when its stdout is kept apart too (`Spec::stdout_file`),
/// also the thread that follows it into the log.
fn spawn(
    spec: &Spec,
    programs: &mut Programs,
    cgroup_procs: Vec<std::ffi::CString>,
) -> Result<(std::process::Child, Option<Following>)> {
    let log = File::options()
        .append(true)
        .open(&spec.log_file)
        .with_context(|| format!("cannot open log {}", spec.log_file))?;
    let stderr = log
        .try_clone()
        .context("cannot duplicate the log file handle")?;
    // Straight into the log, unless it is kept apart too: then into its
    // own file, which the log follows.
    let stdout = match &spec.stdout_file {
        Some(path) => {
            File::create(path).with_context(|| format!("cannot create {path}"))?;
            File::options()
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {path}"))?
        }
        None => log,
    };
    let program = programs.resolve(&spec.argv[0]);
    let mut command = Command::new(&program);
    if !cgroup_procs.is_empty() {
        // SAFETY: `join` only makes async-signal-safe system calls, on
        // strings prepared before the fork.
        unsafe { command.pre_exec(move || cgroups::join(&cgroup_procs)) };
    }
    command
        .args(&spec.argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| start_error(&spec.argv[0], &program, &spec.cwd, e))?;
    let following = match &spec.stdout_file {
        Some(kept) => match Following::start(kept, &spec.log_file) {
            Ok(following) => Some(following),
            Err(e) => {
                // What it prints would reach its log only at its end.
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        },
        None => None,
    };
    Ok((child, following))
}

/// The thread that copies a task's kept stdout into its log while it runs,
/// as soon as it is written (inotify): a line on stderr right after one
/// on stdout comes after it in the log, as a question the watchdog looks
/// for must.
struct Following {
    done: Arc<(AtomicBool, Bell)>,
    thread: std::thread::JoinHandle<()>,
}

impl Following {
    /// How often it looks where the kernel gives no watch.
    const EVERY: Duration = Duration::from_millis(50);

    fn start(kept: &Utf8Path, log: &Utf8Path) -> Result<Following> {
        // Watched first: nothing written after the first copy is missed.
        let written = Written::watch(kept);
        if written.is_none() {
            logs::append_line(log, "xtask: no inotify watch to be had (fs.inotify.max_user_instances reached?): what the task prints on stdout reaches this log every 50 ms, after what it printed on stderr meanwhile");
        }
        let mut follower = logs::Follower::open(kept, log)
            .with_context(|| format!("cannot follow {kept} into {log}"))?;
        let done = Arc::new((
            AtomicBool::new(false),
            Bell::new().context("cannot make a pipe")?,
        ));
        let seen = done.clone();
        let thread = crate::sys::spawn_thread("following the task's stdout", move || {
            let limit = written.is_none().then_some(Self::EVERY);
            let fds: Vec<_> = written
                .iter()
                .map(Written::fd)
                .chain([seen.1.fd()])
                .collect();
            loop {
                // Read before the copy: once the task has ended, the copy
                // that follows takes all it wrote.
                let ended = seen.0.load(Ordering::Acquire);
                follower.copy_new();
                if ended {
                    if let Err(e) = follower.put_back() {
                        eprintln!("xtask supervisor: what the task printed is lost: {e:#}");
                    }
                    return;
                }
                poll::wait_readable(&fds, limit);
                if let Some(written) = &written {
                    written.clear();
                }
            }
        })?;
        Ok(Following { done, thread })
    }

    /// Copies the rest, once the task has ended.
    fn finish(self) {
        self.done.0.store(true, Ordering::Release);
        self.done.1.ring();
        let _ = self.thread.join();
    }
}

/// Why `program` (found at `path`, the task's folder `cwd`) could not
/// start, with what to do when its arguments were too long for Linux (a
/// rendered prompt of more than 128 KiB, passed as `{prompt}`): retrying
/// cannot help. Also when it is not there (a task found during the run is
/// not checked for it as a run's start checks every task's), as the
/// start's check says it; one that is there, whose interpreter or loader
/// is not (Linux says the same of it), is not said missing.
fn start_error(
    program: &str,
    path: &std::path::Path,
    cwd: &Utf8Path,
    e: std::io::Error,
) -> anyhow::Error {
    // A bare name PATH did not find stays bare: never looked for in `cwd`.
    let path = match program.contains('/') {
        true => cwd.as_std_path().join(path),
        false => path.to_owned(),
    };
    let hint = match e.raw_os_error() {
        Some(libc::E2BIG) => {
            ": one argument is more than the 128 KiB Linux takes (or all of them, with the environment, more than it allows); a long prompt belongs in a file: `{prompt_file}` in the command instead of `{prompt}`"
                .to_owned()
        }
        Some(libc::ENOENT) => match crate::sys::missing_interpreter_hint(&path) {
            Some(hint) => format!(": {hint}"),
            None if path.is_absolute() && path.exists() => String::new(),
            None if program.contains('/') => ": there is no such file: fix the path".to_owned(),
            None => format!(": it {}", crate::sys::NOT_ON_PATH),
        },
        _ => crate::sys::limit_hint(&e).to_owned(),
    };
    anyhow::anyhow!("cannot start `{program}`: {e}{hint}")
}
