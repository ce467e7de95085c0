//! Where things live: the repository root, `tasks/` and the run-time state
//! under `workspace/`. The paths of both are built here (the few built
//! elsewhere are named in ARCHITECTURE.md, with why).

use crate::sys::shell::shell_word;
use camino::{Utf8Path, Utf8PathBuf};

pub const CONFIG_FILE: &str = "orchestrator.yaml";

#[derive(Debug, Clone)]
pub struct Layout {
    pub root: Utf8PathBuf,
    pub tasks: Utf8PathBuf,
    pub workspace: Utf8PathBuf,
    /// Where the user stands: paths in messages are shown from here.
    here: Option<Utf8PathBuf>,
    /// `--root` as the user gave it, for the commands hints suggest.
    root_arg: Option<String>,
}

impl Layout {
    /// The layout of `root`, for a user who gave `--root` as `root_arg`.
    pub fn new(root: Utf8PathBuf, root_arg: Option<String>) -> Layout {
        let here = std::env::current_dir()
            .ok()
            .and_then(|d| Utf8PathBuf::from_path_buf(d).ok())
            .and_then(|d| d.canonicalize_utf8().ok());
        Layout {
            tasks: root.join("tasks"),
            workspace: root.join("workspace"),
            root,
            here,
            root_arg,
        }
    }

    /// A command to suggest, as the user would type it: `cargo xtask
    /// --root DIR reset a/b` when they gave `--root`.
    pub fn cmd(&self, args: &str) -> String {
        match &self.root_arg {
            Some(root) => format!("cargo xtask --root {} {args}", shell_word(root)),
            None => format!("cargo xtask {args}"),
        }
    }

    /// A task id (or phase) as a user may type it: also as its file's path,
    /// from the root, under `tasks/` or whole, or from where they stand (as
    /// the tool prints paths: `fail.md` in `tasks/01-a`), when that file or
    /// folder is there; a folder with the `/` a shell's completion ends it
    /// with (`tasks/01-a/`).
    pub fn typed_id<'a>(&self, typed: &'a str) -> std::borrow::Cow<'a, str> {
        if let Some(id) = self.id_from_here(typed) {
            return id.into();
        }
        let under_tasks = typed
            .strip_prefix(self.tasks.as_str())
            .and_then(|rest| rest.strip_prefix('/'));
        let id = crate::model::task::normalize_id(under_tasks.unwrap_or(typed));
        id.trim_end_matches('/').into()
    }

    /// The id of the task file (or phase folder) at path `typed` from where
    /// the user stands, if there is one under `tasks/`.
    fn id_from_here(&self, typed: &str) -> Option<String> {
        // At the root, a path from here is one from the root: read below.
        let here =
            (self.here.as_deref()).filter(|here| !typed.starts_with('/') && *here != self.root)?;
        // Lexically: `..` takes off the folder before it, as the shell's
        // `cd` does.
        let mut path = Utf8PathBuf::new();
        for part in here.join(typed).components() {
            match part {
                camino::Utf8Component::ParentDir => {
                    path.pop();
                }
                camino::Utf8Component::CurDir => {}
                part => path.push(part),
            }
        }
        let id = path.strip_prefix(&self.tasks).ok()?.as_str();
        let file = self
            .tasks
            .join(format!("{}.md", id.strip_suffix(".md").unwrap_or(id)));
        let there = file.is_file() || path.is_dir();
        there.then(|| crate::model::task::normalize_id(id).to_owned())
    }

    /// `cmd` of `verb` on task (or phase) `id`, quoted for the shell (an id
    /// may hold a space, or `<`, `&`).
    pub fn task_cmd(&self, verb: &str, id: &str) -> String {
        // An id that begins with `-` (a phase folder `-x`) would be read as
        // a flag: after `--`, no argument is.
        let end_of_flags = if id.starts_with('-') { "-- " } else { "" };
        self.cmd(&format!("{verb} {end_of_flags}{}", shell_word(id)))
    }

    /// `workspace/<folder>/<id><suffix>`, made in one allocation: these
    /// paths are made for each task, many times (a view of 100,000 tasks
    /// makes 100,000 status paths), where `join` and `format!` made three.
    fn of_task(&self, folder: &str, id: &str, suffix: &str) -> Utf8PathBuf {
        let parts = [self.workspace.as_str(), "/", folder, "/", id, suffix];
        let mut path = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        parts.iter().for_each(|part| path.push_str(part));
        path.into()
    }

    pub fn config_file(&self) -> Utf8PathBuf {
        self.tasks.join(CONFIG_FILE)
    }
    /// The id of the task in `file` (its path under `tasks/` without
    /// `.md`), if it is under `tasks/`.
    pub fn task_id<'a>(&self, file: &'a Utf8Path) -> Option<&'a str> {
        file.strip_prefix(&self.tasks)
            .ok()?
            .as_str()
            .strip_suffix(".md")
    }
    /// The file a task id names (it need not exist).
    pub fn task_file(&self, id: &str) -> Utf8PathBuf {
        self.tasks.join(format!("{id}.md"))
    }
    /// What `new` copies for a new task.
    pub fn template_file(&self) -> Utf8PathBuf {
        self.tasks.join("TEMPLATE.md")
    }
    pub fn status_file(&self, id: &str) -> Utf8PathBuf {
        self.of_task("status", id, ".json")
    }
    /// Where every status file is (see `status_file`).
    pub fn status_dir(&self) -> Utf8PathBuf {
        self.workspace.join("status")
    }
    pub fn outputs_dir(&self) -> Utf8PathBuf {
        self.workspace.join("outputs")
    }
    pub fn output_dir(&self, id: &str) -> Utf8PathBuf {
        self.of_task("outputs", id, "")
    }
    /// The log of the latest attempt.
    pub fn log_file(&self, id: &str) -> Utf8PathBuf {
        self.of_task("logs", id, ".log")
    }
    /// What the latest attempt wrote to stdout, kept apart from its log
    /// when its result is read from it.
    pub fn stdout_file(&self, id: &str) -> Utf8PathBuf {
        self.of_task("logs", id, ".stdout")
    }
    /// The prompt attempt `attempt` of `id` was given.
    pub fn prompt_file(&self, id: &str, attempt: u32) -> Utf8PathBuf {
        self.of_task("prompts", id, &format!(".attempt-{attempt}.md"))
    }
    /// The log of an earlier attempt, kept when a later one starts.
    pub fn attempt_log_file(&self, id: &str, attempt: u32) -> Utf8PathBuf {
        self.of_task("logs", id, &format!(".attempt-{attempt}.log"))
    }
    /// An earlier attempt's kept stdout (`stdout_file`), beside its log.
    pub fn attempt_stdout_file(&self, id: &str, attempt: u32) -> Utf8PathBuf {
        self.of_task("logs", id, &format!(".attempt-{attempt}.stdout"))
    }
    /// Where the run's supervisor, when its orchestrator died, and the
    /// Slurm poller leave what the next orchestrator needs.
    pub fn pids_dir(&self) -> Utf8PathBuf {
        self.workspace.join("pids")
    }
    /// Where supervisor `pid` (started at `start`) whose orchestrator
    /// died marks that it has written the pid file of every task it had:
    /// a task with none under it then never reached it.
    pub fn handover_mark(&self, pid: u32, start: Option<u64>) -> Utf8PathBuf {
        handover_mark_in(&self.pids_dir(), pid, start)
    }
    pub fn pid_file(&self, id: &str) -> Utf8PathBuf {
        self.of_task("pids", id, ".pid")
    }
    /// The Slurm job of a task's attempt, written as soon as it is submitted.
    pub fn job_file(&self, id: &str) -> Utf8PathBuf {
        self.of_task("pids", id, ".job")
    }
    /// How the task ended, written by the run's supervisor when its
    /// orchestrator died (else the end comes over a pipe), and by the Slurm
    /// poller: so that the result survives the orchestrator.
    pub fn exit_file(&self, id: &str) -> Utf8PathBuf {
        self.of_task("pids", id, ".exit")
    }
    /// The folder of the tasks' worktrees and of the orchestrator's own.
    pub fn worktrees(&self) -> Utf8PathBuf {
        self.workspace.join("worktrees")
    }
    /// Task `id`'s git worktree, when it runs in one.
    pub fn worktree_dir(&self, id: &str) -> Utf8PathBuf {
        self.worktrees().join(id)
    }
    /// Where task `id`'s worktree is made, before it is moved in place: a
    /// worktree whose making was cut short never sits where tasks run.
    /// One folder deep, its id's `/` written `%2F` (and `%` `%25`): the
    /// worktrees made at once never make or remove a folder another's
    /// making needs.
    pub fn new_worktree_dir(&self, id: &str) -> Utf8PathBuf {
        self.new_worktrees().join(Layout::flat_id(id))
    }
    /// Task `id` as one file name (`new_worktree_dir`).
    pub fn flat_id(id: &str) -> String {
        id.replace('%', "%25").replace('/', "%2F")
    }
    /// The folder the worktrees are made in (`new_worktree_dir`).
    pub fn new_worktrees(&self) -> Utf8PathBuf {
        self.worktrees().join(".new")
    }
    /// The task whose worktree is made in `folder` of `new_worktrees`.
    pub fn id_of_new_worktree(folder: &str) -> String {
        folder.replace("%2F", "/").replace("%25", "%")
    }
    /// The orchestrator's own worktree of the integration branch.
    pub fn integration_worktree(&self) -> Utf8PathBuf {
        self.worktrees().join(".integration")
    }
    /// Made when the setup of the worktree of `branch` has succeeded.
    pub fn setup_done_file(&self, branch: &str) -> Utf8PathBuf {
        self.worktrees()
            .join(".setup")
            .join(format!("{branch}.done"))
    }
    /// The current run's id and whether it ended in order.
    pub fn run_file(&self) -> Utf8PathBuf {
        self.workspace.join("run.json")
    }
    /// Made as the current run stops its tasks (`runs::mark_stopping`).
    pub fn stopping_mark(&self) -> Utf8PathBuf {
        self.workspace.join("run.stopping")
    }
    /// Every change of state, one JSON line each (see `state::events`).
    pub fn events_file(&self) -> Utf8PathBuf {
        self.workspace.join("events.jsonl")
    }
    /// What the notifiers printed, and how each ended (see `run::notify`).
    pub fn notify_log_file(&self) -> Utf8PathBuf {
        self.workspace.join("logs").join("notify.log")
    }
    /// A person's decision on a task that waits for one (see
    /// `state::approvals`).
    pub fn approval_file(&self, id: &str) -> Utf8PathBuf {
        self.workspace.join("approvals").join(format!("{id}.json"))
    }
    /// What the latest attempts of reset tasks failed with (see
    /// `state::resets`).
    pub fn resets_file(&self) -> Utf8PathBuf {
        self.workspace.join("resets.json")
    }
    /// Each agent pool's state after rate limits (see `state::pools`).
    pub fn pools_file(&self) -> Utf8PathBuf {
        self.workspace.join("pools.json")
    }
    /// How long each task last took (see `state::durations`).
    pub fn durations_file(&self) -> Utf8PathBuf {
        self.workspace.join("history.json")
    }
    /// What every finished attempt cost (see `state::ledger`).
    pub fn ledger_file(&self) -> Utf8PathBuf {
        self.workspace.join("ledger.jsonl")
    }
    /// The parsed task files (see `model::cache`).
    pub fn cache_file(&self) -> Utf8PathBuf {
        self.workspace.join("cache").join("tasks.jsonl")
    }
    pub fn report_file(&self) -> Utf8PathBuf {
        self.workspace.join("report.html")
    }
    pub fn lock_file(&self) -> Utf8PathBuf {
        self.workspace.join(".lock")
    }
    /// Held by the git commands of the holder of `lock_file` (`state::lock`).
    pub fn gits_lock_file(&self) -> Utf8PathBuf {
        self.workspace.join(".lock-git")
    }
    /// `path` as a message shows it: from where the user stands when it is
    /// below there, else whole.
    pub fn display<'a>(&self, path: &'a Utf8Path) -> &'a Utf8Path {
        self.here
            .as_deref()
            .and_then(|here| path.strip_prefix(here).ok())
            .filter(|rel| !rel.as_str().is_empty())
            .unwrap_or(path)
    }

    /// Where messages show paths from (see `display`).
    pub fn here(&self) -> &Utf8Path {
        self.here.as_deref().unwrap_or(&self.root)
    }
}

/// `Layout::handover_mark`, in the folder `pids_dir` (what a supervisor is
/// told of the layout).
pub fn handover_mark_in(pids_dir: &Utf8Path, pid: u32, start: Option<u64>) -> Utf8PathBuf {
    pids_dir.join(format!("{HANDOVER}{pid}-{}", start.unwrap_or(0)))
}

/// The supervisor (pid and start) a file name of `pids_dir` is the
/// hand-over mark of, if it is one.
pub fn handover_of(name: &str) -> Option<(u32, Option<u64>)> {
    let (pid, start) = name.strip_prefix(HANDOVER)?.split_once('-')?;
    Some((pid.parse().ok()?, start.parse().ok().filter(|&s| s != 0)))
}

const HANDOVER: &str = ".handed-over-";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_s_paths_are_under_their_folders_of_the_workspace() {
        let layout = Layout::new("/repo".into(), None);
        assert_eq!(layout.status_file("p/a"), "/repo/workspace/status/p/a.json");
        assert_eq!(layout.output_dir("p/a"), "/repo/workspace/outputs/p/a");
        assert_eq!(layout.log_file("p/a"), "/repo/workspace/logs/p/a.log");
        assert_eq!(
            layout.prompt_file("p/a", 2),
            "/repo/workspace/prompts/p/a.attempt-2.md"
        );
        assert_eq!(layout.exit_file("p/a"), layout.pids_dir().join("p/a.exit"));
    }
}
