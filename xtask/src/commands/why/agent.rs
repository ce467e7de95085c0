//! What `why` says of an attempt's agent: its report on one line, and
//! the start of its last message.

use crate::agent::result::Report;
use crate::state::status::Ending;
use crate::ui::format;

/// How many lines of an agent's last message `why` shows.
const MESSAGE_LINES: usize = 12;

/// An agent's last message, its first `MESSAGE_LINES` lines.
pub(super) fn print_message(said: &str) {
    println!("  its last message:");
    for line in said.lines().take(MESSAGE_LINES) {
        println!("    {line}");
    }
    let more = said.lines().count().saturating_sub(MESSAGE_LINES);
    if more > 0 {
        println!("    [{more} more lines in its status]");
    }
}

/// `session 1f0c…, 12 turns, $0.37, 12000 tokens in, 800 out`; of an
/// attempt the run stopped (`stopped`: a Ctrl-C, a timeout) before its
/// agent printed a result, that it printed none, not that its result
/// could not be read.
pub(super) fn describe_report(r: &Report, stopped: Option<Ending>) -> String {
    let mut parts = Vec::new();
    if let Some(session) = &r.session_id {
        parts.push(format!("session {session}"));
    }
    // Claude says `success` beside `is_error` for an API failure.
    match (&r.subtype, r.is_error) {
        (Some(subtype), Some(true)) if subtype == "success" => parts.push("is_error".to_owned()),
        (Some(subtype), _) => parts.push(subtype.clone()),
        (None, Some(true)) => parts.push("is_error".to_owned()),
        (None, _) => {}
    }
    if let Some(turns) = r.turns {
        let s = if turns == 1 { "" } else { "s" };
        parts.push(format!("{turns} turn{s}"));
    }
    if let Some(cost) = r.cost_usd {
        parts.push(format::usd(cost));
    }
    if let Some(refused) = &r.cost_refused {
        parts.push(format!(
            "its cost of {refused} USD refused, counted nowhere"
        ));
    }
    if let Some(input) = r.input_tokens {
        parts.push(format!("{input} tokens in"));
    }
    if let Some(output) = r.output_tokens {
        parts.push(format!("{output} out"));
    }
    if !r.is_result() {
        parts.push(match stopped {
            Some(ending) => format!("no result: {}", stopped_first(ending)),
            None => "its result could not be read".to_owned(),
        });
    }
    parts.join(", ")
}

/// What ended an attempt (`ending`) before its agent printed a result, in
/// words: the status's name for it (`idle_timeout`) is for scripts.
fn stopped_first(ending: Ending) -> &'static str {
    match ending {
        Ending::Timeout => "its timeout stopped it first",
        Ending::IdleTimeout => "its idle timeout stopped it first (its log was still)",
        // Also a Slurm job cancelled outside the run, as its error says.
        Ending::Interrupted => {
            "it was interrupted first (the run's stop, or its Slurm job cancelled)"
        }
        Ending::OutOfMemory => "its memory limit killed it first",
        Ending::WaitingForInput => {
            "it was stopped first, waiting for input (its log ended with a question)"
        }
        // Not stops: `describe_report` is given none of these.
        Ending::Exited => "it exited first",
        Ending::SpawnFailed => "it could not start",
        Ending::Lost => "its process was lost first",
    }
}
