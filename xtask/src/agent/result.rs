//! The result an agent CLI prints when it ends: whether it says it failed,
//! its session (to resume it), turns, tokens and cost. Reads what Claude
//! Code (`claude -p --output-format json`, or `stream-json --verbose`) and
//! Codex (`codex exec --json`) write to stdout; the field meanings and the
//! sources behind them are in `tests/fixtures/agents/README.md`.

use std::io::BufRead;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::agent::terminal::escaped;
use crate::ui::format;

mod codex;
#[cfg(test)]
mod tests;

pub use codex::read_codex;
use codex::*;

/// Which CLI's output to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `claude -p --output-format json` (or `stream-json --verbose`).
    ClaudeJson,
    /// `codex exec --json`.
    CodexJsonl,
}

/// The most one attempt of an agent is taken to cost, in USD: a cost
/// reported past it (1e308, cents taken for dollars a million times over)
/// is refused rather than spend the budget for good.
pub const MOST_COST_USD: f64 = 10_000.0;

/// What the agent reported, as recorded in a task's status (field `agent`).
/// Absent fields are left out, never invented (e.g. codex prints no cost:
/// cost_usd is None unless prices are given).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Claude's `session_id`, Codex's `thread_id`: what resumes the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Claude's `num_turns` (model round trips); for Codex, the turns that
    /// ended (`turn.completed` and `turn.failed`), one per prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u32>,
    /// Claude's `is_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// Claude's `subtype` (`success`, `error_max_turns`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// A cost it reported that no attempt costs (less than 0, not a
    /// number, past `MOST_COST_USD`: 1e308, say), as it said it: counted
    /// nowhere, neither in the ledger nor the budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_refused: Option<String>,
    /// Input tokens not read from a cache, those written to one included
    /// (`cache_write_tokens` of them): Claude's `input_tokens` and
    /// `cache_creation_input_tokens`; Codex's `input_tokens` less its
    /// `cached_input_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    /// Claude's `permission_denials`: the tool calls its permission system
    /// refused (a headless run cannot ask), the first `DENIALS_KEPT` of
    /// them, each `Tool: what it was to do` (`Bash: git push origin HEAD`).
    /// A run that says `success` may have done less than asked for this.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_denials: Vec<String>,
    /// How many tool calls were refused, all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_tool_calls: Option<u32>,
    /// What the agent said last, its own account of what it did or why it
    /// did not (Claude's `result`, Codex's last `agent_message`), its first
    /// `MESSAGE_KEPT` characters: `why` shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_message: Option<String>,
    /// Codex's usage as it printed it: its thread's running totals, which
    /// hold an earlier run's when it resumed that thread. A later attempt
    /// that resumes the thread again counts only what it adds to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_usage: Option<ThreadUsage>,
}

/// Codex's `turn.completed` usage, the thread's totals (see
/// `Report::thread_usage`); a count it did not print is none, not 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadUsage {
    pub input_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Printed since codex-cli 0.147; absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u64>,
}

impl ThreadUsage {
    /// What `self` adds to the totals `before`, when it holds them all
    /// (the same thread, resumed); `None` otherwise.
    fn since(&self, before: &ThreadUsage) -> Option<ThreadUsage> {
        // A count printed now and not then is all this run's.
        let less = |now: Option<u64>, was: Option<u64>| match (now, was) {
            (Some(now), Some(was)) => now.checked_sub(was).map(Some),
            (now, _) => Some(now),
        };
        Some(ThreadUsage {
            input_tokens: self.input_tokens.checked_sub(before.input_tokens)?,
            cached_input_tokens: less(self.cached_input_tokens, before.cached_input_tokens)?,
            output_tokens: less(self.output_tokens, before.output_tokens)?,
            cache_write_input_tokens: less(
                self.cache_write_input_tokens,
                before.cache_write_input_tokens,
            )?,
        })
    }

    /// Sets `report`'s tokens from these, read as Claude's: Codex's
    /// `input_tokens` include the cached ones (OpenAI's usage: its
    /// `cached_tokens` are a detail of the input), Claude's do not; a
    /// status's `input_tokens` mean one thing, tokens not read from a
    /// cache, and `progress` adds like to like.
    fn set_tokens(&self, report: &mut Report) {
        let cached = self.cached_input_tokens.map(|c| c.min(self.input_tokens));
        report.input_tokens = Some(self.input_tokens - cached.unwrap_or(0));
        report.cache_read_tokens = cached;
        report.output_tokens = self.output_tokens;
        report.cache_write_tokens = self.cache_write_input_tokens;
    }
}

impl Outcome {
    /// A Codex run that resumed the thread whose totals were `before` (the
    /// attempt it resumed saw them, `session` its thread): its tokens and
    /// cost become what it added to them; its `thread_usage` stays the
    /// totals, for the next. A run of another thread, or totals below
    /// `before` (not the thread's running totals), are left as read.
    pub fn count_since(&mut self, session: &str, before: &ThreadUsage, prices: Option<&Prices>) {
        let report = &mut self.report;
        if report.session_id.as_deref() != Some(session) {
            return;
        }
        let Some(added) = report.thread_usage.and_then(|now| now.since(before)) else {
            return;
        };
        added.set_tokens(report);
        if let Some(prices) = prices {
            price(report, prices);
        }
    }
}

/// How much of an agent's last message a status keeps.
const MESSAGE_KEPT: usize = 2000;

/// `text`, trimmed, its first `MESSAGE_KEPT` characters (with a marker
/// when cut); none when it says nothing.
fn kept_message(text: Option<String>) -> Option<String> {
    let text = text?;
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut kept: String = text.chars().take(MESSAGE_KEPT).collect();
    if kept.len() < text.len() {
        kept += " [... cut]";
    }
    Some(kept)
}

/// USD per million tokens, to cost a run whose CLI prints no cost (codex).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub input: f64,
    pub cached_input: f64,
    /// Input written to the prompt cache: billed as input before GPT-5.6,
    /// at 1.25 times the input price from it on (OpenAI's prompt caching).
    pub cache_write: f64,
    pub output: f64,
}

/// The result read.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub report: Report,
    /// The agent says it failed, even if it exited 0.
    pub failure: Option<Failure>,
    /// Whether its output ends with its result (Claude) or its turn's end
    /// (Codex), no event after it: an agent stopped then had done no more
    /// (a wrapper that runs its CLI again has).
    pub ends_with_it: bool,
}

/// How the agent says it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Claude's subtype when it is not `success` (`error_max_turns`...);
    /// for `success` with `is_error`, its `terminal_reason` (`api_error`)
    /// and HTTP status, as `api_error (HTTP 429)`. Codex's event type
    /// (`turn.failed`, `error`).
    pub kind: String,
    /// What it said: Claude's `result`, or its `errors` joined with `; `;
    /// Codex's `error.message` or `message` (when that is itself a JSON
    /// error body, the message inside it).
    pub message: String,
    /// When the limit that refused the agent lifts, as its stream said
    /// (`resetsAt` of Claude's last `rate_limit_event` with status
    /// `rejected`), whatever its message says.
    pub limit_resets_at: Option<SystemTime>,
}

impl Failure {
    /// `agent error: <kind>: <first line of the message>`, used as the
    /// task's error.
    pub fn summary(&self) -> String {
        let first = self
            .message
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        format!("agent error: {}: {first}", self.kind)
    }
}

/// Reads the result from what the task wrote to stdout. `Err(why)` when
/// there is no readable result, `why` in plain words, to be shown as
/// `agent output unreadable: <why>`. `prices` cost a Codex run; Claude's
/// own `total_cost_usd` is always used for Claude (it knows the cache-write
/// rate, which `Prices` cannot say).
pub fn read(format: Format, stdout: &str, prices: Option<&Prices>) -> Result<Outcome, String> {
    match format {
        Format::ClaudeJson => read_claude(stdout),
        Format::CodexJsonl => read_codex(stdout.as_bytes(), prices),
    }
}

/// The session a run's output names when its result cannot be read (cut
/// by a timeout or a crash): Claude's stream-json names it in every event
/// from its first (`system`, `init`), Codex's `thread.started` opens its
/// events. Looked for in the output's first MiB. A retry can resume it.
pub fn session_in(format: Format, output: impl std::io::Read) -> Option<String> {
    let mut found = None;
    let head = std::io::BufReader::new(output.take(1 << 20));
    let _ = scan_json_lines(head, |value| {
        if found.is_none() {
            found = match format {
                Format::ClaudeJson => text(value.get("session_id")),
                Format::CodexJsonl => (value.get("type").and_then(Value::as_str)
                    == Some("thread.started"))
                .then(|| text(value.get("thread_id")))
                .flatten(),
            };
        }
    });
    found
}

/// What the CLI was doing when it was cut short (its timeout), when that
/// was waiting out a limit: Claude's stream ends in a `system` `api_retry`
/// event for HTTP 429 (a rate limit) or 529 (an overload), the CLI waiting
/// to send its request again, nothing after it. The limit stopped that
/// attempt, not its work: said in words. Codex says nothing of its own
/// retries before it gives up.
pub fn retrying_when_cut(format: Format, stdout: &str) -> Option<String> {
    if format != Format::ClaudeJson {
        return None;
    }
    let mut last = None;
    scan_json_lines(stdout.as_bytes(), |value| last = Some(value))
        .expect("reading a string cannot fail");
    let last = last?;
    let is = |key: &str, want: &str| last.get(key).and_then(Value::as_str) == Some(want);
    if !is("type", "system") || !is("subtype", "api_retry") {
        return None;
    }
    let status = last.get("error_status").and_then(Value::as_u64)?;
    if !matches!(status, 429 | 529) {
        return None;
    }
    let error = text(last.get("error")).unwrap_or_else(|| "no error named".to_owned());
    let attempt = match (count(last.get("attempt")), count(last.get("max_retries"))) {
        (Some(attempt), Some(max)) => format!(", retry {attempt} of {max}"),
        _ => String::new(),
    };
    Some(format!(
        "its timeout stopped it while Claude Code was retrying HTTP {status} ({error}{attempt})"
    ))
}

impl Report {
    /// The session a retry may resume: none where Claude answered a resume
    /// of a session it does not know, with a new one that has no turn.
    pub fn session_to_resume(&self) -> Option<&str> {
        self.session_id.as_deref().filter(|_| !self.resume_missed())
    }

    /// Whether it is Claude's answer to a resume of a session it does not
    /// know (`error_during_execution`, "No conversation found", no turn):
    /// neither that session nor the new one it names is one to resume.
    pub fn resume_missed(&self) -> bool {
        self.subtype.as_deref() == Some("error_during_execution") && self.turns == Some(0)
    }

    /// A report of a session only: what `session_in` found in an output
    /// whose result could not be read (or, with no session, an empty one).
    pub fn of_session(session_id: String) -> Report {
        Report {
            session_id: Some(session_id),
            ..Report::default()
        }
    }

    /// `2 tool calls refused`, when its permission system refused any.
    pub fn refused(&self) -> Option<String> {
        let n = self.refused_tool_calls.filter(|n| *n > 0)?;
        let s = if n == 1 { "" } else { "s" };
        Some(format!("{n} tool call{s} refused"))
    }

    /// What `refused` counts, named (the first of them), with how to allow
    /// them: for `why`.
    pub fn refused_in_full(&self) -> Option<String> {
        let summary = self.refused()?;
        let mut named = self.permission_denials.join("; ");
        let more = self.refused_tool_calls.unwrap_or(0) as usize;
        if more > self.permission_denials.len() {
            named += &format!("; and {} more", more - self.permission_denials.len());
        }
        Some(format!(
            "{summary} (a headless run cannot ask: allow them with --allowedTools or --permission-mode): {named}"
        ))
    }

    /// Whether it reports more than a session: a result was read.
    pub fn is_result(&self) -> bool {
        let without_session = Report {
            session_id: None,
            ..self.clone()
        };
        without_session != Report::default()
    }
}

const EMPTY: &str = "its output is empty";

// ---------------------------------------------------------------- Claude

fn read_claude(stdout: &str) -> Result<Outcome, String> {
    if stdout.trim().is_empty() {
        return Err(EMPTY.to_owned());
    }
    let lines = claude_lines(stdout);
    let whole: Option<Value>;
    let result = match lines.result.as_ref().and_then(claude_result) {
        Some(result) => result,
        None => {
            // A result pretty-printed over several lines: not what the CLI
            // prints, but cheap to accept.
            whole = serde_json::from_str(stdout.trim()).ok();
            let found = whole.as_ref().and_then(claude_result);
            found.ok_or_else(|| {
                lines.scan.why(
                    "no JSON object of type `result` in its output",
                    "--output-format json",
                )
            })?
        }
    };
    let report = claude_report(result);
    let failure = claude_failure(result, &report).map(|failure| Failure {
        limit_resets_at: lines.limit_event.as_ref().and_then(rejected_until),
        ..failure
    });
    Ok(Outcome {
        report,
        failure,
        ends_with_it: !lines.more,
    })
}

/// The object of type `result` in `value`: the value itself, or the last
/// one of an array (what `--verbose --output-format json` prints).
fn claude_result(value: &Value) -> Option<&Map<String, Value>> {
    let is_result = |v: &&Value| v.get("type").and_then(Value::as_str) == Some("result");
    match value {
        Value::Array(items) => items.iter().rev().find(is_result)?.as_object(),
        _ => Some(value).filter(is_result)?.as_object(),
    }
}

fn claude_report(result: &Map<String, Value>) -> Report {
    let usage = result.get("usage");
    let tokens = |key| usage.and_then(|u| u.get(key)).and_then(Value::as_u64);
    let (permission_denials, refused_tool_calls) = denials(result.get("permission_denials"));
    // Only `total_cost_usd`: very old releases called it `cost_usd`, and
    // some also printed a per-call `cost_usd` beside the total, so reading
    // it could report the wrong figure.
    let reported_cost = cost(result.get("total_cost_usd"));
    Report {
        session_id: text(result.get("session_id")),
        turns: count(result.get("num_turns")),
        is_error: result.get("is_error").and_then(Value::as_bool),
        subtype: text(result.get("subtype")),
        cost_usd: reported_cost.clone().ok().flatten(),
        cost_refused: reported_cost.err(),
        // Claude counts apart the input it wrote to its cache: input all
        // the same, not read from a cache, and billed above it.
        input_tokens: match (
            tokens("input_tokens"),
            tokens("cache_creation_input_tokens"),
        ) {
            (Some(input), Some(written)) => Some(input.saturating_add(written)),
            (input, written) => input.or(written),
        },
        output_tokens: tokens("output_tokens"),
        cache_read_tokens: tokens("cache_read_input_tokens"),
        cache_write_tokens: tokens("cache_creation_input_tokens"),
        // An API failure's `result` is its error, said as the task's.
        final_message: match result.get("is_error").and_then(Value::as_bool) {
            Some(true) => None,
            _ => kept_message(text(result.get("result"))),
        },
        permission_denials,
        refused_tool_calls,
        thread_usage: None,
    }
}

/// How many refused tool calls a status names (`refused_tool_calls`
/// counts them all).
const DENIALS_KEPT: usize = 20;

/// The first `permission_denials`, as `Tool: what it was to do`: the
/// call's command, else the file, path, URL or pattern it named (its first
/// line, cut at 200 characters), else the tool alone; and how many there
/// are (none when there are none).
fn denials(value: Option<&Value>) -> (Vec<String>, Option<u32>) {
    let items = match value {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => return (Vec::new(), None),
    };
    let said = |item: &Value| {
        let tool = text(item.get("tool_name")).unwrap_or_else(|| "a tool".to_owned());
        let input = item.get("tool_input");
        let what = ["command", "file_path", "path", "url", "pattern"]
            .iter()
            .find_map(|key| text(input.and_then(|i| i.get(*key))));
        match what {
            Some(what) => format!("{tool}: {}", format::first_line(&what, 200)),
            None => tool,
        }
    };
    let named = items.iter().take(DENIALS_KEPT).map(said).collect();
    (named, u32::try_from(items.len()).ok())
}

/// A failure when `is_error` is true or the subtype is not `success`.
/// A result with neither field says nothing: the exit code decides.
fn claude_failure(result: &Map<String, Value>, report: &Report) -> Option<Failure> {
    let subtype = report.subtype.as_deref();
    let failed_subtype = subtype.filter(|s| *s != "success");
    if report.is_error != Some(true) && failed_subtype.is_none() {
        return None;
    }
    let kind = match failed_subtype {
        Some(subtype) => subtype.to_owned(),
        // An API failure arrives as `success` with is_error: say why.
        None => api_error_kind(result),
    };
    Some(Failure {
        kind,
        message: claude_message(result),
        limit_resets_at: None,
    })
}

/// The `resetsAt` (epoch seconds or milliseconds) of a stream's last
/// `rate_limit_event`, when it says a limit rejected the agent's requests
/// (a later one that let them through says the limit lifted).
fn rejected_until(last: &Value) -> Option<SystemTime> {
    let info = last.get("rate_limit_info")?;
    if info.get("status")? != "rejected" {
        return None;
    }
    crate::agent::limits::epoch_number(info.get("resetsAt")?.as_u64()?)
}

/// `api_error (HTTP 429)`: the `terminal_reason` (when it tells more than
/// `completed`) and the `api_error_status`, whichever are there. The
/// status is kept because 429 is the surest sign of a rate limit.
fn api_error_kind(result: &Map<String, Value>) -> String {
    let reason = text(result.get("terminal_reason")).filter(|r| !r.is_empty() && r != "completed");
    let status = result.get("api_error_status").and_then(Value::as_u64);
    match (reason, status) {
        (Some(reason), Some(status)) => format!("{reason} (HTTP {status})"),
        (Some(reason), None) => reason,
        (None, Some(status)) => format!("api_error (HTTP {status})"),
        (None, None) => "is_error".to_owned(),
    }
}

/// The `result` text, else the `errors` (which replace it on `error_*`
/// subtypes).
fn claude_message(result: &Map<String, Value>) -> String {
    if let Some(text) = text(result.get("result")).filter(|t| !t.trim().is_empty()) {
        return text;
    }
    let errors: Vec<&str> = match result.get("errors") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(one)) => vec![one.as_str()],
        _ => Vec::new(),
    };
    if errors.is_empty() {
        NO_MESSAGE.to_owned()
    } else {
        errors.join("; ")
    }
}

const NO_MESSAGE: &str = "it gave no message";

// --------------------------------------------------------------- helpers

/// What a Claude output's lines say: its last line holding a result, its
/// last `rate_limit_event`, and what the scan found. Only these are kept,
/// so that a stream of hundreds of MB is not held in memory parsed.
struct ClaudeLines {
    result: Option<Value>,
    limit_event: Option<Value>,
    /// Whether events follow its last result.
    more: bool,
    scan: Scan,
}

/// What a scan of an output's lines found besides its JSON values.
#[derive(Default)]
struct Scan {
    /// How many lines parsed as JSON.
    values: usize,
    /// The last line that starts like a JSON object (or any JSON cut
    /// short) but does not parse: a hint at why there is no result.
    broken: Option<(usize, serde_json::Error)>,
    /// Whether any line holds more than white space.
    printed: bool,
}

impl Scan {
    /// `what`, with a hint: a line cut short, or no JSON at all (the CLI
    /// run without `flag`?).
    fn why(&self, what: &str, flag: &str) -> String {
        match &self.broken {
            Some((line, e)) if e.is_eof() => format!("{what} (line {line} is cut short)"),
            Some((line, e)) => format!("{what} (line {line} is not valid JSON: {e})"),
            None if self.values == 0 => {
                format!("{what}: it printed no JSON (was it run with {flag}?)")
            }
            None => what.to_owned(),
        }
    }
}

/// The lines that parse as a JSON object or array, as `ClaudeLines`; the
/// others (warnings printed before the JSON, tracing lines) are skipped.
fn claude_lines(stdout: &str) -> ClaudeLines {
    let (mut result, mut limit_event, mut more) = (None, None, false);
    let scan = scan_json_lines(stdout.as_bytes(), |value| {
        // A limit's news is no work done after the result.
        if value.get("type").is_some_and(|t| t == "rate_limit_event") {
            limit_event = Some(value);
        } else if claude_result(&value).is_some() {
            result = Some(value);
            more = false;
        } else {
            more = result.is_some();
        }
    })
    .expect("reading a string cannot fail");
    ClaudeLines {
        result,
        limit_event,
        more,
        scan,
    }
}

/// Gives `each` the value of every line that parses as a JSON object or
/// array, one line in memory at a time.
fn scan_json_lines(mut reader: impl BufRead, mut each: impl FnMut(Value)) -> std::io::Result<Scan> {
    let mut scan = Scan::default();
    let mut bytes = Vec::new();
    for n in 1.. {
        bytes.clear();
        if reader.read_until(b'\n', &mut bytes)? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&bytes);
        let line = without_leading_marks(line.trim());
        scan.printed |= !line.is_empty();
        if !line.starts_with('{') && !line.starts_with('[') {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value) => {
                scan.values += 1;
                each(value);
            }
            // Not "[INFO] ..." and the like: only what is surely JSON.
            Err(e) if e.is_eof() || line.starts_with('{') => scan.broken = Some((n, e)),
            Err(_) => {}
        }
    }
    Ok(scan)
}

/// `line` without what a wrapper may print before its JSON: a byte-order
/// mark, terminal escapes (`ESC [ ... m`, a colour reset).
fn without_leading_marks(mut line: &str) -> &str {
    loop {
        let rest = line.trim_start_matches('\u{feff}');
        let Some(escape) = rest.strip_prefix("\x1b[") else {
            return rest;
        };
        // Its parameters, then the letter that ends it.
        let params = escape.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';');
        let mut chars = params.chars();
        match chars.next() {
            Some(c) if c.is_ascii_alphabetic() => line = chars.as_str(),
            _ => return rest,
        }
    }
}

/// A string the agent printed, without escape sequences, direction
/// overrides or control characters but its tabs and line breaks (`terminal::without_escapes`):
/// what it says reaches the views, which must not hand its escapes (or a
/// web page's it quotes) to the person's terminal, and its dependents'
/// prompts, which quote it as it was (a Makefile's tabs).
fn text(value: Option<&Value>) -> Option<String> {
    let raw = value.and_then(Value::as_str)?;
    let acts = |c: char| c != '\n' && c != '\t' && crate::agent::terminal::acts_on_a_terminal(c);
    if !raw.contains(acts) {
        return Some(raw.to_owned());
    }
    Some(crate::agent::terminal::without_escapes(raw))
}

fn count(value: Option<&Value>) -> Option<u32> {
    u32::try_from(value.and_then(Value::as_u64)?).ok()
}

/// A cost: a number from 0 to `MOST_COST_USD`, or a string of one
/// (quoted, it still says what was spent); none when there is no value;
/// `Err` with what it said when it is none of these.
fn cost(value: Option<&Value>) -> Result<Option<f64>, String> {
    let value = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let number = match value {
        Value::String(text) => text.trim().parse().ok(),
        value => value.as_f64(),
    };
    match number.filter(|cost| believable(*cost)) {
        Some(cost) => Ok(Some(cost)),
        // Shown as it was said, but for what would act on a terminal.
        None => Err(match value {
            Value::String(text) => escaped(&format::first_line(text, 40), &[]).into_owned(),
            value => format::first_line(&value.to_string(), 40),
        }),
    }
}

/// Whether `cost` is one an attempt can have cost: 0 to `MOST_COST_USD`.
fn believable(cost: f64) -> bool {
    (0.0..=MOST_COST_USD).contains(&cost)
}
