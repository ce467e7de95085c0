//! A CLI's warning of a limit drawing near, told apart from a limit hit:
//! it names the limit and its reset as a hit does.

/// Case-insensitive substrings that make a line a warning of a limit
/// drawing near, which the CLIs show as they go on working: it names the
/// limit, and when it resets, as a limit hit does, and is none.
/// Listed with their sources in the fixtures' `rate_limit_messages.txt`;
/// Claude Code's "Approaching ..." is `approaching` below.
const WARNINGS: &[&str] = &["you're close to ", "you’re close to "];

/// A share of a limit used, warned of below its whole ("you've used 91%
/// of", "you've used over 90% of"): at 100 % the limit is hit.
const USED: &[&str] = &["you've used ", "you’ve used "];

/// Whether `line` is a warning of a limit drawing near (`WARNINGS`,
/// Claude Code's `approaching`, or a share `USED` under 100 %, as in
/// Claude Code's "You've used 91% of your weekly limit · resets Sep 24,
/// 6pm (UTC)" and Codex's "Heads up, you've used over 90% of your weekly
/// limit. Run /status for a breakdown."): no evidence of a limit hit, nor
/// of when one resets.
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
        || approaching(&line)
        || (USED.iter()).any(|u| {
            line.split_once(u)
                .is_some_and(|(_, rest)| under_whole(rest))
        })
}

/// Claude Code's `Approaching ${label}` (a lowercased `line`): a part of
/// the line, its parts joined with " · ", that is "approaching" and the
/// limit's name, a few words the last of which is "limit" ("Approaching
/// weekly limit · resets 9pm", "Approaching Opus usage limit · /model to
/// use best available model"), then nothing but, where the separator was
/// lost, its reset ("Approaching usage limit resets at 2am"). Narrow on
/// purpose: a limit hit that says "approaching" elsewhere ("Rate limit
/// reached, approaching reset at ...") is a limit hit.
fn approaching(line: &str) -> bool {
    line.split(['·', '∙']).any(|part| {
        // A mark before it ("⚠ ", "⎿ ") is the TUI's.
        let part = part.trim_start_matches(|c: char| !c.is_alphanumeric());
        let Some(rest) = part.strip_prefix("approaching ") else {
            return false;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let Some(last) = (words.iter().take(LABEL_WORDS))
            .position(|w| w.trim_end_matches(['.', ',', '!']) == "limit")
        else {
            return false;
        };
        let named =
            (words[..last].iter()).all(|w| w.chars().all(|c| c.is_alphanumeric() || c == '-'));
        named && matches!(words.get(last + 1), None | Some(&("resets" | "reset")))
    })
}

/// The most words a limit's name takes ("your extra usage limit").
const LABEL_WORDS: usize = 4;
