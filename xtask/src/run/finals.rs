//! Final statuses decided but not written yet. A task's end is decided in
//! memory and its dependents are started first; its final status is written
//! right after, and only then is its exit record let go (until the status is
//! on disk, the record is what a crash would recover the end from).

use anyhow::Result;
use camino::Utf8PathBuf;

use crate::executor::Executor;
use crate::model::config::Config;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::run::running::Running;
use crate::state::status::{self, State, Status};
use crate::state::{fingerprint, records};

/// Where a task's exit record came from: what is left to do once its final
/// status is written.
pub enum RecordFrom {
    /// The executor, which keeps it until told the status is written.
    Executor,
    /// `workspace/pids/`, whose files are then removed.
    Disk,
    /// Nowhere: the orchestrator made it (the task could not start).
    Nowhere,
}

#[derive(Default)]
pub struct Finals {
    unwritten: Vec<(usize, Status, RecordFrom)>,
    /// The file that holds the running status the last final one replaced:
    /// the next final status is written in it (`status::write_over`).
    spare: Option<Utf8PathBuf>,
}

impl Finals {
    /// Task `t` ended with `status`, its record from `from`.
    pub fn push(&mut self, t: usize, status: Status, from: RecordFrom) {
        self.unwritten.push((t, status, from));
    }

    /// Task `t`'s final status, when it is decided but not written yet.
    pub fn unwritten(&self, t: usize) -> Option<&Status> {
        (self.unwritten.iter().rev())
            .find(|(u, _, _)| *u == t)
            .map(|(_, status, _)| status)
    }

    /// Writes them, then lets go of their records. A status that cannot be
    /// written is kept (with its record) for a later try, the others
    /// written; the first error is returned.
    pub fn write(
        &mut self,
        layout: &Layout,
        config: &Config,
        mut executor: Option<&mut Executor>,
        running: &Running,
        graph: &Graph,
    ) -> Result<()> {
        let mut first_error = None;
        // A status that cannot be written (a folder put where it goes)
        // holds back no other task's; a later status of its own task waits
        // behind it, never written before it.
        let mut held: Vec<usize> = Vec::new();
        for (t, mut status, from) in std::mem::take(&mut self.unwritten) {
            if held.contains(&t) {
                self.unwritten.push((t, status, from));
                continue;
            }
            // What the result was built from, to tell later when it is
            // stale: off the path between an end and the next start.
            let built = matches!(status.status, State::Completed | State::AwaitingApproval);
            if built && status.fingerprint.is_none() {
                status.fingerprint = Some(fingerprint::of_task(layout, config, graph, t));
            }
            // A retry that started meanwhile has written a newer status.
            if !running.contains(t) {
                match status::write_over(layout, &status, self.spare.take()) {
                    Ok(replaced) => self.spare = replaced,
                    Err(e) => {
                        held.push(t);
                        self.unwritten.push((t, status, from));
                        first_error.get_or_insert(e);
                        continue;
                    }
                }
            }
            let id = &status.task_id;
            match from {
                RecordFrom::Executor => {
                    if let Some(executor) = &mut executor {
                        executor.written(id, status.attempt);
                    }
                }
                RecordFrom::Disk => {
                    if let Err(e) = records::remove(layout, id) {
                        first_error.get_or_insert(e);
                    }
                }
                RecordFrom::Nowhere => {}
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
