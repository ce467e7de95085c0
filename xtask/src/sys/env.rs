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
