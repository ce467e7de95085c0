//! `bench`: measures the orchestrator against GNU make, ninja and a spawn
//! floor on generated graphs (see BENCHMARKS.md).

use anyhow::Result;

use crate::flags;
use crate::layout::Layout;

pub fn run(_layout: &Layout, _args: &flags::Bench) -> Result<i32> {
    anyhow::bail!("not written yet")
}
