//! Thin wrappers over the operating system: process groups, signals,
//! waiting on file descriptors, quoting for the shell, and work spread over
//! the CPUs.

pub mod parallel;
pub mod poll;
pub mod process;
pub mod shell;
pub mod signals;
