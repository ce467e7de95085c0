//! Small wrappers over the OS for processes: signals to process groups,
//! liveness checks that cannot be fooled by a reused pid, and the start time
//! that makes that possible.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// The start time of a process in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), or `None` when there is no such live process.
pub fn start_time(pid: u32) -> Option<u64> {
    live_stat(pid)?.split_whitespace().nth(19)?.parse().ok()
}

/// `/proc/<pid>/stat` from field 3 (the state) on, or `None` when there is
/// no such live process. A zombie counts as gone: it has exited and only
/// waits to be reaped.
fn live_stat(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = stat[stat.rfind(')')? + 1..].trim_start();
    let state = rest.split_whitespace().next()?;
    (state != "Z" && state != "X").then(|| rest.to_owned())
}

/// What `child` printed on its piped stdout and stderr until it exited,
/// and how it exited. Unlike `Command::output`, it does not wait for the
/// pipes to close: a process it left running (a git hook's daemon) may
/// hold them open for hours. All it wrote before it exited is read.
pub fn output_until_exit(child: Child) -> io::Result<Output> {
    let output = output_within(child, None)?;
    Ok(output.expect("with no deadline, the child has exited"))
}

/// `output_until_exit`, or `None` when `child` has not exited by
/// `deadline`: then it is killed (SIGKILL) and reaped.
pub fn output_within(mut child: Child, deadline: Option<Instant>) -> io::Result<Option<Output>> {
    let mut streams = [
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ]
    .map(|fd| Stream::new(fd.map(File::from)));
    for stream in streams.iter().flat_map(|s| &s.file) {
        super::poll::set_nonblocking(stream.as_raw_fd())?;
    }
    // Readable once it has exited (Linux 5.3): else looked at every 10 ms.
    let exited = pidfd(child.id());
    let limit = exited.is_none().then_some(Duration::from_millis(10));
    loop {
        for stream in &mut streams {
            stream.drain()?;
        }
        if let Some(status) = child.try_wait()? {
            // What it wrote before it exited is in the pipes now.
            for stream in &mut streams {
                stream.drain()?;
            }
            let [stdout, stderr] = streams.map(|s| s.read);
            return Ok(Some(Output {
                status,
                stdout,
                stderr,
            }));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        let left = deadline.map(|d| d - now);
        let mut fds: Vec<RawFd> = streams
            .iter()
            .flat_map(|s| &s.file)
            .map(|f| f.as_raw_fd())
            .collect();
        fds.extend(exited.as_ref().map(|fd| fd.as_raw_fd()));
        let limit = [limit, left].into_iter().flatten().min();
        super::poll::wait_readable(&fds, limit);
    }
}

/// One of a child's output pipes, and what was read of it.
struct Stream {
    /// `None` once closed.
    file: Option<File>,
    read: Vec<u8>,
}

impl Stream {
    fn new(file: Option<File>) -> Stream {
        Stream {
            file,
            read: Vec::new(),
        }
    }

    /// Reads all there is now, without waiting (what was read before the
    /// pipe had no more stays in `read`).
    fn drain(&mut self) -> io::Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        match file.read_to_end(&mut self.read) {
            // Closed by every writer.
            Ok(_) => self.file = None,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// A descriptor that becomes readable when process `pid` exits, where the
/// kernel has them.
fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor
    // (owned from then on) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a descriptor just made, owned by nothing else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Raises this process's soft limit on open files to `OPEN_FILES` (its
/// hard limit, if lower). A run holds a descriptor for each Slurm job of
/// an agent in flight (its log, `logs::HeldLog`): past the soft limit
/// (1,024 on many systems, the hard one often far above), its logs, job
/// records and statuses could not be made, and its tasks failed to start.
/// What it starts inherits the limit raised: not to the hard limit, often
/// a million, which programs that close every descriptor up to the limit
/// before they start another (older Pythons, daemons) take seconds over.
pub fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit write and read only `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            let raised = limit.rlim_max.min(OPEN_FILES);
            if limit.rlim_cur < raised {
                limit.rlim_cur = raised;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    }
}

/// The soft limit on open files a run raises its own to: a descriptor for
/// each of thousands of agents' Slurm jobs in flight.
const OPEN_FILES: libc::rlim_t = 8192;

/// Marks every descriptor above stderr close-on-exec. Those this process
/// inherited (a pipe of the shell that started it) would reach the
/// supervisor and every task, and keep open what they are for as long as
/// any runs. Not closed: whoever passed one may count on this process
/// holding it. Call first thing: every descriptor made here later is
/// close-on-exec already (std opens them so), or meant to be inherited.
pub fn inherited_descriptors_close_on_exec() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on a descriptor number changes no memory; one that
        // was the listing's own, closed since, gives EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// A pid and its start time, to tell it from a later process with the same pid.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    pub pid: u32,
    pub start: Option<u64>,
}

impl Process {
    /// The process itself is alive (its start tells it from a later
    /// process with its pid). Not what it left in its group: once it is
    /// gone, a group of its number may be a newcomer's, which took the pid
    /// after the group emptied and left a group of its own behind.
    pub fn alive(&self) -> bool {
        self.pid != 0 && is_same_process(self.pid, self.start)
    }

    /// Sends `signal` to its group, while it leads it (see `alive`): never
    /// to a newcomer that reused its pid.
    pub fn signal_group(&self, signal: i32) -> bool {
        self.alive() && signal_group(self.pid, signal)
    }
}

/// Whether `pid` is still the process that started at `start`.
pub fn is_same_process(pid: u32, start: Option<u64>) -> bool {
    match (start_time(pid), start) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Sends `signal` to every process in the group `pgid`. Returns whether any
/// process received it.
pub fn signal_group(pgid: u32, signal: i32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: killpg has no memory-safety preconditions.
    pgid > 1 && unsafe { libc::killpg(pgid, signal) } == 0
}

/// Waits, up to `limit`, until no process is left in the group `pgid`
/// (SIGKILL is delivered asynchronously), reaping those of them that are
/// our children: a subreaper's orphaned descendants are, and a zombie still
/// counts as a member of its group until it is reaped.
pub fn wait_group_gone(pgid: u32, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while signal_group(pgid, 0) && std::time::Instant::now() < deadline {
        reap(-(pgid as libc::pid_t));
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Reaps, without waiting, the ended children that `pid` names (a pid, or
/// minus a process group).
pub fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: status is a live, writable local.
    while unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } > 0 {}
}

/// Makes this process the reaper of its orphaned descendants: a task's
/// processes whose parent ended become its children, not init's, so that
/// it can reap them (and they do not linger as zombies where init is slow
/// to reap, as in some containers).
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
}

/// Kills the processes that left the group of the ended task `leader`
/// (`setsid`, a daemon) and became ours when their parent ended (see
/// `become_subreaper`): our children started after it whose environment
/// `belongs` to its attempt. Where no cgroup holds a task's processes, the
/// only way to find them. Returns whether there were any.
pub fn kill_adopted_since(leader: u32, belongs: impl Fn(u32) -> bool) -> bool {
    let me = std::process::id();
    let mut any = false;
    // Those it started, killed, leave theirs to us in turn.
    for _ in 0..8 {
        let adopted = adopted_since(leader, me, &belongs);
        if adopted.is_empty() {
            break;
        }
        for &pid in &adopted {
            signal_group(pid, libc::SIGKILL);
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        for &pid in &adopted {
            wait_group_gone(pid, std::time::Duration::from_secs(2));
            reap(pid as libc::pid_t);
        }
        any = true;
    }
    any
}

/// Our live children started after `leader` that `belongs` holds for.
fn adopted_since(leader: u32, me: u32, belongs: &impl Fn(u32) -> bool) -> Vec<u32> {
    given_out_after(leader)
        .into_iter()
        .filter(|&pid| {
            // Field 4, after the state: the parent.
            let parent = live_stat(pid).and_then(|s| s.split_whitespace().nth(1)?.parse().ok());
            parent == Some(me) && belongs(pid)
        })
        .collect()
}

/// The pids that may belong to processes started after `pid`: those up to
/// the latest given out (the last field of `/proc/loadavg`), a few for a
/// short task, where they are fewer than the processes there are (its
/// fourth field's total); else those of every process in `/proc` above
/// `pid`, or all of them once the numbers wrapped.
fn given_out_after(pid: u32) -> Vec<u32> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = loadavg.split_whitespace().collect();
    let latest: Option<u32> = fields.get(4).and_then(|f| f.parse().ok());
    let total: Option<u32> = fields
        .get(3)
        .and_then(|f| f.split('/').nth(1)?.parse().ok());
    if let (Some(latest), Some(total)) = (latest, total) {
        if latest >= pid && latest - pid <= total {
            return (pid + 1..=latest).collect();
        }
    }
    let wrapped = latest.is_none_or(|latest| latest < pid);
    let all = pids().unwrap_or_default();
    all.into_iter().filter(|&p| wrapped || p > pid).collect()
}

/// The pids of every process there is.
fn pids() -> std::io::Result<Vec<u32>> {
    Ok(std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect())
}

/// Whether a process (of those whose descriptors may be read) has the file
/// `path` (absolute, links resolved) open. Reads every process's
/// descriptors: for the rare check of a lock that may be stale. Where
/// `/proc` cannot be read, taken to be open.
pub fn open_anywhere(path: &std::path::Path) -> bool {
    pids().map_or(true, |all| holding(path, all).is_some())
}

/// A process other than this one that has the file `path` (absolute,
/// links resolved) open, if one may be read.
pub fn other_holder(path: &std::path::Path) -> Option<u32> {
    let others = pids()
        .ok()?
        .into_iter()
        .filter(|&p| p != std::process::id());
    holding(path, others)
}

/// A live git, not this process, working in the folder `dir` (absolute,
/// links resolved): git moves to the top of the worktree it works in. One
/// waiting on its editor (`git commit -a`) has closed the lock it will
/// rename, which no descriptor then shows. Reads every process's name and
/// folder: for the rare check of a lock that may be stale.
pub fn git_working_in(dir: &std::path::Path) -> Option<u32> {
    let others = pids()
        .ok()?
        .into_iter()
        .filter(|&p| p != std::process::id());
    others.into_iter().find(|pid| {
        let git = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|name| name.trim_end() == "git");
        git && std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
    })
}

/// The first of `pids` with a descriptor that links to `target` (a path
/// as `/proc/<pid>/fd` shows it: a removed file's ends in ` (deleted)`).
pub fn holding(target: &std::path::Path, pids: impl IntoIterator<Item = u32>) -> Option<u32> {
    pids.into_iter().find(|pid| {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten();
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to == target))
    })
}

/// The process group of a running attempt of task `id` of `workspace`,
/// found by the environment every task gets (`WORKSPACE`, `TASK_ID`,
/// `TASK_ATTEMPT`): for a task whose pid was never written down. Reads
/// every process's environment, which only recovery after a double crash
/// needs.
///
/// A process that leads a session of its own (a daemon the task started
/// with `setsid`) is not taken for it: the task is in its supervisor's.
pub fn find_task(workspace: &str, id: &str, attempt: u32) -> Option<u32> {
    pids().ok()?.into_iter().find_map(|pid| {
        let (group, session) = group_and_session(pid)?;
        (session != pid && carries_task(pid, workspace, id, attempt)).then_some(group)
    })
}

/// The process group and session of a live process (fields 5 and 6 of
/// its stat).
fn group_and_session(pid: u32) -> Option<(u32, u32)> {
    let stat = live_stat(pid)?;
    let mut fields = stat.split_whitespace().skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// SIGKILL to the live members of group `pgid` that `belongs` holds for
/// (again for those they start meanwhile), then a wait, 2 s at most, for
/// them to be gone. Whether there were any.
pub fn kill_members(pgid: u32, belongs: impl Fn(u32) -> bool) -> bool {
    let mut killed = Vec::new();
    for _ in 0..8 {
        let members: Vec<u32> = pids()
            .unwrap_or_default()
            .into_iter()
            .filter(|&p| group_and_session(p).is_some_and(|(g, _)| g == pgid) && belongs(p))
            .collect();
        if members.is_empty() {
            break;
        }
        for &pid in &members {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        killed.extend(members);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while killed.iter().any(|&p| live_stat(p).is_some()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    !killed.is_empty()
}

/// Whether process `pid` has the environment of attempt `attempt` of task
/// `id` of `workspace`.
pub fn carries_task(pid: u32, workspace: &str, id: &str, attempt: u32) -> bool {
    let wanted = [
        format!("WORKSPACE={workspace}"),
        format!("TASK_ID={id}"),
        format!("TASK_ATTEMPT={attempt}"),
    ];
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let vars = environ.split(|&b| b == 0);
    wanted
        .iter()
        .all(|w| vars.clone().any(|v| v == w.as_bytes()))
}

/// What a reaped process and its reaped descendants used.
pub struct Rusage {
    /// The largest resident set of any one of them.
    pub peak_bytes: u64,
    pub cpu_seconds: f64,
}

/// A child that was stopped by a signal (`Stopped`, its number) or
/// continued, as `wait` tells it.
pub enum Paused {
    Stopped(i32),
    Continued,
}

/// Waits for the child `pid` to end and reaps it, telling `paused` each
/// time it is stopped or continued meanwhile. An error (it cannot happen
/// to a child of ours) reads as exit code 255.
pub fn wait(pid: u32, mut paused: impl FnMut(Paused)) -> (std::process::ExitStatus, Rusage) {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: rusage is plain data; zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = libc::WUNTRACED | libc::WCONTINUED;
    loop {
        // SAFETY: both pointers are to live, writable locals.
        let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, flags, &mut usage) };
        if reaped < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if reaped != pid as libc::pid_t {
            status = 0xff00; // the wait status of exit code 255
        } else if libc::WIFSTOPPED(status) {
            paused(Paused::Stopped(libc::WSTOPSIG(status)));
            continue;
        } else if libc::WIFCONTINUED(status) {
            paused(Paused::Continued);
            continue;
        }
        break;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let usage = Rusage {
        peak_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
    };
    (std::process::ExitStatus::from_raw(status), usage)
}

/// A signal's conventional name, for messages.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGBUS => "SIGBUS",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        _ => return format!("signal {signal}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_started_later_is_among_the_pids_given_out_after() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let found = given_out_after(std::process::id()).contains(&child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        // Also if the pids wrapped in between: then every pid counts.
        assert!(found);
    }

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id();
        let start = start_time(me);
        assert!(start.is_some());
        assert!(is_same_process(me, start));
        assert!(!is_same_process(me, start.map(|s| s + 1)));
    }
}
