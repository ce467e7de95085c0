//! A prompt template's source read as code, for what minijinja does not
//! say: where a name is first used, where a variable begins before its
//! fields, what a loop goes through; its text, comments and strings
//! blanked first, so that a name in them is not taken for a use.

use std::collections::HashMap;

/// The line (from 1) where `name` is first used (`first_uses`); else
/// where its variable is (`deps` for `deps.x`).
pub(super) fn line_using(first_uses: &HashMap<String, usize>, name: &str) -> Option<usize> {
    let first = name.split('.').next().unwrap_or(name);
    first_uses
        .get(name)
        .or_else(|| first_uses.get(first))
        .copied()
}

/// The line (from 1) where each name `source` uses is first used: in an
/// expression or a statement, not in a comment, the text or a string, and
/// as a whole name (`task` is not used by `task_id`, nor by `x.task`),
/// with each of its dotted beginnings (`task` and `task.idd` of
/// `task.idd`).
pub(super) fn first_uses(source: &str) -> HashMap<String, usize> {
    let code = code_only(source);
    let part_of_name = |c: char| c.is_alphanumeric() || c == '_';
    let mut first = HashMap::new();
    let mut found = |name: &str, line: usize| {
        if !first.contains_key(name) {
            first.insert(name.to_owned(), line);
        }
    };
    for (i, line) in code.lines().enumerate() {
        let mut before = None;
        let mut chars = line.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            if !part_of_name(c) || before.is_some_and(|b| part_of_name(b) || b == '.') {
                before = Some(c);
                continue;
            }
            // A name, and the fields after it: each beginning ends where
            // a name does, before a dot or what is no part of one.
            let mut end = start + c.len_utf8();
            let mut last = c;
            loop {
                match chars.peek() {
                    Some(&(at, c)) if part_of_name(c) => {
                        end = at + c.len_utf8();
                        last = c;
                        chars.next();
                    }
                    Some(&(at, '.')) if line[at + 1..].starts_with(part_of_name) => {
                        found(&line[start..end], i + 1);
                        last = '.';
                        chars.next();
                    }
                    _ => break,
                }
            }
            found(&line[start..end], i + 1);
            before = Some(last);
        }
    }
    first
}

/// Where the variable whose fields or items `before` ends in begins: back
/// over names, dots and whole `[...]` (`deps[0].` in `{{ deps[0].`), to
/// the end of `before` when it ends in none.
pub(super) fn variable_start(before: &str) -> usize {
    let mut depth = 0usize;
    let mut start = before.len();
    for (at, c) in before.char_indices().rev() {
        match c {
            ']' => depth += 1,
            '[' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            c if c.is_alphanumeric() || c == '_' || c == '.' => {}
            _ => break,
        }
        start = at;
    }
    start
}

/// `source` with its text, comments, `{% raw %}` bodies and strings
/// blanked, its lines kept: only the names and operators inside `{{ }}`
/// and `{% %}` are left.
fn code_only(source: &str) -> String {
    let mut code = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(open) = ["{{", "{%", "{#"].iter().filter_map(|o| rest.find(o)).min() {
        code.push_str(&blank(&rest[..open]));
        let close = match &rest[open..open + 2] {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        let mut end = rest[open..]
            .find(close)
            .map_or(rest.len(), |i| open + i + 2);
        match close {
            "#}" => code.push_str(&blank(&rest[open..end])),
            _ => code.push_str(&without_strings(&rest[open..end])),
        }
        if is_raw(&rest[open..end]) {
            // Text up to the `{% endraw %}`, which is code again.
            let body = rest[end..].find("{%").map_or(rest.len(), |i| end + i);
            code.push_str(&blank(&rest[end..body]));
            end = body;
        }
        rest = &rest[end..];
    }
    code.push_str(&blank(rest));
    code
}

/// `text` with every character but line ends made a space.
fn blank(text: &str) -> String {
    text.replace(|c| c != '\n', " ")
}

/// Whether the statement `tag` is `{% raw %}` (with `-` trims or not).
fn is_raw(tag: &str) -> bool {
    let inner = tag.trim_start_matches("{%").trim_end_matches("%}");
    inner.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) == "raw"
}

/// `code` with its string literals (`"..."`, `'...'`) blanked.
fn without_strings(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut quote = None;
    let mut escaped = false;
    for c in code.chars() {
        match quote {
            Some(q) => {
                if !escaped && c == q {
                    quote = None;
                }
                escaped = !escaped && c == '\\';
                out.push(if c == '\n' { c } else { ' ' });
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                    out.push(' ');
                } else {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// What the template's loop over `item` goes through (`deps` in
/// `{% for item in deps %}`), if it has one.
pub(super) fn loop_list<'s>(source: &'s str, item: &str) -> Option<&'s str> {
    let head = format!("for {item} in ");
    let at = source.find(&head)? + head.len();
    source[at..]
        .split(|c: char| c.is_whitespace() || c == '%' || c == '|')
        .next()
}

#[cfg(test)]
mod tests {
    use super::{code_only, first_uses, line_using, variable_start};

    #[test]
    fn a_variable_starts_before_its_fields_and_items() {
        fn start(before: &str) -> &str {
            &before[variable_start(before)..]
        }
        assert_eq!(start("{{ deps[0].outputs"), "deps[0].outputs");
        assert_eq!(start("{{ 'x' ~ d.outputs[2]['a']"), "d.outputs[2]['a']");
        assert_eq!(start("{{ é"), "é");
        assert_eq!(start("{{ "), "");
    }

    #[test]
    fn only_expressions_and_statements_are_code() {
        let source = "{# uses nme #}\nnme in the text\n{{ nme }} {% if x %}y{% endif %}";
        assert_eq!(
            code_only(source),
            "              \n               \n{{ nme }} {% if x %} {% endif %}"
        );
    }

    #[test]
    fn raw_bodies_and_strings_are_not_code() {
        assert_eq!(
            code_only("{% raw %}{{ nme }}{% endraw %}"),
            "{% raw %}         {% endraw %}"
        );
        assert_eq!(
            code_only("{%- raw -%}\n{{ a }}\n{%- endraw %}{{ b }}"),
            "{%- raw -%}\n       \n{%- endraw %}{{ b }}"
        );
        assert_eq!(
            code_only(r#"{{ "nme \" x" ~ 'y' ~ nme }}"#),
            "{{            ~     ~ nme }}"
        );
    }

    #[test]
    fn a_name_is_found_where_it_is_used_whole() {
        let line_using = |source, name| line_using(&first_uses(source), name);
        let source = "{{ task_id }}\n{{ x.task }}\n{{ 'task' }}\n{{ task.idd }}";
        assert_eq!(line_using(source, "task.idd"), Some(4));
        assert_eq!(line_using(source, "task"), Some(4));
        assert_eq!(line_using("{{ deps[0].x }}\n", "deps.x"), Some(1));
        assert_eq!(line_using("text only", "task"), None);
        let source = "{{ é.a }}{{ 1task }}\n{{ a.b.c }} {{ task. }}\n{{ a.b.c.d }}";
        assert_eq!(line_using(source, "a.b"), Some(2));
        assert_eq!(line_using(source, "a.b.c.d"), Some(3));
        assert_eq!(line_using(source, "é.a"), Some(1));
        assert_eq!(line_using(source, "task"), Some(2));
    }
}
