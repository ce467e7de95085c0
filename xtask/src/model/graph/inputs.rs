//! Inputs that name no single producer but can hold several tasks' outputs:
//! a glob whose task part is a pattern (`01-a/*/out.json`), a folder of
//! task folders (`01-a`). What they can match must be waited for by the
//! task's own dependencies.

use std::collections::{HashMap, HashSet};

use super::Graph;
use crate::model::problem::{AtValues, Problem};
use crate::state::outputs::is_glob;

/// The tasks an input can hold the outputs of, and the latest phase (its
/// place by name) among them, and among those joining now.
struct Producers {
    possible: Vec<usize>,
    latest: Option<usize>,
    latest_new: Option<usize>,
}

impl Graph {
    /// Problems of the tasks from `first` on, and of the tasks before them
    /// whose inputs can hold the new ones' outputs (tasks generated into a
    /// phase a glob reads): an input that can hold the declared outputs of
    /// a task it neither waits for nor comes before (it would start on that
    /// task's output while it is written, or after that task failed).
    /// Needs the dependents linked.
    pub(super) fn unawaited_inputs(&self, first: usize) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut by_id: Option<Vec<(&str, usize)>> = None;
        // Each input's possible producers, with the latest phase (by name)
        // among them and among the new ones: 50,000 tasks reading
        // `01-a/*/out.json` share one list.
        let mut producers: HashMap<&str, Producers> = HashMap::new();
        for t in 0..self.tasks.len() {
            let task = &self.tasks[t];
            let mut related: Option<HashSet<usize>> = None;
            let mut at = AtValues::new(&task.file);
            for input in task.inputs.iter().filter(|i| self.producer(i).is_none()) {
                let Producers {
                    possible,
                    latest,
                    latest_new,
                } = producers.entry(input).or_insert_with(|| {
                    let by_id = by_id.get_or_insert_with(|| self.ids_in_order());
                    let possible = self.possible_producers(by_id, input);
                    let rank = |d: &usize| self.name_rank[self.phase_of[*d]];
                    Producers {
                        latest: possible.iter().map(rank).max(),
                        latest_new: possible.iter().filter(|&&d| d >= first).map(rank).max(),
                        possible,
                    }
                });
                // A task checked before is checked against the new ones.
                let checked = |d: &&usize| t >= first || **d >= first;
                let latest = if t >= first { *latest } else { *latest_new };
                // None, or all behind a gate it waits for: no walk, no
                // pair checked.
                let Some(latest) = latest else { continue };
                if self.gate_rank(t).is_some_and(|rank| rank >= latest) {
                    continue;
                }
                let related = related.get_or_insert_with(|| {
                    let mut related = self.upstream(t);
                    related.extend(self.downstream(t, |_| true));
                    related.insert(t);
                    related
                });
                let unawaited: Vec<&str> = (possible.iter().filter(checked))
                    .filter(|d| !related.contains(d))
                    .map(|&d| self.tasks[d].id.as_str())
                    .collect();
                if let Some(message) = self.unawaited(input, &unawaited) {
                    problems.push(at.problem("inputs", input, message));
                }
            }
        }
        problems
    }

    /// What is said of `input` of a task, which can hold the outputs of
    /// the tasks `unawaited` it does not wait for, if there are any.
    fn unawaited(&self, input: &str, unawaited: &[&str]) -> Option<String> {
        let first = *unawaited.first()?;
        let phase = self.get(first).map_or("", |d| self.tasks[d].phase());
        let named = match unawaited.len() {
            n if n <= 3 => unawaited.join(", "),
            n => format!("{} and {} more", unawaited[..3].join(", "), n - 3),
        };
        Some(format!("input `{input}` can hold the outputs of {named}, which this task does not wait for: it could start on an output being written, or left by a failure; add `{first}` (or its phase, `{phase}`) to its `dependencies`"))
    }

    /// The latest phase (its place by name) whose gate task `t` names as a
    /// dependency: it waits for every task of that phase and the earlier.
    fn gate_rank(&self, t: usize) -> Option<usize> {
        (self.deps[t].iter())
            .filter_map(|dep| match *dep {
                super::Dep::Phase(p) => Some(self.name_rank[p]),
                super::Dep::Task(_) => None,
            })
            .max()
    }

    /// Every task's id and index, in id order: the tasks under a folder
    /// are found by a range, not by a look at every task per input.
    fn ids_in_order(&self) -> Vec<(&str, usize)> {
        let mut ids: Vec<(&str, usize)> = (self.tasks.iter().enumerate())
            .map(|(t, task)| (task.id.as_str(), t))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The tasks with declared outputs under `input`'s first literal
    /// folders that it can hold: a folder, all of them; a glob, those one
    /// of whose outputs it matches, or a file in it (`01-a/*/out.json`
    /// matches `01-a/p`'s `out.json`, `01-a/*/dir/*.txt` its folder `dir`).
    fn possible_producers(&self, by_id: &[(&str, usize)], input: &str) -> Vec<usize> {
        let literal = match is_glob(input) {
            true => {
                let literal = &input[..input.find(['*', '?', '[']).unwrap_or(input.len())];
                literal[..literal.rfind('/').map_or(0, |i| i + 1)].to_owned()
            }
            false => format!("{input}/"),
        };
        let start = by_id.partition_point(|(id, _)| *id < literal.as_str());
        let under = (by_id[start..].iter())
            .take_while(|(id, _)| id.starts_with(literal.as_str()))
            .map(|&(_, d)| d)
            .filter(|&d| !self.tasks[d].outputs.is_empty());
        if !is_glob(input) {
            return under.collect();
        }
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let Ok(whole) = glob::Pattern::new(input) else {
            return Vec::new();
        };
        // Its leading parts (`01-a/*/dir` of `01-a/*/dir/*.txt`): an output
        // that is a folder holds what the rest matches. One that ends in
        // `**` would take any output for a folder.
        let leading: Vec<glob::Pattern> = (input.match_indices('/').map(|(i, _)| &input[..i]))
            .filter(|part| !part.ends_with("**"))
            .filter_map(|part| glob::Pattern::new(part).ok())
            .collect();
        under
            .filter(|&d| {
                let task = &self.tasks[d];
                task.outputs.iter().any(|output| {
                    let path = format!("{}/{output}", task.id);
                    // The pattern names the output, or a folder holding it
                    // (`01-a/*/res` of `res/x.json`, `01-a/*`, `0?-a`) ...
                    let folders = path.match_indices('/').map(|(i, _)| &path[..i]);
                    let named = (folders.chain([path.as_str()]))
                        .any(|held| whole.matches_with(held, options));
                    // ... or goes into it.
                    named || leading.iter().any(|part| part.matches_with(&path, options))
                })
            })
            .collect()
    }
}
