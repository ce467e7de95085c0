//! Thin wrappers over the operating system: process groups, signals, and
//! quoting for the shell.

pub mod process;
pub mod shell;
pub mod signals;
