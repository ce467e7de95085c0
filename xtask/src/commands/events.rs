//! `events [-f] [--task ID] [--json] [-n N]`: the lines of
//! `workspace/events.jsonl` (or their last `N`), as text or as they are,
//! and with `-f` those that come after, until Ctrl-C.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use anyhow::{Context, Result};
use camino::Utf8Path;

use crate::model::definitions;
use crate::model::layout::Layout;
use crate::state::events::Event;
use crate::state::{jsonl, logs};

pub fn run(
    layout: &Layout,
    follow: bool,
    task: Option<&str>,
    json: bool,
    lines: Option<usize>,
) -> Result<i32> {
    let typed = task.map(|typed| layout.typed_id(typed));
    let task = typed.as_deref();
    let path = layout.events_file();
    let mut file = match open(&path) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "no events yet: {} is written by a run",
                layout.display(&path)
            );
            return Ok(crate::exit::SUCCESS);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open {path}")),
    };
    let mut out = std::io::stdout().lock();
    // A line still being written stays here until its newline comes.
    let mut pending = Vec::new();
    let mut printed = 0;
    // Lines read, to name one that is not an event; not known after the
    // last `n` were read from the end.
    let mut number = Some(0);
    let events_file = layout.display(&path);
    if let (Some(n), Some(file)) = (lines, &mut file) {
        printed = print_last(&mut out, file, n, task, json, events_file)
            .with_context(|| format!("cannot read {path}"))?;
        number = None;
    }
    loop {
        if file.is_none() {
            file = open(&path).ok();
        }
        if let Some(file) = &mut file {
            // From where the last read stopped: the file only grows
            // (but for a replacement, below).
            read_lines(file, &mut pending, |line| {
                let text = String::from_utf8_lossy(line);
                number = number.map(|n| n + 1);
                match print_line(&mut out, text.trim_end(), task, json)? {
                    Some(shown) => printed += usize::from(shown),
                    None if !text.trim().is_empty() => not_an_event(events_file, number),
                    None => {}
                }
                Ok(())
            })
            .with_context(|| format!("cannot read {path}"))?;
            out.flush()?;
        }
        // Removed and made again (a `rm` of it, a new workspace): the new
        // one is read from its start.
        if follow
            && file
                .as_ref()
                .is_some_and(|f| crate::sys::replaced(&path, f))
        {
            file = None;
            pending.clear();
            number = Some(0);
            continue;
        }
        if !follow {
            if let (Some(id), 0, false) = (task, printed, lines == Some(0)) {
                // A task that does not exist gets the nearest id (a task
                // removed since still has its events).
                if !layout.task_file(id).is_file() {
                    definitions::suggest_task(layout, id)?;
                }
                eprintln!("no events of task `{id}` yet");
            }
            return Ok(crate::exit::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Hands each whole line that `file` holds from where it was last read
/// to `each`, a block at a time; `pending` keeps a last line still being
/// written until its newline comes. The file of a long-lived workspace
/// holds millions of lines: read whole, and each line taken off its front
/// (moving what followed), it took minutes per 10 MB, and as much memory
/// as the file.
fn read_lines(
    file: &mut File,
    pending: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut block = vec![0; 1 << 16];
    loop {
        let n = match file.read(&mut block) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        pending.extend_from_slice(&block[..n]);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            each(&pending[start..=start + end])?;
            start += end + 1;
        }
        pending.drain(..start);
    }
}

/// Prints the last `n` events `file` holds (of `task`, with one), oldest
/// first, and leaves the file where `-f` goes on: after them, at the start
/// of a last line still being written. A long-lived workspace's file holds
/// months of runs: it is read back from its end only as far as those `n`
/// go. Returns how many it printed.
fn print_last(
    out: &mut impl Write,
    file: &mut File,
    n: usize,
    task: Option<&str>,
    json: bool,
    shown: &Utf8Path,
) -> Result<usize> {
    let end = file.metadata()?.len();
    let mut last_byte = [b'\n'];
    if end > 0 {
        file.read_exact_at(&mut last_byte, end - 1)?;
    }
    let resume = match last_byte {
        [b'\n'] => end,
        _ => logs::start_of_last_lines(file, 1)?,
    };
    // The events, newest first, and among them the lines that are none
    // (`None`), said as `events` says them.
    let mut read: Vec<Option<String>> = Vec::new();
    let mut events = 0;
    for line in jsonl::lines_before(file, resume) {
        if events == n {
            break;
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        match event_of(&line, task) {
            Some(Some(_)) => {
                events += 1;
                read.push(Some(line));
            }
            None if !line.trim().is_empty() => read.push(None),
            _ => {}
        }
    }
    for line in read.iter().rev() {
        match line {
            Some(line) => {
                print_line(out, line, task, json)?;
            }
            None => not_an_event(shown, None),
        }
    }
    file.seek(SeekFrom::Start(resume))?;
    Ok(events)
}

/// Says that a line of the events file `shown` (its `number`, when
/// known) is no event: a line cut by a kill (the next append ends it), or
/// edited; it is not passed on as one.
fn not_an_event(shown: &Utf8Path, number: Option<usize>) {
    eprintln!(
        "warning: {shown}{}: not an event (a line cut by a kill, or edited): skipped",
        number.map(|n| format!(":{n}")).unwrap_or_default()
    );
}

/// The event on `line` if it is one of `task`'s (or any, without a task):
/// `None` when the line is no event, `Some(None)` when it is another
/// task's.
fn event_of(line: &str, task: Option<&str>) -> Option<Option<Event>> {
    let event = serde_json::from_str::<Event>(line).ok()?;
    // Every field but `time` may be absent, so any object with a time
    // reads as one: an event names its kind, or the task that changed.
    if event.event.is_none() && event.task.is_none() {
        return None;
    }
    Some(Some(event).filter(|e| task.is_none_or(|id| e.task.as_deref() == Some(id))))
}

/// Prints the event on `line` if it is one of `task`'s (or any, without
/// a task); returns whether it printed it, `None` when it is no event.
fn print_line(
    out: &mut impl Write,
    line: &str,
    task: Option<&str>,
    json: bool,
) -> Result<Option<bool>> {
    let Some(event) = event_of(line, task) else {
        return Ok(None);
    };
    let Some(event) = event else {
        return Ok(Some(false));
    };
    if json {
        writeln!(out, "{line}")?;
    } else {
        writeln!(out, "{}", describe(&event))?;
    }
    Ok(Some(true))
}

/// `2026-12-01T00:42:00.347Z  p/t1  running -> failed  attempt 1, agent-1: exit code 3`.
fn describe(e: &Event) -> String {
    let mut text = format!("{}  ", e.time);
    match (&e.event, &e.task) {
        (Some(kind), Some(task)) => text += &format!("{kind}  {task}"),
        (Some(kind), None) => text += kind,
        (None, Some(task)) => {
            text += &format!(
                "{task}  {} -> {}",
                e.from.as_deref().unwrap_or("?"),
                e.to.as_deref().unwrap_or("?")
            )
        }
        (None, None) => {}
    }
    let mut details = Vec::new();
    if let Some(attempt) = e.attempt {
        details.push(format!("attempt {attempt}"));
    }
    if let Some(agent) = e.agent {
        details.push(agent.to_string());
    }
    if let Some(cost) = e.cost_usd {
        details.push(crate::ui::format::usd(cost));
    }
    if let (Some(until), Some(pool)) = (&e.until, &e.pool) {
        details.push(format!("pool {pool} until {until}"));
    }
    if let (Some(budget), Some(spent)) = (e.budget_usd, e.spent_usd) {
        details.push(format!(
            "{} of {} spent",
            crate::ui::format::usd(spent),
            crate::ui::format::usd(budget)
        ));
    }
    if let Some(code) = e.exit_code {
        details.push(format!("exit code {code}"));
    }
    if let Some(by) = &e.blocked_by {
        details.push(format!("blocked by {by}"));
    }
    if !details.is_empty() {
        text += &format!("  {}", details.join(", "));
    }
    if let Some(by) = &e.by {
        text += &format!("  by {by}");
    }
    if let Some(error) = e.error.as_ref().or(e.note.as_ref()) {
        text += &format!(": {error}");
    }
    text
}

/// `workspace/events.jsonl` open for reading: a FIFO or a device put
/// there is refused, not waited on (its reader waited for a writer for
/// good).
fn open(path: &Utf8Path) -> std::io::Result<File> {
    let file = crate::sys::open_nonblocking(path.as_std_path())?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a FIFO, a socket or a device): remove it; a run writes it again",
        ));
    }
    Ok(file)
}
