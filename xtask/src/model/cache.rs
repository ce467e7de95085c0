//! Parsed task files kept between commands (`workspace/cache/tasks.jsonl`),
//! so that a command on 100,000 tasks takes one `stat` per unchanged task
//! file instead of reading and parsing it. JSON lines: a header (the
//! program, the tasks folder), then a line per task file, in their order
//! (its entry, or `null` for a file not kept): the lines are parsed on
//! every CPU, each file's in its own place.
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
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};
use serde::de::IgnoredAny;
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
    /// The stored file, until the task files are loaded, and its lines in
    /// it: one per task file, in their order when they were stored (which
    /// is still theirs unless files came or went), holding its entry or,
    /// for a file not kept, `null`.
    stored: Vec<u8>,
    lines: Vec<Range<usize>>,
    /// What to write the file again with; `None` when the file on disk is
    /// already right (a line for each file, in its place, and every file
    /// that may be stored came from it).
    rewrite: Option<Rewrite>,
    /// Files changed after this are not kept (see `RACY`).
    racy_after_ns: u64,
}

/// What the cache file is written again with: the line id of each task
/// file, in order, and the stamps of those that may be stored, by id.
struct Rewrite {
    ids: Vec<String>,
    stamps: HashMap<String, Stamp>,
}

/// A task file as `load_all` found it: its stamp, and the entry stored
/// for it, if any; `placed` when its line was the one of the file's place.
struct Found<'a> {
    file: &'a Utf8PathBuf,
    stamp: Option<Stamp>,
    entry: Option<Box<Entry>>,
    placed: bool,
}

impl Cache {
    /// The cache of `layout`'s task files (empty when there is none, or it
    /// is of another program or folder).
    pub fn open(layout: &Layout) -> Cache {
        let program = program();
        let stored = std::fs::read(layout.cache_file()).unwrap_or_default();
        let lines = program
            .as_deref()
            .and_then(|program| lines(&stored, program, layout.tasks.as_str()))
            .unwrap_or_default();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Cache {
            layout: layout.clone(),
            program,
            stored,
            lines,
            rewrite: None,
            racy_after_ns: now.saturating_sub(RACY).as_nanos() as u64,
        }
    }

    /// Task files `files`, each from the cache when it is unchanged, else
    /// read and parsed (`task::load`); in order, on every CPU. The n-th
    /// file's line is looked for in the n-th place: with no file come or
    /// gone, it is there, and no table of ids is needed.
    pub fn load_all(&mut self, files: &[Utf8PathBuf]) -> Vec<Parsed> {
        let places: Vec<usize> = (0..files.len()).collect();
        let mut found = parallel::map(&places, |&n| {
            let id = self.line_id(&files[n]);
            let entry = self.lines.get(n).and_then(|line| self.entry(line.clone()));
            let entry = entry.filter(|(stored_id, _)| stored_id == id);
            Found {
                file: &files[n],
                stamp: files[n].metadata().ok().map(|m| Stamp::of(&m)),
                placed: entry.is_some(),
                entry: entry.and_then(|(_, entry)| entry),
            }
        });
        let aligned = self.lines.len() == files.len() && found.iter().all(|f| f.placed);
        if !aligned {
            self.find_moved(&mut found);
        }
        for found in &mut found {
            let stamp = found.stamp;
            found.entry = found.entry.take().filter(|e| Some(e.stamp) == stamp);
        }
        let hits = found.iter().filter(|f| f.entry.is_some()).count();
        let tasks_dir = &self.layout.tasks;
        let parsed = parallel::map_mut(&mut found, |found| match found.entry.take() {
            Some(entry) => Parsed {
                task: Some(entry.task_of(found.file)),
                problems: Vec::new(),
            },
            None => task::load(tasks_dir, found.file),
        });
        let keep: Vec<Option<Stamp>> = found
            .iter()
            .zip(&parsed)
            .map(|(found, parsed)| found.stamp.filter(|stamp| self.keepable(stamp, parsed)))
            .collect();
        if keep.iter().flatten().count() != hits || !aligned {
            let ids = parsed.iter().map(|p| p.task.as_ref().map(|t| t.id.clone()));
            let stamps = ids.zip(keep).filter_map(|(id, stamp)| Some((id?, stamp?)));
            self.rewrite = Some(Rewrite {
                ids: files.iter().map(|f| self.line_id(f).to_owned()).collect(),
                stamps: stamps.collect(),
            });
        }
        self.stored = Vec::new();
        self.lines = Vec::new();
        parsed
    }

    /// The id of `file`'s line: its task id (its path for a file outside
    /// `tasks/`, which discovery never gives).
    fn line_id<'a>(&self, file: &'a Utf8Path) -> &'a str {
        self.layout.task_id(file).unwrap_or(file.as_str())
    }

    /// The stored entry on `line` (`None` for a file not kept), with the
    /// id it is stored under.
    fn entry(&self, line: Range<usize>) -> Option<(String, Option<Box<Entry>>)> {
        serde_json::from_slice(&self.stored[line]).ok()
    }

    /// Looks anywhere else for the lines of the files that `load_all` did
    /// not find in their own place (files came or went since they were
    /// stored).
    fn find_moved(&self, found: &mut [Found]) {
        let free: Vec<usize> = (0..self.lines.len())
            .filter(|&n| !found.get(n).is_some_and(|f| f.placed))
            .collect();
        let ids = parallel::map(&free, |&n| {
            serde_json::from_slice::<(String, IgnoredAny)>(&self.stored[self.lines[n].clone()]).ok()
        });
        let mut by_id: HashMap<String, usize> = free
            .into_iter()
            .zip(ids)
            .filter_map(|(n, id)| Some((id?.0, n)))
            .collect();
        for found in found.iter_mut().filter(|f| !f.placed) {
            let line = by_id.remove(self.line_id(found.file));
            if let Some(line) = line {
                found.entry = self
                    .entry(self.lines[line].clone())
                    .and_then(|(_, entry)| entry);
            }
        }
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
        let (Some(program), Some(rewrite)) = (self.program.as_deref(), &self.rewrite) else {
            return None;
        };
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
            // A line for every file, kept or not, so that the next command
            // finds each in its place; the tasks come in the files' order,
            // and a file with no task at all (one outside a phase folder)
            // has its line too.
            let mut tasks = tasks.iter().peekable();
            for id in &rewrite.ids {
                let task = tasks.next_if(|task| task.id == *id);
                let stamp = rewrite.stamps.get(id);
                let entry = task
                    .zip(stamp)
                    .map(|(task, &stamp)| EntryRef { stamp, task });
                out.write_all(b"\n")?;
                serde_json::to_writer(&mut out, &(id, entry))?;
            }
            out.flush()
        });
        // The single JSON document builds before 2026-12 wrote, dead weight
        // now (this line can go once no workspace has one).
        let _ = std::fs::remove_file(self.layout.cache_file().with_extension("json"));
        None
    }
}

/// The entries' lines of a cache file, if it is of this `program` and
/// `tasks_dir`.
fn lines(bytes: &[u8], program: &str, tasks_dir: &str) -> Option<Vec<Range<usize>>> {
    // JSON escapes the line breaks in strings: each line is one value.
    let header_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let header: Header = serde_json::from_slice(&bytes[..header_end]).ok()?;
    if header.program != program || header.tasks_dir != tasks_dir {
        return None;
    }
    let mut lines = Vec::new();
    let mut start = header_end + 1;
    while start < bytes.len() {
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |n| start + n);
        lines.push(start..end);
        start = end + 1;
    }
    Some(lines)
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
