//! Approvals (`approve: before | after`, `approve`, `reject`) and stale
//! results (`--rerun-stale`).

use std::process::Stdio;

use crate::tree::*;

/// Shell that waits until the file `go` exists in the tree's root.
const WAIT_FOR_GO: &str =
    "i=0; while [ ! -e go ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done";

/// Exit 4 says approvals are all the run waits for: a task that lacks an
/// input beside one awaiting approval makes it 1.
#[test]
fn a_missing_input_beside_an_approval_exits_1_not_4() {
    let t = Tree::new();
    t.task("p/deploy", &format!("approve: before\n{}", sh(MARK)));
    t.task(
        "p/needs",
        &format!("inputs: [ext/missing.txt]\n{}", sh(MARK)),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("awaiting p/deploy")
        .says("waiting  p/needs");
    t.run(&["orchestrate", "--dry-run"]).code(1);
    t.write("workspace/outputs/ext/missing.txt", "");
    t.run(&["orchestrate"]).code(4);
}

/// Nor is it 4 when a selected task waits for one the run did not select:
/// no approval lets it start.
#[test]
fn a_task_waiting_on_an_unselected_one_beside_an_approval_exits_1_not_4() {
    let t = Tree::new();
    t.task("p/deploy", &format!("approve: before\n{}", sh(MARK)));
    t.task("p/d", &sh(MARK));
    t.task("p/x", &format!("dependencies: [p/d]\n{}", sh(MARK)));
    t.task(
        "p/after",
        &format!("dependencies: [p/deploy]\n{}", sh(MARK)),
    );
    let selected = ["--task", "p/deploy", "--task", "p/after"];
    t.run(&[&["orchestrate"][..], &selected].concat()).code(4);
    t.run(&["orchestrate", "--task", "p/deploy", "--task", "p/x"])
        .code(1)
        .says("awaiting p/deploy");
    assert_eq!(t.launches("p/x"), 0);
    // Nor when the task not selected is between the approval and it.
    t.task("p/d", &format!("dependencies: [p/deploy]\n{}", sh(MARK)));
    t.run(&["orchestrate", "--task", "p/deploy", "--task", "p/x"])
        .code(1)
        .says("awaiting p/deploy");
    // But 4 when the task not selected is the one awaiting approval: the
    // approval lets what waits on it start.
    let t = Tree::new();
    t.task("p/plan", &format!("approve: after\n{}", sh(MARK)));
    t.task("q/b", &format!("dependencies: [p/plan]\n{}", sh(MARK)));
    t.run(&["orchestrate"]).code(4);
    t.run(&["orchestrate", "--phase", "q"]).code(4);
    assert_eq!(t.launches("q/b"), 0);
}

#[test]
fn tasks_awaiting_approval_end_the_run_with_exit_4_and_approve_lets_them_go_on() {
    let t = Tree::new();
    t.task(
        "p/plan",
        &format!(
            "approve: after\noutputs: [plan.md]\n{}",
            sh("echo plan > $TASK_OUTPUT_DIR/plan.md")
        ),
    );
    t.task("p/build", &format!("dependencies: [p/plan]\n{}", sh(MARK)));
    t.task("p/deploy", &format!("approve: before\n{}", sh(MARK)));
    // The dry run plans what the run does: p/build waits for p/plan's
    // approval (it was listed in a second wave).
    let dry = t.run(&["orchestrate", "--dry-run"]);
    dry.code(1)
        .says("  would await approval of its result: p/plan")
        .says("  would await approval: p/deploy")
        .says("would not start: p/build");
    assert!(!dry.stdout.contains("Wave 2"), "{}", dry.stdout);
    t.run(&["orchestrate"])
        .code(4)
        .says("2 awaiting approval")
        .says("awaiting p/plan: its result awaits approval: `cargo xtask --root")
        .says("awaiting p/deploy: awaits approval to start")
        .says("waiting  p/build: waits on p/plan (awaiting approval)");
    assert_eq!(t.state("p/plan"), "awaiting_approval");
    assert_eq!(t.state("p/deploy"), "awaiting_approval");
    assert_eq!(t.launches("p/deploy"), 0);
    t.run(&["progress"]).says("Awaiting approval: 2");
    t.run(&["why", "p/plan"])
        .says("awaits approval of its result");
    t.run(&["why", "p/build"])
        .says("waits on p/plan (awaiting approval)");
    t.run(&["next"]).says("Awaits approval: p/deploy");
    t.run(&["graph"]).says(":::awaiting_approval");
    // A task that waits for no approval cannot be approved.
    t.run(&["approve", "p/build"])
        .code(2)
        .says("does not wait for approval");

    t.run(&["approve", "p/plan", "--by", "alice", "--note", "fine"])
        .code(0);
    let plan = t.status("p/plan");
    assert_eq!(plan["status"], "completed");
    assert_eq!(plan["approved_by"], "alice");
    assert_eq!(plan["approval_note"], "fine");
    assert!(plan["approved_at"].is_string());
    // Where $USER is not set (cron, a service): the account's name.
    let approve = t
        .command(&["approve", "p"])
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap();
    Run::from(approve).code(0).says("approved p/deploy");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("p/build"), 1);
    assert_eq!(t.launches("p/deploy"), 1);
    let account = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let account = String::from_utf8_lossy(&account.stdout).trim().to_owned();
    assert_eq!(t.status("p/deploy")["approved_by"], account.as_str());
    assert!(t.status("p/deploy")["approved_at"].is_string());
    // Nothing of the phase waits any more: an error, not a success.
    t.run(&["approve", "p"])
        .code(2)
        .says("nothing in p awaits this decision");
}

/// A result awaiting approval ran already: `progress` counts no work
/// left for it and gives what its attempt took, and the report draws its
/// attempt as what it is.
#[test]
fn a_result_awaiting_approval_is_no_work_left() {
    let t = Tree::new();
    t.write("workspace/history.json", r#"{"tasks": {"p/plan": 100}}"#);
    t.task("p/plan", &format!("approve: after\n{}", sh("true")));
    t.task("p/other", &format!("approve: after\n{}", sh("true")));
    t.run(&["orchestrate"]).code(4);
    let progress: serde_json::Value =
        serde_json::from_str(&t.run(&["progress", "--json"]).stdout).unwrap();
    assert!(
        progress["eta_seconds"].is_null(),
        "{}",
        progress["eta_seconds"]
    );
    // What its attempt took, as for a completed task.
    let plan = progress_task(&t, "p/plan");
    assert_eq!(plan["state"], "awaiting_approval");
    assert!(plan["duration_seconds"].as_f64().is_some(), "{plan}");
    t.run(&["report"]).code(0);
    let report = t.read("workspace/report.html");
    assert!(
        report.contains(r#"class="bar awaiting"#),
        "not drawn awaiting approval"
    );
    // Approved, its attempt completed the task; rejected, it failed, for
    // the reason given.
    t.run(&["approve", "p/plan"]).code(0);
    t.run(&["reject", "p/other", "--reason", "not what I asked"])
        .code(0);
    t.run(&["report"]).code(0);
    let report = t.read("workspace/report.html");
    assert!(
        report.contains(r#"class="bar completed"#),
        "not drawn completed once approved"
    );
    assert!(
        report.contains("s, rejected by ") && report.contains(": not what I asked</title>"),
        "the rejection's reason not drawn"
    );
}

/// A decision given while a run that has ended waits for its notifiers
/// says the next run acts on it: that run decides nothing more.
#[test]
fn a_decision_while_a_run_closes_says_the_next_run_acts_on_it() {
    let t = Tree::new();
    let go = t.path("go");
    t.config(&format!(
        "notify:\n  - on: [run_finished]\n    command: \"cat > /dev/null; until [ -e {} ]; do sleep 0.05; done\"\n",
        go.display()
    ));
    t.task("p/a", &format!("approve: before\n{}", sh(MARK)));
    let mut run = t.start(&["orchestrate"]);
    wait_for("the run to end", || {
        t.exists("workspace/events.jsonl")
            && t.read("workspace/events.jsonl").contains("run_finished")
    });
    t.run(&["approve", "p/a"])
        .code(0)
        .says("approved p/a: recorded; the run (pid ")
        .says("is ending (it waits for its notifiers): the next `");
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(4));
    assert_eq!(t.launches("p/a"), 0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("p/a"), 1);
}

#[test]
fn a_running_orchestrator_picks_up_decisions_from_another_terminal() {
    let t = Tree::new();
    t.task("p/slow", &sh(WAIT_FOR_GO));
    t.task("p/gated", &format!("approve: before\n{}", sh(MARK)));
    t.task("p/plan", &format!("approve: after\n{}", sh("true")));
    t.task("p/build", &format!("dependencies: [p/plan]\n{}", sh(MARK)));
    t.task("p/doomed", &format!("approve: after\n{}", sh("true")));
    t.task(
        "p/after-doomed",
        &format!("dependencies: [p/doomed]\n{}", sh(MARK)),
    );
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    for id in ["p/gated", "p/plan", "p/doomed"] {
        wait_for(&format!("{id} to await approval"), || {
            t.state(id) == "awaiting_approval"
        });
    }
    t.run(&["approve", "p/gated", "--by", "bob"])
        .code(0)
        .says("the running orchestrator");
    t.run(&["approve", "p/plan"]).code(0);
    t.run(&["reject", "p/doomed", "--reason", "wrong approach"])
        .code(0);
    wait_for("the approved tasks to run", || {
        t.state("p/gated") == "completed" && t.state("p/build") == "completed"
    });
    wait_for("the rejection", || t.state("p/after-doomed") == "blocked");
    // All while `slow` still runs, in the same run.
    assert_eq!(t.state("p/slow"), "running");
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(1));
    assert_eq!(t.status("p/gated")["approved_by"], "bob");
    assert_eq!(
        changes(&t, "p/gated"),
        [
            "pending -> awaiting_approval",
            "awaiting_approval -> pending",
            "pending -> running",
            "running -> completed"
        ]
    );
    let error = t.status("p/doomed")["error"].as_str().unwrap().to_owned();
    assert!(
        error.starts_with("rejected by ") && error.ends_with(": wrong approach"),
        "{error}"
    );
    assert_eq!(t.state("p/doomed"), "failed");
    assert_eq!(t.status("p/after-doomed")["blocked_by"], "p/doomed");
    assert_eq!(t.launches("p/after-doomed"), 0);
    // As any failure that blocks others: an alert.
    assert!(
        t.read("out")
            .contains("ALERT: Task p/doomed failed, blocking 1 task"),
        "{}",
        t.read("out")
    );
    // A rejection holds, as `block` does, until `reset`.
    t.write("go", "");
    t.run(&["orchestrate"]).code(1).says("rejected by");
    t.run(&["why", "p/doomed"])
        .says("it was rejected: it stays failed");
}

#[test]
fn a_changed_input_makes_a_task_and_its_approval_stale_and_rerun_stale_reruns_exactly_it_and_downstream(
) {
    let t = Tree::new();
    t.write("workspace/outputs/src/data.txt", "one\n");
    t.task(
        "p/a",
        &format!("inputs: [src/data.txt]\napprove: after\n{}", sh(MARK)),
    );
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    t.task("p/other", &sh(MARK));
    t.run(&["orchestrate"]).code(4);
    t.run(&["approve", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/b"), "completed");

    t.write("workspace/outputs/src/data.txt", "two\n");
    t.run(&["progress"])
        .says("stale    p/a: workspace/outputs/src/data.txt changed since it started");
    t.run(&["why", "p/a"])
        .says("but it is stale: workspace/outputs/src/data.txt changed");
    t.run(&["graph"]).says(":::stale");
    // Without the flag, completed stays completed: nothing runs. The dry
    // run and `next` say so too.
    for args in [&["orchestrate", "--dry-run"][..], &["next"]] {
        t.run(args).code(0).says("1 completed task is stale");
    }
    t.run(&["orchestrate"])
        .code(0)
        .says("1 completed task is stale");
    assert_eq!((t.launches("p/a"), t.launches("p/b")), (1, 1));

    // Its approval saw other inputs: it is revoked, and asked for again;
    // the dry run says so first.
    t.run(&["orchestrate", "--rerun-stale", "--dry-run"])
        .says("stale  p/a: workspace/outputs/src/data.txt changed since it started: it runs again")
        .says("  would await approval of its result: p/a")
        .says("would not start: p/b");
    t.run(&["orchestrate", "--rerun-stale"])
        .code(4)
        .says("stale  p/a: workspace/outputs/src/data.txt changed since it started");
    assert_eq!((t.launches("p/a"), t.launches("p/other")), (2, 1));
    assert_eq!(
        t.launches("p/b"),
        1,
        "b waits for a's new result to be approved"
    );
    t.run(&["approve", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        (t.launches("p/a"), t.launches("p/b"), t.launches("p/other")),
        (2, 2, 1)
    );

    // A changed task file makes it stale too.
    t.task("p/other", &format!("{}\ntitle: renamed", sh(MARK)));
    t.run(&["progress", "--json"])
        .says("\"stale_because\": \"tasks/p/other.md\"");
    // The commands that parse the task files judge it as they read it.
    t.run(&["why", "p/other"])
        .says("but it is stale: tasks/p/other.md changed");
    t.run(&["orchestrate"])
        .code(0)
        .says("1 completed task is stale");
}

/// A result is built from its inputs as they were when it started: one
/// changed while it ran makes it stale at once.
#[test]
fn an_input_changed_while_its_task_ran_makes_the_result_stale() {
    let t = Tree::new();
    t.write("workspace/outputs/src/data.txt", "one\n");
    let read = "cp $WORKSPACE/outputs/src/data.txt $TASK_OUTPUT_DIR/; touch started; while [ ! -f release ]; do sleep 0.02; done";
    t.task("p/a", &format!("inputs: [src/data.txt]\n{}", sh(read)));
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a to read its input", || t.exists("started"));
    t.write("workspace/outputs/src/data.txt", "two\n");
    t.write("release", "");
    assert!(run.wait().unwrap().success());
    assert_eq!(t.read("workspace/outputs/p/a/data.txt"), "one\n");
    t.run(&["progress"])
        .says("stale    p/a: workspace/outputs/src/data.txt changed since it started");
}

#[test]
fn event_lines_stay_whole_under_concurrent_writers() {
    let t = Tree::new();
    t.config("max_concurrent_agents: 4\n");
    for i in 0..150 {
        t.task(&format!("p/t{i:03}"), &sh("true"));
    }
    for i in 0..40 {
        t.task(
            &format!("q/g{i:02}"),
            &format!("approve: before\n{}", sh("true")),
        );
    }
    let mut run = t.start(&["orchestrate", "--phase", "p"]);
    // Meanwhile, from other processes, decisions that append events too.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let root = t.root.clone();
            std::thread::spawn(move || {
                for i in (w..40).step_by(4) {
                    let status = std::process::Command::new(BIN)
                        .arg("--root")
                        .arg(&root)
                        .args(["approve", &format!("q/g{i:02}")])
                        .stdout(Stdio::null())
                        .status()
                        .unwrap();
                    assert!(status.success());
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(run.wait().unwrap().success());
    let lines: Vec<serde_json::Value> = t
        .read("workspace/events.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a broken line {l:?}: {e}")))
        .collect();
    let approved = lines.iter().filter(|e| e["event"] == "approved").count();
    let completed = lines.iter().filter(|e| e["to"] == "completed").count();
    assert_eq!((approved, completed), (40, 150));
}

#[test]
fn decisions_without_a_run_leave_consistent_statuses() {
    let t = Tree::new();
    t.task("p/gate", &format!("approve: before\n{}", sh(MARK)));
    t.task("p/plan", &format!("approve: after\n{}", sh("true")));
    t.task(
        "p/after-plan",
        &format!("dependencies: [p/plan]\n{}", sh(MARK)),
    );
    t.task("p/waits", &format!("approve: before\n{}", sh(MARK)));
    // Approved ahead of time: no status of a state it is not in.
    t.run(&["approve", "p/gate", "--by", "ann"]).code(0);
    assert_eq!(t.state("p/gate"), "pending");
    t.run(&["orchestrate"]).code(4);
    t.run(&["orchestrate"]).code(4);
    assert_eq!(t.launches("p/gate"), 1);
    assert_eq!(t.status("p/gate")["approved_by"], "ann");
    // Awaiting is one change, however many runs find it so.
    assert_eq!(
        changes(&t, "p/plan"),
        ["pending -> running", "running -> awaiting_approval"]
    );
    assert_eq!(changes(&t, "p/waits"), ["pending -> awaiting_approval"]);
    // A rejection with no run blocks what depends on it at once.
    t.run(&["reject", "p/plan", "--reason", "no"]).code(0);
    assert_eq!(t.state("p/plan"), "failed");
    assert_eq!(t.state("p/after-plan"), "blocked");
    assert_eq!(t.launches("p/after-plan"), 0);
}

/// An approval given ahead of time that no longer holds (the task file
/// changed since) is said to be revoked, by the run and by `why`.
#[test]
fn a_revoked_approval_is_said() {
    let t = Tree::new();
    t.task("p/deploy", &format!("approve: before\n{}", sh(MARK)));
    // Before any run, `why` of the pending task says what it waits for.
    t.run(&["why", "p/deploy"])
        .code(0)
        .says("  awaits approval to start (`cargo xtask --root");
    t.run(&["approve", "p/deploy", "--by", "alice"]).code(0);
    t.task(
        "p/deploy",
        &format!("approve: before\ntitle: changed\n{}", sh(MARK)),
    );
    let said = "the approval by alice no longer holds: tasks/p/deploy.md changed since";
    t.run(&["why", "p/deploy"]).code(0).says(said);
    t.run(&["orchestrate"]).code(4).says(said);
    assert_eq!(t.launches("p/deploy"), 0);
    t.run(&["why", "p/deploy"]).says(said);
}

/// A tree whose `p/make` declares `output` and runs `writes`, and whose
/// `q/use`, approved before it starts, reads `input`.
fn made_and_approved_before_use(output: &str, writes: &str, input: &str) -> Tree {
    let t = Tree::new();
    t.task("p/make", &format!("outputs: [{output}]\n{}", sh(writes)));
    t.task(
        "q/use",
        &format!("approve: before\ninputs: [\"{input}\"]\n{}", sh(MARK)),
    );
    t
}

/// An approval given before an input existed did not see it: once the
/// input is made, the approval no longer holds, and the task waits for one
/// that saw it (it started on an input nobody approved).
#[test]
fn an_approval_given_before_an_input_existed_does_not_cover_it() {
    let t = made_and_approved_before_use(
        "o.txt",
        "echo $RANDOM > $TASK_OUTPUT_DIR/o.txt",
        "p/make/o.txt",
    );
    t.run(&["approve", "q/use", "--by", "alice"]).code(0).says(
        "warning: q/use's input workspace/outputs/p/make/o.txt is not made yet (or names no file yet): once it is, this approval no longer holds",
    );
    t.run(&["orchestrate"]).code(4).says(
        "the approval by alice no longer holds: workspace/outputs/p/make/o.txt changed since",
    );
    assert_eq!(t.launches("q/use"), 0);
    // Approved once it is there, it runs.
    t.run(&["approve", "q/use", "--by", "alice"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("q/use"), 1);
    // A folder input is covered by the files in it, and by their list.
    let t = made_and_approved_before_use(
        "dir",
        "mkdir -p $TASK_OUTPUT_DIR/dir/sub && echo hi > $TASK_OUTPUT_DIR/dir/sub/f",
        "p/make/dir",
    );
    t.run(&["orchestrate", "--task", "p/make"]).code(0);
    t.run(&["approve", "q/use", "--by", "alice"]).code(0);
    t.write("workspace/outputs/p/make/dir/sub/f", "changed\n");
    t.run(&["orchestrate"]).code(4).says(
        "the approval by alice no longer holds: workspace/outputs/p/make/dir/sub/f changed since",
    );
    t.run(&["approve", "q/use", "--by", "alice"]).code(0);
    t.write("workspace/outputs/p/make/dir/new", "added\n");
    t.run(&["orchestrate"]).code(4).says(
        "the approval by alice no longer holds: workspace/outputs/p/make/dir (what it holds) changed since",
    );
    t.run(&["approve", "q/use", "--by", "alice"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("q/use"), 1);
    // Its result is stale once a file in it changes.
    t.write("workspace/outputs/p/make/dir/new", "changed\n");
    let used = progress_task(&t, "q/use");
    assert_eq!(used["state"], "stale");
    assert_eq!(used["stale_because"], "workspace/outputs/p/make/dir/new");
    // A glob input is covered by the files it matched.
    let t =
        made_and_approved_before_use("a.txt", "echo a > $TASK_OUTPUT_DIR/a.txt", "p/make/*.txt");
    t.run(&["orchestrate", "--task", "p/make"]).code(0);
    t.run(&["approve", "q/use", "--by", "alice"]).code(0);
    t.write("workspace/outputs/p/make/a.txt", "changed\n");
    t.run(&["orchestrate"]).code(4).says(
        "the approval by alice no longer holds: workspace/outputs/p/make/a.txt changed since",
    );
    assert_eq!(t.launches("q/use"), 0);
    // And by what it matches: approved before anything matched, then run
    // once it does.
    t.run(&["reset", "p/make"]).code(0);
    std::fs::remove_dir_all(t.path("workspace/outputs/p/make")).unwrap();
    t.run(&["approve", "q/use", "--by", "alice"]).code(0);
    t.run(&["orchestrate"]).code(4).says(
        "the approval by alice no longer holds: workspace/outputs/p/make/*.txt (what it matches) changed since",
    );
    t.run(&["approve", "q/use", "--by", "alice"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("q/use"), 1);
}

/// A glob input that matches the task's own outputs, or what tasks after
/// it write, does not make it stale: it was not built from them (a first
/// run, and one whose retry found its own output from the attempt before).
#[test]
fn a_glob_input_is_not_stale_by_what_its_task_or_later_ones_wrote() {
    let t = Tree::new();
    t.task(
        "01-p/a",
        &format!(
            "outputs: [r.json]\n{}",
            sh("echo a > $TASK_OUTPUT_DIR/r.json")
        ),
    );
    t.task(
        "01-p/c",
        &format!(
            "dependencies: [01-p/a]\nretries: 1\ninputs: [\"01-p/*/*.json\"]\noutputs: [o.json]\n{}",
            sh("[ -e $TASK_OUTPUT_DIR/o.json ] && r=0 || r=1; date +%N > $TASK_OUTPUT_DIR/o.json; exit $r")
        ),
    );
    t.task(
        "02-q/b",
        &format!(
            "dependencies: [01-p]\ninputs: [\"**/*.json\"]\noutputs: [report.json]\n{}",
            sh("echo b > $TASK_OUTPUT_DIR/report.json")
        ),
    );
    t.task(
        "03-r/d",
        &format!(
            "dependencies: [02-q/b]\noutputs: [d.json]\n{}",
            sh("echo d > $TASK_OUTPUT_DIR/d.json")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    let tasks = t.run(&["progress", "--tasks"]);
    assert!(!tasks.stdout.contains("stale"), "{}", tasks.stdout);
    // What it was built from changed: stale.
    t.write("workspace/outputs/01-p/a/r.json", "changed\n");
    t.run(&["progress", "--tasks"]).says("stale      02-q/b");
}

/// On a rerun, a glob or folder input finds what tasks after it wrote in
/// the run before: their outputs are not what it is built from, and
/// rewritten with new content they do not make it stale (it was stale
/// again after every `--rerun-stale`, for good). An upstream output's
/// change still does.
#[test]
fn a_glob_or_folder_input_is_not_stale_by_what_later_tasks_rewrite() {
    for input in ["\"s/*/out.txt\"", "s"] {
        glob_or_folder_input_rerun(input);
    }
}

fn glob_or_folder_input_rerun(input: &str) {
    let t = Tree::new();
    let writes = |dependencies: &str| {
        format!(
            "dependencies: [{dependencies}]\noutputs: [out.txt]\n{}",
            sh(&format!("date +%s%N > $TASK_OUTPUT_DIR/out.txt; {MARK}"))
        )
    };
    t.task("s/src", &writes(""));
    t.task(
        "s/use",
        &format!("dependencies: [s/src]\ninputs: [{input}]\n{}", sh(MARK)),
    );
    t.task("s/down", &writes("s/use"));
    t.run(&["orchestrate"]).code(0);
    // What it was built from changed: stale, and run again with what is
    // downstream of it, whose outputs it now finds.
    t.write("workspace/outputs/s/src/out.txt", "changed\n");
    t.run(&["progress", "--tasks"]).says("stale      s/use");
    t.run(&["orchestrate", "--rerun-stale"]).code(0);
    assert_eq!(t.launches("s/use"), 2);
    assert_eq!(t.launches("s/down"), 2);
    let tasks = t.run(&["progress", "--tasks"]);
    assert!(!tasks.stdout.contains("stale"), "{}", tasks.stdout);
    t.run(&["orchestrate", "--rerun-stale"]).code(0);
    assert_eq!(t.launches("s/use"), 2, "run again for nothing: {input}");
}

/// A folder input's symbolic link to a file is marked by that file's
/// content; a folder of more than a thousand files is not looked into (it
/// would be read at each start), and the run says so.
#[test]
fn a_folder_input_follows_links_to_files_and_says_when_it_is_too_big() {
    let t = Tree::new();
    t.write("data/real.txt", "one\n");
    let real = t.path("data/real.txt");
    t.task(
        "p/make",
        &format!(
            "outputs: [dir, big, huge]\n{}",
            sh(&format!(
                "cd $TASK_OUTPUT_DIR && mkdir dir big huge && ln -s {} dir/link && ln -s .. dir/up \
                 && (cd big && seq 1001 | xargs touch) && truncate -s 300M huge/data",
                real.display()
            ))
        ),
    );
    t.task(
        "q/use",
        &format!(
            "dependencies: [p/make]\ninputs: [p/make/dir, p/make/big, p/make/huge]\n{}",
            sh(MARK)
        ),
    );
    t.run(&["orchestrate"])
        .code(0)
        .says(
            "its input folder p/make/big holds more than 1000 files or 256 MiB: not looked into, for it or any task of this run (a change in it does not make a result stale; name what a task is built from by a glob)",
        )
        .says("its input folder p/make/huge holds more than 1000 files or 256 MiB");
    t.write("workspace/outputs/p/make/big/1", "changed\n");
    let tasks = t.run(&["progress", "--tasks"]);
    assert!(!tasks.stdout.contains("stale"), "{}", tasks.stdout);
    t.write("data/real.txt", "two\n");
    let used = progress_task(&t, "q/use");
    assert_eq!(used["stale_because"], "workspace/outputs/p/make/dir/link");
}

/// A glob input that matches a FIFO among its producer's outputs is not
/// read for its fingerprint (opening it waited for a writer for good).
#[test]
fn a_fifo_a_glob_input_matches_is_not_opened() {
    let t = Tree::new();
    t.task(
        "p/make",
        &format!(
            "outputs: [a.txt]\n{}",
            sh("echo a > $TASK_OUTPUT_DIR/a.txt; mkfifo $TASK_OUTPUT_DIR/pipe")
        ),
    );
    t.task("q/use", &format!("inputs: [\"p/make/*\"]\n{}", sh(MARK)));
    let mut run = t.start(&["orchestrate"]);
    wait_for("the run to end", || run.try_wait().unwrap().is_some());
    assert_eq!(t.launches("q/use"), 1);
}

/// An approval covers what the task's prompt is made of: the outputs of
/// its dependencies that the prompt quotes, and its template's file. A
/// change to either revokes it (the agent started on a prompt nobody
/// approved).
#[test]
fn an_approval_covers_what_the_prompt_quotes_and_its_template() {
    let t = Tree::new();
    t.config("agent:\n  command: [sh, -c, 'cat \"$0\" > $TASK_OUTPUT_DIR/got', '{prompt_file}']\n");
    t.task(
        "01-a/up",
        &format!(
            "outputs: [out.txt]\n{}",
            sh("echo made > $TASK_OUTPUT_DIR/out.txt")
        ),
    );
    t.task(
        "02-b/down",
        "approve: before\ndependencies: [01-a/up]\nprompt_file: p.jinja",
    );
    t.write("tasks/p.jinja", "Use {{ deps[0].outputs[0].text }}");
    t.run(&["orchestrate"]).code(4);
    t.run(&["approve", "02-b/down", "--by", "alice"]).code(0);
    t.write("workspace/outputs/01-a/up/out.txt", "DIFFERENT\n");
    t.run(&["orchestrate"]).code(4).says(
        "the approval by alice no longer holds: workspace/outputs/01-a/up/out.txt changed since",
    );
    t.run(&["approve", "02-b/down", "--by", "alice"]).code(0);
    t.write(
        "tasks/p.jinja",
        "Use {{ deps[0].outputs[0].text }} and then remove everything",
    );
    t.run(&["orchestrate"])
        .code(4)
        .says("the approval by alice no longer holds: tasks/p.jinja changed since");
    t.run(&["approve", "02-b/down", "--by", "alice"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert!(t
        .read("workspace/outputs/02-b/down/got")
        .contains("remove everything"));
    // Approved ahead of time, its dependency to run again: what that one
    // writes anew is not a change to what was approved.
    t.task(
        "01-a/up",
        &format!(
            "outputs: [out.txt]\n{}",
            sh("date +%s%N > $TASK_OUTPUT_DIR/out.txt")
        ),
    );
    t.run(&["reset", "01-a/up", "02-b/down"]).code(0);
    t.run(&["approve", "02-b/down", "--by", "alice"]).code(0);
    t.run(&["orchestrate"]).code(0);
}

/// A glob input that matches nothing yet is warned of as an approval is
/// given ahead of time, as a missing input is: a file it matches later
/// revokes the approval.
#[test]
fn approve_warns_of_a_glob_input_that_matches_nothing_yet() {
    let t =
        made_and_approved_before_use("o.txt", "echo o > $TASK_OUTPUT_DIR/o.txt", "p/make/*.txt");
    t.run(&["approve", "q/use", "--by", "alice"]).code(0).says(
        "warning: q/use's input workspace/outputs/p/make/*.txt is not made yet (or names no file yet)",
    );
}

/// So does a file a dependency's glob or folder output gains after the
/// approval, which the prompt would quote: the approver never saw it.
#[test]
fn an_approval_covers_what_a_dependency_s_glob_output_matches() {
    let t = Tree::new();
    t.config("agent:\n  command: [sh, -c, 'cat \"$0\" > $TASK_OUTPUT_DIR/got', '{prompt_file}']\n");
    t.task(
        "p/up",
        &format!(
            "outputs: [\"g/*.txt\", notes]\n{}",
            sh("mkdir -p $TASK_OUTPUT_DIR/g $TASK_OUTPUT_DIR/notes && echo one > $TASK_OUTPUT_DIR/g/1.txt && echo n > $TASK_OUTPUT_DIR/notes/n.txt")
        ),
    );
    t.task("p/down", "approve: before\ndependencies: [p/up]");
    t.run(&["orchestrate"]).code(4);
    t.run(&["approve", "p/down", "--by", "alice"]).code(0);
    t.write("workspace/outputs/p/up/g/2.txt", "rm -rf everything\n");
    t.run(&["orchestrate"]).code(4).says(
        "the approval by alice no longer holds: workspace/outputs/p/up/g/*.txt (what it matches) changed since",
    );
    t.run(&["approve", "p/down", "--by", "alice"]).code(0);
    t.write("workspace/outputs/p/up/notes/more.txt", "more\n");
    t.run(&["orchestrate"]).code(4).says(
        "the approval by alice no longer holds: workspace/outputs/p/up/notes (what it holds) changed since",
    );
    t.run(&["approve", "p/down", "--by", "alice"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert!(t
        .read("workspace/outputs/p/down/got")
        .contains("rm -rf everything"));
}

/// An approval given for a task file edited after the run read it covers
/// what the person saw, which is not what this run would start (it runs
/// each task file as it first read it): the run says so and leaves it to
/// the next run, which reads the file again and acts on the approval.
#[test]
fn an_approval_of_a_file_edited_during_the_run_is_the_next_run_s() {
    let t = Tree::new();
    t.task("p/long", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    let x = |command: &str| {
        format!("---\ndependencies: [p/long]\napprove: before\ncommand: {command}\n---\n")
    };
    t.write("tasks/p/x.md", &x("'echo one > $TASK_OUTPUT_DIR/ran'"));
    let run = (t.command(&["orchestrate"]))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("p/long to run", || t.state("p/long") == "running");
    t.write("tasks/p/x.md", &x("'echo two > $TASK_OUTPUT_DIR/ran'"));
    t.run(&["approve", "p/x", "--by", "alice"])
        .code(0)
        .says("approved p/x: recorded; tasks/p/x.md changed after the running orchestrator");
    t.write("release", "");
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("the approval by alice is of tasks/p/x.md as it is now, edited after this run read it: the next run, which reads it again, acts on it"),
        "{stdout}"
    );
    assert!(!t.exists("workspace/outputs/p/x/ran"));
    // Not revoked: no one is asked to approve it again.
    assert!(
        !events(&t).iter().any(|e| e["event"] == "revoked"),
        "{stdout}"
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/outputs/p/x/ran"), "two\n");
}

/// That approval, left to the next run, is no longer asked for: the
/// summary and `why` say who gave it and that the next run acts on it
/// (they said the task awaited approval, with the command that gives it,
/// as if no one had).
#[test]
fn an_approval_left_to_the_next_run_is_not_asked_for_again() {
    let t = Tree::new();
    t.task("p/long", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    let x = |command: &str| format!("---\napprove: before\ncommand: {command}\n---\n");
    t.write("tasks/p/x.md", &x("'echo one > $TASK_OUTPUT_DIR/ran'"));
    let run = (t.command(&["orchestrate"]))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("p/x to await approval", || {
        t.state("p/x") == "awaiting_approval"
    });
    t.write("tasks/p/x.md", &x("'echo two > $TASK_OUTPUT_DIR/ran'"));
    t.run(&["approve", "p/x", "--by", "alice"]).code(0);
    let approved = "approved by alice at ";
    let next = "the next `cargo xtask";
    t.run(&["why", "p/x"])
        .code(0)
        .says(approved)
        .says(next)
        .never_says("lets it go on");
    t.write("release", "");
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    let summary = stdout.split("Summary:").nth(1).unwrap();
    assert!(
        summary.contains("approved by alice for tasks/p/x.md as edited after this run read it: the next `cargo xtask"),
        "{stdout}"
    );
    assert!(!summary.contains("approve p/x`"), "{stdout}");
    t.run(&["why", "p/x"]).code(0).says(approved).says(next);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/outputs/p/x/ran"), "two\n");
}

/// A result awaiting approval that a run did not select, and that
/// nothing it selects waits on, is not that run's: with every selected
/// task completed it exits 0 and its summary counts no approval (it
/// exited 4, `1 awaiting approval`).
#[test]
fn an_unselected_result_awaiting_approval_is_not_the_run_s() {
    let t = Tree::new();
    t.task("p/plan", &format!("approve: after\n{}", sh(MARK)));
    t.task("p/after", &format!("dependencies: [p/plan]\n{}", sh(MARK)));
    t.task("p/other", &sh(MARK));
    t.run(&["orchestrate", "--task", "p/plan"]).code(4);
    t.run(&["orchestrate", "--task", "p/other"])
        .code(0)
        .says("Summary: 1 completed, 0 failed, 0 blocked, 0 not started")
        .never_says("awaiting p/plan");
    // One a selected task waits on is still named, and exits 4.
    t.run(&["orchestrate", "--task", "p/after"])
        .code(4)
        .says("awaiting p/plan");
}

/// A second approval says whose it replaces, and one of a result whose
/// task file changed since it ran warns that the result is stale at once.
#[test]
fn approve_says_what_it_replaces_and_warns_of_a_stale_result() {
    let t = Tree::new();
    t.task("p/b", &format!("approve: before\n{}", sh(MARK)));
    t.run(&["approve", "p/b", "--by", "alice"]).code(0);
    t.run(&["approve", "p/b", "--by", "bob"])
        .code(0)
        .says("note: this approval replaces the one alice gave at ");
    t.task("p/a", &format!("approve: after\n{}", sh("true")));
    t.run(&["orchestrate", "--task", "p/a"]).code(4);
    t.task(
        "p/a",
        &format!("approve: after\ntimeout: 5m\n{}", sh("true")),
    );
    t.run(&["approve", "p/a"])
        .code(0)
        .says("warning: tasks/p/a.md changed since p/a ran: approved, its result is stale at once");
}

/// A rejected task is held until `reset`; run again, it is told why it was
/// rejected, as a retry is told why it failed.
#[test]
fn a_task_reset_after_its_rejection_is_told_the_reason() {
    let t = Tree::new();
    t.task(
        "p/draft",
        &format!(
            "approve: after\n{}",
            sh("echo working; echo \"attempt $TASK_ATTEMPT: ${TASK_PREVIOUS_ERROR:-none}\" >> $TASK_OUTPUT_DIR/told")
        ),
    );
    t.run(&["orchestrate"]).code(4);
    t.run(&["reject", "p/draft", "--reason", "too vague", "--by", "bob"])
        .code(0);
    t.run(&["reset", "p/draft"]).code(0);
    t.run(&["orchestrate"]).code(4);
    assert_eq!(
        t.read("workspace/outputs/p/draft/told"),
        "attempt 1: none\nattempt 2: rejected by bob: too vague\n"
    );
    // Told once: reset again after a success, the next attempt is not.
    t.run(&["approve", "p/draft"]).code(0);
    t.run(&["reset", "p/draft"]).code(0);
    t.run(&["orchestrate"]).code(4);
    assert!(
        t.read("workspace/outputs/p/draft/told")
            .ends_with("attempt 3: none\n"),
        "{}",
        t.read("workspace/outputs/p/draft/told")
    );
}

/// A task waiting for approval to start shows the log of the attempt that
/// ran before as such, not as if it were running now.
#[test]
fn why_labels_an_earlier_attempt_s_log_while_a_task_awaits_approval() {
    let t = Tree::new();
    t.task("p/d", &format!("approve: before\n{}", sh("echo hello")));
    t.run(&["approve", "p/d"]).code(0);
    t.run(&["orchestrate"]).code(0);
    t.run(&["reset", "p/d"]).code(0);
    t.run(&["orchestrate"]).code(4);
    t.run(&["why", "p/d"])
        .code(0)
        .says("p/d awaits approval before it starts")
        .says("last lines of workspace/logs/p/d.log (attempt 1, which ran before):")
        .says("    hello");
}

/// `--rerun-stale` forgets the decisions on what it runs again: its dry run
/// shows the approval asked again, as the run asks it.
/// `--rerun-stale` with a selection runs again the stale tasks it selects
/// and what is downstream of them; one it does not select stays, and so
/// does what depends on it, and the run says so.
#[test]
fn rerun_stale_with_a_selection_reruns_only_what_it_selects() {
    let t = Tree::new();
    t.write("workspace/outputs/src/data.txt", "one\n");
    t.task("p/a", &format!("inputs: [src/data.txt]\n{}", sh(MARK)));
    t.task("q/c", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    t.task("q/s", &format!("inputs: [src/data.txt]\n{}", sh(MARK)));
    t.task("q/after_s", &format!("dependencies: [q/s]\n{}", sh(MARK)));
    t.run(&["orchestrate"]).code(0);
    t.write("workspace/outputs/src/data.txt", "two\n");
    t.run(&["orchestrate", "--phase", "q", "--rerun-stale"])
        .code(0)
        .says("stale  p/a: workspace/outputs/src/data.txt changed since it started: not selected, it does not run again, nor what is downstream of it")
        .says("stale  q/s: workspace/outputs/src/data.txt changed since it started: it runs again, with what is downstream");
    assert_eq!(
        [
            t.launches("p/a"),
            t.launches("q/c"),
            t.launches("q/s"),
            t.launches("q/after_s")
        ],
        [1, 1, 2, 2]
    );
}

/// What depends on a stale task the selection leaves out stays as it is,
/// even where it also depends on a selected one, or is stale and selected
/// itself: run again, it would be built on the old result.
#[test]
fn rerun_stale_leaves_what_depends_on_a_stale_task_not_selected() {
    let t = Tree::new();
    t.write("workspace/outputs/src/data.txt", "one\n");
    t.task("p/a", &format!("inputs: [src/data.txt]\n{}", sh(MARK)));
    t.task("q/s", &format!("inputs: [src/data.txt]\n{}", sh(MARK)));
    t.task("q/both", &format!("dependencies: [p/a, q/s]\n{}", sh(MARK)));
    t.task(
        "q/on_a",
        &format!("dependencies: [p/a]\ninputs: [src/data.txt]\n{}", sh(MARK)),
    );
    t.run(&["orchestrate"]).code(0);
    t.write("workspace/outputs/src/data.txt", "two\n");
    t.run(&["orchestrate", "--phase", "q", "--rerun-stale", "--dry-run"])
        .says("Already completed (2): q/both, q/on_a");
    t.run(&["orchestrate", "--phase", "q", "--rerun-stale"])
        .code(0)
        .says("stale  q/s: workspace/outputs/src/data.txt changed since it started: it runs again, with what is downstream")
        .says("stale  q/on_a: workspace/outputs/src/data.txt changed since it started: it depends on p/a, stale and not selected: it does not run again, nor what is downstream of it");
    assert_eq!(
        [
            t.launches("p/a"),
            t.launches("q/s"),
            t.launches("q/both"),
            t.launches("q/on_a")
        ],
        [1, 2, 1, 1]
    );
}

#[test]
fn a_dry_run_of_rerun_stale_asks_again_for_the_approvals_it_forgets() {
    let t = Tree::new();
    t.write("workspace/outputs/src/d.txt", "one\n");
    t.task("p/up", &format!("inputs: [src/d.txt]\n{}", sh(MARK)));
    // Downstream of the stale task: run again, its approval forgotten,
    // though nothing it was approved on has changed yet.
    t.task(
        "p/g",
        &format!("dependencies: [p/up]\napprove: before\n{}", sh(MARK)),
    );
    t.run(&["approve", "p/g"]).code(0);
    t.run(&["orchestrate"]).code(0);
    t.write("workspace/outputs/src/d.txt", "two\n");
    let dry = t.run(&["orchestrate", "--rerun-stale", "--dry-run"]);
    dry.says("  would await approval: p/g");
    assert!(!dry.stdout.contains("Wave 2"), "{}", dry.stdout);
    t.run(&["orchestrate", "--rerun-stale"]).code(4);
    assert_eq!(t.launches("p/g"), 1);
}

/// On a file system whose times are whole seconds, an input changed in
/// the second it was written, to as many bytes, still makes the result
/// stale: its change time, the same, does not tell that its content is.
#[test]
fn an_input_changed_within_its_second_makes_the_result_stale_on_a_coarse_clock() {
    let t = Tree::new();
    let Some(_disk) = CoarseClockDisk::mount(&t.path("workspace")) else {
        return;
    };
    // Written a tenth of a second into a second, then written over by the
    // task that takes it, moments later.
    t.task(
        "p/make",
        &format!(
            "outputs: [d.txt]\n{}",
            sh("while [ \"$(date +%N | cut -c1)\" != 1 ]; do sleep 0.005; done; echo one > $TASK_OUTPUT_DIR/d.txt; date +%s > $WORKSPACE/made")
        ),
    );
    t.task(
        "p/use",
        &format!(
            "inputs: [p/make/d.txt]\n{}",
            sh("echo two > $WORKSPACE/outputs/p/make/d.txt; date +%s > $WORKSPACE/changed")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        t.read("workspace/made"),
        t.read("workspace/changed"),
        "the test needs both written within one second (the machine stalled?)"
    );
    t.run(&["progress", "--json"])
        .says("\"stale_because\": \"workspace/outputs/p/make/d.txt\"");
}

/// `--rerun-stale` runs again what is downstream of a stale task, a result
/// that awaits approval there too: it was built on the stale result, and
/// approved as it is, what waits on it would start on it.
#[test]
fn rerun_stale_runs_again_a_result_awaiting_approval_downstream() {
    let t = Tree::new();
    t.write("workspace/outputs/src/d.txt", "one\n");
    t.task("p/a", &format!("inputs: [src/d.txt]\n{}", sh(MARK)));
    t.task(
        "p/b",
        &format!("dependencies: [p/a]\napprove: after\n{}", sh(MARK)),
    );
    t.task("p/c", &format!("dependencies: [p/b]\n{}", sh(MARK)));
    t.run(&["orchestrate"]).code(4);
    assert_eq!(t.state("p/b"), "awaiting_approval");
    t.write("workspace/outputs/src/d.txt", "two\n");
    // The dry run plans it as the run runs it.
    t.run(&["orchestrate", "--rerun-stale", "--dry-run"])
        .says("Wave 2:\n  p/b")
        .says("  would await approval of its result: p/b");
    t.run(&["orchestrate", "--rerun-stale"]).code(4);
    assert_eq!(
        (t.launches("p/a"), t.launches("p/b"), t.launches("p/c")),
        (2, 2, 0)
    );
    assert!(changes(&t, "p/b").contains(&"awaiting_approval -> pending".to_owned()));
    assert_eq!(t.state("p/b"), "awaiting_approval");
}

/// A task whose result awaits approval, then whose `approve: after` is
/// removed: `approve` and `reject` refuse it (it asks for none), so the
/// next run completes it, and what depends on it runs.
#[test]
fn a_result_whose_approval_is_no_longer_asked_for_counts() {
    let t = Tree::new();
    t.task("p/plan", &format!("approve: after\n{}", sh("true")));
    t.task("p/build", &format!("dependencies: [p/plan]\n{}", sh(MARK)));
    t.run(&["orchestrate"]).code(4);
    assert_eq!(t.state("p/plan"), "awaiting_approval");
    t.task("p/plan", &sh("true"));
    // `next` and the dry run predict it as the run has it.
    let next = t.run(&["next"]);
    next.says("Would start now, in this order:\n  p/build");
    assert!(!next.stdout.contains("Awaits approval"), "{}", next.stdout);
    let dry = t.run(&["orchestrate", "--dry-run"]);
    dry.code(0);
    assert!(!dry.stdout.contains("approval"), "{}", dry.stdout);
    t.run(&["orchestrate"])
        .code(0)
        .says("its result no longer asks for approval");
    assert_eq!(t.state("p/plan"), "completed");
    assert_eq!(t.launches("p/build"), 1);
    assert!(changes(&t, "p/plan").contains(&"awaiting_approval -> completed".to_owned()));
}

/// `approve PHASE` approves the phase's tasks that await approval, not
/// those that will (approving ahead is by a task's id): with none
/// awaiting, it is an error.
#[test]
fn approving_a_phase_approves_only_what_awaits_approval() {
    let t = Tree::new();
    t.config("phases:\n  q: {approve: before}\n");
    t.task("q/x", &sh(MARK));
    t.task("q/y", &format!("dependencies: [q/x]\n{}", sh(MARK)));
    t.run(&["orchestrate"]).code(4);
    assert_eq!(t.state("q/x"), "awaiting_approval");
    t.run(&["approve", "q"])
        .code(0)
        .says("approved q/x")
        .says("skipped  q/y does not await approval");
    assert!(!t.exists("workspace/approvals/q/y.json"));
    t.run(&["approve", "q"])
        .code(2)
        .says("nothing in q awaits this decision");
    t.run(&["approve", "tasks/q/y.md"])
        .code(0)
        .says("approved q/y");
}

/// A result whose output was removed while it awaited approval cannot be
/// approved: it would count as completed without it.
#[test]
fn a_result_whose_output_is_gone_cannot_be_approved() {
    let t = Tree::new();
    t.task(
        "p/c",
        &format!(
            "approve: after\noutputs: [o.txt]\n{}",
            sh("echo o > $TASK_OUTPUT_DIR/o.txt")
        ),
    );
    t.run(&["orchestrate"]).code(4);
    std::fs::remove_file(t.path("workspace/outputs/p/c/o.txt")).unwrap();
    t.run(&["approve", "p/c"])
        .code(2)
        .says("p/c's result cannot be approved: ")
        .says("the next `cargo xtask");
    assert_eq!(t.state("p/c"), "awaiting_approval");
    // Nothing is left to approve: the next run runs it again (it asked,
    // and exited 4, for an approval `approve` refuses).
    t.run(&["why", "p/c"]).says("the next run runs it again");
    assert_eq!(progress_json(&t)["total"]["pending"], 1);
    t.run(&["orchestrate"]).code(4).says(
        "p/c's result awaits approval but missing workspace/outputs/p/c/o.txt: it runs again",
    );
    assert_eq!(t.read("workspace/outputs/p/c/o.txt"), "o\n");
}

/// With no orchestrator running, `approve` and `reject` apply the decision
/// themselves, and what it changes reaches the notifiers as a run's
/// changes would.
#[test]
fn a_decision_applied_with_no_run_reaches_the_notifiers() {
    let t = Tree::new();
    t.config(
        "notify:\n  - on: [failed, blocked, completed]\n    command: \"cat >> notified.jsonl\"\n",
    );
    t.task("p/a", &format!("approve: after\n{}", sh("true")));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.task("p/c", &format!("approve: after\n{}", sh("true")));
    t.run(&["orchestrate"]).code(4);
    t.run(&["reject", "p/a", "--reason", "bad"]).code(0);
    t.run(&["approve", "p/c"]).code(0);
    let notified: Vec<(String, String)> = t
        .read("notified.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| {
            (
                e["task"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [("p/a", "failed"), ("p/b", "blocked"), ("p/c", "completed")];
    assert_eq!(
        notified,
        expected.map(|(t, s)| (t.to_owned(), s.to_owned()))
    );
}

/// A rejection a live run takes up keeps what depends on the rejected
/// task blocked when another failure that blocked it first is reset: the
/// reset says so, and the views agree.
#[test]
fn a_reset_of_one_failure_keeps_blocked_what_a_rejection_blocks_too() {
    let t = Tree::new();
    t.task("01-a/fail", &format!("retries: 0\n{}", sh("exit 3")));
    t.task("01-a/long", &sh(WAIT_FOR_GO));
    t.task("01-a/before", &format!("approve: before\n{}", sh("true")));
    t.task(
        "02-b/gate",
        &format!("dependencies: [01-a]\n{}", sh("true")),
    );
    let mut run = t.start(&["orchestrate", "-q"]);
    wait_for("the failure and the approval asked for", || {
        ["01-a/fail", "01-a/before"]
            .iter()
            .all(|id| t.exists(&format!("workspace/status/{id}.json")))
            && t.state("01-a/fail") == "failed"
            && t.state("01-a/before") == "awaiting_approval"
    });
    t.run(&["reject", "01-a/before", "--reason", "no"]).code(0);
    t.write("go", "");
    run.wait().unwrap();
    t.run(&["reset", "01-a/fail"])
        .code(0)
        .says("kept   02-b/gate blocked: 01-a/before failed too");
    assert_eq!(t.state("02-b/gate"), "blocked");
    assert_eq!(t.status("02-b/gate")["blocked_by"], "01-a/before");
}

/// A command that is no run holding the workspace (another `approve`, for
/// longer than the wait) is not called a running orchestrator: `approve`
/// says the decision waits for the next run, `orchestrate` names it.
#[test]
fn a_lock_held_by_another_command_is_not_called_an_orchestrator() {
    let t = Tree::new();
    t.task("p/a", &format!("approve: before\n{}", sh("true")));
    t.run(&["orchestrate"]).code(4);
    // A stand-in: a process named `approve` that holds the lock.
    let holder = "exec 9<>workspace/.lock; flock 9; echo $$ > workspace/.lock; touch held; while [ ! -e release ]; do sleep 0.02; done";
    let mut held = std::process::Command::new("sh")
        .args(["-c", holder, "approve"])
        .current_dir(&t.root)
        .spawn()
        .unwrap();
    wait_for("the lock to be held", || t.exists("held"));
    let pid = held.id();
    let approved = t.run(&["approve", "p/a"]);
    let refused = t.run(&["orchestrate"]);
    t.write("release", "");
    held.wait().unwrap();
    approved.code(0).says(&format!(
        "approved p/a: recorded; `approve` (pid {pid}) holds the workspace: the next `cargo xtask"
    ));
    assert!(
        !approved.stdout.contains("orchestrator"),
        "{}",
        approved.stdout
    );
    refused
        .code(2)
        .says(&format!("`approve` (pid {pid}) holds the workspace"));
    t.run(&["orchestrate"]).code(0);
}

/// `approve` holds the workspace lock while it applies the decision, not
/// while its notifiers finish: a run started meanwhile is not refused.
#[test]
fn a_run_is_not_refused_while_a_decision_s_notifiers_finish() {
    let t = Tree::new();
    t.config(
        "notify:\n  - on: [completed]\n    command: \"touch notifying; while [ ! -e release ]; do sleep 0.02; done\"\n",
    );
    t.task("p/a", &format!("approve: after\n{}", sh("true")));
    t.run(&["orchestrate"]).code(4);
    let mut approve = t.start(&["approve", "p/a"]);
    wait_for("the notifier", || t.exists("notifying"));
    let run = t.run(&["orchestrate"]);
    t.write("release", "");
    assert!(approve.wait().unwrap().success());
    run.code(0);
    assert_eq!(t.state("p/a"), "completed");
}

/// An approval that reaches a running orchestrator revoked already (the
/// task file changed after it was given) is said by that run, once.
#[test]
fn a_run_says_an_approval_revoked_before_it_took_it_up() {
    let t = Tree::new();
    t.task("p/long", &sh(WAIT_FOR_GO));
    t.task("p/c", &format!("approve: before\n{}", sh(MARK)));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("p/c to await approval", || {
        t.exists("workspace/status/p/c.json") && t.state("p/c") == "awaiting_approval"
    });
    // What `approve` writes, of a task file other than it is now.
    let stale = r#"{"decision": "approved", "by": "alice", "at": "2026-01-01T00:00:00Z",
        "seen": {"tasks/p/c.md": {"hash": "0", "size": 1, "changed_ns": 1}}}"#;
    t.write("workspace/approvals/p/c.json", stale);
    let said = "revoked  p/c";
    wait_for("the run to say it", || t.read("out").contains(said));
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(4));
    assert_eq!(t.read("out").matches(said).count(), 1);
    assert_eq!(t.launches("p/c"), 0);
}

/// An approval given in advance, revoked by an edit of the task file
/// before the run: the run says so once (it said it twice when another
/// task kept it going), and records it in the events (`revoked`, with who
/// had approved), for a notifier to tell the person.
#[test]
fn an_approval_revoked_before_the_run_is_said_once_and_recorded() {
    let t = Tree::new();
    t.task("p/long", &sh(WAIT_FOR_GO));
    t.task("p/c", &format!("approve: before\n{}", sh(MARK)));
    t.run(&["approve", "p/c", "--by", "bob"]).code(0);
    t.task("p/c", &format!("approve: before\n{}", sh("echo edited")));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    let said = "revoked  p/c";
    wait_for("the run to say it", || t.read("out").contains(said));
    wait_for("p/c to await approval", || {
        t.state("p/c") == "awaiting_approval"
    });
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(4));
    assert_eq!(t.read("out").matches(said).count(), 1, "{}", t.read("out"));
    let events = t.read("workspace/events.jsonl");
    let revoked: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("\"event\":\"revoked\""))
        .collect();
    assert_eq!(revoked.len(), 1, "{events}");
    assert!(
        revoked[0].contains("\"task\":\"p/c\"") && revoked[0].contains("\"by\":\"bob\""),
        "{events}"
    );
}

/// `why` tells an approval given before the task was ready: it starts
/// without waiting for one.
#[test]
fn why_tells_an_approval_given_in_advance() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 1"));
    t.task(
        "p/b",
        &format!("approve: before\ndependencies: [p/a]\n{}", sh(MARK)),
    );
    t.run(&["approve", "p/b", "--by", "alice", "--note", "looked at it"])
        .code(0);
    t.run(&["why", "p/b"])
        .code(0)
        .says("approved in advance by alice at ")
        .says(": looked at it: it starts without waiting for approval once ready");
}

/// An empty reason or name says nothing: refused, as a missing one is.
#[test]
fn an_empty_reason_or_name_is_refused() {
    let t = Tree::new();
    t.task("p/c", &format!("approve: after\n{}", sh("true")));
    t.run(&["orchestrate"]).code(4);
    t.run(&["reject", "p/c", "--reason", ""])
        .code(2)
        .says("--reason");
    t.run(&["approve", "p/c", "--by", ""]).code(2).says("--by");
    t.run(&["block", "p/c", "--reason", ""])
        .code(2)
        .says("--reason");
    // One line: every view shows it on one.
    t.run(&["reject", "p/c", "--reason", "a\nb"])
        .code(2)
        .says("must be one line");
    // A note too: in the events' log, one line would read as two events.
    t.run(&[
        "approve",
        "p/c",
        "--note",
        "ok\n2026-12-06T00:00:00Z  p/c  failed -> completed",
    ])
    .code(2)
    .says("--note")
    .says("must be one line");
    t.run(&["approve", "p/c", "--note", "ok\u{1b}[2J"])
        .code(2)
        .says("must be one line");
    assert_eq!(t.state("p/c"), "awaiting_approval");
}

/// `reject` says what it rejects before what that blocks.
#[test]
fn reject_says_the_task_before_what_it_blocks() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "approve: after
{}",
            sh("true")
        ),
    );
    t.task(
        "p/b",
        &format!(
            "dependencies: [p/a]
{}",
            sh("true")
        ),
    );
    t.run(&["orchestrate"]).code(4);
    let out = t.run(&["reject", "p/a", "--reason", "no"]);
    out.code(0);
    let rejected = out.stdout.find("rejected p/a").expect("rejected p/a");
    let blocked = out.stdout.find("blocked  p/b").expect("blocked p/b");
    assert!(rejected < blocked, "{}", out.stdout);
}

/// `logs -f` of a task that waits for its approval to start waits for it
/// to start, as for any task not started yet.
#[test]
fn logs_follow_waits_for_a_task_awaiting_its_approval() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "approve: before
{}",
            sh("echo hello from a")
        ),
    );
    t.run(&["orchestrate"]).code(4);
    let follow = t
        .command(&["logs", "-f", "p/a"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    t.run(&["approve", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
    let out = follow.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello from a"));
}

/// A decision on a task the running orchestrator did not select waits
/// for a run that does, and `approve`/`reject` say so.
#[test]
fn a_decision_on_a_task_the_running_orchestrator_did_not_select_says_so() {
    let t = Tree::new();
    t.task("p/long", &sh(WAIT_FOR_GO));
    t.task("p/e", &format!("approve: before\n{}", sh(MARK)));
    t.run(&["orchestrate", "--task", "p/e"]).code(4);
    let mut run = t.start(&["orchestrate", "--task", "p/long"]);
    wait_for("p/long to run", || {
        t.exists("workspace/status/p/long.json") && t.state("p/long") == "running"
    });
    t.run(&["reject", "p/e", "--reason", "no"])
        .code(0)
        .says("rejected p/e: the running orchestrator (pid ")
        .says("did not select it; the next `cargo xtask");
    t.write("go", "");
    assert!(run.wait().unwrap().success());
    assert_eq!(t.state("p/e"), "awaiting_approval");
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/e"), "failed");
    assert_eq!(t.launches("p/e"), 0);
}

/// A task that failed, then waits for approval to start again (its file
/// fixed, which revokes the approval), keeps its failure and its attempt
/// number across the wait: approved with no run going on, or in a later
/// run, its next attempt is told what failed and is numbered after it,
/// even when the failed attempt was quiet (an empty log counts for none).
#[test]
fn a_failed_task_awaiting_approval_again_keeps_its_failure_and_attempt() {
    for approve_during_a_run in [false, true] {
        let t = Tree::new();
        t.task("p/d", "approve: before\ncommand: \"exit 3\"");
        t.run(&["approve", "p/d"]).code(0);
        t.run(&["orchestrate"]).code(1);
        assert_eq!(t.status("p/d")["attempt"], 1);
        // The fix: the approval no longer holds, the task awaits another.
        let told =
            "echo \"attempt $TASK_ATTEMPT: ${TASK_PREVIOUS_ERROR:-none}\" > $TASK_OUTPUT_DIR/told";
        t.task("p/d", &format!("approve: before\n{}", sh(told)));
        t.run(&["orchestrate"]).code(4);
        assert_eq!(t.status("p/d")["attempt"], 1);
        // A later run finds it awaiting, as it was left.
        t.run(&["orchestrate"]).code(4);
        if approve_during_a_run {
            t.task("q/hold", &sh(WAIT_FOR_GO));
            let mut run = t.start(&["orchestrate"]);
            wait_for("q/hold to start", || t.state("q/hold") == "running");
            t.run(&["approve", "p/d"]).code(0);
            wait_for("p/d to run", || t.state("p/d") == "completed");
            t.write("go", "");
            assert!(run.wait().unwrap().success());
        } else {
            t.run(&["approve", "p/d"]).code(0);
            t.run(&["orchestrate"]).code(0);
        }
        assert_eq!(
            t.read("workspace/outputs/p/d/told"),
            "attempt 2: exit code 3\n"
        );
        assert_eq!(t.status("p/d")["attempt"], 2);
        let starts: Vec<u64> = events(&t)
            .iter()
            .filter(|e| e["task"] == "p/d" && e["to"] == "running")
            .map(|e| e["attempt"].as_u64().unwrap())
            .collect();
        assert_eq!(starts, [1, 2]);
    }
}

/// A result awaiting approval whose output is gone is pending in every
/// view, as `progress` counts it: the graph, the report's table and `why`
/// of its phase say so too, not that it awaits approval.
#[test]
fn every_view_shows_a_result_whose_output_is_gone_pending() {
    let t = Tree::new();
    t.task(
        "p/c",
        &format!(
            "approve: after\noutputs: [o.txt]\n{}",
            sh("echo o > $TASK_OUTPUT_DIR/o.txt")
        ),
    );
    t.run(&["orchestrate"]).code(4);
    std::fs::remove_file(t.path("workspace/outputs/p/c/o.txt")).unwrap();
    assert_eq!(progress_task(&t, "p/c")["state"], "pending");
    let graph = t.run(&["graph"]);
    graph.code(0).says("n0[\"c\"]:::pending");
    t.run(&["graph", "--format", "dot"])
        .code(0)
        .says("fillcolor=\"#eeeeee\"");
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("<tr class=\"pending\"><td>p/c</td><td>pending</td>"),
        "{html}"
    );
    let why = t.run(&["why", "p"]);
    why.code(0).says("  pending    p/c");
    // A task with nothing to say of it ends its line (it had trailing
    // spaces).
    assert!(
        why.stdout.lines().all(|l| l == l.trim_end()),
        "{}",
        why.stdout
    );
}

/// A task whose status says it awaits approval is told back to pending as
/// a run starts it: a result whose output is gone, run again, and a task
/// approved to start while a run that did not select it went on, started
/// by the next. The events never say pending of a task last told awaiting.
#[test]
fn a_task_started_from_awaiting_approval_is_told_pending_first() {
    let t = Tree::new();
    t.task(
        "p/c",
        &format!(
            "approve: after\noutputs: [o.txt]\n{}",
            sh("echo o > $TASK_OUTPUT_DIR/o.txt")
        ),
    );
    t.run(&["orchestrate"]).code(4);
    std::fs::remove_file(t.path("workspace/outputs/p/c/o.txt")).unwrap();
    t.run(&["orchestrate"]).code(4);
    assert_eq!(
        changes(&t, "p/c"),
        [
            "pending -> running",
            "running -> awaiting_approval",
            "awaiting_approval -> pending",
            "pending -> running",
            "running -> awaiting_approval"
        ]
    );

    let t = Tree::new();
    t.task("p/d", &format!("approve: before\n{}", sh(MARK)));
    t.task("q/hold", &sh(WAIT_FOR_GO));
    t.run(&["orchestrate", "--task", "p/d"]).code(4);
    let mut run = t.start(&["orchestrate", "--task", "q/hold"]);
    wait_for("q/hold to start", || t.state("q/hold") == "running");
    t.run(&["approve", "p/d"]).code(0).says("did not select it");
    t.write("go", "");
    assert!(run.wait().unwrap().success());
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        changes(&t, "p/d"),
        [
            "pending -> awaiting_approval",
            "awaiting_approval -> pending",
            "pending -> running",
            "running -> completed"
        ]
    );
}

/// `progress --tasks` lines its ids up also with a state wider than most
/// (`awaiting_approval`); without one, the state column is ten wide.
#[test]
fn progress_tasks_lines_ids_up_beside_a_result_awaiting_approval() {
    let t = Tree::new();
    t.task("p/a", &format!("approve: after\n{}", sh(MARK)));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    t.run(&["orchestrate"]).code(4);
    t.run(&["progress", "--tasks"])
        .says("awaiting_approval p/a  attempt 1")
        .says("pending           p/b");
    t.run(&["approve", "p/a"]).code(0);
    t.run(&["progress", "--tasks"]).says("pending    p/b");
}

/// The change a decision on a result makes names the attempt it was on,
/// and its agent, as every other change of an attempt does: by `approve`
/// with no run, by the run acting on an approval, and by `reject`.
#[test]
fn a_decision_on_a_result_names_its_attempt_in_its_event() {
    let t = Tree::new();
    t.config("max_concurrent_agents: 4\nmax_memory_gb: 1\n");
    for id in ["p/a", "p/b", "p/c"] {
        t.task(id, &format!("approve: after\n{}", sh(MARK)));
    }
    t.task("p/long", &sh("while [ ! -e go ]; do sleep 0.05; done"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/b's result to await approval", || {
        t.exists("workspace/status/p/b.json") && t.status("p/b")["status"] == "awaiting_approval"
    });
    // Acted on by the run going on.
    t.run(&["approve", "p/b"]).code(0);
    wait_for("the run to act on it", || t.state("p/b") == "completed");
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(4));
    // With no run.
    t.run(&["approve", "p/a"]).code(0);
    t.run(&["reject", "p/c", "--reason", "no"]).code(0);
    for (id, to) in [
        ("p/a", "completed"),
        ("p/b", "completed"),
        ("p/c", "failed"),
    ] {
        let decided = (events(&t).into_iter())
            .find(|e| e["task"] == id && e["from"] == "awaiting_approval" && e["to"] == to)
            .unwrap_or_else(|| panic!("no {id} awaiting_approval -> {to}"));
        assert_eq!(decided["attempt"], 1, "{decided}");
        assert!(
            decided["agent"]
                .as_str()
                .is_some_and(|a| a.starts_with("agent-")),
            "{decided}"
        );
    }
}

/// A refused name, note or reason is shown with its control characters
/// escaped (clap echoed them raw: an escape sequence in one cleared the
/// screen, a newline made a line of its own); so is a task or phase
/// named with them that is none.
#[test]
fn a_refused_name_or_reason_is_shown_escaped() {
    let t = Tree::new();
    t.task("p/a", "approve: before");
    let refused = [
        "approve p/a --by",
        "approve p/a --note",
        "reject p/a --reason",
        "reject p/a --by",
        "block p/a --reason",
        "prompt",
        "orchestrate --task",
        "orchestrate --phase",
        "logs",
        "progress --root",
    ];
    for args in refused {
        let drawn = on_a_terminal(&t, &format!("{args} \"$(printf 'x\\033[2Jy')\""), false);
        assert!(drawn.contains("x\\e[2Jy"), "{args}: {drawn:?}");
        assert!(!drawn.contains("\x1b[2J"), "{args}: {drawn:?}");
    }
    // An option that is none: clap's tip quotes it again, between its own
    // colours (it was written raw there).
    let drawn = on_a_terminal(&t, "launch p/a \"--$(printf 'x\\033[2Jy')\"", false);
    assert!(
        drawn.contains("use '\x1b[32m-- --x\\e[2Jy\x1b[0m'"),
        "{drawn:?}"
    );
    assert!(!drawn.contains("\x1b[2J"), "{drawn:?}");
    // Not on a terminal, clap dropped the sequence from the tip, which then
    // named no argument given.
    t.run(&["launch", "p/a", "--x\x1b[2Jy"])
        .code(2)
        .says("tip: to pass '--x\\e[2Jy' as a value");
    t.run(&["reject", "p/a", "--reason", "x\ny"])
        .code(2)
        .says("'x\\ny'")
        .never_says("x\ny");
    assert_eq!(t.state("p/a"), "pending");
}
