//! What of the user's repository a run never touches, whatever it meets: a
//! run started from a git hook, the user's own worktrees, branches and
//! work in progress. Real git repositories in temporary folders.

use crate::tree::*;
use crate::worktrees::{commit, integration_log, repo};

/// The variables git gives a hook, which name the user's checkout.
fn hook_env(t: &Tree) -> [(&'static str, std::path::PathBuf); 3] {
    [
        ("GIT_DIR", t.path(".git")),
        ("GIT_WORK_TREE", t.root.clone()),
        ("GIT_INDEX_FILE", t.path(".git/index")),
    ]
}

/// The lines of `env`'s output that set a variable of `hook_env`.
fn hook_vars_in(env: &str) -> Vec<&str> {
    env.lines()
        .filter(|line| {
            ["GIT_DIR=", "GIT_WORK_TREE=", "GIT_INDEX_FILE="]
                .iter()
                .any(|var| line.starts_with(var))
        })
        .collect()
}

/// An orchestrator started from a git hook has git's repository variables:
/// no task gets them, so an agent's commit lands on its task branch, not
/// on the user's.
#[test]
fn a_run_started_from_a_git_hook_keeps_agents_out_of_the_user_s_checkout() {
    let t = repo("");
    t.task(
        "p/a",
        &sh("env > $TASK_OUTPUT_DIR/env; echo a > a.txt && git add a.txt && git commit -q -m 'write a.txt'"),
    );
    t.write("staged.txt", "the user's\n");
    t.git(&["add", "staged.txt"]);
    let mut run = t.command(&["orchestrate"]);
    run.envs(hook_env(&t));
    Run::from(run.output().unwrap()).code(0);
    assert_eq!(t.git(&["log", "--format=%s", "main"]), "first");
    assert_eq!(t.git(&["diff", "--cached", "--name-only"]), "staged.txt");
    assert_eq!(integration_log(&t), ["write a.txt", "first"]);
    let env = t.read("workspace/outputs/p/a/env");
    assert_eq!(hook_vars_in(&env), Vec::<&str>::new());
}

/// sbatch exports its environment to the job: a Slurm job gets no git
/// repository variable either (a stand-in sbatch records what it got).
#[test]
fn a_slurm_job_gets_no_git_repository_variable() {
    let t = repo("executor: slurm\n");
    t.task("p/a", &format!("workdir: root\n{}", sh("true")));
    let bin = t.path("bin");
    t.write_executable(
        "bin/sbatch",
        &format!(
            "#!/bin/sh\nenv > {}/sbatch.env\necho no >&2\nexit 1\n",
            bin.display()
        ),
    );
    for other in ["scontrol", "scancel"] {
        t.write_executable(&format!("bin/{other}"), "#!/bin/sh\nexit 1\n");
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut run = t.command(&["orchestrate"]);
    run.envs(hook_env(&t)).env("PATH", path);
    Run::from(run.output().unwrap())
        .code(1)
        .says("sbatch rejected the job: no");
    let env = t.read("bin/sbatch.env");
    assert!(env.contains("TASK_ID=p/a"), "{env}");
    assert_eq!(hook_vars_in(&env), Vec::<&str>::new());
}

/// A task branch the user checked out (in a worktree of their own, to look
/// at an agent's work, or in the checkout itself) keeps its folder, what
/// `copy` would bring, and the branch: `clean` says where it is.
#[test]
fn clean_never_removes_a_worktree_of_the_user_s_with_a_task_branch() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, copy: [.env]}\n");
    t.write(".env", "SECRET=1\n");
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"]).code(0);
    std::fs::remove_dir_all(t.path("workspace")).unwrap();
    t.git(&["worktree", "prune"]);
    let review = t.path("review");
    t.git(&[
        "worktree",
        "add",
        "-q",
        review.to_str().unwrap(),
        "task/p/a",
    ]);
    // Ignored by the user: git removes a worktree with ignored files.
    t.write(".git/info/exclude", "review/\nbuild/\n");
    t.write("review/build/out", "the user's build\n");
    t.git(&["checkout", "-q", "task/p/b"]);
    t.run(&["clean"])
        .code(0)
        .says("kept     task/p/a: it is checked out at review, which cargo xtask did not make")
        .says("kept     task/p/b: it is checked out at ")
        .says("removed 0, kept 2");
    assert_eq!(t.read("review/build/out"), "the user's build\n");
    assert_eq!(t.read(".env"), "SECRET=1\n");
    for branch in ["task/p/a", "task/p/b"] {
        t.git(&["rev-parse", "--verify", "-q", branch]);
    }
}

/// An agent that stages everything (`git add -A`) and leaves the commit
/// to the orchestrator gets its work committed, never what `copy` and
/// `link` brought in (a secret in `.env`): that stays in its worktree.
#[test]
fn files_an_agent_staged_that_were_brought_in_are_never_committed() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, copy: [.env], link: [node_modules]}\n");
    t.write(".env", "SECRET=1\n");
    std::fs::create_dir_all(t.path("node_modules/lib")).unwrap();
    t.task(
        "p/a",
        &sh("echo work > work.txt; echo CHANGED=1 >> .env; git add -A"),
    );
    t.run(&["orchestrate"]).code(0);
    let files = t.git(&["ls-tree", "-r", "--name-only", "integration"]);
    assert_eq!(files, ".gitignore\nREADME.md\nwork.txt");
    assert_eq!(
        t.read("workspace/worktrees/p/a/.env"),
        "SECRET=1\nCHANGED=1\n"
    );
}

/// An agent that leaves a rebase of its own in progress (stopped to edit a
/// commit, with a commit made meanwhile on the rebase's detached HEAD)
/// fails its task, naming the worktree and what to do: its rebase is not
/// aborted, and nothing of its work is dropped or merged. Only a rebase
/// the orchestrator started (see the kill test in `worktrees.rs`) is undone.
#[test]
fn a_rebase_the_agent_left_in_progress_fails_the_task_and_loses_nothing() {
    let t = repo("");
    t.task(
        "p/a",
        &sh("test -f important.txt && exit 0; echo one > a.txt && git add a.txt && git commit -q -m first && \
             GIT_SEQUENCE_EDITOR='sed -i s/^pick/edit/' git rebase -q -i HEAD~1 && \
             echo work > important.txt && git add important.txt && git commit -q -m important"),
    );
    t.run(&["orchestrate"]).code(1);
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains(
            "a rebase cargo xtask did not start (the agent's own) is in progress in the worktree"
        ) && error.contains("workspace/worktrees/p/a")
            && error.contains("rebase --continue"),
        "{error}"
    );
    assert_eq!(integration_log(&t), ["first"]);
    let worktree = t.path("workspace/worktrees/p/a");
    assert!(worktree.join("important.txt").exists());
    assert_eq!(
        git_in(&worktree, &["log", "--format=%s", "-2", "HEAD"]),
        "important\nfirst"
    );
    git_in(&worktree, &["rebase", "--continue"]);
    // Finished by hand, its next run merges it all.
    t.run(&["orchestrate"]).code(0);
    assert_eq!(integration_log(&t), ["important", "first", "first"]);
}

/// With `worktrees.base: HEAD`, the integration branch is not made from a
/// checkout in the middle of a rebase (a passing, detached commit), nor
/// during a merge or on a detached HEAD: the run stops before anything
/// starts, saying what to do.
#[test]
fn the_integration_branch_is_not_made_from_a_checkout_in_the_middle_of_something() {
    let t = repo("");
    t.task("p/a", &sh(MARK));
    t.write("f.txt", "1\n");
    t.git(&["add", "f.txt"]);
    t.git(&["commit", "-q", "-m", "main's"]);
    t.git(&["checkout", "-q", "-b", "feature", "HEAD~1"]);
    t.write("f.txt", "2\n");
    t.git(&["add", "f.txt"]);
    t.git(&["commit", "-q", "-m", "feature's"]);
    // Stops on the conflict in f.txt, HEAD detached on main's commit.
    let conflicted = std::process::Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost"])
        .args(["rebase", "main"])
        .current_dir(&t.root)
        .output()
        .unwrap();
    assert!(!conflicted.status.success());
    t.run(&["orchestrate"])
        .code(2)
        .says("the integration branch `integration` is made from HEAD (worktrees.base), and the checkout ")
        .says("is in the middle of a rebase: finish it or abort it, or set worktrees.base");
    t.git(&["rebase", "--abort"]);
    t.git(&["checkout", "-q", "--detach"]);
    t.run(&["orchestrate"])
        .code(2)
        .says("is on a detached HEAD: check out a branch, or set worktrees.base");
    // `validate` and a dry run say it first, as the run would.
    t.run(&["validate"])
        .code(2)
        .says("tasks/orchestrator.yaml:2: p/a runs in a worktree (the config's), and ")
        .says("is on a detached HEAD: check out a branch");
    t.run(&["orchestrate", "--dry-run"])
        .code(2)
        .says("is on a detached HEAD");
    assert!(!t.exists("markers"));
    assert_eq!(t.git(&["branch", "--list", "integration"]), "");
    t.git(&["checkout", "-q", "feature"]);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(integration_log(&t), ["feature's", "first"]);
}

/// An agent that commits its work and stages only a brought file (nothing
/// else left over) has its work merged: the staged `.env` neither goes
/// into a commit nor stops the rebase.
#[test]
fn a_brought_file_left_staged_alone_does_not_stop_the_merge() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, copy: [.env]}\n");
    t.write(".env", "SECRET=1\n");
    t.task("p/other", &commit("other.txt", "other"));
    t.task(
        "p/a",
        &sh("until git log --format=%s $TASK_INTEGRATION_BRANCH | grep -q other; do sleep 0.02; done; \
             echo a > a.txt && git add a.txt && git commit -q -m 'write a.txt' && git add .env"),
    );
    t.run(&["orchestrate"]).code(0);
    let files = t.git(&["ls-tree", "-r", "--name-only", "integration"]);
    assert_eq!(files, ".gitignore\nREADME.md\na.txt\nother.txt");
}

/// README has the user merge their own commits into the integration
/// branch in its worktree: a merge of theirs left in progress there (a
/// conflict being resolved) stops the next run before anything starts,
/// their resolution kept, instead of being reset away.
#[test]
fn a_merge_of_the_user_s_in_progress_in_the_integration_worktree_is_kept() {
    let t = repo("");
    t.write("shared.txt", "base\n");
    t.git(&["add", "shared.txt"]);
    t.git(&["commit", "-q", "-m", "shared"]);
    t.task("p/a", &commit("shared.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    t.write("shared.txt", "the user's\n");
    t.git(&["commit", "-q", "-a", "-m", "user edits shared"]);
    let integration = t.path("workspace/worktrees/.integration");
    let merge = std::process::Command::new("git")
        .args(["merge", "-q", "main"])
        .current_dir(&integration)
        .output()
        .unwrap();
    assert!(!merge.status.success(), "the merge was to conflict");
    std::fs::write(integration.join("shared.txt"), "a\nthe user's\n").unwrap();
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"])
        .code(2)
        .says("is in the middle of a merge, not one of cargo xtask's");
    assert_eq!(
        std::fs::read_to_string(integration.join("shared.txt")).unwrap(),
        "a\nthe user's\n"
    );
    assert!(integration.join(".git").exists());
    let merging = std::process::Command::new("git")
        .args(["rev-parse", "-q", "--verify", "MERGE_HEAD"])
        .current_dir(&integration)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        merging.success(),
        "the user's merge is no longer in progress"
    );
}

/// Changes of the user's not committed in the integration worktree (an
/// edit, a new file, a `cherry-pick -n`) stop the next run before anything
/// starts, kept as they were; one made during a run holds the merge queue
/// until committed, then the task's work goes in after it.
#[test]
fn changes_of_the_user_s_in_the_integration_worktree_are_kept() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    let integration = t.path("workspace/worktrees/.integration");
    std::fs::write(integration.join("README.md"), "fix the build\n").unwrap();
    std::fs::write(integration.join("NOTES.md"), "my notes\n").unwrap();
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"])
        .code(2)
        .says("has changes not committed (README.md, NOTES.md), not cargo xtask's (it only fast-forwards there, and would reset them away)");
    assert_eq!(t.launches("p/b"), 0);
    assert!(!t.exists("workspace/status/p/b.json"));
    let read = |file: &str| std::fs::read_to_string(integration.join(file)).unwrap();
    assert_eq!(read("README.md"), "fix the build\n");
    assert_eq!(read("NOTES.md"), "my notes\n");
    // Made during a run: the queue waits for them.
    git_in(&integration, &["checkout", "-q", "--", "README.md"]);
    std::fs::remove_file(integration.join("NOTES.md")).unwrap();
    let mut orchestrator = run_with_a_commit_on_release(&t, "p/c", "c.txt");
    std::fs::write(integration.join("NOTES.md"), "my notes\n").unwrap();
    t.write("release", "");
    wait_for("the queue to say it waits", || {
        t.read("out").contains(
            "has changes not committed (NOTES.md), not cargo xtask's: the merge queue waits until they are committed or stashed there",
        )
    });
    wait_for("p/c to wait in the queue", || {
        t.status("p/c")["merging"] == true
    });
    t.run(&["why", "p/c"])
        .code(0)
        .says("the merge queue waits until they are committed or stashed there");
    git_in(&integration, &["add", "NOTES.md"]);
    git_in(&integration, &["commit", "-q", "-m", "my notes"]);
    let code = orchestrator.wait().unwrap().code();
    assert_eq!(code, Some(0), "{}", t.read("out"));
    assert_eq!(t.state("p/c"), "completed");
    // p/c's work went in after the user's commit (newest first; p/b, of
    // the same run, may have merged before or after p/c).
    let log = integration_log(&t);
    let at = |subject: &str| log.iter().position(|s| s == subject);
    let (work, notes) = (at("write c.txt"), at("my notes"));
    assert!(work.is_some() && notes.is_some() && work < notes, "{log:?}");
    assert_eq!(read("NOTES.md"), "my notes\n");
}

/// The integration worktree switched to another branch of the user's, or
/// detached, by hand: a run does not start, saying how to put the branch
/// back; one switched during a run holds the merge queue until the
/// integration branch is checked out there again (the task's work was
/// failed with git's own error), then the work goes in, the user's branch
/// untouched.
#[test]
fn the_integration_worktree_switched_off_its_branch_holds_the_merge_queue() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    let integration = t.path("workspace/worktrees/.integration");
    git_in(&integration, &["switch", "-q", "--detach"]);
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"]).code(2).says(
        "has a detached HEAD checked out, not the integration branch `integration`: check it out there again (`git -C",
    );
    assert_eq!(t.launches("p/b"), 0);
    git_in(&integration, &["switch", "-q", "integration"]);
    let mut orchestrator = run_with_a_commit_on_release(&t, "p/b", "b.txt");
    git_in(&integration, &["switch", "-q", "-c", "mine"]);
    git_in(
        &integration,
        &["commit", "-q", "--allow-empty", "-m", "my own"],
    );
    t.write("release", "");
    let waits = "has branch `mine` checked out, not the integration branch `integration`: the merge queue waits until it is checked out there again";
    wait_for("the queue to say it waits", || {
        t.read("out").contains(waits)
    });
    wait_for("p/b to wait in the queue", || {
        t.status("p/b")["merging"] == true
    });
    t.run(&["why", "p/b"]).code(0).says(waits);
    git_in(&integration, &["switch", "-q", "integration"]);
    let code = orchestrator.wait().unwrap().code();
    assert_eq!(code, Some(0), "{}", t.read("out"));
    assert_eq!(t.state("p/b"), "completed");
    assert_eq!(integration_log(&t)[0], "write b.txt");
    assert_eq!(t.git(&["log", "-1", "--format=%s", "mine"]), "my own");
}

/// The integration branch checked out in the user's checkout during a
/// run (git refuses it unless told `--ignore-other-worktrees`): a merge
/// would move the branch under that checkout, whose files and index would
/// then undo the work merged (committed, they would take it out). The
/// queue waits until another branch is checked out there, then merges,
/// the user's checkout left clean.
#[test]
fn the_integration_branch_checked_out_in_the_user_s_checkout_during_a_run_holds_the_merge_queue() {
    let t = repo("");
    let (mut orchestrator, waits) = run_until_held_by_the_user_s_checkout(&t);
    t.run(&["why", "p/b"]).code(0).says(&waits);
    assert_eq!(integration_log(&t)[0], "write a.txt");
    t.git(&["checkout", "-q", "main"]);
    let code = orchestrator.wait().unwrap().code();
    assert_eq!(code, Some(0), "{}", t.read("out"));
    assert_eq!(t.state("p/b"), "completed");
    assert_eq!(integration_log(&t)[0], "write b.txt");
    assert_eq!(
        t.git(&["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
}

/// Stopped while the integration branch is checked out in the user's
/// checkout, a run leaves the task's work in the merge queue saying where
/// the branch is (it said "waited for the integration branch ... is
/// checked out at ... too in <the integration worktree>"); the next run
/// refuses to start while it is, naming where, and merges it once it is
/// not, without running the task again.
#[test]
fn a_run_stopped_while_the_user_s_checkout_holds_the_queue_leaves_the_work_to_the_next_run() {
    let t = repo("");
    let (mut orchestrator, _) = run_until_held_by_the_user_s_checkout(&t);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(orchestrator.id() as i32, libc::SIGTERM) };
    assert_eq!(orchestrator.wait().unwrap().code(), Some(143));
    let left = format!(
        "its merge waited for the integration branch `integration` checked out at {} too when the run stopped: left in the merge queue",
        t.root.display()
    );
    assert!(t.read("out").contains(&left), "{}", t.read("out"));
    assert!(t.read("workspace/logs/p/b.log").contains(&left));
    t.run(&["orchestrate"]).code(2).says(&format!(
        "the integration branch `integration` is checked out at {}",
        t.root.display()
    ));
    t.git(&["checkout", "-q", "main"]);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/b"), "completed");
    assert_eq!(
        changes(&t, "p/b"),
        [
            "pending -> running",
            "running -> merging",
            "merging -> completed"
        ],
        "the task ran again"
    );
    assert_eq!(integration_log(&t)[0], "write b.txt");
}

/// A run whose task `p/b` reaches the merge queue once the user has
/// checked the integration branch out in their checkout: the
/// orchestrator, once `p/b` waits in the queue, and what it says of it.
fn run_until_held_by_the_user_s_checkout(t: &Tree) -> (std::process::Child, String) {
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    let orchestrator = run_with_a_commit_on_release(t, "p/b", "b.txt");
    t.git(&["checkout", "-q", "--ignore-other-worktrees", "integration"]);
    t.write("release", "");
    let waits = format!(
        "the integration branch `integration` checked out at {} too: the merge queue waits until another branch is checked out there",
        t.root.display()
    );
    wait_for("the queue to say it waits", || {
        t.read("out").contains(&waits)
    });
    wait_for("p/b to wait in the queue", || {
        t.status("p/b")["merging"] == true
    });
    (orchestrator, waits)
}

/// What a fast-forward of the queue's cut short left in the integration
/// worktree (files as the commit it went to has them, or written in part,
/// or unlinked to be written again, its mark beside them) is removed by
/// the next merge; a change of the user's there at the same time is
/// theirs all the same: the run does not start on it, and only it is
/// named.
#[test]
fn only_what_a_fast_forward_cut_short_left_in_the_integration_worktree_is_removed() {
    let t = repo("");
    t.write("old.txt", "old\n");
    t.write("keep.txt", "one\ntwo\n");
    t.write("kept.txt", "kept\n");
    t.git(&["add", "old.txt", "keep.txt", "kept.txt"]);
    t.git(&["commit", "-q", "-m", "old.txt"]);
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    let integration = t.path("workspace/worktrees/.integration");
    let write = |file: &str, text: &str| std::fs::write(integration.join(file), text).unwrap();
    // The commit a fast-forward went to when it was killed.
    git_in(&integration, &["checkout", "-q", "-b", "ahead"]);
    for file in ["ff.txt", "half.txt", "empty.txt"] {
        write(file, &format!("{file} as ahead has it\n"));
    }
    write("README.md", "as ahead has it\n");
    write("old.txt", "new\n");
    std::os::unix::fs::symlink("ff.txt", integration.join("link")).unwrap();
    git_in(&integration, &["add", "."]);
    git_in(&integration, &["commit", "-q", "-m", "ahead"]);
    let ahead = git_in(&integration, &["rev-parse", "HEAD"]);
    git_in(&integration, &["checkout", "-q", "integration"]);
    git_in(&integration, &["branch", "-q", "-D", "ahead"]);
    // What it left, the branch not moved yet: files written whole, one
    // in part, one created and not written yet, one unlinked to be
    // written again.
    write("ff.txt", "ff.txt as ahead has it\n");
    write("half.txt", "half.txt as ah");
    write("empty.txt", "");
    write("README.md", "as ahead has it\n");
    std::fs::remove_file(integration.join("old.txt")).unwrap();
    std::os::unix::fs::symlink("ff.txt", integration.join("link")).unwrap();
    let link = std::fs::read_to_string(integration.join(".git")).unwrap();
    let gitdir = integration.join(link.trim().strip_prefix("gitdir: ").unwrap());
    std::fs::write(gitdir.join("xtask-fast-forward"), &ahead).unwrap();
    // And the user's: a new file, and a change staged, its file as HEAD
    // has it again; files the fast-forward does not change, one cut short
    // (as it could have been written in part), one removed (as it could
    // have been unlinked).
    std::fs::write(integration.join("NOTES.md"), "my notes\n").unwrap();
    std::fs::write(integration.join("a.txt"), "staged work\n").unwrap();
    git_in(&integration, &["add", "a.txt"]);
    std::fs::write(integration.join("a.txt"), "a\n").unwrap();
    write("keep.txt", "one\n");
    std::fs::remove_file(integration.join("kept.txt")).unwrap();
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"]).code(2).says(
        "has changes not committed (a.txt, keep.txt, kept.txt and 1 more), not cargo xtask's",
    );
    let read = |file: &str| std::fs::read_to_string(integration.join(file)).unwrap();
    assert_eq!(read("NOTES.md"), "my notes\n");
    assert_eq!(read("keep.txt"), "one\n");
    assert!(!integration.join("kept.txt").exists());
    assert_eq!(git_in(&integration, &["show", ":a.txt"]), "staged work");
    git_in(&integration, &["add", "NOTES.md", "keep.txt", "kept.txt"]);
    git_in(&integration, &["commit", "-q", "-m", "my notes"]);
    // `validate` leaves it to the run.
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate"]).code(0);
    for file in ["ff.txt", "half.txt", "empty.txt"] {
        assert!(!integration.join(file).exists(), "{file}");
    }
    assert!(integration.join("link").symlink_metadata().is_err());
    assert_eq!(read("README.md"), "the project\n");
    assert_eq!(read("old.txt"), "old\n");
    assert!(!gitdir.join("xtask-fast-forward").exists());
    assert_eq!(integration_log(&t)[..2], ["write b.txt", "my notes"]);
    // A mark that names no commit (an older version's, written by hand)
    // tells nothing apart: every change there is the user's.
    std::fs::write(gitdir.join("xtask-fast-forward"), "task/p/gone").unwrap();
    std::fs::write(integration.join("NOTES.md"), "more notes\n").unwrap();
    t.task("p/c", &commit("c.txt", "c"));
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate"])
        .code(2)
        .says("has changes not committed (NOTES.md), not cargo xtask's");
    assert_eq!(read("NOTES.md"), "more notes\n");
}

/// A run whose task `id` commits `file` once the test writes `release`:
/// the orchestrator, once the task has started.
fn run_with_a_commit_on_release(t: &Tree, id: &str, file: &str) -> std::process::Child {
    let release = t.path("release");
    t.task(
        id,
        &sh(&format!(
            "while [ ! -f {} ]; do sleep 0.02; done; echo {file} > {file} && git add {file} && git commit -q -m 'write {file}'",
            release.display()
        )),
    );
    let orchestrator = orchestrate_into_out(t);
    let status = format!("workspace/status/{id}.json");
    wait_for(&format!("{id} to start"), || {
        t.exists(&status) && t.state(id) == "running"
    });
    orchestrator
}

/// A process holding `lock` open, as a git at work holds its lock, once
/// it does.
fn hold_open(lock: &std::path::Path) -> std::process::Child {
    let held = lock.with_extension("lock.held");
    let _ = std::fs::remove_file(&held);
    let holder = std::process::Command::new("sh")
        .args(["-c", "exec 3>\"$0\"; : > \"$0.held\"; exec sleep 120"])
        .arg(lock)
        .spawn()
        .unwrap();
    wait_for("the lock to be held", || held.exists());
    holder
}

/// Ends `hold_open`'s holder and removes its lock, as its git would.
fn let_go(mut holder: std::process::Child, lock: &std::path::Path) {
    holder.kill().unwrap();
    holder.wait().unwrap();
    std::fs::remove_file(lock).unwrap();
}

/// A git of the user's at work in the integration worktree (a `git
/// commit` waiting on its editor there, holding `index.lock`) stops the
/// next run before anything starts; one that starts during a run holds the
/// merge queue until it ends. The queue took its lock for a killed git's
/// and removed it: that git would then rename the queue's own lock over
/// the index.
#[test]
fn a_git_of_the_user_s_at_work_in_the_integration_worktree_is_waited_for() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    let integration = t.path("workspace/worktrees/.integration");
    let git_dir = git_in(&integration, &["rev-parse", "--absolute-git-dir"]);
    let lock = std::path::Path::new(&git_dir).join("index.lock");
    let hold = || hold_open(&lock);
    let end = |holder| let_go(holder, &lock);
    let holder = hold();
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"])
        .code(2)
        .says("a git at work (pid")
        .says("index.lock), not cargo xtask's: let it end (a `git commit` waiting on its editor ends as the editor closes), then run again");
    assert!(lock.exists(), "a lock a live git holds was removed");
    assert_eq!(t.launches("p/b"), 0);
    end(holder);
    // Started during a run: the queue waits for it.
    let mut orchestrator = run_with_a_commit_on_release(&t, "p/c", "c.txt");
    // p/b, refused above, runs too: merged before the lock is taken, so
    // that the queue's wait is p/c's alone and the log's order is known.
    wait_for("p/b to be merged", || t.state("p/b") == "completed");
    let holder = hold();
    t.write("release", "");
    wait_for("the queue to say it waits", || {
        t.read("out")
            .contains("index.lock), not cargo xtask's: the merge queue waits until it ends")
    });
    assert!(lock.exists(), "a lock a live git holds was removed");
    end(holder);
    let code = orchestrator.wait().unwrap().code();
    assert_eq!(code, Some(0), "{}", t.read("out"));
    let log = integration_log(&t);
    assert_eq!(log[0], "write c.txt");
}

/// A git of the user's at work in a task's worktree as its agent ends
/// (holding its `index.lock` for more than the 10 s the queue waits) leaves
/// the task's work in the merge queue, its lock kept: the next run merges
/// it without running the agent again. It was removed as a killed git's.
#[test]
fn a_git_of_the_user_s_at_work_in_a_task_s_worktree_holds_its_merge() {
    let t = repo("");
    let (mut orchestrator, started) = run_until_p_a_s_agent_committed(&t);
    let worktree = t.path("workspace/worktrees/p/a");
    let git_dir = git_in(&worktree, &["rev-parse", "--absolute-git-dir"]);
    let lock = std::path::Path::new(&git_dir).join("index.lock");
    let holder = hold_open(&lock);
    t.write("release", "");
    let code = orchestrator.wait().unwrap().code();
    assert_eq!(code, Some(1), "{}", t.read("out"));
    let out = t.read("out");
    assert!(
        out.contains("index.lock), not cargo xtask's: let it end"),
        "{out}"
    );
    assert!(lock.exists(), "a lock a live git holds was removed");
    let_go(holder, &lock);
    std::fs::remove_file(&started).unwrap();
    t.run(&["orchestrate"]).code(0);
    assert!(!started.exists(), "the agent ran again");
    assert_eq!(integration_log(&t)[0], "write a.txt");
}

/// A person's `git commit -a` waiting on its editor in a task's worktree
/// as its agent ends is a git at work there, as one holding its lock open
/// is: git closed `index.lock` before starting the editor, so the queue
/// took it for a killed git's, removed it and merged around the commit
/// being written.
#[test]
fn a_git_commit_waiting_on_its_editor_in_a_task_s_worktree_holds_its_merge() {
    let t = repo("");
    let (mut orchestrator, started) = run_until_p_a_s_agent_committed(&t);
    let worktree = t.path("workspace/worktrees/p/a");
    std::fs::write(worktree.join("a.txt"), "a, fixed by hand\n").unwrap();
    let (editing, closed) = (t.path("editing"), t.path("closed"));
    let editor = format!(
        "touch {}; while [ ! -f {} ]; do sleep 0.02; done; :",
        editing.display(),
        closed.display()
    );
    let mut person = std::process::Command::new("git")
        .args(["commit", "-q", "-a", "-e", "-m", "fix a.txt by hand"])
        .current_dir(&worktree)
        .env("GIT_EDITOR", editor)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@localhost")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@localhost")
        .spawn()
        .unwrap();
    wait_for("the person's editor to open", || editing.exists());
    t.write("release", "");
    let code = orchestrator.wait().unwrap().code();
    let out = t.read("out");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not cargo xtask's: let it end"), "{out}");
    t.write("closed", "");
    assert!(
        person.wait().unwrap().success(),
        "the person's commit failed"
    );
    std::fs::remove_file(&started).unwrap();
    t.run(&["orchestrate"]).code(0);
    assert!(!started.exists(), "the agent ran again");
    let log = integration_log(&t);
    assert_eq!(log[..2], ["fix a.txt by hand", "write a.txt"], "{log:?}");
}

/// A run whose task `p/a` commits `a.txt`, makes the file `started`, and
/// ends once the file `release` is made: the orchestrator, once `started`
/// is there, and that file's path.
fn run_until_p_a_s_agent_committed(t: &Tree) -> (std::process::Child, std::path::PathBuf) {
    let (started, release) = (t.path("started"), t.path("release"));
    t.task(
        "p/a",
        &sh(&format!(
            "echo a > a.txt && git add a.txt && git commit -q -m 'write a.txt' && touch {} && while [ ! -f {} ]; do sleep 0.02; done",
            started.display(),
            release.display()
        )),
    );
    let orchestrator = orchestrate_into_out(t);
    wait_for("p/a's agent to commit", || started.exists());
    (orchestrator, started)
}

/// `orchestrate` started, what it prints going to the file `out`.
fn orchestrate_into_out(t: &Tree) -> std::process::Child {
    let out = std::fs::File::create(t.path("out")).unwrap();
    t.command(&["orchestrate"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// A run whose task `p/a` reaches the merge queue once the user has
/// started a merge of their branch `mine` in the integration worktree
/// (not committed): the orchestrator, once it says the queue waits.
fn run_until_its_merge_waits_for_the_user_s(t: &Tree) -> std::process::Child {
    let work = "echo a > a.txt && git add a.txt && git commit -q -m 'write a.txt'";
    run_until_the_merge_waits(t, "", work)
}

/// The same, with `p/a`'s frontmatter `extra` and its `work` once released.
fn run_until_the_merge_waits(t: &Tree, extra: &str, work: &str) -> std::process::Child {
    let orchestrator = run_until_p_a_runs_held(t, extra, work);
    release_p_a_into_a_waiting_merge(t);
    orchestrator
}

/// A run whose `p/a` (`extra`, then `work` once released) runs, held,
/// the user's work on a branch of theirs.
fn run_until_p_a_runs_held(t: &Tree, extra: &str, work: &str) -> std::process::Child {
    t.git(&["checkout", "-q", "-b", "mine"]);
    t.write("mine.txt", "mine\n");
    t.git(&["add", "mine.txt"]);
    t.git(&["commit", "-q", "-m", "the user's work"]);
    t.git(&["checkout", "-q", "main"]);
    let release = t.path("release");
    let waits = format!("while [ ! -f {} ]; do sleep 0.02; done", release.display());
    t.task(
        "p/a",
        &format!("{extra}{}", sh(&format!("{waits}; {work}"))),
    );
    let orchestrator = orchestrate_into_out(t);
    wait_for("p/a to start", || {
        t.exists("workspace/status/p/a.json") && t.state("p/a") == "running"
    });
    orchestrator
}

/// The user starts a merge of their work in the integration worktree, and
/// `p/a` (`run_until_p_a_runs_held`), released, ends: its work waits in
/// the merge queue.
fn release_p_a_into_a_waiting_merge(t: &Tree) {
    let integration = t.path("workspace/worktrees/.integration");
    git_in(
        &integration,
        &["merge", "-q", "--no-ff", "--no-commit", "mine"],
    );
    t.write("release", "");
    wait_for("the queue to say it waits", || {
        t.read("out")
            .contains("the merge queue waits until it is committed or aborted")
    });
}

/// The user commits the merge they started in the integration worktree
/// (`run_until_the_merge_waits`), and the next run ends well.
fn commit_the_user_s_merge_and_run_again(t: &Tree) {
    let integration = t.path("workspace/worktrees/.integration");
    git_in(&integration, &["commit", "-q", "-m", "merge mine"]);
    t.run(&["orchestrate"]).code(0);
}

/// A run killed while a task's work waits in the merge queue has told
/// `running -> merging`: the next run does not tell it again for that
/// attempt, and still tells the same change of its retry (here after a
/// conflict with the user's merge).
#[test]
fn a_merge_told_before_a_kill_does_not_silence_the_retry_s() {
    let t = repo("");
    let work = "if [ $TASK_ATTEMPT = 1 ]; then echo A1 > mine.txt; \
                else git reset -q --hard integration && echo A2 > a2.txt; fi; \
                git add -A && git commit -q -m work";
    let mut orchestrator = run_until_the_merge_waits(&t, "retries: 1\n", work);
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    commit_the_user_s_merge_and_run_again(&t);
    assert_eq!(
        changes(&t, "p/a"),
        [
            "pending -> running",
            "running -> merging",
            "merging -> failed",
            "failed -> pending",
            "pending -> running",
            "running -> merging",
            "merging -> completed"
        ]
    );
}

/// A merge of the user's started in the integration worktree while a run
/// goes on holds the merge queue until it is committed: the task that
/// reaches the queue meanwhile waits, not failed (its agent would run
/// again), and its work goes in after the user's merge.
#[test]
fn the_merge_queue_waits_for_a_merge_of_the_user_s_started_during_the_run() {
    let t = repo("");
    let mut orchestrator = run_until_its_merge_waits_for_the_user_s(&t);
    assert_eq!(t.state("p/a"), "running", "{}", t.read("out"));
    assert_eq!(t.status("p/a")["merging"], true);
    // `why` names what holds it.
    t.run(&["why", "p/a"])
        .code(0)
        .says("its work waits in the merge queue")
        .says("is in the middle of a merge, not cargo xtask's: the merge queue waits until it is committed or aborted there");
    let integration = t.path("workspace/worktrees/.integration");
    git_in(&integration, &["commit", "-q", "-m", "merge mine"]);
    let code = orchestrator.wait().unwrap().code();
    assert_eq!(code, Some(0), "{}", t.read("out"));
    assert_eq!(t.state("p/a"), "completed");
    let log = integration_log(&t);
    assert_eq!(log[..2], ["write a.txt", "merge mine"]);
    assert!(log.iter().any(|s| s == "the user's work"), "{log:?}");
}

/// Stopped while its merge waits for the user's, a task's work is left in
/// the merge queue, its commit kept on its branch and the user's merge left
/// as it is: once the user committed theirs, the next run merges it
/// without running its agent again.
#[test]
fn a_run_stopped_while_its_merge_waits_for_the_user_s_leaves_it_to_the_next_run() {
    let t = repo("");
    let mut orchestrator = run_until_its_merge_waits_for_the_user_s(&t);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(orchestrator.id() as i32, libc::SIGTERM) };
    let code = orchestrator.wait().unwrap().code();
    let said = t.read("out");
    assert_eq!(code, Some(143), "{said}");
    assert!(said.contains("1 left to merge"), "{said}");
    assert_eq!(t.status("p/a")["merging"], true);
    assert!(t
        .read("workspace/logs/p/a.log")
        .contains("its merge waited for a merge in"));
    assert_eq!(
        t.git(&["log", "-1", "--format=%s", "task/p/a"]),
        "write a.txt"
    );
    let integration = t.path("workspace/worktrees/.integration");
    git_in(&integration, &["rev-parse", "-q", "--verify", "MERGE_HEAD"]);
    commit_the_user_s_merge_and_run_again(&t);
    assert_eq!(
        changes(&t, "p/a"),
        [
            "pending -> running",
            "running -> merging",
            "merging -> completed"
        ]
    );
    assert_eq!(integration_log(&t)[..2], ["write a.txt", "merge mine"]);
}

/// A run stopped while a task's work waits in the merge queue, then the
/// task's worktree folder removed by hand: its branch holds what it
/// committed, so the next run makes the worktree again on it and merges
/// it, without running its agent again. With its branch deleted too,
/// there is nothing to merge: the task fails saying so.
#[test]
fn a_worktree_removed_while_its_work_waits_in_the_queue_is_made_again_and_merged() {
    for branch_too in [false, true] {
        let t = repo("");
        let root = t.root.display();
        let work = format!(
            "echo run >> {root}/runs && echo a > a.txt && git add a.txt && git commit -q -m 'write a.txt'"
        );
        stopped_with_its_worktree_removed(&t, &work);
        if branch_too {
            t.git(&["worktree", "prune"]);
            t.git(&["branch", "-D", "-q", "task/p/a"]);
            t.run(&["orchestrate"])
                .says("its worktree and its branch `task/p/a` are gone: nothing to merge");
            continue;
        }
        t.run(&["orchestrate"]).code(0);
        assert_eq!(t.state("p/a"), "completed");
        assert_eq!(t.read("runs"), "run\n", "the agent ran again");
        assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
    }
}

/// A run of `p/a` doing `work`, stopped (SIGTERM) while its work waits
/// in the merge queue behind the user's merge, its worktree then removed
/// by hand and the user's merge committed: the next run finds the work.
fn stopped_with_its_worktree_removed(t: &Tree, work: &str) {
    let mut orchestrator = run_until_the_merge_waits(t, "", work);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(orchestrator.id() as i32, libc::SIGTERM) };
    assert_eq!(orchestrator.wait().unwrap().code(), Some(143));
    std::fs::remove_dir_all(t.path("workspace/worktrees/p/a")).unwrap();
    let integration = t.path("workspace/worktrees/.integration");
    git_in(&integration, &["commit", "-q", "-m", "merge mine"]);
}

/// A task's worktree removed by hand while its work waits in the merge
/// queue, its agent's work left uncommitted there (committed as leftovers
/// only at the merge): its branch holds nothing of its own, so the task
/// fails saying its work went with the folder, rather than completing
/// with nothing merged and its dependents starting without it.
#[test]
fn a_worktree_removed_with_its_work_uncommitted_while_it_waits_in_the_queue_fails_its_task() {
    let t = repo("");
    let root = t.root.display();
    let work = format!("echo run >> {root}/runs && echo a > a.txt");
    stopped_with_its_worktree_removed(&t, &work);
    t.run(&["orchestrate"]).code(1).says(
        "its worktree was removed before its work was merged, and its branch `task/p/a` holds no commit of its own",
    );
    assert_eq!(t.state("p/a"), "failed");
    assert_eq!(t.read("runs"), "run\n", "the agent ran again");
}

/// Killed (SIGKILL) while its merge waits, a run leaves the task in the
/// merge queue; the next run merges it, and its move to `merging` is one
/// line of events.jsonl, not one more per run that took it up.
#[test]
fn a_merge_taken_up_after_a_kill_is_told_once() {
    let t = repo("");
    let mut orchestrator = run_until_its_merge_waits_for_the_user_s(&t);
    wait_for("p/a to wait in the queue", || {
        t.status("p/a")["merging"] == true
    });
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    commit_the_user_s_merge_and_run_again(&t);
    assert_eq!(t.state("p/a"), "completed");
    let moves: Vec<String> = events(&t)
        .iter()
        .filter(|e| e["task"] == "p/a" && e.get("to").is_some())
        .map(|e| format!("{} -> {}", e["from"], e["to"]))
        .collect();
    assert_eq!(
        moves,
        [
            "\"pending\" -> \"running\"",
            "\"running\" -> \"merging\"",
            "\"merging\" -> \"completed\""
        ]
    );
}

/// events.jsonl moved away (kept aside by hand, or by logrotate) while a
/// task ran, and the run then killed (SIGKILL) while its work waits to
/// merge: the next run finds that attempt's `running -> merging` in the
/// file made again, without its start, which the file moved away holds.
/// It tells the start neither again nor after that change.
#[test]
fn a_start_told_to_an_events_file_moved_away_is_not_told_again_after_its_changes() {
    let t = repo("");
    let work = "echo a > a.txt && git add a.txt && git commit -q -m 'write a.txt'";
    let mut orchestrator = run_until_p_a_runs_held(&t, "", work);
    wait_for("p/a's start to be told", || {
        changes(&t, "p/a") == ["pending -> running"]
    });
    let (events, kept) = (t.path("workspace/events.jsonl"), t.path("events.kept"));
    std::fs::rename(events, kept).unwrap();
    release_p_a_into_a_waiting_merge(&t);
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    commit_the_user_s_merge_and_run_again(&t);
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(
        changes(&t, "p/a"),
        ["running -> merging", "merging -> completed"]
    );
}

/// While a live run merges a task (its end kept on disk meanwhile), the
/// views show it merging, not left for the next run; once the run is
/// killed, they say the next run merges it.
#[test]
fn a_task_a_live_run_merges_is_not_shown_as_left_in_the_queue() {
    let t = repo("");
    let mut orchestrator = run_until_its_merge_waits_for_the_user_s(&t);
    wait_for("p/a to wait in the queue", || {
        t.status("p/a")["merging"] == true
    });
    let left = "the next run merges it";
    let progress = t.run(&["progress", "--tasks"]);
    progress.code(0).says("merging");
    assert!(!progress.stdout.contains(left), "{}", progress.stdout);
    assert!(progress_task(&t, "p/a").get("process_gone").is_none());
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    t.run(&["progress", "--tasks"]).code(0).says(left);
}

/// Killed (SIGKILL) with its supervisor while a task's work waits in the
/// merge queue (a power cut, the OOM killer taking the session), a run
/// leaves the attempt's end on disk: the next run merges the work, where
/// it failed the task as `lost` and would have run its agent again.
#[test]
fn work_waiting_to_merge_is_merged_after_a_kill_of_the_run_and_its_supervisor() {
    let t = repo("");
    let mut orchestrator = run_until_its_merge_waits_for_the_user_s(&t);
    wait_for("p/a to wait in the queue", || {
        t.status("p/a")["merging"] == true
    });
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as i32;
    // Stopped first: a run that saw its supervisor die would stop its
    // tasks before its own kill (a loaded machine gives it the time).
    signal(orchestrator.id(), libc::SIGSTOP);
    // SAFETY: signals a process this test's run started.
    unsafe { libc::kill(supervisor, libc::SIGKILL) };
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    wait_for("the supervisor to be gone", || {
        !std::path::Path::new(&format!("/proc/{supervisor}")).exists()
    });
    commit_the_user_s_merge_and_run_again(&t);
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.status("p/a")["attempt"], 1);
    let log = t.git(&["log", "--format=%s", "integration"]);
    assert_eq!(log.matches("write a.txt").count(), 1, "{log}");
}

/// With the root a folder of the repository, a worktree is still a
/// checkout of all of it: a change outside the root is in no worktree
/// either, and the warning names it.
#[test]
fn changes_outside_a_root_in_a_folder_of_the_repository_are_warned_of() {
    let t = Tree::new();
    t.write("lib.txt", "v1\n");
    t.write(".gitignore", "sub/workspace/\n");
    t.write(
        "sub/tasks/orchestrator.yaml",
        "kill_grace: 1s\nworktrees: {default: true}\n",
    );
    t.write("sub/tasks/p/a.md", &format!("---\n{}\n---\n", sh("true")));
    t.git(&["init", "-q", "-b", "main"]);
    t.git(&["add", "."]);
    t.git(&["commit", "-q", "-m", "first"]);
    t.write("lib.txt", "v2, not committed\n");
    let run = std::process::Command::new(BIN)
        .arg("--root")
        .arg(t.path("sub"))
        .arg("orchestrate")
        .current_dir(t.path("sub"))
        .output()
        .unwrap();
    Run::from(run)
        .code(0)
        .says("changes not committed in the checkout (lib.txt)");
}

/// With the root a folder of the repository, a worktree task runs in the
/// root's folder of its worktree, as a task without one runs in the root:
/// relative paths mean the same in both, `copy` brings files there, and
/// they are still never committed (though the agent staged them).
/// Two roots in one repository (`a/tasks`, `b/tasks`, an integration
/// branch each) with a task of the same id: the branch one made is never
/// taken up by the other, whose task fails saying whose it is, and
/// merges nothing of it (it stacked its work on the other's failed
/// commit and merged both); each `clean` leaves the other's alone.
#[test]
fn a_task_branch_of_another_root_in_the_repository_is_not_taken_up() {
    let t = Tree::new();
    t.write(".gitignore", "a/workspace/\nb/workspace/\n");
    for (root, integration) in [("a", "integ-a"), ("b", "integ-b")] {
        t.write(
            &format!("{root}/tasks/orchestrator.yaml"),
            &format!("kill_grace: 1s\nworktrees: {{default: true, integration: {integration}}}\n"),
        );
    }
    let work = |file: &str, end: &str| {
        format!(
            "---\n{}\n---\n",
            sh(&format!(
                "echo x > {file} && git add {file} && git commit -qm {file}{end}"
            ))
        )
    };
    t.write("a/tasks/p/x.md", &work("failed-a.txt", " && exit 1"));
    t.write("b/tasks/p/x.md", &work("good-b.txt", ""));
    t.git(&["init", "-q", "-b", "main"]);
    t.git(&["add", "."]);
    t.git(&["commit", "-q", "-m", "first"]);
    let run = |root: &str, args: &[&str]| -> Run {
        let mut command = std::process::Command::new(BIN);
        command.arg("--root").arg(t.path(root)).args(args);
        command.output().unwrap().into()
    };
    run("a", &["orchestrate"]).code(1);
    run("b", &["orchestrate"])
        .code(1)
        .says("branch `task/p/x` was made by cargo xtask for the integration branch `integ-a`, not `integ-b`");
    let merged = t.git(&["log", "--format=%s", "integ-b"]);
    assert!(!merged.contains("failed-a.txt"), "{merged}");
    // a's clean keeps its own unmerged branch, and b's does not judge it.
    run("a", &["clean"])
        .code(0)
        .says("kept     task/p/x: 1 commit not in integ-a");
    run("b", &["clean"])
        .code(0)
        .says("kept     task/p/x: made for the integration branch `integ-a`, not `integ-b`");
    assert!(t
        .git(&["branch", "--list", "task/p/x"])
        .contains("task/p/x"));
}

#[test]
fn a_worktree_task_of_a_root_in_a_folder_runs_in_that_folder_of_its_worktree() {
    let t = Tree::new();
    t.write(".gitignore", "sub/workspace/\n");
    t.write(
        "sub/tasks/orchestrator.yaml",
        "kill_grace: 1s\nworktrees: {default: true, copy: [.env]}\n",
    );
    let script = "pwd -P > $TASK_OUTPUT_DIR/pwd; echo $TASK_WORKDIR > $TASK_OUTPUT_DIR/workdir; \
                  cat .env > seen.txt && git add -A";
    t.write("sub/tasks/p/a.md", &format!("---\n{}\n---\n", sh(script)));
    t.git(&["init", "-q", "-b", "main"]);
    t.git(&["add", "."]);
    t.git(&["commit", "-q", "-m", "first"]);
    t.write("sub/.env", "secret\n");
    let run = std::process::Command::new(BIN)
        .arg("--root")
        .arg(t.path("sub"))
        .arg("orchestrate")
        .output()
        .unwrap();
    Run::from(run).code(0);
    let worktree = t.path("sub/workspace/worktrees/p/a/sub");
    let worktree = worktree.canonicalize().unwrap();
    assert_eq!(
        t.read("sub/workspace/outputs/p/a/pwd").trim(),
        worktree.to_str().unwrap()
    );
    assert!(t
        .read("sub/workspace/outputs/p/a/workdir")
        .trim()
        .ends_with("workspace/worktrees/p/a/sub"));
    assert_eq!(t.git(&["show", "integration:sub/seen.txt"]), "secret");
    let files = t.git(&["ls-tree", "-r", "--name-only", "integration"]);
    assert!(!files.contains(".env"), "{files}");
    // Merged: `clean` removes the worktree, and the `.env` brought into it.
    let clean = std::process::Command::new(BIN)
        .arg("--root")
        .arg(t.path("sub"))
        .arg("clean")
        .output()
        .unwrap();
    Run::from(clean).code(0);
    assert!(!t.exists("sub/workspace/worktrees/p/a"));
    assert_eq!(t.read("sub/.env"), "secret\n");
}

/// `git -C dir args`, its output trimmed.
fn git_at(dir: &std::path::Path, args: &[&str]) -> String {
    crate::tree::git_in(dir, args)
}

/// A worktree of the user's, on a branch of theirs, where the
/// orchestrator keeps its integration worktree stops the run before
/// anything starts: never switched to the integration branch, its files
/// never reset or cleaned.
#[test]
fn a_worktree_of_the_user_s_in_the_integration_worktree_s_place_is_refused() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    let dir = t.path("workspace/worktrees/.integration");
    t.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "feature",
        dir.to_str().unwrap(),
    ]);
    t.write("workspace/worktrees/.integration/notes.txt", "mine\n");
    t.write("workspace/worktrees/.integration/README.md", "my edit\n");
    t.run(&["orchestrate"])
        .code(2)
        .says("is a worktree of branch `feature`, not the integration worktree: move it away");
    assert_eq!(git_at(&dir, &["branch", "--show-current"]), "feature");
    assert_eq!(
        t.read("workspace/worktrees/.integration/notes.txt"),
        "mine\n"
    );
    assert_eq!(
        t.read("workspace/worktrees/.integration/README.md"),
        "my edit\n"
    );
    assert_eq!(t.launches("p/a"), 0);
}

/// A task's branch checked out in the user's checkout is said by
/// `validate` and the dry run, and fails the task as it starts: its agent
/// never works in the user's checkout.
#[test]
fn a_task_branch_checked_out_in_the_user_s_checkout_is_said_before_the_run() {
    let t = repo("");
    t.task("p/a", &sh("test -e go || exit 1; echo agent > agent.txt"));
    t.run(&["orchestrate"]).code(1);
    let dir = t.path("workspace/worktrees/p/a");
    t.git(&["worktree", "remove", "--force", dir.to_str().unwrap()]);
    t.git(&["checkout", "-q", "task/p/a"]);
    let said = "branch `task/p/a` is checked out at ";
    t.run(&["validate"]).code(1).says(said);
    t.run(&["orchestrate", "--dry-run"]).code(1).says(said);
    t.write("go", "");
    t.run(&["orchestrate"]).code(1).says(said);
    assert!(!t.exists("agent.txt"));
}

/// A worktree of the user's (on a branch of theirs) made where a task's
/// worktree was, once the task's branch exists: the task fails naming it;
/// the worktree is never checked out to the task's branch, and none of
/// its files is committed.
#[test]
fn a_worktree_of_the_user_s_in_a_task_s_place_is_never_used_once_its_branch_exists() {
    let t = repo("");
    t.task("p/a", &sh("test -e go || exit 1; echo agent > agent.txt"));
    t.run(&["orchestrate"]).code(1);
    let dir = t.path("workspace/worktrees/p/a");
    let path = dir.to_str().unwrap();
    t.git(&["worktree", "remove", "--force", path]);
    t.git(&["worktree", "add", "-q", "-b", "mine", path, "task/p/a"]);
    t.write("workspace/worktrees/p/a/mine.txt", "mine\n");
    t.write("workspace/worktrees/p/a/go", "");
    // `validate` and the dry run say it first.
    let said = "is a worktree of mine, not of `task/p/a`: move it away";
    t.run(&["validate"]).code(1).says(said);
    t.run(&["orchestrate", "--dry-run"])
        .code(1)
        .says("would fail as it starts: p/a: ")
        .says(said);
    t.run(&["orchestrate"]).code(1).says(said);
    assert_eq!(git_at(&dir, &["branch", "--show-current"]), "mine");
    assert!(!dir.join("agent.txt").exists());
    assert_eq!(integration_log(&t), ["first"]);
}

/// A tag named like a task's branch: `clean` counts the branch's commits,
/// not the tag's, and keeps the branch with its unmerged work.
#[test]
fn a_tag_named_like_a_task_branch_does_not_make_clean_drop_its_commits() {
    let t = repo("");
    t.task(
        "p/a",
        &sh("echo w > w.txt && git add w.txt && git commit -q -m work && exit 1"),
    );
    t.run(&["orchestrate"]).code(1);
    t.git(&["tag", "task/p/a", "main"]);
    t.run(&["clean"])
        .code(0)
        .says("kept     task/p/a")
        .says("1 commit not in integration");
    assert_eq!(
        t.git(&["log", "-1", "--format=%s", "refs/heads/task/p/a"]),
        "work"
    );
}

/// A tag named like the integration branch, on commits of the user's:
/// tasks are merged onto the branch, never onto the tag's commits.
#[test]
fn a_tag_named_like_the_integration_branch_brings_none_of_its_commits() {
    let t = repo("");
    t.git(&["checkout", "-q", "-b", "experiment"]);
    t.write("wip.txt", "wip\n");
    t.git(&["add", "wip.txt"]);
    t.git(&["commit", "-q", "-m", "unfinished"]);
    t.git(&["tag", "integration"]);
    t.git(&["checkout", "-q", "main"]);
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        t.git(&["log", "--format=%s", "refs/heads/integration"]),
        "write a.txt\nfirst"
    );
}

/// `worktrees.base` naming a branch beside a tag of the same name (a
/// release tag `main` on an old commit): the integration branch starts
/// from the branch, and the commits it lacks are counted from the branch,
/// not the tag git would take a short name for.
#[test]
fn a_base_branch_beside_a_tag_of_its_name_is_the_branch() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, base: main}\n");
    t.git(&["tag", "main"]);
    t.write("second.txt", "second\n");
    t.git(&["add", "second.txt"]);
    t.git(&["commit", "-q", "-m", "second"]);
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(integration_log(&t), ["write a.txt", "second", "first"]);
    t.write("third.txt", "third\n");
    t.git(&["add", "third.txt"]);
    t.git(&["commit", "-q", "-m", "third"]);
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"])
        .code(0)
        .says("warning: `main` has 1 commit that the integration branch `integration` lacks");
}

/// `copy` of a file the repository ignores (a `.env`, as it should be):
/// what an agent left uncommitted is committed, the file is not.
#[test]
fn leftovers_are_committed_beside_a_brought_file_the_repository_ignores() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, copy: [.env]}\n");
    t.write(".gitignore", "workspace/\nmarkers/\ntasks/\n.env\n");
    t.git(&["commit", "-q", "-a", "-m", "ignore .env"]);
    t.write(".env", "SECRET=1\n");
    t.task("p/a", &sh("echo one > one.txt"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        t.git(&["show", "--format=%s", "--name-only", "integration"]),
        "p/a: uncommitted changes left by the agent\n\none.txt"
    );
}

/// A worktree of the user's whose folder is away for now (on a disk not
/// mounted) stays registered: a run forgets only its own worktrees.
#[test]
fn a_worktree_of_the_user_s_whose_folder_is_away_stays_registered() {
    let t = repo("");
    t.write(".git/info/exclude", "disk/\ndisk.off/\n");
    let wt = t.path("disk/wt");
    t.git(&["worktree", "add", "-q", "--detach", wt.to_str().unwrap()]);
    std::fs::rename(t.path("disk"), t.path("disk.off")).unwrap();
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    std::fs::rename(t.path("disk.off"), t.path("disk")).unwrap();
    assert_eq!(
        git_at(&wt, &["rev-parse", "--show-toplevel"]),
        wt.canonicalize().unwrap().to_str().unwrap()
    );
}

/// A squash merge of the user's in the integration worktree (`git merge
/// --squash`, not committed yet) stops the run, as a merge does: what it
/// staged and what they edited since are kept.
#[test]
fn a_squash_merge_of_the_user_s_in_the_integration_worktree_is_kept() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    t.git(&["checkout", "-q", "-b", "feature", "main"]);
    t.write("feat.txt", "feat\n");
    t.git(&["add", "feat.txt"]);
    t.git(&["commit", "-q", "-m", "feature"]);
    t.git(&["checkout", "-q", "main"]);
    let integration = t.path("workspace/worktrees/.integration");
    git_at(&integration, &["merge", "-q", "--squash", "feature"]);
    t.write(
        "workspace/worktrees/.integration/feat.txt",
        "feat\nhand edit\n",
    );
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"])
        .code(2)
        .says("is in the middle of a squash merge, not one of cargo xtask's");
    assert_eq!(
        t.read("workspace/worktrees/.integration/feat.txt"),
        "feat\nhand edit\n"
    );
}

/// An agent that moves its branch back below where it started merges
/// nothing, and the run says so (not "merged as" an older commit).
#[test]
fn a_branch_moved_below_its_start_is_not_said_to_be_merged() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    t.task("p/b", &sh("git reset -q --hard HEAD~1"));
    let run = t.run(&["orchestrate"]);
    run.code(0).says("done     p/b");
    assert!(!run.stdout.contains("merged as"), "{}", run.stdout);
    assert_eq!(integration_log(&t), ["write a.txt", "first"]);
}

/// The queue's rebase moves no branch of the user's, whatever their git
/// config asks of a rebase: with `rebase.updateRefs`, git moves every
/// branch that points into the commits it rebases, and with
/// `rebase.rebaseMerges` it keeps merge commits the queue does not.
#[test]
fn the_queue_s_rebase_moves_no_branch_of_the_user_s_whatever_their_config() {
    let t = repo("");
    t.git(&["checkout", "-q", "-b", "user/wip"]);
    t.write("wip.txt", "wip\n");
    t.git(&["add", "wip.txt"]);
    t.git(&["commit", "-q", "-m", "wip"]);
    t.git(&["checkout", "-q", "main"]);
    let wip = t.git(&["rev-parse", "user/wip"]);
    t.git(&["config", "rebase.updateRefs", "true"]);
    t.git(&["config", "rebase.rebaseMerges", "true"]);
    t.task("p/a", &commit("a.txt", "a"));
    // It takes the user's commit into its branch once p/a is merged, so
    // that its branch is rebased onto p/a's work with the user's commit
    // in it, and a merge commit of its own.
    let waits = "until git log --format=%s refs/heads/integration | grep -qx 'write a.txt'; do sleep 0.02; done";
    t.task(
        "p/b",
        &sh(&format!(
            "{waits}; git merge -q --no-ff --no-edit user/wip && echo b > b.txt && git add b.txt && git commit -q -m 'write b.txt'"
        )),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["rev-parse", "user/wip"]), wip);
    assert_eq!(
        integration_log(&t),
        ["write b.txt", "wip", "write a.txt", "first"]
    );
}

/// A repository moved (or renamed) after a run made its worktrees: git's
/// links to them lead to the old place. The next run links them again,
/// and goes on from them (`validate` knows it will); `clean` too, which
/// then removes them as it would have (its dry run says so).
#[test]
fn worktrees_of_a_repository_moved_since_are_linked_again() {
    let t = repo("");
    t.task(
        "p/a",
        &format!(
            "retries: 0\n{}",
            sh("[ -f ../../../../fixed ] || { echo a > a.txt && git add a.txt && git commit -qm 'write a.txt' && exit 3; }")
        ),
    );
    t.task(
        "p/x/y",
        &format!(
            "retries: 0\n{}",
            sh("[ -f ../../../../../fixed ] || { echo y > y.txt && git add y.txt && git commit -qm 'write y.txt' && exit 3; }")
        ),
    );
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"]).code(1);
    let moved = std::path::PathBuf::from(format!("{}-moved", t.root.display()));
    std::fs::rename(&t.root, &moved).unwrap();
    let m = Tree { root: moved };
    m.run(&["validate"]).code(0);
    m.run(&["clean", "--dry-run"])
        .code(0)
        .says("the repository was moved since cargo xtask made its worktrees")
        .says("nothing is planned until then");
    m.write("fixed", "");
    m.run(&["reset", "p/a", "p/x/y"]).code(0);
    m.run(&["orchestrate"]).code(0);
    assert_eq!(m.git(&["show", "integration:a.txt"]), "a");
    assert_eq!(m.git(&["show", "integration:y.txt"]), "y");
    assert_eq!(m.git(&["show", "integration:b.txt"]), "b");
    m.run(&["clean"]).code(0);
    let listed = m.git(&["worktree", "list", "--porcelain"]);
    let worktrees: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("worktree "))
        .collect();
    assert_eq!(worktrees.len(), 2, "{listed}");
}

/// An agent that moves the integration branch itself (`git update-ref`)
/// leaves the integration worktree with the earlier tip checked out: the
/// changes git shows there only undo the move, so the queue does not ask
/// to commit them, but says it moved and how to keep or undo it; kept
/// (`reset --hard` there), the run goes on and merges.
#[test]
fn an_integration_branch_moved_outside_the_queue_is_said_with_how_to_keep_or_undo_it() {
    let t = repo("");
    let work = "echo a > a.txt && git add a.txt && git commit -q -m 'write a.txt' \
                && git update-ref refs/heads/integration HEAD";
    t.task("p/a", &sh(work));
    let mut orchestrator = orchestrate_into_out(&t);
    let said = "the integration branch moved outside the merge queue: the queue waits";
    wait_for("the queue to say the branch moved", || {
        t.read("out").contains(said)
    });
    let integration = t.path("workspace/worktrees/.integration");
    let shown = integration.display();
    assert!(
        t.read("out")
            .contains(&format!("to keep the move, `git -C {shown} reset --hard`")),
        "{}",
        t.read("out")
    );
    assert!(
        !t.read("out").contains("committed or stashed"),
        "{}",
        t.read("out")
    );
    git_in(&integration, &["reset", "-q", "--hard"]);
    wait_for("the run to end", || {
        orchestrator.try_wait().unwrap().is_some()
    });
    assert_eq!(
        orchestrator.wait().unwrap().code(),
        Some(0),
        "{}",
        t.read("out")
    );
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(integration_log(&t)[0], "write a.txt");
}

/// A `.gitignore` that does not ignore `workspace/` is said as a run
/// starts: a `git add -A` in the checkout (a `workdir: root` task's, the
/// person's) would commit each worktree as a repository of its own, with
/// the run's logs and statuses. One that ignores what is in it but a
/// README (this project's own) is no such thing.
#[test]
fn a_workspace_git_does_not_ignore_is_said_as_a_run_starts() {
    let said = "warning: git does not ignore `workspace/`, where the worktrees are";
    for (ignored, warned) in [
        ("tasks/\n", true),
        ("tasks/\n/workspace/*\n!/workspace/README.md\n", false),
        ("tasks/\nworkspace/\n", false),
    ] {
        let t = repo("");
        t.write(".gitignore", ignored);
        t.git(&["commit", "-qam", "ignore"]);
        t.task("p/a", &commit("a.txt", "a"));
        let run = t.run(&["orchestrate"]);
        run.code(0);
        assert_eq!(
            run.stdout.contains(said),
            warned,
            "{ignored}: {}",
            run.stdout
        );
    }
}
