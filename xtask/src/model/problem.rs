//! A problem found in the definitions: what is wrong, where (file and line),
//! and how to fix it. Problems are collected and reported all at once.

use std::fmt;

use camino::{Utf8Path, Utf8PathBuf};

use crate::agent::terminal::escaped;

#[derive(Debug, Clone)]
pub struct Problem {
    pub file: Option<Utf8PathBuf>,
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    /// A file that is not UTF-8, at the line and byte where it stops
    /// being so.
    pub fn not_utf8(file: &Utf8Path, e: &std::string::FromUtf8Error) -> Problem {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        // Its line, and its column in bytes on that line.
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Problem::in_file(
            file,
            Some(line),
            format!(
                "not valid UTF-8 (byte {} of the line): save it as UTF-8",
                at - line_start + 1
            ),
        )
    }

    pub fn in_file(file: &Utf8Path, line: Option<usize>, message: impl Into<String>) -> Problem {
        Problem {
            file: Some(file.to_owned()),
            line,
            message: message.into(),
        }
    }
    /// A problem of task file `file`, at the first line of its frontmatter
    /// that names `needle` (none if the file cannot be read again).
    pub fn in_file_where(file: &Utf8Path, needle: &str, message: impl Into<String>) -> Problem {
        let line = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| find_line(&text, needle, 2));
        Problem::in_file(file, line, message)
    }

    /// A problem of task file `file` at the line of its frontmatter where
    /// `key`'s list names `value` (or at the key's line; none if the file
    /// cannot be read again).
    pub fn in_file_at_value(
        file: &Utf8Path,
        key: &str,
        value: &str,
        message: impl Into<String>,
    ) -> Problem {
        let line = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| find_value_line(&text, key, value));
        Problem::in_file(file, line, message)
    }

    pub fn general(message: impl Into<String>) -> Problem {
        Problem {
            file: None,
            line: None,
            message: message.into(),
        }
    }
}

impl Problem {
    /// With the file shown relative to `dir` when it is inside it.
    pub fn relative_to(mut self, dir: &Utf8Path) -> Problem {
        if let Some(file) = &self.file {
            if let Ok(relative) = file.strip_prefix(dir) {
                self.file = Some(relative.to_owned());
            }
        }
        self
    }
}

/// A problem as a person reads it. A file's name and the values a message
/// quotes are the user's, and may hold what a terminal acts on (a file
/// named with an escape sequence, a dependency `"\e]0;x\a"`): written
/// out, never sent raw, a line break too (a problem is one line); a tab is
/// kept.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = escaped(&self.message, &['\t']);
        match (&self.file, self.line) {
            (Some(file), Some(line)) => {
                write!(f, "{}:{line}: {message}", escaped(file.as_str(), &[]))
            }
            (Some(file), None) => write!(f, "{}: {message}", escaped(file.as_str(), &[])),
            _ => write!(f, "{message}"),
        }
    }
}

/// Definitions (or a command line) that cannot be used: every problem found,
/// reported at once. `main` turns it into exit code 2.
#[derive(Debug)]
pub struct Invalid {
    pub problems: Vec<Problem>,
}

impl Invalid {
    /// The problems under a heading; `launches`: for a command that would
    /// have started tasks, which says that none was.
    pub fn describe(&self, launches: bool) -> String {
        let count = match self.problems.len() {
            1 => "a problem".to_owned(),
            n => format!("{n} problems"),
        };
        let mut text = format!(
            "the task definitions have {count}{}:",
            if launches {
                "; nothing was launched"
            } else {
                ""
            }
        );
        for problem in &self.problems {
            text += &format!("\n  {problem}");
        }
        text
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(false))
    }
}

impl std::error::Error for Invalid {}

/// The 1-based line of the first line of `text` that contains `needle`,
/// from line `from_line` on, to point an error at the offending entry.
/// Comment lines are passed over: the templates list every setting
/// commented out, above the one that is set.
pub fn find_line(text: &str, needle: &str, from_line: usize) -> Option<usize> {
    first_line(text, from_line, |line| line.contains(needle))
}

/// The 1-based line, from `from_line` on, where mapping key `key` is
/// written, bare or quoted (`"02":`, as a phase key of digits must be):
/// `key:` first on its line, after a list's `- `, or in a flow mapping
/// after `{` or `,`. Not `idle_timeout:` for `timeout`, nor `a-timeout:`,
/// nor a comment.
pub fn find_key_line(text: &str, key: &str, from_line: usize) -> Option<usize> {
    let written = [key.to_owned(), format!("\"{key}\""), format!("'{key}'")];
    first_line(text, from_line, |line| {
        written.iter().any(|key| {
            line.match_indices(key.as_str()).any(|(at, _)| {
                let before = &line[..at];
                let after = line[at + key.len()..].trim_start();
                let listed =
                    before.ends_with(char::is_whitespace) && before.trim_end().ends_with('-');
                let opens = before.trim().is_empty() || before.trim_end().ends_with(['{', ',']);
                after.starts_with(':') && (opens || listed)
            })
        })
    })
}

/// The 1-based line where the value of `key` (a list, flow or block, or
/// one word) names `value` as a whole word: not `a` inside `p/a` or in the
/// title, as a search for the text alone found. Falls back to the key's
/// line.
pub fn find_value_line(text: &str, key: &str, value: &str) -> Option<usize> {
    let at = find_key_line(text, key, 2)?;
    let part_of_word = |c: char| c.is_alphanumeric() || "-_./".contains(c);
    let names = |line: &str| {
        line.match_indices(value).any(|(i, _)| {
            let before = line[..i].chars().next_back();
            let after = line[i + value.len()..].chars().next();
            !before.is_some_and(part_of_word) && !after.is_some_and(part_of_word)
        })
    };
    // A flow list opened on the key's line and closed on a later one.
    let mut open_flow = false;
    let value_at = text
        .lines()
        .enumerate()
        .skip(at - 1)
        // The key's line, then the lines of its block list, or of its flow
        // list until it closes.
        .take_while(|(i, line)| {
            let of_it = *i + 1 == at || open_flow || line.trim_start().starts_with(['-', '#']);
            if *i + 1 == at {
                let value = line.split_once(':').map_or("", |(_, rest)| rest);
                open_flow = value.trim_start().starts_with('[') && !value.contains(']');
            } else if open_flow && line.contains(']') {
                open_flow = false;
            }
            of_it
        })
        .find(|(i, line)| {
            let line = if *i + 1 == at {
                line.split_once(':').map_or("", |(_, rest)| rest)
            } else {
                line
            };
            !line.trim_start().starts_with('#') && names(line)
        })
        .map(|(i, _)| i + 1);
    value_at.or(Some(at))
}

fn first_line(text: &str, from_line: usize, wanted: impl Fn(&str) -> bool) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1))
        .find(|(_, line)| !line.trim_start().starts_with('#') && wanted(line))
        .map(|(i, _)| i + 1)
}

/// Edit distance, to suggest the nearest id or key for a typo.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    // Nothing typed is no typo of a short name.
    if word.trim().is_empty() {
        return None;
    }
    // Nor is a name as many edits away as the longer of the two has
    // letters (`zz` and `a`): nothing of either is in the other.
    let letters = word.chars().count();
    // A name is at least as many edits away as the two differ in length:
    // one too far so is not measured.
    let near_enough = |c: &str| letters.abs_diff(c.chars().count()) <= (c.len() / 3).max(2);
    candidates
        .filter(|c| near_enough(c))
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .filter(|(d, c)| *d < letters.max(c.chars().count()))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        let check = |a, b, expected| assert_eq!(edit_distance(a, b), expected, "{a} ~ {b}");
        check("", "", 0);
        check("abc", "abc", 0);
        check("dependecies", "dependencies", 1);
        check("kitten", "sitting", 3);
        check("", "abc", 3);
    }

    #[test]
    fn nearest_candidate() {
        assert_eq!(nearest("", ["a", "ab"].into_iter()), None);
        let ids = ["01-analysis/01-run", "01-analysis/02-categorize"];
        assert_eq!(
            nearest("01-analysis/01-rn", ids.into_iter()),
            Some("01-analysis/01-run")
        );
        assert_eq!(nearest("zzz", ids.into_iter()), None);
        assert_eq!(nearest("zz", ["a", "b2"].into_iter()), None);
        assert_eq!(nearest("ab", ["abc"].into_iter()), Some("abc"));
        assert_eq!(nearest("b", ["ab"].into_iter()), Some("ab"));
    }

    #[test]
    fn a_key_is_found_where_it_is_set_not_in_a_comment_or_a_longer_key() {
        let text = "# timeout: 8h\nidle_timeout: 5m\n  # retries: 1\ntimeout: soon\nresources: {cpus: 2, memory_gb: x}\nnotify:\n  - command: y\nretries: many\n";
        assert_eq!(find_key_line(text, "timeout", 1), Some(4));
        assert_eq!(find_key_line(text, "memory_gb", 1), Some(5));
        assert_eq!(find_key_line(text, "cpus", 1), Some(5));
        assert_eq!(find_key_line(text, "command", 6), Some(7));
        assert_eq!(find_key_line(text, "retries", 1), Some(8));
        assert_eq!(find_key_line(text, "missing", 1), None);
        let listed = "a-timeout: 1\n- timeout: 2\n";
        assert_eq!(find_key_line(listed, "timeout", 1), Some(2));
        let quoted = "phases:\n  \"01\": {max_parallel: 1}\n  '02': {}\nx: {\"03\": 1}\n";
        assert_eq!(find_key_line(quoted, "01", 1), Some(2));
        assert_eq!(find_key_line(quoted, "02", 1), Some(3));
        assert_eq!(find_key_line(quoted, "03", 1), Some(4));
        assert_eq!(find_line(text, "retries", 1), Some(8));
    }

    #[test]
    fn a_value_is_found_as_a_word_in_its_key_s_list() {
        let text = "---\ntitle: t is a task\ndependencies: [a/t, t]\noutputs: [t.json]\n---\n";
        assert_eq!(find_value_line(text, "dependencies", "t"), Some(3));
        let block = "---\ntitle: x\ndependencies:\n  - p/x\n  # x\n  - \"x\"\ncommand: x\n---\n";
        assert_eq!(find_value_line(block, "dependencies", "x"), Some(6));
        assert_eq!(find_value_line(block, "dependencies", "p/x"), Some(4));
        // Not in the list: the key's line.
        assert_eq!(find_value_line(block, "dependencies", "y"), Some(3));
        assert_eq!(find_value_line(block, "inputs", "x"), None);
        // A flow list over lines, up to where it closes.
        let flow = "---\ndependencies: [\n  a/one,\n  a/tow]\ninputs: [a/tow]\n---\n";
        assert_eq!(find_value_line(flow, "dependencies", "a/tow"), Some(4));
        assert_eq!(find_value_line(flow, "dependencies", "a/one"), Some(3));
        assert_eq!(find_value_line(flow, "dependencies", "a/zzz"), Some(2));
    }
}
