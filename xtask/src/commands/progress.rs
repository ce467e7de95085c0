//! `progress`: the dashboard per phase, read from the status files alone
//! (no lock, no task parsing), as text or as one JSON document.

use anyhow::Result;

use crate::model::config::Config;
use crate::model::discovery::Discovery;
use crate::model::layout::Layout;
use crate::model::task::phase_key;
use crate::state::{outputs, status};
use crate::ui::live;
use crate::ui::progress::{self, Builder, Progress, Seen, Usage};

pub fn run(layout: &Layout, json: bool) -> Result<i32> {
    let progress = collect(layout);
    if json {
        println!("{}", serde_json::to_string_pretty(&progress)?);
    } else {
        progress::print(&progress);
    }
    Ok(crate::exit::SUCCESS)
}

/// `progress --watch`: the live view of a run started elsewhere.
pub fn watch(layout: &Layout) -> ! {
    live::watch(layout, || collect(layout))
}

/// The dashboard, from the task files' names and the status files.
pub fn collect(layout: &Layout) -> Progress {
    let config = Config::load(&layout.config_file()).unwrap_or_default();
    let mut builder = Builder::new();
    let mut warnings = Vec::new();
    for file in Discovery::scan(&layout.tasks).files {
        let Some(id) = layout.task_id(&file) else {
            continue;
        };
        let Some((phase, _)) = id.split_once('/') else {
            continue;
        };
        let status = status::read_or_warn(layout, id, &mut warnings);
        builder.add(
            phase,
            id,
            Seen::of(status.as_ref()),
            Usage::of(status.as_ref()),
        );
    }
    let missing =
        |phase: &str| outputs::missing_artifacts(layout, &config.phase(phase_key(phase)).requires);
    builder.finish(config.title(layout), missing, warnings)
}
