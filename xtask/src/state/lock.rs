//! One orchestrator per workspace: an OS lock (`flock`) on
//! `workspace/.lock`. The kernel drops it when its holder dies, however it
//! dies, so a stale lock never blocks anyone and there is no `--unlock`.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;

use anyhow::{bail, Context, Result};

use crate::model::layout::Layout;

/// Held for as long as it lives.
pub struct WorkspaceLock {
    _file: File,
}

pub fn acquire(layout: &Layout) -> Result<WorkspaceLock> {
    let path = layout.lock_file();
    std::fs::create_dir_all(&layout.workspace)
        .with_context(|| format!("cannot create {}", layout.workspace))?;
    // Opened with O_CLOEXEC (as std opens every file): task processes do not
    // inherit the lock, so it dies with the orchestrator, not with its tasks.
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {path}"))?;
    // SAFETY: flock has no memory-safety preconditions; the fd is open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        if holder.is_empty() {
            bail!(
                "another orchestrator is running on {}: wait for it to finish",
                layout.workspace
            );
        }
        bail!(
            "another orchestrator (pid {holder}) is running on {}: wait for it to finish, or stop it (`kill {holder}`)",
            layout.workspace
        );
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .with_context(|| format!("cannot write {path}"))?;
    writeln!(file, "{}", std::process::id()).with_context(|| format!("cannot write {path}"))?;
    Ok(WorkspaceLock { _file: file })
}
