//! What the user sees: event lines, the live view, formatting.

pub mod format;
pub mod live;
pub mod printer;
pub mod progress;
pub mod progress_text;

use std::io::IsTerminal;

/// Whether stdout is a terminal that acts on escape sequences (colours, a
/// frame redrawn in place). One whose `TERM` is `dumb` (an editor's shell
/// buffer) or unset would show them as text, and indicatif draws nothing
/// there: a live view on it would stay blank.
pub fn stdout_takes_escapes() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("TERM").is_some_and(|term| term != "dumb")
}
