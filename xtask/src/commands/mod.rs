//! One file per command, named like it.

pub mod approve;
pub mod block;
pub mod clean;
pub mod demo;
pub mod events;
pub mod graph;
pub mod init;
pub mod launch;
pub mod logs;
pub mod monitor;
pub mod new;
pub mod next;
pub mod orchestrate;
pub mod progress;
pub mod prompt;
pub mod report;
pub mod reset;
pub mod validate;
pub mod why;
