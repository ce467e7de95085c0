//! Ctrl-C, SIGTERM and SIGHUP become events of the run loop instead of
//! killing the orchestrator mid-write: they are blocked in every thread and
//! received by one thread with `sigwait`.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

const HANDLED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Sends `make(signal)` on `tx` for each of these signals received from now
/// on (but one within `SAME_REQUEST` of the last, the same request), after
/// calling `heard` in the thread that hears it (for what cannot
/// wait until the receiver looks). Call before starting other threads,
/// which inherit the blocked mask.
/// Child processes inherit it too: the supervisor undoes it (`unblock`).
pub fn forward_to<E: Send + 'static>(
    tx: Sender<E>,
    make: fn(i32) -> E,
    heard: fn(),
) -> anyhow::Result<()> {
    let set = handled_set();
    // SAFETY: `set` is a valid signal set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let mut last: Option<Instant> = None;
    super::spawn_thread("signals", move || loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` is a valid signal set and `signal` a valid out-pointer.
        if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
            continue;
        }
        if last.is_some_and(|at| at.elapsed() < SAME_REQUEST) {
            continue;
        }
        last = Some(Instant::now());
        LATEST.store(signal, Ordering::Relaxed);
        heard();
        if tx.send(make(signal)).is_err() {
            return;
        }
    })
    .map(drop)
}

/// How soon after one signal another is the same request to stop, not a
/// second one (which kills every task at once): GNU `timeout` sends its
/// SIGTERM to the child and again to its process group, microseconds
/// apart. A person's quick double press can come within it too: the
/// tasks then get their grace, and a third press kills them.
const SAME_REQUEST: Duration = Duration::from_millis(250);

/// Gives a program the orchestrator starts these signals back: a child
/// can inherit the blocked mask (std's spawn clears it only on its
/// `posix_spawn` path, which a `pre_exec` such as git's rules out), and
/// then git could not clean up when told to stop, nor a notifier's command
/// stop what it started (tested).
pub fn unblocked_in(command: &mut Command) -> &mut Command {
    // SAFETY: pthread_sigmask, sigemptyset and sigaddset are
    // async-signal-safe; `unblock` allocates nothing.
    unsafe {
        command.pre_exec(|| {
            unblock();
            Ok(())
        })
    }
}

/// Receives these signals normally again; a process started by the
/// orchestrator inherits its blocked mask.
pub fn unblock() {
    let set = handled_set();
    // SAFETY: `set` is a valid signal set.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
}

/// How many of these signals the process received since `count_received`,
/// and the latest (also by `forward_to`).
static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static LATEST: AtomicI32 = AtomicI32::new(0);

extern "C" fn count(signal: libc::c_int) {
    LATEST.store(signal, Ordering::Relaxed);
    RECEIVED.fetch_add(1, Ordering::Relaxed);
}

/// These signals are counted (`received`) instead of ending the process,
/// which reads the count when it can act on it. Unlike `forward_to`, no
/// signal is blocked: a child started by `fork` inherits a blocked mask,
/// never a handler (`exec` sets handlers back to their default).
pub fn count_received() {
    for signal in handled() {
        // SAFETY: `count` only adds to an atomic, which is
        // async-signal-safe.
        unsafe { libc::signal(signal, count as *const () as libc::sighandler_t) };
    }
}

/// The latest of these signals received, either way (0: none).
pub fn latest() -> i32 {
    LATEST.load(Ordering::Relaxed)
}

/// How many of these signals came (see `count_received`), and the latest.
pub fn received() -> (usize, i32) {
    (
        RECEIVED.load(Ordering::Relaxed),
        LATEST.load(Ordering::Relaxed),
    )
}

/// Blocks SIGPIPE in the calling thread alone: a write of its to a pipe
/// whose reader is gone fails (EPIPE), and the SIGPIPE it raises, sent to
/// this thread, is dropped when the thread ends, rather than end a command
/// that takes SIGPIPE as a view does (`default_sigpipe`).
pub fn block_sigpipe_in_this_thread() {
    // SAFETY: the set is initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// SIGPIPE ends the process again (Rust starts with it ignored, which
/// makes a write to a closed pipe an error instead).
pub fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to its default is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// The signals handled, less those the process was started with ignored:
/// `nohup` ignores SIGHUP, and a shell ignores SIGINT in a job it starts
/// in the background, so that the run outlives its terminal. Linux queues
/// a blocked signal even when it is ignored, for `sigwait` to take: left
/// in the set, a hang-up would stop the run all the same.
fn handled() -> impl Iterator<Item = libc::c_int> {
    HANDLED.into_iter().filter(|&signal| !ignored(signal))
}

fn handled_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in handled() {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Whether `signal` is ignored (`SIG_IGN`), as a process inherits it.
/// Async-signal-safe (`unblock` runs it between fork and exec).
fn ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one
    // into `old`, plain data.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}
