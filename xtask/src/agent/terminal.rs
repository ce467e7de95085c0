//! A line of output as a terminal shows it. Agents and the tools they run
//! colour their output, move the cursor and redraw progress bars in place:
//! printed raw by a view, that would garble the person's terminal, and it
//! would stand between a question's words for the prompt watch.

/// `line` as a terminal leaves it on screen: each carriage return goes back
/// to the start and what follows is written over what was there (a
/// progress bar redrawn in place ends as its last state), an erase to the
/// end of the line (`ESC [ K`) erases, other escape sequences (colours,
/// cursor moves, window titles), control characters and direction
/// overrides are dropped, and a tab is a space.
pub fn plain(line: &str) -> String {
    let mut shown: Vec<char> = Vec::with_capacity(line.len());
    let mut column = 0;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => column = 0,
            '\u{1b}' => {
                if skip_escape(&mut chars) == Some('K') {
                    shown.truncate(column);
                }
            }
            c if c != '\t' && acts_on_a_terminal(c) => {}
            c => {
                let c = if c == '\t' { ' ' } else { c };
                match shown.get_mut(column) {
                    Some(place) => *place = c,
                    None => shown.push(c),
                }
                column += 1;
            }
        }
    }
    shown.into_iter().collect()
}

/// `text` without what would act on a terminal it is printed to: escape
/// sequences, control characters and direction overrides are dropped (a carriage return of a
/// Windows line end too), tabs and line breaks kept. For what is kept as
/// it was said (an agent's message, quoted in its dependents' prompts),
/// where `plain`'s rendering (a tab as a space, a line written over after
/// a carriage return) would change it.
pub fn without_escapes(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                skip_escape(&mut chars);
            }
            '\n' | '\t' => kept.push(c),
            c if acts_on_a_terminal(c) => {}
            c => kept.push(c),
        }
    }
    kept
}

/// `text` with each character that would act on a terminal written out
/// instead (`\e`, `\n`, `\u{7}`): for names and values a person gave,
/// which a view shows as they are (a file named with an escape sequence,
/// a dependency written `"\e]0;x\a"`), where dropping it would show a name
/// that is not the file's. `keep` lists the ones kept as they are (a line
/// break in a message, a tab). Bidirectional overrides count too: they
/// would show the text after them reversed. Where one is written out, a
/// backslash is too (`\\`), so that `\e` there is the escape, never the
/// two characters a name may hold; a text with none to write out is shown
/// as it is, backslashes and all, as it was typed (a pattern
/// `Continue\?`, a planned `tr '\0' x`).
pub fn escaped<'a>(text: &'a str, keep: &[char]) -> std::borrow::Cow<'a, str> {
    let acts = |c: char| !keep.contains(&c) && acts_on_a_terminal(c);
    if !text.contains(acts) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => shown.push_str("\\\\"),
            c if !acts(c) => shown.push(c),
            '\u{1b}' => shown.push_str("\\e"),
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            c => shown.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    std::borrow::Cow::Owned(shown)
}

/// Whether a terminal acts on `c` rather than showing it: a control
/// character, or one that sets the direction of the text after it.
pub fn acts_on_a_terminal(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// The characters that set the direction of the text after them
/// (embeddings, overrides, isolates and their ends).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Skips the rest of an escape sequence whose ESC was just read; returns
/// the final character of a CSI (`[`, parameters, a final character from
/// `@` to `~`). Strings (OSC `]`, DCS `P`, SOS `X`, PM `^`, APC `_`) end
/// with BEL or `ESC \`; others are intermediates (space to `/`) and one
/// final character (`ESC ( B`, `ESC =`). A sequence cut short by the
/// line's end takes the rest of the line with it.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<char> {
    let intermediate = |c: &char| (' '..='/').contains(c);
    match chars.next() {
        Some('[') => chars.by_ref().find(|c| ('@'..='~').contains(c)),
        Some(']' | 'P' | 'X' | '^' | '_') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                    break;
                }
            }
            None
        }
        Some(c) if intermediate(&c) => {
            while chars.next_if(intermediate).is_some() {}
            chars.next();
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{escaped, plain, without_escapes};

    #[test]
    fn text_without_escapes_keeps_its_tabs_and_lines() {
        let said = "all:\n\tgo build\r\n\u{1b}[31mred\u{1b}[0m \u{1}x\u{1b}]0;t\u{7}\n10%\rdone";
        assert_eq!(without_escapes(said), "all:\n\tgo build\nred x\n10%done");
    }

    #[test]
    fn what_would_act_on_a_terminal_is_written_out() {
        let cases = [
            (
                "01-p/plain ünïcode 中文 עברית",
                &[][..],
                "01-p/plain ünïcode 中文 עברית",
            ),
            ("a\u{1b}[31mb\u{1b}]0;t\u{7}", &[], "a\\e[31mb\\e]0;t\\u{7}"),
            ("one\ntwo\tthree\r", &[], "one\\ntwo\\tthree\\r"),
            (
                "one\ntwo\tthree\u{9b}",
                &['\n', '\t'],
                "one\ntwo\tthree\\u{9b}",
            ),
            ("evil\u{202e}dm.exe", &[], "evil\\u{202e}dm.exe"),
            // Beside an escape written out, a backslash is written out too.
            ("x\\e\u{1b}", &[], "x\\\\e\\e"),
            ("x\\e\ny", &['\n'], "x\\e\ny"),
            ("Continue\\?\\s*$", &[], "Continue\\?\\s*$"),
        ];
        for (text, keep, shown) in cases {
            assert_eq!(escaped(text, keep), shown, "{text:?}");
        }
    }

    #[test]
    fn a_line_is_kept_as_a_terminal_shows_it() {
        let cases = [
            (
                "\u{1b}[1m\u{1b}[36mDo you\u{1b}[0m proceed?",
                "Do you proceed?",
            ),
            (
                "a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b",
                "alinkb",
            ),
            ("title\u{1b}]0;claude\u{7} set", "title set"),
            ("\u{1b}(Bcharset \u{1b}=keypad", "charset keypad"),
            ("10%\r\u{1b}[32m50%\u{1b}[0m\r100%", "100%"),
            ("Proceed? (y/n)\rP", "Proceed? (y/n)"),
            ("downloading 10 files\r\u{1b}[Kdone", "done"),
            ("a windows line\r", "a windows line"),
            ("dcs \u{1b}Pq#0;2;0;0;0\u{1b}\\gone", "dcs gone"),
            ("tab\tand\u{7}bell\u{8}", "tab andbell"),
            ("fine\u{202e}txt.exe\u{2069}", "finetxt.exe"),
            ("cut \u{1b}[3", "cut "),
            ("\u{1b}", ""),
            ("plain: ünïcode ✓", "plain: ünïcode ✓"),
        ];
        for (line, shown) in cases {
            assert_eq!(plain(line), shown, "{line:?}");
        }
    }
}
