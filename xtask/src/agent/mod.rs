//! What agent CLIs print, read: their results (verdict, cost, tokens,
//! session), the messages that say a rate limit was hit and when it resets,
//! and the prompts that wait for an answer nobody gives. Pure functions
//! over text, tested against recorded outputs (`tests/fixtures/agents/`).

pub mod limits;
pub mod prompts;
pub mod result;
