//! YAML that does not parse, said at the file's line with what to do:
//! serde_yaml's own positions count from the YAML's start (a task file's
//! frontmatter starts on its second line) and name the first of a key
//! given twice, and its messages do not name the commonest mistakes.

use camino::Utf8Path;

use crate::model::problem::Problem;

/// What a number too large for any setting (64 bits), of either sign, is.
pub const BEYOND_RANGE: &str = "is beyond any setting's range (64 bits): write a number nearer 0";

/// `yaml`, of `file` from its line `first_line`, read as a YAML value, or
/// the problem that it is not one; `what` names it (`frontmatter`, `the
/// config`).
pub fn parse(
    file: &Utf8Path,
    yaml: &str,
    first_line: usize,
    what: &str,
) -> Result<serde_yaml::Value, Problem> {
    if let Some(line) = nested_too_deep(yaml) {
        return Err(Problem::in_file(
            file,
            Some(line + first_line - 1),
            format!("{what} is not valid YAML: `[` and `{{` nest more than {DEEPEST} deep here (YAML is read to 128 levels)"),
        ));
    }
    serde_yaml::from_str(yaml).map_err(|e| syntax_problem(file, yaml, &e, first_line, what))
}

/// A YAML syntax error in `file`, whose YAML `yaml` starts on line
/// `first_line`: the file's line, and the message without serde_yaml's own
/// positions (which count from the YAML's start). A key given twice is
/// reported where it comes again (serde_yaml says where the first is).
pub fn syntax_problem(
    file: &Utf8Path,
    yaml: &str,
    error: &serde_yaml::Error,
    first_line: usize,
    what: &str,
) -> Problem {
    let said = without_locations(&error.to_string());
    // serde_yaml gives no position for these two: found in the text.
    let unplaced = if said.contains("more than one document") {
        second_document(yaml)
    } else if said == "repetition limit exceeded" {
        first_alias(yaml).map(|line| (line, REPEATED_ALIASES))
    } else {
        None
    };
    let line = (unclosed_quote(&error.to_string()))
        .or_else(|| {
            error.location().map(|l| {
                let again = duplicate_key(&error.to_string())
                    .and_then(|key| second_line_of_key(yaml, l.line(), key));
                again.unwrap_or(l.line())
            })
        })
        .or(unplaced.map(|(line, _)| line))
        .map(|line| line + first_line - 1);
    let message = match too_large(&said) {
        Some((key, number)) => {
            format!("`{key}`: {number} {BEYOND_RANGE}")
        }
        None => format!(
            "{what} is not valid YAML: {said}{}",
            unplaced.map_or_else(|| hint(yaml, error, &said), |(_, hint)| hint)
        ),
    };
    Problem::in_file(file, line, message)
}

/// The line where a quoted value that is never closed opens: YAML says
/// where it ran out of text (past the last line), and where the value
/// began only in its message.
fn unclosed_quote(message: &str) -> Option<usize> {
    const OPENED: &str = "while scanning a quoted scalar at line ";
    if !message.starts_with("found unexpected end of stream") {
        return None;
    }
    let after = &message[message.find(OPENED)? + OPENED.len()..];
    let digits = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    after[..digits].parse().ok()
}

/// How deep `[` and `{` may nest before YAML is read at all. The reader
/// (libyaml's scanner) takes time that grows with the square of the
/// depth: a frontmatter of 100,000 `[` took half a minute to be refused
/// past 128 levels, and a run's loop reads generated task files. Counted
/// without regard to quotes: deeper than this only inside quoted text is
/// refused too, which no file people write is.
const DEEPEST: usize = 1000;

/// The line of `yaml` where `[` and `{` come to nest past `DEEPEST`.
fn nested_too_deep(yaml: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, line) in yaml.lines().enumerate() {
        for byte in line.bytes() {
            match byte {
                b'[' | b'{' => depth += 1,
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => continue,
            }
            if depth > DEEPEST {
                return Some(i + 1);
            }
        }
    }
    None
}

/// The line where a second YAML document starts in `yaml`, and what to do.
/// A `---` line starts one (the first `---` starts the first, when nothing
/// but comments comes before it), and a `...` line ends the first; with
/// neither, when the first line of content is no `key:` line (a quoted
/// text, `[a]`, words), the first document is that one value, and YAML
/// takes what follows it for another document.
fn second_document(yaml: &str) -> Option<(usize, &'static str)> {
    let content = |l: &&str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
    // `---`, or `--- # a comment`, `--- value`; `...`, or `... # a comment`.
    let marker = |l: &str, m: &str| {
        l.trim_end() == m || l.strip_prefix(m).is_some_and(|r| r.starts_with(' '))
    };
    let explicit_start = yaml.lines().find(content).is_some_and(|l| marker(l, "---"));
    let starts = (yaml.lines().enumerate())
        .filter(|(_, l)| marker(l, "---"))
        .nth(usize::from(explicit_start));
    let ends = (yaml.lines().enumerate()).find(|(_, l)| marker(l, "..."));
    match (starts, ends) {
        (Some((start, _)), Some((end, _))) if end < start => Some((end + 1, DOCUMENT_END)),
        (Some((start, _)), _) => Some((start + 1, DOCUMENT_START)),
        (None, Some((end, _))) => Some((end + 1, DOCUMENT_END)),
        (None, None) => {
            let (first, line) = yaml.lines().enumerate().find(|(_, l)| content(l))?;
            let keyed = |l: &str| l.contains(": ") || l.trim_end().ends_with(':');
            let alone = line.trim_start().starts_with(['"', '\'', '[', '{']) || !keyed(line);
            alone.then_some((first + 1, ONE_VALUE))
        }
    }
}

const DOCUMENT_START: &str = " (a `---` line starts another document: this file is one; remove it)";
const DOCUMENT_END: &str =
    " (a `...` line ends the document, and more follows it: this file is one; remove it)";
const ONE_VALUE: &str = " (this line is a value alone, not `key: value`, and YAML reads what follows it as another document: write `key: value` lines, quoting a value, not the line)";

/// The line of the first alias (`*name`) in `yaml`: serde_yaml refuses
/// aliases that repeat their anchors' values past 100 times the events
/// the text holds (an alias bomb), without saying where.
fn first_alias(yaml: &str) -> Option<usize> {
    let name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-');
    yaml.lines()
        .position(|line| {
            let code = line.split(" #").next().unwrap_or(line);
            code.match_indices('*').any(|(at, _)| {
                let before = code[..at].chars().next_back();
                let after = code[at + 1..].chars().next();
                matches!(before, None | Some(' ' | '[' | '{' | ',')) && after.is_some_and(name)
            })
        })
        .map(|i| i + 1)
}

const REPEATED_ALIASES: &str = " (its aliases, `*name`, from this line on repeat what their anchors hold past what is read: write the values out, or use fewer aliases)";

/// What to do, for the mistakes YAML's messages do not name: a tab in
/// indentation, quotes inside a quoted value, `: ` or a leading backtick,
/// `@` or `%` in a plain value, a list in brackets left open.
fn hint(yaml: &str, error: &serde_yaml::Error, said: &str) -> &'static str {
    let line = error
        .location()
        .and_then(|l| yaml.lines().nth(l.line().checked_sub(1)?))
        .unwrap_or("");
    let value = line.split_once(": ").map_or("", |(_, v)| v.trim_start());
    if line.trim_start_matches(' ').starts_with('\t') {
        " (the line is indented with a tab: YAML indents with spaces)"
    } else if said.starts_with("did not find expected key") && value.matches('"').count() > 2 {
        " (a quoted value ends at its second quote: quote one that holds `\"` with single quotes, 'echo \"hi\"', or write it as a block after `|`)"
    } else if said.starts_with("mapping values are not allowed") && value.contains(": ") {
        " (a value that holds `: ` must be quoted: title: \"a: b\")"
    } else if said.starts_with("mapping values are not allowed") {
        " (a key indented deeper than the key above it, which has a value: indent the keys of one mapping alike)"
    } else if said.starts_with("found character that cannot start any token")
        && value.starts_with(['`', '@', '%'])
    {
        " (a value that starts with ` @ or % must be quoted: '@me')"
    } else if said.contains("end of stream, while scanning a quoted scalar") {
        " (the quote that opens this value is never closed: close it)"
    } else if said == "recursion limit exceeded" {
        " (lists and mappings nest more than 128 levels deep here, as deep as YAML is read: nest them less)"
    } else if said.contains("while parsing a flow sequence") {
        " (a list in brackets, above, is not closed: `]`)"
    } else {
        ""
    }
}

/// The key and the number of serde_yaml's `K: invalid type: integer `N`
/// as u128` (`as i128` below zero): a whole number beyond 64 bits, which
/// YAML allows and nothing here can hold.
fn too_large(message: &str) -> Option<(&str, &str)> {
    let (key, rest) = message.split_once(": invalid type: integer `")?;
    let (number, rest) = rest.split_once('`')?;
    (rest.starts_with(" as u128") || rest.starts_with(" as i128")).then_some((key, number))
}

/// The key of serde_yaml's `duplicate entry with key "K"`.
fn duplicate_key(message: &str) -> Option<&str> {
    let rest = message.split("duplicate entry with key \"").nth(1)?;
    rest.split('"').next()
}

/// The line (from 1) where `key` comes a second time at the indentation
/// of its first, from line `from` on.
fn second_line_of_key(yaml: &str, from: usize, key: &str) -> Option<usize> {
    let mut seen = None;
    for (i, line) in yaml.lines().enumerate().skip(from.saturating_sub(1)) {
        let trimmed = line.trim_start();
        let Some(after) = trimmed.strip_prefix(key) else {
            continue;
        };
        if !after.trim_start().starts_with(':') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        match seen {
            None => seen = Some(indent),
            Some(first) if first == indent => return Some(i + 1),
            Some(_) => {}
        }
    }
    None
}

/// `message` without any ` at line L column C`.
pub(super) fn without_locations(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find(" at line ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + " at line ".len()..];
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let mut skip = digits(after);
        if let Some(column) = after[skip..].strip_prefix(" column ") {
            skip += " column ".len() + digits(column);
        }
        rest = &after[skip..];
    }
    out.push_str(rest);
    out
}
