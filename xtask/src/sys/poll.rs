//! Waiting on file descriptors: `poll` with a timeout, reads that never
//! block, and a bell (a pipe) that another thread rings to end a wait.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Makes reads of `fd` return at once (`WouldBlock`) when nothing is there.
pub fn set_nonblocking(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns; no memory involved.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until one of `fds` can be read (or is closed), for at most
/// `limit` (`None`: as long as it takes).
pub fn wait_readable(fds: &[RawFd], limit: Option<Duration>) {
    let fds: Vec<_> = fds.iter().map(|&fd| (fd, libc::POLLIN)).collect();
    wait(&fds, limit);
}

/// Waits until one of `fds` is ready for its events (`POLLIN`,
/// `POLLOUT`), or closed, for at most `limit` (`None`: as long as it takes).
pub fn wait(fds: &[(RawFd, libc::c_short)], limit: Option<Duration>) {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    // Rounded up: a wait cut short would only come back to wait again.
    let timeout = limit.map_or(-1, |l| {
        i32::try_from(l.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    });
    // SAFETY: `polled` is a valid array of `polled.len()` pollfds. An
    // interrupted or failed wait just returns: the caller looks again.
    unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, timeout) };
}

/// A pipe that ends a `wait_readable` on its `fd` from another thread.
pub struct Bell {
    read: OwnedFd,
    write: OwnedFd,
}

impl Bell {
    pub fn new() -> std::io::Result<Bell> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`, which we own from then on.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just made, and nothing else owns them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Bell { read, write })
    }

    /// What to wait on.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Ends the current or next wait. A full pipe rings already.
    pub fn ring(&self) {
        // SAFETY: writes one byte from a valid buffer to a descriptor we own.
        unsafe { libc::write(self.write.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }

    /// Silences it, before looking at what it rang for.
    pub fn clear(&self) {
        let mut buffer = [0u8; 64];
        // SAFETY: reads into a valid buffer of its length; the read end does not block.
        while unsafe {
            libc::read(
                self.read.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        } > 0
        {}
    }
}

/// A descriptor that becomes readable when a file is written (inotify).
pub struct Written(OwnedFd);

impl Written {
    /// Watches the file at `path`; `None` where the kernel gives no watch
    /// (the per-user limit of inotify instances or watches reached): the
    /// caller looks every so often.
    pub fn watch(path: &camino::Utf8Path) -> Option<Written> {
        let path = std::ffi::CString::new(path.as_str()).ok()?;
        // SAFETY: inotify_init1 takes flags and returns a new descriptor
        // (owned from then on) or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return None;
        }
        // SAFETY: a descriptor just made, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a valid descriptor and a NUL-terminated path.
        let watched =
            unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
        (watched >= 0).then_some(Written(fd))
    }

    /// What to wait on.
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Reads the events that came, before looking at the file.
    pub fn clear(&self) {
        let mut buffer = [0u8; 4096];
        // SAFETY: reads into a valid buffer of its length; the descriptor does not block.
        while unsafe { libc::read(self.fd(), buffer.as_mut_ptr().cast(), buffer.len()) } > 0 {}
    }
}
