//! The one walk through a folder's tree that every part looking under a
//! folder uses (statuses, exit records, outputs, git's folders), each
//! deciding per entry whether to go into it or stop.

use camino::{Utf8DirEntry, Utf8PathBuf};

/// What a walk does after `visit` has seen an entry.
pub enum Step {
    /// Goes into the entry if it is a folder, and on.
    Into,
    /// Leaves the entry's content out, and goes on.
    Past,
    /// Ends the walk.
    Stop,
}

/// Calls `visit` with every entry under the folders `from`, at any depth
/// that `visit` lets it go into, and whether the entry is a folder. Links
/// are entries like any other, never followed (one may lead back up, or
/// out of the tree). A folder that cannot be read, or an entry, is left
/// out: the tree is the user's, or being changed while it is walked. The
/// order is no one's (sort what must be sorted).
pub fn walk(
    from: impl IntoIterator<Item = Utf8PathBuf>,
    mut visit: impl FnMut(&Utf8DirEntry, bool) -> Step,
) {
    let mut folders: Vec<Utf8PathBuf> = from.into_iter().collect();
    while let Some(folder) = folders.pop() {
        let Ok(entries) = folder.read_dir_utf8() else {
            continue;
        };
        for entry in entries.flatten() {
            // `file_type` is the entry's own, not what a link points to.
            let is_folder = entry.file_type().is_ok_and(|t| t.is_dir());
            match visit(&entry, is_folder) {
                Step::Into if is_folder => folders.push(entry.into_path()),
                Step::Into | Step::Past => {}
                Step::Stop => return,
            }
        }
    }
}
