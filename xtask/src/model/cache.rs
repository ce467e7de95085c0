//! Parsed task files kept between commands (`workspace/cache/tasks.jsonl`),
//! so that a command on 100,000 tasks takes one `stat` per unchanged task
//! file instead of reading and parsing it. JSON lines: a header (the
//! program, the tasks folder), then a line per task, so that the lines
//! are parsed on every CPU.
//!
//! An entry is used only when the file's size, modification and change
//! times, device and inode are those it had when parsed, the tasks folder
//! is the same, and so is the program (a rebuilt `xtask` may parse
//! differently). Only files without problems are kept, and none whose task
//! has a prompt template (it may come from a file of its own, which can
//! change apart). A file changed within the last two seconds is not kept
//! either: a second change in the same tick of the file system's clock, to
//! the same size, would leave its stamp unchanged (git's "racily clean"
//! entries).
//!
//! The cache is only ever a shortcut: unreadable, stale or from another
//! version, it is ignored and written again.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::model::mark;
use crate::model::task::{self, Parsed, Task};
use crate::state::atomic;
use crate::sys::parallel;

/// How recently a file may have changed and still be kept: the coarsest
/// clock of a file system Linux mounts (FAT's, 2 s).
const RACY: Duration = Duration::from_secs(2);

/// What identifies a file's version without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    /// Modification time: seconds and nanoseconds (any time a user can
    /// set, which in nanoseconds may not fit 64 bits).
    modified: (i64, i64),
    changed_ns: u64,
    device: u64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed_ns: mark::changed_ns(meta),
            device: meta.dev(),
            inode: meta.ino(),
        }
    }
}

/// The cache's first line: what its entries were parsed by, and from.
#[derive(Serialize, Deserialize)]
struct Header {
    program: String,
    tasks_dir: String,
}

#[derive(Deserialize)]
struct Entry {
    stamp: Stamp,
    task: Task,
}

impl Entry {
    /// Its task, read from `file`, with what is not stored (the file,
    /// which the id names) filled in.
    fn task_of(self, file: &Utf8Path) -> Task {
        let mut task = self.task;
        task.file = file.to_owned();
        task
    }
}

#[derive(Serialize)]
struct EntryRef<'a> {
    stamp: Stamp,
    task: &'a Task,
}

/// The cache of one command: what was stored, and the stamps of the files
/// it may store this time.
pub struct Cache {
    layout: Layout,
    /// This build of the program; `None` (unknown) turns the cache off.
    program: Option<String>,
    /// Entries not used yet, by task id (those left at the end are of
    /// files gone); boxed, so that the table holds no task (a task is
    /// large, and the table has room for more than it holds).
    stored: HashMap<String, Box<Entry>>,
    /// Stamps of the files that may be stored, by task id.
    keep: HashMap<String, Stamp>,
    /// How many files came from the cache: when all that may be stored
    /// did, and none is gone, the file on disk is already right.
    hits: usize,
    /// Files changed after this are not kept (see `RACY`).
    racy_after_ns: u64,
}

impl Cache {
    /// The cache of `layout`'s task files (empty when there is none, or it
    /// is of another program or folder).
    pub fn open(layout: &Layout) -> Cache {
        let program = program();
        let stored = std::fs::read(layout.cache_file())
            .ok()
            .and_then(|bytes| entries(&bytes, program.as_deref()?, layout.tasks.as_str()))
            .unwrap_or_default();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Cache {
            layout: layout.clone(),
            program,
            stored,
            keep: HashMap::new(),
            hits: 0,
            racy_after_ns: now.saturating_sub(RACY).as_nanos() as u64,
        }
    }

    /// Task files `files`, each from the cache when it is unchanged, else
    /// read and parsed (`task::load`); in order, on every CPU.
    pub fn load_all(&mut self, files: &[Utf8PathBuf]) -> Vec<Parsed> {
        let stamps = parallel::map(files, |file| file.metadata().ok().map(|m| Stamp::of(&m)));
        let mut lookups: Vec<(&Utf8PathBuf, Option<Box<Entry>>)> = files
            .iter()
            .zip(&stamps)
            .map(|(file, stamp)| (file, self.take(file, *stamp)))
            .collect();
        self.hits = lookups.iter().filter(|(_, hit)| hit.is_some()).count();
        let tasks_dir = &self.layout.tasks;
        let found = parallel::map_mut(&mut lookups, |(file, hit)| match hit.take() {
            Some(entry) => Parsed {
                task: Some(entry.task_of(file)),
                problems: Vec::new(),
            },
            None => task::load(tasks_dir, file),
        });
        for (stamp, parsed) in stamps.into_iter().zip(&found) {
            if let (Some(stamp), Some(task)) = (stamp, &parsed.task) {
                if self.keepable(&stamp, parsed) {
                    self.keep.insert(task.id.clone(), stamp);
                }
            }
        }
        found
    }

    /// The stored entry of `file`, when it was stored with `stamp`.
    fn take(&mut self, file: &Utf8Path, stamp: Option<Stamp>) -> Option<Box<Entry>> {
        let entry = self.stored.remove(self.layout.task_id(file)?)?;
        (Some(entry.stamp) == stamp).then_some(entry)
    }

    /// Whether a file read with `stamp` as `parsed` may be stored.
    fn keepable(&self, stamp: &Stamp, parsed: &Parsed) -> bool {
        parsed.problems.is_empty()
            && parsed.task.as_ref().is_some_and(|t| t.prompt.is_none())
            && stamp.changed_ns < self.racy_after_ns
    }

    /// Stores `tasks` (those whose files may be kept) when that changes
    /// what is stored. Only into an existing workspace: without one, the
    /// cache is given back, for a command that makes one to save once it
    /// has (`Definitions::save_cache`); a command that only reads makes
    /// none. A failure to write is ignored: the next command parses again.
    pub fn save(self, tasks: &[Task]) -> Option<Cache> {
        let changed = self.keep.len() != self.hits || !self.stored.is_empty();
        let program = self.program.as_deref().filter(|_| changed)?;
        if !self.layout.workspace.is_dir() {
            return Some(self);
        }
        let header = Header {
            program: program.to_owned(),
            tasks_dir: self.layout.tasks.to_string(),
        };
        // Written as it is serialised: 100,000 tasks make tens of MB.
        let _ = atomic::write_with(&self.layout.cache_file(), |file| {
            let mut out = std::io::BufWriter::new(file);
            serde_json::to_writer(&mut out, &header)?;
            for task in tasks {
                if let Some(&stamp) = self.keep.get(&task.id) {
                    out.write_all(b"\n")?;
                    serde_json::to_writer(&mut out, &(&task.id, EntryRef { stamp, task }))?;
                }
            }
            out.flush()
        });
        // The single JSON document builds before 2026-12 wrote, dead weight
        // now (this line can go once no workspace has one).
        let _ = std::fs::remove_file(self.layout.cache_file().with_extension("json"));
        None
    }
}

/// The entries of a cache file, by task id, if it is of this `program`
/// and `tasks_dir`. A line that does not parse is left out (its file is
/// parsed again).
fn entries(bytes: &[u8], program: &str, tasks_dir: &str) -> Option<HashMap<String, Box<Entry>>> {
    // JSON escapes the line breaks in strings: each line is one value.
    let mut lines = bytes.split(|&b| b == b'\n');
    let header: Header = serde_json::from_slice(lines.next()?).ok()?;
    if header.program != program || header.tasks_dir != tasks_dir {
        return None;
    }
    let lines: Vec<&[u8]> = lines.collect();
    let parsed = parallel::map(&lines, |line| {
        serde_json::from_slice::<(String, Box<Entry>)>(line).ok()
    });
    Some(parsed.into_iter().flatten().collect())
}

/// What identifies this build of the program: its size and modification
/// time (a rebuild changes both, or at least the time).
fn program() -> Option<String> {
    let meta = std::env::current_exe().and_then(std::fs::metadata).ok()?;
    Some(format!(
        "{} {} {}.{}",
        env!("CARGO_PKG_VERSION"),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}
