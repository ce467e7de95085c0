//! `new <phase>/<name>`: a task file from `tasks/TEMPLATE.md`.

use std::io::Write;

use anyhow::{bail, Context, Result};

use crate::commands::init;
use crate::model::layout::Layout;

pub fn run(layout: &Layout, id: &str) -> Result<i32> {
    if id.starts_with('/') {
        bail!("`{id}` is an absolute path: give the task's id under tasks/, as <phase>/<name>, e.g. 01-analysis/07-audit-errors");
    }
    if id.ends_with('/') {
        bail!("`{id}` names a phase, and no task in it: write <phase>/<name>, e.g. {id}07-audit-errors");
    }
    let id = id.trim_end_matches(".md");
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
    let template = match std::fs::read_to_string(&template_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => init::TEMPLATE.to_owned(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {template_path}")),
    };
    let text = template
        .replace("{{id}}", id)
        .replace("{{title}}", &title(name));
    let path = layout.task_file(id);
    let dir = path.parent().expect("a task file has a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
    // create_new: never overwrite, even if the file appears meanwhile.
    let mut file = match std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} already exists: pick another name, or edit it",
                layout.display(&path)
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {path}")),
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {path}"))?;
    println!("created {}", layout.display(&path));
    println!(
        "edit its frontmatter and prompt, then check the graph with `{}`",
        layout.cmd("validate")
    );
    Ok(crate::exit::SUCCESS)
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
