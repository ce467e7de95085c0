//! `logs <task> [-f] [--attempt N]`: prints or follows a task's log.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::layout::Layout;
use crate::status::{self, State};

pub fn run(layout: &Layout, id: &str, follow: bool, attempt: Option<u32>) -> Result<i32> {
    let latest = status::read(layout, id)
        .ok()
        .flatten()
        .map_or(0, |s| s.attempt);
    let path = match attempt {
        Some(n) if n == 0 || (latest > 0 && n > latest) => {
            bail!("{id} has no attempt {n}: its attempts are 1 to {latest}")
        }
        Some(n) if n < latest => layout.attempt_log_file(id, n),
        _ => layout.log_file(id),
    };
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "{id} has no log yet ({} does not exist): it has not run",
                layout.display(&path)
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open {path}")),
    };
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut file, &mut out).with_context(|| format!("cannot read {path}"))?;
    if !follow {
        return Ok(crate::exit::SUCCESS);
    }
    // Follow while the task runs, like `tail -f`, then print what is left.
    loop {
        let running = matches!(status::read(layout, id), Ok(Some(s)) if s.status == State::Running);
        let position = file.stream_position().unwrap_or(0);
        let mut chunk = Vec::new();
        file.seek(SeekFrom::Start(position))?;
        file.read_to_end(&mut chunk)
            .with_context(|| format!("cannot read {path}"))?;
        out.write_all(&chunk)?;
        out.flush()?;
        if !running {
            return Ok(crate::exit::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
