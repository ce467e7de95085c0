//! `new <phase>/<name>`: a task file from `tasks/TEMPLATE.md`.

use anyhow::{anyhow, bail, Context, Result};
use camino::Utf8Path;

use crate::commands::init;
use crate::model::discovery::Discovery;
use crate::model::layout::Layout;
use crate::model::problem::Problem;
use crate::model::task;
use crate::state::lock;

pub fn run(layout: &Layout, id: &str) -> Result<i32> {
    if id.starts_with('/') {
        bail!("`{id}` is an absolute path: give the task's id under tasks/, as <phase>/<name>, e.g. 01-analysis/07-audit-errors");
    }
    if id.ends_with('/') {
        bail!("`{id}` names a phase, and no task in it: write <phase>/<name>, e.g. {id}07-audit-errors");
    }
    // Named by its file's path, as other commands take it.
    let id = id.strip_suffix(".md").unwrap_or(id);
    let id = id.strip_prefix("tasks/").unwrap_or(id);
    if id
        .split('/')
        .any(|c| c.starts_with('.') && c != "." && c != "..")
    {
        bail!("`{id}`: a name that starts with `.` is hidden, never read as a task: drop the dot");
    }
    if id.contains(crate::agent::terminal::acts_on_a_terminal) {
        bail!("{id:?}: a task id cannot hold control characters (a tab, a newline, a direction override): pick another name");
    }
    if id.contains(['"', '\\']) {
        bail!("`{id}`: `\"` and `\\` cannot be in a task id (the template writes it into a quoted title): pick another name");
    }
    let Some((phase, name)) = id.split_once('/') else {
        bail!("`{id}` has no phase: write it as <phase>/<name>, e.g. 01-analysis/07-audit-errors");
    };
    if phase.is_empty()
        || name.is_empty()
        || id.split('/').any(|c| c.is_empty() || c == ".." || c == ".")
    {
        bail!(
            "`{id}` is not a task id: write it as <phase>/<name>, e.g. 01-analysis/07-audit-errors"
        );
    }
    let file_name = format!("{}.md", id.rsplit('/').next().unwrap_or(id));
    if crate::model::discovery::NOT_TASKS.contains(&file_name.as_str()) {
        bail!("a file named {file_name} is documentation, never read as a task: pick another name");
    }
    let template_path = layout.template_file();
    // A regular file only: a FIFO there hung `new`, and `/dev/zero` filled
    // the memory.
    let template = match crate::sys::read_regular_file(&template_path) {
        Ok((bytes, _)) => String::from_utf8(bytes)
            .map_err(|e| anyhow!("{}", Problem::not_utf8(layout.display(&template_path), &e)))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => init::TEMPLATE.replace(
            "from tasks/TEMPLATE.md",
            "from its built-in template (there is no tasks/TEMPLATE.md)",
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {template_path}")),
    };
    let text = template
        .replace("{{id}}", id)
        .replace("{{title}}", &title(name));
    let path = layout.task_file(id);
    refuse_what_validate_would(layout, id, &path, &text)?;
    if !init::create_new(&path, &text)? {
        bail!(
            "{} already exists: pick another name, or edit it",
            layout.display(&path)
        );
    }
    println!("created {}", layout.display(&path));
    // A run going on takes the file up as it is now, its prompt the
    // template's (an agent paid to read it).
    if let Some(pid) = lock::run_going_on(layout) {
        let by = lock::shown_pid(&pid);
        println!(
            "warning: a run is going on{by}: it takes this task up as it is now, at its next look at the folders; to edit it first, move it out of tasks/ now and back once edited"
        );
    }
    println!(
        "edit its frontmatter and prompt, then check the graph with `{}`",
        layout.cmd("validate")
    );
    Ok(crate::exit::SUCCESS)
}

/// Fails, before the file `path` is written with `text`, where `validate`
/// would fail task `id`: the template makes frontmatter that does not
/// parse, or the id is inside another task's (or holds one).
fn refuse_what_validate_would(
    layout: &Layout,
    id: &str,
    path: &Utf8Path,
    text: &str,
) -> Result<()> {
    if let Err(problems) = task::parse(&layout.tasks, path, text).valid() {
        let said: Vec<String> = (problems.iter())
            .map(|p| match p.line {
                Some(line) => format!("line {line}: {}", p.message),
                None => p.message.clone(),
            })
            .collect();
        bail!(
            "{} makes a task that is not valid ({}): fix the template, then run again",
            layout.display(&layout.template_file()),
            said.join("; ")
        );
    }
    if let Some(said) = crate::model::graph::too_long(id) {
        bail!("`{id}`: {said}");
    }
    let discovery = Discovery::scan(&layout.tasks);
    let phase = id.split('/').next().unwrap_or(id);
    let key = task::phase_key(phase);
    let folders = discovery.phase_folders(&layout.tasks);
    let same_key = (folders.iter()).find(|f| *f != phase && task::phase_key(f) == key);
    if let (false, Some(other)) = (folders.iter().any(|f| f == phase), same_key) {
        let name = &id[phase.len() + 1..];
        bail!("tasks/{other} is phase `{key}` already (a phase's key is its folder's name without the number), and two folders of one key are refused: put the task there (`{}`), or name its phase otherwise", layout.task_cmd("new", &format!("{other}/{name}")));
    }
    let files = discovery.files;
    let nested = (files.iter().filter_map(|file| layout.task_id(file)))
        .find(|other| id.starts_with(&format!("{other}/")) || other.starts_with(&format!("{id}/")));
    if let Some(other) = nested {
        bail!("`{id}` and task {other}: one id is inside the other, and so would be their output folders (a glob of the outer task's outputs would take the inner one's files): pick another name");
    }
    Ok(())
}

/// `04-parallel-parsing` -> `Parallel parsing`.
fn title(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    let words = crate::model::task::phase_key(last).replace(['-', '_'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => last.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn titles() {
        assert_eq!(super::title("04-parallel-parsing"), "Parallel parsing");
        assert_eq!(super::title("lexer_fixes"), "Lexer fixes");
        assert_eq!(super::title("07"), "07");
    }
}
