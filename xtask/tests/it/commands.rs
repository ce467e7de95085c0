//! The commands besides `orchestrate`.

use crate::tree::*;

#[test]
fn progress_counts_per_phase_and_never_divides_by_zero() {
    let t = Tree::new();
    t.task("01-a/ok", &sh("true"));
    t.task("01-a/bad", &sh("exit 4"));
    t.task(
        "02-b/after",
        &format!("dependencies: [01-a/bad]\n{}", sh("true")),
    );
    t.task("02-b/free", &sh("true"));
    t.write("tasks/03-empty/README.md", "not a task");
    t.run(&["orchestrate", "--task", "01-a/ok", "--task", "01-a/bad"])
        .code(1);
    let run = t.run(&["progress", "--json"]);
    run.code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let phase = |name: &str| {
        json["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["phase"] == name)
            .cloned()
            .unwrap()
    };
    let a = phase("01-a");
    assert_eq!(
        (
            a["total"].as_u64(),
            a["completed"].as_u64(),
            a["failed"].as_u64(),
            a["percent"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(50))
    );
    assert_eq!(a["failed_tasks"][0]["error"], "exit code 4");
    let b = phase("02-b");
    assert_eq!(
        (b["blocked"].as_u64(), b["pending"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(json["total"]["total"], 4);
    t.run(&["progress"])
        .code(0)
        .says("Phase: 01-a")
        .says("Completed: 1 (50%)")
        .says("exit code 4");

    // An empty tree divides by zero nowhere, and says how to add a task.
    let empty = Tree::new();
    empty
        .run(&["progress"])
        .code(2)
        .says("Overall: 0/0 completed (0%)")
        .says("tasks/ has no task yet");
}

/// A status edited by hand to the largest attempt number: its next attempt
/// keeps that number instead of overflowing into a panic.
#[test]
fn the_largest_attempt_number_in_a_status_is_no_panic() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 1"));
    t.run(&["orchestrate"]).code(1);
    let mut status = t.status("p/a");
    status["attempt"] = u32::MAX.into();
    t.write("workspace/status/p/a.json", &status.to_string());
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate", "--dry-run"]).code(0).says("p/a");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.status("p/a")["attempt"], u32::MAX);
}

#[test]
fn progress_survives_a_corrupt_status_file() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("p/b", &sh("true"));
    t.task("p/c", &sh("true"));
    t.write("workspace/status/p/a.json", "{\"task_id\": \"p/a\", \"sta");
    t.write(
        "workspace/status/p/b.json",
        "{\"version\": 99, \"task_id\": \"p/b\", \"status\": \"completed\"}",
    );
    // Another task's status, copied by hand: never taken for c's.
    t.write(
        "workspace/status/p/c.json",
        "{\"version\": 1, \"task_id\": \"p/x\", \"status\": \"completed\"}",
    );
    let run = t.run(&["progress"]);
    run.code(0)
        .says("p/a.json: corrupt status file")
        .says("p/b.json: status file of version 99")
        .says("p/c.json: holds the status of task p/x: treated as pending;")
        .says("reset p/c` removes it")
        .says("Pending: 3");
    // What a script reads stays clean: the warnings are on stderr.
    for command in [
        &["next"][..],
        &["why", "p/a"],
        &["orchestrate", "--dry-run"],
    ] {
        let run = t.run(command);
        assert!(
            !run.stdout.contains("warning:")
                && run.stderr.contains("p/a.json: corrupt status file"),
            "{command:?}\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    // `validate` counts them apart from the completed tasks it checked.
    t.run(&["validate"])
        .code(1)
        .says("0 completed tasks checked, 0 with problems; 3 status files unreadable");
    // The task list warns too, on stderr.
    let tasks = t.run(&["progress", "--tasks"]);
    assert!(
        tasks.stderr.contains("p/a.json: corrupt status file"),
        "{}",
        tasks.stderr
    );
    // The orchestrator treats them as pending too, and runs them.
    t.run(&["orchestrate"]).code(0).says("corrupt status file");
    assert_eq!(t.state("p/a"), "completed");
}

/// What a person put in the way of a status under `workspace/status/` (a
/// folder named like a status file, a file named like a phase's folder
/// of statuses) is named with what to do by the views, `reset` and the
/// run. They said `cannot read: Is a directory (os error 21)`, `cannot
/// remove` it, or `cannot create .../q/.b.json.prev: Not a directory (os
/// error 20)`: neither what was in the way nor how to get it out of it.
#[test]
fn what_is_in_the_way_of_a_status_is_named_with_what_to_do() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("q/b", &sh("true"));
    std::fs::create_dir_all(t.path("workspace/status/p/a.json")).unwrap();
    t.write("workspace/status/q", "junk\n");
    let folder = "p/a.json: cannot read: Is a directory (os error 21): treated as pending; a folder is there; move it away";
    let file = format!(
        "{} is a file, where a folder goes; move it away",
        t.path("workspace/status/q").display()
    );
    t.run(&["progress"]).code(0).says(folder).says(&format!(
        "q/b.json: cannot read: Not a directory (os error 20): treated as pending; {file}"
    ));
    t.run(&["reset", "p/a"])
        .says("status/p/a.json: a folder is there; move it away");
    t.run(&["reset", "q/b"]).says(&file);
    t.run(&["orchestrate", "--task", "q/b"])
        .code(1)
        .says(&format!("q/.b.json.prev: {file}"));
}

/// A FIFO named like a status (junk under `workspace/status/`) is said,
/// with what to do, and `reset` removes it: every command that read the
/// statuses waited for a writer to it forever, `orchestrate` too, which
/// neither Ctrl-C nor SIGTERM could stop.
#[test]
fn a_fifo_where_a_status_goes_hangs_nothing() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    std::fs::create_dir_all(t.path("workspace/status/p")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(t.path("workspace/status/p/a.json"))
        .status()
        .unwrap();
    assert!(made.success());
    let fifo = "a FIFO, a socket or a device is there; remove it";
    let ended = |args: &[&str]| {
        let out = std::fs::File::create(t.path("out.txt")).unwrap();
        let err = std::fs::File::create(t.path("err.txt")).unwrap();
        let mut child = t.command(args).stdout(out).stderr(err).spawn().unwrap();
        wait_for("the command to end", || child.try_wait().unwrap().is_some());
        let code = child.wait().unwrap().code();
        (code, t.read("out.txt") + &t.read("err.txt"))
    };
    let (code, said) = ended(&["progress"]);
    assert_eq!(code, Some(0), "{said}");
    let read = format!("p/a.json: cannot read: not a regular file: treated as pending; {fifo}");
    assert!(said.contains(&read), "{said}");
    let (code, said) = ended(&["orchestrate"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains(&format!("p/a.json: {fifo}")), "{said}");
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
}

/// A FIFO put where the workspace's own files go (`run.json`,
/// `history.json`, `events.jsonl`) hangs nothing either: it is said not a
/// regular file, as a status's is. Their readers waited for a writer
/// forever.
#[test]
fn a_fifo_where_a_workspace_file_goes_hangs_nothing() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    std::fs::create_dir_all(t.path("workspace")).unwrap();
    for file in ["run.json", "history.json", "events.jsonl"] {
        let made = std::process::Command::new("mkfifo")
            .arg(t.path(&format!("workspace/{file}")))
            .status()
            .unwrap();
        assert!(made.success());
    }
    for args in [&["progress"][..], &["orchestrate"], &["events"]] {
        let out = std::fs::File::create(t.path("out.txt")).unwrap();
        let mut child = t
            .command(args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        wait_for("the command to end", || child.try_wait().unwrap().is_some());
        let said = t.read("out.txt");
        let code = child.wait().unwrap().code();
        if args == ["events"] {
            assert_eq!(code, Some(2), "{said}");
            assert!(said.contains("events.jsonl: not a regular file"), "{said}");
        } else {
            assert_eq!(code, Some(0), "{args:?}: {said}");
            assert!(
                said.contains("history.json: not a regular file"),
                "{args:?}: {said}"
            );
        }
    }
}

/// A status that is a link to a device that never ends (`/dev/zero`) is
/// said not a regular file, with what to do, as a FIFO is: `progress`
/// read it until the memory ran out (here, under a limit of 2 GB, until it
/// said `out of memory`).
#[test]
fn a_status_linked_to_a_device_is_not_read_without_end() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    std::fs::create_dir_all(t.path("workspace/status/p")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", t.path("workspace/status/p/a.json")).unwrap();
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -v 2000000 && exec \"$@\"",
            "sh",
            BIN,
            "--root",
        ])
        .arg(&t.root)
        .arg("progress")
        .current_dir(&t.root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let read = "p/a.json: cannot read: not a regular file: treated as pending; a FIFO, a socket or a device is there; remove it";
    assert!(said.contains(read), "{said}");
}

#[test]
fn a_status_longer_than_one_read_is_read_whole() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    // Statuses are read with one `read` of 8 KiB, and the rest only when
    // that does not parse: 20 KB of blanks where JSON allows them.
    let status = t.read("workspace/status/p/a.json");
    let padded = status.replacen('{', &format!("{{{}", " ".repeat(20_000)), 1);
    t.write("workspace/status/p/a.json", &padded);
    let progress = t.run(&["progress"]);
    progress.code(0).says("Overall: 1/1 completed");
    assert!(!progress.stdout.contains("corrupt"), "{}", progress.stdout);
    // Completed already: not run again, so its status stays as written.
    let resumed = t.run(&["orchestrate"]);
    resumed.code(0);
    assert!(!resumed.stdout.contains("corrupt"), "{}", resumed.stdout);
    assert_eq!(t.read("workspace/status/p/a.json"), padded);
}

/// A launch of a task whose dependency is not completed is refused,
/// saying which, in what state, and the command that goes on. It ran,
/// and said the dependency was "not selected in this run", which a
/// launch, of one task, cannot help.
#[test]
fn launch_runs_one_task_or_says_what_is_unmet() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!("outputs: [x]\n{}", sh("echo > $TASK_OUTPUT_DIR/x")),
    );
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    // A hint carries the --root the command was given.
    let hint =
        |verb: &str, id: &str| format!("cargo xtask --root {} {verb} {id}", t.root.display());
    let launch = |id: &str| hint("launch", id);
    t.run(&["launch", "p/b"])
        .code(1)
        .says(&format!(
            "error: cannot launch p/b: its dependency p/a is not completed (not run yet): `{}` runs it first",
            launch("p/a")
        ))
        .never_says("not selected");
    assert_eq!(t.state("p/b"), "pending");
    assert!(!t.exists("workspace/events.jsonl"), "a refusal is no run");
    t.run(&["launch", "p/a"]).code(0);
    t.run(&["launch", "p/b"]).code(0);
    t.run(&["launch", "p/b"]).code(2).says("already completed");
    // A dependency that failed is said to have failed, with its error;
    // one blocked, by what; each of several.
    t.task("p/c", &sh("exit 3"));
    t.task("p/d", &format!("dependencies: [p/c]\n{}", sh("true")));
    t.task(
        "p/e",
        &format!("dependencies: [p/d, p/a, q/f]\n{}", sh("true")),
    );
    t.task("q/f", &sh("true"));
    t.run(&["orchestrate", "--phase", "p"]).code(1);
    t.run(&["launch", "p/d"]).code(1).says(&format!(
        "cannot launch p/d: its dependency p/c is not completed (failed: exit code 3): `{}` runs it again",
        launch("p/c")
    ));
    t.run(&["launch", "p/e"]).code(1).says(&format!(
        "cannot launch p/e: its dependencies are not completed: p/d (blocked by p/c: `{}` says what it waits on); q/f (not run yet: `{}` runs it first)",
        hint("why", "p/d"),
        launch("q/f")
    ));
    // Held by `block`, it is `reset` that lets it run again.
    t.run(&["block", "p/c", "--reason", "flaky"]).code(0);
    t.run(&["launch", "p/d"]).code(1).says(&format!(
        "its dependency p/c is not completed (failed: flaky (it had failed: exit code 3)): `{}` lets it run again",
        hint("reset", "p/c")
    ));
}

/// `launch` of a task whose dependency's status file cannot be read says
/// so, as every view does (taken as not run): it said the dependency was
/// `not run yet`, which it had been.
#[test]
fn launch_says_a_dependency_s_status_cannot_be_read() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["orchestrate", "--task", "p/a"]).code(0);
    t.write("workspace/status/p/a.json", "{\"status\": \"comp");
    t.run(&["launch", "p/b"])
        .code(1)
        .says(
            "its dependency p/a is not completed (workspace/status/p/a.json: corrupt status file (",
        )
        .never_says("not run yet");
}

/// `launch` of a task that depends on a phase not completed is refused
/// as one of a task is (exit 1, nothing run), naming the phase, its first
/// tasks not completed with their states, and the runs that go on: it
/// ran, and said it waited on the phase. A completed dependency whose
/// declared output was removed since is met, for `launch` as for a run.
#[test]
fn launch_says_what_of_a_phase_it_depends_on_is_not_completed() {
    let t = Tree::new();
    for n in 1..=5 {
        t.task(&format!("01-a/t{n}"), &sh("true"));
    }
    t.task("01-a/t6", &sh("exit 3"));
    t.task(
        "00-z/z",
        &format!("outputs: [x]\n{}", sh("echo > $TASK_OUTPUT_DIR/x")),
    );
    t.task("02-b/u", &format!("dependencies: [01-a]\n{}", sh("true")));
    t.task("02-b/v", &format!("dependencies: [00-z/z]\n{}", sh("true")));
    let cmd = |args: &str| format!("cargo xtask --root {} {args}", t.root.display());
    t.run(&["launch", "02-b/u"])
        .code(1)
        .says(&format!(
            "error: cannot launch 02-b/u: its dependency phase 01-a is not completed (00-z/z (not run yet), 01-a/t1 (not run yet), 01-a/t2 (not run yet), 01-a/t3 (not run yet), 01-a/t4 (not run yet) and 2 more not completed (`{}` lists them)): `{}`, then `{}` run them first",
            cmd("progress --tasks"),
            cmd("orchestrate --phase=00-z"),
            cmd("orchestrate --phase=01-a"),
        ))
        .never_says("waits on");
    assert!(!t.exists("workspace/events.jsonl"), "a refusal is no run");
    t.run(&["orchestrate", "--phase", "00-z"]).code(0);
    t.run(&["orchestrate", "--phase", "01-a"]).code(1);
    t.run(&["launch", "02-b/u"]).code(1).says(&format!(
        "its dependency phase 01-a is not completed (01-a/t6 (failed: exit code 3)): `{}` runs it first",
        cmd("orchestrate --phase=01-a"),
    ));
    // Held by `block`: `--phase` starts it only after a `reset`.
    t.run(&["block", "01-a/t6"]).code(0);
    t.run(&["launch", "02-b/u"]).code(1).says(&format!(
        "its dependency phase 01-a is not completed (01-a/t6 (failed: blocked by hand (it had failed: exit code 3))): `{}` (`block` holds it), then `{}` runs it first",
        cmd("reset 01-a/t6"),
        cmd("orchestrate --phase=01-a"),
    ));
    t.run(&["reset", "01-a/t6"]).code(0);
    t.task("01-a/t6", &sh("true"));
    t.run(&["orchestrate", "--phase", "01-a"]).code(0);
    std::fs::remove_file(t.root.join("workspace/outputs/00-z/z/x")).unwrap();
    t.run(&["launch", "02-b/u"]).code(0);
    t.run(&["orchestrate", "--task", "02-b/v"]).code(0);
}

/// `launch` of a task that depends on a phase whose tasks completed but
/// whose gate requires an artifact that is not there is refused, naming
/// it and what makes it (its run started nothing, its summary saying the
/// gate needed it).
#[test]
fn launch_says_what_a_phase_it_depends_on_requires() {
    let t = Tree::new();
    t.config("phases:\n  a: { requires: [01-a/t/list.json] }\n");
    t.task(
        "01-a/t",
        &format!(
            "outputs: [list.json]\n{}",
            sh("echo [] > $TASK_OUTPUT_DIR/list.json")
        ),
    );
    t.task("02-b/u", &format!("dependencies: [01-a]\n{}", sh("true")));
    t.run(&["orchestrate", "--phase", "01-a"]).code(0);
    std::fs::remove_file(t.root.join("workspace/outputs/01-a/t/list.json")).unwrap();
    let cmd = |args: &str| format!("cargo xtask --root {} {args}", t.root.display());
    let events = t.read("workspace/events.jsonl");
    t.run(&["launch", "02-b/u"]).code(1).says(&format!(
        "cannot launch 02-b/u: its dependency phase 01-a is not completed (its gate requires workspace/outputs/01-a/t/list.json, which is not there): `{}` and `{}` make it again",
        cmd("reset 01-a/t"),
        cmd("launch 01-a/t"),
    ));
    assert_eq!(t.read("workspace/events.jsonl"), events, "no run");
    t.config("phases:\n  a: { requires: [notes.md] }\n");
    t.run(&["launch", "02-b/u"]).code(1).says(
        "(its gate requires workspace/outputs/notes.md, which is not there): no task declares it among its outputs: write it, or take it out of `phases.a.requires` in tasks/orchestrator.yaml",
    );
    t.write("workspace/outputs/notes.md", "");
    t.run(&["launch", "02-b/u"]).code(0);
}

/// `why` of a task blocked by hand after a `reset` names no agent: its
/// attempt ran on none (it said `attempt 1, -`).
#[test]
fn why_of_a_task_blocked_after_a_reset_names_no_agent() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 3"));
    t.run(&["orchestrate"]).code(1);
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["block", "p/a"]).code(0);
    t.run(&["why", "p/a"])
        .code(0)
        .says("p/a failed: blocked by hand")
        .never_says(", -\n");
}

#[test]
fn a_block_with_no_reason_says_by_hand_once() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    let run = t.run(&["block", "p/a"]);
    run.code(0)
        .says("blocked  p/a by hand: it stays failed until `cargo xtask");
    assert_eq!(t.status("p/a")["error"], "blocked by hand");
}

/// Blocking a task that failed keeps what its attempt recorded: its exit
/// code, and its error beside the reason, which the retry after `reset`
/// is told. What it blocks was blocked already: no event says it changed,
/// there or at the runs after it.
#[test]
fn blocking_a_failed_task_keeps_its_failure_and_repeats_no_block() {
    let t = Tree::new();
    t.task("p/a", &sh("echo \"$TASK_PREVIOUS_ERROR\" > told; exit 3"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    t.run(&["block", "p/a", "--reason", "investigating"])
        .code(0);
    let status = t.status("p/a");
    assert_eq!(
        status["error"],
        "investigating (it had failed: exit code 3)"
    );
    assert_eq!(status["exit_code"], 3);
    t.run(&["orchestrate"]).code(1);
    t.run(&["orchestrate"]).code(1);
    assert_eq!(changes(&t, "p/b"), ["pending -> blocked"]);
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(1);
    assert_eq!(
        t.read("told").trim(),
        "investigating (it had failed: exit code 3)"
    );
    // Taken up by the next run, and blocked again as its blocker fails
    // again: said.
    t.run(&["orchestrate"]).code(1);
    let b = changes(&t, "p/b");
    assert_eq!(
        b[b.len() - 2..],
        ["blocked -> pending", "pending -> blocked"],
        "{b:?}"
    );
    // Blocked twice: the failure is named once.
    t.run(&["block", "p/a", "--reason", "one"]).code(0);
    t.run(&["block", "p/a", "--reason", "two"]).code(0);
    assert_eq!(t.status("p/a")["error"], "two (it had failed: exit code 3)");
}

/// Blocking a task blocked by a failure upstream after a failure of its
/// own keeps that failure (its status's `previous`) beside the reason:
/// the retry after `reset` is told what failed, as for a failed task.
#[test]
fn blocking_a_blocked_task_keeps_the_failure_before_it() {
    let t = Tree::new();
    t.task("p/a", &sh("test ! -f fail-a"));
    t.task(
        "p/b",
        &format!(
            "dependencies: [p/a]\n{}",
            sh("echo \"$TASK_PREVIOUS_ERROR\" > told; exit 3")
        ),
    );
    t.run(&["orchestrate"]).code(1);
    // p/a fails now: p/b, taken up again, is blocked by it, keeping its
    // own failure for its retry.
    t.write("fail-a", "");
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/b"), "blocked");
    t.run(&["block", "p/b", "--reason", "investigating"])
        .code(0);
    let held = "investigating (it had failed: exit code 3)";
    assert_eq!(t.status("p/b")["error"], held);
    std::fs::remove_file(t.path("fail-a")).unwrap();
    t.run(&["reset", "p/a", "p/b"]).code(0);
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.read("told").trim(), held);
}

/// Blocking again a task held with the same reason changes nothing: no
/// event (nor notification) says it failed again; another reason is told.
#[test]
fn blocking_again_with_the_same_reason_tells_no_change() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("q/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["block", "p/a", "--reason", "later"]).code(0);
    t.run(&["block", "p/a", "--reason", "later"]).code(0);
    t.run(&["block", "p"]).code(0);
    assert_eq!(
        changes(&t, "p/a"),
        ["pending -> failed", "failed -> failed"]
    );
    assert_eq!(changes(&t, "q/b"), ["pending -> blocked"]);
    assert_eq!(t.status("p/a")["error"], "blocked by hand");
}

#[test]
fn clean_outside_git_has_nothing_to_clean() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["clean"])
        .code(0)
        .says("nothing to clean: ")
        .says("is not in a git repository, so no worktree was made for it");
}

#[test]
fn block_and_reset() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.task("p/c", &format!("dependencies: [p/b]\n{}", sh("true")));
    let run = t.run(&["block", "p/a", "--reason", "waiting for the API key"]);
    run.code(0)
        .says("blocked  p/a by hand (waiting for the API key): it stays failed until `cargo xtask")
        .says("  blocked  p/b (depends on it)")
        .says("  blocked  p/c (depends on it)");
    assert!(!run.stdout.contains("ALERT"), "{}", run.stdout);
    assert_eq!(t.status("p/a")["error"], "waiting for the API key");
    assert_eq!(t.status("p/c")["blocked_by"], "p/a");
    let why = t.run(&["why", "p/c"]);
    why.code(0)
        .says("p/c is blocked by p/a")
        .says("waiting for the API key");
    // Never run: no log, and no heading of one.
    assert!(!why.stdout.contains("last lines of"), "{}", why.stdout);
    t.run(&["why", "p/a"]).says("it was blocked by hand:");
    // A block holds across runs until it is reset.
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/a"), "failed");
    assert_eq!(t.state("p/c"), "blocked");
    t.run(&["reset", "p/a"])
        .code(0)
        .says("reset  p/c (was blocked by p/a)");
    assert_eq!(
        (t.state("p/a"), t.state("p/b"), t.state("p/c")),
        ("pending".into(), "pending".into(), "pending".into())
    );
    t.run(&["orchestrate"]).code(0);

    // --downstream resets what completed after it too; a phase names its tasks.
    t.run(&["reset", "p/b", "--downstream"])
        .code(0)
        .says("reset  p/b")
        .says("reset  p/c");
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(
        (t.state("p/b"), t.state("p/c")),
        ("pending".into(), "pending".into())
    );
    t.run(&["orchestrate"]).code(0);
    // Nothing to block where everything completed: an error, not a success.
    t.run(&["block", "p/a"])
        .code(2)
        .says("nothing to block: p/a is completed (`cargo xtask");
    t.run(&["block", "p"])
        .code(2)
        .says("nothing to block: every task of p is completed");
    t.run(&["reset", "p"])
        .code(0)
        .says("reset  p/a")
        .says("reset  p/c");
    assert_eq!(t.state("p/a"), "pending");
    t.run(&["block", "p"]).code(0).says("blocked  p/a by hand");
    assert_eq!(t.state("p/c"), "failed");
}

/// The log's last lines in `why` are as a terminal shows them: no colour
/// codes, a progress line redrawn after `\r` as it ends up.
#[test]
fn why_shows_the_log_s_last_lines_as_a_terminal_does() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh("printf '\\033[31mred error\\033[0m\\n10%%\\r100%% done\\n'; exit 1"),
    );
    t.run(&["orchestrate"]).code(1);
    let why = t.run(&["why", "p/a"]);
    why.says("    red error\n").says("    100% done\n");
    assert!(!why.stdout.contains('\x1b'), "{:?}", why.stdout);
    assert!(!why.stdout.contains('\r'), "{:?}", why.stdout);
}

#[test]
fn why_explains_waiting_failed_and_missing_inputs() {
    let t = Tree::new();
    t.task("p/a", &sh("echo 'something broke here'; exit 7"));
    t.task(
        "p/b",
        &format!(
            "dependencies: [p/a]\ninputs: [elsewhere/in.txt]\n{}",
            sh("true")
        ),
    );
    t.run(&["why", "p/b"])
        .code(0)
        .says("waits on p/a (not run yet)")
        .says("needs input workspace/outputs/elsewhere/in.txt");
    t.run(&["orchestrate"]).code(1);
    t.run(&["why", "p/a"])
        .code(0)
        .says("p/a failed: exit code 7\n  attempt 1, agent-1\n")
        .says("something broke here");
    t.run(&["why", "p/zz"]).code(2).says("no task `p/zz`");
}

#[test]
fn validate_checks_definitions_and_outputs_of_completed_tasks() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!("outputs: [x]\n{}", sh("echo > $TASK_OUTPUT_DIR/x")),
    );
    t.run(&["orchestrate"]).code(0);
    t.run(&["validate"]).code(0).says("ok     p/a");
    std::fs::remove_file(t.path("workspace/outputs/p/a/x")).unwrap();
    t.run(&["validate"])
        .code(1)
        .says("FAILED p/a: missing workspace/outputs/p/a/x");
    assert_eq!(t.state("p/a"), "failed");
    t.task("p/b", "dependencies: [p/q]");
    t.run(&["validate"])
        .code(2)
        .says("unknown dependency `p/q`");
}

/// `validate`'s summary counts one in the singular: it said `1 task
/// definitions valid; 1 completed task(s) checked`.
#[test]
fn validate_counts_one_in_the_singular() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    t.run(&["validate"])
        .code(0)
        .says("1 task definition valid; 1 completed task checked, 0 with problems\n");
    t.task("p/b", &sh("true"));
    t.run(&["validate"])
        .code(0)
        .says("2 task definitions valid; 1 completed task checked");
    std::fs::remove_dir_all(t.path("workspace/status")).unwrap();
    t.run(&["validate"])
        .code(0)
        .says("2 task definitions valid; 0 completed tasks checked");
}

/// Messages count one in the singular and more in the plural, with their
/// verbs and pronouns: they said `1 task(s)`, `1 completed task(s) are
/// stale ... runs them again`.
#[test]
fn messages_count_one_in_the_singular_and_more_in_the_plural() {
    let t = Tree::new();
    t.task("01-a/x", &sh("true"));
    t.task("02-b/y", &sh("true"));
    t.task("02-b/z", &sh("true"));
    t.task("03-c/w", &format!("dependencies: [01-a]\n{}", sh("true")));
    t.task("03-c/v", &format!("dependencies: [02-b]\n{}", sh("true")));
    t.run(&["why", "01-a"]).code(0).says("phase 01-a: 1 task\n");
    t.run(&["why", "02-b"])
        .code(0)
        .says("phase 02-b: 2 tasks\n");
    t.run(&["orchestrate", "--task", "03-c/w"])
        .code(1)
        .says("waits on phase 01-a (1 task of it or earlier phases not completed)");
    t.run(&["orchestrate", "--task", "03-c/v"])
        .code(1)
        .says("waits on phase 02-b (3 tasks of it or earlier phases not completed)");
    t.run(&["orchestrate"]).code(0);
    t.task("02-b/y", &sh("true; true"));
    t.run(&["next"])
        .code(0)
        .says("note: 1 completed task is stale, built from files that changed since (02-b/y: ")
        .says("runs it again, and what depends on it");
    t.task("02-b/z", &sh("true; true"));
    t.run(&["next"])
        .code(0)
        .says("note: 2 completed tasks are stale")
        .says("runs them again, and what depends on them");
}

/// `validate` of named tasks says each that it skips, one never run too:
/// it said nothing of a pending task, only of those with a status.
#[test]
fn validate_of_named_tasks_says_each_it_skips() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 3"));
    t.task("p/b", &sh("true"));
    t.run(&["orchestrate", "--task", "p/a"]).code(1);
    t.run(&["validate", "p/a", "p/b"])
        .code(0)
        .says("skip   p/a: failed, not completed\n")
        .says("skip   p/b: pending, not completed\n");
}

/// `validate` while a run goes on says what it finds of completed tasks
/// but records nothing: the run owns the statuses. It marked the task
/// failed behind the run, whose summary went on saying it completed.
#[test]
fn validate_beside_a_run_records_nothing() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!("outputs: [x]\n{}", sh("echo > $TASK_OUTPUT_DIR/x")),
    );
    t.task(
        "p/b",
        &format!(
            "dependencies: [p/a]\n{}",
            sh("touch b-started; while [ ! -e go ]; do sleep 0.01; done")
        ),
    );
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/b to run", || t.exists("b-started"));
    std::fs::remove_file(t.path("workspace/outputs/p/a/x")).unwrap();
    t.run(&["validate"])
        .code(1)
        .says("FAILED p/a: missing workspace/outputs/p/a/x (not recorded: the run going on, pid ")
        .says("validate again once it has ended)");
    assert_eq!(t.state("p/a"), "completed");
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(0));
    t.run(&["validate"])
        .code(1)
        .says("FAILED p/a: missing workspace/outputs/p/a/x\n");
    assert_eq!(t.state("p/a"), "failed");
}

#[test]
fn monitor_with_nothing_running() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["monitor"])
        .code(0)
        .says("No task is recorded as running");
}

#[test]
fn dry_run_beside_a_run_shows_running_tasks_as_running() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh("touch started; while [ ! -f release ]; do sleep 0.02; done"),
    );
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    let mut run = t.start(&["orchestrate"]);
    wait_for("the task to start", || t.exists("started"));
    let dry = t.run(&["orchestrate", "--dry-run"]);
    dry.code(0).says("Running now (1): p/a");
    assert!(!dry.stdout.contains("  p/a "), "{}", dry.stdout);
    t.write("release", "");
    run.wait().unwrap();
}

#[test]
fn a_completed_status_without_its_outputs_runs_again() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "outputs: [x]\n{}",
            sh(&format!("{MARK}; echo > $TASK_OUTPUT_DIR/x"))
        ),
    );
    // Written by another tool: completed, outputs never validated, and gone.
    t.write(
        "workspace/status/p/a.json",
        r#"{"task_id": "p/a", "status": "completed"}"#,
    );
    t.run(&["orchestrate"])
        .code(0)
        .says("p/a is recorded completed but missing workspace/outputs/p/a/x");
    assert_eq!(t.launches("p/a"), 1);
}

/// `history.json` and `resets.json` are read, changed and written whole:
/// one that cannot be read is said and left as it is, never written over
/// with what the command knows (the other tasks' durations or failures).
#[test]
fn an_unreadable_history_or_resets_file_is_said_and_kept() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.write("workspace/history.json", "{not json");
    // Every command that shows expected durations says they are guessed.
    let guessed = "expected durations are guessed";
    t.run(&["next"]).code(0).says(guessed);
    t.run(&["orchestrate", "--dry-run"]).code(0).says(guessed);
    t.run(&["progress"]).code(0).says(guessed);
    let json = progress_json(&t);
    assert!(json["warnings"].to_string().contains(guessed), "{json}");
    t.run(&["orchestrate"])
        .code(0)
        .says(guessed)
        .says("workspace/history.json cannot be read: it is left as it is")
        .says("this run's durations are not kept");
    assert_eq!(t.read("workspace/history.json"), "{not json");
    t.write("workspace/resets.json", "[1, 2");
    t.run(&["reset", "p/a"])
        .code(2)
        .says("workspace/resets.json cannot be read: it is left as it is");
    assert_eq!(t.read("workspace/resets.json"), "[1, 2");
    assert_eq!(t.state("p/a"), "completed");
}

/// A status that says blocked, by nothing (written by hand or by a tool):
/// `why` says so and how to clear it, not "blocked by ?".
#[test]
fn why_of_a_task_blocked_by_nothing_says_so() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    let status = serde_json::json!({"version": 1, "task_id": "p/a", "status": "blocked"});
    t.write("workspace/status/p/a.json", &status.to_string());
    let why = t.run(&["why", "p/a"]);
    why.code(0)
        .says("p/a is recorded blocked, by nothing that failed upstream (its status names none): `cargo xtask");
    assert!(!why.stdout.contains('?'), "{}", why.stdout);
}

/// A task named by its file's whole path, as the tool prints it, is found.
#[test]
fn a_task_named_by_its_file_s_whole_path_is_found() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 3"));
    t.run(&["orchestrate"]).code(1);
    let file = t.path("tasks/p/a.md");
    t.run(&["why", file.to_str().unwrap()])
        .code(0)
        .says("exit code 3");
}

/// A task named by its file's path from where the user stands, as the
/// tool prints paths (`../g/tasks/p/a.md`, `a.md` in its folder), is found;
/// its id typed in its own folder still names it.
#[test]
fn a_task_named_by_its_path_from_where_one_stands_is_found() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 3"));
    t.run(&["orchestrate"]).code(1);
    let name = t.root.file_name().unwrap().to_str().unwrap();
    let from_parent = format!("{name}/tasks/p/a.md");
    for (here, typed) in [
        (t.root.parent().unwrap().to_owned(), from_parent.as_str()),
        (t.path("tasks/p"), "a.md"),
        (t.path("tasks/p"), "./a.md"),
        (t.path("tasks/p"), "p/a"),
        (t.path("tasks"), "p/a.md"),
        (t.path("workspace"), "../tasks/p/a.md"),
    ] {
        let why = t
            .command(&["why", typed])
            .current_dir(&here)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&why.stdout);
        let err = String::from_utf8_lossy(&why.stderr);
        assert_eq!(why.status.code(), Some(0), "{typed} in {here:?}: {err}");
        assert!(said.contains("exit code 3"), "{typed}: {said}");
    }
}

/// A phase given to `orchestrate --phase` by its folder's path from where
/// one stands (`.` in it) is that phase.
#[test]
fn a_phase_named_by_its_path_from_where_one_stands_is_run() {
    let t = Tree::new();
    t.task("p/a", &sh(MARK));
    t.task("q/b", &sh(MARK));
    let run = t
        .command(&["orchestrate", "--phase", "."])
        .current_dir(t.path("tasks/q"))
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(t.launches("q/b"), 1);
    assert_eq!(t.launches("p/a"), 0);
}

/// A phase named by its folder's path, as a shell completes it
/// (`tasks/p/`, `p/`), is that phase for every command that takes one:
/// `why`, `block`, `reset` and `approve` said "is a phase: give one of its
/// tasks", and `orchestrate --phase` and `graph --phase` found no phase.
#[test]
fn a_phase_named_by_its_folder_s_path_is_that_phase_for_every_command() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 3"));
    t.task("q/b", &format!("{}\napprove: before", sh(MARK)));
    t.run(&["orchestrate", "--phase", "tasks/p/"]).code(1);
    assert_eq!(t.launches("q/b"), 0);
    t.run(&["why", "tasks/p/"]).code(0).says("phase p: 1 task");
    t.run(&["graph", "--phase", "p/"])
        .code(0)
        .says("[\"a\"]:::failed")
        .never_says("[\"b\"]");
    t.run(&["block", "tasks/p/"]).code(0).says("blocked  p/a");
    t.run(&["reset", "p/"]).code(0).says("reset  p/a");
    t.run(&["orchestrate", "--phase", "q"]).code(4);
    t.run(&["approve", "tasks/q/"]).code(0).says("approved q/b");
    let why = t
        .command(&["why", "q/"])
        .current_dir(t.path("tasks"))
        .output()
        .unwrap();
    Run::from(why).code(0).says("phase q: 1 task");
}

/// `-q` prints the summary only: not the stale tasks a run takes up
/// again, nor its wait for the notifiers.
#[test]
fn quiet_prints_only_the_summary() {
    let t = Tree::new();
    t.config("notify:\n  - on: [run_finished]\n    command: \"cat > /dev/null\"\n");
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate", "-q"]).code(0);
    t.write(
        "tasks/p/a.md",
        &format!("---\n{}\n---\nchanged\n", sh("true")),
    );
    let run = t.run(&["orchestrate", "--rerun-stale", "-q"]);
    run.code(0);
    assert!(
        run.stdout.trim_start().starts_with("Summary"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("waiting for the notifiers"),
        "{}",
        run.stdout
    );
}

/// A task that reads its own output would wait for itself forever:
/// `validate` refuses it (see `invalid`); the run never starts a graph
/// that holds one.
#[test]
fn a_task_reading_its_own_output_is_refused_before_the_run() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "outputs: [x]\ninputs: [p/a/x]\n{}",
            sh("touch $TASK_OUTPUT_DIR/x")
        ),
    );
    t.run(&["validate"])
        .code(2)
        .says("it would wait for itself");
    t.run(&["orchestrate"]).code(2);
}

/// A `--root` that is a file, and `new` given a phase alone, say what is
/// wrong with what was typed.
#[test]
fn a_root_that_is_a_file_and_a_new_task_without_a_name_are_said() {
    let t = Tree::new();
    t.write("afile", "hi\n");
    let file = t.path("afile");
    let progress = std::process::Command::new(BIN)
        .args(["--root", file.to_str().unwrap(), "progress"])
        .output()
        .unwrap();
    let run = Run::from(progress);
    run.code(2).says("is a file, not a folder");
    t.run(&["new", "01-plan/"])
        .code(2)
        .says("`01-plan/` names a phase, and no task in it");
}

/// `--help` says every exit code, and the commands users type most come
/// with examples whose options clap takes.
#[test]
fn help_lists_the_exit_codes_and_examples_that_parse() {
    let t = Tree::new();
    let help = t.run(&["--help"]);
    help.code(0);
    for code in [
        "0  every selected task completed",
        "1  a task failed",
        "2  invalid",
        "3  the budget",
        "4  nothing more could start",
        "130, 143, 129",
        "141  a view whose reader went away",
    ] {
        help.says(code);
    }
    for command in [
        &["--help"][..],
        &["orchestrate", "--help"],
        &["reset", "--help"],
        &["logs", "--help"],
    ] {
        let shown = t.run(command);
        shown.code(0).says("Examples:");
        let examples = shown
            .stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("cargo xtask "));
        for example in examples {
            // The words before the description, which is two spaces or more away.
            let typed = example.split("  ").next().unwrap();
            let mut args: Vec<&str> = typed.split_whitespace().collect();
            args.push("--help");
            t.run(&args).code(0);
        }
    }
}

/// Every command's `--help` lists its own options first, `--root` (which
/// every command takes) after them, just before `--help`; every argument
/// and option says what it is; a text a person writes is `<TEXT>`, as in
/// README's table of commands (`block --reason TEXT`).
#[test]
fn every_command_s_help_lists_its_own_options_first_each_with_its_help() {
    let t = Tree::new();
    let top = t.run(&["--help"]);
    let commands: Vec<&str> = (top.stdout.lines())
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    assert!(commands.len() > 15, "{}", top.stdout);
    for command in commands {
        let help = t.run(&[command, "--help"]);
        help.code(0);
        let listed: Vec<&str> = (help.stdout.lines())
            .filter(|l| l.starts_with("  ") && l.trim_start().starts_with(['-', '<', '[']))
            .collect();
        for line in &listed {
            // The name, then its help two spaces or more away.
            let said = line.trim().split_once("  ").map(|(_, help)| help.trim());
            assert!(
                said.is_some_and(|s| !s.is_empty()),
                "`{command} --help`: no help for {line}"
            );
        }
        let options: Vec<&str> = (listed.iter())
            .map(|l| l.trim_start())
            .filter(|l| l.starts_with('-'))
            .collect();
        let root = options.iter().position(|l| l.starts_with("--root"));
        // The demo refuses `--root` (its repository is its DIR): unlisted.
        let expected = (command != "demo").then(|| options.len() - 2);
        assert_eq!(
            root, expected,
            "`{command} --help`: --root among the command's own options:\n{}",
            help.stdout
        );
    }
    t.run(&["block", "--help"]).says("--reason <TEXT>");
}

/// A phase folder whose name begins with `-`: the hints name its tasks
/// after `--` (`reset -- -p/a`), which every command that takes a task
/// reads as a task, not as a flag it does not know; `--task=-p/c` and
/// `--phase=-p` select them.
#[test]
fn a_task_whose_id_begins_with_a_dash_is_named_by_hints_that_run() {
    let t = Tree::new();
    t.task("-p/a", &sh("echo ran; exit 1"));
    t.task("-p/c", &format!("approve: before\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    t.run(&["why", "--", "-p/a"])
        .code(0)
        .says("reset -- -p/a` clears it now");
    t.run(&["logs", "--attempt", "1", "--", "-p/a"])
        .code(0)
        .says("ran");
    t.run(&["reset", "--downstream", "--", "-p/a"]).code(0);
    assert_eq!(t.state("-p/a"), "pending");
    t.run(&["why", "--", "-p/c"])
        .code(0)
        .says("approve -- -p/c` lets it go on")
        .says("reject --reason TEXT -- -p/c` fails it");
    t.run(&["reject", "--reason", "no", "--", "-p/c"]).code(0);
    t.run(&["reset", "--", "-p/c"]).code(0);
    t.run(&["approve", "--", "-p/c"]).code(0);
    t.run(&["orchestrate", "--task=-p/c"]).code(0);
    assert_eq!(t.state("-p/c"), "completed");
    t.run(&["orchestrate", "--phase=-p", "--dry-run"])
        .code(0)
        .says("-p/a");
}
