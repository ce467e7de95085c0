//! A file's mark: a hash of its content (FNV-1a, 64 bits: a change
//! detector, not a defence against tampering), its size and its change
//! time, so that an unchanged file is recognised with one `stat`. What a
//! completed task was built from is a set of these (`state::fingerprint`);
//! a task file's is taken when it is read.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

use camino::{Utf8Path, Utf8PathBuf};

use serde::{Deserialize, Serialize};

/// Files at least this large have their marks remembered by the process
/// (`of_file`): a small one is read again sooner than looked up.
const REMEMBERED: u64 = 1 << 20;

/// The marks of large files this process hashed, by path.
static MARKS: std::sync::Mutex<Option<HashMap<Utf8PathBuf, Mark>>> = std::sync::Mutex::new(None);

/// The mark remembered for `path`, if its size and change time are still
/// `meta`'s.
fn remembered(path: &Utf8Path, meta: &std::fs::Metadata) -> Option<Mark> {
    let marks = MARKS.lock().unwrap_or_else(|e| e.into_inner());
    let mark = marks.as_ref()?.get(path)?;
    mark.unchanged_by(meta).then(|| mark.clone())
}

fn remember(path: &Utf8Path, mark: &Mark) {
    let mut marks = MARKS.lock().unwrap_or_else(|e| e.into_inner());
    marks
        .get_or_insert_with(HashMap::new)
        .insert(path.to_owned(), mark.clone());
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// FNV-1a of the content, in hex.
    pub hash: String,
    pub size: u64,
    /// When it last changed (ctime), in nanoseconds.
    pub changed_ns: u64,
}

impl Mark {
    /// The mark of a file whose content is `bytes` and metadata `meta`.
    pub fn of(bytes: &[u8], meta: &std::fs::Metadata) -> Mark {
        Mark {
            hash: format!("{:016x}", fnv1a(bytes)),
            size: bytes.len() as u64,
            changed_ns: changed_ns(meta),
        }
    }

    /// The mark of the file at `path`, read a piece at a time (an input
    /// may be gigabytes). Its change time is taken before it is read: one
    /// written meanwhile is hashed again when next looked at.
    pub fn of_file(path: &Utf8Path) -> std::io::Result<Mark> {
        // Only a file: opening a FIFO (a glob may match one) waits for a
        // writer that may never come.
        let meta = path.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other(format!("{path} is not a file")));
        }
        // Hashed before by this process, with the same size and change
        // time: the same content (as `fingerprint` judges files), not read
        // again at each start of the tasks that take it as an input.
        let big = meta.len() >= REMEMBERED;
        if let Some(mark) = big.then(|| remembered(path, &meta)).flatten() {
            return Ok(mark);
        }
        let mut file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        let mut hasher = Fnv1a(FNV_OFFSET);
        let size = std::io::copy(&mut file, &mut hasher)?;
        let mark = Mark {
            hash: format!("{:016x}", hasher.0),
            size,
            changed_ns: changed_ns(&meta),
        };
        if big {
            remember(path, &mark);
        }
        Ok(mark)
    }

    /// The mark of a file that is not there: one that appears differs.
    pub fn absent() -> Mark {
        Mark {
            hash: ABSENT.to_owned(),
            size: 0,
            changed_ns: 0,
        }
    }

    pub fn is_absent(&self) -> bool {
        self.hash == ABSENT
    }

    /// Whether a file with metadata `meta` surely has the content this
    /// mark was taken of, without reading it: the same size and change
    /// time; not a time of whole seconds, which a file system that keeps
    /// no fraction (ext4 with 128-byte inodes, FAT) gives every change
    /// within that second, another content of as many bytes too.
    pub fn unchanged_by(&self, meta: &std::fs::Metadata) -> bool {
        self.size == meta.len()
            && self.changed_ns == changed_ns(meta)
            && !self.changed_ns.is_multiple_of(1_000_000_000)
    }

    /// The mark of a glob's matches, `names` (sorted): one more or one
    /// fewer differs.
    pub fn listing(names: &[String]) -> Mark {
        let joined = names.join("\0");
        Mark {
            hash: format!("{LISTING}{:016x}", fnv1a(joined.as_bytes())),
            size: names.len() as u64,
            changed_ns: 0,
        }
    }

    pub fn is_listing(&self) -> bool {
        self.hash.starts_with(LISTING)
    }
}

/// How the hash of `Mark::listing` starts: no content's hash does (hashes
/// are hex).
const LISTING: &str = "matches-";

/// The hash of `Mark::absent`, which no content has (hashes are hex).
const ABSENT: &str = "absent";

/// When a file last changed (its ctime: any write or rename touches it), in
/// nanoseconds since the epoch.
pub fn changed_ns(meta: &std::fs::Metadata) -> u64 {
    let secs = u64::try_from(meta.ctime()).unwrap_or(0);
    let nanos = u64::try_from(meta.ctime_nsec()).unwrap_or(0);
    secs * 1_000_000_000 + nanos
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_on(FNV_OFFSET, bytes)
}

/// FNV-1a of what `hash` hashed so far, then `bytes`.
fn fnv1a_on(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// FNV-1a of all written to it, so far.
struct Fnv1a(u64);

impl std::io::Write for Fnv1a {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 = fnv1a_on(self.0, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large file's mark is remembered, but never past a change of it:
    /// rewritten with as many bytes, it is hashed again.
    #[test]
    fn a_remembered_mark_is_taken_again_once_its_file_changes() {
        // A folder of its own: the tests run side by side, and each removes
        // its folder at its end.
        let dir = std::env::temp_dir().join(format!("xtask-mark-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.join("big")).unwrap();
        std::fs::write(&path, vec![b'a'; 2 << 20]).unwrap();
        let first = Mark::of_file(&path).unwrap();
        assert_eq!(Mark::of_file(&path).unwrap(), first);
        std::fs::write(&path, vec![b'b'; 2 << 20]).unwrap();
        let second = Mark::of_file(&path).unwrap();
        assert_ne!(second.hash, first.hash);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_read_in_pieces_has_the_mark_of_its_whole_content() {
        let dir = std::env::temp_dir().join(format!("xtask-mark-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = Utf8Path::from_path(&dir).unwrap().join("f");
        // Three pieces and a bit.
        let bytes: Vec<u8> = (0..(3 << 16) + 5).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let meta = path.metadata().unwrap();
        assert_eq!(Mark::of_file(&path).unwrap(), Mark::of(&bytes, &meta));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fnv1a_matches_its_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
