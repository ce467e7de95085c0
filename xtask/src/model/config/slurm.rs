//! `slurm.extra_args` in the config: more `sbatch` arguments, none of which
//! may take the place of those the orchestrator gives every job.

use serde_yaml::Value;

use crate::model::yaml;

/// The `sbatch` options the orchestrator sets itself (`executor::slurm::
/// sbatch_args`), their short forms, and what overriding one would break.
/// sbatch takes the last of an option given twice, so one in `extra_args`
/// (which come after ours) would win, silently.
const OWN_OPTIONS: [(&str, Option<char>, &str); 9] = [
    ("output", Some('o'), "the task's log, which its result is read from, its idle timeout watches and a job left by a crash is found by"),
    ("error", Some('e'), "the task's log, which its result is read from, its idle timeout watches and a job left by a crash is found by"),
    ("open-mode", None, "the log opened to append: what the run wrote in it before the job started stays"),
    ("job-name", Some('J'), "the task's id, by which a job left by a crash is found and a second copy of a task refused"),
    ("comment", None, "the attempt's mark, by which a job left by a crash is found"),
    ("chdir", Some('D'), "the folder the task runs in (the root or its worktree)"),
    ("wrap", None, "the task's command"),
    ("export", None, "the task's environment (TASK_ID, WORKSPACE...), exported to the job whole"),
    ("parsable", None, "how the job id is read from what sbatch prints"),
];

/// The `sbatch` options that would take a job out of the run's hands,
/// their short forms, and why.
const BREAKING_OPTIONS: [(&str, Option<char>, &str); 2] = [
    (
        "wait",
        Some('W'),
        "sbatch would return only once the job has ended: its timeouts would never apply",
    ),
    (
        "array",
        Some('a'),
        "its tasks would be jobs the run does not follow",
    ),
];

/// `slurm.extra_args`: a list of texts, none of them one of the options the
/// orchestrator sets (`--output=x`, `--output x`, `-ox`, `-o x`, or a long
/// one abbreviated, as sbatch takes it: `--out=x`).
pub(super) fn extra_args(value: &Value) -> Result<Vec<String>, String> {
    let args = yaml::text_list(value)?;
    for arg in &args {
        if let Some((name, why)) = option_among(&OWN_OPTIONS, arg) {
            return Err(format!(
                "`{arg}` would override the orchestrator's own `--{name}` ({why}): remove it"
            ));
        }
        if let Some((name, why)) = option_among(&BREAKING_OPTIONS, arg) {
            return Err(format!(
                "`{arg}` (`--{name}`) cannot be given: {why}; remove it"
            ));
        }
    }
    Ok(args)
}

/// The option of `options` that `arg` sets, if it sets one, and why it is
/// listed there.
fn option_among(
    options: &[(&'static str, Option<char>, &'static str)],
    arg: &str,
) -> Option<(&'static str, &'static str)> {
    let sets = |own: &str, letter: Option<char>| match arg.strip_prefix("--") {
        // A long option, maybe abbreviated (getopt_long takes any
        // unambiguous prefix); `--` alone ends the options.
        Some(long) => {
            let name = long.split_once('=').map_or(long, |(name, _)| name);
            !name.is_empty() && own.starts_with(name)
        }
        // A short one, its value maybe joined to it (`-ox`).
        None => letter.is_some() && arg.strip_prefix('-').and_then(|s| s.chars().next()) == letter,
    };
    (options.iter())
        .find(|(own, letter, _)| sets(own, *letter))
        .map(|(own, _, why)| (*own, *why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orchestrator_s_own_options_are_refused_in_every_form() {
        let refused = |arg: &str| option_among(&OWN_OPTIONS, arg).map(|(name, _)| name);
        for (arg, name) in [
            ("--output=x.log", "output"),
            ("--output", "output"),
            ("--out=x", "output"),
            ("-ox.log", "output"),
            ("-o", "output"),
            ("--error=x", "error"),
            ("-e", "error"),
            ("--job-name=x", "job-name"),
            ("-Jx", "job-name"),
            ("--comment=x", "comment"),
            ("-D/tmp", "chdir"),
            ("--chdir=/tmp", "chdir"),
            ("--wrap=true", "wrap"),
            ("--parsable", "parsable"),
            ("--open-mode=truncate", "open-mode"),
            ("--export=NONE", "export"),
        ] {
            assert_eq!(refused(arg), Some(name), "{arg}");
        }
        for arg in [
            "--overcommit",
            "--exclusive",
            "--exclude=n1",
            "--qos=long",
            "--partition=x",
            "-p",
            "-c2",
            "--",
            "x",
        ] {
            assert_eq!(refused(arg), None, "{arg}");
        }
    }

    #[test]
    fn options_that_take_a_job_out_of_the_run_s_hands_are_refused() {
        for (arg, name) in [
            ("--wait", "wait"),
            ("-W", "wait"),
            ("--array=1-4", "array"),
            ("-a1-4", "array"),
        ] {
            let refused = extra_args(&Value::from(vec![arg]));
            let said = refused.expect_err(arg);
            assert!(
                said.contains(&format!("(`--{name}`) cannot be given")),
                "{said}"
            );
        }
        assert!(extra_args(&Value::from(vec!["--qos=long", "--wckey=x"])).is_ok());
    }
}
