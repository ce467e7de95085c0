//! Task branches and their worktrees on real git repositories: what git
//! does not take in a branch name, branches of the user's in their way, a
//! branch an earlier workspace left, a workspace that is a symlink.

use crate::tree::*;
use crate::worktrees::{commit, integration_log, repo};

/// Task ids git would refuse as branch names (`x.lock`, a trailing `.`)
/// get branches it takes, as the README promises: they run and merge.
#[test]
fn a_task_id_git_refuses_as_a_branch_gets_a_branch_it_takes() {
    let t = repo("");
    t.task("p/x.lock", &commit("x.txt", "x"));
    t.task("p/b.", &commit("b.txt", "b"));
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.status("p/x.lock")["branch"], "task/p/x-lock");
    assert_eq!(t.status("p/b.")["branch"], "task/p/b-");
    let mut log = integration_log(&t);
    log.sort();
    assert_eq!(log, ["first", "write b.txt", "write x.txt"]);
}

/// A task named `@`, whose worktree folder git cannot make, is said by
/// `validate` and fails as it starts, naming why; git is left no record.
#[test]
fn a_task_named_at_is_said_to_need_another_name() {
    let t = repo("");
    t.task("p/@", &commit("a.txt", "a"));
    let said = "git cannot make a worktree in a folder named `@`: rename the task's file (`@.md`)";
    t.run(&["validate"]).says(said);
    t.run(&["orchestrate"]).code(1).says(said);
    assert_eq!(
        t.git(&["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        2
    );
}

/// A branch of the user's named like a folder of the task branches
/// (`task`, `task/<phase>`) fails the tasks it is in the way of, naming it
/// and how to rename it; loose or packed, it is never moved.
#[test]
fn a_user_s_branch_in_the_way_of_the_task_branches_is_named() {
    for (branch, packed) in [("task", false), ("task/p", true)] {
        let t = repo("");
        t.task("p/a", &commit("a.txt", "a"));
        t.git(&["branch", branch]);
        if packed {
            t.git(&["pack-refs", "--all"]);
        }
        let before = t.git(&["rev-parse", branch]);
        t.run(&["orchestrate"]).code(1).says(&format!(
            "a branch `{branch}` is in the way of the task's branch `task/p/a`: git cannot have a branch and a folder of branches of the same name; rename yours (`git branch -m {branch} <new name>`)"
        ));
        assert_eq!(t.git(&["rev-parse", branch]), before);
        t.git(&["branch", "-m", branch, "mine"]);
        t.run(&["orchestrate"]).code(0);
        assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
    }
}

/// A branch of the user's in the folder a branch of ours would be
/// (`integration/mine`, `task/p/a/sub`) is named by `validate` and the
/// run, with how to rename it, not left to git's "cannot lock ref".
#[test]
fn a_user_s_branch_under_the_name_of_one_of_ours_is_named() {
    for (branch, what, ours, code) in [
        (
            "integration/mine",
            "the integration branch",
            "integration",
            2,
        ),
        ("task/p/a/sub", "the task's branch", "task/p/a", 1),
    ] {
        let t = repo("");
        t.task("p/a", &commit("a.txt", "a"));
        t.git(&["branch", branch]);
        let said = format!("a branch `{branch}` is in the way of {what} `{ours}`: git cannot have a branch and a folder of branches of the same name; rename yours (`git branch -m {branch} <new name>`)");
        t.run(&["validate"]).says(&said);
        t.run(&["orchestrate"]).code(code).says(&said);
        t.git(&["branch", "-m", branch, "mine"]);
        t.run(&["orchestrate"]).code(0);
        assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
    }
}

/// A worktree made again on a task branch an earlier run left (after `rm
/// -rf workspace`) starts from the integration tip, as a reused one does:
/// a dependent sees what its dependency merged in this run.
#[test]
fn a_worktree_made_again_on_its_old_branch_starts_from_the_integration_tip() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "v1"));
    t.task(
        "q/b",
        &format!(
            "dependencies: [p/a]\n{}",
            sh("cp a.txt $TASK_OUTPUT_DIR/seen")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    std::fs::remove_dir_all(t.path("workspace")).unwrap();
    t.task("p/a", &commit("a.txt", "v2"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "integration:a.txt"]), "v2");
    assert_eq!(t.read("workspace/outputs/q/b/seen"), "v2\n");
    assert_eq!(
        t.status("q/b")["base_commit"],
        t.git(&["rev-parse", "integration"])
    );
}

/// A `workspace/` that is a symlink (to a scratch disk): git lists the
/// worktrees at their resolved paths, which are the run's own. A retry
/// reuses its worktree, the next run its integration worktree, and
/// `clean` removes them.
#[test]
fn a_workspace_that_is_a_symlink_is_the_run_s_own() {
    let t = repo("");
    let scratch = t.path("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::os::unix::fs::symlink(&scratch, t.path("workspace")).unwrap();
    t.write(".git/info/exclude", "scratch/\n");
    t.task("p/a", &commit("a.txt", "a"));
    t.task(
        "p/b",
        &format!(
            "retries: 1\n{}",
            sh("test $TASK_ATTEMPT = 2 || exit 1; echo b > b.txt")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.status("p/b")["attempt"], 2);
    t.task("p/c", &commit("c.txt", "c"));
    t.run(&["orchestrate"]).code(0);
    let files = t.git(&["ls-tree", "--name-only", "integration"]);
    let files: Vec<&str> = files.lines().collect();
    assert_eq!(
        files,
        [".gitignore", "README.md", "a.txt", "b.txt", "c.txt"]
    );
    t.run(&["clean"]).code(0).says("removed 3, kept 0");
    assert!(!scratch.join("worktrees/p/a").exists());
}
