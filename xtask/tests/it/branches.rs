//! Task branches on real git repositories: what git does not take in a
//! branch name, branches of the user's in their way, and a branch an
//! earlier workspace left.

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
