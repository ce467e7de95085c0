//! Quoting for `sh`: an argv written as a command line that a shell reads
//! back as the same arguments (for sbatch's `--wrap`, and to show commands).

/// argv as a shell would need it typed.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+{}%".contains(&b));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
