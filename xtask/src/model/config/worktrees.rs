//! `worktrees:` in the config: tasks in git worktrees of their own, and the
//! integration branch their work is merged into.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::model::branch;
use crate::model::yaml::{self, set, Fields, Unknown};

#[derive(Debug, Clone)]
pub struct Worktrees {
    /// Every task runs in a worktree unless it (or its phase) says `root`.
    pub default: bool,
    /// The branch merges go into, made from `base` on the first run.
    pub integration: String,
    pub base: String,
    /// A command run once in a new worktree, before its first attempt.
    pub setup: Option<String>,
    pub setup_timeout: Duration,
    /// Files copied, and files or folders linked, from the root into a new
    /// worktree (each only if it exists in the root).
    pub copy: Vec<String>,
    pub link: Vec<String>,
    /// What an agent left uncommitted is committed on its branch; when
    /// false, leftovers fail the task.
    pub commit_leftovers: bool,
    /// A run that ends in order removes the task worktrees and branches
    /// whose work is merged, as `clean` does; else they stay until `clean`.
    pub remove_merged: bool,
    /// `TASK_PORT` = port_base + slot index × port_stride.
    pub port_base: u16,
    pub port_stride: u16,
}

impl Default for Worktrees {
    fn default() -> Worktrees {
        Worktrees {
            default: false,
            integration: "integration".into(),
            base: "HEAD".into(),
            setup: None,
            setup_timeout: Duration::from_secs(600),
            copy: Vec::new(),
            link: Vec::new(),
            commit_leftovers: true,
            remove_merged: false,
            port_base: 4000,
            port_stride: 10,
        }
    }
}

/// Where a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Workdir {
    /// The repository root, as everything else.
    Root,
    /// A git worktree of its own.
    Worktree,
}

/// `workdir: worktree | root`.
pub fn workdir(value: &Value) -> Result<Workdir, String> {
    match yaml::one_of(value, &["worktree", "root"])? {
        "worktree" => Ok(Workdir::Worktree),
        _ => Ok(Workdir::Root),
    }
}

impl Worktrees {
    /// The `TASK_PORT` of the agent slot of index `index` (from 0): none
    /// past the last port, 65535, where it would be another slot's.
    pub fn port(&self, index: usize) -> Option<u16> {
        let index = u16::try_from(index).ok()?;
        self.port_base
            .checked_add(index.checked_mul(self.port_stride)?)
    }

    /// Reads `worktrees:` over the defaults.
    pub fn read(&mut self, f: &mut Fields) {
        let Some(mut w) = f.nested("worktrees") else {
            return;
        };
        set(&mut self.default, w.take("default", yaml::boolean));
        set(&mut self.integration, w.take("integration", integration));
        set(&mut self.base, w.take("base", yaml::non_empty_text));
        self.setup = w.take("setup", yaml::non_empty_text);
        set(
            &mut self.setup_timeout,
            w.take("setup_timeout", yaml::duration),
        );
        set(&mut self.copy, w.take("copy", relative_paths));
        set(&mut self.link, w.take("link", relative_paths));
        set(
            &mut self.commit_leftovers,
            w.take("commit_leftovers", yaml::boolean),
        );
        set(
            &mut self.remove_merged,
            w.take("remove_merged", yaml::boolean),
        );
        set(&mut self.port_base, w.take("port_base", port));
        set(&mut self.port_stride, w.take("port_stride", port));
        let problems = w.finish(Unknown::Refused, |_| None);
        f.absorb(problems);
    }
}

/// The integration branch's name: one git takes, outside the task
/// branches' folder (whose merged branches `clean` removes, and where a
/// task's branch could be the same).
fn integration(value: &Value) -> Result<String, String> {
    let name = yaml::non_empty_text(value)?;
    if let Some(why) = branch::refusal(&name) {
        return Err(format!(
            "`{name}` is not a branch name git takes: {why}; name the branch otherwise"
        ));
    }
    if let Some(prefix) = branch::ambiguous_prefix(&name) {
        return Err(format!(
            "`{name}` starts with `{prefix}`: git would read it as another ref (`refs/heads/main` is the branch `main`); name the branch without it"
        ));
    }
    if branch::among_task_branches(&name) {
        return Err(format!(
            "`{name}` is where the task branches are (`{}/<task id>`, removed by `clean` once merged): name the branch outside `{}/`",
            branch::TASK_BRANCHES,
            branch::TASK_BRANCHES
        ));
    }
    Ok(name)
}

fn port(value: &Value) -> Result<u16, String> {
    let n = yaml::whole(value, 1)?;
    u16::try_from(n).map_err(|_| format!("must be a port number, 65535 or less, found {n}"))
}

/// Paths relative to the root, inside it.
fn relative_paths(value: &Value) -> Result<Vec<String>, String> {
    let paths = yaml::text_list(value)?;
    // Every one that is not, at once: fixing one does not reveal the next.
    let bad: Vec<String> = (paths.iter())
        .filter(|p| p.starts_with('/') || p.split('/').any(|c| c == ".."))
        .map(|p| format!("`{p}`"))
        .collect();
    // The root itself, or git's own folder: each worktree has its own,
    // which nothing may replace.
    let own = (paths.iter()).find(|p| {
        let mut parts = p.split('/').filter(|c| !c.is_empty() && *c != ".");
        parts.next().is_none_or(|first| first == ".git")
    });
    if let Some(own) = own {
        return Err(format!(
            "`{own}` is the repository itself or its `.git`, which each worktree has of its own: name what to bring in (`node_modules`, `.env`)"
        ));
    }
    match bad.as_slice() {
        [] => Ok(paths),
        [one] => Err(format!(
            "{one} must be a path under the repository root, without `..`"
        )),
        many => Err(format!(
            "{} must be paths under the repository root, without `..`",
            many.join(", ")
        )),
    }
}
