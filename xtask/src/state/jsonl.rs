//! Files of JSON lines that are only appended to (`events.jsonl`,
//! `ledger.jsonl`): read line by line, skipping a line that does not
//! parse (one cut by a full disk or a kill, or mangled by hand) and going
//! on after it; appended to after ending a cut last line, so that the next
//! line is never glued to it and lost with it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::de::DeserializeOwned;

/// Every line of the file at `path` that parses, oldest first; none when
/// there is no file.
pub fn read<T: DeserializeOwned>(path: &Utf8Path) -> Vec<T> {
    read_noting_skipped(path).0
}

/// `read`, and the lines that did not parse, with their numbers (from 1);
/// a blank one is none of them.
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

/// A file of JSON lines open for appending (`open_to_append`).
pub struct Appender {
    file: File,
    path: Utf8PathBuf,
}

impl Appender {
    /// Appends `line` (ending with its newline) in one write (`O_APPEND`:
    /// it lands whole at the end, whoever else appends), under a shared
    /// lock of the file, which only the mending of a cut line waits for.
    /// A file moved away or removed since it was opened (kept aside by
    /// hand, or by logrotate) is made again at its path: what is appended
    /// to the one still open would be read by nobody.
    pub fn append(&mut self, line: &[u8]) -> Result<()> {
        if crate::sys::replaced(&self.path, &self.file) {
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
    Ok(Appender {
        file,
        path: path.to_owned(),
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
