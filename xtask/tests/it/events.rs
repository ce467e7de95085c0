//! `workspace/events.jsonl`, `events`, and notifiers.

use crate::tree::*;

/// A failure in a run that does not select what it blocks (`--task`, or
/// `monitor`, which selects only the tasks it waits for) tells each of
/// those its change from what its status says: a task that failed on its
/// own goes `failed -> blocked`, not `pending -> blocked`, and one blocked
/// already by that task is no new event (the soak found a `monitor` that
/// told a task blocked twice, the second time from `pending`).
#[test]
fn a_block_outside_the_run_s_selection_is_told_from_what_its_status_says() {
    let t = Tree::new();
    t.task("p/a", &sh("test -e fail-a && exit 3; true"));
    t.task("q/b", &format!("dependencies: [p/a]\n{}", sh("exit 4")));
    t.task("q/c", &format!("dependencies: [q/b]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    assert_eq!(changes(&t, "q/c"), ["pending -> blocked"]);
    t.write("fail-a", "");
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate", "--task", "p/a"]).code(1);
    assert_eq!(
        changes(&t, "q/b"),
        [
            "pending -> running",
            "running -> failed",
            "failed -> blocked"
        ]
    );
    // Blocked by q/b before, by p/a now: a change, from blocked.
    assert_eq!(
        changes(&t, "q/c"),
        ["pending -> blocked", "blocked -> blocked"]
    );
    assert_eq!(t.status("q/c")["blocked_by"], "p/a");
    // Its own failure is kept for its retry.
    assert_eq!(t.status("q/b")["previous"]["error"], "exit code 4");
    // The same failure again: no change.
    t.run(&["orchestrate", "--task", "p/a"]).code(1);
    assert_eq!(
        changes(&t, "q/b"),
        [
            "pending -> running",
            "running -> failed",
            "failed -> blocked"
        ]
    );
    assert_eq!(
        changes(&t, "q/c"),
        ["pending -> blocked", "blocked -> blocked"]
    );
}

#[test]
fn every_transition_of_a_run_is_an_event_in_order() {
    let t = Tree::new();
    t.task(
        "p/retried",
        &format!(
            "retries: 1\n{}",
            sh("test -e again || { touch again; exit 3; }")
        ),
    );
    t.task("p/fails", &sh("exit 4"));
    t.task(
        "p/blocked",
        &format!("dependencies: [p/fails]\n{}", sh("true")),
    );
    t.run(&["orchestrate"]).code(1);
    let all = events(&t);
    assert_eq!(all.first().unwrap()["event"], "run_started");
    assert_eq!(all.last().unwrap()["event"], "run_finished");
    assert_eq!(all.last().unwrap()["exit_code"], 1);
    assert_eq!(
        changes(&t, "p/retried"),
        [
            "pending -> running",
            "running -> failed",
            "failed -> pending",
            "pending -> running",
            "running -> completed"
        ]
    );
    assert_eq!(
        changes(&t, "p/fails"),
        ["pending -> running", "running -> failed"]
    );
    assert_eq!(changes(&t, "p/blocked"), ["pending -> blocked"]);
    let failed = all
        .iter()
        .find(|e| e["task"] == "p/fails" && e["to"] == "failed")
        .unwrap();
    assert_eq!(failed["error"], "exit code 4");
    assert_eq!(failed["attempt"], 1);
    let run_id = all[0]["run_id"].clone();
    assert!(all.iter().all(|e| e["run_id"] == run_id));
    // In time order.
    let times: Vec<&str> = all.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // `events` prints them, for one task too.
    t.run(&["events", "--task", "p/fails"])
        .code(0)
        .says("p/fails  running -> failed  attempt 1, agent-1: exit code 4");
    t.run(&["events", "--task", "p/fail"])
        .code(2)
        .says("no task `p/fail`: did you mean `p/fails`?");
    let json = t.run(&["events", "--json"]);
    assert_eq!(json.stdout.lines().count(), all.len());
}

#[test]
fn a_change_made_between_runs_or_by_validate_is_an_event_too() {
    let t = Tree::new();
    t.task("p/fails", &sh("test -e fixed || exit 4"));
    t.task(
        "p/blocked",
        &format!("dependencies: [p/fails]\n{}", sh("true")),
    );
    t.task(
        "p/made",
        &format!("outputs: [out]\n{}", sh("touch $TASK_OUTPUT_DIR/out")),
    );
    t.run(&["orchestrate"]).code(1);
    // The next run takes up what the first left failed and blocked.
    t.write("fixed", "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        changes(&t, "p/fails"),
        [
            "pending -> running",
            "running -> failed",
            "failed -> pending",
            "pending -> running",
            "running -> completed"
        ]
    );
    assert_eq!(
        changes(&t, "p/blocked"),
        [
            "pending -> blocked",
            "blocked -> pending",
            "pending -> running",
            "running -> completed"
        ]
    );
    // `validate` finds an output gone: the task fails, and says so.
    std::fs::remove_file(t.path("workspace/outputs/p/made/out")).unwrap();
    t.run(&["validate"]).code(1);
    let made = changes(&t, "p/made");
    assert_eq!(made.last().unwrap(), "completed -> failed", "{made:?}");
    // Its next run takes it up again.
    t.run(&["orchestrate"]).code(0);
    let made = changes(&t, "p/made");
    assert_eq!(
        made[made.len() - 4..],
        [
            "completed -> failed",
            "failed -> pending",
            "pending -> running",
            "running -> completed"
        ]
    );
}

/// A run takes up again what an earlier one left failed and blocked, but
/// says they are pending only as they start: one that cannot (its input
/// gone) keeps the state its status says in the events too.
#[test]
fn a_task_taken_up_again_that_cannot_start_is_no_pending_event() {
    let t = Tree::new();
    t.write("workspace/outputs/data/in", "x");
    t.task("p/a", &format!("inputs: [data/in]\n{}", sh("exit 1")));
    t.task("q/c", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    std::fs::remove_file(t.path("workspace/outputs/data/in")).unwrap();
    t.run(&["orchestrate"]).code(1);
    assert_eq!(
        changes(&t, "p/a"),
        ["pending -> running", "running -> failed"]
    );
    assert_eq!(changes(&t, "q/c"), ["pending -> blocked"]);
    assert_eq!(
        (t.state("p/a"), t.state("q/c")),
        ("failed".into(), "blocked".into())
    );
    // Once it can, the changes come as it starts, and a block again by
    // the same failure is no change.
    t.write("workspace/outputs/data/in", "x");
    t.run(&["orchestrate"]).code(1);
    assert_eq!(
        changes(&t, "p/a")[2..],
        [
            "failed -> pending",
            "pending -> running",
            "running -> failed"
        ]
    );
    assert_eq!(changes(&t, "q/c"), ["pending -> blocked"]);
}

/// A failed task taken up again that then waits for an approval (its
/// approval revoked by an edit) leaves `failed` in the events first, once.
#[test]
fn a_task_taken_up_again_that_awaits_approval_says_each_change_once() {
    let t = Tree::new();
    t.task("p/a", &format!("approve: before\n{}", sh("test -e fixed")));
    t.run(&["approve", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(1);
    t.write("fixed", "");
    t.task(
        "p/a",
        &format!("approve: before\ntitle: edited\n{}", sh("test -e fixed")),
    );
    t.run(&["orchestrate"]).code(4);
    t.run(&["approve", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
    let said = changes(&t, "p/a");
    assert_eq!(
        said[2..],
        [
            "failed -> pending",
            "pending -> awaiting_approval",
            "awaiting_approval -> pending",
            "pending -> running",
            "running -> completed"
        ],
        "{said:?}"
    );
}

#[test]
fn what_a_held_task_blocks_stays_blocked_in_the_log_run_after_run() {
    let t = Tree::new();
    t.task("p/held", &sh("exit 1"));
    t.task(
        "p/after",
        &format!("dependencies: [p/held]\n{}", sh("true")),
    );
    t.run(&["orchestrate"]).code(1);
    t.run(&["block", "p/held"]).code(0);
    t.run(&["orchestrate"]).code(1);
    t.run(&["orchestrate"]).code(1);
    let after = changes(&t, "p/after");
    assert!(
        !after.contains(&"blocked -> pending".to_owned()),
        "{after:?}"
    );
    assert!(after.last().unwrap().ends_with("-> blocked"), "{after:?}");
}

#[test]
fn the_run_s_end_is_notified_after_a_slow_notification() {
    let t = Tree::new();
    // Slow for a task's end (killed at its timeout), quick for the run's.
    let command = "read -r line; case $line in *run_finished*) echo \"$line\" >> ends.jsonl ;; *) sleep 100 ;; esac";
    t.config(&format!(
        "notify:\n  - on: [completed, run_finished]\n    timeout: 1s\n    command: {}\n",
        serde_json::to_string(command).unwrap()
    ));
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    assert!(t.read("ends.jsonl").contains("run_finished"));
}

#[test]
fn failing_and_hanging_notifiers_change_nothing_in_the_run() {
    let config = "notify:\n  - on: [failed, blocked, run_finished]\n    command: \"cat >> notified.jsonl\"\n  - on: [failed]\n    command: \"echo failing notifier; exit 1\"\n  - on: [run_finished, failed]\n    command: \"sleep 1000\"\n    timeout: 1s\n";
    let t = Tree::new();
    t.config(config);
    t.task("p/ok", &sh("true"));
    t.task("p/fails", &sh("exit 4"));
    t.task(
        "p/blocked",
        &format!("dependencies: [p/fails]\n{}", sh("true")),
    );
    let run = t.run(&["orchestrate"]);
    run.code(1).says("1 completed, 1 failed, 1 blocked");
    assert_eq!(t.state("p/ok"), "completed");
    assert_eq!(t.state("p/fails"), "failed");
    assert_eq!(t.state("p/blocked"), "blocked");

    // The listening notifier got exactly its events, as JSON lines.
    let notified: Vec<serde_json::Value> = t
        .read("notified.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<String> = notified
        .iter()
        .map(|e| e["event"].as_str().or(e["to"].as_str()).unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["failed", "blocked", "run_finished"]);
    assert_eq!(notified[0]["task"], "p/fails");
    assert_eq!(notified[2]["exit_code"], 1);

    let log = t.read("workspace/logs/notify.log");
    assert!(log.contains("failing notifier"), "{log}");
    // Each end names its notifier and its event: the notifiers' lines
    // interleave.
    assert!(
        log.contains("notifier 2 for p/fails -> failed: exit 1"),
        "{log}"
    );
    // Killed at its own timeout, or, started after the run had ended (a
    // busy machine), at the end of the notifiers' time a moment before.
    assert!(
        log.contains("notifier 3 for p/fails -> failed: killed after 1s: it took too long")
            || log.contains("the run had ended, and its notifiers' time with it"),
        "{log}"
    );
    // No notifier outlives the run.
    assert!(!sh_running("sleep 1000", &t));
}

/// A command the end of the notifiers' time cuts short (the run ended, and
/// what was queued had its notifier's timeout more) is said so, not as one
/// that took longer than its timeout: it said `killed after 549ms: it took
/// too long` of a notifier whose timeout is 2s.
#[test]
fn a_notifier_cut_short_by_the_run_s_end_is_not_said_to_take_too_long() {
    let t = Tree::new();
    t.config("notify:\n  - on: [completed]\n    timeout: 2s\n    command: \"sleep 1.5\"\n");
    t.task("p/a", &sh("true"));
    t.task("p/b", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let log = t.read("workspace/logs/notify.log");
    assert!(
        log.contains(": the run had ended, and its notifiers' time with it"),
        "{log}"
    );
    assert!(!log.contains("it took too long"), "{log}");
}

/// What each notifier's command prints is kept in the log with its own
/// lines, whole, never inside another's (they ran at once and wrote into
/// one file), and only its first 64 KiB: a notifier printing without end
/// fills no disk.
#[test]
fn notifiers_output_is_kept_apart_and_bounded() {
    let t = Tree::new();
    t.config(
        "notify:\n  - on: [run_finished]\n    command: \"head -c 20000000 /dev/zero | tr '\\\\0' y\"\n  - on: [run_finished]\n    command: \"echo hello; exit 7\"\n",
    );
    t.task("p/ok", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let log = t.read("workspace/logs/notify.log");
    assert!(log.len() < 100_000, "{} bytes", log.len());
    assert!(
        log.contains("[... 19934464 more bytes, not kept]"),
        "{}",
        &log[log.len() - 300..]
    );
    assert!(
        log.contains("    hello\n  notifier 2 for run_finished: exit 7\n"),
        "{log}"
    );
    assert!(
        log.contains("not kept]\n  notifier 1 for run_finished: exit 0\n"),
        "{}",
        &log[log.len() - 300..]
    );
}

/// A notifier that fails is said on the console, not only in its log:
/// its first failure at the run's next event, and how many of its commands
/// failed once the run has waited for it (a webhook's address unset would
/// otherwise page nobody, in silence). One that works is never named.
#[test]
fn a_failing_notifier_is_said_on_the_console() {
    let t = Tree::new();
    t.config(
        "notify:\n  - on: [failed, completed, run_finished]\n    command: \"echo no webhook; exit 3\"\n  \
         - on: [failed, completed, run_finished]\n    command: \"cat > /dev/null\"\n",
    );
    t.task("p/a", &format!("retries: 0\n{}", sh("exit 1")));
    // Ends once the failing notifier has ended for `a`'s failure.
    let log = t.path("workspace/logs/notify.log");
    let waits = format!(
        "until grep -qs 'notifier 1 for p/a -> failed: exit 3' {}; do sleep 0.05; done",
        log.display()
    );
    t.task("p/b", &sh(&waits));
    let run = t.run(&["orchestrate"]);
    run.code(1).never_says("notifier 2");
    let said = run.said();
    let first = "warning: notifier 1 failed (exit 3, for p/a -> failed): see ";
    let at = said.find(first).unwrap_or_else(|| panic!("{said}"));
    let done = said
        .find("done     p/b")
        .unwrap_or_else(|| panic!("{said}"));
    assert!(at < done, "said at the next event, `b`'s end: {said}");
    assert_eq!(said.matches(first).count(), 1, "{said}");
    run.says("warning: notifier 1 failed 3 of its 3 commands: see ");
    // A command that tells its change says it too, on stderr as its other
    // warnings, what a script reads on stdout left as it was.
    let block = t.run(&["block", "p/a", "--reason", "flaky"]);
    block.code(0);
    let warning = "warning: notifier 1 failed 1 of its 1 command";
    assert!(block.stderr.contains(warning), "{}", block.stderr);
    assert!(!block.stdout.contains(warning), "{}", block.stdout);
}

/// A notifier whose command starts with a program the shell does not find
/// is warned of by `validate` and as a run starts; a command that starts
/// with what only its shell reads (an assignment, a variable), a builtin
/// or a script of the repository is not.
#[test]
fn a_notifier_s_missing_program_is_warned_of() {
    let t = Tree::new();
    t.write_executable("scripts/page.sh", "#!/bin/sh\ncat > /dev/null\n");
    t.config(
        "notify:\n  - on: [failed]\n    command: \"jqq -c . | curl -d @- http://chat\"\n  \
         - on: [failed]\n    command: \"URL=x ./scripts/page.sh\"\n  \
         - on: [failed]\n    command: \"$PAGER_TOOL\"\n  \
         - on: [failed]\n    command: \"echo hi\"\n  \
         - on: [failed]\n    command: \"./scripts/page.sh --urgent\"\n",
    );
    t.task("p/a", &sh("true"));
    let warning = "warning: notifier 1's command runs `jqq`, which the shell does not find";
    let validated = t.run(&["validate"]);
    validated.code(0).says(warning).never_says("notifier 2");
    for n in 3..=5 {
        validated.never_says(&format!("notifier {n}"));
    }
    t.run(&["orchestrate"]).code(0).says(warning);
}

/// The orchestrator blocks SIGTERM for itself (it takes signals as
/// events); what a notifier runs gets it back, so that the notifier can
/// stop its own commands.
#[test]
fn a_notifier_can_stop_what_it_runs_with_sigterm() {
    let t = Tree::new();
    t.config("notify:\n  - on: [run_finished]\n    command: \"sleep 30 & kill $!; wait $!; echo $? > code.txt\"\n    timeout: 5s\n");
    t.task("p/ok", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("code.txt").trim(), "143");
}

/// What a notifier's command leaves running as it exits (a `cmd &`) is
/// killed with it, as a task's leftovers are: nothing the run started
/// outlives it.
#[test]
fn what_a_notifier_leaves_running_is_killed_as_it_exits() {
    let t = Tree::new();
    t.config("notify:\n  - on: [run_finished]\n    command: \"sleep 1001 & echo $! > left.pid\"\n");
    t.task("p/ok", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let left = read_pid(&t.path("left.pid"));
    wait_for("what it left to end", || !alive(left));
    let log = t.read("workspace/logs/notify.log");
    assert!(log.contains("exit 0"), "{log}");
}

/// A command that reads none of its event still gets no more than its
/// timeout when the event is larger than a pipe holds (a failure naming
/// hundreds of missing outputs): the run ends.
#[test]
fn a_notifier_that_reads_no_large_event_is_killed_at_its_timeout() {
    let t = Tree::new();
    t.config("notify:\n  - on: [failed]\n    command: \"sleep 1000\"\n    timeout: 1s\n");
    let outputs: Vec<String> = (0..800)
        .map(|i| format!("{}{i}", "o".repeat(100)))
        .collect();
    t.task("p/a", &format!("outputs: {outputs:?}\n{}", sh("true")));
    let mut run = t.start(&["orchestrate"]);
    wait_for("the run to end", || run.try_wait().unwrap().is_some());
    let log = t.read("workspace/logs/notify.log");
    // After 1s, or less when it started once the run had ended: the run
    // gives its notifiers their timeout in all from its end.
    assert!(log.contains("it took too long"), "{log}");
    assert!(!sh_running("sleep 1000", &t));
}

/// A command that tells its changes (`validate` here) and whose notifier
/// ends without reading an event larger than a pipe holds goes on to its
/// end: the write fails, and its SIGPIPE (a view's, for such a command)
/// does not end it halfway (it exited 141).
#[test]
fn a_notifier_that_reads_no_large_event_does_not_end_a_command() {
    let t = Tree::new();
    t.config("notify:\n  - on: [failed]\n    command: \"exit 0\"\n");
    let name = "o".repeat(100);
    let outputs: Vec<String> = (0..800).map(|i| format!("{name}{i}")).collect();
    let makes =
        format!("i=0; while [ $i -lt 800 ]; do : > $TASK_OUTPUT_DIR/{name}$i; i=$((i+1)); done");
    t.task("p/a", &format!("outputs: {outputs:?}\n{}", sh(&makes)));
    t.run(&["orchestrate"]).code(0);
    std::fs::remove_dir_all(t.path("workspace/outputs/p/a")).unwrap();
    // The `failed` event names 800 missing outputs: some 90 KB.
    t.run(&["validate"])
        .code(1)
        .says("FAILED p/a: ")
        .says("1 completed task checked, 1 with problems");
    assert!(t
        .read("workspace/logs/notify.log")
        .contains("notifier 1 for p/a -> failed: exit 0"));
}

/// A notifier's command dies with a SIGKILLed orchestrator, and what it
/// runs with it (its shell alone did, its `sleep` lived on): nothing would
/// enforce its timeout any more.
#[test]
fn a_notifier_dies_with_a_killed_orchestrator() {
    let t = Tree::new();
    t.config("notify:\n  - on: [run_started]\n    command: \"echo $$ > notifier.pid; sleep 1000\"\n  - on: [run_started]\n    command: \"sleep 1000 & echo $! > child.pid; wait\"\n");
    t.task("p/a", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("the notifiers", || {
        pid_written(&t, "notifier.pid") && pid_written(&t, "child.pid")
    });
    let notifier = read_pid(&t.path("notifier.pid"));
    let sleeps = sh_running("sleep 1000", &t);
    assert!(alive(notifier) && sleeps);
    let child = read_pid(&t.path("child.pid"));
    run.kill().unwrap();
    run.wait().unwrap();
    wait_for("the notifiers' end", || {
        !alive(notifier) && !alive(child) && !sh_running("sleep 1000", &t)
    });
    t.write("release", "");
}

/// Once the run is over, it says that it waits for its notifiers, and a
/// Ctrl-C then ends the wait: what they run is killed.
#[test]
fn ctrl_c_while_the_notifiers_finish_ends_the_wait() {
    let t = Tree::new();
    t.config("notify:\n  - on: [run_finished]\n    command: \"sleep 100\"\n    timeout: 60s\n");
    t.task("p/a", &sh("true"));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the run to say it waits", || {
        t.read("out").contains(
            "waiting for the notifiers (1 event left: each notifier gets its timeout more, 1m at most, and run_finished its own); Ctrl-C drops them",
        )
    });
    wait_for("the command to start", || sh_running("sleep 100", &t));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    wait_for("the run to end", || run.try_wait().unwrap().is_some());
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert!(!sh_running("sleep 100", &t));
}

/// A run that has ended and waits for its notifiers runs nothing more:
/// `progress` says no run is going on (the work left is for the next one),
/// not an expected end that nothing brings nearer.
#[test]
fn a_run_waiting_for_its_notifiers_is_no_run_going_on() {
    let t = Tree::new();
    t.config(
        "notify:\n  - on: [run_finished]\n    command: \"i=0; while [ ! -e go ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done\"\n    timeout: 60s\n",
    );
    t.task("p/a", &sh("exit 1"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the run to say it waits", || {
        t.read("out").contains("waiting for the notifiers")
    });
    let json = progress_json(&t);
    assert_eq!(json["run_going_on"], false, "{json}");
    t.run(&["progress"])
        .code(0)
        .says("once a run starts (no run is going on;")
        .never_says("Expected end: ");
    // Nor do `why` and `new` say it takes a task up.
    t.run(&["why", "p/b"])
        .code(0)
        .never_says("the run going on");
    t.run(&["new", "p/c"])
        .code(0)
        .never_says("a run is going on");
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(1));
}

/// A run started while the last one waits for its notifiers is refused
/// (the workspace is still that one's), saying why: `approve` had just
/// said that the next run acts on the approval, and the refusal said
/// another orchestrator was running, to be waited for or killed.
#[test]
fn a_run_refused_beside_one_that_waits_for_its_notifiers_says_so() {
    let t = Tree::new();
    t.config(
        "notify:\n  - on: [run_finished]\n    command: \"i=0; while [ ! -e go ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done\"\n    timeout: 60s\n",
    );
    t.task("p/a", &format!("approve: before\n{}", sh("true")));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the run to say it waits", || {
        t.read("out").contains("waiting for the notifiers")
    });
    t.run(&["approve", "p/a"])
        .code(0)
        .says("the next `cargo xtask");
    t.run(&["orchestrate"])
        .code(2)
        .says("has ended and waits for its notifiers")
        .never_says("is running on");
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(4));
    t.run(&["orchestrate"]).code(0);
}

/// Whether a process whose command line is `cmd` runs in the tree.
fn sh_running(cmd: &str, t: &Tree) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let cwd = std::fs::read_link(e.path().join("cwd")).ok()?;
            let line = std::fs::read(e.path().join("cmdline")).ok()?;
            Some((cwd, String::from_utf8_lossy(&line).replace('\0', " ")))
        })
        .any(|(cwd, line)| cwd.starts_with(&t.root) && line.contains(cmd))
}

#[test]
fn a_notifier_that_names_no_event_is_an_invalid_config() {
    let t = Tree::new();
    t.config("notify:\n  - on: [faild, completed, run_finshed]\n    command: \"true\"\n");
    t.task("p/a", &sh("true"));
    // Every unknown one at once.
    t.run(&["validate"])
        .code(2)
        .says("`notify`: item 1: `on`: no event `faild`: did you mean `failed`?; no event `run_finshed`: did you mean `run_finished`?");
    // Every item's problem at once; an empty `on` is one.
    t.config("notify:\n  - on: []\n    command: \"true\"\n  - on: [failed]\n    command: \"true\"\n    timeout: soon\n");
    t.run(&["validate"])
        .code(2)
        .says("item 1: `on` lists no event: name those to run it for")
        .says("; item 2: `timeout`: ");
}

/// A line of the events log that is not UTF-8 (mangled by hand or a
/// disk) is skipped: every event after it still counts, in the report too.
#[test]
fn a_bad_line_in_the_events_log_hides_none_after_it() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(0);
    let path = t.path("workspace/events.jsonl");
    let text = std::fs::read(&path).unwrap();
    let second = text.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut mangled = text[..second].to_vec();
    mangled.extend_from_slice(b"\xff\n");
    mangled.extend_from_slice(&text[second..]);
    std::fs::write(&path, mangled).unwrap();
    t.run(&["report"]).code(0);
    let report = t.read("workspace/report.html");
    assert!(
        report.contains("data-task=\"p/b\""),
        "p/b left the timeline"
    );
    assert!(report.contains("2 tasks ran"), "{report}");
}

/// The events log of a workspace used for weeks holds millions of lines:
/// `events` reads it a block at a time (read whole and each line taken
/// off its front, 10 MB took it half a minute, 100 MB over ten), and
/// `report`, of the last run, reads it from its end (it parsed all of it,
/// holding four times the file). Neither needs as much memory as the file.
#[test]
fn a_long_events_log_is_read_without_holding_it() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let last = t.read("workspace/events.jsonl");
    let first: serde_json::Value = serde_json::from_str(last.lines().next().unwrap()).unwrap();
    let run_id = first["run_id"].as_str().unwrap();
    // Earlier runs of the same task, each its own, then the last.
    const SIZE: usize = 32 << 20;
    let mut weeks = String::with_capacity(SIZE + last.len());
    let mut runs = 0;
    while weeks.len() < SIZE {
        weeks += &last.replace(run_id, &format!("earlier-{runs}"));
        runs += 1;
    }
    weeks += &last;
    std::fs::write(t.path("workspace/events.jsonl"), weeks).unwrap();
    let memory = SIZE as u64 * 3 / 4;
    let events = t.run_in_memory(&["events", "--task", "p/a"], memory);
    events.code(0);
    assert_eq!(
        events.stdout.matches("running -> completed").count(),
        runs + 1
    );
    t.run_in_memory(&["report"], memory).code(0);
    assert!(
        t.read("workspace/report.html")
            .contains("1 task ran, 1 attempt"),
        "the report is of the last run"
    );
}

/// A last line cut short (a disk full, a kill mid-write) is ended before
/// the next event is appended, which is then whole, not glued to it.
#[test]
fn an_event_after_a_cut_line_is_kept_whole() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let path = t.path("workspace/events.jsonl");
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() - 20]).unwrap();
    t.run(&["reset", "p/a"]).code(0);
    let events = t.run(&["events", "--task", "p/a"]);
    events.code(0).says("completed -> pending");
    // The cut line is named, not passed on.
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    assert!(
        events.stderr.contains(&format!(
            "warning: workspace/events.jsonl:{lines}: not an event (a line cut by a kill, or edited): skipped"
        )),
        "{}",
        events.stderr
    );
    let json = t.run(&["events", "--json"]);
    for line in json.stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}

/// `events -n N` names a line among those it reads that is no event (cut
/// by a kill, edited) on stderr, as `events` does, and skips it: it was
/// skipped unsaid.
#[test]
fn events_lines_names_a_line_that_is_no_event() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let path = t.path("workspace/events.jsonl");
    let whole = std::fs::read_to_string(&path).unwrap();
    let last = whole.lines().last().unwrap();
    let before = &whole[..whole.len() - last.len() - 1];
    std::fs::write(&path, format!("{before}{{\"cut\": tr\n{last}\n")).unwrap();
    let last_two = t.run(&["events", "-n", "2"]);
    last_two
        .code(0)
        .says("events.jsonl: not an event (a line cut by a kill, or edited): skipped");
    assert_eq!(last_two.stdout.lines().count(), 2, "{}", last_two.stdout);
}

/// A JSON line that is neither a run's event nor a task's change (an
/// object with a `time` and nothing of ours: a note written in by hand)
/// is no event: named on stderr and skipped, in `--json` too. It was
/// printed as an empty event (its time alone), and passed on by `--json`.
#[test]
fn a_json_line_that_names_no_event_nor_task_is_no_event() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let path = t.path("workspace/events.jsonl");
    let whole = std::fs::read_to_string(&path).unwrap();
    let lines = whole.lines().count();
    let note = r#"{"time":"2026-12-01T00:00:00Z","note":"checked by hand"}"#;
    std::fs::write(&path, format!("{whole}{note}\n")).unwrap();
    let said = format!(
        "warning: workspace/events.jsonl:{}: not an event (a line cut by a kill, or edited): skipped",
        lines + 1
    );
    for args in [&["events"][..], &["events", "--json"]] {
        let events = t.run(args);
        events.code(0).says(&said);
        assert_eq!(events.stdout.lines().count(), lines, "{}", events.stdout);
        assert!(
            !events.stdout.contains("checked by hand"),
            "{}",
            events.stdout
        );
    }
}

/// `events -n N` prints the last N events (of `--task`, with it), read
/// from the file's end, and with `-f` goes on with those that come: a
/// line still being written when it looked is printed once it is whole,
/// not lost between the two. Without it, a workspace used for weeks
/// printed every run's events before the new ones.
#[test]
fn events_lines_prints_the_last_events_then_follows() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(0);
    t.run(&["reset", "p/a"]).code(0);
    let last_two = t.run(&["events", "-n", "2"]);
    last_two.code(0);
    let lines: Vec<&str> = last_two.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", last_two.stdout);
    assert!(lines[0].contains("run_finished  exit code 0"), "{lines:?}");
    assert!(lines[1].contains("p/a  completed -> pending"), "{lines:?}");
    let of_a = t.run(&["events", "-n", "1", "--task", "p/a", "--json"]);
    of_a.code(0);
    let event: serde_json::Value = serde_json::from_str(of_a.stdout.trim()).unwrap();
    assert_eq!(
        (event["task"].as_str(), event["to"].as_str()),
        (Some("p/a"), Some("pending"))
    );
    // A line half written as `-f` starts: kept for when it ends.
    let path = t.path("workspace/events.jsonl");
    let whole = std::fs::read_to_string(&path).unwrap();
    let last = whole.lines().last().unwrap().to_owned();
    let (head, tail) = last.split_at(last.len() / 2);
    std::fs::write(
        &path,
        format!("{}{head}", &whole[..whole.len() - last.len() - 1]),
    )
    .unwrap();
    let out = std::fs::File::create(t.path("follow.out")).unwrap();
    let mut follow = t
        .command(&["events", "-f", "-n", "1", "--json"])
        .stdout(out)
        .spawn()
        .unwrap();
    wait_for("the last whole event", || {
        t.read("follow.out").lines().count() == 1
    });
    std::io::Write::write_all(
        &mut std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap(),
        format!("{tail}\n").as_bytes(),
    )
    .unwrap();
    wait_for("the event finished", || {
        t.read("follow.out").lines().count() == 2
    });
    t.run(&["block", "p/a"]).code(0);
    wait_for("the new event", || {
        t.read("follow.out").contains("\"to\":\"failed\"")
    });
    follow.kill().unwrap();
    follow.wait().unwrap();
    let followed = t.read("follow.out");
    let lines: Vec<&str> = followed.lines().collect();
    assert_eq!(lines[1], last, "{followed}");
    assert_eq!(lines[0], whole.lines().rev().nth(1).unwrap(), "{followed}");
}

/// `events -f` goes on with a new events log when the file is removed and
/// made again (a new workspace).
#[test]
fn events_follow_goes_on_with_a_log_made_again() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let out = std::fs::File::create(t.path("follow.out")).unwrap();
    let mut follow = t
        .command(&["events", "-f", "--json"])
        .stdout(out)
        .spawn()
        .unwrap();
    wait_for("the old events", || {
        t.read("follow.out").contains("run_finished")
    });
    std::fs::remove_file(t.path("workspace/events.jsonl")).unwrap();
    t.run(&["reset", "p/a"]).code(0);
    wait_for("the new log's event", || {
        t.read("follow.out")
            .contains("\"from\":\"completed\",\"to\":\"pending\"")
    });
    follow.kill().unwrap();
    follow.wait().unwrap();
}

/// `block`, `reset` and `validate` change tasks with no orchestrator to
/// tell it: what they change reaches the notifiers from the command, as a
/// run's changes do.
#[test]
fn what_block_reset_and_validate_change_reaches_the_notifiers() {
    let t = Tree::new();
    t.config(
        "notify:\n  - on: [failed, blocked, pending]\n    command: \"sleep 0.2; cat >> notified.jsonl\"\n",
    );
    t.task("p/a", &sh("true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.task(
        "p/c",
        &format!("outputs: [o]\n{}", sh("echo > $TASK_OUTPUT_DIR/o")),
    );
    t.run(&["orchestrate", "--task", "p/c"]).code(0);
    // It waits for them, and says so as a command, not a run, would.
    let block = t.run(&["block", "p/a"]);
    block.code(0).says("waiting for the notifiers (");
    assert!(!block.stdout.contains("run_finished"), "{}", block.stdout);
    t.run(&["reset", "p/a"]).code(0);
    std::fs::remove_file(t.path("workspace/outputs/p/c/o")).unwrap();
    t.run(&["validate"]).code(1);
    let notified: Vec<String> = t
        .read("notified.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| {
            format!(
                "{} {} -> {}",
                e["task"].as_str().unwrap(),
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        notified,
        [
            "p/a pending -> failed",
            "p/b pending -> blocked",
            "p/a failed -> pending",
            "p/b blocked -> pending",
            "p/c completed -> failed"
        ]
    );
}

/// `workspace/events.jsonl` moved away (kept aside, as logrotate does) or
/// removed while a run goes on: the run's later events go to a new file
/// at that path, where `events` and `report` read them. They went into
/// the file the run had open, moved or gone, and were lost.
#[test]
fn the_events_log_moved_away_during_a_run_is_made_again() {
    let t = Tree::new();
    t.task("p/a", &sh("while [ ! -e go ]; do sleep 0.05; done"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a to start", || {
        t.exists("workspace/events.jsonl") && changes(&t, "p/a") == ["pending -> running"]
    });
    std::fs::rename(
        t.path("workspace/events.jsonl"),
        t.path("workspace/events.1.jsonl"),
    )
    .unwrap();
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert_eq!(changes(&t, "p/a"), ["running -> completed"]);
    let all = events(&t);
    assert_eq!(all.last().unwrap()["event"], "run_finished");
    let kept = t.read("workspace/events.1.jsonl");
    assert!(kept.contains("run_started"), "{kept}");
    assert!(!kept.contains("run_finished"), "{kept}");
}
