//! Loading everything the orchestrator reads before it acts: the config,
//! every task file, the checked graph, and the programs the tasks run. Every
//! problem of every kind is collected, so that a user sees them all at once,
//! not one stage after the other.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;

use crate::agent::terminal::escaped;
use crate::model::argv;
use crate::model::cache::Cache;
use crate::model::config::{Config, ExecutorKind, Workdir};
use crate::model::discovery::Discovery;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::model::problem::{find_line, nearest, Invalid, Problem};
use crate::model::prompt::{Context, Template};
use crate::model::task::{self, CommandSpec, Task};
use crate::state::durations::Durations;

mod agents;
mod worktrees;
use agents::{
    warn_idle_timeouts_on_quiet_agents, warn_regex_prompt_patterns, warn_uncosted_agents,
    warn_unread_results,
};
pub use worktrees::{branch_clash_with, branches, Branches};
use worktrees::{branch_clashes, ports_problem, worktree_problem};

pub struct Definitions {
    pub layout: Layout,
    pub config: Config,
    pub graph: Graph,
    pub discovery: Discovery,
    /// How long tasks took in earlier runs (`workspace/history.json`), for
    /// the order: read beside the task files, on a thread of its own.
    pub durations: Durations,
    /// The parsed task files, when there was no workspace to store them in
    /// (see `save_cache`).
    unsaved_cache: Option<Cache>,
}

/// What a command will run, whose programs `load_to_run` checks.
pub struct Runs<'a> {
    /// The tasks it may start.
    pub tasks: &'a dyn Fn(&Task) -> bool,
    /// Where (`None`: the config's `executor`).
    pub executor: Option<ExecutorKind>,
    /// Whether worktrees can be made or used here, changing nothing
    /// (`git::worktrees::usable`: given, so that the model calls no git).
    pub worktrees_usable: fn(&Layout, &crate::model::config::Worktrees) -> anyhow::Result<()>,
    /// Its `-j` (`None`: the config's `max_concurrent_agents`).
    pub jobs: Option<usize>,
    /// No task file at all is no problem: a `monitor` that waits for
    /// tasks a killed run left running, their files gone since.
    pub none_needed: bool,
}

/// Every definition, or every problem found in them (as `Invalid`).
pub fn load(layout: &Layout) -> Result<Definitions, Invalid> {
    read(layout, None).map_err(|problems| invalid(layout, problems))
}

/// For a command that reads a task's files without the definitions (its
/// log, its events), which found none of `id`: the nearest id, as every
/// other command suggests it. Nothing when `id` is a task, or when the
/// definitions cannot be read (the caller's own message stands).
pub fn suggest_task(layout: &Layout, id: &str) -> anyhow::Result<()> {
    if let Ok(defs) = load(layout) {
        defs.task(id)?;
    }
    Ok(())
}

/// `load`, and the programs of the tasks `runs` names (and those of its
/// executor) checked too, for a command that starts tasks.
pub fn load_to_run(layout: &Layout, runs: &Runs) -> Result<Definitions, Invalid> {
    read(layout, Some(runs)).map_err(|problems| invalid(layout, problems))
}

/// `Invalid` with the problems' files shown as `Layout::display` does.
pub fn invalid(layout: &Layout, problems: Vec<Problem>) -> Invalid {
    Invalid {
        problems: problems
            .into_iter()
            .map(|p| p.relative_to(layout.here()))
            .collect(),
    }
}

impl Definitions {
    /// Stores the parsed task files that found no workspace when they were
    /// read: for a run, once it has made it (a command that fails before
    /// then leaves none behind).
    pub fn save_cache(&mut self) {
        if let Some(cache) = self.unsaved_cache.take() {
            cache.save(&self.graph.tasks);
        }
    }

    /// The task named `typed` (its id, or its file's path), or an error
    /// suggesting the nearest id.
    pub fn task(&self, typed: &str) -> anyhow::Result<usize> {
        let typed_id = self.layout.typed_id(typed);
        let id: &str = &typed_id;
        if let Some(t) = self.graph.get(id) {
            return Ok(t);
        }
        // Echoed in the error as typed, but for what would act on a terminal.
        let typed = &escaped(typed, &[]);
        let ids = || self.graph.tasks.iter().map(|t| t.id.as_str());
        // A task's name without its phase: `03-prioritize`.
        let named: Vec<&str> = ids().filter(|i| i.rsplit('/').next() == Some(id)).collect();
        // A phase where a task was asked for: this command takes one task.
        let folder = id.trim_end_matches('/');
        let phase = self
            .graph
            .phases
            .iter()
            .find(|p| names_phase(folder, &p.name));
        if let (Some(phase), []) = (phase, named.as_slice()) {
            let tasks: Vec<String> = (phase.tasks.iter().take(3))
                .map(|&t| format!("`{}`", self.graph.tasks[t].id))
                .collect();
            match tasks.is_empty() {
                true => anyhow::bail!("`{typed}` is a phase, with no task yet"),
                false => anyhow::bail!(
                    "`{typed}` is a phase: give one of its tasks, such as {}",
                    tasks.join(", ")
                ),
            }
        }
        let list = format!("`{}` lists them", self.layout.cmd("progress --tasks"));
        match (named.as_slice(), nearest(id, ids())) {
            ([one], _) => anyhow::bail!("no task `{typed}`: did you mean `{one}`? (ids include the phase folder)"),
            ([], Some(near)) => anyhow::bail!("no task `{typed}`: did you mean `{near}`?"),
            ([], None) => match self.graph.tasks.first() {
                Some(example) => anyhow::bail!(
                    "no task `{typed}`: ids are paths under tasks/ without .md, such as `{}`; {list}",
                    example.id
                ),
                None => anyhow::bail!(
                    "no task `{typed}`: tasks/ has no task yet (`{}` adds one)",
                    self.layout.cmd("new PHASE/NAME")
                ),
            },
            (many, _) => anyhow::bail!("no task `{typed}`: did you mean one of {}?", many.join(", ")),
        }
    }

    /// The tasks `name` names: a task (as `task` reads it), or every task
    /// of a phase (as `phase` reads it).
    pub fn tasks_named(&self, name: &str) -> anyhow::Result<Vec<usize>> {
        if self.graph.get(&self.layout.typed_id(name)).is_none() {
            if let Ok(phase) = self.phase(name) {
                let p = self.graph.phase(&phase).expect("a phase of the graph");
                return Ok(self.graph.phases[p].tasks.clone());
            }
        }
        let task = self.task(name);
        // No `/`, and no task's name near it (which `task` suggests): a
        // phase was meant as likely, and one near it is suggested.
        let folder = name.trim_end_matches('/');
        let ids = || self.graph.tasks.iter().map(|t| t.id.as_str());
        let names_a_task =
            ids().any(|i| i.rsplit('/').next() == Some(folder)) || nearest(folder, ids()).is_some();
        let phases =
            (self.graph.phases.iter()).flat_map(|p| [p.name.as_str(), task::phase_key(&p.name)]);
        match nearest(folder, phases) {
            Some(near) if task.is_err() && !folder.contains('/') && !names_a_task => {
                let name = escaped(name, &[]);
                anyhow::bail!("no task or phase `{name}`: did you mean the phase `{near}`?")
            }
            _ => task.map(|t| vec![t]),
        }
    }

    /// The phase folder named by `name`, as a folder (`01-analysis`), its
    /// path as `Layout::typed_id` reads one (`tasks/01-analysis/`), or a key
    /// (`analysis`).
    pub fn phase(&self, name: &str) -> anyhow::Result<String> {
        let phases = &self.graph.phases;
        let typed = self.layout.typed_id(name);
        let named = |folder: &str| names_phase(name, folder) || names_phase(&typed, folder);
        if let Some(phase) = phases.iter().find(|p| named(&p.name)) {
            return Ok(phase.name.clone());
        }
        let known: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        let names = phases
            .iter()
            .flat_map(|p| [p.name.as_str(), task::phase_key(&p.name)]);
        let near = nearest(name.trim_end_matches('/'), names);
        let name = escaped(name, &[]);
        match near {
            Some(near) => anyhow::bail!(
                "no phase `{name}`: did you mean `{near}`? (the phases are {})",
                known.join(", ")
            ),
            None => anyhow::bail!("no phase `{name}`: the phases are {}", known.join(", ")),
        }
    }
}

/// Whether `name` names the phase folder `folder`: as the folder
/// (`01-analysis`) or as its key (`analysis`).
pub fn names_phase(name: &str, folder: &str) -> bool {
    name == folder || name == task::phase_key(folder)
}

fn read(layout: &Layout, runs: Option<&Runs>) -> Result<Definitions, Vec<Problem>> {
    // 100,000 durations take tens of ms to read, while the checks below
    // leave a CPU idle.
    let (durations, read) = crate::sys::parallel::both(
        || Durations::load(layout),
        || read_definitions(layout, runs),
    );
    read.map(|defs| Definitions { durations, ..defs })
}

fn read_definitions(layout: &Layout, runs: Option<&Runs>) -> Result<Definitions, Vec<Problem>> {
    let mut problems = Vec::new();
    let (mut config, found) = Config::load_as_far_as_it_reads(&layout.config_file());
    // A config with a problem is not all the user wrote: its agent and
    // worktrees are not checked (a default `agent` reported missing would
    // be noise beside the problem to fix); tasks' own commands are.
    let config_read = found.is_empty();
    problems.extend(found);
    // A config under another name would be left out, the run going on
    // with the defaults (ten agents at once) as if it were not there.
    let misnamed = layout.tasks.join("orchestrator.yml");
    if misnamed.exists() {
        problems.push(Problem::in_file(
            &misnamed,
            None,
            "is not read: the config is tasks/orchestrator.yaml; rename it (or move what it sets there)",
        ));
    }
    // The stored cache (tens of MB at 100,000 tasks) is read while the
    // folders are: neither needs the other.
    let (mut cache, mut discovery) =
        crate::sys::parallel::both(|| Cache::open(layout), || Discovery::scan(&layout.tasks));
    problems.append(&mut discovery.problems);
    let files = std::mem::take(&mut discovery.files);
    if files.is_empty() && !runs.is_some_and(|runs| runs.none_needed) {
        problems.push(Problem::general(format!(
            "tasks/ has no task yet: `{}` adds one (from tasks/TEMPLATE.md, if there is one)",
            layout.cmd("new 01-plan/01-first-task")
        )));
    }
    // Collected in the place of what was read: with 100,000 tasks, two
    // vectors of them at once would weigh tens of MB.
    // Files that did not parse stand as placeholders. Their (lack of a)
    // command is not checked, nor that of a file whose `command` is wrong
    // (an empty one would be taken for the agent's) or misspelt (`comand`:
    // the agent's, not on PATH, would be said too, where only the key is
    // wrong): their own problems say what is wrong.
    let mut unchecked = HashSet::new();
    let tasks: Vec<Task> = cache
        .load_all(&files)
        .into_iter()
        .zip(&files)
        .filter_map(|(parsed, file)| {
            let sets_command = parsed.task.as_ref().is_some_and(|t| t.command.is_some());
            let bad_command = parsed.problems.iter().any(|p| {
                p.message.starts_with("`command`")
                    || (!sets_command && p.message.ends_with("did you mean `command`?"))
            });
            if bad_command || parsed.task.is_none() {
                unchecked.insert(file.clone());
            }
            problems.extend(parsed.problems);
            parsed
                .task
                .or_else(|| task::placeholder(&layout.tasks, file))
        })
        .collect();
    drop(files);
    let unsaved_cache = cache.save(&tasks);
    let folders: Vec<&str> = {
        let mut folders: Vec<&str> = tasks.iter().map(Task::phase).collect();
        // The files come folder by folder: most neighbours are alike.
        folders.dedup();
        folders.sort_unstable();
        folders.dedup();
        folders
    };
    problems.extend(phase_keys(layout, &mut config, &folders));
    problems.extend(branch_clashes(&config, &tasks));
    problems.extend(over_ceilings(layout, &config, &tasks));
    problems.extend(prompt_problems(layout, &config, &tasks));
    problems.extend(unused_pools(layout, &config, &tasks));
    warn_uncapped_pools(layout, &config, &tasks);
    warn_uncosted_agents(&config, &tasks);
    warn_unread_results(layout, &config, &tasks);
    warn_regex_prompt_patterns(layout, &config);
    warn_idle_timeouts_on_quiet_agents(layout, &config, &tasks);
    warn_misspelled_placeholders(layout, &tasks);
    if let Some(runs) = runs {
        let run: Vec<&Task> = tasks
            .iter()
            .filter(|t| (runs.tasks)(t) && !unchecked.contains(&t.file))
            .filter(|t| config_read || t.command.is_some())
            .collect();
        problems.extend(missing_programs(layout, &config, &run));
        if runs.executor.unwrap_or(config.executor) == ExecutorKind::Slurm {
            problems.extend(missing_slurm_commands());
        }
        if config_read {
            problems.extend(worktree_problem(
                layout,
                &config,
                &run,
                runs.worktrees_usable,
            ));
            problems.extend(ports_problem(layout, &config, &run, runs.jobs));
        }
    }
    let phase_folders = discovery.phase_folders(&layout.tasks);
    let graph = Graph::build_in(phase_folders, tasks).map_err(|found| {
        let mut all = problems.clone();
        all.extend(found);
        all
    })?;
    problems.extend(undeclared_requirements(layout, &config, &graph));
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Definitions {
        layout: layout.clone(),
        config,
        graph,
        discovery,
        durations: Durations::default(),
        unsaved_cache,
    })
}

/// The phases the config lists, checked against the phase folders. A phase
/// may be listed by its key (`analysis`) or its folder (`01-analysis`),
/// which is then read as its key. One close to, but not, a folder's key is
/// a typo that would silently change scheduling; one that resembles none
/// may be for tasks generated later: only a warning.
fn phase_keys(layout: &Layout, config: &mut Config, folders: &[&str]) -> Vec<Problem> {
    let keys: Vec<&str> = folders.iter().map(|f| task::phase_key(f)).collect();
    let file = layout.config_file();
    let mut problems = Vec::new();
    // Two folders of one key would share its settings, and `--phase`,
    // `block` or `why` given the key would take the first: ambiguous.
    let mut first_of: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
    for (i, &key) in keys.iter().enumerate() {
        let j = *first_of.entry(key).or_insert(i);
        if j != i {
            problems.push(Problem::general(format!(
                "{} and {} are both phase `{key}` (a phase's key is its folder's name without the number): rename one",
                layout.display(&layout.tasks.join(folders[j])),
                layout.display(&layout.tasks.join(folders[i])),
            )));
        }
    }
    for (listed, line) in config.listed_phases.clone() {
        if keys.contains(&listed.as_str()) {
            continue;
        }
        if let Some(folder) = folders.iter().find(|f| **f == listed) {
            let key = task::phase_key(folder).to_owned();
            if config.listed_phases.iter().any(|(k, _)| *k == key) {
                problems.push(Problem::in_file(
                    &file,
                    line,
                    format!("phases.{listed} and phases.{key} are the same phase: keep one"),
                ));
            } else if let Some(settings) = config.phases.remove(&listed) {
                config.phases.insert(key, settings);
            }
            continue;
        }
        // `01-biuld` is near the folder `01-build`, `biuld` near its key.
        match nearest(&listed, keys.iter().chain(folders).copied()) {
            Some(near) => problems.push(Problem::in_file(
                &file,
                line,
                format!("phases.{listed} matches no phase folder: did you mean `{near}`?"),
            )),
            None if !Config::default().phases.contains_key(&listed) => {
                let at = line.map(|n| format!(":{n}")).unwrap_or_default();
                eprintln!(
                    "warning: {}{at}: phases.{} matches no phase folder under tasks/ yet",
                    layout.display(&file),
                    crate::agent::terminal::escaped(&listed, &[])
                )
            }
            None => {}
        }
    }
    problems
}

/// The pools tasks are in.
fn pools_in_use<'a>(config: &'a Config, tasks: &'a [Task]) -> BTreeSet<&'a str> {
    tasks
        .iter()
        .filter_map(|t| t.counts_in_pool(config))
        .collect()
}

/// A phase gate's artifact in a task's output folder that the task does
/// not declare: the gate would wait for it for good (the run found it
/// missing only at its end), as an input would.
fn undeclared_requirements(layout: &Layout, config: &Config, graph: &Graph) -> Vec<Problem> {
    let file = layout.config_file();
    (config.phases.iter())
        .flat_map(|(key, phase)| phase.requires.iter().map(move |path| (key, path)))
        .filter_map(|(key, path)| {
            let d = graph.producer(path)?;
            if graph.declaring_producer(path).is_some() {
                return None;
            }
            let task = &graph.tasks[d];
            let rest = &path[task.id.len() + 1..];
            Some(Problem::in_file_at_value(
                &file,
                "requires",
                path,
                format!("`phases.{key}.requires`: `{path}` is in the output folder of {}, which does not declare it among its outputs: add `{rest}` to its `outputs`, or fix the path", task.id),
            ))
        })
        .collect()
}

/// The pools `pools:` caps that no task is in. One close to a pool that
/// tasks are in and that has no cap is a typo that leaves those tasks
/// uncapped (`pools: {antropic: 2}` beside `agent.pool: anthropic`); any
/// other may be for tasks generated later: only a warning.
fn unused_pools(layout: &Layout, config: &Config, tasks: &[Task]) -> Vec<Problem> {
    let listed = &config.agents.listed_pools;
    if listed.is_empty() {
        return Vec::new();
    }
    let used = pools_in_use(config, tasks);
    // A typo leaves tasks uncapped: near a pool tasks are in that has no
    // cap of its own (`gpu1` beside a capped `gpu0` is no typo).
    let uncapped: Vec<&str> = used
        .iter()
        .copied()
        .filter(|pool| !config.agents.pools.contains_key(*pool))
        .collect();
    let file = layout.config_file();
    let mut problems = Vec::new();
    for (pool, line) in listed.iter().filter(|(p, _)| !used.contains(p.as_str())) {
        match nearest(pool, uncapped.iter().copied()) {
            Some(near) => problems.push(Problem::in_file(
                &file,
                *line,
                format!("pools.{pool}: no task is in this pool: did you mean `{near}`?"),
            )),
            None => eprintln!(
                "warning: {}{}: pools.{pool}: no task is in this pool yet",
                layout.display(&file),
                line.map(|l| format!(":{l}")).unwrap_or_default()
            ),
        }
    }
    problems
}

/// Warns of the pools tasks are in that `pools:` does not cap, close to
/// one it does that tasks are in: `pool: antropic` beside `pools:
/// {anthropic: 2}` runs its tasks uncapped, and outside that pool's
/// rate-limit pauses. Only a warning: `us-west` beside a capped `us-east`,
/// or `gpu` beside `cpu`, may be meant.
fn warn_uncapped_pools(layout: &Layout, config: &Config, tasks: &[Task]) {
    let capped = &config.agents.pools;
    if capped.is_empty() {
        return;
    }
    // A capped pool no task is in is `unused_pools`' to name.
    let used = pools_in_use(config, tasks);
    let in_use: Vec<&str> = capped
        .keys()
        .map(String::as_str)
        .filter(|p| used.contains(p))
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        let Some(pool) = task.counts_in_pool(config) else {
            continue;
        };
        if capped.contains_key(pool) || !seen.insert(pool) {
            continue;
        }
        if let Some(near) = nearest(pool, in_use.iter().copied()) {
            let file = match task.pool {
                Some(_) => &task.file,
                None => &layout.config_file(),
            };
            eprintln!("warning: {}: pool `{pool}` has no cap in pools: (did you mean `{near}`?): its tasks run uncapped, and no rate limit of `{near}` pauses them", layout.display(file));
        }
    }
}

/// Says a `{name}` in a task's own argument list that is close to a
/// placeholder (`{promt_file}`): passed as written, its agent would never
/// get the prompt. Only a warning: the command may take braces of its own.
fn warn_misspelled_placeholders(layout: &Layout, tasks: &[Task]) {
    for task in tasks {
        if let Some(CommandSpec::Argv(argv)) = &task.command {
            for problem in crate::model::argv::unknown_placeholders(argv, "command", true) {
                eprintln!(
                    "warning: {}: {problem}: it is passed as written",
                    layout.display(&task.file)
                );
            }
        }
    }
}

/// Every problem of the prompt templates, each template checked once
/// (with the first task that uses it).
fn prompt_problems(layout: &Layout, config: &Config, tasks: &[Task]) -> Vec<Problem> {
    // A template is rendered once per shape of what it is given: one that
    // works for a task with dependencies may fail for one without
    // (`deps[0]`), and rendering it for each of 100,000 tasks would cost
    // seconds.
    let mut checked: Vec<(Template, Vec<usize>, usize, bool, bool)> = Vec::new();
    let mut failed: Vec<Template> = Vec::new();
    let mut problems = Vec::new();
    // Made for the first task with a template only.
    let by_id: std::cell::OnceCell<HashMap<&str, &Task>> = std::cell::OnceCell::new();
    let outputs_of = |id: &str| -> &[String] {
        let by_id = by_id.get_or_init(|| tasks.iter().map(|t| (t.id.as_str(), t)).collect());
        by_id.get(id).map_or(&[][..], |dep| dep.outputs.as_slice())
    };
    let declared = |id: &str| -> Vec<String> {
        let dir = layout.output_dir(id);
        (outputs_of(id).iter())
            .map(|o| dir.join(o).to_string())
            .collect()
    };
    let mut check = |task: &Task| {
        // The built-in prompt is tested with the program, not for each task.
        let Some(template) = task.prompt_template(config).filter(|t| !t.is_built_in()) else {
            return;
        };
        let in_worktree = task.in_worktree(config);
        let shape = (
            template,
            (task.dependencies.iter())
                .map(|d| outputs_of(d).len())
                .collect(),
            task.outputs.len(),
            in_worktree,
            task.inputs.is_empty(),
        );
        if checked.contains(&shape) {
            return;
        }
        let sample = Context::sample(
            task,
            &layout.outputs_dir(),
            in_worktree,
            config.agents.budget_usd,
            &declared,
        );
        // As a first attempt may see it (a dependency that declares no
        // output may have made none), then with outputs to loop over.
        let found = shape.0.check(&[
            sample.clone(),
            sample.clone().after_a_rate_limit(),
            sample.sample_with_outputs(task),
        ]);
        // Said once per template: for the first task that shows it.
        if !found.is_empty() && !failed.contains(&shape.0) {
            failed.push(shape.0.clone());
            problems.extend(found);
        }
        checked.push(shape);
    };
    tasks.iter().for_each(&mut check);
    // The shared template, for a task made during the run, which would
    // fail with it after `validate` passed: a stand-in agent task with a
    // dependency, an input and an output, for which most of it renders,
    // where the tasks that take it run (a worktree, or the root), else
    // where the config puts tasks.
    if config.agents.prompt.is_some() {
        let file = layout.tasks.join("01-phase/02-agent.md");
        let stand_in =
            "---\ndependencies: [01-phase/01-earlier]\ninputs: [input]\noutputs: [output]\n---\n";
        if let Some(mut task) = task::parse(&layout.tasks, &file, stand_in).task {
            let taker = tasks.iter().find(|t| t.takes_the_shared_prompt());
            task.workdir = match taker.map(|t| t.in_worktree(config)) {
                Some(true) => Some(Workdir::Worktree),
                Some(false) => Some(Workdir::Root),
                None => None,
            };
            check(&task);
        }
    }
    problems
}

/// Tasks asking for more than `max_cpu_per_agent` or `max_memory_gb`
/// (also of a task file found during a run: `run::load`).
pub fn over_ceilings(layout: &Layout, config: &Config, tasks: &[Task]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for task in tasks {
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
                problems.push(Problem::in_file_where(
                    &task.file,
                    key,
                    format!(
                        "resources.{key}: {} is more than {setting} ({ceiling}){}: ask for less, or raise the ceiling",
                        asked.unwrap_or_default(),
                        if layout.config_file().exists() {
                            " in tasks/orchestrator.yaml"
                        } else {
                            ", the default (tasks/orchestrator.yaml sets it)"
                        }
                    ),
                ));
            }
        }
    }
    problems
}

/// Programs the given tasks would run that cannot be found or executed:
/// one problem per program, naming the tasks that use it.
fn missing_programs(layout: &Layout, config: &Config, tasks: &[&Task]) -> Vec<Problem> {
    // A task's own command is reported at its file; the agent command
    // once for all the tasks that use it.
    let programs: Vec<String> = tasks
        .iter()
        .map(|task| argv::program(layout, config, task))
        .collect();
    // Each program looked up once: 100,000 tasks may all run `sh`.
    let mut looked_up: HashMap<&str, Option<String>> = HashMap::new();
    for program in &programs {
        looked_up
            .entry(program)
            .or_insert_with(|| unusable(layout, program));
    }
    let mut users: BTreeMap<(&str, Option<usize>), Vec<&str>> = BTreeMap::new();
    for (i, (task, program)) in tasks.iter().zip(&programs).enumerate() {
        if looked_up[program.as_str()].is_some() {
            let owner = task.command.as_ref().map(|_| i);
            users.entry((program, owner)).or_default().push(&task.id);
        }
    }
    let mut problems = Vec::new();
    for ((program, owner), ids) in users {
        let owner = owner.map(|i| tasks[i]);
        let Some(why) = looked_up[program].clone() else {
            continue;
        };
        let used_by = match ids.as_slice() {
            [one] => format!("used by {one}"),
            many => {
                let shown: Vec<&str> = many.iter().take(3).copied().collect();
                let more = many.len() - shown.len();
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("used by {} tasks: {}{more}", many.len(), shown.join(", "))
            }
        };
        problems.push(match owner {
            Some(task) => located(&task.file, program, |line| {
                Problem::in_file(&task.file, line, format!("`{program}` (the task's `command`, {used_by}) {why}"))
            }),
            None if config.agent.command_set.is_some() => Problem::in_file(
                &layout.config_file(),
                config.agent.command_set.flatten(),
                format!("`{program}` (agent.command, {used_by}) {why}"),
            ),
            None => Problem::general(format!(
                "`{program}` (agent.command, the default: set it in tasks/orchestrator.yaml, or give the tasks a `command`; {used_by}) {why}"
            )),
        });
    }
    problems
}

/// The problem `make` builds, at the line of `file` that names `needle`.
fn located(
    file: &camino::Utf8Path,
    needle: &str,
    make: impl FnOnce(Option<usize>) -> Problem,
) -> Problem {
    let line = std::fs::read_to_string(file)
        .ok()
        .and_then(|text| find_line(&text, needle, 1));
    make(line)
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
            Err(_) => Some(crate::sys::NOT_ON_PATH.to_owned()),
        };
    }
    let path = layout.root.join(program);
    let shown = layout.display(&path);
    match path.metadata() {
        Err(e) => Some(format!("cannot be used: {shown}: {e}")),
        Ok(meta) if meta.is_dir() => Some(format!("is a folder: {shown}")),
        Ok(meta) if meta.permissions().mode() & 0o111 == 0 => Some(format!(
            "is not executable: `chmod +x {shown}`, or run it through `sh {shown}`"
        )),
        Ok(_) => None,
    }
}
