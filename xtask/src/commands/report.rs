//! `report`: `workspace/report.html`, one self-contained file (no script, no
//! network): a Gantt chart of the last run with one lane per agent slot and
//! a bar per attempt (retries and timeouts too), the critical path against
//! the run's wall time, the parallelism reached per phase against its
//! limit, and a table per phase. The timeline comes from
//! `workspace/events.jsonl` (each attempt's start and end on one clock), the
//! tables from the status files.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::model::definitions::Definitions;
use crate::model::graph::{Dep, Graph};
use crate::model::layout::Layout;
use crate::run::admission::Admission;
use crate::run::plan;
use crate::run::unseen::{EndedUnseen, SlurmEnds};
use crate::state::events::{self, Event};
use crate::state::runs;
use crate::state::status::{self, AgentSlot, Ending, State, Status};
use crate::ui::format;
use crate::ui::progress_text::rate_limited;

/// How a bar of a task whose process is gone, its end not recorded,
/// ends (its class).
const GONE: &str = "gone";
/// How a bar ends whose work a stopped run left in the merge queue: its
/// attempt's end is recorded, and the next run merges it.
const MERGING: &str = "merging";

/// An attempt of the last run, placed in time (seconds since the run
/// began).
struct Bar {
    t: usize,
    lane: usize,
    start: f64,
    end: f64,
    /// How it ended: `None` while it runs.
    to: Option<String>,
    ending: Option<Ending>,
    error: Option<String>,
}

impl Bar {
    /// Ends the bar of an attempt whose process is gone, its end never
    /// recorded, at `at` at the latest: `since` says what came then.
    fn end_unrecorded(&mut self, at: f64, since: &str) {
        self.end = at.max(self.start);
        self.to = Some(GONE.to_owned());
        self.error = Some(format!(
            "its process is gone, its end not recorded: {since}"
        ));
    }
}

pub fn run(layout: &Layout) -> Result<i32> {
    let defs = crate::model::definitions::load(layout)?;
    let mut warnings = Vec::new();
    let html = render(layout, &defs, &mut warnings);
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    let path = layout.report_file();
    crate::state::atomic::write(&path, html.as_bytes())?;
    println!("wrote {}", layout.display(&path));
    Ok(crate::exit::SUCCESS)
}

fn render(layout: &Layout, defs: &Definitions, warnings: &mut Vec<String>) -> String {
    let graph = &defs.graph;
    let statuses: Vec<Option<Status>> = graph
        .tasks
        .iter()
        .map(|t| status::read_or_warn(layout, &t.id, warnings))
        .collect();
    // The timeline is of the last run that started a task (one that found
    // nothing left to do would leave it empty); tasks done in earlier runs
    // are in the tables.
    let (events, last_run) = events::since_last_start(layout);
    let last_run = last_run.or_else(|| runs::last(layout).map(|run| run.id));
    let unseen = ended_unseen(layout, defs, &statuses);
    // A task recorded as running whose attempt ended unseen ran until its
    // end, or, with none known, as far as anyone knows: until now; and
    // whether its work is left in the merge queue.
    let gone = |t: usize| {
        let s = statuses[t].as_ref()?;
        let ended = unseen[t]
            .as_ref()?
            .ended_at()
            .unwrap_or_else(SystemTime::now);
        let ended = ended
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        Some((ended, s.merging))
    };
    let (bars, run_cost) = place(graph, &events, last_run.as_deref(), &gone);
    let wall = bars.iter().map(|b| b.end).fold(0.0, f64::max);
    let ran: std::collections::BTreeSet<usize> = bars.iter().map(|b| b.t).collect();
    let completed = statuses
        .iter()
        .filter(|s| s.as_ref().is_some_and(|s| s.status == State::Completed))
        .count();
    let (critical, critical_len) = critical_path(defs, &statuses);
    // The config's `title`, or the root's folder name: any text.
    let title = esc(&defs.config.title(layout));

    let mut html = String::new();
    write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title} report</title><style>{CSS}</style></head><body>\
         <h1>{title}: run report</h1>\
         <p>Last run: {} ran, {}, {}; {completed} of {} completed in all; critical path {} ({}).</p>",
        format::counted(ran.len(), "task", "tasks"),
        format::counted(bars.len(), "attempt", "attempts"),
        format::seconds(wall),
        graph.tasks.len(),
        format::seconds(critical_len),
        critical_against(&critical, critical_len, &ran, wall),
    )
    .unwrap();
    if let Some(cost) = run_cost {
        write!(
            html,
            "<p>The last run's attempts cost {}, as the agents reported; {} over every attempt of every run (<code>workspace/ledger.jsonl</code>).</p>",
            format::usd(cost),
            format::usd(crate::state::ledger::read(layout).spent)
        )
        .unwrap();
    }
    html.push_str(&gantt(defs, &bars, wall, &critical));
    html.push_str("<h2>Critical path</h2><ol class=\"critical\">");
    for &t in &critical {
        let secs = statuses[t]
            .as_ref()
            .and_then(|s| s.duration_seconds)
            .unwrap_or(0.0);
        write!(
            html,
            "<li>{} <span>{}</span></li>",
            esc(&graph.tasks[t].id),
            format::seconds(secs)
        )
        .unwrap();
    }
    html.push_str("</ol>");
    // The last run's `-j` (kept once it ended), which overrides
    // `max_concurrent_agents`: the limits it ran under.
    let jobs = runs::last(layout).and_then(|run| run.jobs);
    let admission = Admission::new(&defs.config, jobs, defs.config.executor);
    html.push_str(&parallelism(defs, &bars, &admission));
    html.push_str(&tables(layout, defs, &statuses, &unseen));
    html.push_str("</body></html>\n");
    html
}

/// Each attempt of run `run_id` (every run, when there is no run file),
/// from its start event to its end event; lanes are the agent slots. One
/// with no end event whose process is gone (`gone`: when it ended, and
/// whether its work is left in the merge queue) ends `gone` (`merging`).
/// With what the run's attempts cost, as their agents reported, those
/// whose end a later run told too.
fn place(
    graph: &Graph,
    events: &[Event],
    run_id: Option<&str>,
    gone: &dyn Fn(usize) -> Option<(f64, bool)>,
) -> (Vec<Bar>, Option<f64>) {
    let secs = |e: &Event| {
        e.at()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let mut bars: Vec<Bar> = Vec::new();
    let mut cost: Option<f64> = None;
    // Task -> its bar still open; its bar whose result awaits approval.
    let mut open: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut awaiting: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let of_run = |e: &&Event| run_id.is_none() || e.run_id.as_deref() == run_id;
    for event in events {
        let (Some(task), Some(from), Some(to)) = (&event.task, &event.from, &event.to) else {
            continue;
        };
        let (Some(t), Some(at)) = (graph.get(task), secs(event)) else {
            // No bar for a task whose file is gone since (removed,
            // renamed), but what its attempt cost was the run's all the
            // same, as the ledger counts it.
            if let Some(usd) = event.cost_usd.filter(|_| of_run(&event)) {
                *cost.get_or_insert(0.0) += usd;
            }
            continue;
        };
        if from == "awaiting_approval" {
            // Decided (by the run, or by `approve` or `reject` after it):
            // approved, its attempt completed the task; rejected, it
            // failed. (Pending again: its approval went stale.)
            if let Some(b) = awaiting
                .remove(&t)
                .filter(|_| to == "completed" || to == "failed")
            {
                bars[b].to = Some(to.clone());
                // A rejection's reason.
                bars[b].error = event.error.clone().or(bars[b].error.take());
            }
        }
        // Moved on from running by a command with no run (`reset`,
        // `block`: they refuse a task that runs on): its process had gone,
        // its end never recorded; it ran until then at the latest.
        if event.run_id.is_none() && (from == "running" || from == "merging") {
            if let Some(b) = open.remove(&t) {
                bars[b].end_unrecorded(at, &format!("made {to} since"));
            }
            continue;
        }
        // The end of an attempt of the run that a later run told (one
        // that started no task: work the run left in the merge queue,
        // merged by the next) is that attempt's.
        let ends_open = (from == "running" || from == "merging") && open.contains_key(&t);
        if !of_run(&event) && !ends_open {
            continue;
        }
        if let Some(usd) = event.cost_usd {
            *cost.get_or_insert(0.0) += usd;
        }
        if to == "running" {
            // A bar still open of an attempt before it (gone with its
            // machine, its end never recorded, the workspace started over)
            // ended by then at the latest: a task runs one attempt at once.
            if let Some(b) = open.remove(&t) {
                bars[b].end_unrecorded(at, "a later attempt started");
            }
            open.insert(t, bars.len());
            bars.push(Bar {
                t,
                lane: event.agent.map_or(1, |a| a.0.max(1)),
                start: at,
                end: now,
                to: None,
                ending: None,
                error: None,
            });
        } else if from == "running" || from == "merging" {
            let Some(&b) = open.get(&t) else {
                continue;
            };
            let bar = &mut bars[b];
            // The agent's slot is free once it exits; a worktree task's
            // outcome comes with its merge's end.
            if from == "running" {
                // An end told before the start (a Slurm job's, by a run
                // before the end was clamped to it) ran for no time.
                bar.end = at.max(bar.start);
                bar.ending = event.ending;
            }
            if to == "merging" {
                continue;
            }
            open.remove(&t);
            bar.to = Some(to.clone());
            bar.error = event.error.clone();
            if to == "awaiting_approval" {
                awaiting.insert(t, b);
            }
        }
    }
    for (&t, &b) in &open {
        if let Some((ended, merging)) = gone(t) {
            bars[b].end = ended.max(bars[b].start);
            bars[b].to = Some(if merging { MERGING } else { GONE }.to_owned());
        }
    }
    let origin = bars.iter().map(|b| b.start).fold(f64::INFINITY, f64::min);
    for bar in &mut bars {
        bar.start -= origin;
        bar.end -= origin;
    }
    (bars, cost)
}

fn gantt(defs: &Definitions, bars: &[Bar], wall: f64, critical: &[usize]) -> String {
    const WIDTH: f64 = 1000.0;
    const LANE: f64 = 26.0;
    const LEFT: f64 = 70.0;
    let lanes = bars.iter().map(|b| b.lane).max().unwrap_or(0);
    let height = lanes as f64 * LANE + 30.0;
    let scale = if wall > 0.0 { WIDTH / wall } else { 0.0 };
    let mut svg = format!(
        "<h2>Timeline</h2><svg class=\"gantt\" viewBox=\"0 0 {} {height}\" width=\"{}\" height=\"{height}\">",
        LEFT + WIDTH + 10.0,
        LEFT + WIDTH + 10.0
    );
    for lane in 1..=lanes {
        let y = (lane - 1) as f64 * LANE;
        write!(
            svg,
            "<text x=\"4\" y=\"{}\" class=\"lane\">{}</text>",
            y + 17.0,
            AgentSlot(lane)
        )
        .unwrap();
    }
    for bar in bars {
        let id = &defs.graph.tasks[bar.t].id;
        let class = match (bar.to.as_deref(), bar.ending) {
            (None, _) => "running",
            (Some(GONE), _) => GONE,
            (Some(MERGING), _) => MERGING,
            (Some("completed"), _) => "completed",
            // It ran: its result waits for a person, not a failure.
            (Some("awaiting_approval"), _) => "awaiting",
            // A rate limit: no attempt counted, the task waits its pool.
            (Some("paused"), _) => "paused",
            (_, Some(Ending::Timeout | Ending::IdleTimeout)) => "timeout",
            _ => "failed",
        };
        let critical = if critical.contains(&bar.t) {
            " critical"
        } else {
            ""
        };
        let x = LEFT + bar.start * scale;
        // A pixel of gap between one attempt and the next in its lane.
        let w = ((bar.end - bar.start) * scale - 1.0).max(2.0);
        let y = (bar.lane - 1) as f64 * LANE + 3.0;
        let detail = match (&bar.error, class) {
            (Some(error), GONE) => {
                format!("{id}: {}, {error}", format::seconds(bar.end - bar.start))
            }
            (_, GONE | MERGING) => format!(
                "{id}: {}, {}",
                format::seconds(bar.end - bar.start),
                status::gone_note(class == MERGING)
            ),
            (Some(error), _) => {
                format!("{id}: {}, {error}", format::seconds(bar.end - bar.start))
            }
            (None, _) => format!("{id}: {}", format::seconds(bar.end - bar.start)),
        };
        write!(
            svg,
            "<rect class=\"bar {class}{critical}\" data-task=\"{}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{}\"><title>{}</title></rect>",
            esc(id),
            LANE - 6.0,
            esc(&detail)
        )
        .unwrap();
        if ["failed", "timeout"].contains(&class) {
            write!(
                svg,
                "<text class=\"mark\" x=\"{:.1}\" y=\"{:.1}\">✕</text>",
                x + 2.0,
                y + 15.0
            )
            .unwrap();
        }
    }
    write!(
        svg,
        "<text x=\"{LEFT}\" y=\"{}\" class=\"axis\">0</text>",
        height - 4.0
    )
    .unwrap();
    write!(
        svg,
        "<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>",
        LEFT + WIDTH,
        height - 4.0,
        format::seconds(wall)
    )
    .unwrap();
    svg.push_str("</svg><p class=\"legend\"><span class=\"completed\">completed</span> <span class=\"failed\">failed</span> <span class=\"timeout\">timed out</span> <span class=\"running\">running</span> <span class=\"awaiting\">its result awaiting approval</span> <span class=\"paused\">rate limited</span> <span class=\"gone\">process gone, end not recorded yet</span> <span class=\"merging\">its work left in the merge queue</span> <span class=\"critical\">on the critical path</span></p>");
    svg
}

/// What the critical path is compared with: the last run's wall time when
/// all of it ran in that run; a path some of whose tasks completed in
/// earlier runs says so (against one run's wall time it read 300 %).
fn critical_against(
    critical: &[usize],
    length: f64,
    ran: &std::collections::BTreeSet<usize>,
    wall: f64,
) -> String {
    if critical.is_empty() {
        return "no task has completed".to_owned();
    }
    if !critical.iter().all(|t| ran.contains(t)) {
        return "its tasks' latest attempts, some in earlier runs".to_owned();
    }
    let percent = if wall > 0.0 {
        length / wall * 100.0
    } else {
        0.0
    };
    format!("{percent:.0} % of the last run's wall time")
}

/// A step of `critical_path`'s walk: a task, or a phase's gate.
#[derive(Clone, Copy)]
enum Chain {
    Task(usize),
    Gate(usize),
}

/// The longest chain of completed work through the graph, by duration: a
/// task that failed, was blocked or never ran is on no such chain (it
/// breaks the chains through it).
fn critical_path(defs: &Definitions, statuses: &[Option<Status>]) -> (Vec<usize>, f64) {
    let graph = &defs.graph;
    let n = graph.tasks.len();
    let took = |t: usize| {
        (statuses[t].as_ref())
            .filter(|s| s.status == State::Completed)
            .map(|s| s.duration_seconds.unwrap_or(0.0))
    };
    let mut members = vec![Vec::new(); graph.phases.len()];
    for t in (0..n).filter(|&t| took(t).is_some()) {
        members[graph.phase_of[t]].push(t);
    }
    // Longest chain ending at each completed task, and the task ending
    // the longest through each phase's gate (its own tasks', or the
    // earlier gate's): a gate is worked out once, not for each task that
    // waits on it (10,000 tasks on a phase of 10,000 took seconds).
    let mut best: Vec<Option<(f64, Option<usize>)>> = vec![None; n];
    let mut gates: Vec<Option<Option<usize>>> = vec![None; graph.phases.len()];
    let longest = |best: &[Option<(f64, Option<usize>)>], ends: &mut dyn Iterator<Item = usize>| {
        let length = |t: usize| best[t].map_or(0.0, |b| b.0);
        ends.max_by(|&a, &b| length(a).total_cmp(&length(b)))
    };
    for start in (0..n).filter(|&t| took(t).is_some()) {
        let mut stack = vec![Chain::Task(start)];
        while let Some(&node) = stack.last() {
            let mut pending = Vec::new();
            match node {
                Chain::Task(t) if best[t].is_some() => {}
                Chain::Gate(p) if gates[p].is_some() => {}
                Chain::Task(t) => {
                    let mut preds = Vec::new();
                    for dep in &graph.deps[t] {
                        match *dep {
                            Dep::Task(d) if took(d).is_none() => {}
                            Dep::Task(d) if best[d].is_none() => pending.push(Chain::Task(d)),
                            Dep::Task(d) => preds.push(d),
                            Dep::Phase(p) => match gates[p] {
                                None => pending.push(Chain::Gate(p)),
                                Some(end) => preds.extend(end),
                            },
                        }
                    }
                    if pending.is_empty() {
                        let from = longest(&best, &mut preds.into_iter());
                        let before = from.map_or(0.0, |p| best[p].map_or(0.0, |b| b.0));
                        best[t] = Some((before + took(t).unwrap_or(0.0), from));
                    }
                }
                Chain::Gate(p) => {
                    // The gate before it in name order holds the rest.
                    let mut ends: Vec<usize> = Vec::new();
                    if let Some(q) = graph.phase_before(p) {
                        match gates[q] {
                            None => pending.push(Chain::Gate(q)),
                            Some(end) => ends.extend(end),
                        }
                    }
                    for &t in &members[p] {
                        match best[t] {
                            None => pending.push(Chain::Task(t)),
                            Some(_) => ends.push(t),
                        }
                    }
                    if pending.is_empty() {
                        gates[p] = Some(longest(&best, &mut ends.into_iter()));
                    }
                }
            }
            if pending.is_empty() {
                stack.pop();
            } else {
                stack.extend(pending);
            }
        }
    }
    let length = |t: usize| best[t].map_or(f64::NEG_INFINITY, |b| b.0);
    let Some(end) = (0..n)
        .filter(|&t| best[t].is_some())
        .max_by(|&a, &b| length(a).total_cmp(&length(b)))
    else {
        return (Vec::new(), 0.0);
    };
    let mut path = vec![end];
    while let Some(prev) = best[*path.last().unwrap()].and_then(|b| b.1) {
        path.push(prev);
    }
    path.reverse();
    (path, length(end))
}

/// The most tasks of each phase that ran at once, against its limit under
/// the run's `admission`: the phase's `max_parallel`, or all the run ran
/// at once where that is fewer, or, where fewer still, what the pools its
/// tasks are all in let run at once (named: the phase looked under-used
/// against a limit its pool never let it reach).
fn parallelism(defs: &Definitions, bars: &[Bar], admission: &Admission) -> String {
    let mut html = String::from("<h2>Parallelism per phase</h2><table><tr><th>phase</th><th>most at once</th><th>limit</th></tr>");
    for (p, phase) in defs.graph.phases.iter().enumerate() {
        // At one instant, ends come before starts (back to back is not at
        // once), but the end of a bar that ends where it starts (a Slurm
        // job within one of Slurm's whole seconds) comes after them: it
        // ran, with what runs then.
        let mut events: Vec<(f64, u8, i32)> = bars
            .iter()
            .filter(|b| defs.graph.phase_of[b.t] == p)
            .flat_map(|b| {
                [
                    (b.start, 1, 1),
                    (b.end, if b.end > b.start { 0 } else { 2 }, -1),
                ]
            })
            .collect();
        events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (mut now, mut most) = (0, 0);
        for (_, _, delta) in events {
            now += delta;
            most = most.max(now);
        }
        let limit = admission.phase_limit(&defs.graph, p).min(admission.jobs);
        let limit = match admission.pools_cap_of_phase(&defs.graph, p) {
            Some((cap, pools)) if cap < limit => {
                let noun = if pools.len() == 1 { "pool" } else { "pools" };
                format!("{cap} ({noun} {})", pools.join(", "))
            }
            _ => limit.to_string(),
        };
        write!(
            html,
            "<tr><td>{}</td><td>{most}</td><td>{}</td></tr>",
            esc(&phase.name),
            esc(&limit)
        )
        .unwrap();
    }
    html.push_str("</table>");
    html
}

/// Of the tasks whose `statuses` say running, those whose attempt ended
/// unseen, with what their agents printed (one look at Slurm for all).
fn ended_unseen(
    layout: &Layout,
    defs: &Definitions,
    statuses: &[Option<Status>],
) -> Vec<Option<EndedUnseen>> {
    let slurm = SlurmEnds::look(layout, statuses.iter().flatten());
    let tasks = defs.graph.tasks.iter().zip(statuses);
    tasks
        .map(|(task, s)| EndedUnseen::read(layout, &defs.config, task, s.as_ref()?, &slurm))
        .collect()
}

/// The tables of tasks by phase; `unseen`: the attempts that ended unseen
/// (`ended_unseen`), whose cost counts.
fn tables(
    layout: &Layout,
    defs: &Definitions,
    statuses: &[Option<Status>],
    unseen: &[Option<EndedUnseen>],
) -> String {
    let mut by_phase: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (t, task) in defs.graph.tasks.iter().enumerate() {
        by_phase.entry(task.phase()).or_default().push(t);
    }
    let blockers = status::shown_blockers(layout, &defs.graph, statuses);
    let pauses = plan::pauses(defs, status::pause_on(statuses));
    let pause = |t: usize| pauses.get(t).and_then(Option::as_ref);
    let states = status::shown_states(layout, &defs.graph, statuses, &blockers, |t| {
        pause(t).is_some()
    });
    // One listing of the branches for the whole table.
    let named = statuses
        .iter()
        .flatten()
        .filter_map(|s| s.branch.as_deref());
    let gone = crate::git::repo::branches_gone(layout, named);
    let mut html = String::from("<h2>Tasks</h2>");
    for (phase, tasks) in by_phase {
        write!(html, "<h3>{}</h3><table><tr><th>task</th><th>status</th><th>attempts</th><th>duration</th><th>exit code</th><th>CPU</th><th>peak memory</th><th>cost</th><th>tokens in/out</th><th>branch</th><th>error</th></tr>", esc(phase)).unwrap();
        let mut phase_cost = None;
        for t in tasks {
            let s = statuses[t].as_ref();
            let state = states[t];
            let unseen = unseen[t].as_ref().and_then(|unseen| unseen.report.as_ref());
            let agent = s.and_then(|s| s.agent.as_ref()).or(unseen);
            let cost = agent.and_then(|a| a.cost_usd);
            if let Some(cost) = cost {
                phase_cost = Some(phase_cost.unwrap_or(0.0) + cost);
            }
            let tokens = agent
                .filter(|a| a.input_tokens.is_some() || a.output_tokens.is_some())
                .map(|a| {
                    format!(
                        "{} / {}",
                        a.input_tokens.unwrap_or(0),
                        a.output_tokens.unwrap_or(0)
                    )
                });
            write!(
                html,
                "<tr class=\"{state}\"><td>{}</td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&defs.graph.tasks[t].id),
                s.map_or(0, |s| s.attempt),
                s.and_then(|s| s.duration_seconds).map(format::seconds).unwrap_or_default(),
                s.and_then(|s| s.exit_code).map(|c| c.to_string()).unwrap_or_default(),
                s.and_then(|s| s.cpu_seconds).map(|c| format!("{c:.1} s")).unwrap_or_default(),
                s.and_then(|s| s.peak_memory_mb).map(|m| format!("{m:.0} MiB")).unwrap_or_default(),
                cost.map(format::usd).unwrap_or_default(),
                tokens.unwrap_or_default(),
                esc(&branch_cell(s, &gone)),
                esc(&match pause(t) {
                    // As `progress` says it, of a task that never ran too.
                    Some(pause) => rate_limited(&format::clock(pause.until), &pause.pool),
                    None => s.filter(|_| state != "pending").and_then(|s| s.error.as_deref().or(blockers[t].as_ref().and_then(|by| by.as_deref()))).unwrap_or("").to_owned(),
                }),
            )
            .unwrap();
        }
        html.push_str("</table>");
        if let Some(cost) = phase_cost {
            write!(
                html,
                "<p>Phase cost (latest attempts): {}</p>",
                format::usd(cost)
            )
            .unwrap();
        }
    }
    html
}

/// A worktree task's branch, the commit its work was merged as, and
/// whether the branch is `gone` since (as `why` says it).
fn branch_cell(status: Option<&Status>, gone: &HashSet<String>) -> String {
    let Some(branch) = status.and_then(|s| s.branch.as_ref()) else {
        return String::new();
    };
    let merged = (status.and_then(|s| s.merged_commit.as_ref()))
        .map(|commit| format!("merged as {}", &commit[..commit.len().min(12)]));
    let removed = gone.contains(branch).then(|| "removed since".to_owned());
    let notes: Vec<String> = merged.into_iter().chain(removed).collect();
    if notes.is_empty() {
        branch.clone()
    } else {
        format!("{branch} ({})", notes.join(", "))
    }
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}\
.gantt .lane,.gantt .axis{font-size:11px;fill:#555}.bar.completed{fill:#81c784}.bar.failed{fill:#e57373}\
.bar.timeout{fill:#ffb74d}.bar.running{fill:#64b5f6}.bar.gone{fill:#bdbdbd}.bar.merging{fill:#ce93d8}.bar.awaiting{fill:#4dd0e1}.bar.paused{fill:#fff176}.bar.critical{stroke:#212121;stroke-width:2}\
.mark{font-size:12px;fill:#b71c1c}.legend span{padding:2px 6px;margin-right:6px;border-radius:3px}\
.legend .completed{background:#81c784}.legend .failed{background:#e57373}.legend .timeout{background:#ffb74d}\
.legend .running{background:#64b5f6}.legend .gone{background:#bdbdbd}.legend .merging{background:#ce93d8}.legend .awaiting{background:#4dd0e1}.legend .paused{background:#fff176}.legend .critical{border:2px solid #212121}\
tr.failed td{background:#ffebee}tr.blocked td{background:#fff3e0}tr.awaiting_approval td{background:#e1f5fe}\
tr.stale td{background:#f9fbe7}tr.paused td{background:#fffde7}.critical span{color:#777}";
