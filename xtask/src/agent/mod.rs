//! What agent CLIs print, read: their results (verdict, cost, tokens,
//! session), the messages that say a rate limit was hit and when it resets,
//! the prompts that wait for an answer nobody gives, and a line as a
//! terminal shows it. Pure functions
//! over text, tested against recorded outputs (`tests/fixtures/agents/`).

pub mod limits;
pub mod prompts;
pub mod result;
pub mod terminal;
