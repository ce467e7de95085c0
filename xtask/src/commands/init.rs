//! `init`: sets a repository up to run tasks: `tasks/`, a
//! `tasks/orchestrator.yaml` with every setting shown commented out, a
//! `tasks/TEMPLATE.md` for `new`, and `workspace/` ignored by git. Never
//! overwrites a file; says what it made and what it left.

use std::io::Write;

use anyhow::{Context, Result};
use camino::Utf8Path;

use crate::model::layout::Layout;
use crate::state::atomic;

/// The config `init` writes: every key, commented out, with its default.
pub const CONFIG: &str = include_str!("init/orchestrator.yaml");
/// The task template `init` writes, and `new` uses where there is none.
pub const TEMPLATE: &str = include_str!("init/TEMPLATE.md");

pub fn run(layout: &Layout) -> Result<i32> {
    if layout.tasks.exists() && !layout.tasks.is_dir() {
        anyhow::bail!(
            "{} is a file, not a folder: the task files go in a folder tasks/; move the file away, then run `{}` again",
            layout.display(&layout.tasks),
            layout.cmd("init")
        );
    }
    // Read before anything is made: a `.gitignore` that cannot be read
    // left `init` half done.
    let gitignore = read_gitignore(layout)?;
    std::fs::create_dir_all(&layout.tasks)
        .with_context(|| format!("cannot create {}", layout.tasks))?;
    for (path, text) in [
        (layout.config_file(), CONFIG),
        (layout.template_file(), TEMPLATE),
    ] {
        let shown = layout.display(&path);
        if create_new(&path, text)? {
            println!("created {shown}");
        } else {
            println!("kept    {shown} (it exists)");
        }
    }
    ignore_workspace(layout, &gitignore)?;
    say_next(layout);
    Ok(crate::exit::SUCCESS)
}

/// What to do next: add a first task, or run those there are (an `init`
/// on a repository with tasks must not suggest a phase it does not have).
fn say_next(layout: &Layout) {
    let found = crate::model::discovery::Discovery::scan(&layout.tasks)
        .files
        .len();
    let orchestrate = layout.cmd("orchestrate");
    if found > 0 {
        let new = layout.cmd("new PHASE/NAME");
        // Files, valid or not: `orchestrate` says what is wrong with one.
        let tasks = crate::ui::format::counted(found, "task file", "task files");
        println!("next: `{orchestrate}` runs the {tasks} in tasks/, `{new}` adds one");
        return;
    }
    // The example task's name, unless something of that name is there
    // that the scan could not count (a folder, or a file in a folder it
    // cannot list): an invalid task file is counted above.
    let example = "01-plan/01-first-task";
    let new = if layout.task_file(example).exists() {
        "new PHASE/NAME".to_owned()
    } else {
        format!("new {example}")
    };
    println!(
        "next: `{}` adds a task, `{orchestrate}` runs them",
        layout.cmd(&new)
    );
}

/// Writes `text` to `path` unless it exists; returns whether it wrote.
pub fn create_new(path: &Utf8Path, text: &str) -> Result<bool> {
    let dir = path.parent().expect("a file has a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
    // Never over a file, even one that appears meanwhile; never half.
    atomic::create_new(path, text.as_bytes())
}

/// The repository's `.gitignore` (empty when there is none; a line that
/// is not UTF-8 read as near as can be), or why `init` cannot add to it.
fn read_gitignore(layout: &Layout) -> Result<String> {
    let path = layout.root.join(".gitignore");
    if path.is_dir() {
        anyhow::bail!(
            "{} is a folder, not a file: git reads what to ignore from a file `.gitignore`; move the folder away, then run `{}` again",
            layout.display(&path),
            layout.cmd("init")
        );
    }
    match std::fs::read(&path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {path}")),
    }
}

/// Adds `/workspace/` to the repository's `.gitignore`, which held `text`,
/// unless a line there names it already.
fn ignore_workspace(layout: &Layout, text: &str) -> Result<()> {
    let path = layout.root.join(".gitignore");
    let shown = layout.display(&path);
    // A line that ignores the folder itself: not `workspaces/`, nor
    // `workspace.json`.
    let ignores = |line: &str| {
        let line = line.trim();
        let line = line.strip_prefix('/').unwrap_or(line);
        matches!(
            line,
            "workspace" | "workspace/" | "workspace/*" | "workspace/**"
        )
    };
    if text.lines().any(ignores) {
        println!("kept    {shown} (it ignores workspace/ already)");
        return Ok(());
    }
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {path}"))?;
    let newline = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    write!(
        file,
        "{newline}# The orchestrator's run-time state (cargo xtask)\n/workspace/\n"
    )
    .with_context(|| format!("cannot write {path}"))?;
    println!("added   /workspace/ to {shown}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::Config;

    /// The commented config, every setting uncommented, is a valid config:
    /// it names no key the parser no longer takes (that it names every
    /// key the parser takes is `firsthour::init_s_config_shows_every_key_the_config_takes`).
    #[test]
    fn the_commented_config_is_valid_when_uncommented() {
        let uncommented: String = CONFIG
            .lines()
            .filter(|l| !l.starts_with("##"))
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let parsed = Config::parse(Utf8Path::new("orchestrator.yaml"), &uncommented);
        assert!(parsed.is_ok(), "{parsed:?}\n{uncommented}");
    }
}
