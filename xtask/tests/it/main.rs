//! Integration tests: the real binary on task trees in temporary folders,
//! with real processes, signals and files.

mod agents;
mod approvals;
mod branches;
mod cache;
mod commands;
mod core;
mod events;
mod firsthour;
mod invalid;
mod limits;
mod order;
mod phases;
mod prompts;
mod reliability;
mod slurm;
mod tree;
mod user_repo;
mod views;
mod worktrees;
