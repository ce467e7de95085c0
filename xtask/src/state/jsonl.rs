//! Files of JSON lines that are only appended to (`events.jsonl`,
//! `ledger.jsonl`): read line by line, skipping a line that does not
//! parse (one cut by a full disk or a kill, or mangled by hand) and going
//! on after it; appended to after ending a cut last line, so that the next
//! line is never glued to it and lost with it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};

use anyhow::{Context, Result};
use camino::Utf8Path;
use serde::de::DeserializeOwned;

/// Every line of the file at `path` that parses, oldest first; none when
/// there is no file.
pub fn read<T: DeserializeOwned>(path: &Utf8Path) -> Vec<T> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    BufReader::new(file)
        .split(b'\n')
        .map_while(std::io::Result::ok)
        .filter_map(|line| serde_json::from_slice(&line).ok())
        .collect()
}

/// The file at `path`, made if need be, open for appending (`O_APPEND`:
/// each write lands whole at its end, whoever else appends), its last line
/// ended if something cut it.
pub fn open_to_append(path: &Utf8Path) -> Result<File> {
    let mut file = File::options()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .with_context(|| format!("cannot open {path}"))?;
    let mut last = [0u8];
    let cut = file.seek(SeekFrom::End(-1)).is_ok()
        && file.read_exact(&mut last).is_ok()
        && last[0] != b'\n';
    if cut {
        file.write_all(b"\n")
            .with_context(|| format!("cannot append to {path}"))?;
    }
    Ok(file)
}
