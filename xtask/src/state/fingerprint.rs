//! Fingerprints of files: what a completed task was built from (its task
//! file and its inputs) and what an approval saw, to tell when a result is
//! stale: each file's `Mark`, by its path from the root.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};

use crate::model::config::Config;
use crate::model::graph::{Dep, Graph};
use crate::model::layout::Layout;
pub use crate::model::mark::Mark;
use crate::model::task::Task;
use crate::state::outputs;

/// Each file's mark, by its path from the root (`tasks/p/a.md`).
pub type Fingerprint = BTreeMap<String, Mark>;

/// The marks of `files` (those that exist).
pub fn of(layout: &Layout, files: &[Utf8PathBuf]) -> Fingerprint {
    files
        .iter()
        .filter_map(|path| Some((relative(layout, path), Mark::of_file(path).ok()?)))
        .collect()
}

/// The marks of `files`, those that do not exist marked absent: one that
/// appears later changes it (an approval given before an input existed
/// did not see it).
pub fn of_all(layout: &Layout, files: &[Utf8PathBuf]) -> Fingerprint {
    let mut fingerprint = of(layout, files);
    // Not a folder (an input may be one), which has no mark.
    for path in files
        .iter()
        .filter(|path| crate::model::discovery::gone(path))
    {
        fingerprint.insert(relative(layout, path), Mark::absent());
    }
    fingerprint
}

/// What task `t` is built from: its task file as it was read, its input
/// files as they are now (taken as a task with inputs starts), and for a
/// task given a prompt the outputs of the tasks it names as dependencies,
/// which the prompt quotes (`approvals::seen` covers those completed).
/// What
/// a glob matches, or a folder holds, in the output folders of tasks not
/// upstream of it (after it, or unrelated) is left out: on a rerun it
/// finds what they wrote in the run before, which they rewrite after it
/// (it was stale again after each `--rerun-stale`).
pub fn of_task(layout: &Layout, config: &Config, graph: &Graph, t: usize) -> Fingerprint {
    let task = &graph.tasks[t];
    let mut upstream = None;
    let mut built_from = |path: &Utf8Path| {
        let under = path.strip_prefix(layout.outputs_dir());
        match under.ok().and_then(|under| graph.producer(under.as_str())) {
            None => true,
            Some(producer) if producer == t => false,
            // Most are one step away, either way: no walk of the graph
            // (a phase's gate has thousands of tasks) at each start.
            Some(producer) if graph.waits_directly_on(t, producer) => true,
            Some(producer) if graph.waits_directly_on(producer, t) => false,
            Some(producer) => upstream
                .get_or_insert_with(|| graph.upstream(t))
                .contains(&producer),
        }
    };
    let mut files: Vec<Utf8PathBuf> = (task.inputs.iter())
        .flat_map(|input| {
            let mut files = matches(layout, input, &task.id);
            if outputs::names_many(layout, input) {
                files.retain(|path| built_from(path));
            }
            files
        })
        .collect();
    if task.prompt_template(config).is_some() {
        files.extend(quoted_outputs(layout, graph, t, |_| true));
    }
    let mut fingerprint = of(layout, &files);
    match &task.mark {
        Some(mark) => {
            fingerprint.insert(relative(layout, &task.file), mark.clone());
        }
        None => fingerprint.extend(of(layout, std::slice::from_ref(&task.file))),
    }
    fingerprint
}

/// The most files of its dependencies' outputs a task's fingerprint
/// marks: each is in its status, and judged by every view.
const QUOTED: usize = 100;

/// The outputs there now of the tasks `t` names as dependencies (those
/// `keep` takes), which its prompt quotes; at most `QUOTED`. A phase's are
/// left out: thousands of files, in the status of each task after it.
pub fn quoted_outputs(
    layout: &Layout,
    graph: &Graph,
    t: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<Utf8PathBuf> {
    (graph.deps[t].iter())
        .filter_map(|dep| match *dep {
            Dep::Task(d) if keep(d) => Some(d),
            _ => None,
        })
        .flat_map(|d| outputs::existing(layout, &graph.tasks[d]))
        .take(QUOTED)
        .collect()
}

/// For each glob or folder input of `task`, the files it names now, as
/// one mark by its path (`Mark::listing`), for an approval: a file that
/// matches later, or no longer, changes it.
pub fn input_listings(layout: &Layout, task: &Task) -> Fingerprint {
    listings(layout, task.inputs.iter().cloned(), &task.id)
}

/// For each glob or folder output of the tasks `t` names as dependencies
/// (those `keep` takes), what it names now, as `input_listings` marks an
/// input: a file a dependency's glob matches later, which `t`'s prompt
/// would quote, changes it.
pub fn output_listings(
    layout: &Layout,
    graph: &Graph,
    t: usize,
    keep: impl Fn(usize) -> bool,
) -> Fingerprint {
    let outputs = (graph.deps[t].iter())
        .filter_map(|dep| match *dep {
            Dep::Task(d) if keep(d) => Some(&graph.tasks[d]),
            _ => None,
        })
        .flat_map(|dep| (dep.outputs.iter()).map(|output| format!("{}/{output}", dep.id)));
    listings(layout, outputs, &graph.tasks[t].id)
}

/// The listing marks of those of `paths` (under `workspace/outputs/`)
/// that name files by a pattern or a folder, but for task `own`'s outputs.
fn listings(layout: &Layout, paths: impl Iterator<Item = String>, own: &str) -> Fingerprint {
    paths
        .filter(|path| outputs::names_many(layout, path))
        .map(|path| {
            let full = layout.outputs_dir().join(&path);
            (relative(layout, &full), listing(layout, &path, own))
        })
        .collect()
}

/// The mark of the list of what the glob or folder input `input` names
/// now, but for task `own`'s outputs.
fn listing(layout: &Layout, input: &str, own: &str) -> Mark {
    let mut names: Vec<String> = matches(layout, input, own)
        .iter()
        .map(|path| relative(layout, path))
        .collect();
    names.sort_unstable();
    Mark::listing(&names)
}

/// What input `input` names now (see `outputs::input_files`), but for
/// task `own`'s outputs: a glob that matches them is not built from them.
fn matches(layout: &Layout, input: &str, own: &str) -> Vec<Utf8PathBuf> {
    let own = layout.outputs_dir().join(own);
    let mut files = outputs::input_files(layout, input);
    files.retain(|path| !path.starts_with(&own));
    files
}

/// `task`'s input files (under `workspace/outputs/`): what a glob input
/// matches now and the files a folder input holds (up to
/// `outputs::FOLDER_FILES`), but for its own outputs.
pub fn inputs(layout: &Layout, task: &Task) -> Vec<Utf8PathBuf> {
    (task.inputs.iter())
        .flat_map(|input| matches(layout, input, &task.id))
        .collect()
}

/// The first file of `fingerprint` whose content is not what it was (or
/// that is gone), by its path from the root; else the first glob input
/// whose matches are not what they were (`<pattern> (what it matches)`),
/// or folder input whose files are not (`<folder> (what it holds)`),
/// leaving out task `own`'s outputs. The file of `task`, when given, is
/// judged by the mark it had when this command read it: the version the
/// command works with, and one `stat` fewer per task.
pub fn changed(
    layout: &Layout,
    fingerprint: &Fingerprint,
    task: Option<&Task>,
    own: &str,
) -> Option<String> {
    Unjudged::of(layout, fingerprint, own).changed(layout, task, own)
}

/// `changed` in two steps, for a view that reads statuses while the task
/// files load: every file but task `own`'s file is judged now (`of`), that
/// one once the task file is read (`changed`), without a second `stat` of
/// it.
pub struct Unjudged {
    /// The first other file that changed, by its path, if one did.
    file: Option<String>,
    /// The glob or folder input whose list of files changed, if no file
    /// did.
    listing: Option<String>,
    /// The mark the task file had, if the fingerprint has it.
    task_file: Option<Mark>,
}

impl Unjudged {
    pub fn of(layout: &Layout, fingerprint: &Fingerprint, own: &str) -> Unjudged {
        let own_file = relative(layout, &layout.task_file(own));
        let file = (fingerprint.iter())
            .filter(|(path, was)| !was.is_listing() && **path != own_file)
            .find(|(path, was)| differs(&layout.root.join(path), was))
            .map(|(path, _)| path.clone());
        // Matches are listed only when no file changed.
        let listing = (fingerprint.iter())
            .filter(|(_, was)| was.is_listing() && file.is_none())
            .find(|(path, was)| {
                let full = layout.root.join(path);
                let input = full.strip_prefix(layout.outputs_dir());
                input.is_ok_and(|input| listing(layout, input.as_str(), own).hash != was.hash)
            })
            .map(|(path, _)| match outputs::is_glob(path) {
                true => format!("{path} (what it matches)"),
                false => format!("{path} (what it holds)"),
            });
        let task_file = fingerprint.get(&own_file).cloned();
        Unjudged {
            file,
            listing,
            task_file,
        }
    }

    /// What changed (see `changed`), task `own`'s file judged as `task`
    /// was read, or by its `stat` without it.
    pub fn changed(self, layout: &Layout, task: Option<&Task>, own: &str) -> Option<String> {
        let own_file = || relative(layout, &layout.task_file(own));
        let task_file = self
            .task_file
            .filter(|was| match task.and_then(|t| t.mark.as_ref()) {
                Some(read) => read.hash != was.hash,
                None => differs(&layout.root.join(own_file()), was),
            });
        // Of two changed files, the first by path, as `changed` looks.
        let task_file = task_file.map(|_| own_file());
        match (task_file, self.file) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b).or(self.listing),
        }
    }
}

/// Whether the file at `full` is not the one marked `was` (or, marked
/// absent, is there now).
fn differs(full: &Utf8Path, was: &Mark) -> bool {
    if was.is_absent() {
        return full.exists();
    }
    match full.metadata() {
        // Same size and change time: the same content (see `unchanged_by`).
        Ok(meta) if was.unchanged_by(&meta) => false,
        Ok(_) => Mark::of_file(full).map_or(true, |now| now.hash != was.hash),
        Err(_) => true,
    }
}

fn relative(layout: &Layout, path: &Utf8Path) -> String {
    path.strip_prefix(&layout.root).unwrap_or(path).to_string()
}
