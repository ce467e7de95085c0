//! CPU and memory limits per task, with Linux control groups: cgroup v2
//! (`cpu.max`, `memory.max`, `memory.swap.max`) where the unified hierarchy
//! can be written and has those controllers, cgroup v1 (`cpu.cfs_quota_us`,
//! `memory.limit_in_bytes`) where only that can (a host that mounts only the
//! v1 hierarchies, or a container given v1 ones). Every
//! task's group lives under an `xtask` group of each hierarchy.

use std::ffi::CString;
use std::os::unix::fs::FileExt;

use anyhow::{anyhow, bail, Context, Result};

use crate::sys::process::Process;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// The CPU period quotas are given in: the kernel's default, left as it is.
const PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone)]
pub enum Hierarchy {
    /// The `xtask` group of the unified hierarchy.
    V2(PathBuf),
    /// The `xtask` groups of the memory, cpu and cpuacct hierarchies.
    V1 {
        memory: PathBuf,
        cpu: PathBuf,
        cpuacct: PathBuf,
    },
}

/// The groups of one slot of the supervisor: each task of the slot runs in
/// them, one after the other. Reusing them, rather than making groups per
/// task, saves their creation and removal (six system calls of the kernel's
/// slowest kind) and leaves no dying memory groups behind: the kernel keeps a
/// removed memory group alive for as long as the page cache the task wrote is
/// charged to it, and thousands of those slow down every later one.
pub struct Group {
    hierarchy: Hierarchy,
    dirs: Vec<PathBuf>,
    /// The limits last written, so that a slot writes them only when they change.
    limits: Option<(u64, u64)>,
    /// Whether the slot's thread is in the groups (v1), so that what it
    /// spawns is born there; in v2 a thread cannot be, so the child joins.
    thread_inside: bool,
    /// The files read at every task's start and end, open while the group lives.
    counters: Counters,
    /// v2: whether the peak was reset at the last baseline (Linux 6.12).
    peak_reset: bool,
    /// What earlier tasks left charged (page cache, files in tmpfs) when
    /// the counters were last taken.
    residual: u64,
}

/// The files of a group read (and, for the peak, reset) around each task,
/// opened once: a read is then one system call where opening the file each
/// time took five, twice per task, on the path from a task's end to the next
/// start.
struct Counters {
    /// v2 `memory.current`, v1 `memory.usage_in_bytes`.
    memory: Option<Control>,
    /// v2 `memory.events`, v1 `memory.oom_control`: the OOM kills.
    events: Option<Control>,
    /// v2 `cpu.stat`, v1 `cpuacct.usage`.
    cpu: Option<Control>,
    /// v2 `memory.peak` (its reset holds for this open file), v1
    /// `memory.max_usage_in_bytes`.
    peak: Option<Control>,
    /// `cgroup.procs` of the memory group: who is left in it.
    procs: Option<Control>,
}

/// The slots whose control files stay open: the supervisor may have
/// only 1,024 files open (the usual soft limit), and each such slot keeps
/// five. Later slots open them at each use.
pub const KEPT_OPEN_SLOTS: usize = 64;

/// A control file of a group: open, or opened at each use.
enum Control {
    Open(std::fs::File),
    Path(PathBuf),
}

impl Control {
    /// `keep`: opened now and kept (`None` if it cannot be).
    fn open(dir: &Path, name: &str, keep: bool) -> Option<Control> {
        let path = dir.join(name);
        if !keep {
            return Some(Control::Path(path));
        }
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .open(&path)
            .or_else(|_| std::fs::File::open(&path))
            .ok()?;
        Some(Control::Open(file))
    }

    /// The file's whole text ("" if it cannot be read). An open file is
    /// read from its start: the kernel writes a control file's text afresh
    /// for a read at offset 0, and a read shorter than asked for is its end.
    fn text(&self) -> String {
        let file = match self {
            Control::Open(file) => file,
            Control::Path(path) => return std::fs::read_to_string(path).unwrap_or_default(),
        };
        let mut text = Vec::new();
        let mut buffer = [0u8; 512];
        loop {
            match file.read_at(&mut buffer, text.len() as u64) {
                Ok(n) => {
                    text.extend_from_slice(&buffer[..n]);
                    if n < buffer.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return String::new(),
            }
        }
        String::from_utf8(text).unwrap_or_default()
    }

    fn set(&self, value: &str) -> std::io::Result<()> {
        let file = match self {
            Control::Open(file) => file,
            Control::Path(path) => return std::fs::write(path, value),
        };
        let written = file.write_at(value.as_bytes(), 0)?;
        if written == value.len() {
            Ok(())
        } else {
            Err(std::io::Error::other("short write to a control file"))
        }
    }
}

/// The text of an optional control file ("" when it could not be opened).
fn text(control: &Option<Control>) -> String {
    control.as_ref().map(Control::text).unwrap_or_default()
}

/// The most a group may keep charged from earlier tasks and still be
/// reused: a task's memory limit is set that much higher, so that it gets
/// its own, and its peak may read low by as much when the kernel reclaims
/// that charge during it.
const RESIDUAL_MAX: u64 = 16 << 20;

/// What is left charged is added to the memory limit rounded up to a
/// multiple of this, so that the limit is written again only when the
/// charge crosses one, not after every task (it moves by a few pages each
/// time). A task may so use up to this much over its limit.
const RESIDUAL_STEP: u64 = 1 << 20;

/// The counters at a task's start, which its usage is measured from.
#[derive(Debug, Default)]
pub struct Baseline {
    memory_bytes: u64,
    oom_kills: u64,
    cpu_ns: u64,
}

/// What a task used, read from its group when it ended.
#[derive(Debug, Default)]
pub struct Usage {
    pub oom_killed: bool,
    pub peak_memory_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
}

/// The hierarchy that can be written here, or why none can.
pub fn detect() -> Result<Hierarchy> {
    let unified = Path::new(ROOT);
    let v2 = if unified.join("cgroup.controllers").exists() {
        Some(unified.to_owned())
    } else {
        None
    };
    if let Some(base) = v2 {
        let controllers =
            std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
        if controllers.contains("memory") && controllers.contains("cpu") {
            let ours = base.join("xtask");
            let ready = std::fs::create_dir_all(&ours)
                .and_then(|()| std::fs::write(base.join("cgroup.subtree_control"), "+cpu +memory"))
                .and_then(|()| std::fs::write(ours.join("cgroup.subtree_control"), "+cpu +memory"));
            return match ready {
                Ok(()) => Ok(Hierarchy::V2(ours)),
                Err(e) => Err(anyhow!(
                    "cannot write the cgroup v2 hierarchy at {ROOT}: {e}"
                )),
            };
        }
    }
    let v1 = |name: &str| Path::new(ROOT).join(name);
    if v1("memory").join("memory.limit_in_bytes").exists()
        && v1("cpu").join("cpu.cfs_quota_us").exists()
    {
        let groups = ["memory", "cpu", "cpuacct"].map(|h| v1(h).join("xtask"));
        // Made, or there already (an earlier run's, maybe root's): a group
        // made and removed in each says they can be written. Named as this
        // process's groups are, by its pid and start time: a probe that a
        // process killed before it removed it left under a pid reused since
        // is not this one's (`clean_stale` removes it).
        let me = std::process::id();
        let start = crate::sys::process::start_time(me).unwrap_or(0);
        let probe = format!("{}probe", group_prefix(me, start));
        let writable = |group: &std::path::PathBuf| {
            std::fs::create_dir_all(group)?;
            std::fs::create_dir(group.join(&probe))?;
            std::fs::remove_dir(group.join(&probe))
        };
        return match groups.iter().try_for_each(writable) {
            Ok(()) => {
                let [memory, cpu, cpuacct] = groups;
                Ok(Hierarchy::V1 {
                    memory,
                    cpu,
                    cpuacct,
                })
            }
            Err(e) => Err(anyhow!(
                "cannot write the cgroup v1 hierarchies under {ROOT}: {e}"
            )),
        };
    }
    bail!("no cgroup hierarchy with the cpu and memory controllers under {ROOT}")
}

impl Hierarchy {
    /// The `xtask` folders of each hierarchy.
    fn bases(&self) -> Vec<PathBuf> {
        match self {
            Hierarchy::V2(base) => vec![base.clone()],
            Hierarchy::V1 {
                memory,
                cpu,
                cpuacct,
            } => vec![memory.clone(), cpu.clone(), cpuacct.clone()],
        }
    }

    /// Creates the (empty) groups of one slot. In v1 the calling thread, the
    /// slot's own, moves into them: what it spawns is born inside, with no
    /// move per task (the child of a thread starts in that thread's groups).
    /// `keep_open`: its control files stay open (see `KEPT_OPEN_SLOTS`).
    pub fn create(&self, name: &str, keep_open: bool) -> Result<Group> {
        let dirs: Vec<PathBuf> = self.bases().iter().map(|b| b.join(name)).collect();
        let made = dirs.iter().try_for_each(|dir| {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create cgroup {}", dir.display()))
        });
        if let Err(e) = made {
            for dir in &dirs {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
        let counters = Counters::open(self, &dirs, keep_open);
        let mut group = Group {
            hierarchy: self.clone(),
            dirs,
            limits: None,
            thread_inside: false,
            counters,
            peak_reset: false,
            residual: 0,
        };
        match self {
            // No swap: a task over its memory is killed, not slowed to a crawl.
            Hierarchy::V2(_) => {
                let _ = std::fs::write(group.dirs[0].join("memory.swap.max"), "0");
            }
            Hierarchy::V1 { .. } => {
                let tid = gettid();
                if let Err(e) = group.dirs.iter().try_for_each(|d| write(d, "tasks", tid)) {
                    group.remove();
                    return Err(e);
                }
                group.thread_inside = true;
            }
        }
        Ok(group)
    }

    /// Removes the groups a crashed run left behind: those whose supervisor
    /// (the pid their name starts with) is gone, and the probes of `detect`
    /// that a process killed before it removed them left. Another supervisor's groups,
    /// on this machine for another workspace, are left alone; and a group
    /// with a live task in it cannot be removed anyway.
    pub fn clean_stale(&self) {
        for base in self.bases() {
            for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
                let name = entry.file_name();
                // Named `<pid>-<start>-...` by the process that made it,
                // which is gone when no process has that pid and start (its
                // pid may be another's since). A probe of `detect` by a build
                // before 2026-12-07 is named `probe-<pid>`, without a start.
                let owner = name.to_str().and_then(|n| {
                    let mut fields = n.strip_prefix("probe-").unwrap_or(n).split('-');
                    let pid = fields.next()?.parse::<u32>().ok()?;
                    Some((pid, fields.next().and_then(|f| f.parse::<u64>().ok())))
                });
                let orphaned = owner
                    .is_some_and(|(pid, start)| !crate::sys::process::is_same_process(pid, start));
                if orphaned && entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
    }
}

impl Hierarchy {
    /// Kills what is left in the groups of `supervisor`, which died under
    /// its tasks, and removes the groups: a daemon a task started in a
    /// session of its own outlives the task's process group, and only its
    /// group knows whose it is. For the run that followed those tasks to
    /// their end, once none of them runs; `clean_stale` leaves a group with
    /// a process in it (the process may be a task a run adopts). The
    /// groups are found by the supervisor's pid and start time, never those
    /// of another supervisor that got its pid. Returns whether any process
    /// was killed.
    pub fn sweep(&self, supervisor: Process) -> bool {
        let Some(start) = supervisor.start else {
            return false;
        };
        // (A zombie, its exit not reaped yet, is gone.)
        if crate::sys::process::is_same_process(supervisor.pid, Some(start)) {
            return false;
        }
        let prefix = group_prefix(supervisor.pid, start);
        let mut killed = false;
        for base in self.bases() {
            for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
                let theirs = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix));
                if !theirs || !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let dir = entry.path();
                killed |= kill_members(&Control::open(&dir, "cgroup.procs", false));
                remove_when_empty(&dir);
            }
        }
        killed
    }
}

impl Group {
    /// Sets the next task's limits (its memory on top of what earlier tasks
    /// left charged), where they differ from what is set.
    pub fn limit(&mut self, cpus: f64, memory_bytes: u64) -> Result<()> {
        let quota = ((cpus * PERIOD_US as f64) as u64).max(1000);
        let memory = memory_bytes.saturating_add(self.residual.next_multiple_of(RESIDUAL_STEP));
        let set = self.limits.take();
        if set != Some((quota, memory)) {
            self.write_limits(quota, memory, set)?;
        }
        self.limits = Some((quota, memory));
        Ok(())
    }

    /// Whether the next task can be limited and measured on its own in
    /// this group: not too much left charged.
    pub fn reusable(&self) -> bool {
        self.residual <= RESIDUAL_MAX
    }

    /// The counters the next task's usage will be measured from. Taken when
    /// the slot's last task has ended, off the path to the next start.
    pub fn baseline(&mut self) -> Result<Baseline> {
        let baseline = self.counters()?;
        self.residual = baseline.memory_bytes;
        Ok(baseline)
    }

    fn counters(&mut self) -> Result<Baseline> {
        let counters = &self.counters;
        Ok(match &self.hierarchy {
            Hierarchy::V2(_) => {
                // A write resets the peak seen through this open file (Linux 6.12).
                self.peak_reset = counters
                    .peak
                    .as_ref()
                    .is_some_and(|peak| peak.set("reset").is_ok());
                Baseline {
                    memory_bytes: number(&text(&counters.memory)),
                    oom_kills: counter(&text(&counters.events), "oom_kill "),
                    cpu_ns: counter(&text(&counters.cpu), "usage_usec ") * 1000,
                }
            }
            Hierarchy::V1 { .. } => {
                // Writing 0 sets the recorded maximum to the current usage.
                let path = self.dirs[0].join("memory.max_usage_in_bytes");
                let reset = match &counters.peak {
                    Some(peak) => peak.set("0"),
                    None => Err(std::io::ErrorKind::NotFound.into()),
                };
                reset.with_context(|| format!("cannot write {}", path.display()))?;
                Baseline {
                    memory_bytes: number(&text(&counters.memory)),
                    oom_kills: counter(&text(&counters.events), "oom_kill "),
                    cpu_ns: number(&text(&counters.cpu)),
                }
            }
        })
    }

    /// Writes the limits that differ from `set`, those last written (all
    /// of them when `None`): the memory limit moves with what earlier tasks
    /// left charged, about once in ten tasks, the CPU quota almost never.
    fn write_limits(&self, quota: u64, memory_bytes: u64, set: Option<(u64, u64)>) -> Result<()> {
        let dirs = &self.dirs;
        let cpu = set.is_none_or(|(q, _)| q != quota);
        let memory = set.map(|(_, m)| m);
        match &self.hierarchy {
            Hierarchy::V2(_) => {
                if cpu {
                    write(&dirs[0], "cpu.max", format!("{quota} {PERIOD_US}"))?;
                }
                if memory != Some(memory_bytes) {
                    write(&dirs[0], "memory.max", memory_bytes)?;
                }
                Ok(())
            }
            Hierarchy::V1 { .. } => {
                // Where swap accounting exists, memory+swap gets the same
                // limit. It may never be under memory's: raised before it,
                // lowered after; when which is not known, written before and
                // after, and one of the two writes succeeds.
                // (A failure is expected, and not made an error: with
                // RUST_BACKTRACE set, each would capture a backtrace.)
                let memsw = || {
                    let path = dirs[0].join("memory.memsw.limit_in_bytes");
                    let _ = std::fs::write(path, memory_bytes.to_string());
                };
                if memory != Some(memory_bytes) {
                    if memory.is_none_or(|m| m < memory_bytes) {
                        memsw();
                    }
                    write(&dirs[0], "memory.limit_in_bytes", memory_bytes)?;
                    if memory.is_none_or(|m| m > memory_bytes) {
                        memsw();
                    }
                }
                if cpu {
                    write(&dirs[1], "cpu.cfs_quota_us", quota)?;
                }
                Ok(())
            }
        }
    }

    /// The files a new process writes `0` to, to join the groups, when the
    /// slot's thread could not be inside them (v2).
    pub fn procs_files_to_join(&self) -> Vec<CString> {
        if self.thread_inside {
            return Vec::new();
        }
        self.dirs
            .iter()
            .filter_map(|dir| {
                CString::new(
                    dir.join("cgroup.procs")
                        .into_os_string()
                        .into_encoded_bytes(),
                )
                .ok()
            })
            .collect()
    }

    /// What the task used since `since`; the kernel's OOM counter says
    /// whether it was killed for memory (never guessed from the exit code).
    /// The peak is what the group's charge grew by: the page cache of earlier
    /// tasks, still charged to the slot, is not the task's.
    pub fn usage(&self, since: &Baseline) -> Usage {
        let counters = &self.counters;
        let (oom_kills, peak, cpu_ns) = match &self.hierarchy {
            Hierarchy::V2(_) => (
                counter(&text(&counters.events), "oom_kill "),
                // `None` where the peak cannot be reset (before Linux 6.12):
                // the supervisor then reports what `wait4` says.
                self.peak_reset.then(|| number(&text(&counters.peak))),
                counter(&text(&counters.cpu), "usage_usec ") * 1000,
            ),
            Hierarchy::V1 { .. } => (
                counter(&text(&counters.events), "oom_kill "),
                Some(number(&text(&counters.peak))),
                number(&text(&counters.cpu)),
            ),
        };
        Usage {
            oom_killed: oom_kills > since.oom_kills,
            peak_memory_bytes: peak.map(|p| p.saturating_sub(since.memory_bytes)),
            cpu_seconds: Some(cpu_ns.saturating_sub(since.cpu_ns) as f64 / 1e9),
        }
    }

    /// SIGKILL to every process left in the groups (a task's daemon that
    /// left its process group still cannot leave its cgroup), until none
    /// is left, reaping those that were ours (see `become_subreaper`).
    /// Returns whether there was any.
    pub fn kill_strays(&self) -> bool {
        kill_members(&self.counters.procs)
    }

    /// The processes in the groups (but this one): what a task left
    /// running, a daemon that left its process group too.
    pub fn members(&self) -> Vec<u32> {
        members(&self.counters.procs)
    }

    /// The file that lists the processes in the memory group, for the
    /// supervisor's main thread, which has no `Group`, to reach them
    /// (`outside_group`).
    pub fn procs_file(&self) -> PathBuf {
        self.dirs[0].join("cgroup.procs")
    }

    /// Removes the groups. Called by the slot's thread, which first moves
    /// back to the `xtask` groups: a group with a member cannot be removed.
    pub fn remove(self) {
        if self.thread_inside {
            let tid = gettid();
            for base in self.hierarchy.bases() {
                let _ = write(&base, "tasks", tid);
            }
        }
        self.remove_emptied();
    }

    /// Removes the groups once the slot's thread has ended: no move out.
    /// A thread just joined may count as a member for a few more
    /// microseconds (the kernel wakes its joiner before it leaves its
    /// groups), and a task's last process for longer: tried again, for up
    /// to half a second.
    pub fn remove_emptied(self) {
        drop(self.counters);
        for dir in &self.dirs {
            remove_when_empty(dir);
        }
    }
}

/// How the names of a supervisor's groups start: its pid (what
/// `clean_stale` reads) and its start time (see `Hierarchy::sweep`).
pub fn group_prefix(pid: u32, start: u64) -> String {
    format!("{pid}-{start}-")
}

/// Removes a group, tried again for up to half a second while the kernel
/// still counts a member that is gone.
fn remove_when_empty(dir: &Path) {
    for _ in 0..500 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The processes that `procs` (a group's `cgroup.procs`) lists, but this
/// one, that are not in the process group `pgid`: a daemon its task
/// started with `setsid`, which a signal to the task's group misses.
pub fn outside_group(procs: &Path, pgid: u32) -> Vec<u32> {
    let listed = members(&Some(Control::Path(procs.to_owned())));
    listed
        .into_iter()
        .filter(|&pid| {
            // SAFETY: getpgid has no memory-safety preconditions (-1: gone).
            let group = unsafe { libc::getpgid(pid as libc::pid_t) };
            group >= 0 && group as u32 != pgid
        })
        .collect()
}

/// SIGKILL to every process listed in a group's `procs` (but this one),
/// until none is left, reaping those that were ours. Returns whether there
/// was any.
fn kill_members(procs: &Option<Control>) -> bool {
    let mut found = false;
    for _ in 0..200 {
        let members = members(procs);
        if members.is_empty() {
            break;
        }
        found = true;
        for &pid in &members {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        for pid in members {
            crate::sys::process::reap(pid as libc::pid_t);
        }
    }
    found
}

/// The processes listed in a group's `procs`, but this one (a slot's
/// thread is in its groups).
fn members(procs: &Option<Control>) -> Vec<u32> {
    let me = std::process::id();
    // 0: a process of another pid namespace, which no signal of ours
    // can name (`kill(0)` would signal our own process group).
    text(procs)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&pid| pid != me && pid != 0)
        .collect()
}

impl Counters {
    fn open(hierarchy: &Hierarchy, dirs: &[PathBuf], keep: bool) -> Counters {
        let control = |dir: &Path, name| Control::open(dir, name, keep);
        match hierarchy {
            Hierarchy::V2(_) => Counters {
                memory: control(&dirs[0], "memory.current"),
                events: control(&dirs[0], "memory.events"),
                cpu: control(&dirs[0], "cpu.stat"),
                // Always open: its reset holds only for the file it was made through.
                peak: Control::open(&dirs[0], "memory.peak", true),
                procs: control(&dirs[0], "cgroup.procs"),
            },
            Hierarchy::V1 { .. } => Counters {
                memory: control(&dirs[0], "memory.usage_in_bytes"),
                events: control(&dirs[0], "memory.oom_control"),
                cpu: control(&dirs[2], "cpuacct.usage"),
                peak: control(&dirs[0], "memory.max_usage_in_bytes"),
                // Opened at each use: v1 reads an open `procs` again from
                // the list it made at its first read, while read within a
                // second of the last (processes long gone stayed listed).
                procs: Control::open(&dirs[0], "cgroup.procs", false),
            },
        }
    }
}

fn write(dir: &Path, file: &str, value: impl std::fmt::Display) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value.to_string())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn number(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

/// The value of `key` in a file of `key value` lines.
fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or(0)
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Joins the calling process to the groups: runs in the forked child, before
/// exec, so only async-signal-safe system calls.
pub fn join(procs_files: &[CString]) -> std::io::Result<()> {
    for path in procs_files {
        // SAFETY: path is a valid NUL-terminated string; open, write and
        // close are async-signal-safe.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written != 1 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}
