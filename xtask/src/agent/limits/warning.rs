//! A CLI's warning of a limit drawing near, told apart from a limit hit:
//! it names the limit and its reset as a hit does.

/// Case-insensitive substrings that make a line a warning of a limit
/// drawing near, which the CLIs show as they go on working: it names the
/// limit, and when it resets, as a limit hit does, and is none. Claude
/// Code's ("You've used 91% of your weekly limit · resets Sep 24, 6pm
/// (UTC)", "Approaching weekly limit · resets 9pm") and Codex's ("Heads
/// up, you've used over 90% of your weekly limit. Run /status for a
/// breakdown."), listed with their sources in the fixtures'
/// `rate_limit_messages.txt`.
const WARNINGS: &[&str] = &["approaching ", "you're close to ", "you’re close to "];

/// A share of a limit used, warned of below its whole ("you've used 91%
/// of", "you've used over 90% of"): at 100 % the limit is hit.
const USED: &[&str] = &["you've used ", "you’ve used "];

/// Whether `line` is a warning of a limit drawing near (`WARNINGS`, or a
/// share `USED` under 100 %): no evidence of a limit hit, nor of when one
/// resets.
pub fn warns(line: &str) -> bool {
    let line = line.to_lowercase();
    // The share right after the words ("91%", "over 90%", "97.5%"): a
    // `%` further on is not it.
    let under_whole = |rest: &str| {
        let rest = rest.strip_prefix("over ").unwrap_or(rest);
        let share = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let number = &rest[..rest.len() - share.len()];
        share.starts_with('%') && number.parse::<f64>().is_ok_and(|n| n < 100.0)
    };
    WARNINGS.iter().any(|w| line.contains(w))
        || (USED.iter()).any(|u| {
            line.split_once(u)
                .is_some_and(|(_, rest)| under_whole(rest))
        })
}
