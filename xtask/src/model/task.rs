//! Task files: parsing their frontmatter into a `Task` (its argv with the placeholders filled in, too). Nothing
//! else parses task files; problems found later read them again only to
//! point at a line.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use serde_yaml::Value;

use crate::model::config::Config;
use crate::model::layout::Layout;
use crate::model::problem::{find_line, nearest, Problem};

const KNOWN_KEYS: [&str; 8] = [
    "resources",
    "dependencies",
    "inputs",
    "outputs",
    "command",
    "timeout",
    "idle_timeout",
    "retries",
];

#[derive(Debug, Clone)]
pub struct Task {
    /// Path under `tasks/` without `.md`: `01-analysis/01-run-conformance-tests`.
    pub id: String,
    /// The first folder of the id: `01-analysis`.
    pub phase: String,
    pub file: Utf8PathBuf,
    pub dependencies: Vec<String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub command: Option<CommandSpec>,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub retries: u32,
    pub resources: Resources,
}

impl Task {
    /// A task with no settings but its dependencies, in the phase its id
    /// names.
    pub fn new(id: &str, file: Utf8PathBuf, dependencies: Vec<String>) -> Task {
        Task {
            id: id.to_owned(),
            phase: id.split('/').next().unwrap_or(id).to_owned(),
            file,
            dependencies,
            inputs: Vec::new(),
            outputs: Vec::new(),
            command: None,
            timeout: None,
            idle_timeout: None,
            retries: 0,
            resources: Resources::default(),
        }
    }
}

/// What a task asks for; the config's `max_cpu_per_agent` and
/// `max_memory_gb` are the defaults and the ceilings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resources {
    pub cpus: Option<f64>,
    pub memory_gb: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommandSpec {
    /// Run with `sh -c`.
    Shell(String),
    Argv(Vec<String>),
}

/// The argv a task runs: its own `command`, or the agent command, with the
/// placeholders filled in.
pub fn argv(layout: &Layout, config: &Config, task: &Task) -> Vec<String> {
    let raw = match &task.command {
        Some(CommandSpec::Shell(script)) => vec!["sh".into(), "-c".into(), script.clone()],
        Some(CommandSpec::Argv(argv)) => argv.clone(),
        None => config.agent.command.clone(),
    };
    let task_file = task.file.to_string();
    let output_dir = layout.output_dir(&task.id).to_string();
    let log_file = layout.log_file(&task.id).to_string();
    raw.into_iter()
        .map(|arg| {
            arg.replace("{task_id}", &task.id)
                .replace("{task_file}", &task_file)
                .replace("{output_dir}", &output_dir)
                .replace("{log_file}", &log_file)
        })
        .collect()
}

/// The config key of a phase folder: `01-analysis` -> `analysis`.
pub fn phase_key(phase: &str) -> &str {
    let rest = phase.trim_start_matches(|c: char| c.is_ascii_digit());
    if rest.len() == phase.len() {
        return phase;
    }
    rest.trim_start_matches(['-', '_'])
}

/// Reads and parses one task file.
pub fn load(tasks_dir: &Utf8Path, file: &Utf8Path) -> Result<Task, Problem> {
    let text = std::fs::read(file)
        .map_err(|e| Problem::in_file(file, None, format!("cannot read task file: {e}")))?;
    let text = String::from_utf8(text).map_err(|e| {
        Problem::in_file(
            file,
            None,
            format!(
                "not valid UTF-8 (byte {}): save it as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    parse(tasks_dir, file, &text)
}

/// A task with no settings standing for a file that did not parse, so the
/// other files' references to it are not reported as unknown too.
pub fn placeholder(tasks_dir: &Utf8Path, file: &Utf8Path) -> Option<Task> {
    parse(tasks_dir, file, "---\n---\n").ok()
}

pub fn parse(tasks_dir: &Utf8Path, file: &Utf8Path, text: &str) -> Result<Task, Problem> {
    let problem = |line: Option<usize>, msg: String| Problem::in_file(file, line, msg);
    let id = task_id(tasks_dir, file).map_err(|msg| problem(None, msg))?;
    if !id.contains('/') {
        return Err(problem(
            None,
            "a task file must live in a phase folder: move it to tasks/<phase>/, e.g. tasks/01-analysis/".into(),
        ));
    }
    let (yaml, first_line) = split_frontmatter(text).map_err(|(line, msg)| problem(line, msg))?;
    let mut task = Task::new(&id, file.to_owned(), Vec::new());
    let value: Value = serde_yaml::from_str(yaml).map_err(|e| {
        let line = e.location().map(|l| l.line() + first_line - 1);
        problem(
            line,
            format!(
                "frontmatter is not valid YAML: {}",
                without_location(&e.to_string())
            ),
        )
    })?;
    let map = match value {
        Value::Null => return Ok(task),
        Value::Mapping(map) => map,
        _ => {
            return Err(problem(
                Some(first_line),
                "frontmatter must be a mapping of keys such as `dependencies:` and `outputs:`"
                    .into(),
            ))
        }
    };
    for (key, value) in map {
        let Value::String(key) = key else {
            return Err(problem(
                Some(first_line),
                format!("keys must be text, found {key:?}"),
            ));
        };
        let line = find_line(text, &format!("{key}:"), first_line);
        let field = |msg: String| problem(line, format!("`{key}`: {msg}"));
        match key.as_str() {
            "dependencies" => task.dependencies = string_list(value).map_err(field)?,
            "inputs" => task.inputs = string_list(value).map_err(field)?,
            "outputs" => task.outputs = string_list(value).map_err(field)?,
            "command" => task.command = Some(command(value).map_err(field)?),
            "timeout" => task.timeout = Some(duration(&value).map_err(field)?),
            "idle_timeout" => task.idle_timeout = Some(duration(&value).map_err(field)?),
            "retries" => task.retries = retries(&value).map_err(field)?,
            "resources" => task.resources = resources(value).map_err(field)?,
            other => {
                if let Some(known) = alias(other).or_else(|| nearest(other, KNOWN_KEYS.into_iter()))
                {
                    return Err(problem(
                        line,
                        format!("unknown key `{other}`: did you mean `{known}`?"),
                    ));
                }
            }
        }
    }
    Ok(task)
}

/// Keys other tools use for ours; too far by spelling to be caught as typos.
fn alias(key: &str) -> Option<&'static str> {
    Some(match key {
        "depends_on" | "depends" | "deps" | "needs" | "after" | "requires" => "dependencies",
        "retry" | "max_retries" | "attempts" => "retries",
        "input" => "inputs",
        "output" | "produces" => "outputs",
        "cmd" | "run" | "script" => "command",
        "timeout_seconds" | "time_limit" => "timeout",
        "idle" => "idle_timeout",
        _ => return None,
    })
}

fn task_id(tasks_dir: &Utf8Path, file: &Utf8Path) -> Result<String, String> {
    let relative = file
        .strip_prefix(tasks_dir)
        .map_err(|_| format!("not under {tasks_dir}"))?;
    let id = relative
        .as_str()
        .strip_suffix(".md")
        .unwrap_or(relative.as_str());
    if id.chars().any(|c| c.is_control()) {
        return Err("the path contains control characters: rename the file".into());
    }
    Ok(id.to_owned())
}

/// Splits `---\n<yaml>\n---` off the top; returns the YAML and the line it starts on.
fn split_frontmatter(text: &str) -> Result<(&str, usize), (Option<usize>, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err((
            None,
            "the task file is empty: start it with a frontmatter block between `---` lines (see tasks/TEMPLATE.md)".into(),
        ));
    }
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if first.trim_end() != "---" {
        return Err((
            Some(1),
            "no frontmatter: a task file starts with a line `---`, then YAML keys, then `---`"
                .into(),
        ));
    }
    let start = first.len();
    let mut offset = start;
    for line in lines {
        if matches!(line.trim_end(), "---" | "...") {
            return Ok((&text[start..offset], 2));
        }
        offset += line.len();
    }
    Err((
        Some(1),
        "the frontmatter opened on line 1 is never closed: add a line `---` after its last key"
            .into(),
    ))
}

/// serde_yaml's message without its ` at line L column C`, which counts
/// from the frontmatter's start, not the file's; the caller gives the real line.
pub fn without_location(message: &str) -> String {
    let Some(at) = message.find(" at line ") else {
        return message.to_owned();
    };
    let rest = &message[at + " at line ".len()..];
    let end = rest
        .find(" column ")
        .map(|c| c + " column ".len())
        .map(|c| {
            c + rest[c..]
                .find(|ch: char| !ch.is_ascii_digit())
                .unwrap_or(rest.len() - c)
        })
        .unwrap_or(0);
    format!("{}{}", &message[..at], &rest[end..])
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn string_list(value: Value) -> Result<Vec<String>, String> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items,
        other => {
            return Err(format!(
                "must be a list such as `[a, b]`, found {}",
                type_name(&other)
            ))
        }
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) if !s.trim().is_empty() => Ok(s),
            other => Err(format!(
                "list items must be non-empty text, found {}",
                type_name(&other)
            )),
        })
        .collect()
}

fn command(value: Value) -> Result<CommandSpec, String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Ok(CommandSpec::Shell(s)),
        Value::Sequence(_) => {
            let argv = string_list(value)?;
            if argv.is_empty() {
                return Err("the argv list is empty".into());
            }
            Ok(CommandSpec::Argv(argv))
        }
        other => Err(format!(
            "must be a shell command string or an argv list, found {}",
            type_name(&other)
        )),
    }
}

/// Seconds as a number, or text such as `90s`, `30m`, `8h`, `1h 30m`.
pub fn duration(value: &Value) -> Result<Duration, String> {
    let parsed = match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64),
        Value::String(s) => humantime::parse_duration(s.trim()).ok(),
        _ => None,
    };
    parsed.filter(|d| !d.is_zero()).ok_or_else(|| {
        "must be a positive duration: seconds as a number, or `90s`, `30m`, `8h`".into()
    })
}

fn resources(value: Value) -> Result<Resources, String> {
    let Value::Mapping(map) = value else {
        return Err(format!(
            "must be a mapping such as `{{cpus: 2, memory_gb: 4}}`, found {}",
            type_name(&value)
        ));
    };
    let mut resources = Resources::default();
    for (key, value) in map {
        let amount = value.as_f64().filter(|v| *v > 0.0);
        match (key.as_str(), amount) {
            (Some("cpus"), Some(n)) => resources.cpus = Some(n),
            (Some("memory_gb"), Some(n)) => resources.memory_gb = Some(n),
            (Some("cpus" | "memory_gb"), None) => {
                return Err("amounts must be positive numbers".into())
            }
            (other, _) => {
                return Err(format!(
                    "unknown key {other:?}: the keys are `cpus` and `memory_gb`"
                ))
            }
        }
    }
    Ok(resources)
}

fn retries(value: &Value) -> Result<u32, String> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            format!(
                "must be a whole number of retries, found {}",
                type_name(value)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<&str, &str>) {
        let dir = Utf8Path::new("/r/tasks");
        let file = Utf8Path::new("/r/tasks/01-a/t.md");
        match (parse(dir, file, text), expected) {
            (Ok(task), Ok(deps)) => assert_eq!(task.dependencies.join(","), deps),
            (Err(p), Err(msg)) => {
                let shown = p.to_string();
                assert!(shown.contains(msg), "{shown:?} should contain {msg:?}")
            }
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn frontmatter() {
        check(
            "---\ndependencies: [01-a/x, 01-a/y]\n---\nbody",
            Ok("01-a/x,01-a/y"),
        );
        check("---\n---\n", Ok(""));
        check("---\ntitle: T\nowner: me\n---\n", Ok(""));
        check("", Err("the task file is empty"));
        check("hello", Err("t.md:1: no frontmatter"));
        check("---\ndependencies: []\n", Err("never closed"));
        check(
            "---\ntitle: a\ndependencies: \"a\"\n---\n",
            Err("t.md:3: `dependencies`: must be a list"),
        );
        check(
            "---\ndependencies: []\ndependencies: []\n---\n",
            Err("duplicate"),
        );
        check(
            "---\ndependecies: [a]\n---\n",
            Err("did you mean `dependencies`"),
        );
        check(
            "---\ntimeout: soon\n---\n",
            Err("`timeout`: must be a positive duration"),
        );
        check("---\nretries: -1\n---\n", Err("`retries`"));
        check(
            "---\n  bad: [\n---\n",
            Err("t.md:3: frontmatter is not valid YAML: did not find expected node content, while"),
        );
    }

    #[test]
    fn phase_keys() {
        assert_eq!(phase_key("01-analysis"), "analysis");
        assert_eq!(phase_key("analysis"), "analysis");
        assert_eq!(phase_key("3_impl"), "impl");
    }

    #[test]
    fn durations() {
        let d = |y: &str| duration(&serde_yaml::from_str(y).unwrap());
        assert_eq!(d("90"), Ok(Duration::from_secs(90)));
        assert_eq!(d("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(d("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert!(d("0").is_err());
        assert!(d("[1]").is_err());
    }
}
