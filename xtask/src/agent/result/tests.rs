//! Tests of `agent::result`, against the recorded outputs.

use std::time::{Duration, UNIX_EPOCH};

use super::*;

// By the crate's folder: the codex tests are read from a file below.
macro_rules! claude {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/agents/claude/",
            $name
        ))
    };
}
macro_rules! codex {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/agents/codex/",
            $name
        ))
    };
}

fn claude(stdout: &str) -> Outcome {
    read(Format::ClaudeJson, stdout, None).unwrap()
}

fn codex(stdout: &str) -> Outcome {
    read(Format::CodexJsonl, stdout, None).unwrap()
}

fn summary(outcome: &Outcome) -> String {
    outcome.failure.as_ref().expect("a failure").summary()
}

/// `success.json`'s `result`: the agent's own account.
const SUCCESS_MESSAGE: &str = "Added a `--dry-run` flag to `cargo xtask release`. With the flag set, the command prints the version bump, the changelog entry and the tag it would create, then exits without writing files or running git.\n\nChanged:\n- `xtask/src/release.rs`: new `dry_run` field on `ReleaseArgs`, early return before `write_changelog` and `git_tag`\n- `xtask/tests/it/release.rs`: new test `dry_run_writes_nothing`\n\n`cargo test -p xtask` passes (13 tests). I did not push: `git push` was denied by the permission settings.";

/// What `codex exec --json` prints, read.
mod codex;

#[test]
fn claude_success_is_read_exactly() {
    let outcome = claude(claude!("success.json"));
    assert_eq!(
        outcome.report,
        Report {
            session_id: Some("4b8e2f61-9c3a-4d17-b5e2-7a1f0c9d3e58".into()),
            turns: Some(7),
            is_error: Some(false),
            subtype: Some("success".into()),
            cost_usd: Some(0.1629377),
            cost_refused: None,
            input_tokens: Some(38 + 18342),
            output_tokens: Some(1893),
            cache_read_tokens: Some(201554),
            cache_write_tokens: Some(18342),
            permission_denials: vec!["Bash: git push origin HEAD".into()],
            refused_tool_calls: Some(1),
            final_message: Some(SUCCESS_MESSAGE.into()),
            thread_usage: None,
        }
    );
    assert_eq!(outcome.failure, None);
}

#[test]
fn claude_prices_are_not_used() {
    let prices = Prices {
        input: 100.0,
        cached_input: 100.0,
        cache_write: 100.0,
        output: 100.0,
    };
    let outcome = read(Format::ClaudeJson, claude!("success.json"), Some(&prices)).unwrap();
    assert_eq!(outcome.report.cost_usd, Some(0.1629377));
}

#[test]
fn claude_is_error_with_success_subtype_is_a_failure() {
    let outcome = claude(claude!("is_error.json"));
    assert_eq!(outcome.report.is_error, Some(true));
    assert_eq!(outcome.report.subtype.as_deref(), Some("success"));
    assert_eq!(
        outcome.report.session_id.as_deref(),
        Some("e5c1a8f2-6d3b-4e97-a0c4-2b9f7e1d6a83")
    );
    assert_eq!(outcome.report.cost_usd, Some(0.0));
    let failure = outcome.failure.as_ref().unwrap();
    assert_eq!(failure.kind, "api_error (HTTP 500)");
    assert_eq!(
        summary(&outcome),
        "agent error: api_error (HTTP 500): API Error: 500 Internal server error. \
         This is a server-side issue, usually temporary — try again in a moment. \
         If it persists, check status.claude.com."
    );
}

#[test]
fn claude_max_turns_reads_errors() {
    let outcome = claude(claude!("error_max_turns.json"));
    assert_eq!(outcome.report.turns, Some(26));
    assert_eq!(outcome.report.cost_usd, Some(0.64498635));
    assert_eq!(outcome.report.cache_read_tokens, Some(1189402));
    assert_eq!(
        outcome.report.session_id.as_deref(),
        Some("9a3f6c1e-2b8d-4e74-a5c9-0d1e7b4f8a62")
    );
    assert_eq!(
        outcome.failure,
        Some(Failure {
            kind: "error_max_turns".into(),
            message: "Reached maximum number of turns (25)".into(),
            limit_resets_at: None,
        })
    );
    assert_eq!(
        summary(&outcome),
        "agent error: error_max_turns: Reached maximum number of turns (25)"
    );
}

#[test]
fn claude_error_during_execution_has_no_tokens() {
    let outcome = claude(claude!("error_during_execution.json"));
    assert_eq!(
        outcome.report,
        Report {
            session_id: Some("2f7c0e9b-4a6d-4c1e-8b35-d9a0f6e2c714".into()),
            turns: Some(0),
            is_error: Some(true),
            subtype: Some("error_during_execution".into()),
            cost_usd: Some(0.0),
            ..Report::default()
        }
    );
    assert_eq!(
        summary(&outcome),
        "agent error: error_during_execution: No conversation found with session ID: \
         6a1e4c9f-3b7d-4f20-a8c5-b2d9e0f7c316"
    );
}

#[test]
fn claude_rate_limits_keep_the_status() {
    let cases = [
        (
            claude!("rate_limited.json"),
            "agent error: api_error (HTTP 429): You've hit your session limit · resets 9am (Europe/Berlin)",
        ),
        (
            claude!("rate_limited_api_429.json"),
            "agent error: api_error (HTTP 429): API Error: Request rejected (429) · This request \
             would exceed your organization rate limit. Please try again later.",
        ),
        (
            claude!("rate_limited_legacy.json"),
            "agent error: is_error: Claude AI usage limit reached|1755806400",
        ),
        (
            claude!("stream_rate_limited.jsonl"),
            "agent error: api_error (HTTP 429): You've hit your session limit · resets 9am (Europe/Berlin)",
        ),
    ];
    for (stdout, expected) in cases {
        assert_eq!(summary(&claude(stdout)), expected);
    }
}

#[test]
fn a_rejected_rate_limit_event_says_when_the_limit_lifts() {
    let outcome = claude(claude!("stream_rate_limited.jsonl"));
    let at = outcome.failure.and_then(|f| f.limit_resets_at);
    assert_eq!(at, Some(UNIX_EPOCH + Duration::from_secs(1_790_060_400)));
    // In milliseconds, the same time; past what a clock writes, none.
    let resets_at = |n: &str| {
        let stream = claude!("stream_rate_limited.jsonl").replace("1790060400", n);
        claude(&stream).failure.unwrap().limit_resets_at
    };
    assert_eq!(resets_at("1790060400000"), at);
    assert_eq!(resets_at("999999999999999"), None);
    // An event that let the request through says nothing of a limit.
    let allowed = claude!("stream_rate_limited.jsonl").replace("\"rejected\"", "\"allowed\"");
    assert_eq!(claude(&allowed).failure.unwrap().limit_resets_at, None);
    // Nor does a rejection a later event says has lifted.
    let lifted = format!(
        "{}\n{}",
        r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","resetsAt":1790060400}}"#,
        claude!("stream_rate_limited.jsonl")
    );
    let later = format!(
        "{}\n{}",
        claude!("stream_rate_limited.jsonl"),
        r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed"}}"#
    );
    assert!(claude(&lifted).failure.unwrap().limit_resets_at.is_some());
    assert_eq!(claude(&later).failure.unwrap().limit_resets_at, None);
}

#[test]
fn claude_stream_reads_the_result_line() {
    let outcome = claude(claude!("stream.jsonl"));
    assert_eq!(
        outcome.report,
        Report {
            session_id: Some("1e9b5c3a-7d2f-4a68-b0e4-c5f8a1d7e293".into()),
            turns: Some(4),
            is_error: Some(false),
            subtype: Some("success".into()),
            cost_usd: Some(0.05772385),
            input_tokens: Some(6 + 6805),
            output_tokens: Some(598),
            cache_read_tokens: Some(75637),
            cache_write_tokens: Some(6805),
            final_message: Some("Fixed `parse_duration` in `xtask/src/duration.rs`: it now accepts the `h` unit and returns `ParseError::Empty` for an empty string instead of panicking on `split_at`. `cargo test -p xtask` passes (9 tests).".into()),
            ..Report::default()
        }
    );
    assert_eq!(outcome.failure, None);
}

#[test]
fn claude_stream_error() {
    let outcome = claude(claude!("stream_error.jsonl"));
    assert_eq!(outcome.report.turns, Some(2));
    assert_eq!(outcome.report.cost_usd, Some(0.0211839));
    assert_eq!(outcome.report.output_tokens, Some(118));
    assert_eq!(
        summary(&outcome),
        "agent error: api_error (HTTP 529): API Error: 529 Overloaded. This is a server-side \
         issue, usually temporary — try again in a moment. If it persists, check \
         https://status.claude.com."
    );
}

#[test]
fn claude_verbose_array_reads_its_last_result() {
    let outcome = claude(claude!("success_verbose_array.json"));
    assert_eq!(
        outcome.report,
        Report {
            session_id: Some("0c6d9a2e-5b71-4f3e-8d24-91e7a3b6c5f0".into()),
            turns: Some(1),
            is_error: Some(false),
            subtype: Some("success".into()),
            cost_usd: Some(0.0045903),
            input_tokens: Some(3),
            output_tokens: Some(5),
            cache_read_tokens: Some(15021),
            cache_write_tokens: Some(0),
            final_message: Some("pong".into()),
            ..Report::default()
        }
    );
}

#[test]
fn claude_skips_warning_lines_around_the_json() {
    let stdout = format!(
        "⚠ claude.ai connectors are disabled because ANTHROPIC_API_KEY is set · Unset it\n\
         Warning: no stdin data received in 3s, proceeding without it.\n{}\n{{not json\n",
        claude!("success.json").trim()
    );
    assert_eq!(claude(&stdout), claude(claude!("success.json")));
}

#[test]
fn claude_result_over_several_lines() {
    let stdout =
        "{\n  \"type\": \"result\",\n  \"subtype\": \"success\",\n  \"is_error\": false\n}\n";
    let outcome = claude(stdout);
    assert_eq!(outcome.report.subtype.as_deref(), Some("success"));
    assert_eq!(outcome.failure, None);
}

#[test]
fn claude_unreadable_outputs_say_why() {
    let success = claude!("success.json");
    let cut = &success[..success.len() / 2];
    let cases = [
        ("", "its output is empty"),
        (" \n\n", "its output is empty"),
        (
            cut,
            "no JSON object of type `result` in its output (line 1 is cut short)",
        ),
        (
            "Error: Invalid API key\n",
            "no JSON object of type `result` in its output: it printed no JSON \
             (was it run with --output-format json?)",
        ),
        (
            "{\"type\":\"system\",\"subtype\":\"init\"}\n{\"type\":\"assistant\"}\n",
            "no JSON object of type `result` in its output",
        ),
        (
            "{\"type\":\"result\",}\n",
            "no JSON object of type `result` in its output \
             (line 1 is not valid JSON: trailing comma at line 1 column 18)",
        ),
        (
            codex!("success.jsonl"),
            "no JSON object of type `result` in its output",
        ),
    ];
    for (stdout, why) in cases {
        assert_eq!(
            read(Format::ClaudeJson, stdout, None),
            Err(why.to_owned()),
            "{stdout:?}"
        );
    }
}

#[test]
fn a_quoted_cost_is_read_and_a_cost_that_is_none_is_left_out() {
    let with_cost = |cost: &str| {
        let stdout = format!(r#"{{"type":"result","subtype":"success","total_cost_usd":{cost}}}"#);
        claude(&stdout).report.cost_usd
    };
    assert_eq!(with_cost(r#""0.5""#), Some(0.5));
    assert_eq!(with_cost(r#"" 2 ""#), Some(2.0));
    for odd in [
        r#""abc""#, r#""-1""#, r#""NaN""#, r#""inf""#, "true", "[1]", "1e308",
    ] {
        assert_eq!(with_cost(odd), None, "{odd}");
    }
    // Past what one attempt costs: refused, as said.
    let stdout = r#"{"type":"result","subtype":"success","total_cost_usd":"10000.01"}"#;
    assert_eq!(
        claude(stdout).report.cost_refused.as_deref(),
        Some("10000.01")
    );
    let stdout = r#"{"type":"result","subtype":"success","total_cost_usd":"\u001b[2J"}"#;
    assert_eq!(
        claude(stdout).report.cost_refused.as_deref(),
        Some("\\e[2J")
    );
    assert_eq!(with_cost("10000"), Some(10000.0));
    assert_eq!(with_cost("null"), None);
    let stdout = r#"{"type":"result","subtype":"success","total_cost_usd":null}"#;
    assert_eq!(claude(stdout).report.cost_refused, None);
}

#[test]
fn claude_result_after_a_byte_order_mark_or_escapes_is_read() {
    let result = claude!("success.json").trim();
    for prefix in ["\u{feff}", "\x1b[0m", "\x1b[1;32m\x1b[K", "\u{feff}\x1b[0m"] {
        let outcome = claude(&format!("{prefix}{result}\n"));
        assert_eq!(outcome.report.cost_usd, Some(0.1629377), "{prefix:?}");
    }
}

#[test]
fn claude_odd_fields_are_left_out() {
    let stdout = r#"{"type":"result","subtype":5,"is_error":"yes","num_turns":99999999999,
        "total_cost_usd":-1,"cost_usd":0.5,"session_id":null,
        "usage":{"input_tokens":-3,"output_tokens":1.5,"cache_read_input_tokens":1e300,
        "cache_creation_input_tokens":18446744073709551615}}"#
        .replace('\n', "");
    let outcome = claude(&stdout);
    assert_eq!(
        outcome.report,
        Report {
            cost_refused: Some("-1".into()),
            input_tokens: Some(u64::MAX),
            cache_write_tokens: Some(u64::MAX),
            ..Report::default()
        }
    );
    assert_eq!(
        outcome.failure, None,
        "no verdict in it: the exit code decides"
    );
    // A number too large for a float is not JSON serde accepts.
    assert!(read(
        Format::ClaudeJson,
        r#"{"type":"result","num_turns":1e400}"#,
        None
    )
    .is_err());
}

#[test]
fn claude_failure_kinds() {
    let kind = |json: &str| claude(json).failure.map(|f| (f.kind, f.message));
    let pair = |k: &str, m: &str| Some((k.to_owned(), m.to_owned()));
    assert_eq!(
        kind(r#"{"type":"result","subtype":"error","result":"x"}"#),
        pair("error", "x")
    );
    assert_eq!(
        kind(r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":401}"#),
        pair("api_error (HTTP 401)", NO_MESSAGE)
    );
    assert_eq!(
        kind(r#"{"type":"result","is_error":true,"terminal_reason":"completed","result":""}"#),
        pair("is_error", NO_MESSAGE)
    );
    assert_eq!(
        kind(
            r#"{"type":"result","subtype":"error_max_budget_usd","is_error":true,"errors":["a","b"]}"#
        ),
        pair("error_max_budget_usd", "a; b")
    );
    assert_eq!(
        kind(
            r#"{"type":"result","is_error":true,"terminal_reason":"prompt_too_long","result":"Prompt is too long"}"#
        ),
        pair("prompt_too_long", "Prompt is too long")
    );
    assert_eq!(
        kind(r#"{"type":"result","subtype":"success","is_error":false}"#),
        None
    );
}

#[test]
fn claude_last_result_wins() {
    let stdout = format!(
        "{}\n{}",
        claude!("is_error.json").trim(),
        claude!("success.json").trim()
    );
    assert_eq!(claude(&stdout).failure, None);
}

#[test]
fn no_input_panics() {
    let fixtures = [
        claude!("success.json"),
        claude!("stream_error.jsonl"),
        claude!("success_verbose_array.json"),
        codex!("success.jsonl"),
        codex!("turn_failed_invalid_request.jsonl"),
        codex!("legacy_msg_format.jsonl"),
    ];
    for fixture in fixtures {
        let ends = (0..=fixture.len()).filter(|&i| fixture.is_char_boundary(i));
        for end in ends.step_by(7) {
            for format in [Format::ClaudeJson, Format::CodexJsonl] {
                let prices = Prices {
                    input: f64::MAX,
                    cached_input: f64::MAX,
                    cache_write: f64::MAX,
                    output: f64::MAX,
                };
                let _ = read(format, &fixture[..end], Some(&prices));
                let _ = read(format, &fixture[end..], None);
            }
        }
    }
    let deep = "[".repeat(100_000);
    assert!(read(Format::ClaudeJson, &deep, None).is_err());
    assert!(read(Format::CodexJsonl, &"{\"a\":".repeat(100_000), None).is_err());
}

#[test]
fn report_serializes_only_what_is_there() {
    let report = Report {
        session_id: Some("s".into()),
        cost_usd: Some(0.5),
        ..Report::default()
    };
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(json, r#"{"session_id":"s","cost_usd":0.5}"#);
    assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
    assert_eq!(
        serde_json::from_str::<Report>("{}").unwrap(),
        Report::default()
    );
}

#[test]
fn summary_takes_the_first_line_that_says_something() {
    let failure = Failure {
        kind: "error".into(),
        message: "\n  first  \nsecond".into(),
        limit_resets_at: None,
    };
    assert_eq!(failure.summary(), "agent error: error: first");
}

/// The recorded stream cut after its first `n` lines, as a timeout cuts it.
fn stream_error_cut_at(n: usize) -> String {
    let lines: Vec<&str> = claude!("stream_error.jsonl").lines().take(n).collect();
    lines.join("\n") + "\n"
}

#[test]
fn a_stream_cut_while_the_cli_retries_an_overload_says_so() {
    let cut = stream_error_cut_at(7);
    assert_eq!(
        retrying_when_cut(Format::ClaudeJson, &cut).as_deref(),
        Some("its timeout stopped it while Claude Code was retrying HTTP 529 (overloaded, retry 3 of 10)")
    );
    // Its last line not ended, or a line that is not JSON after it: the
    // same last event.
    assert!(retrying_when_cut(Format::ClaudeJson, cut.trim_end()).is_some());
    let noted = format!("{cut}[debug] waiting 2354 ms\n");
    assert!(retrying_when_cut(Format::ClaudeJson, &noted).is_some());
    let as_429 = cut.replace("\"error_status\":529", "\"error_status\":429");
    assert!(retrying_when_cut(Format::ClaudeJson, &as_429).is_some());
}

#[test]
fn a_stream_cut_otherwise_is_no_limit() {
    // Cut as it worked: its last event is a tool's result.
    assert_eq!(
        retrying_when_cut(Format::ClaudeJson, &stream_error_cut_at(4)),
        None
    );
    // Retrying what no wait cures (a key refused), or with no status.
    let cut = stream_error_cut_at(7);
    for other in [
        "\"error_status\":401",
        "\"error_status\":500",
        "\"error_status\":\"529\"",
        "\"error_status\":null",
    ] {
        let changed = cut.replace("\"error_status\":529", other);
        assert_eq!(
            retrying_when_cut(Format::ClaudeJson, &changed),
            None,
            "{other}"
        );
    }
    // After the retries, the model answered: it worked on.
    let answered = stream_error_cut_at(3).lines().last().unwrap().to_owned();
    assert_eq!(
        retrying_when_cut(Format::ClaudeJson, &format!("{cut}{answered}\n")),
        None
    );
    // Codex says nothing of its retries.
    assert_eq!(retrying_when_cut(Format::CodexJsonl, &cut), None);
}

/// The first 20 refused calls are named, every one counted; each says the
/// command, file, path, URL or pattern it was for.
#[test]
fn refused_tool_calls_are_named_and_counted() {
    let mut denials: Vec<serde_json::Value> = (0..21)
        .map(|i| serde_json::json!({"tool_name": "Write", "tool_use_id": "t", "tool_input": {"file_path": format!("/x/{i}.rs"), "content": "..."}}))
        .collect();
    denials.push(serde_json::json!({"tool_name": "WebFetch", "tool_input": {"url": "https://example.com", "prompt": "?"}}));
    denials.push(
        serde_json::json!({"tool_name": "Bash", "tool_input": {"command": "rm -rf build\nls"}}),
    );
    let result = serde_json::json!({"type": "result", "subtype": "success", "is_error": false, "permission_denials": denials});
    let report = claude(&result.to_string()).report;
    assert_eq!(report.refused_tool_calls, Some(23));
    assert_eq!(report.permission_denials.len(), 20);
    assert_eq!(report.permission_denials[0], "Write: /x/0.rs");
    assert_eq!(report.refused().unwrap(), "23 tool calls refused");
    assert!(report
        .refused_in_full()
        .unwrap()
        .ends_with("Write: /x/19.rs; and 3 more"));
    let few = serde_json::json!({"type": "result", "subtype": "success", "permission_denials": &denials[21..]});
    let report = claude(&few.to_string()).report;
    assert_eq!(
        report.permission_denials,
        ["WebFetch: https://example.com", "Bash: rm -rf build"]
    );
    let none =
        serde_json::json!({"type": "result", "subtype": "success", "permission_denials": []});
    assert_eq!(claude(&none.to_string()).report.refused(), None);
}

/// An agent's last message is kept to 2,000 characters, cut visibly; an
/// API failure's `result` is its error, not a message.
#[test]
fn the_last_message_is_kept_short_and_an_error_is_not_one() {
    let long = "é".repeat(2500);
    let result = serde_json::json!({"type": "result", "subtype": "success", "result": long});
    let kept = claude(&result.to_string()).report.final_message.unwrap();
    assert_eq!(kept, format!("{} [... cut]", "é".repeat(2000)));
    let outcome = claude(claude!("is_error.json"));
    assert_eq!(outcome.report.final_message, None);
}

/// An output that ends with its result (Claude) or its turn's end (Codex)
/// says so; one with events after it (its CLI run again) does not.
#[test]
fn an_output_with_events_after_its_result_does_not_end_with_it() {
    assert!(claude(claude!("success.json")).ends_with_it);
    assert!(codex(codex!("success.jsonl")).ends_with_it);
    let init = "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"next\"}\n";
    assert!(!claude(&format!("{}{init}", claude!("success.json"))).ends_with_it);
    let limit = "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"allowed\"}}\n";
    assert!(claude(&format!("{}{limit}", claude!("success.json"))).ends_with_it);
    let started = "{\"type\":\"turn.started\"}\n";
    assert!(!codex(&format!("{}{started}", codex!("success.jsonl"))).ends_with_it);
}
