//! Ctrl-C, SIGTERM and SIGHUP become events of the run loop instead of
//! killing the orchestrator mid-write: they are blocked in every thread and
//! received by one thread with `sigwait`.

use std::sync::mpsc::Sender;

const HANDLED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Sends `make(signal)` on `tx` for each of these signals received from now
/// on. Call before starting other threads, which inherit the blocked mask
/// (children do not: std resets the mask before exec).
pub fn forward_to<E: Send + 'static>(tx: Sender<E>, make: fn(i32) -> E) {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in HANDLED {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` is a valid signal set and `signal` a valid out-pointer.
        if unsafe { libc::sigwait(&set, &mut signal) } == 0 && tx.send(make(signal)).is_err() {
            return;
        }
    });
}
