//! What the user sees: event lines, the live view, formatting.

pub mod format;
pub mod live;
pub mod printer;
pub mod progress;
pub mod progress_text;
