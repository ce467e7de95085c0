//! Reading Codex's events (`codex exec --json`), one line at a time.

use super::*;

/// How a Codex turn ended.
pub(super) enum Ending {
    Completed,
    Failed(String),
}

/// Reads Codex's events one line at a time (`reader`: its whole output,
/// which its session id starts and its usage ends): a long session's
/// output is never held in memory.
pub fn read_codex(reader: impl BufRead, prices: Option<&Prices>) -> Result<Outcome, String> {
    let mut run = CodexRun::default();
    let scan = scan_json_lines(reader, |value| run.take(&value))
        .map_err(|e| format!("cannot read its output: {e}"))?;
    if !scan.printed {
        return Err(EMPTY.to_owned());
    }
    if run.events == 0 && run.legacy {
        return Err("the old codex event format (before 0.44): upgrade codex".to_owned());
    }
    if run.events == 0 {
        return Err(scan.why("no codex JSON events in its output", "--json"));
    }
    // An `error` followed by more events is retry chatter (`Reconnecting...
    // 2/5`); one that is the last event is what ended the run, even without
    // a `turn.failed` after it.
    let failure = match (run.ending, run.last_error) {
        (_, Some(message)) if run.error_last => Some(codex_failure("error", &message)),
        (Some(Ending::Failed(message)), _) => Some(codex_failure("turn.failed", &message)),
        (Some(Ending::Completed), _) => None,
        (None, _) => {
            let what = "no `turn.completed` event: the run ended without finishing a turn";
            return Err(scan.why(what, "--json"));
        }
    };
    let mut report = run.report;
    report.turns = Some(run.turns);
    if let Some(prices) = prices {
        price(&mut report, prices);
    }
    Ok(Outcome {
        report,
        failure,
        ends_with_it: !run.more,
    })
}

/// What Codex's events have said so far.
#[derive(Default)]
pub(super) struct CodexRun {
    report: Report,
    ending: Option<Ending>,
    turns: u32,
    last_error: Option<String>,
    /// Whether the last event so far is an `error` event.
    error_last: bool,
    /// Whether events follow the last turn's end.
    more: bool,
    events: usize,
    /// A line of the format before 0.44 was seen.
    legacy: bool,
}

impl CodexRun {
    fn take(&mut self, value: &Value) {
        let Some(kind) = value.get("type").and_then(Value::as_str) else {
            // `{"id":"0","msg":{"type":...}}`: the format before 0.44.
            self.legacy |= value.get("msg").is_some_and(Value::is_object);
            return;
        };
        self.events += 1;
        self.error_last = false;
        self.more = self.ending.is_some();
        match kind {
            "thread.started" => {
                self.report.session_id =
                    text(value.get("thread_id")).or(self.report.session_id.take());
            }
            "turn.completed" => {
                self.more = false;
                self.turns = self.turns.saturating_add(1);
                self.ending = Some(Ending::Completed);
                // The usage is the thread's running total, not the turn's
                // (codex-rs/exec event_processor_with_jsonl_output.rs sends
                // `usage.total`; openai/codex#17539): the last one is the
                // run's, and summing would count earlier turns again. (A
                // resumed thread's total may hold the earlier runs' too.)
                if let Some(usage) = value.get("usage") {
                    read_codex_usage(usage, &mut self.report);
                }
            }
            "turn.failed" => {
                self.more = false;
                self.turns = self.turns.saturating_add(1);
                let message = value.get("error").and_then(|e| text(e.get("message")));
                let message = message.or_else(|| self.last_error.clone());
                self.ending = Some(Ending::Failed(
                    message.unwrap_or_else(|| NO_MESSAGE.to_owned()),
                ));
            }
            "item.completed" => {
                let item = value.get("item");
                if item.and_then(|i| i.get("type")).and_then(Value::as_str) == Some("agent_message")
                {
                    let said = kept_message(text(item.and_then(|i| i.get("text"))));
                    self.report.final_message = said.or(self.report.final_message.take());
                }
            }
            "error" => {
                self.last_error =
                    Some(text(value.get("message")).unwrap_or_else(|| NO_MESSAGE.to_owned()));
                self.error_last = true;
            }
            _ => {}
        }
    }
}

/// Reads Codex's `usage`, the thread's totals, into `report`.
pub(super) fn read_codex_usage(usage: &Value, report: &mut Report) {
    let tokens = |key| usage.get(key).and_then(Value::as_u64);
    let Some(input_tokens) = tokens("input_tokens") else {
        return;
    };
    let totals = ThreadUsage {
        input_tokens,
        cached_input_tokens: tokens("cached_input_tokens"),
        output_tokens: tokens("output_tokens"),
        cache_write_input_tokens: tokens("cache_write_input_tokens"),
    };
    totals.set_tokens(report);
    report.thread_usage = Some(totals);
}

/// Sets the cost of a report of token counts, at `prices`: refused, as a
/// reported one is, when it is none an attempt can have cost.
pub(super) fn price(report: &mut Report, prices: &Prices) {
    let cost = codex_cost(report, prices);
    report.cost_usd = cost.filter(|cost| believable(*cost));
    report.cost_refused = cost
        .filter(|cost| !believable(*cost))
        .map(|cost| format!("{cost:e} (its tokens at agent.prices)"));
}

/// The cost at `prices`: the input not read from a cache at the full
/// price, but what it wrote to the cache (part of it) at the cache-write
/// price, and the cached at its own (see `read_codex_usage`).
/// `output_tokens` already include the reasoning tokens.
pub(super) fn codex_cost(report: &Report, prices: &Prices) -> Option<f64> {
    let uncached = report.input_tokens?;
    let written = report.cache_write_tokens.unwrap_or(0).min(uncached);
    let cached = report.cache_read_tokens.unwrap_or(0);
    let output = report.output_tokens.unwrap_or(0);
    let cost = ((uncached - written) as f64 * prices.input
        + written as f64 * prices.cache_write
        + cached as f64 * prices.cached_input
        + output as f64 * prices.output)
        / 1e6;
    cost.is_finite().then_some(cost)
}

pub(super) fn codex_failure(kind: &str, message: &str) -> Failure {
    Failure {
        kind: kind.to_owned(),
        message: inner_message(message),
        limit_resets_at: None,
    }
}

/// The message inside an error that is itself a JSON error body (as a
/// non-retryable 400 is: `{"type":"error","error":{"message":...}}`), so
/// that its first line says something; otherwise `message` as it is.
pub(super) fn inner_message(message: &str) -> String {
    let inner = serde_json::from_str::<Value>(message.trim())
        .ok()
        .and_then(|body| {
            let error = body.get("error");
            text(error.and_then(|e| e.get("message")))
                .or_else(|| text(body.get("detail")))
                .or_else(|| text(body.get("message")))
                .or_else(|| text(error))
        });
    inner
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| message.to_owned())
}
