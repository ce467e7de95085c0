//! Fingerprints of files: what a completed task was built from (its task
//! file and its inputs) and what an approval saw, to tell when a result is
//! stale. A file's mark is a hash of its content (FNV-1a, 64 bits: a change
//! detector, not a defence against tampering), with its size and change
//! time, so that an unchanged file is recognised with one `stat`.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::state::outputs::changed_ns;

/// Each file's mark, by its path from the root (`tasks/p/a.md`).
pub type Fingerprint = BTreeMap<String, Mark>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// FNV-1a of the content, in hex.
    pub hash: String,
    pub size: u64,
    /// When it last changed (ctime), in nanoseconds.
    pub changed_ns: u64,
}

/// The marks of `files` (those that exist).
pub fn of(layout: &Layout, files: &[Utf8PathBuf]) -> Fingerprint {
    files
        .iter()
        .filter_map(|path| Some((relative(layout, path), mark(path)?)))
        .collect()
}

/// The first file of `fingerprint` whose content is not what it was (or
/// that is gone), by its path from the root.
pub fn changed(layout: &Layout, fingerprint: &Fingerprint) -> Option<String> {
    fingerprint
        .iter()
        .find(|(path, was)| {
            let full = layout.root.join(path);
            match full.metadata() {
                // Same size and change time: the same content.
                Ok(meta) if meta.len() == was.size && changed_ns(&meta) == was.changed_ns => false,
                Ok(_) => mark(&full).is_none_or(|now| now.hash != was.hash),
                Err(_) => true,
            }
        })
        .map(|(path, _)| path.clone())
}

fn mark(path: &Utf8Path) -> Option<Mark> {
    let bytes = std::fs::read(path).ok()?;
    let meta = path.metadata().ok()?;
    Some(Mark {
        hash: format!("{:016x}", fnv1a(&bytes)),
        size: bytes.len() as u64,
        changed_ns: changed_ns(&meta),
    })
}

fn relative(layout: &Layout, path: &Utf8Path) -> String {
    path.strip_prefix(&layout.root).unwrap_or(path).to_string()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_its_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
