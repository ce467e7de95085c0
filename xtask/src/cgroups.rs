//! CPU and memory limits per task, with Linux control groups: cgroup v2
//! (`cpu.max`, `memory.max`, `memory.swap.max`) where the unified hierarchy
//! can be written and has those controllers, cgroup v1 (`cpu.cfs_quota_us`,
//! `memory.limit_in_bytes`) where only that can (as on the CI machine). Every
//! task's group lives under an `xtask` group of each hierarchy.

use std::ffi::CString;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
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

/// One task's groups.
pub struct Group {
    hierarchy: Hierarchy,
    dirs: Vec<PathBuf>,
}

/// What a task used, read from its group when it ended.
#[derive(Debug, Default)]
pub struct Usage {
    pub oom_killed: bool,
    pub peak_memory_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
}

/// The hierarchy that can be written here, or why none can.
pub fn detect() -> Result<Hierarchy, String> {
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
                Err(e) => Err(format!(
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
        return match groups.iter().try_for_each(std::fs::create_dir_all) {
            Ok(()) => {
                let [memory, cpu, cpuacct] = groups;
                Ok(Hierarchy::V1 {
                    memory,
                    cpu,
                    cpuacct,
                })
            }
            Err(e) => Err(format!(
                "cannot write the cgroup v1 hierarchies under {ROOT}: {e}"
            )),
        };
    }
    Err(format!(
        "no cgroup hierarchy with the cpu and memory controllers under {ROOT}"
    ))
}

impl Hierarchy {
    /// Creates the (empty) groups for one task; `Group::limit` sets its
    /// limits. Created ahead of time, off the path from a request to a start.
    pub fn create(&self, name: &str) -> std::io::Result<Group> {
        let dirs = match self {
            Hierarchy::V2(base) => vec![base.join(name)],
            Hierarchy::V1 {
                memory,
                cpu,
                cpuacct,
            } => vec![memory.join(name), cpu.join(name), cpuacct.join(name)],
        };
        for dir in &dirs {
            std::fs::create_dir_all(dir)?;
        }
        if let Hierarchy::V2(_) = self {
            // No swap: a task over its memory is killed, not slowed to a crawl.
            let _ = std::fs::write(dirs[0].join("memory.swap.max"), "0");
        }
        Ok(Group {
            hierarchy: self.clone(),
            dirs,
        })
    }

    /// Removes the groups a crashed run left behind: those whose supervisor
    /// (the pid their name starts with) is gone. Another supervisor's groups,
    /// on this machine for another workspace, are left alone; and a group
    /// with a live task in it cannot be removed anyway.
    pub fn clean_stale(&self) {
        let bases = match self {
            Hierarchy::V2(base) => vec![base.clone()],
            Hierarchy::V1 {
                memory,
                cpu,
                cpuacct,
            } => vec![memory.clone(), cpu.clone(), cpuacct.clone()],
        };
        for base in bases {
            for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
                let name = entry.file_name();
                let owner = name
                    .to_str()
                    .and_then(|n| n.split('-').next()?.parse::<u32>().ok());
                let orphaned = owner.is_some_and(|pid| crate::process::start_time(pid).is_none());
                if orphaned && entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
    }
}

impl Group {
    /// Sets the limits of a new group.
    pub fn limit(&self, cpus: f64, memory_bytes: u64) -> std::io::Result<()> {
        let quota = ((cpus * PERIOD_US as f64) as u64).max(1000);
        match &self.hierarchy {
            Hierarchy::V2(_) => {
                std::fs::write(self.dirs[0].join("cpu.max"), format!("{quota} {PERIOD_US}"))?;
                std::fs::write(self.dirs[0].join("memory.max"), memory_bytes.to_string())?;
            }
            Hierarchy::V1 { .. } => {
                std::fs::write(
                    self.dirs[0].join("memory.limit_in_bytes"),
                    memory_bytes.to_string(),
                )?;
                // Where swap accounting exists, memory+swap gets the same limit.
                let _ = std::fs::write(
                    self.dirs[0].join("memory.memsw.limit_in_bytes"),
                    memory_bytes.to_string(),
                );
                std::fs::write(
                    self.dirs[1].join("cpu.cfs_period_us"),
                    PERIOD_US.to_string(),
                )?;
                std::fs::write(self.dirs[1].join("cpu.cfs_quota_us"), quota.to_string())?;
            }
        }
        Ok(())
    }

    /// The files a new process writes `0` to, to join the groups.
    pub fn procs_files(&self) -> Vec<CString> {
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

    /// What the task used; the kernel's OOM counter says whether it was
    /// killed for memory (never guessed from the exit code).
    pub fn usage(&self) -> Usage {
        let read =
            |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        let counter = |text: &str, key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        match &self.hierarchy {
            Hierarchy::V2(_) => {
                let dir = &self.dirs[0];
                Usage {
                    oom_killed: counter(&read(dir, "memory.events"), "oom_kill ") > 0,
                    peak_memory_bytes: read(dir, "memory.peak").trim().parse().ok(),
                    cpu_seconds: Some(counter(&read(dir, "cpu.stat"), "usage_usec ") as f64 / 1e6),
                }
            }
            Hierarchy::V1 { .. } => Usage {
                oom_killed: counter(&read(&self.dirs[0], "memory.oom_control"), "oom_kill ") > 0,
                peak_memory_bytes: read(&self.dirs[0], "memory.max_usage_in_bytes")
                    .trim()
                    .parse()
                    .ok(),
                cpu_seconds: read(&self.dirs[2], "cpuacct.usage")
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .map(|ns| ns as f64 / 1e9),
            },
        }
    }

    /// Removes the groups; their processes are gone by then (the
    /// supervisor waits for the task's process group to be empty).
    pub fn remove(self) {
        for dir in &self.dirs {
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
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
