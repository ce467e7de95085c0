//! Quoting for `sh`: an argv written as a command line that a shell reads
//! back as the same arguments (for sbatch's `--wrap`, and to show commands).

/// argv as a shell would need it typed.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| shell_word(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One argument as a shell would need it typed: as it is when nothing in
/// it is special, else in single quotes (a path with a space, in a command
/// the user is told to run, must survive a copy and paste).
pub fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+{}%".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}
