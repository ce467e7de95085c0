//! Git: tasks in worktrees of their own and the merge queue that brings
//! their commits into the integration branch. `repo.rs` is the only code
//! that runs git (each process started by `command.rs`).

pub mod cleaning;
mod command;
pub mod merge;

pub use command::{a_start_cut_short, starts_stopped, stop_starts};
pub mod repo;
pub mod worktrees;
