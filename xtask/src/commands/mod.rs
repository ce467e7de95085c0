//! One file per command, named like it.

pub mod block;
pub mod graph;
pub mod logs;
pub mod new;
pub mod orchestrate;
pub mod progress;
pub mod report;
pub mod validate;
pub mod why;
