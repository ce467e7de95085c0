//! The prompt of an attempt: its template (`model::prompt`) rendered with
//! what the task's dependencies produced and what its previous attempt
//! left, written to `workspace/prompts/<id>.attempt-<n>.md`.

use std::io::Read;

use anyhow::{Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::model::config::Config;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::model::problem::Problem;
use crate::model::prompt::{
    Context, DepVars, OutputVars, PreviousVars, TaskVars, Template, BUILT_IN_LONGEST, LOG_TAIL,
    OUTPUT_TEXT,
};
use crate::model::task::{self, Task};
use crate::run::history::Previous;
use crate::state::status::{self, Status};
use crate::state::{atomic, logs, outputs};
use crate::ui::format;

/// A rendered prompt, and the file it was written to.
pub struct Rendered {
    pub path: Utf8PathBuf,
    pub text: String,
}

/// What an attempt knows besides the task and its dependencies.
pub struct Attempt<'a> {
    pub number: u32,
    pub previous: Option<&'a Previous>,
    /// Where it runs in its worktree, when it has one.
    pub workdir: Option<&'a Utf8Path>,
    pub budget_left: Option<f64>,
    /// A dependency's status as it is now: decided, even if not written
    /// yet (a run starts a dependent before it writes the final status of
    /// what it waited on), else on disk.
    pub upstream: &'a dyn Fn(usize) -> Option<Status>,
}

/// `Attempt::upstream` where nothing is decided but not written: the
/// status on disk (one that cannot be read tells nothing more: the
/// dependency's outputs are still there).
pub fn on_disk<'a>(layout: &'a Layout, graph: &'a Graph) -> impl Fn(usize) -> Option<Status> + 'a {
    move |d| status::read(layout, &graph.tasks[d].id).ok().flatten()
}

/// A prompt its template cannot make of what this attempt has (a mistake
/// only a retry, or a dependency's outputs, reach: `validate` tries the
/// template on a stand-in): every retry would fail the same way.
#[derive(Debug)]
pub struct Unrenderable(String);

impl std::fmt::Display for Unrenderable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unrenderable {}

/// The prompt of task `t`'s attempt, when it has a template; `Err` says
/// why it cannot be rendered (`Unrenderable`, or the task file unread).
pub fn render(
    layout: &Layout,
    config: &Config,
    graph: &Graph,
    t: usize,
    attempt: &Attempt,
) -> Option<Result<String>> {
    let template = graph.tasks[t].prompt_template(config)?;
    let rendered = context(layout, graph, t, attempt).and_then(|context| {
        match template.is_built_in() {
            true => built_in(&template, context),
            false => template.render(&context),
        }
        .map_err(|p| Unrenderable(p.relative_to(layout.here()).to_string()).into())
    });
    Some(rendered)
}

/// The built-in prompt, as much of what the dependencies produced as fits
/// in `BUILT_IN_LONGEST`: their files quoted; else named, each agent's
/// message its first line; else the dependencies that do not fit
/// counted, the last first. Without its leading blank lines (a task with
/// no body), and ending with a newline, as a text file does.
fn built_in(template: &Template, mut context: Context) -> Result<String, Problem> {
    // The body as written, an indented first line kept; its blank lines
    // around it are the template's to place.
    let body = context
        .task
        .body
        .trim_start_matches(['\n', '\r'])
        .trim_end();
    context.task.body = body.to_owned();
    let mut text = template.render(&context)?;
    if text.len() > BUILT_IN_LONGEST {
        context.quote = false;
        shorten_messages(&mut context.deps);
        text = template.render(&context)?;
    }
    while text.len() > BUILT_IN_LONGEST && !context.deps.is_empty() {
        // About as many of the last as make the excess, then a look again.
        let mut excess = (text.len() - BUILT_IN_LONGEST) as isize;
        while excess > 0 {
            let Some(dep) = context.deps.pop() else { break };
            excess -= named_length(&dep) as isize;
            context.left_out += 1;
        }
        text = template.render(&context)?;
    }
    Ok(format!("{}\n", text.trim_start_matches('\n')))
}

/// Renders and writes the prompt of task `t`'s attempt, when it has one.
pub fn prepare(
    layout: &Layout,
    config: &Config,
    graph: &Graph,
    t: usize,
    attempt: &Attempt,
) -> Result<Option<Rendered>> {
    let Some(text) = render(layout, config, graph, t, attempt) else {
        return Ok(None);
    };
    let text = text?;
    let path = layout.prompt_file(&graph.tasks[t].id, attempt.number);
    let dir = path.parent().expect("a prompt file has a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
    atomic::write(&path, text.as_bytes())?;
    Ok(Some(Rendered { path, text }))
}

/// The text of `task`'s file.
fn read_task_file(task: &Task) -> Result<String> {
    std::fs::read_to_string(&task.file).with_context(|| format!("cannot read {}", task.file))
}

fn context(layout: &Layout, graph: &Graph, t: usize, attempt: &Attempt) -> Result<Context> {
    let task = &graph.tasks[t];
    // A phase depended on stands for its tasks, each once.
    let deps = (graph.tasks_waited_on_directly(t).into_iter())
        .map(|d| {
            let dep = &graph.tasks[d];
            let status = (attempt.upstream)(d);
            let status = status.as_ref();
            DepVars {
                id: dep.id.clone(),
                title: dep.title.clone().unwrap_or_else(|| dep.id.clone()),
                message: status
                    .and_then(|s| s.agent.as_ref())
                    .and_then(|a| a.final_message.clone()),
                commit: status.and_then(|s| s.merged_commit.clone()),
                outputs: outputs::existing(layout, dep)
                    .into_iter()
                    .map(|path| OutputVars {
                        text: text_of(&path),
                        path: path.to_string(),
                    })
                    .collect(),
                missing: outputs::gone(layout, dep),
            }
        })
        .collect();
    Ok(Context {
        task: TaskVars {
            id: task.id.clone(),
            title: task.title.clone().unwrap_or_else(|| task.id.clone()),
            phase: task.phase().to_owned(),
            // As the run read it (`Task::keep_body`); else as it is now
            // (`prompt`, or a file changed as the run read it).
            body: match &task.body {
                Some(body) => body.to_string(),
                None => task::body(&read_task_file(task)?).to_owned(),
            },
            outputs: task.outputs.clone(),
            output_dir: layout.output_dir(&task.id).to_string(),
        },
        deps,
        attempt: attempt.number,
        previous: attempt.previous.map(|p| PreviousVars {
            error: p.error.clone(),
            log_tail: logs::tail(&p.log, LOG_TAIL).join("\n"),
            session_id: p.session_id.clone(),
        }),
        worktree: attempt.workdir.map(|w| w.to_string()),
        budget_left_usd: attempt.budget_left,
        outputs_dir: layout.outputs_dir().to_string(),
        quote: true,
        left_out: 0,
    })
}

/// What the dependencies' agents said, shortly enough for a prompt that
/// quoting their files made too long: each message's first line.
fn shorten_messages(deps: &mut [DepVars]) {
    for dep in deps.iter_mut() {
        if let Some(message) = &mut dep.message {
            let first = format::first_line(message, 200);
            if first.len() < message.trim_end().len() {
                *message = format!("{first} [...]");
            }
        }
    }
}

/// About what naming `dep` takes in the built-in prompt, files unquoted.
fn named_length(dep: &DepVars) -> usize {
    let said = [&dep.id, &dep.title]
        .into_iter()
        .chain(&dep.message)
        .chain(&dep.commit)
        .chain(dep.outputs.iter().map(|o| &o.path));
    said.map(|text| text.len() + 8).sum::<usize>() + 40
}

/// A file's text for a prompt: the first `OUTPUT_TEXT` bytes, cut at a
/// character, with a marker saying what was left out; a binary file (a NUL
/// byte in that part, as git and grep judge) only named.
fn text_of(path: &Utf8Path) -> String {
    if path.is_dir() {
        return format!(
            "[a folder of more than {} files or {} MiB, not quoted: {path}]",
            outputs::FOLDER_FILES,
            outputs::FOLDER_BYTES >> 20
        );
    }
    // Its first part only (and a byte more, to cut at a character): an
    // output may be gigabytes.
    let head = std::fs::File::open(path).and_then(|file| {
        let size = file.metadata()?.len();
        let mut head = Vec::new();
        file.take(OUTPUT_TEXT as u64 + 1).read_to_end(&mut head)?;
        Ok((head, size))
    });
    let (bytes, size) = match head {
        Ok(head) => head,
        Err(e) => return format!("[cannot read {path}: {e}]"),
    };
    let size = size.max(bytes.len() as u64);
    let mut end = bytes.len().min(OUTPUT_TEXT);
    if bytes[..end].contains(&0) {
        return format!("[binary, {size} bytes: {path}]");
    }
    // Back to the start of a UTF-8 character (continuation bytes are
    // 10xxxxxx).
    while end < bytes.len() && end > 0 && bytes[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    let text = String::from_utf8_lossy(&bytes[..end]);
    if end as u64 == size {
        return text.into_owned();
    }
    format!(
        "{text}\n[... cut: {} more bytes; the whole file is {path}]",
        size - end as u64
    )
}
