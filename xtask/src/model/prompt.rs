//! Prompt templates: `agent.prompt` / `agent.prompt_file` in the config, a
//! task's own `prompt:` / `prompt_file:`. Rendered for every attempt with
//! minijinja, strictly: a variable that does not exist is an error, found
//! when the definitions are checked (unknown names, syntax, and a trial
//! render as a first attempt), never by an agent reading an empty prompt.
//! What the variables hold is built by `run::prompt`.

use camino::{Utf8Path, Utf8PathBuf};
use minijinja::value::{Kwargs, Rest, Serde, StringInput, ValueOrKwargs};
use minijinja::{Environment, ErrorKind, State, UndefinedBehavior, Value};
use serde::Serialize;

use crate::model::problem::Problem;
use crate::model::task::Task;
use crate::model::yaml::{self, Fields};

mod source;
use source::{first_uses, line_using, loop_list, variable_start};

/// A template and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The file it is in: its own file, or the config or task file that
    /// holds it inline.
    pub file: Utf8PathBuf,
    /// The line of `file` its first line is on.
    pub first_line: usize,
    /// Whether its lines are the file's, one for one, from `first_line`
    /// (a file, a literal block scalar `|`); else a quoted or folded
    /// value, whose `\n` escapes and folds the file does not show line
    /// for line: a problem on any of its lines is said at `first_line`.
    pub lines_follow: bool,
    /// What names it in messages: `agent.prompt_file`, `prompt`, ...
    pub key: String,
    pub source: String,
}

/// What a template sees.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub task: TaskVars,
    /// The task's dependencies (tasks, not phases), in the order written.
    pub deps: Vec<DepVars>,
    pub attempt: u32,
    /// The latest failed attempt: none when there is none (a first attempt,
    /// or one after a success, such as a stale task run again).
    pub previous: Option<PreviousVars>,
    /// The worktree it runs in, when it runs in one.
    pub worktree: Option<String>,
    /// What the budget leaves, when there is one.
    pub budget_left_usd: Option<f64>,
    /// Where each task's output folder is: `<outputs_dir>/<its id>/`.
    pub outputs_dir: String,
    /// Whether `deps` holds the texts of the dependencies' files, or only
    /// their paths (the built-in prompt past `BUILT_IN_LONGEST`).
    pub quote: bool,
    /// How many dependencies (the last) `deps` leaves out, to be counted,
    /// not named (the built-in prompt past it again).
    pub left_out: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskVars {
    pub id: String,
    /// Its `title:`, else its id.
    pub title: String,
    pub phase: String,
    /// The Markdown under the frontmatter.
    pub body: String,
    pub outputs: Vec<String>,
    pub output_dir: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DepVars {
    pub id: String,
    pub title: String,
    pub outputs: Vec<OutputVars>,
    /// The outputs it declares that are not there now (by path; a glob's
    /// pattern): removed since it completed.
    pub missing: Vec<String>,
    /// What its agent said last (`agent.final_message` of its status), when
    /// it reported anything: what it did, in its own words.
    pub message: Option<String>,
    /// The commit its work was merged as, for a task run in a worktree.
    pub commit: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputVars {
    pub path: String,
    /// The file's text, cut beyond `OUTPUT_TEXT` bytes with a marker.
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviousVars {
    pub error: String,
    /// The last `LOG_TAIL` lines of its log.
    pub log_tail: String,
    pub session_id: Option<String>,
}

/// How much of a dependency's output file a prompt gets.
pub const OUTPUT_TEXT: usize = 8 * 1024;
/// How many lines of the previous attempt's log.
pub const LOG_TAIL: usize = 50;

/// The fields of an item of `deps`, and of an item of its `outputs`.
const DEP_FIELDS: &[&str] = &["id", "title", "message", "commit", "outputs"];
const OUTPUT_FIELDS: &[&str] = &["path", "text"];

/// The variables a template may name, and the fields of those that have.
const VARIABLES: &[(&str, &[&str])] = &[
    (
        "task",
        &["id", "title", "phase", "body", "outputs", "output_dir"],
    ),
    ("deps", &[]),
    ("attempt", &[]),
    ("previous", &["error", "log_tail", "session_id"]),
    ("worktree", &[]),
    ("budget_left_usd", &[]),
    ("outputs_dir", &[]),
    ("quote", &[]),
    ("left_out", &[]),
];
/// minijinja's own functions, which its variable listing includes.
const FUNCTIONS: &[&str] = &["range", "dict", "namespace", "debug"];

/// Reads `prompt` / `prompt_file` (one of the two) from `f`, the fields of
/// `file`; a prompt file is a path under `tasks_dir`.
pub fn read(
    f: &mut Fields,
    file: &Utf8Path,
    tasks_dir: &Utf8Path,
    prefix: &str,
) -> Option<Template> {
    let inline_line = f.line("prompt");
    let file_line = f.line("prompt_file");
    let inline = f.take("prompt", yaml::text);
    let path = f.take("prompt_file", yaml::non_empty_text);
    match (inline, path) {
        (Some(_), Some(_)) => {
            f.problem(
                file_line,
                format!("`{prefix}prompt` and `{prefix}prompt_file` are both set: keep one"),
            );
            None
        }
        (Some(source), None) => {
            // A literal block scalar (`prompt: |`) starts on the line after
            // its key.
            let literal = (inline_line.and_then(|l| f.line_text(l)))
                .and_then(|text| text.split_once(':'))
                .is_some_and(|(_, value)| value.trim_start().starts_with('|'));
            Some(Template {
                file: file.to_owned(),
                first_line: inline_line.map_or(1, |l| l + usize::from(literal)),
                lines_follow: literal,
                key: format!("{prefix}prompt"),
                source,
            })
        }
        (None, Some(path)) => {
            let full = tasks_dir.join(&path);
            if path.starts_with('/') || path.split('/').any(|c| c == "..") {
                f.problem(
                    file_line,
                    format!("`{prefix}prompt_file: {path}`: a template is a file under tasks/; write its path relative to tasks/, without `..`"),
                );
                return None;
            }
            if path.ends_with(".md") {
                f.problem(
                    file_line,
                    format!("`{prefix}prompt_file: {path}`: a .md file under tasks/ is a task; name the template {}.jinja", path.trim_end_matches(".md")),
                );
                return None;
            }
            match crate::sys::read_regular_file(&full).map(|(bytes, _)| String::from_utf8(bytes)) {
                Ok(Ok(source)) => Some(Template {
                    file: full,
                    first_line: 1,
                    lines_follow: true,
                    key: format!("{prefix}prompt_file"),
                    // An editor's byte order mark is no text of the
                    // prompt's (the agent got it first), as in task files.
                    source: match source.strip_prefix('\u{feff}') {
                        Some(text) => text.to_owned(),
                        None => source,
                    },
                }),
                // Said at the template's line where it stops being text.
                Ok(Err(e)) => {
                    f.absorb(vec![Problem::not_utf8(&full, &e)]);
                    None
                }
                Err(e) => {
                    f.problem(
                        file_line,
                        format!("`{prefix}prompt_file`: cannot read {full}: {e} (the path is relative to tasks/)"),
                    );
                    None
                }
            }
        }
        (None, None) => None,
    }
}

/// The prompt of a task whose command asks for `{prompt}` or
/// `{prompt_file}` without a template: its body, then what its
/// dependencies produced, the outputs it must write, and on a retry why
/// the attempt before failed. An agent told none of these repeats its
/// mistake, or redoes what upstream did (README: Prompts).
pub fn built_in(task_file: &Utf8Path) -> Template {
    Template {
        file: task_file.to_owned(),
        first_line: 1,
        lines_follow: false,
        key: "the built-in prompt".into(),
        source: BUILT_IN.into(),
    }
}

const BUILT_IN: &str = include_str!("default_prompt.jinja");

/// How long the built-in prompt may grow saying what the dependencies
/// produced: past it, their files are named, not quoted, and past it
/// again, the dependencies that do not fit are counted, not named. Linux
/// takes at most 128 KiB in one argument or environment variable, and
/// `{prompt}` is one: a prompt a template of the user's makes longer fails
/// its attempt with a hint to use `{prompt_file}`, but a built-in one must
/// not fail a command that worked with the task's body alone.
pub const BUILT_IN_LONGEST: usize = 96 << 10;

impl Template {
    /// Whether it is the built-in prompt (`built_in`).
    pub fn is_built_in(&self) -> bool {
        self.source == BUILT_IN
    }
}

impl Context {
    /// What a first attempt of `task` would see, each dependency with the
    /// outputs it declares (`declared`, by id: every one is there once it
    /// completed, a glob's one match at least) with empty texts: what
    /// `Template::check` renders.
    pub fn sample(
        task: &Task,
        outputs_dir: &Utf8Path,
        in_worktree: bool,
        budget: Option<f64>,
        declared: &dyn Fn(&str) -> Vec<String>,
    ) -> Context {
        Context {
            task: TaskVars {
                id: task.id.clone(),
                title: task.title.clone().unwrap_or_else(|| task.id.clone()),
                phase: task.phase().to_owned(),
                body: String::new(),
                outputs: task.outputs.clone(),
                output_dir: outputs_dir.join(&task.id).to_string(),
            },
            deps: task
                .dependencies
                .iter()
                .map(|id| DepVars {
                    id: id.clone(),
                    title: id.clone(),
                    message: None,
                    commit: None,
                    outputs: (declared(id).into_iter())
                        .map(|path| OutputVars {
                            path,
                            text: String::new(),
                        })
                        .collect(),
                    missing: Vec::new(),
                })
                .collect(),
            attempt: 1,
            previous: None,
            worktree: in_worktree.then(|| "/worktree".to_owned()),
            budget_left_usd: budget,
            outputs_dir: outputs_dir.to_string(),
            quote: true,
            left_out: 0,
        }
    }

    /// `sample` as a second attempt after a first that hit a rate limit:
    /// that one is not its `previous` (a template guarded by `attempt`
    /// rather than by `previous` fails there).
    pub fn after_a_rate_limit(self) -> Context {
        Context { attempt: 2, ..self }
    }

    /// `sample`, with one output for each dependency that declares none
    /// (what it makes is not known), and, for a task whose dependencies
    /// all come from its `inputs`, one dependency: so that the body of a
    /// loop over them is rendered too (a typo in
    /// `{% for o in d.outputs %}{{ o.txt }}` shows only there).
    pub fn sample_with_outputs(self, task: &Task) -> Context {
        let mut deps = self.deps;
        if deps.is_empty() && !task.inputs.is_empty() {
            deps.push(DepVars {
                id: "a task making its inputs".to_owned(),
                title: "a task making its inputs".to_owned(),
                outputs: Vec::new(),
                missing: Vec::new(),
                message: None,
                commit: None,
            });
        }
        for dep in deps.iter_mut().filter(|d| d.outputs.is_empty()) {
            dep.outputs = vec![OutputVars {
                path: format!("workspace/outputs/{}/output", dep.id),
                text: String::new(),
            }];
        }
        Context { deps, ..self }
    }
}

impl Template {
    /// The prompt for `context`, or why it cannot be rendered (at the
    /// template's file and line).
    pub fn render(&self, context: &Context) -> Result<String, Problem> {
        let (fuel, longest) = self.limits();
        let env = environment(fuel);
        let template = env
            .template_from_named_str(self.file.as_str(), &self.source)
            .map_err(|e| self.problem(e.line(), detail(&e, fuel)))?;
        render_capped(&template, context, longest).map_err(|e| {
            let why = format!("{}{}", detail(&e, fuel), self.quoted(&e));
            self.problem(line(&e), format!("the template fails: {why}"))
        })
    }

    /// The fuel it renders with, and the longest prompt it may render. The
    /// built-in prompt quotes what the dependencies made, 80 MB for 10,000
    /// of them, before `run::prompt` renders it shorter: it is ours, and
    /// bounded by what it is given.
    fn limits(&self) -> (u64, usize) {
        match self.is_built_in() {
            true => (BUILT_IN_FUEL, usize::MAX),
            false => (FUEL, PROMPT_LONGEST),
        }
    }

    /// What to guard, when the template's failing line uses a variable
    /// that is none on a first attempt or outside a worktree.
    fn guard_hint(&self, line: Option<usize>) -> String {
        let text = line
            .and_then(|l| self.source.lines().nth(l.checked_sub(1)?))
            .unwrap_or_default();
        let guards: Vec<String> = [
            ("previous", "on a first attempt"),
            ("worktree", "for a task outside a worktree"),
        ]
        .iter()
        .filter(|(name, _)| text.contains(name))
        .map(|(name, when)| format!("`{name}` is none {when}: guard it with {{% if {name} %}}"))
        .collect();
        match guards.is_empty() {
            true => String::new(),
            false => format!(" ({})", guards.join("; ")),
        }
    }

    /// Every problem of the template: its syntax, the variables it names
    /// that do not exist, and what fails when it renders the first of
    /// `samples` it fails on (a first attempt, where `previous` is none,
    /// ...). Parsed once for all: a parse of a template of 10 MB takes a
    /// second unoptimised.
    pub fn check(&self, samples: &[Context]) -> Vec<Problem> {
        let (fuel, longest) = self.limits();
        let env = environment(fuel);
        let template = match env.template_from_named_str(self.file.as_str(), &self.source) {
            Ok(template) => template,
            Err(e) => return vec![self.problem(e.line(), detail(&e, fuel))],
        };
        let mut unknown: Vec<String> = template
            .undeclared_variables(true)
            .into_iter()
            .filter(|name| !known(name))
            .collect();
        unknown.sort();
        if !unknown.is_empty() {
            // Where each is, found in one pass over the template: a search
            // of it for each name took minutes for 200 names in 3 MB.
            let first_uses = first_uses(&self.source);
            return unknown
                .iter()
                .map(|name| self.problem(line_using(&first_uses, name), unknown_message(name)))
                .collect();
        }
        let failed = samples.iter().find_map(|sample| {
            let failed = render_capped(&template, sample, longest).err();
            failed.map(|e| (sample, e))
        });
        match failed {
            None => Vec::new(),
            Some((sample, e)) => vec![self.problem(
                line(&e),
                format!(
                    "the template fails on {}{}: {}{}{}",
                    match sample.attempt {
                        1 => "a first attempt",
                        _ => "an attempt after one that hit a rate limit (`attempt` is 2, `previous` none)",
                    },
                    match sample.deps.iter().any(|d| !d.outputs.is_empty()) {
                        true => " whose dependencies made outputs",
                        false => "",
                    },
                    detail(&e, fuel),
                    self.quoted(&e),
                    self.guard_hint(e.line())
                        + &fields_hint(&e, self.failed_text(&e), &self.source)
                ),
            )],
        }
    }

    fn problem(&self, line: Option<usize>, message: String) -> Problem {
        let line = line.map(|l| match self.lines_follow {
            true => self.first_line + l - 1,
            false => self.first_line,
        });
        Problem::in_file(&self.file, line, format!("{}: {message}", self.key))
    }

    /// ` in `<what failed>``: the template's text where rendering failed,
    /// when minijinja says where (an undefined value names nothing).
    fn quoted(&self, e: &minijinja::Error) -> String {
        self.failed_text(e)
            .map_or(String::new(), |text| format!(" in `{}`", text.trim()))
    }

    /// The template's text where rendering failed, when minijinja says,
    /// from the start of its variable (minijinja's range of an index
    /// leaves out what it indexes: `[0].outputs` of `deps[0].outputs`).
    fn failed_text(&self, e: &minijinja::Error) -> Option<&str> {
        let range = e.range()?;
        let start = variable_start(self.source.get(..range.start)?);
        self.source.get(start..range.end)
    }
}

/// Whether a name the template uses (`task.id`, `deps`) is one it may.
fn known(name: &str) -> bool {
    let mut parts = name.split('.');
    let top = parts.next().unwrap_or("");
    if FUNCTIONS.contains(&top) {
        return true;
    }
    let Some((_, fields)) = VARIABLES.iter().find(|(n, _)| *n == top) else {
        return false;
    };
    match parts.next() {
        None => true,
        // A list's item by its index; no other variable has fields.
        Some(field) => fields.contains(&field) || field.parse::<usize>().is_ok(),
    }
}

/// What is wrong with the name `name`, and what there is instead.
fn unknown_message(name: &str) -> String {
    let (top, field) = name.split_once('.').unwrap_or((name, ""));
    match VARIABLES.iter().find(|(n, _)| *n == top) {
        Some((_, [])) => format!(
            "unknown variable `{name}` in the template: `{top}` has no fields (`{{{{ {top} }}}}` is all of it)"
        ),
        Some((_, fields)) => format!(
            "unknown variable `{name}` in the template: `{top}` has no `{field}`; it has {}",
            fields.join(", ")
        ),
        None => {
            let names: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown variable `{name}` in the template: the variables are {}",
                names.join(", ")
            )
        }
    }
}

/// The steps (minijinja's instructions) a template may take to render: a
/// loop over a huge range (`range(100000)` in `range(100000)`) ran
/// `validate`, which renders each template, for hours. minijinja charges
/// a step for each 64 bytes of text and lists made on the way too: these
/// 10 million steps hold what a template makes to 640 MB (100 million let
/// a text doubled in a loop abort `validate` in 2 GiB), and take about a
/// second unoptimised.
const FUEL: u64 = 10_000_000;

/// The built-in prompt's steps: it quotes what every dependency made
/// before `run::prompt` renders it shorter (a task with 10,000 takes a few
/// million), and its loops are over what it is given.
const BUILT_IN_FUEL: u64 = 100_000_000;

/// The longest prompt a template may render: an agent reads no more, and
/// one step of a template can make a text of gigabytes (a loop doubling a
/// string), which `validate` would hold in memory.
pub const PROMPT_LONGEST: usize = 10 << 20;

/// The widest `indent` a template may ask for: `indent(1000000000)` is a
/// gigabyte of spaces a line, in one step, and no prompt is indented past
/// a hundred columns.
pub const INDENT_WIDEST: usize = 100;

/// `template` rendered for `context`, failing (`ErrorKind::WriteFailure`)
/// as soon as the prompt is longer than `longest`, before it is held whole.
fn render_capped(
    template: &minijinja::Template,
    context: &Context,
    longest: usize,
) -> Result<String, minijinja::Error> {
    struct Capped(Vec<u8>, usize);
    impl std::io::Write for Capped {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.0.len().saturating_add(bytes.len()) > self.1 {
                return Err(std::io::Error::other("the prompt is too long"));
            }
            self.0.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Capped(Vec::new(), longest);
    template.render_captured_to(Value::from(Serde(context)), &mut out)?;
    // minijinja writes whole texts: the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&out.0).into_owned())
}

/// The template's line where `e` happened; the first for a prompt too long
/// (minijinja does not say which line wrote past the end).
fn line(e: &minijinja::Error) -> Option<usize> {
    match e.kind() {
        ErrorKind::WriteFailure => Some(1),
        _ => e.line(),
    }
}

/// minijinja's `indent`, refusing a width past `INDENT_WIDEST`, and a text
/// longer than the steps left pay for before it is made, as minijinja's
/// own filter does (the function it exports does not look): 100 columns
/// before each of 10 million lines is a gigabyte in one step.
fn indent(state: &State, args: Rest<ValueOrKwargs>) -> Result<Value, minijinja::Error> {
    let args = args.into_values();
    let (value, width, first, blank, kwargs): (
        StringInput<'_>,
        Option<usize>,
        Option<bool>,
        Option<bool>,
        Kwargs,
    ) = minijinja::value::from_args(&args)?;
    let asked = match width {
        Some(width) => Some(width),
        None => kwargs.peek::<Option<usize>>("width")?,
    };
    if let Some(width) = asked.filter(|&w| w > INDENT_WIDEST) {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("`indent({width})` is wider than the {INDENT_WIDEST} columns an indent may be: indent less"),
        ));
    }
    let text = value.as_str();
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    // minijinja's default width, 4.
    let made = (asked.unwrap_or(4).saturating_mul(lines)).saturating_add(text.len());
    // A step pays for 64 bytes (see `FUEL`).
    let affordable = (state.fuel_levels()).map_or(u64::MAX, |(_, left)| left.saturating_mul(64));
    if made as u64 >= affordable {
        return Err(ErrorKind::OutOfFuel.into());
    }
    minijinja::filters::indent(value, width, first, blank, kwargs)
}

fn environment(fuel: u64) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(fuel));
    // Prompts are Markdown, never HTML: nothing is escaped.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_filter("indent", indent);
    env.add_filter("fence", |value: Value| match value.as_str() {
        Some(text) => Ok(fence(text)),
        None => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!(
                "`fence` takes a text, and this is {}",
                not_text_advice(&value)
            ),
        )),
    });
    env
}

/// What `value`, not a text, is, and how to make it one: none is guarded
/// against, anything else made text first.
fn not_text_advice(value: &Value) -> String {
    match value.is_none() || value.is_undefined() {
        true => {
            "none: guard it with `{% if ... %}` (a dependency that reported no message has none)"
                .to_owned()
        }
        false => format!(
            "{}: make it a text first (`| string | fence`)",
            shown_kind(value)
        ),
    }
}

/// What kind of value `value` is, as a sentence says it.
fn shown_kind(value: &Value) -> String {
    match value.is_none() || value.is_undefined() {
        true => "none".to_owned(),
        false => format!("a {}", value.kind()),
    }
}

/// `text` in a Markdown code block whose fence is longer than any run of
/// backticks in it: a file or a log holding its own ``` would end a
/// fence of three, and the rest of it read as the prompt's own words.
fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let end = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    format!("{fence}\n{text}{end}{fence}")
}

/// For a field of a loop's item that is not there (`{{ o.txt }}` in
/// `{% for o in d.outputs %}`): the fields an item of that list has, which
/// `unknown_message` cannot say of a name it does not know the list of.
/// Nothing for any other failure (an index out of range, a variable of
/// the template's own).
fn fields_hint(e: &minijinja::Error, failed: Option<&str>, source: &str) -> String {
    let Some((item, field)) = failed.and_then(|text| text.trim().split_once('.')) else {
        return String::new();
    };
    let plain =
        |name: &str| !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if e.kind() != minijinja::ErrorKind::UndefinedError || !plain(item) || !plain(field) {
        return String::new();
    }
    let (list, fields) = match loop_list(source, item) {
        Some("deps") => ("`deps`", DEP_FIELDS),
        Some(list) if list.ends_with(".outputs") => ("a dependency's `outputs`", OUTPUT_FIELDS),
        _ => return String::new(),
    };
    match fields.contains(&field) {
        true => String::new(),
        false => format!(" (an item of {list} has {})", fields.join(", ")),
    }
}

/// The error's own words, without minijinja's pointer into the source;
/// `fuel`, the steps it was given.
fn detail(e: &minijinja::Error, fuel: u64) -> String {
    match (e.kind(), e.detail()) {
        (minijinja::ErrorKind::OutOfFuel, _) => format!(
            "it takes more than {} steps to render, a step for each 64 bytes of text and lists it makes or searches too (a loop over too large a range? a text doubled in a loop? `in` a long text, in a loop?): do less",
            in_millions(fuel)
        ),
        (minijinja::ErrorKind::WriteFailure, _) => format!(
            "the prompt it renders is longer than {} MiB, the most a prompt may be: render less (quote fewer or shorter texts)",
            PROMPT_LONGEST >> 20
        ),
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    }
}

/// `n` as a person reads it: `10 million` for 10,000,000.
fn in_millions(n: u64) -> String {
    match n % 1_000_000 {
        0 => format!("{} million", n / 1_000_000),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::fence;

    #[test]
    fn a_fence_is_longer_than_any_run_of_backticks_in_its_text() {
        assert_eq!(fence("plain"), "```\nplain\n```");
        assert_eq!(fence("ends\n"), "```\nends\n```");
        assert_eq!(fence(""), "```\n```");
        // A Markdown file with a code block of its own, and one of four.
        assert_eq!(fence("```sh\nls\n```\n"), "````\n```sh\nls\n```\n````");
        assert_eq!(fence("````\n`x`"), "`````\n````\n`x`\n`````");
    }
}
