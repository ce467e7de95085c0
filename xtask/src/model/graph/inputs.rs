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
        let mut declared: Option<Declared> = None;
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
                    let declared = declared.get_or_insert_with(|| self.declared());
                    let possible = self.possible_producers(declared, input);
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

    /// The tasks' ids and declared outputs, indexed for the globs: every
    /// task's id and index in id order (the tasks under a folder are a
    /// range, not a look at every task per input), each output's path and
    /// the folders holding it by their depth and end.
    fn declared(&self) -> Declared<'_> {
        let mut ids: Vec<(&str, usize)> = (self.tasks.iter().enumerate())
            .map(|(t, task)| (task.id.as_str(), t))
            .collect();
        ids.sort_unstable();
        let mut outputs_before = vec![0];
        for &(_, t) in &ids {
            outputs_before
                .push(outputs_before[outputs_before.len() - 1] + self.tasks[t].outputs.len());
        }
        let paths: Vec<(String, usize, usize)> = (self.tasks.iter().enumerate())
            .flat_map(|(t, task)| {
                (task.outputs.iter().enumerate())
                    .map(move |(o, output)| (format!("{}/{output}", task.id), t, o))
            })
            .collect();
        let held = paths.iter().flat_map(|(path, t, o)| {
            let folders = path.match_indices('/').map(|(i, _)| &path[..i]);
            folders.chain([path.as_str()]).map(|held| (held, *t, *o))
        });
        Declared {
            held: Ends::new(held),
            paths: Ends::new(paths.iter().map(|(path, t, o)| (path.as_str(), *t, *o))),
            ids,
            outputs_before,
        }
    }

    /// The tasks with declared outputs that `input` can hold, in id order:
    /// a folder, all under it; a glob, those one of whose outputs it
    /// matches, or a file in it (`01-a/*/out.json` matches `01-a/p`'s
    /// `out.json`, `01-a/*/dir/*.txt` its folder `dir`).
    fn possible_producers(&self, declared: &Declared, input: &str) -> Vec<usize> {
        // What a glob matches starts with its text before the first
        // wildcard, and an id that is a folder of that text would be the
        // input's producer (it would not be here): the ids that can hold a
        // match start with that text (`01-a/t1-*/o` reads `01-a/t1-x`).
        let literal = match is_glob(input) {
            true => input[..input.find(['*', '?', '[']).unwrap_or(input.len())].to_owned(),
            false => format!("{input}/"),
        };
        let by_id = &declared.ids;
        let start = by_id.partition_point(|(id, _)| *id < literal.as_str());
        let end =
            by_id.partition_point(|(id, _)| *id < literal.as_str() || id.starts_with(&literal));
        let under = (by_id[start..end].iter()).map(|&(_, d)| d);
        if !is_glob(input) {
            return under
                .filter(|&d| !self.tasks[d].outputs.is_empty())
                .collect();
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
        let leading: Vec<(&str, glob::Pattern)> = (input.match_indices('/'))
            .map(|(i, _)| &input[..i])
            .filter(|part| !part.ends_with("**"))
            .filter_map(|part| Some((part, glob::Pattern::new(part).ok()?)))
            .collect();
        let holds = |d: usize, output: &str| {
            let path = format!("{}/{output}", self.tasks[d].id);
            // The pattern names the output, or a folder holding it
            // (`01-a/*/res` of `res/x.json`, `01-a/*`, `0?-a`) ...
            let folders = path.match_indices('/').map(|(i, _)| &path[..i]);
            let named =
                (folders.chain([path.as_str()])).any(|held| whole.matches_with(held, options));
            // ... or goes into it.
            named || (leading.iter()).any(|(_, part)| part.matches_with(&path, options))
        };
        // The outputs under those ids, or those whose end and depth the
        // glob and its leading parts can match, if they are fewer:
        // `01-a/*/o7.json` reads the outputs named `o7.json`, not all of
        // `01-a`'s.
        let parts = (leading.iter()).map(|(part, _)| declared.paths.matching(part));
        let ends = (parts.chain([declared.held.matching(input)])).collect::<Option<Vec<_>>>();
        let outputs_under = declared.outputs_before[end] - declared.outputs_before[start];
        let fewer = ends.filter(|ends| ends.iter().map(|e| e.len()).sum::<usize>() < outputs_under);
        let mut producers: Vec<usize> = match fewer {
            Some(ends) => {
                let mut found: Vec<(&str, usize, usize)> = (ends.iter().flat_map(|e| e.iter()))
                    .map(|&(_, _, d, o)| (self.tasks[d].id.as_str(), d, o))
                    .collect();
                found.sort_unstable();
                (found.into_iter())
                    .filter(|&(_, d, o)| holds(d, &self.tasks[d].outputs[o]))
                    .map(|(_, d, _)| d)
                    .collect()
            }
            None => under
                .filter(|&d| self.tasks[d].outputs.iter().any(|o| holds(d, o)))
                .collect(),
        };
        producers.dedup();
        producers
    }
}

/// The tasks' ids and declared outputs, indexed for the globs.
struct Declared<'a> {
    /// Every task's id and index, in id order ...
    ids: Vec<(&'a str, usize)>,
    /// ... and the number of declared outputs of the tasks before each.
    outputs_before: Vec<usize>,
    /// The outputs' paths (`01-a/t/res/o.json`) and the folders holding
    /// them (`01-a/t/res`, `01-a/t`, `01-a`), which a whole glob can name ...
    held: Ends,
    /// ... and the paths alone, which a glob's leading part can (it goes
    /// into an output that is a folder).
    paths: Ends,
}

/// A declared output's path or a folder holding it: its number of `/`, its
/// text written backwards, its task, and the output's place in the task's.
type End = (usize, String, usize, usize);

/// Paths by their number of `/` and then their text written backwards:
/// those ending in a given text are a range. A folder is kept once per
/// task (with one output it holds): a glob that names it holds them all.
struct Ends(Vec<End>);

impl Ends {
    fn new<'a>(paths: impl Iterator<Item = (&'a str, usize, usize)>) -> Ends {
        let mut ends: Vec<End> = paths
            .map(|(path, t, o)| {
                (
                    path.matches('/').count(),
                    path.chars().rev().collect(),
                    t,
                    o,
                )
            })
            .collect();
        ends.sort_unstable();
        ends.dedup_by(|a, b| (a.0, &a.1, a.2) == (b.0, &b.1, b.2));
        Ends(ends)
    }

    /// Those `pattern` can match (and more): as no wildcard matches a `/`
    /// (`require_literal_separator`), they have its number of `/`, and end
    /// in its text after the last wildcard. None for a pattern whose `/`
    /// are not counted so: `**` matches any number, `[!/]` a character
    /// that is not one.
    fn matching(&self, pattern: &str) -> Option<&[End]> {
        if pattern.contains("**") || pattern.contains('[') {
            return None;
        }
        let depth = pattern.matches('/').count();
        let tail = &pattern[pattern.rfind(['*', '?']).map_or(0, |i| i + 1)..];
        let tail: String = tail.chars().rev().collect();
        let before = |e: &End| (e.0, e.1.as_str()) < (depth, &tail);
        let start = self.0.partition_point(before);
        let end =
            (self.0).partition_point(|e| before(e) || (e.0 == depth && e.1.starts_with(&tail)));
        Some(&self.0[start..end])
    }
}
