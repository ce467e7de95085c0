//! Thin wrappers over the operating system: process groups, signals,
//! quoting for the shell, and work spread over the CPUs.

pub mod parallel;
pub mod process;
pub mod shell;
pub mod signals;
