//! Tests of `agent::limits`, against the recorded outputs.

use super::*;

const CLAUDE: &str = include_str!("../../../tests/fixtures/agents/claude/rate_limit_messages.txt");
const CODEX: &str = include_str!("../../../tests/fixtures/agents/codex/rate_limit_messages.txt");

/// The messages of a `rate_limit_messages.txt` file, in order, each with
/// its class (`# @class`).
fn classed(file: &str) -> Vec<(&str, &str)> {
    let mut class = "";
    let mut found = Vec::new();
    for line in file.lines() {
        if let Some(name) = line.strip_prefix("# @class ") {
            class = name.trim();
        } else if !line.trim().is_empty() && !line.starts_with('#') {
            found.push((class, line));
        }
    }
    found
}

/// The messages of a `rate_limit_messages.txt` file of `class`, or with
/// `of: false` those of any other.
fn of_class<'a>(file: &'a str, class: &str, of: bool) -> Vec<&'a str> {
    (classed(file).into_iter())
        .filter(|(c, _)| (*c == class) == of)
        .map(|(_, line)| line)
        .collect()
}

/// The messages of a file that are limits (of any class but
/// `not_a_limit` and `warning`), or with `limits: false` those that are
/// not (`not_a_limit`).
fn messages_of(file: &str, limits: bool) -> Vec<&str> {
    (classed(file).into_iter())
        .filter(|(class, _)| match limits {
            true => !matches!(*class, "not_a_limit" | "warning"),
            false => *class == "not_a_limit",
        })
        .map(|(_, line)| line)
        .collect()
}

fn messages(file: &str) -> Vec<&str> {
    messages_of(file, true)
}

/// Every message of the file but the warnings, limits or not, in order.
fn every_message(file: &str) -> Vec<&str> {
    of_class(file, "warning", false)
}

fn defaults() -> Vec<String> {
    DEFAULT_PATTERNS.iter().map(|p| (*p).to_owned()).collect()
}

fn found(line: &str) -> bool {
    find(&defaults(), &[line.to_owned()]).is_some()
}

fn at(rfc3339: &str) -> SystemTime {
    humantime::parse_rfc3339(rfc3339).unwrap()
}

/// 2026-07-30 12:00 UTC, 14:00 on the machine (UTC+2).
fn now() -> SystemTime {
    at("2026-07-30T12:00:00Z")
}
const OFFSET: i64 = 2 * 3600;

/// Every zone read as the machine's, `offset` seconds east of UTC.
fn machine(offset: i64) -> impl Fn(Option<&str>, i64) -> i64 {
    move |_, _| offset
}

fn reset(text: &str) -> Option<String> {
    reset_time(text, now(), &machine(OFFSET))
        .map(|t| humantime::format_rfc3339_millis(t).to_string())
}

#[test]
fn every_wording_is_found() {
    let all: Vec<&str> = messages(CLAUDE)
        .into_iter()
        .chain(messages(CODEX))
        .collect();
    assert!(all.len() > 50, "{}", all.len());
    for line in all {
        assert!(found(line), "not found: {line}");
    }
}

#[test]
fn what_no_wait_fixes_is_not_a_limit() {
    let lines: Vec<&str> = (messages_of(CLAUDE, false).into_iter())
        .chain(messages_of(CODEX, false))
        .collect();
    assert!(lines.len() >= 6, "{}", lines.len());
    for line in lines {
        assert!(!found(line), "found: {line}");
    }
}

/// A CLI's warning of a limit drawing near names the limit, and its
/// reset, as the patterns would take for a limit hit; no limit hit is
/// such a warning.
#[test]
fn warnings_of_a_limit_drawing_near_are_told_apart() {
    let warnings: Vec<&str> = (of_class(CLAUDE, "warning", true).into_iter())
        .chain(of_class(CODEX, "warning", true))
        .collect();
    assert!(warnings.len() >= 7, "{}", warnings.len());
    for line in warnings {
        assert!(warns(line), "not a warning: {line}");
    }
    for line in messages(CLAUDE).into_iter().chain(messages(CODEX)) {
        assert!(!warns(line), "a warning: {line}");
    }
    // A share used of a whole limit is the limit hit, not drawing near.
    assert!(!warns("You've used 100% of your weekly limit · resets 6pm"));
    assert!(!warns("You've used up your usage limit"));
    // Nor is a `%` after the words that is not the share used.
    assert!(!warns(
        "You've used your weekly limit · resets 6pm · 50% of extra usage left"
    ));
    assert!(!warns("You've used 1100% of your weekly limit"));
    assert!(warns("You've used 97.5% of your weekly limit · resets 6pm"));
    // "Approaching" is a warning as Claude Code words one, a part of its
    // line of its own; a limit hit that says it elsewhere is a limit hit.
    for line in [
        "⚠ Approaching weekly limit",
        "Approaching usage limit resets at 2am",
        "? for shortcuts · Approaching 5-hour limit · resets 5am",
    ] {
        assert!(warns(line), "not a warning: {line}");
    }
    for line in [
        "Rate limit reached, approaching reset at 2099-01-01T00:00:00Z",
        "Claude AI usage limit reached|1735000000 (approaching the weekly cap)",
        "You've hit your limit · resets 9pm · approaching the next window",
        "Approaching the point where everything is rate limited",
    ] {
        assert!(found(line), "no limit: {line}");
        assert!(!warns(line), "a warning: {line}");
    }
}

#[test]
fn ordinary_failures_are_not_limits() {
    let lines = [
        "exit code 1",
        "error: file not found",
        "Reached maximum number of turns (25)",
        "agent error: error_max_turns: Reached maximum number of turns (25)",
        "agent error: prompt_too_long: Prompt is too long",
        "agent error: blocking_limit: Context limit reached · /compact or /clear to continue",
        "Context limit reached · /compact or /clear to continue",
        "agent error: api_error (HTTP 401): Invalid API key · Please run /login",
        "error: call of overloaded 'area(int)' is ambiguous",
        "GET /api/users -> 500 Internal Server Error",
        "test result: FAILED. 41 passed; 1 failed",
        "error[E0308]: mismatched types",
        "the limit of 10 items was exceeded",
        "exceeded retry limit, last status: 401 Unauthorized",
        "No conversation found with session ID: 6a1e4c9f",
        "a rate of change of 3 per second",
        "warning: the `resets` field is never read",
        // The file system's quota (EDQUOT), routine on shared clusters.
        "cp: error writing 'big.bin': Disk quota exceeded",
        "OSError: [Errno 122] Disk quota exceeded: '/home/u/.cache'",
    ];
    for line in lines {
        assert!(!found(line), "found: {line}");
    }
}

#[test]
fn find_returns_the_first_match_trimmed() {
    let lines: Vec<String> = ["compiling", "  API Error: 429 x  ", "Rate limit reached"]
        .map(String::from)
        .to_vec();
    assert_eq!(find(&defaults(), &lines), Some("API Error: 429 x"));
    assert_eq!(find(&defaults(), &lines[..1]), None);
    assert_eq!(find(&defaults(), &[]), None);
    let custom = vec!["".to_owned(), "ÉTAT".to_owned()];
    assert_eq!(
        find(&custom, &lines),
        None,
        "an empty pattern matches nothing"
    );
    assert_eq!(
        find(&custom, &["l'état: plein".to_owned()]),
        Some("l'état: plein")
    );
}

#[test]
fn every_claude_reset_time() {
    let now = "2026-07-30T12:00:00.000Z";
    let expected = [
        Some("2026-07-31T07:00:00.000Z"), // 9am (Europe/Berlin): tomorrow, 9 on the machine
        Some("2026-07-30T22:50:00.000Z"), // 12:50am
        Some("2026-07-30T21:00:00.000Z"), // 11pm
        Some("2026-07-30T13:00:00.000Z"), // 3pm
        Some(now),                        // 1:30pm, passed half an hour ago: due
        Some("2026-07-31T02:50:00.000Z"), // 4:50am
        Some("2026-07-30T21:00:00.000Z"), // 11pm
        Some("2026-07-30T22:50:00.000Z"), // 12:50am
        Some(now),                        // Feb 20: nearer this year's, past
        Some("2026-07-30T20:00:00.000Z"), // 10pm
        Some("2026-07-31T02:00:00.000Z"), // Jul 31, 2am (UTC)
        Some(now),                        // Jun 7, past
        Some("2026-07-31T02:00:00.000Z"), // 4am
        Some("2026-09-15T17:00:00.000Z"), // Sep 15 at 7pm
        Some("2026-07-30T15:00:00.000Z"), // 3pm (UTC)
        Some("2026-07-31T07:00:00.000Z"), // out of extra usage, 9am
        Some(now),                        // Feb 4, past
        Some("2026-07-30T19:00:00.000Z"), // 9pm
        Some("2026-07-31T08:00:00.000Z"), // 10am (Asia/Seoul)
        Some("2026-07-31T03:00:00.000Z"), // 5am
        Some("2026-07-31T10:00:00.000Z"), // 12pm, passed
        Some("2026-07-30T19:00:00.000Z"), // 9pm
        Some(now),                        // epochs of 2025: past
        Some(now),
        Some(now),
        Some(now),
        Some("2026-07-30T13:00:00.000Z"), // reset at 3pm
        Some("2026-07-30T15:00:00.000Z"), // 5pm
        Some("2026-07-31T07:00:00.000Z"), // 9am
        Some(now),                        // regain access on 2026-04-01: past
        None,                             // 429s: no time
        None,
        None,
        None,
        None, // overloaded, server errors: "try again in a moment"
        None, // the same without a status
        None,
        None,
        None, // "Retrying in 4 seconds" is the CLI's own retry
        None, // a 500 whose body says overloaded
        None,
        None,
        None,
    ];
    let lines = every_message(CLAUDE);
    assert_eq!(lines.len(), expected.len());
    for (line, expected) in lines.into_iter().zip(expected) {
        assert_eq!(reset(line).as_deref(), expected, "{line}");
    }
}

#[test]
fn every_codex_reset_time() {
    let now = "2026-07-30T12:00:00.000Z";
    let expected = [
        Some("2026-09-22T13:14:00.000Z"), // Sep 22nd, 2026 3:14 PM
        Some("2026-07-30T16:33:00.000Z"), // 6:33 PM
        None,                             // later
        Some("2026-08-19T21:34:00.000Z"), // Aug 19th, 2026 11:34 PM
        Some(now),                        // Jul 5th, 2026: past
        Some(now),                        // Jun 21st, 2026: past
        Some("2026-07-30T13:45:00.000Z"), // 3:45 PM
        None,
        Some("2026-07-30T14:10:00.000Z"), // 4:10 PM
        None,                             // credits, spend caps, quota, plan
        None,
        None,
        None,
        None,
        None,
        Some("2026-08-05T10:11:00.000Z"), // in 5 days 22 hours 11 minutes
        Some("2026-07-30T15:02:00.000Z"),
        Some("2026-07-30T20:30:00.000Z"),
        Some("2026-08-02T18:57:00.000Z"),
        Some("2026-08-04T08:09:00.000Z"),
        None, // "wait for limits to reset (every 5h and every week.)"
        None, // 429
        None,
        None, // capacity, network
        None,
        None,
        None,
        None,
        Some("2026-07-30T12:00:00.663Z"), // Please try again in 663ms
        None,
    ];
    let lines = every_message(CODEX);
    assert_eq!(lines.len(), expected.len());
    for (line, expected) in lines.into_iter().zip(expected) {
        assert_eq!(reset(line).as_deref(), expected, "{line}");
    }
}

#[test]
fn epochs() {
    let june = at("2025-06-01T00:00:00Z");
    let read = |text: &str| reset_time(text, june, &machine(OFFSET));
    assert_eq!(
        read("Claude AI usage limit reached|1750708800"),
        Some(at("2025-06-23T20:00:00Z"))
    );
    assert_eq!(
        read("Claude AI usage limit reached|1750708800123"),
        Some(at("2025-06-23T20:00:00.123Z"))
    );
    assert_eq!(read("a | 42 | table"), None);
    assert_eq!(
        read("anthropic-ratelimit-unified-reset: 1750708800"),
        Some(at("2025-06-23T20:00:00Z"))
    );
    assert_eq!(
        read(r#"{"anthropic-ratelimit-unified-reset": "1750708800"}"#),
        Some(at("2025-06-23T20:00:00Z"))
    );
    let stream = include_str!("../../../tests/fixtures/agents/claude/stream_rate_limited.jsonl");
    assert_eq!(
        read(stream),
        Some(at("2026-09-22T07:00:00Z")),
        "resetsAt, before the text"
    );
}

#[test]
fn waits() {
    assert_eq!(
        reset("Retry-After: 120").as_deref(),
        Some("2026-07-30T12:02:00.000Z")
    );
    assert_eq!(
        reset("retry-after-ms: 1500").as_deref(),
        Some("2026-07-30T12:00:01.500Z")
    );
    assert_eq!(
        reset("\"retry-after\":\"30\"").as_deref(),
        Some("2026-07-30T12:00:30.000Z")
    );
    assert_eq!(
        reset("Please try again in 1.5s.").as_deref(),
        Some("2026-07-30T12:00:01.500Z")
    );
    assert_eq!(
        reset("try again in 20 minutes").as_deref(),
        Some("2026-07-30T12:20:00.000Z")
    );
    assert_eq!(
        reset("try again in 6m0s").as_deref(),
        Some("2026-07-30T12:06:00.000Z")
    );
    assert_eq!(
        reset("try again in 1 hour and 5 minutes").as_deref(),
        Some("2026-07-30T13:05:00.000Z")
    );
    assert_eq!(
        reset("reset after 15m 2s").as_deref(),
        Some("2026-07-30T12:15:02.000Z")
    );
    assert_eq!(reset("try again in a moment"), None);
    assert_eq!(reset("try again in 5 apples"), None);
    assert_eq!(reset("try again in 99999999999999 days"), None);
    let far = reset_time("try again in 999999999999 days", now(), &machine(OFFSET));
    assert!(far.is_some_and(|t| t > now()));
}

#[test]
fn clock_forms() {
    assert_eq!(
        reset("resets at 15:00 (Europe/Paris)").as_deref(),
        Some("2026-07-30T13:00:00.000Z")
    );
    assert_eq!(
        reset("resets 15:00 UTC").as_deref(),
        Some("2026-07-30T15:00:00.000Z")
    );
    assert_eq!(
        reset("resets 3 PM (Etc/UTC)").as_deref(),
        Some("2026-07-30T15:00:00.000Z")
    );
    assert_eq!(
        reset("resets September 1, 12am").as_deref(),
        Some("2026-08-31T22:00:00.000Z")
    );
    assert_eq!(
        reset("resets Sept. 1 at 1am").as_deref(),
        Some("2026-08-31T23:00:00.000Z")
    );
    // At the very minute: now.
    assert_eq!(
        reset("resets 2pm").as_deref(),
        Some("2026-07-30T12:00:00.000Z")
    );
    // Passed within the hour (shown to the minute, or reported late): due
    // now, not tomorrow; yesterday's too, just after midnight; an hour or
    // more ago, tomorrow's.
    for (text, expected) in [
        ("resets 1:59pm", "2026-07-30T12:00:00.000Z"),
        ("resets 1:01pm", "2026-07-30T12:00:00.000Z"),
        ("resets 1pm", "2026-07-31T11:00:00.000Z"),
        ("try again at 1:30 PM", "2026-07-30T12:00:00.000Z"),
    ] {
        assert_eq!(reset(text).as_deref(), Some(expected), "{text}");
    }
    // Passed 40 minutes ago, across a change of the clock (an hour
    // forward, 30 minutes ago): 100 minutes by the clock, due all the same.
    let change = at("2026-07-30T10:00:00Z");
    let shifting = move |_: Option<&str>, at: i64| {
        let change = change
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if at >= change {
            3600
        } else {
            0
        }
    };
    let after = at("2026-07-30T10:30:00Z");
    assert_eq!(reset_time("resets 9:50am", after, &shifting), Some(after));
    let past_midnight = at("2026-07-30T22:10:00Z"); // 00:10 on the machine
    let read = |text: &str| reset_time(text, past_midnight, &machine(OFFSET));
    assert_eq!(read("resets 11:50pm"), Some(past_midnight));
    assert_eq!(read("resets 11pm"), Some(at("2026-07-31T21:00:00Z")));
    assert_eq!(read("resets 1am"), Some(at("2026-07-30T23:00:00Z")));
    // An API's instants and fields.
    for (text, expected) in [
        ("resets at 2026-07-30T15:00:00Z", "2026-07-30T15:00:00.000Z"),
        (
            "Try again at 2026-07-30T13:30:00.5Z.",
            "2026-07-30T13:30:00.500Z",
        ),
        ("Please retry after 30 seconds.", "2026-07-30T12:00:30.000Z"),
        (
            "{\"error\":{\"retry_after\": 30}}",
            "2026-07-30T12:00:30.000Z",
        ),
        ("\"retry_after_ms\":1500", "2026-07-30T12:00:01.500Z"),
        (
            "You will regain access on 2026-09-01 at 00:00 UTC.",
            "2026-09-01T00:00:00.000Z",
        ),
        ("resets 2026-08-02 at 9am", "2026-08-02T07:00:00.000Z"),
        // Seconds, the zone after them read too.
        (
            "You will regain access on 2026-09-01 at 00:00:30 UTC.",
            "2026-09-01T00:00:30.000Z",
        ),
        (
            "You will regain access on 2026-09-01T00:00:00Z.",
            "2026-09-01T00:00:00.000Z",
        ),
    ] {
        assert_eq!(reset(text).as_deref(), Some(expected), "{text}");
    }
    for nonsense in [
        "resets the counter",
        "resets 5 files",
        "resets 25pm",
        "resets 0am",
        "resets 13:75",
        "resets 24:00",
        "resets Jul 32, 2am",
        "resets Feb 30 at 1am",
        "resets Foo 3, 2am",
        "You will regain access on 2026-13-01 at 00:00 UTC.",
        "You will regain access on 2026-02-30 at 00:00 UTC.",
        "You will regain access on 2026-09-01.",
        "You will regain access on 2026-09-01 at 00:00:60 UTC.",
        "resets9am",
        "resets at",
        "the limit resets ",
        "",
    ] {
        assert_eq!(reset(nonsense), None, "{nonsense}");
    }
}

#[test]
fn dates_near_the_new_year_and_leap_days() {
    let dec30 = at("2026-12-30T10:00:00Z");
    assert_eq!(
        reset_time("resets Jan 2, 3am (UTC)", dec30, &machine(0)),
        Some(at("2027-01-02T03:00:00Z"))
    );
    assert_eq!(
        reset_time("resets Dec 29, 3am (UTC)", dec30, &machine(0)),
        Some(dec30),
        "yesterday, not next year"
    );
    let feb = at("2028-02-27T00:00:00Z");
    assert_eq!(
        reset_time("resets Feb 29, 3am (UTC)", feb, &machine(0)),
        Some(at("2028-02-29T03:00:00Z"))
    );
    // Late at night west of UTC, the local day is still the 29th.
    let late = at("2028-03-01T02:00:00Z");
    assert_eq!(
        reset_time("resets 11pm", late, &machine(-5 * 3600)),
        Some(at("2028-03-01T04:00:00Z"))
    );
}

#[test]
fn odd_clocks_and_offsets_do_not_panic() {
    let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
    assert_eq!(reset_time("resets 3pm", far, &machine(0)), None);
    assert!(reset_time("try again in 1s", far, &machine(0)).is_some());
    let before_1970 = UNIX_EPOCH - Duration::from_secs(10);
    assert_eq!(reset_time("resets 3pm", before_1970, &machine(0)), None);
    for offset in [i64::MIN, i64::MAX, -90_000, 90_000] {
        assert!(reset_time("resets Jan 1, 12am", now(), &machine(offset)).is_some());
        assert!(reset_time("resets 3pm", UNIX_EPOCH, &machine(offset)).is_some());
    }
}

#[test]
fn no_text_panics() {
    let all = format!("{CLAUDE}{CODEX}resets Sep 22nd, 2026 3:14 PM (UTC) Retry-After: 1.5 é∙·");
    let mut i = 0;
    while i < all.len() {
        if all.is_char_boundary(i) {
            let _ = reset_time(&all[i..], now(), &machine(OFFSET));
            let _ = reset_time(&all[..i], now(), &machine(OFFSET));
        }
        i += 3;
    }
    let _ = reset_time("resets İ9am ǅ (", now(), &machine(OFFSET));
}

#[test]
fn civil_dates() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(days_from_civil(9999, 12, 31) * DAY + DAY - 1, MAX_SECS);
    for days in [0, 59, 365, 11_016, 11_017, 20_000, 2_932_896] {
        let year = civil_year(days);
        assert!(days_from_civil(year, 1, 1) <= days && days < days_from_civil(year + 1, 1, 1));
    }
}

#[test]
fn local_offset_is_a_real_offset() {
    assert!(local_offset().abs() <= 18 * 3600);
}

#[test]
fn a_named_zone_is_read_at_its_own_offset() {
    // The machine at UTC+2; Berlin at UTC+1, Bogota at UTC-5.
    let zones = |zone: Option<&str>, _| match zone {
        Some("europe/berlin") => 3600,
        Some("america/bogota") => -5 * 3600,
        _ => OFFSET,
    };
    let read = |text: &str| {
        reset_time(text, now(), &zones).map(|t| humantime::format_rfc3339(t).to_string())
    };
    // 2026-07-30 12:00 UTC: 9am in Berlin is 08:00 UTC, tomorrow.
    assert_eq!(
        read("You've hit your session limit · resets 9am (Europe/Berlin)").as_deref(),
        Some("2026-07-31T08:00:00Z")
    );
    assert_eq!(
        read("Your limit will reset at 3pm (America/Bogota).").as_deref(),
        Some("2026-07-30T20:00:00Z")
    );
    // A zone the database lacks, and no zone: the machine's.
    assert_eq!(
        read("resets 3pm (Mars/Olympus)").as_deref(),
        Some("2026-07-30T13:00:00Z")
    );
    assert_eq!(read("resets 3pm").as_deref(), Some("2026-07-30T13:00:00Z"));
    assert_eq!(
        read("resets 3pm (UTC)").as_deref(),
        Some("2026-07-30T15:00:00Z")
    );
}

#[test]
fn zone_offsets_come_from_the_time_zone_database() {
    let database = std::env::var("TZDIR").unwrap_or_else(|_| "/usr/share/zoneinfo".to_owned());
    if !std::path::Path::new(&database)
        .join("Asia/Kolkata")
        .is_file()
    {
        eprintln!("skipped: no time-zone database at {database}");
        return;
    }
    // 2026-07-30 12:00 UTC.
    let july = 1_785_412_800;
    // India has kept UTC+5:30 all year since 1945; any case will do.
    assert_eq!(zone_offset("asia/kolkata", july), Some(5 * 3600 + 1800));
    assert_eq!(zone_offset("Asia/Kolkata", july), Some(5 * 3600 + 1800));
    assert_eq!(zone_offset("etc/gmt+3", july), Some(-3 * 3600));
    for unknown in [
        "mars/olympus",
        "",
        "asia/",
        "../etc/passwd",
        "asia/../asia/kolkata",
    ] {
        assert_eq!(zone_offset(unknown, july), None, "{unknown}");
    }
    // New York leaves daylight saving time on 2026-11-01: a reset after it
    // is read at UTC-5, not at the UTC-4 of the moment it is read.
    let halloween = at("2026-10-31T12:00:00Z");
    let reset = reset_time(
        "resets Nov 2, 9am (America/New_York)",
        halloween,
        &offset_of,
    );
    assert_eq!(reset, Some(at("2026-11-02T14:00:00Z")));
    let reset = reset_time("resets 9am (America/New_York)", halloween, &offset_of);
    // 8am there: the next 9am is within the hour, still at UTC-4.
    assert_eq!(reset, Some(at("2026-10-31T13:00:00Z")));
    // Read at 9:00:30, it is due; at 10:30, the next 9am is the next
    // day's, at UTC-5.
    let just_past = at("2026-10-31T13:00:30Z");
    let reset = reset_time("resets 9am (America/New_York)", just_past, &offset_of);
    assert_eq!(reset, Some(just_past));
    let later = at("2026-10-31T14:30:00Z");
    let reset = reset_time("resets 9am (America/New_York)", later, &offset_of);
    assert_eq!(reset, Some(at("2026-11-01T14:00:00Z")));
    // Read at 00:50 on the day of the change (the last 11:45pm over an
    // hour ago), 11:45pm is that evening's.
    let night = at("2026-11-01T04:50:00Z");
    let reset = reset_time("resets 11:45pm (America/New_York)", night, &offset_of);
    assert_eq!(reset, Some(at("2026-11-02T04:45:00Z")));
    // Not a zone's file: read in the machine's zone.
    assert_eq!(zone_offset("leapseconds", july), None);
    assert_eq!(parse_utc_offset("-0330"), Some(-(3 * 3600 + 1800)));
    assert_eq!(parse_utc_offset("0530"), None);
}
