//! Rate and usage limits in what agent CLIs print: which lines say a limit
//! was hit (or the service is overloaded, which calls for the same wait),
//! and when the limit resets, read from the many wordings Claude Code and
//! Codex have used (listed with their sources in
//! `tests/fixtures/agents/README.md`).
//!
//! A clock time is read in the zone it names: UTC when it says so ("(UTC)",
//! "GMT"), an IANA zone ("(Europe/Berlin)", which both CLIs print) from the
//! system's time-zone database (`$TZDIR` or `/usr/share/zoneinfo`), and
//! otherwise, or where the database lacks the zone, in the machine's own.
//! So an agent on a Slurm node in UTC that prints "resets 9am
//! (Europe/Berlin)" is waited for until 9am in Berlin.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod warning;
pub use warning::warns;

/// Defaults for `rate_limits.patterns`: case-insensitive substrings that
/// mark a rate or usage limit, or an overload to wait out, in what Claude
/// Code and Codex print. Each wording of the fixtures' `rate_limit_messages.txt`
/// is matched by one of them. They are kept narrow on purpose: a lone
/// "limit" would take "Context limit reached" or a max-turns failure for
/// a quota, a lone "overloaded" would take GCC's "call of overloaded
/// 'f(int)' is ambiguous", and "Internal Server Error" is what a web app
/// under test prints.
pub const DEFAULT_PATTERNS: &[&str] = &[
    // Subscription windows (Claude Code) and plan limits (Codex).
    "usage limit",
    "hit your limit",
    "session limit",
    "weekly limit",
    "5-hour limit",
    // "You've hit your <any> limit · resets ...", with U+00B7 and U+2219.
    "limit · resets",
    "limit ∙ resets",
    "your limit will reset",
    // Claude Code, once the extra usage bought past a plan's limits is
    // spent: "You're out of extra usage · resets 9pm".
    "out of extra usage",
    // HTTP 429: API rate limits.
    "rate limit",
    "rate_limit_error",
    "too many requests",
    "rejected (429)",
    "api error: 429",
    "api error (429",
    // What result.rs makes of Claude's `api_error_status`.
    "http 429",
    "\"api_error_status\":429",
    // Quotas and credits (Codex, the OpenAI API).
    "exceeded your current quota",
    // Codex's whole phrase: "Disk quota exceeded" (EDQUOT) is no limit.
    "quota exceeded. check your plan",
    "insufficient_quota",
    "out of credits",
    "spend cap",
    // Overload: not a quota, but waited out the same way. (Server errors
    // and dropped connections are ordinary failures, for the retries.)
    "529 overloaded",
    "overloaded_error",
    // An overload sent as an HTTP 500 whose body says so, as Claude Code
    // 1.0.55 to 1.0.123 printed it: `API Error: 500 {"type":"error",
    // "error":{"type":"api_error","message":"Overloaded"}}`. The whole
    // message, quoted: any other 500 is a server error.
    "\"message\":\"overloaded\"",
    // Claude Code names no status where the API gave none (an overload
    // reported in the stream after HTTP 200): "API Error: Overloaded.
    // This is a server-side issue, ...".
    "api error: overloaded",
    "api error: 529",
    "api error (529",
    "http 529",
    "model is at capacity",
    "experiencing high demand",
];

/// The first of `lines` (oldest first) that one of `patterns` matches,
/// case-insensitively; returned trimmed. Empty patterns match nothing.
pub fn find<'a>(patterns: &[String], lines: &'a [String]) -> Option<&'a str> {
    let patterns: Vec<String> = patterns
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.to_lowercase())
        .collect();
    lines
        .iter()
        .find(|line| {
            let line = line.to_lowercase();
            patterns.iter().any(|p| line.contains(p.as_str()))
        })
        .map(|line| line.trim())
}

/// When the limit resets, if `text` says so: an epoch after `|` ("usage
/// limit reached|1750708800"), "resets 3pm", "resets 4:50am (Europe/Rome)",
/// "resets Jul 31, 2am (UTC)", "resets Sep 15 at 7pm", "Your limit will
/// reset at 3pm (America/Bogota)", "try again at Sep 22nd, 2026 3:14 PM",
/// "try again in 5 days 22 hours 11 minutes", "You will regain access on
/// 2026-04-01 at 00:00 UTC", "Please try again in 1.5s"
/// (or "663ms"), "retry after 30 seconds", "Retry-After: 120" (seconds;
/// `retry_after` and `retry_after_ms` as a JSON field), an RFC 3339
/// instant in UTC after "resets at", "try again at" or "regain access
/// on", the `resetsAt` epoch of a
/// `rate_limit_event` line (the last one in `text`), or
/// "anthropic-ratelimit-unified-reset: <epoch>".
///
/// A clock time without a date is the next such time after `now`, or the
/// last one if it passed less than an hour ago (`JUST_PASSED`); a date
/// without a year is the one nearest `now` (so a stale "Jul 31" read on
/// Aug 1 is not taken for next year). "(UTC)" is UTC; another zone is read
/// `offset_of(Some(zone), at)` seconds east of UTC at epoch second `at`
/// (the zone's name in lower case), no zone `offset_of(None, at)` (the
/// machine's: `offset_of` below). `None` when nothing is readable; never a
/// time before `now` (a reset already past is `now`).
pub fn reset_time(text: &str, now: SystemTime, offset_of: OffsetOf) -> Option<SystemTime> {
    // ASCII lowercase keeps every byte offset, and every char boundary.
    let text = text.to_ascii_lowercase();
    let at = epoch_after_bar(&text)
        .or_else(|| epoch_after(&text, "\"resetsat\"", true))
        .or_else(|| epoch_after(&text, "anthropic-ratelimit-unified-reset", false))
        .or_else(|| after_reset(&text, now, offset_of))
        // The Anthropic API's spend limit: "You will regain access on
        // 2026-04-01 at 00:00 UTC."
        .or_else(|| {
            after_each(&text, "regain access on", |c| {
                instant(c).or_else(|| clock_at(c, now, offset_of))
            })
        })
        .or_else(|| {
            after_each(&text, "try again at", |c| {
                instant(c).or_else(|| clock_at(c, now, offset_of))
            })
        })
        .or_else(|| after_each(&text, "try again in", |c| wait(c, now)))
        .or_else(|| after_each(&text, "retry after ", |c| wait(c, now)))
        .or_else(|| retry_after(&text, now))?;
    Some(at.max(now))
}

/// The machine's UTC offset in seconds, now.
pub fn local_offset() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    local_offset_at(i64::try_from(now.as_secs()).unwrap_or(0))
}

/// The machine's UTC offset in seconds at epoch second `at` (libc
/// localtime_r's `tm_gmtoff`); 0 if the C library cannot say.
// `c_long` is i64 here, but i32 on 32-bit targets.
#[allow(clippy::useless_conversion)]
fn local_offset_at(at: i64) -> i64 {
    // 64 bits on 64-bit Linux; a 32-bit `time_t` wraps after 2038, and a
    // time past it is then read at some other date's offset.
    let at = at as libc::time_t;
    // SAFETY: `localtime_r` reads `at` and writes only to `tm`, a live
    // local, and is thread-safe (unlike `localtime`).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&at, &mut tm).is_null() {
            return 0;
        }
        i64::from(tm.tm_gmtoff)
    }
}

/// Seconds east of UTC of a zone (`None`: the machine's) at an epoch second.
pub type OffsetOf<'a> = &'a dyn Fn(Option<&str>, i64) -> i64;

/// The UTC offset of `zone` (an IANA name, in any case) at epoch second
/// `at`, from the time-zone database; without a zone, or one the database
/// lacks, the machine's.
pub fn offset_of(zone: Option<&str>, at: i64) -> i64 {
    zone.and_then(|zone| zone_offset(zone, at))
        .unwrap_or_else(|| local_offset_at(at))
}

/// The UTC offset, in seconds, of the IANA zone `name` ("europe/berlin"
/// will do) at epoch second `at`, as `date` reads it from the zone's file:
/// `None` where the time-zone database has no such zone (`date` would take
/// it for UTC).
fn zone_offset(name: &str, at: i64) -> Option<i64> {
    let file = zone_file(name)?;
    let sh = xshell::Shell::new().ok()?;
    let at = format!("@{at}");
    let out = xshell::cmd!(sh, "date -d {at} +%z")
        .env("TZ", format!(":{file}"))
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?;
    parse_utc_offset(out.trim())
}

/// The file of zone `name` in `$TZDIR` (or `/usr/share/zoneinfo`), each
/// part of the name matched without regard to case, as messages are read;
/// absolute (`date` would look for a relative one under `$TZDIR` again),
/// and a zone file (`TZif`): `date` reads any other file as UTC.
fn zone_file(name: &str) -> Option<camino::Utf8PathBuf> {
    let base = std::env::var("TZDIR").unwrap_or_else(|_| "/usr/share/zoneinfo".to_owned());
    let mut path = camino::Utf8PathBuf::from(base);
    for part in name.split('/') {
        let plain = part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b));
        if part.is_empty() || !plain {
            return None;
        }
        let entry = path
            .read_dir_utf8()
            .ok()?
            .flatten()
            .find(|e| e.file_name().eq_ignore_ascii_case(part))?;
        path = entry.into_path();
    }
    let mut magic = [0u8; 4];
    std::io::Read::read_exact(&mut std::fs::File::open(&path).ok()?, &mut magic).ok()?;
    (&magic == b"TZif").then(|| path.canonicalize_utf8().ok())?
}

/// `+0530` or `-0300`: seconds east of UTC.
fn parse_utc_offset(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// The widest UTC offset taken as given (real ones are within -12h..+14h).
const MAX_OFFSET: i64 = 24 * 3600;

/// The last second of year 9999: clock times are not read past it, which
/// keeps the date arithmetic far from overflowing.
const MAX_SECS: i64 = 253_402_300_799;

const DAY: i64 = 86_400;

/// How long ago a clock time without a date may have passed and still be
/// today's, a reset due now, rather than tomorrow's: a CLI shows a reset to
/// the minute (or the hour), so the limit may hold a few seconds past it,
/// and a limit reported late (Claude Code retries one for minutes before it
/// gives up) names a reset just past. Read as tomorrow's, it would pause
/// the whole pool for a day, or fail the task past `give_up_after`; as
/// past, the wait is the backoff's.
const JUST_PASSED: i64 = 3600;

// ------------------------------------------------------------- epochs

/// "Claude AI usage limit reached|1750708800": epoch seconds (or
/// milliseconds, 13 digits) right after a `|`.
fn epoch_after_bar(text: &str) -> Option<SystemTime> {
    text.match_indices('|').find_map(|(i, _)| {
        let digits = Cursor::new(&text[i + 1..]).digits();
        (10..=13).contains(&digits.len()).then(|| epoch(digits))?
    })
}

/// The epoch after `key` and its separators (`"resetsAt":1790060400`,
/// `anthropic-ratelimit-unified-reset: 1750708800`), at its first or
/// `last` occurrence.
fn epoch_after(text: &str, key: &str, last: bool) -> Option<SystemTime> {
    let i = if last {
        text.rfind(key)
    } else {
        text.find(key)
    }?;
    epoch(value_after(&text[i + key.len()..]))
}

/// `epoch` of a number given as such (`"resetsAt": 1790060400` in a JSON
/// event): milliseconds are told apart from seconds the same way, and a
/// number too large for either is no time.
pub fn epoch_number(n: u64) -> Option<SystemTime> {
    epoch(&n.to_string())
}

/// The last second `clock` writes (a later time is written as it): past
/// year 9999 there is no RFC 3339 date to write.
pub fn latest() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(MAX_SECS.unsigned_abs())
}

/// Seconds since the epoch, or milliseconds when 12 digits or more. Fewer
/// than 9 digits is no epoch (1973 or before) but some other number.
fn epoch(digits: &str) -> Option<SystemTime> {
    if !(9..=13).contains(&digits.len()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let since = if digits.len() >= 12 {
        Duration::from_millis(n)
    } else {
        Duration::from_secs(n)
    };
    UNIX_EPOCH.checked_add(since)
}

/// The digits after a key's separators.
fn value_after(rest: &str) -> &str {
    Cursor::new(separators(rest)).digits()
}

/// `rest` past the separators between a key and its value: quotes,
/// spaces, `:` or `=`.
fn separators(rest: &str) -> &str {
    rest.trim_start_matches(|c: char| matches!(c, '"' | '\'' | ':' | '=') || c.is_whitespace())
}

// ------------------------------------------------------- waits, headers

/// "Retry-After: 120" (seconds) or "retry-after-ms: 1500", as an HTTP
/// header or a field.
fn retry_after(text: &str, now: SystemTime) -> Option<SystemTime> {
    let find = |key: &str, unit: f64| {
        text.match_indices(key).find_map(|(i, _)| {
            let secs = Cursor::new(separators(&text[i + key.len()..])).decimal()? * unit;
            now.checked_add(Duration::try_from_secs_f64(secs).ok()?)
        })
    };
    find("retry-after-ms", 0.001)
        .or_else(|| find("retry_after_ms", 0.001))
        .or_else(|| find("retry-after", 1.0))
        .or_else(|| find("retry_after", 1.0))
}

/// An RFC 3339 instant in UTC at `c` ("[at] 2026-12-06T15:00:00Z", as an
/// API's field or error gives it).
fn instant(mut c: Cursor) -> Option<SystemTime> {
    c.spaces();
    if c.eat_word("at") {
        c.spaces();
    }
    let token = c.skip(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'.'));
    // A sentence's full stop is not the time's.
    let token = token.trim_end_matches('.');
    humantime::parse_rfc3339(&token.to_ascii_uppercase()).ok()
}

/// "in 5 days 22 hours 11 minutes", "in 1.5s", "in 663ms", "6m0s": `now`
/// plus the wait at `c`.
fn wait(c: Cursor, now: SystemTime) -> Option<SystemTime> {
    now.checked_add(duration(c)?)
}

/// A duration as numbers with units, spaced or not ("5 days 22 hours",
/// "6m0s", "1.5s"); at least one.
fn duration(mut c: Cursor) -> Option<Duration> {
    let mut secs = 0.0;
    let mut read = false;
    loop {
        let mut part = c;
        part.skip(|b| b == b' ' || b == b',');
        if read && part.eat("and ") {
            part.spaces();
        }
        let Some(n) = part.decimal() else { break };
        part.spaces();
        let Some(unit) = unit_secs(part.word()) else {
            break;
        };
        secs += n * unit;
        read = true;
        c = part;
    }
    if !read {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

fn unit_secs(unit: &str) -> Option<f64> {
    Some(match unit {
        "ms" | "msec" | "millisecond" | "milliseconds" => 0.001,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        _ => return None,
    })
}

// --------------------------------------------------------- clock times

/// "resets 9am", "resets at 15:00", "Your limit will reset at 3pm",
/// "resets in 3h" (not seen, but cheap): the first readable one.
fn after_reset(text: &str, now: SystemTime, offset_of: OffsetOf) -> Option<SystemTime> {
    after_each(text, "reset", |mut c| {
        c.eat("s");
        if !c.spaces() {
            return None;
        }
        let mut relative = c;
        if relative.eat_word("in") || relative.eat_word("after") {
            return wait(relative, now);
        }
        instant(c).or_else(|| clock_at(c, now, offset_of))
    })
}

/// `read` at the text after each occurrence of `key`, until one gives a
/// time.
fn after_each(
    text: &str,
    key: &str,
    read: impl Fn(Cursor) -> Option<SystemTime>,
) -> Option<SystemTime> {
    text.match_indices(key)
        .find_map(|(i, _)| read(Cursor::new(&text[i + key.len()..])))
}

/// The instant of the clock time at `c`.
fn clock_at(c: Cursor, now: SystemTime, offset_of: OffsetOf) -> Option<SystemTime> {
    let clock = clock(c)?;
    let now = i64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    if now > MAX_SECS {
        return None;
    }
    let offset_at = |at: i64| {
        let offset = match &clock.zone {
            Zone::Utc => 0,
            Zone::Named(name) => offset_of(Some(name), at),
            Zone::Unnamed => offset_of(None, at),
        };
        offset.clamp(-MAX_OFFSET, MAX_OFFSET)
    };
    // The days are counted on the clock in force now; should a
    // daylight-saving change fall in between, each time is then moved by
    // the change, before it is judged passed or not.
    let offset_now = offset_at(now);
    let secs = (candidates(&clock, now, offset_now).into_iter())
        .map(|at| at + offset_now - offset_at(at))
        .find(|at| clock.date.is_some() || now - at < JUST_PASSED)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

/// A wall-clock time read from a message.
#[derive(Debug)]
struct Clock {
    /// Year (if given), month, day.
    date: Option<(Option<i64>, u32, u32)>,
    /// 0-23, 0-59, 0-59.
    hour: u32,
    minute: u32,
    second: u32,
    zone: Zone,
}

/// The zone a clock time names.
#[derive(Debug)]
enum Zone {
    Utc,
    /// In parentheses, in lower case: "europe/berlin".
    Named(String),
    Unnamed,
}

/// `[at] [Mon d[st|nd|rd|th][,] [yyyy][,] [at]] h[:mm[:ss]][ ]am|pm
/// [(Zone)]`, or a 24-hour `hh:mm[:ss]`.
fn clock(mut c: Cursor) -> Option<Clock> {
    c.spaces();
    if c.eat_word("at") {
        c.spaces();
    }
    let date = date(&mut c);
    let hour = c.number(1, 2)?;
    let minute = if c.eat(":") {
        Some(c.number(2, 2)?)
    } else {
        None
    };
    // Its seconds read, or its zone after them would not be.
    let second = if minute.is_some() && c.eat(":") {
        c.number(2, 2)?
    } else {
        0
    };
    let mut meridiem = c;
    meridiem.spaces();
    let pm = match meridiem.word() {
        "am" => Some(false),
        "pm" => Some(true),
        _ => None,
    };
    if pm.is_some() {
        c = meridiem;
    }
    let hour = match pm {
        Some(pm) if (1..=12).contains(&hour) => hour % 12 + if pm { 12 } else { 0 },
        // "resets 5" is no time; "resets at 15:00" is.
        None if minute.is_some() && hour <= 23 => hour,
        _ => return None,
    };
    let minute = minute.unwrap_or(0);
    if minute > 59 || second > 59 {
        return None;
    }
    Some(Clock {
        date,
        hour,
        minute,
        second,
        zone: zone(c),
    })
}

/// `Jul 31, `, `Sep 15 at `, `Sep 22nd, 2026 `, `2026-04-01 at `: the
/// date before a time, if there is one (the cursor is left as it was when
/// there is not).
fn date(c: &mut Cursor) -> Option<(Option<i64>, u32, u32)> {
    if let Some(date) = iso_date(c) {
        return Some(date);
    }
    let mut t = *c;
    let month = month(t.word())?;
    t.eat(".");
    if !t.spaces() {
        return None;
    }
    let day = t.number(1, 2)?;
    for ordinal in ["st", "nd", "rd", "th"] {
        if t.eat(ordinal) {
            break;
        }
    }
    t.eat(",");
    t.spaces();
    let mut y = t;
    let year = y.digits();
    let year = if year.len() == 4 && !y.rest.starts_with(':') {
        y.eat(",");
        y.spaces();
        t = y;
        year.parse().ok()
    } else {
        None
    };
    if t.eat_word("at") {
        t.spaces();
    }
    *c = t;
    Some((year, month, day))
}

/// `2026-04-01 ` (`at ` may follow), as the Anthropic API names the day
/// an organisation's spend limit lifts. Joined to its time
/// (`2026-04-01T00:00:00Z`) it is an RFC 3339 instant, read as one after
/// "resets at", "try again at" and "regain access on".
fn iso_date(c: &mut Cursor) -> Option<(Option<i64>, u32, u32)> {
    let mut t = *c;
    let year = t.number(4, 4)?;
    if !t.eat("-") {
        return None;
    }
    let month = t.number(2, 2).filter(|m| (1..=12).contains(m))?;
    if !t.eat("-") {
        return None;
    }
    let day = t.number(2, 2)?;
    if !t.spaces() {
        return None;
    }
    if t.eat_word("at") {
        t.spaces();
    }
    *c = t;
    Some((Some(i64::from(year)), month, day))
}

/// 1-12 for a month's name or its abbreviation ("sep", "sept", "september").
fn month(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if word.len() < 3 {
        return None;
    }
    let i = MONTHS.iter().position(|m| m.starts_with(word))?;
    u32::try_from(i + 1).ok()
}

/// The zone after a time: "(UTC)" or " UTC", or a name in parentheses.
fn zone(mut c: Cursor) -> Zone {
    c.spaces();
    let (zone, named) = if c.eat("(") {
        (c.rest.split(')').next().unwrap_or("").trim(), true)
    } else {
        (c.word(), false)
    };
    let utc = matches!(
        zone,
        "utc"
            | "gmt"
            | "z"
            | "zulu"
            | "uct"
            | "universal"
            | "etc/utc"
            | "etc/gmt"
            | "etc/uct"
            | "etc/universal"
            | "etc/zulu"
    );
    match (utc, named && !zone.is_empty()) {
        (true, _) => Zone::Utc,
        (false, true) => Zone::Named(zone.to_owned()),
        (false, false) => Zone::Unnamed,
    }
}

/// Epoch seconds of `clock`, read at UTC offset `offset`, for `now` (epoch
/// seconds within years 1970-9999): for a time alone, yesterday's, today's
/// and tomorrow's, of which the caller takes the first not passed more
/// than `JUST_PASSED` ago; for a date, the one (without a year, the one
/// nearest `now`).
fn candidates(clock: &Clock, now: i64, offset: i64) -> Vec<i64> {
    let local_now = now + offset;
    let time =
        i64::from(clock.hour) * 3600 + i64::from(clock.minute) * 60 + i64::from(clock.second);
    let Some((year, month, day)) = clock.date else {
        let today = local_now.div_euclid(DAY) * DAY + time - offset;
        return vec![today - DAY, today, today + DAY];
    };
    let this_year = civil_year(local_now.div_euclid(DAY));
    let years = match year {
        Some(year) => year..=year,
        None => this_year - 1..=this_year + 1,
    };
    years
        .filter(|&y| (1..=days_in_month(y, month)).contains(&day))
        .map(|y| days_from_civil(y, month, day) * DAY + time - offset)
        .min_by_key(|at| at.abs_diff(now))
        .into_iter()
        .collect()
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The year of a day counted from 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_year(days: i64) -> i64 {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_based_month = (5 * day_of_year + 2) / 153;
    // January and February count in the March-based year before.
    let year = year_of_era + era * 400;
    if march_based_month >= 10 {
        year + 1
    } else {
        year
    }
}

// --------------------------------------------------------------- cursor

/// A reader of lowercased text. It only steps over ASCII bytes, so every
/// cut it makes is on a char boundary.
#[derive(Debug, Clone, Copy)]
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(rest: &'a str) -> Cursor<'a> {
        Cursor { rest }
    }

    /// Skips whitespace; whether there was any.
    fn spaces(&mut self) -> bool {
        let before = self.rest.len();
        self.rest = self.rest.trim_start();
        self.rest.len() < before
    }

    fn skip(&mut self, ascii: impl Fn(u8) -> bool) -> &'a str {
        let n = self
            .rest
            .bytes()
            .take_while(|&b| b.is_ascii() && ascii(b))
            .count();
        let (skipped, rest) = self.rest.split_at(n);
        self.rest = rest;
        skipped
    }

    fn eat(&mut self, prefix: &str) -> bool {
        match self.rest.strip_prefix(prefix) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// `word` when a whole word (not "at" of "attack").
    fn eat_word(&mut self, word: &str) -> bool {
        let mut t = *self;
        if t.word() == word {
            *self = t;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> &'a str {
        self.skip(|b| b.is_ascii_alphabetic())
    }

    fn digits(&mut self) -> &'a str {
        self.skip(|b| b.is_ascii_digit())
    }

    /// A whole number of `min` to `max` digits.
    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let mut t = *self;
        let digits = t.digits();
        if !(min..=max).contains(&digits.len()) {
            return None;
        }
        *self = t;
        digits.parse().ok()
    }

    /// `12`, `1.5`: a number of at most 12 digits, then 9 decimals.
    fn decimal(&mut self) -> Option<f64> {
        let mut t = *self;
        let whole = t.digits();
        if whole.is_empty() || whole.len() > 12 {
            return None;
        }
        let mut fraction = t;
        if fraction.eat(".") {
            let decimals = fraction.digits();
            if (1..=9).contains(&decimals.len()) {
                t = fraction;
            }
        }
        let read = &self.rest[..self.rest.len() - t.rest.len()];
        *self = t;
        read.parse().ok()
    }
}

#[cfg(test)]
mod tests;
