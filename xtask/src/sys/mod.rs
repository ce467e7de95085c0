//! Thin wrappers over the operating system: process groups and signals.

pub mod process;
pub mod signals;
