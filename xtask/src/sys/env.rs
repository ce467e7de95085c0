//! What the orchestrator's environment must not pass on to what it starts.

/// The variables that tie a git to one repository: those git itself drops
/// when it runs in another repository (`git rev-parse --local-env-vars`),
/// the namespace, and a receive hook's quarantine. Git sets them for its
/// hooks, so an orchestrator started from a hook (or from a shell where
/// the user exported `GIT_DIR`) has them: a git it runs, or a task's,
/// would act on the user's checkout, not on the folder it runs in. Neither
/// the orchestrator's own git (`git/repo.rs`) nor any task gets them.
pub const GIT_REPOSITORY_VARS: &[&str] = &[
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_CONFIG",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_PARAMETERS",
    "GIT_DIR",
    "GIT_GRAFT_FILE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_NAMESPACE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_OBJECT_DIRECTORY",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
    "GIT_REPLACE_REF_BASE",
    "GIT_SHALLOW_FILE",
    "GIT_WORK_TREE",
];

/// The variables through which make passes its flags, and its jobserver,
/// to the makes below it.
const MAKE_FLAG_VARS: &[&str] = &["MAKEFLAGS", "MFLAGS"];

/// Make's flags as a task gets them, where they differ from the run's own:
/// without a jobserver passed by descriptor (`--jobserver-auth=3,4`, or
/// `--jobserver-fds=` before make 4.2), which no task inherits (the run
/// makes such descriptors close-on-exec as it starts), nor the `-j` that
/// came with it. A make in a task then runs as make runs below a parent
/// whose jobserver it cannot reach, one job at a time, without warning
/// "jobserver unavailable" in every task's log. A jobserver named by a
/// fifo (make 4.4's), which any process can open, is passed on.
pub fn make_flags_for_tasks() -> Vec<(&'static str, String)> {
    MAKE_FLAG_VARS
        .iter()
        .filter_map(|&var| {
            let flags = std::env::var(var).ok()?;
            let kept = without_descriptor_jobserver(&flags)?;
            Some((var, kept))
        })
        .collect()
}

/// `flags` without a jobserver passed by descriptor and its `-j`; `None`
/// when they name none.
fn without_descriptor_jobserver(flags: &str) -> Option<String> {
    let by_descriptor = |word: &str| {
        let value = (word.strip_prefix("--jobserver-auth="))
            .or_else(|| word.strip_prefix("--jobserver-fds="));
        value.is_some_and(|v| !v.starts_with("fifo:"))
    };
    if !flags.split(' ').any(by_descriptor) {
        return None;
    }
    let jobs = |word: &str| word.starts_with("-j") || word.starts_with("--jobs");
    let kept: Vec<&str> = (flags.split(' '))
        .filter(|word| !by_descriptor(word) && !jobs(word))
        .collect();
    Some(kept.join(" "))
}

#[cfg(test)]
mod tests {
    use super::without_descriptor_jobserver as strip;

    #[test]
    fn a_jobserver_passed_by_descriptor_is_not_passed_on() {
        assert_eq!(strip(" -j2 --jobserver-auth=3,4").as_deref(), Some(""));
        assert_eq!(
            strip("ks -j8 --jobserver-fds=5,6 -- X=1").as_deref(),
            Some("ks -- X=1")
        );
        assert_eq!(strip(" -j2 --jobserver-auth=fifo:/tmp/GMfifo1"), None);
        assert_eq!(strip("k"), None);
    }
}
