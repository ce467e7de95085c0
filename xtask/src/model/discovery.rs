//! Finding task files under `tasks/`, and noticing new ones cheaply while
//! the graph runs (one `stat` per folder).

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};

use crate::model::problem::Problem;

/// Files in `tasks/` that are documentation, not tasks.
const NOT_TASKS: [&str; 2] = ["README.md", "TEMPLATE.md"];

/// Every task file under `tasks/`, with the folders seen (for noticing new
/// files cheaply later) and the problems met on the way.
#[derive(Debug, Default)]
pub struct Discovery {
    /// What `scan` found, for its caller to take (`std::mem::take`): a
    /// run keeps its `Discovery` for `rescan`, not 100,000 paths twice.
    pub files: Vec<Utf8PathBuf>,
    pub problems: Vec<Problem>,
    known: HashSet<Utf8PathBuf>,
    /// Folder -> its modification time when last read.
    folders: HashMap<Utf8PathBuf, SystemTime>,
}

impl Discovery {
    pub fn scan(tasks_dir: &Utf8Path) -> Discovery {
        let mut discovery = Discovery::default();
        let mut files = Vec::new();
        discovery.walk(tasks_dir, &mut files);
        discovery.files = files;
        discovery
    }

    /// Task files that appeared since the last scan. Costs one `stat` per
    /// folder unless a folder changed, so it is cheap after every task end.
    pub fn rescan(&mut self) -> Vec<Utf8PathBuf> {
        let changed: Vec<Utf8PathBuf> = self
            .folders
            .iter()
            .filter(|(dir, seen)| modified(dir).is_none_or(|now| now != **seen))
            .map(|(dir, _)| dir.clone())
            .collect();
        let mut files = Vec::new();
        for dir in changed {
            self.walk(&dir, &mut files);
        }
        files.sort();
        files
    }

    /// Adds to `files` the task files under `dir` not seen before, in the
    /// order of their paths (each folder's entries by name, a sub-folder's
    /// files in its place).
    fn walk(&mut self, dir: &Utf8Path, files: &mut Vec<Utf8PathBuf>) {
        for (path, is_dir) in self.read_folder(dir) {
            if is_dir {
                self.walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }

    /// The folder's task files not seen before and its sub-folders not
    /// known yet (`true`), by name.
    fn read_folder(&mut self, dir: &Utf8Path) -> Vec<(Utf8PathBuf, bool)> {
        // Take the time before reading, so a file added during the read
        // changes it again and is seen by the next rescan.
        let Some(mut stamp) = modified(dir) else {
            return Vec::new();
        };
        // On file systems with coarse timestamps a file added later in the
        // same clock tick leaves the time unchanged: read a folder that
        // changed moments ago once more on the next rescan.
        let age = SystemTime::now().duration_since(stamp).unwrap_or_default();
        if age < std::time::Duration::from_millis(50) {
            stamp = SystemTime::UNIX_EPOCH;
        }
        self.folders.insert(dir.to_owned(), stamp);
        let entries = match dir.as_std_path().read_dir() {
            Ok(entries) => entries,
            Err(e) => {
                self.problems.push(Problem::in_file(
                    dir,
                    None,
                    format!("cannot read folder: {e}"),
                ));
                return Vec::new();
            }
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let path = match Utf8PathBuf::from_path_buf(entry.path()) {
                Ok(path) => path,
                Err(path) => {
                    self.problems.push(Problem::general(format!(
                        "{}: the path is not valid UTF-8: rename it (task ids are UTF-8 text)",
                        path.display()
                    )));
                    continue;
                }
            };
            let name = path.file_name().unwrap_or_default();
            if name.starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !self.folders.contains_key(&path) {
                    found.push((path, true));
                }
            } else if name.ends_with(".md")
                && !NOT_TASKS.contains(&name)
                && self.known.insert(path.clone())
            {
                found.push((path, false));
            }
        }
        // Within one folder, the paths' order as strings is `Path`'s
        // (component by component), which is slower to compare.
        found.sort_unstable_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
        found
    }
}

fn modified(dir: &Utf8Path) -> Option<SystemTime> {
    dir.metadata().and_then(|m| m.modified()).ok()
}
