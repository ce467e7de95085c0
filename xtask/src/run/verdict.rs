//! How an attempt's end is judged: its exit, its outputs, and for a task
//! whose result is read (`agent.result`), what the agent itself reported,
//! which overrides an exit code of 0. A failed agent attempt whose error or
//! log says it hit a rate limit is marked so: it is not held against the
//! task (see `run::limited`).

use std::time::SystemTime;

use camino::Utf8Path;

use crate::agent::result::{self, Outcome, Report};
use crate::agent::{limits, prompts};
use crate::executor::{setup, Limits};
use crate::model::config::Config;
use crate::model::layout::Layout;
use crate::model::task::{self, Task};
use crate::run::attempt::Active;
use crate::run::history::Previous;
use crate::state::records::ExitRecord;
use crate::state::status::INTERRUPTED;
use crate::state::status::{Ending, Failure};
use crate::state::{logs, outputs};
use crate::sys::{self, process};
use crate::ui::format;

/// How an attempt ended, judged.
pub struct Verdict {
    pub ending: Ending,
    /// `None`: completed.
    pub error: Option<String>,
    /// What the agent reported, when its result is read and could be.
    pub agent: Option<Report>,
    /// The attempt failed on a rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Its agent started: not an attempt that ended in its worktree's
    /// setup (or could not start: `run::ends` says), which spent nothing.
    pub agent_started: bool,
}

/// A rate limit an attempt hit.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// The line that says so.
    pub line: String,
    /// When the limit resets, when the message says.
    pub reset: Option<SystemTime>,
    /// Read from the log of an agent read as text, which holds the task's
    /// own words too (a test failing on a 429), not from what its CLI
    /// reported.
    pub from_log: bool,
}

/// The error of an attempt that ended unseen, with its supervisor.
pub const LOST: &str = "lost: the task and its supervisor are gone, and no exit code was recorded";

/// How many of a log's last lines are searched for a rate limit.
const LOG_LINES: usize = 50;

/// Judges an attempt's end from its exit record (`None`: there is none, as
/// for a task stopped before it started, or lost with its supervisor).
/// `previous`: the failed attempt this one was told of (its error in
/// `TASK_PREVIOUS_ERROR`, a prompt's `previous.error`; its session in
/// `TASK_PREVIOUS_SESSION_ID`, which it may have resumed).
pub fn judge(
    layout: &Layout,
    config: &Config,
    task: &Task,
    record: Option<&ExitRecord>,
    stopped_at: Option<SystemTime>,
    active: &Active,
    previous: Option<&Previous>,
) -> Verdict {
    let stopping = stopped_at.is_some();
    let told = previous.map(|p| p.error.as_str());
    let Some(r) = record else {
        let (ending, error) = if stopping {
            (Ending::Interrupted, INTERRUPTED)
        } else {
            (Ending::Lost, LOST)
        };
        // A lost agent may have printed its result before it ended
        // unseen (its stdout is a file of this attempt's: an earlier one's
        // is moved aside as an attempt starts): its cost is counted, and
        // its session is its retry's to resume. So may an adopted one this
        // run stopped, with no supervisor to record its end (a CLI that
        // says what it spent when sent SIGTERM, or one that ended before
        // the stop saw it). One of this run's, with no record, never
        // started: it printed nothing.
        let agent = match ending == Ending::Lost || active.adopted.is_some() {
            true => report_of(
                layout,
                config,
                task,
                outcome_of(layout, config, task, previous),
            ),
            false => None,
        };
        return Verdict {
            ending,
            error: Some(error.to_owned()),
            agent,
            rate_limit: None,
            agent_started: true,
        };
    };
    let stopped_here = active.adopted.is_some() && adopted_stopped_here(stopped_at, r);
    let interrupted;
    let r = match stopped_here {
        true => {
            interrupted = ExitRecord {
                ending: Ending::Interrupted,
                ..r.clone()
            };
            &interrupted
        }
        false => r,
    };
    // An attempt that never started printed nothing: what its task's
    // stdout holds is an earlier attempt's (its cost, charged again).
    let outcome = match r.ending {
        Ending::SpawnFailed => None,
        _ => outcome_of(layout, config, task, previous),
    };
    let error = exit_error(layout, config, task, r, active, outcome.as_ref())
        .map(|error| in_setup(layout, r, active, error));
    let failure = outcome
        .as_ref()
        .and_then(|o| o.as_ref().ok()?.failure.as_ref());
    let rate_limit = match &error {
        Some(_) if r.ending == Ending::Exited && task.is_agent(config) => {
            let texts = match (failure, &outcome) {
                // What the agent says failed is the reason: an earlier
                // retried hiccup in its log is not.
                (Some(failure), _) => vec![failure.message.clone(), failure.kind.clone()],
                // Its result was to say, and said no failure or was not
                // there: a CLI reports a limit in its result, so a log
                // that mentions one is the task's own words (tests of a
                // rate limiter failing), which waiting would repeat until
                // `give_up_after`, unpaid for in retries but paid for in
                // runs.
                (None, Some(_)) => Vec::new(),
                // An agent read as text: its log is all there is.
                (None, None) => logs::tail(&layout.log_file(&task.id), LOG_LINES),
            };
            let limit = rate_limit(config, &texts, told);
            // The stream's own reset time, exact, over one read from words.
            let now = SystemTime::now();
            let stream_says = failure
                .and_then(|f| f.limit_resets_at)
                .filter(|at| *at > now);
            limit.map(|limit| RateLimit {
                reset: stream_says.or(limit.reset),
                from_log: failure.is_none(),
                ..limit
            })
        }
        // Stopped by its timeout while its CLI waited to retry a refused
        // request: the limit's doing, which its pool waits out, not a
        // failure of its work to spend a retry on.
        Some(_)
            if matches!(r.ending, Ending::Timeout | Ending::IdleTimeout)
                && task.is_agent(config) =>
        {
            retrying_when_cut(layout, config, task)
        }
        _ => None,
    };
    Verdict {
        ending: r.ending,
        error,
        agent: report_of(layout, config, task, outcome),
        rate_limit,
        agent_started: !setup_failed(layout, active),
    }
}

/// Whether an adopted attempt that ended as `r` says was stopped by this
/// run, which began to stop at `stopped_at` (if it did): its supervisor,
/// an earlier orchestrator's, saw a signal from outside, and an exit (by
/// the signal, or with its own code once it caught it), as for ours. (Not
/// one whose own process had exited before the stop, with its own code,
/// while what it left had its grace.)
pub fn adopted_stopped_here(stopped_at: Option<SystemTime>, r: &ExitRecord) -> bool {
    let Some(stopped) = stopped_at else {
        return false;
    };
    // The supervisor's record is to the microsecond: one in the stop's
    // own microsecond is the stop's. (To the millisecond, a task that
    // exited, then was stopped within the same millisecond, was taken
    // for the stop's: seen as the suite's test of it failed now and then.)
    let exited_first = crate::state::status::parse_timestamp(&r.ended_at)
        .is_some_and(|ended| ended < to_the_microsecond(stopped));
    r.ending == Ending::Exited && r.exit_code != Some(0) && !exited_first
}

/// The agent's result, when the task's result is read (`read_result`),
/// its tokens counted once where it resumed the session of `previous`.
fn outcome_of(
    layout: &Layout,
    config: &Config,
    task: &Task,
    previous: Option<&Previous>,
) -> Option<Result<Outcome, String>> {
    counted_once(config, read_result(layout, config, task), previous)
}

/// `outcome`, its tokens counted once where it resumed the session of
/// `previous`.
fn counted_once(
    config: &Config,
    mut outcome: Option<Result<Outcome, String>>,
    previous: Option<&Previous>,
) -> Option<Result<Outcome, String>> {
    // A Codex run that resumed the session it was given reports its
    // thread's totals, the earlier attempt's tokens with its own: counted
    // once, not again (openai/codex#17539).
    if let (Some(Ok(outcome)), Some(previous)) = (&mut outcome, previous) {
        if let (Some(session), Some(before)) = (&previous.session_id, &previous.thread_usage) {
            outcome.count_since(session, before, config.agents.prices.as_ref());
        }
    }
    outcome
}

/// What the agent of task `task` reported of its latest attempt, when its
/// output holds a result (not only a session): that of an attempt lost
/// with its supervisor, which the next run records (`judge`), its cost
/// counted then.
pub fn printed_result(layout: &Layout, config: &Config, task: &Task) -> Option<Report> {
    let report = read_result(layout, config, task)?.ok()?.report;
    report.is_result().then_some(report)
}

/// What the agent of task `id`, whose file is gone (see `run::unlisted`),
/// reported of attempt `attempt`: read as `agent.result` says (a `result`
/// of its own went with its file) from its stdout, which its supervisor
/// keeps apart only for an attempt whose result is read; its tokens
/// counted once where it resumed the session of the failure it was told
/// of (`told`). None when there is no such stdout, or no result in it.
pub fn gone_report(
    layout: &Layout,
    config: &Config,
    id: &str,
    attempt: u32,
    told: Option<Failure>,
) -> Option<Report> {
    let kept = layout.stdout_file(id);
    let format = config.agents.result.reader().filter(|_| kept.exists())?;
    let previous = told.map(|f| Previous::told(f, layout.attempt_log_file(id, attempt)));
    let outcome = Some(read_output(config, format, &kept));
    let report = counted_once(config, outcome, previous.as_ref())?
        .ok()?
        .report;
    report.is_result().then_some(report)
}

/// What the agent of the latest attempt of task `task` reported, for an
/// attempt whose end no run has taken yet (it ended while no orchestrator
/// ran): read as the run that takes it will read it, its tokens counted
/// once where it resumed the session of the failure it was told of
/// (`told`). The budget counts its cost, and the views show it where they
/// show costs (`run::unseen`).
pub fn unseen_report(
    layout: &Layout,
    config: &Config,
    task: &Task,
    attempt: u32,
    told: Option<crate::state::status::Failure>,
) -> Option<Report> {
    let previous = told.map(|f| Previous::told(f, layout.attempt_log_file(&task.id, attempt)));
    Some(
        outcome_of(layout, config, task, previous.as_ref())?
            .ok()?
            .report,
    )
}

/// The error of an attempt its timeout or idle timeout ended: which
/// limit, how long, and where it is set (the task's own, else its
/// phase's), as `Limits::of` takes them: the one to raise, if it was too
/// short. The limit is the one the attempt was given (`ran_with`, as its
/// record says), the one set now beside it when the config changed since
/// the attempt started (a run that adopted it after an edit); the bare
/// name where neither is known.
fn timeout_error(config: &Config, task: &Task, ending: Ending, ran_with: Option<u64>) -> String {
    let phase_key = task::phase_key(task.phase());
    let phase = config.phase(phase_key);
    let (name, key, own, phases) = match ending {
        Ending::Timeout => ("Timeout", "timeout", task.timeout, phase.timeout),
        _ => (
            "Idle timeout",
            "idle_timeout",
            task.idle_timeout,
            phase.idle_timeout,
        ),
    };
    let now = match (own, phases) {
        (Some(limit), _) => Some((limit, format!("its `{key}`"))),
        (None, Some(limit)) => Some((limit, format!("its phase's, `phases.{phase_key}.{key}`"))),
        (None, None) => None,
    };
    // As the supervisor was given it: to the millisecond.
    let ran_with = ran_with.map(std::time::Duration::from_millis);
    let (limit, said) = match (ran_with, now) {
        (None, None) => return name.to_owned(),
        (Some(ran), Some((limit, set_by))) if ran.as_millis() != limit.as_millis() => {
            let limit = humantime::format_duration(limit);
            (
                ran,
                format!("its limit as it started; now {limit}, {set_by}"),
            )
        }
        (Some(ran), None) => (
            ran,
            format!("its limit as it started; no `{key}` is set now"),
        ),
        (_, Some((limit, set_by))) => (limit, set_by),
    };
    let limit = humantime::format_duration(limit);
    match ending {
        Ending::Timeout => format!("{name} after {limit} ({said})"),
        _ => format!("{name}: its log did not grow for {limit} ({said})"),
    }
}

/// The error of an attempt killed for its memory: the limit it was given
/// (`ran_with`, in bytes, as its record says), and the one set now beside
/// it when the config changed since it started.
fn memory_error(config: &Config, task: &Task, ran_with: Option<u64>) -> String {
    let now = Limits::of(config, task).memory_gb;
    let ran_with = ran_with.map(|bytes| bytes as f64 / (1u64 << 30) as f64);
    match ran_with.map(format::gib) {
        Some(ran) if ran != format::gib(now) => format!(
            "Out of memory (limit {ran} as it started; {} now)",
            format::gib(now)
        ),
        Some(ran) => format!("Out of memory (limit {ran})"),
        None => format!("Out of memory (limit {})", format::gib(now)),
    }
}

/// What the agent reported, from its `outcome`.
fn report_of(
    layout: &Layout,
    config: &Config,
    task: &Task,
    outcome: Option<Result<Outcome, String>>,
) -> Option<Report> {
    match outcome {
        Some(Ok(outcome)) => Some(outcome.report),
        // Cut short: the session, for a retry to resume. An empty report
        // otherwise: the agent reported no cost, which views count apart.
        Some(Err(_)) => Some(session_of_unread(layout, config, task).unwrap_or_default()),
        None => None,
    }
}

/// What the shell said (its log's last line, `sh: 1: nosuchprog: not
/// found`) when it exited with its codes for a command it could not find
/// (127) or run (126): the summary then tells why without the log. A
/// script it did not find that is there (`sh` says so of one whose `#!`
/// interpreter is missing) is said to be there, the interpreter named.
fn shell_said(layout: &Layout, task: &Task, code: i32, active: &Active) -> Option<String> {
    if !matches!(code, 126 | 127) {
        return None;
    }
    let line = logs::last_line(&layout.log_file(&task.id));
    if line.is_empty() {
        return None;
    }
    let not_found = (line.strip_suffix(": not found"))
        .and_then(|said| said.rsplit_once(": "))
        .map(|(_, program)| program);
    let cwd = active.workdir.as_deref().unwrap_or(&layout.root);
    let hint = not_found.and_then(|program| match program.contains('/') {
        true => sys::missing_interpreter_hint(cwd.join(program).as_std_path()),
        false => sys::missing_interpreter_hint(program.as_ref()),
    });
    Some(match hint {
        Some(hint) => format!("{line}: {hint}"),
        None => line,
    })
}

/// Whether the attempt's worktree setup ran and did not succeed.
fn setup_failed(layout: &Layout, active: &Active) -> bool {
    active.setup
        && active
            .worktree
            .as_ref()
            .is_some_and(|w| !layout.setup_done_file(&w.branch).exists())
}

/// `error`, of an attempt stopped during its worktree's setup (by a
/// question, its memory, Slurm's time limit), saying so: the agent never
/// started.
fn in_setup(layout: &Layout, r: &ExitRecord, active: &Active, error: String) -> String {
    let stopped = matches!(
        r.ending,
        Ending::Timeout | Ending::IdleTimeout | Ending::OutOfMemory | Ending::WaitingForInput
    );
    match stopped && setup_failed(layout, active) {
        true => format!("worktree setup: {error}"),
        false => error,
    }
}

/// The error of an attempt that ended with exit record `r`.
fn exit_error(
    layout: &Layout,
    config: &Config,
    task: &Task,
    r: &ExitRecord,
    active: &Active,
    outcome: Option<&Result<Outcome, String>>,
) -> Option<String> {
    let setup_failed = setup_failed(layout, active);
    let said = outcome.and_then(|o| o.as_ref().ok()?.failure.as_ref().map(|f| f.summary()));
    match r.ending {
        Ending::Exited if setup_failed => Some(match r.exit_code {
            Some(setup::TIMED_OUT) => "worktree setup timed out".to_owned(),
            Some(code) => format!("worktree setup failed (exit {code})"),
            None => "worktree setup failed".to_owned(),
        }),
        Ending::Exited => match (r.exit_code, r.signal) {
            (Some(0), _) => done_error(layout, task, active, outcome, said, "exited 0"),
            // The exit code stays the error; what the agent said, the why.
            (Some(code), _) => Some(
                match said.or_else(|| shell_said(layout, task, code, active)) {
                    Some(said) => format!("exit code {code} ({said})"),
                    None => format!("exit code {code}"),
                },
            ),
            (None, Some(sig)) => Some(format!("killed by {}", process::signal_name(sig))),
            (None, None) => Some("ended without an exit code".to_owned()),
        },
        // Stopped once its agent had said it succeeded: its CLI hung on
        // its way out (a child it waits for), or a person stopped the run
        // then. The work is done and paid for; run again, it would be paid
        // for again.
        Ending::Timeout | Ending::IdleTimeout | Ending::WaitingForInput | Ending::Interrupted
            if succeeded(outcome) =>
        {
            let done = "its agent said it succeeded (then hung, and was stopped)";
            done_error(layout, task, active, outcome, said, done)
        }
        // A limit the record names is none of the task's (Slurm's own).
        Ending::Timeout if r.message.is_some() => {
            (r.message.as_ref()).map(|limit| format!("Timeout: {limit}"))
        }
        Ending::Timeout | Ending::IdleTimeout => {
            Some(timeout_error(config, task, r.ending, r.limit_ms))
        }
        Ending::Interrupted => Some(INTERRUPTED.to_owned()),
        Ending::OutOfMemory => Some(memory_error(config, task, r.memory_limit_bytes)),
        Ending::Lost => Some(format!(
            "lost: {}",
            r.message.as_deref().unwrap_or("the node failed")
        )),
        Ending::WaitingForInput => Some(format!(
            "waiting for input: {}",
            r.message
                .as_deref()
                .unwrap_or("its log ends with a question")
        )),
        Ending::SpawnFailed => Some(
            r.message
                .clone()
                .unwrap_or_else(|| "could not start".into()),
        ),
    }
}

/// The error of an attempt that is `done` (it exited 0, or its agent said
/// it succeeded): its result unreadable, a failure its agent said, or
/// its outputs not right; `None` when it completed.
fn done_error(
    layout: &Layout,
    task: &Task,
    active: &Active,
    outcome: Option<&Result<Outcome, String>>,
    said: Option<String>,
    done: &str,
) -> Option<String> {
    match outcome {
        Some(Err(why)) => Some(format!("agent output unreadable: {why}")),
        _ if said.is_some() => said,
        _ => {
            let missing =
                outputs::problems(layout, task, active.since_ns, active.worktree.is_some());
            (!missing.is_empty())
                .then(|| format!("{done} but outputs are not right: {}", missing.join("; ")))
        }
    }
}

/// Whether the agent printed its result, said it succeeded, and did no
/// more after it.
fn succeeded(outcome: Option<&Result<Outcome, String>>) -> bool {
    outcome
        .and_then(|o| o.as_ref().ok())
        .is_some_and(|o| o.failure.is_none() && o.report.is_result() && o.ends_with_it)
}

/// The agent's result, read from the attempt's stdout, when the task's
/// result is read: `Err(why)` when it cannot be. A local task's stdout is
/// kept apart by its supervisor; a Slurm job's shares its log with stderr
/// (the reader skips the lines that are not JSON).
fn read_result(layout: &Layout, config: &Config, task: &Task) -> Option<Result<Outcome, String>> {
    let format = task.result_format(config).reader()?;
    Some(read_output(config, format, &stdout_of(layout, task)))
}

/// The agent's result in its output at `path`, read as `format`.
fn read_output(
    config: &Config,
    format: result::Format,
    path: &Utf8Path,
) -> Result<Outcome, String> {
    // Whether it read the whole output, and what it made of it.
    let read = |bytes| match logs::end_of(path, bytes) {
        Ok(end) => {
            let whole = end.whole;
            let text = end.whole_lines();
            (
                whole,
                result::read(format, &text, config.agents.prices.as_ref()),
            )
        }
        Err(e) => (true, Err(format!("cannot read {path}: {e}"))),
    };
    // Claude's result is its output's last JSON line: a stream of hundreds
    // of MB is not read whole (into memory, parsed) to find it, unless it
    // is not at the end (and then only its last `CLAUDE_MOST` bytes).
    // Codex's session id comes first and its usage last: its events are
    // read one line at a time.
    match format {
        result::Format::ClaudeJson => match read(CLAUDE_TAIL) {
            (false, Err(_)) => read(CLAUDE_MOST).1,
            (_, outcome) => outcome,
        },
        result::Format::CodexJsonl => match std::fs::File::open(path) {
            Ok(file) => {
                let prices = config.agents.prices.as_ref();
                result::read_codex(std::io::BufReader::new(file), prices)
            }
            Err(e) => Err(format!("cannot read {path}: {e}")),
        },
    }
}

/// Where the agent's stdout is: kept apart by the local supervisor, or in
/// the log (a Slurm job's).
fn stdout_of(layout: &Layout, task: &Task) -> camino::Utf8PathBuf {
    let kept = layout.stdout_file(&task.id);
    if kept.exists() {
        kept
    } else {
        layout.log_file(&task.id)
    }
}

/// The limit an agent's CLI was waiting out when its timeout stopped it
/// (`result::retrying_when_cut`), read from its output's end.
fn retrying_when_cut(layout: &Layout, config: &Config, task: &Task) -> Option<RateLimit> {
    let format = task.result_format(config).reader()?;
    let end = logs::end_of(&stdout_of(layout, task), RETRY_TAIL).ok()?;
    let line = result::retrying_when_cut(format, &end.whole_lines())?;
    Some(RateLimit {
        line,
        reset: None,
        from_log: false,
    })
}

/// How much of the end of an agent's output is read for what it was doing
/// when it was cut short: its last event, a line of a few hundred bytes.
const RETRY_TAIL: u64 = 64 << 10;

/// The session named by an agent's output whose result could not be read.
fn session_of_unread(layout: &Layout, config: &Config, task: &Task) -> Option<Report> {
    let format = task.result_format(config).reader()?;
    let output = std::fs::File::open(stdout_of(layout, task)).ok()?;
    result::session_in(format, output).map(Report::of_session)
}

/// How much of the end of Claude's output is read for its result first.
const CLAUDE_TAIL: u64 = 16 << 20;

/// How much of its end is read when the result is not in that tail (a
/// result larger than it, or much printed after it): no more, for an
/// agent that printed gigabytes would take as much of the orchestrator's
/// memory; its result is then unreadable, said so.
const CLAUDE_MOST: u64 = 256 << 20;

/// The rate limit `texts` name, if one of the patterns matches them.
/// A warning of a limit drawing near (`limits::warns`) is none. Lines
/// that quote `told` (the error the attempt was given: an agent may
/// echo its prompt or its environment) are no evidence: after one rate
/// limit, each failure would be taken for another, its error quoting the
/// last, and the task paused, unpaid for in retries but paid for in runs,
/// until `give_up_after`.
fn rate_limit(config: &Config, texts: &[String], told: Option<&str>) -> Option<RateLimit> {
    let lines: Vec<String> = texts
        .iter()
        .flat_map(|t| t.lines())
        // The orchestrator's own lines in the log (naming the task's
        // files and branch) are no agent's words.
        .filter(|line| !line.starts_with(logs::OURS))
        .filter(|line| !told.is_some_and(|told| prompts::quotes(told, line)))
        // A CLI warns of a limit drawing near as it goes on working, with
        // the limit's name and reset: a failure after it is no limit hit.
        .filter(|line| !limits::warns(line))
        .map(str::to_owned)
        .collect();
    let line = limits::find(&config.agents.rate_limits.patterns, &lines)?.to_owned();
    let reset = limits::reset_time(&lines.join("\n"), SystemTime::now(), &limits::offset_of);
    Some(RateLimit {
        line,
        reset,
        from_log: false,
    })
}

/// `time` cut to the microsecond, as a supervisor's records keep times.
fn to_the_microsecond(time: SystemTime) -> SystemTime {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    std::time::UNIX_EPOCH + std::time::Duration::from_micros(since.as_micros() as u64)
}
