//! `tasks/orchestrator.yaml`: limits, timeouts and the agent command. Every
//! value defaults to the protocol's; an unknown key is an error, because a
//! typo here would silently change scheduling.

use std::collections::BTreeMap;
use std::time::Duration;

use camino::Utf8Path;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

mod agents;
mod notify;
mod slurm;
mod worktrees;

pub use agents::{result_format, Agents, RateLimits, ResultFormat, UNNAMED_POOL};
pub use notify::Notifier;
pub use worktrees::{workdir, Workdir, Worktrees};

use crate::model::layout::Layout;
use crate::model::problem::Problem;
use crate::model::yaml::{self, set, Fields, Unknown};
use crate::state::outputs;

#[derive(Debug, Clone)]
pub struct Config {
    pub title: Option<String>,
    pub agent: Agent,
    pub max_concurrent_agents: usize,
    /// Defaults and ceilings of each task's `resources`.
    pub max_cpu_per_agent: f64,
    pub max_memory_gb: f64,
    /// Memory all running tasks may reserve together [default: the machine's].
    pub max_total_memory_gb: Option<f64>,
    pub kill_grace: Duration,
    pub phases: BTreeMap<String, PhaseConfig>,
    /// Whether a phase sets `workdir`: `Task::in_worktree`, asked of
    /// every task, reads the task's phase only then.
    pub workdir_in_phases: bool,
    /// Where tasks run: `local` (default) or `slurm`.
    pub executor: ExecutorKind,
    pub slurm: SlurmConfig,
    pub worktrees: Worktrees,
    /// Results, pools, rate limits, the budget, prompts.
    pub agents: Agents,
    /// Commands run on the run's events (`notify:`).
    pub notify: Vec<Notifier>,
    /// The phase keys the file itself lists, each with its line, to catch
    /// a key that matches no phase folder (a typo).
    pub listed_phases: Vec<(String, Option<usize>)>,
}

#[derive(Debug, Clone)]
pub struct Agent {
    /// argv; `{task_id}`, `{task_file}`, `{output_dir}`, `{log_file}` are filled in.
    pub command: Vec<String>,
    /// Where the file sets `command` (its line), if it does: else the
    /// default is used.
    pub command_set: Option<Option<usize>>,
}

#[derive(Debug, Clone, Default)]
pub struct PhaseConfig {
    pub max_parallel: Option<usize>,
    /// Where the phase's tasks run, unless they say.
    pub workdir: Option<Workdir>,
    /// The pool of the phase's tasks, unless they say.
    pub pool: Option<String>,
    pub prompt_idle: Option<Duration>,
    /// Whether the phase's tasks wait for a person's approval, unless they say.
    pub approve: Option<Approve>,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// Artifacts under `workspace/outputs/` the phase's gate waits for.
    pub requires: Vec<String>,
}

/// When a task waits for a person's approval (`approve:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Approve {
    /// Before it starts.
    Before,
    /// After it completed: what depends on it waits until its result is
    /// approved.
    After,
}

/// `approve: before | after`.
pub fn approve(value: &Value) -> Result<Approve, String> {
    match yaml::one_of(value, &["before", "after"])? {
        "before" => Ok(Approve::Before),
        _ => Ok(Approve::After),
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    Local,
    Slurm,
}

#[derive(Debug, Clone)]
pub struct SlurmConfig {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// More `sbatch` arguments, e.g. `["--qos=long"]`.
    pub extra_args: Vec<String>,
    /// How often one `scontrol` call checks every job in flight.
    pub poll_interval: Duration,
}

impl Default for SlurmConfig {
    fn default() -> SlurmConfig {
        SlurmConfig {
            partition: None,
            account: None,
            extra_args: Vec::new(),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl Default for Agent {
    fn default() -> Agent {
        Agent {
            command: ["agent", "run", "{task_file}"].map(String::from).to_vec(),
            command_set: None,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        let hours = |h: u64| Some(Duration::from_secs(h * 3600));
        let phase = |max_parallel, timeout| PhaseConfig {
            max_parallel: Some(max_parallel),
            timeout,
            ..PhaseConfig::default()
        };
        Config {
            title: None,
            listed_phases: Vec::new(),
            workdir_in_phases: false,
            executor: ExecutorKind::Local,
            slurm: SlurmConfig::default(),
            worktrees: Worktrees::default(),
            agents: Agents::default(),
            notify: Vec::new(),
            agent: Agent::default(),
            max_concurrent_agents: 10,
            max_cpu_per_agent: 4.0,
            max_memory_gb: 8.0,
            max_total_memory_gb: None,
            kill_grace: Duration::from_secs(10),
            phases: BTreeMap::from([
                ("analysis".into(), phase(6, hours(8))),
                ("planning".into(), phase(3, hours(6))),
                ("implementation".into(), phase(10, hours(12))),
                ("validation".into(), phase(2, hours(4))),
                ("optimization".into(), phase(5, hours(20))),
            ]),
        }
    }
}

/// The config, if it came with no problem.
fn valid((config, problems): (Config, Vec<Problem>)) -> Result<Config, Vec<Problem>> {
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

impl Config {
    /// The config at `path`, or the defaults when there is no such file;
    /// else every problem in it.
    pub fn load(path: &Utf8Path) -> Result<Config, Vec<Problem>> {
        valid(Config::load_as_far_as_it_reads(path))
    }

    /// The config at `path` with every setting that reads (the others at
    /// their defaults), and every problem in it: the checks that need the
    /// config (its phase keys) go on with it, so that all problems are
    /// reported at once.
    pub fn load_as_far_as_it_reads(path: &Utf8Path) -> (Config, Vec<Problem>) {
        match crate::sys::read_regular_file(path).map(|(bytes, _)| String::from_utf8(bytes)) {
            Ok(Ok(text)) => Config::parse_as_far_as_it_reads(path, &text),
            Ok(Err(e)) => (Config::default(), vec![Problem::not_utf8(path, &e)]),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Config::default(), Vec::new()),
            Err(e) => (
                Config::default(),
                vec![Problem::in_file(path, None, format!("cannot read: {e}"))],
            ),
        }
    }

    #[cfg(test)]
    pub fn parse(path: &Utf8Path, text: &str) -> Result<Config, Vec<Problem>> {
        valid(Config::parse_as_far_as_it_reads(path, text))
    }

    fn parse_as_far_as_it_reads(path: &Utf8Path, text: &str) -> (Config, Vec<Problem>) {
        // A byte order mark, as Windows editors save UTF-8 with, is no text
        // (YAML took it for content before a second document).
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut config = Config::default();
        if text.trim().is_empty() {
            return (config, Vec::new());
        }
        let value = match yaml::parse(path, text, 1, "the config") {
            Ok(value) => value,
            Err(problem) => return (config, vec![problem]),
        };
        let mut fields = match Fields::new(path, text, value, "", 1) {
            Ok(fields) => fields,
            Err(problem) => return (config, vec![problem]),
        };
        config.read(&mut fields, path);
        let problems = fields.finish(Unknown::Refused, other_tools_key);
        (config, problems)
    }

    /// Reads every key it knows from `f`, each over its default.
    fn read(&mut self, f: &mut Fields, path: &Utf8Path) {
        let whole = |min| move |v: &Value| yaml::whole(v, min).map(|n| n as usize);
        if let Some(title) = f.take("title", yaml::one_line_text) {
            self.title = Some(title);
        }
        if let Some(mut agent) = f.nested("agent") {
            let line = agent.line("command");
            if let Some(command) = agent.take("command", argv) {
                for problem in
                    crate::model::argv::unknown_placeholders(&command, "agent.command", false)
                {
                    agent.problem(line, problem);
                }
                self.agent.command = command;
                self.agent.command_set = Some(line);
            }
            self.agents.read_agent(&mut agent, path);
            let problems = agent.finish(Unknown::Refused, |_| None);
            f.absorb(problems);
        }
        set(
            &mut self.max_concurrent_agents,
            f.take("max_concurrent_agents", whole(1)),
        );
        set(
            &mut self.max_cpu_per_agent,
            f.take("max_cpu_per_agent", yaml::cpus),
        );
        set(&mut self.max_memory_gb, f.take("max_memory_gb", yaml::gib));
        self.max_total_memory_gb = f.take("max_total_memory_gb", yaml::gib);
        set(&mut self.kill_grace, f.take("kill_grace", yaml::duration));
        let executor = f.take("executor", |v| yaml::one_of(v, &["local", "slurm"]));
        if let Some(kind) = executor {
            self.executor = if kind == "slurm" {
                ExecutorKind::Slurm
            } else {
                ExecutorKind::Local
            };
        }
        if let Some(mut slurm) = f.nested("slurm") {
            self.slurm.partition = slurm.take("partition", yaml::non_empty_text);
            self.slurm.account = slurm.take("account", yaml::non_empty_text);
            set(
                &mut self.slurm.extra_args,
                slurm.take("extra_args", self::slurm::extra_args),
            );
            set(
                &mut self.slurm.poll_interval,
                slurm.take("poll_interval", yaml::duration),
            );
            let problems = slurm.finish(Unknown::Refused, |_| None);
            f.absorb(problems);
        }
        self.worktrees.read(f);
        self.agents.read(f);
        set(&mut self.notify, f.take("notify", notify::notifiers));
        if let Some(mut phases) = f.nested("phases") {
            self.read_phases(&mut phases);
            let problems = phases.finish(Unknown::Refused, |_| None);
            f.absorb(problems);
        }
    }

    /// `phases:`, a mapping of phase keys; a phase listed keeps the
    /// protocol's values for the settings it does not mention.
    fn read_phases(&mut self, phases: &mut Fields) {
        for entry in phases.rest() {
            let key = entry.key.clone();
            self.listed_phases.push((key.clone(), entry.line));
            let Some(mut f) = phases.child(entry) else {
                continue;
            };
            let phase = self.phases.entry(key).or_default();
            if let Some(n) = f.take("max_parallel", |v| yaml::whole(v, 1)) {
                phase.max_parallel = Some(n as usize);
            }
            set(
                &mut phase.timeout,
                f.take("timeout", yaml::duration).map(Some),
            );
            phase.idle_timeout = f.take("idle_timeout", yaml::duration);
            phase.workdir = f.take("workdir", workdir);
            self.workdir_in_phases |= phase.workdir.is_some();
            phase.pool = f.take("pool", yaml::one_line_text);
            phase.prompt_idle = f.take("prompt_idle", yaml::duration);
            phase.approve = f.take("approve", approve);
            set(&mut phase.requires, f.take("requires", requires));
            let problems = f.finish(Unknown::Refused, |_| None);
            phases.absorb(problems);
        }
    }

    /// The settings of a phase by its key (`analysis`); a phase not listed
    /// gets `max_concurrent_agents` and no timeout.
    pub fn phase(&self, key: &str) -> &PhaseConfig {
        static UNLISTED: PhaseConfig = PhaseConfig {
            max_parallel: None,
            workdir: None,
            pool: None,
            prompt_idle: None,
            approve: None,
            timeout: None,
            idle_timeout: None,
            requires: Vec::new(),
        };
        self.phases.get(key).unwrap_or(&UNLISTED)
    }

    /// The dashboard's heading: `title`, else the root folder's name.
    pub fn title(&self, layout: &Layout) -> String {
        self.title
            .clone()
            .unwrap_or_else(|| layout.root.file_name().unwrap_or("tasks").to_owned())
    }

    /// How many tasks of phase `key` may run at once: its `max_parallel`,
    /// else the run's limit, `jobs` (`-j`, which overrides
    /// `max_concurrent_agents` here too) or `max_concurrent_agents`.
    pub fn max_parallel(&self, key: &str, jobs: Option<usize>) -> usize {
        self.phases
            .get(key)
            .and_then(|p| p.max_parallel)
            .unwrap_or(jobs.unwrap_or(self.max_concurrent_agents))
    }
}

/// An argv: a list of texts naming a program first.
fn argv(value: &Value) -> Result<Vec<String>, String> {
    let argv = yaml::text_list(value)?;
    if argv.is_empty() {
        return Err("must name a program: a list such as `[claude, -p, --output-format, json, \"Do the task described in {prompt_file}.\"]`, with `agent.result: claude-json`".into());
    }
    crate::model::argv::refuse_nul(&argv)?;
    Ok(argv)
}

/// A phase gate's artifacts: paths under `workspace/outputs/`.
fn requires(value: &Value) -> Result<Vec<String>, String> {
    let paths = yaml::text_list(value)?;
    if let Some(bad) = paths
        .iter()
        .find(|r| r.starts_with('/') || r.split('/').any(|c| c == ".."))
    {
        return Err(format!(
            "`{bad}` must be a path under workspace/outputs/, without `..`"
        ));
    }
    if let Some((bad, why)) = (paths.iter()).find_map(|r| Some((r, outputs::bad_glob(r)?))) {
        return Err(format!("`{bad}` {why}"));
    }
    // What the gate waits on is shown on a line of its own.
    if let Some(bad) =
        (paths.iter()).find(|r| r.contains(crate::agent::terminal::acts_on_a_terminal))
    {
        return Err(format!(
            "`{bad}` holds a control character (a newline, an escape): name the file without one"
        ));
    }
    Ok(paths)
}

/// Our key for a top-level key written as other tools (or flags) name it:
/// `claude --max-budget-usd` makes `budget_usd` a likely guess.
fn other_tools_key(key: &str) -> Option<&'static str> {
    match key {
        "budget_usd" | "max_budget_usd" | "budget-usd" | "max-budget-usd" => Some("budget.usd"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<(usize, usize), &str>) {
        let got = Config::parse(Utf8Path::new("tasks/orchestrator.yaml"), text);
        match (got, expected) {
            (Ok(c), Ok((max, analysis))) => {
                assert_eq!(
                    (c.max_concurrent_agents, c.max_parallel("analysis", None)),
                    (max, analysis)
                )
            }
            (Err(p), Err(msg)) => {
                let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
                let shown = shown.join("\n");
                assert!(shown.contains(msg), "{shown:?} should contain {msg:?}")
            }
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parsing() {
        check("", Ok((10, 6)));
        check("max_concurrent_agents: 3\n", Ok((3, 6)));
        check("phases:\n  analysis: {max_parallel: 2}\n", Ok((10, 2)));
        check("phases:\n  planning: {timeout: 1h}\n", Ok((10, 6)));
        check(
            "max_concurent_agents: 3\n",
            Err("orchestrator.yaml:1: unknown key `max_concurent_agents`: did you mean `max_concurrent_agents`?"),
        );
        check(
            "phases:\n  analysis: {max_paralel: 2}\n",
            Err("orchestrator.yaml:2: unknown key `phases.analysis.max_paralel`: did you mean `phases.analysis.max_parallel`?"),
        );
        check(
            "kill_grace: forever\n",
            Err("`kill_grace`: must be a positive duration"),
        );
        check("max_concurrent_agents: 0\n", Err("1 or more, found 0"));
        check(
            "max_memory_gb: 0\nmax_cpu_per_agent: -1\n",
            Err("`max_memory_gb`: must be a number above 0, found 0"),
        );
        check(
            "max_memory_gb: 1e-300\n",
            Err("`max_memory_gb`: must be at least 0.001 (about 1 MiB), found 1e-300"),
        );
        check(
            "max_cpu_per_agent: x\n",
            Err("`max_cpu_per_agent`: must be a number above 0, found the text `x`"),
        );
        // A second document: where it starts, and what to do.
        check(
            "max_memory_gb: 0.25\n---\nmax_concurrent_agents: 2\n",
            Err("orchestrator.yaml:2: the config is not valid YAML: deserializing from YAML containing more than one document is not supported (a `---` line starts another document: this file is one; remove it)"),
        );
        check(
            "# settings\n---\nmax_memory_gb: 0.25\n--- # more\n",
            Err("orchestrator.yaml:4: the config is not valid YAML"),
        );
        // At the key's own line, the key as written.
        check(
            "max_memory_gb: 0.25\n\n\n1: x\n",
            Err("orchestrator.yaml:4: keys must be text, found the number `1`: quote it (`\"1\": ...`)"),
        );
        check(
            "title: x\ntrue: y\n",
            Err("orchestrator.yaml:2: keys must be text, found `true`"),
        );
        // As written, where YAML reads it otherwise.
        check(
            "title: x\n~: a\n0x10: b\n",
            Err("orchestrator.yaml:2: keys must be text, found nothing: quote it (`\"~\": ...`)"),
        );
        check(
            "title: x\n0x10: b\n",
            Err("orchestrator.yaml:2: keys must be text, found the number `16`: quote it (`\"0x10\": ...`)"),
        );
        // In a nested mapping, below the key that holds it.
        check(
            "max_memory_gb: 0.25\nagent:\n  true: x\n",
            Err("orchestrator.yaml:3: keys must be text, found `true`: quote it (`\"true\": ...`)"),
        );
        check(
            "phases:\n  p:\n    1: x\n",
            Err("orchestrator.yaml:3: keys must be text, found the number `1`: quote it (`\"1\": ...`)"),
        );
        // Not a comment, nor a line of a block of text.
        check(
            "max_memory_gb: 0.25\n# see: the docs\ntitle: |\n  true: that is\ntrue: x\n",
            Err("orchestrator.yaml:5: keys must be text, found `true`: quote it (`\"true\": ...`)"),
        );
        check(
            "agent: {command: []}\n",
            Err("`agent.command`: must name a program"),
        );
        check(
            "executor: slurmm\n",
            Err("`executor`: must be `local` or `slurm`, found `slurmm`: did you mean `slurm`?"),
        );
        // At its line, saying why: it would override sbatch's own.
        check(
            "executor: slurm\nslurm:\n  extra_args: [--qos=long, -o, x.log]\n",
            Err("orchestrator.yaml:3: `slurm.extra_args`: `-o` would override the orchestrator's own `--output` (the task's log"),
        );
    }

    #[test]
    fn unlisted_phase_gets_the_global_limit() {
        let c = Config::parse(Utf8Path::new("x"), "max_concurrent_agents: 4").unwrap();
        assert_eq!(c.max_parallel("research", None), 4);
        assert_eq!(c.max_parallel("research", Some(6)), 6);
        assert_eq!(c.max_parallel("analysis", Some(1)), 6);
        assert_eq!(c.phase("research").timeout, None);
        assert_eq!(
            c.phase("analysis").timeout,
            Some(Duration::from_secs(8 * 3600))
        );
    }
}
