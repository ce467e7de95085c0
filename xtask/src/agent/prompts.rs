//! Questions that a headless agent, or a command it runs, asks and that
//! nobody will answer: a trust dialog, a tool approval, `(y/n)`, a git or
//! ssh password. The watchdog reads a still log's last line with
//! [`waiting_for_input`] and stops a task that waits on one. The wordings
//! and their sources are in `tests/fixtures/agents/prompts.txt`.

use super::terminal;

/// Defaults for `prompt_patterns`: case-insensitive substrings of a last
/// log line that asks a question nobody will answer; one that ends in `$`
/// only where it ends the line (`password:` is a question at a line's
/// end, not in "Rotated the password: done"), one that starts with `^`
/// only where it starts it, as a menu's option does (`❯ 1. Yes, proceed`,
/// not "whether to say yes, proceed with it"). Every line of the
/// fixtures' `prompts.txt` is matched but one: Claude Code's "Warning: no
/// stdin data received in 3s, proceeding without it" is a notice, not a
/// question. It goes on, and in `-p --output-format json` mode it can stay
/// the log's last line for the whole run, so matching it would stop
/// healthy runs.
pub const DEFAULT_PATTERNS: &[&str] = &[
    // Claude Code: the workspace trust dialog, old and new wordings.
    "do you trust the files in this folder",
    "may read, write, or execute files",
    "only use files from trusted sources",
    "is this a project you created or one you trust",
    "be able to read, edit, and execute files",
    "accessing workspace:$",
    "^security guide",
    "yes, i trust this folder",
    "^yes, proceed",
    "^no, exit",
    "enter to confirm",
    // Claude Code: API key, bypass-permissions, login and setup dialogs.
    "detected a custom api key",
    "do you want to use this api key",
    "^no (recommended)",
    "running in bypass permissions mode",
    "will not ask for your approval",
    "^yes, i accept",
    "select login method",
    "claude account with subscription",
    "anthropic console account",
    "paste code here if prompted",
    "security notes:$",
    "use claude code's terminal setup",
    "allow external claude.md file imports",
    // Claude Code: tool permissions, plan mode, the session survey.
    "do you want to proceed?",
    "do you want to make this edit",
    "yes, allow all edits",
    "yes, and don't ask again",
    "what to do differently",
    "would you like to proceed",
    "how is claude doing this session",
    "0: dismiss$",
    // Claude Code: misuse errors. The CLI exits on these rather than
    // waits, so matching them can stop nothing that runs.
    "requires --verbose",
    "cannot be used with root/sudo privileges",
    // Codex: directory trust and the approval overlay.
    "do you trust the contents of this directory",
    "allow codex to work in this folder",
    "ask me to approve edits and commands",
    "^yes, continue",
    "^no, quit",
    "would you like to run the following command",
    "would you like to make the following edits",
    "would you like to grant these permissions",
    "needs your approval",
    "press enter to confirm",
    "mcp server to run tool",
    // Codex exec reading its prompt from a stdin that never ends.
    "reading prompt from stdin",
    "no prompt provided via stdin",
    // npm, npx.
    "need to install the following packages",
    "ok to proceed?",
    "is this ok? (yes)",
    // git, ssh, sudo: credentials, host keys, an editor, a pager.
    "username for '",
    "password for '",
    "personal access token for '",
    "waiting for your editor to close the file",
    "(end)$",
    "are you sure you want to continue connecting",
    "enter passphrase for key",
    "[sudo] password for",
    "password:$",
    // Package managers, installers, generic confirmations.
    "do you want to continue?",
    "press enter to continue",
    "press return/enter to continue",
    "press any key to continue",
    "(y/n)$",
    "[y/n]$",
    "([y]/n)$",
    "(yes/no",
    "[yes/no]$",
];

/// The pattern `line` matches, if it asks for input: the first of
/// `patterns` found in it, case-insensitively, as a terminal shows it
/// (`terminal::plain`: no escapes, redrawn parts written over); one that
/// ends in `$` must end the line, but for trailing blanks (a prompt waits
/// after its colon, a sentence goes on). Empty patterns match nothing. A
/// line that is a JSON object is an event printed by an agent CLI (which
/// may quote any text, a prompt included, in a tool's input), never a
/// question, and matches nothing.
pub fn waiting_for_input<'a>(patterns: &'a [String], line: &str) -> Option<&'a str> {
    let line = terminal::plain(line).to_lowercase();
    let trimmed = line.trim();
    if trimmed.starts_with('{') && trimmed.ends_with('}') {
        return None;
    }
    patterns
        .iter()
        .find(|p| matches(trimmed, &p.to_lowercase()))
        .map(String::as_str)
}

/// A question a log's end asks again and again (`asked_again`).
#[derive(Debug, PartialEq, Eq)]
pub struct Repeated {
    /// What is printed each time: `Continue? (y/n) `, or the question and
    /// its line break; its digits as `0` (`Attempt 0: Continue? `), so that
    /// a question that counts its askings is the same each time.
    pub text: String,
    /// Its last repeat as printed (`Attempt 3: Continue? `).
    pub last: String,
    /// How many bytes at the end are its repeats, back to back (the first
    /// maybe only its end).
    pub bytes: usize,
}

impl Repeated {
    /// The question, as a last line would say it.
    pub fn question(&self) -> String {
        unboxed(terminal::plain(&self.last).trim()).to_owned()
    }
}

/// The question `end`, a log's last bytes, asks again and again: the text
/// it ends with, printed back to back twice at least, when that text is
/// one line and asks for input by `patterns`. A task that asks on an input
/// that answers nothing (`while :; do printf 'Continue? (y/n) '; read a ||
/// true; done`, its stdin empty) fills its log with the question, which
/// never goes still. Digits are not told apart: one that counts
/// (`Attempt 3: Continue? (y/n) `) asks the same each time.
pub fn asked_again(patterns: &[String], end: &str) -> Option<Repeated> {
    // ASCII for ASCII: the same length, byte for byte.
    let counted: String = (end.chars())
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect();
    let (period, bytes) = repeated_end(counted.as_bytes())?;
    let last = end.get(end.len() - period..)?;
    if last.trim().contains('\n') || waiting_for_input(patterns, last.trim()).is_none() {
        return None;
    }
    Some(Repeated {
        text: counted[counted.len() - period..].to_owned(),
        last: last.to_owned(),
        bytes,
    })
}

/// The text `bytes` ends with, repeated back to back twice at least: the
/// length of its one repeat and of all its repeats, the longest such end
/// (so `Sure??Sure??` repeats `Sure??`, not `?`). The prefix function of
/// the bytes from the end gives the shortest period of every end in one
/// pass: an end of length `n` whose shortest period `p` fits twice in it.
fn repeated_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let back: Vec<u8> = bytes.iter().rev().copied().collect();
    let mut prefix = vec![0; back.len()];
    let mut longest = None;
    for i in 1..back.len() {
        let mut k = prefix[i - 1];
        while k > 0 && back[i] != back[k] {
            k = prefix[k - 1];
        }
        if back[i] == back[k] {
            k += 1;
        }
        prefix[i] = k;
        let (length, period) = (i + 1, i + 1 - k);
        if length >= 2 * period {
            longest = Some((period, length));
        }
    }
    longest
}

/// Whether `line` quotes `told`, the error an attempt was given about the
/// one before it: it holds one of its lines (of 8 characters at least, so
/// that a word does not count). An agent repeats what it was told (its
/// prompt, its environment): a question or a rate limit it quotes is the
/// previous attempt's, not one it meets now.
pub fn quotes(told: &str, line: &str) -> bool {
    told.lines()
        .map(str::trim)
        .filter(|quoted| quoted.len() >= 8)
        .any(|quoted| line.contains(quoted))
}

/// Whether `line`, which asks for input, asks the question `told` (the
/// error the attempt was given) names, quoting it: a retry repeating what
/// it was told. One whose told error asked nothing (`exit code 1`) asks
/// its own question, whatever of that error it quotes.
pub fn quotes_the_question(patterns: &[String], told: &str, line: &str) -> bool {
    quotes(told, line)
        && told
            .lines()
            .any(|l| waiting_for_input(patterns, l).is_some())
}

/// Whether a trimmed, lower-case line holds a lower-case pattern: where
/// it ends (`$`: but for a closing `?` or `:`), as the whole line (`^`: a
/// menu's option, but for its marks, numbering and key), or anywhere; a
/// line drawn in a box is taken without its borders.
fn matches(line: &str, pattern: &str) -> bool {
    let (start, pattern) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (end, pattern) = match pattern.strip_suffix('$') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    // Written as the question shows, with the blank a prompt waits after
    // (`Proceed? `): the line is taken without its trailing blanks.
    let pattern = pattern.trim_end();
    if pattern.is_empty() {
        return false;
    }
    let line = unboxed(line);
    match (start, end) {
        // A menu's option is its line, whole: but for a key to press.
        (true, _) => {
            let option = option_text(line);
            option
                .strip_prefix(pattern)
                .is_some_and(|rest| rest.is_empty() || is_key_hint(rest))
        }
        // A question ends its line, or its `?` or `:` does.
        (false, true) => {
            let before = |closing: char| line.strip_suffix(closing).map(str::trim_end);
            [Some(line), before('?'), before(':')]
                .into_iter()
                .flatten()
                .any(|question| question.ends_with(pattern))
        }
        (false, false) => line.contains(pattern),
    }
}

/// A line drawn in a box (`│ Password: │`), without its borders (a
/// terminal's box-drawing ones: `|` starts a Markdown table's row): also
/// the question as said.
pub fn unboxed(line: &str) -> &str {
    match line.strip_prefix('│') {
        Some(inside) => inside.trim().trim_end_matches('│').trim_end(),
        None => line,
    }
}

/// Whether `rest`, after an option's text, is the key that picks it:
/// ` (y)`, ` (esc)`.
fn is_key_hint(rest: &str) -> bool {
    let hint = rest.trim_start();
    hint.len() < rest.len() && hint.starts_with('(') && hint.ends_with(')') && hint.len() <= 8
}

/// A menu line's text, without the marks and numbering before it
/// (`❯ 1. `, `> `, `2) `).
fn option_text(line: &str) -> &str {
    let marks = |c: char| c.is_whitespace() || "❯›>»*•·│|-→➜▸▶◯○●◉◦([".contains(c);
    let line = line.trim_start_matches(marks);
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    match line[digits..].strip_prefix(['.', ')', ':']) {
        Some(rest) if digits > 0 => rest.trim_start(),
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPTS: &str = include_str!("../../tests/fixtures/agents/prompts.txt");

    /// Lines of prompts.txt that are not questions (see DEFAULT_PATTERNS).
    const NOT_QUESTIONS: &[&str] = &["Warning: no stdin data received in 3s"];

    fn defaults() -> Vec<String> {
        DEFAULT_PATTERNS.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn every_prompt_is_found() {
        let patterns = defaults();
        let lines: Vec<&str> = PROMPTS
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect();
        assert!(lines.len() > 80, "{}", lines.len());
        for line in lines {
            let expected = !NOT_QUESTIONS.iter().any(|n| line.starts_with(n));
            assert_eq!(
                waiting_for_input(&patterns, line).is_some(),
                expected,
                "{line}"
            );
        }
    }

    #[test]
    fn ordinary_output_asks_nothing() {
        let patterns = defaults();
        let lines = [
            "   Compiling foo v0.1.0 (/work/main/foo)",
            "running 3 tests",
            "error: build failed",
            "test result: ok. 13 passed; 0 failed; 0 ignored",
            "    Finished `test` profile [unoptimized + debuginfo] target(s) in 4.02s",
            "warning: unused variable: `x`",
            "⚠ claude.ai connectors are disabled because ANTHROPIC_API_KEY or another auth source is set",
            "Warning: no stdin data received in 3s, proceeding without it. If piping from a slow \
             command, redirect stdin explicitly: < /dev/null to skip, or wait longer.",
            "Downloading crates ...",
            "npm warn deprecated glob@7.2.3",
            "Cloning into 'repo'...",
            "",
            // What a question ends with, in the middle of a line.
            "Rotated the database password: done, migrating now",
            "Security notes: see SECURITY.md",
            "Loop (end) reached",
            // Menu options and confirmations, in a sentence.
            "Reviewing the security guide section by section",
            "npm test: 41 passed (y/n) flags parsed",
            "Step 3: deciding whether to say yes, proceed with migration",
            "- Yes, continue with the plan",
            "* Yes, proceed with the migration as discussed",
            "No, exiting: nothing to do",
            "Security guidelines reviewed",
            "| --yes | skip questions (y/n) |",
            "| Accept | [yes/no] |",
            "Prompt (y/n) »",

            // An agent's event quoting a prompt is not a prompt.
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","input":{"command":"echo 'Continue? (y/n)'"}}]}}"#,
        ];
        for line in lines {
            assert_eq!(waiting_for_input(&patterns, line), None, "{line}");
        }
    }

    #[test]
    fn the_pattern_matched_is_returned() {
        let patterns = defaults();
        assert_eq!(
            waiting_for_input(&patterns, "Overwrite config? (Y/N)"),
            Some("(y/n)$")
        );
        assert_eq!(
            waiting_for_input(&patterns, "Terminate batch job (Y/N)?"),
            Some("(y/n)$")
        );
        // A menu's option, as a terminal shows it.
        for option in [
            "│ ❯ 1. Yes, proceed",
            "◯ Yes, proceed",
            "→ Yes, proceed",
            "(1) Yes, proceed",
        ] {
            assert_eq!(
                waiting_for_input(&patterns, option),
                Some("^yes, proceed"),
                "{option}"
            );
        }
        // Confirmations as prompts end them: `: `, `?`, in a box.
        for question in [
            "Continue? [y/N]: ",
            "Are you sure you want to continue? (y/n): ",
            "Type yes to confirm [yes/no]: ",
            "│ Continue? (y/n)                      │",
            "│ Password: │",
            "│ Accessing workspace: │",
            "Yes, proceed (y)",
        ] {
            assert!(
                waiting_for_input(&patterns, question).is_some(),
                "{question}"
            );
        }
        assert_eq!(
            waiting_for_input(&patterns, "Username for 'https://github.com': "),
            Some("username for '")
        );
        let custom = vec![String::new(), "Écraser ?".to_owned()];
        assert_eq!(
            waiting_for_input(&custom, "ÉCRASER ? [o/n]"),
            Some("Écraser ?")
        );
        assert_eq!(
            waiting_for_input(&custom, "anything"),
            None,
            "an empty pattern matches nothing"
        );
        assert_eq!(waiting_for_input(&[], "(y/n)"), None);
        let anchored = vec!["$".to_owned(), "~$$".to_owned(), "Go on?$".to_owned()];
        assert_eq!(waiting_for_input(&anchored, "me@box:~$ "), Some("~$$"));
        assert_eq!(waiting_for_input(&anchored, "GO ON?  "), Some("Go on?$"));
        assert_eq!(waiting_for_input(&anchored, "Go on? no"), None);
        let blank = vec!["Proceed? ".to_owned()];
        assert_eq!(waiting_for_input(&blank, "Proceed? "), Some("Proceed? "));
        assert_eq!(
            waiting_for_input(&anchored, "a $ line"),
            None,
            "a lone $ matches nothing"
        );
    }

    #[test]
    fn a_question_asked_again_and_again_is_found() {
        let patterns = defaults();
        let asks = "Continue? (y/n) ";
        let check = |end: &str, expected: Option<(&str, usize)>| {
            let found = asked_again(&patterns, end);
            let found = found.as_ref().map(|r| (r.text.as_str(), r.bytes));
            assert_eq!(found, expected, "{end:?}");
        };
        check(&asks.repeat(3), Some((asks, 48)));
        check(&format!("working\n{}", asks.repeat(2)), Some((asks, 32)));
        let line = "Continue? (y/n)\n";
        // The line break before the first repeat is the end of one too.
        check(&format!("done\n{}", line.repeat(4)), Some((line, 65)));
        // The longest repeat, not a doubled character at its end.
        let custom = vec!["sure??$".to_owned()];
        let found = asked_again(&custom, "Sure??Sure??").unwrap();
        assert_eq!(found.question(), "Sure??");
        // Asked once, or once after each other line: not again and again.
        check(&format!("working\n{asks}"), None);
        check(&"step\nContinue? (y/n)\n".repeat(3), None);
        // Repeated, but no question; blank lines.
        check(&"Compiling...\n".repeat(5), None);
        // A question that counts its askings, past a change of width.
        let counted: String = (8..12)
            .map(|i| format!("Attempt {i}: Go on? (y/n) "))
            .collect();
        let found = asked_again(&patterns, &counted).unwrap();
        assert_eq!(found.text, "Attempt 00: Go on? (y/n) ");
        // Two whole repeats, and the end of the one before (`0: Go on?`).
        assert_eq!(found.bytes, 66);
        assert_eq!(found.question(), "Attempt 11: Go on? (y/n)");
        // Lines of work that count, between questions: not again and again.
        let steps: String = (1..5)
            .map(|i| format!("step {i}\nContinue? (y/n)\n"))
            .collect();
        check(&steps, None);
        check("\n\n\n", None);
        check("", None);
    }

    #[test]
    fn escapes_are_removed_before_matching() {
        let patterns = defaults();
        let line =
            "\u{1b}[1m\u{1b}[36mDo you want to\u{1b}[0m proceed?\u{1b}]0;claude\u{7} \u{1b}(B";
        assert_eq!(
            waiting_for_input(&patterns, line),
            Some("do you want to proceed?")
        );
    }
}
