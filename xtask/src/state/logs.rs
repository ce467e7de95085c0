//! Task logs, `workspace/logs/<task id>.log`: reading their last lines for
//! the views, and keeping an earlier attempt's log when a retry starts.

use std::os::unix::fs::FileExt;

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::agent::terminal::plain;
use crate::model::layout::Layout;
use crate::state::atomic;

/// The last `n` lines of a log (fewer if it has fewer; none if it is
/// missing), read from its end, however long the log, each as a terminal
/// shows it (`terminal::plain`: no colour codes, a line redrawn after a
/// `\r` as it ends up).
pub fn tail(path: &Utf8Path, n: usize) -> Vec<String> {
    // Enough for `n` ordinary lines; a longer line is cut at its start.
    let bytes = (n as u64 * 200).max(2048);
    let text = read_end(path, bytes).text;
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].iter().map(|l| plain(l)).collect()
}

/// The last line of a log that is not blank, as a terminal shows it
/// (`terminal::plain`), trimmed: what the views print of a running or
/// failed task. One longer than the 2 KiB read is cut at its start.
pub fn last_line(path: &Utf8Path) -> String {
    last_nonblank(&read_end(path, LAST_LINE_BYTES).text)
        .map(|(_, line)| line)
        .unwrap_or_default()
}

/// `last_line`, unless that line began before the 2 KiB read: what the
/// watchdog reads for a question. A question fits in a line of a
/// terminal; a longer last line is output (a JSON event of an agent CLI
/// quoting a tool's output, cut, no longer looks like JSON), never a
/// question, even where its end reads like one. The run's own lines after
/// it (the task was stopped, then continued) are not what the task asked
/// last: passed over.
pub fn last_short_line(path: &Utf8Path) -> String {
    let end = read_end(path, LAST_LINE_BYTES);
    match last_nonblank(without_our_last_lines(&end.text)) {
        Some((0, _)) if !end.whole => String::new(),
        Some((_, line)) => line,
        None => String::new(),
    }
}

/// `text` without the run's own lines at its end (each begins a line:
/// `append_line`).
fn without_our_last_lines(text: &str) -> &str {
    let mut text = text;
    loop {
        let body = text.trim_end_matches(['\n', '\r']);
        let start = body.rfind('\n').map_or(0, |i| i + 1);
        if start == 0 || !body[start..].starts_with(OURS) {
            return text;
        }
        text = &body[..start];
    }
}

/// How much of a log's end is read for its last line.
pub const LAST_LINE_BYTES: u64 = 2048;

/// How the orchestrator's own lines in a task's log begin.
pub const OURS: &str = "xtask: ";

/// The last line of `text` that is not blank, plain and trimmed, with the
/// offset in `text` where it starts. A line that only draws (a box's
/// bottom border, `╰────╯`, or an empty row of it) counts as blank: what
/// a terminal shows last is the box's last line of text (a dialog's last
/// option).
fn last_nonblank(text: &str) -> Option<(usize, String)> {
    text.lines()
        .rev()
        .map(|line| {
            (
                line.as_ptr() as usize - text.as_ptr() as usize,
                plain(line).trim().to_owned(),
            )
        })
        .find(|(_, line)| !line.chars().all(draws))
}

/// Whether `c` draws, without being text: a blank, or a box-drawing
/// character (U+2500 to U+257F).
fn draws(c: char) -> bool {
    c.is_whitespace() || ('\u{2500}'..='\u{257F}').contains(&c)
}

/// The end of a file, as read by `end_of`.
pub struct End {
    pub text: String,
    /// The file was read from its first byte: its first line is whole.
    pub whole: bool,
}

impl End {
    /// Its text, less the line it starts in the middle of (when it does).
    pub fn whole_lines(self) -> String {
        if self.whole {
            return self.text;
        }
        match self.text.find('\n') {
            Some(i) => self.text[i + 1..].to_owned(),
            None => String::new(),
        }
    }
}

/// The end of a file for the views: nothing when it cannot be read.
fn read_end(path: &Utf8Path, bytes: u64) -> End {
    end_of(path, bytes).unwrap_or(End {
        text: String::new(),
        whole: true,
    })
}

/// The last `bytes` of the file (all of it for `u64::MAX`), up to its
/// length when looked at. Read in place (`pread`): `progress --json` reads
/// 100,000 logs' ends. The length comes first, by path: the empty log of a
/// quiet task then costs one system call, not an open, a stat and a close.
pub fn end_of(path: &Utf8Path, bytes: u64) -> std::io::Result<End> {
    let len = path.metadata()?.len();
    let start = len.saturating_sub(bytes);
    let mut tail = vec![0; (len - start) as usize];
    if len > 0 {
        let file = std::fs::File::open(path)?;
        let mut filled = 0;
        while filled < tail.len() {
            match file.read_at(&mut tail[filled..], start + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        tail.truncate(filled);
    }
    Ok(End {
        text: String::from_utf8_lossy(&tail).into_owned(),
        whole: start == 0,
    })
}

/// Where the last `n` lines of `file` begin (its start when it has fewer),
/// found from its end a block at a time, as `tail -n` finds them: a last
/// line with no newline yet counts as one. An agent's log of a day's work
/// is gigabytes: it is never read whole for its end.
pub fn start_of_last_lines(file: &std::fs::File, n: usize) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut newlines = 0;
    let mut end = len;
    let mut block = vec![0; 1 << 16];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let part = &mut block[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        for (i, _) in part.iter().enumerate().rev().filter(|(_, &b)| b == b'\n') {
            let after = start + i as u64 + 1;
            // The file's last newline ends its last line: no line to skip.
            if after == len {
                continue;
            }
            newlines += 1;
            if newlines == n {
                return Ok(after);
            }
        }
        end = start;
    }
    Ok(0)
}

/// Before attempt `attempt` (a retry) starts: the previous attempt's log is
/// kept as `<id>.attempt-N.log`, never over a kept log (one whose attempt
/// number a person's removal of statuses and logs made free again takes
/// the next free number), and its kept stdout, if any, as
/// `<id>.attempt-N.stdout` beside it (its result, which a log whose
/// supervisor died may not hold all of).
pub fn keep_previous(layout: &Layout, id: &str, attempt: u32) -> Result<()> {
    if attempt <= 1 {
        return Ok(());
    }
    let (log, stdout) = (layout.log_file(id), layout.stdout_file(id));
    let kept_stdout = |n| layout.attempt_stdout_file(id, n);
    match keep_numbered(&log, |n| layout.attempt_log_file(id, n), attempt - 1)? {
        Some(n) => match std::fs::rename(&stdout, kept_stdout(n)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e)
                .with_context(|| format!("cannot keep the previous stdout as {}", kept_stdout(n))),
            _ => Ok(()),
        },
        // Its log removed by hand (`workspace/logs` cleared during the
        // attempt, its stdout put back by its supervisor): the stdout is
        // kept alone, not made empty by the next attempt.
        None => keep_numbered(&stdout, kept_stdout, attempt - 1).map(drop),
    }
}

/// Renames `file` to `numbered(n)` for the first `n` from `first` that is
/// free: the number taken, `None` when there is no `file`.
fn keep_numbered(
    file: &Utf8Path,
    numbered: impl Fn(u32) -> Utf8PathBuf,
    first: u32,
) -> Result<Option<u32>> {
    if !file.exists() {
        return Ok(None);
    }
    let mut n = first;
    loop {
        let kept = numbered(n);
        match atomic::rename_new(file, &kept) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            done => {
                done.with_context(|| {
                    format!("cannot keep the previous attempt's {file} as {kept}")
                })?;
                return Ok(Some(n));
            }
        }
    }
}

/// Appends all of the kept stdout `kept` to `log`, after `header`: what a
/// task printed once its supervisor (which followed it into the log) died.
pub fn append_all_of(log: &Utf8Path, kept: &Utf8Path, header: &str) {
    if let Ok(mut follower) = Follower::open(kept, log) {
        append_line(log, header);
        follower.copy_new();
    }
}

/// The number of the latest attempt of `id` whose log is on disk (0 for
/// none): those kept as `<id>.attempt-N.log`, and the one after them when
/// its log holds something. An empty log is not counted: an orchestrator
/// killed between making a log and writing the running status leaves one
/// for an attempt that never ran, and nothing is lost when it is written
/// over. A task with no status (`reset`, or statuses removed) numbers its
/// attempts on from this, so that no earlier log is written over.
pub fn latest_attempt_on_disk(layout: &Layout, id: &str) -> u32 {
    let current = layout.log_file(id).metadata().is_ok_and(|m| m.len() > 0);
    let mut kept = 0;
    while layout.attempt_log_file(id, kept + 1).exists() {
        kept += 1;
    }
    kept + u32::from(current)
}

/// The log of attempt `attempt` of `id`: kept under its own name once a
/// later attempt started, else the latest log.
pub fn of_attempt(layout: &Layout, id: &str, attempt: u32) -> Utf8PathBuf {
    let kept = layout.attempt_log_file(id, attempt);
    if kept.exists() {
        kept
    } else {
        layout.log_file(id)
    }
}

/// Appends `line` to a task's log (what the orchestrator or its supervisor
/// did to the task, among what it printed), on a line of its own after
/// output that did not end its line (a progress bar, a `(y/n) ` prompt);
/// a log that cannot be opened is left as it is.
pub fn append_line(log: &Utf8Path, line: &str) {
    use std::os::unix::fs::FileExt;
    if let Ok(mut file) = std::fs::File::options().read(true).append(true).open(log) {
        let len = file.metadata().map_or(0, |m| m.len());
        let mut last = [b'\n'];
        if len > 0 {
            let _ = file.read_at(&mut last, len - 1);
        }
        let start = if last[0] == b'\n' { "" } else { "\n" };
        let _ = std::io::Write::write_all(&mut file, format!("{start}{line}\n").as_bytes());
    }
}

/// Copies what a task writes into the file that keeps its stdout apart
/// (`Layout::stdout_file`, where its result is read from) into its log,
/// as it comes. The task writes that file itself, not a pipe: a pipe's
/// reader dies with the supervisor, and the task would die of SIGPIPE at
/// its next write (an agent that had done its work, at its result).
pub struct Follower {
    kept: std::fs::File,
    kept_path: Utf8PathBuf,
    log: std::fs::File,
    log_path: Utf8PathBuf,
    /// How much of `kept` was copied, and its last bytes copied: a file
    /// whose bytes there changed was written again from its start.
    copied: u64,
    last: Vec<u8>,
}

/// How many of the last bytes copied are compared.
const LAST: usize = 64;

impl Follower {
    /// Follows `kept` into `log`, from its start.
    pub fn open(kept: &Utf8Path, log: &Utf8Path) -> std::io::Result<Follower> {
        Ok(Follower {
            kept: std::fs::File::open(kept)?,
            kept_path: kept.to_owned(),
            log: std::fs::File::options().append(true).open(log)?,
            log_path: log.to_owned(),
            copied: 0,
            last: Vec::new(),
        })
    }

    /// Copies what was written since the last copy. A full disk loses
    /// output in the log, never the task's: what it wrote stays kept.
    pub fn copy_new(&mut self) {
        use std::io::Write;
        if self.rewritten() {
            append_line(&self.log_path, REWRITTEN);
            self.copied = 0;
            self.last.clear();
        }
        let mut buffer = [0u8; 64 * 1024];
        loop {
            let n = match self.kept.read_at(&mut buffer, self.copied) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let _ = self.log.write_all(&buffer[..n]);
            self.copied += n as u64;
            self.last
                .extend_from_slice(&buffer[n.saturating_sub(LAST)..n]);
            let over = self.last.len().saturating_sub(LAST);
            self.last.drain(..over);
        }
    }

    /// Once the task has ended: what it printed, put back where it is read
    /// from when that file is gone or another (`workspace/logs` removed
    /// while it ran, to free space). An agent's result is read there once
    /// it has ended: without it the attempt failed, its cost was counted
    /// nowhere, and the agent was paid to run again.
    pub fn put_back(&self) -> anyhow::Result<()> {
        put_back(&self.kept_path, &self.kept)
    }

    /// Whether the bytes last copied are no longer where they were: the
    /// task opened its stdout again for writing (`> /dev/stdout`, which a
    /// pipe would not mind) and wrote it from its start.
    fn rewritten(&self) -> bool {
        let mut now = vec![0u8; self.last.len()];
        let at = self.copied - self.last.len() as u64;
        !self.last.is_empty()
            && self
                .kept
                .read_exact_at(&mut now, at)
                .map_or(true, |()| now != self.last)
    }
}

/// Writes what the open `kept` holds back at `path` when `path` no longer
/// names it (removed, or another file): a task's kept stdout, which its
/// result and cost are read from once it has ended (`Follower::put_back`,
/// `run::recovery::Orphan`, `HeldLog`).
pub fn put_back(path: &Utf8Path, kept: &std::fs::File) -> Result<()> {
    if !crate::sys::replaced(path, kept) {
        return Ok(());
    }
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).with_context(|| format!("cannot make {folder} again"))?;
    }
    let mut from = kept;
    std::io::Seek::rewind(&mut from).with_context(|| format!("cannot read back {path}"))?;
    atomic::write_with(path, |file| std::io::copy(&mut from, file).map(drop))
}

/// A log its task writes by itself, held open by the run (a Slurm job's,
/// which the job's own process opens by its path as it starts, on another
/// machine maybe): removed while the task runs (`workspace/logs` cleared
/// by hand, to free space), it is put back once the task has ended. An
/// agent's result is read there: without it the attempt failed, its cost
/// was counted nowhere, and the agent was paid to run again.
pub struct HeldLog {
    path: Utf8PathBuf,
    file: Option<std::fs::File>,
}

impl HeldLog {
    /// Makes the file at `path` empty (one there of an earlier attempt
    /// too) and holds it: a local agent's kept stdout, made by the run as
    /// its start is asked for, which its supervisor then gives the agent
    /// as its stdout (the same file; the supervisor puts it back as the
    /// agent ends, and lets go of it), so that a removal after that, before
    /// the run read its result, loses nothing either.
    pub fn made(path: &Utf8Path) -> Result<HeldLog> {
        // Read back from, should it be put back.
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("cannot create {path}"))?;
        Ok(HeldLog {
            path: path.to_owned(),
            file: Some(file),
        })
    }

    /// Holds the log at `path`, if there is one.
    pub fn hold(path: &Utf8Path) -> HeldLog {
        HeldLog {
            path: path.to_owned(),
            file: std::fs::File::open(path).ok(),
        }
    }

    /// Holds the file at its path now, if there is one, else still the
    /// one held: as the task (re)starts, and opens its log by its path,
    /// one removed while it waited is made again, and is the one written.
    pub fn again(&mut self) {
        if let Ok(file) = std::fs::File::open(&self.path) {
            self.file = Some(file);
        }
    }

    /// Once the task has ended: the file held put back at its path if
    /// that names nothing, never over a file there (the one the task
    /// wrote, made again as it started).
    pub fn put_back_if_gone(&self) -> Result<()> {
        match &self.file {
            Some(file) if self.path.symlink_metadata().is_err() => put_back(&self.path, file),
            _ => Ok(()),
        }
    }
}

/// Said in a log when the task wrote its stdout file again from its start.
const REWRITTEN: &str = "xtask: the task wrote its stdout again from its start (it opened it again for writing, as `> /dev/stdout` does): all it holds now follows; what it held before is above only";

#[cfg(test)]
mod tests {
    /// What the task asked last is found under the run's lines after it,
    /// never before the text read (a line that may begin before it).
    #[test]
    fn the_run_s_last_lines_are_passed_over() {
        let asked = "work\nProceed? (y/n) \nxtask: stopped\nxtask: continued\n";
        assert_eq!(
            super::without_our_last_lines(asked),
            "work\nProceed? (y/n) \n"
        );
        assert_eq!(
            super::without_our_last_lines("xtask: only\n"),
            "xtask: only\n"
        );
        assert_eq!(super::without_our_last_lines("done\n"), "done\n");
    }

    /// The last `n` lines start where `tail -n` starts them, also when
    /// they span the blocks the file is read in from its end.
    #[test]
    fn start_of_last_lines() {
        let dir = std::env::temp_dir().join(format!("xtask-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let long = "x".repeat(3 << 16);
        let check = |text: &str, n: usize, expected: &str| {
            std::fs::write(&path, text).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let start = super::start_of_last_lines(&file, n).unwrap() as usize;
            assert_eq!(
                &text[start..],
                expected,
                "{n} of {:?}",
                &text[..text.len().min(20)]
            );
        };
        check("", 3, "");
        check("a\nb\nc\n", 0, "");
        check("a\nb\nc\n", 1, "c\n");
        check("a\nb\nc\n", 2, "b\nc\n");
        check("a\nb\nc\n", 9, "a\nb\nc\n");
        check("a\nb\nc", 1, "c");
        check("a\n\n\n", 2, "\n\n");
        check(&format!("a\n{long}\nb\n"), 2, &format!("{long}\nb\n"));
        check(&format!("{long}\n{long}"), 1, &long);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
