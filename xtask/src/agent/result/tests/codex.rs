//! Codex's `codex exec --json` events, read: usage, failures, odd output.

use super::*;

#[test]
fn codex_success_reads_the_last_total() {
    let outcome = codex(codex!("success.jsonl"));
    assert_eq!(
        outcome.report,
        Report {
            session_id: Some("019ff9a2-4c1e-7d30-9b8e-3f6a1c2d5e47".into()),
            turns: Some(1),
            input_tokens: Some(84213 - 71424),
            output_tokens: Some(2318),
            cache_read_tokens: Some(71424),
            cache_write_tokens: Some(0),
            // Its last agent message, not the first ("I'll add the flag").
            final_message: Some("Added `--dry-run` to `cargo xtask release`: it prints the planned version bump, changelog entry and tag, then exits before any file or git write. Changed `xtask/src/release.rs` and added a test in `xtask/tests/it/release.rs`; `cargo test -p xtask` passes (13 tests).".into()),
            // The thread's totals as printed, for a run that resumes it.
            thread_usage: Some(ThreadUsage {
                input_tokens: 84213,
                cached_input_tokens: Some(71424),
                output_tokens: Some(2318),
                cache_write_input_tokens: Some(0),
            }),
            ..Report::default()
        }
    );
    assert_eq!(outcome.failure, None);
    let old = codex(codex!("success_usage_v0_4x.jsonl"));
    assert_eq!(
        old.report.session_id.as_deref(),
        Some("0199a7c3-5e2f-7b41-9c06-d4a8e1f3b725")
    );
    assert_eq!(
        (
            old.report.input_tokens,
            old.report.cache_read_tokens,
            old.report.output_tokens
        ),
        (Some(24763 - 24448), Some(24448), Some(122))
    );
    assert_eq!(old.report.cache_write_tokens, None);
}

#[test]
fn codex_usage_is_a_running_total_not_summed() {
    // Two turns of one thread (a resumed run prints the same way): the
    // second total already holds the first.
    let stdout = "{\"type\":\"thread.started\",\"thread_id\":\"t\"}\n\
        {\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":100,\"cached_input_tokens\":10,\"output_tokens\":5}}\n\
        {\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":250,\"cached_input_tokens\":90,\"output_tokens\":12}}\n";
    let report = codex(stdout).report;
    assert_eq!(report.turns, Some(2));
    assert_eq!(
        (
            report.input_tokens,
            report.cache_read_tokens,
            report.output_tokens
        ),
        (Some(250 - 90), Some(90), Some(12))
    );
}

#[test]
fn codex_prices_give_a_cost() {
    let prices = Prices {
        input: 1.25,
        cached_input: 0.125,
        cache_write: 1.25,
        output: 10.0,
    };
    let outcome = read(Format::CodexJsonl, codex!("success.jsonl"), Some(&prices)).unwrap();
    // (84213 - 71424) × 1.25 + 71424 × 0.125 + 2318 × 10, per million.
    let cost = outcome.report.cost_usd.unwrap();
    assert!((cost - 0.04809425).abs() < 1e-12, "{cost}");
    assert_eq!(
        codex(codex!("success.jsonl")).report.cost_usd,
        None,
        "no prices, no cost"
    );
    // No usage, no cost.
    let failed = read(
        Format::CodexJsonl,
        codex!("turn_failed.jsonl"),
        Some(&prices),
    )
    .unwrap();
    assert_eq!(failed.report.cost_usd, None);
    // More cached than input (nonsense) costs the cached tokens only.
    let odd = "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":10,\"cached_input_tokens\":1000000,\"output_tokens\":0}}";
    let odd = read(Format::CodexJsonl, odd, Some(&prices)).unwrap().report;
    assert_eq!(odd.cost_usd, Some(10.0 * 0.125 / 1e6));
    // Tokens no attempt spends make a cost refused, not counted.
    let absurd = "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":18446744073709551615,\"output_tokens\":0}}";
    let absurd = read(Format::CodexJsonl, absurd, Some(&prices))
        .unwrap()
        .report;
    assert_eq!(absurd.cost_usd, None);
    assert_eq!(
        absurd.cost_refused.as_deref(),
        Some("2.305843009213694e13 (its tokens at agent.prices)")
    );
}

#[test]
fn codex_turn_failed() {
    let outcome = codex(codex!("turn_failed.jsonl"));
    assert_eq!(
        outcome.report.session_id.as_deref(),
        Some("019ff9c4-8e2d-7a16-b3f9-0c5d7e1a4b28")
    );
    assert_eq!(outcome.report.turns, Some(1));
    assert_eq!(outcome.report.input_tokens, None);
    assert_eq!(
        summary(&outcome),
        "agent error: turn.failed: stream disconnected before completion: error sending \
         request for url (https://chatgpt.com/backend-api/codex/responses)"
    );
    let limited = codex(codex!("rate_limited.jsonl"));
    assert_eq!(
        summary(&limited),
        "agent error: turn.failed: You've hit your usage limit. Upgrade to Pro \
         (https://chatgpt.com/explore/pro), visit https://chatgpt.com/codex/settings/usage \
         to purchase more credits or try again at Sep 22nd, 2026 3:14 PM."
    );
    let api_key = codex(codex!("rate_limited_api_key.jsonl"));
    assert_eq!(
        summary(&api_key),
        "agent error: turn.failed: exceeded retry limit, last status: 429 Too Many Requests, \
         request id: req_6f1a9c3e7b2d48a5c0e9f4b1d7a3c582"
    );
}

#[test]
fn codex_json_error_bodies_give_their_message() {
    let outcome = codex(codex!("turn_failed_invalid_request.jsonl"));
    assert_eq!(
        summary(&outcome),
        "agent error: turn.failed: Invalid schema for response_format 'codex_output_schema': \
         In context=('properties', 'changedPaths'), 'uniqueItems' is not permitted."
    );
    assert_eq!(
        inner_message("{\"detail\":\"Unauthorized\"}"),
        "Unauthorized"
    );
    assert_eq!(inner_message("{\"error\":\"quota\"}"), "quota");
    assert_eq!(inner_message("{\"other\":1}"), "{\"other\":1}");
    assert_eq!(inner_message("[1,2]"), "[1,2]");
    assert_eq!(inner_message("{cut"), "{cut");
}

#[test]
fn codex_errors_then_success_is_a_success() {
    let outcome = codex(codex!("error.jsonl"));
    assert_eq!(outcome.failure, None);
    assert_eq!(
        outcome.report.session_id.as_deref(),
        Some("019ff9b7-1a3c-7e52-a4d8-6b0f2c9e1d73")
    );
    assert_eq!(
        (
            outcome.report.input_tokens,
            outcome.report.cache_read_tokens,
            outcome.report.output_tokens
        ),
        (Some(17207 - 6912), Some(6912), Some(41))
    );
}

#[test]
fn codex_a_last_error_event_is_a_failure() {
    let cut = "{\"type\":\"thread.started\",\"thread_id\":\"t\"}\n\
        {\"type\":\"turn.started\"}\n\
        {\"type\":\"error\",\"message\":\"You've hit your usage limit. Try again later.\"}\n";
    let outcome = codex(cut);
    assert_eq!(outcome.report.turns, Some(0));
    assert_eq!(
        summary(&outcome),
        "agent error: error: You've hit your usage limit. Try again later."
    );
    let after = format!(
        "{}\n{{\"type\":\"error\",\"message\":\"late\"}}",
        codex!("success.jsonl").trim()
    );
    assert_eq!(summary(&codex(&after)), "agent error: error: late");
    // turn.failed without a message takes the error before it.
    let bare = "{\"type\":\"error\",\"message\":\"boom\"}\n{\"type\":\"turn.failed\"}\n";
    assert_eq!(summary(&codex(bare)), "agent error: turn.failed: boom");
}

#[test]
fn codex_unreadable_outputs_say_why() {
    let success = codex!("success.jsonl");
    let no_turn_end: String = success.lines().take(5).map(|l| format!("{l}\n")).collect();
    let cases = [
        (codex!("empty.jsonl"), "its output is empty".to_owned()),
        (
            no_turn_end.as_str(),
            "no `turn.completed` event: the run ended without finishing a turn".to_owned(),
        ),
        (
            codex!("legacy_msg_format.jsonl"),
            "the old codex event format (before 0.44): upgrade codex".to_owned(),
        ),
        (
            "Reading prompt from stdin...\nNo prompt provided via stdin.\n",
            "no codex JSON events in its output: it printed no JSON (was it run with --json?)"
                .to_owned(),
        ),
        (
            &success[..success.len() - 40],
            "no `turn.completed` event: the run ended without finishing a turn \
             (line 16 is cut short)"
                .to_owned(),
        ),
        (
            claude!("success.json"),
            "no `turn.completed` event: the run ended without finishing a turn".to_owned(),
        ),
    ];
    for (stdout, why) in cases {
        assert_eq!(
            read(Format::CodexJsonl, stdout, None),
            Err(why),
            "{stdout:?}"
        );
    }
}

#[test]
fn codex_skips_tracing_lines() {
    let stdout = format!(
        "Reading prompt from stdin...\n2026-09-01T10:00:00Z ERROR codex_models_manager::cache: stale\n{}",
        codex!("success.jsonl")
    );
    assert_eq!(codex(&stdout), codex(codex!("success.jsonl")));
}

#[test]
fn codex_odd_fields_are_left_out() {
    let stdout = "{\"type\":\"thread.started\",\"thread_id\":7}\n\
        {\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":\"5\",\"cached_input_tokens\":-1,\"output_tokens\":1e30}}\n";
    let outcome = codex(stdout);
    assert_eq!(
        outcome.report,
        Report {
            turns: Some(1),
            ..Report::default()
        }
    );
    let no_usage = codex("{\"type\":\"turn.completed\",\"usage\":[]}");
    assert_eq!(no_usage.report.input_tokens, None);
}

/// What a run wrote to the prompt cache is part of its uncached input:
/// priced at `cache_write`, which is the input price unless said.
#[test]
fn codex_cache_writes_are_priced_apart_from_the_rest_of_the_input() {
    let cost = |cache_write: f64| {
        let prices = Prices {
            input: 5.0,
            cached_input: 0.5,
            cache_write,
            output: 30.0,
        };
        let fixture = codex!("success_cache_writes.jsonl");
        let outcome = read(Format::CodexJsonl, fixture, Some(&prices)).unwrap();
        outcome.report.cost_usd.unwrap()
    };
    // 935040 in, 875306 of them cached, 57610 written; 11150 out.
    let rest = 875306.0 * 0.5 + 11150.0 * 30.0;
    let at_input = ((935040.0 - 875306.0) * 5.0 + rest) / 1e6;
    assert!((cost(5.0) - at_input).abs() < 1e-12, "{}", cost(5.0));
    let premium = ((935040.0 - 875306.0 - 57610.0) * 5.0 + 57610.0 * 6.25 + rest) / 1e6;
    assert!((cost(6.25) - premium).abs() < 1e-12, "{}", cost(6.25));
}

#[test]
fn a_resumed_codex_thread_counts_what_it_added() {
    let first = codex(codex!("success.jsonl")).report;
    let before = first.thread_usage.expect("the thread's totals");
    let thread = first.session_id.as_deref().unwrap();
    let prices = Prices {
        input: 1.0,
        cached_input: 0.5,
        cache_write: 1.0,
        output: 2.0,
    };
    let mut resumed = codex(codex!("resumed_success.jsonl"));
    resumed.count_since(thread, &before, Some(&prices));
    let report = &resumed.report;
    assert_eq!(
        (
            report.input_tokens,
            report.cache_read_tokens,
            report.output_tokens
        ),
        (Some(23650 - 18944), Some(18944), Some(870))
    );
    let cost = ((23650 - 18944) as f64 + 18944.0 * 0.5 + 870.0 * 2.0) / 1e6;
    assert!((report.cost_usd.unwrap() - cost).abs() < 1e-12);
    assert_eq!(report.thread_usage.unwrap().input_tokens, 107863);
    // Another thread, or totals below the earlier ones: as read.
    let as_read = codex(codex!("resumed_success.jsonl"));
    let mut other = as_read.clone();
    other.count_since("another-thread", &before, Some(&prices));
    assert_eq!(other, as_read);
    let mut below = codex(codex!("success.jsonl"));
    let later = as_read.report.thread_usage.unwrap();
    below.count_since(thread, &later, Some(&prices));
    assert_eq!(below, codex(codex!("success.jsonl")));
}
