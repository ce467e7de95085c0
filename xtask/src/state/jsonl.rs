//! Files of JSON lines that are only appended to (`events.jsonl`,
//! `ledger.jsonl`): read line by line, skipping a line that does not
//! parse (one cut by a full disk or a kill, or mangled by hand) and going
//! on after it; appended to after ending a cut last line, so that the next
//! line is never glued to it and lost with it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::de::DeserializeOwned;

/// Every line of the file at `path` that parses, oldest first (none when
/// there is no file), and the lines that did not parse, with their
/// numbers (from 1); a blank one is none of them.
pub fn read_noting_skipped<T: DeserializeOwned>(path: &Utf8Path) -> (Vec<T>, Vec<(usize, String)>) {
    let mut read = Vec::new();
    let mut skipped = Vec::new();
    for (n, line) in lines(path).enumerate() {
        match serde_json::from_slice(&line) {
            Ok(value) => read.push(value),
            Err(_) if line.trim_ascii().is_empty() => {}
            Err(_) => skipped.push((n + 1, String::from_utf8_lossy(&line).into_owned())),
        }
    }
    (read, skipped)
}

/// The lines of the file at `path`, read one at a time, not all held
/// (none when there is no file; a read error ends them).
pub fn lines(path: &Utf8Path) -> impl Iterator<Item = Vec<u8>> {
    // Non-blocking: a FIFO put there reads as empty, not forever.
    crate::sys::open_nonblocking(path.as_std_path())
        .into_iter()
        .flat_map(|file| {
            BufReader::new(file)
                .split(b'\n')
                .map_while(std::io::Result::ok)
        })
}

/// The lines of the file at `path` from its last to its first, but blank
/// ones, read a block at a time from its end: a reader of the latest
/// lines pays for them alone, however long the file grew over weeks of
/// runs (none when there is no file; a read error ends them).
pub fn lines_backwards(path: &Utf8Path) -> impl Iterator<Item = Vec<u8>> {
    let file = crate::sys::open_nonblocking(path.as_std_path()).ok();
    let unread = file
        .as_ref()
        .and_then(|file| file.metadata().ok())
        .map_or(0, |meta| meta.len());
    Backwards {
        file,
        unread,
        held: Vec::new(),
    }
}

/// The lines of `file` before byte `end`, from the last to the first, as
/// `lines_backwards` reads them (the file's own offset is left as it is).
pub fn lines_before(file: &File, end: u64) -> impl Iterator<Item = Vec<u8>> {
    Backwards {
        file: file.try_clone().ok(),
        unread: end,
        held: Vec::new(),
    }
}

/// `lines_backwards`' reader.
struct Backwards {
    file: Option<File>,
    /// How much of the file, from its start, is still to be read.
    unread: u64,
    /// What was read of the file and not handed out yet: the bytes from
    /// `unread` to the start of the last line handed out.
    held: Vec<u8>,
}

impl Iterator for Backwards {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(at) = self.held.iter().rposition(|&b| b == b'\n') {
                let line = self.held.split_off(at + 1);
                self.held.pop();
                if !line.is_empty() {
                    return Some(line);
                }
            } else if self.unread == 0 || !self.read_block() {
                let line = std::mem::take(&mut self.held);
                return (!line.is_empty()).then_some(line);
            }
        }
    }
}

impl Backwards {
    /// Reads the block before what is held; false when it cannot be read.
    fn read_block(&mut self) -> bool {
        use std::os::unix::fs::FileExt;
        let Some(file) = &self.file else {
            return false;
        };
        let start = self.unread.saturating_sub(1 << 16);
        let mut block = vec![0; (self.unread - start) as usize];
        if file.read_exact_at(&mut block, start).is_err() {
            self.file = None;
            return false;
        }
        block.append(&mut self.held);
        self.held = block;
        self.unread = start;
        true
    }
}

/// A file of JSON lines open for appending (`open_to_append`).
pub struct Appender {
    file: File,
    path: Utf8PathBuf,
    /// The open file's inode, which cannot change while it is open: known,
    /// it is not asked for again at every append (an `fstat` per event).
    inode: Option<u64>,
}

impl Appender {
    /// Appends `line` (ending with its newline) in one write (`O_APPEND`:
    /// it lands whole at the end, whoever else appends), under a shared
    /// lock of the file, which only the mending of a cut line waits for.
    /// A file moved away or removed since it was opened (kept aside by
    /// hand, or by logrotate) is made again at its path: what is appended
    /// to the one still open would be read by nobody.
    pub fn append(&mut self, line: &[u8]) -> Result<()> {
        if crate::sys::inode_at(&self.path) != self.inode {
            *self = open_to_append(&self.path)?;
        }
        let _shared = Flock::new(&self.file, libc::LOCK_SH);
        (&self.file)
            .write_all(line)
            .with_context(|| format!("cannot append to {}", self.path))
    }
}

/// The file at `path`, made if need be (its folder too), open for
/// appending, its last line ended if something cut it. A write that
/// crosses a page can be seen half done, its line cut for a moment: the
/// mending waits, under an exclusive lock, for every write going on to
/// end, and looks again.
pub fn open_to_append(path: &Utf8Path) -> Result<Appender> {
    let open = || {
        File::options()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
    };
    let file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path.parent().context("a file path has a folder")?;
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {dir}"))?;
            open()
        }
        opened => opened,
    }
    .with_context(|| format!("cannot open {path}"))?;
    if ends_cut(&file) {
        let _alone = Flock::new(&file, libc::LOCK_EX);
        if ends_cut(&file) {
            (&file)
                .write_all(b"\n")
                .with_context(|| format!("cannot append to {path}"))?;
        }
    }
    let inode = file.metadata().ok().map(|m| m.ino());
    Ok(Appender {
        file,
        path: path.to_owned(),
        inode,
    })
}

/// Whether the file's last line has no newline.
fn ends_cut(mut file: &File) -> bool {
    let mut last = [0u8];
    file.seek(SeekFrom::End(-1)).is_ok() && file.read_exact(&mut last).is_ok() && last[0] != b'\n'
}

/// An advisory lock of a file (`flock`), released when dropped. Where it
/// cannot be had, appending goes on without it.
struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    fn new(file: &'a File, how: libc::c_int) -> Flock<'a> {
        use std::os::fd::AsRawFd;
        // SAFETY: flock has no memory-safety preconditions; the fd is open.
        unsafe { libc::flock(file.as_raw_fd(), how) };
        Flock(file)
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    /// The lines of `text` read backwards are its lines but blank ones,
    /// last first, also across the blocks it is read in.
    #[test]
    fn lines_backwards() {
        let dir = std::env::temp_dir().join(format!("xtask-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = camino::Utf8PathBuf::try_from(dir.join("lines")).unwrap();
        let long = "x".repeat(3 << 16);
        let check = |text: &str| {
            std::fs::write(&path, text).unwrap();
            let read: Vec<Vec<u8>> = super::lines_backwards(&path).collect();
            let mut expected: Vec<&[u8]> = (text.split('\n'))
                .filter(|line| !line.is_empty())
                .map(str::as_bytes)
                .collect();
            expected.reverse();
            assert_eq!(read, expected, "{:?}", &text[..text.len().min(40)]);
        };
        check("");
        check("\n");
        check("a");
        check("a\nb\n");
        check("a\n\nb");
        check(&format!("a\n{long}\nb\n{long}"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
