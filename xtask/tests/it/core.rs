//! The rules of `orchestrate`, one test per rule.

use crate::tree::*;

/// A run of one phase whose failure blocks tasks of others says those
/// apart: its summary counts only the tasks it would have run.
#[test]
fn the_alert_tells_apart_blocked_tasks_outside_the_run_s_selection() {
    let t = Tree::new();
    t.task("p/b", &sh("exit 3"));
    t.task("p/c", &format!("dependencies: [p/b]\n{}", sh("true")));
    t.task("q/d", &format!("dependencies: [p/b]\n{}", sh("true")));
    t.run(&["orchestrate", "--phase", "p"])
        .code(1)
        .says("ALERT: Task p/b failed, blocking 1 task, and 1 outside this run's selection")
        .says("1 failed, 1 blocked");
    assert_eq!(t.state("q/d"), "blocked");
}

#[test]
fn diamond_with_a_failure_blocks_only_what_depends_on_it() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task(
        "p/b",
        &format!("dependencies: [p/a]\n{}", sh("echo broken; exit 3")),
    );
    t.task("p/c", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.task("p/d", &format!("dependencies: [p/b, p/c]\n{}", sh("true")));
    t.task("q/e", &format!("dependencies: [p/d]\n{}", sh("true")));
    t.task("q/f", &format!("dependencies: [p/c]\n{}", sh("true")));
    let run = t.run(&["orchestrate"]);
    run.code(1).says("ALERT: Task p/b failed, blocking 2 tasks");
    assert_eq!(t.state("p/b"), "failed");
    assert_eq!(t.status("p/b")["exit_code"], 3);
    assert_eq!(t.status("p/b")["error"], "exit code 3");
    for id in ["p/d", "q/e"] {
        assert_eq!(t.state(id), "blocked", "{id}");
        assert_eq!(t.status(id)["blocked_by"], "p/b", "{id}");
    }
    for id in ["p/a", "p/c", "q/f"] {
        assert_eq!(t.state(id), "completed", "{id}");
    }
    assert!(t.read("workspace/logs/p/b.log").contains("broken"));
}

/// Tasks whose files appear after their dependency failed in the run (a
/// task on it, a task on its phase) are blocked by it, as the others were.
#[test]
fn a_task_that_joins_after_its_dependency_failed_is_blocked() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 1"));
    let long = "touch started; while [ ! -f release ]; do sleep 0.02; done";
    t.task("p/long", &sh(long));
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a's failure and p/long's start", || {
        t.exists("started") && t.exists("workspace/status/p/a.json") && t.state("p/a") == "failed"
    });
    t.task("q/on_a", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    t.task("q/on_p", &format!("dependencies: [p]\n{}", sh(MARK)));
    t.write("release", "");
    assert_eq!(run.wait().unwrap().code(), Some(1));
    for id in ["q/on_a", "q/on_p"] {
        assert_eq!(t.state(id), "blocked", "{id}");
        assert_eq!(t.status(id)["blocked_by"], "p/a", "{id}");
        assert_eq!(t.launches(id), 0, "{id}");
    }
    assert!(t
        .read("workspace/events.jsonl")
        .contains(r#""task":"q/on_a","from":"pending","to":"blocked""#));
}

#[test]
fn status_files_have_the_protocol_fields() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "outputs: [out.txt]\n{}",
            sh("echo hi > $TASK_OUTPUT_DIR/out.txt")
        ),
    );
    t.run(&["orchestrate"]).code(0).says("Summary: 1 completed");
    let s = t.status("p/a");
    assert_eq!(s["task_id"], "p/a");
    assert_eq!(s["status"], "completed");
    assert_eq!(s["agent_id"], "agent-1");
    assert_eq!(s["outputs_validated"], true);
    assert_eq!(s["exit_code"], 0);
    assert!(s["duration_seconds"].as_f64().unwrap() >= 0.0);
    for key in ["started_at", "completed_at"] {
        let stamp = s[key].as_str().unwrap();
        assert!(
            stamp.len() == 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{stamp}"
        );
    }
    // No temporary files are left beside the status: only its previous
    // version, kept to write the next one in (see atomic::replace).
    let mut files: Vec<String> = std::fs::read_dir(t.path("workspace/status/p"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, [".a.json.prev", "a.json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&t.read("workspace/status/p/.a.json.prev"))
            .unwrap()["status"],
        "running"
    );
}

#[test]
fn final_statuses_reuse_the_files_of_replaced_ones() {
    // A final status is written in the file of a finished task's replaced
    // running status (see `status::write_replacing`), not in a new file: a
    // chain leaves beside its statuses at most two files to write in, not
    // one per task.
    let t = Tree::new();
    let ids = ["p/a", "p/b", "p/c", "p/d", "p/e"];
    t.task(
        "p/a",
        &format!("outputs: [o]\n{}", sh("echo a > $TASK_OUTPUT_DIR/o")),
    );
    for pair in ids.windows(2) {
        t.task(
            pair[1],
            &format!(
                "dependencies: [{}]\noutputs: [o]\n{}",
                pair[0],
                sh("cat $TASK_OUTPUT_DIR/../*/o > $TASK_OUTPUT_DIR/o")
            ),
        );
    }
    t.run(&["orchestrate", "-j", "1"])
        .code(0)
        .says("Summary: 5 completed");
    let names: Vec<String> = std::fs::read_dir(t.path("workspace/status/p"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    let spares = names.iter().filter(|n| n.ends_with(".prev")).count();
    assert!(spares <= 2, "{names:?}");
    assert_eq!(names.len() - spares, ids.len(), "{names:?}");
    for id in ids {
        let s = t.status(id);
        assert_eq!(s["task_id"], id);
        assert_eq!(s["status"], "completed");
        assert_eq!(s["outputs_validated"], true);
    }
}

#[test]
fn exit_zero_with_an_output_missing_fails_naming_the_path() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!("outputs: [result.json, \"*.csv\"]\n{}", sh("true")),
    );
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    // Run from the root's parent: the error, kept in the status and read
    // from anywhere, names the path from the root all the same.
    let parent = t.root.parent().unwrap();
    let run = t
        .command(&["orchestrate"])
        .current_dir(parent)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains(": missing workspace/outputs/p/a/result.json"),
        "{error}"
    );
    assert!(
        error.contains("no file matches workspace/outputs/p/a/*.csv"),
        "{error}"
    );
    assert_eq!(t.status("p/a")["outputs_validated"], false);
    assert_eq!(t.state("p/b"), "blocked");
}

#[test]
fn an_output_left_by_an_earlier_attempt_does_not_count() {
    let t = Tree::new();
    // The first run writes the output but fails; the second exits 0 without writing it.
    t.task(
        "p/a",
        &format!(
            "outputs: [out.txt]\n{}",
            sh("if [ -f flag ]; then echo old > $TASK_OUTPUT_DIR/out.txt; exit 1; fi")
        ),
    );
    t.write("flag", "");
    t.run(&["orchestrate"]).code(1);
    std::fs::remove_file(t.path("flag")).unwrap();
    t.run(&["orchestrate"]).code(1);
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("out.txt was not written by this attempt"),
        "{error}"
    );
}

/// On a file system whose times are whole seconds, an output a failed
/// attempt wrote does not count for its retry started within the same
/// second: the retry waits for the clock to tell their times apart.
#[test]
fn an_output_of_the_attempt_before_does_not_count_for_a_fast_retry_on_a_coarse_clock() {
    // The first attempt writes it a tenth of a second into a second, and
    // fails; the retry, moments later, exits 0 without writing it.
    a_fast_retry_on_a_coarse_clock_fails(
        "out.txt",
        "while [ \"$(date +%N | cut -c1)\" != 1 ]; do sleep 0.005; done; echo old > $TASK_OUTPUT_DIR/out.txt",
    );
}

/// Task `p/a`, with output `output`, run in a tree whose workspace has
/// whole-second times: its first attempt runs `first` and fails, its retry
/// exits 0 at once; the retry fails, `output` not written by it.
fn a_fast_retry_on_a_coarse_clock_fails(output: &str, first: &str) {
    let t = Tree::new();
    let Some(_disk) = CoarseClockDisk::mount(&t.path("workspace")) else {
        return;
    };
    t.task(
        "p/a",
        &format!(
            "outputs: [{output}]\nretries: 1\n{}",
            sh(&format!(
                "if [ $TASK_ATTEMPT = 1 ]; then {first}; exit 1; fi"
            ))
        ),
    );
    t.run(&["orchestrate"]).code(1);
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains(&format!("{output} was not written by this attempt")),
        "{error}"
    );
}

/// On a file system whose times are whole seconds, a file in a folder
/// output that a failed attempt wrote over in place (the folder's own time
/// stays older) does not count for its retry started within the same
/// second: the retry waits for what is in the folder too, not only for
/// the folder's own time.
#[test]
fn a_folder_output_written_over_in_place_by_the_attempt_before_does_not_count_for_a_fast_retry_on_a_coarse_clock(
) {
    // The first attempt makes the folder and its file, and once their
    // times are two seconds old, writes the file over in place a tenth
    // of a second into a second, and fails; the retry, moments later,
    // exits 0 without writing anything.
    a_fast_retry_on_a_coarse_clock_fails(
        "d",
        "mkdir -p $TASK_OUTPUT_DIR/d; echo new > $TASK_OUTPUT_DIR/d/f; sleep 2.5; while [ \"$(date +%N | cut -c1)\" != 1 ]; do sleep 0.005; done; echo old > $TASK_OUTPUT_DIR/d/f",
    );
}

/// A folder output counts as written by the attempt when anything in it
/// changed during the attempt (a retry that writes its file over in place
/// failed: the folder's own time stays the first attempt's); an untouched
/// folder still does not count.
#[test]
fn a_folder_output_written_over_in_place_counts_and_an_untouched_one_does_not() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "outputs: [d]\nretries: 1\n{}",
            sh("mkdir -p $TASK_OUTPUT_DIR/d/deep; echo $TASK_ATTEMPT > $TASK_OUTPUT_DIR/d/deep/x.txt; [ $TASK_ATTEMPT -gt 1 ]")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/outputs/p/a/d/deep/x.txt"), "2\n");
    t.task("p/a", &format!("outputs: [d]\n{}", sh("true")));
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(1);
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("d was not written by this attempt"),
        "{error}"
    );
}

/// A script whose `#!` line names an interpreter that is not there fails
/// saying so (Linux says the script itself is missing).
#[test]
fn a_script_whose_interpreter_is_missing_says_so() {
    let t = Tree::new();
    t.write("bin/odd", "#!/nonexistent/interp -x\necho hi\n");
    let script = t.path("bin/odd");
    let mut mode = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
    std::fs::set_permissions(&script, mode).unwrap();
    t.task("p/a", "command: [bin/odd]");
    t.run(&["orchestrate"]).code(1).says(
        "the program is there, but the interpreter its `#!` line names, `/nonexistent/interp`, is not",
    );
}

/// The same for a script a shell command runs (`sh` says it is `not
/// found`, as if its file were missing) and for one found on PATH: each
/// fails naming the interpreter that is missing.
#[test]
fn a_script_run_by_a_shell_or_found_on_path_whose_interpreter_is_missing_says_so() {
    let t = Tree::new();
    t.write_executable("bin/odd", "#!/nonexistent/interp -x\necho hi\n");
    t.task("p/shell", "command: \"bin/odd --flag\"");
    t.task("p/on-path", "command: [odd]");
    let run = orchestrate_with_bin_on_path(&t);
    run.code(1);
    let missing = "the program is there, but the interpreter its `#!` line names, `/nonexistent/interp`, is not";
    for id in ["p/shell", "p/on-path"] {
        let error = t.status(id)["error"].as_str().unwrap().to_owned();
        assert!(error.contains(missing), "{id}: {error}");
        run.says(&format!("{id}: {error}"));
    }
}

/// `orchestrate` run to its end with the tree's `bin` first on PATH.
fn orchestrate_with_bin_on_path(t: &Tree) -> Run {
    let path = std::env::var_os("PATH").unwrap();
    let path =
        std::env::join_paths(std::iter::once(t.path("bin")).chain(std::env::split_paths(&path)))
            .unwrap();
    Run::from(
        t.command(&["orchestrate"])
            .env("PATH", path)
            .output()
            .unwrap(),
    )
}

/// A script saved with Windows line endings (`#!/bin/sh\r`: Linux looks
/// for the interpreter `/bin/sh\r`, and says the script is missing) fails
/// saying so, whether its path is given, PATH finds it or a shell runs
/// it. Its task failed saying the script was not on PATH, or no such file,
/// beside it, or the shell's `not found` alone.
#[test]
fn a_script_with_windows_line_endings_is_said_so() {
    let t = Tree::new();
    t.write_executable("bin/crlf", "#!/bin/sh\r\necho hi\r\n");
    t.task("p/path", "command: [bin/crlf]");
    t.task("p/on-path", "command: [crlf]");
    t.task("p/shell", "command: \"bin/crlf --flag\"");
    let run = orchestrate_with_bin_on_path(&t);
    run.code(1);
    let said = "the program is there, but its `#!` line ends in a carriage return (Windows line endings): the interpreter it names, `/bin/sh\\r`, is not there; save the file with Unix line endings";
    for id in ["p/path", "p/on-path", "p/shell"] {
        let error = t.status(id)["error"].as_str().unwrap().to_owned();
        assert!(error.contains(said), "{id}: {error}");
        assert!(!error.contains("not on PATH"), "{id}: {error}");
        assert!(!error.contains("no such file"), "{id}: {error}");
    }
}

/// A symbolic link to nothing is no output: its task fails saying so (it
/// completed, and the task taking it as an input found it missing).
#[test]
fn an_output_that_links_to_nothing_is_no_output() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "outputs: [l]\n{}",
            sh("ln -sf /nonexistent/zz $TASK_OUTPUT_DIR/l")
        ),
    );
    t.run(&["orchestrate"]).code(1).says(
        "workspace/outputs/p/a/l is a symbolic link to /nonexistent/zz, which does not exist",
    );
}

/// A task next up has its log and folders made while its dependency
/// runs; its attempt still begins at its start. A file its dependency
/// wrote in its output folder meanwhile is not its output.
#[test]
fn an_output_written_by_another_task_before_the_start_does_not_count() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh("mkdir -p $TASK_OUTPUT_DIR/../b && echo foreign > $TASK_OUTPUT_DIR/../b/out.txt; while [ ! -f release ]; do sleep 0.02; done"),
    );
    t.task(
        "p/b",
        &format!(
            "dependencies: [p/a]\noutputs: [out.txt]\n{}",
            sh("echo b-ran")
        ),
    );
    let mut run = t.start(&["orchestrate"]);
    wait_for("b's log made ahead", || t.exists("workspace/logs/p/b.log"));
    wait_for("a's write in b's folder", || {
        t.exists("workspace/outputs/p/b/out.txt")
    });
    // The file system's clock is coarse: b starts on a later tick.
    let foreign = changed_ns(&t.path("workspace/outputs/p/b/out.txt"));
    wait_for("the file system's clock to move on", || {
        t.write("tick", "");
        changed_ns(&t.path("tick")) > foreign
    });
    t.write("release", "");
    assert!(!run.wait().unwrap().success());
    let error = t.status("p/b")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("out.txt was not written by this attempt"),
        "{error}"
    );
    assert!(t.read("workspace/logs/p/b.log").contains("b-ran"));
}

/// A file's change time, in nanoseconds.
fn changed_ns(path: &std::path::Path) -> i128 {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128
}

#[test]
fn inputs_gate_the_launch_and_missing_ones_are_reported() {
    let t = Tree::new();
    t.task(
        "p/make",
        &format!(
            "outputs: [data.txt]\n{}",
            sh("sleep 0.2; echo 42 > $TASK_OUTPUT_DIR/data.txt")
        ),
    );
    // No dependency listed: the input names its producer.
    t.task(
        "p/use",
        &format!(
            "inputs: [p/make/data.txt]\n{}",
            sh("cp $WORKSPACE/outputs/p/make/data.txt $TASK_OUTPUT_DIR/")
        ),
    );
    t.task(
        "p/orphan",
        &format!("inputs: [nowhere/file.txt]\n{}", sh("true")),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("p/orphan: missing input workspace/outputs/nowhere/file.txt (no task produces it)");
    assert_eq!(t.read("workspace/outputs/p/use/data.txt"), "42\n");
    assert_eq!(t.state("p/orphan"), "pending");
}

#[test]
fn an_input_its_producer_did_not_write_is_reported() {
    let t = Tree::new();
    // Its outputs are right (a glob matched), but not the one p/use needs.
    t.task(
        "p/make",
        &format!(
            "outputs: [\"*.txt\"]\n{}",
            sh("touch $TASK_OUTPUT_DIR/other.txt")
        ),
    );
    t.task(
        "p/use",
        &format!("inputs: [p/make/data.txt]\n{}", sh("true")),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("missing input workspace/outputs/p/make/data.txt (its producer p/make completed without writing it: `cargo xtask");
}

/// A declared output was there when its producer completed: when it is
/// missing later, it was removed since, and the message says so.
#[test]
fn an_input_removed_after_its_producer_completed_is_said_gone() {
    let t = Tree::new();
    t.task(
        "p/make",
        &format!(
            "outputs: [data.txt]\n{}",
            sh("touch $TASK_OUTPUT_DIR/data.txt")
        ),
    );
    t.run(&["orchestrate", "--task", "p/make"]).code(0);
    std::fs::remove_file(t.path("workspace/outputs/p/make/data.txt")).unwrap();
    t.task(
        "p/use",
        &format!("inputs: [p/make/data.txt]\n{}", sh("true")),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("missing input workspace/outputs/p/make/data.txt (its producer p/make completed with it, and it is gone since: `cargo xtask");
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let t = Tree::new();
    t.task(
        "p/slow",
        &format!(
            "timeout: 1s\n{}",
            sh("sleep 600 & echo $! > $TASK_OUTPUT_DIR/grandchild.pid; wait")
        ),
    );
    t.run(&["orchestrate"]).code(1).says("Timeout");
    let s = t.status("p/slow");
    assert_eq!(s["status"], "failed");
    assert_eq!(s["error"], "Timeout after 1s (its `timeout`)");
    let grandchild = read_pid(&t.path("workspace/outputs/p/slow/grandchild.pid"));
    wait_for("the grandchild to die", || !alive(grandchild));
}

#[test]
fn a_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let t = Tree::new();
    t.task(
        "p/stubborn",
        &format!(
            "timeout: 1\n{}",
            sh("trap '' TERM; sh -c 'trap \"\" TERM; sleep 600' & echo $! > $TASK_OUTPUT_DIR/child.pid; wait")
        ),
    );
    t.run(&["orchestrate"]).code(1);
    assert_eq!(
        t.status("p/stubborn")["error"],
        "Timeout after 1s (its `timeout`)"
    );
    wait_for("the process to die", || {
        !alive(read_pid(&t.path("workspace/outputs/p/stubborn/child.pid")))
    });
}

#[test]
fn processes_a_task_leaves_behind_are_killed() {
    let t = Tree::new();
    t.task(
        "p/daemon",
        &sh("sleep 600 & echo $! > $TASK_OUTPUT_DIR/bg.pid"),
    );
    t.run(&["orchestrate"]).code(0);
    wait_for("the process to die", || {
        !alive(read_pid(&t.path("workspace/outputs/p/daemon/bg.pid")))
    });
    assert!(t
        .read("workspace/logs/p/daemon.log")
        .contains("killed processes that the task left running"));
}

#[test]
fn the_global_limit_holds() {
    let t = Tree::new();
    let ids: Vec<String> = (0..6).map(|i| format!("p/t{i}")).collect();
    for id in &ids {
        t.task(id, &sh(TIMED));
    }
    t.run(&["orchestrate", "-j", "2"]).code(0);
    assert_eq!(max_overlap(&t, &ids), 2);
    let agents: std::collections::BTreeSet<String> = ids
        .iter()
        .map(|id| t.status(id)["agent_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        agents.into_iter().collect::<Vec<_>>(),
        ["agent-1", "agent-2"]
    );
}

#[test]
fn the_phase_limit_holds() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_concurrent_agents: 8\nphases:\n  analysis: {max_parallel: 2}\n");
    let ids: Vec<String> = (0..5).map(|i| format!("01-analysis/t{i}")).collect();
    let others: Vec<String> = (0..3).map(|i| format!("02-other/t{i}")).collect();
    for id in ids.iter().chain(&others) {
        t.task(id, &sh(TIMED));
    }
    t.run(&["orchestrate"]).code(0);
    assert_eq!(max_overlap(&t, &ids), 2);
    // Another phase is not held back by analysis's limit.
    assert!(max_overlap(&t, &[ids.clone(), others].concat()) > 2);
}

#[test]
fn a_task_file_added_during_the_run_runs_in_the_same_run() {
    let t = Tree::new();
    let generate = "printf -- '---\\ndependencies: [p/gen]\\ncommand: echo generated > $TASK_OUTPUT_DIR/x\\n---\\n' > tasks/p/.new.tmp && mv tasks/p/.new.tmp tasks/q/new.md";
    t.task("p/gen", &sh(&format!("mkdir -p tasks/q && {generate}")));
    t.run(&["orchestrate"])
        .code(0)
        .says("found    q/new")
        .says("Summary: 2 completed");
    assert_eq!(t.read("workspace/outputs/q/new/x"), "generated\n");
}

#[test]
fn a_rerun_after_the_fix_runs_only_what_is_not_done() {
    let t = Tree::new();
    t.task("p/a", &sh(MARK));
    t.task(
        "p/b",
        &format!(
            "dependencies: [p/a]\n{}",
            sh(&format!("{MARK}; test ! -f broken"))
        ),
    );
    t.task("p/c", &format!("dependencies: [p/b]\n{}", sh(MARK)));
    t.write("broken", "");
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/c"), "blocked");
    std::fs::remove_file(t.path("broken")).unwrap();
    t.run(&["orchestrate"]).code(0).says("Summary: 3 completed");
    assert_eq!(
        (t.launches("p/a"), t.launches("p/b"), t.launches("p/c")),
        (1, 2, 1)
    );
    assert_eq!(t.status("p/b")["attempt"], 2);
    // Each attempt's log is kept.
    assert!(t.exists("workspace/logs/p/b.attempt-1.log"));
    // Completed tasks are never rerun.
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("p/a"), 1);
}

/// A task run again after `reset` (or with its statuses removed) numbers
/// its attempts on from the logs on disk: every earlier attempt's log is
/// kept, none written over.
#[test]
fn a_reset_task_numbers_its_attempts_on_and_keeps_every_log() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "retries: 1\n{}",
            sh("echo \"run $(cat round) attempt $TASK_ATTEMPT\"; exit 1")
        ),
    );
    t.write("round", "1");
    t.run(&["orchestrate"]).code(1);
    t.run(&["reset", "p/a"]).code(0);
    t.write("round", "2");
    t.run(&["orchestrate"]).code(1);
    std::fs::remove_dir_all(t.path("workspace/status")).unwrap();
    t.write("round", "3");
    t.run(&["orchestrate"]).code(1);
    let log = |name: &str| t.read(&format!("workspace/logs/p/{name}"));
    for n in 1..=5 {
        let round = (n + 1) / 2;
        assert!(
            log(&format!("a.attempt-{n}.log")).contains(&format!("run {round} attempt {n}")),
            "attempt {n}"
        );
    }
    assert!(log("a.log").contains("run 3 attempt 6"));
    assert_eq!(t.status("p/a")["attempt"], 6);
}

/// A quiet attempt leaves an empty log, which numbers nothing; `reset`
/// keeps its number all the same: the next attempt is never given it again.
#[test]
fn a_quiet_attempt_reset_is_not_numbered_again() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!("retries: 0\n{}", sh("[ -f fixed ] || exit 3")),
    );
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.status("p/a")["attempt"], 1);
    t.run(&["reset", "p/a"]).code(0);
    t.write("fixed", "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.status("p/a")["attempt"], 2);
    let attempts: Vec<u64> = events(&t)
        .iter()
        .filter(|e| e["task"] == "p/a" && e["to"] == "running")
        .map(|e| e["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2]);
    // A completed one too, and one a `--rerun-stale` takes up again: its
    // earlier failure is not told to it again.
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.status("p/a")["attempt"], 3);
    assert!(t.status("p/a").get("previous").is_none());
    t.task(
        "p/a",
        &format!("retries: 1\n{}", sh("[ -f fixed ] || exit 3")),
    );
    t.run(&["orchestrate", "--rerun-stale"]).code(0);
    assert_eq!(t.status("p/a")["attempt"], 4);
    let attempts: Vec<u64> = events(&t)
        .iter()
        .filter(|e| e["task"] == "p/a" && e["to"] == "running")
        .map(|e| e["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    for n in 1..=3 {
        assert!(
            t.exists(&format!("workspace/logs/p/a.attempt-{n}.log")),
            "{n}"
        );
    }
}

#[test]
fn dry_run_writes_nothing_and_prints_the_waves() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("p/b", &sh("true"));
    t.task(
        "p/c",
        &format!("dependencies: [p/a, p/b]\n{}", sh("echo c")),
    );
    let run = t.run(&["orchestrate", "--dry-run", "-j", "1"]);
    run.code(0);
    let waves: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("Wave"))
        .collect();
    assert_eq!(waves, ["Wave 1:", "Wave 2:", "Wave 3:"]);
    assert!(run.stdout.contains("sh -c 'echo c'"), "{}", run.stdout);
    assert!(!t.exists("workspace"), "a dry run created workspace/");
}

#[test]
fn phase_selects_one_phase_and_reports_what_it_waits_on() {
    let t = Tree::new();
    t.task("01-analysis/a", &sh(MARK));
    t.task("02-planning/b", &sh(MARK));
    t.task(
        "02-planning/c",
        &format!("dependencies: [01-analysis/a]\n{}", sh(MARK)),
    );
    t.run(&["orchestrate", "--phase", "planning"])
        .code(1)
        .says("02-planning/c: waits on 01-analysis/a (not run yet, and not selected in this run)");
    assert_eq!(
        (t.launches("01-analysis/a"), t.launches("02-planning/b")),
        (0, 1)
    );
    t.run(&["orchestrate", "--phase", "01-analysis"]).code(0);
    t.run(&["orchestrate", "--phase", "02-planning"]).code(0);
    assert_eq!(t.launches("02-planning/c"), 1);
    t.run(&["orchestrate", "--phase", "nope"])
        .code(2)
        .says("no phase `nope`");
}

#[test]
fn task_selects_only_those_tasks() {
    let t = Tree::new();
    t.task("p/a", &sh(MARK));
    t.task("p/b", &sh(MARK));
    t.run(&["orchestrate", "--task", "p/b"]).code(0);
    assert_eq!((t.launches("p/a"), t.launches("p/b")), (0, 1));
    t.run(&["orchestrate", "--task", "p/bb"])
        .code(2)
        .says("did you mean `p/b`?");
}

#[test]
fn the_task_gets_its_environment_and_no_stdin() {
    let t = Tree::new();
    t.task(
        "p/env",
        &sh("env | grep -E '^(TASK_|AGENT_ID|WORKSPACE|XTASK_)' | sort > $TASK_OUTPUT_DIR/env; pwd > $TASK_OUTPUT_DIR/pwd; cat > $TASK_OUTPUT_DIR/stdin"),
    );
    t.run(&["orchestrate"]).code(0);
    let root = t.root.canonicalize().unwrap().display().to_string();
    let env = t.read("workspace/outputs/p/env/env");
    for expected in [
        "AGENT_ID=agent-1".to_owned(),
        "TASK_ID=p/env".to_owned(),
        "TASK_PHASE=p".to_owned(),
        "TASK_ATTEMPT=1".to_owned(),
        format!("TASK_FILE={root}/tasks/p/env.md"),
        format!("TASK_OUTPUT_DIR={root}/workspace/outputs/p/env"),
        format!("TASK_LOG={root}/workspace/logs/p/env.log"),
        format!("WORKSPACE={root}/workspace"),
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "{expected} not in\n{env}"
        );
    }
    // What the orchestrator tells its supervisor is not the task's.
    assert!(!env.contains("XTASK_"), "{env}");
    assert_eq!(t.read("workspace/outputs/p/env/pwd").trim(), root);
    assert_eq!(t.read("workspace/outputs/p/env/stdin"), "");
}

#[test]
fn the_agent_command_gets_its_placeholders() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nagent:\n  command: [sh, -c, 'echo \"$0 $1\" > \"$2/args\"', '{task_id}', '{task_file}', '{output_dir}']\n");
    t.task("p/a", "title: uses the agent");
    t.run(&["orchestrate"]).code(0);
    let root = t.root.canonicalize().unwrap().display().to_string();
    assert_eq!(
        t.read("workspace/outputs/p/a/args"),
        format!("p/a {root}/tasks/p/a.md\n")
    );
}

/// A retry in the next run is told the failed attempt's log as a retry in
/// the same run is: the kept one, not its own new log.
#[test]
fn a_retry_in_the_next_run_is_told_the_failed_attempt_s_log() {
    let t = Tree::new();
    t.task(
        "p/flaky",
        &sh("echo \"attempt $TASK_ATTEMPT\"; cp \"${TASK_PREVIOUS_LOG:-/dev/null}\" $TASK_OUTPUT_DIR/previous; test $TASK_ATTEMPT -ge 2"),
    );
    t.run(&["orchestrate"]).code(1);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/outputs/p/flaky/previous"), "attempt 1\n");
}

#[test]
fn retries_run_again_and_dependents_wait_for_the_success() {
    let t = Tree::new();
    // Fails on the first attempt, succeeds on the second.
    t.task(
        "p/flaky",
        &format!(
            "retries: 2\n{}",
            sh(&format!("{MARK}; echo \"$TASK_ATTEMPT|$TASK_PREVIOUS_ERROR|$TASK_PREVIOUS_LOG\" > $TASK_OUTPUT_DIR/seen; test $TASK_ATTEMPT -ge 2"))
        ),
    );
    t.task("p/after", &format!("dependencies: [p/flaky]\n{}", sh(MARK)));
    t.run(&["orchestrate"]).code(0).says("retry");
    assert_eq!((t.launches("p/flaky"), t.launches("p/after")), (2, 1));
    let root = t.root.canonicalize().unwrap().display().to_string();
    assert_eq!(
        t.read("workspace/outputs/p/flaky/seen").trim(),
        format!("2|exit code 1|{root}/workspace/logs/p/flaky.attempt-1.log")
    );
    assert_eq!(t.status("p/flaky")["attempt"], 2);
}

/// The limits allow any number of tasks at once: the run makes a slot
/// for each task it starts, not for each the limit allows (which aborted
/// on an allocation of 32 GiB).
#[test]
fn the_largest_limit_runs_like_any_other() {
    let t = Tree::new();
    t.config("max_concurrent_agents: 99999999999999\nmax_memory_gb: 64\n");
    t.task("p/a", "command: \"true\"");
    t.task("p/b", "command: \"true\"");
    t.run(&["orchestrate"]).code(0).says("Summary: 2 completed");
    t.run(&["reset", "p"]).code(0);
    t.run(&["orchestrate", "-j", "4294967295"])
        .code(0)
        .says("Summary: 2 completed");
}

/// A glob output is matched in the task's folder whatever the folder's
/// name holds: a `[` in a phase's name (or the root's) is a character.
#[test]
fn a_glob_output_matches_in_a_folder_whose_name_has_brackets() {
    let t = Tree::new();
    t.task(
        "p[1]/t",
        "outputs: [\"*.txt\"]\ncommand: \"echo x > $TASK_OUTPUT_DIR/out.txt\"",
    );
    t.run(&["orchestrate"]).code(0).says("Summary: 1 completed");
    assert_eq!(t.status("p[1]/t")["outputs_validated"], true);
}

/// What a reset kept for a failed task's next attempt stays while the task
/// does not run: blocked in between, and cleared with what blocked it.
#[test]
fn a_failure_kept_by_reset_outlasts_a_block() {
    let t = Tree::new();
    t.task("p/a", &sh("test ! -e a-fails"));
    t.task(
        "p/b",
        &format!(
            "dependencies: [p/a]\n{}",
            sh("echo x; echo ${TASK_PREVIOUS_ERROR:-none} >> $TASK_OUTPUT_DIR/told; test -e b-works")
        ),
    );
    t.run(&["orchestrate"]).code(1);
    t.run(&["reset", "p/b"]).code(0);
    t.write("a-fails", "");
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/b"), "blocked");
    t.run(&["reset", "p/a"])
        .code(0)
        .says("reset  p/b (was blocked by p/a)");
    std::fs::remove_file(t.path("a-fails")).unwrap();
    t.write("b-works", "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/outputs/p/b/told"), "none\nexit code 1\n");
}

/// Outputs a task wrote under a name that is not UTF-8: a pattern never
/// matches one, and the failure says it is there (it said only `no file
/// matches`, beside an `ls` that showed it); a folder output rewritten
/// through one counts as written (it was passed over).
#[test]
fn outputs_named_in_bytes_that_are_not_utf8_are_said_and_counted() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "outputs: [\"*.csv\"]\n{}",
            sh(r#"printf x > "$TASK_OUTPUT_DIR/$(printf 'b\377d').csv""#)
        ),
    );
    t.task(
        "p/b",
        &format!(
            "outputs: [dir]\nretries: 1\n{}",
            sh(r#"mkdir -p "$TASK_OUTPUT_DIR/dir"; printf "$TASK_ATTEMPT" > "$TASK_OUTPUT_DIR/dir/$(printf 'x\377')"; [ "$TASK_ATTEMPT" = 2 ]"#)
        ),
    );
    t.run(&["orchestrate"]).code(1);
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("no file matches workspace/outputs/p/a/*.csv (b\u{fffd}d.csv is there, its name not UTF-8, which no output names: name it in UTF-8)"),
        "{error}"
    );
    assert_eq!(t.state("p/b"), "completed", "{}", t.status("p/b"));
}
