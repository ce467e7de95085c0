//! One attempt of a task: the files it needs before it starts, what the
//! executor is given, the statuses written while it runs and when it ends,
//! (how its end is judged is `verdict`'s).

use std::collections::HashSet;
use std::fs::File;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::executor::launch::{self, environment, Setup};
use crate::executor::setup;
use crate::executor::{Launch, Limits};
use crate::git::worktrees::Prepared;
use crate::model::argv::{argv, script_asks_for_prompt};
use crate::model::config::{Config, ResultFormat};
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::run::history::Previous;
use crate::run::prompt::Rendered;
use crate::run::recovery::Orphan;
use crate::run::verdict::Verdict;
use crate::state::approvals::Approval;
use crate::state::fingerprint::{self, Fingerprint};
use crate::state::records::ExitRecord;
use crate::state::status::{self, AgentSlot, State, Status};
use crate::state::{logs, outputs};
use crate::sys::process::Process;

/// An attempt that runs now.
pub struct Active {
    pub agent: AgentSlot,
    pub attempt: u32,
    pub started: SystemTime,
    /// When it was told running, the time of its start event (on the
    /// machine's clock, where a Slurm job's `started` becomes Slurm's
    /// whole seconds), by this run or, adopted, the run before; none when
    /// that is not known (its events file moved away).
    pub told_running: Option<SystemTime>,
    /// The attempt's start on the file system's clock (see `prepare`).
    pub since_ns: Option<u64>,
    /// The task's pid (its process group), once known; 0 before.
    pub pid: u32,
    /// Its kept stdout, held open from before its start where its result
    /// is read (local: a Slurm job's log is its executor's to hold), put
    /// back as it ends if removed meanwhile (`HeldLog`).
    pub held_stdout: Option<logs::HeldLog>,
    pub pid_start: Option<u64>,
    /// Its Slurm job, when it runs on Slurm; queued until the job runs.
    pub job_id: Option<String>,
    pub queued: bool,
    /// Adopted from an earlier orchestrator, whose supervisor (if still
    /// alive) records the end: watched by pid, not told by our executor.
    pub adopted: Option<Process>,
    /// When to write the pid into the running status (see `run::PID_AFTER`).
    pub pid_due: Option<Instant>,
    /// Its git worktree, when it runs in one.
    pub worktree: Option<Prepared>,
    /// Where its command runs, when not in the root (its worktree's root
    /// folder), once handed over: what a relative path it names is from.
    pub workdir: Option<Utf8PathBuf>,
    /// Its worktree is being made (`worktrees::Maker`): not handed to the
    /// executor yet, nothing of it to stop.
    pub making_worktree: bool,
    /// Its worktree's setup runs first, in this attempt.
    pub setup: bool,
    /// The pool it names, if any.
    pub pool: Option<String>,
    /// Adopted, its supervisor gone: the limits this run enforces instead.
    pub orphan: Option<Box<Orphan>>,
    /// Adopted ended already, with its supervisor: whatever ended it
    /// came before this run (a kill of everything), not while it watched.
    pub ended_when_adopted: bool,
    /// What a task with inputs was built from, taken as it started: an
    /// input changed while it ran makes its result stale. (Without inputs,
    /// or adopted, it is taken as the final status is written.)
    pub built_from: Option<Fingerprint>,
    /// Adopted in the merge queue: its move to `merging` is in the events
    /// already (written by the run that queued it), not to write again.
    pub merging_told: bool,
}

impl Active {
    /// A new attempt, not handed to the executor yet.
    pub fn new(agent: AgentSlot, attempt: u32) -> Active {
        Active {
            agent,
            attempt,
            started: SystemTime::now(),
            told_running: None,
            since_ns: None,
            pid: 0,
            held_stdout: None,
            pid_start: None,
            job_id: None,
            queued: true,
            adopted: None,
            pid_due: None,
            worktree: None,
            workdir: None,
            making_worktree: false,
            setup: false,
            pool: None,
            orphan: None,
            ended_when_adopted: false,
            built_from: None,
            merging_told: false,
        }
    }

    /// Its process (pid 0 until known).
    pub fn process(&self) -> Process {
        Process {
            pid: self.pid,
            start: self.pid_start,
        }
    }

    /// The attempt's status in `state`, with what every status of it
    /// carries (`Status::ended` adds how it ended).
    pub fn status(&self, layout: &Layout, id: &str, state: State, run: &RunInfo) -> Status {
        Status {
            started_at: Some(status::timestamp(self.started)),
            agent_id: Some(self.agent),
            attempt: self.attempt,
            log: Some(layout.log_file(id).to_string()),
            attempt_since_ns: self.since_ns,
            run_id: Some(run.id.clone()),
            tries: run.tries,
            job_id: self.job_id.clone(),
            branch: self.worktree.as_ref().map(|w| w.branch.clone()),
            base_commit: self.worktree.as_ref().map(|w| w.base.clone()),
            pool: self.pool.clone(),
            approved_by: run.approval.as_ref().map(|a| a.by.clone()),
            approved_at: run.approval.as_ref().map(|a| a.at.clone()),
            approval_note: run.approval.as_ref().and_then(|a| a.note.clone()),
            ..Status::new(id, state)
        }
    }

    /// The running status: who looks after the attempt.
    pub fn running_status(&self, layout: &Layout, id: &str, run: &RunInfo) -> Status {
        let (supervisor_pid, supervisor_start) = run.recorder.unzip();
        Status {
            pid: Some(self.pid).filter(|&pid| pid != 0),
            pid_start: self.pid_start,
            supervisor_pid,
            supervisor_start: supervisor_start.flatten(),
            queued: self.job_id.is_some() && self.queued,
            previous: run.told.clone(),
            ..self.status(layout, id, State::Running, run)
        }
    }
}

/// What a status names of the run that writes it.
pub struct RunInfo {
    pub id: String,
    /// Attempts of the task started in this run.
    pub tries: u32,
    /// The local supervisor that records the end: its pid and start time.
    pub recorder: Option<(u32, Option<u64>)>,
    /// The approval the task started with, recorded in its statuses.
    pub approval: Option<Approval>,
    /// The failure the attempt was told of, kept in its running status: a
    /// try that never started (a kill while its worktree was made) begins
    /// again told of it, and one adopted after a kill counts from its
    /// session's earlier totals.
    pub told: Option<status::Failure>,
}

/// Makes the files an attempt needs: the previous attempt's log kept
/// (unless its number was begun `again`, by a try that never started: the
/// log is that try's, and this attempt's), the output folder, the log
/// (emptied), and when its
/// result is read, no stdout file of an earlier attempt. Returns the
/// attempt's start on the file system's clock (the log's change time),
/// against which outputs are judged fresh.
pub fn prepare(
    layout: &Layout,
    task: &Task,
    attempt: u32,
    again: bool,
    made: Ahead,
    reads_result: bool,
    log_dirs: &mut HashSet<Utf8PathBuf>,
) -> Result<u64> {
    if !again {
        logs::keep_previous(layout, &task.id, attempt)?;
    }
    // Made new while its dependency ran: no output of an earlier attempt
    // is in it to settle, and one `stat` says it is still there (a `mkdir`
    // would lock its folder to say so).
    let made_new = made == Ahead::LogAndNewOutputFolder && layout.output_dir(&task.id).is_dir();
    if !made_new {
        make_output_dir(layout, &task.id)?;
        outputs::settle(layout, task);
    }
    let log_path = layout.log_file(&task.id);
    let log = create_log(&log_path, log_dirs)?;
    if reads_result {
        // The previous attempt's stdout must not pass for this one's.
        let stdout = layout.stdout_file(&task.id);
        match std::fs::remove_file(&stdout) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {stdout}"));
            }
            _ => {}
        }
    }
    let meta = log
        .metadata()
        .with_context(|| format!("cannot stat {log_path}"))?;
    Ok(outputs::changed_ns(&meta))
}

/// What `task` is built from as its attempt starts (`Active::built_from`):
/// only a task with inputs, whose files may change while it runs, pays
/// for it here, off no other path.
pub fn built_from(
    layout: &Layout,
    config: &Config,
    graph: &Graph,
    t: usize,
) -> Option<Fingerprint> {
    (!graph.tasks[t].inputs.is_empty()).then(|| fingerprint::of_task(layout, config, graph, t))
}

/// What `make_ahead` made for a task.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ahead {
    Nothing,
    /// Its log (empty), and the file its status will be written in.
    Log,
    /// Those, and its output folder, which did not exist: no output of an
    /// earlier attempt can be in it, so its start does not wait for
    /// outputs to settle.
    LogAndNewOutputFolder,
}

/// While a dependency runs, makes the files of a task that only waits for
/// running tasks: its output folder, and for a first attempt its log
/// (empty; emptied again at its start) and the file its status will be
/// written in (see `atomic::replace`). Fewer files to create between the
/// dependency's end and its start. Best effort: a failure is reported at
/// its start.
pub fn make_ahead(
    layout: &Layout,
    id: &str,
    first: bool,
    log_dirs: &mut HashSet<Utf8PathBuf>,
) -> Ahead {
    let new_output_folder = make_new_output_dir(layout, id);
    if !first {
        return Ahead::Nothing;
    }
    status::prepare_write(layout, id);
    let log = layout.log_file(id);
    // Never over an existing log: it may be an earlier attempt's.
    let made_log = make_log_dir(&log, log_dirs).is_ok()
        && File::options()
            .write(true)
            .create_new(true)
            .open(&log)
            .is_ok();
    match (made_log, new_output_folder) {
        (false, _) => Ahead::Nothing,
        (true, false) => Ahead::Log,
        (true, true) => Ahead::LogAndNewOutputFolder,
    }
}

/// Removes what `make_ahead` made for a task that did not start: its log
/// and output folder, if still empty.
pub fn remove_made_ahead(layout: &Layout, id: &str) {
    let log = layout.log_file(id);
    if log.metadata().is_ok_and(|m| m.len() == 0) {
        let _ = std::fs::remove_file(&log);
    }
    let _ = std::fs::remove_dir(layout.output_dir(id));
}

/// Creates (or empties) a log, its folder first. A folder made before in
/// this run and gone since (`workspace/logs` removed by hand) is made
/// again.
fn create_log(log: &Utf8Path, known: &mut HashSet<Utf8PathBuf>) -> Result<File> {
    make_log_dir(log, known)?;
    let created = match File::create(log) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            known.remove(log.parent().expect("a log file has a folder"));
            make_log_dir(log, known)?;
            File::create(log)
        }
        created => created,
    };
    created.with_context(|| format!("cannot create log {log}"))
}

/// Creates a log's folder, once per run: thousands of tasks share a few.
pub fn make_log_dir(log: &Utf8Path, known: &mut HashSet<Utf8PathBuf>) -> Result<()> {
    let dir = log.parent().expect("a log file has a folder");
    if !known.contains(dir) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create log folder {dir}"))?;
        known.insert(dir.to_owned());
    }
    Ok(())
}

/// Creates the task's output folder (a task may have removed it).
pub fn make_output_dir(layout: &Layout, id: &str) -> Result<()> {
    let dir = layout.output_dir(id);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir}"))
}

/// Makes the task's output folder; returns whether it did not exist.
fn make_new_output_dir(layout: &Layout, id: &str) -> bool {
    let dir = layout.output_dir(id);
    match std::fs::create_dir(&dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            dir.parent()
                .is_some_and(|up| std::fs::create_dir_all(up).is_ok())
                && std::fs::create_dir(&dir).is_ok()
        }
        Err(_) => false,
    }
}

/// What an attempt starts with.
pub struct Start<'a> {
    pub agent: AgentSlot,
    pub attempt: u32,
    /// The latest failed attempt, which a retry is told of.
    pub previous: Option<&'a Previous>,
    /// Its worktree, when it runs in one.
    pub worktree: Option<&'a Prepared>,
    /// Where it runs in that worktree (see `Worktrees::workdir`).
    pub workdir: Option<&'a Utf8Path>,
    /// What the budget leaves, when there is one.
    pub budget_left: Option<f64>,
    /// Its prompt, rendered, when it has a template.
    pub prompt: Option<&'a Rendered>,
}

/// What the executor needs to start an attempt of `task`.
pub fn launch(layout: &Layout, config: &Config, task: &Task, start: &Start) -> Launch {
    let mut env = environment(layout, task, start.agent, start.attempt);
    if let Some(previous) = start.previous {
        env.push((launch::PREVIOUS_ERROR.into(), previous.error.clone()));
        env.push(("TASK_PREVIOUS_LOG".into(), previous.log.to_string()));
        if let Some(session) = &previous.session_id {
            env.push(("TASK_PREVIOUS_SESSION_ID".into(), session.clone()));
        }
    }
    if let Some(left) = start.budget_left {
        env.push(("TASK_BUDGET_LEFT_USD".into(), format!("{left:.2}")));
    }
    if let Some(prompt) = start.prompt {
        env.push(("TASK_PROMPT_FILE".into(), prompt.path.to_string()));
        if script_asks_for_prompt(config, task) {
            env.push(("TASK_PROMPT".into(), prompt.text.clone()));
        }
    }
    let cwd = start.workdir.unwrap_or(&layout.root);
    env.push(("TASK_WORKDIR".into(), cwd.to_string()));
    if let Some(worktree) = start.worktree {
        let settings = &config.worktrees;
        env.extend(
            [
                ("TASK_WORKTREE", worktree.path.to_string()),
                ("TASK_BRANCH", worktree.branch.clone()),
                ("TASK_BASE_COMMIT", worktree.base.clone()),
                ("TASK_INTEGRATION_BRANCH", settings.integration.clone()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        // Checked as the attempt began (`task_port`): it has one.
        if let Ok(port) = task_port(config, start.agent) {
            env.push(("TASK_PORT".to_owned(), port.to_string()));
        }
    }
    Launch {
        task_id: task.id.clone(),
        attempt: start.attempt,
        argv: command(layout, config, task, start),
        env,
        log_file: layout.log_file(&task.id),
        stdout_file: kept_stdout(layout, config, task),
        cwd: cwd.to_owned(),
    }
}

/// The `TASK_PORT` of a worktree task's attempt in agent slot `agent`
/// (`worktrees.port_base` plus the slot's index times `port_stride`), or
/// why it has none: past the last port it would be another slot's, so
/// that parallel dev servers clash. The run's start checks the slots its
/// tasks may fill (`definitions::ports_problem`); tasks added during the
/// run may fill more.
pub fn task_port(config: &Config, agent: AgentSlot) -> Result<u16> {
    let index = agent.0.saturating_sub(1);
    config.worktrees.port(index).with_context(|| {
        let w = &config.worktrees;
        format!(
            "its TASK_PORT, worktrees.port_base ({}) + port_stride ({}) × {index} (its slot, {agent}), would be past the last port, 65535, and so another agent's: more tasks run at once than the run's start counted (tasks added since); lower port_base or port_stride, or run fewer at once (-j)",
            w.port_base, w.port_stride
        )
    })
}

/// The file that keeps `task`'s stdout apart, where its result is read
/// from: only for a task whose result is read.
pub fn kept_stdout(layout: &Layout, config: &Config, task: &Task) -> Option<Utf8PathBuf> {
    (task.result_format(config) != ResultFormat::None).then(|| layout.stdout_file(&task.id))
}

/// What an attempt of `task` runs: its argv with the placeholders filled
/// in, a program named by a relative path taken from the root, and the
/// whole wrapped in its worktree's setup while that has not succeeded.
pub fn command(layout: &Layout, config: &Config, task: &Task, start: &Start) -> Vec<String> {
    let prompt_file = start.prompt.map_or_else(
        || layout.prompt_file(&task.id, start.attempt),
        |p| p.path.clone(),
    );
    let cwd = start.workdir.unwrap_or(&layout.root);
    let mut argv: Vec<String> = argv(layout, config, task)
        .into_iter()
        .map(|arg| fill(arg, cwd, &prompt_file, start.prompt))
        .collect();
    // A program named by a relative path is the root's, wherever it runs.
    if argv[0].contains('/') && !argv[0].starts_with('/') {
        argv[0] = layout.root.join(&argv[0]).to_string();
    }
    let Some(worktree) = start.worktree else {
        return argv;
    };
    match setup_needed(layout, config, &worktree.branch) {
        Some(setup) => {
            let exe = std::env::current_exe()
                .ok()
                .and_then(|p| camino::Utf8PathBuf::from_path_buf(p).ok())
                .unwrap_or_else(|| "xtask".into());
            let done = layout.setup_done_file(&worktree.branch);
            setup::wrap(&exe, setup, config.worktrees.setup_timeout, &done, &argv)
        }
        None => argv,
    }
}

/// `arg` with the placeholders only an attempt knows filled in:
/// `{worktree}` (where it runs), `{prompt_file}` and, last so that nothing
/// in the prompt's text is taken for a placeholder, `{prompt}`, which
/// stays as it is where no prompt is rendered (a dry run, `next`: `prompt`
/// shows it).
fn fill(arg: String, cwd: &Utf8Path, prompt_file: &Utf8Path, prompt: Option<&Rendered>) -> String {
    if !arg.contains('{') {
        return arg;
    }
    let arg = arg
        .replace("{worktree}", cwd.as_str())
        .replace("{prompt_file}", prompt_file.as_str());
    match prompt {
        Some(prompt) => arg.replace("{prompt}", &prompt.text),
        None => arg,
    }
}

/// The limits of an attempt of `task` that started at `started`, in the
/// worktree of `branch` if it has one: with the worktree's setup when the
/// attempt runs it (its mark not made, or made since the attempt started:
/// one taken up after a crash may have run it), so that its timeouts count
/// from the setup's end.
pub fn limits(
    layout: &Layout,
    config: &Config,
    task: &Task,
    branch: Option<&str>,
    started: SystemTime,
) -> Limits {
    with_setup(layout, config, Limits::of(config, task), branch, started)
}

/// `limits` as the task's own are given (`Limits::of`, or one whose file
/// is gone: `Limits::of_gone`), with its worktree's setup, if it runs it.
pub fn with_setup(
    layout: &Layout,
    config: &Config,
    limits: Limits,
    branch: Option<&str>,
    started: SystemTime,
) -> Limits {
    let ran_setup = |done: &Utf8Path| {
        done.metadata()
            .and_then(|m| m.modified())
            .map_or(true, |made| made >= started)
    };
    let setup = branch
        .filter(|_| config.worktrees.setup.is_some())
        .map(|branch| layout.setup_done_file(branch))
        .filter(|done| ran_setup(done))
        .map(|done| Setup {
            done,
            timeout: config.worktrees.setup_timeout,
        });
    Limits { setup, ..limits }
}

/// The setup command a worktree task's attempt runs first: the config's,
/// until it has succeeded once in the worktree of `branch`.
pub fn setup_needed<'a>(layout: &Layout, config: &'a Config, branch: &str) -> Option<&'a str> {
    let command = config.worktrees.setup.as_deref()?;
    (!layout.setup_done_file(branch).exists()).then_some(command)
}

impl Active {
    /// The final status of this attempt, ended at `ended`.
    pub fn ended_status(
        &self,
        layout: &Layout,
        id: &str,
        run: &RunInfo,
        ended: SystemTime,
        record: Option<&ExitRecord>,
        verdict: &Verdict,
    ) -> Status {
        let duration = ended.duration_since(self.started).unwrap_or_default();
        let mut status = self.status(layout, id, State::Failed, run);
        status.completed_at = Some(status::timestamp(ended));
        status.duration_seconds = Some(status::seconds(duration));
        status.ending = Some(verdict.ending);
        status.error = verdict.error.clone();
        status.agent = verdict.agent.clone();
        if verdict.error.is_none() {
            status.fingerprint = self.built_from.clone();
            status.status = State::Completed;
            status.outputs_validated = true;
        }
        if let Some(r) = record {
            status.exit_code = r.exit_code;
            status.signal = r.signal;
            status.limits_enforced = Some(r.limits_enforced);
            status.peak_memory_mb = r
                .peak_memory_bytes
                .map(|b| (b as f64 / 1048576.0 * 10.0).round() / 10.0);
            status.cpu_seconds = r.cpu_seconds.map(status::seconds_f64);
        }
        status
    }
}
