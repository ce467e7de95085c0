//! Reading a YAML mapping key by key, for the config and task frontmatter:
//! each value is parsed on its own and every problem is kept with its line,
//! so that a file's problems are all reported at once; keys nobody asked
//! for are reported as unknown, with the nearest known key. Messages name
//! the key and say what is expected in words, never a Rust type.

use std::cell::OnceCell;
use std::rc::Rc;

use camino::Utf8Path;
use serde_yaml::Value;

use crate::model::problem::{nearest, KeyLines, Problem};

mod syntax;
mod values;
pub use syntax::{parse, BEYOND_RANGE};
pub use values::{
    boolean, cpus, duration, gib, non_empty_text, one_line_text, one_of, positive, shown_number,
    text, text_list, whole, LONGEST,
};

/// A mapping being read.
pub struct Fields<'a> {
    file: &'a Utf8Path,
    text: &'a str,
    /// `phases.analysis.` in a nested mapping, to name its keys in full.
    path: String,
    /// The line its keys are on or after.
    from_line: usize,
    /// Where the file's keys are written, indexed when the first is
    /// looked for; shared with the mappings nested in this one.
    keys: Rc<OnceCell<KeyLines<'a>>>,
    /// Keys not read yet, each with its value. A key's line is looked for
    /// only when a problem or a caller needs it: most are read without one,
    /// and looking took a fifth of the instructions a task file's reading takes.
    entries: Vec<(String, Value)>,
    /// Keys asked for, for suggestions.
    known: Vec<&'static str>,
    problems: Vec<Problem>,
}

/// A key of a mapping, with its value and the line it is on.
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub line: Option<usize>,
}

/// What to do with keys nobody asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Every one is a problem (the config: a typo would change scheduling).
    Refused,
    /// Only those close to a known key (task frontmatter may carry keys of
    /// its own, such as `owner:`).
    NearMissesRefused,
}

impl<'a> Fields<'a> {
    /// The mapping `value` (nothing counts as empty) of `file`, whose text
    /// is `text`; its keys are on or after line `from_line`.
    pub fn new(
        file: &'a Utf8Path,
        text: &'a str,
        value: Value,
        path: &str,
        from_line: usize,
    ) -> Result<Fields<'a>, Problem> {
        Fields::within(file, text, value, path, from_line, Rc::default())
    }

    /// `new`, of a mapping of a file whose keys are indexed in `keys`.
    fn within(
        file: &'a Utf8Path,
        text: &'a str,
        value: Value,
        path: &str,
        from_line: usize,
        keys: Rc<OnceCell<KeyLines<'a>>>,
    ) -> Result<Fields<'a>, Problem> {
        let map = match value {
            Value::Null => Default::default(),
            Value::Mapping(map) => map,
            other => {
                let message = not_a_mapping(path.trim_end_matches('.'), &other);
                return Err(Problem::in_file(file, Some(from_line), message));
            }
        };
        let mut fields = Fields {
            file,
            text,
            path: path.to_owned(),
            from_line,
            keys,
            entries: Vec::new(),
            known: Vec::new(),
            problems: Vec::new(),
        };
        // Looked for only if a key is not text.
        let mut written = None;
        for (key, value) in map {
            let key = match key {
                Value::String(key) => key,
                other => {
                    let written = (written.get_or_insert_with(|| {
                        WrittenKeys::new(text, from_line, !path.is_empty())
                    }))
                    .find(&other);
                    let (line, quoted) = match written {
                        Some((line, key)) => (line, format!(" (`\"{key}\": ...`)")),
                        None => (from_line, String::new()),
                    };
                    fields.problem(Some(line), non_text_key(&other, &quoted));
                    continue;
                }
            };
            fields.entries.push((key, value));
        }
        Ok(fields)
    }

    /// The value of `key` parsed by `parse`, if the key is there and its
    /// value is right; a wrong value is a problem at its line.
    pub fn take<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let (_, value) = self.remove(key)?;
        match parse(&value) {
            Ok(value) => Some(value),
            Err(message) => {
                let line = (self.key_line(key)).map(|line| inner_line(self, line, &message));
                let full = format!("`{}{key}`: {message}", self.path);
                self.problem(line, full);
                None
            }
        }
    }

    /// The mapping under `key`, to read in turn (see `absorb`).
    pub fn nested(&mut self, key: &'static str) -> Option<Fields<'a>> {
        let (key, value) = self.remove(key)?;
        let line = self.key_line(&key);
        self.child(Entry { key, value, line })
    }

    /// The mapping of an entry from `rest`.
    pub fn child(&mut self, entry: Entry) -> Option<Fields<'a>> {
        let path = format!("{}{}.", self.path, entry.key);
        let from = entry.line.unwrap_or(1);
        let keys = Rc::clone(&self.keys);
        match Fields::within(self.file, self.text, entry.value, &path, from, keys) {
            Ok(fields) => Some(fields),
            Err(problem) => {
                self.problems.push(problem);
                None
            }
        }
    }

    /// Every key not read yet (for mappings whose keys are names, such as
    /// `phases:`).
    pub fn rest(&mut self) -> Vec<Entry> {
        (std::mem::take(&mut self.entries).into_iter())
            .map(|(key, value)| Entry {
                line: self.key_line(&key),
                key,
                value,
            })
            .collect()
    }

    /// A problem with the value at `line`.
    pub fn problem(&mut self, line: Option<usize>, message: String) {
        self.problems
            .push(Problem::in_file(self.file, line, message));
    }

    /// Whether the mapping has `key` (not taken yet).
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// The line of `key`, if the mapping has it.
    pub fn line(&self, key: &str) -> Option<usize> {
        self.has(key).then(|| self.key_line(key))?
    }

    /// The line where `key` is written (see `entries`).
    fn key_line(&self, key: &str) -> Option<usize> {
        self.key_lines().find(key, self.from_line)
    }

    fn key_lines(&self) -> &KeyLines<'a> {
        self.keys.get_or_init(|| KeyLines::new(self.text))
    }

    /// The text of the file's line `line` (from 1).
    pub fn line_text(&self, line: usize) -> Option<&str> {
        self.text.lines().nth(line.checked_sub(1)?)
    }

    /// The full name of `key` here: `phases.analysis.max_parallel`.
    pub fn name(&self, key: &str) -> String {
        format!("{}{key}", self.path)
    }

    /// Takes the problems of a nested mapping read to its end.
    pub fn absorb(&mut self, problems: Vec<Problem>) {
        self.problems.extend(problems);
    }

    /// Every problem found, with the keys nobody asked for (`alias` names
    /// our key for a key other tools use).
    pub fn finish(
        mut self,
        unknown: Unknown,
        alias: fn(&str) -> Option<&'static str>,
    ) -> Vec<Problem> {
        // A key's line is looked for only when it is a problem: a task's
        // own keys (`owner:`) are none.
        for (key, _) in std::mem::take(&mut self.entries) {
            if key == "<<" {
                let message = format!("`{}`: YAML merge keys are not read here: write the settings out (an anchor and `*alias` as a whole value work)", self.name("<<"));
                self.problem(self.key_line(&key), message);
                continue;
            }
            // `OUTPUTS` is `outputs` shouted, not a key of the user's.
            let lower = key.to_lowercase();
            let near = alias(&key)
                .or_else(|| alias(&lower))
                .or_else(|| nearest(&lower, self.known.iter().copied()));
            let message = match (near, unknown) {
                (Some(known), _) => format!(
                    "unknown key `{}`: did you mean `{}`?",
                    self.name(&key),
                    self.name(known)
                ),
                (None, Unknown::Refused) => format!(
                    "unknown key `{}`: the keys here are {}",
                    self.name(&key),
                    self.known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (None, Unknown::NearMissesRefused) => continue,
            };
            self.problem(self.key_line(&key), message);
        }
        // In the order a reader meets them.
        self.problems.sort_by_key(|p| p.line);
        self.problems
    }

    /// Asks for `key`, known from now on.
    fn remove(&mut self, key: &'static str) -> Option<(String, Value)> {
        self.known.push(key);
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(at))
    }
}

/// The line of what a problem `message` with the value of the key at
/// `line` is about: a key inside the value (a list of mappings such as
/// `notify:`, whose problems say `item 2: `timeout`: ...` or `item 1:
/// unknown key `x`: ...`) is on a line of its own, below; else `line`.
fn inner_line(fields: &Fields, line: usize, message: &str) -> usize {
    let text = fields.text;
    let item = message
        .strip_prefix("item ")
        .and_then(|rest| rest.split_once(": "));
    let (from, said) = match item {
        Some((n, said)) => {
            let n = n.parse().ok();
            (
                n.and_then(|n| item_line(text, line, n)).unwrap_or(line),
                said,
            )
        }
        None => (line, message),
    };
    let inner = (said
        .strip_prefix("unknown key `")
        .or_else(|| said.strip_prefix('`')))
    .and_then(|rest| rest.split('`').next());
    inner
        .and_then(|key| fields.key_lines().find(key, from))
        .unwrap_or(from)
}

/// The line of item `n` (from 1) of the block list under the key on line
/// `line` (`- ` lines); none when the list is written in brackets.
fn item_line(text: &str, line: usize, n: usize) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let key_indent = indent(lines.get(line.checked_sub(1)?)?);
    let mut dash = None;
    let mut seen = 0;
    for (i, l) in lines.iter().enumerate().skip(line) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        // A list may start at its key's column; anything else there ends it.
        if indent(l) <= key_indent && !t.starts_with('-') {
            return None;
        }
        if (t.starts_with("- ") || t == "-") && *dash.get_or_insert(indent(l)) == indent(l) {
            seen += 1;
            if seen == n {
                return Some(i + 1);
            }
        }
    }
    None
}

/// `value` over `slot`, when there is one (a setting read over its default).
pub fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// A line's text from its key on, after its indentation and a list's
/// `- `, and the column that starts at.
fn keyed(line: &str) -> (usize, &str) {
    let text = line.trim_start();
    let text = match text.strip_prefix("- ") {
        Some(rest) => rest.trim_start(),
        None => text,
    };
    (line.len() - text.len(), text)
}

/// Where a mapping's keys that are not text (`1`, `0x10`, `true`, `~`)
/// are written, from line `from_line` on (for a `nested` mapping, the line
/// of the key that holds it): each key's line, and the key as written
/// (YAML reads `0x10` as 16: the user wrote `0x10`). Each line is read
/// once, when a key not found yet is looked for: each key was looked for
/// from the top, and 2,000 such keys took 2 s.
struct WrittenKeys<'t> {
    /// The lines not read yet, with their index.
    lines: std::iter::Skip<std::iter::Enumerate<std::str::Lines<'t>>>,
    /// The column of the mapping's keys, if it has one.
    column: Option<usize>,
    /// Each key read so far, at the first line it is on.
    read: std::collections::HashMap<Value, (usize, String)>,
}

impl<'t> WrittenKeys<'t> {
    fn new(text: &'t str, from_line: usize, nested: bool) -> WrittenKeys<'t> {
        let lines = text.lines().enumerate().skip(from_line.saturating_sub(1));
        // The mapping's keys are at its first key's column (below its
        // holder's, when nested): not a line of a block of text inside it,
        // nor a comment.
        let holder = text
            .lines()
            .nth(from_line.saturating_sub(1))
            .map(|l| keyed(l).0);
        let column = (lines.clone())
            .map(|(_, line)| line)
            .filter(|line| said(line))
            .map(|line| keyed(line).0)
            .find(|&column| !nested || holder.is_none_or(|holder| column > holder));
        WrittenKeys {
            lines,
            column,
            read: Default::default(),
        }
    }

    /// The line of `key`, and the key as written there.
    fn find(&mut self, key: &Value) -> Option<(usize, String)> {
        if let Some(found) = self.read.get(key) {
            return Some(found.clone());
        }
        let column = self.column?;
        for (i, line) in self.lines.by_ref() {
            if !said(line) || keyed(line).0 != column {
                continue;
            }
            let Some((token, _)) = keyed(line).1.split_once(':') else {
                continue;
            };
            let token = token.trim();
            let Ok(read) = serde_yaml::from_str::<Value>(token) else {
                continue;
            };
            let found = (i + 1, token.to_owned());
            let first = self.read.entry(read.clone()).or_insert(found);
            if read == *key {
                return Some(first.clone());
            }
        }
        None
    }
}

/// Whether a line says something: not blank, nor a comment.
fn said(line: &str) -> bool {
    !line.trim().is_empty() && !line.trim_start().starts_with('#')
}

/// What a key that YAML read as no text (`true:`, `1:`, `~:`) is told;
/// `quoted`, the key quoted as written, where it is known.
pub fn non_text_key(key: &Value, quoted: &str) -> String {
    let found = type_name(key);
    format!("keys must be text, found {found}: quote it{quoted}, or fix the name")
}

/// What a value is, in words.
pub fn type_name(value: &Value) -> std::borrow::Cow<'static, str> {
    match value {
        Value::Null => "nothing".into(),
        // The value itself, where it is short: `approve: true` is found
        // `true`, not "true or false".
        Value::Bool(b) => format!("`{b}`").into(),
        Value::Number(n) => format!("the number `{n}`").into(),
        // Short text as written (`yes` is text in YAML 1.2, not true).
        Value::String(s) if s.len() <= 40 && !s.contains(|c: char| c.is_control()) => {
            format!("the text `{s}`").into()
        }
        Value::String(_) => "text".into(),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(_) => "a tagged value".into(),
    }
}

/// What a file, or the section at `path` (`phases`, `phases.a`; empty:
/// the file), that is `found` and not a mapping is told: as a wrong value
/// is (`phases`: what it must be, what it is), with how to fix it.
fn not_a_mapping(path: &str, found: &Value) -> String {
    let must = "must be a mapping of `key: value` lines";
    if path.is_empty() {
        return format!("the file {must}, found {}", type_name(found));
    }
    let key = path.rsplit('.').next().unwrap_or(path);
    let empty = match found {
        Value::Sequence(items) => items.is_empty().then_some("an empty list"),
        Value::String(text) => text.is_empty().then_some("empty text"),
        _ => None,
    };
    match empty {
        Some(empty) => {
            format!("`{path}`: {must}, found {empty}: remove the line, or write `{key}: {{}}`")
        }
        None => format!(
            "`{path}`: {must}, found {}: write its settings as `key: value` lines indented under `{key}:`",
            type_name(found)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn read(text: &str) -> Vec<String> {
        let file = Utf8Path::new("f.yaml");
        let value: Value = serde_yaml::from_str(text).unwrap();
        let mut f = Fields::new(file, text, value, "", 1).unwrap();
        f.take("count", |v| whole(v, 1));
        f.take("retries", |v| whole(v, 0));
        f.take("grace", duration);
        if let Some(mut inner) = f.nested("inner") {
            inner.take("name", non_empty_text);
            let problems = inner.finish(Unknown::Refused, |_| None);
            f.absorb(problems);
        }
        f.finish(Unknown::Refused, |k| (k == "retry").then_some("retries"))
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn every_problem_with_its_line_and_in_words() {
        let found = read("count: x\nretries: -1\ngrace: forever\ncuont: 2\ninner:\n  name: \"\"\n  nme: a\nretry: 1\n");
        assert_eq!(
            found,
            [
                "f.yaml:1: `count`: must be a whole number, 1 or more, found the text `x`",
                "f.yaml:2: `retries`: must be a whole number, 0 or more, found -1",
                "f.yaml:3: `grace`: must be a positive duration of at most 100 years: seconds as a number, or `90s`, `30m`, `1.5h`; found `forever`",
                "f.yaml:4: unknown key `cuont`: did you mean `count`?",
                "f.yaml:6: `inner.name`: is empty: give it a value, or remove the key",
                "f.yaml:7: unknown key `inner.nme`: did you mean `inner.name`?",
                "f.yaml:8: unknown key `retry`: did you mean `retries`?",
            ]
        );
        assert!(read("count: 2\nzzz: 1\n")[0].contains("the keys here are `count`, `retries`"));
    }

    #[test]
    fn common_syntax_mistakes_are_said_with_what_to_do() {
        let said = |yaml: &str| {
            let error = serde_yaml::from_str::<Value>(yaml).unwrap_err();
            syntax::syntax_problem(Utf8Path::new("f.md"), yaml, &error, 1, "frontmatter")
                .to_string()
        };
        for (yaml, hint) in [
            (
                "a: 1\ncommand: \"echo \"hi\"\"\n",
                "with single quotes, 'echo \"hi\"'",
            ),
            ("title: a: b\n", "must be quoted: title: \"a: b\""),
            (
                "title: a\n  timeout: 1h\n",
                "indent the keys of one mapping alike",
            ),
            ("title: @me\n", "must be quoted: '@me'"),
            ("deps: [a, b\n", "is not closed: `]`"),
            ("a:\n\tb: 1\n", "indented with a tab"),
        ] {
            assert!(said(yaml).contains(hint), "{yaml:?}: {}", said(yaml));
        }
    }

    #[test]
    fn a_merge_key_is_said_to_be_unread() {
        assert_eq!(
            read("count: 2\n<<: {retries: 1}\n"),
            ["f.yaml:2: `<<`: YAML merge keys are not read here: write the settings out (an anchor and `*alias` as a whole value work)"]
        );
    }

    #[test]
    fn a_number_beyond_64_bits_is_named_too_large() {
        let yaml = "a: 1\nretries: 99999999999999999999\n";
        let error = serde_yaml::from_str::<Value>(yaml).unwrap_err();
        let problem = syntax::syntax_problem(Utf8Path::new("f.md"), yaml, &error, 2, "frontmatter");
        assert_eq!(
            problem.to_string(),
            "f.md:3: `retries`: 99999999999999999999 is beyond any setting's range (64 bits): write a number nearer 0"
        );
    }

    #[test]
    fn a_duration_too_long_for_the_clocks_is_a_problem_not_a_crash() {
        for grace in [
            "1e20",
            "18446744073709551615",
            "1e300",
            "200 years",
            "9999999999999h",
        ] {
            let found = read(&format!("grace: {grace}\n"));
            assert_eq!(found.len(), 1, "{grace}: {found:?}");
            assert!(found[0].contains("at most 100 years"), "{found:?}");
        }
        assert!(read("grace: 100 years\n").is_empty());
    }

    #[test]
    fn a_duration_may_be_a_decimal_number_of_a_unit() {
        let value = |text: &str| super::duration(&Value::String(text.to_owned()));
        assert_eq!(value("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(value("0.001h"), Ok(Duration::from_millis(3600)));
        assert_eq!(value("2.5 m"), Ok(Duration::from_secs(150)));
        assert_eq!(value("0.5d"), Ok(Duration::from_secs(43_200)));
        assert_eq!(value("90s"), Ok(Duration::from_secs(90)));
        assert!(value("1.5x").is_err());
        assert!(value("-1.5h").is_err());
        assert!(value("0.0h").is_err());
        assert!(value("1e30h").is_err());
    }

    #[test]
    fn a_key_given_twice_is_reported_where_it_comes_again() {
        let problem = |yaml: &str, first_line: usize| {
            let error = serde_yaml::from_str::<Value>(yaml).unwrap_err();
            syntax::syntax_problem(
                Utf8Path::new("t.md"),
                yaml,
                &error,
                first_line,
                "frontmatter",
            )
            .to_string()
        };
        assert_eq!(
            problem("title: a\ncommand: x\ncommand: y\n", 2),
            "t.md:4: frontmatter is not valid YAML: duplicate entry with key \"command\""
        );
        // Nested: at the indentation of the first, not a deeper `cpus:`.
        assert!(problem("r:\n  cpus: 1\n  x:\n    cpus: 3\n  cpus: 2\n", 1).starts_with("t.md:5:"));
    }

    #[test]
    fn an_unknown_key_inside_a_value_is_reported_at_its_line() {
        let text = "notify:\n  - on: [failed]\n    cmd: x\n";
        let value: Value = serde_yaml::from_str(text).unwrap();
        let mut f = Fields::new(Utf8Path::new("c.yaml"), text, value, "", 1).unwrap();
        f.take("notify", |_| {
            Err::<(), _>("item 1: unknown key `cmd`: the keys are `on`".into())
        });
        let found = f.finish(Unknown::Refused, |_| None);
        assert_eq!(
            found[0].to_string(),
            "c.yaml:3: `notify`: item 1: unknown key `cmd`: the keys are `on`"
        );
    }

    #[test]
    fn durations() {
        let d = |y: &str| duration(&serde_yaml::from_str(y).unwrap());
        assert_eq!(d("90"), Ok(Duration::from_secs(90)));
        assert_eq!(d("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(d("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(d("\"3600\""), Ok(Duration::from_secs(3600)));
        assert_eq!(d("' 1.5 '"), Ok(Duration::from_millis(1500)));
        assert!(d("\"-5\"").is_err());
        assert!(d("0").is_err());
        assert!(d("[1]").is_err());
        assert!(d("1M").unwrap_err().contains("`M` is months"));
        assert!(d("1h 30M").unwrap_err().contains("`M` is months"));
        assert_eq!(d("2months"), Ok(Duration::from_secs(2 * 2_630_016)));
    }

    #[test]
    fn locations_are_removed() {
        assert_eq!(
            syntax::without_locations("did not find expected key at line 3 column 5, while parsing a block mapping at line 2 column 1"),
            "did not find expected key, while parsing a block mapping"
        );
    }
}
