//! Tasks recorded as running whose process is gone, as the run will find
//! them: their work left in the merge queue, lost (the task and its
//! supervisor gone, no end recorded: a failure, retried if a retry is
//! owed, else blocking what depends on it), or ended some other way the
//! run reads from their exit record.

use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::run::history::Past;
use crate::run::load::Disk;
use crate::run::readiness::{Readiness, Walk};
use crate::run::recovery::{self, Ended, Found};
use crate::run::verdict;
use crate::state::status;

/// How a run will find a task whose process is gone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gone {
    /// Its work waits in the merge queue: the run merges it.
    Merging,
    /// Its end is recorded (or it runs on, or runs on Slurm): the run
    /// reads how it ended.
    Recorded,
    /// Recorded running, it never started: the run starts it.
    NeverStarted,
    /// It and its supervisor are gone with no end recorded: the run
    /// records it lost, and tries it again (`retried`) or blocks what
    /// depends on it.
    Lost { retried: bool },
    /// The same, from a run killed as it stopped its tasks: interrupted,
    /// tried again.
    Interrupted,
}

/// How the next run will find task `t`, recorded running with its
/// process gone (`merging`: its work left in the merge queue), `tries`
/// of it started in the run its status is of (0 if that run is over),
/// `stopping` when that run was killed as it stopped its tasks.
pub fn judge(
    layout: &Layout,
    graph: &Graph,
    t: usize,
    merging: bool,
    tries: u32,
    stopping: bool,
) -> Gone {
    if merging {
        return Gone::Merging;
    }
    let id = &graph.tasks[t].id;
    let Some(status) = status::read(layout, id).ok().flatten() else {
        return Gone::Recorded;
    };
    // A Slurm job: the run asks Slurm.
    if recovery::submitted_job(layout, id, &status).is_some() {
        return Gone::Recorded;
    }
    // As the run assesses it (`Run::recover`), nothing killed.
    let mut active = match recovery::assess(layout, id, &status, None, false) {
        Found::NeverStarted => return Gone::NeverStarted,
        Found::Adopt(active) => active,
    };
    if recovery::how_adopted_ended(layout, id, &mut active) != Some(Ended::Unseen) {
        return Gone::Recorded;
    }
    match stopping {
        true => Gone::Interrupted,
        // The run that adopts it counts it as one of its tries.
        false => Gone::Lost {
            retried: tries.max(1) <= graph.tasks[t].retries,
        },
    }
}

/// Plans each of `gone` as the run will find it: a lost task failed
/// (blocking what depends on it) or waiting to be tried again, if the run
/// selects it (`selected`).
pub fn plan(
    graph: &Graph,
    readiness: &mut Readiness,
    history: &mut [Past],
    gone: &[(usize, Gone)],
    files: &Disk,
    selected: &dyn Fn(usize) -> bool,
) {
    let mut walked = std::collections::HashSet::new();
    for &(t, how) in gone {
        match how {
            Gone::Lost { retried: false } => {
                history[t].error = Some(verdict::LOST.to_owned());
                readiness.fail(graph, t);
                readiness.block_downstream(graph, t, Walk::OnStart(&mut walked));
            }
            // Outside the run's selection: left for a run that selects it.
            Gone::Lost { retried: true } | Gone::Interrupted | Gone::NeverStarted => {
                readiness.reopen(graph, t, selected(t), files)
            }
            Gone::Merging | Gone::Recorded => {}
        }
    }
}

/// What the plan says of task `id`, found `how`.
pub fn line(id: &str, how: Gone) -> String {
    match how {
        Gone::Merging => format!("  {id}: its work is left in the merge queue: the run merges it"),
        Gone::Recorded => format!("  {id}: its process is gone: the run records how it ended (and retries it, if it failed and a retry is owed)"),
        Gone::Lost { retried: true } => format!("  {id}: lost (it and its supervisor are gone, no end recorded): the run records it failed and tries it again"),
        Gone::Lost { retried: false } => format!("  {id}: lost (it and its supervisor are gone, no end recorded): the run records it failed, its retries spent, and blocks what depends on it"),
        Gone::NeverStarted => format!("  {id}: recorded running, it never started: the run starts it"),
        Gone::Interrupted => format!("  {id}: its process and supervisor are gone, stopped by the run that was killed: the run tries it again"),
    }
}
