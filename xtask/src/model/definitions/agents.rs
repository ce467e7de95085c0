//! The warnings of the definitions that concern agents: what they will
//! report of their cost, and whether what their CLIs print is read.

use crate::model::config::{Config, ResultFormat};
use crate::model::layout::Layout;
use crate::model::task::{phase_key, CommandSpec, Task};

/// Says which tasks have an idle timeout but run `claude -p` printing
/// nothing until it ends (its result one JSON object, or its text): their
/// log does not grow while the agent works, and the idle timeout stops
/// every run longer than it, each run again and paid for again.
pub(super) fn warn_idle_timeouts_on_quiet_agents(layout: &Layout, config: &Config, tasks: &[Task]) {
    let idle_timeout = |t: &Task| {
        let phase = config.phase(phase_key(t.phase()));
        t.idle_timeout.or(phase.idle_timeout)
    };
    let mut found = tasks
        .iter()
        .filter_map(|t| Some((t, idle_timeout(t)?)))
        .filter(|(t, _)| quiet_until_done(&command_words(config, t)));
    if let Some((first, limit)) = found.next() {
        // Said alike for one more and many: `model` uses no `ui` (its
        // `format::counted`).
        let more = match found.count() {
            0 => String::new(),
            n => format!(" (and {n} more like it)"),
        };
        eprintln!(
            "warning: {}{more}: its idle_timeout ({}) counts from its log's last growth, but its command runs `claude -p` without `--output-format stream-json`, which prints nothing until it ends: every run longer than that is stopped, and run again; stream its events (`--output-format stream-json --verbose`, read as `claude-json`), or set a `timeout` instead",
            layout.display(&first.file),
            humantime::format_duration(limit)
        );
    }
}

/// The words of the command `task` runs (its own, else `agent.command`),
/// as `shell_words` splits them.
fn command_words<'a>(config: &'a Config, task: &'a Task) -> Vec<&'a str> {
    match &task.command {
        Some(CommandSpec::Argv(argv)) => argv.iter().flat_map(|a| shell_words(a)).collect(),
        Some(CommandSpec::Shell(line)) => shell_words(line),
        None => (config.agent.command.iter())
            .flat_map(|a| shell_words(a))
            .collect(),
    }
}

/// Whether a command runs `claude -p` (`--print`) that prints nothing
/// before its end: any output format but `stream-json`.
fn quiet_until_done(words: &[&str]) -> bool {
    let claude = |w: &&str| matches!(w.rsplit('/').next(), Some("claude" | "claude-code"));
    let Some(at) = words.iter().position(claude) else {
        return false;
    };
    let rest = &words[at + 1..];
    let streams = rest
        .windows(2)
        .any(|w| w[0] == "--output-format" && w[1] == "stream-json")
        || rest.contains(&"--output-format=stream-json");
    rest.iter().any(|w| matches!(*w, "-p" | "--print")) && !streams
}

/// Says which `prompt_patterns` are written as regular expressions
/// (`Continue\?\s*$`, `Proceed.*`): they are text, matched as written,
/// which no question holds, and a task waiting on that question would
/// wait for its timeout.
pub(super) fn warn_regex_prompt_patterns(layout: &Layout, config: &Config) {
    let config_file = layout.config_file();
    let config_file = layout.display(&config_file);
    let regex_like = |p: &&String| p.contains('\\') || p.contains(".*") || p.contains(".+");
    for pattern in config.agents.prompt_patterns.iter().filter(regex_like) {
        let pattern = crate::agent::terminal::escaped(pattern, &[]);
        eprintln!(
            "warning: {config_file}: prompt_patterns: `{pattern}` is text, not a regular expression (only a `^` or `$` at its ends means something): it matches only a line that holds it as written, backslashes and dots included"
        );
    }
}

/// Under a budget, says which agent tasks will report no cost (their
/// result not read, or Codex's tokens with no prices): before anything
/// runs, not once the first of them has spent what the budget cannot count.
pub(super) fn warn_uncosted_agents(config: &Config, tasks: &[Task]) {
    if config.agents.budget_usd.is_none() {
        return;
    }
    let uncosted = |t: &&Task| {
        t.is_agent(config)
            && match t.result_format(config) {
                ResultFormat::None => true,
                ResultFormat::CodexJsonl => config.agents.prices.is_none(),
                ResultFormat::ClaudeJson => false,
            }
    };
    if !tasks.iter().any(|t| t.is_agent(config)) {
        eprintln!(
            "warning: budget.usd is set, but no task runs an agent (agent.command, a result read, a pool): nothing reports a cost, and the budget counts nothing"
        );
        return;
    }
    let mut found = tasks.iter().filter(uncosted);
    if let Some(first) = found.next() {
        let more = found.count();
        let others = match more {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        eprintln!(
            "warning: budget.usd is set, but {}{others} will report no cost (agent.result none, or codex-jsonl without agent.prices): the budget cannot count what they spend",
            first.id
        );
    }
}

/// Says where a command runs Claude Code or Codex printing a result to
/// read, which is not read (`agent.result` or a task's `result:` none):
/// `claude -p` exits 0 with `"is_error": true`, and the task would count
/// as completed, its cost unknown.
pub(super) fn warn_unread_results(layout: &Layout, config: &Config, tasks: &[Task]) {
    let unread = |t: &&Task| t.result_format(config) == ResultFormat::None;
    // The agent's command, once, where a task runs it.
    // An argument may be a shell's line (`sh -c "claude ..."`).
    let words: Vec<&str> = (config.agent.command.iter())
        .flat_map(|a| shell_words(a))
        .collect();
    if let Some(printed) = printed(&words) {
        if tasks.iter().filter(unread).any(|t| t.command.is_none()) {
            let config_file = layout.config_file();
            let config_file = layout.display(&config_file);
            let at = match config.agent.command_set.flatten() {
                Some(line) => format!("{config_file}:{line}"),
                None => config_file.to_string(),
            };
            match printed {
                Printed::Result(format) => {
                    let (runs, name) = prints(format);
                    eprintln!(
                        "warning: {at}: agent.command {runs}, but agent.result is none: its result is not read, so an agent that exits 0 having failed counts as completed, and its cost is not counted; set `agent.result: {name}`"
                    );
                }
                Printed::ClaudeText => eprintln!(
                    "warning: {at}: agent.command {CLAUDE_TEXT}; add `--output-format json` to it and set `agent.result: claude-json`"
                ),
            }
        }
    }
    let mut own = tasks.iter().filter(unread).filter_map(|t| {
        t.command.as_ref()?;
        Some((t, printed(&command_words(config, t))?))
    });
    if let Some((first, printed)) = own.next() {
        let more = match own.count() {
            0 => String::new(),
            n => format!(" (and {n} more like it)"),
        };
        let file = layout.display(&first.file);
        match printed {
            Printed::Result(format) => {
                let (runs, name) = prints(format);
                eprintln!(
                    "warning: {file}{more}: its command {runs}, but its result is not read: an agent that exits 0 having failed counts as completed; add `result: {name}` to it"
                );
            }
            Printed::ClaudeText => eprintln!(
                "warning: {file}{more}: its command {CLAUDE_TEXT}; add `--output-format json` to it and `result: claude-json`"
            ),
        }
    }
}

/// What a command that runs `claude -p` printing text is warned of: its
/// exit code is all a run can judge it by (anthropics/claude-code#79500).
const CLAUDE_TEXT: &str = "runs `claude -p` printing text, whose result cannot be read: `claude -p` exits 0 on an API error (`API Error: Rate limit reached`), which counts as completed, its limit not waited for, and its cost is not counted";

/// What a command's CLI prints on the task's stdout, when a run could
/// read a result there or is left with its exit code alone.
#[derive(Debug, PartialEq)]
enum Printed {
    /// A result to read, in this format.
    Result(ResultFormat),
    /// `claude -p` (`--print`) with its text output: no result.
    ClaudeText,
}

/// `printed_result`, else `claude -p` printing text on the task's stdout.
fn printed(words: &[&str]) -> Option<Printed> {
    if let Some(format) = printed_result(words) {
        return Some(Printed::Result(format));
    }
    let rest = until_redirected(words, program(words, &["claude", "claude-code"])?);
    rest.iter()
        .any(|w| matches!(*w, "-p" | "--print"))
        .then_some(Printed::ClaudeText)
}

/// Where a command runs one of the programs `names`.
fn program(words: &[&str], names: &[&str]) -> Option<usize> {
    (words.iter()).position(|w| {
        w.rsplit('/')
            .next()
            .is_some_and(|name| names.contains(&name))
    })
}

/// The words after the program at `at`, unless it prints elsewhere (`>
/// out.json`, `| jq`): then the task's stdout is not the CLI's.
fn until_redirected<'a>(words: &'a [&'a str], at: usize) -> &'a [&'a str] {
    let rest = &words[at + 1..];
    match rest
        .iter()
        .any(|w| w.starts_with('>') || w.starts_with('|'))
    {
        true => &[],
        false => rest,
    }
}

/// The result the CLI a command runs prints, if it runs one that prints
/// one: `claude ... --output-format json` (or `stream-json`), `codex exec
/// ... --json`.
fn printed_result(words: &[&str]) -> Option<ResultFormat> {
    if let Some(at) = program(words, &["claude", "claude-code"]) {
        let rest = until_redirected(words, at);
        let json = |format: &str| matches!(format, "json" | "stream-json");
        let flagged = rest
            .windows(2)
            .any(|w| w[0] == "--output-format" && json(w[1]))
            || rest.iter().any(|w| {
                (w.strip_prefix("--output-format="))
                    .is_some_and(|f| json(f.trim_matches(|c| c == '"' || c == '\'')))
            });
        if flagged {
            return Some(ResultFormat::ClaudeJson);
        }
    }
    let rest = until_redirected(words, program(words, &["codex"])?);
    let exec = rest.first().is_some_and(|w| matches!(*w, "exec" | "e"));
    // `--experimental-json`, the flag's name before 0.44, is still an alias
    // of `--json` (openai/codex `codex-rs/exec/src/cli.rs`).
    let json = rest
        .iter()
        .any(|w| matches!(*w, "--json" | "--experimental-json"));
    (exec && json).then_some(ResultFormat::CodexJsonl)
}

/// What a command of `format` runs, said, and the format's name.
fn prints(format: ResultFormat) -> (&'static str, &'static str) {
    match format {
        ResultFormat::ClaudeJson => ("runs `claude` with a JSON `--output-format`", "claude-json"),
        _ => ("runs `codex exec --json`", "codex-jsonl"),
    }
}

/// A shell command's words, near enough to find a program and its flags:
/// split at blanks, quotes taken off.
fn shell_words(line: &str) -> Vec<&str> {
    line.split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'' || c == ';'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cli_printing_a_result_is_recognised() {
        let read = |line: &str| printed_result(&shell_words(line));
        for (line, expected) in [
            (
                "claude -p --output-format json hi",
                Some(ResultFormat::ClaudeJson),
            ),
            (
                "/usr/local/bin/claude -p --output-format=stream-json --verbose",
                Some(ResultFormat::ClaudeJson),
            ),
            (
                "cd x && claude -p \"--output-format\" 'json' go",
                Some(ResultFormat::ClaudeJson),
            ),
            (
                "codex exec --json --full-auto go",
                Some(ResultFormat::CodexJsonl),
            ),
            ("claude -p --output-format text hi", None),
            ("claude -p hi", None),
            ("codex --json", None),
            ("sh agent.sh", None),
            (
                "npx @anthropic-ai/claude-code -p --output-format json go",
                Some(ResultFormat::ClaudeJson),
            ),
            (
                "claude -p --output-format=\"json\" go",
                Some(ResultFormat::ClaudeJson),
            ),
            ("codex e --json go", Some(ResultFormat::CodexJsonl)),
            (
                "codex exec --experimental-json go",
                Some(ResultFormat::CodexJsonl),
            ),
            ("claude -p --output-format json go > out.json", None),
            ("claude -p --output-format json go | jq -r .result", None),
        ] {
            assert_eq!(read(line), expected, "{line}");
        }
    }

    #[test]
    fn claude_printing_text_is_told_apart() {
        let read = |line: &str| printed(&shell_words(line));
        for (line, expected) in [
            ("claude -p hi", Some(Printed::ClaudeText)),
            (
                "claude --print --output-format text hi",
                Some(Printed::ClaudeText),
            ),
            (
                "claude -p --output-format json hi",
                Some(Printed::Result(ResultFormat::ClaudeJson)),
            ),
            ("claude -p hi > out.md", None),
            ("claude hi", None),
            ("codex exec go", None),
        ] {
            assert_eq!(read(line), expected, "{line}");
        }
    }
}
