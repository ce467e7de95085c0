//! The cycle search of `Graph`: tasks and phase gates as one graph, each
//! cycle said at its newest task, with what to remove.

use super::{Dep, Graph};
use crate::model::problem::Problem;

impl Graph {
    /// Edges of the graph as the cycle search sees it: tasks, then one node
    /// per phase gate after them. What a node waits for: a task, its
    /// dependencies; a phase's gate, its phase's tasks and the gate of the
    /// phase before it (`before`), which holds the rest of what it waits
    /// for (the gate's every member listed, a graph of as many phases as
    /// tasks took their square).
    fn successors(&self, node: usize, before: &[Option<usize>]) -> Vec<usize> {
        let n = self.tasks.len();
        if node < n {
            return self.deps[node]
                .iter()
                .map(|d| match d {
                    Dep::Task(t) => *t,
                    Dep::Phase(p) => n + p,
                })
                .collect();
        }
        let p = node - n;
        let mut next = self.phases[p].tasks.clone();
        next.extend(before[p].map(|q| n + q));
        next
    }

    /// Each phase's predecessor in name order, for `successors`.
    fn phases_before(&self) -> Vec<Option<usize>> {
        let mut before = vec![None; self.phases.len()];
        for pair in self.phases_by_name().windows(2) {
            before[pair[1]] = Some(pair[0]);
        }
        before
    }

    /// Cycles, each as the list of nodes around it: one for each knot of
    /// tasks that wait for each other (cycles sharing a task with one found
    /// already are not listed again; sharing a gate, they may be apart: a
    /// gate leads through the gates before it, which two cycles of
    /// different phases both go through).
    pub(super) fn find_cycles(&self) -> Vec<Vec<usize>> {
        let total = self.tasks.len() + self.phases.len();
        // 0 = unseen, 1 = on the current path, 2 = done.
        let mut color = vec![0u8; total];
        let mut in_cycle = vec![false; self.tasks.len()];
        let mut cycles = Vec::new();
        let before = self.phases_before();
        for start in 0..total {
            if color[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, Vec<usize>)> =
                vec![(start, self.successors(start, &before))];
            color[start] = 1;
            while let Some((node, next)) = stack.last_mut() {
                let node = *node;
                match next.pop() {
                    None => {
                        color[node] = 2;
                        stack.pop();
                    }
                    Some(succ) if color[succ] == 1 => {
                        let at = stack.iter().position(|(n, _)| *n == succ).unwrap_or(0);
                        let cycle: Vec<usize> = stack[at..].iter().map(|(n, _)| *n).collect();
                        let tasks = || cycle.iter().filter(|&&n| n < self.tasks.len());
                        if tasks().all(|&n| !in_cycle[n]) {
                            for &n in tasks() {
                                in_cycle[n] = true;
                            }
                            cycles.push(cycle);
                        }
                    }
                    Some(succ) if color[succ] == 0 => {
                        color[succ] = 1;
                        stack.push((succ, self.successors(succ, &before)));
                    }
                    Some(_) => {}
                }
            }
        }
        cycles
    }

    pub(super) fn cycle_problem(&self, cycle: &[usize]) -> Problem {
        let n = self.tasks.len();
        let name = |node: usize| {
            if node < n {
                self.tasks[node].id.clone()
            } else {
                format!("phase {}", self.phases[node - n].name)
            }
        };
        // Said at its newest task: during a run, the file that closed the
        // cycle, which is then left out (the graph's are past doubt).
        let at = (0..cycle.len())
            .filter(|&i| cycle[i] < n)
            .max_by_key(|&i| cycle[i])
            .unwrap_or(0);
        let from_there: Vec<usize> = cycle[at..].iter().chain(&cycle[..at]).copied().collect();
        // A gate reached through the gates after it (`successors`) is
        // theirs: the first gate names the phase waited for.
        let mut names: Vec<String> = (from_there.iter().enumerate())
            .filter(|&(i, &node)| i == 0 || node < n || from_there[i - 1] < n)
            .map(|(_, &node)| name(node))
            .collect();
        names.push(name(cycle[at]));
        let first_task = Some(cycle[at]).filter(|&node| node < n).unwrap_or(0);
        // At the line where it names what it waits for in the cycle.
        let next = cycle[(at + 1) % cycle.len()];
        let waits_for = match next < n {
            true => self.tasks[next].id.clone(),
            false => self.phases[next - n].name.clone(),
        };
        // Listed, or implied by an input the next task produces.
        let task = &self.tasks[first_task];
        let input = (!task.dependencies.contains(&waits_for))
            .then(|| {
                // Ids nest (`a/b`, `a/b/c`): the input the next one makes.
                task.inputs
                    .iter()
                    .find(|input| next < n && self.producer(input) == Some(next))
            })
            .flatten();
        let (key, value) = match input {
            Some(input) => ("inputs", input),
            None => ("dependencies", &waits_for),
        };
        Problem::in_file_at_value(
            &task.file,
            key,
            value,
            format!(
                "dependency cycle: {} (each waits for the next): remove one of these dependencies (an input another task produces is one)",
                names.join(" -> ")
            ),
        )
    }
}
