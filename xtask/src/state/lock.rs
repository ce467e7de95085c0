//! One orchestrator per workspace: an OS lock (`flock`) on
//! `workspace/.lock`. The kernel drops it when its holder dies, however it
//! dies, so a stale lock never blocks anyone and there is no `--unlock`.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::model::layout::Layout;

/// How long `acquire` waits for a lock held by another process.
const PATIENCE: Duration = Duration::from_secs(2);

/// Held for as long as it lives.
pub struct WorkspaceLock {
    _file: File,
}

/// The lock; a command that holds it for a moment (`approve`, `reset`) is
/// waited for, up to `PATIENCE`.
pub fn acquire(layout: &Layout) -> Result<WorkspaceLock> {
    let deadline = Instant::now() + PATIENCE;
    let mut held = try_acquire(layout)?;
    while matches!(held, Held::By(_)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        held = try_acquire(layout)?;
    }
    match held {
        Held::Ours(lock) => Ok(lock),
        Held::By(holder) if holder.is_empty() => bail!(
            "another orchestrator is running on {}: wait for it to finish",
            layout.workspace
        ),
        Held::By(holder) => match command_of(&holder) {
            Some(command) if !runs_tasks(&holder) => bail!(
                "`{command}` (pid {holder}) holds the workspace {}: wait for it to finish, or stop it (`kill {holder}`)",
                layout.workspace
            ),
            _ => bail!(
                "another orchestrator (pid {holder}) is running on {}: wait for it to finish, or stop it (`kill {holder}`)",
                layout.workspace
            ),
        },
    }
}

/// The run going on (an `orchestrate`, `launch` or `monitor` holds the
/// lock), by its pid as it wrote it: not a command that holds the lock
/// for a moment.
pub fn run_going_on(layout: &Layout) -> Option<String> {
    holder(layout).filter(|pid| runs_tasks(pid))
}

/// ` (pid N)`, as messages name a holder (nothing when it wrote no pid).
pub fn shown_pid(pid: &str) -> String {
    match pid.is_empty() {
        true => String::new(),
        false => format!(" (pid {pid})"),
    }
}

/// The cargo xtask command process `pid` runs (`approve`, `orchestrate`),
/// from its command line.
pub fn command_of(pid: &str) -> Option<String> {
    const COMMANDS: [&str; 8] = [
        "orchestrate",
        "launch",
        "monitor",
        "approve",
        "reject",
        "reset",
        "block",
        "clean",
    ];
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    cmdline
        .split(|&b| b == 0)
        .filter_map(|arg| std::str::from_utf8(arg).ok())
        .find(|arg| COMMANDS.contains(arg))
        .map(str::to_owned)
}

/// Whether the holder of the lock, process `pid`, is a run (it starts or
/// follows tasks, and takes up decisions): not a command that holds the
/// lock for a moment (`approve`, `reset`). A process whose command line
/// cannot be read is taken for one.
pub fn runs_tasks(pid: &str) -> bool {
    command_of(pid).is_none_or(|c| matches!(c.as_str(), "orchestrate" | "launch" | "monitor"))
}

/// The lock, or the run that holds it: a command that holds it for a
/// moment (another `approve`) is waited for, up to `PATIENCE`, as
/// `acquire` waits.
pub fn acquire_unless_a_run(layout: &Layout) -> Result<Held> {
    let deadline = Instant::now() + PATIENCE;
    let mut held = try_acquire(layout)?;
    while matches!(&held, Held::By(h) if !runs_tasks(h)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        held = try_acquire(layout)?;
    }
    Ok(held)
}

/// Who holds the lock after trying for it.
pub enum Held {
    Ours(WorkspaceLock),
    /// Another process, by its pid as it wrote it (empty if it did not).
    By(String),
}

/// The lock, or who holds it.
pub fn try_acquire(layout: &Layout) -> Result<Held> {
    let path = layout.lock_file();
    std::fs::create_dir_all(&layout.workspace)
        .with_context(|| format!("cannot create {}", layout.workspace))?;
    // Opened with O_CLOEXEC (as std opens every file): task processes do not
    // inherit the lock, so it dies with the orchestrator, not with its tasks.
    let opened = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path);
    let mut file = match opened {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "cannot open {path}: {e}: the workspace's files are another user's, as a run with sudo leaves them: make them yours (`sudo chown -R \"$USER\" {}`)",
            crate::sys::shell::shell_word(layout.workspace.as_str())
        ),
        opened => opened.with_context(|| format!("cannot open {path}"))?,
    };
    // SAFETY: flock has no memory-safety preconditions; the fd is open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Ok(Held::By(holder.trim().to_owned()));
    }
    // Ours, unless the file was removed under a run that still holds it
    // (taken for a stale lock file): two runs would start the same tasks.
    if let Some(pid) = holder_of_a_removed_lock(layout, &flock_lines()) {
        return Ok(Held::By(pid));
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .with_context(|| format!("cannot write {path}"))?;
    writeln!(file, "{}", std::process::id()).with_context(|| format!("cannot write {path}"))?;
    Ok(Held::Ours(WorkspaceLock { _file: file }))
}

/// Who holds the lock now (the pid it wrote, maybe empty), if anyone: for
/// a view that says a run is going on. Read from the kernel's list of
/// locks (`/proc/locks`, by the file's inode), never by taking the lock: a probe holding it even for a moment would make an `approve` at
/// that moment take the probe for a running orchestrator.
pub fn holder(layout: &Layout) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let path = layout.lock_file();
    // By inode only: the device there is the file system's, which is not
    // what `stat` says on btrfs (a subvolume has a device of its own).
    let locks = flock_lines();
    let Ok(metadata) = std::fs::metadata(&path) else {
        return holder_of_a_removed_lock(layout, &locks);
    };
    let inode = format!(":{}", metadata.ino());
    let held = locks
        .iter()
        .any(|line| line.split_whitespace().any(|f| f.ends_with(&inode)));
    match held {
        true => Some(
            std::fs::read_to_string(&path)
                .unwrap_or_default()
                .trim()
                .to_owned(),
        ),
        false => holder_of_a_removed_lock(layout, &locks),
    }
}

/// The `flock` locks of the system, one line each, from `/proc/locks`.
fn flock_lines() -> Vec<String> {
    let locks = read_in_large_pieces("/proc/locks").unwrap_or_default();
    locks
        .lines()
        .filter(|line| line.contains(" FLOCK "))
        .map(str::to_owned)
        .collect()
}

/// A file of `/proc` read with reads of 64 KiB. The kernel lists the locks
/// a page at most per read, under its lock, and takes up the next read at
/// the same count of lines: a lock released between two reads shifts the
/// list and the line after it goes unseen. `read_to_string`'s first reads
/// of 32 bytes made that a window per line (a run going on taken for none
/// while other processes took and released locks); now there is none
/// unless the list is longer than a page.
fn read_in_large_pieces(path: &str) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut bytes = Vec::new();
    let mut piece = vec![0; 64 * 1024];
    loop {
        match file.read(&mut piece)? {
            0 => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
            n => bytes.extend_from_slice(&piece[..n]),
        }
    }
}

/// The pid of a process that holds a lock on this workspace's lock file
/// after the file was removed (its descriptor links to `<path> (deleted)`),
/// of those whose descriptors we may read; `locks` are the system's
/// (`flock_lines`).
fn holder_of_a_removed_lock(layout: &Layout, locks: &[String]) -> Option<String> {
    let path = layout.lock_file();
    let workspace = std::fs::canonicalize(&layout.workspace).ok()?;
    let removed = format!("{} (deleted)", workspace.join(path.file_name()?).display());
    // The pid is the fifth field: `1: FLOCK ADVISORY WRITE 123 08:01:456 0 EOF`.
    let pids = locks
        .iter()
        .filter_map(|line| line.split_whitespace().nth(4)?.parse().ok());
    crate::sys::process::holding(std::path::Path::new(&removed), pids).map(|pid| pid.to_string())
}
