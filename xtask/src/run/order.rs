//! The order ready tasks start in, and the run's expected end. Each task
//! has an expected duration: what it took when it last completed
//! (`state::durations`), else the median of its phase's tasks that did,
//! else one second. A task's remaining path is its expected duration plus
//! the longest remaining path of what waits on it (its dependents, and
//! through its phase's gate, what depends on that phase): ready tasks start
//! by `priority:` (higher first), then by the longest remaining path, then
//! by id. With agents that run for hours under a limit of a few at a time,
//! this order, not the id order, decides when the last one ends.
//!
//! Pure: the graph and the durations in, numbers out (unit-tested).

use crate::model::graph::Graph;
use crate::state::durations::Durations;

/// The duration of a task nothing is known of.
const UNKNOWN: f64 = 1.0;

pub struct Order {
    /// Each task's expected duration, in seconds.
    pub expected: Vec<f64>,
    /// Each task's remaining path: it and the longest chain after it.
    pub path: Vec<f64>,
    /// Each task's place in the order tasks start in.
    pub rank: Vec<u32>,
}

impl Order {
    /// Before the graph is read.
    pub fn empty() -> Order {
        Order {
            expected: Vec::new(),
            path: Vec::new(),
            rank: Vec::new(),
        }
    }

    /// The order of `graph`'s tasks; those `done` (completed, not to run
    /// again) weigh nothing on the paths through them: a task whose
    /// dependents are all done has only itself left.
    pub fn new(graph: &Graph, durations: &Durations, done: impl Fn(usize) -> bool) -> Order {
        let expected = expected(graph, durations);
        let path = longest_paths(graph, &expected, |t| !done(t));
        // The keys side by side, not read from 100,000 tasks scattered in
        // memory at each comparison; ties end with the index: a total
        // order, stable or not.
        let mut sorted: Vec<(i64, f64, usize)> = (0..graph.tasks.len())
            .map(|t| (graph.tasks[t].priority, path[t], t))
            .collect();
        sorted.sort_unstable_by(|a, b| {
            (b.0.cmp(&a.0))
                .then(b.1.total_cmp(&a.1))
                .then(a.2.cmp(&b.2))
        });
        let mut rank = vec![0; graph.tasks.len()];
        for (place, &(_, _, t)) in sorted.iter().enumerate() {
            rank[t] = place as u32;
        }
        Order {
            expected,
            path,
            rank,
        }
    }
}

/// What each task is expected to take.
pub fn expected(graph: &Graph, durations: &Durations) -> Vec<f64> {
    let known: Vec<Option<f64>> = graph
        .tasks
        .iter()
        .map(|t| durations.tasks.get(&t.id).copied())
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
    (0..graph.tasks.len())
        .map(|t| known[t].or(medians[graph.phase_of[t]]).unwrap_or(UNKNOWN))
        .collect()
}

/// The longest weighted path from each task to the end of the graph,
/// through the tasks `counts` accepts (a task it refuses adds nothing, and
/// what lies after it still counts). Phase gates are nodes of their own:
/// a task leads to its phase's gate, a gate to the next phase's gate (which
/// waits for it) and to the tasks that depend on its phase.
pub fn longest_paths(graph: &Graph, weight: &[f64], counts: impl Fn(usize) -> bool) -> Vec<f64> {
    let n = graph.tasks.len();
    let mut by_name: Vec<usize> = (0..graph.phases.len()).collect();
    by_name.sort_by(|&a, &b| graph.phases[a].name.cmp(&graph.phases[b].name));
    let mut next_gate = vec![None; graph.phases.len()];
    for pair in by_name.windows(2) {
        next_gate[pair[0]] = Some(pair[1]);
    }
    let successors = |node: usize| {
        let (dependents, gate) = if node < n {
            (&graph.dependents[node], Some(n + graph.phase_of[node]))
        } else {
            let p = node - n;
            (&graph.phases[p].dependents, next_gate[p].map(|q| n + q))
        };
        dependents.iter().copied().chain(gate)
    };
    // Kahn's order of the nodes; then the paths, from the last node back.
    let total = n + graph.phases.len();
    let mut incoming = vec![0u32; total];
    for node in 0..total {
        for s in successors(node) {
            incoming[s] += 1;
        }
    }
    let mut order: Vec<usize> = (0..total).filter(|&v| incoming[v] == 0).collect();
    let mut i = 0;
    while i < order.len() {
        for s in successors(order[i]) {
            incoming[s] -= 1;
            if incoming[s] == 0 {
                order.push(s);
            }
        }
        i += 1;
    }
    let mut path = vec![0.0; total];
    for &node in order.iter().rev() {
        let after = successors(node).map(|s| path[s]).fold(0.0, f64::max);
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

/// Seconds until the run is expected to end: the longer of the remaining
/// critical path and the remaining work spread over what the limits let
/// run at once (`spread`, given each task's seconds left: see
/// `Admission::spread`). A running task has its expected duration less what
/// it has run, never less than a tenth of it; one that runs past it is
/// expected to run as long again as it has overrun (that tenth at least),
/// so that it pushes the end out as the clock goes on. `None` when nothing
/// is left.
pub fn remaining(
    graph: &Graph,
    expected: &[f64],
    left: &[Left],
    spread: impl FnOnce(&[f64]) -> f64,
) -> Option<f64> {
    if left.iter().all(|left| *left == Left::Nothing) {
        return None;
    }
    let own: Vec<f64> = left
        .iter()
        .zip(expected)
        .map(|(left, &e)| match *left {
            Left::Nothing => 0.0,
            Left::Running(ran) => (e - ran).abs().max(e / 10.0),
            Left::All | Left::Paused(_) => e,
        })
        .collect();
    // A paused task's wait is on its paths, but is no work for the slots.
    let waited: Vec<f64> = own
        .iter()
        .zip(left)
        .map(|(&own, left)| match *left {
            Left::Paused(wait) => own + wait.max(0.0),
            _ => own,
        })
        .collect();
    let critical = longest_paths(graph, &waited, |t| left[t] != Left::Nothing)
        .into_iter()
        .fold(0.0, f64::max);
    Some(critical.max(spread(&own)))
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
    fn the_longest_remaining_path_starts_first_whatever_the_ids() {
        // `a` is short and alone; `y` leads a chain of three.
        let g = graph(&[
            ("p/a", &[]),
            ("p/b", &[]),
            ("p/y", &[]),
            ("p/z1", &["p/y"]),
            ("p/z2", &["p/z1"]),
        ]);
        let order = Order::new(&g, &durations(&[]), |_| false);
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
        let order = Order::new(&g, &known, |t| t == done);
        let (a, b) = (g.get("p/a").unwrap(), g.get("p/b").unwrap());
        assert_eq!((order.path[a], order.path[b]), (1.0, 11.0));
        assert!(order.rank[b] < order.rank[a]);
    }

    #[test]
    fn known_durations_and_phase_medians_weigh_the_paths() {
        let g = graph(&[("p/a", &[]), ("p/b", &[]), ("p/c", &[]), ("q/x", &[])]);
        let order = Order::new(
            &g,
            &durations(&[("p/a", 10.0), ("p/b", 30.0), ("p/c", 20.0)]),
            |_| false,
        );
        assert_eq!(order.expected, [10.0, 30.0, 20.0, 1.0]);
        let g = graph(&[("p/a", &[]), ("p/b", &[]), ("p/new", &[])]);
        let order = Order::new(&g, &durations(&[("p/a", 10.0), ("p/b", 30.0)]), |_| false);
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
        let order = Order::new(&g, &durations(&[]), |_| false);
        assert_eq!(order.rank[g.get("p/urgent").unwrap()], 0);
    }

    #[test]
    fn phase_gates_count_in_the_path() {
        // `q/after` depends on the whole phase p: `p/a` leads to it.
        let g = graph(&[("p/a", &[]), ("q/after", &["p"]), ("q/b", &[])]);
        let order = Order::new(&g, &durations(&[("q/after", 5.0)]), |_| false);
        assert_eq!(order.path[g.get("p/a").unwrap()], 6.0);
    }

    #[test]
    fn the_expected_end_is_the_critical_path_or_the_work_over_the_slots() {
        let g = graph(&[("p/a", &[]), ("p/b", &["p/a"]), ("p/c", &[]), ("p/d", &[])]);
        let expected = [10.0, 10.0, 10.0, 10.0];
        let slots = |n: f64| move |own: &[f64]| own.iter().sum::<f64>() / n;
        let all = [Left::All; 4];
        assert_eq!(
            remaining(&g, &expected, &all, slots(1.0)),
            Some(40.0),
            "the work, one at a time"
        );
        assert_eq!(
            remaining(&g, &expected, &all, slots(4.0)),
            Some(20.0),
            "the chain a, b"
        );
        let later = [Left::Running(4.0), Left::All, Left::Nothing, Left::Nothing];
        assert_eq!(remaining(&g, &expected, &later, slots(4.0)), Some(16.0));
        // 5 s past its expected 10: 5 s more expected; at 10.5 s, a tenth.
        let overdue = [Left::Running(15.0), Left::All, Left::Nothing, Left::Nothing];
        assert_eq!(remaining(&g, &expected, &overdue, slots(4.0)), Some(15.0));
        let just = [
            Left::Running(10.5),
            Left::Nothing,
            Left::Nothing,
            Left::Nothing,
        ];
        assert_eq!(remaining(&g, &expected, &just, slots(4.0)), Some(1.0));
        // Paused for 30 s more: its chain starts no sooner, and the wait is
        // no work for the slots.
        let paused = [Left::Paused(30.0), Left::All, Left::Nothing, Left::Nothing];
        assert_eq!(remaining(&g, &expected, &paused, slots(4.0)), Some(50.0));
        let paused = [Left::Nothing, Left::Nothing, Left::Paused(30.0), Left::All];
        assert_eq!(remaining(&g, &expected, &paused, slots(1.0)), Some(40.0));
        let done = [Left::Nothing; 4];
        assert_eq!(remaining(&g, &expected, &done, slots(1.0)), None);
    }
}
