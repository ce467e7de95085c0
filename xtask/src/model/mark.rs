//! A file's mark: a hash of its content (FNV-1a, 64 bits: a change
//! detector, not a defence against tampering), its size and its change
//! time, so that an unchanged file is recognised with one `stat`. What a
//! completed task was built from is a set of these (`state::fingerprint`);
//! a task file's is taken when it is read.

use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};

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
}

/// When a file last changed (its ctime: any write or rename touches it), in
/// nanoseconds since the epoch.
pub fn changed_ns(meta: &std::fs::Metadata) -> u64 {
    let secs = u64::try_from(meta.ctime()).unwrap_or(0);
    let nanos = u64::try_from(meta.ctime_nsec()).unwrap_or(0);
    secs * 1_000_000_000 + nanos
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
