//! Task files: parsing their frontmatter into a `Task` (the argv it runs
//! is `argv.rs`'s). Nothing else parses task files;
//! problems found later read them again only to point at a line.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::model::config::{
    approve, result_format, workdir, Approve, Config, ResultFormat, Workdir, UNNAMED_POOL,
};
use crate::model::mark::Mark;
use crate::model::problem::Problem;
use crate::model::prompt::{self, Template};
use crate::model::yaml::{self, Fields, Unknown};

/// Serialised only for the cache of parsed task files (`model::cache`),
/// which fills in `file` from the id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    /// Path under `tasks/` without `.md`: `01-analysis/01-run-conformance-tests`.
    pub id: String,
    #[serde(skip)]
    pub file: Utf8PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub resources: Resources,
    /// Where it runs, when it says (else its phase's, else the config's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<Workdir>,
    /// Globs of the files it writes, relative to its working folder: tasks
    /// whose scopes may overlap never run at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<String>,
    /// How its result is read, when it says (else the config's
    /// `agent.result`, when it runs the agent command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultFormat>,
    /// Its pool, when it says (else its phase's, else `agent.pool` when it
    /// runs the agent command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Its own prompt template (else `agent.prompt` when it runs the agent
    /// command). Not in the cache: a task with one is never kept there.
    /// Boxed: few tasks have one, and a graph holds many tasks.
    #[serde(skip)]
    pub prompt: Option<Box<Template>>,
    /// Whether it waits for a person's approval, when it says (else its
    /// phase's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<Approve>,
    /// Ready tasks of a higher priority start first (default 0).
    #[serde(default, skip_serializing_if = "is_default")]
    pub priority: i64,
    /// Its file's mark when it was read (what a completed task was built
    /// from; see `state::fingerprint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// Its body (what follows the frontmatter) as it was read, kept by a
    /// run for a task that may be given a prompt (`keep_body`): its prompt
    /// is made of the file as the run read it, as the rest of the task is,
    /// not of an edit made since (which takes effect in the next run).
    /// Neither the views nor the cache hold it (tens of KB an agent task).
    #[serde(skip)]
    pub body: Option<Box<str>>,
}

impl Task {
    /// A task with no settings but its dependencies, in the phase its id
    /// names.
    pub fn new(id: &str, file: Utf8PathBuf, dependencies: Vec<String>) -> Task {
        Task {
            id: id.to_owned(),
            file,
            title: None,
            dependencies,
            inputs: Vec::new(),
            outputs: Vec::new(),
            command: None,
            timeout: None,
            idle_timeout: None,
            retries: 0,
            resources: Resources::default(),
            workdir: None,
            writes: Vec::new(),
            result: None,
            pool: None,
            prompt: None,
            approve: None,
            priority: 0,
            mark: None,
            body: None,
        }
    }
}

fn is_default<N: Default + PartialEq>(n: &N) -> bool {
    *n == N::default()
}

/// What a task asks for; the config's `max_cpu_per_agent` and
/// `max_memory_gb` are the defaults and the ceilings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpus: Option<f64>,
    pub memory_gb: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandSpec {
    /// Run with `sh -c`.
    Shell(String),
    Argv(Vec<String>),
}

impl Task {
    /// The first folder of its id: `01-analysis` (a method, not a field:
    /// a graph holds many tasks).
    pub fn phase(&self) -> &str {
        phase_of(&self.id)
    }

    /// Whether it runs in a git worktree: its own `workdir`, else its
    /// phase's, else `worktrees.default`.
    pub fn in_worktree(&self, config: &Config) -> bool {
        // Its phase is looked up only when some phase sets a `workdir`:
        // asked of 100,000 tasks, the lookups cost tens of ms.
        let workdir = self.workdir.or_else(|| {
            let phase = || config.phase(phase_key(self.phase())).workdir;
            config.workdir_in_phases.then(phase).flatten()
        });
        match workdir {
            Some(w) => w == Workdir::Worktree,
            None => config.worktrees.default,
        }
    }

    /// How its result is read: as it says, else `agent.result` for a task
    /// that runs the agent command; a task with its own `command:` says so
    /// itself.
    pub fn result_format(&self, config: &Config) -> ResultFormat {
        match (self.result, &self.command) {
            (Some(format), _) => format,
            (None, None) => config.agents.result,
            (None, Some(_)) => ResultFormat::None,
        }
    }

    /// Its prompt template: its own, else `agent.prompt` when it runs the
    /// agent command, else (when its command asks for `{prompt}` or
    /// `{prompt_file}`) the built-in one, its body and what it needs to know.
    pub fn prompt_template(&self, config: &Config) -> Option<Template> {
        if let Some(own) = &self.prompt {
            return Some(Template::clone(own));
        }
        if self.takes_the_shared_prompt() {
            if let Some(shared) = &config.agents.prompt {
                return Some(shared.clone());
            }
        }
        let asked = match &self.command {
            Some(_) => self.may_take_a_prompt(),
            None => (config.agent.command.iter())
                .any(|arg| arg.contains("{prompt}") || arg.contains("{prompt_file}")),
        };
        asked.then(|| prompt::built_in(&self.file))
    }

    /// Keeps its body, for a run that may make its prompt (see `body`):
    /// read again, and kept only while its file is the one it was read
    /// from (its mark; from the cache, the file its stamp found unchanged).
    /// Changed since, it is read as its prompt is made.
    pub fn keep_body(&mut self) {
        if !self.may_take_a_prompt() {
            return;
        }
        let Ok((bytes, meta)) = crate::sys::read_regular_file(&self.file) else {
            return;
        };
        let unchanged =
            (self.mark.as_ref()).is_some_and(|mark| Mark::of(&bytes, &meta).hash == mark.hash);
        if let (true, Ok(text)) = (unchanged, std::str::from_utf8(&bytes)) {
            self.body = Some(body(text).into());
        }
    }

    /// Whether it may be given a prompt (`prompt_template`, whatever the
    /// config says): it has a template of its own, runs the agent command,
    /// or its command asks for one.
    pub fn may_take_a_prompt(&self) -> bool {
        let asks = |arg: &String| arg.contains("{prompt}") || arg.contains("{prompt_file}");
        match &self.command {
            _ if self.prompt.is_some() => true,
            None => true,
            Some(CommandSpec::Shell(script)) => asks(script),
            Some(CommandSpec::Argv(argv)) => argv.iter().any(asks),
        }
    }

    /// Whether the config's `agent.prompt`, if any, is its prompt: it has
    /// none of its own, and runs the agent command.
    pub fn takes_the_shared_prompt(&self) -> bool {
        self.prompt.is_none() && self.command.is_none()
    }

    /// When it waits for a person's approval: as it says, else as its
    /// phase says.
    pub fn approval(&self, config: &Config) -> Option<Approve> {
        self.approve
            .or(config.phase(phase_key(self.phase())).approve)
    }

    /// Whether it runs an agent: the agent command, or a task whose result
    /// is read or that names a pool. A rate limit found in a failed
    /// attempt's error or log is taken as one only for these.
    pub fn is_agent(&self, config: &Config) -> bool {
        self.command.is_none()
            || self.result_format(config) != ResultFormat::None
            || self.pool(config).is_some()
    }

    /// The pool it counts in: an agent's (`is_agent`) named pool, else
    /// `default`; none for another task.
    pub fn counts_in_pool<'a>(&'a self, config: &'a Config) -> Option<&'a str> {
        self.is_agent(config)
            .then(|| self.pool(config).unwrap_or(UNNAMED_POOL))
    }

    /// Its pool: its own, else its phase's, else `agent.pool` for a task
    /// that runs the agent command.
    pub fn pool<'a>(&'a self, config: &'a Config) -> Option<&'a str> {
        let agent = config
            .agents
            .pool
            .as_deref()
            .filter(|_| self.command.is_none());
        self.pool
            .as_deref()
            .or(config.phase(phase_key(self.phase())).pool.as_deref())
            .or(agent)
    }

    /// How long its log must be still before its last line is taken for a
    /// question: its phase's, else the config's.
    pub fn prompt_idle(&self, config: &Config) -> std::time::Duration {
        config
            .phase(phase_key(self.phase()))
            .prompt_idle
            .unwrap_or(config.agents.prompt_idle)
    }

    /// Whether its `writes` may overlap `other`'s (see `scopes_overlap`).
    pub fn writes_overlap(&self, other: &Task) -> bool {
        self.writes
            .iter()
            .any(|a| other.writes.iter().any(|b| scopes_overlap(a, b)))
    }
}

/// Whether two write scopes (globs) may name a file in common: the literal
/// part of one, before its first wildcard, starts the other's. `src/*`
/// and `src/lib.rs` overlap; `src/*` and `docs/*` do not.
pub fn scopes_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (scope_literal(a), scope_literal(b));
    a.starts_with(b) || b.starts_with(a)
}

/// The literal part of a write scope, before its first wildcard: scopes
/// with the same one overlap, every two of them.
pub fn scope_literal(glob: &str) -> &str {
    let end = glob.find(['*', '?', '[', '{']).unwrap_or(glob.len());
    glob[..end].trim_start_matches("./")
}

/// A task id as a user may type it: also as the file's path, under
/// `tasks/` or from the root (`tasks/01-build/01-fetch.md`).
pub fn normalize_id(typed: &str) -> &str {
    let id = typed.trim_start_matches("./");
    let id = id.strip_prefix("tasks/").unwrap_or(id);
    id.strip_suffix(".md").unwrap_or(id)
}

/// The phase folder of task `id`: its first folder.
pub fn phase_of(id: &str) -> &str {
    // A byte search, not `split('/')`, whose pattern machinery costs several
    // times more at the dev profile's opt-level 1: this runs for each task
    // at every lookup of its phase's settings.
    match id.bytes().position(|b| b == b'/') {
        Some(slash) => &id[..slash],
        None => id,
    }
}

/// The config key of a phase folder: `01-analysis` -> `analysis`.
pub fn phase_key(phase: &str) -> &str {
    // Bytes, as in `phase_of`: looked up for each task, many times.
    let digits = phase.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return phase;
    }
    let rest = &phase[digits..];
    let dashes = rest.bytes().take_while(|&b| b == b'-' || b == b'_').count();
    match &rest[dashes..] {
        // A folder named by its number only (`01`, `02`) is its own key:
        // two such folders were one key, empty.
        "" => phase,
        key => key,
    }
}

/// A task file, read: the task (`None` when the file cannot be read as
/// one at all), and every problem found in it.
pub struct Parsed {
    pub task: Option<Task>,
    pub problems: Vec<Problem>,
}

impl Parsed {
    fn failed(problem: Problem) -> Parsed {
        Parsed {
            task: None,
            problems: vec![problem],
        }
    }

    /// The task, when it has no problem.
    pub fn valid(self) -> Result<Task, Vec<Problem>> {
        match self.task {
            Some(task) if self.problems.is_empty() => Ok(task),
            _ => Err(self.problems),
        }
    }
}

/// Why a task file listed in its folder could not be read: a link to
/// nothing is said so, where the system says only that there is no such
/// file.
fn unread_because(file: &Utf8Path, e: &std::io::Error) -> String {
    match std::fs::read_link(file) {
        Ok(to) if e.kind() == std::io::ErrorKind::NotFound => format!(
            "a link to nothing ({}): fix the link, or remove it",
            to.display()
        ),
        _ => e.to_string(),
    }
}

/// Reads and parses one task file.
pub fn load(tasks_dir: &Utf8Path, file: &Utf8Path) -> Parsed {
    let (bytes, meta) = match crate::sys::read_regular_file(file) {
        Ok(read) => read,
        Err(e) => {
            return Parsed::failed(Problem::in_file(
                file,
                None,
                format!("cannot read task file: {}", unread_because(file, &e)),
            ))
        }
    };
    let mark = Mark::of(&bytes, &meta);
    match String::from_utf8(bytes) {
        Ok(text) => {
            let mut parsed = parse(tasks_dir, file, &text);
            if let Some(task) = &mut parsed.task {
                task.mark = Some(mark);
            }
            parsed
        }
        Err(e) => Parsed::failed(Problem::not_utf8(file, &e)),
    }
}

/// A file's content and metadata, from one open.
/// A task with no settings standing for a file that did not parse, so the
/// other files' references to it are not reported as unknown too.
pub fn placeholder(tasks_dir: &Utf8Path, file: &Utf8Path) -> Option<Task> {
    parse(tasks_dir, file, "---\n---\n").task
}

pub fn parse(tasks_dir: &Utf8Path, file: &Utf8Path, text: &str) -> Parsed {
    let problem =
        |line: Option<usize>, msg: String| Parsed::failed(Problem::in_file(file, line, msg));
    let id = match task_id(tasks_dir, file) {
        Ok(id) => id,
        Err(msg) => return problem(None, msg),
    };
    if !id.contains('/') {
        return problem(
            None,
            "a task file must live in a phase folder: move it to tasks/<phase>/, e.g. tasks/01-analysis/".into(),
        );
    }
    if let Some(nul) = text.find('\0') {
        let line = text[..nul].matches('\n').count() + 1;
        let msg = "holds a NUL character (`\\0`): a task file is text, and its body is the agent's prompt, which no program can be given with one; remove it";
        return problem(Some(line), msg.into());
    }
    let (frontmatter, first_line) = match split_frontmatter(text) {
        Ok(split) => split,
        Err((line, msg)) => return problem(line, msg),
    };
    let value = match yaml::parse(file, frontmatter, first_line, "frontmatter") {
        Ok(value) => value,
        Err(problem) => return Parsed::failed(problem),
    };
    let mut fields = match Fields::new(file, text, value, "", first_line) {
        Ok(fields) => fields,
        Err(problem) => return Parsed::failed(problem),
    };
    let mut task = Task::new(&id, file.to_owned(), Vec::new());
    read(&mut task, &mut fields);
    task.prompt = prompt::read(&mut fields, file, tasks_dir, "").map(Box::new);
    Parsed {
        task: Some(task),
        problems: fields.finish(Unknown::NearMissesRefused, alias),
    }
}

/// Reads every key of the frontmatter into `task`.
fn read(task: &mut Task, f: &mut Fields) {
    task.title = f.take("title", yaml::text);
    let list = |f: &mut Fields, key| f.take(key, yaml::text_list).unwrap_or_default();
    task.dependencies = list(f, "dependencies");
    task.inputs = list(f, "inputs");
    task.outputs = list(f, "outputs");
    task.command = f.take("command", command);
    task.timeout = f.take("timeout", yaml::duration);
    task.idle_timeout = f.take("idle_timeout", yaml::duration);
    task.retries = f.take("retries", retries).unwrap_or(0);
    task.workdir = f.take("workdir", workdir);
    task.writes = list(f, "writes");
    task.result = f.take("result", result_format);
    task.pool = f.take("pool", yaml::one_line_text);
    task.approve = f.take("approve", approve);
    task.priority = f.take("priority", integer).unwrap_or(0);
    if let Some(mut resources) = f.nested("resources") {
        task.resources.cpus = resources.take("cpus", yaml::cpus);
        task.resources.memory_gb = resources.take("memory_gb", yaml::gib);
        let problems = resources.finish(Unknown::Refused, |_| None);
        f.absorb(problems);
    }
}

/// The most retries a task may ask for: far past any real use, and the
/// count of its tries stays far from overflowing.
const MOST_RETRIES: u64 = 1000;

fn retries(value: &Value) -> Result<u32, String> {
    let n = yaml::whole(value, 0)?;
    match u32::try_from(n) {
        Ok(n) if u64::from(n) <= MOST_RETRIES => Ok(n),
        _ => Err(format!("must be {MOST_RETRIES} or fewer, found {n}")),
    }
}

/// A whole number, negative too.
fn integer(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| match n.is_u64() {
            true => format!("{n} {}", yaml::BEYOND_RANGE),
            false => format!(
                "must be a whole number, found {}",
                yaml::shown_number(n, f64::MIN)
            ),
        }),
        _ => Err(format!(
            "must be a whole number, found {}",
            yaml::type_name(value)
        )),
    }
}

/// Keys other tools use for ours; too far by spelling to be caught as typos.
fn alias(key: &str) -> Option<&'static str> {
    Some(match key {
        "depends_on" | "depends" | "deps" | "needs" | "after" | "requires" => "dependencies",
        "retry" | "max_retries" | "attempts" => "retries",
        "input" | "input_files" => "inputs",
        "output" | "output_files" | "produces" => "outputs",
        // Ignored, they would run an agent in your checkout: `workdir: worktree`.
        "worktree" | "worktrees" | "work_tree" | "work-tree" | "isolation" => "workdir",
        "cmd" | "run" | "script" => "command",
        "timeout_seconds" | "time_limit" => "timeout",
        "idle" => "idle_timeout",
        // Kept as the user's own, the task would run unapproved.
        "approval" | "approvals" | "requires_approval" | "require_approval" | "needs_approval"
        | "approval_required" => "approve",
        "prio" | "priorities" => "priority",
        // Set under `resources`, where they are read.
        "cpus" => "resources.cpus",
        "memory_gb" => "resources.memory_gb",
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
    // Ids are shown as they are everywhere; one a terminal would act on
    // (a newline, an escape, a direction override) is refused here once.
    if id.contains(crate::agent::terminal::acts_on_a_terminal) {
        return Err("the path contains control characters: rename the file".into());
    }
    Ok(id.to_owned())
}

/// The Markdown under a task file's frontmatter.
pub fn body(text: &str) -> &str {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        offset += line.len();
        if i > 0 && matches!(line.trim_end(), "---" | "...") {
            return text[offset..].trim_start_matches('\n');
        }
    }
    text
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
    // Carriage returns alone end no line here (nor in YAML): the whole
    // file is one line, and "no frontmatter" would not say why.
    if text.contains('\r') && !text.contains('\n') {
        return Err((
            Some(1),
            "its lines end in a carriage return alone (classic Mac OS line ends), so it reads as one line: save it with LF (or CRLF) line ends"
                .into(),
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

/// A shell command string, or an argv list.
fn command(value: &Value) -> Result<CommandSpec, String> {
    let spec = command_spec(value)?;
    let words = match &spec {
        CommandSpec::Shell(line) => std::slice::from_ref(line),
        CommandSpec::Argv(argv) => argv.as_slice(),
    };
    crate::model::argv::refuse_nul(words)?;
    Ok(spec)
}

fn command_spec(value: &Value) -> Result<CommandSpec, String> {
    match value {
        Value::String(s) if s.trim().is_empty() => {
            Err("is empty: give the command to run, or remove the key to run agent.command".into())
        }
        Value::String(s) => Ok(CommandSpec::Shell(s.clone())),
        Value::Sequence(_) => {
            let argv = yaml::text_list(value)?;
            if argv.is_empty() {
                return Err("the argv list is empty: name a program first".into());
            }
            Ok(CommandSpec::Argv(argv))
        }
        other => Err(format!(
            "must be a shell command as text, or an argv list, found {}",
            yaml::type_name(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_and_its_key_come_from_the_id() {
        assert_eq!(phase_of("01-analysis/a/b"), "01-analysis");
        assert_eq!(phase_of("lone"), "lone");
        for (folder, key) in [
            ("01-analysis", "analysis"),
            ("02_build", "build"),
            ("analysis", "analysis"),
            ("L0", "L0"),
            ("007", "007"),
            ("01-", "01-"),
        ] {
            assert_eq!(phase_key(folder), key, "{folder}");
        }
    }

    /// The dependencies read, or every problem, one per line.
    fn check(text: &str, expected: Result<&str, &str>) {
        let dir = Utf8Path::new("/r/tasks");
        let file = Utf8Path::new("/r/tasks/01-a/t.md");
        match (parse(dir, file, text).valid(), expected) {
            (Ok(task), Ok(deps)) => assert_eq!(task.dependencies.join(","), deps),
            (Err(problems), Err(msg)) => {
                let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                let shown = shown.join("\n");
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
        check(
            "---\rtitle: T\r---\rbody\r",
            Err("t.md:1: its lines end in a carriage return alone"),
        );
        check("---\r\ntitle: T\r\n---\r\n", Ok(""));
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
        check(
            "---\nretries: -1\n---\n",
            Err("`retries`: must be a whole number, 0 or more, found -1"),
        );
        check("---\ncommand: \"\"\n---\n", Err("`command`: is empty"));
        check(
            "---\n  bad: [\n---\n",
            Err("t.md:3: frontmatter is not valid YAML: did not find expected node content, while"),
        );
    }

    /// The problems of a task file `tasks/01-a/t.md` holding `text`.
    fn problems_of(text: &str) -> Vec<String> {
        let file = Utf8Path::new("/r/tasks/01-a/t.md");
        let problems = parse(Utf8Path::new("/r/tasks"), file, text).problems;
        problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn every_problem_of_a_file_at_once() {
        let text =
            "---\noutput: [a]\ntimout: 1h\nretry: 2\ndepends_on: [x]\nresources: {cpus: 0}\n---\n";
        assert_eq!(
            problems_of(text),
            [
                "/r/tasks/01-a/t.md:2: unknown key `output`: did you mean `outputs`?",
                "/r/tasks/01-a/t.md:3: unknown key `timout`: did you mean `timeout`?",
                "/r/tasks/01-a/t.md:4: unknown key `retry`: did you mean `retries`?",
                "/r/tasks/01-a/t.md:5: unknown key `depends_on`: did you mean `dependencies`?",
                "/r/tasks/01-a/t.md:6: `resources.cpus`: must be a number above 0, found 0",
            ]
        );
    }

    /// A known key in capitals, or a resource set outside `resources`, is
    /// taken for ours misspelt: it was kept as a key of the user's, and a
    /// task with `COMMAND:` ran the default agent.
    #[test]
    fn a_key_shouted_or_out_of_its_place_is_a_typo() {
        // `memory:` and `my_Notes:` stay the user's own.
        let text = "---\nCOMMAND: x\nTIMEOUT: 1h\nmemory_gb: 2\ncpus: 1\nmy_Notes: kept\nmemory: the API's quirks\n---\n";
        assert_eq!(
            problems_of(text),
            [
                "/r/tasks/01-a/t.md:2: unknown key `COMMAND`: did you mean `command`?",
                "/r/tasks/01-a/t.md:3: unknown key `TIMEOUT`: did you mean `timeout`?",
                "/r/tasks/01-a/t.md:4: unknown key `memory_gb`: did you mean `resources.memory_gb`?",
                "/r/tasks/01-a/t.md:5: unknown key `cpus`: did you mean `resources.cpus`?",
            ]
        );
    }

    /// An approval gate or a priority under another name would be kept as
    /// a key of the user's: the task would run without approval.
    #[test]
    fn an_approval_or_priority_under_another_name_is_a_typo() {
        let text = "---\napprovals: before\nrequires_approval: true\nprio: 3\npriorities: 2\n---\n";
        assert_eq!(
            problems_of(text),
            [
                "/r/tasks/01-a/t.md:2: unknown key `approvals`: did you mean `approve`?",
                "/r/tasks/01-a/t.md:3: unknown key `requires_approval`: did you mean `approve`?",
                "/r/tasks/01-a/t.md:4: unknown key `prio`: did you mean `priority`?",
                "/r/tasks/01-a/t.md:5: unknown key `priorities`: did you mean `priority`?",
            ]
        );
    }

    #[test]
    fn write_scopes() {
        let check = |a, b, expected| assert_eq!(scopes_overlap(a, b), expected, "{a} ~ {b}");
        check("src/*", "src/lib.rs", true);
        check("src/lib.rs", "src/*", true);
        check("src/**", "docs/*", false);
        check("src/a.rs", "src/b.rs", false);
        check("*", "anything", true);
        check("./web/**", "web/app.js", true);
    }

    #[test]
    fn phase_keys() {
        assert_eq!(phase_key("01-analysis"), "analysis");
        assert_eq!(phase_key("analysis"), "analysis");
        assert_eq!(phase_key("3_impl"), "impl");
    }
}
