//! Thin wrappers over the operating system: process groups, signals,
//! what children's environment leaves out, waiting on file descriptors,
//! quoting for the shell, work spread over the CPUs, and a lock that
//! outlives a panic.

use std::sync::{Mutex, MutexGuard};

pub mod env;
pub mod parallel;
pub mod poll;
pub mod process;
pub mod shell;
pub mod signals;

/// Whether `path` names another file than the open `file` now (removed,
/// or replaced by a new one): what follows it reads the new one.
pub fn replaced(path: &camino::Utf8Path, file: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    path.metadata().ok().map(|m| m.ino()) != file.metadata().ok().map(|m| m.ino())
}

/// Starts a thread for `what`, or says why it could not start.
pub fn spawn_thread<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .spawn(f)
        .map_err(|e| anyhow::anyhow!("cannot start a thread for {what}: {e}{}", limit_hint(&e)))
}

/// What to do when a process or thread could not start for want of one
/// (`EAGAIN`): most often the per-user limit of `ulimit -u` (which counts
/// threads, and which root is not held to) was reached.
pub fn limit_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EAGAIN) => {
            ": your processes and threads may be at their limit (`ulimit -u`): raise it, or run fewer tasks at once (`-j`)"
        }
        _ => "",
    }
}

/// What `mutex` guards, even if a thread panicked while it held it: the
/// data (tasks running, events to handle) stays worth going on with.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
