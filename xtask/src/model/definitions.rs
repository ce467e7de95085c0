//! Loading everything the orchestrator reads before it acts: the config,
//! every task file, the checked graph, and the programs the tasks run. Every
//! problem is collected, so a user sees them all at once.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use camino::Utf8PathBuf;

use crate::model::config::{Config, ExecutorKind};
use crate::model::discovery::Discovery;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::model::problem::{find_line, nearest, Invalid, Problem};
use crate::model::task::{self, CommandSpec};

pub struct Definitions {
    pub config: Config,
    pub graph: Graph,
    pub discovery: Discovery,
}

/// Every definition, or every problem found in them (as `Invalid`).
pub fn load(layout: &Layout) -> Result<Definitions, Invalid> {
    read(layout).map_err(|problems| invalid(layout, problems))
}

/// `Invalid` with the problems' files shown relative to the root.
pub fn invalid(layout: &Layout, problems: Vec<Problem>) -> Invalid {
    Invalid {
        problems: problems
            .into_iter()
            .map(|p| p.relative_to(&layout.root))
            .collect(),
    }
}

impl Definitions {
    /// The task named `id`, or an error suggesting the nearest id.
    pub fn task(&self, id: &str) -> anyhow::Result<usize> {
        if let Some(t) = self.graph.get(id) {
            return Ok(t);
        }
        match nearest(id, self.graph.tasks.iter().map(|t| t.id.as_str())) {
            Some(near) => anyhow::bail!("no task `{id}`: did you mean `{near}`?"),
            None => anyhow::bail!(
                "no task `{id}` (ids are paths under tasks/ without .md, e.g. 01-analysis/01-setup)"
            ),
        }
    }

    /// The phase folder named by `name`, as a folder (`01-analysis`) or a
    /// key (`analysis`).
    pub fn phase(&self, name: &str) -> anyhow::Result<String> {
        let phases = &self.graph.phases;
        if let Some(phase) = phases
            .iter()
            .find(|p| p.name == name || task::phase_key(&p.name) == name)
        {
            return Ok(phase.name.clone());
        }
        let known: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        anyhow::bail!("no phase `{name}`: the phases are {}", known.join(", "))
    }
}

fn read(layout: &Layout) -> Result<Definitions, Vec<Problem>> {
    let mut problems = Vec::new();
    let config = Config::load(&layout.config_file()).unwrap_or_else(|p| {
        problems.push(p);
        Config::default()
    });
    let mut discovery = Discovery::scan(&layout.tasks);
    problems.append(&mut discovery.problems);
    let mut tasks = Vec::with_capacity(discovery.files.len());
    for file in &discovery.files {
        match task::load(&layout.tasks, file) {
            Ok(task) => tasks.push(task),
            Err(p) => {
                problems.push(p);
                tasks.extend(task::placeholder(&layout.tasks, file));
            }
        }
    }
    match Graph::build(tasks) {
        Ok(graph) if problems.is_empty() => {
            let mut found = unknown_phase_keys(layout, &config, &graph);
            found.extend(over_ceilings(&config, &graph));
            if !found.is_empty() {
                return Err(found);
            }
            Ok(Definitions {
                config,
                graph,
                discovery,
            })
        }
        Ok(_) => Err(problems),
        Err(found) => {
            problems.extend(found);
            Err(problems)
        }
    }
}

/// A phase listed in the config that is close to, but not, the key of a
/// phase folder is a typo that would silently change scheduling. One that
/// resembles none may be for tasks generated later: only a warning.
fn unknown_phase_keys(layout: &Layout, config: &Config, graph: &Graph) -> Vec<Problem> {
    let keys: Vec<&str> = graph
        .phases
        .iter()
        .map(|p| task::phase_key(&p.name))
        .collect();
    let mut problems = Vec::new();
    for (key, line) in &config.listed_phases {
        if keys.contains(&key.as_str()) {
            continue;
        }
        match nearest(key, keys.iter().copied()) {
            Some(near) => problems.push(Problem::in_file(
                &layout.config_file(),
                *line,
                format!("phases.{key} matches no phase folder: did you mean `{near}`?"),
            )),
            None if !Config::default().phases.contains_key(key) => eprintln!(
                "warning: {}: phases.{key} matches no phase folder under tasks/ yet",
                layout.display(&layout.config_file())
            ),
            None => {}
        }
    }
    problems
}

/// Tasks asking for more than `max_cpu_per_agent` or `max_memory_gb`.
fn over_ceilings(config: &Config, graph: &Graph) -> Vec<Problem> {
    let mut problems = Vec::new();
    for task in &graph.tasks {
        let asks = [
            (
                "cpus",
                task.resources.cpus,
                config.max_cpu_per_agent,
                "max_cpu_per_agent",
            ),
            (
                "memory_gb",
                task.resources.memory_gb,
                config.max_memory_gb,
                "max_memory_gb",
            ),
        ];
        for (key, asked, ceiling, setting) in asks {
            if asked.is_some_and(|a| a > ceiling) {
                let line = std::fs::read_to_string(&task.file)
                    .ok()
                    .and_then(|text| find_line(&text, key, 2));
                problems.push(Problem::in_file(
                    &task.file,
                    line,
                    format!(
                        "resources.{key}: {} is more than {setting} ({ceiling}) in tasks/orchestrator.yaml: ask for less, or raise the ceiling",
                        asked.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    problems
}

/// Checks that the programs the given tasks would run, and the executor's
/// own commands, can be run.
pub fn check_programs(
    layout: &Layout,
    defs: &Definitions,
    tasks: &[usize],
    executor: ExecutorKind,
) -> Result<(), Invalid> {
    let mut problems = missing_programs(layout, defs, tasks);
    if executor == ExecutorKind::Slurm {
        problems.extend(missing_slurm_commands());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(invalid(layout, problems))
    }
}

/// Programs the given tasks would run that cannot be found or executed.
fn missing_programs(layout: &Layout, defs: &Definitions, tasks: &[usize]) -> Vec<Problem> {
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for &t in tasks {
        let task = &defs.graph.tasks[t];
        let argv = task::argv(layout, &defs.config, task);
        let program = argv[0].clone();
        if !seen.insert(program.clone()) {
            continue;
        }
        let Some(why) = unusable(layout, &program) else {
            continue;
        };
        let (file, hint) = match &task.command {
            Some(CommandSpec::Argv(_) | CommandSpec::Shell(_)) => {
                (task.file.clone(), "the task's `command`")
            }
            None => (layout.config_file(), "agent.command"),
        };
        let line = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| find_line(&text, &program, 1));
        problems.push(Problem::in_file(
            &file,
            line,
            format!("`{program}` ({hint}, used by {}) {why}", task.id),
        ));
    }
    problems
}

/// The Slurm commands the Slurm executor runs, when they are not on PATH.
fn missing_slurm_commands() -> Vec<Problem> {
    ["sbatch", "scontrol", "scancel"]
        .into_iter()
        .filter(|program| which::which(program).is_err())
        .map(|program| {
            Problem::general(format!(
                "executor slurm: `{program}` is not on PATH (install Slurm's client commands)"
            ))
        })
        .collect()
}

/// Why `program` cannot be run from the root, if it cannot.
fn unusable(layout: &Layout, program: &str) -> Option<String> {
    if !program.contains('/') {
        return match which::which(program) {
            Ok(_) => None,
            Err(_) => Some("is not on PATH: install it or fix the name".to_owned()),
        };
    }
    let path = layout.root.join(program);
    let shown = path
        .strip_prefix(&layout.root)
        .map(Utf8PathBuf::from)
        .unwrap_or(path.clone());
    match path.metadata() {
        Err(e) => Some(format!("cannot be used: {shown}: {e}")),
        Ok(meta) if meta.is_dir() => Some(format!("is a folder: {shown}")),
        Ok(meta) if meta.permissions().mode() & 0o111 == 0 => Some(format!(
            "is not executable: `chmod +x {shown}`, or run it through `sh {shown}`"
        )),
        Ok(_) => None,
    }
}
