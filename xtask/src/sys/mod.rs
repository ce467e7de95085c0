//! Thin wrappers over the operating system: process groups, signals,
//! what children's environment leaves out, waiting on file descriptors,
//! quoting for the shell, work spread over the CPUs, the walk through a
//! folder's tree, a lock that outlives a panic, and reading a file that
//! must be a regular one.

use std::sync::{Mutex, MutexGuard};

pub mod env;
pub mod parallel;
pub mod poll;
pub mod process;
pub mod shell;
pub mod signals;
pub mod walk;

/// `path` open for reading, without waiting for a writer if it is a FIFO
/// (one put where a workspace file goes, which would hang its reader for
/// good: it reads as empty).
pub fn open_nonblocking(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// The content and metadata of the file at `path`, which must be a
/// regular file: a FIFO would hang the read until someone writes to it,
/// and a device (`/dev/zero`) would fill the memory.
pub fn read_regular_file(path: &camino::Utf8Path) -> std::io::Result<(Vec<u8>, std::fs::Metadata)> {
    use std::io::Read;
    let file = open_nonblocking(path.as_std_path())?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(std::io::Error::other("a folder, not a file: name a file"));
    }
    if !meta.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a FIFO, a socket or a device): make it a file",
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Through `Take`, which gives no size hint: `File::read_to_end` would
    // `stat` the file again and ask its position, for the size known here
    // (two of the seven system calls each task file took).
    file.take(u64::MAX).read_to_end(&mut bytes)?;
    Ok((bytes, meta))
}

/// Whether `path` names another file than the open `file` now (removed,
/// or replaced by a new one): what follows it reads the new one.
pub fn replaced(path: &camino::Utf8Path, file: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    inode_at(path) != file.metadata().ok().map(|m| m.ino())
}

/// The inode of the file `path` names now, if any.
pub fn inode_at(path: &camino::Utf8Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    path.metadata().ok().map(|m| m.ino())
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

/// What is said of a program PATH does not find, with what to do: by the
/// start's check of every task, and by a start that fails on it.
pub const NOT_ON_PATH: &str = "is not on PATH: install it or fix the name";

/// Why the script `program` (a path, or a name looked up on PATH) cannot
/// run when it is there and the interpreter its `#!` line names is not:
/// Linux then says the script itself is missing (`ENOENT`; `sh`: `not
/// found`). Read as Linux reads it: the interpreter ends at a space or a
/// tab, so a line ending in a carriage return (a script saved on Windows)
/// names `/bin/sh\r`, which is no file.
pub fn missing_interpreter_hint(program: &std::path::Path) -> Option<String> {
    let file = match program.components().count() {
        1 if !program.is_absolute() => which::which(program).ok()?,
        _ => program.to_owned(),
    };
    let mut head = [0u8; 256];
    let read = std::io::Read::read(&mut std::fs::File::open(file).ok()?, &mut head).ok()?;
    let line = head[..read].split(|&b| b == b'\n').next()?;
    let rest = std::str::from_utf8(line.strip_prefix(b"#!")?).ok()?;
    let interpreter = rest.split([' ', '\t']).find(|word| !word.is_empty())?;
    if std::path::Path::new(interpreter).exists() {
        return None;
    }
    // Its carriage return written out, which would send the view's
    // cursor back over the line.
    let shown = interpreter.escape_debug();
    Some(match interpreter.strip_suffix('\r') {
        Some(_) => format!("the program is there, but its `#!` line ends in a carriage return (Windows line endings): the interpreter it names, `{shown}`, is not there; save the file with Unix line endings"),
        None => format!("the program is there, but the interpreter its `#!` line names, `{shown}`, is not"),
    })
}

/// What `mutex` guards, even if a thread panicked while it held it: the
/// data (tasks running, events to handle) stays worth going on with.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
