//! The argv a task runs: its own `command` (a shell script for `sh -c`, or
//! an argument list) or the agent command, with the placeholders the task
//! knows filled in; an attempt fills in the rest (`run::attempt`).

use crate::model::config::Config;
use crate::model::layout::Layout;
use crate::model::task::{CommandSpec, Task};

/// The argv a task runs: its own `command`, or the agent command, with the
/// placeholders filled in. In a shell script (see `script_index`) a
/// placeholder becomes a quoted reference to the variable that holds its
/// value instead (`refer_in_script`): a value with spaces stays one word,
/// and a value (a prompt an upstream agent wrote) is never run as shell
/// code.
pub fn argv(layout: &Layout, config: &Config, task: &Task) -> Vec<String> {
    let raw = raw_argv(config, task);
    let script = script_index(&raw);
    raw.into_iter()
        .enumerate()
        .map(|(i, arg)| match script {
            Some(s) if s == i => refer_in_script(arg),
            _ => fill_in(layout, task, arg),
        })
        .collect()
}

/// Whether the shell script the task runs asks for `{prompt}`: its
/// environment then holds the text in `TASK_PROMPT` (only then: a
/// variable holds 128 KiB at most, and the text is also in a file).
pub fn script_asks_for_prompt(config: &Config, task: &Task) -> bool {
    let raw = raw_argv(config, task);
    script_index(&raw).is_some_and(|i| raw[i].contains("{prompt}"))
}

/// The variable of the task's environment each placeholder's value is in.
const PLACEHOLDER_VARIABLES: [(&str, &str); 7] = [
    ("{task_id}", "TASK_ID"),
    ("{task_file}", "TASK_FILE"),
    ("{output_dir}", "TASK_OUTPUT_DIR"),
    ("{log_file}", "TASK_LOG"),
    ("{worktree}", "TASK_WORKDIR"),
    ("{prompt_file}", "TASK_PROMPT_FILE"),
    ("{prompt}", "TASK_PROMPT"),
];

/// What is wrong with the placeholders of an argument list, `key` (the
/// agent command, a task's own): each `{name}` that is no placeholder, a
/// typo that would reach the program as it is written (`{promt}`: the
/// agent never gets the prompt); with `near_only`, only those close to a
/// placeholder (a task's own command may pass braces of its own: `jq
/// '{name}'`). A shell script's braces are its own (`${f}`, `awk
/// '{print}'`), and so are those of any `${...}`.
pub fn unknown_placeholders(argv: &[String], key: &str, near_only: bool) -> Vec<String> {
    let raw: Vec<&str> = argv.iter().map(String::as_str).collect();
    let script = script_index(&raw);
    let known = || {
        PLACEHOLDER_VARIABLES
            .iter()
            .map(|(p, _)| &p[1..p.len() - 1])
    };
    let mut found = Vec::new();
    for (i, arg) in raw.iter().enumerate().filter(|(i, _)| Some(*i) != script) {
        for (at, _) in arg.match_indices('{') {
            let name = arg[at + 1..].split('}').next().unwrap_or_default();
            let word = !name.is_empty()
                && name.len() < arg.len() - at - 1
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !word || arg[..at].ends_with('$') {
                continue;
            }
            // `{{prompt}}`, as in a template: the program would get the
            // value in braces.
            let doubled = arg[..at].ends_with('{') && arg[at + name.len() + 2..].starts_with('}');
            if known().any(|k| k == name) && !doubled {
                continue;
            }
            // A name in capitals or with digits is a program's own
            // (`{0}`, `{ID}`) unless it is near a placeholder.
            let plain = name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            let lower = name.to_ascii_lowercase();
            let near = known().find(|k| *k == lower);
            let hint = match near.or_else(|| crate::model::problem::nearest(&lower, known())) {
                Some(near) => format!(": did you mean `{{{near}}}`?"),
                None if near_only || !plain => continue,
                None => String::new(),
            };
            let written = match doubled {
                true => format!("{{{{{name}}}}}"),
                false => format!("{{{name}}}"),
            };
            found.push(format!(
                "`{key}` argument {}: `{written}` is no placeholder{hint} (they are {})",
                i + 1,
                PLACEHOLDER_VARIABLES
                    .map(|(p, _)| format!("`{p}`"))
                    .join(", ")
            ));
        }
    }
    found
}

/// Which argument of `argv` is a shell script: the script of `sh -c`
/// (also `bash -lc` and the like), as a string `command:` runs.
fn script_index(argv: &[&str]) -> Option<usize> {
    let shell = argv.first()?.rsplit('/').next()?;
    let flags = argv.get(1)?;
    let is_shell = matches!(shell, "sh" | "bash" | "dash" | "zsh" | "ksh");
    let runs_script = flags.len() >= 2
        && flags.starts_with('-')
        && flags.ends_with('c')
        && flags[1..].bytes().all(|b| b.is_ascii_lowercase());
    (is_shell && runs_script && argv.len() > 2).then_some(2)
}

/// `script` with each placeholder replaced by a reference to its variable,
/// quoted as one word for where it stands: `"${VAR}"` outside quotes,
/// `${VAR}` inside double quotes, `'"${VAR}"'` inside single quotes. Where
/// the quoting is misread (a quote inside `$(...)`), a value may at worst
/// be split into words: the shell never parses a variable's value as code.
pub fn refer_in_script(script: &str) -> String {
    #[derive(Clone, Copy, PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    if !script.contains('{') {
        // Most scripts: nothing to look at character by character.
        return script.to_owned();
    }
    let mut out = String::with_capacity(script.len());
    let mut quote = Quote::None;
    let mut rest = script;
    while let Some(c) = rest.chars().next() {
        let placeholder = (c == '{')
            .then(|| {
                PLACEHOLDER_VARIABLES
                    .iter()
                    .find(|(p, _)| rest.starts_with(p))
            })
            .flatten();
        if let Some((name, var)) = placeholder {
            out.push_str(&match quote {
                Quote::None => format!("\"${{{var}}}\""),
                Quote::Double => format!("${{{var}}}"),
                Quote::Single => format!("'\"${{{var}}}\"'"),
            });
            rest = &rest[name.len()..];
            continue;
        }
        let mut taken = c.len_utf8();
        match (quote, c) {
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
            // An escaped character is kept as it is, with its backslash.
            (Quote::None | Quote::Double, '\\') => {
                taken += rest[1..].chars().next().map_or(0, char::len_utf8);
            }
            _ => {}
        }
        out.push_str(&rest[..taken]);
        rest = &rest[taken..];
    }
    out
}

/// The program a task runs: `argv`'s first word, without the rest filled in.
pub fn program(layout: &Layout, config: &Config, task: &Task) -> String {
    let raw = raw_argv(config, task);
    fill_in(layout, task, raw.first().copied().unwrap_or_default())
}

/// The argv a task runs, with its placeholders as written.
fn raw_argv<'a>(config: &'a Config, task: &'a Task) -> Vec<&'a str> {
    match &task.command {
        Some(CommandSpec::Shell(script)) => vec!["sh", "-c", script],
        Some(CommandSpec::Argv(argv)) => argv.iter().map(String::as_str).collect(),
        None => config.agent.command.iter().map(String::as_str).collect(),
    }
}

/// `arg` with the task's placeholders filled in.
fn fill_in(layout: &Layout, task: &Task, arg: &str) -> String {
    if !arg.contains('{') {
        return arg.to_owned();
    }
    arg.replace("{task_id}", &task.id)
        .replace("{task_file}", task.file.as_str())
        .replace("{output_dir}", layout.output_dir(&task.id).as_str())
        .replace("{log_file}", layout.log_file(&task.id).as_str())
}

/// No program can be given a NUL character: a command holding one would
/// fail as it starts, so its definition is refused where it is read.
pub fn refuse_nul(words: &[String]) -> Result<(), String> {
    match words.iter().any(|word| word.contains('\0')) {
        true => {
            Err("holds a NUL character (`\\0`), which no program can be given: remove it".into())
        }
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placeholder_in_a_script_refers_to_its_variable_quoted_for_where_it_stands() {
        let cases = [
            ("cat {task_file}", "cat \"${TASK_FILE}\""),
            ("cd \"{worktree}/src\"", "cd \"${TASK_WORKDIR}/src\""),
            ("echo '[{task_id}]'", "echo '['\"${TASK_ID}\"']'"),
            // An escaped quote opens nothing; `{x}` is no placeholder.
            ("echo \\' {prompt} {x}", "echo \\' \"${TASK_PROMPT}\" {x}"),
            (
                "echo \"a\\\"b {prompt_file}\"",
                "echo \"a\\\"b ${TASK_PROMPT_FILE}\"",
            ),
            (
                "{output_dir}{log_file}",
                "\"${TASK_OUTPUT_DIR}\"\"${TASK_LOG}\"",
            ),
            ("é {prompt}", "é \"${TASK_PROMPT}\""),
        ];
        for (script, expected) in cases {
            assert_eq!(refer_in_script(script), expected, "{script}");
        }
    }

    #[test]
    fn the_script_of_a_shell_s_dash_c_is_found() {
        assert_eq!(script_index(&["sh", "-c", "x"]), Some(2));
        assert_eq!(script_index(&["/bin/bash", "-lc", "x", "a"]), Some(2));
        assert_eq!(script_index(&["python3", "-c", "x"]), None);
        assert_eq!(script_index(&["sh", "script.sh", "{task_file}"]), None);
        assert_eq!(script_index(&["sh", "-c"]), None);
        assert_eq!(script_index(&["sh", "--c", "x"]), None);
    }
}
