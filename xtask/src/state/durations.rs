//! `workspace/history.json`: how long each task took when it last
//! completed, by task id, across runs; kept when statuses are cleared
//! (`reset`, or `rm -rf workspace/status`). What the run's order and its
//! ETA expect of a task (see `run::order`).

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::layout::Layout;
use crate::model::yaml::LONGEST;
use crate::state::atomic;

#[derive(Debug, Default, Deserialize)]
pub struct Durations {
    /// Seconds, by task id. Hashed: read for 100,000 tasks on every run,
    /// where a sorted map compared strings some seventeen times per entry.
    pub tasks: HashMap<String, f64>,
    /// Why the file could not be read, when it is there but could not:
    /// for every command that shows expected durations to say.
    #[serde(skip)]
    pub unread: Option<String>,
}

impl Durations {
    /// What the file holds (nothing when there is none, or it is not
    /// readable: the order then knows less, nothing breaks).
    /// A duration that no task can have taken (negative, or over a
    /// century: the file was edited by hand) is left out the same way.
    pub fn load(layout: &Layout) -> Durations {
        Durations::load_to_change(layout).unwrap_or_else(|e| Durations {
            unread: Some(format!(
                "{e:#}: expected durations are guessed (the phase's median, else 1 s) until it is mended"
            )),
            ..Durations::default()
        })
    }

    /// `load`, to add to and save: an error when the file is there but
    /// cannot be read (saving would lose what it held).
    pub fn load_to_change(layout: &Layout) -> Result<Durations> {
        let mut durations: Durations = atomic::read_to_change(&layout.durations_file())?;
        durations.tasks.retain(|_, seconds| plausible(*seconds));
        Ok(durations)
    }

    /// Writes the file, atomically.
    pub fn save(&self, layout: &Layout) -> Result<()> {
        // In the order of the ids, as a person reading it expects.
        let file = Sorted {
            tasks: self.tasks.iter().map(|(id, &s)| (id.as_str(), s)).collect(),
        };
        atomic::write(&layout.durations_file(), &serde_json::to_vec(&file)?)
    }
}

/// Whether a task can have taken `seconds`: not negative, not over a
/// century (what a timeout can be). Any other was edited by hand, in this
/// file or a status, and counts for nothing known.
pub fn plausible(seconds: f64) -> bool {
    (0.0..=LONGEST.as_secs_f64()).contains(&seconds)
}

/// The file as written: `Durations` by id.
#[derive(Serialize)]
struct Sorted<'a> {
    tasks: BTreeMap<&'a str, f64>,
}
