//! The live view: one frame redrawn in place on a terminal, with a bar per
//! phase, each running task with its agent slot, elapsed time and the last
//! line of its log, and the run's ETA. indicatif does the terminal work
//! (redrawing in place, printing event lines above the frame, hiding itself
//! when stdout is not a terminal). The frame is drawn from the dashboard
//! model `progress` prints: a running orchestrator builds it from its own
//! state, `progress --watch` from the status files.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::layout::Layout;
use crate::state::logs;
use crate::ui::format;
use crate::ui::progress::{PhaseProgress, Progress, Spent};
use crate::ui::progress_text;

/// How often the frame is redrawn.
const REFRESH: Duration = Duration::from_millis(500);
/// How soon after an event line the frame is redrawn, at the soonest: the
/// line says a task ended, and the frame drawn again under it (the old
/// one) showed it running until the next redraw.
const AFTER_AN_EVENT: Duration = Duration::from_millis(50);
/// Frames take a twentieth of the time at most: a frame of 100,000 tasks
/// takes tens of milliseconds to make.
const FRAME_SHARE: u32 = 20;
const BAR_WIDTH: usize = 24;
/// How much of a running task's last log line the frame shows, in
/// columns.
const LOG_LINE: usize = 60;
/// How many paused tasks the frame lists.
const PAUSED_LISTED: usize = 5;

pub struct Live {
    bar: ProgressBar,
    layout: Layout,
    drawn: Option<Instant>,
    /// What the last frame took to make.
    took: Duration,
    /// An event line was printed since the last frame was made.
    behind: std::cell::Cell<bool>,
}

impl Live {
    /// The live view, when it is wanted: stdout is a terminal that can
    /// draw it (`TERM` not `dumb`) and neither `--quiet` nor NO_COLOR asks
    /// for plain lines.
    pub fn new(layout: &Layout, quiet: bool) -> Option<Live> {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if quiet || no_color || !crate::ui::stdout_takes_escapes() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
        Some(Live {
            bar,
            layout: layout.clone(),
            drawn: None,
            took: Duration::ZERO,
            behind: std::cell::Cell::new(false),
        })
    }

    /// Prints an event line above the frame, as it is: the frame is
    /// cleared, the line printed, the frame drawn again (indicatif's own
    /// `println` pads a line to the terminal's width, with no newline:
    /// trailing spaces when copied, a blank line after each once the
    /// window is narrowed).
    pub fn println(&self, line: &str) {
        self.bar.suspend(|| {
            let mut out = std::io::stdout().lock();
            // Nobody reading (a closed pipe) must not stop a run.
            let _ = writeln!(out, "{line}");
        });
        self.behind.set(true);
    }

    /// Redraws the frame from what `progress` makes, at most every `REFRESH`,
    /// or sooner after an event line (`AFTER_AN_EVENT`).
    pub fn refresh(&mut self, progress: impl FnOnce() -> Progress) {
        if self.redraw_in().is_some_and(|wait| !wait.is_zero()) {
            return;
        }
        let start = Instant::now();
        self.behind.set(false);
        self.bar.set_message(frame(&self.layout, &progress()));
        self.took = start.elapsed();
        self.drawn = Some(Instant::now());
    }

    /// How long until the frame is due again (`None`: never drawn, due),
    /// from the end of the last one.
    pub fn redraw_in(&self) -> Option<Duration> {
        let gap = match self.behind.get() {
            true => AFTER_AN_EVENT,
            false => REFRESH,
        };
        let gap = gap.max(self.took * FRAME_SHARE);
        self.drawn.map(|at| gap.saturating_sub(at.elapsed()))
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
        "{}: {}/{} completed ({}%), {} running{}, {} failed, {} blocked",
        progress.title,
        t.completed,
        t.total,
        t.percent,
        t.running,
        progress_text::merging(t),
        t.failed,
        t.blocked
    );
    for (n, what) in [
        (t.paused, "paused"),
        (t.awaiting_approval, "awaiting approval"),
    ] {
        if n > 0 {
            heading += &format!(", {n} {what}");
        }
    }
    match (&progress.spent, progress.cost_usd) {
        (Spent::ThisRun(Some(usd)), _) => heading += &format!(", {} spent", format::usd(*usd)),
        (Spent::LatestAttempts, Some(usd)) => {
            heading += &format!(", latest attempts' cost {}", format::usd(usd))
        }
        _ => {}
    }
    match progress.eta_seconds {
        Some(eta) if progress.run_going_on => heading += &format!(", ETA {}", format::seconds(eta)),
        Some(eta) => {
            heading += &format!(", no run going on ({} of work left)", format::seconds(eta))
        }
        None => {}
    }
    let mut lines = vec![heading];
    for phase in &progress.phases {
        lines.push(phase_line(phase));
    }
    for phase in &progress.phases {
        for task in &phase.running_tasks {
            let elapsed = format::elapsed(task.elapsed_seconds);
            let state = match (task.queued, task.merging) {
                (true, _) => "queued",
                (false, true) => "merging",
                (false, false) => elapsed.as_str(),
            };
            let agent = task.agent_id.map_or("-".to_owned(), |a| a.to_string());
            let line = logs::last_line(&layout.log_file(&task.task_id));
            let last = format::within_columns(&line, LOG_LINE);
            lines.push(format!(
                "  {agent:<8} {} {state:>8}  {last}",
                format::padded(&task.task_id, 44)
            ));
        }
    }
    // Every ready task of a pool a rate limit paused is paused: thousands
    // would not fit a terminal.
    let paused: Vec<_> = (progress.phases.iter())
        .flat_map(|phase| &phase.paused_tasks)
        .collect();
    for task in paused.iter().take(PAUSED_LISTED) {
        lines.push(format!(
            "  {:<8} {} {}",
            "paused",
            format::padded(&task.task_id, 44),
            progress_text::paused_reason(task)
        ));
    }
    let every = layout.cmd("progress --tasks");
    if let Some(more) = format::more_listed(paused.len(), PAUSED_LISTED, "paused", &every) {
        lines.push(format!("  {:<8} {more}", "paused"));
    }
    lines.join("\n")
}

/// `01-analysis  [####>>xx!!......]  3/6`: done, running, failed,
/// blocked, pending, in that order (the run's ETA is in the heading).
fn phase_line(phase: &PhaseProgress) -> String {
    let c = &phase.counts;
    let marks = ['#', '>', 'x', '!', '.'];
    let shown = [c.completed, c.running, c.failed, c.blocked];
    let rest = c.total.saturating_sub(shown.iter().sum());
    let widths = bar_widths(&[shown[0], shown[1], shown[2], shown[3], rest], BAR_WIDTH);
    let mut bar = String::new();
    for (mark, width) in marks.into_iter().zip(widths) {
        bar.extend(std::iter::repeat_n(mark, width));
    }
    // Nothing more to run in it: "done" when all completed, "ended" when
    // some failed or were blocked ("0/1 done" read as a success), and no
    // failed one is to be tried again.
    let done = match (
        c.completed == c.total,
        c.total == c.completed + c.failed + c.blocked && c.to_run_again == 0,
    ) {
        (true, _) => "done",
        (false, true) => "ended",
        (false, false) => "",
    };
    format!(
        "{} [{bar}] {:>5}/{:<5} {done}",
        format::padded(&phase.phase, 22),
        c.completed,
        c.total
    )
}

/// The bar's width for each count, `width` in all: in proportion, and at
/// least one mark for a count above 0, so that one failure among many
/// tasks still shows (what that takes comes off the largest).
fn bar_widths(counts: &[usize], width: usize) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    if total == 0 {
        return vec![0; counts.len()];
    }
    let mut widths: Vec<usize> = counts
        .iter()
        .map(|&n| {
            if n == 0 {
                0
            } else {
                (n * width / total).max(1)
            }
        })
        .collect();
    // The first of the largest (on a tie, the completed).
    let largest = (0..counts.len())
        .rev()
        .max_by_key(|&i| counts[i])
        .unwrap_or(0);
    let sum: usize = widths.iter().sum();
    if sum < width {
        widths[largest] += width - sum;
    } else {
        widths[largest] = widths[largest].saturating_sub(sum - width).max(1);
    }
    widths
}

#[cfg(test)]
mod tests {
    use super::{bar_widths, phase_line};
    use crate::ui::progress::{Counts, PhaseProgress};

    #[test]
    fn a_phase_that_ended_in_failures_is_not_done() {
        let line = |completed, failed, blocked| {
            let counts = Counts {
                total: 2,
                completed,
                failed,
                blocked,
                ..Counts::default()
            };
            let phase = PhaseProgress {
                phase: "01-a".into(),
                counts,
                ..PhaseProgress::default()
            };
            phase_line(&phase)
        };
        assert!(line(2, 0, 0).ends_with("2/2     done"), "{}", line(2, 0, 0));
        assert!(
            line(0, 1, 1).ends_with("0/2     ended"),
            "{}",
            line(0, 1, 1)
        );
        assert!(line(1, 0, 0).ends_with("1/2     "), "{}", line(1, 0, 0));
        assert!(line(1, 1, 0).contains("############xxxxxxxxxxxx"));
    }

    #[test]
    fn one_failure_among_many_keeps_its_mark_and_the_bar_its_width() {
        // 24 completed and one failed: the failure has its `x`.
        assert_eq!(bar_widths(&[24, 0, 1, 0, 0], 24), [23, 0, 1, 0, 0]);
        assert_eq!(bar_widths(&[1000, 1, 1, 1, 1], 24), [20, 1, 1, 1, 1]);
        assert_eq!(bar_widths(&[1, 1, 1, 1, 1], 24), [8, 4, 4, 4, 4]);
        assert_eq!(bar_widths(&[0, 0, 0, 1, 0], 24), [0, 0, 0, 24, 0]);
        assert_eq!(bar_widths(&[0; 5], 24), [0; 5]);
    }
}
