//! The live view: one frame redrawn in place on a terminal, with a bar per
//! phase, each running task with its agent slot, elapsed time and the last
//! line of its log, and the run's ETA. indicatif does the terminal work
//! (redrawing in place, printing event lines above the frame, hiding itself
//! when stdout is not a terminal). The frame is drawn from the dashboard
//! model `progress` prints: a running orchestrator builds it from its own
//! state, `progress --watch` from the status files.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::layout::Layout;
use crate::state::logs;
use crate::ui::format;
use crate::ui::progress::{PhaseProgress, Progress};
use crate::ui::progress_text;

/// How often the frame is redrawn.
const REFRESH: Duration = Duration::from_millis(500);
const BAR_WIDTH: usize = 24;
/// How much of a running task's last log line the frame shows.
const LOG_LINE: usize = 60;

pub struct Live {
    bar: ProgressBar,
    layout: Layout,
    drawn: Option<Instant>,
}

impl Live {
    /// The live view, when it is wanted: stdout is a terminal and neither
    /// `--quiet` nor NO_COLOR asks for plain lines.
    pub fn new(layout: &Layout, quiet: bool) -> Option<Live> {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if quiet || no_color || !std::io::stdout().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
        Some(Live {
            bar,
            layout: layout.clone(),
            drawn: None,
        })
    }

    /// Prints an event line above the frame.
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    /// Redraws the frame from what `progress` makes, at most every `REFRESH`.
    pub fn refresh(&mut self, progress: impl FnOnce() -> Progress) {
        if self.drawn.is_some_and(|at| at.elapsed() < REFRESH) {
            return;
        }
        self.drawn = Some(Instant::now());
        self.bar.set_message(frame(&self.layout, &progress()));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `progress --watch`: the live view of a run started elsewhere, from its
/// status files, until Ctrl-C.
pub fn watch(layout: &Layout, collect: impl Fn() -> Progress) -> ! {
    let mut live = Live::new(layout, false);
    loop {
        match &mut live {
            Some(live) => live.refresh(&collect),
            // Not a terminal: a plain frame now and then.
            None => println!("{}\n", frame(layout, &collect())),
        }
        std::thread::sleep(if live.is_some() {
            REFRESH
        } else {
            Duration::from_secs(5)
        });
    }
}

/// The frame: a heading, a line per phase, a line per running task.
pub fn frame(layout: &Layout, progress: &Progress) -> String {
    let t = &progress.total;
    let mut heading = format!(
        "{}: {}/{} completed ({}%), {} running, {} failed, {} blocked",
        progress.title, t.completed, t.total, t.percent, t.running, t.failed, t.blocked
    );
    for (n, what) in [
        (t.paused, "paused"),
        (t.awaiting_approval, "awaiting approval"),
    ] {
        if n > 0 {
            heading += &format!(", {n} {what}");
        }
    }
    if let Some(cost) = progress.cost_usd {
        heading += &format!(", {} spent", format::usd(cost));
    }
    if let Some(eta) = progress.eta_seconds {
        heading += &format!(", ETA {}", format::seconds(eta));
    }
    let mut lines = vec![heading];
    for phase in &progress.phases {
        lines.push(phase_line(phase));
    }
    for phase in &progress.phases {
        for task in &phase.running_tasks {
            let elapsed = format::duration(Duration::from_secs(task.elapsed_seconds));
            let state = match (task.queued, task.merging) {
                (true, _) => "queued",
                (false, true) => "merging",
                (false, false) => elapsed.as_str(),
            };
            let agent = task.agent_id.map_or("-".to_owned(), |a| a.to_string());
            let last: String = logs::last_line(&layout.log_file(&task.task_id))
                .chars()
                .take(LOG_LINE)
                .collect();
            lines.push(format!(
                "  {agent:<8} {:<44} {state:>8}  {last}",
                task.task_id
            ));
        }
        for task in &phase.paused_tasks {
            lines.push(format!(
                "  {:<8} {:<44} {}",
                "paused",
                task.task_id,
                progress_text::paused_reason(task)
            ));
        }
    }
    lines.join("\n")
}

/// `01-analysis  [####>>xx!!......]  3/6`: done, running, failed,
/// blocked, pending, in that order (the run's ETA is in the heading).
fn phase_line(phase: &PhaseProgress) -> String {
    let c = &phase.counts;
    let width = |n: usize| {
        if c.total == 0 {
            0
        } else {
            (n * BAR_WIDTH).div_ceil(c.total)
        }
    };
    let mut bar = String::new();
    for (n, mark) in [
        (c.completed, '#'),
        (c.running, '>'),
        (c.failed, 'x'),
        (c.blocked, '!'),
    ] {
        bar.extend(std::iter::repeat_n(mark, width(n)));
    }
    bar.truncate(BAR_WIDTH);
    while bar.len() < BAR_WIDTH {
        bar.push('.');
    }
    let done = if c.total == c.completed + c.failed + c.blocked {
        "done"
    } else {
        ""
    };
    format!(
        "{:<22} [{bar}] {:>5}/{:<5} {done}",
        phase.phase, c.completed, c.total
    )
}
