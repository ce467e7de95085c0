//! The order ready tasks start in, and the run's expected end. Each task
//! has an expected duration: what it took when it last completed (its
//! status, else `state::durations`: `run::history::known_seconds`), else
//! the median of its phase's tasks that did,
//! else one second. A task's remaining path is its expected duration plus
//! the longest remaining path of what waits on it (its dependents, and
//! through its phase's gate, what depends on that phase): ready tasks start
//! by `priority:` (higher first; a task takes the highest of what waits
//! on it), then by the longest remaining path, then by id. With agents
//! that run for hours under a limit of a few at a time, this order, not
//! the id order, decides when the last one ends.
//!
//! Pure: the graph and the durations in, numbers out (unit-tested).

use crate::executor::launch::Limits;
use crate::model::config::Config;
use crate::model::graph::Graph;
use crate::state::durations::{self, Durations};

/// What each task took when it last completed, as `workspace/history.json`
/// keeps it, by task index: `Order::new`'s and `expected`'s `known`.
pub fn kept<'a>(graph: &'a Graph, durations: &'a Durations) -> impl Fn(usize) -> Option<f64> + 'a {
    move |t| durations.tasks.get(&graph.tasks[t].id).copied()
}

/// The duration of a task nothing is known of.
const UNKNOWN: f64 = 1.0;

pub struct Order {
    /// Each task's expected duration, in seconds.
    pub expected: Vec<f64>,
    /// Each task's remaining path: it and the longest chain after it.
    pub path: Vec<f64>,
    /// Each task's priority, or the higher one of what waits on it.
    pub priority: Vec<i64>,
    /// Each task's place in the order tasks start in.
    pub rank: Vec<u32>,
    /// Per phase, what its tasks still to run that nothing is known of are
    /// expected to take (its median, else one second), when it has such
    /// tasks, and what the tasks of the phase completed since told of it.
    guesses: Vec<Option<Guess>>,
}

/// What a phase's unknown tasks are expected to take (the median of the
/// durations known in the phase, else a second), and how many durations
/// of the phase it stands for: those it is the median of and those its
/// tasks completed in since, how many of them over twice it and how many
/// under half.
#[derive(Debug, Clone, Copy)]
struct Guess {
    seconds: f64,
    seen: u32,
    longer: u32,
    shorter: u32,
}

impl Guess {
    /// The guess of a phase whose tasks took `known` (nothing known: a
    /// second), which counts them as seen.
    fn of(known: impl Iterator<Item = f64>, median: Option<f64>) -> Guess {
        let mut guess = Guess {
            seconds: median.unwrap_or(UNKNOWN),
            seen: 0,
            longer: 0,
            shorter: 0,
        };
        for seconds in known {
            guess.count(seconds);
        }
        guess
    }

    fn count(&mut self, seconds: f64) {
        self.seen += 1;
        self.longer += u32::from(seconds > 2.0 * self.seconds);
        self.shorter += u32::from(seconds < self.seconds / 2.0);
    }

    /// A duration counted gives way to another of the same task.
    fn uncount(&mut self, seconds: f64) {
        self.seen = self.seen.saturating_sub(1);
        let longer = u32::from(seconds > 2.0 * self.seconds);
        let shorter = u32::from(seconds < self.seconds / 2.0);
        self.longer = self.longer.saturating_sub(longer);
        self.shorter = self.shorter.saturating_sub(shorter);
    }

    /// Whether most durations counted are over twice the guess, or under
    /// half: the phase's median, were the order made again, would be.
    fn out_of_date(&self) -> bool {
        2 * self.longer.max(self.shorter) > self.seen
    }
}

impl Order {
    /// Before the graph is read.
    pub fn empty() -> Order {
        Order {
            expected: Vec::new(),
            path: Vec::new(),
            priority: Vec::new(),
            rank: Vec::new(),
            guesses: Vec::new(),
        }
    }

    /// The order of `graph`'s tasks; those `done` (completed, not to run
    /// again) weigh nothing on the paths through them: a task whose
    /// dependents are all done has only itself left.
    pub fn new(
        graph: &Graph,
        known: impl Fn(usize) -> Option<f64>,
        done: impl Fn(usize) -> bool,
    ) -> Order {
        let Estimates { known, medians } = estimates(graph, known);
        let expected = expected_of(graph, &known, &medians);
        let guesses = (0..graph.phases.len())
            .map(|p| {
                let tasks = &graph.phases[p].tasks;
                let unknown = |&t: &usize| known[t].is_none() && !done(t);
                let of_tasks = tasks.iter().filter_map(|&t| known[t]);
                tasks
                    .iter()
                    .any(unknown)
                    .then(|| Guess::of(of_tasks, medians[p]))
            })
            .collect();
        let path = longest_paths(graph, &expected, |t| !done(t));
        let priority = priorities(graph, |t| !done(t));
        // The keys side by side, not read from 100,000 tasks scattered in
        // memory at each comparison; ties end with the place in id order:
        // a total order, stable or not.
        let by_id = places_by_id(graph);
        let mut sorted: Vec<(i64, f64, u32, usize)> = (0..graph.tasks.len())
            .map(|t| (priority[t], path[t], by_id[t], t))
            .collect();
        sorted.sort_unstable_by(|a, b| {
            (b.0.cmp(&a.0))
                .then(b.1.total_cmp(&a.1))
                .then(a.2.cmp(&b.2))
        });
        let mut rank = vec![0; graph.tasks.len()];
        for (place, &(_, _, _, t)) in sorted.iter().enumerate() {
            rank[t] = place as u32;
        }
        Order {
            expected,
            path,
            priority,
            rank,
            guesses,
        }
    }

    /// A task of phase `p` completed in `seconds`: whether the order is
    /// now out of date, most of its phase's known durations (those the
    /// order took the phase's median of, and those of its tasks completed
    /// since, each in the place of what the task was known to take before,
    /// `kept`) being over twice, or under half, what the phase's tasks
    /// nothing is known of are expected to take: the median they would be
    /// given now is. On a graph's first run every task is expected to take
    /// a second until some complete: the tasks still to start are ordered
    /// again once they tell more (one completion off by more than that is
    /// enough, at first). Past that, one completion off its phase's median
    /// is not: in a phase of thousands of short tasks, some always a few
    /// milliseconds off the median, the order of every task was made again
    /// as often as the run's time allowed, for nothing, a cost per task
    /// that grew with the graph (BENCHMARKS.md, forty-fourth round).
    pub fn learn(&mut self, p: usize, kept: Option<f64>, seconds: f64) -> bool {
        let Some(guess) = self.guesses.get_mut(p).and_then(Option::as_mut) else {
            return false;
        };
        if !durations::plausible(seconds) {
            return false;
        }
        if let Some(before) = kept.filter(|&before| durations::plausible(before)) {
            guess.uncount(before);
        }
        guess.count(seconds);
        guess.out_of_date()
    }
}

/// Each task's place in id order: its index, but where tasks found
/// during a run joined the graph after the others.
fn places_by_id(graph: &Graph) -> Vec<u32> {
    let mut by_id: Vec<usize> = (0..graph.tasks.len()).collect();
    if !graph.tasks.windows(2).all(|pair| pair[0].id <= pair[1].id) {
        by_id.sort_unstable_by(|&a, &b| graph.tasks[a].id.cmp(&graph.tasks[b].id));
    }
    let mut place = vec![0; graph.tasks.len()];
    for (i, &t) in by_id.iter().enumerate() {
        place[t] = i as u32;
    }
    place
}

/// What is known of each task's duration, and each phase's median of it.
struct Estimates {
    known: Vec<Option<f64>>,
    medians: Vec<Option<f64>>,
}

/// What each task is expected to take, from what `known` says some took
/// (a duration no task can take, in a file edited by hand, says nothing).
pub fn expected(graph: &Graph, known: impl Fn(usize) -> Option<f64>) -> Vec<f64> {
    let Estimates { known, medians } = estimates(graph, known);
    expected_of(graph, &known, &medians)
}

/// What `known` says tasks took, and each phase's median of it.
fn estimates(graph: &Graph, known: impl Fn(usize) -> Option<f64>) -> Estimates {
    let known: Vec<Option<f64>> = (0..graph.tasks.len())
        .map(|t| known(t).filter(|&seconds| durations::plausible(seconds)))
        .collect();
    let medians: Vec<Option<f64>> = graph
        .phases
        .iter()
        .map(|phase| {
            let mut seen: Vec<f64> = phase.tasks.iter().filter_map(|&t| known[t]).collect();
            seen.sort_by(f64::total_cmp);
            let middle = seen.len() / 2;
            match seen.len() {
                0 => None,
                n if n % 2 == 1 => Some(seen[middle]),
                _ => Some((seen[middle - 1] + seen[middle]) / 2.0),
            }
        })
        .collect();
    Estimates { known, medians }
}

fn expected_of(graph: &Graph, known: &[Option<f64>], medians: &[Option<f64>]) -> Vec<f64> {
    (0..graph.tasks.len())
        .map(|t| known[t].or(medians[graph.phase_of[t]]).unwrap_or(UNKNOWN))
        .collect()
}

/// The tasks and the phase gates as one graph. Gates are nodes of their
/// own, numbered after the tasks: a task leads to its phase's gate, a gate
/// to the next phase's gate (which waits for it) and to the tasks that
/// depend on its phase.
struct Nodes<'g> {
    graph: &'g Graph,
    next_gate: Vec<Option<usize>>,
}

impl<'g> Nodes<'g> {
    fn of(graph: &'g Graph) -> Nodes<'g> {
        let mut next_gate = vec![None; graph.phases.len()];
        for pair in graph.phases_by_name().windows(2) {
            next_gate[pair[0]] = Some(pair[1]);
        }
        Nodes { graph, next_gate }
    }

    fn tasks(&self) -> usize {
        self.graph.tasks.len()
    }

    fn total(&self) -> usize {
        self.tasks() + self.graph.phases.len()
    }

    /// The gate node of phase `p`.
    fn gate(&self, p: usize) -> usize {
        self.tasks() + p
    }

    fn successors(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        let n = self.tasks();
        let (dependents, gate) = if node < n {
            (
                &self.graph.dependents[node],
                Some(self.gate(self.graph.phase_of[node])),
            )
        } else {
            let p = node - n;
            (
                &self.graph.phases[p].dependents,
                self.next_gate[p].map(|q| self.gate(q)),
            )
        };
        dependents.iter().copied().chain(gate)
    }

    /// Kahn's order: every node after all that lead to it.
    fn in_order(&self) -> Vec<usize> {
        let mut incoming = vec![0u32; self.total()];
        for node in 0..self.total() {
            for s in self.successors(node) {
                incoming[s] += 1;
            }
        }
        let mut order: Vec<usize> = (0..self.total()).filter(|&v| incoming[v] == 0).collect();
        let mut i = 0;
        while i < order.len() {
            for s in self.successors(order[i]) {
                incoming[s] -= 1;
                if incoming[s] == 0 {
                    order.push(s);
                }
            }
            i += 1;
        }
        order
    }
}

/// The longest weighted path from each task to the end of the graph,
/// through the tasks `counts` accepts (a task it refuses adds nothing, and
/// what lies after it still counts), through the phase gates (`Nodes`).
pub fn longest_paths(graph: &Graph, weight: &[f64], counts: impl Fn(usize) -> bool) -> Vec<f64> {
    let nodes = Nodes::of(graph);
    let n = nodes.tasks();
    let mut path = vec![0.0; nodes.total()];
    for node in nodes.in_order().into_iter().rev() {
        let after = nodes.successors(node).map(|s| path[s]).fold(0.0, f64::max);
        let own = if node < n && counts(node) {
            weight[node]
        } else {
            0.0
        };
        path[node] = own + after;
    }
    path.truncate(n);
    path
}

/// Each task's priority: its own, or the highest of what waits on it
/// (through the tasks `counts` accepts, and the phase gates), which it
/// holds back: a task of priority 10 would otherwise wait while a longer
/// chain of priority 0 went before what it needs. A task `counts` refuses
/// lends none and passes none on: what waits on one completed no longer
/// waits on what it needed, and what waits on one failed or outside the
/// run does not start in it.
fn priorities(graph: &Graph, counts: impl Fn(usize) -> bool) -> Vec<i64> {
    let nodes = Nodes::of(graph);
    let n = nodes.tasks();
    let mut priority = vec![i64::MIN; nodes.total()];
    for node in nodes.in_order().into_iter().rev() {
        if node < n && !counts(node) {
            continue;
        }
        let after = nodes.successors(node).map(|s| priority[s]).max();
        let own = (node < n).then(|| graph.tasks[node].priority);
        priority[node] = own.max(after).unwrap_or(i64::MIN);
    }
    priority.truncate(n);
    for (t, priority) in priority.iter_mut().enumerate() {
        *priority = graph.tasks[t].priority.max(*priority);
    }
    priority
}

/// The earliest the last node can end, from now: each task starts once
/// what leads to it has ended and its pause is over (`wait` from now),
/// runs `own`; a phase's gate opens once its tasks have ended, and no
/// sooner than the phase's work spread over what its limits let run at
/// once (`spread` of its tasks' `own`) after the first of them can start.
/// Without that, a gate behind a phase of `max_parallel: 1` was passed as
/// soon as its longest task could end.
fn earliest_end(
    graph: &Graph,
    own: &[f64],
    wait: &[f64],
    spread: &impl Fn(&mut dyn Iterator<Item = (usize, f64)>) -> f64,
) -> f64 {
    let nodes = Nodes::of(graph);
    let n = nodes.tasks();
    // When each node may start (tasks) or opens at the earliest (gates),
    // and when each phase's first task left may start.
    let mut start = vec![0.0f64; nodes.total()];
    let mut phase_start = vec![f64::INFINITY; graph.phases.len()];
    let mut last = 0.0f64;
    for node in nodes.in_order() {
        let end = if node < n {
            // The pause ends at a time, whatever it waits on.
            let begins = start[node].max(wait[node]);
            if own[node] > 0.0 {
                let p = graph.phase_of[node];
                phase_start[p] = phase_start[p].min(begins);
            }
            begins + own[node]
        } else {
            let p = node - n;
            let mut work = graph.phases[p].tasks.iter().map(|&t| (t, own[t]));
            let spread_out = phase_start[p] + spread(&mut work);
            start[node].max(if spread_out.is_finite() {
                spread_out
            } else {
                0.0
            })
        };
        last = last.max(end);
        for s in nodes.successors(node) {
            start[s] = start[s].max(end);
        }
    }
    last
}

/// What is left of a task, for the expected end of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Left {
    /// Done, or never to run (failed, blocked): nothing.
    Nothing,
    /// Running for this many seconds.
    Running(f64),
    /// Still to run.
    All,
    /// Still to run, paused by a rate limit for this many seconds more: it
    /// starts no sooner.
    Paused(f64),
}

/// Seconds from now until `at` (none once it has passed).
pub fn seconds_until(at: std::time::SystemTime) -> f64 {
    at.duration_since(std::time::SystemTime::now())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The longest an attempt of each task may run, in seconds: its timeout
/// (its own, else its phase's) and the kill grace after it; none without
/// a timeout. `remaining` expects no attempt to run past it.
pub fn longest(graph: &Graph, config: &Config) -> Vec<Option<f64>> {
    graph
        .tasks
        .iter()
        .map(|task| Limits::timeout_of(config, task).map(|t| (t + config.kill_grace).as_secs_f64()))
        .collect()
}

/// Seconds until the run is expected to end: the longer of the earliest
/// end of the remaining graph (its critical path, each phase gate opening
/// no sooner than its phase's work allows: `earliest_end`) and the
/// remaining work spread over what the limits let run at once (`spread`,
/// given each task's seconds left: see `Admission::spread`). A running
/// task has its expected duration less what it has run, never less than a
/// tenth of it; one that runs past it is expected to run as long again as
/// it has overrun (that tenth at least), so that it pushes the end out as
/// the clock goes on, but never past its timeout (`longest`), which stops
/// it. `None` when nothing is left.
pub fn remaining(
    graph: &Graph,
    expected: &[f64],
    left: &[Left],
    longest: &[Option<f64>],
    spread: impl Fn(&mut dyn Iterator<Item = (usize, f64)>) -> f64,
) -> Option<f64> {
    if left.iter().all(|left| *left == Left::Nothing) {
        return None;
    }
    let own: Vec<f64> = (left.iter().zip(expected).zip(longest))
        .map(|((left, &e), &longest)| {
            let longest = longest.unwrap_or(f64::INFINITY);
            match *left {
                Left::Nothing => 0.0,
                Left::Running(ran) => (e - ran).abs().max(e / 10.0).min((longest - ran).max(0.0)),
                Left::All | Left::Paused(_) => e.min(longest),
            }
        })
        .collect();
    // A paused task's wait is on its paths, but is no work for the slots.
    let wait: Vec<f64> = left
        .iter()
        .map(|left| match *left {
            Left::Paused(wait) => wait.max(0.0),
            _ => 0.0,
        })
        .collect();
    let critical = earliest_end(graph, &own, &wait, &spread);
    let all = spread(&mut own.iter().copied().enumerate());
    Some(critical.max(all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::Task;
    use camino::Utf8PathBuf;

    fn graph(tasks: &[(&str, &[&str])]) -> Graph {
        let tasks = tasks
            .iter()
            .map(|(id, deps)| {
                Task::new(
                    id,
                    Utf8PathBuf::from(format!("/nonexistent/{id}.md")),
                    deps.iter().map(|d| d.to_string()).collect(),
                )
            })
            .collect();
        Graph::build(tasks).unwrap()
    }

    fn durations(known: &[(&str, f64)]) -> Durations {
        Durations {
            tasks: known.iter().map(|(id, s)| (id.to_string(), *s)).collect(),
            unread: None,
        }
    }

    #[test]
    fn the_order_is_out_of_date_once_most_completions_of_a_phase_say_so() {
        let g = graph(&[("p/a", &[]), ("p/b", &[]), ("q/c", &[])]);
        // `q/c` is known: nothing learnt of its phase changes the order.
        let mut order = Order::new(&g, kept(&g, &durations(&[("q/c", 5.0)])), |_| false);
        assert!(!order.learn(1, None, 500.0));
        // `p`'s tasks are expected to take a second: one close to it says
        // nothing; one of four seconds is one of two off; then two of three.
        assert!(!order.learn(0, None, 1.5));
        assert!(!order.learn(0, None, 4.0));
        assert!(order.learn(0, None, 3.0));
        // A first completion far off is enough; an impossible one is not.
        let mut order = Order::new(&g, kept(&g, &durations(&[])), |_| false);
        assert!(!order.learn(0, None, -1.0));
        assert!(order.learn(0, None, 0.01));
        // A phase whose tasks to run are all known guesses nothing.
        let known = durations(&[("p/a", 1.0), ("q/c", 1.0)]);
        let mut order = Order::new(&g, kept(&g, &known), |t| t == 1);
        assert!(!order.learn(0, None, 100.0));
    }

    #[test]
    fn a_phase_median_measured_moves_only_with_most_of_its_durations() {
        let g = graph(&[("p/a", &[]), ("p/b", &[]), ("p/c", &[]), ("p/d", &[])]);
        // `p/d`, unknown, is expected to take the median of the three
        // others' second: up to three completions of five seconds leave
        // at least half of the phase's durations at about a second (the
        // rule before this one made the order again at the first).
        let known = durations(&[("p/a", 1.0), ("p/b", 0.9), ("p/c", 1.1)]);
        let mut order = Order::new(&g, kept(&g, &known), |_| false);
        assert!(!order.learn(0, None, 5.0));
        assert!(!order.learn(0, None, 5.0));
        assert!(!order.learn(0, None, 5.0));
        // Four of seven over twice the median: the phase's is now.
        assert!(order.learn(0, None, 5.0));
        // A task known before counts once, with what it took now: two of
        // the three over twice the median.
        let mut order = Order::new(&g, kept(&g, &known), |_| false);
        assert!(!order.learn(0, Some(1.0), 5.0));
        assert!(order.learn(0, Some(0.9), 5.0));
    }

    #[test]
    fn the_longest_remaining_path_starts_first_whatever_the_ids() {
        // `a` is short and alone; `y` leads a chain of three.
        let g = graph(&[
            ("p/a", &[]),
            ("p/b", &[]),
            ("p/y", &[]),
            ("p/z1", &["p/y"]),
            ("p/z2", &["p/z1"]),
        ]);
        let order = Order::new(&g, kept(&g, &durations(&[])), |_| false);
        let first = (0..5).min_by_key(|&t| order.rank[t]).unwrap();
        assert_eq!(g.tasks[first].id, "p/y");
        assert_eq!(order.path[first], 3.0);
        // Ties (both alone, one unit each) by id.
        assert!(order.rank[g.get("p/a").unwrap()] < order.rank[g.get("p/b").unwrap()]);
    }

    #[test]
    fn what_is_done_weighs_nothing_on_the_paths() {
        // `a` leads to a long task already completed; `b` to one to run.
        let g = graph(&[
            ("p/a", &[]),
            ("p/b", &[]),
            ("q/e", &["p/a"]),
            ("q/f", &["p/b"]),
        ]);
        let known = durations(&[("q/e", 100.0), ("q/f", 10.0)]);
        let done = g.get("q/e").unwrap();
        let order = Order::new(&g, kept(&g, &known), |t| t == done);
        let (a, b) = (g.get("p/a").unwrap(), g.get("p/b").unwrap());
        assert_eq!((order.path[a], order.path[b]), (1.0, 11.0));
        assert!(order.rank[b] < order.rank[a]);
    }

    #[test]
    fn known_durations_and_phase_medians_weigh_the_paths() {
        let g = graph(&[("p/a", &[]), ("p/b", &[]), ("p/c", &[]), ("q/x", &[])]);
        let order = Order::new(
            &g,
            kept(
                &g,
                &durations(&[("p/a", 10.0), ("p/b", 30.0), ("p/c", 20.0)]),
            ),
            |_| false,
        );
        assert_eq!(order.expected, [10.0, 30.0, 20.0, 1.0]);
        let g = graph(&[("p/a", &[]), ("p/b", &[]), ("p/new", &[])]);
        let order = Order::new(
            &g,
            kept(&g, &durations(&[("p/a", 10.0), ("p/b", 30.0)])),
            |_| false,
        );
        assert_eq!(
            order.expected[2], 20.0,
            "the median of the phase's known ones"
        );
    }

    #[test]
    fn a_priority_comes_before_the_path() {
        let mut tasks: Vec<Task> = ["p/long", "p/next", "p/urgent"]
            .iter()
            .map(|id| Task::new(id, Utf8PathBuf::from("/x.md"), Vec::new()))
            .collect();
        tasks[1].dependencies = vec!["p/long".into()];
        tasks[2].priority = 5;
        let g = Graph::build(tasks).unwrap();
        let order = Order::new(&g, kept(&g, &durations(&[])), |_| false);
        assert_eq!(order.rank[g.get("p/urgent").unwrap()], 0);
    }

    #[test]
    fn what_waits_on_a_task_lends_it_its_priority_unless_done() {
        let mut tasks: Vec<Task> = ["p/chain", "p/needed", "p/urgent"]
            .iter()
            .map(|id| Task::new(id, Utf8PathBuf::from("/x.md"), Vec::new()))
            .collect();
        tasks[2].dependencies = vec!["p/needed".into()];
        tasks[2].priority = 5;
        let g = Graph::build(tasks).unwrap();
        let known = durations(&[("p/chain", 60.0)]);
        let (chain, needed) = (g.get("p/chain").unwrap(), g.get("p/needed").unwrap());
        let order = Order::new(&g, kept(&g, &known), |_| false);
        assert!(order.rank[needed] < order.rank[chain]);
        let urgent = g.get("p/urgent").unwrap();
        let order = Order::new(&g, kept(&g, &known), |t| t == urgent);
        assert!(order.rank[needed] > order.rank[chain]);
    }

    #[test]
    fn phase_gates_count_in_the_path() {
        // `q/after` depends on the whole phase p: `p/a` leads to it.
        let g = graph(&[("p/a", &[]), ("q/after", &["p"]), ("q/b", &[])]);
        let order = Order::new(&g, kept(&g, &durations(&[("q/after", 5.0)])), |_| false);
        assert_eq!(order.path[g.get("p/a").unwrap()], 6.0);
    }

    #[test]
    fn the_expected_end_is_the_critical_path_or_the_work_over_the_slots() {
        let g = graph(&[("p/a", &[]), ("p/b", &["p/a"]), ("p/c", &[]), ("p/d", &[])]);
        let expected = [10.0, 10.0, 10.0, 10.0];
        let slots = |n: f64| {
            move |own: &mut dyn Iterator<Item = (usize, f64)>| own.map(|(_, s)| s).sum::<f64>() / n
        };
        let all = [Left::All; 4];
        assert_eq!(
            remaining(&g, &expected, &all, &[None; 4], slots(1.0)),
            Some(40.0),
            "the work, one at a time"
        );
        assert_eq!(
            remaining(&g, &expected, &all, &[None; 4], slots(4.0)),
            Some(20.0),
            "the chain a, b"
        );
        let later = [Left::Running(4.0), Left::All, Left::Nothing, Left::Nothing];
        assert_eq!(
            remaining(&g, &expected, &later, &[None; 4], slots(4.0)),
            Some(16.0)
        );
        // 5 s past its expected 10: 5 s more expected; at 10.5 s, a tenth.
        let overdue = [Left::Running(15.0), Left::All, Left::Nothing, Left::Nothing];
        assert_eq!(
            remaining(&g, &expected, &overdue, &[None; 4], slots(4.0)),
            Some(15.0)
        );
        let just = [
            Left::Running(10.5),
            Left::Nothing,
            Left::Nothing,
            Left::Nothing,
        ];
        assert_eq!(
            remaining(&g, &expected, &just, &[None; 4], slots(4.0)),
            Some(1.0)
        );
        // Paused for 30 s more: its chain starts no sooner, and the wait is
        // no work for the slots.
        let paused = [Left::Paused(30.0), Left::All, Left::Nothing, Left::Nothing];
        assert_eq!(
            remaining(&g, &expected, &paused, &[None; 4], slots(4.0)),
            Some(50.0)
        );
        let paused = [Left::Nothing, Left::Nothing, Left::Paused(30.0), Left::All];
        assert_eq!(
            remaining(&g, &expected, &paused, &[None; 4], slots(1.0)),
            Some(40.0)
        );
        // Its pause ends in 5 s, while what it waits on runs 10: the pause
        // ends at a time, it is not added to the wait.
        let behind = [Left::All, Left::Paused(5.0), Left::Nothing, Left::Nothing];
        assert_eq!(
            remaining(&g, &expected, &behind, &[None; 4], slots(4.0)),
            Some(20.0)
        );
        let done = [Left::Nothing; 4];
        assert_eq!(
            remaining(&g, &expected, &done, &[None; 4], slots(1.0)),
            None
        );
    }

    #[test]
    fn a_phase_gate_opens_no_sooner_than_its_work_allows() {
        // q/x waits for phase p, whose work runs one task at a time.
        let g = graph(&[("p/a", &[]), ("p/b", &[]), ("q/x", &["p"]), ("q/y", &[])]);
        let expected = [10.0, 10.0, 10.0, 1.0];
        let p = g.get("p/a").map(|t| g.phase_of[t]).unwrap();
        let one_at_a_time_in_p = |own: &mut dyn Iterator<Item = (usize, f64)>| {
            let (mut in_p, mut all) = (0.0, 0.0);
            for (t, s) in own {
                all += s;
                in_p += if g.phase_of[t] == p { s } else { 0.0 };
            }
            f64::max(in_p, all / 4.0)
        };
        let all = [Left::All; 4];
        assert_eq!(
            remaining(&g, &expected, &all, &[None; 4], one_at_a_time_in_p),
            Some(30.0),
            "a, b, then x"
        );
        // a has run 5 s of its 10: 5 + 10 of p, then x.
        let running = [Left::Running(5.0), Left::All, Left::All, Left::Nothing];
        assert_eq!(
            remaining(&g, &expected, &running, &[None; 4], one_at_a_time_in_p),
            Some(25.0)
        );
        // b paused 20 s more: p's work starts when a does, b after its
        // pause, so x after 30 s.
        let paused = [Left::Nothing, Left::Paused(20.0), Left::All, Left::Nothing];
        assert_eq!(
            remaining(&g, &expected, &paused, &[None; 4], one_at_a_time_in_p),
            Some(40.0)
        );
    }
}
