//! How durations, amounts of memory and command lines are written for a
//! person: one way each, used by every view.

use std::time::{Duration, SystemTime};

/// `1.2s`, `3m 04s`, `2h 05m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, secs % 3600 / 60)
    }
}

/// How long a task has run, from whole seconds (`progress --json`'s
/// `elapsed_seconds`): `12s`, not `12.0s`, which would claim a tenth's
/// precision it does not have (a task 1.8 s in was shown `1.0s`).
pub fn elapsed(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        _ => duration(Duration::from_secs(secs)),
    }
}

/// `duration` of a number of seconds (negative counts as zero, one too
/// long for a `Duration` as the longest).
pub fn seconds(secs: f64) -> String {
    duration(Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX))
}

/// `text`'s first line, its first `chars` characters: a long text said
/// shortly.
pub fn first_line(text: &str, chars: usize) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(chars)
        .collect()
}

/// `text`'s lines that say something, trimmed, as one line joined by
/// `; `: a command's stderr on one line of the views and the events.
pub fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("; ")
}

/// `text` and the spaces that fill it to `width` columns, as a terminal
/// draws it: a column of names lines up when one is `中文` (two columns a
/// character) or `é` written as `e` and a combining accent (none), which
/// `{:<width$}`, counting characters, would shift.
pub fn padded(text: &str, width: usize) -> String {
    let fill = width.saturating_sub(unicode_width::UnicodeWidthStr::width(text));
    format!("{text}{}", " ".repeat(fill))
}

/// The start of `text` that takes at most `columns` columns on a
/// terminal (a CJK character takes two, a combining accent none).
pub fn within_columns(text: &str, columns: usize) -> &str {
    let mut taken = 0;
    for (at, c) in text.char_indices() {
        taken += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if taken > columns {
            return &text[..at];
        }
    }
    text
}

/// The first `n` of `items`, and how many more: `a, b, c and 4 more`.
pub fn first_few(items: &[String], n: usize) -> String {
    let shown: Vec<&str> = items.iter().take(n).map(String::as_str).collect();
    match items.len() - shown.len() {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// What a list of `count` tasks cut at `shown` left out, `and 5 more
/// failed (`every` lists them)`, `every` the command that lists them all;
/// none when nothing was left out.
pub fn more_listed(count: usize, shown: usize, what: &str, every: &str) -> Option<String> {
    (count > shown).then(|| format!("and {} more {what} (`{every}` lists them)", count - shown))
}

/// A count and its noun, in the singular for one: `1 task`, `3 tasks`.
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The pronoun for `n` things: `it` for one, `them` for more.
pub fn it_or_them(n: usize) -> &'static str {
    if n == 1 {
        "it"
    } else {
        "them"
    }
}

/// `8 GiB`, `100 MiB`.
pub fn gib(amount: f64) -> String {
    let amount = amount.max(0.0);
    if amount >= 1.0 {
        format!("{} GiB", (amount * 100.0).round() / 100.0)
    } else {
        format!("{} MiB", (amount * 1024.0).round())
    }
}

/// A time of day on this machine's clock, `15:00` (`15:00:20` when not on
/// the minute), with its date when it is not today: `2026-12-02 15:00`.
pub fn clock(time: SystemTime) -> String {
    let offset = crate::agent::limits::local_offset();
    let latest = crate::agent::limits::latest();
    let local = |t: SystemTime| {
        // A time past year 9999 (read from a hand-edited status, say) is
        // written as its last second rather than failing to be written.
        let t = t.min(latest);
        let shifted = if offset >= 0 {
            t + Duration::from_secs(offset.unsigned_abs())
        } else {
            t - Duration::from_secs(offset.unsigned_abs())
        };
        // `2026-12-02T15:00:00Z`, on the local clock.
        humantime::format_rfc3339_seconds(shifted.min(latest)).to_string()
    };
    let (then, today) = (local(time), local(SystemTime::now()));
    let clock = if &then[17..19] == "00" {
        &then[11..16]
    } else {
        &then[11..19]
    };
    if then[..10] == today[..10] {
        clock.to_owned()
    } else {
        format!("{} {clock}", &then[..10])
    }
}

/// A sum of costs without its float noise (0.9, not 0.8999999999999999),
/// for what a machine reads: to the billionth of a dollar.
pub fn cost_sum(amount: f64) -> f64 {
    (amount * 1e9).round() / 1e9
}

/// `$1.23`; amounts under a cent keep four decimals, `$0.0042`.
pub fn usd(amount: f64) -> String {
    if amount != 0.0 && amount.abs() < 0.01 {
        format!("${amount:.4}")
    } else {
        format!("${amount:.2}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_line_is_cut_to_the_columns_it_takes() {
        assert_eq!(super::within_columns("abcdef", 4), "abcd");
        assert_eq!(super::within_columns("解析する", 5), "解析");
        assert_eq!(super::within_columns("e\u{301}te", 2), "e\u{301}t");
        assert_eq!(super::within_columns("ab", 4), "ab");
    }

    #[test]
    fn names_are_padded_to_the_columns_they_take() {
        assert_eq!(super::padded("ab", 6), "ab    ");
        assert_eq!(super::padded("中文", 6), "中文  ");
        assert_eq!(super::padded("e\u{301}🚀", 6), "e\u{301}🚀   ");
        assert_eq!(super::padded("too long", 3), "too long");
    }

    #[test]
    fn one_is_counted_in_the_singular() {
        let tasks = |n| super::counted(n, "task", "tasks");
        assert_eq!(
            [tasks(0), tasks(1), tasks(2)],
            ["0 tasks", "1 task", "2 tasks"]
        );
    }

    #[test]
    fn a_time_past_year_9999_is_written_as_its_last_day() {
        let far = UNIX_EPOCH + Duration::from_secs(1_000_000_000_000_000);
        assert!(super::clock(far).starts_with("9999-12-31 "));
    }
}
