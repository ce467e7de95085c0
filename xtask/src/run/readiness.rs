//! Which tasks may start: each task's state in the run, a counter of the
//! dependencies it still waits for, each phase gate's counter of unfinished
//! member tasks, and the ready tasks of each phase. A task's end touches only
//! its dependents and the gates that include it, never a scan of every task.
//!
//! No I/O here: whether an input or a gate's artifact exists is asked of a
//! `Files` implementation. The run, the dry run, `next`, `why` and `block` all use this one
//! type, so they cannot disagree on what waits for what.

use std::collections::{BTreeSet, HashSet};

use crate::model::graph::{Dep, Graph};

/// How far `block_downstream` walks.
pub enum Walk<'a> {
    /// During a run: up to the tasks blocked already.
    InRun,
    /// At a run's start: on through them too, but through none an earlier
    /// walk of the same start reached (the tasks here).
    OnStart(&'a mut HashSet<usize>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// Not selected by `--phase`/`--task`, and not completed.
    Unselected,
    /// Selected, waiting for dependencies.
    Waiting,
    /// Dependencies done; an input file is missing.
    NeedsInputs,
    Ready,
    Running,
    /// Its process ended well; its work waits in the merge queue.
    Merging,
    Completed,
    Failed,
    Blocked,
    /// Waits for a person's approval: to start (its dependencies are
    /// done), or, completed, before its dependents may count it.
    AwaitingApproval,
}

impl Node {
    /// Waiting for something before it can start.
    pub fn is_waiting(self) -> bool {
        matches!(self, Node::Waiting | Node::NeedsInputs | Node::Ready)
    }
}

/// What readiness asks of the files (the workspace, or a test's stand-in).
pub trait Files {
    /// Whether the input at this path (under `workspace/outputs/`) exists.
    fn input_exists(&self, path: &str) -> bool;
    /// The artifacts phase `p`'s own gate requires (`phases.<key>.requires`,
    /// paths under `workspace/outputs/`) that do not exist.
    fn missing_artifacts(&self, p: usize) -> Vec<String>;
}

#[derive(Debug, Default, Clone)]
pub struct Readiness {
    node: Vec<Node>,
    /// Dependencies (tasks and phase gates) not satisfied yet.
    unmet: Vec<u32>,
    gate_unmet: Vec<u32>,
    gate_open: Vec<bool>,
    /// Ready tasks per phase, in the order they should start (by `rank`).
    ready: Vec<BTreeSet<(u32, usize)>>,
    /// The first of each phase's ready tasks, with its phase, in the same
    /// order: a start looks at the phases whose first ready task comes
    /// early, not at all of them (thousands of phases, a task each).
    firsts: BTreeSet<((u32, usize), usize)>,
    /// Each task's place in the order tasks start in (see `run::order`);
    /// tasks without one (just found) come last, in id order.
    rank: Vec<u32>,
    needs_inputs: BTreeSet<usize>,
    running_in_phase: Vec<usize>,
    blocked_by: Vec<Option<usize>>,
    /// Tasks dropped because their file went (`drop_unstarted`): no gate
    /// waits for them, those of phases found later neither.
    gone: Vec<bool>,
    /// Per phase, its invalid task files that hold its gates
    /// (`hold_gates`).
    held: Vec<u32>,
    /// Planning: an input, or an artifact a gate requires, counts as there
    /// once its producer completed (a task that would run is assumed to
    /// write its outputs).
    assume_produced: bool,
}

impl Readiness {
    /// For a run; `planning` for a dry run or `next`, which assume that the
    /// tasks they plan write their outputs.
    pub fn new(planning: bool) -> Readiness {
        Readiness {
            assume_produced: planning,
            ..Readiness::default()
        }
    }

    pub fn node(&self, t: usize) -> Node {
        self.node[t]
    }

    /// The failed task that `t` is blocked by, when it is blocked.
    pub fn blocked_by(&self, t: usize) -> Option<usize> {
        self.blocked_by[t]
    }

    /// Dependencies of `t` (tasks and phase gates) not satisfied yet.
    pub fn unmet(&self, t: usize) -> u32 {
        self.unmet[t]
    }

    pub fn gate_open(&self, p: usize) -> bool {
        self.gate_open[p]
    }

    /// Whether `t`'s completion, or a file it left, may open a phase gate
    /// that a task waits on: it is the last unfinished member of one, or
    /// such a gate waits only for its artifacts.
    pub fn may_open_a_gate(&self, graph: &Graph, t: usize) -> bool {
        let closed = |p: usize| !self.gate_open[p] && !graph.phases[p].dependents.is_empty();
        graph
            .gates_including(graph.phase_of[t])
            .any(|p| closed(p) && self.gate_unmet[p] == 1)
            || (0..self.gate_open.len()).any(|p| closed(p) && self.gate_unmet[p] == 0)
    }

    /// Tasks of phase `p` and earlier phases not completed yet.
    pub fn gate_unmet(&self, p: usize) -> u32 {
        self.gate_unmet[p]
    }

    pub fn running_in_phase(&self, p: usize) -> usize {
        self.running_in_phase[p]
    }

    /// Phase `p`'s ready tasks, in the order they should start.
    pub fn ready_in_phase(&self, p: usize) -> impl Iterator<Item = usize> + '_ {
        self.ready[p].iter().map(|&(_, t)| t)
    }

    /// Every ready task, phase by phase.
    pub fn all_ready(&self) -> Vec<usize> {
        let ready = self.ready.iter().flat_map(|r| r.iter().map(|&(_, t)| t));
        ready.collect()
    }

    pub fn any_ready(&self) -> bool {
        self.ready.iter().any(|r| !r.is_empty())
    }

    /// Whether no task can start in this run any more, nor make another
    /// ready: each is completed, failed, blocked or not selected (the
    /// resume of a finished run).
    pub fn all_settled(&self) -> bool {
        use Node::*;
        (self.node.iter()).all(|n| matches!(n, Completed | Failed | Blocked | Unselected))
    }

    /// Sets the order ready tasks start in: `rank[t]` is task `t`'s place.
    pub fn set_order(&mut self, rank: Vec<u32>) {
        for ready in &mut self.ready {
            let tasks: Vec<usize> = ready.iter().map(|&(_, t)| t).collect();
            *ready = tasks
                .into_iter()
                .map(|t| (rank.get(t).copied().unwrap_or(u32::MAX), t))
                .collect();
        }
        self.rank = rank;
        self.firsts = (self.ready.iter().enumerate())
            .filter_map(|(p, ready)| Some((*ready.first()?, p)))
            .collect();
    }

    /// The phases with ready tasks, by their first ready task, in the order
    /// tasks start in: `(its place, the task)` and the phase.
    pub fn phases_by_first_ready(&self) -> impl Iterator<Item = ((u32, usize), usize)> + '_ {
        self.firsts.iter().copied()
    }

    /// Task `t` of phase `p` is ready to start.
    fn ready_to_start(&mut self, p: usize, t: usize) {
        let (first, key) = (self.ready[p].first().copied(), (self.rank_of(t), t));
        self.ready[p].insert(key);
        self.first_changed(p, first);
    }

    /// Task `t` of phase `p` is no longer ready to start (it started, or
    /// waits, or is blocked).
    fn unready(&mut self, p: usize, t: usize) {
        let (first, key) = (self.ready[p].first().copied(), (self.rank_of(t), t));
        self.ready[p].remove(&key);
        self.first_changed(p, first);
    }

    /// Keeps `firsts` up to date when phase `p`'s first ready task was
    /// `before`.
    fn first_changed(&mut self, p: usize, before: Option<(u32, usize)>) {
        let now = self.ready[p].first().copied();
        if now != before {
            if let Some(key) = before {
                self.firsts.remove(&(key, p));
            }
            if let Some(key) = now {
                self.firsts.insert((key, p));
            }
        }
    }

    /// Task `t`'s place in the order tasks start in.
    pub fn rank_of(&self, t: usize) -> u32 {
        self.rank.get(t).copied().unwrap_or(u32::MAX)
    }

    /// Every task in state `node`, in id order (a scan: for views and the
    /// end of a run, not for the run's hot path).
    pub fn tasks_in(&self, node: Node) -> impl Iterator<Item = usize> + '_ {
        (0..self.node.len()).filter(move |&t| self.node[t] == node)
    }

    /// Adds tasks just added to the graph, each with its state (`Waiting`,
    /// `Unselected`, `Running`, `Completed`, `Failed` or `Blocked`), and
    /// works out what became ready. Returns the tasks that joined the gate
    /// of a phase that was already complete, each with that phase: tasks
    /// waiting on the phase have started without them.
    pub fn add(
        &mut self,
        graph: &Graph,
        added: &[(usize, Node)],
        files: &dyn Files,
    ) -> Vec<(usize, usize)> {
        let n = graph.tasks.len();
        let phases = graph.phases.len();
        self.node.resize(n, Node::Unselected);
        self.unmet.resize(n, 0);
        self.blocked_by.resize(n, None);
        self.gone.resize(n, false);
        let new_phases = self.gate_unmet.len()..phases;
        self.gate_unmet.resize(phases, 0);
        self.gate_open.resize(phases, false);
        self.held.resize(phases, 0);
        self.ready.resize(phases, BTreeSet::new());
        self.running_in_phase.resize(phases, 0);
        for &(t, node) in added {
            self.node[t] = node;
            if node == Node::Running {
                self.running_in_phase[graph.phase_of[t]] += 1;
            }
        }
        // Gates: the counts of new phases from scratch, the others updated.
        if !new_phases.is_empty() {
            let unfinished = self.unfinished_through(graph);
            for p in new_phases.clone() {
                self.gate_unmet[p] = unfinished[p];
            }
        }
        let mut late = Vec::new();
        for &(t, node) in added {
            if node == Node::Completed {
                continue;
            }
            for p in graph.gates_including(graph.phase_of[t]) {
                if new_phases.contains(&p) {
                    continue;
                }
                if self.gate_open[p] {
                    late.push((t, p));
                } else {
                    self.gate_unmet[p] += 1;
                }
            }
        }
        for &(t, _) in added {
            self.unmet[t] = graph.deps[t]
                .iter()
                .filter(|dep| match **dep {
                    Dep::Task(d) => self.node[d] != Node::Completed,
                    Dep::Phase(p) => !self.gate_open[p],
                })
                .count() as u32;
        }
        for p in 0..phases {
            self.try_open_gate(graph, p, files);
        }
        for &(t, _) in added {
            if self.node[t] == Node::Waiting && self.unmet[t] == 0 {
                self.become_ready(graph, t, files);
            }
        }
        late
    }

    /// Per phase, its tasks and those of earlier phases not completed, and
    /// their invalid files: one pass over the tasks, not one per phase.
    fn unfinished_through(&self, graph: &Graph) -> Vec<u32> {
        let mut own = self.held.clone();
        for t in 0..graph.tasks.len() {
            if self.node[t] != Node::Completed && !self.gone[t] {
                own[graph.phase_of[t]] += 1;
            }
        }
        let mut through = vec![0u32; graph.phases.len()];
        let mut sum = 0;
        for &p in graph.phases_by_name() {
            sum += own[p];
            through[p] = sum;
        }
        through
    }

    /// A task file of phase `p` found invalid during the run: a task of
    /// the phase that cannot run, so the gates that include it stay closed
    /// until the file is valid (those already open are past holding), and
    /// so do those of phases found later (`unfinished_through`). Held
    /// before the tasks found with the file are added (`add` opens the
    /// gates it can): the phase may be one they bring, whose gate `add`
    /// makes counting its holds.
    pub fn hold_gates(&mut self, graph: &Graph, p: usize) {
        if self.held.len() <= p {
            self.held.resize(graph.phases.len(), 0);
        }
        self.held[p] += 1;
        for q in graph.gates_including(p) {
            if q < self.gate_open.len() && !self.gate_open[q] {
                self.gate_unmet[q] += 1;
            }
        }
    }

    /// An invalid file of phase `p` that held its gates is valid now, or
    /// gone. Every gate it holds is closed, and every closed gate that
    /// includes `p` counts it: none can open while it holds.
    pub fn release_gates(&mut self, graph: &Graph, p: usize, files: &dyn Files) {
        self.held[p] -= 1;
        for q in graph.gates_including(p) {
            if !self.gate_open[q] {
                self.gate_unmet[q] -= 1;
                self.try_open_gate(graph, q, files);
            }
        }
    }

    /// A ready task starts.
    pub fn start(&mut self, graph: &Graph, t: usize) {
        let phase = graph.phase_of[t];
        self.unready(phase, t);
        self.node[t] = Node::Running;
        self.running_in_phase[phase] += 1;
    }

    /// A running task completed: its dependents and gates count it.
    pub fn complete(&mut self, graph: &Graph, t: usize, files: &dyn Files) {
        self.stop_running(graph, t);
        self.release(graph, t, files);
    }

    /// A ready task waits for a person's approval before it starts.
    pub fn await_approval(&mut self, graph: &Graph, t: usize) {
        self.unready(graph.phase_of[t], t);
        self.node[t] = Node::AwaitingApproval;
    }

    /// A running task completed, but what depends on it waits until a
    /// person approves its result.
    pub fn await_approval_of_result(&mut self, graph: &Graph, t: usize) {
        self.stop_running(graph, t);
        self.node[t] = Node::AwaitingApproval;
    }

    /// A task approved to start: ready.
    pub fn approved_to_start(&mut self, graph: &Graph, t: usize, files: &dyn Files) {
        self.node[t] = Node::Waiting;
        self.gone[t] = false;
        if self.unmet[t] == 0 {
            self.become_ready(graph, t, files);
        }
    }

    /// A completed task whose result is approved: what depends on it
    /// counts it.
    pub fn approved_result(&mut self, graph: &Graph, t: usize, files: &dyn Files) {
        self.release(graph, t, files);
    }

    /// A task awaiting approval is rejected (see `block_downstream`).
    pub fn reject(&mut self, t: usize) {
        self.node[t] = Node::Failed;
    }

    /// Task `t` is completed: its dependents and gates count it.
    fn release(&mut self, graph: &Graph, t: usize, files: &dyn Files) {
        self.node[t] = Node::Completed;
        for &d in &graph.dependents[t] {
            self.satisfy(graph, d, files);
        }
        for p in graph.gates_including(graph.phase_of[t]) {
            if !self.gate_open[p] {
                self.gate_unmet[p] -= 1;
                self.try_open_gate(graph, p, files);
            }
        }
    }

    /// A running task's process ended well, and its work goes into the
    /// merge queue: it no longer holds a place among its phase's running
    /// tasks, and what depends on it still waits.
    pub fn merging(&mut self, graph: &Graph, t: usize) {
        self.stop_running(graph, t);
        self.node[t] = Node::Merging;
    }

    /// A running task failed for good (see `block_downstream`).
    pub fn fail(&mut self, graph: &Graph, t: usize) {
        self.stop_running(graph, t);
        self.node[t] = Node::Failed;
    }

    /// A running task to try again, or one recorded as running that never
    /// started: waiting again, or, outside the run's selection, left for a
    /// run that selects it.
    pub fn reopen(&mut self, graph: &Graph, t: usize, selected: bool, files: &dyn Files) {
        self.stop_running(graph, t);
        self.node[t] = if selected {
            Node::Waiting
        } else {
            Node::Unselected
        };
        if selected && self.unmet[t] == 0 {
            self.become_ready(graph, t, files);
        }
    }

    /// A task that has not started, whose file is gone: no task any more,
    /// it starts no more in this run (what depends on it by name waits)
    /// and no phase gate waits for it.
    pub fn drop_unstarted(&mut self, graph: &Graph, t: usize, files: &dyn Files) {
        self.unready(graph.phase_of[t], t);
        self.needs_inputs.remove(&t);
        self.node[t] = Node::Unselected;
        self.gone[t] = true;
        for p in graph.gates_including(graph.phase_of[t]) {
            if !self.gate_open[p] {
                self.gate_unmet[p] -= 1;
                self.try_open_gate(graph, p, files);
            }
        }
    }

    /// A task dropped when its file went (`drop_unstarted`), its file back:
    /// it waits again (or stays blocked by a failure met meanwhile), or,
    /// its result `awaiting` approval, awaits it again; and the phase
    /// gates not open yet wait for it.
    pub fn rejoin(&mut self, graph: &Graph, t: usize, files: &dyn Files, awaiting: bool) {
        for p in graph.gates_including(graph.phase_of[t]) {
            if !self.gate_open[p] {
                self.gate_unmet[p] += 1;
            }
        }
        self.gone[t] = false;
        if awaiting {
            self.node[t] = Node::AwaitingApproval;
            return;
        }
        if self.node[t] == Node::Blocked {
            return;
        }
        self.node[t] = Node::Waiting;
        if self.unmet[t] == 0 {
            self.become_ready(graph, t, files);
        }
    }

    /// A task that has not started is failed by hand (`block`).
    pub fn hold(&mut self, graph: &Graph, t: usize) {
        self.unready(graph.phase_of[t], t);
        self.needs_inputs.remove(&t);
        self.node[t] = Node::Failed;
    }

    /// Marks every task that depends on the failed task `failed`, directly
    /// or not, as blocked by it; the walk stops at tasks that are running,
    /// done, or failed themselves. Returns them, in id order. `Walk::OnStart`
    /// also walks on through tasks blocked already, without marking them
    /// again: a run killed while it wrote the blocked statuses leaves some
    /// written and their dependents not, which the next run's start
    /// finishes. During a run a blocked task's dependents are blocked
    /// already: walking through them again would make each failure cost as
    /// much as everything below it.
    pub fn block_downstream(&mut self, graph: &Graph, failed: usize, walk: Walk) -> Vec<usize> {
        let node = &self.node;
        let mut walked = match walk {
            Walk::OnStart(walked) => Some(walked),
            Walk::InRun => None,
        };
        let reached = graph.downstream(failed, |d| match node[d] {
            Node::Waiting | Node::Ready | Node::NeedsInputs | Node::Unselected => {
                if let Some(walked) = walked.as_deref_mut() {
                    walked.insert(d);
                }
                true
            }
            Node::Blocked => walked.as_deref_mut().is_some_and(|w| w.insert(d)),
            _ => false,
        });
        let mut blocked: Vec<usize> = reached
            .into_iter()
            .filter(|&d| self.node[d] != Node::Blocked)
            .collect();
        blocked.sort_unstable();
        for &d in &blocked {
            self.unready(graph.phase_of[d], d);
            self.needs_inputs.remove(&d);
            self.node[d] = Node::Blocked;
            self.blocked_by[d] = Some(failed);
        }
        blocked
    }

    /// A task read as blocked from its status, by `by`.
    pub fn set_blocked_by(&mut self, t: usize, by: Option<usize>) {
        self.blocked_by[t] = by;
    }

    /// Inputs and gate artifacts appear when tasks end: looks at the few
    /// tasks and gates waiting on them.
    pub fn recheck(&mut self, graph: &Graph, files: &dyn Files) {
        for t in std::mem::take(&mut self.needs_inputs) {
            self.become_ready(graph, t, files);
        }
        for p in 0..graph.phases.len() {
            self.try_open_gate(graph, p, files);
        }
    }

    /// The inputs of `t` that are missing (see `assume_produced`).
    pub fn missing_inputs(&self, graph: &Graph, t: usize, files: &dyn Files) -> Vec<String> {
        graph.tasks[t]
            .inputs
            .iter()
            .filter(|input| !self.assumed_produced(graph, input) && !files.input_exists(input))
            .cloned()
            .collect()
    }

    /// The artifacts that hold phase `p`'s gate shut: those its own gate
    /// and every earlier phase's require (a phase is complete with the
    /// earlier ones), missing (see `assume_produced`).
    pub fn gate_missing_artifacts(
        &self,
        graph: &Graph,
        p: usize,
        files: &dyn Files,
    ) -> Vec<String> {
        graph
            .phases_through(p)
            .flat_map(|q| files.missing_artifacts(q))
            .filter(|artifact| !self.assumed_produced(graph, artifact))
            .collect()
    }

    /// Whether the file at `path` (under `workspace/outputs/`) counts as
    /// there in a plan: the task that declares it completed.
    fn assumed_produced(&self, graph: &Graph, path: &str) -> bool {
        self.assume_produced
            && graph
                .declaring_producer(path)
                .is_some_and(|p| self.node[p] == Node::Completed)
    }

    fn stop_running(&mut self, graph: &Graph, t: usize) {
        if self.node[t] == Node::Running {
            self.running_in_phase[graph.phase_of[t]] -= 1;
        }
    }

    fn satisfy(&mut self, graph: &Graph, t: usize, files: &dyn Files) {
        self.unmet[t] -= 1;
        if self.unmet[t] == 0 && self.node[t] == Node::Waiting {
            self.become_ready(graph, t, files);
        }
    }

    fn become_ready(&mut self, graph: &Graph, t: usize, files: &dyn Files) {
        if self.missing_inputs(graph, t, files).is_empty() {
            self.node[t] = Node::Ready;
            self.ready_to_start(graph.phase_of[t], t);
        } else {
            self.node[t] = Node::NeedsInputs;
            self.needs_inputs.insert(t);
        }
    }

    /// Opens phase `p`'s gate if it is complete and a task waits on it. A
    /// gate nothing waits on stays closed: its opening would release
    /// nothing, and a task that joins its phase later (a generated one)
    /// still counts if a task that waits on the phase joins too. So the
    /// run need not scan the task folders before each end that completes
    /// such a phase (a graph of a phase per feature scanned every folder
    /// at each end).
    fn try_open_gate(&mut self, graph: &Graph, p: usize, files: &dyn Files) {
        if self.gate_open[p]
            || graph.phases[p].dependents.is_empty()
            || self.gate_unmet[p] > 0
            || !self.gate_missing_artifacts(graph, p, files).is_empty()
        {
            return;
        }
        self.gate_open[p] = true;
        for &d in &graph.phases[p].dependents {
            self.satisfy(graph, d, files);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
