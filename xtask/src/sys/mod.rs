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

/// What `mutex` guards, even if a thread panicked while it held it: the
/// data (tasks running, events to handle) stays worth going on with.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
