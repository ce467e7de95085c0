//! What the run's loop waits for: the local supervisor's reports, which the
//! loop's thread reads itself as soon as its pipe is readable (a task's end
//! wakes no other thread on its way), and the rarer events of other threads
//! (signals, merges, Slurm's poller) on a channel, whose messages a bridge
//! thread queues and announces by ringing a bell, so that one `poll` waits
//! for both.

use std::collections::VecDeque;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Incoming;
use crate::executor::Executor;
use crate::sys::lock;
use crate::sys::poll::{self, Bell};

pub struct Inbox {
    /// Read but not handled yet, oldest first.
    pending: VecDeque<Incoming>,
    /// What the bridge thread queued from the channel.
    queued: Arc<Mutex<VecDeque<Incoming>>>,
    bell: Arc<Bell>,
}

impl Inbox {
    /// The inbox of the events other threads send on `rx`'s channel.
    pub fn new(rx: Receiver<Incoming>) -> Result<Inbox> {
        let bell = Arc::new(Bell::new().context("cannot make the run's wake-up pipe")?);
        let queued = Arc::new(Mutex::new(VecDeque::new()));
        let (to_queue, to_ring) = (queued.clone(), bell.clone());
        // Ends with the process: the run keeps a sender for its whole life.
        // Started after the signals are blocked (`signals::forward_to`).
        crate::sys::spawn_thread("the run's events", move || {
            for event in rx {
                lock(&to_queue).push_back(event);
                to_ring.ring();
            }
        })?;
        Ok(Inbox {
            pending: VecDeque::new(),
            queued,
            bell,
        })
    }

    /// The next event, waiting for at most `limit` (`None`: as long as it
    /// takes); `None` when the time is up.
    pub fn next(
        &mut self,
        mut executor: Option<&mut Executor>,
        limit: Option<Duration>,
    ) -> Option<Incoming> {
        let deadline = limit.map(|limit| Instant::now() + limit);
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            // Silenced before the queue is looked at: an event queued after
            // the look rings again, and ends the wait below.
            self.bell.clear();
            self.pending.extend(lock(&self.queued).drain(..));
            if let Some(executor) = executor.as_deref_mut() {
                let reports = executor.read_events().into_iter();
                self.pending.extend(reports.map(Incoming::Executor));
            }
            if !self.pending.is_empty() {
                continue;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return None;
            }
            let reports = executor.as_deref().and_then(Executor::reports_fd);
            let fds: Vec<_> = [Some(self.bell.fd()), reports]
                .into_iter()
                .flatten()
                .collect();
            poll::wait_readable(&fds, left);
        }
    }
}
