//! `next`: the tasks that would start now, in order, and what the first
//! waiting ones wait on. Reads only; takes no lock.

use anyhow::Result;

use crate::commands::orchestrate;
use crate::model::layout::Layout;
use crate::run::plan::Plan;
use crate::run::Options;

pub fn run(layout: &Layout) -> Result<i32> {
    let defs = orchestrate::load(layout, &|_| true)?;
    let options = Options::of_the_run_going_on(&defs.layout, defs.config.executor);
    Ok(Plan::new(&defs, &options).next())
}
