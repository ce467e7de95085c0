//! Reading and writing status files: the only code that does, every write
//! atomic (a reader sees the old status or the new one), one reader that
//! tells a missing status (pending) from one that cannot be used.

use std::fmt;
use std::io::Read;

use anyhow::Result;
use camino::Utf8PathBuf;

use super::{shown_state, Failure, State, Status, VERSION};
use crate::model::layout::Layout;
use crate::state::atomic;
use crate::sys::walk::{walk, Step};

/// Why a status file could not be used: it is then treated as pending.
#[derive(Debug)]
pub enum ReadError {
    Unreadable {
        path: Utf8PathBuf,
        error: std::io::Error,
        /// What is in the way of the file, and what to do
        /// (`atomic::in_the_way`).
        obstacle: Option<String>,
    },
    Corrupt {
        path: Utf8PathBuf,
        error: serde_json::Error,
        /// The command that removes it.
        reset: String,
    },
    OtherVersion {
        path: Utf8PathBuf,
        version: u32,
    },
    /// It is another task's (copied or moved by hand).
    OtherTask {
        path: Utf8PathBuf,
        task_id: String,
        /// The command that removes it.
        reset: String,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Unreadable {
                path,
                error,
                obstacle,
            } => {
                write!(f, "{path}: cannot read: {error}: treated as pending")?;
                match obstacle {
                    Some(obstacle) => write!(f, "; {obstacle}"),
                    None => Ok(()),
                }
            }
            ReadError::Corrupt {
                path,
                error,
                reset,
            } => write!(
                f,
                "{path}: corrupt status file ({error}): treated as pending; `{reset}` removes it"
            ),
            ReadError::OtherTask {
                path,
                task_id,
                reset,
            } => write!(
                f,
                "{path}: holds the status of task {task_id}: treated as pending; `{reset}` removes it"
            ),
            ReadError::OtherVersion { path, version } => write!(
                f,
                "{path}: status file of version {version} (this build reads {VERSION}): treated as pending"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a task's status: `Ok(None)` when there is none (pending), `Err`
/// with the reason when the file is unreadable, corrupt or of another version.
pub fn read(layout: &Layout, id: &str) -> Result<Option<Status>, ReadError> {
    let path = layout.status_file(id);
    let shown = || layout.display(&path).to_owned();
    let mut tries = 0;
    let status: Status = loop {
        let parsed = match crate::sys::open_nonblocking(path.as_std_path())
            .and_then(|mut file| parse(&mut file))
        {
            Ok(parsed) => parsed,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(ReadError::Unreadable {
                    path: shown(),
                    error,
                    obstacle: atomic::in_the_way(&path),
                })
            }
        };
        match parsed {
            Ok(status) if status.task_id == id => break status,
            // A reader slow between its open and its read may see the file
            // it opened rewritten (`atomic::replace`): as its task's next
            // version, or, once a run made it the spare another task's
            // status is written in (`write_over`), as that task's. The
            // file at the path is whole: read again.
            Ok(_) | Err(_) if tries < 2 => tries += 1,
            Ok(status) => {
                return Err(ReadError::OtherTask {
                    path: shown(),
                    task_id: status.task_id,
                    reset: layout.task_cmd("reset", id),
                })
            }
            Err(error) => {
                return Err(ReadError::Corrupt {
                    path: shown(),
                    error,
                    reset: layout.task_cmd("reset", id),
                })
            }
        }
    };
    if status.version != VERSION {
        return Err(ReadError::OtherVersion {
            path: shown(),
            version: status.version,
        });
    }
    Ok(Some(status))
}

/// The ids of every status file there is, whatever its task: a listing
/// of `workspace/status/`, no file read. A status being written (a
/// dot-file, or the `.prev` beside it) is not one.
pub fn ids_on_disk(layout: &Layout) -> Vec<String> {
    let root = layout.status_dir();
    let mut ids = Vec::new();
    walk([root.clone()], |entry| {
        let Some(path) = entry
            .utf8()
            .filter(|_| entry.name().is_some_and(|n| !n.starts_with('.')))
        else {
            return Step::Past;
        };
        if !entry.is_folder {
            let id =
                (path.strip_prefix(&root).ok()).and_then(|rel| rel.as_str().strip_suffix(".json"));
            ids.extend(id.map(str::to_owned));
        }
        Step::Into
    });
    ids
}

/// The status in an open status file. One `read` nearly always gets a
/// whole status (they weigh about a kilobyte), where `std::fs::read` would
/// also `stat` the file and read once more to meet its end: two system
/// calls in five, which count when 100,000 statuses are read. Only when
/// what was read does not parse is the rest of the file read, if any, and
/// parsed again.
fn parse(file: &mut std::fs::File) -> std::io::Result<Result<Status, serde_json::Error>> {
    let mut bytes = vec![0; 8192];
    let n = file.read(&mut bytes)?;
    bytes.truncate(n);
    if let Ok(status) = serde_json::from_slice(&bytes) {
        return Ok(Ok(status));
    }
    // A FIFO (read as empty) or a device put where the status goes: read
    // no further (`/dev/zero` would fill the memory). One `stat`, off the
    // path of a status read whole at once.
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    file.read_to_end(&mut bytes)?;
    Ok(serde_json::from_slice(&bytes))
}

/// Reads a task's status for a view: a file that cannot be used is added to
/// `warnings` and treated as pending, as everywhere.
pub fn read_or_warn(layout: &Layout, id: &str, warnings: &mut Vec<String>) -> Option<Status> {
    read(layout, id).unwrap_or_else(|e| {
        warnings.push(e.to_string());
        None
    })
}

/// The task's state on disk; `None` for pending, and for a status that
/// cannot be read (treated as pending everywhere; the views warn of it).
pub fn state_of(layout: &Layout, id: &str) -> Option<State> {
    read(layout, id).ok().flatten().map(|s| s.status)
}

/// Writes a status; for the holder of the workspace lock, the only writer.
pub fn write(layout: &Layout, status: &Status) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(status)?;
    // A first attempt starting is most often its task's first status.
    let first = status.status == State::Running && status.attempt == 1;
    atomic::replace(&layout.status_file(&status.task_id), &bytes, first).map(|_| ())
}

/// `write`, for a status that replaces one (a final status), in `spare`
/// when there is one: a file that holds a status nobody wants any more,
/// swapped in from where it is, which then holds the version replaced.
/// No file is made, nor moved beside the status first. Returns the file
/// that holds the version replaced, if any: the next such write's spare.
pub fn write_over(
    layout: &Layout,
    status: &Status,
    spare: Option<Utf8PathBuf>,
) -> Result<Option<Utf8PathBuf>> {
    let bytes = serde_json::to_vec_pretty(status)?;
    let path = layout.status_file(&status.task_id);
    match spare.map(|spare| (atomic::replace_via(&path, &bytes, false, &spare), spare)) {
        Some((Ok(kept), spare)) => Ok(kept.then_some(spare)),
        // The spare cannot be used (on another file system, say): the
        // status's own `.prev`, as with none.
        Some((Err(_), _)) | None => atomic::replace(&path, &bytes, false),
    }
}

/// Writes the blocked status of each task of `blocked` (its id and latest
/// attempt), blocked by the failure of `by`: for the run and `block` alike.
///
/// Returns, for each, the state it changes from, for events to say:
/// `pending` for tasks a run took up (`from_disk` false), else what its
/// status said (`shown_state`), or `None` when it was blocked by `by`
/// already (a failure held across runs blocks the same tasks at each
/// run's start, and `block` may find them so): no change.
pub fn write_blocked<'a>(
    layout: &Layout,
    blocked: impl Iterator<Item = (&'a str, u32, Option<Failure>)>,
    by: &str,
    run_id: Option<&str>,
    from_disk: bool,
) -> Result<Vec<Option<&'static str>>> {
    let mut changed = Vec::new();
    for (id, attempt, mut previous) in blocked {
        if !from_disk {
            changed.push(Some("pending"));
        } else {
            let before = read(layout, id).ok().flatten();
            let same = before
                .as_ref()
                .is_some_and(|s| s.status == State::Blocked && s.blocked_by.as_deref() == Some(by));
            changed.push((!same).then(|| shown_state(before.as_ref())));
            // A failure of its own, blocked now: its retry is told of it.
            previous = previous.or_else(|| before?.failure_to_tell());
        }
        let status = Status {
            attempt,
            run_id: run_id.map(str::to_owned),
            previous,
            ..Status::blocked(id, by)
        };
        write(layout, &status)?;
    }
    Ok(changed)
}

/// Makes, ahead, the file the task's next status will be written in, so
/// that writing it creates no file. Best effort: `write` makes it anyway.
pub fn prepare_write(layout: &Layout, id: &str) {
    let path = layout.status_file(id);
    if let Ok(file) = atomic::previous(&path) {
        let make = || {
            std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&file)
        };
        // No status of its phase written yet: the folder too, or its first
        // status would make the file after all, between its dependency's
        // end and its start.
        if make().is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
            let made = file.parent().map(std::fs::create_dir_all);
            if made.is_some_and(|made| made.is_ok()) {
                let _ = make();
            }
        }
    }
}

/// Writes a status without holding the lock (`validate`): with a temporary
/// file of its own, never the one `write` reuses.
pub fn write_unlocked(layout: &Layout, status: &Status) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(status)?;
    atomic::write(&layout.status_file(&status.task_id), &bytes)
}

/// Removes a task's status, making it pending, and the previous version
/// kept beside it.
pub fn remove(layout: &Layout, id: &str) -> Result<()> {
    let path = layout.status_file(id);
    atomic::remove(&path)?;
    atomic::remove(&atomic::previous(&path)?)
}
