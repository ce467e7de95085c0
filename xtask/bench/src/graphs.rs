//! The graphs every runner is given: `n` trivial tasks in 5 layers for
//! throughput, and a chain for exit-to-dependent-launch latency. Generated
//! deterministically, so every runner and every machine runs the same graph
//! for the same size.

use camino::Utf8PathBuf;

/// Layers of the throughput graphs (BENCHMARKS.md: "N tasks in 5 layers").
pub const LAYERS: usize = 5;
/// Length of the chain that measures exit-to-dependent-launch latency.
pub const CHAIN: usize = 200;

/// What every task of a graph does; the only thing the two kinds of graph
/// differ in besides their edges.
#[derive(Clone, PartialEq)]
pub enum Work {
    /// Writes one small file, `out`: the throughput graphs.
    Echo,
    /// Writes the time it starts to `start`, then as its very last act the
    /// time it ends to `end`: the latency chain. With `stamp` (a small
    /// static C program) when a C compiler is here, else with `date`, whose
    /// own start costs more and shows in every runner's figure.
    Stamps { stamp: Option<Utf8PathBuf> },
}

impl Work {
    /// The file that marks a task done: make's and ninja's target.
    pub fn target(&self) -> &'static str {
        match self {
            Work::Echo => "out",
            Work::Stamps { .. } => "end",
        }
    }

    /// The outputs the orchestrator is told to validate.
    pub fn outputs(&self) -> &'static str {
        match self {
            Work::Echo => "[out]",
            Work::Stamps { .. } => "[start, end]",
        }
    }

    /// The shell command of task `i`, writing its files at `prefix` + name.
    pub fn command(&self, i: usize, prefix: &str) -> String {
        match self {
            Work::Echo => format!("echo {i} > {prefix}out"),
            Work::Stamps { stamp: Some(stamp) } => format!("{stamp} {prefix}"),
            Work::Stamps { stamp: None } => {
                format!("date +%s%N > {prefix}start; date +%s%N > {prefix}end")
            }
        }
    }
}

/// A task graph, tasks in a topological order (dependencies come first),
/// which the floor relies on.
pub struct Graph {
    pub work: Work,
    pub tasks: Vec<Node>,
}

pub struct Node {
    /// The orchestrator's phase folder: `L0`..`L4`, or `chain`.
    pub folder: String,
    pub deps: Vec<usize>,
}

impl Graph {
    /// `n` tasks in 5 layers; each task past the first layer depends on 1 to
    /// 3 distinct tasks of earlier layers. Seeded by `n`, so every runner and
    /// every machine gets the same graph for the same size.
    pub fn layered(n: usize) -> Graph {
        let mut rng = Lcg(n as u64);
        let mut tasks = Vec::with_capacity(n);
        for layer in 0..LAYERS {
            // The first n % LAYERS layers take one task more.
            let size = n / LAYERS + usize::from(layer < n % LAYERS);
            let earlier = tasks.len();
            for _ in 0..size {
                let mut deps = Vec::new();
                if layer > 0 {
                    let want = (1 + rng.below(3)).min(earlier);
                    while deps.len() < want {
                        let dep = rng.below(earlier);
                        if !deps.contains(&dep) {
                            deps.push(dep);
                        }
                    }
                    deps.sort_unstable();
                }
                tasks.push(Node {
                    folder: format!("L{layer}"),
                    deps,
                });
            }
        }
        Graph {
            work: Work::Echo,
            tasks,
        }
    }

    /// `n` tasks, each depending on the one before.
    pub fn chain(n: usize, stamp: Option<Utf8PathBuf>) -> Graph {
        let tasks = (0..n)
            .map(|i| Node {
                folder: "chain".into(),
                deps: i.checked_sub(1).into_iter().collect(),
            })
            .collect();
        Graph {
            work: Work::Stamps { stamp },
            tasks,
        }
    }

    /// Task `i`'s id for the orchestrator: `<folder>/t<i>`.
    pub fn id(&self, i: usize) -> String {
        format!("{}/t{i}", self.tasks[i].folder)
    }

    /// The phase folders, in order, once each.
    pub fn folders(&self) -> Vec<&str> {
        let mut folders: Vec<&str> = self.tasks.iter().map(|t| t.folder.as_str()).collect();
        folders.dedup();
        folders
    }
}

/// Knuth's MMIX linear congruential generator: deterministic and good enough
/// to scatter edges, without a dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // The high bits: the low bits of an LCG have short periods.
        ((self.0 >> 33) % bound as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layered_graph_has_five_layers_and_earlier_deps() {
        let graph = Graph::layered(1003);
        assert_eq!(graph.tasks.len(), 1003);
        assert_eq!(graph.folders(), ["L0", "L1", "L2", "L3", "L4"]);
        let first_layer = graph.tasks.iter().take_while(|t| t.folder == "L0").count();
        for (i, task) in graph.tasks.iter().enumerate() {
            if i < first_layer {
                assert!(task.deps.is_empty());
                continue;
            }
            assert!(
                (1..=3).contains(&task.deps.len()),
                "task {i}: {:?}",
                task.deps
            );
            for &dep in &task.deps {
                assert!(graph.tasks[dep].folder < task.folder, "task {i} -> {dep}");
            }
            let mut distinct = task.deps.clone();
            distinct.dedup();
            assert_eq!(distinct, task.deps);
        }
    }

    #[test]
    fn layered_graph_is_the_same_every_time() {
        let deps = |g: Graph| g.tasks.into_iter().map(|t| t.deps).collect::<Vec<_>>();
        assert_eq!(deps(Graph::layered(500)), deps(Graph::layered(500)));
    }
}
