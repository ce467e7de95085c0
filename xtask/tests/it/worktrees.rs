//! Tasks in git worktrees and the merge queue, on real git repositories in
//! temporary folders, with stand-in agents that edit, commit, or leave
//! their changes uncommitted.

use crate::tree::*;

/// A tree that is a git repository with a first commit, whose tasks run in
/// worktrees; the config has `extra` too.
pub fn repo(extra: &str) -> Tree {
    let t = Tree::new();
    t.config(&format!(
        "kill_grace: 1s\nworktrees: {{default: true}}\n{extra}"
    ));
    t.write(".gitignore", "workspace/\nmarkers/\ntasks/\n");
    t.write("README.md", "the project\n");
    t.git(&["init", "-q", "-b", "main"]);
    t.git(&["add", "."]);
    t.git(&["commit", "-q", "-m", "first"]);
    t
}

/// Starts a run and kills it (SIGKILL) while attempt `attempt` of `p/a`
/// has its worktree made (a post-checkout hook holds it), then lets the
/// hook go: that attempt never started.
fn kill_while_its_worktree_is_made(t: &Tree, attempt: u32) {
    let (block, hooked, release) = (t.path("block"), t.path("hooked"), t.path("release"));
    t.hook_the_orchestrator_runs(
        "post-checkout",
        &format!(
            "#!/bin/sh\n[ -f {b} ] || exit 0\ntouch {h}\nwhile [ ! -f {r} ]; do sleep 0.02; done\n",
            b = block.display(),
            h = hooked.display(),
            r = release.display()
        ),
    );
    t.write("block", "");
    let mut cut = t.start(&["orchestrate"]);
    wait_for("the worktree's making", || hooked.exists());
    assert_eq!(t.status("p/a")["attempt"], attempt);
    cut.kill().unwrap();
    cut.wait().unwrap();
    std::fs::remove_file(&block).unwrap();
    t.write("release", "");
}

/// An attempt whose worktree's making a kill cut short never started; the
/// attempt of the same number that the next run starts writes its log
/// over that try's: the try's log is not kept as the attempt before's, so
/// logs and attempt numbers stay in step (they drifted: `attempt-2.log`
/// held the try, `attempt-3.log` attempt 2's output, and attempt 3 was
/// pointed at the try as its previous log).
#[test]
fn an_attempt_cut_short_while_its_worktree_was_made_keeps_the_logs_in_step() {
    let t = repo("");
    let cmd = "echo ran attempt $TASK_ATTEMPT prev=$TASK_PREVIOUS_LOG";
    t.task("p/a", &sh(cmd));
    t.run(&["orchestrate"]).code(0);
    // Its worktree removed, the next attempt makes a new one.
    t.run(&["clean"]).code(0);
    t.run(&["reset", "p/a"]).code(0);
    kill_while_its_worktree_is_made(&t, 2);
    t.run(&["orchestrate"]).code(0);
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
    let log = |name: &str| t.read(&format!("workspace/logs/p/{name}"));
    assert!(
        log("a.attempt-2.log").contains("ran attempt 2"),
        "{}",
        log("a.attempt-2.log")
    );
    assert!(log("a.log").contains("ran attempt 3"), "{}", log("a.log"));
    assert!(!t.exists("workspace/logs/p/a.attempt-3.log"));
}

/// A first try that never started (a kill while its worktree was made)
/// is attempt 1 again: its log, which says its worktree was being made,
/// is that attempt's (it was taken for an attempt 1 that ran: the task
/// ran as attempt 2, and `logs --attempt 1` said a log was removed).
#[test]
fn a_first_try_that_never_started_is_attempt_1_again() {
    let t = repo("");
    // The integration worktree made first: the hook holds the task's.
    t.task("p/first", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    t.task("p/a", &sh("echo ran attempt $TASK_ATTEMPT"));
    kill_while_its_worktree_is_made(&t, 1);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.status("p/a")["attempt"], 1);
    t.run(&["logs", "p/a", "--attempt", "1"])
        .code(0)
        .says("ran attempt 1");
}

/// A start that failed at once (a branch in its worktree's way), its
/// `failed` told, then the run killed before its final status was
/// written: the next run takes that told failure as the attempt's end. It
/// took the attempt, `running` on disk, for one that never started
/// (`running -> pending` after `failed`) and ran it again under the same
/// number. The kill is made while the worktree is made (a hook holds it),
/// and the `failed` the killed run would have told next is appended as
/// it tells it. With retries left, the run that takes it up does not try
/// it again either, as the failure it tells says (it told "not retried",
/// then started attempt 2, told the start failure as the one before).
#[test]
fn a_start_failure_told_before_a_kill_is_not_tried_again_under_its_number() {
    for retries in [0, 1] {
        a_start_failure_told_before_a_kill(retries);
    }
}

fn a_start_failure_told_before_a_kill(retries: u32) {
    let t = repo("");
    // The integration worktree made first: the hook holds the task's.
    t.task("p/first", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let task = sh("echo ran attempt $TASK_ATTEMPT");
    t.task("p/a", &format!("retries: {retries}\n{task}"));
    kill_while_its_worktree_is_made(&t, 1);
    let events = t.read("workspace/events.jsonl");
    let mut failed: serde_json::Value =
        serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!(failed["to"], "running", "{events}");
    let error = "a branch is in the way; not retried, each attempt would fail the same way: clear the way, then run the task again";
    failed["from"] = "running".into();
    failed["to"] = "failed".into();
    failed["error"] = error.into();
    failed["ending"] = "spawn_failed".into();
    t.write("workspace/events.jsonl", &format!("{events}{failed}\n"));
    t.run(&["orchestrate"]).code(1).says(error);
    assert_eq!(
        changes(&t, "p/a"),
        ["pending -> running", "running -> failed"]
    );
    let status = t.status("p/a");
    assert_eq!(
        (&status["attempt"], &status["error"]),
        (&1.into(), &error.into())
    );
    assert!(!t.read("workspace/logs/p/a.log").contains("ran attempt"));
    // The record kept for it went once its final status was written.
    assert!(!t.exists("workspace/pids/p/a.exit"));
}

/// A try that never started (a kill while its worktree was made) is begun
/// again told of the failure before it, as the try was: its running
/// status keeps it (`previous`). It was told nothing: no error, no log.
#[test]
fn an_attempt_begun_again_after_a_try_that_never_started_is_told_the_failure_before() {
    let t = repo("");
    let cmd = "[ $TASK_ATTEMPT = 1 ] && { echo boom; exit 3; }; echo \"prev=[$TASK_PREVIOUS_ERROR] $TASK_PREVIOUS_LOG\"";
    t.task("p/a", &sh(cmd));
    t.run(&["orchestrate"]).code(1);
    // Its worktree removed, the next attempt makes a new one.
    t.run(&["clean"]).code(0);
    kill_while_its_worktree_is_made(&t, 2);
    t.run(&["orchestrate"]).code(0);
    let log = t.read("workspace/logs/p/a.log");
    let before = t.root.join("workspace/logs/p/a.attempt-1.log");
    assert!(
        log.contains(&format!("prev=[exit code 3] {}", before.display())),
        "{log}"
    );
}

/// The integration branch as an earlier run made it: marked as this
/// orchestrator's (the config's lock tests need it made before they lock).
fn integration_made_before(t: &Tree) {
    t.git(&["branch", "integration"]);
    let tip = t.git(&["rev-parse", "integration"]);
    t.git(&["config", "branch.integration.xtaskbase", &tip]);
}

/// Shell that writes `text` into `file` and commits it.
pub fn commit(file: &str, text: &str) -> String {
    sh(&format!(
        "echo {text} > {file} && git add {file} && git commit -q -m 'write {file}'"
    ))
}

/// The subjects of the integration branch's commits, newest first.
pub fn integration_log(t: &Tree) -> Vec<String> {
    t.git(&["log", "--format=%s", "integration"])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn parallel_tasks_on_disjoint_files_are_all_merged_in_a_line() {
    let t = repo("");
    for name in ["a", "b", "c"] {
        t.task(&format!("p/{name}"), &commit(&format!("{name}.txt"), name));
    }
    t.task(
        "p/use",
        &format!(
            "dependencies: [p/a, p/b, p/c]\n{}",
            sh("cat a.txt b.txt c.txt > $TASK_OUTPUT_DIR/all; git log --format=%s > $TASK_OUTPUT_DIR/log")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    // Linear: no merge commit; each task's commit on the integration branch.
    assert_eq!(
        t.git(&["log", "--merges", "--format=%H", "integration"]),
        ""
    );
    let log = integration_log(&t);
    assert_eq!(log.len(), 4, "{log:?}");
    for name in ["a", "b", "c"] {
        let id = format!("p/{name}");
        let status = t.status(&id);
        assert_eq!(status["branch"], format!("task/{id}"));
        let merged = status["merged_commit"].as_str().unwrap();
        t.git(&["merge-base", "--is-ancestor", merged, "integration"]);
        assert_eq!(
            t.git(&["log", "-1", "--format=%s", merged]),
            format!("write {name}.txt")
        );
    }
    // The dependent started from the merged work.
    assert_eq!(t.read("workspace/outputs/p/use/all"), "a\nb\nc\n");
    // The user's checkout and branch are untouched.
    assert_eq!(t.git(&["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(t.git(&["log", "--format=%s", "main"]), "first");
    assert!(!t.exists("a.txt"));
}

/// Task files a planning agent writes in its worktree never join the run
/// (it reads the root's `tasks/`): the task fails saying where they go,
/// rather than let what waits on it start without them. Written in
/// `$TASKS_DIR`, they join and run.
#[test]
fn task_files_written_in_a_worktree_fail_the_task_and_tasks_dir_is_where_they_go() {
    let t = repo("");
    // Kept out of tasks/ until a task copies it in.
    t.write(
        "gen.md.in",
        &format!("---\nworkdir: root\n{}\n---\n", sh(MARK)),
    );
    let template = t.path("gen.md.in");
    let generate = |dir: &str| {
        sh(&format!(
            "mkdir -p {dir}/q && cp {} {dir}/q/gen.md",
            template.display()
        ))
    };
    std::fs::create_dir_all(t.path("tasks/q")).unwrap();
    t.task("p/plan", &generate("tasks"));
    // One that leaves the file in its first attempt only: its retry, in
    // the same worktree, is no way around the check.
    t.task(
        "p/once",
        &sh(&format!(
            "if [ $TASK_ATTEMPT = 1 ]; then mkdir -p tasks/q && cp {} tasks/q/once.md; fi",
            template.display()
        ))
        .replace("command:", "retries: 1\ncommand:"),
    );
    t.task(
        "r/after",
        &format!("workdir: root\ndependencies: [p/plan, q]\n{}", sh(MARK)),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("it wrote task files in its worktree, where the run does not read them: tasks/q/gen.md; write them in");
    assert_eq!(t.state("r/after"), "blocked");
    assert!(!t.exists("tasks/q/gen.md"));
    assert_eq!(t.status("p/once")["attempt"], 2);
    assert!(t.status("p/once")["error"]
        .as_str()
        .unwrap()
        .contains("tasks/q/once.md"));
    std::fs::remove_file(t.path("tasks/p/once.md")).unwrap();
    t.task("p/plan", &generate("$TASKS_DIR"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!((t.launches("q/gen"), t.launches("r/after")), (1, 1));
}

/// A worktree task's retry is told where its missing output goes in a
/// path that holds in its worktree: in full, not from the root (which,
/// from the worktree, names the worktree's own `workspace/`).
/// The built-in prompt tells an agent in a worktree where it works, that
/// its commits are what counts, and the commit each dependency's work was
/// merged as.
#[test]
fn the_built_in_prompt_says_where_a_worktree_task_works() {
    let t = repo("");
    t.task("p/first", &commit("first.txt", "one"));
    t.task(
        "p/a",
        "dependencies: [p/first]\ncommand: [sh, -c, 'cp {prompt_file} $TASK_OUTPUT_DIR/prompt.txt']\noutputs: [prompt.txt]",
    );
    t.run(&["orchestrate"]).code(0);
    let prompt = t.read("workspace/outputs/p/a/prompt.txt");
    // What its dependency did is the commit it was merged as.
    let merged = t.status("p/first")["merged_commit"]
        .as_str()
        .unwrap()
        .to_owned();
    let said = format!(
        "### `p/first`\n\nIts work is merged as commit `{}`.",
        &merged[..12]
    );
    assert!(prompt.contains(&said), "{prompt}");
    let worktree = t.root.join("workspace/worktrees/p/a");
    let said = format!(
        "## Where\n\nYou work in the git worktree `{}`, on a branch of your own:\ncommit your work there.",
        worktree.display()
    );
    assert!(prompt.contains(&said), "{prompt}");
}

#[test]
fn a_worktree_task_s_retry_is_told_its_missing_output_in_full() {
    let t = repo("");
    let write_where_told = r#"if [ $TASK_ATTEMPT = 2 ]; then p=$(echo "$TASK_PREVIOUS_ERROR" | sed -n 's/.*missing \([^ ;]*\).*/\1/p'); mkdir -p "$(dirname "$p")"; echo ok > "$p"; fi"#;
    t.task(
        "p/a",
        &format!("retries: 1\noutputs: [o.txt]\n{}", sh(write_where_told)),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/outputs/p/a/o.txt"), "ok\n");
}

/// Task `p/a` (its frontmatter beginning with `extra`), whose agent makes
/// the integration worktree unusable, its `.git` saved aside, and commits
/// `a.txt` (see `counted`). Returns that `.git`, for `queue_fixed`.
fn a_task_that_breaks_the_queue(t: &Tree, extra: &str) -> std::path::PathBuf {
    let git_file = t.path("workspace/worktrees/.integration/.git");
    let g = git_file.display();
    let break_it = format!("cp {g} {g}.saved; echo 'gitdir: /nowhere' > {g}");
    let commit = "echo a > a.txt && git add a.txt && git commit -q -m 'write a.txt'";
    t.task(
        "p/a",
        &format!(
            "{extra}{}",
            counted(t, "a", &format!("{break_it}; {commit}"))
        ),
    );
    git_file
}

/// The integration worktree's `.git` put back.
fn queue_fixed(git_file: &std::path::Path) {
    std::fs::rename(format!("{}.saved", git_file.display()), git_file).unwrap();
}

/// The command of an agent that writes its `name` in the file `runs`,
/// once per run of it, then runs `script`.
fn counted(t: &Tree, name: &str, script: &str) -> String {
    sh(&format!(
        "echo {name} >> {}; {script}",
        t.path("runs").display()
    ))
}

/// A merge git cannot do (the integration worktree made unusable, as a
/// full disk would) is no failure of the task's work: the work is left in
/// the merge queue, and once that is fixed the next run merges it without
/// running its agent again. It failed the task, and its retry ran the
/// agent again, at a cost. What ends after it is left there too.
#[test]
fn a_merge_git_cannot_do_is_left_in_the_queue_and_merged_without_the_agent() {
    let t = repo("");
    let git_file = a_task_that_breaks_the_queue(&t, "");
    let b = counted(
        &t,
        "b",
        "echo b > b.txt && git add b.txt && git commit -q -m 'write b.txt'",
    );
    t.task("p/b", &format!("dependencies: [p/a]\n{b}"));
    let broken = format!(
        "until grep -q nowhere {}; do sleep 0.02; done",
        git_file.display()
    );
    let c = format!("{broken}; echo c > c.txt && git add c.txt && git commit -q -m 'write c.txt'");
    t.task("p/c", &counted(&t, "c", &c));
    let run = t.run(&["orchestrate", "-j", "2"]);
    run.code(1)
        .says("its merge could not be done")
        .says("fatal: not a git repository: /nowhere")
        .says("`cargo xtask --root")
        .says("2 left to merge")
        .says("The merge queue stopped: the integration worktree cannot be made ready: ");
    // Whichever of the two ended first met the broken worktree.
    let told = |id: &str| {
        run.stdout
            .contains(&format!("reset {id}` runs its agent again"))
    };
    assert!(told("p/a") || told("p/c"), "{}", run.stdout);
    for id in ["p/a", "p/c"] {
        assert_eq!(t.state(id), "running", "{id}");
        assert_eq!(t.status(id)["merging"], true, "{id}");
    }
    assert_eq!(t.state("p/b"), "pending");
    queue_fixed(&git_file);
    t.run(&["orchestrate"]).code(0);
    for id in ["p/a", "p/b", "p/c"] {
        assert_eq!(t.state(id), "completed", "{id}");
    }
    let mut ran: Vec<String> = t.read("runs").lines().map(str::to_owned).collect();
    ran.sort();
    assert_eq!(ran, ["a", "b", "c"], "an agent ran again");
    let mut merged = integration_log(&t);
    merged.sort();
    assert_eq!(
        merged,
        ["first", "write a.txt", "write b.txt", "write c.txt"]
    );
}

/// Work left in the merge queue can be thrown away, as the run advises:
/// `reset` takes the task (its end kept on disk for the queue is no end
/// left unseen), and the next run runs its agent again.
#[test]
fn a_task_left_in_the_merge_queue_can_be_reset() {
    let t = repo("");
    let git_file = a_task_that_breaks_the_queue(&t, "");
    t.run(&["orchestrate"])
        .code(1)
        .says("reset p/a` runs its agent again");
    assert_eq!(t.status("p/a")["merging"], true);
    t.run(&["reset", "p/a"]).code(0);
    queue_fixed(&git_file);
    // Its agent, run again (on its branch, its first try's commit kept),
    // no longer breaks the queue.
    let commit = "echo again >> a.txt && git add a.txt && git commit -q -m 'write a.txt again'";
    t.task("p/a", &counted(&t, "a", commit));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("runs"), "a\na\n");
}

/// A task that `writes` the same files as work a stopped merge queue left
/// waits for that work, as for work merging: the run ends without it. It
/// looped at full CPU, never ending (what was ready seemed startable).
#[test]
fn a_task_writing_what_work_left_in_the_queue_writes_waits_and_the_run_ends() {
    let t = repo("");
    let git_file = a_task_that_breaks_the_queue(&t, "writes: [a.txt]\n");
    let b = counted(
        &t,
        "b",
        "echo b >> a.txt && git add a.txt && git commit -q -m 'add to a.txt'",
    );
    t.task("p/b", &format!("writes: [a.txt]\n{b}"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("the run's end", || run.try_wait().unwrap().is_some());
    assert_eq!(run.wait().unwrap().code(), Some(1));
    assert_eq!(t.status("p/a")["merging"], true);
    assert_eq!(t.state("p/b"), "pending");
    queue_fixed(&git_file);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("runs"), "a\nb\n", "an agent ran again");
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a\nb");
}

#[test]
fn a_conflict_fails_the_task_keeps_its_commits_blocks_its_dependents_and_the_retry_resolves_it() {
    let t = repo("");
    t.task("p/first", &commit("shared.txt", "first"));
    // Started beside the first, from the same commit; it writes the same
    // file once the first is merged, so its own merge conflicts. Its retry
    // is told why, and rebases onto the integration branch keeping its
    // own version.
    t.task(
        "p/second",
        &sh("if [ $TASK_ATTEMPT = 1 ]; then \
                 until git log --format=%s $TASK_INTEGRATION_BRANCH | grep -q 'write shared.txt'; do sleep 0.05; done; \
                 echo second > shared.txt && git add shared.txt && git commit -q -m 'write shared.txt again'; \
             else \
                 echo \"$TASK_PREVIOUS_ERROR\" > $TASK_OUTPUT_DIR/told; \
                 git rebase -q -X theirs $TASK_INTEGRATION_BRANCH; \
             fi"),
    );
    t.task("p/other", &commit("other.txt", "other"));
    t.task(
        "q/after",
        &format!("workdir: root\ndependencies: [p/second]\n{}", sh(MARK)),
    );
    let run = t.run(&["orchestrate"]);
    run.code(1).says("merge conflict: shared.txt");
    assert_eq!(t.state("p/second"), "failed");
    assert_eq!(
        t.status("p/second")["error"],
        "merge conflict: shared.txt: rebase `task/p/second` onto `integration` to resolve it (the queue rebases: a merge commit is not kept)"
    );
    assert_eq!(t.state("q/after"), "blocked");
    assert_eq!(t.launches("q/after"), 0);
    // The other merges were done; the conflicted branch keeps its commit.
    assert_eq!(t.git(&["show", "integration:shared.txt"]), "first");
    assert!(integration_log(&t).contains(&"write other.txt".to_owned()));
    assert_eq!(
        t.git(&["log", "-1", "--format=%s", "task/p/second"]),
        "write shared.txt again"
    );
    // The next run retries it in the same worktree; it resolves the conflict.
    t.run(&["orchestrate"]).code(0);
    assert!(t
        .read("workspace/outputs/p/second/told")
        .starts_with("merge conflict: shared.txt: rebase `task/p/second` onto `integration`"));
    assert_eq!(t.git(&["show", "integration:shared.txt"]), "second");
    assert_eq!(t.launches("q/after"), 1);
    assert_eq!(
        t.git(&["log", "--merges", "--format=%H", "integration"]),
        ""
    );
}

/// A conflict in a file whose name is not ASCII, or has a space, names it
/// as it is, not as git quotes it (`"na\303\257ve notes.txt"`): the
/// retry's agent is told the file to resolve.
#[test]
fn a_merge_conflict_names_its_files_as_they_are() {
    let t = repo("");
    t.task(
        "p/first",
        &sh("echo first > 'naïve notes.txt' && git add -A && git commit -q -m 'write naïve'"),
    );
    t.task(
        "p/second",
        &format!("timeout: 20s\n{}", sh("until git log --format=%s $TASK_INTEGRATION_BRANCH | grep -q 'naïve'; do sleep 0.05; done; \
             echo second > 'naïve notes.txt' && git add -A && git commit -q -m 'write it again'")),
    );
    t.run(&["orchestrate"]).code(1);
    assert_eq!(
        t.status("p/second")["error"],
        "merge conflict: naïve notes.txt: rebase `task/p/second` onto `integration` to resolve it (the queue rebases: a merge commit is not kept)"
    );
}

#[test]
fn changes_not_committed_in_the_checkout_are_warned_of_as_unseen() {
    let t = repo("");
    t.task(
        "p/a",
        &format!(
            "outputs: [seen.txt]\n{}",
            sh("cp README.md $TASK_OUTPUT_DIR/seen.txt")
        ),
    );
    t.write("README.md", "edited, not committed\n");
    t.write("notes.txt", "new, not added\n");
    t.run(&["orchestrate"])
        .code(0)
        .says("warning: changes not committed in the checkout (")
        .says("README.md")
        .says("notes.txt")
        .says("worktree tasks start from the integration branch `integration` and do not see them");
    // What the task saw is what was committed.
    assert_eq!(t.read("workspace/outputs/p/a/seen.txt"), "the project\n");
    // A clean checkout, but for what reaches the tasks anyway (a file
    // `copy` brings, `.gitignore`): no warning.
    t.git(&["add", "."]);
    t.git(&["commit", "-q", "-m", "edits"]);
    t.config("kill_grace: 1s\nworktrees: {default: true, copy: [.env]}\n");
    t.write(".env", "TOKEN=1\n");
    t.write(".gitignore", "workspace/\nmarkers/\ntasks/\n*.log\n");
    t.task("p/b", &sh("true"));
    let quiet = t.run(&["orchestrate"]);
    quiet.code(0);
    assert!(!quiet.stdout.contains("not committed"), "{}", quiet.stdout);
    // Committed is not enough: the integration branch was made before the
    // commit, and the worktrees start from it.
    quiet.says("warning: `HEAD` has 1 commit that the integration branch `integration` lacks (it was made from `HEAD` once)");
    t.git(&[
        "-C",
        "workspace/worktrees/.integration",
        "merge",
        "-q",
        "main",
    ]);
    t.task(
        "p/c",
        &format!(
            "outputs: [seen.txt]\n{}",
            sh("cp README.md $TASK_OUTPUT_DIR/seen.txt")
        ),
    );
    let merged = t.run(&["orchestrate"]);
    merged.code(0);
    assert!(!merged.stdout.contains("warning"), "{}", merged.stdout);
    assert_eq!(
        t.read("workspace/outputs/p/c/seen.txt"),
        "edited, not committed\n"
    );
    // With every worktree task completed, nothing will not see the
    // changes: no warning.
    t.write("README.md", "edited again\n");
    t.task("q/root", &format!("workdir: root\n{}", sh("true")));
    let none = t.run(&["orchestrate"]);
    none.code(0);
    assert!(!none.stdout.contains("not committed"), "{}", none.stdout);
}

/// The warning of commits the integration branch lacks gives the command
/// that merges them, naming the branch checked out, ready to paste (it
/// said `git merge <your branch>`, in a folder named apart): run as
/// given, the next task sees the commit, and the warning is gone.
#[test]
fn the_warning_of_commits_the_integration_branch_lacks_gives_the_command_that_merges_them() {
    let t = repo("");
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    t.write("README.md", "committed after the integration branch\n");
    t.git(&["commit", "-q", "-am", "later"]);
    // Held for an approval, it waits while the person merges.
    let seen = format!(
        "approve: before\noutputs: [seen.txt]\n{}",
        sh("cp README.md $TASK_OUTPUT_DIR/seen.txt")
    );
    t.task("p/b", &seen);
    let warned = t.run(&["orchestrate"]);
    let integration = t.path("workspace/worktrees/.integration");
    let command = format!("git -C {} merge main", integration.display());
    warned.code(4).says(&format!(
        "merge it into it to give it to the agents: `{command}`"
    ));
    runs_as_given(&t, &command);
    t.run(&["approve", "p/b"]).code(0);
    t.run(&["orchestrate"]).code(0).never_says("warning");
    assert_eq!(
        t.read("workspace/outputs/p/b/seen.txt"),
        "committed after the integration branch\n"
    );
}

/// Runs `command`, as a person pasting it would, in the repository.
fn runs_as_given(t: &Tree, command: &str) {
    let ran = std::process::Command::new("sh")
        .args(["-c", command])
        .current_dir(t.path(""))
        .output()
        .unwrap();
    assert!(ran.status.success(), "{ran:?}");
}

/// A worktree with many changes is kept naming the first ten and how many
/// more (it listed every one on one line: 1,250 paths after a removal cut
/// short by hand).
#[test]
fn clean_names_the_first_ten_changes_of_a_worktree_it_keeps() {
    let t = repo("");
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    for i in 1..=12 {
        t.write(&format!("workspace/worktrees/p/a/f{i:02}.txt"), "mine\n");
    }
    t.run(&["clean"]).code(0).says(
        "uncommitted changes in workspace/worktrees/p/a: f01.txt, f02.txt, f03.txt, f04.txt, f05.txt, f06.txt, f07.txt, f08.txt, f09.txt, f10.txt and 2 more; commit or remove them",
    );
}

/// A tag named as the branch to merge (`main`): git would take the tag
/// first (`refname 'main' is ambiguous`) and merge an old commit; the
/// command names the branch in full, and run as given merges the work.
#[test]
fn the_command_that_merges_a_branch_a_tag_shares_the_name_of_names_the_branch() {
    let t = repo("");
    t.git(&["tag", "main"]);
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    t.write("README.md", "committed after the integration branch\n");
    t.git(&["commit", "-q", "-am", "later"]);
    t.task("p/b", &sh("true"));
    let warned = t.run(&["orchestrate"]);
    let integration = t.path("workspace/worktrees/.integration");
    let command = format!("git -C {} merge refs/heads/main", integration.display());
    warned.code(0).says(&format!("`{command}`"));
    runs_as_given(&t, &command);
    t.task("p/c", &sh("true"));
    t.run(&["orchestrate"]).code(0).never_says("warning");
}

#[test]
fn an_attempt_refused_before_it_starts_charges_nothing() {
    let t = repo(&crate::agents::agent("claude", "claude-json"));
    t.task("p/a", "retries: 0");
    // Its first attempt reports a cost, and fails.
    crate::agents::scenario(&t, "p/a", &["success.json 1"]);
    t.git(&["add", "-f", "scenarios"]);
    t.git(&["commit", "-q", "-m", "scenarios"]);
    t.run(&["orchestrate"]).code(1);
    let charged = || t.read("workspace/ledger.jsonl").lines().count();
    assert_eq!(charged(), 1);
    // Its branch no longer marked as this orchestrator's: the next attempt
    // is refused before it starts, and printed nothing, so cost nothing.
    t.git(&["config", "--unset", "branch.task/p/a.xtaskbase"]);
    t.run(&["orchestrate"])
        .code(1)
        .says("exists and was not made by cargo xtask");
    assert_eq!(charged(), 1, "{}", t.read("workspace/ledger.jsonl"));
    assert!(t.status("p/a")["agent"].is_null(), "{}", t.status("p/a"));
}

#[test]
fn what_an_agent_leaves_uncommitted_is_committed_or_refused() {
    let t = repo("");
    t.task(
        "p/sloppy",
        &sh("echo draft > notes.txt; mkdir -p d && echo x > d/y"),
    );
    t.run(&["orchestrate"]).code(0);
    let merged = t.status("p/sloppy")["merged_commit"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        t.git(&["log", "-1", "--format=%s", &merged]),
        "p/sloppy: uncommitted changes left by the agent"
    );
    assert_eq!(t.git(&["show", "integration:notes.txt"]), "draft");

    let strict = repo("worktrees: {default: true, commit_leftovers: false}\n");
    strict.config("kill_grace: 1s\nworktrees: {default: true, commit_leftovers: false}\n");
    strict.task("p/sloppy", &sh("echo draft > notes.txt"));
    strict.run(&["orchestrate"]).code(1).says(
        "uncommitted changes left by the agent (worktrees.commit_leftovers is false): notes.txt",
    );
}

/// A git repository an agent made inside its worktree (a `git clone`, a
/// scaffolder's `git init`) and committed is never merged: git would keep
/// its commit id alone, not its files. (Left uncommitted:
/// `a_repository_or_worktree_an_agent_left_uncommitted_is_not_committed`.)
#[test]
fn a_repository_an_agent_made_in_its_worktree_is_never_merged() {
    let t = repo("");
    t.task(
        "p/committed",
        &sh(&format!(
            "{NESTED} && git add vendor && git commit -qm 'add vendor'"
        )),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("its commits add vendor, a git repository of its own")
        .says("Nothing was merged");
    assert_eq!(integration_log(&t), ["first"]);
    // A submodule `.gitmodules` names is merged, whatever its name.
    let lib = repo("");
    let t = repo("");
    t.task(
        "p/sub",
        &sh(&format!(
            "git -c protocol.file.allow=always submodule add -q {} 'vendor/my lib' && git commit -qm sub",
            lib.root.display()
        )),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(integration_log(&t), ["sub", "first"]);
}

/// What the agent left uncommitted is committed without the repository's
/// hooks (as README says: a formatter or commit-msg hook would fail every
/// attempt); the agent's own commits run them.
#[test]
fn leftovers_are_committed_without_the_repository_s_hooks() {
    let t = repo("");
    t.write_executable(
        ".git/hooks/pre-commit",
        "#!/bin/sh\necho 'hook says no' >&2\nexit 1\n",
    );
    t.task("p/sloppy", &sh("echo draft > notes.txt"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "integration:notes.txt"]), "draft");
}

/// A git repository an agent makes in its worktree, with a commit.
const NESTED: &str = "mkdir vendor && cd vendor && git init -q . && echo lib > lib.txt && git add lib.txt && git -c user.name=a -c user.email=a@b commit -qm lib && cd ..";

/// A git repository or worktree of its own that an agent left uncommitted
/// in its worktree is not committed by the leftovers commit (it was, then
/// the task failed blaming the agent's commits, with advice that did not
/// fit a worktree): the task fails before, nothing committed or merged,
/// with the way out that fits each, staged by the agent or not.
#[test]
fn a_repository_or_worktree_an_agent_left_uncommitted_is_not_committed() {
    let worktree = "git worktree add -q .trees/sub -b helper-a";
    for (id, work, says) in [
        ("p/repo", NESTED.to_owned(), "vendor is a git repository of its own (a `git clone` or `git init`): remove its `.git` to commit its files, add it to .gitignore"),
        ("p/staged", format!("{NESTED} && git add vendor 2>/dev/null"), "vendor is a git repository of its own"),
        ("p/tree", worktree.to_owned(), "/p/tree worktree remove .trees/sub`"),
    ] {
        let t = repo("");
        t.task(id, &sh(&format!("{work} && echo a > a.txt")));
        t.run(&["orchestrate"])
            .code(1)
            .says("the agent left a git repository or worktree of its own in its worktree")
            .says("nothing was committed or merged")
            .says(says);
        assert_eq!(integration_log(&t), ["first"], "{id}");
        let branch = format!("task/{id}");
        let subjects = t.git(&["log", "--format=%s", &branch]);
        assert_eq!(subjects, "first", "{id}");
    }
}

/// The orchestrator's own git commands (making worktrees, the merge
/// queue's rebase and fast-forward) run none of the repository's hooks,
/// in `.git/hooks` or in `core.hooksPath`: a post-merge hook writing a
/// file in the integration worktree stalled the queue (changes not
/// cargo xtask's), a post-checkout one's file was committed as the
/// agent's. The agents' own commits run them.
#[test]
fn the_orchestrator_s_own_git_runs_none_of_the_repository_s_hooks() {
    for hooks in [".git/hooks", "markers/hooks"] {
        let t = repo("");
        if hooks == "markers/hooks" {
            let path = t.path(hooks).display().to_string();
            t.git(&["config", "core.hooksPath", &path]);
        }
        for name in ["post-checkout", "post-merge", "post-rewrite"] {
            let script = format!("#!/bin/sh\ndate > .last-{name}\n");
            t.write_executable(&format!("{hooks}/{name}"), &script);
        }
        std::fs::create_dir_all(t.path("markers")).unwrap();
        let agent_s = t.path("markers/committed");
        let script = format!("#!/bin/sh\ntouch {}\n", agent_s.display());
        t.write_executable(&format!("{hooks}/post-commit"), &script);
        t.task("p/a", &commit("a.txt", "a"));
        t.task("p/b", &commit("b.txt", "b"));
        // A stalled queue waited for good.
        let mut run = t.start(&["orchestrate"]);
        wait_for("the run to end", || run.try_wait().unwrap().is_some());
        assert_eq!(run.wait().unwrap().code(), Some(0), "{hooks}");
        let files = t.git(&["ls-tree", "-r", "--name-only", "integration"]);
        assert!(
            files.contains("a.txt") && files.contains("b.txt"),
            "{files}"
        );
        assert!(!files.contains(".last-"), "{hooks}: {files}");
        let integration = t.path("workspace/worktrees/.integration");
        let status = git_in(&integration, &["status", "--porcelain", "--ignored"]);
        assert_eq!(status, "", "{hooks}");
        assert!(agent_s.exists(), "{hooks}: the agent's commit ran no hook");
    }
}

/// Leftovers git cannot commit (a signing key that fails) fail the task,
/// naming them, and nothing is merged.
#[test]
fn leftovers_git_cannot_commit_fail_the_task_naming_them() {
    let t = repo("");
    t.git(&["config", "commit.gpgsign", "true"]);
    t.git(&["config", "gpg.program", "false"]);
    t.task("p/sloppy", &sh("echo draft > notes.txt"));
    t.run(&["orchestrate"])
        .code(1)
        .says("cannot commit what the agent left uncommitted (notes.txt): ")
        .says(": nothing was merged");
    assert_eq!(integration_log(&t), ["first"]);
}

/// A cherry-pick or a merge the agent left stopped on a conflict is not
/// committed as leftovers: its conflict markers are never merged.
#[test]
fn what_an_agent_leaves_in_conflict_is_never_merged() {
    let t = repo("");
    // Its own branch `side` changes the file as its task branch does.
    let conflict = |file: &str, side: &str, then: &str| {
        sh(&format!(
            "git checkout -q -b {side} && echo p > {file} && git add {file} && git commit -qm p \
             && git checkout -q \"$TASK_BRANCH\" && echo q > {file} && git add {file} && git commit -qm q \
             && ({then} {side} || true)"
        ))
    };
    t.task(
        "p/picks",
        &conflict("picked.txt", "side1", "git cherry-pick"),
    );
    t.task("p/merges", &conflict("merged.txt", "side2", "git merge -q"));
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says("the agent left a cherry-pick unfinished, with conflicts in picked.txt, in its worktree")
        .says("cherry-pick --abort")
        .says("the agent left a merge unfinished, with conflicts in merged.txt, in its worktree")
        .says("merge --abort");
    for file in ["picked.txt", "merged.txt"] {
        let on_integration = t.git(&["ls-tree", "--name-only", "integration", file]);
        assert_eq!(on_integration, "", "{file} was merged:\n{}", run.stdout);
    }
}

#[test]
fn tasks_whose_writes_overlap_never_run_together() {
    let t = repo("");
    // Root tasks (no git needed for the rule), each timed.
    let timed = |writes: &str| format!("workdir: root\nwrites: [{writes}]\n{}", sh(TIMED));
    // First of the two by priority, not by how long each took (their
    // durations, close, decide the order otherwise).
    t.task("p/a", &format!("priority: 1\n{}", timed("\"src/*\"")));
    t.task("p/b", &timed("src/lib.rs"));
    t.task("p/c", &timed("\"docs/*\""));
    t.run(&["orchestrate"]).code(0);
    let overlapping = ["p/a".to_owned(), "p/b".to_owned()];
    assert_eq!(max_overlap(&t, &overlapping), 1);
    assert_eq!(max_overlap(&t, &["p/a".to_owned(), "p/c".to_owned()]), 2);
    t.run(&["reset", "p"]).code(0);
    t.run(&["next"])
        .code(0)
        .says("p/b: ready, waits for p/a to end: their `writes` may overlap");
}

/// A task whose `writes` overlap another's waits for the other's work to
/// be merged, not only for its process to end: started while that work
/// waits in the queue, it would start from a tip without it, and conflict.
#[test]
fn a_task_whose_writes_overlap_waits_for_the_other_s_merge() {
    let t = repo("");
    t.write("src/a.txt", "l1\nl2\n");
    t.git(&["add", "src/a.txt"]);
    t.git(&["commit", "-q", "-m", "src"]);
    let edit = |line: &str| {
        sh(&format!(
            "sed -i 1s/.*/{line}/ src/a.txt && git commit -q -am 'line 1 {line}'"
        ))
    };
    t.task(
        "p/x",
        &format!(
            "priority: 1
writes: [\"src/*\"]\n{}",
            edit("X")
        ),
    );
    t.task("p/y", &format!("writes: [src/a.txt]\n{}", edit("Y")));
    t.run(&["orchestrate"]).code(0);
    let order: Vec<String> = events(&t)
        .iter()
        .filter(|e| {
            e["to"] == "completed" && e["task"] == "p/x"
                || e["to"] == "running" && e["task"] == "p/y"
        })
        .map(|e| {
            format!(
                "{} {}",
                e["task"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(order, ["p/x completed", "p/y running"]);
    let merged_x = t.status("p/x")["merged_commit"]
        .as_str()
        .unwrap()
        .to_owned();
    let base_y = t.status("p/y")["base_commit"].as_str().unwrap().to_owned();
    assert_eq!(base_y, merged_x);
    assert_eq!(t.git(&["show", "integration:src/a.txt"]), "Y\nl2");
}

/// Tasks named in another alphabet get branches of their own names (git
/// takes them): two of the same length do not clash as `--`.
#[test]
fn tasks_named_in_another_alphabet_get_branches_of_their_own() {
    let t = repo("");
    t.task("p/解析", &commit("a.txt", "a"));
    t.task("p/構文", &commit("b.txt", "b"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.status("p/解析")["branch"], "task/p/解析");
    assert_eq!(t.status("p/構文")["branch"], "task/p/構文");
}

/// Two worktree tasks whose branches git cannot both have are invalid
/// definitions, found before anything runs: the same name (`a b` and
/// `a-b`), or one inside the other (`x` and `x/y`, whose worktrees would
/// nest too).
#[test]
fn branches_that_clash_are_invalid_before_anything_runs() {
    let t = repo("");
    for id in ["p/a b", "p/a-b", "p/x", "p/x/y"] {
        t.task(id, &sh(MARK));
    }
    for command in [&["validate"][..], &["orchestrate"]] {
        t.run(command)
            .code(2)
            .says("its branch would be `task/p/a-b`, as `p/a b`'s: rename one of the two files")
            .says("its branch would be `task/p/x/y`, inside `p/x`'s `task/p/x`: git cannot have both, and their worktrees would nest; rename one of the two");
    }
    assert!(!t.exists("markers"));
}

#[test]
fn a_branch_or_folder_it_did_not_make_is_refused_before_launch() {
    let t = repo("");
    t.task("p/mine", &sh(MARK));
    // Its retries would each meet the branch at once: not spent.
    t.task("p/theirs", &format!("retries: 3\n{}", sh(MARK)));
    t.task("p/folder", &sh(MARK));
    // Someone's own branch, and a folder in the way.
    t.git(&["branch", "task/p/theirs"]);
    t.write("workspace/worktrees/p/folder/notes", "mine\n");
    // `validate` says so first.
    let validated = t.run(&["validate"]);
    validated
        .code(1)
        .says("FAILS  p/theirs: branch `task/p/theirs` exists and was not made by cargo xtask")
        .says("FAILS  p/folder: ")
        .says("2 tasks would fail as they start");
    assert!(
        !validated.stdout.contains("p/mine:"),
        "{}",
        validated.stdout
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("branch `task/p/theirs` exists and was not made by cargo xtask")
        .says("exists and is not a worktree made by cargo xtask");
    // Nothing ran in the main checkout, and nothing of theirs changed.
    assert!(!t.exists("markers"), "an agent ran in the main checkout");
    assert_eq!(t.read("workspace/worktrees/p/folder/notes"), "mine\n");
    assert_eq!(
        t.git(&["rev-parse", "task/p/theirs"]),
        t.git(&["rev-parse", "main"])
    );
    assert_eq!(t.state("p/mine"), "completed");
    let theirs = t.status("p/theirs");
    assert_eq!(theirs["attempt"], 1, "{theirs}");
    assert!(
        theirs["error"]
            .as_str()
            .unwrap()
            .ends_with("; not retried, each attempt would fail the same way: clear the way, then run the task again"),
        "{theirs}"
    );
}

#[test]
fn a_failing_setup_starts_no_agent_and_a_good_one_runs_once() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees:\n  default: true\n  setup: \"echo setting up; exit 3\"\n");
    t.task("p/a", &sh("echo agent > $TASK_OUTPUT_DIR/ran"));
    t.run(&["orchestrate"])
        .code(1)
        .says("worktree setup failed (exit 3)");
    assert!(!t.exists("workspace/outputs/p/a/ran"), "the agent started");
    assert!(t.read("workspace/logs/p/a.log").contains("setting up"));

    let t = repo("");
    t.write(".env", "SECRET=1\n");
    std::fs::create_dir_all(t.path("node_modules/lib")).unwrap();
    t.config(
        "kill_grace: 1s\nworktrees:\n  default: true\n  setup: \"echo setup >> $WORKSPACE/setups; test -f .env\"\n  copy: [.env, missing.txt]\n  link: [node_modules]\n",
    );
    // A first attempt that fails after the setup: its retry runs no setup.
    t.task(
        "p/a",
        &format!(
            "retries: 1\n{}",
            sh("test -L node_modules && test -d node_modules/lib && [ $TASK_ATTEMPT = 2 ]")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/setups"), "setup\n");
}

/// A worktree's setup is held to `setup_timeout`, not to the task's
/// timeout and idle timeout: those count from the setup's end, and the
/// agent has them whole. A question in the setup's output still stops it,
/// and the error says it was the setup's.
#[test]
fn a_quiet_setup_is_held_to_its_own_timeout_not_the_task_s() {
    let t = repo("");
    t.config(
        "kill_grace: 1s\nworktrees:\n  default: true\n  setup: \"echo installing; sleep 3; echo installed\"\n  setup_timeout: 1m\n",
    );
    let agent = sh("echo agent > $TASK_OUTPUT_DIR/ran");
    t.task("p/idle", &format!("idle_timeout: 2s\n{agent}"));
    t.task("p/late", &format!("timeout: 2s\n{agent}"));
    // After its setup, the agent's own timeout still holds, and its idle
    // timeout counts from its start: it comes first.
    t.task("p/hangs", &format!("timeout: 2s\n{}", sh("sleep 60")));
    let quiet = sh("echo started; sleep 60");
    t.task(
        "p/quiet",
        &format!("timeout: 4s\nidle_timeout: 2s\n{quiet}"),
    );
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/idle"), "completed");
    assert_eq!(t.state("p/late"), "completed");
    let hangs = t.status("p/hangs");
    assert_eq!(
        hangs["error"], "Timeout after 2s (its `timeout`)",
        "{hangs}"
    );
    assert_eq!(
        t.status("p/quiet")["error"],
        "Idle timeout: its log did not grow for 2s (its `idle_timeout`)"
    );
    assert!(t.read("workspace/logs/p/hangs.log").contains("installed"));

    let t = repo("");
    t.config(
        "kill_grace: 1s\nprompt_idle: 1s\nworktrees:\n  default: true\n  setup: \"printf 'Proceed? (y/n) '; sleep 60\"\n",
    );
    t.task("p/a", &sh("echo agent > $TASK_OUTPUT_DIR/ran"));
    t.run(&["orchestrate"])
        .code(1)
        .says("worktree setup: waiting for input: Proceed? (y/n)");
    assert!(!t.exists("workspace/outputs/p/a/ran"), "the agent started");
}

/// A stop (Ctrl-C) while a worktree's setup runs, before the agent
/// started, spent nothing: under a budget, no warning says that what the
/// agent spent is not counted (one did, as for an agent stopped at work).
#[test]
fn a_stop_in_a_worktree_s_setup_warns_of_no_cost_uncounted() {
    let t = repo("");
    agent_under_a_budget(
        &t,
        "  setup: \"touch $WORKSPACE/setup-started; sleep 60\"\n",
    );
    let said = ctrl_c_before_the_agent(&t, || t.exists("workspace/setup-started"));
    assert!(!said.contains("warning: budget.usd"), "{said}");
}

/// The same while its worktree is made (a hook holds it): the agent never
/// started.
#[test]
fn a_stop_as_a_worktree_is_made_warns_of_no_cost_uncounted() {
    let t = repo("");
    agent_under_a_budget(&t, "");
    post_checkout_that_hangs(&t, "*/p%2Fa|*/p/a|*/p");
    let said = ctrl_c_before_the_agent(&t, || pid_written(&t, "hook.pid"));
    t.write("go", "");
    assert!(!said.contains("warning: budget.usd"), "{said}");
}

/// An agent task `p/a` in a worktree, under a budget; `worktrees` has
/// `extra` too.
fn agent_under_a_budget(t: &Tree, extra: &str) {
    t.config(&format!(
        "kill_grace: 1s\nagent:\n  command: [sh, -c, \"echo the agent ran\"]\n  result: claude-json\nbudget: {{usd: 5}}\nworktrees:\n  default: true\n{extra}"
    ));
    t.task("p/a", "");
}

/// Runs the tree and stops the run (Ctrl-C) once `before` says `p/a` has
/// not reached its agent yet: what the run said. The attempt is
/// interrupted.
fn ctrl_c_before_the_agent(t: &Tree, before: impl FnMut() -> bool) -> String {
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let out = "markers/out";
    let file = std::fs::File::create(t.path(out)).unwrap();
    let mut child = (t.command(&["orchestrate"]))
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    wait_for("the attempt to start", before);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130), "{}", t.read(out));
    let said = t.read(out);
    assert_eq!(t.status("p/a")["ending"], "interrupted", "{said}");
    said
}

#[test]
fn each_task_knows_its_worktree_branch_and_port() {
    let t = repo("");
    let show = sh("echo \"$PWD $TASK_WORKTREE $TASK_BRANCH $TASK_BASE_COMMIT $TASK_INTEGRATION_BRANCH $TASK_PORT\" > $TASK_OUTPUT_DIR/env");
    t.task("p/a", &format!("{show}\nwrites: [a]"));
    t.task("p/b", &format!("{show}\nwrites: [b]"));
    // `{worktree}` in a command: where the task runs.
    let placeholder = "command: [\"sh\", \"-c\", \"echo {worktree} > $TASK_OUTPUT_DIR/env\"]";
    t.task("p/c", &format!("workdir: root\n{placeholder}"));
    t.task("p/d", &format!("writes: [d]\n{placeholder}"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        t.read("workspace/outputs/p/c/env").trim(),
        t.root.to_str().unwrap()
    );
    assert_eq!(
        t.read("workspace/outputs/p/d/env").trim(),
        t.path("workspace/worktrees/p/d").to_str().unwrap()
    );
    let first = t.git(&["rev-parse", "main"]);
    let mut ports = Vec::new();
    for id in ["p/a", "p/b"] {
        let env = t.read(&format!("workspace/outputs/{id}/env"));
        let parts: Vec<&str> = env.split_whitespace().collect();
        let dir = t
            .path(&format!("workspace/worktrees/{id}"))
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            parts[..5],
            [
                dir.as_str(),
                &dir,
                &format!("task/{id}"),
                &first,
                "integration"
            ],
            "{env}"
        );
        ports.push(parts[5].to_owned());
    }
    ports.sort();
    assert_eq!(ports, ["4000", "4010"]);
}

/// Ports past 65535 for the agents a run may have at once would give
/// parallel agents the same `TASK_PORT`: an error at `port_base`'s line,
/// judged by `-j` when it is given.
#[test]
fn ports_past_the_last_for_the_agents_at_once_are_an_error() {
    let t = repo("");
    t.config("kill_grace: 1s\nmax_concurrent_agents: 3\nworktrees:\n  default: true\n  port_base: 65530\n");
    for id in ["p/a", "p/b", "p/c"] {
        t.task(id, &sh("echo ran > $TASK_OUTPUT_DIR/ran"));
    }
    t.run(&["validate"]).code(2).says(
        "tasks/orchestrator.yaml:5: worktrees.port_base (65530) + port_stride (10) × 2 is 65550 for 3 tasks at once (max_concurrent_agents): past the last port, 65535, so parallel agents would get the same TASK_PORT; lower port_base or port_stride",
    );
    t.run(&["orchestrate", "-j", "2"])
        .code(2)
        .says("is 65540 for 2 tasks at once (-j 2)");
    assert!(!t.exists("workspace/outputs/p/a/ran"), "a task started");
    // One at a time, each gets the base.
    t.run(&["orchestrate", "-j", "1"]).code(0);
    assert!(t.exists("workspace/outputs/p/c/ran"));
}

/// A run that begins with no worktree task (its one task runs in the
/// root) opens the repository's worktrees and merge queue once a task it
/// adds during the run needs them: that task runs in its worktree and its
/// work is merged. Every such task failed, "no git repository for
/// worktree tasks".
#[test]
fn a_worktree_task_added_to_a_run_that_began_with_none_runs_and_is_merged() {
    let t = repo("");
    t.write(
        "generated/w.md",
        &format!("---\n{}\n---\n", commit("added.txt", "added")),
    );
    let generate = format!(
        "mkdir -p \"$TASKS_DIR/q\" && cp {} \"$TASKS_DIR/q/.new\" && mv \"$TASKS_DIR/q/.new\" \"$TASKS_DIR/q/w.md\"",
        t.path("generated/w.md").display()
    );
    t.task("p/plan", &format!("workdir: root\n{}", sh(&generate)));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("q/w"), "completed");
    assert_eq!(t.git(&["show", "integration:added.txt"]), "added");
    assert!(!t.exists("added.txt"), "it ran in the root");
}

/// A run that starts with one task, which writes three worktree tasks that
/// run at once: the one whose `TASK_PORT` would be past 65535 fails, saying
/// why, and no two of them share a port. The start's check counted the one
/// task it saw; the third was given 65535, the second's port, saturated.
#[test]
fn a_task_added_during_the_run_whose_port_is_past_the_last_fails() {
    let t = repo("");
    // Memory for the three at once.
    t.config("kill_grace: 1s\nmax_memory_gb: 0.25\nworktrees: {default: true, port_base: 65530, port_stride: 5}\n");
    let ids = ["q/w1", "q/w2", "q/w3"];
    let wait = format!(
        "echo $TASK_PORT > {}/${{TASK_ID##*/}}; while [ ! -f {} ]; do sleep 0.02; done",
        t.path("ports").display(),
        t.path("go").display()
    );
    for id in ids {
        t.write(
            &format!("generated/{id}.md"),
            &format!("---\n{}\n---\n", sh(&wait)),
        );
    }
    std::fs::create_dir_all(t.path("ports")).unwrap();
    let generate = format!(
        "mkdir -p \"$TASKS_DIR/q\" && for f in {}/*.md; do cp $f \"$TASKS_DIR/q/.new\" && mv \"$TASKS_DIR/q/.new\" \"$TASKS_DIR/q/${{f##*/}}\"; done",
        t.path("generated/q").display()
    );
    t.task("p/gen", &sh(&generate));
    let mut run = t.start(&["orchestrate"]);
    let ports = || std::fs::read_dir(t.path("ports")).unwrap().count();
    let failed = || {
        ids.iter()
            .any(|id| t.exists(&format!("workspace/status/{id}.json")) && t.state(id) == "failed")
    };
    wait_for("three ports, or a task failed", || ports() == 3 || failed());
    t.write("go", "");
    run.wait().unwrap();
    let mut given: Vec<String> = (std::fs::read_dir(t.path("ports")).unwrap())
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    given.sort();
    assert_eq!(given, ["65530\n", "65535\n"], "ports given");
    let failed: Vec<&str> = ids
        .into_iter()
        .filter(|id| t.state(id) == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let error = t.status(failed[0])["error"].as_str().unwrap().to_owned();
    assert!(error.contains("past the last port, 65535"), "{error}");
}

/// An agent that removes its worktree's `.git` leaves a folder where git
/// would find the user's checkout above it: the merge refuses, and the
/// checkout's branch and lock files are untouched.
#[test]
fn a_worktree_whose_git_link_the_agent_removed_is_never_merged_from_the_checkout() {
    let t = repo("");
    std::fs::write(t.path(".git/user-held.lock"), "").unwrap();
    t.task(
        "p/w",
        &sh("echo work > work.txt && git add work.txt && git commit -q -m 'w work' && rm -f .git && git -C \"$WORKSPACE/..\" worktree prune"),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("is no longer a worktree of this repository");
    assert_eq!(t.git(&["symbolic-ref", "--short", "HEAD"]), "main");
    assert!(t.exists(".git/user-held.lock"));
    assert_eq!(t.state("p/w"), "failed");
    assert_eq!(t.git(&["log", "-1", "--format=%s", "task/p/w"]), "w work");
    // `clean` keeps the branch (unmerged) and touches no checkout but ours.
    t.run(&["clean"]).code(0).says("kept     task/p/w");
    assert_eq!(t.git(&["symbolic-ref", "--short", "HEAD"]), "main");
    // Its retry names the folder for what it is (it was said to be a
    // folder cargo xtask did not make), and where the work is.
    t.run(&["reset", "p/w"]).code(0);
    t.run(&["orchestrate"]).code(1).says(
        "workspace/worktrees/p/w is no longer a worktree of this repository (its `.git` was removed): move it away; what was committed on `task/p/w` stays there",
    );
}

/// An orchestrator killed mid-run leaves its task running (its supervisor
/// goes on) and the lock free: `clean` keeps that task's worktree, which
/// has no commit of its own yet and would look merged.
#[test]
fn clean_keeps_the_worktree_of_a_task_still_running_after_its_orchestrator_died() {
    let t = repo("");
    let go = t.path("go");
    t.task(
        "p/slow",
        &sh(&format!(
            "touch {}; until [ -e {} ]; do sleep 0.01; done; echo done > done.txt; git add done.txt; git commit -q -m done",
            t.path("started").display(),
            go.display()
        )),
    );
    let mut first = t.start(&["orchestrate"]);
    // Started by the supervisor, which outlives the orchestrator (killed
    // before its request went out, the task would never start).
    wait_for("the task's start", || t.exists("started"));
    first.kill().unwrap();
    first.wait().unwrap();
    t.run(&["clean"])
        .code(0)
        .says("kept     task/p/slow: its task is recorded as running");
    assert!(t.exists("workspace/worktrees/p/slow/.git"));
    std::fs::write(&go, "").unwrap();
    t.run(&["orchestrate"]).code(0).says("Summary: 1 completed");
    assert_eq!(integration_log(&t)[0], "done");
}

/// A folder of ours that is no longer a worktree (its agent removed its
/// `.git`) is kept by `clean`, which runs no git in it (git would find the
/// user's checkout above it).
#[test]
fn clean_keeps_a_task_folder_that_is_no_longer_a_worktree() {
    let t = repo("");
    t.task("p/w", &sh("rm -f .git"));
    t.run(&["orchestrate"])
        .code(1)
        .says("is no longer a worktree of this repository");
    t.run(&["clean"])
        .code(0)
        .says("kept     task/p/w: workspace/worktrees/p/w is no longer a worktree");
    assert!(t.exists("workspace/worktrees/p/w"));
    assert_eq!(t.git(&["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(t.git(&["status", "--porcelain"]), "");
}

/// Ctrl-C while work waits in the merge queue: the run says the merges
/// end first (it said "nothing runs", then waited for them), and they do.
#[test]
fn ctrl_c_during_a_merge_says_the_queue_ends_first() {
    let t = repo("");
    // A slow fast-forward (its post-merge hook) holds the merge, once the
    // task has run.
    let root = t.root.display();
    t.hook_the_orchestrator_runs(
        "post-merge",
        &format!("#!/bin/sh\n[ -e {root}/ran ] || exit 0\nwhile [ ! -e {root}/go ]; do sleep 0.02; done\n"),
    );
    let work = format!("touch {root}/ran && echo a > a.txt && git add a.txt && git commit -q -m a");
    t.task("p/a", &sh(&work));
    let out = "markers/out";
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let file = std::fs::File::create(t.path(out)).unwrap();
    let child = t.command(&["orchestrate"]).stdout(file).spawn().unwrap();
    wait_for("the merge", || {
        t.exists("workspace/events.jsonl")
            && changes(&t, "p/a").iter().any(|c| c.ends_with("merging"))
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    wait_for("the stop to be said", || {
        t.read(out).contains("SIGINT received")
    });
    t.write("go", "");
    let code = child.wait_with_output().unwrap().status.code();
    let said = t.read(out);
    assert!(
        said.contains("SIGINT received: nothing new starts; the 1 merge in the queue ends first"),
        "{said}"
    );
    assert_eq!(code, Some(130), "{said}");
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

/// The orchestrator's own lines in a task's log (naming its branch) are
/// no rate limit: a task whose id holds a limit's pattern fails as any
/// other.
#[test]
fn a_task_whose_id_names_a_limit_s_pattern_is_not_rate_limited() {
    let t = repo("pools: {api: 1}\nrate_limits: {backoff: 1s, give_up_after: 5s}\n");
    t.task(
        "api/insufficient_quota",
        &format!("pool: api\n{}", sh("echo 'assertion failed'; exit 1")),
    );
    let run = t.run(&["orchestrate"]);
    run.code(1).says("exit code 1");
    assert!(!run.stdout.contains("rate limited"), "{}", run.stdout);
}

/// A task whose work waits in the merge queue is said merging in the live
/// view's heading, as `progress` says it.
#[test]
fn the_live_view_says_how_many_of_the_running_merge() {
    let t = repo("");
    // A slow fast-forward (its post-merge hook) holds the merge a while,
    // once the task has run: frames are drawn every 500 ms.
    let root = t.root.display();
    t.hook_the_orchestrator_runs(
        "post-merge",
        &format!("#!/bin/sh\n[ -e {root}/ran ] || exit 0\nsleep 1.2\n"),
    );
    let work = format!("touch {root}/ran && echo a > a.txt && git add a.txt && git commit -q -m a");
    t.task("p/a", &sh(&work));
    let drawn = on_a_terminal(&t, "orchestrate", false);
    assert!(drawn.contains("Summary: 1 completed"), "{drawn}");
    assert!(
        drawn.contains("0/1 completed (0%), 1 running (1 merging)"),
        "{drawn}"
    );
    // Its line names the agent slot it ran in.
    let line = format!("  {:<8} {:<44} {:>8}", "agent-1", "p/a", "merging");
    assert!(drawn.contains(&line), "{drawn}");
    // It printed nothing: its log, whose last line the live view shows,
    // says it started, not only that its worktree was being prepared.
    let log = t.read("workspace/logs/p/a.log");
    let ready = log.find("xtask: its worktree is ready");
    let preparing = log.find("xtask: preparing its worktree, then it starts");
    assert!(ready.is_some() && ready > preparing, "{log}");
}

/// A hook that never ends holds a merge: the second Ctrl-C stops it (git
/// and the hook, its process group), leaves the work in the merge queue
/// and ends the run; the next run merges it without running the agent
/// again, and tells its move to `merging` once.
#[test]
fn a_second_ctrl_c_cuts_a_merge_a_hook_holds_and_leaves_it_to_the_next_run() {
    let t = repo("");
    let root = t.root.display();
    t.hook_the_orchestrator_runs(
        "post-merge",
        &format!(
            "#!/bin/sh
[ -e {root}/ran ] || exit 0
echo $$ > {root}/hook.pid
while :; do sleep 0.02; done
"
        ),
    );
    let work = format!(
        "echo run >> {root}/runs && touch {root}/ran && echo a > a.txt && git add a.txt && git commit -q -m a"
    );
    t.task("p/a", &sh(&work));
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let out = "markers/out";
    let file = std::fs::File::create(t.path(out)).unwrap();
    let mut child = t.command(&["orchestrate"]).stdout(file).spawn().unwrap();
    wait_for("the hook to hold the merge", || pid_written(&t, "hook.pid"));
    let hook = read_pid(&t.path("hook.pid"));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let said = "leave them to the next run";
    wait_for(said, || t.read(out).contains(said));
    let said = "Killing every running task now";
    signal_until(child.id(), libc::SIGINT, said, || {
        t.read(out).contains(said)
    });
    wait_for("the run to end", || child.try_wait().unwrap().is_some());
    let said = t.read(out);
    assert_eq!(child.wait().unwrap().code(), Some(130), "{said}");
    assert!(!alive(hook), "the hook was left running: {said}");
    for line in [
        "Killing every running task now, and leaving the 1 merge in the queue to the next run",
        "its merge was cut short by the stop: left in the merge queue",
        "Summary: 0 completed, 1 left to merge, 0 failed",
        "merging  p/a: left in the merge queue",
    ] {
        assert!(said.contains(line), "{line:?} not in {said}");
    }
    assert_eq!(t.status("p/a")["merging"], true);
    std::fs::remove_file(t.path("ran")).unwrap();
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.read("runs"), "run\n", "the agent ran again");
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
    assert_eq!(
        changes(&t, "p/a"),
        [
            "pending -> running",
            "running -> merging",
            "merging -> completed"
        ]
    );
}

/// A `packed-refs.lock` a killed git left (a kill of the orchestrator
/// during a merge can) fails every deletion of a ref: the merge queue
/// removes it when it is surely stale, never one a process holds open.
#[test]
fn a_stale_packed_refs_lock_is_removed_and_one_held_open_is_kept() {
    let t = repo("");
    let lock = t.path(".git/packed-refs.lock");
    t.write(".git/packed-refs.lock", "");
    let aged = std::process::Command::new("touch")
        .args(["-d", "1 minute ago"])
        .arg(&lock)
        .status()
        .unwrap();
    assert!(aged.success());
    // Held open, as a git holds it while it needs it: kept.
    let mut holder = std::process::Command::new("sh")
        .args([
            "-c",
            "exec 3<\"$0\"; echo held > \"$0.held\"; exec sleep 60",
        ])
        .arg(&lock)
        .spawn()
        .unwrap();
    wait_for("the lock to be held", || {
        lock.with_extension("lock.held").exists()
    });
    // Its work left for the queue to commit: a retry does it again.
    t.task("p/a", &sh("echo a > a.txt"));
    t.run(&["orchestrate"]);
    assert!(lock.exists(), "a lock held open was removed");
    holder.kill().unwrap();
    holder.wait().unwrap();
    // Stale: removed; the user's own deletion of a branch works again.
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert!(!lock.exists(), "the stale lock stayed");
    t.git(&["branch", "scratch"]);
    t.git(&["branch", "-D", "scratch"]);
}

/// A `packed-refs.lock` a git killed a moment ago left (a restart right
/// after a kill during a merge) is waited out, then removed, before the
/// queue merges: with it there, git's deletions of CHERRY_PICK_HEAD failed
/// and went on, exit 0, and the next merge of that worktree took what was
/// left for a cherry-pick the agent left unfinished.
#[test]
fn a_packed_refs_lock_left_a_moment_ago_is_waited_out_before_a_merge() {
    let t = repo("");
    // Left by a git of the user's, killed as the task ends.
    let leave = "touch \"$(git rev-parse --git-common-dir)/packed-refs.lock\"";
    t.task(
        "p/a",
        &sh(&format!(
            "echo a > a.txt && git add a.txt && git commit -q -m a && {leave}"
        )),
    );
    t.run(&["orchestrate"]).code(0);
    assert!(!t.exists(".git/packed-refs.lock"), "merged around the lock");
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

/// A task's `git commit` starts no background maintenance: killed with
/// what the task left running, it left `packed-refs.lock` in the user's
/// repository. The orchestrator's own commits still may.
#[test]
fn a_task_s_git_starts_no_maintenance_that_its_end_would_kill() {
    let t = repo("");
    t.task(
        "p/a",
        &sh("echo a > a.txt && git add a.txt && GIT_TRACE=$TASK_OUTPUT_DIR/trace git commit -q -m a"),
    );
    t.run(&["orchestrate"]).code(0);
    let trace = t.read("workspace/outputs/p/a/trace");
    assert!(trace.contains("built-in: git commit"), "{trace}");
    assert!(!trace.contains("maintenance"), "{trace}");
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

/// A task that leaves a read-only folder in its worktree (a Go module
/// cache is made so): for a user who is not root, git removed the
/// worktree's record and then failed halfway through its files.
#[test]
fn clean_removes_a_merged_worktree_that_holds_a_read_only_folder() {
    if !as_root() {
        return;
    }
    let t = repo("");
    t.write(".gitignore", "workspace/\nmarkers/\ntasks/\ncache/\n");
    t.git(&["commit", "-q", "-am", "ignore the cache"]);
    // nobody's git has no identity of its own.
    t.git(&["config", "user.name", "Nobody"]);
    t.git(&["config", "user.email", "nobody@example.com"]);
    let cache = "mkdir -p cache/mod/x && echo m > cache/mod/x/f && chmod -R a-w cache/mod";
    t.task(
        "p/a",
        &sh(&format!(
            "{cache} && echo a > a.txt && git add a.txt && git commit -q -m a"
        )),
    );
    t.run_as_nobody(&["orchestrate"]).code(0);
    t.run_as_nobody(&["clean"])
        .code(0)
        .says("removed  task/p/a")
        .says("removed 1, kept 0");
    assert!(!t.exists("workspace/worktrees/p/a"));
    let listed = t.git(&["-c", "safe.directory=*", "worktree", "list"]);
    assert_eq!(listed.lines().count(), 2, "main, .integration: {listed}");
}

/// Two merged tasks, `p/a` and `p/b`, and the mark a `clean` leaves when
/// killed while git removed `p/a`'s worktree.
fn a_removal_of_p_a_marked() -> Tree {
    let t = repo("");
    for id in ["p/a", "p/b"] {
        t.task(id, &commit(&format!("{}.txt", &id[2..]), "x"));
    }
    t.run(&["orchestrate"]).code(0);
    t.write("workspace/worktrees/.removing/p/a", "");
    t
}

/// What a `clean` killed while git removed `p/a`'s worktree leaves: its
/// mark, and the folder without its `.git`.
fn a_removal_of_p_a_cut_short() -> Tree {
    let t = a_removal_of_p_a_marked();
    std::fs::remove_file(t.path("workspace/worktrees/p/a/.git")).unwrap();
    t
}

/// git deletes a worktree's files in the folder's order, `.git` not always
/// first: a `clean` killed as it went (found by a fault soak) left the
/// folder with its `.git` and files deleted, which the next `clean` kept
/// as `uncommitted changes ...; commit or remove them`, the deletions its
/// own. It finishes the removal.
#[test]
fn a_worktree_removal_cut_short_before_its_git_is_finished_by_the_next_clean() {
    let t = a_removal_of_p_a_marked();
    std::fs::remove_file(t.path("workspace/worktrees/p/a/a.txt")).unwrap();
    std::fs::remove_file(t.path("workspace/worktrees/p/a/README.md")).unwrap();
    t.run(&["clean"])
        .code(0)
        .says("removed  task/p/a")
        .says("removed 2, kept 0");
    assert!(!t.exists("workspace/worktrees/p"));
    assert!(!t.exists("workspace/worktrees/.removing"));
    let listed = t.git(&["worktree", "list"]);
    assert_eq!(listed.lines().count(), 2, "main, .integration: {listed}");
}

/// What a `clean` killed while git removed a merged worktree leaves (its
/// mark, the folder half deleted with no `.git`, git's record of it) is
/// finished by the next `clean`; a normal `clean` leaves no mark.
#[test]
fn a_worktree_removal_cut_short_is_finished_by_the_next_clean() {
    let t = a_removal_of_p_a_cut_short();
    std::fs::remove_file(t.path("workspace/worktrees/p/a/README.md")).unwrap();
    t.run(&["clean"])
        .code(0)
        .says("removed  task/p/a")
        .says("removed  task/p/b and workspace/worktrees/p/b")
        .says("removed 2, kept 0");
    // Nothing left: no folder, no mark, not the folders that held them.
    assert!(!t.exists("workspace/worktrees/p"));
    assert!(!t.exists("workspace/worktrees/.removing"));
    let listed = t.git(&["worktree", "list"]);
    assert_eq!(listed.lines().count(), 2, "main, .integration: {listed}");
}

/// The dry run of a `clean` after one cut short says what `clean` then
/// does: it finishes that removal (not "kept ... move it away") and removes
/// the branch, line for line.
#[test]
fn clean_dry_run_says_it_finishes_a_removal_cut_short_as_clean_does() {
    let t = a_removal_of_p_a_cut_short();
    let dry = t.run(&["clean", "--dry-run"]).code(0).stdout.clone();
    assert!(t.exists("workspace/worktrees/p/a/a.txt"));
    let real = t.run(&["clean"]).code(0).stdout.clone();
    // `would remove task/p/b` is `removed  task/p/b`, the summary
    // `would remove 2, kept 0` is `removed 2, kept 0`.
    let said = |text: &str, verb: &str| -> Vec<String> {
        let mut lines: Vec<String> = (text.lines())
            .map(|line| line.replacen(verb, "", 1).trim_start().to_owned())
            .map(|line| line.replace("what is left", "what was left"))
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(said(&dry, "would remove"), said(&real, "removed"));
    assert!(
        real.contains("what was left of workspace/worktrees/p/a"),
        "{real}"
    );
    assert!(!t.exists("workspace/worktrees/p"));
}

/// A task whose commit the rebase leaves empty (another task merged the
/// same change first) merged nothing: no `merged_commit`, not the other's.
#[test]
fn a_task_whose_commit_goes_empty_in_the_rebase_names_no_merged_commit() {
    let t = repo("");
    t.task("p/a", &commit("same.txt", "SAME"));
    // Starts after p/a's merge, from the commit before it.
    t.task(
        "p/b",
        &format!(
            "dependencies: [p/a]\n{}",
            sh("git reset -q --hard HEAD~1 && echo SAME > same.txt && git add same.txt && git commit -q -m again")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    assert!(t.status("p/a")["merged_commit"].is_string());
    assert!(
        t.status("p/b")
            .get("merged_commit")
            .is_none_or(|c| c.is_null()),
        "{}",
        t.status("p/b")
    );
}

/// A `link` path that git tracks is the worktree's own checkout (no link
/// over it): what an agent changes there is committed and merged, not
/// left behind.
#[test]
fn a_tracked_path_listed_in_link_is_committed_as_any_change() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees:\n  default: true\n  link: [vendor]\n");
    t.write("vendor/pkg.js", "one\n");
    t.git(&["add", "vendor"]);
    t.git(&["commit", "-q", "-m", "vendor"]);
    t.task("p/a", &sh("echo two > vendor/pkg.js"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "integration:vendor/pkg.js"]), "two");
}

/// A `copy` path that git tracks is not copied (the worktree has its own
/// checkout of it), and the run says so as it starts: copied, it was a
/// change no one made, and every merge failed ("cannot rebase: You have
/// unstaged changes"), also with the user's edit of it not committed.
#[test]
fn a_tracked_path_listed_in_copy_is_not_copied_and_is_warned_of() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees:\n  default: true\n  copy: [.env]\n");
    t.write(".env", "KEY=committed\n");
    t.git(&["add", ".env"]);
    t.git(&["commit", "-q", "-m", "env"]);
    t.write(".env", "KEY=edited\n");
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/b", &sh("cat .env > seen.txt"));
    let run = t.run(&["orchestrate"]);
    run.code(0);
    let warned = "warning: worktrees.copy `.env`: git tracks it, so it is not copied";
    assert_eq!(run.said().matches(warned).count(), 1, "{}", run.said());
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
    assert_eq!(t.git(&["show", "integration:seen.txt"]), "KEY=committed");
}

/// A task's worktree reused by its retry is not refused for another
/// task's worktree that git cannot repair (its agent replaced its `.git`).
#[test]
fn another_task_s_broken_worktree_does_not_fail_a_retry() {
    let t = repo("");
    t.task("p/a", &sh("rm -f .git && git init -q ."));
    let root = t.root.display();
    t.task(
        "p/b",
        &sh(&format!(
            "[ -e {root}/markers/go ] && echo b > b.txt && git add b.txt && git commit -qm b"
        )),
    );
    t.run(&["orchestrate"]).code(1);
    t.write("markers/go", "");
    t.run(&["orchestrate", "--task", "p/b"]).code(0);
    assert_eq!(t.git(&["show", "integration:b.txt"]), "b");
}

/// A task folder whose worktree record git lost (a removal stopped
/// halfway) is named, with what to do, not git's repair error.
#[test]
fn a_task_folder_whose_worktree_record_is_gone_is_named_with_the_fix() {
    let t = repo("");
    t.task("p/a", &sh("echo a > a.txt"));
    t.run(&["orchestrate"]).code(0);
    std::fs::remove_dir_all(t.path(".git/worktrees/p%2Fa")).unwrap();
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"])
        .code(1)
        .says("workspace/worktrees/p/a is no longer a worktree of this repository (git has no record of it): move it away");
}

/// An agent that leaves its worktree on a branch with no commit yet (`git
/// checkout --orphan`, as for a `gh-pages`) fails its task saying so, not
/// with git's `ambiguous argument`; `clean`, and its dry run, keep that
/// worktree with its files, saying why, and clean the others (they
/// stopped at it, cleaning nothing).
#[test]
fn a_worktree_left_on_a_branch_with_no_commit_fails_its_task_and_does_not_stop_clean() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.task(
        "p/b",
        &sh("git checkout -q --orphan gh-pages && git rm -rqf . && echo page > index.html"),
    );
    t.run(&["orchestrate"]).code(1);
    let error = t.status("p/b")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("the agent left its worktree on branch `gh-pages`, which has no commit yet (`git checkout --orphan`): nothing is merged"),
        "{error}"
    );
    let kept = "kept     task/p/b and workspace/worktrees/p/b: the worktree is on branch `gh-pages`, which has no commit yet";
    t.run(&["clean", "--dry-run"])
        .code(0)
        .says(kept)
        .says("would remove task/p/a and workspace/worktrees/p/a")
        .says("would remove 1, kept 1");
    t.run(&["clean"])
        .code(0)
        .says(kept)
        .says("removed 1, kept 1");
    assert!(!t.exists("workspace/worktrees/p/a"));
    assert_eq!(t.read("workspace/worktrees/p/b/index.html"), "page\n");
    t.git(&["rev-parse", "--verify", "-q", "task/p/b"]);
}

/// A task's folder whose record git no longer has (pruned while a
/// scratch disk was away, removed by hand) is no repository moved: the
/// dry run plans the rest, as `clean` then does, and both keep that folder
/// with its files, saying why (`clean` kept it unsaid, and its dry run
/// said to let it link the worktrees again, and planned nothing).
#[test]
fn clean_keeps_a_task_folder_git_has_no_record_of_and_plans_the_rest() {
    let t = repo("");
    for id in ["p/a", "p/b"] {
        t.task(id, &commit(&format!("{}.txt", &id[2..]), "x"));
    }
    t.run(&["orchestrate"]).code(0);
    t.write("workspace/worktrees/p/a/notes.txt", "mine\n");
    std::fs::remove_dir_all(t.path(".git/worktrees/p%2Fa")).unwrap();
    let kept = "kept     workspace/worktrees/p/a: it is no longer a worktree of this repository (git has no record of it): move it away";
    let dry = t.run(&["clean", "--dry-run"]);
    dry.code(0)
        .says(kept)
        .says("would remove task/p/b and workspace/worktrees/p/b")
        .says("would remove 2, kept 1");
    assert!(!dry.stdout.contains("was moved"), "{}", dry.stdout);
    t.run(&["clean"])
        .code(0)
        .says(kept)
        .says("removed  task/p/b and workspace/worktrees/p/b")
        .says("removed 2, kept 1");
    assert_eq!(t.read("workspace/worktrees/p/a/notes.txt"), "mine\n");
}

/// A task's worktree detached by hand with nothing unmerged is kept (its
/// folder is not on its branch), said as such: not as unmerged work.
#[test]
fn clean_says_why_it_keeps_a_detached_worktree_with_nothing_unmerged() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    git_in(
        &t.path("workspace/worktrees/p/a"),
        &["checkout", "-q", "--detach"],
    );
    t.run(&["clean"])
        .code(0)
        .says("kept     task/p/a and workspace/worktrees/p/a: the worktree is on a detached HEAD, with nothing that integration lacks: check out task/p/a there")
        .says("removed 0, kept 1");
    // The branch then checked out in a worktree of the user's: said, with
    // what to do there first (checking it out in ours would fail).
    let theirs = t.root.join("markers/theirs");
    t.git(&[
        "worktree",
        "add",
        "-q",
        theirs.to_str().unwrap(),
        "task/p/a",
    ]);
    t.run(&["clean"])
        .code(0)
        .says("kept     task/p/a and workspace/worktrees/p/a: the worktree is on a detached HEAD, with nothing that integration lacks, and task/p/a is checked out at markers/theirs: check out another branch there, then task/p/a in workspace/worktrees/p/a");
}

/// A worktree of the user's own among the tasks' is left alone, and not
/// taken for a task's that its agent moved to another branch.
#[test]
fn clean_leaves_a_worktree_of_the_user_s_among_the_tasks_alone() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    t.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "mine",
        "workspace/worktrees/mine",
    ]);
    let run = t.run(&["clean"]);
    run.code(0).says("removed 1, kept 0");
    assert!(!run.stdout.contains("task/mine"), "{}", run.stdout);
    assert!(t.exists("workspace/worktrees/mine/README.md"));
}

/// A task's worktree the user locked is kept by `clean`, and its dry run
/// says the same: it is theirs to unlock.
#[test]
fn clean_keeps_a_worktree_the_user_locked_and_its_dry_run_says_so() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    t.git(&[
        "worktree",
        "lock",
        "--reason",
        "user keeps this",
        "workspace/worktrees/p/a",
    ]);
    let said = "kept     task/p/a: its worktree workspace/worktrees/p/a is locked (\"user keeps this\"): unlock it";
    t.run(&["clean", "--dry-run"]).code(0).says(said);
    t.run(&["clean"]).code(0).says(said);
    assert!(t.path("workspace/worktrees/p/a").exists());
}

/// A task whose file is removed while its worktree is made (a slow hook,
/// Git LFS) never starts, as one removed before would not: it ran, and
/// its work was merged. What waits on its phase runs; its attempt is not
/// counted.
#[test]
fn a_task_removed_while_its_worktree_is_made_never_starts() {
    let t = repo("");
    let (hooked, release) = (t.path("hooked"), t.path("release"));
    t.hook_the_orchestrator_runs(
        "post-checkout",
        &format!(
            "#!/bin/sh\ncase $PWD in */.new/*) ;; *) exit 0;; esac\ntouch {h}\nwhile [ ! -f {r} ]; do sleep 0.02; done\n",
            h = hooked.display(),
            r = release.display()
        ),
    );
    let runs = t.path("runs");
    t.task(
        "p/a",
        &sh(&format!(
            "echo p/a >> {} && echo a > a.txt && git add a.txt && git commit -qm a",
            runs.display()
        )),
    );
    t.task("q/after", &format!("dependencies: [p]\n{}", sh("true")));
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let out = std::fs::File::create(t.path("markers/out")).unwrap();
    let mut run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("its worktree's making", || hooked.exists());
    std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
    t.write("release", "");
    let ended = run.wait().unwrap();
    let said = t.read("markers/out");
    assert!(ended.success(), "{said}");
    assert!(said.contains("p/a: its task file was removed"), "{said}");
    assert!(!runs.exists(), "p/a ran: {said}");
    assert_eq!(t.state("q/after"), "completed");
    assert_eq!(
        changes(&t, "p/a"),
        ["pending -> running", "running -> pending"]
    );
    assert!(t
        .git(&["log", "--format=%s", "integration"])
        .lines()
        .all(|s| s != "a"));
}

/// A worktree record an `add` killed with an earlier orchestrator left
/// half written (its `commondir` made, still empty: git dies reading it)
/// is dropped, and the worktrees after it are made (every later add
/// failed, "failed to read .git/worktrees/<name>/commondir").
#[test]
fn a_worktree_record_left_half_written_by_a_kill_is_dropped() {
    let t = repo("");
    t.task("p/first", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let record = ".git/worktrees/p%2Fcut";
    let gitdir = t.path("workspace/worktrees/.new/p%2Fcut/.git");
    t.write(&format!("{record}/locked"), "initializing");
    t.write(
        &format!("{record}/gitdir"),
        &format!("{}\n", gitdir.display()),
    );
    t.write(&format!("{record}/commondir"), "");
    t.task("p/after", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
    assert!(!t.exists(record));
}

/// A worktree `add` that dies on the record another `add` is writing
/// that moment (another task's, made beside it: "failed to read
/// .git/worktrees/<name>/commondir", after git's "Preparing worktree"
/// line) is run again once that record is whole: the task runs, its work
/// merged. Here the other record is someone else's, half written while
/// the task's first `add` runs, gone after it.
#[test]
fn a_worktree_add_that_read_another_add_s_record_half_written_is_run_again() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    let record = t.path(".git/worktrees/other");
    let made = t.path("markers/made");
    let path = git_wrapped(
        &t,
        &format!(
            "case \"$*\" in\n  \"worktree add \"*p%2Fa*)\n    [ -e {made} ] && exec {git} \"$@\"\n    touch {made}; mkdir -p {r}; echo initializing > {r}/locked; echo /elsewhere/.git > {r}/gitdir; : > {r}/commondir\n    {git} \"$@\"; s=$?; rm -r {r}; exit $s;;\nesac\n",
            made = made.display(),
            git = real_git(),
            r = record.display(),
        ),
    );
    let out = t
        .command(&["orchestrate"])
        .env("PATH", path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(t.exists("markers/made"));
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

/// A task adopted after a kill, whose branch was made for the integration
/// branch the config named then, is not merged into the one it names now:
/// it fails saying so, and its work stays on its branch.
#[test]
fn an_adopted_task_s_branch_made_for_another_integration_branch_is_not_merged() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, integration: int-a}\n");
    let go = t.path("markers/go");
    t.task(
        "p/a",
        &sh(&format!("while [ ! -e {} ]; do sleep 0.01; done; echo a > a.txt && git add a.txt && git commit -qm a", go.display())),
    );
    let mut first = t.start(&["orchestrate"]);
    wait_for("p/a to run", || {
        t.exists("workspace/status/p/a.json") && t.status("p/a")["pid"].is_number()
    });
    first.kill().unwrap();
    first.wait().unwrap();
    t.config("kill_grace: 1s\nworktrees: {default: true, integration: int-b}\n");
    // As the run says to, for the new integration branch.
    let integration = t.path("workspace/worktrees/.integration");
    t.git(&["worktree", "remove", integration.to_str().unwrap()]);
    t.write("markers/go", "");
    t.run(&["orchestrate"]).code(1).says(
        "branch `task/p/a` was made by cargo xtask for the integration branch `int-a`, not `int-b`",
    );
    let merged = t.git(&["log", "--format=%s", "int-b"]);
    assert!(!merged.lines().any(|s| s == "a"), "{merged}");
    assert_eq!(t.git(&["log", "-1", "--format=%s", "task/p/a"]), "a");
}

/// A task branch made before branches named their integration branch (no
/// `xtaskinto`) is taken up as before, and named as it is.
#[test]
fn a_task_branch_made_before_branches_named_their_integration_is_taken_up_and_named() {
    let t = repo("");
    t.task(
        "p/a",
        &sh("echo a > a.txt && git add a.txt && git commit -qm a && exit 1"),
    );
    t.run(&["orchestrate"]).code(1);
    t.git(&["config", "--unset", "branch.task/p/a.xtaskinto"]);
    t.run(&["reset", "p/a"]).code(0);
    t.task("p/a", &sh("true"));
    // A look (`validate`, the check before a run) names nothing.
    t.run(&["validate"]).code(0);
    let named = std::process::Command::new("git")
        .args(["config", "branch.task/p/a.xtaskinto"])
        .current_dir(&t.root)
        .output()
        .unwrap();
    assert!(!named.status.success(), "named by a look");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        t.git(&["config", "branch.task/p/a.xtaskinto"]),
        "integration"
    );
    assert!(integration_log(&t).iter().any(|s| s == "a"));
}

/// The `running -> merging` event names its attempt and agent, as every
/// other change of a task's state does (a notifier filtering on them
/// missed it).
#[test]
fn the_merging_event_names_its_attempt_and_agent() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    let all = events(&t);
    let merging = all
        .iter()
        .find(|e| e["to"] == "merging")
        .expect("a merging event");
    assert_eq!(merging["attempt"], 1, "{merging}");
    assert_eq!(merging["agent"], "agent-1", "{merging}");
}

/// An `add` that failed to read something else (an object, a disk error)
/// is not run again: its task fails at once with git's words, though the
/// command names the worktree's folder under `worktrees/`.
#[test]
fn a_worktree_add_that_failed_to_read_an_object_is_not_run_again() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    let calls = t.path("markers/adds");
    let path = git_wrapped(
        &t,
        &format!(
            "case \"$*\" in\n  \"worktree add \"*p%2Fa*)\n    echo >> {calls}; echo \"Preparing worktree (checking out 'task/p/a')\" >&2; echo 'fatal: failed to read object 0123abcd: Input/output error' >&2; exit 128;;\nesac\n",
            calls = calls.display(),
        ),
    );
    let out = t
        .command(&["orchestrate"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(t.read("markers/adds"), "\n", "the add ran more than once");
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("failed to read object 0123abcd"), "{error}");
}

/// What git ignores in a merged worktree goes with it, as `git worktree
/// remove` takes it, but never unsaid: the dry run names it, and so does
/// the removal (it went without a word).
#[test]
fn clean_names_what_git_ignores_in_a_worktree_it_removes() {
    let t = repo("");
    t.write(".git/info/exclude", "*.log\nbuild/\n");
    t.task(
        "p/a",
        &sh("echo results > run.log && mkdir build && touch build/1 build/2 && echo a > a.txt && git add a.txt && git commit -qm a"),
    );
    t.run(&["orchestrate"]).code(0);
    let said = "task/p/a and workspace/worktrees/p/a, with what git ignores in it: build/, run.log";
    t.run(&["clean", "--dry-run"])
        .code(0)
        .says(&format!("would remove {said}"));
    assert!(t.exists("workspace/worktrees/p/a/run.log"));
    t.run(&["clean"]).code(0).says(&format!("removed  {said}"));
    assert!(!t.exists("workspace/worktrees/p/a"));
}

/// A git repository an agent made in a folder git ignores (a dependency
/// cloned into `vendor/` and patched there) goes with a merged worktree
/// only when its commits are on its remote: one holding commits only it
/// has keeps the worktree, named, in the dry run too (`git worktree
/// remove` would delete them with what git ignores).
#[test]
fn clean_keeps_a_merged_worktree_whose_ignored_repository_holds_commits_alone() {
    let t = repo("");
    t.write(".gitignore", "workspace/\nmarkers/\ntasks/\nvendor/\n");
    t.git(&["commit", "-qam", "ignore vendor"]);
    let upstream = t.path("markers/upstream");
    std::fs::create_dir_all(&upstream).unwrap();
    git_in(&upstream, &["init", "-q", "-b", "main"]);
    git_in(&upstream, &["commit", "-q", "--allow-empty", "-m", "dep"]);
    let clone = |dir: &str| {
        format!(
            "git clone -q {} {dir} && git add -A && git commit -q --allow-empty -m 'vendor'",
            upstream.display()
        )
    };
    t.task(
        "p/a",
        &sh(&format!(
            "{} && cd vendor/dep && echo patch > p.c && git add p.c && git -c user.name=a -c user.email=a@x commit -qm 'patch the dependency'",
            clone("vendor/dep")
        )),
    );
    t.task("p/b", &sh(&clone("vendor/dep")));
    t.run(&["orchestrate"]).code(0);
    let kept = "kept     task/p/a: git repositories in what git ignores in workspace/worktrees/p/a hold commits none of their remotes has, which removing it would delete: vendor/dep (1 commit)";
    t.run(&["clean", "--dry-run"])
        .code(0)
        .says(kept)
        .says("would remove task/p/b and workspace/worktrees/p/b, with what git ignores in it: vendor/")
        .says("would remove 1, kept 1");
    t.run(&["clean"])
        .code(0)
        .says(kept)
        .says("removed 1, kept 1");
    let dep = t.path("workspace/worktrees/p/a/vendor/dep");
    assert_eq!(
        git_in(&dep, &["log", "-1", "--format=%s"]),
        "patch the dependency"
    );
    assert!(!t.exists("workspace/worktrees/p/b"));
}

/// Worktrees whose submodules are checked out (`worktrees.setup`), which
/// git refuses to remove whatever they hold: `clean` removes one whose
/// submodule holds nothing of its own, and keeps one whose submodule has
/// a commit of the agent's that its remote lacks (removing the worktree
/// would delete it, with the submodule's repository, the worktree's own).
#[test]
fn clean_removes_a_worktree_with_submodules_but_not_their_unpushed_commits() {
    let t = repo("");
    t.config(
        "kill_grace: 1s\nworktrees:\n  default: true\n  setup: \"git -c protocol.file.allow=always submodule update --init -q\"\n",
    );
    t.write(".git/info/exclude", "lib-origin/\n");
    let origin = t.path("lib-origin");
    std::fs::create_dir_all(&origin).unwrap();
    git_in(&origin, &["init", "-q", "-b", "main"]);
    git_in(&origin, &["commit", "-q", "--allow-empty", "-m", "lib"]);
    let url = origin.to_str().unwrap();
    t.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        url,
        "lib",
    ]);
    t.git(&["commit", "-q", "-m", "the lib"]);
    t.task(
        "p/a",
        &sh("echo a > a.txt && git add a.txt && git commit -qm a"),
    );
    t.task(
        "p/b",
        &sh("cd lib && git commit -q --allow-empty -m mine && cd .. && git add lib && git commit -qm 'lib: mine'"),
    );
    t.task(
        "p/c",
        &sh("echo c > c.txt && git add c.txt && git commit -qm c"),
    );
    t.run(&["orchestrate"]).code(0);
    // A submodule's repository git cannot count in (its `HEAD` names no
    // commit): taken to hold work, the others cleaned all the same.
    let modules = t.git(&[
        "-C",
        "workspace/worktrees/p/c",
        "rev-parse",
        "--absolute-git-dir",
    ]);
    std::fs::write(
        format!("{modules}/modules/lib/HEAD"),
        "ref: refs/heads/none\n",
    )
    .unwrap();
    t.run(&["clean"])
        .code(0)
        .says("removed  task/p/a")
        .says("kept     task/p/b: submodules checked out in workspace/worktrees/p/b hold commits none of their remotes has, which removing it would delete: lib (1 commit); push them, then clean again")
        .says("kept     task/p/c: submodules checked out in workspace/worktrees/p/c")
        .says("removed 1, kept 2");
    assert!(!t.exists("workspace/worktrees/p/a"));
    assert!(t.exists("workspace/worktrees/p/b/lib"));
}

/// A git that fails on one worktree (its index corrupt) keeps that one,
/// saying git's words; the others are cleaned all the same, and the exit
/// code says it (it stopped at the first, exit 2, cleaning nothing after).
#[test]
fn clean_keeps_a_worktree_git_fails_on_and_cleans_the_others() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"]).code(0);
    let git_dir = t.git(&[
        "-C",
        "workspace/worktrees/p/a",
        "rev-parse",
        "--absolute-git-dir",
    ]);
    std::fs::write(format!("{git_dir}/index"), "not an index").unwrap();
    t.run(&["clean"])
        .code(1)
        .says("kept     task/p/a: git failed on it: ")
        .says("removed  task/p/b")
        .says("removed 1, kept 1");
    assert!(t.exists("workspace/worktrees/p/a/a.txt"));
}

/// A checkout with a sparse-checkout (which git gives every worktree made
/// from it): a file the agent leaves outside its cone is its work too,
/// committed and merged (git refused to stage it, and the task failed
/// after its work was done).
#[test]
fn an_agent_s_file_outside_the_sparse_checkout_is_committed_and_merged() {
    let t = repo("");
    t.write("src/a.txt", "a\n");
    t.write("docs/d.txt", "d\n");
    t.git(&["add", "src", "docs"]);
    t.git(&["commit", "-q", "-m", "src and docs"]);
    t.git(&["sparse-checkout", "set", "--cone", "src"]);
    t.task("p/a", &sh("mkdir -p docs && echo b > docs/b.txt"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "integration:docs/b.txt"]), "b");
}

#[test]
fn clean_removes_merged_work_and_keeps_the_rest() {
    let t = repo("");
    t.task("p/merged", &commit("a.txt", "a"));
    t.task("p/empty", &sh("true"));
    t.task(
        "p/unmerged",
        &sh("echo b > b.txt && git add b.txt && git commit -q -m b && exit 1"),
    );
    t.run(&["orchestrate"]).code(1);
    // Someone's own branch under task/: never touched.
    t.git(&["branch", "task/someone"]);
    t.run(&["clean", "--dry-run"])
        .code(0)
        .says("would remove task/p/merged")
        .says("kept     task/p/unmerged: 1 commit not in integration");
    assert!(t.exists("workspace/worktrees/p/merged"));
    t.run(&["clean"])
        .code(0)
        .says("removed  task/p/merged")
        .says("removed  task/p/empty")
        .says("kept     task/p/unmerged: 1 commit not in integration");
    assert!(!t.exists("workspace/worktrees/p/merged"));
    assert!(t.exists("workspace/worktrees/p/unmerged/b.txt"));
    let branches = t.git(&["branch", "--format=%(refname:short)"]);
    assert!(!branches.contains("task/p/merged"), "{branches}");
    assert!(branches.contains("task/p/unmerged"), "{branches}");
    assert!(branches.contains("task/someone"), "{branches}");
    assert_eq!(
        t.git(&["worktree", "list"]).lines().count(),
        3,
        "main, .integration, unmerged"
    );
    // No empty folder left: neither where worktrees were made, nor a
    // phase's once its last worktree is gone.
    assert!(!t.exists("workspace/worktrees/.new"));
    t.run(&["reset", "p/unmerged"]).code(0);
    t.task("p/unmerged", &sh("git reset -q --hard integration"));
    t.run(&["orchestrate"]).code(0);
    t.run(&["clean"]).code(0).says("removed  task/p/unmerged");
    assert!(!t.exists("workspace/worktrees/p"));
}

/// A task branch whose ref went without its config (a `clean` cut short
/// between the two, `git update-ref -d`) leaves this orchestrator's mark:
/// `clean` takes it off, so that a branch the user makes later under that
/// name is never taken for ours (and removed).
#[test]
fn clean_forgets_the_mark_of_a_branch_that_is_gone() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    t.git(&["worktree", "remove", "workspace/worktrees/p/a"]);
    t.git(&["update-ref", "-d", "refs/heads/task/p/a"]);
    t.run(&["clean"]).code(0);
    t.git(&["branch", "task/p/a", "main"]);
    t.run(&["clean"]).code(0);
    let branches = t.git(&["branch", "--format=%(refname:short)"]);
    assert!(branches.contains("task/p/a"), "{branches}");
}

/// A task branch with no commit of its own whose base the integration
/// branch no longer holds (reset back by hand) is the last hold of that
/// base's commits: `clean` keeps it (it removed it, losing them). Of two,
/// the first by name goes.
#[test]
fn clean_keeps_an_empty_task_branch_whose_base_only_it_holds() {
    let t = repo("");
    t.task("p/ok", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    t.run(&["clean"]).code(0).says("removed  task/p/ok");
    t.task("p/e", &sh("exit 1"));
    t.task("p/f", &sh("exit 1"));
    // p/f's worktree made first: `clean` goes by name all the same (it
    // went in the order they were made, which the load decided).
    t.run(&["orchestrate", "--task", "p/f"]).code(1);
    t.run(&["orchestrate", "--task", "p/e"]).code(1);
    let integration = t.path("workspace/worktrees/.integration");
    t.git(&[
        "-C",
        integration.to_str().unwrap(),
        "reset",
        "-q",
        "--hard",
        "main",
    ]);
    // Of two that hold it alone, one goes: the dry run says what `clean`
    // does.
    let dry = t.run(&["clean", "--dry-run"]);
    dry.code(0)
        .says("would remove task/p/e")
        .says("kept     task/p/f: 1 commit not in integration");
    t.run(&["clean"])
        .code(0)
        .says("removed  task/p/e")
        .says("kept     task/p/f: 1 commit not in integration");
    assert_eq!(
        t.git(&["log", "-1", "--format=%s", "task/p/f"]),
        "write a.txt"
    );
}

/// An empty task branch whose base another branch holds goes only when it
/// names this root's integration branch: one made before branches named
/// theirs may be another root's, and goes only once merged here.
#[test]
fn clean_removes_an_empty_branch_on_a_held_base_only_when_it_is_named_ours() {
    let t = repo("");
    t.task("p/ok", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    t.task("p/e", &sh("exit 1"));
    t.run(&["orchestrate"]).code(1);
    t.git(&["branch", "keep", "integration"]);
    let integration = t.path("workspace/worktrees/.integration");
    t.git(&[
        "-C",
        integration.to_str().unwrap(),
        "reset",
        "-q",
        "--hard",
        "main",
    ]);
    t.git(&["config", "--unset", "branch.task/p/e.xtaskinto"]);
    t.run(&["clean"])
        .code(0)
        .says("kept     task/p/e: 1 commit not in integration");
    t.git(&["config", "branch.task/p/e.xtaskinto", "integration"]);
    t.run(&["clean"]).code(0).says("removed  task/p/e");
}

/// Once the integration branch is merged into yours and deleted (as
/// README suggests), `clean` judges the task branches by the branch
/// checked out: what it holds goes, the rest is kept and said so (it said
/// "not in integration" of merged work, and kept it all).
#[test]
fn clean_after_the_integration_branch_is_merged_and_deleted() {
    let t = repo("");
    t.task("p/merged", &commit("a.txt", "a"));
    t.task(
        "p/unmerged",
        &sh("echo b > b.txt && git add b.txt && git commit -q -m b && exit 1"),
    );
    t.run(&["orchestrate"]).code(1);
    t.git(&["merge", "-q", "--ff-only", "integration"]);
    let integration = t.path("workspace/worktrees/.integration");
    t.git(&["worktree", "remove", integration.to_str().unwrap()]);
    t.git(&["branch", "-D", "integration"]);
    // On no branch of yours (detached, or on a task's branch), nothing
    // tells merged work: nothing goes.
    t.git(&["checkout", "-q", "--detach"]);
    t.run(&["clean"])
        .code(0)
        .says("kept every task branch: the integration branch `integration` is gone");
    t.git(&["checkout", "-q", "main"]);
    t.run(&["clean"])
        .code(0)
        .says("removed  task/p/merged")
        .says("kept     task/p/unmerged: 1 commit not in main (the integration branch, integration, is gone)");
    let branches = t.git(&["branch", "--format=%(refname:short)"]);
    assert!(!branches.contains("task/p/merged"), "{branches}");
    assert!(branches.contains("task/p/unmerged"), "{branches}");
}

/// An agent that commits on a branch of its own (or a detached HEAD) does
/// not have that work left behind while the task completes: the task fails
/// saying where the commits are, and they stay there.
#[test]
fn commits_an_agent_left_off_its_branch_fail_the_task_and_stay() {
    let t = repo("");
    t.task(
        "p/a",
        &sh("git checkout -q -b agent-feature && echo work > w.txt && git add w.txt && git commit -qm 'agent work'"),
    );
    t.task("p/b", &sh("git checkout -q --detach && echo b > b.txt && git add b.txt && git commit -qm 'detached work'"));
    t.run(&["orchestrate"])
        .code(1)
        .says(
            "the agent left its worktree on branch `agent-feature`, with 1 commit `task/p/a` lacks",
        )
        .says("the agent left its worktree on a detached HEAD, with 1 commit `task/p/b` lacks");
    assert_eq!(t.state("p/a"), "failed");
    assert_eq!(t.git(&["show", "agent-feature:w.txt"]), "work");
    let merged = t.git(&["ls-tree", "-r", "--name-only", "integration"]);
    assert!(
        !merged.contains("w.txt") && !merged.contains("b.txt"),
        "{merged}"
    );
    // `clean` keeps both worktrees, and the task branches the advice names.
    t.run(&["clean"])
        .code(0)
        .says("kept     task/p/a and workspace/worktrees/p/a: the worktree is on branch `agent-feature`, with 1 commit not in integration")
        .says("kept     task/p/b and workspace/worktrees/p/b: the worktree is on a detached HEAD, with 1 commit not in integration");
    assert!(t.path("workspace/worktrees/p/a").exists());
    t.git(&["rev-parse", "--verify", "task/p/a"]);
    // The advice, followed as given, puts the work where it is merged from.
    follow_advice(&t, "p/a", "(in that worktree: `");
    assert_eq!(t.git(&["show", "task/p/a:w.txt"]), "work");
}

/// Runs the command that task `id`'s error gives in backquotes after
/// `lead`, as a person would paste it.
fn follow_advice(t: &Tree, id: &str, lead: &str) {
    let error = t.status(id)["error"].as_str().unwrap().to_owned();
    let advice = error
        .split(lead)
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no command in: {error}"));
    let done = std::process::Command::new("sh")
        .args(["-c", advice])
        .output()
        .unwrap();
    assert!(done.status.success(), "{advice}: {done:?}");
}

/// An agent that deletes its task branch fails its task saying so, and
/// where its work is, not with git's error about a revision it cannot
/// find; the advice, followed, puts the work back where it is merged from.
#[test]
fn an_agent_that_deleted_its_branch_is_told_where_its_work_is() {
    let t = repo("");
    t.task(
        "p/d",
        &sh("git checkout -q --detach && git branch -q -D $TASK_BRANCH && echo d > d.txt && git add d.txt && git commit -qm d"),
    );
    t.run(&["orchestrate"]).code(1).says(
        "the agent deleted its branch `task/p/d` and left its worktree on a detached HEAD, at ",
    );
    let error = t.status("p/d")["error"].as_str().unwrap().to_owned();
    assert!(!error.contains("fatal:"), "{error}");
    follow_advice(&t, "p/d", "with cargo xtask's mark (`");
    assert_eq!(t.git(&["show", "task/p/d:d.txt"]), "d");
    // Its branch is cargo xtask's again: the retry merges the work.
    t.task("p/d", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "integration:d.txt"]), "d");
}

/// An agent that checks out a branch of the user's, older than its task's,
/// is not told to merge that branch's commits into its own: they are the
/// user's as well as (perhaps) the agent's.
#[test]
fn an_agent_left_on_the_user_s_branch_is_not_told_to_merge_it_whole() {
    let t = repo("");
    // Made last year, as its reflog says.
    let made = std::process::Command::new("sh")
        .args(["-c", "git checkout -q -b userfeature && echo mine > private.txt && git add private.txt && git commit -q -m \"the user's private work\" && git checkout -q main"])
        .current_dir(&t.root)
        .env("GIT_COMMITTER_DATE", "2025-01-01T00:00:00Z")
        .status()
        .unwrap();
    assert!(made.success());
    t.task("p/a", &sh("git checkout -q userfeature && echo e > e.txt"));
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says("the agent left its worktree on branch `userfeature`, which was not made for the task (it is older than `task/p/a`, or lacks its base): of the 1 commit there that `task/p/a` lacks, only those the agent made are its work")
        .says("cherry-pick");
    assert!(!run.stdout.contains("merge --ff-only"), "{}", run.stdout);
    assert_eq!(
        t.git(&["log", "-1", "--format=%s", "userfeature"]),
        "the user's private work"
    );
}

/// The same at a retry's start: an attempt that failed on a branch of its
/// own leaves its commits there, and the next attempt does not start over
/// them on the task branch.
#[test]
fn a_retry_does_not_start_over_commits_left_off_the_branch() {
    let t = repo("");
    t.task(
        "p/a",
        &format!(
            "retries: 1\n{}",
            sh("[ $TASK_ATTEMPT = 1 ] || exit 0; git checkout -q -b mine && echo w > w.txt && git add w.txt && git commit -qm mine && exit 1")
        ),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("the agent left its worktree on branch `mine`, with 1 commit `task/p/a` lacks");
    assert_eq!(t.git(&["show", "mine:w.txt"]), "w");
    assert_eq!(t.state("p/a"), "failed");
}

/// `clean` never runs beside a run: a running task's worktree, with no
/// commit of its own yet, would look merged.
#[test]
fn clean_is_refused_while_a_run_goes_on() {
    let t = repo("");
    t.task("p/a", &sh("touch $WORKSPACE/started; while [ ! -f $WORKSPACE/go ]; do sleep 0.02; done; echo a > a.txt"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("the task to start", || t.exists("workspace/started"));
    t.run(&["clean"])
        .code(2)
        .says("another orchestrator (pid ")
        .says("is running on");
    assert!(t.exists("workspace/worktrees/p/a"));
    t.write("workspace/go", "");
    assert!(run.wait().unwrap().success());
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

/// What `copy` and `link` bring into a worktree is the user's (a secret in
/// `.env`, a large `node_modules`): never committed from a worktree, and
/// removed with it by `clean`, which keeps a worktree with changes of
/// anyone's and says so, in a dry run too.
#[test]
fn files_brought_into_a_worktree_are_never_committed_and_go_with_it() {
    let t = repo("");
    t.write(".env", "SECRET=hunter2\n");
    t.write("conf/local.env", "LOCAL=1\n");
    std::fs::create_dir_all(t.path("node_modules/lib")).unwrap();
    t.config(
        "kill_grace: 1s\nworktrees:\n  default: true\n  copy: [.env, conf/local.env]\n  link: [node_modules]\n",
    );
    // Their leftovers are committed; the brought files stay out of it.
    t.task(
        "p/a",
        &sh("test -f .env && test -L node_modules && echo a > a.txt"),
    );
    t.task("p/b", &sh("echo b > b.txt; echo changed >> .env"));
    t.run(&["orchestrate"]).code(0);
    let files = t.git(&["ls-tree", "-r", "--name-only", "integration"]);
    let files: Vec<&str> = files.lines().collect();
    assert_eq!(files, [".gitignore", "README.md", "a.txt", "b.txt"]);
    // Someone's file in p/b's worktree after its merge.
    t.write("workspace/worktrees/p/b/notes.txt", "mine\n");
    let kept = "kept     task/p/b: uncommitted changes in workspace/worktrees/p/b: notes.txt, .env (edited since worktrees.copy copied it); commit or remove them, then clean again";
    t.run(&["clean", "--dry-run"])
        .code(0)
        .says("would remove task/p/a and workspace/worktrees/p/a")
        .says(kept);
    t.run(&["clean"])
        .code(0)
        .says("removed  task/p/a and workspace/worktrees/p/a")
        .says(kept);
    assert!(!t.exists("workspace/worktrees/p/a"));
    assert_eq!(t.read("workspace/worktrees/p/b/notes.txt"), "mine\n");
    // The originals, and what the link pointed to, are untouched.
    assert_eq!(t.read(".env"), "SECRET=hunter2\n");
    assert_eq!(t.read("conf/local.env"), "LOCAL=1\n");
    assert!(t.path("node_modules/lib").is_dir());
}

/// A file `worktrees.copy` brought in (a `.env`) that the agent then
/// edited is work of its own: `clean` and a run's end with
/// `worktrees.remove_merged` keep its worktree, naming the file, while one
/// whose copies are as copied goes, also when the root's file changed
/// since (an edit is told from the copy as it was made, not from the
/// root's file). A worktree that recorded no copies (made before they
/// were recorded) has them compared with the root's files. They removed
/// the worktree, and the edit with it.
#[test]
fn an_edited_copy_keeps_its_worktree() {
    let t = repo("");
    t.write(".env", "SECRET=1\n");
    t.write("conf/local.env", "LOCAL=1\n");
    let config = |remove| {
        format!("kill_grace: 1s\nworktrees:\n  default: true\n  remove_merged: {remove}\n  copy: [.env, conf/local.env]\n")
    };
    t.config(&config(false));
    t.task("p/a", &sh("echo a > a.txt && echo EDITED=1 >> .env"));
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"]).code(0);
    // The root's own file changes meanwhile: p/b's copy, as copied, is
    // no work of anyone's.
    t.write(".env", "SECRET=2\n");
    let kept_a = "kept     task/p/a: uncommitted changes in workspace/worktrees/p/a: .env (edited since worktrees.copy copied it)";
    t.run(&["clean", "--dry-run"])
        .code(0)
        .says("would remove task/p/b and workspace/worktrees/p/b")
        .says(kept_a);
    t.run(&["clean"])
        .code(0)
        .says("removed  task/p/b and workspace/worktrees/p/b")
        .says(kept_a);
    assert_eq!(
        t.read("workspace/worktrees/p/a/.env"),
        "SECRET=1\nEDITED=1\n"
    );
    assert!(!t.exists("workspace/worktrees/p/b"));
    // A run's end with remove_merged judges them the same.
    t.config(&config(true));
    t.task(
        "p/c",
        &sh("echo c > c.txt && echo EDITED=1 >> conf/local.env"),
    );
    t.task("p/d", &commit("d.txt", "d"));
    t.run(&["orchestrate"])
        .code(0)
        .says("  removed  task/p/d and workspace/worktrees/p/d");
    assert!(!t.exists("workspace/worktrees/p/d"));
    assert_eq!(
        t.read("workspace/worktrees/p/c/conf/local.env"),
        "LOCAL=1\nEDITED=1\n"
    );
    assert!(t.exists("workspace/worktrees/p/a/.env"));
    // With no record of its copies, p/c's are compared with the root's.
    let git_dir = t.git(&[
        "-C",
        "workspace/worktrees/p/c",
        "rev-parse",
        "--absolute-git-dir",
    ]);
    std::fs::remove_file(std::path::Path::new(&git_dir).join("xtask-copies")).unwrap();
    t.run(&["clean", "--dry-run"])
        .code(0)
        .says("kept     task/p/c: uncommitted changes in workspace/worktrees/p/c: conf/local.env (edited since worktrees.copy copied it)")
        .says(kept_a);
}

/// An agent that commits everything (`git add -A`) commits the `.env`
/// that `copy` brought in, and the symlink `link` made: none of it is
/// merged, the task fails saying why, and the others' work still merges.
#[test]
fn a_brought_file_an_agent_committed_is_never_merged() {
    let t = repo("");
    t.write(".env", "SECRET=hunter2\n");
    std::fs::create_dir_all(t.path("node_modules/lib")).unwrap();
    t.config(
        "kill_grace: 1s\nworktrees:\n  default: true\n  copy: [.env]\n  link: [node_modules]\n",
    );
    t.task(
        "p/a",
        &sh("echo a > a.txt && git add -A && git commit -q -m 'all of it'"),
    );
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"])
        .code(1)
        .says("its commits change .env, node_modules, which worktrees.copy or link brings in: the user's, never merged. Nothing was merged");
    let files = t.git(&["ls-tree", "-r", "--name-only", "integration"]);
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        [".gitignore", "README.md", "b.txt"]
    );
    assert_eq!(t.state("p/b"), "completed");
    // Its commit stays on its branch.
    let kept = t.git(&["show", "--name-only", "--format=", "task/p/a"]);
    assert!(kept.contains(".env"), "{kept}");
}

/// A link `worktrees.link` makes that git does not ignore as a link
/// (`node_modules/` matches folders only) is said as the run starts:
/// an agent's `git add -A` would commit it, and its work not be merged.
#[test]
fn a_link_git_does_not_ignore_as_a_link_is_said_at_the_start() {
    let said = "warning: worktrees.link `node_modules`: git does not ignore the link it makes in each worktree (.gitignore has no `node_modules`, or only `node_modules/`";
    for (ignored, warned) in [("node_modules/", true), ("node_modules", false)] {
        let t = repo("");
        std::fs::create_dir_all(t.path("node_modules/lib")).unwrap();
        t.config("kill_grace: 1s\nworktrees:\n  default: true\n  link: [node_modules]\n");
        t.write(
            ".gitignore",
            &format!("workspace/\nmarkers/\ntasks/\n{ignored}\n"),
        );
        t.git(&["commit", "-qam", ignored]);
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

#[test]
fn the_integration_branch_checked_out_elsewhere_stops_everything() {
    let t = repo("");
    t.task("p/a", &sh(MARK));
    integration_made_before(&t);
    t.git(&["checkout", "-q", "integration"]);
    t.run(&["orchestrate"])
        .code(2)
        .says("the integration branch `integration` is checked out at");
    assert!(!t.exists("markers"));
    assert!(!t.exists("workspace/status/p/a.json"));
}

/// The integration branch checked out in a worktree whose folder is gone
/// (removed by hand, not pruned): git holds the branch there still, so
/// `orchestrate` stops, saying how to have git forget it; it said to
/// check out another branch in a folder that is not there. Forgotten, the
/// run goes on.
#[test]
fn the_integration_branch_held_by_a_worktree_whose_folder_is_gone_says_to_prune_it() {
    let t = repo("");
    t.task("p/a", &sh(MARK));
    integration_made_before(&t);
    let gone = t.path("elsewhere");
    let at = gone.to_str().unwrap();
    t.git(&["worktree", "add", "-q", "-f", at, "integration"]);
    std::fs::remove_dir_all(&gone).unwrap();
    t.run(&["orchestrate"]).code(2).says(&format!(
        "the integration branch `integration` is checked out at {at}, a worktree whose folder is gone: `git worktree prune` forgets it (unless the folder is to come back, on a disk not mounted now), then run again"
    ));
    assert!(!t.exists("workspace/status/p/a.json"));
    t.git(&["worktree", "prune"]);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
}

/// The end of a run that used worktrees says how many tasks' worktrees
/// stay, and that `clean` removes the merged ones: nothing told of them,
/// and they piled up unseen.
#[test]
fn a_run_says_how_many_worktrees_it_keeps_and_what_removes_them() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"])
        .code(0)
        .says("2 task worktrees kept in workspace/worktrees: `cargo xtask --root")
        .says(" clean` removes those whose work is merged")
        .says("; `worktrees.remove_merged: true` removes them as each run ends");
    t.run(&["clean"]).code(0);
    t.task("p/a", &commit("a2.txt", "a again"));
    t.run(&["reset", "p/a"]).code(0);
    let again = t.run(&["orchestrate"]);
    again.code(0).says("1 task worktree kept");
}

/// A run's end with `worktrees.remove_merged: true` says, on a line of its
/// own, that it removes the merged worktrees before it begins (a
/// worktree of 30,000 ignored files takes seconds, which passed unsaid),
/// once, off a terminal plainly; a run's end that removes none says
/// nothing of it.
#[test]
fn a_run_says_it_removes_merged_worktrees_before_it_begins() {
    let said = "removing the task worktrees whose work is merged (worktrees.remove_merged: true); Ctrl-C stops there";
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, remove_merged: true}\n");
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/b", &commit("b.txt", "b"));
    let run = t.run(&["orchestrate"]);
    run.code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = |line: &str| lines.iter().position(|l| l.starts_with(line));
    let announced = lines.iter().position(|l| *l == said);
    let summary = at("Task worktrees whose work is merged, removed");
    assert!(announced.is_some() && announced < summary, "{}", run.stdout);
    assert_eq!(lines.iter().filter(|l| **l == said).count(), 1);
    assert!(!t.exists("workspace/worktrees/p/a"));
    // Nothing left to remove: nothing said.
    t.task("p/c", &format!("retries: 0\n{}", sh("exit 1")));
    t.run(&["orchestrate"]).code(1).never_says(said);
}

/// `why` of a task whose branch `clean` removed since (its work merged)
/// says the branch was removed, not where the work is: it showed the
/// branch as if it held the task's work still.
#[test]
fn why_says_a_task_branch_removed_since_is_gone() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    let why = t.run(&["why", "p/a"]);
    why.code(0).never_says("removed since");
    let shown = why
        .stdout
        .lines()
        .find(|l| l.starts_with("  branch task/p/a, from "));
    let shown = shown.expect("its branch").to_owned();
    t.run(&["clean"]).code(0).says("removed  task/p/a");
    t.run(&["why", "p/a"])
        .code(0)
        .says(&format!("{shown}: removed since\n"))
        .says("  merged into the integration branch as ");
}

/// `progress --tasks` (and its `--json`) and `report`'s branch column say
/// a task branch removed since is gone, as `why` does: they named it as
/// if it held the task's work still. A branch there is named alone.
#[test]
fn progress_and_report_say_a_task_branch_removed_since_is_gone() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"]).code(0);
    // Removed by hand: p/b's branch stays.
    t.git(&["worktree", "remove", "--force", "workspace/worktrees/p/a"]);
    t.git(&["branch", "-D", "task/p/a"]);
    let tasks = t.run(&["progress", "--tasks"]).stdout;
    let line = |id: &str| {
        let line = tasks.lines().find(|l| l.contains(&format!(" {id} ")));
        line.unwrap_or_else(|| panic!("{tasks}")).to_owned()
    };
    assert!(
        line("p/a").contains("  task/p/a (removed since)  merged as "),
        "{tasks}"
    );
    assert!(line("p/b").contains("  task/p/b  merged as "), "{tasks}");
    let json = progress_json(&t);
    let task = |id: &str| {
        json["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["task_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(task("p/a")["branch_removed"], true, "{json}");
    assert!(task("p/b").get("branch_removed").is_none(), "{json}");
    t.run(&["report"]).code(0);
    let report = t.read("workspace/report.html");
    assert!(report.contains("<td>task/p/a (merged as "), "{report}");
    assert!(report.contains(", removed since)</td>"), "{report}");
    assert_eq!(report.matches("removed since").count(), 1, "{report}");
}

/// The run's summary names the first 20 worktrees its end removed, then
/// how many more (40 tasks gave 40 lines).
#[test]
fn a_run_names_the_first_20_worktrees_it_removes() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, remove_merged: true}\n");
    for i in 0..22 {
        t.task(&format!("p/t{i:02}"), &sh("true"));
    }
    let run = t.run(&["orchestrate"]);
    run.code(0)
        .says("  removed  task/p/t19 and workspace/worktrees/p/t19\n  ... and 2 more\n")
        .never_says("removed  task/p/t20");
    assert!(!t.exists("workspace/worktrees/p/t21"));
}

/// With `worktrees.remove_merged: true`, a run that ends removes the
/// worktrees and branches whose work is merged, as `clean` does, naming
/// each and what git ignores in it; a failed task's worktree and branch,
/// holding its commit, stay. A run stopped by Ctrl-C removes nothing.
#[test]
fn a_run_with_remove_merged_removes_merged_worktrees_and_keeps_unmerged_work() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, remove_merged: true}\n");
    t.write(".git/info/exclude", "build/\n");
    t.task(
        "p/a",
        &sh("mkdir build && touch build/1 && echo a > a.txt && git add a.txt && git commit -qm a"),
    );
    t.task(
        "p/b",
        &format!(
            "retries: 0\n{}",
            sh("echo b > b.txt && git add b.txt && git commit -qm b && exit 1")
        ),
    );
    // Failed with nothing committed: what it left is what a person
    // looks into next (it went, as `clean` takes it).
    t.task(
        "p/e",
        &format!(
            "retries: 0\n{}",
            sh("mkdir build && echo trying > build/test.log && exit 3")
        ),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("Task worktrees whose work is merged, removed (worktrees.remove_merged: true):")
        .says(
            "  removed  task/p/a and workspace/worktrees/p/a, with what git ignores in it: build/",
        )
        .says("2 task worktrees kept")
        .never_says("`worktrees.remove_merged: true` removes them");
    assert!(!t.exists("workspace/worktrees/p/a"));
    assert_eq!(t.git(&["branch", "--list", "task/p/a"]), "");
    assert_eq!(integration_log(&t).len(), 2);
    // The failed task's work stays, on its branch and in its worktree.
    assert!(t.exists("workspace/worktrees/p/b/b.txt"));
    assert_eq!(t.git(&["log", "-1", "--format=%s", "task/p/b"]), "b");
    assert!(t.exists("workspace/worktrees/p/e/build/test.log"));
    // Stopped by Ctrl-C once p/c's work is merged and p/d runs: p/c's
    // worktree stays.
    t.task("p/c", &commit("c.txt", "c"));
    let root = t.root.display();
    t.task(
        "p/d",
        &format!(
            "dependencies: [p/c]\n{}",
            sh(&format!("touch {root}/markers/d; sleep 30"))
        ),
    );
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let out = "markers/out";
    let file = std::fs::File::create(t.path(out)).unwrap();
    let mut child = (t.command(&["orchestrate", "--task", "p/c", "--task", "p/d"]))
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    wait_for("p/d to start", || t.exists("markers/d"));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130), "{}", t.read(out));
    assert!(!t.read(out).contains("remove_merged"), "{}", t.read(out));
    assert!(t.exists("workspace/worktrees/p/c/c.txt"));
}

/// With `worktrees.remove_merged: true`, the worktree of a result that
/// awaits approval (`approve: after`, its work merged before the approval)
/// stays for the person asked to look at it, and `clean` keeps it too,
/// saying why; once approved, the next run's end removes it. It was
/// removed by the very run whose summary asked for the approval.
#[test]
fn a_run_with_remove_merged_keeps_a_result_awaiting_approval() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, remove_merged: true}\n");
    t.task("p/a", &format!("approve: after\n{}", commit("a.txt", "a")));
    t.run(&["orchestrate"]).code(4).says("1 task worktree kept");
    assert!(t.exists("workspace/worktrees/p/a/a.txt"));
    t.run(&["clean"])
        .code(0)
        .says("kept     task/p/a: its result awaits approval (`cargo xtask --root");
    assert!(t.exists("workspace/worktrees/p/a/a.txt"));
    t.run(&["approve", "p/a"]).code(0);
    t.run(&["orchestrate"])
        .code(0)
        .says("  removed  task/p/a and workspace/worktrees/p/a");
    assert!(!t.exists("workspace/worktrees/p/a"));
}

/// A Ctrl-C as a run's end removes the worktrees whose work is merged
/// (`worktrees.remove_merged`) stops the removals: what was removed is
/// named, the rest stays for `clean`, and the run exits as a stopped one
/// does. It went on removing them all, said nothing of the Ctrl-C, and
/// exited 0. (A `core.fsmonitor` of git's holds the judging of `p/a`'s
/// worktree until the Ctrl-C is sent.)
#[test]
fn a_ctrl_c_as_a_run_removes_merged_worktrees_stops_the_removals() {
    let t = repo("");
    t.config("kill_grace: 1s\nworktrees: {default: true, remove_merged: true}\n");
    let root = t.root.display();
    let markers = format!("{root}/markers");
    let hook = format!("{markers}/fsmonitor");
    t.write(
        "markers/fsmonitor",
        &format!(
            "#!/bin/sh\ncase \"$PWD\" in */workspace/worktrees/p/a) [ -e {markers}/hold ] && touch {markers}/judging && until [ -e {markers}/release ]; do sleep 0.02; done;; esac\nexit 1\n"
        ),
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    t.git(&["config", "core.fsmonitor", &hook]);
    t.task("p/a", &commit("a.txt", "a"));
    let b = format!("touch {markers}/hold && echo b > b.txt && git add b.txt && git commit -qm b");
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh(&b)));
    let out = "markers/out";
    let file = std::fs::File::create(t.path(out)).unwrap();
    let mut child = (t.command(&["orchestrate"]))
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    wait_for("the run's end to judge p/a's worktree", || {
        t.exists("markers/judging")
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    t.write("markers/release", "");
    assert_eq!(child.wait().unwrap().code(), Some(130), "{}", t.read(out));
    let said = t.read(out);
    assert!(
        said.contains("  removed  task/p/a and workspace/worktrees/p/a"),
        "{said}"
    );
    assert!(!said.contains("removed  task/p/b"), "{said}");
    assert!(
        said.contains("stopped: the task worktrees whose work is merged that are left stay"),
        "{said}"
    );
    assert!(t.exists("workspace/worktrees/p/b/b.txt"));
    assert_eq!(t.git(&["log", "-1", "--format=%s", "task/p/b"]), "b");
}

/// A worktree task found during the run whose branch would be another's
/// (`p/a b` beside `p/a-b`), or hold another's (`p/x` beside `p/x/y`), is
/// refused as a run's start refuses it, at its file, and never starts. It
/// started and failed on the other's worktree (`branch task/p/a-b is
/// checked out at ...`), and the next run refused the definitions.
#[test]
fn a_task_found_during_the_run_whose_branch_clashes_is_refused() {
    let t = repo("");
    t.task("p/a-b", &commit("a.txt", "a"));
    t.task("p/x/y", &commit("y.txt", "y"));
    t.write("generated.md", &format!("---\n{}\n---\n", sh("touch ran")));
    for (gen, name) in [("g/1", "a b"), ("g/2", "x")] {
        let generating = sh(&format!("cp generated.md \"$TASKS_DIR/p/{name}.md\""));
        t.task(gen, &format!("workdir: root\n{generating}"));
    }
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says("tasks/p/a b.md: its branch would be `task/p/a-b`, as `p/a-b`'s: rename one of the two files")
        .says("tasks/p/x.md: its branch would be `task/p/x`, holding `p/x/y`'s `task/p/x/y`");
    assert!(!t.exists("ran"), "{}", run.said());
    assert!(!t.exists("workspace/status/p/a b.json"));
    t.run(&["validate"])
        .code(2)
        .says("rename one of the two files");
}

/// A branch of the user's with the integration branch's name is never
/// taken over and moved: the run stops before anything starts.
#[test]
fn a_branch_of_the_user_s_named_like_the_integration_branch_is_refused() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.git(&["branch", "integration"]);
    let before = t.git(&["rev-parse", "integration"]);
    t.run(&["orchestrate"])
        .code(2)
        .says("a branch `integration` exists and was not made by cargo xtask: merges would move it; set worktrees.integration to a new name, or rename that branch");
    assert_eq!(t.git(&["rev-parse", "integration"]), before);
    assert!(!t.exists("workspace/status/p/a.json"));
    // Another name: the run makes its own.
    t.config("kill_grace: 1s\nworktrees: {default: true, integration: merged}\n");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "merged:a.txt"]), "a");
    assert_eq!(t.git(&["rev-parse", "integration"]), before);
}

/// A task run again (reset with what it depends on) starts from what its
/// dependencies merged since: its reused worktree, with nothing of its own
/// unmerged, is brought to the integration tip.
#[test]
fn a_dependent_run_again_starts_from_its_dependency_s_new_work() {
    let t = repo("");
    t.task(
        "p/a",
        &sh("date +%s%N > a.txt && git add a.txt && git commit -qm 'a run'"),
    );
    t.task(
        "p/d",
        &format!(
            "dependencies: [p/a]\n{}",
            sh("cp a.txt $TASK_OUTPUT_DIR/seen")
        ),
    );
    t.run(&["orchestrate", "-q"]).code(0);
    t.run(&["reset", "p/a", "--downstream"]).code(0);
    t.run(&["orchestrate", "-q"]).code(0);
    let merged = t.git(&["show", "integration:a.txt"]);
    assert_eq!(t.read("workspace/outputs/p/d/seen").trim(), merged);
    assert_eq!(
        t.status("p/d")["base_commit"],
        t.git(&["rev-parse", "integration"])
    );
}

/// While a task's work waits in the merge queue, `why` says so, and not
/// that it is running.
#[test]
fn why_and_progress_tell_a_task_waiting_for_its_merge() {
    let t = repo("");
    let markers = t.path("markers");
    std::fs::create_dir_all(&markers).unwrap();
    let m = markers.display();
    t.task(
        "p/a",
        &sh(&format!(
            "echo a > a.txt && git add a.txt && git commit -qm a && touch {m}/ran"
        )),
    );
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    // Holds the integration branch's move by the merge (not its making).
    t.hook_the_orchestrator_runs(
        "reference-transaction",
        &format!(
            "#!/bin/sh\n[ \"$1\" = prepared ] || exit 0\ngrep -q ' refs/heads/integration$' || exit 0\ncd {m} || exit 1\n[ -f ran ] || exit 0\ntouch held\nwhile [ ! -f go ]; do sleep 0.02; done\n"
        ),
    );
    let mut run = t.start(&["orchestrate", "-q"]);
    wait_for("the merge to be held", || t.exists("markers/held"));
    let why = t.run(&["why", "p/a"]);
    why.code(0)
        .says("p/a has ended; its work waits in the merge queue");
    assert!(!why.stdout.contains("is running on"), "{}", why.stdout);
    let json = t.run(&["progress", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["total"]["running"], 1, "{doc}");
    assert_eq!(doc["total"]["merging"], 1, "{doc}");
    assert_eq!(doc["phases"][0]["running_tasks"][0]["merging"], true);
    assert_eq!(doc["tasks"][0]["state"], "merging");
    t.run(&["progress"])
        .code(0)
        .says("Running: 1 (1 merging)")
        .says("    merging  p/a  agent-1")
        .says("1 running (1 merging), 0 failed");
    t.run(&["next"])
        .code(0)
        .says("p/b: waits on p/a (its work waits in the merge queue)");
    t.write("markers/go", "");
    assert!(run.wait().unwrap().success());
}

/// The report's timeline shows a worktree task as its merge ended it
/// (completed here), not as the agent's exit to the merge queue left it.
#[test]
fn the_report_shows_merged_worktree_tasks_completed() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/b", &sh("echo b > b.txt"));
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert_eq!(html.matches("class=\"bar completed").count(), 2, "{html}");
    assert!(!html.contains("class=\"bar failed"), "{html}");
}

/// `rm -rf workspace` (to start the budget over, say) leaves the
/// integration worktree registered without its folder: the next run makes
/// it again and merges.
#[test]
fn a_run_after_the_workspace_was_removed_merges() {
    let t = repo("");
    // Run again (its status went with the workspace): it changes nothing.
    t.task("p/a", &sh("echo a > a.txt"));
    t.run(&["orchestrate"]).code(0);
    std::fs::remove_dir_all(t.path("workspace")).unwrap();
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "integration:b.txt"]), "b");
}

/// The fault-injection test of `reliability.rs`, for merges: the
/// orchestrator is killed (SIGKILL) at random moments while worktree tasks
/// finish and their work is merged, and restarted. In the end every task's
/// commit is on the integration branch exactly once, in a line, and no
/// rebase is left half done.
#[test]
fn killing_the_orchestrator_during_merges_loses_no_commit_and_merges_nothing_twice() {
    let seed = match std::env::var("FAULT_SEED") {
        Ok(seed) => seed.parse().unwrap(),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!("fault injection seed: {seed}");
    let mut rng = Lcg(seed);
    let t = repo("max_concurrent_agents: 4\n");
    // Slow checkouts (made during a rebase and a fast-forward) widen the
    // moments a kill lands in the middle of a merge.
    t.hook_the_orchestrator_runs("post-checkout", "#!/bin/sh\nsleep 0.05\n");
    let n: usize = 16;
    for i in 0..n {
        let deps = if i >= 4 && i % 3 == 0 {
            format!("dependencies: [p/t{:02}]\n", rng.below(i as u64))
        } else {
            String::new()
        };
        let ms = 50 + rng.below(200);
        // Half commit their work, half leave it for the leftovers commit.
        let work = if i % 2 == 0 {
            format!("sleep 0.{ms:03}; echo {i} > t{i}.txt && git add t{i}.txt && git commit -q -m 'write t{i}.txt'")
        } else {
            format!("sleep 0.{ms:03}; echo {i} > t{i}.txt")
        };
        t.task(&format!("p/t{i:02}"), &format!("{deps}{}", sh(&work)));
    }
    let mut kills = 0;
    while kills < 8 {
        let mut orchestrator = t
            .command(&["orchestrate", "-q"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150 + rng.below(300)));
        if orchestrator.try_wait().unwrap().is_some() {
            break;
        }
        orchestrator.kill().unwrap();
        orchestrator.wait().unwrap();
        kills += 1;
    }
    eprintln!("killed the orchestrator {kills} times");
    t.run(&["orchestrate"]).code(0);
    let log = t.git(&["log", "--format=%s", "integration"]);
    assert_eq!(
        t.git(&["log", "--merges", "--format=%H", "integration"]),
        ""
    );
    for i in 0..n {
        let id = format!("p/t{i:02}");
        assert_eq!(t.state(&id), "completed", "{id}");
        // Its work, once: its own commit or the leftovers commit.
        let subject = if i % 2 == 0 {
            format!("write t{i}.txt")
        } else {
            format!("{id}: uncommitted changes left by the agent")
        };
        assert_eq!(
            log.lines().filter(|l| **l == subject).count(),
            1,
            "{subject} in:\n{log}"
        );
        assert_eq!(
            t.git(&["show", &format!("integration:t{i}.txt")]),
            i.to_string()
        );
        let merged = t.status(&id)["merged_commit"].as_str().unwrap().to_owned();
        t.git(&["merge-base", "--is-ancestor", &merged, "integration"]);
        let worktree = t.path(&format!("workspace/worktrees/{id}"));
        let state = t.git(&["-C", worktree.to_str().unwrap(), "status", "--porcelain"]);
        assert_eq!(state, "", "{id}'s worktree is not clean");
    }
    assert_eq!(
        t.git(&["status", "--porcelain"]),
        "",
        "the user's checkout changed"
    );
}

/// Git writes CHERRY_PICK_HEAD for every commit a rebase picks, and deletes
/// it under the shared packed-refs.lock. A git killed as it opened that
/// lock leaves it (its signal handler does not know it yet), and while it
/// is there every such deletion fails and `git rebase` and `git rebase
/// --abort` go on, exit 0: the queue's own CHERRY_PICK_HEAD stayed, and a
/// redone merge took it for the agent's unfinished cherry-pick (once in
/// the merge fault-injection test). The queue waits out a lock there
/// before it merges; here a hook leaves one during the rebase itself, in
/// the pick of p/b's leftovers commit, and (`kill`) holds the rebase while
/// the orchestrator is killed.
#[test]
fn a_cherry_pick_head_the_queue_s_rebase_left_is_not_taken_for_the_agent_s() {
    for kill in [false, true] {
        let t = repo("");
        let markers = t.path("markers");
        std::fs::create_dir_all(&markers).unwrap();
        let m = markers.display();
        // Failed deletions fail at once, not after a second each.
        t.git(&["config", "core.packedRefsTimeout", "0"]);
        t.task("p/a", &commit("a.txt", "a"));
        // Ends after p/a: its merge rebases onto p/a's commit, a pick.
        t.task("p/b", &sh("sleep 0.5; echo b > b.txt"));
        t.hook_the_orchestrator_runs(
            "post-commit",
            &format!(
                "#!/bin/sh\n[ -e \"$(git rev-parse --git-path CHERRY_PICK_HEAD)\" ] || exit 0\n[ -e {m}/picked ] && exit 0\n: > \"$(git rev-parse --git-common-dir)/packed-refs.lock\"\ntouch {m}/picked\n[ {kill} = true ] || exit 0\nwhile [ ! -f {m}/go ]; do sleep 0.02; done\n"
            ),
        );
        if kill {
            let mut run = t.start(&["orchestrate", "-q"]);
            wait_for("the pick", || t.exists("markers/picked"));
            run.kill().unwrap();
            run.wait().unwrap();
            t.write("markers/go", "");
        }
        t.run(&["orchestrate"]).code(0);
        assert!(t.exists("markers/picked"));
        assert_eq!(t.state("p/b"), "completed");
        assert_eq!(t.git(&["show", "integration:b.txt"]), "b");
        let worktree = t.path("workspace/worktrees/p/b");
        let head = t.git(&[
            "-C",
            worktree.to_str().unwrap(),
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "CHERRY_PICK_HEAD",
        ]);
        assert!(
            !std::path::Path::new(&head).exists(),
            "kill: {kill}: {head} left"
        );
    }
}

/// The git commands of a killed orchestrator, and what they started (a
/// hook still running), end before the next orchestrator touches the
/// repository: it waits for them, and says so.
#[test]
fn the_next_run_waits_for_what_the_gits_of_a_killed_orchestrator_started() {
    let t = repo("");
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let m = t.path("markers");
    let m = m.display();
    // The first checkout's hook runs until released (at most a minute).
    t.hook_the_orchestrator_runs(
        "post-checkout",
        &format!(
            "#!/bin/sh
[ -e {m}/hook-started ] && exit 0
touch {m}/hook-started
i=0
while [ ! -e {m}/release ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i+1)); done
touch {m}/hook-ended
"
        ),
    );
    t.task("p/a", &sh("echo a > a.txt"));
    let mut first = t.start(&["orchestrate"]);
    wait_for("the hook to start", || t.exists("markers/hook-started"));
    first.kill().unwrap();
    first.wait().unwrap();
    // A command that runs no git does not wait for them.
    let reset = t.run(&["reset", "p/a"]);
    assert!(!reset.stderr.contains("waiting"), "{}", reset.stderr);
    assert!(!t.exists("markers/hook-ended"));
    let err = std::fs::File::create(t.path("markers/err")).unwrap();
    let mut second = t
        .command(&["orchestrate"])
        .stdout(std::process::Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap();
    let waits = "waiting for the git commands of an earlier run to end";
    wait_for("the second run to wait, or to end", || {
        t.read("markers/err").contains(waits) || second.try_wait().unwrap().is_some()
    });
    assert!(
        t.read("markers/err").contains(waits),
        "{}",
        t.read("markers/err")
    );
    assert!(!t.exists("markers/hook-ended"));
    assert!(!t.exists("workspace/status/p/a.json"));
    t.write("markers/release", "");
    assert_eq!(
        second.wait().unwrap().code(),
        Some(0),
        "{}",
        t.read("markers/err")
    );
    assert!(t.exists("markers/hook-ended"));
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

/// A daemon a hook started, still running after a run that ended in
/// order, does not hold the next run back: that run waited for its gits.
#[test]
fn a_hook_s_daemon_left_by_a_run_that_ended_in_order_holds_no_run_back() {
    let t = repo("");
    hook_leaving_a_daemon(&t, ">/dev/null 2>&1");
    t.task("p/a", &sh("echo a > a.txt"));
    t.run(&["orchestrate"]).code(0);
    assert!(t.exists("markers/daemon"));
    t.task("p/b", &sh("echo b > b.txt"));
    let second = t.run(&["orchestrate"]);
    assert!(t.exists("markers/daemon"), "the daemon ended first");
    t.write("markers/release", "");
    second.code(0);
    assert!(
        !second.stderr.contains("waiting for the git commands"),
        "{}",
        second.stderr
    );
    assert_eq!(t.state("p/b"), "completed");
}

/// A daemon a hook started that keeps git's stdout and stderr open does
/// not hold the run: a git call ends when git exits, not when its pipes
/// close (before, the run waited for the daemon, here a minute and a half).
#[test]
fn a_hook_s_daemon_holding_git_s_output_does_not_hold_the_run() {
    let t = repo("");
    hook_leaving_a_daemon(&t, "");
    t.task("p/a", &sh("echo a > a.txt"));
    let run = t.run(&["orchestrate"]);
    assert!(t.exists("markers/daemon"), "the run waited for the daemon");
    t.write("markers/release", "");
    run.code(0);
    assert_eq!(t.state("p/a"), "completed");
}

/// The first checkout's post-checkout hook leaves a daemon, its output
/// sent as `redirect` says (git's stdout and stderr when empty), which
/// runs until `markers/release` is made (at most a minute and a half).
/// The hook ends once the daemon runs (a busy machine started it after
/// the run had ended).
fn hook_leaving_a_daemon(t: &Tree, redirect: &str) {
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let m = t.path("markers");
    let m = m.display();
    let daemon = format!("touch {m}/daemon; i=0; while [ ! -e {m}/release ] && [ $i -lt 9000 ]; do sleep 0.01; i=$((i+1)); done; rm {m}/daemon");
    t.hook_the_orchestrator_runs(
        "post-checkout",
        &format!(
            "#!/bin/sh
[ -e {m}/hooked ] && exit 0
touch {m}/hooked
echo hooked
( {daemon} ) {redirect} &
while [ ! -e {m}/daemon ]; do sleep 0.01; done
"
        ),
    );
}

/// With commits to be signed (`commit.gpgsign`) and signing impossible
/// here (no terminal for a passphrase; `gpg.program` fails), the queue's
/// rebase and the commit of leftovers fail saying why and what to do,
/// without git's hints to go on with a rebase that was undone; with
/// signing off, the next run merges them.
#[test]
fn commits_git_cannot_sign_fail_saying_why_and_what_to_do() {
    let t = repo("");
    let unsigned = |file: &str| {
        sh(&format!("echo {file} > {file} && git add {file} && (git diff --cached --quiet || git -c commit.gpgsign=false commit -q -m 'write {file}')"))
    };
    t.task("p/a", &unsigned("a.txt"));
    t.task(
        "p/b",
        &format!("dependencies: [p/a]\n{}", unsigned("b.txt")),
    );
    // Started beside p/a: rebased onto it at its merge.
    t.task("p/c", &unsigned("c.txt"));
    t.task("p/d", &sh("echo d > d.txt"));
    t.git(&["config", "commit.gpgsign", "true"]);
    t.git(&["config", "gpg.program", "false"]);
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says("cannot ask for a passphrase here: give it to your agent first, gpg-agent or ssh-agent, or turn signing off for this repository: `git config commit.gpgsign false`");
    assert!(!run.stdout.contains("hint:"), "{}", run.stdout);
    t.git(&["config", "commit.gpgsign", "false"]);
    t.run(&["orchestrate"]).code(0);
}

/// After worktrees.integration names another branch, the integration
/// worktree of the one before is said to be that (ours), with how to
/// remove it, not taken for someone else's; removed, the run goes on.
#[test]
fn the_integration_worktree_of_the_branch_before_a_rename_is_said_to_be_ours() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    t.config("kill_grace: 1s\nworktrees: {default: true, integration: integ2}\n");
    let dir = t.path("workspace/worktrees/.integration");
    let said = format!("{} is the worktree of `integration`, the integration branch before worktrees.integration named `integ2`: remove it (`git worktree remove {}`: branch `integration` and what was merged into it stay), or set worktrees.integration back to `integration`", dir.display(), dir.display());
    t.run(&["validate"]).code(2).says(&said);
    t.run(&["orchestrate"]).code(2).says(&said);
    t.git(&["worktree", "remove", dir.to_str().unwrap()]);
    t.task("p/b", &commit("b.txt", "b"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "integ2:b.txt"]), "b");
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

/// A git on PATH that records its arguments in `markers/git-calls`, then
/// runs the real git; returns the PATH that finds it first.
fn recording_git(t: &Tree) -> String {
    let calls = t.path("markers/git-calls");
    git_wrapped(t, &format!("echo \"$*\" >> {}\n", calls.display()))
}

/// The path of the git on PATH.
fn real_git() -> String {
    let real = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    String::from_utf8(real.stdout).unwrap().trim().to_owned()
}

/// A PATH whose `git` runs the shell `script` first (its arguments in
/// `$*`), then the real git.
fn git_wrapped(t: &Tree, script: &str) -> String {
    t.write_executable(
        "markers/bin/git",
        &format!("#!/bin/sh\n{script}exec {} \"$@\"\n", real_git()),
    );
    format!(
        "{}:{}",
        t.path("markers/bin").display(),
        std::env::var("PATH").unwrap()
    )
}

/// A task's worktree removed by hand (`rm -rf`) as its merge begins, after
/// the queue found it there: the task fails, its commits kept on its
/// branch, and the queue goes on (it stopped, leaving every later task's
/// work unmerged for the next run). The removal is made by a `git` on PATH
/// at the queue's first look into that worktree, to hit that moment.
#[test]
fn a_worktree_removed_as_its_merge_begins_fails_its_task_and_the_queue_goes_on() {
    let t = repo("");
    let (wt, ended, removed) = (
        t.path("workspace/worktrees/p/a"),
        t.path("markers/a-ended"),
        t.path("markers/removed"),
    );
    let path = git_wrapped(
        &t,
        &format!(
            "case \"$*\" in\n  \"-C {wt} rev-parse --absolute-git-dir\") [ -e {ended} ] && [ ! -e {removed} ] && rm -rf {wt} && touch {removed};;\nesac\n",
            wt = wt.display(),
            ended = ended.display(),
            removed = removed.display(),
        ),
    );
    t.task(
        "p/a",
        &sh(&format!(
            "echo a > a.txt && git add a.txt && git commit -q -m 'write a.txt' && touch {}",
            ended.display()
        )),
    );
    // p/b reaches the queue after p/a's merge was tried.
    t.task(
        "p/b",
        &sh(&format!(
            "while [ ! -e {} ]; do sleep 0.02; done; echo b > b.txt && git add b.txt && git commit -q -m 'write b.txt'",
            removed.display()
        )),
    );
    let out = t
        .command(&["orchestrate"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(t.exists("markers/removed"), "{said}");
    assert_eq!(t.state("p/a"), "failed", "{said}");
    assert!(
        t.status("p/a")["error"]
            .as_str()
            .unwrap()
            .contains("is no longer a worktree of this repository"),
        "{said}"
    );
    assert_eq!(t.git(&["show", "task/p/a:a.txt"]), "a");
    assert_eq!(t.state("p/b"), "completed", "{said}");
    assert_eq!(t.git(&["show", "integration:b.txt"]), "b");
}

/// The orchestrator killed as it makes the integration branch, at the git
/// that marks it as its own or at the one that makes it, leaves nothing
/// that stops the next run (made first, the branch was left unmarked: the
/// user's, to every later run, which exited 2).
#[test]
fn an_integration_branch_half_made_by_a_killed_run_stops_no_later_run() {
    for at in ["config branch.integration.xtaskbase", "branch integration "] {
        let t = repo("");
        t.task("p/a", &commit("a.txt", "a"));
        let killed = t.path("markers/killed");
        let path = git_wrapped(
            &t,
            &format!(
                "case \"$*\" in\n  \"{at}\"*) [ -e {killed} ] || {{ touch {killed}; kill -9 $PPID; exit 1; }};;\nesac\n",
                killed = killed.display(),
            ),
        );
        let first = t
            .command(&["orchestrate"])
            .env("PATH", &path)
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            first.status.signal(),
            Some(9),
            "killed at `{at}`: {}{}",
            String::from_utf8_lossy(&first.stdout),
            String::from_utf8_lossy(&first.stderr)
        );
        t.run(&["orchestrate"]).code(0);
        assert_eq!(
            t.git(&["show", "integration:a.txt"]),
            "a",
            "killed at `{at}`"
        );
    }
}

/// The repository's config is shared by every worktree: an agent or the
/// user running `git config` holds its lock for a moment, and git never
/// waits for it. The run waits, where it marks a branch as its own.
#[test]
fn a_config_locked_by_another_git_for_a_moment_is_waited_for() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    let path = recording_git(&t);
    integration_made_before(&t);
    t.write(".git/config.lock", "");
    let mut orchestrator = t
        .command(&["orchestrate", "-q"])
        .env("PATH", path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the run to try to mark the task's branch", || {
        std::fs::read_to_string(t.path("markers/git-calls"))
            .is_ok_and(|calls| calls.contains("config branch.task/p/a.xtaskbase"))
    });
    std::fs::remove_file(t.path(".git/config.lock")).unwrap();
    assert!(orchestrator.wait().unwrap().success());
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

#[test]
fn a_config_lock_that_stays_fails_the_task_and_names_the_fix() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    integration_made_before(&t);
    t.write(".git/config.lock", "");
    t.run(&["orchestrate"])
        .code(1)
        .says("could not lock config file")
        .says("the repository's config is locked, and stayed so for 2s: another git is writing it, or one was killed while it did; when no git runs, remove the `config.lock` beside it");
    // Nothing of the task was made: no branch, no worktree.
    assert_eq!(t.git(&["branch", "--list", "task/*"]), "");
    assert!(!t.exists("workspace/worktrees/p/a"));
}

/// Once the config's lock has outlasted the wait, the run takes it for
/// stale: the next task's write tries once (on whichever thread makes its
/// worktree), so that every start does not stall for the wait again.
#[test]
fn after_a_lock_outlasted_the_wait_the_next_write_tries_once() {
    let t = repo("");
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/b", &commit("b.txt", "b"));
    let path = recording_git(&t);
    integration_made_before(&t);
    t.write(".git/config.lock", "");
    let run: Run = t
        .command(&["orchestrate", "-j", "1"])
        .env("PATH", path)
        .output()
        .unwrap()
        .into();
    run.code(1).says("stayed so for 2s");
    let calls = std::fs::read_to_string(t.path("markers/git-calls")).unwrap();
    let mut tries: Vec<usize> = ["p/a", "p/b"]
        .iter()
        .map(|id| {
            let write = format!("config branch.task/{id}.xtaskbase");
            calls
                .lines()
                .filter(|line| line.starts_with(&write))
                .count()
        })
        .collect();
    tries.sort();
    // The first task to start waited, trying again and again; the other
    // tried once.
    assert_eq!(tries[0], 1, "git calls:\n{calls}");
    assert!(tries[1] > 1, "git calls:\n{calls}");
}

#[test]
fn a_config_write_outlives_a_killed_orchestrator_and_leaves_no_lock() {
    let t = repo("");
    t.task("p/a", &sh(MARK));
    let markers = t.path("markers");
    std::fs::create_dir_all(&markers).unwrap();
    // A `git` before the real one that holds the write of the task branch's
    // mark for a moment: the orchestrator is killed meanwhile. Stopped with
    // it, a `git config` can leave the shared config's lock behind (when the
    // signal lands before git arms its cleanup), which fails every later
    // write, and which is not the orchestrator's to remove.
    let path = git_wrapped(
        &t,
        &format!(
            "case \"$*\" in *'config branch.task/p/a.xtaskbase '*) touch {m}/config-held; sleep 0.5 ;; esac\n",
            m = markers.display()
        ),
    );
    let mut orchestrator = t
        .command(&["orchestrate", "-q"])
        .env("PATH", path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the mark's write to be held", || {
        t.exists("markers/config-held")
    });
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    // The write ends on its own, and takes its lock with it.
    wait_for("the mark to be written", || {
        std::process::Command::new("git")
            .args(["config", "--get", "branch.task/p/a.xtaskbase"])
            .current_dir(t.path(""))
            .output()
            .unwrap()
            .status
            .success()
    });
    assert!(!t.exists(".git/config.lock"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
}

/// A git the orchestrator runs dies with it, and removes its lock files as
/// it does: here the making of a task's branch, killed while a slow
/// `reference-transaction` hook runs with the branch's ref locked.
#[test]
fn a_git_killed_with_the_orchestrator_leaves_no_lock_behind() {
    let t = repo("");
    t.task("p/a", &sh(MARK));
    let markers = t.path("markers");
    std::fs::create_dir_all(&markers).unwrap();
    t.hook_the_orchestrator_runs("reference-transaction",
        &format!(
            "#!/bin/sh\n[ \"$1\" = prepared ] || exit 0\ngrep -q ' refs/heads/task/p/a$' || exit 0\ncd {m} || exit 1\n[ -e hooked ] && exit 0\necho $$ > hooked.tmp && mv hooked.tmp hooked\nexec sleep 30\n",
            m = markers.display()
        ),
    );
    let mut orchestrator = t.start(&["orchestrate", "-q"]);
    wait_for("the hook of the branch's making", || {
        t.exists("markers/hooked")
    });
    let lock = t.path(".git/refs/heads/task/p/a.lock");
    assert!(lock.exists());
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    wait_for("the killed git to remove its lock", || !lock.exists());
    let hook = read_pid(&t.path("markers/hooked"));
    unsafe { libc::kill(hook as i32, libc::SIGKILL) };
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
}

/// Without a folder, the demo makes a new one in the temporary folder,
/// only the user's: never one that was there, which another user could
/// have made to change the agent it runs.
#[test]
fn the_demo_without_a_folder_makes_one_only_its_user_may_change() {
    use std::os::unix::fs::PermissionsExt;
    let t = Tree::new();
    let run: Run = std::process::Command::new(BIN)
        .arg("demo")
        .env("TMPDIR", &t.root)
        .output()
        .unwrap()
        .into();
    run.code(0);
    let dir = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("A demo repository in "))
        .and_then(|l| l.split(':').next())
        .expect("the demo names its folder")
        .to_owned();
    assert!(std::path::Path::new(&dir).starts_with(&t.root), "{dir}");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{dir}: {mode:o}");
    // `--root` names a repository to run in, which the demo is not: it
    // is refused, not ignored.
    let run: Run = std::process::Command::new(BIN)
        .args(["--root", "elsewhere", "demo"])
        .env("TMPDIR", &t.root)
        .output()
        .unwrap()
        .into();
    run.code(2).says("give its folder as DIR (`demo elsewhere`");
}

/// `demo --help` lists no `--root`, which the demo refuses (it makes a
/// repository of its own, in DIR): it listed it, as every command does,
/// with a default that said `demo` makes its own. Typed all the same, it
/// is still refused, not ignored; the other commands still list it.
#[test]
fn the_demo_s_help_lists_no_root_it_refuses() {
    let t = Tree::new();
    let help = t.run(&["demo", "--help"]);
    help.code(0).says("Usage: cargo xtask demo ");
    assert!(!help.stdout.contains("--root"), "{}", help.stdout);
    for refused in [
        &["demo", "--root", "elsewhere"][..],
        &["--root", "elsewhere", "demo"],
    ] {
        let run: Run = std::process::Command::new(BIN)
            .args(refused)
            .env("TMPDIR", &t.root)
            .output()
            .unwrap()
            .into();
        run.code(2).says("give its folder as DIR (`demo elsewhere`");
    }
    t.run(&["orchestrate", "--help"])
        .code(0)
        .says("--root <DIR>")
        .says("Repository root holding tasks/ and workspace/ [default: this repository]\n");
}

#[test]
fn the_demo_runs_agents_side_by_side_and_reports_the_conflict() {
    let dir = std::env::temp_dir().join(format!("xtask-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Named relative to the current folder, as a user types it.
    let run: Run = std::process::Command::new(BIN)
        .arg("demo")
        .arg(dir.file_name().unwrap())
        .current_dir(std::env::temp_dir())
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
        .into();
    run.code(0)
        .says("merge conflict: src/lexer.rs")
        .says("The integration branch")
        .says("01-build/01-lexer: // lexer: tokens in one pass")
        .says("01-build/03-docs: uncommitted changes left by the agent");
    let status = |id: &str| -> serde_json::Value {
        let text =
            std::fs::read_to_string(dir.join(format!("workspace/status/{id}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    assert!(status("01-build/04-rename")["error"]
        .as_str()
        .unwrap()
        .starts_with(
            "merge conflict: src/lexer.rs: rebase `task/01-build/04-rename` onto `integration`"
        ));
    assert_eq!(status("02-check/02-names")["status"], "blocked");
    let check = std::fs::read_to_string(dir.join("workspace/logs/02-check/01-build.log")).unwrap();
    assert!(
        check.contains("Guide: errors now name their line."),
        "{check}"
    );
    // As the demo suggests: run again; the retry starts over from the
    // merged work, its merge goes through, and what it blocked runs.
    let again: Run = std::process::Command::new(BIN)
        .arg("--root")
        .arg(&dir)
        .arg("orchestrate")
        .output()
        .unwrap()
        .into();
    again.code(0);
    assert_eq!(status("01-build/04-rename")["status"], "completed");
    assert_eq!(status("02-check/02-names")["status"], "completed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run whose `p/a` merged `a.txt` into the integration branch, which is
/// then deleted by hand (its worktree first, as git requires), and a task
/// `p/c` that depends on `p/a` added.
fn integration_deleted_after_a_merge(t: &Tree, before_deleting: &[&str]) {
    t.task("p/a", &commit("a.txt", "a"));
    t.run(&["orchestrate"]).code(0);
    if !before_deleting.is_empty() {
        t.git(before_deleting);
        t.git(&["commit", "-q", "-m", "squash"]);
    }
    t.git(&["worktree", "remove", "workspace/worktrees/.integration"]);
    t.git(&["branch", "-D", "integration"]);
    t.task("p/c", "dependencies: [p/a]\ncommand: cat a.txt");
}

/// The integration branch deleted by hand is made again from the base: when
/// the base lacks what completed tasks merged into it, the run says so,
/// naming the files, the commit that has them and how to give it back.
#[test]
fn an_integration_branch_made_again_without_merged_work_is_warned_of() {
    let t = repo("");
    integration_deleted_after_a_merge(&t, &[]);
    let merged = t.status("p/a")["merged_commit"]
        .as_str()
        .unwrap()
        .to_owned();
    let short = &merged[..12];
    t.run(&["orchestrate"]).code(1).says(&format!(
        "warning: the integration branch `integration` was gone: made again from `HEAD` (worktrees.base), which lacks work completed tasks merged into it (a.txt: not as in {short}, the merge of p/a)"
    )).says(&format!("`git merge {short}`"));
}

/// Squash-merged into the base before it was deleted, the integration
/// branch's work is in the base by content, not by ancestry: no warning.
#[test]
fn an_integration_branch_squash_merged_then_deleted_is_made_again_in_silence() {
    let t = repo("");
    integration_deleted_after_a_merge(&t, &["merge", "-q", "--squash", "integration"]);
    let run = t.run(&["orchestrate"]);
    run.code(0);
    assert!(!run.stdout.contains("was gone"), "{}", run.stdout);
    assert!(!run.stderr.contains("was gone"), "{}", run.stderr);
}

/// A post-checkout hook in `t`'s repository that, in the worktrees `which`
/// matches (a `case` pattern of the folder), writes its pid in `hook.pid`
/// and waits for the file `go` (none if it is there).
fn post_checkout_that_hangs(t: &Tree, which: &str) {
    let root = t.root.display();
    t.hook_the_orchestrator_runs(
        "post-checkout",
        &format!("#!/bin/sh\ncase $PWD in {which}) ;; *) exit 0;; esac\n[ -e {root}/go ] && exit 0\necho $$ > {root}/hook.pid\nuntil [ -e {root}/go ]; do sleep 0.02; done\n"),
    );
}

/// A task's worktree whose making a hook holds (a slow post-checkout, Git
/// LFS's smudge filter in `git worktree add`) holds nothing else: made
/// beside the run, the other tasks start, end and are recorded meanwhile,
/// the task's status says it runs, and it runs once its worktree is made.
#[test]
fn a_worktree_a_hook_holds_as_it_is_made_holds_no_other_task() {
    let t = repo("");
    post_checkout_that_hangs(&t, "*/p%2Fa|*/p/a|*/p");
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/c", &format!("workdir: root\n{}", sh("true")));
    t.task(
        "p/d",
        &format!("workdir: root\ndependencies: [p/c]\n{}", sh("true")),
    );
    let mut child = (t.command(&["orchestrate", "-j", "2"]))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the hook to hold p/a's worktree", || {
        pid_written(&t, "hook.pid")
    });
    let hook = read_pid(&t.path("hook.pid"));
    wait_for("p/d to complete", || t.state("p/d") == "completed");
    assert_eq!(t.state("p/a"), "running");
    let log = t.read("workspace/logs/p/a.log");
    assert!(
        log.ends_with("xtask: preparing its worktree, then it starts\n"),
        "{log}"
    );
    // Looked after by the run, its process not started yet: not gone.
    let progress: serde_json::Value =
        serde_json::from_str(&t.run(&["progress", "--json"]).stdout).unwrap();
    let running = &progress["phases"][0]["running_tasks"][0];
    assert_eq!(running["task_id"], "p/a");
    assert_eq!(running["alive"], true, "{progress}");
    // Its branch, checked out in the worktree being made, is the run's
    // own: no obstacle to `validate` or the dry run.
    t.run(&["validate"]).code(0);
    let plan = t.run(&["orchestrate", "--dry-run"]);
    assert!(
        !plan.stdout.contains("would fail as it starts"),
        "{}",
        plan.stdout
    );
    assert!(alive(hook), "the hook ended before p/d was recorded");
    t.write("go", "");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

/// A repository where several tasks run at once, whose post-checkout
/// hook runs `script` (`{root}` in it the root) as a task's worktree is
/// made (in its folder under `.new`), and a `markers/` folder.
fn repo_whose_new_worktrees_run(script: &str) -> Tree {
    let t = repo("max_memory_gb: 1\n");
    let script = script.replace("{root}", &t.root.display().to_string());
    t.hook_the_orchestrator_runs(
        "post-checkout",
        &format!("#!/bin/sh\ncase $PWD in */.new/*) ;; *) exit 0;; esac\n{script}"),
    );
    std::fs::create_dir_all(t.path("markers")).unwrap();
    t
}

/// Tasks' worktrees are made side by side: three whose post-checkout
/// hooks each wait for the others' to have begun (a checkout that takes
/// minutes, made one at a time, holds up every task behind it) are made
/// at once, and each task's work is merged.
#[test]
fn worktrees_are_made_side_by_side() {
    let t = repo_whose_new_worktrees_run(
        "touch {root}/markers/\"$(basename \"$PWD\")\"\ni=0\nuntil [ \"$(ls {root}/markers | wc -l)\" -ge 3 ]; do\n  i=$((i+1)); [ $i -ge 3000 ] && { echo 'made alone: the other worktrees were not made beside this one' >&2; exit 1; }\n  sleep 0.02\ndone\n",
    );
    for name in ["a", "b", "c"] {
        t.task(&format!("p/{name}"), &commit(&format!("{name}.txt"), name));
    }
    t.run(&["orchestrate", "-j", "3"]).code(0);
    for name in ["a", "b", "c"] {
        assert_eq!(t.git(&["show", &format!("integration:{name}.txt")]), name);
    }
    assert!(!t.exists("workspace/worktrees/.new"));
}

/// A task's branch checked out by hand in the person's checkout (its
/// worktree removed) is said as such, not as commits to merge into the
/// integration branch by hand, which would bypass the queue.
#[test]
fn a_task_branch_checked_out_in_the_checkout_is_not_advised_for_a_merge() {
    let t = repo("");
    let fails = sh("echo b > b.txt && git add b.txt && git commit -q -m b && exit 1");
    t.task("p/b", &format!("retries: 0\n{fails}"));
    t.run(&["orchestrate"]).code(1);
    t.git(&["worktree", "remove", "workspace/worktrees/p/b"]);
    t.git(&["checkout", "-q", "task/p/b"]);
    t.run(&["reset", "p/b"]).code(0);
    t.run(&["orchestrate"])
        .code(1)
        .says("warning: the checkout is on `task/p/b`, a task's branch that cargo xtask made: its work reaches `integration` through the merge queue")
        .never_says("merge <your branch>")
        .never_says("merge task/p/b");
}

/// A Ctrl-C stops every worktree being made, not only one: two tasks'
/// post-checkout hooks that never end both die with their gits, and both
/// tasks end `interrupted`.
#[test]
fn ctrl_c_stops_every_worktree_being_made() {
    let t = repo_whose_new_worktrees_run(
        "echo $$ > {root}/markers/\"$(basename \"$PWD\")\".pid\nuntil [ -e {root}/go ]; do sleep 0.02; done\n",
    );
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/b", &commit("b.txt", "b"));
    let mut child = (t.command(&["orchestrate", "-j", "2"]))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pids = ["markers/p%2Fa.pid", "markers/p%2Fb.pid"];
    wait_for("both hooks to run", || {
        pids.iter().all(|pid| pid_written(&t, pid))
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    // A hook left running would hold the run: `go` ends it after.
    let ended = (0..3000).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        child.try_wait().unwrap().is_some()
    });
    t.write("go", "");
    assert!(ended, "the run did not end: a hook held it");
    assert_eq!(child.wait().unwrap().code(), Some(130));
    for pid in pids {
        assert!(
            !alive(read_pid(&t.path(pid))),
            "{pid}: its hook was left running"
        );
    }
    assert_eq!(t.status("p/a")["ending"], "interrupted");
    assert_eq!(t.status("p/b")["ending"], "interrupted");
    // Nothing ran in them: neither is left in git's list.
    let listed = t.git(&["worktree", "list"]);
    assert!(!listed.contains(".new"), "{listed}");
}

/// A worktree that cannot be made (a post-checkout hook fails, saying why
/// on two lines) fails its task with one line that says it all, and the
/// whole of it in the task's log; the other tasks run.
#[test]
fn a_worktree_a_hook_refuses_fails_its_task_saying_why_on_one_line() {
    let t = repo("");
    t.hook_the_orchestrator_runs(
        "post-checkout",
        "#!/bin/sh\ncase $PWD in */p%2Fa|*/p/a|*/p) ;; *) exit 0;; esac\necho 'lfs: object missing' >&2\necho 'run git lfs fetch' >&2\nexit 1\n",
    );
    t.task("p/a", &commit("a.txt", "a"));
    t.task("p/c", &format!("workdir: root\n{}", sh("true")));
    let run = t.run(&["orchestrate"]);
    run.code(1);
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(!error.contains('\n'), "{error}");
    assert!(
        error.contains("lfs: object missing; run git lfs fetch"),
        "{error}"
    );
    let log = t.read("workspace/logs/p/a.log");
    assert!(
        log.contains("lfs: object missing\nrun git lfs fetch"),
        "{log}"
    );
    assert_eq!(t.state("p/c"), "completed");
    // The worktree git made before its hook failed is not left behind.
    let listed = t.git(&["worktree", "list"]);
    assert!(!listed.contains(".new"), "{listed}");
    assert!(!t.exists("workspace/worktrees/.new"));
}

/// The orchestrator killed while a hook holds a task's worktree making,
/// its supervisor alive under another task: the next run, beside that
/// supervisor still, finds the task never started (no supervisor had it)
/// and runs it, rather than waiting on a supervisor that never had it.
#[test]
fn a_task_whose_worktree_was_being_made_as_the_orchestrator_died_runs_next_time() {
    let t = repo("");
    post_checkout_that_hangs(&t, "*/p%2Fa|*/p/a|*/p");
    t.task("p/a", &commit("a.txt", "a"));
    let c = "touch markers/c-runs; until [ -e markers/c-go ]; do sleep 0.02; done";
    t.task("p/c", &format!("workdir: root\n{}", sh(c)));
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let quiet = |args: &[&str]| {
        (t.command(args))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = quiet(&["orchestrate", "-j", "2"]);
    wait_for("the hook to hold p/a's worktree", || {
        pid_written(&t, "hook.pid")
    });
    wait_for("p/c to run", || t.exists("markers/c-runs"));
    first.kill().unwrap();
    first.wait().unwrap();
    t.write("go", "");
    let mut next = quiet(&["orchestrate", "-j", "2"]);
    wait_for("p/a to complete", || t.state("p/a") == "completed");
    assert_eq!(t.state("p/c"), "running");
    t.write("markers/c-go", "");
    assert_eq!(next.wait().unwrap().code(), Some(0));
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
    assert_eq!(t.state("p/c"), "completed");
}

/// A repository whose post-checkout hook never ends (until the file `go`
/// is there) in the worktrees `which` matches (a `case` pattern of the
/// folder), and a task `p/a`: the run, Ctrl-C once the hook holds it, its
/// exit code and what it printed (stdout and stderr). The hook is gone.
fn ctrl_c_while_a_post_checkout_hangs(which: &str) -> (Tree, Option<i32>, String) {
    let t = repo("");
    post_checkout_that_hangs(&t, which);
    t.task("p/a", &commit("a.txt", "a"));
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let out = "markers/out";
    let file = std::fs::File::create(t.path(out)).unwrap();
    let mut child = (t.command(&["orchestrate"]))
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    wait_for("the hook to hold the run", || pid_written(&t, "hook.pid"));
    let hook = read_pid(&t.path("hook.pid"));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    wait_for("the run to end", || child.try_wait().unwrap().is_some());
    let said = t.read(out);
    assert!(!alive(hook), "the hook was left running: {said}");
    let code = child.wait().unwrap().code();
    t.write("go", "");
    (t, code, said)
}

/// A hook that never ends as a task's worktree is made (post-checkout of
/// `git worktree add`, on the run's own thread) is stopped by the first
/// Ctrl-C with its git: nothing new starts, so the run ends at once, the
/// task interrupted; the next run makes its worktree and runs it.
#[test]
fn ctrl_c_stops_a_hook_that_hangs_as_a_task_s_worktree_is_made() {
    let (t, code, said) = ctrl_c_while_a_post_checkout_hangs("*/p%2Fa|*/p/a|*/p");
    assert_eq!(code, Some(130), "{said}");
    assert!(said.contains("SIGINT received"), "{said}");
    assert_eq!(t.status("p/a")["ending"], "interrupted");
    let log = t.read("workspace/logs/p/a.log");
    assert!(log.contains("xtask: not started: "), "{log}");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

/// The same hook as the integration worktree is made, before anything
/// starts: stopped with its git, the run says so and exits 130; the next
/// run goes on from there.
#[test]
fn ctrl_c_stops_a_hook_that_hangs_as_the_integration_worktree_is_made() {
    let (t, code, said) = ctrl_c_while_a_post_checkout_hangs("*/.integration");
    assert_eq!(code, Some(130), "{said}");
    assert!(
        said.contains("SIGINT received: stopped before any task started"),
        "{said}"
    );
    assert!(!said.contains("error:"), "the stop is no error: {said}");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.git(&["show", "integration:a.txt"]), "a");
}

/// A task's work: `ran` marked in the root (`{root}`), `a.txt` committed.
const COMMIT_A: &str = "touch {root}/ran && echo a > a.txt && git add a.txt && git commit -q -m a";

/// Runs the tree and stops the run (Ctrl-C, then again) while a
/// post-merge hook holds the merge of the work of a task that marked
/// `ran` (`COMMIT_A`): that work is left in the merge queue for the next
/// run, which merges it once `ran` is removed.
fn stop_with_work_in_the_merge_queue(t: &Tree) {
    let root = t.root.display();
    t.hook_the_orchestrator_runs(
        "post-merge",
        &format!(
            "#!/bin/sh
[ -e {root}/ran ] || exit 0
echo $$ > {root}/hook.pid
while :; do sleep 0.02; done
"
        ),
    );
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let out = "markers/out";
    let file = std::fs::File::create(t.path(out)).unwrap();
    let mut child = t.command(&["orchestrate"]).stdout(file).spawn().unwrap();
    wait_for("the hook to hold the merge", || pid_written(t, "hook.pid"));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let said = "leave them to the next run";
    wait_for(said, || t.read(out).contains(said));
    let said = "Killing every running task now";
    signal_until(child.id(), libc::SIGINT, said, || {
        t.read(out).contains(said)
    });
    assert_eq!(child.wait().unwrap().code(), Some(130), "{}", t.read(out));
}

/// The report's cost line counts an attempt whose work a stopped run left
/// in the merge queue: its end, with its cost, is told by the next run as
/// it merges the work (the line was left out).
#[test]
fn the_report_counts_the_cost_of_work_the_next_run_merged() {
    let t = repo("");
    let result = r#"{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":0.25}"#;
    let work = COMMIT_A.replace("{root}", &t.root.display().to_string());
    t.task(
        "p/a",
        &format!(
            "result: claude-json\n{}",
            sh(&format!("{work} && echo '{result}'"))
        ),
    );
    stop_with_work_in_the_merge_queue(&t);
    std::fs::remove_file(t.path("ran")).unwrap();
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("The last run's attempts cost $0.25"),
        "{html}"
    );
}

/// Work a stopped run left in the merge queue is drawn in the report as
/// what it is: the agent's attempt ended (its end is recorded), and the
/// next run merges it, not "the next run records how it ended".
#[test]
fn the_report_says_work_left_in_the_merge_queue_is_merged_next() {
    let t = repo("");
    t.task(
        "p/a",
        &sh(&COMMIT_A.replace("{root}", &t.root.display().to_string())),
    );
    stop_with_work_in_the_merge_queue(&t);
    assert_eq!(progress_task(&t, "p/a")["state"], "merging");
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("its work is left in the merge queue: the next run merges it"),
        "{html}"
    );
    assert!(
        !html.contains("the next run records how it ended"),
        "{html}"
    );
    assert!(html.contains("class=\"bar merging"), "{html}");
    // The next run merges it, starting no task: its attempt, the last
    // run's, is drawn completed, not running until now.
    std::fs::remove_file(t.path("ran")).unwrap();
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(html.contains("class=\"bar completed"), "{html}");
    assert!(!html.contains("class=\"bar running"), "{html}");
}
