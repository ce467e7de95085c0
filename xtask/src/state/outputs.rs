//! Checking a task's declared outputs: each must exist under
//! `workspace/outputs/<task id>/` and have changed during the attempt.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use camino::{Utf8Path, Utf8PathBuf};

use crate::model::layout::Layout;
use crate::model::task::Task;
use crate::sys::walk::{walk, Step};

/// The artifacts of a phase gate's `requires` (paths under
/// `workspace/outputs/`) that do not exist.
pub fn missing_artifacts(layout: &Layout, requires: &[String]) -> Vec<String> {
    requires
        .iter()
        .filter(|path| !input_exists(layout, path))
        .cloned()
        .collect()
}

/// Whether the input `path` (under `workspace/outputs/`) exists: a glob,
/// as an output's, when it matches one file at least.
pub fn input_exists(layout: &Layout, path: &str) -> bool {
    match is_glob(path) {
        true => !glob_in(&layout.outputs_dir(), path).is_empty(),
        false => layout.outputs_dir().join(path).exists(),
    }
}

/// The files input `path` names: those a glob matches now, the files a
/// folder holds (none past `FOLDER_FILES`: `files_in`), else the one path
/// (there or not).
pub fn input_files(layout: &Layout, path: &str) -> Vec<Utf8PathBuf> {
    let full = layout.outputs_dir().join(path);
    match is_glob(path) {
        true => glob_in(&layout.outputs_dir(), path),
        false if full.is_dir() => files_in(&full).unwrap_or_default(),
        false => vec![full],
    }
}

/// Whether input `path` names files by a pattern or a folder (now): what
/// it names then is marked by its list as well (`fingerprint::listings`),
/// and may hold what tasks not upstream of its task made.
pub fn names_many(layout: &Layout, path: &str) -> bool {
    is_glob(path) || layout.outputs_dir().join(path).is_dir()
}

/// The most files, and bytes, a folder input is looked into for: each
/// file is marked as its task starts (read once a run while unchanged,
/// when large: `Mark::of_file`), its mark kept in the status.
pub const FOLDER_FILES: usize = 1000;
pub const FOLDER_BYTES: u64 = 256 << 20;

/// Whether input `path` is a folder that holds more than `FOLDER_FILES`
/// files or `FOLDER_BYTES` bytes: not looked into.
pub fn folder_not_looked_into(layout: &Layout, path: &str) -> bool {
    let full = layout.outputs_dir().join(path);
    !is_glob(path) && full.is_dir() && files_in(&full).is_none()
}

/// The files in the folder `dir` and its subfolders, by path, or none when
/// there are more than `FOLDER_FILES`, or more than `FOLDER_BYTES` in
/// them (a dataset's folder). Symbolic links to folders are not
/// followed (one may lead back up, or out of the outputs); one to a file
/// is taken, as a regular file is, and nothing else (a FIFO's reader would
/// wait for a writer). A subfolder that cannot be read is left out.
fn files_in(dir: &Utf8Path) -> Option<Vec<Utf8PathBuf>> {
    let mut files = Vec::new();
    let mut bytes = 0;
    let mut too_many = false;
    walk([dir], |entry| {
        let Some(path) = entry.utf8() else {
            return Step::Past;
        };
        let size = match entry.file_type() {
            Ok(kind) if kind.is_file() => entry.metadata().map(|m| m.len()),
            // A link to a file counts as that file.
            Ok(kind) if kind.is_symlink() => match path.metadata() {
                Ok(meta) if meta.is_file() => Ok(meta.len()),
                _ => return Step::Past,
            },
            _ => return Step::Into,
        };
        files.push(path.to_owned());
        bytes += size.unwrap_or(0);
        too_many = files.len() > FOLDER_FILES || bytes > FOLDER_BYTES;
        match too_many {
            true => Step::Stop,
            false => Step::Into,
        }
    });
    if too_many {
        return None;
    }
    files.sort_unstable();
    Some(files)
}

/// One declared output that is not right, said so a user can act on it,
/// its path from the root; `absolute`: in full, for an agent in a worktree
/// to whom the path from the root would name its worktree's own
/// `workspace/`.
pub fn problems(
    layout: &Layout,
    task: &Task,
    since_ns: Option<u64>,
    absolute: bool,
) -> Vec<String> {
    let dir = layout.output_dir(&task.id);
    task.outputs
        .iter()
        .filter_map(|output| check_one(layout, &dir, output, since_ns, absolute))
        .collect()
}

fn check_one(
    layout: &Layout,
    dir: &Utf8Path,
    output: &str,
    since_ns: Option<u64>,
    absolute: bool,
) -> Option<String> {
    let path = dir.join(output);
    // Kept in the status and the events, read from anywhere: from the
    // root, not from where this command ran.
    let shown = match absolute {
        true => path.as_path(),
        false => path.strip_prefix(&layout.root).unwrap_or(&path),
    };
    let matches = match is_glob(output) {
        true => glob_in(dir, output),
        false => vec![path.clone()],
    };
    let matches: Vec<(Utf8PathBuf, std::fs::Metadata)> = (matches.into_iter())
        .filter_map(|path| Some((path.symlink_metadata().ok()?, path)))
        .map(|(meta, path)| (path, meta))
        .collect();
    if matches.is_empty() {
        let what = if is_glob(output) {
            "no file matches"
        } else {
            "missing"
        };
        return Some(format!("{what} {shown}{}", not_utf8_note(&path)));
    }
    // A link to nothing is no output: the task that takes it as an input
    // would find it missing.
    if let Some((link, _)) =
        (matches.iter()).find(|(path, meta)| meta.is_symlink() && !path.exists())
    {
        let to = link
            .read_link_utf8()
            .map(|to| to.to_string())
            .unwrap_or_default();
        let link = link.strip_prefix(&layout.root).unwrap_or(link);
        return Some(format!(
            "{link} is a symbolic link to {to}, which does not exist"
        ));
    }
    let since = since_ns?;
    let written = |(path, meta): &(Utf8PathBuf, std::fs::Metadata)| {
        changed_ns(meta) >= since || (meta.is_dir() && changed_inside(path, since))
    };
    if matches.iter().any(written) {
        return None;
    }
    let last = matches
        .iter()
        .map(|(_, meta)| changed_ns(meta))
        .max()
        .unwrap_or(0);
    Some(format!(
        "{shown} was not written by this attempt (last changed {}, before the attempt started {})",
        crate::state::status::timestamp_millis(from_ns(last)),
        crate::state::status::timestamp_millis(from_ns(since)),
    ))
}

/// What output `path` (a name, or a pattern of the last part) cannot
/// match in its folder: the names there that are not UTF-8 (` (b\u{fffd}d.csv
/// is there, its name not UTF-8, which no output names: name it in
/// UTF-8)`), else nothing. The task wrote one of those instead, and `ls`
/// shows it.
fn not_utf8_note(path: &Utf8Path) -> String {
    let Some(folder) = path.parent().filter(|folder| !is_glob(folder.as_str())) else {
        return String::new();
    };
    let found: Vec<std::ffi::OsString> = (std::fs::read_dir(folder).into_iter().flatten())
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| name.to_str().is_none())
        .collect();
    // Said in every view of the failure: what a terminal would act on in
    // the name is written out.
    let shown = |name: &std::ffi::OsString| {
        crate::agent::terminal::escaped(&name.to_string_lossy(), &[]).into_owned()
    };
    match found.as_slice() {
        [] => String::new(),
        [one] => format!(
            " ({} is there, its name not UTF-8, which no output names: name it in UTF-8)",
            shown(one)
        ),
        [first, more @ ..] => format!(
            " ({} and {} more are there, their names not UTF-8, which no output names: name them in UTF-8)",
            shown(first),
            more.len()
        ),
    }
}

/// Whether anything in the folder `dir` (a file or folder in it, at any
/// depth) changed at or after `since` (ns): a folder output written over
/// in place (no entry added or removed) keeps its own change time.
fn changed_inside(dir: &Utf8Path, since: u64) -> bool {
    let mut changed = false;
    each_inside(dir, |ns| {
        changed = ns >= since;
        !changed
    });
    changed
}

/// Calls `go_on` with the change time (ns) of each file and folder in the
/// folder `dir`, at any depth, until it returns false.
fn each_inside(dir: &Utf8Path, mut go_on: impl FnMut(u64) -> bool) {
    // Every name, UTF-8 or not: a file the task wrote counts whatever its
    // name.
    walk([dir], |entry| {
        let Ok(meta) = entry.metadata() else {
            return Step::Past;
        };
        match go_on(changed_ns(&meta)) {
            true => Step::Into,
            false => Step::Stop,
        }
    });
}

/// The files `task`'s outputs name that exist, in the order declared:
/// globs expanded, folders (named or matched) looked into as folder
/// inputs are (`files_in`), and one too large for that named itself.
pub fn existing(layout: &Layout, task: &Task) -> Vec<Utf8PathBuf> {
    let dir = layout.output_dir(&task.id);
    let mut files = Vec::new();
    for output in &task.outputs {
        let named = match is_glob(output) {
            true => glob_in(&dir, output),
            false => vec![dir.join(output)],
        };
        for path in named {
            if path.is_file() {
                files.push(path);
            } else if path.is_dir() {
                match files_in(&path) {
                    Some(inside) => files.extend(inside),
                    None => files.push(path),
                }
            }
        }
    }
    files
}

/// The outputs `task` declares that match nothing now, by path (a glob's
/// pattern, joined to its folder).
pub fn gone(layout: &Layout, task: &Task) -> Vec<String> {
    let dir = layout.output_dir(&task.id);
    (task.outputs.iter())
        .filter(|output| match is_glob(output) {
            true => glob_in(&dir, output).is_empty(),
            false => !dir.join(output).exists(),
        })
        .map(|output| dir.join(output).to_string())
        .collect()
}

pub fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Why `path` is no glob (it would match nothing, ever), said with how to
/// write a `[` of a name.
pub fn bad_glob(path: &str) -> Option<String> {
    glob::Pattern::new(path).err().map(|e| {
        format!("is not a valid glob ({e}; a `[` starts a set of characters, `[[]` is one `[`)")
    })
}

/// The paths under `dir` that `pattern` matches: the folder's own name is
/// taken as it is (a task id or a root may hold `[`), the pattern as a
/// glob (checked when the task is read).
fn glob_in(dir: &Utf8Path, pattern: &str) -> Vec<Utf8PathBuf> {
    let full = format!("{}/{pattern}", glob::Pattern::escape(dir.as_str()));
    let Ok(paths) = glob::glob(&full) else {
        return Vec::new();
    };
    paths
        .flatten()
        .filter_map(|p| Utf8PathBuf::from_path_buf(p).ok())
        .collect()
}

/// The latest change time of anything in the folder `dir`, at any depth
/// (`None`: nothing in it).
fn newest_inside(dir: &Utf8Path) -> Option<u64> {
    let mut newest = None;
    each_inside(dir, |ns| {
        newest = newest.max(Some(ns));
        true
    });
    newest
}

pub use crate::model::mark::changed_ns;

/// A time on the file system's clock, in nanoseconds since the epoch.
pub fn from_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Waits until every existing output of `task` is a little older than now.
/// File timestamps can be as coarse as a clock tick: an output rewritten in
/// the same tick as the previous attempt wrote it would look unchanged. Only
/// outputs changed in the last few milliseconds (a fast retry) cause a wait;
/// on a file system that keeps whole seconds (an output's time without a
/// fraction: ext4 with 128-byte inodes, FAT's two seconds), in the last two
/// seconds: the attempt's start would have the time of an output written
/// in the same second, which would count as written by it. What is in a
/// folder output counts too, as it does for the attempt (`changed_inside`):
/// a file written over in place leaves the folder's own time older.
pub fn settle(layout: &Layout, task: &Task) {
    const TICK: Duration = Duration::from_millis(20);
    const WHOLE_SECONDS_TICK: Duration = Duration::from_secs(2);
    let dir = layout.output_dir(&task.id);
    let newest = task
        .outputs
        .iter()
        .flat_map(|o| match is_glob(o) {
            true => glob_in(&dir, o),
            false => vec![dir.join(o)],
        })
        .filter_map(|path| {
            let meta = path.symlink_metadata().ok()?;
            let inside = meta.is_dir().then(|| newest_inside(&path)).flatten();
            Some(changed_ns(&meta).max(inside.unwrap_or(0)))
        })
        .max();
    let Some(newest) = newest else { return };
    let tick = match newest.is_multiple_of(1_000_000_000) {
        true => WHOLE_SECONDS_TICK,
        false => TICK,
    };
    let age = SystemTime::now()
        .duration_since(from_ns(newest))
        .unwrap_or_default();
    if age < tick {
        std::thread::sleep(tick - age);
    }
}
