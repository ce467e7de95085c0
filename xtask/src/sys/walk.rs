//! The one walk through a folder's tree that every part looking under a
//! folder uses (statuses, exit records, outputs, git's folders), each
//! deciding per entry whether to go into it or stop.

use std::path::{Path, PathBuf};

use camino::Utf8Path;

/// What a walk does after `visit` has seen an entry.
pub enum Step {
    /// Goes into the entry if it is a folder, and on.
    Into,
    /// Leaves the entry's content out, and goes on.
    Past,
    /// Ends the walk.
    Stop,
}

/// An entry of a folder walked: every name, UTF-8 or not (a file a task
/// wrote counts whatever its name; the orchestrator's own names are UTF-8).
pub struct Entry {
    entry: std::fs::DirEntry,
    path: PathBuf,
    /// A folder, not a link to one.
    pub is_folder: bool,
}

impl Entry {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its path, when UTF-8.
    pub fn utf8(&self) -> Option<&Utf8Path> {
        Utf8Path::from_path(&self.path)
    }

    /// Its name, when UTF-8.
    pub fn name(&self) -> Option<&str> {
        self.path.file_name()?.to_str()
    }

    /// What it is itself, not what a link points to.
    pub fn file_type(&self) -> std::io::Result<std::fs::FileType> {
        self.entry.file_type()
    }

    /// Its metadata, a link's own.
    pub fn metadata(&self) -> std::io::Result<std::fs::Metadata> {
        self.entry.metadata()
    }
}

/// Calls `visit` with every entry under the folders `from`, at any depth
/// that `visit` lets it go into. Links are entries like any other, never
/// followed (one may lead back up, or out of the tree). A folder that
/// cannot be read, or an entry, is left out: the tree is the user's, or
/// being changed while it is walked. The order is no one's (sort what must
/// be sorted).
pub fn walk<P: Into<PathBuf>>(
    from: impl IntoIterator<Item = P>,
    mut visit: impl FnMut(&Entry) -> Step,
) {
    let mut folders: Vec<PathBuf> = from.into_iter().map(Into::into).collect();
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let is_folder = entry.file_type().is_ok_and(|t| t.is_dir());
            let path = entry.path();
            let entry = Entry {
                entry,
                path,
                is_folder,
            };
            match visit(&entry) {
                Step::Into if is_folder => folders.push(entry.path),
                Step::Into | Step::Past => {}
                Step::Stop => return,
            }
        }
    }
}
