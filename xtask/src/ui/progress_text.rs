//! The dashboard as text: `progress`, `progress --tasks`, and the lines
//! the live view shares with them.

use crate::model::config::UNNAMED_POOL;
use crate::state::status;
use crate::ui::format;
use crate::ui::printer::{Printer, Tone};
use crate::ui::progress::{BudgetLine, Counts, PausedTask, Progress};

fn bar(percent: u32) -> String {
    const WIDTH: usize = 20;
    let filled = (percent as usize * WIDTH / 100).min(WIDTH);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(WIDTH - filled))
}

/// Every task on a line: its state, id, attempt and what went wrong.
pub fn print_tasks(progress: &Progress) {
    // Ids line up: ten wide, as most states fit, or as the widest shown
    // (`awaiting_approval`).
    let width = (progress.tasks.iter())
        .map(|task| task.state.len())
        .fold(10, usize::max);
    for task in &progress.tasks {
        let mut line = format!("{:<width$} {}", task.state, task.task_id);
        if task.attempt > 0 {
            line += &format!("  attempt {}", task.attempt);
        }
        if let Some(agent) = task.agent_id {
            line += &format!("  {agent}");
        }
        if task.process_gone {
            line += &format!("  {}", status::gone_note(task.state == "merging"));
        }
        // A paused task's error is its CLI's words, which may end in the
        // epoch it resets at: said as the dashboard says it.
        match (&task.rate_limited_until, &task.error) {
            (Some(until), _) => {
                line += &format!("  {}", paused_until(Some(until), task.pool.as_deref()))
            }
            (None, Some(error)) => line += &format!("  {error}"),
            (None, None) => {}
        }
        if let Some(cost) = task.cost_usd {
            line += &format!("  {}", format::usd(cost));
        }
        if let Some(by) = &task.blocked_by {
            line += &format!("  blocked by {by}");
        }
        if let Some(branch) = &task.branch {
            line += &format!("  {branch}");
            if task.branch_removed {
                line += " (removed since)";
            }
        }
        if let Some(commit) = &task.merged_commit {
            line += &format!("  merged as {}", &commit[..commit.len().min(12)]);
        }
        println!("{line}");
    }
    // On stderr: the list stays one line per task for scripts.
    for problem in &progress.problems {
        eprintln!("error: {problem}");
    }
    for warning in &progress.warnings {
        eprintln!("warning: {warning}");
    }
}

/// How many of a phase's failed (or stale, awaiting, paused) tasks the
/// dashboard lists, each on a line: a phase of thousands that failed
/// filled the screen many times over with them.
const LISTED: usize = 10;

/// The line after a list cut at `LISTED` of `count`: how many more, and
/// `every` (the command that lists every task).
fn more_line(count: usize, what: &str, every: &str) {
    if let Some(more) = format::more_listed(count, LISTED, what, every) {
        println!("    ... {more}");
    }
}

/// The dashboard as text; `every` is the command that lists every task.
pub fn print(progress: &Progress, every: &str) {
    let printer = Printer::new(false);
    println!("=== {} Status ===", progress.title);
    println!();
    for problem in &progress.problems {
        printer.line(Tone::Bad, &format!("error: {problem}"));
    }
    for warning in &progress.warnings {
        printer.line(Tone::Warn, &format!("warning: {warning}"));
    }
    for phase in &progress.phases {
        let c = &phase.counts;
        println!("Phase: {}  {} {}%", phase.phase, bar(c.percent), c.percent);
        println!("  Total: {}", c.total);
        println!("  Completed: {} ({}%)", c.completed, c.percent);
        println!("  Running: {}{}", c.running, merging(c));
        println!("  Blocked: {}", c.blocked);
        println!("  Failed: {}", c.failed);
        println!("  Pending: {}", c.pending);
        if c.paused > 0 {
            println!("  Paused: {}", c.paused);
        }
        if c.awaiting_approval > 0 {
            println!("  Awaiting approval: {}", c.awaiting_approval);
        }
        if c.stale > 0 {
            println!(
                "  Stale: {} (completed, but built from files that changed)",
                c.stale
            );
        }
        if let Some(cost) = phase.cost_usd {
            println!(
                "  Cost: {}{}",
                format::usd(cost),
                tokens(phase.input_tokens, phase.output_tokens)
            );
        }
        if let Some(peak) = phase.peak_memory_mb {
            println!(
                "  CPU: {:.1} s, peak memory: {peak:.0} MiB",
                phase.cpu_seconds.unwrap_or(0.0)
            );
        }
        if phase.gate.complete {
            println!("  Gate: {}", printer.paint(Tone::Good, "complete"));
        } else {
            println!("  Gate: waiting on {}", phase.gate.waiting_on.join(", "));
        }
        for task in &phase.running_tasks {
            let elapsed = format::elapsed(task.elapsed_seconds);
            let note = match (task.queued, task.alive) {
                (true, _) => "  (queued in Slurm)".to_owned(),
                (false, true) => String::new(),
                (false, false) => format!("  ({})", status::gone_note(task.merging)),
            };
            let agent = task.agent_id.map_or("-".to_owned(), |a| a.to_string());
            let state = if task.merging { "merging" } else { "running" };
            println!("    {state}  {}  {agent}  {elapsed}{note}", task.task_id);
        }
        for task in phase.paused_tasks.iter().take(LISTED) {
            println!("    paused   {}: {}", task.task_id, paused_reason(task));
        }
        more_line(phase.paused_tasks.len(), "paused", every);
        for task in phase.awaiting_approval_tasks.iter().take(LISTED) {
            let what = if task.result {
                "its result awaits approval"
            } else {
                "awaits approval to start"
            };
            println!("    awaiting {}: {what}", task.task_id);
        }
        more_line(
            phase.awaiting_approval_tasks.len(),
            "awaiting approval",
            every,
        );
        for task in phase.stale_tasks.iter().take(LISTED) {
            println!(
                "    stale    {}: {} changed since it started",
                task.task_id, task.changed
            );
        }
        more_line(phase.stale_tasks.len(), "stale", every);
        for task in phase.failed_tasks.iter().take(LISTED) {
            let error = task.error.as_deref().unwrap_or("failed");
            println!(
                "    {}  {}: {error}",
                printer.paint(Tone::Bad, "failed"),
                task.task_id
            );
        }
        more_line(phase.failed_tasks.len(), "failed", every);
        println!();
    }
    let t = &progress.total;
    println!(
        "Overall: {}/{} completed ({}%), {} running{}, {} failed, {} blocked, {} pending{}",
        t.completed,
        t.total,
        t.percent,
        t.running,
        merging(t),
        t.failed,
        t.blocked,
        t.pending,
        [
            (t.paused, "paused"),
            (t.awaiting_approval, "awaiting approval"),
            (t.stale, "stale")
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!(", {n} {what}"))
        .collect::<String>()
    );
    let unknown = match progress.cost_unknown_tasks {
        0 => String::new(),
        n => format!(
            " ({} reported no cost: not counted)",
            format::counted(n, "task", "tasks")
        ),
    };
    if progress.cost_usd.is_some() || !unknown.is_empty() {
        println!(
            "Cost of the latest attempts: {}{}{unknown}",
            progress.cost_usd.map_or("unknown".to_owned(), format::usd),
            tokens(progress.input_tokens, progress.output_tokens)
        );
    }
    if let Some(budget) = &progress.budget {
        println!("Budget: {}", budget_text(budget));
    }
    const EXPECTED: &str =
        "at the limits; each task as long as it took before, else its phase's median, else 1s";
    match progress.eta_seconds {
        Some(eta) if progress.run_going_on => println!(
            "Expected end: {} ({} from now, {EXPECTED})",
            progress
                .expected_end
                .as_deref()
                .and_then(status::parse_timestamp)
                .map_or("?".into(), format::clock),
            format::seconds(eta)
        ),
        // No clock time: nothing runs the work until a run starts.
        Some(eta) => println!(
            "Work left: {} once a run starts (no run is going on; {EXPECTED})",
            format::seconds(eta)
        ),
        None => {}
    }
}

/// `$12.40 of $50.00 spent, $37.60 left`.
pub fn budget_text(budget: &BudgetLine) -> String {
    format!(
        "{} of {} spent, {} left",
        format::usd(budget.spent_usd),
        format::usd(budget.usd),
        format::usd(budget.left_usd)
    )
}

/// `rate limited until 15:00 (pool anthropic)`.
pub fn paused_reason(task: &PausedTask) -> String {
    paused_until(task.rate_limited_until.as_deref(), task.pool.as_deref())
}

/// `rate limited until 15:00 (pool anthropic)`, of a task paused `until`
/// (a status's timestamp) in `pool`.
fn paused_until(until: Option<&str>, pool: Option<&str>) -> String {
    let until = (until.and_then(status::parse_timestamp)).map_or("?".to_owned(), format::clock);
    rate_limited(&until, pool.unwrap_or(UNNAMED_POOL))
}

/// `rate limited until 15:00 (pool anthropic)`: what every view says of a
/// task a pause holds in `pool` until `until` (a clock time).
pub fn rate_limited(until: &str, pool: &str) -> String {
    format!("rate limited until {until} (pool {pool})")
}

/// ` (120000 tokens in, 3400 out)`, when known.
fn tokens(input: Option<u64>, output: Option<u64>) -> String {
    match (input, output) {
        (None, None) => String::new(),
        (i, o) => format!(" ({} tokens in, {} out)", i.unwrap_or(0), o.unwrap_or(0)),
    }
}

/// How many of the running tasks wait in the merge queue, said after them.
pub fn merging(counts: &Counts) -> String {
    match counts.merging {
        0 => String::new(),
        merging => format!(" ({merging} merging)"),
    }
}
