//! The views: next, graph, report, logs; and that they agree with progress.

use std::io::Write;

use crate::tree::*;

/// A small graph after a run: one completed, one failed, one blocked, one
/// pending (not selected), across two phases.
fn after_a_run() -> Tree {
    let t = Tree::new();
    t.task("01-a/ok", &sh("echo one; echo two"));
    t.task(
        "01-a/bad",
        &format!("retries: 1\n{}", sh("echo attempt $TASK_ATTEMPT; exit 4")),
    );
    t.task(
        "02-b/after",
        &format!("dependencies: [01-a/bad]\n{}", sh("true")),
    );
    t.task("02-b/free", &sh("true"));
    t.run(&["orchestrate", "--phase", "01-a"]).code(1);
    t
}

fn progress_totals(t: &Tree) -> serde_json::Value {
    progress_json(t)["total"].clone()
}

#[test]
fn next_lists_what_starts_now_and_what_waits() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.task("p/c", &format!("inputs: [nowhere/x]\n{}", sh("true")));
    let run = t.run(&["next"]);
    run.code(0)
        .says("Would start now, in this order:\n  p/a")
        .says("p/b: waits on p/a (which would start now)");
    run.says("p/c: missing input workspace/outputs/nowhere/x");
    assert!(!t.exists("workspace/status"), "next wrote a status");
}

#[test]
fn graph_is_grouped_by_phase_and_coloured_by_status() {
    let t = after_a_run();
    let mermaid = t.run(&["graph"]).stdout;
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(
        mermaid.contains("subgraph p0[\"01-a\"]") && mermaid.contains("subgraph p1[\"02-b\"]"),
        "{mermaid}"
    );
    // Every view agrees with progress --json to the number.
    let totals = progress_totals(&t);
    for state in ["completed", "failed", "blocked", "pending"] {
        let in_graph = mermaid.matches(&format!("]:::{state}")).count() as u64;
        assert_eq!(
            in_graph,
            totals[state].as_u64().unwrap(),
            "{state}\n{mermaid}"
        );
    }
    let dot = t.run(&["graph", "--format", "dot", "--phase", "a"]).stdout;
    assert!(
        dot.starts_with("digraph tasks {") && dot.contains("label=\"01-a\""),
        "{dot}"
    );
    assert!(
        !dot.contains("02-b"),
        "--phase shows only that phase\n{dot}"
    );
}

/// A folder named with `"` or a backslash stays inside the label's quotes.
#[test]
fn graph_escapes_quotes_and_backslashes_in_names() {
    let t = Tree::new();
    t.task("01 \"a\"/x\\y", &sh("true"));
    let mermaid = t.run(&["graph"]).code(0).stdout.clone();
    assert!(
        mermaid.contains("subgraph p0[\"01 #34;a#34;\"]") && mermaid.contains("[\"x#92;y\"]"),
        "{mermaid}"
    );
    let dot = t.run(&["graph", "--format", "dot"]).code(0).stdout.clone();
    assert!(
        dot.contains(r#"label="01 \"a\"";"#) && dot.contains(r#"label="x\\y","#),
        "{dot}"
    );
}

/// `logs --attempt N` of an attempt not there says which attempts there
/// are in words: it said "its attempts are 1 to 0" of a task that has not
/// run, and "1 to 1" of one that ran once.
#[test]
fn logs_of_an_attempt_not_there_says_which_there_are() {
    let t = after_a_run();
    t.run(&["logs", "02-b/free", "--attempt", "0"])
        .code(2)
        .says("02-b/free has no attempt 0: it has not run");
    t.run(&["logs", "01-a/ok", "--attempt", "2"])
        .code(2)
        .says("01-a/ok has no attempt 2: its only attempt is 1");
    t.run(&["logs", "01-a/bad", "--attempt", "3"])
        .code(2)
        .says("01-a/bad has no attempt 3: its attempts are 1 to 2");
}

#[test]
fn logs_prints_each_attempt() {
    let t = after_a_run();
    t.run(&["logs", "01-a/ok"]).code(0).says("one\ntwo");
    t.run(&["logs", "01-a/bad"]).code(0).says("attempt 2");
    t.run(&["logs", "01-a/bad", "--attempt", "1"])
        .code(0)
        .says("attempt 1");
    t.run(&["logs", "01-a/bad", "--attempt", "3"])
        .code(2)
        .says("has no attempt 3");
    t.run(&["logs", "02-b/free"]).code(2).says("has no log yet");
    t.run(&["logs", "01-a/okk"])
        .code(2)
        .says("no task `01-a/okk`: did you mean `01-a/ok`?");
    t.run(&["logs", "01-a"])
        .code(2)
        .says("`01-a` is a phase: give one of its tasks, such as `01-a/");
    t.run(&["logs", "tasks/01-a/"])
        .code(2)
        .says("`01-a` is a phase: give one of its tasks");
    t.run(&["prompt", "a"])
        .code(2)
        .says("`a` is a phase: give one of its tasks");
    // Its log removed: not "it has not run".
    std::fs::remove_file(t.path("workspace/logs/01-a/bad.log")).unwrap();
    t.run(&["logs", "01-a/bad"]).code(2).says(
        "01-a/bad's log is gone (workspace/logs/01-a/bad.log), though its status records attempt 2",
    );
    // No readable status: an attempt is only what a kept log says.
    t.write("workspace/status/01-a/bad.json", "{");
    t.run(&["logs", "01-a/bad", "--attempt", "1"])
        .code(0)
        .says("attempt 1");
    t.run(&["logs", "01-a/bad", "--attempt", "5"])
        .code(2)
        .says("01-a/bad has no attempt 5: its only attempt is 1");
}

/// Waiting for a task to start ends when it ran too quickly to be seen
/// running, or will not run (blocked).
#[test]
fn logs_follow_stops_waiting_for_a_quick_or_blocked_task() {
    let t = Tree::new();
    t.task("p/quick", &sh("true"));
    t.task("p/fails", &sh("exit 3"));
    t.task("q/d", &format!("dependencies: [p/fails]\n{}", sh("true")));
    let follow = |id: &str| {
        t.command(&["logs", "-f", id])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (mut quick, mut blocked) = (follow("p/quick"), follow("q/d"));
    t.run(&["orchestrate"]).code(1);
    wait_for("both to end", || {
        quick.try_wait().unwrap().is_some() && blocked.try_wait().unwrap().is_some()
    });
    assert!(quick.wait().unwrap().success());
    let out = blocked.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("q/d is blocked, with no log: it did not run"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Followed before it starts (`orchestrate & logs -f T`), a task's log is
/// waited for, then followed to its end.
#[test]
fn logs_follow_waits_for_a_task_that_has_not_started() {
    let t = Tree::new();
    t.task("p/a", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("echo b ran")));
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a to run", || {
        t.exists("workspace/status/p/a.json") && t.state("p/a") == "running"
    });
    let said = std::fs::File::create(t.path("follow.err")).unwrap();
    let follow = t
        .command(&["logs", "-f", "p/b"])
        .stdout(std::process::Stdio::piped())
        .stderr(said)
        .spawn()
        .unwrap();
    // p/a ends only once `logs -f` has said it waits.
    wait_for("logs -f to wait", || {
        t.read("follow.err")
            .contains("p/b has not started yet: waiting for its log")
    });
    t.write("release", "");
    let out = follow.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "b ran\n");
    assert!(run.wait().unwrap().success());
}

/// `logs -f ID`, once it has said it waits for `id`'s next attempt (it
/// must not end first), its stdout piped.
fn following_the_next_attempt(t: &Tree, id: &str) -> std::process::Child {
    let said = std::fs::File::create(t.path("follow.err")).unwrap();
    let mut follow = t
        .command(&["logs", "-f", id])
        .stdout(std::process::Stdio::piped())
        .stderr(said)
        .spawn()
        .unwrap();
    let waits = format!("{id} has not started its next attempt");
    wait_for("logs -f to wait, or end", || {
        t.read("follow.err").contains(&waits) || follow.try_wait().unwrap().is_some()
    });
    assert!(
        follow.try_wait().unwrap().is_none(),
        "{}",
        t.read("follow.err")
    );
    follow
}

/// Whether `p/a`'s log holds `text`.
fn a_log_says(t: &Tree, text: &str) -> bool {
    std::fs::read_to_string(t.path("workspace/logs/p/a.log")).is_ok_and(|log| log.contains(text))
}

/// A run of `p/a`, which runs `before` then prints `hi-<attempt>` and
/// fails once `go` is there; returned once attempt 1 has printed.
fn running_attempt_1(t: &Tree, before: &str) -> std::process::Child {
    t.task(
        "p/a",
        &sh(&format!(
            "{before}echo hi-$TASK_ATTEMPT; while [ ! -e go ]; do sleep 0.01; done; exit 1"
        )),
    );
    let first = t.start(&["orchestrate"]);
    wait_for("p/a to run", || a_log_says(t, "hi-1"));
    first
}

/// Ends the run `first`, then starts the next one: returned once `p/a`'s
/// attempt 2 has printed.
fn next_run_at_attempt_2(t: &Tree, mut first: std::process::Child) -> std::process::Child {
    t.write("go", "");
    assert_eq!(first.wait().unwrap().code(), Some(1));
    std::fs::remove_file(t.path("go")).unwrap();
    let second = t.start(&["orchestrate"]);
    wait_for("attempt 2 to run", || a_log_says(t, "hi-2"));
    second
}

/// Lets the run `second` end (`p/a`'s attempt 2 fails); `follow`, a `logs
/// -f p/a` whose stderr is in `follow.err`, has ended saying a later run
/// started the next attempt.
fn ended_at_the_later_run(
    t: &Tree,
    mut second: std::process::Child,
    mut follow: std::process::Child,
) {
    t.write("go", "");
    assert_eq!(second.wait().unwrap().code(), Some(1));
    assert!(follow.wait().unwrap().success());
    assert!(
        t.read("follow.err")
            .contains("p/a ended, and a later run started its next attempt"),
        "{}",
        t.read("follow.err")
    );
}

/// `logs -f` ends with the task's attempt when a later run starts its
/// next one before it looks again (runs back to back): attempt 2's lines
/// are not run into attempt 1's as if one.
#[test]
fn logs_follow_ends_where_a_later_run_starts_the_next_attempt() {
    let t = Tree::new();
    let first = running_attempt_1(&t, "");
    let out = std::fs::File::create(t.path("follow.out")).unwrap();
    let err = std::fs::File::create(t.path("follow.err")).unwrap();
    let follow = t
        .command(&["logs", "-f", "p/a"])
        .stdout(out)
        .stderr(err)
        .spawn();
    let follow = follow.unwrap();
    wait_for("logs -f to print attempt 1", || {
        t.read("follow.out") == "hi-1\n"
    });
    // Held still while the first run ends and the next starts the task.
    unsafe { libc::kill(follow.id() as i32, libc::SIGSTOP) };
    let second = next_run_at_attempt_2(&t, first);
    unsafe { libc::kill(follow.id() as i32, libc::SIGCONT) };
    ended_at_the_later_run(&t, second, follow);
    assert_eq!(t.read("follow.out"), "hi-1\n");
}

/// The same, where `logs -f` is slow to print the log it opened (its
/// reader holds still) while the later run starts: that run is not taken
/// for the one followed.
#[test]
fn logs_follow_slow_to_print_ends_where_a_later_run_starts_the_next_attempt() {
    let t = Tree::new();
    let first = running_attempt_1(&t, "head -c 300000 /dev/zero | tr '\\0' x; echo; ");
    let err = std::fs::File::create(t.path("follow.err")).unwrap();
    let follow = (t.command(&["logs", "-f", "p/a"]))
        .stdout(std::process::Stdio::piped())
        .stderr(err)
        .spawn();
    let mut follow = follow.unwrap();
    // Its stdout unread: it holds in its first copy, the log open.
    let fds = format!("/proc/{}/fd", follow.id());
    wait_for("logs -f to open the log", || {
        std::fs::read_dir(&fds).unwrap().any(|fd| {
            std::fs::read_link(fd.unwrap().path()).is_ok_and(|to| to.ends_with("logs/p/a.log"))
        })
    });
    let second = next_run_at_attempt_2(&t, first);
    let mut stdout = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    ended_at_the_later_run(&t, second, follow);
    let out = reader.join().unwrap();
    assert!(
        out.ends_with("\nhi-1\n"),
        "{}",
        &out[out.len().saturating_sub(50)..]
    );
}

/// `logs -f` follows a retry in the same run into its log, and says so.
#[test]
fn logs_follow_goes_on_into_a_retry_and_says_so() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "retries: 1\n{}",
            sh("echo hi-$TASK_ATTEMPT; [ $TASK_ATTEMPT = 2 ] && exit 0; while [ ! -e go ]; do sleep 0.01; done; exit 1")
        ),
    );
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a to run", || {
        std::fs::read_to_string(t.path("workspace/logs/p/a.log"))
            .is_ok_and(|log| log.contains("hi-1"))
    });
    let out = std::fs::File::create(t.path("follow.out")).unwrap();
    let err = std::fs::File::create(t.path("follow.err")).unwrap();
    let follow = t
        .command(&["logs", "-f", "p/a"])
        .stdout(out)
        .stderr(err)
        .spawn();
    let mut follow = follow.unwrap();
    wait_for("logs -f to print attempt 1", || {
        t.read("follow.out") == "hi-1\n"
    });
    t.write("go", "");
    assert!(run.wait().unwrap().success());
    assert!(follow.wait().unwrap().success());
    assert_eq!(t.read("follow.out"), "hi-1\nhi-2\n");
    let said = t.read("follow.err");
    assert!(
        said.contains("p/a: its next attempt started, its log follows"),
        "{said}"
    );
    assert!(said.contains("p/a ended: completed"), "{said}");
}

/// A quiet task (its log empty) that ran and was `reset` has a log, of
/// its attempt 1, in `logs` and `why`: not "it has not run" or "attempt
/// 0".
#[test]
fn a_quiet_task_reset_keeps_its_attempt_in_logs_and_why() {
    let t = Tree::new();
    t.task("p/up", &sh("true"));
    t.task("p/q", &format!("dependencies: [p/up]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(0);
    t.run(&["reset", "p/up", "--downstream"]).code(0);
    t.run(&["logs", "p/q"]).code(0);
    t.run(&["logs", "p/q", "--attempt", "1"]).code(0);
    t.run(&["logs", "p/q", "--attempt", "2"])
        .code(2)
        .says("p/q has no attempt 2: its only attempt is 1");
    t.task("p/up", &sh("exit 1"));
    t.run(&["orchestrate"]).code(1);
    t.run(&["why", "p/q"])
        .says("last lines of workspace/logs/p/q.log (attempt 1, which ran before):");
    t.run(&["logs", "p/q"]).code(0);
}

/// Followed after a `reset`, a task's log is the next attempt's: waited
/// for, not the one before the reset printed and ended at once.
#[test]
fn logs_follow_after_a_reset_waits_for_the_next_attempt() {
    let t = Tree::new();
    t.task("p/a", &sh("echo attempt=$TASK_ATTEMPT"));
    t.run(&["orchestrate"]).code(0);
    t.run(&["reset", "p/a"]).code(0);
    let follow = following_the_next_attempt(&t, "p/a");
    t.run(&["orchestrate"]).code(0);
    let out = follow.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "attempt=2\n");
}

/// A task recorded blocked by one that has not failed since is pending
/// in the views, as the run that takes it up again has it: while that run
/// retries what blocked it, and after a run that left that waiting for
/// approval (the views said blocked, by a task that had not failed).
#[test]
fn a_task_blocked_by_one_run_again_is_pending_in_the_views() {
    let t = Tree::new();
    t.task("p/x", &sh("exit 1"));
    t.task("p/y", &format!("dependencies: [p/x]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    t.run(&["progress", "--tasks"])
        .says("blocked    p/y  blocked by p/x");
    t.task(
        "p/x",
        &sh("while [ ! -f release ]; do sleep 0.02; done; exit 1"),
    );
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/x to run again", || t.state("p/x") == "running");
    t.run(&["progress", "--tasks"]).says("pending    p/y");
    t.run(&["why", "p/y"])
        .says("the run going on took it up again");
    t.write("release", "");
    run.wait().unwrap();
    t.run(&["progress", "--tasks"])
        .says("blocked    p/y  blocked by p/x");
    t.task("p/x", &format!("approve: before\n{}", sh("true")));
    t.run(&["orchestrate"]).code(4);
    let progress = t.run(&["progress", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&progress.stdout).unwrap();
    assert_eq!(json["total"]["blocked"], 0, "{}", progress.stdout);
    // Lined up with `awaiting_approval p/x`.
    t.run(&["progress", "--tasks"])
        .says("pending           p/y");
    // Every view agrees.
    t.run(&["graph"]).says("[\"y\"]:::pending");
    t.run(&["why", "p"]).says("pending    p/y");
    t.run(&["report"]).code(0);
    assert!(t
        .read("workspace/report.html")
        .contains("<tr class=\"pending\"><td>p/y</td>"));
}

/// A task recorded blocked by a failed task whose status was removed by
/// hand, that waits on another failed task too, shows blocked by that one
/// in every view, as `why` has it (they said pending).
#[test]
fn the_views_show_a_task_blocked_by_another_failure_upstream() {
    let t = Tree::new();
    t.config("max_memory_gb: 0.25\n");
    t.task("p/a", &sh("exit 1"));
    t.task("p/c", &sh("exit 1"));
    t.task("p/b", &format!("dependencies: [p/a, p/c]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    let recorded = t.status("p/b")["blocked_by"].as_str().unwrap().to_owned();
    let other = if recorded == "p/a" { "p/c" } else { "p/a" };
    std::fs::remove_file(t.path(&format!("workspace/status/{recorded}.json"))).unwrap();
    views_show(&t, "p/b", "blocked", &format!("blocked by {other}"));
    t.run(&["why", "p/b"])
        .says(&format!("p/b is blocked by {other}"));
}

/// The live view shows a task taken up again from blocked as `progress`
/// does: blocked while a task shown failed blocks it, here the other of
/// its two failures, waiting for its retry while the one its status names
/// runs again (the view said pending, `progress` blocked).
#[test]
fn the_live_view_shows_blocked_a_task_another_failure_blocks() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 1"));
    t.task("p/c", &sh("exit 1"));
    t.task("p/b", &format!("dependencies: [p/a, p/c]\n{}", sh("true")));
    t.run(&["orchestrate", "-j", "1"]).code(1);
    assert_eq!(t.status("p/b")["blocked_by"], "p/a");
    t.task(
        "p/a",
        &format!("priority: 5\n{}", sh("echo again; sleep 1.5; exit 1")),
    );
    let drawn = on_a_terminal(&t, "orchestrate -j 1", false);
    // The headings drawn while p/a ran again (its line in the frame).
    let frames: Vec<&str> = (drawn.split("0/3 completed").skip(1))
        .filter(|frame| frame.contains("again"))
        .collect();
    assert!(!frames.is_empty(), "{drawn}");
    for frame in frames {
        let heading = frame.split(['\r', '\n']).next().unwrap_or_default();
        assert!(heading.contains("1 blocked"), "{heading}");
    }
}

/// A task whose file no longer depends on the failed task that blocked
/// it shows pending in every view (they said blocked), and `why` says so.
#[test]
fn the_views_show_pending_a_blocked_task_that_no_longer_waits_on_the_failure() {
    let t = Tree::new();
    t.task("p/x", &sh("exit 1"));
    t.task("p/y", &format!("dependencies: [p/x]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    views_show(&t, "p/y", "blocked", "blocked by p/x");
    t.task("p/y", &sh("true"));
    views_show(&t, "p/y", "pending", "");
    t.run(&["why", "p/y"])
        .says("p/y is recorded blocked by p/x, which it no longer waits on: the next `");
}

/// A task whose file now depends on another failed task than the one that
/// blocked it (failed still) shows blocked by the new one in every view
/// (they named the one it no longer waits on).
#[test]
fn the_views_name_the_failure_a_blocked_task_waits_on_now() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 1"));
    t.task("p/c", &sh("exit 1"));
    t.task("p/b", &format!("dependencies: [p/c]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    views_show(&t, "p/b", "blocked", "blocked by p/a");
    t.run(&["why", "p/b"]).says("p/b is blocked by p/a");
}

/// A task the unfinished run that blocked it keeps blocked: `why`, `next`
/// and the dry run name what its status names, as the views do, not a
/// failure its file depends on since (`why` named that one, `next` a phase
/// it does not depend on).
#[test]
fn a_task_kept_blocked_by_a_killed_run_is_blocked_by_what_it_names() {
    let t = Tree::new();
    t.config("max_memory_gb: 0.25\n");
    t.task("p/a", &sh("exit 1"));
    t.task("p/c", &sh("exit 1"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.task("p/z", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    let mut run = t.start(&["orchestrate"]);
    // p/a's final status too: written after the block it causes, it is
    // not on disk yet in the instant after.
    wait_for("p/a failed, p/b blocked and p/z running", || {
        t.state("p/a") == "failed" && t.state("p/b") == "blocked" && t.state("p/z") == "running"
    });
    run.kill().unwrap();
    run.wait().unwrap();
    t.task("p/b", &format!("dependencies: [p/c]\n{}", sh("true")));
    views_show(&t, "p/b", "blocked", "blocked by p/a");
    t.run(&["why", "p/b"])
        .says("p/b is recorded blocked by p/a, which it no longer waits on: the next `");
    t.run(&["next"]).says("p/b: blocked by p/a");
    t.run(&["orchestrate", "--dry-run"])
        .says("p/b: blocked by p/a");
    t.write("release", "");
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/z"), "completed");
}

/// `progress --tasks`, `progress --json`, `graph`, `why PHASE` and the
/// report show the task `id` in `state`, with `detail` beside it.
fn views_show(t: &Tree, id: &str, state: &str, detail: &str) {
    let (phase, name) = id.split_once('/').unwrap();
    let line = format!("{state:<10} {id}  {detail}");
    t.run(&["progress", "--tasks"]).says(line.trim_end());
    t.run(&["why", phase]).says(line.trim_end());
    t.run(&["graph"]).says(&format!("[\"{name}\"]:::{state}"));
    t.run(&["report"]).code(0);
    let row = format!("<tr class=\"{state}\"><td>{id}</td>");
    let html = t.read("workspace/report.html");
    assert!(html.contains(&row), "{row} in {html}");
    // Its error column names what blocks it.
    let blocker = detail.trim_start_matches("blocked by ");
    assert!(html.contains(&format!("{row}<td>{state}</td>")), "{html}");
    assert!(
        html.contains(&format!("<td>{blocker}</td></tr>")),
        "{blocker} in {html}"
    );
    let progress = t.run(&["progress", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&progress.stdout).unwrap();
    let blocked = usize::from(state == "blocked");
    assert_eq!(json["total"]["blocked"], blocked, "{}", progress.stdout);
}

/// A task the run going on blocked stays blocked in the views while it
/// goes on, whatever became of what blocked it (its file removed): that
/// run keeps it blocked.
#[test]
fn a_task_the_run_going_on_blocked_stays_blocked_in_the_views() {
    let t = Tree::new();
    t.task("p/x", &sh("exit 1"));
    t.task("p/z", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    t.task("q/y", &format!("dependencies: [p/x]\n{}", sh("true")));
    let mut run = t.start(&["orchestrate"]);
    wait_for("q/y blocked", || t.state("q/y") == "blocked");
    std::fs::remove_file(t.path("tasks/p/x.md")).unwrap();
    t.run(&["progress", "--tasks"])
        .says("blocked    q/y  blocked by p/x");
    t.write("release", "");
    run.wait().unwrap();
}

/// Followed after a `reset`, a task that waits for approval: of its
/// result, its new attempt's log is shown (it waited for a start that had
/// come); to start, the next attempt's is waited for (it printed the
/// attempt before the reset and ended).
#[test]
fn logs_follow_after_a_reset_of_a_task_needing_approval() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!("approve: after\n{}", sh("echo attempt=$TASK_ATTEMPT")),
    );
    t.run(&["orchestrate"]).code(4);
    t.run(&["approve", "p/a"]).code(0);
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(4);
    let out = t.run(&["logs", "-f", "p/a"]);
    assert_eq!(out.stdout, "attempt=2\n", "{}", out.stderr);
    assert!(
        out.stderr.contains("p/a ended: awaiting_approval"),
        "{}",
        out.stderr
    );
    let t = Tree::new();
    t.task(
        "p/b",
        &format!("approve: before\n{}", sh("echo attempt=$TASK_ATTEMPT")),
    );
    t.run(&["approve", "p/b"]).code(0);
    t.run(&["orchestrate"]).code(0);
    t.run(&["reset", "p/b"]).code(0);
    t.run(&["orchestrate"]).code(4);
    let follow = following_the_next_attempt(&t, "p/b");
    t.run(&["approve", "p/b"]).code(0);
    t.run(&["orchestrate"]).code(0);
    let out = follow.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "attempt=2\n");
}

/// `logs -n N` prints the last N lines of a log, as `tail -n` does (a
/// last line with no newline is one), read from its end; with `-f` it
/// then follows the task. An agent's log of hours was printed whole
/// before the following began.
#[test]
fn logs_lines_prints_the_last_lines_then_follows() {
    let t = Tree::new();
    t.task(
        "p/slow",
        &sh("seq 1 5000; printf 'no newline'; while [ ! -f release ]; do sleep 0.02; done; echo; echo last"),
    );
    let mut run = t.start(&["orchestrate"]);
    wait_for("the task to run", || {
        t.exists("workspace/logs/p/slow.log")
            && t.read("workspace/logs/p/slow.log").contains("no newline")
    });
    let two = t.run(&["logs", "p/slow", "-n", "2"]);
    two.code(0);
    assert_eq!(two.stdout, "5000\nno newline");
    let out = std::fs::File::create(t.path("follow.out")).unwrap();
    let mut follow = t
        .command(&["logs", "-f", "-n", "1", "p/slow"])
        .stdout(out)
        .spawn()
        .unwrap();
    wait_for("the last line", || t.read("follow.out") == "no newline");
    t.write("release", "");
    assert!(follow.wait().unwrap().success());
    assert_eq!(t.read("follow.out"), "no newline\nlast\n");
    assert!(run.wait().unwrap().success());
    let none = t.run(&["logs", "p/slow", "-n", "0"]);
    assert_eq!(none.code(0).stdout, "");
    let all = t.run(&["logs", "p/slow", "-n", "9999"]);
    all.code(0);
    assert_eq!(all.stdout, t.read("workspace/logs/p/slow.log"));
}

#[test]
fn logs_follow_prints_until_the_task_ends() {
    let t = Tree::new();
    t.task(
        "p/slow",
        &sh("echo first; while [ ! -f release ]; do sleep 0.02; done; echo last"),
    );
    let mut run = t.start(&["orchestrate"]);
    wait_for("the task to run", || {
        t.exists("workspace/logs/p/slow.log")
            && t.read("workspace/logs/p/slow.log").contains("first")
    });
    let follow = t
        .command(&["logs", "-f", "p/slow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    t.write("release", "");
    let out = follow.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nlast\n");
    // It says why it ends.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "p/slow ended: completed\n"
    );
    run.wait().unwrap();
}

#[test]
fn the_next_task_s_log_made_ahead_reads_as_not_run_until_it_runs() {
    let t = Tree::new();
    t.task("p/a", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    t.task(
        "p/b",
        &format!(
            "dependencies: [p/a]\noutputs: [out]\n{}",
            sh("echo b-ran; echo x > $TASK_OUTPUT_DIR/out")
        ),
    );
    let mut run = t.start(&["orchestrate"]);
    // While a runs, b (waiting only for a) has its folders and empty log.
    wait_for("b's log made ahead", || t.exists("workspace/logs/p/b.log"));
    assert!(t.exists("workspace/outputs/p/b"));
    t.run(&["logs", "p/b"]).code(2).says("has no log yet");
    t.write("release", "");
    assert!(run.wait().unwrap().success());
    t.run(&["logs", "p/b"]).code(0).says("b-ran");
    assert_eq!(t.status("p/b")["outputs_validated"], true);
}

/// A task blocked before it ran, its log made ahead by a run killed
/// meanwhile: `why` shows no log of it, as `logs` says it has none; one
/// blocked before it ran again: its log is said to be the earlier run's.
#[test]
fn a_log_of_a_task_blocked_before_it_ran_is_not_shown_as_its_own() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "retries: 0\n{}",
            sh("while [ ! -f release ]; do sleep 0.02; done; exit 3")
        ),
    );
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    let mut run = t.start(&["orchestrate"]);
    wait_for("b's log made ahead", || t.exists("workspace/logs/p/b.log"));
    run.kill().unwrap();
    run.wait().unwrap();
    t.write("release", "");
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/b"), "blocked");
    t.run(&["logs", "p/b"]).code(2).says("has no log yet");
    let why = t.run(&["why", "p/b"]);
    why.code(0).says("p/b is blocked");
    assert!(!why.stdout.contains("last lines of"), "{}", why.stdout);
    // Once it ran, blocked again before it ran once more: its log is that
    // earlier attempt's, and said so.
    t.task("p/a", &sh("true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("echo b-ran")));
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
    t.task("p/a", &format!("retries: 0\n{}", sh("exit 3")));
    t.run(&["reset", "p/a", "--downstream"]).code(0);
    t.run(&["orchestrate"]).code(1);
    t.run(&["why", "p/b"])
        .code(0)
        .says("p/b is blocked")
        .says("last lines of workspace/logs/p/b.log (attempt 1, which ran before):")
        .says("b-ran");
}

/// The program `name` as `.ci/run` finds it (`command -v`): on PATH,
/// wherever it is installed. CI installs it and must not skip.
fn installed(name: &str, what_for: &str) -> Option<std::path::PathBuf> {
    if let Ok(path) = which::which(name) {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs {name} {what_for} on PATH (.ci/run installs it)"
    );
    eprintln!("skipped: no {name} on PATH {what_for}");
    None
}

#[test]
fn the_report_has_a_bar_for_every_finished_task_in_a_real_browser() {
    let t = after_a_run();
    t.run(&["report"])
        .code(0)
        .says("wrote workspace/report.html");
    let html = t.read("workspace/report.html");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("<script"),
        "not self-contained"
    );
    let Some(chromium) = installed("chromium", "to open the report in") else {
        return;
    };
    let profile = t.path("chromium-profile");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
        ])
        .args([
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!(
            "file://{}",
            t.path("workspace/report.html").display()
        ))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    // The browser parsed it: the DOM it prints has the bars as elements.
    assert!(
        dom.contains("<svg"),
        "chromium printed no DOM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ["01-a/ok", "01-a/bad"] {
        assert!(
            dom.contains(&format!("data-task=\"{id}\"")),
            "no bar for {id}"
        );
    }
    assert!(
        dom.contains("class=\"bar failed"),
        "the failed task is not marked"
    );
    // The tables agree with progress --json.
    let totals = progress_totals(&t);
    for state in ["completed", "failed", "blocked", "pending"] {
        let rows = dom.matches(&format!("<tr class=\"{state}\">")).count() as u64;
        assert_eq!(rows, totals[state].as_u64().unwrap(), "{state}");
    }
}

/// The console's event lines start their task ids in one column, whatever
/// the line's type: `approval`, `approved` and `rejected`, wider than the
/// others' column, pushed their ids one character right.
#[test]
fn event_lines_start_their_task_ids_in_one_column() {
    let t = Tree::new();
    t.task("p/plan", &format!("approve: after\n{}", sh("true")));
    t.task("p/b", &sh("true"));
    let run = t.run(&["orchestrate"]);
    run.code(4);
    let columns: Vec<(usize, &str)> = run
        .stdout
        .lines()
        .filter(|l| l.get(8..9) == Some(" ") && l.contains(" p/"))
        .map(|l| (l.find(" p/").unwrap(), l))
        .collect();
    assert!(
        columns.iter().any(|(_, l)| l.contains(" approval p/plan")),
        "{}",
        run.stdout
    );
    assert!(
        columns.iter().all(|(at, _)| *at == columns[0].0),
        "{columns:#?}"
    );
}

#[test]
fn on_a_terminal_orchestrate_draws_a_live_view_and_plain_lines_otherwise() {
    let t = Tree::new();
    t.task("01-a/slow", &sh("echo still working; sleep 1.5"));
    t.task("01-a/quick", &sh("true"));
    let drawn = on_a_terminal(&t, "orchestrate", false);
    assert!(
        drawn.contains("01-a                   [#"),
        "no phase bar:\n{drawn}"
    );
    assert!(
        drawn.contains("01-a/slow") && drawn.contains("still working"),
        "no running task line:\n{drawn}"
    );
    assert!(drawn.contains("Summary: 2 completed"), "{drawn}");
    // An event line above the frame is a line as it is: not padded to the
    // terminal's width with no newline (copied, trailing spaces; the
    // window narrowed, a blank line after each).
    let event = drawn
        .split('\n')
        .find(|l| l.contains("start    01-a/slow"))
        .unwrap()
        .trim_end_matches('\r');
    assert!(
        !event.ends_with(' ') && !event.contains("start    01-a/quick"),
        "{event:?}"
    );

    std::fs::remove_dir_all(t.path("workspace")).unwrap();
    let plain = on_a_terminal(&t, "orchestrate", true);
    assert!(
        !plain.contains("[#"),
        "NO_COLOR must give plain lines:\n{plain}"
    );
    assert!(plain.contains("done     01-a/slow"), "{plain}");
}

#[test]
fn once_the_budget_is_reached_the_live_view_s_eta_counts_only_what_runs() {
    let t = Tree::new();
    t.config(&format!(
        "{}budget: {{usd: 0.01}}\nmax_memory_gb: 1\n",
        crate::agents::agent("claude", "claude-json")
    ));
    // `paid` reaches the budget at once; `after` (expected to take 100 s)
    // will never start then, while `free` still runs for a while.
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/paid": 0.1, "p/after": 100, "p/free": 2}}"#,
    );
    t.task("p/paid", "");
    crate::agents::scenario(&t, "p/paid", &["success.json"]);
    t.task(
        "p/after",
        &format!("dependencies: [p/paid]\n{}", sh("true")),
    );
    t.task("p/free", &sh("sleep 2"));
    let drawn = on_a_terminal(&t, "orchestrate", false);
    assert!(drawn.contains("budget of $0.01 reached"), "{drawn}");
    let last_eta = drawn.rsplit("ETA ").next().unwrap_or_default();
    assert!(
        !last_eta.starts_with("1m") && !last_eta.starts_with("2m"),
        "the last heading still counts what will not start: ETA {}",
        &last_eta[..last_eta.len().min(20)]
    );
}

/// The live view's expected end leaves out a task waiting for an input no
/// task produces, as `progress` does: no run starts it until a person
/// writes the file (the heading said `ETA 1m 40s` while `progress` said 2 s).
#[test]
fn the_live_view_s_eta_leaves_out_what_waits_for_a_file_no_task_makes() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/free": 2, "p/needs": 100}}"#,
    );
    t.task("p/free", &sh("sleep 2"));
    t.task("p/needs", &format!("inputs: [ext/x.txt]\n{}", sh("true")));
    let drawn = on_a_terminal(&t, "orchestrate", false);
    assert!(drawn.contains("ETA "), "{drawn}");
    assert!(!drawn.contains("ETA 1m"), "{drawn}");
}

/// A retry the budget holds is failed in the live view, as its status
/// and `progress` say: not pending.
#[test]
fn the_live_view_shows_a_held_retry_as_failed() {
    let t = Tree::new();
    t.config(&format!(
        "{}budget: {{usd: 0.50}}\nmax_memory_gb: 1\n",
        crate::agents::agent("claude", "claude-json")
    ));
    t.task("p/paid", "retries: 2");
    crate::agents::scenario(&t, "p/paid", &["error_max_turns.json 1"]);
    // Keeps the view drawn (every 500 ms) a second after p/paid failed.
    t.task(
        "p/free",
        &sh("until grep -qs '\"failed\"' workspace/status/p/paid.json; do sleep 0.05; done; sleep 1"),
    );
    let drawn = on_a_terminal(&t, "orchestrate", false);
    assert!(drawn.contains("budget of $0.50 reached"), "{drawn}");
    // The last heading drawn, after p/paid's failure.
    let last = drawn.rsplit("/2 completed").next().unwrap_or_default();
    let heading = last.split(['\r', '\n']).next().unwrap_or_default();
    assert!(heading.contains(" 1 failed"), "{heading}");
}

/// A phase whose failed task the run is to try again, once a slot is
/// free, has not ended: the live view does not say so.
#[test]
fn a_phase_with_a_retry_to_come_is_not_shown_ended() {
    let t = Tree::new();
    t.config("max_concurrent_agents: 1\nmax_memory_gb: 1\n");
    t.task("p/a", &sh("test -e ok"));
    // Blocked by it, in a phase of its own: to run once its retry has.
    t.task("q/c", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    t.write("ok", "");
    // Runs first, a second and more: frames are drawn every 500 ms.
    t.task("r/y", &format!("priority: 9\n{}", sh("sleep 1.2")));
    let drawn = on_a_terminal(&t, "orchestrate", false);
    assert!(drawn.contains("Summary: 3 completed"), "{drawn}");
    for phase in ["p", "q"] {
        // Each frame's line of the phase: its bar, counts and word.
        let line_start = format!("{phase:<22} [");
        let lines: Vec<String> = (drawn.match_indices(&line_start))
            .map(|(at, _)| drawn[at..].chars().take(22 + 50).collect())
            .collect();
        assert!(!lines.is_empty(), "{drawn}");
        assert!(!lines.iter().any(|l| l.contains("ended")), "{lines:#?}");
    }
}

/// The live view's heading says what the run spent, as its summary does:
/// the failed attempt's cost too, not the latest attempts' only.
#[test]
fn the_live_view_says_what_the_run_spent() {
    let t = Tree::new();
    t.config(&format!(
        "{}max_memory_gb: 1\n",
        crate::agents::agent("claude", "claude-json")
    ));
    t.task("p/paid", "retries: 1");
    crate::agents::scenario(&t, "p/paid", &["error_max_turns.json 1", "success.json"]);
    // Keeps the view drawn (every 500 ms) a second after p/paid completed.
    t.task(
        "p/free",
        &sh("until grep -qs '\"completed\"' workspace/status/p/paid.json; do sleep 0.05; done; sleep 1"),
    );
    let drawn = on_a_terminal(&t, "orchestrate", false);
    assert!(drawn.contains("Summary: 2 completed"), "{drawn}");
    let summary = drawn.rsplit("Summary: ").next().unwrap_or_default();
    let spent = summary.split(", ").find(|s| s.contains(" spent")).unwrap();
    let spent = spent.trim_end_matches(|c: char| c != 't');
    // The last heading drawn, after p/paid's completion.
    let last = drawn.rsplit("/2 completed").next().unwrap_or_default();
    let heading = last.split(['\r', '\n']).next().unwrap_or_default();
    assert!(
        heading.contains(&format!(", {spent}")),
        "{spent}: {heading}"
    );
}

#[test]
fn progress_watch_shows_the_live_view_of_another_run() {
    let t = Tree::new();
    t.task(
        "01-a/wait",
        &sh("echo waiting for release; while [ ! -f release ]; do sleep 0.02; done"),
    );
    let mut run = t.start(&["orchestrate", "-q"]);
    wait_for("the task to run", || t.state("01-a/wait") == "running");
    // Not on a terminal: plain frames; the first comes at once.
    let seen = watched_until(&t, "waiting for release");
    assert!(
        seen.contains("0/1 completed") && seen.contains("01-a/wait"),
        "{seen}"
    );
    // Its expected end, as the run's own view and `progress` show it.
    assert!(seen.contains(", ETA "), "{seen}");
    t.write("release", "");
    run.wait().unwrap();
}

/// What `progress --watch` prints, up to `text`; then it is stopped.
fn watched_until(t: &Tree, text: &str) -> String {
    let mut watch = t
        .command(&["progress", "--watch"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = watch.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(text) {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "progress --watch ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    seen
}

/// With no run going on, `progress --watch` gives no time for the end,
/// which nothing brings nearer: how much work is left once one starts.
#[test]
fn progress_watch_with_no_run_says_the_work_left() {
    let t = Tree::new();
    t.write("workspace/history.json", r#"{"tasks": {"p/a": 100.0}}"#);
    t.task("p/a", &sh("true"));
    // Not on a terminal: plain frames, the first at once.
    let seen = watched_until(&t, "\n\n");
    assert!(
        seen.contains("0/1 completed (0%), 0 running, 0 failed, 0 blocked, no run going on (1m 40s of work left)"),
        "{seen}"
    );
    assert!(!seen.contains("ETA"), "{seen}");
}

#[test]
fn next_counts_running_tasks_against_the_limits() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_concurrent_agents: 2\n");
    for id in ["p/a", "p/b", "p/c"] {
        t.task(
            id,
            &sh("touch $TASK_OUTPUT_DIR/started; while [ ! -f release ]; do sleep 0.02; done"),
        );
    }
    let mut run = t.start(&["orchestrate", "-q"]);
    wait_for("two tasks to run", || {
        ["p/a", "p/b", "p/c"]
            .iter()
            .filter(|id| t.exists(&format!("workspace/outputs/{id}/started")))
            .count()
            == 2
    });
    t.run(&["next"])
        .code(0)
        .says("Running now: 2")
        .says("Nothing more would start now.")
        .says("ready, held back by the limits (2 of 2 slots busy");
    t.write("release", "");
    run.wait().unwrap();
}

#[test]
fn logs_follow_goes_on_into_the_next_attempt() {
    let t = Tree::new();
    let script = "echo attempt $TASK_ATTEMPT; touch started-$TASK_ATTEMPT; \
                  while [ ! -f release-$TASK_ATTEMPT ]; do sleep 0.02; done; test $TASK_ATTEMPT -ge 2";
    t.task("p/flaky", &format!("retries: 1\n{}", sh(script)));
    let mut run = t.start(&["orchestrate", "-q"]);
    wait_for("the first attempt", || t.exists("started-1"));
    let follow = t
        .command(&["logs", "-f", "p/flaky"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    t.write("release-1", "");
    wait_for("the second attempt", || t.exists("started-2"));
    t.write("release-2", "");
    let out = String::from_utf8_lossy(&follow.wait_with_output().unwrap().stdout).into_owned();
    assert!(
        out.contains("attempt 1") && out.contains("attempt 2"),
        "{out}"
    );
    run.wait().unwrap();
}

#[test]
fn the_report_is_of_the_last_run_and_shows_every_attempt_of_it() {
    let t = Tree::new();
    t.task("p/done", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    // The next run: a task that times out, then succeeds on its retry.
    t.task(
        "p/flaky",
        &format!(
            "timeout: 1s\nretries: 1\n{}",
            sh("if [ $TASK_ATTEMPT = 1 ]; then sleep 30; fi")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(html.contains("Last run: 1 task ran, 2 attempts"), "{html}");
    assert!(html.contains("2 of 2 completed in all"), "{html}");
    assert_eq!(html.matches("data-task=\"p/flaky\"").count(), 2, "{html}");
    assert!(html.contains("class=\"bar timeout"), "{html}");
    assert!(
        !html.contains("data-task=\"p/done\""),
        "an earlier run's task in the timeline"
    );
    // A run with nothing left to do leaves the timeline as it was.
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let again = t.read("workspace/report.html");
    assert!(
        again.contains("Last run: 1 task ran, 2 attempts"),
        "{again}"
    );
    // Every change is in the events, in order, one JSON object per line.
    let events: Vec<serde_json::Value> = t
        .read("workspace/events.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let flaky: Vec<String> = events
        .iter()
        .filter(|e| e["task"] == "p/flaky")
        .map(|e| {
            format!(
                "{}>{}",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        flaky,
        [
            "pending>running",
            "running>failed",
            "failed>pending",
            "pending>running",
            "running>completed"
        ]
    );
}

#[test]
fn the_report_compares_a_critical_path_with_one_run_only_if_it_ran_in_it() {
    let t = Tree::new();
    t.task("p/slow", &sh("sleep 0.5"));
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(html.contains("% of the last run's wall time)"), "{html}");
    // The next run adds a quick task after it: the path is mostly the first run's.
    t.task(
        "p/quick",
        &format!("dependencies: [p/slow]\n{}", sh("true")),
    );
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("(its tasks' latest attempts, some in earlier runs)"),
        "{html}"
    );
    assert!(!html.contains("% of the last run's wall time"), "{html}");
}

/// The critical path is a chain of completed work: a task that failed
/// (however long it took) or never ran is not on it.
#[test]
fn the_report_s_critical_path_is_of_completed_tasks_only() {
    let t = Tree::new();
    t.task("p/fails", &sh("sleep 0.4; exit 1"));
    t.task("p/done", &sh("sleep 0.1"));
    t.task("q/after", &format!("dependencies: [p]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    let path = &html[html.find("<h2>Critical path</h2>").unwrap()..];
    let path = &path[..path.find("</ol>").unwrap()];
    assert!(path.contains("p/done"), "{path}");
    assert!(
        !path.contains("p/fails") && !path.contains("q/after"),
        "{path}"
    );
    // Nothing completed: no path.
    let t = Tree::new();
    t.task("p/fails", &sh("exit 1"));
    t.run(&["orchestrate"]).code(1);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("critical path 0.0s (no task has completed)"),
        "{html}"
    );
}

/// The critical path runs through phase gates: a gate's longest chain
/// ends at its own phase's tasks or an earlier phase's, whichever is
/// longer (each gate is worked out once, however many tasks wait on it).
#[test]
fn the_report_s_critical_path_goes_through_phase_gates() {
    let t = Tree::new();
    t.task("p/slow", &sh("sleep 0.3"));
    t.task("p/fast", &sh("true"));
    t.task("q/mid", &format!("dependencies: [p]\n{}", sh("sleep 0.2")));
    t.task("q/alone", &sh("true"));
    t.task("r/end", &format!("dependencies: [q]\n{}", sh("true")));
    t.task("r/side", &format!("dependencies: [p]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    let path = &html[html.find("<h2>Critical path</h2>").unwrap()..];
    let path = &path[..path.find("</ol>").unwrap()];
    let on: Vec<&str> = ["p/slow", "q/mid", "r/end", "p/fast", "q/alone", "r/side"]
        .into_iter()
        .filter(|id| path.contains(id))
        .collect();
    assert_eq!(on, ["p/slow", "q/mid", "r/end"], "{path}");
    let at = |id: &str| path.find(id).unwrap();
    assert!(
        at("p/slow") < at("q/mid") && at("q/mid") < at("r/end"),
        "{path}"
    );
}

#[test]
fn the_report_counts_parallelism_on_one_clock() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nphases:\n  p: {max_parallel: 1}\n");
    for i in 0..6 {
        t.task(&format!("p/t{i}"), &sh("true"));
    }
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("<tr><td>p</td><td>1</td><td>1</td></tr>"),
        "back-to-back tasks seen as overlapping: {html}"
    );
}

/// A phase's limit in the report is what the run held it to: its `-j`,
/// else `max_concurrent_agents`, where fewer than the phase's
/// `max_parallel` (it said the phase's own, and a finished run's `-j` was
/// not kept).
#[test]
fn the_report_s_parallelism_limit_is_the_run_s() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_concurrent_agents: 2\nphases:\n  p: {max_parallel: 4}\n");
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate", "-j", "1"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("<tr><td>p</td><td>1</td><td>1</td></tr>"),
        "{html}"
    );
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("<tr><td>p</td><td>1</td><td>2</td></tr>"),
        "{html}"
    );
}

/// A phase whose tasks are all in pools that cap them lower than its
/// `max_parallel` and the run's `-j` reads the pools' cap as its limit in
/// the report, naming them: it read "limit 4", a phase its pool held to
/// one at a time looking under-used. A phase with a task in no capped
/// pool keeps its own limit.
#[test]
fn the_report_s_parallelism_limit_is_the_pools_that_held_the_phase() {
    let t = Tree::new();
    t.config(
        "kill_grace: 1s\nmax_concurrent_agents: 4\npools: {anthropic: 1, openai: 1}\nphases:\n  p: {max_parallel: 4}\n  q: {max_parallel: 4}\n  r: {max_parallel: 4}\n",
    );
    for id in ["p/a", "p/b"] {
        t.task(id, &format!("pool: anthropic\n{}", sh("true")));
    }
    t.task("q/a", &format!("pool: anthropic\n{}", sh("true")));
    t.task("q/b", &format!("pool: openai\n{}", sh("true")));
    t.task("r/a", &format!("pool: anthropic\n{}", sh("true")));
    t.task("r/b", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    // Each phase's row: how many ran at once is up to the clock, but one.
    let row = |phase: &str| {
        let at = html.find(&format!("<tr><td>{phase}</td>")).unwrap();
        let end = at + html[at..].find("</tr>").unwrap();
        html[at..end].to_owned()
    };
    assert_eq!(
        row("p"),
        "<tr><td>p</td><td>1</td><td>1 (pool anthropic)</td>"
    );
    assert!(
        row("q").ends_with("<td>2 (pools anthropic, openai)</td>"),
        "{}",
        row("q")
    );
    assert!(row("r").ends_with("</td><td>4</td>"), "{}", row("r"));
}

/// The report's cost of the last run counts an attempt whose task file
/// is gone since (removed, renamed), as the ledger and the budget count
/// it (it counted only the tasks that have a file still: money spent
/// left out).
#[test]
fn the_report_counts_the_cost_of_a_task_whose_file_is_gone() {
    let t = Tree::new();
    let result = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/agents/claude/success.json"
    );
    for id in ["p/a", "p/b"] {
        t.task(
            id,
            &format!("result: claude-json\n{}", sh(&format!("cat {result}"))),
        );
    }
    t.run(&["orchestrate"]).code(0);
    std::fs::remove_file(t.path("tasks/p/b.md")).unwrap();
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("The last run's attempts cost $0.33"),
        "{html}"
    );
}

/// The title is the config's or the root folder's name: any text, escaped
/// in the report as everything else it shows.
#[test]
fn the_report_s_title_is_escaped() {
    let t = Tree::new();
    t.config("title: \"<b>R&D</b>\"\n");
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("<title>&lt;b&gt;R&amp;D&lt;/b&gt; report</title>"),
        "{html}"
    );
    assert!(!html.contains("<b>R&D</b>"), "{html}");
}

/// Names that mean something to Graphviz, Mermaid or HTML: the first a
/// phase's, the others its tasks'.
const ODD_NAMES: [&str; 17] = [
    "01 \"ph\" & \\x",
    "a&amp;b",
    "&#35;",
    "x#1\"y",
    "<b>",
    "back\\n\\G",
    "trailing\\",
    "$$x^2$$",
    "```",
    "%%{init: {'theme':'dark'}}%%",
    "fa:fa-car",
    "style:#1",
    "end",
    "subgraph",
    "-dash",
    "9 ünï 😀",
    "a;b|{c}[d]",
];

fn odd_names_tree() -> Tree {
    let t = Tree::new();
    for name in &ODD_NAMES[1..] {
        t.task(&format!("{}/{name}", ODD_NAMES[0]), &sh("true"));
    }
    t
}

/// `text` with its character references decoded, each `lead` then a
/// number or a name, then `;`: `&#45;`, `&amp;` in XML, `#45;` in Mermaid
/// (which decodes `#amp;` too).
fn decode(text: &str, lead: char) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let reference = (rest.strip_prefix(lead))
            .and_then(|after| after.split_once(';'))
            .and_then(|(code, after)| {
                let code = code.strip_prefix('#').unwrap_or(code);
                let decoded = match code {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => char::from_u32(code.parse().ok()?)?,
                };
                Some((decoded, after))
            });
        match reference {
            Some((decoded, after)) => {
                out.push(decoded);
                rest = after;
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Graphviz reads the DOT graph of tasks named with what it gives a
/// meaning, without a warning, and shows every name as named: an `&`
/// started an HTML entity (`a&amp;b` was shown `a&b`, `&#35;` was `#`).
#[test]
fn graphviz_shows_every_name_as_named() {
    let t = odd_names_tree();
    let dot = t.run(&["graph", "--format", "dot"]).code(0).stdout.clone();
    assert!(dot.contains(r#"label="a&amp;amp;b""#), "{dot}");
    let Some(graphviz) = installed("dot", "to read the Graphviz graph") else {
        return;
    };
    let mut child = std::process::Command::new(graphviz)
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}\n{dot}");
    let svg = String::from_utf8(out.stdout).unwrap();
    let shown: Vec<String> = (svg.split("<text ").skip(1))
        .map(|text| {
            let (_, inner) = text.split_once('>').unwrap();
            decode(inner.split_once("</text>").unwrap().0, '&')
        })
        .collect();
    for name in ODD_NAMES {
        assert!(shown.iter().any(|s| s == name), "{name:?} in {shown:?}");
    }
}

/// Mermaid's graph of tasks named with what Mermaid gives a meaning
/// inside a label writes each such character as its entity code (`#92;`),
/// and only those, so that each label decodes to the name. Found by
/// rendering with mermaid 10, 11 and 12: a `\n` was a line break, three
/// backticks failed the parse, `$$x^2$$` was drawn as math, a
/// `%%{init: ...}%%` was taken out as a directive (an empty label, which
/// failed the parse), `fa:fa-car` was an icon, and `style:#1` lost its
/// code's `;` (shown `style:#35`).
#[test]
fn mermaid_shows_every_name_as_named() {
    let t = odd_names_tree();
    let mermaid = t.run(&["graph"]).code(0).stdout.clone();
    assert!(mermaid.contains("[\"fa#58;fa-car\"]"), "{mermaid}");
    let labels: Vec<&str> = (mermaid.lines())
        .filter_map(|line| line.split_once("[\""))
        .map(|(_, rest)| rest.rsplit_once("\"]").unwrap().0)
        .collect();
    for label in &labels {
        let codes_only = label.split('#').skip(1).all(|after| {
            after.split_once(';').is_some_and(|(code, _)| {
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit())
            })
        });
        assert!(
            codes_only && !label.contains(['"', '&', '<', '>', '\\', '`', '$', '%', ':']),
            "{label}"
        );
    }
    let mut shown: Vec<String> = labels.iter().map(|label| decode(label, '#')).collect();
    let mut names = ODD_NAMES.map(String::from).to_vec();
    shown.sort();
    names.sort();
    assert_eq!(shown, names, "{mermaid}");
}

/// Past 500 edges or 50,000 characters Mermaid draws an error instead of
/// the graph (checked with mermaid 10, 11 and 12), and a diagram cannot
/// raise those limits: `graph` warns from the 501st edge, with what to do.
#[test]
fn graph_warns_when_mermaid_would_draw_no_graph() {
    let t = Tree::new();
    t.task("a/x", &sh("true"));
    let after_a = format!("dependencies: [a]\n{}", sh("true"));
    for i in 0..500 {
        t.task(&format!("b/t{i}"), &after_a);
    }
    let run = t.run(&["graph"]);
    assert!(run.code == 0 && run.stderr.is_empty(), "{}", run.stderr);
    t.task("b/t500", &after_a);
    let run = t.run(&["graph"]);
    assert!(
        run.code == 0 && run.stderr.contains("Mermaid draws no graph of more than 500 edges or 50000 characters (limits a diagram cannot raise), and this one has 501 edges and "),
        "{}",
        run.stderr
    );
    let run = t.run(&["graph", "--format", "dot"]);
    assert!(run.code == 0 && run.stderr.is_empty(), "{}", run.stderr);
}

/// A phase depended on that has no task yet (its tasks are to be
/// generated) is in the Graphviz graph with the edge from it: an empty
/// cluster and no edge hid the dependency.
#[test]
fn a_phase_with_no_task_yet_keeps_its_edge_in_graphviz() {
    let t = Tree::new();
    t.task("01-a/plan", &sh("true"));
    std::fs::create_dir_all(t.path("tasks/02-gen")).unwrap();
    t.task(
        "03-c/z",
        &format!("dependencies: [\"02-gen\"]\n{}", sh("true")),
    );
    let dot = t.run(&["graph", "--format", "dot"]);
    dot.code(0)
        .says("p2 [label=\"(no task yet)\", style=dashed];")
        .says("p2 -> n1 [ltail=cluster_2];");
}

/// A task file removed during the run leaves the live view's count of
/// its phase, as it leaves `progress`'s.
#[test]
fn a_task_file_removed_during_the_run_leaves_the_live_view() {
    let t = Tree::new();
    t.task("p/a", &sh("rm tasks/q/gone.md"));
    t.task("q/gone", &format!("dependencies: [p]\n{}", sh("true")));
    t.task("q/slow", &format!("dependencies: [p]\n{}", sh("sleep 1.5")));
    let drawn = on_a_terminal(&t, "orchestrate", false);
    assert!(
        drawn.contains("q/gone: its task file was removed"),
        "{drawn}"
    );
    assert!(drawn.contains("Summary: 2 completed"), "{drawn}");
    // The last frame drawn (one drawn before the removal may be drawn
    // again after an event line).
    let heading = format!("{}: ", t.root.file_name().unwrap().to_str().unwrap());
    let last = drawn.rsplit(&heading).next().unwrap();
    let q = last.split("q      ").nth(1).unwrap_or_default();
    assert!(
        q.contains("]     0/1 ") || q.contains("]     1/1 "),
        "{last}"
    );
}

/// After `reset`, the latest log is still the attempt the logs on disk
/// say it is: `--attempt` finds it by its number.
#[test]
fn logs_of_an_attempt_by_number_after_a_reset() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "retries: 1\n{}",
            sh("echo attempt $TASK_ATTEMPT; test $TASK_ATTEMPT -ge 2")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["logs", "p/a", "--attempt", "2"])
        .code(0)
        .says("attempt 2");
    t.run(&["logs", "p/a", "--attempt", "1"])
        .code(0)
        .says("attempt 1");
}

/// `why` of a failed task whose run was killed with a retry still owed
/// says the next run tries it again, as that run does.
/// A run whose thousands of tasks fail or are blocked names the first 20
/// of each in its summary, and `progress` the first 10 failures of each
/// phase, each list with how many more and the command that lists them
/// all: every one was listed, scrolling the summary's own line, and the
/// failures, away behind the blocked tasks.
#[test]
fn the_summary_and_progress_name_the_first_failures_and_how_many_more() {
    let t = Tree::new();
    for i in 10..35 {
        t.task(&format!("a/t{i}"), &sh("exit 1"));
        t.task(
            &format!("b/t{i}"),
            &format!("dependencies: [a/t{i}]\n{}", sh("true")),
        );
    }
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says("Summary: 0 completed, 25 failed, 25 blocked")
        .says("  failed   a/t29: exit code 1")
        .says("  blocked  b/t29: blocked by a/t29\n  ... and 5 more failed (`cargo xtask --root ")
        .says("progress --tasks` lists them)\n  ... and 5 more blocked (`cargo xtask --root ");
    assert!(!run.stdout.contains("  failed   a/t30:"), "{}", run.stdout);
    let progress = t.run(&["progress"]);
    progress
        .code(0)
        .says("    failed  a/t19: exit code 1\n    ... and 15 more failed (`cargo xtask --root ");
    assert!(!progress.stdout.contains("a/t20"), "{}", progress.stdout);
    let every = t.run(&["progress", "--tasks"]);
    assert!(every.stdout.contains("a/t34") && every.stdout.contains("b/t34"));
}

/// `why` of a task a whole phase's failures block names the first five,
/// each with its error, and how many more (a phase of 3,000 that failed
/// made a line of 3,000 names, 3,000 error lines and 3,000 commands).
#[test]
fn why_of_a_task_many_failures_block_names_the_first_few() {
    let t = Tree::new();
    for i in 1..=7 {
        t.task(&format!("a/t{i}"), &sh("exit 1"));
    }
    t.task("b/x", &format!("dependencies: [a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    let why = t.run(&["why", "b/x"]);
    why.code(0)
        .says("b/x is blocked by a/t1, a/t2, a/t3, a/t4, a/t5 and 2 more\n")
        .says("  a/t5 failed: exit code 1\n  and 2 more failed (`cargo xtask --root ")
        .says("why a/t5` and 2 more)");
    assert!(!why.stdout.contains("a/t6"), "{}", why.stdout);
}

#[test]
fn why_says_a_killed_run_s_retry_is_still_owed() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "retries: 1\n{}",
            sh("touch started; while [ ! -e go ]; do sleep 0.01; done; exit 4")
        ),
    );
    let mut run = t.start(&["orchestrate"]);
    // Its own start, not its running status: that is written before the
    // supervisor is handed the task, and a kill between the two leaves
    // a task that never ran, as it should.
    wait_for("p/a to run", || t.exists("started"));
    run.kill().unwrap();
    run.wait().unwrap();
    t.write("go", "");
    t.run(&["monitor"]).code(1);
    t.run(&["why", "p/a"])
        .says("resumes that run and tries it again (try 2 of 2)");
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.status("p/a")["attempt"], 2);
}

/// `why` of a task that failed in the run going on says what that run
/// does with it, not that a run was stopped.
#[test]
fn why_of_a_task_failed_in_the_run_going_on_says_the_run_keeps_it_failed() {
    let t = Tree::new();
    t.task("p/fail", &format!("retries: 0\n{}", sh("exit 3")));
    t.task("p/long", &sh("while [ ! -e go ]; do sleep 0.01; done"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/fail to fail", || {
        t.exists("workspace/status/p/fail.json") && t.state("p/fail") == "failed"
    });
    let why = t.run(&["why", "p/fail"]);
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(1));
    why.code(0)
        .says("the run going on keeps it failed; once it ends, the next `cargo xtask");
    assert!(!why.stdout.contains("stopped"), "{}", why.stdout);
}

/// A task recorded blocked by one that has completed since: `why` says
/// the next run takes it up, not that it waits for that one.
#[test]
fn why_of_a_task_blocked_by_one_completed_since() {
    let t = Tree::new();
    t.task("p/a", &sh("test -e ok"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    t.write("ok", "");
    t.run(&["launch", "p/a"]).code(0);
    t.run(&["why", "p/b"])
        .says("p/b is recorded blocked by p/a, which has not failed since: the next `")
        .says("orchestrate` takes it up again");
}

/// A phase where nothing ran has no CPU time known: null, as every
/// number not known in `progress --json`, not 0.
#[test]
fn progress_json_gives_an_unknown_cpu_time_as_null() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    let progress: serde_json::Value =
        serde_json::from_str(&t.run(&["progress", "--json"]).stdout).unwrap();
    let phase = &progress["phases"][0];
    assert!(phase["cpu_seconds"].is_null(), "{phase}");
    assert!(phase["peak_memory_mb"].is_null(), "{phase}");
}

/// A task recorded blocked, taken up again by a run but still waiting (on
/// a gate's artifact): `why` says what it waits on, as `next` does.
#[test]
fn why_of_a_task_recorded_blocked_says_what_it_still_waits_on() {
    let t = Tree::new();
    t.config("phases: {p: {requires: [shared/x.json]}}\n");
    t.task("p/a", &sh("test -e ok"));
    t.task("q/c", &format!("dependencies: [p]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    t.write("ok", "");
    t.run(&["orchestrate"]).code(1);
    t.run(&["why", "q/c"])
        .says("q/c is recorded blocked by p/a, which has not failed since")
        .says("waits on phase p: its gate needs workspace/outputs/shared/x.json, which does not exist");
}

/// The commands a message suggests quote a task id the shell would split
/// (a phase folder with a space): pasted, they work.
#[test]
fn suggested_commands_quote_task_ids() {
    let t = Tree::new();
    t.task("01-my phase/a", &sh("exit 1"));
    t.run(&["orchestrate"]).code(1);
    t.run(&["why", "01-my phase/a"])
        .says("reset '01-my phase/a'`");
}

/// A running task's time is whole seconds (`progress --json`'s
/// `elapsed_seconds`), shown as such: `1s`, never `1.0s`, which claimed a
/// tenth's precision (a task 1.8 s in read `1.0s`).
#[test]
fn a_running_task_s_time_is_shown_in_the_seconds_it_is_counted_in() {
    let t = Tree::new();
    t.task("p/slow", &sh("until [ -e go ]; do sleep 0.01; done"));
    let mut run = t.start(&["orchestrate"]);
    let elapsed = || {
        let json = progress_json(&t);
        json["phases"][0]["running_tasks"][0]["elapsed_seconds"].as_u64()
    };
    wait_for("a second of p/slow", || elapsed().is_some_and(|s| s >= 1));
    let progress = t.run(&["progress"]);
    let line = progress
        .stdout
        .lines()
        .find(|l| l.contains("running  p/slow"))
        .unwrap_or_else(|| panic!("no running line in\n{}", progress.stdout));
    let shown = line.rsplit("  ").next().unwrap();
    assert!(
        shown.ends_with('s')
            && shown[..shown.len() - 1]
                .parse::<u64>()
                .is_ok_and(|s| s >= 1),
        "{line:?}"
    );
    t.write("go", "");
    assert!(run.wait().unwrap().success());
}

/// Whether `text` holds a character a terminal would act on but a line
/// break: an escape, a bell, a carriage return, a direction override.
fn acts_on_a_terminal(text: &str) -> bool {
    text.chars()
        .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
}

/// A name that holds a backslash beside a character written out has the
/// backslash written out too (`\\`): `\e` in it is the escape, never the
/// two characters a name may hold (`two\e` and `two` with an escape read
/// alike). A name with nothing to write out is shown as it is, backslash
/// and all, as it is typed.
#[test]
fn a_backslash_beside_a_written_out_escape_is_written_out_too() {
    let t = Tree::new();
    t.task("01-p/back\\slash", &sh("true"));
    t.task("01-p/two\\e\u{1b}", &sh("true"));
    t.run(&["validate"])
        .code(2)
        .says("01-p/two\\\\e\\e.md: the path contains control characters")
        .never_says("two\\e\\e.md");
    t.run(&["progress", "--tasks"])
        .code(2)
        .says("01-p/back\\slash\n")
        .says("01-p/two\\\\e\\e\n");
}

/// A file named with an escape sequence, a newline or a direction
/// override, and a value that holds one, are the user's text: every view
/// writes what a terminal would act on out (`\e`), never sends it raw (a
/// title set, colours, the screen cleared, a name shown reversed).
#[test]
fn names_and_values_with_control_characters_are_shown_written_out() {
    let t = Tree::new();
    t.task("01-p/ok", &sh("true"));
    t.task("01-p/esc\u{1b}[31mred", &sh("true"));
    t.task("01-p/line\nbreak", &sh("true"));
    t.task("01-p/evil\u{202e}dm.exe", &sh("true"));
    t.task("02-p\u{1b}]0;title\u{7}/t", &sh("true"));
    t.task(
        "01-p/deps",
        &format!("dependencies: [\"x\\e]0;T\\ay\"]\n{}", sh("true")),
    );
    for args in [
        &["validate"][..],
        &["progress"],
        &["progress", "--tasks"],
        &["progress", "--json"],
    ] {
        let run = t.run(args);
        // JSON writes the backslash of `\e` as `\\`: read as text.
        let said = match args.contains(&"--json") {
            true => serde_json::from_str::<serde_json::Value>(&run.stdout)
                .unwrap()
                .to_string()
                .replace("\\\\", "\\"),
            false => run.said(),
        };
        run.code(2);
        for name in [
            "01-p/esc\\e[31mred",
            "01-p/line\\nbreak",
            "01-p/evil\\u{202e}dm.exe",
            "02-p\\e]0;title\\u{7}/t",
        ] {
            assert!(said.contains(name), "{args:?}: {name}:\n{said}");
        }
        assert!(
            !acts_on_a_terminal(&run.said()),
            "{args:?}:\n{}",
            run.said()
        );
    }
    t.run(&["validate"])
        .says("tasks/01-p/deps.md:2: unknown dependency `x\\e]0;T\\u{7}y`")
        .says("tasks/01-p/esc\\e[31mred.md: the path contains control characters");
    // A pool's name is shown on lines of its own (paused, in `why`).
    let t = Tree::new();
    t.task("p/a", &format!("pool: \"a\\e[1mb\"\n{}", sh("true")));
    t.run(&["validate"]).code(2).says(
        "tasks/p/a.md:2: `pool`: must be one line, without newlines or other control characters",
    );
}

/// A command that holds an escape sequence is shown by `next` and the dry
/// run written out, its backslashes too (the quoting's `'\''` is `'\\''`
/// there); a script's lines stay lines.
#[test]
fn a_command_with_control_characters_is_planned_written_out() {
    let t = Tree::new();
    t.task("p/a", "command: \"printf '\\e]0;title\\a\\e[2J\\r'\"");
    t.task("p/b", "command: \"echo one\\necho two\"");
    for args in [&["next"][..], &["orchestrate", "--dry-run"]] {
        let run = t.run(args);
        run.code(0)
            .says("sh -c 'printf '\\\\''\\e]0;title\\u{7}\\e[2J\\r'\\\\'''")
            .says("sh -c 'echo one\necho two'");
        assert!(
            !acts_on_a_terminal(&run.said()),
            "{args:?}:\n{}",
            run.said()
        );
    }
}

/// The columns `text` takes on a terminal, for the names below: a CJK
/// character takes two, a combining accent none.
fn columns(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '\u{300}'..='\u{36f}' => 0,
            '\u{4e00}'..='\u{9fff}' => 2,
            _ => 1,
        })
        .sum()
}

/// The column where `mark` starts on each line that names one of `ids`.
fn columns_of(text: &str, ids: &[&str], mark: &str) -> Vec<usize> {
    (text.lines())
        .filter(|line| ids.iter().any(|id| line.contains(id)))
        .map(|line| columns(&line[..line.find(mark).unwrap()]))
        .collect()
}

/// Names in CJK (two columns a character) or with a combining accent (an
/// `e` and its accent take one) keep the columns after them in line, in
/// the event lines, `next` and the dry run.
#[test]
fn columns_after_wide_or_combining_names_line_up() {
    let t = Tree::new();
    let ids = ["p/中文任务", "p/e\u{301}cole", "p/plain"];
    for id in ids {
        t.task(id, &sh("true"));
    }
    let same = |found: Vec<usize>, what: &str, said: &str| {
        assert_eq!(found.len(), ids.len(), "{what}:\n{said}");
        assert!(
            found.iter().all(|&c| c == found[0]),
            "{what}: {found:?}\n{said}"
        );
    };
    let next = t.run(&["next"]);
    same(columns_of(&next.stdout, &ids, "~"), "next", &next.stdout);
    let plan = t.run(&["orchestrate", "--dry-run"]);
    same(
        columns_of(&plan.stdout, &ids, " agent-"),
        "dry run",
        &plan.stdout,
    );
    let run = t.run(&["orchestrate"]);
    let starts: String = (run.stdout.lines())
        .filter(|line| line.contains(" start "))
        .map(|line| format!("{line}\n"))
        .collect();
    same(
        columns_of(&starts, &ids, " agent-"),
        "event lines",
        &run.stdout,
    );
}

/// Everything `cmd` prints until `done` says it is enough (within a
/// generous bound, else the test fails with what it printed); then it is
/// stopped.
fn printed_until(mut cmd: std::process::Command, done: impl Fn(&str) -> bool) -> String {
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("what was asked for", || done(&text()))
    }));
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    assert!(finished.is_ok(), "it printed:\n{}", text());
    text()
}

/// A terminal whose `TERM` is `dumb` (an editor's shell buffer) shows
/// escape sequences as text, and indicatif draws nothing on it: a run's
/// event lines come without colour codes, and `progress --watch` prints
/// plain frames (it showed nothing at all).
#[test]
fn a_dumb_terminal_gets_plain_lines_and_plain_frames() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    let run = printed_until(terminal_command(&t, "orchestrate", "dumb"), |s| {
        s.contains("Summary:")
    });
    assert!(run.contains("done     p/a"), "{run}");
    assert!(!run.contains('\u{1b}'), "{run:?}");
    let watch = printed_until(terminal_command(&t, "progress --watch", "dumb"), |s| {
        s.contains("1/1     done")
    });
    assert!(!watch.contains('\u{1b}'), "{watch:?}");
}

/// An error that quotes what was typed (a name pasted with its colour
/// codes) writes what a terminal would act on out.
#[test]
fn an_error_quoting_a_typed_name_writes_its_control_characters_out() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    for command in ["why", "logs", "prompt", "approve"] {
        let run = t.run(&[command, "p/\u{1b}[31ma\u{7}"]);
        run.code(2).says("no task `p/\\e[31ma\\u{7}`");
        assert!(
            !acts_on_a_terminal(&run.said()),
            "{command}:\n{}",
            run.said()
        );
    }
}

/// A direction override shows the text after it reversed: a title, a
/// pool, a reason or a note is refused with one, as with a control
/// character.
#[test]
fn a_direction_override_in_a_one_line_text_is_refused() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["block", "p/a", "--reason", "fine\u{202e}txt.exe"])
        .code(2)
        .says("must be one line, without newlines or other control characters");
    assert_eq!(t.state("p/a"), "pending");
    t.config("kill_grace: 1s\ntitle: \"evil\u{202e}txt.exe\"\n");
    t.run(&["validate"]).code(2).says(
        "tasks/orchestrator.yaml:2: `title`: must be one line, without newlines or other control characters",
    );
}

/// A task's output with a direction override (which shows the text after
/// it reversed) is shown without it, as its escape sequences are: `why`'s
/// last lines, `progress`'s last log line.
#[test]
fn a_direction_override_in_a_task_s_output_is_dropped_from_the_views() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh(r#"printf 'report\342\200\256txt.exe\n'; exit 1"#),
    );
    t.run(&["orchestrate"]).code(1);
    let why = t.run(&["why", "p/a"]);
    why.says("    reporttxt.exe");
    assert!(!acts_on_a_terminal(&why.said()), "{}", why.said());
    assert_eq!(progress_task(&t, "p/a")["last_log_line"], "reporttxt.exe");
}

/// `progress --json` leaves `last_log_line` out for a task whose log has
/// no line, as it leaves out every field that does not apply: it gave
/// `"last_log_line": ""`.
#[test]
fn progress_json_leaves_out_the_last_log_line_of_an_empty_log() {
    let t = Tree::new();
    t.task("p/quiet", &sh("true"));
    t.task("p/said", &sh("echo done"));
    t.run(&["orchestrate"]).code(0);
    let quiet = progress_task(&t, "p/quiet");
    assert!(quiet.get("last_log_line").is_none(), "{quiet}");
    assert_eq!(progress_task(&t, "p/said")["last_log_line"], "done");
}

/// A task whose process ended while no orchestrator was alive ran until
/// its end: `progress` counted its running time on to now (a task of a
/// second, ended an hour before, had run for an hour), beside its own
/// "its process is gone"; `why` said it "is running ... but it ended".
#[test]
fn a_task_gone_while_no_orchestrator_ran_is_shown_running_until_its_end() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh("echo $$ > $TASK_OUTPUT_DIR/pid; while [ ! -f release ]; do sleep 0.02; done"),
    );
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a to run", || {
        pid_written(&t, "workspace/outputs/p/a/pid")
    });
    run.kill().unwrap();
    run.wait().unwrap();
    t.write("release", "");
    wait_for("its end's record", || t.exists("workspace/pids/p/a.exit"));
    let record: serde_json::Value =
        serde_json::from_str(&t.read("workspace/pids/p/a.exit")).unwrap();
    let ended = humantime::parse_rfc3339(record["ended_at"].as_str().unwrap()).unwrap();
    let started = t.status("p/a")["started_at"].as_str().unwrap().to_owned();
    let started = humantime::parse_rfc3339(&started).unwrap();
    // Its status's start is to the second, at most a second early.
    let ran = ended.duration_since(started).unwrap().as_secs() + 1;
    let well_after = ended + std::time::Duration::from_secs(ran + 3);
    wait_for("its end to be well past", || {
        std::time::SystemTime::now() > well_after
    });
    let json = progress_json(&t);
    let line = json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["task_id"] == "p/a")
        .unwrap();
    assert_eq!(line["process_gone"], true, "{line}");
    assert!(
        line["elapsed_seconds"].as_u64().unwrap() <= ran,
        "ran {ran}s: {line}"
    );
    let running = &json["phases"][0]["running_tasks"][0];
    assert!(
        running["elapsed_seconds"].as_u64().unwrap() <= ran,
        "ran {ran}s: {running}"
    );
    // `why` says so too, in words that hold: it ran, and ended (it said
    // "p/a is running on agent-1 ... for 1.0s, but it ended at ...").
    let why = t.run(&["why", "p/a"]).stdout;
    assert!(!why.contains("is running"), "{why}");
    // To the millisecond, as the views say it (the record is finer).
    let ended_at = humantime::format_rfc3339_millis(ended).to_string();
    assert!(
        why.contains(&format!(
            "\n  and ended at {ended_at} (exit code 0), with no orchestrator to see it: the next `"
        )),
        "{why}"
    );
    assert!(
        why.contains("records its end (its status says running until then)"),
        "{why}"
    );
    let said: f64 = why
        .lines()
        .find_map(|l| l.strip_prefix("p/a ran on agent-1 (attempt 1) for "))
        .and_then(|rest| rest.strip_suffix('s'))
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| panic!("{why}"));
    assert!(said <= ran as f64, "ran {ran}s: {why}");
}
