//! The order tasks start in, made again during the run: when tasks are
//! added, when a failure blocks a chain, and when what completed says that its phase's tasks nothing is
//! known of take far longer or shorter than the order expected
//! (`Order::learn`). On a graph's first run, every task is expected to take
//! a second until some complete: a phase of hour-long agents and one of
//! minute-long checks were ordered as equals all run long.

use std::time::{Duration, Instant};

use super::Run;
use crate::run::history;
use crate::run::order::{self, Order};
use crate::run::readiness::Node;

/// The share of the run's time ordering again may take, at most: on
/// 100,000 tasks it takes tens of milliseconds.
const ORDERING_AT_MOST: u32 = 50; // one fiftieth

impl Run<'_> {
    /// Orders the tasks from what is known of them now.
    pub(super) fn order_tasks(&mut self) {
        let began = Instant::now();
        let readiness = &self.readiness;
        let known = history::known_seconds(&self.graph, readiness, &self.history, &self.durations);
        self.order = Order::new(&self.graph, known, |t| weighs_nothing(readiness.node(t)));
        self.readiness.set_order(self.order.rank.clone());
        self.ordered = Ordered {
            at: Instant::now(),
            took: began.elapsed(),
            out_of_date: false,
        };
    }

    /// Task `t` completed in `seconds`: the order is made again, if that
    /// makes it out of date, before the next task starts (or once the time
    /// allows, `ORDERING_AT_MOST`). What an earlier run kept of it is what
    /// the order counted it at (it had not completed in this run).
    pub(super) fn learn_duration(&mut self, t: usize, seconds: f64) {
        let kept = order::kept(&self.graph, &self.durations)(t);
        if self.order.learn(self.graph.phase_of[t], kept, seconds) {
            self.ordered.out_of_date = true;
        }
    }

    /// A task failed for good, blocking what depends on it: what led to
    /// those weighs less now, and the order is made again.
    pub(super) fn chain_dropped(&mut self) {
        self.ordered.out_of_date = true;
    }

    /// Orders the tasks again if the order is out of date and the time
    /// allows.
    pub(super) fn reorder_if_due(&mut self) {
        if self.ordered.out_of_date
            && self.ordered.at.elapsed() >= self.ordered.took * ORDERING_AT_MOST
        {
            self.order_tasks();
        }
    }
}

/// Whether a task in state `node` weighs nothing in the order (and lends
/// no priority): it is done, or failed or blocked for good, or outside
/// what the run selects (`--phase`, `--task`): nothing of it is to run.
pub fn weighs_nothing(node: Node) -> bool {
    matches!(
        node,
        Node::Completed | Node::Failed | Node::Blocked | Node::Unselected
    )
}

/// When the order was last made, how long that took, and whether it is
/// out of date.
pub(super) struct Ordered {
    at: Instant,
    took: Duration,
    out_of_date: bool,
}

impl Ordered {
    pub(super) fn new() -> Ordered {
        Ordered {
            at: Instant::now(),
            took: Duration::ZERO,
            out_of_date: false,
        }
    }
}
