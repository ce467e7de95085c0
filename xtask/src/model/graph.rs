//! The checked task graph: every dependency resolved to a task or a phase,
//! no cycles, no path that leaves its folder. The scheduler takes a `Graph`
//! and never re-checks. No I/O, but reading a task file again to point a
//! problem at its line.

use std::collections::{HashMap, HashSet};

use crate::model::problem::{nearest, AtValues, Problem};
use crate::model::task::{phase_key, Task};
use crate::sys::parallel;

mod cycles;
mod inputs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dep {
    Task(usize),
    /// Waits for the phase's gate and for every task of earlier phases,
    /// since those may still generate tasks into it.
    Phase(usize),
}

#[derive(Debug)]
pub struct Phase {
    /// The folder name: `01-analysis`.
    pub name: String,
    pub tasks: Vec<usize>,
    /// Tasks that depend on this phase as a whole.
    pub dependents: Vec<usize>,
}

#[derive(Debug, Default)]
pub struct Graph {
    pub tasks: Vec<Task>,
    pub deps: Vec<Vec<Dep>>,
    /// Tasks that name this one (or one of its outputs) directly.
    pub dependents: Vec<Vec<usize>>,
    pub phase_of: Vec<usize>,
    pub phases: Vec<Phase>,
    index: HashMap<String, usize>,
    phase_index: HashMap<String, usize>,
    /// The phases in the order of their names, which is the order their
    /// gates include one another in, and each phase's place in it.
    by_name: Vec<usize>,
    name_rank: Vec<usize>,
    /// The phase folders found: one with no task yet may be depended on
    /// (its tasks are generated during the run).
    phase_folders: Vec<String>,
}

impl Graph {
    /// The graph of `tasks`, or every problem found in them.
    #[cfg(test)]
    pub fn build(tasks: Vec<Task>) -> Result<Graph, Vec<Problem>> {
        Graph::build_in(Vec::new(), tasks)
    }

    /// The graph of `tasks` found in the phase folders `folders`: a task may
    /// depend on one with no task yet.
    pub fn build_in(folders: Vec<String>, tasks: Vec<Task>) -> Result<Graph, Vec<Problem>> {
        let mut graph = Graph {
            phase_folders: folders,
            ..Graph::default()
        };
        let problems = graph.add(tasks);
        if problems.is_empty() {
            Ok(graph)
        } else {
            Err(problems)
        }
    }

    /// Adds tasks found during a run; those with a problem are left out.
    /// Returns the indices added and the problems.
    pub fn extend(&mut self, mut tasks: Vec<Task>) -> (Vec<usize>, Vec<Problem>) {
        let before = self.tasks.len();
        let mut reported = Vec::new();
        // A batch is added whole or not at all: leave out the files with a
        // problem (and what needed them) until the rest adds cleanly.
        loop {
            let problems = self.add(tasks.clone());
            if problems.is_empty() || tasks.is_empty() {
                break;
            }
            let bad: Vec<&camino::Utf8PathBuf> =
                problems.iter().filter_map(|p| p.file.as_ref()).collect();
            let (mut kept, mut left_out): (Vec<Task>, Vec<Task>) =
                tasks.iter().cloned().partition(|t| !bad.contains(&&t.file));
            let stuck = left_out.is_empty();
            reported.extend(problems);
            if stuck {
                break;
            }
            // What needs a task left out is left out with it, said so (the
            // next try would call its dependency unknown).
            let needs_one_of = |task: &Task, out: &[Task]| {
                task.dependencies
                    .iter()
                    .find(|d| out.iter().any(|o| o.id == **d))
                    .cloned()
            };
            while let Some((i, dependency)) = kept
                .iter()
                .enumerate()
                .find_map(|(i, t)| Some((i, needs_one_of(t, &left_out)?)))
            {
                let task = kept.remove(i);
                reported.push(Problem::in_file_at_value(
                    &task.file,
                    "dependencies",
                    &dependency,
                    format!("left out: it depends on {dependency}, whose file has a problem"),
                ));
                left_out.push(task);
            }
            tasks = kept;
        }
        ((before..self.tasks.len()).collect(), reported)
    }

    pub fn get(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// `get`, trying `guess` first: a command going through the task
    /// files in the order they were found finds the n-th in the n-th place,
    /// without hashing (100,000 lookups: tens of ms).
    pub fn get_guessing(&self, id: &str, guess: usize) -> Option<usize> {
        match self.tasks.get(guess) {
            Some(task) if task.id == id => Some(guess),
            _ => self.get(id),
        }
    }

    pub fn phase(&self, name: &str) -> Option<usize> {
        self.phase_index.get(name).copied()
    }

    /// The phase named `name`, else the first after it by name: the gates
    /// that would include a phase of that name are this one's and the
    /// later ones' (an invalid task file in a new phase folder holds them).
    pub fn phase_or_next(&self, name: &str) -> Option<usize> {
        let rank = self
            .by_name
            .partition_point(|&p| self.phases[p].name.as_str() < name);
        self.by_name.get(rank).copied()
    }

    /// The phases in the order of their names.
    pub fn phases_by_name(&self) -> &[usize] {
        &self.by_name
    }

    /// Phases whose gate includes tasks of phase `p`: `p` and every later
    /// one, in name order.
    pub fn gates_including(&self, p: usize) -> impl Iterator<Item = usize> + '_ {
        self.by_name[self.name_rank[p]..].iter().copied()
    }

    /// Phases whose completion a dependency on phase `p` waits for: it and
    /// the earlier ones, in name order.
    pub fn phases_through(&self, p: usize) -> impl Iterator<Item = usize> + '_ {
        self.by_name[..=self.name_rank[p]].iter().copied()
    }

    /// The phase just before `p` in name order: its gate holds every task
    /// of `p`'s gate but `p`'s own.
    pub fn phase_before(&self, p: usize) -> Option<usize> {
        let rank = self.name_rank[p].checked_sub(1)?;
        Some(self.by_name[rank])
    }

    /// Tasks whose completion a dependency on phase `p` waits for.
    pub fn gate_members(&self, p: usize) -> impl Iterator<Item = usize> + '_ {
        let rank = self.name_rank[p];
        (0..self.tasks.len()).filter(move |&t| self.name_rank[self.phase_of[t]] <= rank)
    }

    /// Orders the phases by name, once they are all there: a gate's
    /// members and the gates a task counts in are then read without
    /// comparing names (thousands of phases compared theirs at each end).
    fn index_phases(&mut self) {
        let phases = &self.phases;
        self.by_name = (0..phases.len()).collect();
        self.by_name
            .sort_unstable_by(|&a, &b| phases[a].name.cmp(&phases[b].name));
        self.name_rank = vec![0; phases.len()];
        for (rank, &p) in self.by_name.iter().enumerate() {
            self.name_rank[p] = rank;
        }
    }

    /// Whether task `t` waits directly on task `d`: names it, or a phase
    /// gate that includes it.
    pub fn waits_directly_on(&self, t: usize, d: usize) -> bool {
        self.deps[t].iter().any(|dep| match *dep {
            Dep::Task(x) => x == d,
            Dep::Phase(p) => self.name_rank[self.phase_of[d]] <= self.name_rank[p],
        })
    }

    /// Tasks that wait directly on `t`: its dependents, and the dependents
    /// of every phase gate that includes it.
    pub fn waiting_on(&self, t: usize) -> Vec<usize> {
        let mut next = self.dependents[t].clone();
        for p in self.gates_including(self.phase_of[t]) {
            next.extend(self.phases[p].dependents.iter().copied());
        }
        next
    }

    /// `waiting_on` in a walk that lists the dependents of each phase's
    /// gates once (`listed`, by phase): reached again, they are reached
    /// already. A failure above a phase of 10,000 tasks whose gate 10,000
    /// others wait on listed those for each of the first (a hundred million
    /// steps).
    fn waiting_on_in_walk(&self, t: usize, listed: &mut [bool]) -> Vec<usize> {
        let mut next = self.dependents[t].clone();
        let p = self.phase_of[t];
        if !std::mem::replace(&mut listed[p], true) {
            for g in self.gates_including(p) {
                next.extend(self.phases[g].dependents.iter().copied());
            }
        }
        next
    }

    /// The failed task that blocks each task now, if one does: one it
    /// waits on (phase gates included), directly or through tasks that
    /// `through` accepts (blocked ones, or ones yet to run: what
    /// `status::failed_upstream` walks through). Where several failures
    /// reach a task, the first of them by index names it. One walk over
    /// the graph, each gate's dependents listed once: the views ask this
    /// of 100,000 tasks.
    pub fn blocked_by_failures(
        &self,
        failed: impl Fn(usize) -> bool,
        through: impl Fn(usize) -> bool,
    ) -> Vec<Option<usize>> {
        let mut by = vec![None; self.tasks.len()];
        let mut listed = vec![false; self.phases.len()];
        for source in (0..self.tasks.len()).filter(|&t| failed(t)) {
            let mut queue = vec![source];
            while let Some(current) = queue.pop() {
                for d in self.waiting_on_in_walk(current, &mut listed) {
                    if by[d].is_none() && !failed(d) && through(d) {
                        by[d] = Some(source);
                        queue.push(d);
                    }
                }
            }
        }
        by
    }

    /// The tasks `t` names as dependencies, a phase standing for its own
    /// tasks, each once (what its prompt quotes).
    pub fn tasks_waited_on_directly(&self, t: usize) -> Vec<usize> {
        let mut seen = HashSet::new();
        (self.deps[t].iter())
            .flat_map(|dep| match dep {
                Dep::Task(d) => std::slice::from_ref(d),
                Dep::Phase(p) => self.phases[*p].tasks.as_slice(),
            })
            .copied()
            .filter(|&d| seen.insert(d))
            .collect()
    }

    /// The tasks `t` waits on, directly or through others (phase gates
    /// included): all its result may be built from.
    pub fn upstream(&self, t: usize) -> HashSet<usize> {
        let mut found = HashSet::new();
        let mut gates = HashSet::new();
        let mut queue = vec![t];
        while let Some(current) = queue.pop() {
            for dep in &self.deps[current] {
                let reached: Vec<usize> = match *dep {
                    Dep::Task(d) => vec![d],
                    Dep::Phase(p) if gates.insert(p) => self.gate_members(p).collect(),
                    Dep::Phase(_) => continue,
                };
                queue.extend(reached.into_iter().filter(|&d| found.insert(d)));
            }
        }
        found
    }

    /// The tasks downstream of `t`, each once, in the order found; the walk
    /// goes only through the tasks `through` accepts (blocking a failure's
    /// dependents stops at those already done, say).
    pub fn downstream(&self, t: usize, mut through: impl FnMut(usize) -> bool) -> Vec<usize> {
        let mut seen = std::collections::HashSet::new();
        let mut listed = vec![false; self.phases.len()];
        let mut queue = vec![t];
        let mut found = Vec::new();
        while let Some(current) = queue.pop() {
            for d in self.waiting_on_in_walk(current, &mut listed) {
                if seen.insert(d) && through(d) {
                    found.push(d);
                    queue.push(d);
                }
            }
        }
        found
    }

    fn add(&mut self, new: Vec<Task>) -> Vec<Problem> {
        // Each task's checks on every CPU: 100,000 tasks make a tenth of a
        // second's work for one.
        let mut problems: Vec<Problem> = parallel::map(&new, path_problems)
            .into_iter()
            .flatten()
            .collect();
        let first = self.tasks.len();
        // The first batch becomes the graph's tasks as it is: pushed one by
        // one, 100,000 tasks would be copied as the vector grows, and weigh
        // twice what they do for a moment.
        if first == 0 {
            self.tasks = new;
        } else {
            self.tasks.extend(new);
        }
        let added = self.tasks.len() - first;
        self.index.reserve(added);
        self.phase_of.reserve(added);
        self.deps.resize_with(self.tasks.len(), Vec::new);
        self.dependents.resize_with(self.tasks.len(), Vec::new);
        // The tasks come folder by folder: the phase of the task before is
        // most often this one's, found without hashing its name.
        let mut last: Option<usize> = None;
        for t in first..self.tasks.len() {
            let name = self.tasks[t].phase();
            let phase = match last.filter(|&p| self.phases[p].name == name) {
                Some(p) => p,
                None => match self.phase_index.get(name) {
                    Some(&p) => p,
                    None => self.new_phase(name.to_owned()),
                },
            };
            last = Some(phase);
            self.index.insert(self.tasks[t].id.clone(), t);
            self.phases[phase].tasks.push(t);
            self.phase_of.push(phase);
        }
        self.add_depended_on_empty_phases(first);
        self.index_phases();
        problems.extend(self.nested_ids(first));
        // How many of each task's unknown dependencies are searched for a
        // near name, the first `SUGGESTED` of them in all.
        let mut left = SUGGESTED;
        let added: Vec<(usize, usize)> = (first..self.tasks.len())
            .map(|t| {
                let unknown = (self.tasks[t].dependencies.iter())
                    .filter(|name| self.get(name).is_none() && self.phase(name).is_none())
                    .count();
                let searched = unknown.min(left);
                left -= searched;
                (t, searched)
            })
            .collect();
        let resolved = parallel::map(&added, |&(t, searched)| self.resolve(t, searched));
        for ((t, _), (deps, found)) in added.into_iter().zip(resolved) {
            self.deps[t] = deps;
            problems.extend(found);
        }
        for cycle in self.find_cycles() {
            problems.push(self.cycle_problem(&cycle));
        }
        if problems.is_empty() {
            self.link_dependents(first);
            problems = self.unawaited_inputs(first);
        }
        if !problems.is_empty() {
            self.truncate(first);
        }
        problems
    }

    /// Lists the tasks from `first` on among the dependents of what they
    /// depend on.
    fn link_dependents(&mut self, first: usize) {
        for t in first..self.tasks.len() {
            for dep in self.deps[t].clone() {
                match dep {
                    Dep::Task(d) => self.dependents[d].push(t),
                    Dep::Phase(p) => self.phases[p].dependents.push(t),
                }
            }
        }
    }

    /// Tasks from `first` on whose id is inside another's (`p/a/b` beside
    /// `p/a`), or holds one added before (`p/a` joining `p/a/b`): the
    /// output folder of one would be inside the other's, where a glob of
    /// the outer task's outputs takes the inner one's files, and an input
    /// `p/a/b/o.txt` names either.
    fn nested_ids(&self, first: usize) -> Vec<Problem> {
        let why = "(a glob of the outer task's outputs would take the inner one's files); rename one of the two";
        let mut problems = Vec::new();
        for task in &self.tasks[first..] {
            let id = task.id.as_str();
            // The first part is the phase folder, never a task's id (every
            // task is in one): 100,000 lookups saved.
            let mut outers = id.match_indices('/').skip(1).map(|(i, _)| &id[..i]);
            if let Some(outer) = outers.find(|up| self.index.contains_key(*up)) {
                let said = format!("its id `{id}` is inside task {outer}'s: its output folder would be inside that task's {why}");
                problems.push(Problem::in_file(&task.file, None, said));
            }
        }
        // One joining a run, outside a task that is there already (of its
        // phase, the first part of both ids).
        if first > 0 {
            for t in first..self.tasks.len() {
                let (task, phase) = (&self.tasks[t], &self.phases[self.phase_of[t]]);
                let prefix = format!("{}/", task.id);
                let earlier = phase.tasks.iter().filter(|&&e| e < first);
                if let Some(inner) = earlier
                    .map(|&e| &self.tasks[e])
                    .find(|e| e.id.starts_with(&prefix))
                {
                    let said = format!("task {} is inside its id `{}`: its output folder would be inside this task's {why}", inner.id, task.id);
                    problems.push(Problem::in_file(&task.file, None, said));
                }
            }
        }
        problems
    }

    /// Makes a phase of each empty phase folder that the tasks from `first`
    /// on depend on: its gate waits for the earlier phases, and then for
    /// the tasks generated into it.
    fn add_depended_on_empty_phases(&mut self, first: usize) {
        if self.phase_folders.is_empty() {
            return;
        }
        let named: Vec<String> = self.tasks[first..]
            .iter()
            .flat_map(|task| &task.dependencies)
            // The few folders first: most names are task ids, a hash each.
            .filter(|name| self.phase_folders.contains(name) && self.phase(name).is_none())
            .cloned()
            .collect();
        for name in named {
            if self.phase(&name).is_none() {
                self.new_phase(name);
            }
        }
    }

    fn new_phase(&mut self, name: String) -> usize {
        self.phases.push(Phase {
            name: name.clone(),
            tasks: Vec::new(),
            dependents: Vec::new(),
        });
        self.phase_index.insert(name, self.phases.len() - 1);
        self.phases.len() - 1
    }

    fn truncate(&mut self, len: usize) {
        for task in self.tasks.drain(len..) {
            self.index.remove(&task.id);
        }
        self.deps.truncate(len);
        self.dependents.truncate(len);
        self.phase_of.truncate(len);
        // Linked already when a later check found a problem.
        for dependents in &mut self.dependents {
            dependents.retain(|&t| t < len);
        }
        for phase in &mut self.phases {
            phase.tasks.retain(|&t| t < len);
            phase.dependents.retain(|&t| t < len);
        }
        let empty: Vec<String> = self
            .phases
            .iter()
            .filter(|p| p.tasks.is_empty() && p.dependents.is_empty())
            .map(|p| p.name.clone())
            .collect();
        if !empty.is_empty() {
            self.phases
                .retain(|p| !p.tasks.is_empty() || !p.dependents.is_empty());
            self.phase_index = self
                .phases
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), i))
                .collect();
        }
        self.index_phases();
    }

    /// The dependencies of task `t`: the ones it names, and the producers of
    /// its inputs (an input `A/B/file` is produced by task `A/B`). The
    /// first `searched` it names that do not exist are suggested a near
    /// name.
    fn resolve(&self, t: usize, mut searched: usize) -> (Vec<Dep>, Vec<Problem>) {
        let task = &self.tasks[t];
        let mut deps = Vec::new();
        let mut problems = Vec::new();
        let mut at = AtValues::new(&task.file);
        for name in &task.dependencies {
            if let Some(d) = self.get(name) {
                deps.push(Dep::Task(d));
            } else if let Some(p) = self.phase(name) {
                deps.push(Dep::Phase(p));
            } else {
                // Never the task itself, nor its own phase (a cycle).
                let own_phase = task.phase();
                let others = self
                    .index
                    .keys()
                    .chain(self.phase_index.keys())
                    .map(String::as_str)
                    .filter(|id| *id != task.id && *id != own_phase);
                // A path to the task's file (`tasks/p/a.md`) names it.
                let as_file = name
                    .strip_prefix("tasks/")
                    .unwrap_or(name)
                    .strip_suffix(".md");
                // A phase is named by its folder; a name near its key
                // (`analisys` for `01-analysis`) is suggested the folder.
                let by_key = || {
                    let phases = self.phases.iter().filter(|p| p.name != own_phase);
                    let keys = phases.map(|p| phase_key(&p.name));
                    let key = nearest(name, keys)?;
                    self.phases
                        .iter()
                        .find(|p| phase_key(&p.name) == key)
                        .map(|p| p.name.as_str())
                };
                let search = searched > 0;
                searched = searched.saturating_sub(1);
                let hint = match as_file.filter(|id| self.get(id).is_some()) {
                    Some(id) => format!(": did you mean `{id}`? (a task's id is its file's path under tasks/, without `.md`)"),
                    None if !search => String::new(),
                    None => match nearest(name, others).or_else(by_key) {
                        Some(near) => format!(": did you mean `{near}`?"),
                        None => ": no task or phase has that name".to_owned(),
                    },
                };
                problems.push(at.problem(
                    "dependencies",
                    name,
                    format!("unknown dependency `{name}`{hint}"),
                ));
            }
        }
        for input in &task.inputs {
            if let Some(d) = self.get(input) {
                problems.push(at.problem(
                    "inputs",
                    input,
                    format!("input `{input}` is the whole output folder of {}: name a file in it (`{input}/<file>`, one of its `outputs`)", self.tasks[d].id),
                ));
                continue;
            }
            let Some(d) = self.producer(input) else {
                continue;
            };
            if d == t {
                // It would wait for itself: it could never start.
                problems.push(at.problem(
                    "inputs",
                    input,
                    format!("input `{input}` is in the task's own output folder: it would wait for itself; an output of its own is written, not read as an input"),
                ));
                continue;
            }
            deps.push(Dep::Task(d));
            // A glob that does not parse is said as such (`path_problems`),
            // not as an output to declare.
            if glob::Pattern::new(input).is_err() {
                continue;
            }
            if let Some(message) = self.undeclared(d, input) {
                problems.push(at.problem("inputs", input, message));
            }
        }
        // An output in the folder of a task nested in its own (`p/x`'s
        // `y/o.txt`, where `p/x/y` is a task): two writers of one file,
        // and what reads it would wait for the other.
        for output in &task.outputs {
            let path = format!("{}/{output}", task.id);
            if let Some(other) = self.producer(&path).filter(|&o| o != t) {
                let other = &self.tasks[other].id;
                problems.push(at.problem(
                    "outputs",
                    output,
                    format!("output `{output}` is in the output folder of task {other}, nested in this one's: rename one of the two, or write it elsewhere"),
                ));
            }
        }
        deps.sort_by_key(|d| match d {
            Dep::Task(i) => (0, *i),
            Dep::Phase(p) => (1, *p),
        });
        deps.dedup();
        (deps, problems)
    }

    /// What is said of an input produced by task `d` that `d` does not
    /// declare among its outputs: it would be found missing only at run
    /// time.
    fn undeclared(&self, d: usize, input: &str) -> Option<String> {
        if self.declares(d, input) {
            return None;
        }
        let producer = &self.tasks[d];
        let rest = &input[producer.id.len() + 1..];
        let outputs = if producer.outputs.is_empty() {
            "it declares none".to_owned()
        } else {
            format!("it declares {}", producer.outputs.join(", "))
        };
        Some(format!(
            "input `{input}` is not among the outputs of {} ({outputs}): add `{rest}` to its `outputs`, or fix the path",
            producer.id
        ))
    }

    /// Whether task `d` declares `path` (in its output folder) among its
    /// outputs, by name or by a glob; `path` may be a glob that matches a
    /// declared name (`*.json` for `r.json`), or a folder one is in, as the
    /// run finds files: `*` within a folder, and a last `**` never (it
    /// matches the task's own folder, whatever it wrote).
    fn declares(&self, d: usize, path: &str) -> bool {
        let rest = &path[self.tasks[d].id.len() + 1..];
        let matches =
            |pattern: &str, name: &str| glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name));
        let as_found = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let finds = |name: &str| {
            rest != "**"
                && !rest.ends_with("/**")
                && glob::Pattern::new(rest).is_ok_and(|p| p.matches_with(name, as_found))
        };
        // A declared name, or a folder it is in (`p/*` for `sub/r.json`).
        let found = |output: &str| {
            let folders = output.match_indices('/').map(|(i, _)| &output[..i]);
            folders.chain([output]).any(finds)
        };
        self.tasks[d]
            .outputs
            .iter()
            .any(|output| output == rest || matches(output, rest) || found(output))
    }

    /// The task that declares `path` (under `workspace/outputs/`) among its
    /// outputs.
    pub fn declaring_producer(&self, path: &str) -> Option<usize> {
        self.producer(path).filter(|&d| self.declares(d, path))
    }

    /// The task whose output folder holds `path`.
    pub fn producer(&self, path: &str) -> Option<usize> {
        let mut prefix = path;
        while let Some((head, _)) = prefix.rsplit_once('/') {
            if let Some(t) = self.get(head) {
                return Some(t);
            }
            prefix = head;
        }
        None
    }
}

/// Inputs and outputs must stay inside `workspace/outputs/` (and outputs
/// inside the task's own folder there).
fn path_problems(task: &Task) -> Vec<Problem> {
    let mut problems = name_problems(task);
    problems.extend(listed_path_problems(task));
    problems
}

/// The longest name of a task (its file's, without `.md`): the files kept
/// for it add to it (`.<name>.json.prev`, `<name>.attempt-1000.log`, the
/// temporary files beside them), and a file name has at most 255 bytes.
const LONGEST_NAME: usize = 200;

/// How many unknown dependencies are suggested a near name: each search
/// compares the name with every id, and 5,000 mistyped dependencies took
/// 6 s unoptimised. The first are the ones read.
const SUGGESTED: usize = 20;

/// A task whose name leaves no room for the files kept for it.
fn name_problems(task: &Task) -> Vec<Problem> {
    (too_long(&task.id).into_iter())
        .map(|said| Problem::in_file(&task.file, None, said))
        .collect()
}

/// What is wrong with task `id`'s name, when it leaves no room for the
/// files kept for it. Its whole id is one file name too, flattened: the
/// folder its worktree is made in, whose name git gives its record of the
/// worktree (adding a number when taken). Checked of every task, a
/// worktree's or not: a change of the config makes any task one.
pub fn too_long(id: &str) -> Option<String> {
    let name = id.rsplit('/').next().unwrap_or(id);
    if name.len() > LONGEST_NAME {
        return Some(format!(
            "its name is {} bytes long, past the {LONGEST_NAME} a task's can be (the files kept for it add to it, and a file name has at most 255): shorten it",
            name.len()
        ));
    }
    let flat = crate::model::layout::Layout::flat_id(id).len();
    (flat > LONGEST_NAME).then(|| format!(
        "its id is {flat} bytes long as one file name (each `/` written `%2F`, each `%` `%25`), which names the folder its worktree is made in and git's record of it: past the {LONGEST_NAME} it can be (a file name has at most 255); shorten its name or its folders'"
    ))
}

/// Its inputs, outputs and writes that are not right as paths.
fn listed_path_problems(task: &Task) -> Vec<Problem> {
    let lists = [
        ("input", &task.inputs),
        ("output", &task.outputs),
        ("write", &task.writes),
    ];
    // Each with why, and whether where it is relative to is the fix (not
    // for a glob that does not compile: its reason says how to write it).
    let bad: Vec<(&str, &String, String, bool)> = lists
        .into_iter()
        .flat_map(|(kind, paths)| paths.iter().map(move |path| (kind, path)))
        .filter_map(|(kind, path)| {
            let shape = if path.starts_with('/') {
                "is absolute"
            } else if path.split('/').any(|c| c == "..") {
                "climbs out of its folder with `..`"
            } else if path.split('/').any(|c| c.is_empty() || c == ".") {
                // `./a`, `a//b`, `a/`: the same file under another name,
                // which no producer's or overlap's comparison would match.
                "has an empty or `.` part (`./`, `//`, a trailing `/`)"
            } else if path.contains(crate::agent::terminal::acts_on_a_terminal) {
                // Its failures (`missing ...`) are shown on lines of their
                // own, in every view: a terminal would act on it.
                let reason =
                    "holds a control character (a newline, an escape): name the file without one";
                return Some((kind, path, reason.to_owned(), false));
            } else {
                let glob = crate::state::outputs::bad_glob(path)?;
                return Some((kind, path, glob, false));
            };
            Some((kind, path, shape.to_owned(), true))
        })
        .collect();
    if bad.is_empty() {
        return Vec::new();
    }
    let mut at = AtValues::new(&task.file);
    bad.into_iter()
        .map(|(kind, path, reason, relative)| {
            let base = match kind {
                "input" => "workspace/outputs/ (e.g. 01-analysis/01-task/result.json)".to_owned(),
                "output" => format!("workspace/outputs/{}/", task.id),
                _ => "its working folder (e.g. src/parser/*)".to_owned(),
            };
            let fix = match relative {
                true => format!(": write it relative to {base}"),
                false => String::new(),
            };
            at.problem(
                &format!("{kind}s"),
                path,
                format!("{kind} `{path}` {reason}{fix}"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
