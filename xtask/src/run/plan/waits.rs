//! Why tasks wait, as the run's summary, `next`, a dry run and `why` say
//! it.

use std::collections::{HashMap, HashSet};

use crate::model::config::Config;
use crate::model::graph::{Dep, Graph};
use crate::model::layout::Layout;
use crate::model::task::phase_key;
use crate::run::admission::Admission;
use crate::run::load::Disk;
use crate::run::readiness::{Node, Readiness};
use crate::state::outputs;
use crate::state::status::{self, State};
use crate::ui::format;

/// The tasks that wait for an input no task produces, or on a phase gate
/// that (itself or an earlier phase's, which it includes) requires an
/// artifact no task produces, and what waits on them: no run starts them
/// until a person writes that file. `progress` and the live view leave
/// them out of the expected end alike.
pub fn never_starting<'a>(layout: &Layout, config: &'a Config, graph: &'a Graph) -> HashSet<usize> {
    // Each path looked up once: the live view asks at each frame, on the
    // run's thread, and thousands of tasks may name one glob of a folder
    // of thousands (it took seconds a frame).
    let mut looked: HashMap<&str, bool> = HashMap::new();
    let mut unmade = |path: &'a String| {
        *looked.entry(path).or_insert_with(|| {
            graph.producer(path).is_none() && !outputs::input_exists(layout, path)
        })
    };
    let mut never: HashSet<usize> = (0..graph.tasks.len())
        .filter(|&t| graph.tasks[t].inputs.iter().any(&mut unmade))
        .collect();
    for (q, phase) in graph.phases.iter().enumerate() {
        let requires = &config.phase(phase_key(&phase.name)).requires;
        if requires.iter().any(&mut unmade) {
            for p in graph.gates_including(q) {
                never.extend(graph.phases[p].dependents.iter().copied());
            }
        }
    }
    let mut queue: Vec<usize> = never.iter().copied().collect();
    while let Some(t) = queue.pop() {
        for d in graph.waiting_on(t) {
            if never.insert(d) {
                queue.push(d);
            }
        }
    }
    never
}

/// Why tasks wait: for the run's summary, `next`, a dry run and `why`.
pub struct Waits<'a> {
    pub layout: &'a Layout,
    pub config: &'a Config,
    pub graph: &'a Graph,
    pub readiness: &'a Readiness,
    pub admission: &'a Admission<'a>,
    /// The tasks running (or planned to run) now.
    pub running: &'a [usize],
    /// In a plan, the running tasks that would start now (the others run).
    pub planned: &'a [usize],
    /// The budget, when it is reached: nothing ready starts.
    pub budget: Option<String>,
    /// In a plan, why no more agents start: what the budget leaves is no
    /// more than the agents planned to run are expected to cost
    /// (`Budget::spoken_for`).
    pub agents_held: Option<&'a str>,
    /// Why nothing ready starts, when nothing does: the run was stopped (a
    /// signal, a fatal error), or it is a `monitor`.
    pub stopped: Option<&'static str>,
    /// The tasks a rate limit pauses, in order (those the plan read so).
    pub paused: &'a [usize],
    /// The tasks whose status says failed while their retry waits, in
    /// order (a run's: a plan retries them as new).
    pub retries: &'a [usize],
    /// `next` on a workspace where `orchestrate` would refuse to run (a
    /// task runs on without its status): what it plans starts only after.
    pub refused: bool,
    /// In a run, the tasks whose files were removed before they started
    /// (one made again since may be there, invalid or not read again).
    pub removed: Option<&'a HashSet<usize>>,
}

/// Every task that waits, with why, in id order.
pub fn waiting(waits: &Waits) -> Vec<(usize, String)> {
    (0..waits.graph.tasks.len())
        .filter(|&t| waits.readiness.node(t).is_waiting())
        .map(|t| (t, waits.reason(t)))
        .collect()
}

impl Waits<'_> {
    pub fn reason(&self, t: usize) -> String {
        let (graph, readiness) = (self.graph, self.readiness);
        match readiness.node(t) {
            Node::Ready => {
                let paused = self.paused.binary_search(&t).is_ok();
                let ready = match self.retries.binary_search(&t) {
                    Ok(_) => "its retry ready, not started",
                    Err(_) => "ready, not started",
                };
                return match (&self.budget, self.stopped) {
                    (Some(budget), _) => format!("{ready}: {budget}"),
                    (None, Some(why)) if paused => {
                        format!("paused by a rate limit, not started: {why}")
                    }
                    (None, Some(why)) => format!("{ready}: {why}"),
                    (None, None) => match self
                        .agents_held
                        .filter(|_| graph.tasks[t].is_agent(self.config))
                    {
                        Some(why) => format!("{ready}: {why}"),
                        None => (self.admission).held_reason(graph, readiness, self.running, t),
                    },
                };
            }
            Node::NeedsInputs => return self.missing_inputs(t),
            _ => {}
        }
        let waits: Vec<String> = graph.deps[t]
            .iter()
            .filter_map(|dep| match *dep {
                Dep::Task(d) if readiness.node(d) != Node::Completed => {
                    Some(format!("{} ({})", graph.tasks[d].id, self.describe(d)))
                }
                Dep::Phase(p) if !readiness.gate_open(p) => {
                    let files = Disk::new(self.layout, self.config, graph);
                    let artifacts = readiness.gate_missing_artifacts(graph, p, &files);
                    let detail = if readiness.gate_unmet(p) == 0 && !artifacts.is_empty() {
                        format!("its gate needs {}", artifacts.join(", "))
                    } else {
                        let unmet = readiness.gate_unmet(p);
                        format!(
                            "{} of it or earlier phases not completed",
                            format::counted(unmet as usize, "task", "tasks")
                        )
                    };
                    Some(format!("phase {} ({detail})", graph.phases[p].name))
                }
                _ => None,
            })
            .collect();
        format!("waits on {}", waits.join(", "))
    }

    fn missing_inputs(&self, t: usize) -> String {
        let (graph, readiness) = (self.graph, self.readiness);
        let files = Disk::new(self.layout, self.config, graph);
        let missing: Vec<String> = readiness
            .missing_inputs(graph, t, &files)
            .into_iter()
            .map(|input| {
                let why = match graph.producer(&input) {
                    Some(p) if readiness.node(p) == Node::Completed => {
                        let producer = &graph.tasks[p];
                        let id = &producer.id;
                        let reset = self.layout.task_cmd("reset", id);
                        // A declared output was checked when it completed:
                        // it went since. One a glob stood for may never have
                        // been written.
                        let declared = input
                            .strip_prefix(id.as_str())
                            .and_then(|rest| rest.strip_prefix('/'))
                            .is_some_and(|rel| producer.outputs.iter().any(|o| o == rel));
                        let what = if declared {
                            "completed with it, and it is gone since"
                        } else {
                            "completed without writing it"
                        };
                        format!("its producer {id} {what}: `{reset}` runs that again")
                    }
                    Some(p) => format!("its producer {} did not complete", graph.tasks[p].id),
                    None => "no task produces it".to_owned(),
                };
                format!("workspace/outputs/{input} ({why})")
            })
            .collect();
        format!("missing input {}", missing.join(", "))
    }

    /// Whether the status of running task `t` says its work waits in the
    /// merge queue.
    fn merging(&self, t: usize) -> bool {
        status::read(self.layout, &self.graph.tasks[t].id)
            .ok()
            .flatten()
            .is_some_and(|s| s.merging)
    }

    pub fn describe(&self, t: usize) -> &'static str {
        match self.readiness.node(t) {
            // No task any more, whatever its file is now: no selection
            // left it out.
            Node::Unselected if self.removed.is_some_and(|r| r.contains(&t)) => {
                "its task file was removed"
            }
            // Not this run's to start: what its status says stands.
            Node::Unselected => match status::state_of(self.layout, &self.graph.tasks[t].id) {
                Some(State::Failed) => "failed, and not selected in this run",
                Some(State::Blocked) => "blocked, and not selected in this run",
                Some(State::AwaitingApproval) => "awaiting approval",
                // Removed during the run: no task any more.
                None if !self.graph.tasks[t].file.exists() => "its task file was removed",
                None => "not run yet, and not selected in this run",
                _ => "not selected in this run",
            },
            Node::Failed => "failed",
            Node::Blocked => "blocked",
            Node::Running if self.planned.contains(&t) && self.refused => {
                "which would start once what the warning names has ended"
            }
            Node::Running if self.planned.contains(&t) => "which would start now",
            // A plan reads a task whose work waits in the merge queue as
            // running, as its status says, with `merging`.
            Node::Running if self.merging(t) => "its work waits in the merge queue",
            Node::Running => "running",
            Node::Merging => "its work waits in the merge queue",
            Node::Completed => "completed",
            Node::AwaitingApproval => "awaiting approval",
            // A retry a rate limit holds back is paused, not new.
            Node::Waiting | Node::Ready | Node::NeedsInputs
                if self.paused.binary_search(&t).is_ok() =>
            {
                "paused by a rate limit"
            }
            Node::Waiting | Node::Ready | Node::NeedsInputs
                if self.retries.binary_search(&t).is_ok() =>
            {
                "failed, its retry not started"
            }
            Node::Waiting | Node::Ready | Node::NeedsInputs => "not started",
        }
    }
}
