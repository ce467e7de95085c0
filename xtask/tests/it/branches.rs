//! Task branches' names on real git repositories: what git does not take
//! in a branch name, and branches of the user's in their way.

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
