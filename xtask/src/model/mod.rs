//! What the user wrote, read and checked: where things live, the config,
//! branch names, task files, prompt templates, the checked graph, and the
//! problems found in them.

pub mod argv;
pub mod branch;
pub mod cache;
pub mod config;
pub mod definitions;
pub mod discovery;
pub mod graph;
pub mod layout;
pub mod mark;
pub mod problem;
pub mod prompt;
pub mod task;
pub mod yaml;
