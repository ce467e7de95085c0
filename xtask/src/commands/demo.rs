//! `demo [DIR]`: coding agents side by side, on a small git repository made
//! for it (in DIR, or a new temporary folder): three stand-in agents edit
//! different files in worktrees of their own, a fourth changes the line the
//! first changed and its merge conflicts, a check starts from the merged
//! work, and `git log --graph` shows the integration branch. Nothing of the
//! repository you stand in is touched.

use std::process::Command;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::commands::init;
use crate::git::repo::Repo;
use crate::model::layout::Layout;
use crate::sys::shell::shell_word;

/// The stand-in agent, committed into the demo repository.
const AGENT: &str = include_str!("demo/agent.sh");

/// The demo's files: the project, then its tasks.
const FILES: [(&str, &str); 12] = [
    ("README.md", "A tiny parser, for the cargo xtask demo.\n"),
    ("src/lexer.rs", "// lexer: splits the input into tokens\nfn lex() {}\n"),
    ("src/parser.rs", "// parser: builds the tree\nfn parse() {}\n"),
    ("docs/guide.md", "Guide: how to use the parser.\n"),
    (".gitignore", "workspace/\n"),
    (
        "tasks/orchestrator.yaml",
        "title: Agents side by side (demo)\nmax_memory_gb: 0.25\nkill_grace: 2s\nworktrees:\n  default: true\n",
    ),
    (
        "tasks/01-build/01-lexer.md",
        "---\ntitle: Faster lexer\ncommand: [sh, agent.sh, src/lexer.rs, \"// lexer: tokens in one pass\", \"1\", commit]\n---\n",
    ),
    (
        "tasks/01-build/02-parser.md",
        "---\ntitle: Better errors\ncommand: [sh, agent.sh, src/parser.rs, \"// parser: errors with line numbers\", \"1\", commit]\n---\n",
    ),
    (
        "tasks/01-build/03-docs.md",
        "---\ntitle: Document the errors\ncommand: [sh, agent.sh, docs/guide.md, \"Guide: errors now name their line.\", \"1\", leave]\n---\n",
    ),
    (
        "tasks/01-build/04-rename.md",
        "---\ntitle: Rename the lexer (conflicts with 01-lexer)\ncommand: [sh, agent.sh, src/lexer.rs, \"// scanner: splits the input into tokens\", \"0\", commit, \"tokens in one pass\"]\n---\n",
    ),
    (
        "tasks/02-check/01-build.md",
        "---\ntitle: Check the merged work\ndependencies: [01-build/01-lexer, 01-build/02-parser, 01-build/03-docs]\ncommand: \"head -n1 src/*.rs docs/*.md && git log --oneline\"\n---\n",
    ),
    (
        "tasks/02-check/02-names.md",
        "---\ntitle: Check the new names (blocked by the conflict)\ndependencies: [01-build/04-rename]\ncommand: \"grep scanner src/lexer.rs\"\n---\n",
    ),
];

pub fn run(dir: Option<&Utf8Path>) -> Result<i32> {
    let dir = match dir {
        // Absolute: git runs inside it, where a relative path means another.
        Some(dir) => Utf8PathBuf::try_from(
            std::path::absolute(dir).with_context(|| format!("cannot resolve {dir}"))?,
        )
        .context("the current folder's path is not UTF-8")?,
        None => fresh_temporary_folder()?,
    };
    if dir.exists() && dir.read_dir_utf8().is_ok_and(|mut d| d.next().is_some()) {
        bail!("{dir} is not empty: give a new folder for the demo");
    }
    make_repository(&dir)?;
    println!("A demo repository in {dir}: six tasks, four of them coding agents in worktrees.\n");
    let exe = std::env::current_exe().context("cannot find the xtask binary")?;
    let status = Command::new(exe)
        .arg("--root")
        .arg(&dir)
        .arg("orchestrate")
        .status()
        .context("cannot run the orchestrator")?;
    let demo = Layout::new(dir.clone(), Some(dir.to_string()));
    let repo = Repo::open(&demo)?;
    println!(
        "\nThe integration branch (`git -C {} log --graph integration`):",
        shell_word(dir.as_str())
    );
    for line in repo.graph("integration")?.lines() {
        println!("  {line}");
    }
    println!(
        "\n01-build/04-rename changed the line 01-build/01-lexer changed: its merge conflicted,\n\
         its branch keeps its commit, and 02-check/02-names, which depends on it, is blocked. Try:\n  \
         {}\n  {}\n  {}\n\
         then run it again, where the retry starts over from the merged work:\n  {}",
        demo.cmd("why 01-build/04-rename"),
        demo.cmd("progress --tasks"),
        demo.cmd("clean --dry-run"),
        demo.cmd("orchestrate"),
    );
    Ok(match status.code() {
        Some(0 | 1) => crate::exit::SUCCESS,
        Some(code) => code,
        None => crate::exit::TASK_FAILED,
    })
}

/// A folder made new for the demo in the temporary folder, only its
/// maker's (0700): never one that was there already, which someone else
/// may have made, and could change the agent the demo runs in.
fn fresh_temporary_folder() -> Result<Utf8PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let tmp = Utf8PathBuf::from_path_buf(std::env::temp_dir())
        .map_err(|p| anyhow::anyhow!("the temporary folder {} is not UTF-8", p.display()))?;
    let pid = std::process::id();
    for n in 0..100 {
        let dir = match n {
            0 => tmp.join(format!("xtask-demo-{pid}")),
            _ => tmp.join(format!("xtask-demo-{pid}-{n}")),
        };
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {dir}")),
        }
    }
    bail!("cannot make a new folder for the demo in {tmp}: give one (`demo DIR`)")
}

/// Writes the demo's files and commits them, as a repository of its own
/// with its own git identity.
fn make_repository(dir: &Utf8Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
    Repo::init(dir)?;
    let mut files: Vec<(&str, &str)> = FILES.to_vec();
    files.push(("agent.sh", AGENT));
    for (name, text) in files {
        init::create_new(&dir.join(name), text)?;
    }
    let demo = Layout::new(dir.to_owned(), None);
    let repo = Repo::open(&demo)?;
    repo.config_set("user.name", "demo")?;
    repo.config_set("user.email", "demo@localhost")?;
    repo.commit_all(dir, "the demo project", &[])
}
