//! A problem found in the definitions: what is wrong, where (file and line),
//! and how to fix it. Problems are collected and reported all at once.

use std::collections::HashMap;
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
        AtValues::new(file).problem(key, value, message)
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

/// Where a text's mapping keys are written: each key's line (from 1) is
/// looked up in an index made in one pass, not by reading the text from
/// the top for each key (a frontmatter of 20,000 keys took 25 s so).
///
/// A key is written bare or quoted (`"02":`, as a phase key of digits
/// must be): `key:` first on its line, after a list's `- `, or in a flow
/// mapping after `{` or `,`. Not `idle_timeout:` for `timeout`, nor
/// `a-timeout:`, nor a comment.
pub struct KeyLines<'t> {
    text: &'t str,
    lines: Vec<&'t str>,
    /// Each `...:` written, under the part of what is before the colon
    /// from the last place a key may start (`KeyStart`): its line, and
    /// the byte that part ends at, in order. A key written there has that
    /// part as its own last part: `b` of `- a - b:` is found under `b`,
    /// and so is the key `a - b`.
    ends: HashMap<&'t str, Vec<(usize, usize)>>,
}

impl<'t> KeyLines<'t> {
    pub fn new(text: &'t str) -> KeyLines<'t> {
        let lines: Vec<&str> = text.lines().collect();
        let mut ends: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
        for (i, line) in lines.iter().enumerate() {
            if is_comment(line) {
                continue;
            }
            let mut start = KeyStart::default();
            for (at, c) in line.char_indices() {
                if c == ':' {
                    let last_part = &line[start.start..start.end];
                    ends.entry(last_part).or_default().push((i + 1, start.end));
                }
                start.read(at, c);
            }
        }
        KeyLines { text, lines, ends }
    }

    /// The line, from `from_line` on, where mapping key `key` is written.
    pub fn find(&self, key: &str, from_line: usize) -> Option<usize> {
        // A key with a space at an end may start or end among the spaces
        // around a written key, where the index does not look: read.
        if key.is_empty() || key.trim() != key {
            return find_key_line(self.text, key, from_line);
        }
        let found = written(key).into_iter().filter_map(|written| {
            let mut start = KeyStart::default();
            written.char_indices().for_each(|(at, c)| start.read(at, c));
            let ends = self.ends.get(&written[start.start..start.end])?;
            let first = ends.partition_point(|&(line, _)| line < from_line);
            let written_at = |&&(line, end): &&(usize, usize)| {
                let before = self.lines[line - 1][..end].strip_suffix(written.as_str());
                before.is_some_and(opens_key)
            };
            ends[first..].iter().find(written_at).map(|&(line, _)| line)
        });
        found.min()
    }
}

/// Reading a line character by character: where a key that would end
/// where the text read so far ends starts at the latest (`opens_key`).
#[derive(Default)]
struct KeyStart {
    /// The last character read that is not a space.
    last: Option<char>,
    /// Whether the character read last is a space.
    after_space: bool,
    /// The latest place read where a key may start.
    latest: usize,
    /// The latest place a key may start up to `end`, where the text read
    /// ends without its trailing spaces.
    start: usize,
    end: usize,
}

impl KeyStart {
    /// Reads character `c`, at byte `at`.
    fn read(&mut self, at: usize, c: char) {
        // `opens_key` of the text before `at`, from what was read of it.
        let opens = match self.last {
            None | Some(',' | '{') => true,
            Some('-') => self.after_space,
            Some(_) => false,
        };
        if opens {
            self.latest = at;
        }
        self.after_space = c.is_whitespace();
        if !self.after_space {
            self.last = Some(c);
            self.end = at + c.len_utf8();
            self.start = match c {
                ',' | '{' => self.end,
                _ => self.latest,
            };
        }
    }
}

/// The 1-based line, from `from_line` on, where mapping key `key` is
/// written (see `KeyLines`), read from there.
fn find_key_line(text: &str, key: &str, from_line: usize) -> Option<usize> {
    let written = written(key);
    first_line(text, from_line, |line| {
        written.iter().any(|key| {
            line.match_indices(key.as_str()).any(|(at, _)| {
                let after = line[at + key.len()..].trim_start();
                after.starts_with(':') && opens_key(&line[..at])
            })
        })
    })
}

/// The ways key `key` is written: bare, and quoted either way.
fn written(key: &str) -> [String; 3] {
    [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
}

/// Whether a key may start after `before`, the text before it on its
/// line: first on it, after a list's `- `, or after a flow mapping's `{`
/// or `,`.
fn opens_key(before: &str) -> bool {
    let listed = before.ends_with(char::is_whitespace) && before.trim_end().ends_with('-');
    before.trim().is_empty() || before.trim_end().ends_with(['{', ',']) || listed
}

/// Where the values of a key's list (flow or block, or one word) are
/// written, to say each at its line: the list's lines are read once and
/// each run of letters in them indexed, not read again for each value
/// (20,000 unknown dependencies took 13 s so).
struct ValueLines {
    /// The key's line.
    key_line: usize,
    /// The list's lines that are not comments, each with its number: the
    /// key's line from after its `:`, then the lines of its block list,
    /// or of its flow list until it closes.
    lines: Vec<(usize, String)>,
    /// Their words (`index_words`), indexed when a second value is looked
    /// for: one is found sooner by reading the lines.
    words: Option<HashMap<String, Vec<(usize, usize)>>>,
    /// Whether a value was looked for.
    asked: bool,
}

impl ValueLines {
    /// The list of `key` in `text` (from its line 2: a task file's first
    /// is `---`), if `key` is written.
    fn new(text: &str, key: &str) -> Option<ValueLines> {
        let key_line = find_key_line(text, key, 2)?;
        let mut lines = Vec::new();
        // A flow list opened on the key's line and closed on a later one.
        let mut open_flow = false;
        for (i, line) in text.lines().enumerate().skip(key_line - 1) {
            let said = if i + 1 == key_line {
                let value = line.split_once(':').map_or("", |(_, rest)| rest);
                open_flow = value.trim_start().starts_with('[') && !value.contains(']');
                value
            } else {
                if !open_flow && !line.trim_start().starts_with(['-', '#']) {
                    break;
                }
                if open_flow && line.contains(']') {
                    open_flow = false;
                }
                line
            };
            if !is_comment(said) {
                lines.push((i + 1, said.to_owned()));
            }
        }
        Some(ValueLines {
            key_line,
            lines,
            words: None,
            asked: false,
        })
    }

    /// The line where the list names `value` as a whole word: not `a`
    /// inside `p/a` or in the title, as a search for the text alone found.
    /// Else the key's line.
    fn line(&mut self, value: &str) -> usize {
        // Where `value` is written, each of its words is one on its line:
        // the candidates are where the one written least often is.
        if std::mem::replace(&mut self.asked, true) && self.words.is_none() {
            self.words = Some(index_words(&self.lines));
        }
        let rarest = (self.words.as_ref()).and_then(|words| {
            words_of(value)
                .map(|(at, word)| (at, words.get(word).map_or(&[][..], Vec::as_slice)))
                .min_by_key(|(_, places)| places.len())
        });
        let found = match rarest {
            Some((offset, places)) => places.iter().find_map(|&(i, at)| {
                let line = &self.lines[i].1;
                let start = at.checked_sub(offset)?;
                let written = line.get(start..start + value.len()) == Some(value);
                (written && whole_word(line, start, value)).then_some(self.lines[i].0)
            }),
            // The first value, or one with no letter to look up by (`*`):
            // read each line.
            None => (self.lines.iter())
                .find(|(_, line)| {
                    (line.match_indices(value)).any(|(at, _)| whole_word(line, at, value))
                })
                .map(|&(n, _)| n),
        };
        found.unwrap_or(self.key_line)
    }
}

/// Each run of `in_word` characters on `lines`: the index of its line,
/// and the byte it starts at, in order.
fn index_words(lines: &[(usize, String)]) -> HashMap<String, Vec<(usize, usize)>> {
    let mut words: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
    for (i, (_, line)) in lines.iter().enumerate() {
        for (at, word) in words_of(line) {
            words.entry(word.to_owned()).or_default().push((i, at));
        }
    }
    words
}

/// Whether `value`, at byte `at` of `line`, is a whole word there.
fn whole_word(line: &str, at: usize, value: &str) -> bool {
    let before = line[..at].chars().next_back();
    let after = line[at + value.len()..].chars().next();
    !before.is_some_and(in_word) && !after.is_some_and(in_word)
}

/// Whether `c` is part of a word of a list's value (`a` is not named in
/// `p/a`).
fn in_word(c: char) -> bool {
    c.is_alphanumeric() || "-_./".contains(c)
}

/// The runs of `in_word` characters of `text`, each with its byte.
fn words_of(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut from = None;
    (text.char_indices().chain([(text.len(), ' ')])).filter_map(move |(at, c)| {
        match (in_word(c), from) {
            (true, None) => from = Some(at),
            (false, Some(start)) => {
                from = None;
                return Some((start, &text[start..at]));
            }
            _ => {}
        }
        None
    })
}

/// The problems of one file that are each at the line where a key's
/// list names a value: the file is read once, when the first is made,
/// and each list indexed once (a task with 200,000 unknown dependencies
/// read its file and its list again for each).
pub struct AtValues<'f> {
    file: &'f Utf8Path,
    /// The file's text, once read (none if it cannot be read again).
    text: Option<Option<String>>,
    lists: HashMap<String, Option<ValueLines>>,
}

impl<'f> AtValues<'f> {
    pub fn new(file: &'f Utf8Path) -> AtValues<'f> {
        AtValues {
            file,
            text: None,
            lists: HashMap::new(),
        }
    }

    /// A problem at the line where `key`'s list names `value` (or at the
    /// key's line; none if the key is not written, or the file cannot be
    /// read again).
    pub fn problem(&mut self, key: &str, value: &str, message: impl Into<String>) -> Problem {
        let AtValues { file, text, lists } = self;
        let text = text.get_or_insert_with(|| std::fs::read_to_string(&**file).ok());
        let line = text.as_deref().and_then(|text| {
            if !lists.contains_key(key) {
                lists.insert(key.to_owned(), ValueLines::new(text, key));
            }
            Some(lists.get_mut(key)?.as_mut()?.line(value))
        });
        Problem::in_file(file, line, message)
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn first_line(text: &str, from_line: usize, wanted: impl Fn(&str) -> bool) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1))
        .find(|(_, line)| !is_comment(line) && wanted(line))
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
        let find = |text, key, from| KeyLines::new(text).find(key, from);
        let text = "# timeout: 8h\nidle_timeout: 5m\n  # retries: 1\ntimeout: soon\nresources: {cpus: 2, memory_gb: x}\nnotify:\n  - command: y\nretries: many\n";
        assert_eq!(find(text, "timeout", 1), Some(4));
        assert_eq!(find(text, "memory_gb", 1), Some(5));
        assert_eq!(find(text, "cpus", 1), Some(5));
        assert_eq!(find(text, "command", 6), Some(7));
        assert_eq!(find(text, "retries", 1), Some(8));
        assert_eq!(find(text, "missing", 1), None);
        let listed = "a-timeout: 1\n- timeout: 2\n";
        assert_eq!(find(listed, "timeout", 1), Some(2));
        let quoted = "phases:\n  \"01\": {max_parallel: 1}\n  '02': {}\nx: {\"03\": 1}\n";
        assert_eq!(find(quoted, "01", 1), Some(2));
        assert_eq!(find(quoted, "02", 1), Some(3));
        assert_eq!(find(quoted, "03", 1), Some(4));
        assert_eq!(find_line(text, "retries", 1), Some(8));
    }

    /// The index finds every key where reading each line for it does:
    /// every piece of these lines, from every line on.
    #[test]
    fn the_index_of_keys_finds_what_reading_each_line_finds() {
        let text = "a: 1\n- a - b: 2\n  - {c, d: 3,e :4}\nf, g: {h: {i: 5}}\n# a: 6\n\"j k\": 7\n'l': 8\nm:n: 9\n-  - o:\n  a : 10\n{: 11\n, : 12\né, ü: 13\n";
        let keys = KeyLines::new(text);
        for line in text.lines() {
            for (start, _) in line.char_indices() {
                for (end, _) in line[start..].char_indices().skip(1) {
                    let key = &line[start..start + end];
                    for from in 0..=text.lines().count() + 1 {
                        let read = find_key_line(text, key, from);
                        assert_eq!(keys.find(key, from), read, "{key:?} from {from}");
                    }
                }
            }
        }
    }

    /// The line found for `value`, read as the first value, and in the
    /// index as a second.
    fn find_value_line(text: &str, key: &str, value: &str) -> Option<usize> {
        let mut lines = ValueLines::new(text, key)?;
        let read = lines.line(value);
        assert_eq!(lines.line(value), read, "{value} in the index");
        Some(read)
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
        // Found by its word written least often, or with no word at all.
        let globs =
            "---\ninputs: [p/a/*.json, p/b/*.json,\n  # p/a/*.txt\n  p/a/*.txt, \"*\"]\n---\n";
        assert_eq!(find_value_line(globs, "inputs", "p/a/*.txt"), Some(4));
        assert_eq!(find_value_line(globs, "inputs", "p/b/*.json"), Some(2));
        assert_eq!(find_value_line(globs, "inputs", "*"), Some(4));
        assert_eq!(find_value_line(globs, "inputs", "p/a/*"), Some(2));
    }
}
