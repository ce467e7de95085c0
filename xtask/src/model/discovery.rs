//! Finding task files under `tasks/`, and noticing new ones cheaply while
//! the graph runs (one `stat` per folder).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};

use crate::model::problem::Problem;

/// Files in `tasks/` that are documentation, not tasks.
pub const NOT_TASKS: [&str; 2] = ["README.md", "TEMPLATE.md"];

/// Every task file under `tasks/`, with the folders seen (for noticing new
/// files cheaply later) and the problems met on the way.
#[derive(Debug, Default)]
pub struct Discovery {
    /// What `scan` found, for its caller to take (`std::mem::take`): a
    /// run keeps its `Discovery` for `rescan`, not 100,000 paths twice.
    pub files: Vec<Utf8PathBuf>,
    pub problems: Vec<Problem>,
    folders: HashMap<Utf8PathBuf, Folder>,
    /// Task files found invalid during a run, each with its size and
    /// modification time then: read again once either changes. A task
    /// file is often written in more than one go (created empty, then
    /// filled), and a scan may come between.
    invalid: Vec<(Utf8PathBuf, Seen)>,
    /// Task files seen before that a folder read again no longer holds
    /// (removed or renamed during a run), for the run to take.
    pub removed: Vec<Utf8PathBuf>,
    /// Names met that are not UTF-8, said once each.
    unreadable: Vec<std::path::PathBuf>,
    /// Those gone since (as their problems name them), for the run to
    /// take: their problems are past.
    pub unreadable_gone: Vec<Utf8PathBuf>,
    /// Folders that could not be read (their permissions): tried again at
    /// each rescan, their problem said once.
    unreadable_folders: Vec<Utf8PathBuf>,
    /// Those read since, or gone, for the run to take: their problems are
    /// past (their task files are found as new ones).
    pub folders_read_again: Vec<Utf8PathBuf>,
    /// Links to a folder they are in (a loop), not followed: said once.
    loops: Vec<Utf8PathBuf>,
    /// The folder scanned (`tasks/`).
    root: Utf8PathBuf,
}

/// A file as last seen.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Gone,
    /// It cannot be looked at (its folder's permissions): as it was, as
    /// far as the run knows.
    Hidden,
    /// Changed moments ago: it may change again within the same tick of
    /// a coarse clock, or have been written after it was read.
    Young,
    /// Its size and modification time.
    At(u64, SystemTime),
}

impl Seen {
    /// `file` now: taken before it is read, so that a write after the
    /// read changes it.
    pub fn now(file: &Utf8Path) -> Seen {
        // A link to nothing is seen as the link itself: there until it is
        // removed, or leads to a file.
        let meta = match file.metadata().or_else(|_| file.symlink_metadata()) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Seen::Gone,
            Err(_) => return Seen::Hidden,
        };
        let Ok(modified) = meta.modified() else {
            return Seen::Hidden;
        };
        let len = meta.len();
        match just_now(modified) {
            true => Seen::Young,
            false => Seen::At(len, modified),
        }
    }
}

/// A folder as last read.
#[derive(Debug)]
struct Folder {
    /// Its modification time then.
    modified: SystemTime,
    /// The names of the task files seen in it, sorted: a folder's own list,
    /// searched by halves, costs a tenth of a set of every path (hashed)
    /// to build for 100,000 files.
    seen: Vec<Box<str>>,
}

impl Discovery {
    /// The phase folders found (the folders right under `tasks_dir`), with
    /// task files or not.
    pub fn phase_folders(&self, tasks_dir: &Utf8Path) -> Vec<String> {
        self.folders
            .keys()
            .filter(|dir| dir.parent() == Some(tasks_dir))
            .filter_map(|dir| dir.file_name().map(str::to_owned))
            .collect()
    }

    pub fn scan(tasks_dir: &Utf8Path) -> Discovery {
        let mut discovery = Discovery {
            root: tasks_dir.to_owned(),
            ..Discovery::default()
        };
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
            .filter(|(dir, folder)| modified(dir).ok() != Some(folder.modified))
            .map(|(dir, _)| dir.clone())
            .collect();
        let mut files = Vec::new();
        for dir in changed {
            self.walk(&dir, &mut files);
        }
        files.sort();
        files
    }

    /// Reads `file` again when it changes from how it was `seen` when it
    /// was read (see `changed_invalid`).
    pub fn read_again_when_changed(&mut self, file: &Utf8Path, seen: Seen) {
        if self.invalid.iter().all(|(known, _)| known != file) {
            self.invalid.push((file.to_owned(), seen));
        }
    }

    /// The invalid files (`read_again_when_changed`) that changed or went
    /// away since they were read, forgotten until read again: one `stat`
    /// per invalid file. One that cannot be looked at now (its folder made
    /// unreadable) is not taken for gone.
    pub fn changed_invalid(&mut self) -> Vec<Utf8PathBuf> {
        let changed = |file: &Utf8Path, then: &Seen| match Seen::now(file) {
            Seen::Hidden => false,
            now => *then == Seen::Young || now != *then,
        };
        let (changed, same) = std::mem::take(&mut self.invalid)
            .into_iter()
            .partition(|(file, then)| changed(file, then));
        self.invalid = same;
        changed.into_iter().map(|(file, _)| file).collect()
    }

    /// Every invalid file, forgotten until read again: a task that joined
    /// may be what one of them was left out for.
    pub fn take_invalid(&mut self) -> Vec<Utf8PathBuf> {
        std::mem::take(&mut self.invalid)
            .into_iter()
            .map(|(file, _)| file)
            .collect()
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
        let mut stamp = match modified(dir) {
            Ok(stamp) => stamp,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.forget_folder(dir);
                // A link whose folder went (a shared phase's, moved away a
                // moment) is still there, and its own folder does not
                // change when the folder it leads to comes back; `tasks/`
                // itself (a checkout of a branch without it, and back) has
                // no folder watched above it: each is looked at again at
                // each rescan (one `stat`) meanwhile.
                if *dir == self.root || dir.symlink_metadata().is_ok_and(|meta| meta.is_symlink()) {
                    self.folders.insert(
                        dir.to_owned(),
                        Folder {
                            modified: SystemTime::UNIX_EPOCH,
                            seen: Vec::new(),
                        },
                    );
                }
                return Vec::new();
            }
            // It cannot be looked at (a folder above made unreadable): it
            // is there still, and looked at again at each rescan.
            Err(_) => {
                if let Some(folder) = self.folders.get_mut(dir) {
                    folder.modified = SystemTime::UNIX_EPOCH;
                }
                return Vec::new();
            }
        };
        // On file systems with coarse timestamps a file added later in the
        // same clock tick leaves the time unchanged: read a folder that
        // changed moments ago once more on the next rescan.
        if just_now(stamp) {
            stamp = SystemTime::UNIX_EPOCH;
        }
        let folder = self.folders.entry(dir.to_owned()).or_insert(Folder {
            modified: stamp,
            seen: Vec::new(),
        });
        folder.modified = stamp;
        let entries = match dir.as_std_path().read_dir() {
            Ok(entries) => entries,
            Err(e) => {
                self.cannot_read(dir, e);
                return Vec::new();
            }
        };
        self.readable_again(dir);
        let mut names = Vec::new();
        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        for entry in entries.flatten() {
            let name = match entry.file_name().into_string() {
                Ok(name) => name,
                Err(name) => {
                    // Only a name that would be a task's (or hold tasks):
                    // a note or an editor's swap file is none of ours.
                    let bytes = name.as_bytes();
                    let folder = entry.file_type().is_ok_and(|kind| kind.is_dir());
                    let ours = !bytes.starts_with(b".") && (folder || bytes.ends_with(b".md"));
                    if ours {
                        unreadable.push(dir.as_std_path().join(&name));
                    }
                    continue;
                }
            };
            if name.starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = dir.join(&name);
            if kind.is_dir() || (kind.is_symlink() && self.followed_link(dir, &path)) {
                if !self.folders.contains_key(&path) {
                    found.push((path, true));
                }
            } else if name.ends_with(".md") && !NOT_TASKS.contains(&name.as_str()) {
                names.push(name.into_boxed_str());
            }
        }
        self.note_unreadable(dir, unreadable);
        let seen = &mut self.folders.get_mut(dir).expect("recorded above").seen;
        // Sorted once here, the sorts below find their input in order.
        names.sort_unstable();
        // Gone names are forgotten: one made again is found again.
        let (kept, gone): (Vec<Box<str>>, Vec<Box<str>>) = std::mem::take(seen)
            .into_iter()
            .partition(|name| names.binary_search(name).is_ok());
        *seen = kept;
        self.removed
            .extend(gone.iter().map(|name| dir.join(&**name)));
        names.retain(|name| seen.binary_search(name).is_err());
        found.extend(names.iter().map(|name| (dir.join(&**name), false)));
        seen.append(&mut names);
        seen.sort_unstable();
        // Within one folder, the paths' order as strings is `Path`'s
        // (component by component), which is slower to compare.
        found.sort_unstable_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
        found
    }

    /// Whether the symbolic link `path` in `dir` leads to a folder to look
    /// into (a phase folder shared by linking it in): not to one it is in,
    /// or that holds one, which would be a loop (said once, as a problem).
    fn followed_link(&mut self, dir: &Utf8Path, path: &Utf8Path) -> bool {
        let Ok(target) = path.canonicalize_utf8() else {
            return false;
        };
        if !target.is_dir() {
            return false;
        }
        // It leads to one of the folders it is in, as the walk reached
        // them (by their real paths), or to a folder holding one.
        let looped = (dir.ancestors())
            .take_while(|folder| self.folders.contains_key(*folder))
            .any(|folder| {
                folder
                    .canonicalize_utf8()
                    .is_ok_and(|real| real.starts_with(&target))
            });
        if looped && !self.loops.iter().any(|known| known == path) {
            self.loops.push(path.to_owned());
            self.problems.push(Problem::in_file(
                path,
                None,
                format!("a link to {target}, a folder it is in (a loop): not followed; remove it, or link to a folder outside"),
            ));
        }
        !looped
    }

    /// A folder that went (removed, or renamed: the new name is found as a
    /// new folder): its task files are removed ones, as a file removed
    /// alone is, and it is looked at no more. Its sub-folders, gone too,
    /// are forgotten as each is rescanned.
    fn forget_folder(&mut self, dir: &Utf8Path) {
        if let Some(folder) = self.folders.remove(dir) {
            self.removed
                .extend(folder.seen.iter().map(|name| dir.join(&**name)));
            self.note_unreadable(dir, Vec::new());
            self.readable_again(dir);
        }
    }

    /// A folder that cannot be read: tried again at each rescan (one
    /// failing call) until it can be, its problem said once. Its tasks
    /// are unknown, so its phase's gates stay closed meanwhile.
    fn cannot_read(&mut self, dir: &Utf8Path, e: std::io::Error) {
        if let Some(folder) = self.folders.get_mut(dir) {
            folder.modified = SystemTime::UNIX_EPOCH;
        }
        if !self.unreadable_folders.iter().any(|d| d == dir) {
            self.unreadable_folders.push(dir.to_owned());
            self.problems.push(Problem::in_file(
                dir,
                None,
                format!(
                    "cannot read folder: {e}: make it readable (`chmod u+rx {dir}`, by its owner)"
                ),
            ));
        }
    }

    /// A folder read (or gone) after it could not be: its problem is past.
    fn readable_again(&mut self, dir: &Utf8Path) {
        if let Some(i) = self.unreadable_folders.iter().position(|d| d == dir) {
            self.unreadable_folders.swap_remove(i);
            self.folders_read_again.push(dir.to_owned());
        }
    }

    /// The names of folder `dir` that are not UTF-8 (`now`): each new one
    /// is a problem, said once; each gone since (renamed, removed) is said
    /// in `unreadable_gone`, its problem past.
    fn note_unreadable(&mut self, dir: &Utf8Path, now: Vec<std::path::PathBuf>) {
        let (here, elsewhere): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unreadable)
            .into_iter()
            .partition(|path| path.parent() == Some(dir.as_std_path()));
        self.unreadable = elsewhere;
        for path in &here {
            if !now.contains(path) {
                self.unreadable_gone.push(lossy(path));
            }
        }
        for path in now {
            if !here.contains(&path) {
                self.problems.push(Problem::in_file(
                    &lossy(&path),
                    None,
                    "the path is not valid UTF-8: rename it (task ids are UTF-8 text)",
                ));
            }
            self.unreadable.push(path);
        }
    }
}

/// Whether `path` is surely not there (removed, renamed): not one that
/// cannot be looked at (its folder's permissions), which is there still
/// as far as the run knows.
pub fn gone(path: &Utf8Path) -> bool {
    matches!(path.metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// A path that is not UTF-8, as it is shown (and as its problem names it).
fn lossy(path: &std::path::Path) -> Utf8PathBuf {
    Utf8PathBuf::from(path.to_string_lossy().into_owned())
}

fn modified(dir: &Utf8Path) -> std::io::Result<SystemTime> {
    dir.metadata().and_then(|m| m.modified())
}

/// Changed so recently that a coarse clock could give a later change the
/// same time: the kernel's, a tick of milliseconds; or, where the file
/// system keeps whole seconds (a time without a fraction: ext4 with
/// 128-byte inodes, FAT's two seconds), the file system's, whose time of
/// a change made a second ago may be the one to come.
fn just_now(time: SystemTime) -> bool {
    let age = SystemTime::now().duration_since(time).unwrap_or_default();
    let whole_second = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .is_ok_and(|since| since.subsec_nanos() == 0);
    let tick = match whole_second {
        true => std::time::Duration::from_secs(2),
        false => std::time::Duration::from_millis(50),
    };
    age < tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rescan_finds_only_the_files_added_since() {
        let base = std::env::temp_dir().join(format!("xtask-discovery-{}", std::process::id()));
        let tasks = Utf8PathBuf::from_path_buf(base.clone()).unwrap();
        let write = |path: &str| {
            let file = tasks.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, "---\n---\n").unwrap();
        };
        write("p/b.md");
        write("p/d.md");
        write("p/README.md");
        let mut discovery = Discovery::scan(&tasks);
        assert_eq!(
            discovery.files,
            [tasks.join("p/b.md"), tasks.join("p/d.md")]
        );
        assert!(discovery.rescan().is_empty());
        // Between and before the known names, in a known folder and a new one.
        write("p/c.md");
        write("p/a.md");
        write("q/e.md");
        write("p/.hidden.md");
        let added = discovery.rescan();
        let _ = std::fs::remove_dir_all(&base);
        assert_eq!(
            added,
            [
                tasks.join("p/a.md"),
                tasks.join("p/c.md"),
                tasks.join("q/e.md")
            ]
        );
    }
}
