//! What the scheduler tells without running anything (`next`, the waves of
//! a dry run, why a task waits) and the summary at the end of a run.

use super::*;

impl Scheduler<'_> {
    /// What would start now, in order, and the first tasks that wait, with
    /// what each waits on.
    pub(super) fn next(&mut self) -> i32 {
        // Tasks running now hold their slots and memory.
        let running: Vec<usize> = (0..self.graph.tasks.len())
            .filter(|&t| self.node[t] == Node::Running)
            .collect();
        for &t in &running {
            self.running_in_phase[self.graph.phase_of[t]] += 1;
            self.wave.push(t);
        }
        let _ = self.launch_ready();
        let starting = &self.wave[running.len()..];
        if !running.is_empty() {
            println!("Running now: {}", running.len());
        }
        if starting.is_empty() {
            println!("Nothing more would start now.");
        } else {
            println!("Would start now, in this order:");
        }
        for &t in starting {
            let launch = self.launch_spec(t, 0, self.attempt[t] + 1);
            println!(
                "  {:<40} {}",
                launch.task_id,
                format::shell_words(&launch.argv)
            );
        }
        const SHOWN: usize = 10;
        let waiting: Vec<usize> = (0..self.graph.tasks.len())
            .filter(|&t| {
                matches!(
                    self.node[t],
                    Node::Waiting | Node::NeedsInputs | Node::Ready
                )
            })
            .collect();
        if !waiting.is_empty() {
            println!("Waiting ({}):", waiting.len());
        }
        for &t in waiting.iter().take(SHOWN) {
            println!("  {}: {}", self.graph.tasks[t].id, self.waiting_reason(t));
        }
        if waiting.len() > SHOWN {
            println!("  ... and {} more", waiting.len() - SHOWN);
        }
        exit::SUCCESS
    }

    /// Plans the run in waves, as if each wave ended before the next began.
    pub(super) fn dry_run(&mut self) -> i32 {
        println!("Dry run: nothing is launched or written.");
        let ids = |nodes: &[usize]| -> String {
            let ids: Vec<&str> = nodes
                .iter()
                .map(|&t| self.graph.tasks[t].id.as_str())
                .collect();
            format!("({}): {}", ids.len(), ids.join(", "))
        };
        let completed: Vec<usize> = (0..self.graph.tasks.len())
            .filter(|&t| self.node[t] == Node::Completed && self.selected(t))
            .collect();
        if !completed.is_empty() {
            println!("Already completed {}", ids(&completed));
        }
        let running: Vec<usize> = (0..self.graph.tasks.len())
            .filter(|&t| self.node[t] == Node::Running)
            .collect();
        if !running.is_empty() {
            println!("Running now {}", ids(&running));
        }
        // Planned as if they ended first.
        for t in running {
            self.on_completed(t);
        }
        let mut number = 0;
        loop {
            let _ = self.launch_ready();
            if self.wave.is_empty() {
                break;
            }
            number += 1;
            println!("Wave {number}:");
            for (i, &t) in self.wave.iter().enumerate() {
                let mut launch = self.launch_spec(t, i + 1, self.attempt[t] + 1);
                if self.options.executor == ExecutorKind::Slurm {
                    launch.argv = executor::slurm::sbatch_args(
                        &self.config.slurm,
                        &self.layout.root,
                        &launch,
                        &self.limits(t),
                    );
                }
                println!(
                    "  {:<40} agent-{}  {}",
                    launch.task_id,
                    i + 1,
                    format::shell_words(&launch.argv)
                );
            }
            for t in std::mem::take(&mut self.wave) {
                self.running_in_phase[self.graph.phase_of[t]] -= 1;
                self.on_completed(t);
            }
        }
        let stuck = self.not_started();
        for line in &stuck {
            println!("  would not start: {line}");
        }
        if stuck.is_empty() {
            exit::SUCCESS
        } else {
            exit::TASK_FAILED
        }
    }

    /// Selected tasks that never started, each with why.
    fn not_started(&self) -> Vec<String> {
        (0..self.graph.tasks.len())
            .filter(|&t| {
                matches!(
                    self.node[t],
                    Node::Waiting | Node::NeedsInputs | Node::Ready
                )
            })
            .map(|t| format!("{}: {}", self.graph.tasks[t].id, self.waiting_reason(t)))
            .collect()
    }

    fn waiting_reason(&self, t: usize) -> String {
        if self.node[t] == Node::Ready {
            let phase = self.graph.phase_of[t];
            return format!(
                "ready, held back by the limits ({} of {} slots busy, {} of {} in phase {}, {} GiB of memory reserved)",
                self.active.len() + self.wave.len(),
                self.jobs,
                self.running_in_phase[phase],
                self.phase_limit(phase),
                self.graph.phases[phase].name,
                self.active.keys().chain(&self.wave).map(|&r| self.limits(r).memory_gb).sum::<f64>(),
            );
        }
        if self.node[t] == Node::NeedsInputs {
            let missing: Vec<String> = self
                .missing_inputs(t)
                .into_iter()
                .map(|input| {
                    let why = match self.graph.producer(&input) {
                        Some(p) if self.node[p] == Node::Completed => {
                            format!(
                                "its producer {} completed without writing it",
                                self.graph.tasks[p].id
                            )
                        }
                        Some(p) => {
                            format!("its producer {} did not complete", self.graph.tasks[p].id)
                        }
                        None => "no task produces it".to_owned(),
                    };
                    format!("workspace/outputs/{input} ({why})")
                })
                .collect();
            return format!("missing input {}", missing.join(", "));
        }
        let waits: Vec<String> = self.graph.deps[t]
            .iter()
            .filter_map(|dep| match *dep {
                Dep::Task(d) if self.node[d] != Node::Completed => {
                    Some(format!("{} ({})", self.graph.tasks[d].id, self.describe(d)))
                }
                Dep::Phase(p) if !self.gate_open[p] => {
                    let artifacts = self.gate_artifacts_missing(p);
                    let detail = if self.gate_unmet[p] == 0 && !artifacts.is_empty() {
                        format!("its gate needs {}", artifacts.join(", "))
                    } else {
                        format!(
                            "{} task(s) of it or earlier phases not completed",
                            self.gate_unmet[p]
                        )
                    };
                    Some(format!("phase {} ({detail})", self.graph.phases[p].name))
                }
                _ => None,
            })
            .collect();
        format!("waits on {}", waits.join(", "))
    }

    fn describe(&self, t: usize) -> &'static str {
        match self.node[t] {
            Node::Unselected => "not selected in this run",
            Node::Failed => "failed",
            Node::Blocked => "blocked",
            Node::Running if self.options.mode.plans_only() => "starts now",
            Node::Running => "running",
            Node::Completed => "completed",
            Node::Waiting | Node::Ready | Node::NeedsInputs => "not started",
        }
    }

    /// Prints the end-of-run summary; returns the exit code.
    pub(super) fn summary(&mut self) -> i32 {
        self.printer.finish();
        let selected: Vec<usize> = (0..self.graph.tasks.len())
            .filter(|&t| self.selected(t))
            .collect();
        let count = |node: Node| selected.iter().filter(|&&t| self.node[t] == node).count();
        let (completed, failed, blocked) = (
            count(Node::Completed),
            count(Node::Failed),
            count(Node::Blocked),
        );
        let not_started = self.not_started();
        println!();
        self.printer.line(
            if failed + blocked + not_started.len() + self.invalid.len() == 0 { Tone::Good } else { Tone::Bad },
            &format!(
                "Summary: {completed} completed, {failed} failed, {blocked} blocked, {} not started{} ({})",
                not_started.len(),
                match self.invalid.len() {
                    0 => String::new(),
                    n => format!(", {n} invalid task file(s)"),
                },
                format::duration(self.begun.elapsed()),
            ),
        );
        for &t in &selected {
            let id = &self.graph.tasks[t].id;
            match self.node[t] {
                Node::Failed => println!(
                    "  failed   {id}: {} (log: {})",
                    self.error[t].as_deref().unwrap_or("failed"),
                    self.layout.display(&self.layout.log_file(id))
                ),
                Node::Blocked => println!(
                    "  blocked  {id}: blocked by {}",
                    self.blocked_by[t].map_or("?", |b| self.graph.tasks[b].id.as_str())
                ),
                _ => {}
            }
        }
        for line in &not_started {
            println!("  waiting  {line}");
        }
        for problem in &self.invalid {
            println!("  invalid  {problem}");
        }
        match &self.stop {
            Some(Stop::Signal(signal)) => return 128 + signal,
            Some(Stop::Fatal(error)) => {
                self.printer.line(Tone::Bad, &format!("error: {error}"));
                return exit::TASK_FAILED;
            }
            None => {}
        }
        if completed == selected.len() && self.invalid.is_empty() {
            exit::SUCCESS
        } else {
            exit::TASK_FAILED
        }
    }
}
