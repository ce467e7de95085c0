//! `tasks/orchestrator.yaml`: limits, timeouts and the agent command. Every
//! value defaults to the protocol's; an unknown key is an error, because a
//! typo here would silently change scheduling.

use std::collections::BTreeMap;
use std::time::Duration;

use camino::Utf8Path;
use serde::{Deserialize, Deserializer};

use crate::model::layout::Layout;
use crate::model::problem::{find_line, Problem};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub title: Option<String>,
    pub agent: Agent,
    pub max_concurrent_agents: usize,
    /// Defaults and ceilings of each task's `resources`.
    pub max_cpu_per_agent: f64,
    pub max_memory_gb: f64,
    /// Memory all running tasks may reserve together [default: the machine's].
    pub max_total_memory_gb: Option<f64>,
    #[serde(deserialize_with = "duration")]
    pub kill_grace: Duration,
    pub phases: BTreeMap<String, PhaseConfig>,
    /// Where tasks run: `local` (default) or `slurm`.
    pub executor: ExecutorKind,
    pub slurm: SlurmConfig,
    /// The phase keys the file itself lists, each with its line, to catch
    /// a key that matches no phase folder (a typo).
    #[serde(skip)]
    pub listed_phases: Vec<(String, Option<usize>)>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Agent {
    /// argv; `{task_id}`, `{task_file}`, `{output_dir}`, `{log_file}` are filled in.
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhaseConfig {
    pub max_parallel: Option<usize>,
    #[serde(deserialize_with = "optional_duration")]
    pub timeout: Option<Duration>,
    #[serde(deserialize_with = "optional_duration")]
    pub idle_timeout: Option<Duration>,
    /// Artifacts under `workspace/outputs/` the phase's gate waits for.
    pub requires: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    Local,
    Slurm,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// More `sbatch` arguments, e.g. `["--qos=long"]`.
    pub extra_args: Vec<String>,
    /// How often one `scontrol` call checks every job in flight.
    #[serde(deserialize_with = "duration")]
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
            executor: ExecutorKind::Local,
            slurm: SlurmConfig::default(),
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

impl Config {
    /// The config at `path`, or the defaults when there is no such file.
    pub fn load(path: &Utf8Path) -> Result<Config, Problem> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(Problem::in_file(path, None, format!("cannot read: {e}"))),
        };
        Config::parse(path, &text)
    }

    pub fn parse(path: &Utf8Path, text: &str) -> Result<Config, Problem> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let mut config: Config = serde_yaml::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line());
            Problem::in_file(
                path,
                line,
                crate::model::task::without_location(&e.to_string()),
            )
        })?;
        config.listed_phases = config
            .phases
            .keys()
            .map(|key| (key.clone(), find_line(text, &format!("{key}:"), 1)))
            .collect();
        for (key, phase) in &config.phases {
            if let Some(bad) = phase
                .requires
                .iter()
                .find(|r| r.starts_with('/') || r.split('/').any(|c| c == ".."))
            {
                return Err(Problem::in_file(
                    path,
                    find_line(text, bad, 1),
                    format!("phases.{key}.requires: `{bad}` must be a path under workspace/outputs/, without `..`"),
                ));
            }
        }
        // A phase listed in the file keeps the protocol's values for the
        // settings it does not mention.
        for (key, default) in Config::default().phases {
            let phase = config.phases.entry(key).or_default();
            phase.max_parallel = phase.max_parallel.or(default.max_parallel);
            phase.timeout = phase.timeout.or(default.timeout);
        }
        if config.max_concurrent_agents == 0 {
            return Err(Problem::in_file(
                path,
                None,
                "max_concurrent_agents must be at least 1",
            ));
        }
        if config.agent.command.is_empty() {
            return Err(Problem::in_file(
                path,
                None,
                "agent.command must name a program",
            ));
        }
        if let Some((key, _)) = config
            .phases
            .iter()
            .find(|(_, p)| p.max_parallel == Some(0))
        {
            return Err(Problem::in_file(
                path,
                None,
                format!("phases.{key}.max_parallel must be at least 1"),
            ));
        }
        Ok(config)
    }

    /// The settings of a phase by its key (`analysis`); a phase not listed
    /// gets `max_concurrent_agents` and no timeout.
    pub fn phase(&self, key: &str) -> &PhaseConfig {
        static UNLISTED: PhaseConfig = PhaseConfig {
            max_parallel: None,
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

    pub fn max_parallel(&self, key: &str) -> usize {
        self.phases
            .get(key)
            .and_then(|p| p.max_parallel)
            .unwrap_or(self.max_concurrent_agents)
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = serde_yaml::Value::deserialize(d)?;
    crate::model::task::duration(&value).map_err(serde::de::Error::custom)
}

fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<(usize, usize), &str>) {
        let got = Config::parse(Utf8Path::new("tasks/orchestrator.yaml"), text);
        match (got, expected) {
            (Ok(c), Ok((max, analysis))) => {
                assert_eq!(
                    (c.max_concurrent_agents, c.max_parallel("analysis")),
                    (max, analysis)
                )
            }
            (Err(p), Err(msg)) => {
                let shown = p.to_string();
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
            Err("orchestrator.yaml:1: unknown field `max_concurent_agents`"),
        );
        check(
            "phases:\n  analysis: {max_paralel: 2}\n",
            Err("unknown field `max_paralel`"),
        );
        check("kill_grace: forever\n", Err("positive duration"));
        check("max_concurrent_agents: 0\n", Err("at least 1"));
    }

    #[test]
    fn unlisted_phase_gets_the_global_limit() {
        let c = Config::parse(Utf8Path::new("x"), "max_concurrent_agents: 4").unwrap();
        assert_eq!(c.max_parallel("research"), 4);
        assert_eq!(c.phase("research").timeout, None);
        assert_eq!(
            c.phase("analysis").timeout,
            Some(Duration::from_secs(8 * 3600))
        );
    }
}
