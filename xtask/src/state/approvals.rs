//! Approvals, `workspace/approvals/<task id>.json`: a person's decision on
//! a task that waits for one (`approve: before | after`), written by
//! `approve` and `reject` (from any terminal, while a run goes on) and read
//! by the run, which then records it in the task's status. The run never
//! writes these files, so a decision cannot be lost to a status the run
//! writes at the same moment.

use serde::{Deserialize, Serialize};

use anyhow::{Context, Result};

use crate::model::config::Config;
use crate::model::graph::Graph;
use crate::model::layout::Layout;
use crate::model::mark::Mark;
use crate::model::task::Task;
use crate::state::fingerprint::{self, Fingerprint};
use crate::state::status::{State, Status};
use crate::state::{atomic, outputs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approved,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub decision: Decision,
    pub by: String,
    pub at: String,
    /// The note of an approval, the reason of a rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What was approved: the task file and inputs (and the outputs of a
    /// task approved after it ran). When one changes, the approval is
    /// revoked.
    pub seen: Fingerprint,
}

/// What an approval of task `t` covers, as it is now: its task file and
/// inputs (one not made yet marked absent, a glob input also by what it
/// matches), for a task given a prompt what the prompt is made of (its
/// template's own file, and the outputs of the completed tasks it names
/// as dependencies, which the prompt quotes), and `with_outputs` its
/// outputs.
pub fn seen(
    layout: &Layout,
    config: &Config,
    graph: &Graph,
    t: usize,
    with_outputs: bool,
) -> Fingerprint {
    let task = &graph.tasks[t];
    let mut files = vec![task.file.clone()];
    files.extend(fingerprint::inputs(layout, task));
    if with_outputs {
        files.extend(outputs::existing(layout, task));
    }
    let mut seen = fingerprint::of_all(layout, &files);
    seen.extend(fingerprint::input_listings(layout, task));
    if let Some(template) = task.prompt_template(config) {
        // A template written in the config is part of it: the config's
        // other settings do not revoke approvals.
        let mut quoted = Vec::new();
        if template.file != layout.config_file() {
            quoted.push(template.file.clone());
        }
        // Those of a dependency still to run (again) are not what the
        // person saw: an approval given ahead of time holds.
        let completed = |d: usize| {
            crate::state::status::state_of(layout, &graph.tasks[d].id) == Some(State::Completed)
        };
        quoted.extend(fingerprint::quoted_outputs(layout, graph, t, completed));
        seen.extend(fingerprint::of(layout, &quoted));
        seen.extend(fingerprint::output_listings(layout, graph, t, completed));
    }
    seen
}

/// The decision on `task`, if one was made and still holds: an approval
/// whose files changed since is revoked (`None`; a new approval replaces
/// its file). Its task file is judged as this command read it (`task`).
pub fn read(layout: &Layout, task: &Task) -> Option<Approval> {
    let (decision, changed) = read_as_it_stands(layout, task)?;
    changed.is_none().then_some(decision)
}

/// An approval of `task` that does not hold for this command, with why
/// (`the approval by alice no longer holds: tasks/p/a.md changed since`);
/// `read` takes it for none.
pub fn revoked(layout: &Layout, task: &Task) -> Option<Revoked> {
    let (approval, changed) = read_as_it_stands(layout, task)?;
    let changed = changed?;
    let by = &approval.by;
    let own_file = task.file.strip_prefix(&layout.root).unwrap_or(&task.file);
    // Given for the file as it is now, which this command did not read: a
    // run reads each task file once, and runs what it read.
    let edited_since_read = changed == own_file.as_str()
        && (approval.seen.get(own_file.as_str()))
            .is_some_and(|seen| Mark::of_file(&task.file).is_ok_and(|now| now.hash == seen.hash));
    let said = match edited_since_read {
        true => format!(
            "the approval by {by} is of {own_file} as it is now, edited after this run read it: the next run, which reads it again, acts on it"
        ),
        false => format!("the approval by {by} no longer holds: {changed} changed since"),
    };
    Some(Revoked {
        approval,
        said,
        for_the_next_run: edited_since_read,
    })
}

/// An approval that does not hold for the command that reads it.
pub struct Revoked {
    pub approval: Approval,
    /// Why, in words.
    pub said: String,
    /// It holds for the file as it is now, which this run did not read:
    /// the next run acts on it (not revoked, only not this run's).
    pub for_the_next_run: bool,
}

/// The decision on `task`, and for an approval the first file that
/// changed since it was given.
fn read_as_it_stands(layout: &Layout, task: &Task) -> Option<(Approval, Option<String>)> {
    let text = std::fs::read_to_string(layout.approval_file(&task.id)).ok()?;
    let decision: Approval = serde_json::from_str(&text).ok()?;
    let changed = match decision.decision {
        Decision::Approved => fingerprint::changed(layout, &decision.seen, Some(task), &task.id),
        Decision::Rejected => None,
    };
    Some((decision, changed))
}

pub fn write(layout: &Layout, id: &str, approval: &Approval) -> Result<()> {
    let path = layout.approval_file(id);
    let dir = path.parent().expect("an approval file has a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
    atomic::write(&path, &serde_json::to_vec_pretty(approval)?)
}

/// Forgets the decision on `id` (`reset`).
pub fn remove(layout: &Layout, id: &str) {
    let _ = std::fs::remove_file(layout.approval_file(id));
}

/// Records `approval` in `status`.
pub fn record(status: &mut Status, approval: &Approval) {
    status.approved_by = Some(approval.by.clone());
    status.approved_at = Some(approval.at.clone());
    status.approval_note = approval.note.clone();
}
