//! Reading `scontrol show job -o`'s lines: `Key=Value` fields, where a
//! value of ours (a task's id, a log's path) may hold spaces and `=`.

use std::collections::HashMap;

/// `scontrol show job -o`: one line per job of `Key=Value` fields. A value
/// may contain spaces: a word without `=` belongs to the previous value.
pub(super) fn parse_jobs(text: &str) -> HashMap<String, HashMap<String, String>> {
    (text.lines())
        .map(parse_job)
        .filter_map(|fields| Some((fields.get("JobId")?.clone(), fields)))
        .collect()
}

/// Fields whose value is ours (a task's id, a log's path), in which a word
/// such as `n=2` (task `p/set n=2`) is no field, and the field scontrol
/// prints after each in every version: such a value runs to it, where the
/// line has it. (`StdOut` is followed by optional fields: the log is read
/// from `StdErr`, `LOG_FIELD`.)
const FOLLOWED_BY: [(&str, &str); 3] = [
    ("JobName", "UserId"),
    ("StdErr", "StdIn"),
    ("StdIn", "StdOut"),
];

/// The fields of one line of `scontrol show job -o`.
pub(super) fn parse_job(line: &str) -> HashMap<String, String> {
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut last: Option<&str> = None;
    // The field that ends the value being read, when it is ours: its words
    // are kept as they are, spaces and all.
    let mut ends_at: Option<&str> = None;
    let mut rest = line;
    for word in line.split(' ') {
        // What follows the word, from the space before the next.
        let after = &rest[word.len()..];
        rest = after.strip_prefix(' ').unwrap_or(after);
        let key = (word.split_once('='))
            .map(|(key, _)| key)
            .filter(|key| is_slurm_key(key));
        let starts_field = match ends_at {
            Some(next) => key == Some(next),
            None => key.is_some(),
        };
        match (starts_field, key) {
            (true, Some(key)) => {
                fields.insert(key.to_owned(), word[key.len() + 1..].to_owned());
                last = Some(key);
                ends_at = (FOLLOWED_BY.iter())
                    .find(|(field, _)| *field == key)
                    .map(|(_, next)| *next)
                    .filter(|next| after.contains(&format!(" {next}=")));
            }
            _ if word.is_empty() && ends_at.is_none() => {}
            _ => {
                if let Some(value) = last.and_then(|k| fields.get_mut(k)) {
                    value.push(' ');
                    value.push_str(word);
                }
            }
        }
    }
    fields
}

/// Whether `key` has the shape of a field's name in scontrol's lines.
pub(super) fn is_slurm_key(key: &str) -> bool {
    !key.is_empty() && (key.chars()).all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '/')
}
