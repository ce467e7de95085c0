//! From the workspace to the run's state: each task's node and past, read
//! from its status once at the start of a run (and for each task file that
//! appears during it), and the files readiness asks about. A run that
//! resumes one killed mid-way keeps the failures and blocks it had
//! recorded; a new run tries failed and blocked tasks again.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};

use crate::model::config::{Config, UNNAMED_POOL};
use crate::model::definitions;
use crate::model::discovery::{self, Discovery, Seen};
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::model::problem::Problem;
use crate::model::task::{self, phase_key};
use crate::run::history::{Past, Previous};
use crate::run::readiness::{Files, Node, Readiness};
use crate::state::durations;
use crate::state::outputs;
use crate::state::resets;
use crate::state::status::{self, State, Status};
use crate::sys::parallel;
use crate::ui::format;

/// Task files that appeared during the run, or were read again.
#[derive(Default)]
pub struct Discovered {
    /// The tasks added to the graph.
    pub added: Vec<usize>,
    /// The problems of the files that are not valid tasks.
    pub invalid: Vec<Invalid>,
    /// Files found invalid earlier and read again, as they changed (or
    /// went away): their earlier problems are past.
    pub reread: Vec<Utf8PathBuf>,
    /// The tasks of the graph whose files are gone (removed or renamed).
    pub removed: Vec<usize>,
    /// The tasks of the graph whose files are there again (a dropped
    /// task's once its file is read again, and valid).
    pub back: Vec<usize>,
    /// Those of `back` dropped whose file changed while it was gone: the
    /// run keeps the task as it first read it.
    pub changed: Vec<usize>,
}

/// A problem of a task file found during the run.
pub struct Invalid {
    /// The file, absent when the problem is not one file's.
    pub file: Option<Utf8PathBuf>,
    /// The file's phase, or the first after it where the graph has none
    /// of that name (a phase folder with no valid task yet): its gates
    /// stay closed while the file is invalid (`Readiness::hold_gates`).
    pub phase: Option<usize>,
    /// The problem, as said.
    pub said: String,
}

/// Adds to the graph the task files that appeared since the last look, and
/// those found invalid before that changed since. When tasks join, the
/// files still invalid are read again at once, up to a few times: one may
/// have been left out for a dependency that just joined. The file of a
/// task the run `dropped` (its file went) that is back is read again: it
/// may have changed, or be invalid now.
pub fn discover(
    layout: &Layout,
    config: &Config,
    discovery: &mut Discovery,
    graph: &mut Graph,
    dropped: &HashSet<usize>,
) -> Discovered {
    // A file of a task the graph has is one that went and is back.
    let (mut back, mut new) = (Vec::new(), Vec::new());
    for file in discovery.rescan() {
        match layout.task_id(&file).and_then(|id| graph.get(id)) {
            Some(t) if !dropped.contains(&t) => back.push(t),
            _ => new.push(file),
        }
    }
    let mut reread = discovery.changed_invalid();
    // A name that was not UTF-8, gone (renamed): its problem is past.
    reread.append(&mut discovery.unreadable_gone);
    // A folder read at last: its problem is past, its files new ones.
    let folders_read = std::mem::take(&mut discovery.folders_read_again);
    // Names that cannot be read as tasks (not UTF-8), met by the rescan.
    let unnamed = std::mem::take(&mut discovery.problems);
    // A file may be gone for a moment (an editor that writes it anew).
    let removed: Vec<usize> = std::mem::take(&mut discovery.removed)
        .iter()
        .filter(|file| discovery::gone(file))
        .filter_map(|file| graph.get(layout.task_id(file)?))
        .collect();
    if new.is_empty() && reread.is_empty() && unnamed.is_empty() && folders_read.is_empty() {
        // The common case, after every task's end: nothing to check.
        return Discovered {
            removed,
            back,
            ..Discovered::default()
        };
    }
    let mut batch: Vec<Utf8PathBuf> = new.into_iter().chain(reread.iter().cloned()).collect();
    reread.extend(folders_read);
    let mut added = Vec::new();
    let mut changed = Vec::new();
    // Each file's problems from its latest reading, and its state then.
    let mut problems: Found = unnamed.into_iter().map(|p| (None, p)).collect();
    let folders = discovery.phase_folders(&layout.tasks);
    for _ in 0..4 {
        // Those of the tasks that joined just before too.
        let phases = phases_holding_tasks(graph, &folders, dropped);
        let (joined, again, found) = read_batch(layout, config, graph, dropped, &phases, &batch);
        back.extend(again.iter().map(|&(t, _)| t));
        changed.extend(
            again
                .iter()
                .filter(|(_, changed)| *changed)
                .map(|&(t, _)| t),
        );
        problems.retain(|(of, _)| of.as_ref().is_none_or(|(f, _)| !batch.contains(f)));
        problems.extend(found);
        let joined_some = !joined.is_empty();
        added.extend(joined);
        let invalid_now: Vec<Utf8PathBuf> = problems
            .iter()
            .filter_map(|(of, _)| of.as_ref().map(|(f, _)| f.clone()))
            .collect();
        let earlier = match joined_some {
            true => discovery.take_invalid(),
            false => Vec::new(),
        };
        if !joined_some || (invalid_now.is_empty() && earlier.is_empty()) {
            break;
        }
        reread.extend(earlier.iter().cloned());
        batch = invalid_now.into_iter().chain(earlier).collect();
        batch.sort();
        batch.dedup();
    }
    for (of, _) in &problems {
        if let Some((file, seen)) = of {
            discovery.read_again_when_changed(file, seen.clone());
        }
    }
    let mut invalid: Vec<Invalid> = problems
        .into_iter()
        .map(|(_, problem)| {
            let phase = problem
                .file
                .as_deref()
                .and_then(|file| held_phase(layout, graph, file));
            Invalid {
                file: problem.file.clone(),
                phase,
                said: problem.relative_to(layout.here()).to_string(),
            }
        })
        .collect();
    // A problem of the graph (not of a file read now) may be met on each
    // reading.
    let mut said = std::collections::HashSet::new();
    invalid.retain(|i| said.insert((i.file.clone(), i.said.clone())));
    reread.sort();
    reread.dedup();
    Discovered {
        added,
        invalid,
        reread,
        removed,
        back,
        changed,
    }
}

/// The phase whose gates an invalid `file` (a task file, or a folder that
/// cannot be read) holds: its phase folder's, else the first after it by
/// name (a phase folder with no valid task yet, whose gate would come
/// there). None for a task file right under `tasks/`, which is in no
/// phase (a folder there is one, with a name not UTF-8 or not readable).
pub fn held_phase(layout: &Layout, graph: &Graph, file: &Utf8Path) -> Option<usize> {
    let mut parts = file.strip_prefix(&layout.tasks).ok()?.components();
    let phase = parts.next()?.as_str();
    if parts.next().is_none() && phase.ends_with(".md") {
        return None;
    }
    graph.phase_or_next(phase)
}

/// Problems found on reading task files, each with the file it names and
/// the state that file was read in, when it is one of those read.
type Found = Vec<(Option<(Utf8PathBuf, Seen)>, Problem)>;

/// Reads `batch` and adds to the graph what is valid of it: the tasks
/// added, the tasks of the graph whose files were read valid again (each
/// with whether the file changed since the run first read it), and the
/// problems.
fn read_batch(
    layout: &Layout,
    config: &Config,
    graph: &mut Graph,
    dropped: &HashSet<usize>,
    phases: &[String],
    batch: &[Utf8PathBuf],
) -> (Vec<usize>, Vec<(usize, bool)>, Found) {
    let read: Vec<(Utf8PathBuf, Seen)> = batch.iter().map(|f| (f.clone(), Seen::now(f))).collect();
    let mut tasks = Vec::new();
    let mut again = Vec::new();
    let mut found = Vec::new();
    // With the folders of the tasks taken so far.
    let mut phases = phases.to_vec();
    // The branches of the run's worktree tasks, and of those found with
    // them: made once a new task runs in a worktree.
    let mut branches: Option<definitions::Branches> = None;
    // A file gone while invalid is a problem no more; a link to nothing
    // is there, and says so.
    let there = |file: &Utf8Path| !discovery::gone(file) || file.is_symlink();
    for (file, _) in read.iter().filter(|(f, _)| there(f)) {
        match task::load(&layout.tasks, file).valid() {
            Ok(task) => match layout.task_id(file).and_then(|id| graph.get(id)) {
                Some(t) => again.push((t, differs(&task, &graph.tasks[t]))),
                None => {
                    let mut problems = definition_problems(layout, config, &phases, &task);
                    if problems.is_empty() && task.in_worktree(config) {
                        let known = branches.get_or_insert_with(|| {
                            let live = (graph.tasks.iter().enumerate())
                                .filter(|(t, _)| !dropped.contains(t));
                            definitions::branches(config, live.map(|(_, task)| task))
                        });
                        problems.extend(definitions::branch_clash_with(config, &task, known));
                    }
                    if !problems.is_empty() {
                        found.extend(problems);
                        continue;
                    }
                    if !phases.iter().any(|phase| phase == task.phase()) {
                        phases.push(task.phase().to_owned());
                    }
                    tasks.push(task);
                }
            },
            Err(more) => found.extend(more),
        }
    }
    let (joined, more) = graph.extend(tasks);
    found.extend(more);
    // Only a file read now is read again: a problem may name a file of the
    // graph (a cycle's), which must never be added twice.
    let found = found
        .into_iter()
        .map(|problem| {
            let of = problem
                .file
                .as_ref()
                .and_then(|f| read.iter().find(|(r, _)| r == f).cloned());
            (of, problem)
        })
        .collect();
    (joined, again, found)
}

/// The phase folders among `folders` (those under `tasks/` now) that hold
/// a task of `graph` whose file did not go (`dropped`): phases as a run's
/// start counts them. An empty folder, or one renamed away, is none.
fn phases_holding_tasks(
    graph: &Graph,
    folders: &[String],
    dropped: &HashSet<usize>,
) -> Vec<String> {
    (graph.phases.iter())
        .filter(|phase| folders.contains(&phase.name))
        .filter(|phase| phase.tasks.iter().any(|t| !dropped.contains(t)))
        .map(|phase| phase.name.clone())
        .collect()
}

/// What the checks of the whole definitions (`definitions::load`) find in
/// a task file found during the run, beside its own problems and the
/// graph's: a phase folder sharing another's key, what it asks past the
/// ceilings (its cgroup would be given it). `phases` are the phase
/// folders holding a task.
fn definition_problems(
    layout: &Layout,
    config: &Config,
    phases: &[String],
    task: &task::Task,
) -> Vec<Problem> {
    let mut problems: Vec<Problem> = shared_phase_key(layout, phases, task).into_iter().collect();
    problems.extend(definitions::over_ceilings(
        layout,
        config,
        std::slice::from_ref(task),
    ));
    problems
}

/// The problem of a task found during the run in a phase folder that
/// holds no task yet (new, or an empty one a task depends on) whose key
/// another phase folder has (`04-a` beside `01-a`): the two would share
/// the key's settings, and `--phase`, `block` or `why` given it would take
/// the first, so the definitions refuse them at the start. The run leaves
/// the folder's tasks out until it is renamed; a folder gone (renamed to
/// another number), or holding no task, is not among `phases` (those that
/// hold one) and shares nothing.
fn shared_phase_key(layout: &Layout, phases: &[String], task: &task::Task) -> Option<Problem> {
    let folder = task.phase();
    if phases.iter().any(|phase| phase == folder) {
        return None;
    }
    let key = phase_key(folder);
    let other = phases
        .iter()
        .find(|other| *other != folder && phase_key(other) == key)?;
    let shown = |name: &str| layout.display(&layout.tasks.join(name)).to_string();
    Some(Problem::in_file(
        &task.file,
        None,
        format!(
            "its phase folder {} is phase `{key}`, as {} is (a phase's key is its folder's name without the number): rename it; this run leaves its tasks out until then",
            shown(folder),
            shown(other)
        ),
    ))
}

/// Whether the file `now` was read from is not the one `first` was.
fn differs(now: &task::Task, first: &task::Task) -> bool {
    let hash = |task: &task::Task| task.mark.as_ref().map(|m| m.hash.clone());
    hash(now) != hash(first)
}

/// The workspace's files, as readiness asks about them.
pub struct Disk<'a> {
    pub layout: &'a Layout,
    pub config: &'a Config,
    pub graph: &'a Graph,
}

impl<'a> Disk<'a> {
    pub fn new(layout: &'a Layout, config: &'a Config, graph: &'a Graph) -> Disk<'a> {
        Disk {
            layout,
            config,
            graph,
        }
    }
}

impl Files for Disk<'_> {
    fn input_exists(&self, path: &str) -> bool {
        outputs::input_exists(self.layout, path)
    }

    fn missing_artifacts(&self, p: usize) -> Vec<String> {
        let key = phase_key(&self.graph.phases[p].name);
        outputs::missing_artifacts(self.layout, &self.config.phase(key).requires)
    }
}

/// How statuses are read: which tasks are selected, and which run reads
/// them (a status it wrote itself is of a run being resumed).
pub struct Reader<'a> {
    pub layout: &'a Layout,
    pub selected: &'a dyn Fn(usize) -> bool,
    pub run_id: Option<&'a str>,
    /// Completed tasks that are stale run again, with what is downstream.
    pub rerun_stale: bool,
}

/// What loading found beside the states.
#[derive(Default)]
pub struct Loaded {
    /// Tasks recorded as running, with their status, for recovery.
    pub running: Vec<(usize, Status)>,
    /// Failed tasks, whose dependents may not have been blocked yet (a crash
    /// between a failure and the blocking).
    pub failed: Vec<usize>,
    /// Tasks that joined the gate of a phase already complete, each with it.
    pub late: Vec<(usize, usize)>,
    /// Tasks paused by a rate limit, each with when the pause ends.
    pub paused: Vec<(usize, SystemTime)>,
    /// Completed tasks whose result waits for a person's approval.
    pub awaiting: Vec<usize>,
    /// Completed tasks built from files that changed since, each with the
    /// first such file (run again when the reader says so).
    pub stale: Vec<(usize, String)>,
    /// Completed tasks that run again (`rerun_stale`), and results awaiting
    /// approval downstream of them, each with the state it leaves: their
    /// statuses are to be cleared.
    pub rerun: Vec<(usize, &'static str)>,
    /// Selected stale tasks that do not run again, each with the stale task
    /// not selected that it depends on (built on it as it is).
    pub stale_held: Vec<(usize, usize)>,
    /// Tasks that ended failed, blocked or completed in an earlier run and
    /// wait to run again in this one, each with the state they leave (for
    /// the events: a retry is `failed` then `pending`, whichever run makes
    /// it), and the task a blocked one was blocked by, if the graph has it.
    pub requeued: Vec<(usize, &'static str, Option<usize>)>,
    /// Tasks recorded as running whose process is gone
    /// (`Status::process_gone`), each with whether its work waits in the
    /// merge queue.
    pub gone: Vec<(usize, bool)>,
    /// The other tasks recorded as running (their process not known gone).
    pub alive: Vec<usize>,
    pub warnings: Vec<String>,
}

impl Reader<'_> {
    /// Reads the statuses of the tasks `added` to the graph, sets their
    /// nodes and pasts, and works out what is ready.
    pub fn add_tasks(
        &self,
        graph: &Graph,
        readiness: &mut Readiness,
        history: &mut Vec<Past>,
        added: &[usize],
        files: &dyn Files,
    ) -> Loaded {
        let (layout, selected, run_id) = (self.layout, self.selected, self.run_id);
        history.resize(graph.tasks.len(), Past::default());
        let mut loaded = Loaded::default();
        let mut nodes = Vec::with_capacity(added.len());
        let mut blocked_by = Vec::new();
        // The files first, on every CPU: 100,000 statuses to read on a
        // resume, and what each completed task was built from to `stat`;
        // a share at a time, not to hold every status at once.
        let read = |&t: &usize| {
            let status = status::read(layout, &graph.tasks[t].id);
            let completed = status.as_ref().ok().and_then(Option::as_ref);
            let completed = completed.filter(|s| s.status == State::Completed);
            let stale =
                completed.and_then(|s| status::stale_because(layout, Some(&graph.tasks[t]), s));
            (status, stale)
        };
        let cleared = resets::read(layout);
        let read = added
            .chunks(4096)
            .flat_map(|share| share.iter().copied().zip(parallel::map(share, read)));
        for (t, (status, stale)) in read {
            let id = &graph.tasks[t].id;
            let status = status.unwrap_or_else(|e| {
                loaded.warnings.push(e.to_string());
                None
            });
            let mut node = if selected(t) {
                Node::Waiting
            } else {
                Node::Unselected
            };
            if let Some(status) = status {
                let past = &mut history[t];
                let resumed = status.run_id.is_some() && status.run_id.as_deref() == run_id;
                read_past(layout, id, &status, resumed, past);
                if let Some(until) = status.paused_until() {
                    loaded.paused.push((t, until));
                }
                node = initial(layout, graph, t, &status, resumed, node, past, &mut loaded);
                // Whichever run takes it up again (a resumed one too: a
                // retry's change is told as it starts, and its run may
                // have stopped first) says it leaves what its status says:
                // awaiting approval too (a result whose outputs are gone,
                // or a start approved while a run that did not select it
                // went on).
                let shown = status::shown_state(Some(&status));
                let ended = matches!(
                    shown,
                    "failed" | "blocked" | "completed" | "awaiting_approval"
                );
                if node == Node::Waiting && ended {
                    let by = status.blocked_by.as_deref().and_then(|by| graph.get(by));
                    loaded.requeued.push((t, shown, by));
                }
                if node == Node::Blocked {
                    blocked_by.push((t, status.blocked_by.as_deref().and_then(|b| graph.get(b))));
                }
                if let Some(changed) = stale.filter(|_| node == Node::Completed) {
                    loaded.stale.push((t, changed));
                }
                if node == Node::Running {
                    loaded.running.push((t, status));
                }
            } else if let Some(cleared) = cleared.get(id.as_str()) {
                history[t].previous = Previous::after_reset(layout, id, cleared).map(Box::new);
                history[t].attempt = resets::latest_attempt(layout, id, Some(cleared));
                history[t].tries = cleared.tries_of(run_id).unwrap_or(0);
            }
            nodes.push((t, node));
        }
        if self.rerun_stale && !loaded.stale.is_empty() {
            rerun(graph, &mut loaded, &mut nodes, selected);
            // Run again, a result that awaited approval awaits none now.
            let again: HashSet<usize> = loaded.rerun.iter().map(|&(t, _)| t).collect();
            loaded.awaiting.retain(|t| !again.contains(t));
        }
        loaded.late = readiness.add(graph, &nodes, files);
        for (t, by) in blocked_by {
            readiness.set_blocked_by(t, by);
        }
        loaded.failed = nodes
            .iter()
            .filter(|(_, node)| *node == Node::Failed)
            .map(|&(t, _)| t)
            .collect();
        loaded
    }
}

fn read_past(layout: &Layout, id: &str, status: &Status, resumed: bool, past: &mut Past) {
    past.attempt = status.attempt;
    // One no task can take (a hand edit) says nothing, as in history.json.
    past.seconds = status.duration_seconds.filter(|&s| durations::plausible(s));
    if resumed {
        past.tries = status.tries;
    }
    past.previous = status.failure_to_tell().map(|failure| {
        // Where its log is once the next attempt has started (which keeps
        // it under its number), as a retry in the same run has it.
        let log = layout.attempt_log_file(id, failure.attempt);
        Box::new(Previous::told(failure, log))
    });
    past.report = status.agent.clone().map(Box::new);
    if let Some(until) = status.paused_until() {
        past.limited_since = status
            .rate_limited_since
            .as_deref()
            .and_then(status::parse_timestamp);
        let pool = status.pool.as_deref().unwrap_or(UNNAMED_POOL);
        past.paused = Some(Box::new((until, pool.to_owned())));
    }
}

/// The stale tasks the run selected, and every completed task downstream
/// of them (a result awaiting approval too, built on the stale one), wait
/// to run again (those selected). A stale task not selected stays as it
/// is, and so does what depends on it, a selected stale task too: run
/// again, it would be built on the same stale result. Sets `rerun` and
/// `stale_held` of `loaded`.
fn rerun(
    graph: &Graph,
    loaded: &mut Loaded,
    nodes: &mut [(usize, Node)],
    selected: &dyn Fn(usize) -> bool,
) {
    let stale = &loaded.stale;
    let held = held_by_stale(graph, stale, selected);
    let seeds = (stale.iter().map(|(t, _)| *t)).filter(|&t| selected(t) && !held.contains_key(&t));
    let mut again: HashSet<usize> = seeds.clone().collect();
    for t in seeds {
        again.extend(graph.downstream(t, |d| !held.contains_key(&d)));
    }
    let mut rerun = Vec::new();
    for (t, node) in nodes.iter_mut() {
        let from = match *node {
            Node::Completed => "completed",
            Node::AwaitingApproval => "awaiting_approval",
            _ => continue,
        };
        if again.contains(t) && selected(*t) {
            *node = Node::Waiting;
            rerun.push((*t, from));
        }
    }
    loaded.stale_held = (stale.iter())
        .filter_map(|(t, _)| Some((*t, *held.get(t)?)))
        .filter(|&(t, _)| selected(t))
        .collect();
    loaded.rerun = rerun;
}

/// Every task downstream of a stale task not selected, each with the
/// first such task found upstream of it: one walk over the graph in all.
fn held_by_stale(
    graph: &Graph,
    stale: &[(usize, String)],
    selected: &dyn Fn(usize) -> bool,
) -> HashMap<usize, usize> {
    let mut held = HashMap::new();
    for (u, _) in stale.iter().filter(|(u, _)| !selected(*u)) {
        for d in graph.downstream(*u, |d| !held.contains_key(&d)) {
            held.insert(d, *u);
        }
    }
    held
}

/// The node of a task with a status: failed and blocked tasks run again in
/// a new run; a resumed run keeps its final failures and blocks, and a
/// block by hand (`held`) holds until `reset`.
#[allow(clippy::too_many_arguments)]
fn initial(
    layout: &Layout,
    graph: &Graph,
    t: usize,
    status: &Status,
    resumed: bool,
    fresh: Node,
    past: &mut Past,
    loaded: &mut Loaded,
) -> Node {
    let selected = fresh == Node::Waiting;
    match status.status {
        State::Completed if status.outputs_validated => Node::Completed,
        State::Completed => {
            // Written by another tool: its outputs decide.
            let missing = outputs::problems(layout, &graph.tasks[t], None, false);
            if missing.is_empty() {
                return Node::Completed;
            }
            loaded.warnings.push(format!(
                "{} is recorded completed but {}: it runs again",
                graph.tasks[t].id,
                missing.join("; ")
            ));
            fresh
        }
        // Counted as running until recovered, so nothing starts it twice.
        State::Running => {
            if status.process_gone(layout) {
                loaded.gone.push((t, status.merging));
            } else {
                loaded.alive.push(t);
            }
            Node::Running
        }
        State::Failed if selected && !status.retry().taken_up(graph.tasks[t].retries, resumed) => {
            past.error = status.error.clone();
            Node::Failed
        }
        State::Blocked if selected && resumed => Node::Blocked,
        State::Failed => {
            // Failed still, as its status says, until its retry starts:
            // why, for the summary when the budget holds that retry (a rate
            // limit is no failure a retry is told of).
            past.error = status.error.clone();
            fresh
        }
        State::Blocked => fresh,
        // Its result waits for a person: what depends on it waits too;
        // unless it is gone (nothing left to approve), as a completed
        // task's outputs may be.
        State::AwaitingApproval if status.completed_at.is_some() => {
            let missing = outputs::problems(layout, &graph.tasks[t], None, false);
            if !missing.is_empty() {
                loaded.warnings.push(format!(
                    "{}'s result awaits approval but {}: it runs again",
                    graph.tasks[t].id,
                    missing.join("; ")
                ));
                return fresh;
            }
            loaded.awaiting.push(t);
            Node::AwaitingApproval
        }
        // Waits to start: held again once ready, unless approved by then.
        State::AwaitingApproval => fresh,
    }
}

/// What a run (or a dry run) says of the completed tasks that are `stale`
/// (each with the first file that changed): with `--rerun-stale`, each
/// with its fate (`rerun` are run again); else a note naming a few, with
/// the command that runs them again.
pub fn stale_notes(
    layout: &Layout,
    graph: &Graph,
    stale: &[(usize, String)],
    rerun: &[(usize, &str)],
    held: &[(usize, usize)],
    rerun_stale: bool,
) -> Vec<String> {
    if stale.is_empty() {
        return Vec::new();
    }
    if rerun_stale {
        let rerun: HashSet<&usize> = rerun.iter().map(|(t, _)| t).collect();
        return (stale.iter())
            .map(|(t, changed)| {
                let by = held.iter().find(|(h, _)| h == t).map(|&(_, u)| u);
                let fate = match (rerun.contains(t), by) {
                    (true, _) => "it runs again, with what is downstream".to_owned(),
                    (false, Some(u)) => format!(
                        "it depends on {}, stale and not selected: it does not run again, nor what is downstream of it",
                        graph.tasks[u].id
                    ),
                    (false, None) => "not selected, it does not run again, nor what is downstream of it".to_owned(),
                };
                format!(
                    "stale  {}: {changed} changed since it started: {fate}",
                    graph.tasks[*t].id
                )
            })
            .collect();
    }
    let first: Vec<String> = (stale.iter().take(3))
        .map(|(t, changed)| format!("{}: {changed}", graph.tasks[*t].id))
        .collect();
    vec![format!(
        "note: {} stale, built from files that changed since ({}): `{}` runs {them} again, and what depends on {them}",
        format::counted(stale.len(), "completed task is", "completed tasks are"),
        first.join("; "),
        layout.cmd("orchestrate --rerun-stale"),
        them = format::it_or_them(stale.len()),
    )]
}
