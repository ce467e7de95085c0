//! One orchestrator per workspace: an OS lock (`flock`) on
//! `workspace/.lock`. The kernel drops it when its holder dies, however it
//! dies, so a stale lock never blocks anyone and there is no `--unlock`.
//!
//! A holder killed leaves its git commands dying (they are sent SIGTERM)
//! and what they started running on (`worktree add`'s own `reset --hard`,
//! hooks): they would go on writing the repository beside the next
//! holder, one removing a worktree the next one was making. So every git
//! command a holder starts holds a second lock, `workspace/.lock-git`,
//! with it (an inherited descriptor: the kernel drops it when the last of
//! them ends), and the next holder waits for that lock before its first
//! git (a holder that runs none, `block`, `approve`, never waits).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::model::layout::Layout;

/// How long `acquire` waits for a lock held by another process.
const PATIENCE: Duration = Duration::from_secs(2);

/// Held for as long as it lives.
pub struct WorkspaceLock {
    _file: File,
    /// The root folder's lock, held with it (`root_locked`).
    _root: Option<File>,
}

/// A holder that ends in order has waited for each of its gits: what
/// still holds their lock then (a daemon a hook started, a `gc --auto`
/// in the background) is no git of a run cut short, and the next holder
/// does not wait for it. The lock file goes first: the next holder makes
/// it anew.
impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        if let (Some(path), Some(Some(_))) = (GITS_FILE.get(), GITS.get()) {
            let _ = std::fs::remove_file(path);
        }
    }
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
            // Its run is over: it starts and decides nothing more.
            _ if closing(layout, &holder) => bail!(
                "the last run (pid {holder}) on {} has ended and waits for its notifiers (each its timeout at most): run again once it is done, or stop it (`kill {holder}`: what they have not told is dropped)",
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
/// for a moment, nor a run that has ended and only waits for its
/// notifiers (it runs and takes up nothing more: what is left is the
/// next run's).
pub fn run_going_on(layout: &Layout) -> Option<String> {
    holder(layout)
        .filter(|pid| runs_tasks(pid))
        .filter(|pid| !closing(layout, pid))
}

/// Whether the run of the orchestrator `pid` has ended (`run.json`:
/// finished, ended by it) and it only waits for its notifiers.
fn closing(layout: &Layout, pid: &str) -> bool {
    crate::state::runs::last(layout).is_some_and(|run| {
        run.finished && run.ended_by.is_some_and(|by| pid.trim() == by.to_string())
    })
}

/// Whether a run going on starts tasks: an `orchestrate` or a `launch`,
/// not a `monitor`.
pub fn run_starting_tasks(layout: &Layout) -> bool {
    run_going_on(layout)
        .and_then(|pid| command_of(&pid))
        .is_some_and(|command| command != "monitor")
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
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = (cmdline.split(|&b| b == 0).skip(1))
        .map(|arg| std::str::from_utf8(arg).unwrap_or_default());
    command_in(args)
}

/// The commands that take the workspace's lock.
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

/// The command of a command line's arguments (after the program's name):
/// the first of the commands that take the lock, but for `--root`'s value
/// (a folder may be named `monitor`).
fn command_in<'a>(mut args: impl Iterator<Item = &'a str>) -> Option<String> {
    while let Some(arg) = args.next() {
        match arg {
            "--root" => {
                args.next();
            }
            _ if COMMANDS.contains(&arg) => return Some(arg.to_owned()),
            _ => {}
        }
    }
    None
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
    if !locked(&file) {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Ok(Held::By(holder.trim().to_owned()));
    }
    // Ours, unless the file was removed under a run that still holds it
    // (taken for a stale lock file): two runs would start the same tasks.
    let root = root_locked(layout);
    if !root.as_ref().is_some_and(|(_, alone)| *alone) {
        if let Some(pid) = holder_of_a_removed_lock(layout, &flock_lines()) {
            return Ok(Held::By(pid));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .with_context(|| format!("cannot write {path}"))?;
    writeln!(file, "{}", std::process::id()).with_context(|| format!("cannot write {path}"))?;
    // A process holds the workspace lock once.
    let _ = GITS_FILE.set(layout.gits_lock_file());
    Ok(Held::Ours(WorkspaceLock {
        _file: file,
        _root: root.map(|(folder, _)| folder),
    }))
}

/// The root folder, read-locked, and whether no other process has it
/// read-locked: every holder of the workspace's lock takes this one after
/// it, and no removal of `workspace/.lock` (or of `workspace/`) takes it
/// from a run. Alone, no run holds a removed lock file, and the kernel's
/// list of locks need not be read: reading `/proc/locks` makes the kernel
/// wait for a grace period, 10 ms or more, which every command taking the
/// lock paid. Not alone (such a run, or two holders a moment apart), or a
/// folder that cannot be locked (some network file systems): the list is
/// read. A lock of `fcntl`'s kind, shared, not a `flock`: a `flock` of the
/// folder (a script's `flock . cargo xtask orchestrate`, a task's `flock
/// .`) neither waits for it nor stands in its way. Taken before it is
/// looked for, so that two holders at once each see the other.
fn root_locked(layout: &Layout) -> Option<(File, bool)> {
    let root = File::open(&layout.root).ok()?;
    folder_lock(&root, libc::F_OFD_SETLK, libc::F_RDLCK)?;
    let other = folder_lock(&root, libc::F_OFD_GETLK, libc::F_WRLCK)?;
    Some((root, other.l_type == libc::F_UNLCK as libc::c_short))
}

/// `fcntl`'s `command` for a lock of `kind` on the whole of `folder`, held
/// by its open file description (released when the last descriptor to it
/// closes, as a `flock` is, not by any close of the process): the lock
/// as the kernel left it, or none when it refused.
fn folder_lock(folder: &File, command: libc::c_int, kind: libc::c_int) -> Option<libc::flock> {
    // SAFETY: a zeroed `flock` is valid (the whole file, from its start,
    // no pid, as an open file description's lock must have).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: the fd is open, and `lock` lives through the call.
    let done = unsafe { libc::fcntl(folder.as_raw_fd(), command, &mut lock) } == 0;
    done.then_some(lock)
}

/// The gits' lock file of the workspace whose lock this process holds.
static GITS_FILE: OnceLock<Utf8PathBuf> = OnceLock::new();

/// The lock the git commands of this process hold (see above): taken
/// before its first git, none when it could not be.
static GITS: OnceLock<Option<File>> = OnceLock::new();

/// How long a new holder waits for the git commands of an earlier one:
/// a slow hook (an install in `post-checkout`) may take that long; a
/// daemon a hook started, holding the lock for good, must not stop every
/// later run.
const GITS_PATIENCE: Duration = Duration::from_secs(60);

/// The descriptor a git command started now is to inherit, if any: in a
/// holder of the workspace lock, the first call waits for the gits of an
/// earlier holder (every other git waits with it).
pub fn held_by_gits() -> Option<RawFd> {
    let path = GITS_FILE.get()?;
    let file = GITS.get_or_init(|| {
        wait_for_earlier_gits(path).unwrap_or_else(|e| {
            eprintln!("warning: {e:#}: git commands run without waiting for an earlier run's");
            None
        })
    });
    file.as_ref().map(AsRawFd::as_raw_fd)
}

/// Waits until no git command of an earlier holder of the workspace lock
/// runs (up to `GITS_PATIENCE`, saying so after a second), then takes
/// their lock, `path`, for this process's.
fn wait_for_earlier_gits(path: &Utf8Path) -> Result<Option<File>> {
    let mut file = open_gits_lock(path)?;
    let start = Instant::now();
    let mut said = false;
    while !locked(&file) {
        if start.elapsed() >= GITS_PATIENCE {
            let holder = std::fs::canonicalize(path)
                .ok()
                .and_then(|real| crate::sys::process::other_holder(&real))
                .map_or(String::new(), |pid| format!(" (pid {pid})"));
            eprintln!("warning: {path} is still held after {}s: a process an earlier run's git started{holder} keeps it open (a hook's daemon?); going on without waiting for it", GITS_PATIENCE.as_secs());
            // Made anew, for this run's gits.
            std::fs::remove_file(path).with_context(|| format!("cannot remove {path}"))?;
            file = open_gits_lock(path)?;
            return Ok(locked(&file).then_some(file));
        }
        if !said && start.elapsed() >= Duration::from_secs(1) {
            said = true;
            eprintln!("waiting for the git commands of an earlier run to end: they hold {path}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Some(file))
}

fn open_gits_lock(path: &Utf8Path) -> Result<File> {
    File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open {path}"))
}

/// Whether `file` is now locked by this process (never waits).
fn locked(file: &File) -> bool {
    // SAFETY: flock has no memory-safety preconditions; the fd is open.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
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

#[cfg(test)]
mod tests {
    use super::command_in;

    #[test]
    fn a_root_folder_named_as_a_command_is_not_the_command() {
        let of = |line: &str| command_in(line.split(' '));
        assert_eq!(
            of("--root monitor orchestrate -j 2").as_deref(),
            Some("orchestrate")
        );
        assert_eq!(
            of("orchestrate --root monitor").as_deref(),
            Some("orchestrate")
        );
        assert_eq!(of("monitor").as_deref(), Some("monitor"));
        assert_eq!(of("--root=x why"), None);
    }
}
