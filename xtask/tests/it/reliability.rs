//! Faults injected for real: a killed orchestrator, a second one, signals.

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use crate::tree::*;

/// An orchestrator whose one task runs until the file `release` appears.
fn orchestrator_holding_the_lock(t: &Tree) -> std::process::Child {
    t.task(
        "p/wait",
        &sh("touch started; while [ ! -f release ]; do sleep 0.05; done"),
    );
    let first = t.start(&["orchestrate"]);
    wait_for("the first orchestrator's task to start", || {
        t.exists("started")
    });
    first
}

#[test]
fn a_second_orchestrator_is_refused_naming_the_holder() {
    let t = Tree::new();
    let mut first = orchestrator_holding_the_lock(&t);
    t.run(&["orchestrate"]).code(2).says(&format!(
        "another orchestrator (pid {}) is running",
        first.id()
    ));
    t.run(&["launch", "p/wait"])
        .code(2)
        .says("another orchestrator");
    // Readers take no lock.
    t.run(&["progress"]).code(0).says("Running: 1");
    t.run(&["why", "p/wait"]).code(0).says("is running");
    t.write("release", "");
    assert!(first.wait().unwrap().success());
}

#[test]
fn a_run_whose_lock_file_was_removed_still_keeps_a_second_one_out() {
    // Taken for a stale lock (as Snakemake's are), the file is removed:
    // the run holds the lock of the removed file all the same.
    let t = Tree::new();
    let mut first = orchestrator_holding_the_lock(&t);
    std::fs::remove_file(t.path("workspace/.lock")).unwrap();
    let said = format!("another orchestrator (pid {}) is running", first.id());
    t.run(&["orchestrate"]).code(2).says(&said);
    t.run(&["reset", "p/wait"]).code(2).says(&said);
    t.run(&["progress"]).code(0).says("Running: 1");
    t.run(&["why", "p/wait"]).code(0).says("is running");
    t.write("release", "");
    assert!(first.wait().unwrap().success());
    t.run(&["orchestrate"]).code(0).says("Summary: 1 completed");
}

/// A script that serialises its commands with `flock` on the project's
/// folder (`flock . cargo xtask orchestrate`) holds the folder's `flock`,
/// beside the lock every run takes on it so that it need not read the
/// kernel's list of locks: its run runs all the same, and with its lock
/// file removed still keeps a second run out.
#[test]
fn a_run_under_flock_of_its_root_runs_and_still_keeps_a_second_one_out() {
    let t = Tree::new();
    t.task(
        "p/wait",
        &sh("touch started; while [ ! -f release ]; do sleep 0.05; done"),
    );
    let mut first = std::process::Command::new("flock")
        .arg(&t.root)
        .arg(BIN)
        .arg("--root")
        .arg(&t.root)
        .arg("orchestrate")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first orchestrator's task to start", || {
        t.exists("started")
    });
    std::fs::remove_file(t.path("workspace/.lock")).unwrap();
    t.run(&["orchestrate"])
        .code(2)
        .says("another orchestrator (pid ");
    t.write("release", "");
    assert!(first.wait().unwrap().success());
    t.run(&["orchestrate"]).code(0).says("Summary: 1 completed");
}

/// The lock a run takes on the project's folder, beside the workspace's,
/// is none a `flock` of that folder waits for: a task (or a script beside
/// the run) that serialises its work with `flock .` gets it. It waited
/// for the run's end (here `-n`: it failed at once).
#[test]
fn a_flock_of_the_root_is_not_held_by_a_run() {
    let t = Tree::new();
    t.task("p/a", &sh("flock -n . echo free > flocked"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("flocked"), "free\n");
}

/// A user's limit of processes and threads (`ulimit -u`, which root is
/// not held to) reached at any point of a run: no panic (the supervisor's
/// took its run down), and what could not start says what to do.
#[test]
fn a_limit_of_processes_reached_fails_what_cannot_start_and_says_why() {
    if !as_root() {
        return;
    }
    let t = Tree::new();
    for i in 0..10 {
        t.task(&format!("p/t{i}"), &sh("sleep 0.2"));
    }
    // A user of its own: the limit counts every process of the user.
    let uid = "4242";
    let owned = std::process::Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(&t.root)
        .status()
        .unwrap();
    assert!(owned.success());
    let mut hints = 0;
    for limit in (2..=30).step_by(2) {
        let _ = std::fs::remove_dir_all(t.path("workspace"));
        let script = format!("ulimit -u {limit} && exec \"$0\" --root \"$1\" orchestrate -j 10");
        let run: Run = std::process::Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
            ])
            .args(["bash", "-c", &script, BIN])
            .arg(&t.root)
            .output()
            .unwrap()
            .into();
        let said = run.said();
        assert!(!said.contains("panicked"), "ulimit -u {limit}:\n{said}");
        // 2: what the run needs to start could not (said, with the hint).
        assert!(matches!(run.code, 0..=2), "ulimit -u {limit}:\n{said}");
        hints += usize::from(said.contains("at their limit (`ulimit -u`): raise it"));
    }
    assert!(hints > 0, "no run was held by the limit");
}

/// A workspace an earlier run as root left (sudo): a user's run says
/// whose files they are and how to make them theirs.
#[test]
fn a_workspace_left_by_a_run_as_root_says_how_to_make_it_yours() {
    if !as_root() {
        return;
    }
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    let owned = std::process::Command::new("chown")
        .args(["-R", "nobody"])
        .arg(t.path("tasks"))
        .status()
        .unwrap();
    assert!(owned.success());
    t.run_as_nobody_on_root_s_files(&["orchestrate"])
        .code(2)
        .says("files are another user's")
        .says("sudo chown -R \"$USER\" ");
}

#[test]
fn a_lock_left_by_a_killed_orchestrator_blocks_nobody() {
    let t = Tree::new();
    let mut first = orchestrator_holding_the_lock(&t);
    first.kill().unwrap();
    first.wait().unwrap();
    t.write("release", "");
    // No --unlock: the next run takes over at once.
    t.run(&["orchestrate"]).code(0).says("Summary: 1 completed");
}

/// Spawns `orchestrate` with its output going to `out` (read while it runs).
fn spawn_orchestrate(t: &Tree, out: &str) -> std::process::Child {
    spawn_orchestrate_with(t, out, &[])
}

/// `spawn_orchestrate`, given `args` after `orchestrate`.
fn spawn_orchestrate_with(t: &Tree, out: &str, args: &[&str]) -> std::process::Child {
    let file = std::fs::File::create(t.path(out)).unwrap();
    t.command(&[&["orchestrate"], args].concat())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap()
}

/// A task that records its pid, then waits for the file `release-<name>`.
fn waiting_task(name: &str, then: &str) -> String {
    sh(&format!(
        "{MARK}; echo $$ > $TASK_OUTPUT_DIR/pid; while [ ! -f release-{name} ]; do sleep 0.02; done; {then}"
    ))
}

#[test]
fn a_killed_orchestrator_loses_nothing_and_starts_nothing_twice() {
    let t = Tree::new();
    t.task("p/fails", &waiting_task("fails", "exit 3"));
    t.task(
        "p/works",
        &format!(
            "outputs: [out]\n{}",
            waiting_task("works", "echo ok > $TASK_OUTPUT_DIR/out")
        ),
    );
    t.task("p/after", &format!("dependencies: [p/works]\n{}", sh(MARK)));
    let mut first = spawn_orchestrate(&t, "first.out");
    wait_for("both tasks to start", || {
        t.launches("p/fails") == 1 && t.launches("p/works") == 1
    });
    wait_for("both running statuses", || {
        t.state("p/fails") == "running" && t.state("p/works") == "running"
    });
    // Each writes its pid just after its mark: wait for the whole line.
    wait_for("both pids", || {
        ["fails", "works"]
            .iter()
            .all(|n| pid_written(&t, &format!("workspace/outputs/p/{n}/pid")))
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let pids =
        ["fails", "works"].map(|n| read_pid(&t.path(&format!("workspace/outputs/p/{n}/pid"))));
    assert!(
        pids.iter().all(|&p| alive(p)),
        "tasks died with the orchestrator"
    );
    // Its supervisor, left with running tasks, says it handed them over.
    let supervisor = t.status("p/works")["supervisor_pid"].as_u64().unwrap();
    let marked = |name: &str| name.starts_with(&format!(".handed-over-{supervisor}-"));
    wait_for("the supervisor's hand-over mark", || {
        std::fs::read_dir(t.path("workspace/pids"))
            .map(|dir| {
                dir.flatten()
                    .any(|e| marked(&e.file_name().to_string_lossy()))
            })
            .unwrap_or(false)
    });

    // One task ends while no orchestrator is alive; its exit code must survive.
    t.write("release-fails", "");
    wait_for("the task to end", || !alive(pids[0]));
    let mut second = spawn_orchestrate(&t, "second.out");
    wait_for("the adoption", || {
        t.read("second.out").contains("adopt    p/works")
    });
    t.write("release-works", "");
    let code = second.wait().unwrap().code();
    let out = t.read("second.out");
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(t.status("p/fails")["exit_code"], 3, "{out}");
    assert_eq!(t.status("p/fails")["error"], "exit code 3");
    assert_eq!(t.state("p/works"), "completed", "{out}");
    assert_eq!(t.status("p/works")["outputs_validated"], true);
    assert_eq!(
        (
            t.launches("p/fails"),
            t.launches("p/works"),
            t.launches("p/after")
        ),
        (1, 1, 1)
    );
}

/// A task that ended while no orchestrator was alive gets its duration to
/// the millisecond, as one seen ending does (not in whole seconds): it goes
/// into the history that orders later runs.
#[test]
fn an_adopted_task_s_duration_is_to_the_millisecond() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh("date +%s%N > $TASK_OUTPUT_DIR/start; while [ ! -f release ]; do sleep 0.01; done; sleep 0.35; date +%s%N > $TASK_OUTPUT_DIR/end"),
    );
    let mut first = t.start(&["orchestrate"]);
    // Started, not only recorded as running: killed between its running
    // status and its request, it would never reach its supervisor.
    wait_for("the task to start", || {
        std::fs::read_to_string(t.path("workspace/outputs/p/a/start"))
            .is_ok_and(|s| s.ends_with('\n'))
    });
    first.kill().unwrap();
    first.wait().unwrap();
    t.write("release", "");
    wait_for("the end's record", || t.exists("workspace/pids/p/a.exit"));
    t.run(&["orchestrate"]).code(0);
    let ns = |name: &str| {
        t.read(&format!("workspace/outputs/p/a/{name}"))
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let own = (ns("end") - ns("start")) as f64 / 1e9;
    let recorded = t.status("p/a")["duration_seconds"].as_f64().unwrap();
    assert!(
        recorded >= own - 0.002 && recorded < own + 0.2,
        "recorded {recorded} s, the task measured {own} s"
    );
}

/// A task that ended while no orchestrator ran, its supervisor gone too,
/// is not blocked or reset before its end is recorded: its completion
/// would be lost, and the work run again. Once `monitor` records it, it
/// is completed, run once.
#[test]
fn a_task_that_ended_unseen_is_not_blocked_or_reset_before_its_end_is_recorded() {
    let t = Tree::new();
    let (mut first, _, supervisor) = run_with_a_supervised_task(&t);
    first.kill().unwrap();
    first.wait().unwrap();
    t.write("release-a", "");
    wait_for("the end's record", || t.exists("workspace/pids/p/a.exit"));
    wait_for("the supervisor to exit", || !alive(supervisor));
    for command in [&["block", "p/a"][..], &["reset", "p/a"]] {
        t.run(command)
            .code(2)
            .says("p/a ended at ")
            .says("(exit code 0) while no orchestrator ran, and its end is not recorded yet");
    }
    t.run(&["monitor"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.launches("p/a"), 1);
}

/// A task running on under the supervisor of a killed run, whose status
/// was removed, or is unreadable, or of another version, is not started
/// beside itself: the run refuses, naming its pid (it started a second
/// copy, the first still writing to the same outputs). Once it ended, the
/// next run runs it.
#[test]
fn a_task_running_on_without_its_status_is_not_started_twice() {
    for spoil in ["removed", "unreadable", "another version"] {
        let t = Tree::new();
        t.task(
            "p/a",
            // A second copy ends at once (a test that fails, not hangs).
            &sh("c=$TASK_OUTPUT_DIR/../copies; echo x >> $c; [ $(wc -l < $c) -gt 1 ] && exit 0; while [ ! -f release ]; do sleep 0.01; done"),
        );
        let mut first = t.start(&["orchestrate"]);
        wait_for("the task to start", || {
            t.exists("workspace/outputs/p/copies")
        });
        first.kill().unwrap();
        first.wait().unwrap();
        // Its supervisor, left alone, writes what only it knows.
        wait_for("its pid recorded", || t.exists("workspace/pids/p/a.pid"));
        let status = t.path("workspace/status/p/a.json");
        match spoil {
            "removed" => std::fs::remove_file(&status).unwrap(),
            "unreadable" => {
                std::fs::write(&status, "{\"version\":1,\"task_id\":\"p/a\",\"sta").unwrap()
            }
            _ => {
                let text = std::fs::read_to_string(&status).unwrap();
                std::fs::write(&status, text.replace("\"version\": 1", "\"version\": 2")).unwrap();
            }
        }
        // `monitor` starts nothing: it goes on, and keeps the pid file.
        let monitor = t.run(&["monitor"]);
        assert!(
            !monitor.said().contains("still running (pid"),
            "{}",
            monitor.said()
        );
        // `next` and the dry run say it, as the run would refuse.
        for plan in [&["next"][..], &["orchestrate", "--dry-run"]] {
            t.run(plan)
                .says("p/a is still running (pid ")
                .says("until then `orchestrate` refuses to run (exit 2)");
        }
        let recorded = (
            t.read("workspace/run.json"),
            t.read("workspace/events.jsonl"),
        );
        let refused = t.run(&["orchestrate"]);
        refused
            .code(2)
            .says("p/a is still running (pid ")
            .says("`kill ");
        // Refused before anything is recorded: no run begun, none told.
        let after = (
            t.read("workspace/run.json"),
            t.read("workspace/events.jsonl"),
        );
        assert!(after == recorded, "{spoil}: {after:?}");
        assert_eq!(t.read("workspace/outputs/p/copies"), "x\n", "{spoil}");
        t.write("release", "");
        wait_for("its end's record", || t.exists("workspace/pids/p/a.exit"));
        if spoil != "removed" {
            std::fs::remove_file(&status).unwrap();
        }
        t.run(&["orchestrate"]).code(0);
        assert_eq!(t.read("workspace/outputs/p/copies"), "x\nx\n", "{spoil}");
    }
}

/// Several tasks running on without their statuses are all named at once
/// (the run named the first, and refused again for the next once it was
/// settled), and `next` does not say they would start now.
#[test]
fn tasks_running_on_without_their_statuses_are_all_named() {
    let t = Tree::new();
    t.config("");
    t.task("p/a", &waiting_task("a", "true"));
    t.task("p/b", &waiting_task("b", "true"));
    t.task("p/e", &format!("dependencies: [p/a]\n{}", sh("true")));
    let mut first = t.start(&["orchestrate"]);
    let pid = |id: &str| {
        t.read(&format!("workspace/outputs/{id}/pid"))
            .trim()
            .to_owned()
    };
    wait_for("both to run", || {
        ["p/a", "p/b"]
            .iter()
            .all(|id| pid_written(&t, &format!("workspace/outputs/{id}/pid")))
    });
    first.kill().unwrap();
    first.wait().unwrap();
    for id in ["p/a", "p/b"] {
        wait_for("its pid recorded", || {
            t.exists(&format!("workspace/pids/{id}.pid"))
        });
        std::fs::remove_file(t.path(&format!("workspace/status/{id}.json"))).unwrap();
    }
    let refused = t.run(&["orchestrate"]);
    refused
        .code(2)
        .says("2 tasks are still running, started by a run that was killed")
        .says(&format!(
            "p/a (pid {}), p/b (pid {})",
            pid("p/a"),
            pid("p/b")
        ))
        .says(&format!("`kill {} {}`", pid("p/a"), pid("p/b")));
    let next = t.run(&["next"]);
    next.says("Would start once what the warning names has ended or been stopped");
    assert!(!next.stdout.contains("Would start now"), "{}", next.stdout);
    next.says("p/e: waits on p/a (which would start once what the warning names has ended)");
    t.run(&["why", "p/a"])
        .says("it is ready, but `")
        .says("refuses to run now: 2 tasks are still running");
    t.write("release-a", "");
    t.write("release-b", "");
    for id in ["p/a", "p/b"] {
        wait_for("its end's record", || {
            t.exists(&format!("workspace/pids/{id}.exit"))
        });
    }
    t.run(&["orchestrate"]).code(0);
}

/// A task that ended while no orchestrator was alive, its supervisor
/// still running another: the views say it ended, not that it runs.
#[test]
fn the_views_tell_a_task_ended_while_no_orchestrator_was_alive() {
    let t = Tree::new();
    t.task("p/long", &waiting_task("long", "true"));
    t.task("p/short", &waiting_task("short", "exit 3"));
    let mut first = t.start(&["orchestrate"]);
    wait_for("both to run", || {
        ["p/long", "p/short"]
            .iter()
            .all(|id| pid_written(&t, &format!("workspace/outputs/{id}/pid")))
    });
    first.kill().unwrap();
    first.wait().unwrap();
    t.write("release-short", "");
    wait_for("the end's record", || {
        t.exists("workspace/pids/p/short.exit")
    });
    let json = progress_json(&t);
    let running = json["phases"][0]["running_tasks"].as_array().unwrap();
    let alive = |id: &str| running.iter().find(|r| r["task_id"] == id).unwrap()["alive"].clone();
    assert_eq!(
        (alive("p/long"), alive("p/short")),
        (true.into(), false.into())
    );
    // The task lines say it too.
    let tasks = json["tasks"].as_array().unwrap();
    let gone =
        |id: &str| tasks.iter().find(|l| l["task_id"] == id).unwrap()["process_gone"].clone();
    assert_eq!(
        (gone("p/long"), gone("p/short")),
        (serde_json::Value::Null, true.into())
    );
    t.run(&["progress", "--tasks"]).says(
        "p/short  attempt 1  agent-2  its process is gone: the next run records how it ended",
    );
    let progress = t.run(&["progress"]).stdout;
    let line = |id: &str| {
        let running = format!("running  {id} ");
        progress
            .lines()
            .find(|l| l.contains(&running))
            .unwrap()
            .to_owned()
    };
    assert!(
        line("p/short").ends_with("(its process is gone: the next run records how it ended)"),
        "{progress}"
    );
    assert!(!line("p/long").contains("gone"), "{progress}");
    t.run(&["why", "p/short"])
        .says("(exit code 3), with no orchestrator to see it");
    let record: serde_json::Value =
        serde_json::from_str(&t.read("workspace/pids/p/short.exit")).unwrap();
    t.write("release-long", "");
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/short"), "failed");
    assert_eq!(t.state("p/long"), "completed");
    // Its end is in the events when it happened, not when the run found it.
    let events = t.read("workspace/events.jsonl");
    let failed: serde_json::Value = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["task"] == "p/short" && e["to"] == "failed")
        .unwrap();
    // (Events are to the millisecond, the supervisor's record finer.)
    let ended = humantime::parse_rfc3339(record["ended_at"].as_str().unwrap()).unwrap();
    let ended = humantime::format_rfc3339_millis(ended).to_string();
    assert_eq!(failed["time"], ended.as_str(), "{events}");
}

#[test]
fn an_end_reported_to_a_frozen_orchestrator_survives_its_death() {
    let t = Tree::new();
    t.task("p/ends", &waiting_task("ends", "exit 7"));
    let mut first = spawn_orchestrate(&t, "first.out");
    wait_for("the task to start", || {
        std::fs::read_to_string(t.path("workspace/outputs/p/ends/pid"))
            .is_ok_and(|p| p.ends_with('\n'))
            && t.state("p/ends") == "running"
    });
    let pid = read_pid(&t.path("workspace/outputs/p/ends/pid"));
    // Frozen, the orchestrator cannot write the final status: the end
    // waits, reported, in the pipe and in the supervisor's memory.
    signal(first.id(), libc::SIGSTOP);
    t.write("release-ends", "");
    wait_for("the task to end", || !alive(pid));
    first.kill().unwrap();
    first.wait().unwrap();
    let out = t.run(&["orchestrate"]);
    out.code(1);
    assert_eq!(
        t.status("p/ends")["exit_code"],
        7,
        "{}",
        t.read("first.out")
    );
    assert_eq!(t.status("p/ends")["error"], "exit code 7");
    assert_eq!(t.launches("p/ends"), 1);
}

#[test]
fn records_left_for_tasks_that_are_not_running_are_removed() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    // As if a supervisor wrote them for an attempt whose status was final.
    t.write(
        "workspace/pids/p/a.exit",
        r#"{"ending":"exited","exit_code":9,"ended_at":"2026-01-01T00:00:00Z"}"#,
    );
    t.write("workspace/pids/p/a.pid", "1\n");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
    assert!(!t.exists("workspace/pids/p/a.exit"));
    assert!(!t.exists("workspace/pids/p/a.pid"));
}

/// A supervisor killed as it wrote a record (killed a moment after its
/// orchestrator, which is when it writes them) leaves the temporary file
/// of that write: removed by the next run once its writer is gone, never
/// while its writer lives (the soak left one in a tenth of its runs).
#[test]
fn a_record_s_write_cut_short_by_a_kill_leaves_no_file_behind() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let cut = format!("workspace/pids/p/.a.pid.{gone_pid}.0.tmp");
    t.write(&cut, "");
    let mut alive = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let writing = format!("workspace/pids/p/.a.pid.{}.0.tmp", alive.id());
    t.write(&writing, "");
    t.run(&["orchestrate"]).code(0);
    assert!(!t.exists(&cut), "{cut} is left");
    assert!(t.exists(&writing), "{writing} was removed under its writer");
    alive.kill().unwrap();
    alive.wait().unwrap();
}

/// A status that claims `running` for a process that is gone or is another.
fn fake_running(t: &Tree, id: &str, pid: u32, pid_start: u64) {
    let status = serde_json::json!({
        "version": 1, "task_id": id, "status": "running", "started_at": "2025-01-01T00:00:00Z",
        "agent_id": "agent-1", "attempt": 1, "pid": pid, "pid_start": pid_start,
    });
    t.write(&format!("workspace/status/{id}.json"), &status.to_string());
}

/// A process that says it is attempt 1 of task `id` (its environment, as
/// the supervisor gives it), running `script`: what a double crash leaves
/// of a task, found by its environment.
fn orphan_of(t: &Tree, id: &str, script: &str) -> std::process::Child {
    std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(&t.root)
        .env("WORKSPACE", t.path("workspace"))
        .env("TASK_ID", id)
        .env("TASK_ATTEMPT", "1")
        .process_group(0)
        .spawn()
        .unwrap()
}

/// A status that claims attempt `attempt` of `id` runs under a supervisor
/// that is gone, with no pid recorded.
fn running_under_a_dead_supervisor(t: &Tree, id: &str, attempt: u32) {
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let status = serde_json::json!({
        "version": 1, "task_id": id, "status": "running", "started_at": "2025-01-01T00:00:00Z",
        "agent_id": "agent-1", "attempt": attempt, "supervisor_pid": dead, "supervisor_start": 1,
    });
    t.write(&format!("workspace/status/{id}.json"), &status.to_string());
}

/// `next` and the dry run tell a task recorded as running whose process
/// is gone from one that runs, as `progress` does: lost, as the run will
/// find it (a supervisor that may have started it, no end recorded).
#[test]
fn next_and_the_dry_run_say_a_running_task_s_process_is_gone() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    running_under_a_dead_supervisor(&t, "p/a", 1);
    let gone =
        "p/a: lost (it and its supervisor are gone, no end recorded): the run records it failed";
    let next = t.run(&["next"]);
    next.code(0).says(gone);
    assert!(!next.stdout.contains("Running now"), "{}", next.stdout);
    t.run(&["orchestrate", "--dry-run"]).code(1).says(gone);
    t.run(&["progress"]).says("its process is gone");
    t.run(&["orchestrate"]).code(1).says("lost");
}

#[test]
fn a_task_whose_orchestrator_and_supervisor_died_in_its_first_second_is_not_started_twice() {
    let t = Tree::new();
    t.task("p/a", &sh(MARK));
    // What a double crash leaves: a running status with no pid (it is
    // written after a second), a dead supervisor, and the task still alive.
    running_under_a_dead_supervisor(&t, "p/a", 1);
    let mut survivor = orphan_of(&t, "p/a", "while [ ! -f release ]; do sleep 0.02; done");
    let mut run = spawn_orchestrate(&t, "run.out");
    wait_for("the adoption", || {
        t.read("run.out")
            .contains(&format!("still running, pid {}", survivor.id()))
    });
    t.write("release", "");
    survivor.wait().unwrap();
    assert_eq!(run.wait().unwrap().code(), Some(1), "{}", t.read("run.out"));
    assert!(t.status("p/a")["error"]
        .as_str()
        .unwrap()
        .starts_with("lost"));
    assert_eq!(t.launches("p/a"), 0, "started twice");
}

/// A stop of a run that adopted a stopped (SIGSTOP) task after a double
/// crash continues it with its SIGTERM, so that its handler runs (it
/// waited, stopped, for the SIGKILL).
#[test]
fn a_stop_continues_an_adopted_stopped_task_so_its_handler_runs() {
    let t = Tree::new();
    t.task("p/a", &sh(MARK));
    running_under_a_dead_supervisor(&t, "p/a", 1);
    let mut orphan = orphan_of(
        &t,
        "p/a",
        "trap 'echo cleaned > cleaned; exit 0' TERM; kill -STOP $$; sleep 1000",
    );
    let pid = orphan.id();
    wait_for("the task to stop itself", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.split_whitespace().nth(2) == Some("T"))
    });
    let mut run = spawn_orchestrate(&t, "run.out");
    wait_for("the adoption", || {
        t.read("run.out")
            .contains(&format!("still running, pid {pid}"))
    });
    signal(run.id(), libc::SIGTERM);
    orphan.wait().unwrap();
    assert_eq!(t.read("cleaned"), "cleaned\n");
    run.wait().unwrap();
}

/// A retry that quotes the question it was told of, adopted after its
/// orchestrator and supervisor were killed, is not taken for asking it by
/// the run that follows it, as its supervisor would not have: it runs to
/// its end (stopped at its first second of quiet, as waiting for input).
#[test]
fn an_adopted_retry_quoting_the_question_it_was_told_of_is_not_asking_it() {
    let t = Tree::new();
    crate::agents::a_retry_quoting_its_question(&t, 4, "");
    let mut first = spawn_orchestrate(&t, "out");
    let log = || std::fs::read_to_string(t.path("workspace/logs/p/a.log")).unwrap_or_default();
    wait_for("its retry to quote the question", || {
        log().contains("Last time: waiting for input")
    });
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    first.kill().unwrap();
    first.wait().unwrap();
    signal(supervisor, libc::SIGKILL);
    // Its end, no supervisor to reap it, is unknown: lost, once it ran
    // to its end.
    t.run(&["orchestrate"])
        .never_says("waiting for input: Retrying")
        .says("lost: ");
    assert!(log().ends_with("done\n"), "{}", log());
}

/// An adopted task whose own process exited with a failure before a stop
/// of the run that adopted it (what it left still in its grace) failed
/// with its own code: not taken for interrupted by the stop (and retried
/// as not counted).
#[test]
fn an_adopted_task_that_failed_before_the_stop_keeps_its_own_exit_code() {
    let t = Tree::new();
    t.config("kill_grace: 3s\n");
    t.task(
        "p/a",
        &waiting_task("a", "sh -c 'trap \"\" TERM; sleep 30' & sleep 0.3; exit 1"),
    );
    let mut first = spawn_orchestrate(&t, "out");
    wait_for("p/a to run", || {
        pid_written(&t, "workspace/outputs/p/a/pid")
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let mut next = spawn_orchestrate(&t, "out2");
    wait_for("the adoption", || t.read("out2").contains("still running"));
    t.write("release-a", "");
    wait_for("its process to exit, leaving another", || {
        t.read("workspace/logs/p/a.log")
            .contains("its process exited and left others running")
    });
    signal(next.id(), libc::SIGTERM);
    next.wait().unwrap();
    let status = t.status("p/a");
    assert_eq!(status["exit_code"], 1, "{status}");
    assert_eq!(status["error"], "exit code 1", "{status}");
}

#[test]
fn reset_and_block_refuse_a_task_that_runs_on_after_a_double_crash() {
    let t = Tree::new();
    t.task("p/a", &sh(MARK));
    // No pid in its status, its supervisor dead, the task alive: made
    // pending, the next run would start it beside itself.
    running_under_a_dead_supervisor(&t, "p/a", 1);
    let mut survivor = orphan_of(&t, "p/a", "while [ ! -f release ]; do sleep 0.02; done");
    let found = format!(
        "p/a is running (pid {}, found by its environment",
        survivor.id()
    );
    let reset = t.run(&["reset", "p/a"]);
    let block = t.run(&["block", "p/a"]);
    t.write("release", "");
    survivor.wait().unwrap();
    reset.says(&found);
    block.says(&found);
    assert!(reset.code != 0 && block.code != 0);
    assert_eq!(
        t.status("p/a")["status"],
        "running",
        "its status was changed"
    );

    // A Slurm job submitted just before the crash: its record names it.
    let t = Tree::new();
    t.task("p/a", &sh(MARK));
    running_under_a_dead_supervisor(&t, "p/a", 1);
    t.write("workspace/pids/p/a.job", r#"{"job_id":"4242","attempt":1}"#);
    t.run(&["reset", "p/a"])
        .says("p/a is running (Slurm job 4242, submitted before its status said so)");
    assert_eq!(t.status("p/a")["status"], "running");
}

#[test]
fn a_kill_between_two_blocked_statuses_leaves_no_task_pending_for_good() {
    let t = Tree::new();
    t.task("p/f", &sh("exit 3"));
    t.task("p/d", &format!("dependencies: [p/f]\n{}", sh("true")));
    t.task("p/e", &format!("dependencies: [p/d]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    // What a SIGKILL after p/d's blocked status and before p/e's leaves.
    let run: serde_json::Value = serde_json::from_str(&t.read("workspace/run.json")).unwrap();
    let unfinished = serde_json::json!({"id": run["id"], "finished": false});
    t.write("workspace/run.json", &unfinished.to_string());
    std::fs::remove_file(t.path("workspace/status/p/e.json")).unwrap();
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/e"), "blocked");
    assert_eq!(t.status("p/e")["blocked_by"], "p/f");
}

#[test]
fn a_task_a_killed_run_was_stopping_is_retried_not_failed() {
    let t = Tree::new();
    t.config("kill_grace: 1s\n");
    // It holds on past SIGTERM; its second attempt succeeds at once.
    let stubborn = "[ -f second ] && exit 0; trap 'touch termed' TERM; echo $$ > pid; \
                    while :; do sleep 0.05; done";
    t.task("p/stubborn", &sh(stubborn));
    t.task(
        "p/after",
        &format!("dependencies: [p/stubborn]\n{}", sh("true")),
    );
    let mut run = spawn_orchestrate(&t, "run.out");
    wait_for("the task to start", || t.exists("pid"));
    signal(run.id(), libc::SIGHUP);
    wait_for("the task to be told to stop", || t.exists("termed"));
    // Killed during kill_grace: the supervisor kills the task after it
    // and records its end, as stopped.
    signal(run.id(), libc::SIGKILL);
    run.wait().unwrap();
    let pid = read_pid(&t.path("pid"));
    wait_for("the first attempt's end", || !alive(pid));
    t.write("second", "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/stubborn"), "completed");
    assert_eq!(t.state("p/after"), "completed");
}

/// A task a run stopped (failed, interrupted) while another held on past
/// SIGTERM, the run then killed before it ended in order: the next run
/// resumes it, and retries the task with its events whole, the change back
/// to pending before the new attempt.
#[test]
fn a_task_interrupted_by_a_run_killed_while_stopping_is_retried_with_every_event() {
    let t = Tree::new();
    t.config("kill_grace: 1m\n");
    t.task(
        "p/quick",
        &sh("[ -f second ] && exit 0; touch quick; while :; do sleep 0.05; done"),
    );
    t.task(
        "p/stubborn",
        &sh(
            "trap 'touch termed' TERM; touch stubborn; while [ ! -f release ]; do sleep 0.05; done",
        ),
    );
    let mut run = spawn_orchestrate(&t, "run.out");
    wait_for("both tasks to start", || {
        t.exists("quick") && t.exists("stubborn")
    });
    signal(run.id(), libc::SIGINT);
    wait_for("the quick task's end", || t.state("p/quick") == "failed");
    wait_for("the stubborn task to be told to stop", || {
        t.exists("termed")
    });
    signal(run.id(), libc::SIGKILL);
    run.wait().unwrap();
    t.write("second", "");
    t.write("release", "");
    t.run(&["orchestrate"]);
    assert_eq!(t.state("p/quick"), "completed");
    assert_eq!(
        changes(&t, "p/quick"),
        [
            "pending -> running",
            "running -> failed",
            "failed -> pending",
            "pending -> running",
            "running -> completed"
        ]
    );
}

/// A run killed between two steps that go together leaves its events and
/// its statuses apart: a task's running status written but its start not
/// told yet, or its end told but its final status not written yet. The run
/// that takes the attempt up tells each change once. (The kill lands in
/// those windows too rarely to aim at: the events file is left as it
/// would be.)
#[test]
fn the_run_after_a_kill_tells_each_change_of_a_task_once() {
    for case in ["start untold", "end told"] {
        let t = Tree::new();
        t.task(
            "p/a",
            &format!(
                "retries: 1\n{}",
                waiting_task("a", "[ -f second ] || { touch second; exit 3; }")
            ),
        );
        let mut run = spawn_orchestrate(&t, "run.out");
        wait_for("the task's pid in its status", || {
            pid_written(&t, "workspace/outputs/p/a/pid")
                && t.status("p/a")["pid"] == read_pid(&t.path("workspace/outputs/p/a/pid"))
        });
        run.kill().unwrap();
        run.wait().unwrap();
        let start = events(&t)
            .into_iter()
            .find(|e| e["task"] == "p/a" && e["to"] == "running")
            .unwrap();
        t.write("release-a", "");
        wait_for("the supervisor's record of the end", || {
            t.exists("workspace/pids/p/a.exit")
        });
        let file = t.read("workspace/events.jsonl");
        let told = if case == "start untold" {
            file.lines()
                .filter(|l| !l.contains(r#""to":"running""#))
                .map(|l| format!("{l}\n"))
                .collect()
        } else {
            let end = serde_json::json!({
                "time": start["time"], "run_id": start["run_id"], "task": "p/a",
                "from": "running", "to": "failed", "attempt": 1, "agent": "agent-1",
                "error": "exit code 3", "ending": "exited",
            });
            let retry = serde_json::json!({
                "time": start["time"], "run_id": start["run_id"], "task": "p/a",
                "from": "failed", "to": "pending",
            });
            format!("{file}{end}\n{retry}\n")
        };
        t.write("workspace/events.jsonl", &told);
        t.run(&["orchestrate"]).code(0);
        assert_eq!(
            changes(&t, "p/a"),
            [
                "pending -> running",
                "running -> failed",
                "failed -> pending",
                "pending -> running",
                "running -> completed"
            ],
            "{case}"
        );
    }
}

/// When a process started, as the kernel counts it (`/proc/<pid>/stat`'s
/// 22nd field): what a status says of a supervisor.
fn start_of(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

/// `logs -f` of a task left `running` by an orchestrator and supervisor
/// killed together ends, saying its process is gone, instead of following
/// a log nothing writes any more.
#[test]
fn logs_follow_ends_when_nothing_looks_after_the_task() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    running_under_a_dead_supervisor(&t, "p/a", 1);
    t.write("workspace/logs/p/a.log", "hello\n");
    let mut follow = t
        .command(&["logs", "-f", "p/a"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("logs -f to end", || follow.try_wait().unwrap().is_some());
    let out = Run::from(follow.wait_with_output().unwrap());
    out.code(0)
        .says("hello")
        .says("p/a: its process is gone: the next run records how it ended");
}

/// A pid file that names a process which took the task's pid since (the
/// task and its supervisor died together, and the pid was given again):
/// that process is not adopted, waited for or signalled; the task is
/// `lost`. Whether the file has the task's start time, which the
/// newcomer's is not, or (an older version's file) the pid alone, which
/// the newcomer's environment says is not the task's.
#[test]
fn a_process_that_reused_a_recorded_pid_is_never_taken_for_the_task() {
    for file in ["{pid} 1\n", "{pid}\n"] {
        let t = Tree::new();
        t.task("p/a", &format!("retries: 0\n{}", sh(MARK)));
        running_under_a_dead_supervisor(&t, "p/a", 1);
        let dead = t.status("p/a")["supervisor_pid"].clone();
        t.write(&format!("workspace/pids/.handed-over-{dead}-1"), "");
        let mut newcomer = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = newcomer.id().to_string();
        t.write("workspace/pids/p/a.pid", &file.replace("{pid}", &pid));
        let run = t.run(&["orchestrate"]);
        let alive = newcomer.try_wait().unwrap().is_none();
        newcomer.kill().unwrap();
        newcomer.wait().unwrap();
        run.code(1);
        assert!(!run.stdout.contains("still running"), "{}", run.stdout);
        assert!(alive, "the newcomer was signalled");
        assert!(
            t.status("p/a")["error"]
                .as_str()
                .unwrap()
                .starts_with("lost"),
            "{file}"
        );
        assert_eq!(t.launches("p/a"), 0);
    }
}

#[test]
fn a_task_that_never_reached_its_supervisor_is_started_not_lost() {
    let t = Tree::new();
    t.task("p/a", &format!("retries: 0\n{}", sh(MARK)));
    // Started once the run has recovered what it found running.
    let b = "touch b-started; while [ ! -f release ]; do sleep 0.02; done";
    t.task("p/b", &sh(b));
    // Its orchestrator died between its running status and its request;
    // the supervisor lived on for another task, then handed over (its
    // mark) and, that task done, exited.
    let mut supervisor = std::process::Command::new("sh")
        .args(["-c", "while [ ! -f release ]; do sleep 0.02; done"])
        .current_dir(&t.root)
        .spawn()
        .unwrap();
    let (pid, start) = (supervisor.id(), start_of(supervisor.id()));
    let status = serde_json::json!({
        "version": 1, "task_id": "p/a", "status": "running", "started_at": "2025-01-01T00:00:00Z",
        "agent_id": "agent-1", "attempt": 1, "supervisor_pid": pid, "supervisor_start": start,
    });
    t.write("workspace/status/p/a.json", &status.to_string());
    t.write(&format!("workspace/pids/.handed-over-{pid}-{start}"), "");
    let mut run = spawn_orchestrate(&t, "run.out");
    wait_for("the adoption", || t.exists("b-started"));
    t.write("release", "");
    supervisor.wait().unwrap();
    assert!(run.wait().unwrap().success(), "{}", t.read("run.out"));
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.launches("p/a"), 1);
    assert_eq!(t.status("p/a")["attempt"], 1);
}

/// A task that never reached its supervisor, found by a command that does
/// not start it (`monitor`, a run of another task), is pending again on
/// disk, as the event that command tells says, not `running` with nothing
/// running it: its status goes, and the next run starts it under the
/// number of the try that never started, told what the attempt before it
/// failed with, that attempt's log kept as it was.
#[test]
fn a_task_that_never_reached_its_supervisor_is_pending_in_every_view() {
    for command in [&["monitor"][..], &["orchestrate", "--task", "p/other"]] {
        let t = Tree::new();
        let seen = r#"echo "attempt $TASK_ATTEMPT after: $TASK_PREVIOUS_ERROR" > seen"#;
        t.task("p/a", &sh(seen));
        t.task("p/other", &sh("true"));
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let dead = gone.id();
        gone.wait().unwrap();
        let status = serde_json::json!({
            "version": 1, "task_id": "p/a", "status": "running", "started_at": "2025-01-01T00:00:00Z",
            "agent_id": "agent-1", "attempt": 2, "supervisor_pid": dead, "supervisor_start": 1,
            "previous": {"attempt": 1, "error": "exit code 3"},
        });
        t.write("workspace/status/p/a.json", &status.to_string());
        t.write(&format!("workspace/pids/.handed-over-{dead}-1"), "");
        t.write("workspace/logs/p/a.attempt-1.log", "the first attempt\n");
        // Made for the second, which never started.
        t.write("workspace/logs/p/a.log", "");
        t.run(command);
        assert_eq!(
            changes(&t, "p/a"),
            ["pending -> running", "running -> pending"]
        );
        assert!(!t.exists("workspace/status/p/a.json"), "{command:?}");
        assert_eq!(progress_task(&t, "p/a")["state"], "pending", "{command:?}");
        t.run(&["progress"]).never_says("process is gone");
        t.run(&["orchestrate"]).code(0);
        assert_eq!(t.read("seen"), "attempt 2 after: exit code 3\n");
        assert_eq!(
            t.read("workspace/logs/p/a.attempt-1.log"),
            "the first attempt\n"
        );
        assert!(!t.exists("workspace/logs/p/a.attempt-2.log"), "{command:?}");
    }
}

/// A try that never started, of a run killed (its status removed, its
/// tries kept in `resets.json`), then that run resumed and killed again
/// before the task started: the run after counts on from the tries the
/// removed status held, and gives the task no retry beyond its `retries`.
#[test]
fn a_try_that_never_started_keeps_its_tries_across_a_second_kill() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!("retries: 1\n{}", sh(&format!("{MARK}; exit 3"))),
    );
    t.task(
        "p/hold",
        &format!(
            "priority: 1\n{}",
            sh("touch hold-started; while [ ! -e release ]; do sleep 0.02; done")
        ),
    );
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    t.write(
        "workspace/run.json",
        r#"{"id": "killed", "finished": false}"#,
    );
    // Its second and last try, counted, never started.
    let status = serde_json::json!({
        "version": 1, "task_id": "p/a", "status": "running", "started_at": "2025-01-01T00:00:00Z",
        "agent_id": "agent-1", "attempt": 2, "tries": 2, "run_id": "killed",
        "supervisor_pid": dead, "supervisor_start": 1,
        "previous": {"attempt": 1, "error": "exit code 3"},
    });
    t.write("workspace/status/p/a.json", &status.to_string());
    t.write(&format!("workspace/pids/.handed-over-{dead}-1"), "");
    t.write("workspace/logs/p/a.attempt-1.log", "the first attempt\n");
    let mut run = t.start(&["orchestrate", "-j", "1"]);
    wait_for("the slot to be held", || t.exists("hold-started"));
    assert!(!t.exists("workspace/status/p/a.json"));
    run.kill().unwrap();
    run.wait().unwrap();
    t.write("release", "");
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.launches("p/a"), 1);
    assert_eq!(t.status("p/a")["attempt"], 2);
    assert_eq!(t.state("p/a"), "failed");
}

/// The real supervisor of an orchestrator killed while nothing ran (a
/// rate limit's pause) marks that it had every task it was handed: a
/// task whose running status names it, written just before that kill and
/// never sent, is started by the next run, not failed as `lost`.
#[test]
fn a_task_never_sent_to_an_idle_supervisor_is_started_not_lost() {
    use crate::agents::{agent, scenario};
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    t.task("p/limited", "");
    scenario(&t, "p/limited", &["limit-in:600 1"]);
    let mut run = t.start(&["orchestrate"]);
    wait_for("the rate limit's pause", || {
        t.exists("workspace/status/p/limited.json")
            && t.status("p/limited")["rate_limited_until"].is_string()
    });
    let supervisor = children_of(run.id())[0];
    let start = start_of(supervisor);
    run.kill().unwrap();
    run.wait().unwrap();
    wait_for("the supervisor's exit", || {
        !std::path::Path::new(&format!("/proc/{supervisor}")).exists()
    });
    // What the killed run had written of its next task, a moment later.
    std::fs::remove_file(t.path("tasks/p/limited.md")).unwrap();
    t.task("p/next", &format!("retries: 0\n{}", sh(MARK)));
    let status = serde_json::json!({
        "version": 1, "task_id": "p/next", "status": "running", "started_at": "2025-01-01T00:00:00Z",
        "agent_id": "agent-1", "attempt": 1, "supervisor_pid": supervisor, "supervisor_start": start,
    });
    t.write("workspace/status/p/next.json", &status.to_string());
    // A run that does not start it (it selects another) ends, and removes
    // that supervisor's mark: the task is still no lost one.
    t.task("p/other", &sh(MARK));
    t.run(&["orchestrate", "--task", "p/other"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/next"), "completed");
    assert_eq!(t.launches("p/next"), 1);
    // Neither that supervisor's mark nor the one the run's own leaves as
    // its orchestrator closes its pipe outlives the run.
    let marks: Vec<_> = std::fs::read_dir(t.path("workspace/pids"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".handed-over-"))
        .collect();
    assert_eq!(marks, Vec::<String>::new());
}

/// The children of process `pid`, every thread's.
fn children_of(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flatten()
        .flat_map(|task| {
            std::fs::read_to_string(task.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .map(|c| c.parse().unwrap())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A task's shell that ended while neither its orchestrator nor its
/// supervisor was alive has ended, whatever it left running in its group:
/// that is killed (its supervisor would have), the task is lost and retried,
/// and no leftover runs beside the retry or keeps the run waiting.
#[test]
fn an_orphaned_task_whose_shell_ended_has_its_leftovers_killed() {
    let t = Tree::new();
    t.task("p/a", &format!("retries: 1\n{}", sh(MARK)));
    running_under_a_dead_supervisor(&t, "p/a", 1);
    // The task's shell has ended; what it started runs on in its group.
    let mut shell = orphan_of(
        &t,
        "p/a",
        "(echo $(exec sh -c 'echo $PPID') > leftover.pid; while [ ! -f release ]; do sleep 0.02; done) & exit 0",
    );
    shell.wait().unwrap();
    wait_for("the leftover's pid", || pid_written(&t, "leftover.pid"));
    let leftover = read_pid(&t.path("leftover.pid"));
    let mut run = spawn_orchestrate(&t, "run.out");
    wait_for("the run to end", || run.try_wait().unwrap().is_some());
    assert_eq!(run.wait().unwrap().code(), Some(0), "{}", t.read("run.out"));
    assert!(!alive(leftover), "the task's leftover runs on");
    assert_eq!(t.launches("p/a"), 1);
    assert_eq!(t.status("p/a")["attempt"], 2);
}

/// A task's pid, recorded, whose process is gone, while a group of that
/// number lives on: what a newcomer that took the pid leaves when it
/// exits before its own child (here made so, not by waiting for the pid
/// to come round). That group is not the task's: nothing in it is killed.
#[test]
fn a_group_that_took_a_gone_task_s_number_is_left_alone() {
    let t = Tree::new();
    t.task("p/a", &sh(MARK));
    let mut leader = std::process::Command::new("setsid")
        .args(["sh", "-c", "sleep 300 & echo $! > innocent.pid; exit 0"])
        .current_dir(&t.root)
        .spawn()
        .unwrap();
    let group = leader.id();
    leader.wait().unwrap();
    wait_for("the innocent's pid", || pid_written(&t, "innocent.pid"));
    let innocent = read_pid(&t.path("innocent.pid"));
    fake_running(&t, "p/a", group, 1);
    let run = t.run(&["orchestrate"]);
    let alive_after = alive(innocent);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(innocent as i32, libc::SIGKILL) };
    run.code(1);
    assert!(alive_after, "a process of another group was killed");
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("lost"), "{error}");
}

/// The same after a real double crash: the orchestrator and its supervisor
/// killed with SIGKILL while the task runs, then the task's shell exits 0
/// and leaves a child. The next run records the end at once (lost: no one
/// saw the exit code) and kills the child.
#[test]
fn a_task_that_ended_after_a_double_crash_is_not_kept_running_by_its_child() {
    let t = Tree::new();
    let child = "(echo $(exec sh -c 'echo $PPID') > child.pid; while [ ! -f release-child ]; do sleep 0.02; done) &";
    t.task("p/a", &format!("command: {}", serde_json::to_string(&format!(
        "{MARK}; {child} echo $$ > $TASK_OUTPUT_DIR/pid; while [ ! -f release-a ]; do sleep 0.02; done"
    )).unwrap()));
    let mut orchestrator = spawn_orchestrate(&t, "out");
    wait_for("the task's pid in its status", || {
        pid_written(&t, "workspace/outputs/p/a/pid")
            && t.status("p/a")["pid"] == read_pid(&t.path("workspace/outputs/p/a/pid"))
    });
    let task = read_pid(&t.path("workspace/outputs/p/a/pid"));
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    signal(supervisor, libc::SIGKILL);
    wait_for("the supervisor to be gone", || !alive(supervisor));
    wait_for("the child's pid", || pid_written(&t, "child.pid"));
    let child = read_pid(&t.path("child.pid"));
    t.write("release-a", "");
    wait_for("the task's shell to exit", || !alive(task));
    let mut run = spawn_orchestrate(&t, "run.out");
    wait_for("the run to end", || run.try_wait().unwrap().is_some());
    let out = t.read("run.out");
    assert_eq!(run.wait().unwrap().code(), Some(1), "{out}");
    assert!(!out.contains("still running"), "{out}");
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("lost"), "{error}");
    assert!(!alive(child), "the task's child runs on");
    assert!(t
        .read("workspace/logs/p/a.log")
        .contains("xtask: killed processes that the task left running"));
    assert_eq!(t.launches("p/a"), 1);
}

#[test]
fn an_exit_record_of_an_earlier_attempt_is_not_taken_for_the_current_one() {
    let t = Tree::new();
    t.task("p/a", &sh(MARK));
    // Attempt 2 was about to start when everything died; attempt 1's
    // record is still there; the supervisor had handed over every task it
    // had (its mark): attempt 2 never reached it.
    running_under_a_dead_supervisor(&t, "p/a", 2);
    let dead = t.status("p/a")["supervisor_pid"].clone();
    t.write(&format!("workspace/pids/.handed-over-{dead}-1"), "");
    t.write(
        "workspace/pids/p/a.exit",
        r#"{"ending":"exited","exit_code":9,"ended_at":"2025-01-01T00:00:00Z","attempt":1}"#,
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.launches("p/a"), 1);
}

#[test]
fn a_task_whose_process_is_gone_is_lost_then_retried() {
    let t = Tree::new();
    t.task("p/once", &sh(MARK));
    t.task("p/retried", &format!("retries: 1\n{}", sh(MARK)));
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    fake_running(&t, "p/once", dead_pid, 1);
    // A live process with another start time: a reused pid must not fool it.
    fake_running(&t, "p/retried", std::process::id(), 1);
    let run = t.run(&["orchestrate"]);
    run.code(1);
    assert!(
        t.status("p/once")["error"]
            .as_str()
            .unwrap()
            .starts_with("lost"),
        "{}",
        run.stdout
    );
    assert_eq!(t.launches("p/once"), 0);
    assert_eq!(t.state("p/retried"), "completed");
    assert_eq!(t.status("p/retried")["attempt"], 2);
    assert_eq!(t.launches("p/retried"), 1);
}

#[test]
fn ctrl_c_stops_every_task_and_exits_130() {
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let t = Tree::new();
        t.task("p/a", &waiting_task("never", "true"));
        t.task("p/b", &waiting_task("never", "true"));
        let mut orchestrator = spawn_orchestrate(&t, "out");
        wait_for("the tasks to start", || {
            pid_written(&t, "workspace/outputs/p/a/pid")
                && pid_written(&t, "workspace/outputs/p/b/pid")
        });
        signal(orchestrator.id(), sig);
        assert_eq!(
            orchestrator.wait().unwrap().code(),
            Some(code),
            "{}",
            t.read("out")
        );
        for id in ["p/a", "p/b"] {
            assert_eq!(t.status(id)["error"], "interrupted", "{}", t.read("out"));
            assert!(!alive(read_pid(
                &t.path(&format!("workspace/outputs/{id}/pid"))
            )));
        }
    }
}

/// A run stopped by Ctrl-C lists the task it stopped as `failed ...:
/// interrupted`, which reads as lost (to `reset` by hand); its summary
/// says that the next run goes on and runs it again, its retries spared,
/// as it then does (it said nothing of what to do next).
#[test]
fn a_stopped_run_says_the_next_run_goes_on_and_runs_the_interrupted_again() {
    let t = Tree::new();
    t.task("p/a", &format!("retries: 0\n{}", waiting_task("a", "true")));
    let said = stopped_once_p_a_runs(&t, &[]);
    let next = goes_on_with(&t, "");
    assert!(
        said.contains(&format!(
            "{next}, and runs again the 1 task this stop interrupted (not counted against its retries)"
        )),
        "{said}"
    );
    t.write("release-a", "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.status("p/a")["attempt"], 2);
}

/// A run of one phase, stopped, names the command that goes on with that
/// phase: a plain `orchestrate`, as it said, starts everything else too.
#[test]
fn a_stopped_run_of_one_phase_says_to_go_on_with_that_phase() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "true"));
    t.task("q/b", &sh("true"));
    let said = stopped_once_p_a_runs(&t, &["--phase", "p"]);
    assert!(said.contains(&goes_on_with(&t, " --phase p")), "{said}");
}

/// What `orchestrate` given `args` said, stopped by Ctrl-C once `p/a`
/// (a `waiting_task`) runs.
fn stopped_once_p_a_runs(t: &Tree, args: &[&str]) -> String {
    let mut orchestrator = spawn_orchestrate_with(t, "out", args);
    wait_for("the task to start", || {
        pid_written(t, "workspace/outputs/p/a/pid")
    });
    signal(orchestrator.id(), libc::SIGINT);
    assert_eq!(orchestrator.wait().unwrap().code(), Some(130));
    t.read("out")
}

/// A run stopped before it started again a task an earlier stop had
/// interrupted counts only the task it interrupted itself: it said "runs
/// again the 2 tasks this stop interrupted" of the one it stopped and the
/// one still waiting for its retry.
#[test]
fn a_stop_counts_only_the_tasks_it_interrupted() {
    let t = Tree::new();
    for name in ["a", "b"] {
        t.task(&format!("p/{name}"), &waiting_task(name, "true"));
    }
    let pids = ["workspace/outputs/p/a/pid", "workspace/outputs/p/b/pid"];
    let mut first = spawn_orchestrate(&t, "out");
    wait_for("both tasks to start", || {
        pids.iter().all(|pid| pid_written(&t, pid))
    });
    signal(first.id(), libc::SIGINT);
    assert_eq!(first.wait().unwrap().code(), Some(130));
    for pid in pids {
        std::fs::remove_file(t.path(pid)).unwrap();
    }
    // One at a time: the other is left waiting for its retry.
    let mut second = spawn_orchestrate_with(&t, "out", &["-j", "1"]);
    wait_for("a task to start again", || {
        pids.iter().any(|pid| pid_written(&t, pid))
    });
    signal(second.id(), libc::SIGINT);
    assert_eq!(second.wait().unwrap().code(), Some(130));
    let said = t.read("out");
    assert!(
        said.contains(
            "runs again the 1 task this stop interrupted (not counted against its retries)"
        ),
        "{said}"
    );
}

/// The words a stopped run's summary says the command that goes on in:
/// `cargo xtask --root <tree> orchestrate<args>`.
fn goes_on_with(t: &Tree, args: &str) -> String {
    let root = t.path("").display().to_string();
    let next = format!(
        "cargo xtask --root {} orchestrate{args}",
        root.trim_end_matches('/')
    );
    format!("Stopped: the next `{next}` goes on from here")
}

/// A run on another executor than the config's (or with `-j`), stopped,
/// names the command that goes on there: a plain `orchestrate`, as it
/// said, ran the tasks it stopped on the config's `executor` (a Slurm
/// cluster's tasks on the machine one stands on), as widely as the
/// config lets.
#[test]
fn a_stopped_run_on_another_executor_says_to_go_on_there() {
    let t = Tree::new();
    t.config("executor: slurm\n");
    t.task("p/a", &waiting_task("a", "true"));
    let said = stopped_once_p_a_runs(&t, &["--executor", "local", "-j", "1"]);
    let next = goes_on_with(&t, " --executor local -j 1");
    assert!(said.contains(&next), "{said}");
}

/// A `monitor` stopped names a plain `orchestrate` to go on: it selects
/// only what the killed run left running, and said `orchestrate --task
/// p/a`, which starts nothing else, beside its own "Left for the next
/// `orchestrate`: ... p/b".
#[test]
fn a_stopped_monitor_says_to_go_on_with_everything() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    let mut first = spawn_orchestrate(&t, "out");
    wait_for("the task to start", || {
        pid_written(&t, "workspace/outputs/p/a/pid")
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let file = std::fs::File::create(t.path("monitored")).unwrap();
    let mut monitor = t
        .command(&["monitor"])
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    wait_for("monitor to take the task up", || {
        t.read("monitored").contains("still running, pid")
    });
    signal(monitor.id(), libc::SIGINT);
    assert_eq!(monitor.wait().unwrap().code(), Some(130));
    let said = t.read("monitored");
    assert!(
        said.contains(&format!("{}, and runs again", goes_on_with(&t, ""))),
        "{said}"
    );
}

/// A task whose shell starts a child that, told to stop, takes a second
/// to clean up (it writes `cleaned` then), and that goes on (`then`) once
/// the child's trap is set (it writes `ready`). Its kill_grace is long
/// enough for that cleanup.
fn task_with_a_cleaning_child(t: &Tree, frontmatter: &str, then: &str) {
    t.config("kill_grace: 30s");
    let child = r#"trap "sleep 1; echo cleaned > $TASK_OUTPUT_DIR/cleaned; exit 0" TERM; touch $TASK_OUTPUT_DIR/ready; while :; do sleep 0.1; done"#;
    let script = format!(
        "sh -c '{child}' &\nwhile [ ! -f $TASK_OUTPUT_DIR/ready ]; do sleep 0.01; done\n{then}"
    );
    t.task("p/a", &format!("{frontmatter}{}", sh(&script)));
}

/// The task's own process dies at once of a timeout's SIGTERM: what it
/// left, its cleanup under way, gets the rest of the grace, not SIGKILL
/// (it got it 0.1 s later).
#[test]
fn a_timeout_s_grace_outlives_the_task_s_own_process() {
    let t = Tree::new();
    task_with_a_cleaning_child(&t, "timeout: 2s\n", "wait");
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.status("p/a")["error"], "Timeout after 2s (its `timeout`)");
    let log = t.read("workspace/logs/p/a.log");
    assert!(t.exists("workspace/outputs/p/a/cleaned"), "{log}");
    assert!(!log.contains("SIGKILL"), "{log}");
}

/// The same of a stop (SIGTERM to the run): the task is interrupted, and
/// what it left finishes its cleanup in the grace.
#[test]
fn a_stop_s_grace_outlives_the_task_s_own_process() {
    let t = Tree::new();
    task_with_a_cleaning_child(&t, "", "wait");
    let mut orchestrator = spawn_orchestrate(&t, "out");
    wait_for("the child's trap", || {
        t.exists("workspace/outputs/p/a/ready")
    });
    signal(orchestrator.id(), libc::SIGTERM);
    assert_eq!(
        orchestrator.wait().unwrap().code(),
        Some(143),
        "{}",
        t.read("out")
    );
    assert_eq!(t.status("p/a")["error"], "interrupted");
    let log = t.read("workspace/logs/p/a.log");
    assert!(t.exists("workspace/outputs/p/a/cleaned"), "{log}");
    assert!(!log.contains("SIGKILL"), "{log}");
}

/// What a task that ended on its own left running gets SIGTERM first and
/// its grace (it got SIGKILL alone); the task's end stays its own process's.
#[test]
fn what_a_task_leaves_running_gets_sigterm_and_a_grace() {
    let t = Tree::new();
    task_with_a_cleaning_child(&t, "", "exit 0");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.status("p/a")["exit_code"], 0);
    let log = t.read("workspace/logs/p/a.log");
    assert!(t.exists("workspace/outputs/p/a/cleaned"), "{log}");
    assert!(
        log.contains("xtask: its process exited and left others running: SIGTERM sent"),
        "{log}"
    );
    assert!(!log.contains("SIGKILL"), "{log}");
}

/// A task that stopped itself (SIGSTOP) is continued after its SIGTERM,
/// so that its handler runs, rather than waiting out the grace for SIGKILL.
#[test]
fn a_stopped_task_is_continued_to_handle_its_sigterm() {
    let t = Tree::new();
    t.config("kill_grace: 30s");
    t.task(
        "p/a",
        &format!(
            "timeout: 2s\n{}",
            sh("trap 'echo cleaning; exit 0' TERM; kill -STOP $$; echo continued")
        ),
    );
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.status("p/a")["error"], "Timeout after 2s (its `timeout`)");
    let log = t.read("workspace/logs/p/a.log");
    assert!(log.contains("cleaning"), "{log}");
    // Its own line after the stop (not the supervisor's that it was
    // continued) never ran.
    assert!(!log.lines().any(|line| line == "continued"), "{log}");
    assert!(!log.contains("SIGKILL"), "{log}");
}

/// A descriptor the run was started with, beyond stdin, stdout and
/// stderr (a pipe of the shell that started it), reaches no task.
#[test]
fn a_descriptor_the_run_inherits_reaches_no_task() {
    use std::os::fd::AsRawFd;
    let t = Tree::new();
    t.task("p/a", &sh("ls -l /proc/$$/fd > $TASK_OUTPUT_DIR/fds"));
    t.write("inherited", "");
    let inherited = std::fs::File::open(t.path("inherited")).unwrap();
    let fd = inherited.as_raw_fd();
    let mut command = t.command(&["orchestrate"]);
    // SAFETY: dup2 is async-signal-safe; it leaves the copy inheritable.
    unsafe {
        command.pre_exec(move || match libc::dup2(fd, 7) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        })
    };
    let run: Run = command.output().unwrap().into();
    run.code(0);
    let fds = t.read("workspace/outputs/p/a/fds");
    assert!(!fds.contains("inherited"), "{fds}");
}

/// A run started by `make -j2` (a `+` rule, as make asks of a recursive
/// one): a make in a task runs without warning that the jobserver, whose
/// descriptors no task inherits, is unavailable.
#[test]
fn a_make_in_a_task_of_a_run_make_started_has_no_jobserver_to_miss() {
    let t = Tree::new();
    t.write("inner.mk", "all:\n\t@echo inner make ran\n");
    t.task(
        "p/a",
        &sh("make -s -f inner.mk; echo \"flags: $MAKEFLAGS.\""),
    );
    t.write(
        "outer.mk",
        &format!(
            "all:\n\t+@{BIN} --root {} orchestrate -q\n",
            t.root.display()
        ),
    );
    let out = std::process::Command::new("make")
        .args(["-s", "-j2", "-f", "outer.mk"])
        .current_dir(&t.root)
        .output()
        .expect("make runs");
    assert!(out.status.success(), "{out:?}");
    let log = t.read("workspace/logs/p/a.log");
    assert!(log.contains("inner make ran"), "{log}");
    assert!(!log.contains("jobserver"), "{log}");
}

#[test]
fn a_long_task_gets_its_pid_in_its_running_status() {
    let t = Tree::new();
    t.task("p/long", &waiting_task("long", "true"));
    let mut orchestrator = spawn_orchestrate(&t, "out");
    // The supervisor reports a start after a tick, the run writes the pid
    // after a second: what a later orchestrator adopts the task by.
    wait_for("the pid in the running status", || {
        pid_written(&t, "workspace/outputs/p/long/pid")
            && t.status("p/long")["pid"] == read_pid(&t.path("workspace/outputs/p/long/pid"))
    });
    assert_eq!(t.state("p/long"), "running");
    assert!(t.status("p/long")["pid_start"].is_u64());
    t.write("release-long", "");
    assert_eq!(
        orchestrator.wait().unwrap().code(),
        Some(0),
        "{}",
        t.read("out")
    );
}

/// A run of one waiting task `p/a`, once the task's pid is in its status:
/// the orchestrator, the task's pid and its supervisor's.
fn run_with_a_supervised_task(t: &Tree) -> (std::process::Child, u32, u32) {
    t.task("p/a", &waiting_task("a", "true"));
    let orchestrator = spawn_orchestrate(t, "out");
    let task_pid = || read_pid(&t.path("workspace/outputs/p/a/pid"));
    wait_for("the task's pid in its status", || {
        pid_written(t, "workspace/outputs/p/a/pid") && t.status("p/a")["pid"] == task_pid()
    });
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    (orchestrator, task_pid(), supervisor)
}

/// A task whose run and supervisor were killed before its pid was in its
/// status (its first second) runs on: the views find it as the next run
/// does (its pid file, its environment), not "its process is gone".
#[test]
fn the_views_find_a_task_running_on_that_its_status_does_not_name() {
    let t = Tree::new();
    let (mut orchestrator, task, supervisor) = run_with_a_supervised_task(&t);
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    signal(supervisor, libc::SIGKILL);
    wait_for("the supervisor to be gone", || !alive(supervisor));
    // As its status was in the task's first second.
    let mut status = t.status("p/a");
    let fields = status.as_object_mut().unwrap();
    fields.remove("pid");
    fields.remove("pid_start");
    t.write("workspace/status/p/a.json", &status.to_string());
    let json = progress_json(&t);
    let tasks = json["tasks"].as_array().unwrap();
    let line = tasks.iter().find(|l| l["task_id"] == "p/a").unwrap();
    assert_eq!(line["process_gone"], serde_json::Value::Null, "{line}");
    let why = t.run(&["why", "p/a"]);
    assert!(!why.stdout.contains("gone"), "{}", why.stdout);
    // As the next run finds it (adopted, its end unknown: lost).
    let mut next = spawn_orchestrate(&t, "out2");
    wait_for("the next run to adopt it", || {
        t.read("out2").contains("still running")
    });
    t.write("release-a", "");
    next.wait().unwrap();
    assert!(!alive(task));
}

/// A run of other tasks (`--task`, `--phase`, `launch`) that adopts a
/// task of a killed run and sees it fail leaves its retry to a run that
/// selects it: no slot of its own spent on work it was not asked for.
#[test]
fn a_run_of_other_tasks_leaves_an_adopted_failure_s_retry_alone() {
    let t = Tree::new();
    t.task(
        "p/agent",
        &format!("retries: 1\n{}", waiting_task("agent", "exit 3")),
    );
    t.task("p/wanted", &sh(MARK));
    let mut first = spawn_orchestrate(&t, "out");
    wait_for("p/agent to start", || t.launches("p/agent") == 1);
    first.kill().unwrap();
    first.wait().unwrap();
    t.write("release-agent", "");
    t.run(&["orchestrate", "--task", "p/wanted"])
        .code(0)
        .says("outside this run's selection; the next run that selects it runs it again");
    assert_eq!((t.launches("p/agent"), t.launches("p/wanted")), (1, 1));
    assert_eq!(t.state("p/agent"), "failed");
    // The next run that selects it tries it again.
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.launches("p/agent"), 3);
}

/// The same for one that hits a rate limit: the pause and the next try
/// are a run's that selects it; this one ends with its own work.
#[test]
fn a_run_of_other_tasks_leaves_an_adopted_rate_limited_task_alone() {
    let t = Tree::new();
    t.config("pools: {api: 2}\nrate_limits: {backoff: 1m, max_backoff: 1m}\n");
    let limited_once = "[ $TASK_ATTEMPT = 1 ] && echo '429 Too Many Requests' && exit 1; true";
    t.task(
        "p/agent",
        &format!("pool: api\n{}", waiting_task("agent", limited_once)),
    );
    t.task("p/wanted", &sh(MARK));
    let mut first = spawn_orchestrate(&t, "out");
    wait_for("p/agent to start", || t.launches("p/agent") == 1);
    first.kill().unwrap();
    first.wait().unwrap();
    t.write("release-agent", "");
    t.run(&["orchestrate", "--task", "p/wanted"]).code(0);
    assert_eq!((t.launches("p/agent"), t.launches("p/wanted")), (1, 1));
    // Its pause is in its status, for the next run that selects it.
    assert!(t.status("p/agent")["rate_limited_until"].is_string());
}

/// A task lost with its supervisor while no run looked: the dry run and
/// `next` plan it as the run will find it, failed (its retries spent),
/// what depends on it blocked, not as running to a success; with a retry
/// owed, tried again before what depends on it.
#[test]
fn the_dry_run_plans_a_lost_task_as_the_run_will_find_it() {
    let t = Tree::new();
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    let (mut orchestrator, task, supervisor) = run_with_a_supervised_task(&t);
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    signal(supervisor, libc::SIGKILL);
    signal(task, libc::SIGKILL);
    wait_for("the supervisor and the task to be gone", || {
        !alive(supervisor) && !alive(task)
    });
    t.run(&["orchestrate", "--dry-run"])
        .code(1)
        .says("p/a: lost (it and its supervisor are gone, no end recorded): the run records it failed")
        .says("would not start: p/b: blocked");
    t.run(&["next"]).says("p/a: lost (");
    // With a retry owed, it runs again first.
    let file = t.path("tasks/p/a.md");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("---\n", "---\nretries: 1\n", 1)).unwrap();
    let plan = t.run(&["orchestrate", "--dry-run"]);
    plan.code(0)
        .says("the run records it failed and tries it again");
    let (a, b) = (
        plan.stdout.find("  p/a  ").unwrap(),
        plan.stdout.find("  p/b  ").unwrap(),
    );
    assert!(a < b, "{}", plan.stdout);
    // A run of another task leaves it to a run that selects it.
    t.task("p/other", &sh("true"));
    let plan = t.run(&["orchestrate", "--task", "p/other", "--dry-run"]);
    assert!(!plan.stdout.contains("  p/a  "), "{}", plan.stdout);
    std::fs::remove_file(t.path("tasks/p/other.md")).unwrap();
    t.write("release-a", "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!((t.launches("p/a"), t.launches("p/b")), (2, 1));
}

/// An adopted task's status may name any slot (edited by hand, or written
/// by a run with a huge `-j`): the next run makes no slot below it, and
/// the task it starts beside takes the lowest free one.
#[test]
fn a_huge_slot_named_by_an_adopted_task_costs_nothing() {
    let t = Tree::new();
    let (mut first, _, _) = run_with_a_supervised_task(&t);
    first.kill().unwrap();
    first.wait().unwrap();
    let mut status = t.status("p/a");
    status["agent_id"] = "agent-4000000000".into();
    t.write("workspace/status/p/a.json", &status.to_string());
    t.task("p/b", &sh("true"));
    let mut second = t.start(&["orchestrate"]);
    wait_for("p/b to complete beside the adopted task", || {
        t.exists("workspace/status/p/b.json") && t.state("p/b") == "completed"
    });
    assert_eq!(t.status("p/b")["agent_id"], "agent-1");
    t.write("release-a", "");
    assert!(second.wait().unwrap().success());
    assert_eq!(t.status("p/a")["agent_id"], "agent-4000000000");
}

#[test]
fn a_supervisor_that_dies_stops_the_run_and_its_tasks() {
    let t = Tree::new();
    let (mut orchestrator, task, supervisor) = run_with_a_supervised_task(&t);
    signal(supervisor, libc::SIGKILL);
    wait_for("the orchestrator to exit", || {
        orchestrator.try_wait().unwrap().is_some()
    });
    let out = t.read("out");
    assert!(out.contains("the supervisor process died"), "{out}");
    assert_ne!(orchestrator.wait().unwrap().code(), Some(0), "{out}");
    wait_for("the task to be gone", || !alive(task));
}

/// SIGTERM to the supervisor of a live run stops the run as SIGTERM to the
/// orchestrator would: its task interrupted, nothing failed or blocked.
#[test]
fn a_supervisor_sent_sigterm_stops_its_run_as_the_orchestrator_would() {
    let t = Tree::new();
    t.task("p/after", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    let (mut orchestrator, task, supervisor) = run_with_a_supervised_task(&t);
    signal(supervisor, libc::SIGTERM);
    wait_for("the orchestrator to exit", || {
        orchestrator.try_wait().unwrap().is_some()
    });
    let out = t.read("out");
    assert_eq!(orchestrator.wait().unwrap().code(), Some(143), "{out}");
    assert!(out.contains("SIGTERM received"), "{out}");
    assert!(!alive(task));
    assert_eq!(t.status("p/a")["error"], "interrupted", "{out}");
    assert_eq!(t.launches("p/after"), 0);
    assert!(!t.exists("workspace/status/p/after.json"), "{out}");
}

/// A supervisor told to stop (SIGTERM) after its orchestrator died stops
/// its task and records its end, rather than dying at once and leaving it
/// to run unwatched (then found lost).
#[test]
fn a_supervisor_told_to_stop_stops_its_tasks_and_records_their_ends() {
    let t = Tree::new();
    let (mut orchestrator, task, supervisor) = run_with_a_supervised_task(&t);
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    signal(supervisor, libc::SIGTERM);
    wait_for("the task to be gone", || !alive(task));
    wait_for("the supervisor to be gone", || !alive(supervisor));
    t.run(&["monitor"]).code(1);
    assert_eq!(t.state("p/a"), "failed");
    assert_eq!(t.status("p/a")["error"], "interrupted", "{}", t.read("out"));
    let log = t.read("workspace/logs/p/a.log");
    assert!(log.contains("xtask: interrupted: SIGTERM sent"), "{log}");
}

/// A task adopted after its orchestrator and its supervisor were killed
/// together keeps its timeout: the run that took it up stops it as the
/// supervisor would have, says so in its log, and records `Timeout`.
#[test]
fn an_orphaned_task_keeps_its_timeout() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "timeout: 2s\n{}",
            sh("echo $$ > $TASK_OUTPUT_DIR/pid; sleep 20")
        ),
    );
    let mut orchestrator = spawn_orchestrate(&t, "out");
    let task = || read_pid(&t.path("workspace/outputs/p/a/pid"));
    wait_for("the task's pid in its status", || {
        pid_written(&t, "workspace/outputs/p/a/pid") && t.status("p/a")["pid"] == task()
    });
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    signal(supervisor, libc::SIGKILL);
    wait_for("the supervisor to be gone", || !alive(supervisor));
    let task = task();
    t.run(&["orchestrate"]).code(1).says("Timeout");
    assert_eq!(t.status("p/a")["error"], "Timeout after 2s (its `timeout`)");
    assert!(!alive(task));
    let log = t.read("workspace/logs/p/a.log");
    assert!(
        log.contains("xtask: timed out after 2s: SIGTERM sent to the task's processes"),
        "{log}"
    );
}

/// An agent whose orchestrator and supervisor were both killed goes on
/// printing: its stdout is a file, not a pipe whose reader died with the
/// supervisor (it died of SIGPIPE at its next line, its work and result
/// lost). The run that adopts it follows that file into its log, all of
/// it (what it printed meanwhile too); its end unknown, it is lost, and
/// its stdout is kept beside its log as its retry starts.
#[test]
fn an_agent_printing_after_its_supervisor_died_lives_on_and_its_output_is_kept() {
    for ended_first in [false, true] {
        let t = Tree::new();
        let agent = agent_outliving_its_supervisor(&t);
        if ended_first {
            t.write("markers/go", "");
            wait_for("the agent to end", || !alive(agent));
        }
        let mut next = spawn_orchestrate(&t, "out2");
        if !ended_first {
            wait_for("the next run to adopt it", || {
                std::fs::read_to_string(t.path("out2")).is_ok_and(|o| o.contains("adopt"))
            });
            assert!(alive(agent), "the agent died with its supervisor");
            t.write("markers/go", "");
        }
        wait_for("the next run to end", || next.try_wait().unwrap().is_some());
        let first = t.read("workspace/logs/p/a.attempt-1.log");
        let header = "xtask: its supervisor died while it ran: all it printed on stdout follows";
        let after = first
            .split(header)
            .nth(1)
            .unwrap_or_else(|| panic!("{first}"));
        // All of its stdout after the header, in order, the part printed
        // while no one followed it too.
        let lines: Vec<&str> = after.lines().filter(|l| l.contains("\"i\":")).collect();
        assert!(lines.len() >= 3 && lines[0].contains("\"i\":0}"), "{after}");
        assert!(after.contains("\"after\":\"go\""), "{after}");
        assert!(first.contains("wrote all"), "{first}");
        let kept = t.read("workspace/logs/p/a.attempt-1.stdout");
        assert!(kept.contains("\"type\":\"result\""), "{kept}");
        assert_eq!(t.state("p/a"), "completed", "{}", t.read("out2"));
        // What it reported is its own: its cost counted once, its session
        // resumed by its retry.
        let ledger = t.read("workspace/ledger.jsonl");
        let attempts: Vec<&str> = ledger
            .lines()
            .filter(|l| l.contains("\"attempt\":1,"))
            .collect();
        assert_eq!(attempts.len(), 1, "{ledger}");
        assert!(attempts[0].contains("\"cost_usd\":0.1629377"), "{ledger}");
        let session = "4b8e2f61-9c3a-4d17-b5e2-7a1f0c9d3e58\n";
        assert_eq!(t.read("markers/session"), session);
    }
}

/// An agent lost with its supervisor before it printed its result: with a
/// budget, the run says its cost is not counted, as for one stopped.
#[test]
fn a_lost_agent_s_uncounted_cost_is_said() {
    let t = Tree::new();
    let agent = agent_outliving_its_supervisor(&t);
    signal(agent, libc::SIGKILL);
    wait_for("the agent to be gone", || !alive(agent));
    t.config(&format!(
        "agent:\n  command: [sh, {}]\n  result: claude-json\nbudget: {{usd: 5}}\n",
        t.path("agent.sh").display()
    ));
    t.run(&["orchestrate"]).code(0).says(
        "warning: budget.usd is set, but p/a (attempt 1) was lost before its agent's cost could be read (lost: ",
    );
}

/// An agent lost with its supervisor after it printed its result, while no
/// orchestrator ran, is not blocked or reset before that result is
/// recorded: what it cost would never reach the ledger (the budget would
/// count short). Once `monitor` records it, its cost is counted once, and
/// `reset` goes ahead.
#[test]
fn an_agent_lost_after_printing_its_result_is_not_reset_before_its_cost_is_counted() {
    let t = Tree::new();
    let agent = agent_outliving_its_supervisor(&t);
    t.write("markers/go", "");
    wait_for("the agent to end", || !alive(agent));
    for command in [&["block", "p/a"][..], &["reset", "p/a"]] {
        t.run(command)
            .code(2)
            .says("p/a's agent printed its result ($0.16) after its supervisor died")
            .says(" monitor` (or `cargo xtask ")
            .says(" orchestrate`) records it first");
        assert_eq!(t.state("p/a"), "running");
    }
    // Lost, a failure: its cost counted, its session its retry's.
    t.run(&["monitor"]).code(1);
    let ledger = t.read("workspace/ledger.jsonl");
    assert_eq!(ledger.lines().count(), 1, "{ledger}");
    assert!(ledger.contains("\"cost_usd\":0.1629377"), "{ledger}");
    t.run(&["reset", "p/a"]).code(0);
}

/// An agent adopted from a run killed with its supervisor that prints its
/// result as the next run stops it (a CLI that says what it spent when
/// sent SIGTERM) has its cost counted, as when its own supervisor saw it
/// end: no record of its end, but its stdout is this attempt's.
#[test]
fn an_adopted_agent_that_prints_its_result_as_the_run_stops_it_is_counted() {
    let t = Tree::new();
    claude_agent(
        &t,
        "trap 'cat {result}; exit 143' TERM\necho $$ > pid\nwhile true; do sleep 0.05; done\n",
        "kill_grace: 5s\nbudget: {usd: 5}\n",
    );
    t.task("p/a", "retries: 1");
    let mut first = spawn_orchestrate(&t, "out");
    wait_for("the agent's pid in its status", || {
        t.exists("workspace/status/p/a.json") && t.status("p/a")["pid"].as_u64().is_some()
    });
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    first.kill().unwrap();
    first.wait().unwrap();
    signal(supervisor, libc::SIGKILL);
    wait_for("the supervisor to be gone", || !alive(supervisor));
    let mut next = spawn_orchestrate(&t, "out2");
    wait_for("the next run to adopt it", || {
        std::fs::read_to_string(t.path("out2")).is_ok_and(|o| o.contains("adopt"))
    });
    signal(next.id(), libc::SIGTERM);
    assert_eq!(next.wait().unwrap().code(), Some(143), "{}", t.read("out2"));
    assert!(!alive(read_pid(&t.path("pid"))));
    let said = t.read("out2");
    assert!(!said.contains("is not counted"), "{said}");
    let ledger = std::fs::read_to_string(t.path("workspace/ledger.jsonl")).unwrap_or_default();
    assert_eq!(ledger.lines().count(), 1, "{ledger}");
    assert!(ledger.contains("\"cost_usd\":0.1629377"), "{ledger}");
    assert_eq!(progress_json(&t)["budget"]["spent_usd"], 0.1629377);
    assert_eq!(t.status("p/a")["error"], "interrupted");
}

/// The run that adopts an agent whose supervisor died finds a question
/// it asks on stderr right after a line on stdout: its stdout, which
/// nothing copies into its log then, is looked at beside the log.
#[test]
fn an_orphaned_agent_s_question_after_a_line_on_stdout_is_found() {
    let t = Tree::new();
    let agent = agent_outliving_its_supervisor(&t);
    t.config(&format!(
        "prompt_idle: 1s\nkill_grace: 1s\nagent:\n  command: [sh, {}]\n  result: claude-json\n",
        t.path("agent.sh").display()
    ));
    let mut next = spawn_orchestrate(&t, "out2");
    wait_for("the next run to adopt it", || {
        std::fs::read_to_string(t.path("out2")).is_ok_and(|o| o.contains("adopt"))
    });
    t.write("markers/ask", "");
    t.write("markers/go", "");
    wait_for("the next run to end", || next.try_wait().unwrap().is_some());
    assert!(!alive(agent));
    let said = t.read("out2");
    assert!(
        said.contains("waiting for input: Shall I go on? (y/n)"),
        "{said}"
    );
}

/// An agent task (retried once, its second attempt succeeding at once)
/// whose orchestrator and supervisor are killed while it prints a line
/// every 50 ms; it goes on until `markers/go` is made, then prints its
/// result. Returns its pid once it printed after the kill.
fn agent_outliving_its_supervisor(t: &Tree) -> u32 {
    let result = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/agents/claude/success.json"
    );
    let m = t.path("markers");
    std::fs::create_dir_all(&m).unwrap();
    let m = m.display();
    t.write(
        "agent.sh",
        &format!(
            "[ \"$TASK_ATTEMPT\" = 2 ] && echo \"$TASK_PREVIOUS_SESSION_ID\" > {m}/session && exec cat {result}
echo $$ > {m}/pid
i=0
while [ ! -e {m}/go ] && [ $i -lt 1200 ]; do echo '{{\"type\":\"assistant\",\"i\":'$i'}}'; sleep 0.05; i=$((i+1)); done
echo '{{\"type\":\"assistant\",\"after\":\"go\"}}'
[ -e {m}/ask ] && sleep 0.1 && echo 'Shall I go on? (y/n)' >&2 && sleep 60
echo 'wrote all' >&2
cat {result}
"
        ),
    );
    t.config(&format!(
        "agent:\n  command: [sh, {}]\n  result: claude-json\n",
        t.path("agent.sh").display()
    ));
    t.task("p/a", "retries: 1");
    let log = || std::fs::read_to_string(t.path("workspace/logs/p/a.log")).unwrap_or_default();
    let mut orchestrator = spawn_orchestrate(t, "out");
    wait_for("the agent's output in its log", || {
        log().contains("\"i\":1}") && t.status("p/a")["supervisor_pid"].as_u64().is_some()
    });
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    let agent = read_pid(&t.path("markers/pid"));
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    signal(supervisor, libc::SIGKILL);
    wait_for("the supervisor to be gone", || !alive(supervisor));
    let printed = || std::fs::metadata(t.path("workspace/logs/p/a.stdout")).map_or(0, |m| m.len());
    let before = printed();
    wait_for("the agent to go on printing", || printed() > before);
    agent
}

/// A run of one task that ignores SIGTERM and SIGINT, with `grace` before
/// SIGKILL; returned once the task has started.
fn stubborn_run(t: &Tree, grace: &str) -> std::process::Child {
    t.config(&format!("kill_grace: {grace}\n"));
    t.task(
        "p/stubborn",
        &sh("trap '' TERM INT; echo $$ > $TASK_OUTPUT_DIR/pid; while true; do sleep 0.05; done"),
    );
    let orchestrator = spawn_orchestrate(t, "out");
    wait_for("the task to start", || {
        pid_written(t, "workspace/outputs/p/stubborn/pid")
    });
    orchestrator
}

/// Checks that the run exits 130 with its stubborn task gone; its log.
fn interrupted_log(t: &Tree, mut orchestrator: std::process::Child) -> String {
    wait_for("the orchestrator to exit", || {
        orchestrator.try_wait().unwrap().is_some()
    });
    assert_eq!(orchestrator.wait().unwrap().code(), Some(130));
    assert!(!alive(read_pid(
        &t.path("workspace/outputs/p/stubborn/pid")
    )));
    assert_eq!(t.status("p/stubborn")["error"], "interrupted");
    t.read("workspace/logs/p/stubborn.log")
}

/// The terminal closed (SIGHUP): the run stops as for Ctrl-C, and exits
/// 128 + 1, as README's table says.
#[test]
fn sighup_stops_the_run_with_exit_129() {
    let t = Tree::new();
    let (mut orchestrator, task, _) = run_with_a_supervised_task(&t);
    signal(orchestrator.id(), libc::SIGHUP);
    assert_eq!(orchestrator.wait().unwrap().code(), Some(129));
    assert!(!alive(task));
    assert_eq!(t.status("p/a")["error"], "interrupted");
}

/// A run started with SIGHUP ignored (`nohup`, so that it outlives its
/// terminal) goes on through a hang-up: the first signal it acts on is
/// the SIGTERM sent after it.
#[test]
fn a_run_under_nohup_goes_on_through_a_hang_up() {
    use std::os::unix::process::CommandExt;
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "true"));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut command = t.command(&["orchestrate"]);
    command.stdout(out.try_clone().unwrap()).stderr(out);
    // SAFETY: signal is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        })
    };
    let mut orchestrator = command.spawn().unwrap();
    wait_for("the task to run", || {
        pid_written(&t, "workspace/outputs/p/a/pid")
    });
    signal(orchestrator.id(), libc::SIGHUP);
    signal(orchestrator.id(), libc::SIGTERM);
    assert_eq!(orchestrator.wait().unwrap().code(), Some(143));
    let said = t.read("out");
    assert!(said.contains("SIGTERM received"), "{said}");
    assert!(!said.contains("SIGHUP"), "{said}");
}

#[test]
fn one_ctrl_c_gives_a_stubborn_task_its_grace_then_sigkill() {
    let t = Tree::new();
    let orchestrator = stubborn_run(&t, "1s");
    signal(orchestrator.id(), libc::SIGINT);
    let log = interrupted_log(&t, orchestrator);
    assert!(log.contains("SIGTERM sent"), "{log}");
    // Killed when its grace ran out (by whichever of the run and the
    // supervisor saw it first), not as if interrupted twice, and said.
    assert!(!log.contains("interrupted again"), "{log}");
    assert_eq!(
        log.matches("xtask: still running 1s after SIGTERM: SIGKILL sent")
            .count(),
        1,
        "{log}"
    );
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let t = Tree::new();
    // A grace far longer than the wait below: only the second Ctrl-C ends this.
    let orchestrator = stubborn_run(&t, "1h");
    signal(orchestrator.id(), libc::SIGINT);
    wait_for("the first Ctrl-C to be handled", || {
        t.read("out").contains("SIGINT received: stopping 1")
    });
    signal_until(orchestrator.id(), libc::SIGINT, "the second Ctrl-C", || {
        t.read("workspace/logs/p/stubborn.log")
            .contains("xtask: interrupted again: SIGKILL sent")
    });
    interrupted_log(&t, orchestrator);
}

/// A try the run interrupted, the run killed before its stop ended (a
/// task slow to stop) and resumed: the try is not held against the task's
/// retries, which a failure after it still has.
#[test]
fn a_try_interrupted_by_a_run_killed_while_stopping_spares_the_retries() {
    let t = Tree::new();
    t.config("kill_grace: 1h\nmax_memory_gb: 0.25\n");
    t.task(
        "p/a",
        &format!(
            "retries: 1\n{}",
            sh(&format!(
                "{MARK}; [ $TASK_ATTEMPT -ge 2 ] && exit 1; while true; do sleep 0.05; done"
            ))
        ),
    );
    t.task(
        "p/slow",
        &sh("[ $TASK_ATTEMPT -ge 2 ] && exit 0; trap 'while [ ! -f release ]; do sleep 0.02; done; exit 0' TERM; echo $$ > $TASK_OUTPUT_DIR/pid; while true; do sleep 0.05; done"),
    );
    let mut run = spawn_orchestrate(&t, "out");
    wait_for("both tasks to run", || {
        t.launches("p/a") == 1 && pid_written(&t, "workspace/outputs/p/slow/pid")
    });
    signal(run.id(), libc::SIGTERM);
    wait_for("p/a's try to be interrupted", || {
        t.exists("workspace/status/p/a.json") && t.status("p/a")["error"] == "interrupted"
    });
    run.kill().unwrap();
    run.wait().unwrap();
    t.write("release", "");
    t.run(&["orchestrate"]).code(1);
    // Attempt 2 failed, and was retried: the interrupted one was no try.
    assert_eq!(t.launches("p/a"), 3);
    assert_eq!(t.status("p/a")["attempt"], 3);
}

/// A stop cut short by SIGKILL to everything (a service manager's stop
/// whose grace is shorter than `kill_grace`): the task the run was
/// stopping is found interrupted by the next run, and tried again, not
/// lost (a failure that would block its dependents).
#[test]
fn a_task_whose_stop_was_cut_short_by_a_kill_of_everything_is_interrupted() {
    let t = Tree::new();
    let (supervisor, task) = stop_cut_short(&t, "");
    // Marked as README says: `run.json`'s `stopping`, and the mark beside.
    let run: serde_json::Value = serde_json::from_str(&t.read("workspace/run.json")).unwrap();
    assert_eq!(run["stopping"], true, "{run}");
    assert!(t.exists("workspace/run.stopping"));
    signal(supervisor, libc::SIGKILL);
    signal(task, libc::SIGKILL);
    wait_for("the supervisor and the task to be gone", || {
        !alive(supervisor) && !alive(task)
    });
    t.run(&["orchestrate"]).code(0).says("interrupted");
    assert_eq!((t.launches("p/slow"), t.launches("q/after")), (2, 1));
}

/// A run stopping `p/slow` (which ignores SIGTERM; `q/after` waits on
/// it; its frontmatter begins with `extra`) is killed before the stop
/// ends: the pids of its supervisor and of the task, both alive.
fn stop_cut_short(t: &Tree, extra: &str) -> (u32, u32) {
    t.config("kill_grace: 1h\n");
    t.task(
        "p/slow",
        &format!(
            "{extra}{}",
            sh(&format!("{MARK}; [ $TASK_ATTEMPT -ge 2 ] && exit 0; trap 'while true; do sleep 0.05; done' TERM; echo $$ > $TASK_OUTPUT_DIR/pid; while true; do sleep 0.05; done"))
        ),
    );
    t.task("q/after", &format!("dependencies: [p/slow]\n{}", sh(MARK)));
    let mut run = spawn_orchestrate(t, "out");
    wait_for("the task to run", || {
        pid_written(t, "workspace/outputs/p/slow/pid")
            && t.status("p/slow")["supervisor_pid"].is_u64()
    });
    let supervisor = t.status("p/slow")["supervisor_pid"].as_u64().unwrap() as u32;
    let task = read_pid(&t.path("workspace/outputs/p/slow/pid"));
    signal(run.id(), libc::SIGTERM);
    wait_for("the stop", || t.read("out").contains("SIGTERM received"));
    run.kill().unwrap();
    run.wait().unwrap();
    (supervisor, task)
}

/// A task that outlived a stop cut short (it ignores SIGTERM), adopted
/// with its supervisor by the next run, and lost later with it (the OOM
/// killer taking both): lost, a failure, not taken for the stop's doing.
#[test]
fn a_task_that_outlived_a_cut_short_stop_and_is_lost_later_is_lost() {
    outlived_a_cut_short_stop(false);
}

/// The same, its supervisor killed with the run: adopted running on
/// alone, and lost later, while the next run watched it.
#[test]
fn a_task_that_outlived_a_cut_short_stop_and_its_supervisor_is_lost_later() {
    outlived_a_cut_short_stop(true);
}

/// A run stopping a task that ignores SIGTERM is killed (and its
/// supervisor with it, `supervisor_too`); the next run adopts the task,
/// which then dies with its supervisor: lost, no retry.
fn outlived_a_cut_short_stop(supervisor_too: bool) {
    let t = Tree::new();
    let (supervisor, task) = stop_cut_short(&t, "retries: 0\n");
    if supervisor_too {
        signal(supervisor, libc::SIGKILL);
        wait_for("the supervisor to be gone", || !alive(supervisor));
    }
    let mut second = spawn_orchestrate(&t, "out2");
    wait_for("the adoption", || {
        t.read("out2").contains("adopt    p/slow")
    });
    signal(supervisor, libc::SIGKILL);
    signal(task, libc::SIGKILL);
    wait_for("the run to end", || second.try_wait().unwrap().is_some());
    assert_eq!(second.wait().unwrap().code(), Some(1), "{}", t.read("out2"));
    assert_eq!(t.status("p/slow")["ending"], "lost");
    assert_eq!((t.launches("p/slow"), t.launches("q/after")), (1, 0));
}

/// One request to stop delivered twice at once (GNU `timeout` sends its
/// SIGTERM to the run and again to its process group) gives the tasks
/// their grace: it is not a second Ctrl-C.
#[test]
fn a_stop_delivered_twice_at_once_gives_the_tasks_their_grace() {
    let t = Tree::new();
    let mut orchestrator = stubborn_run(&t, "1s");
    // Two kinds: two of one kind pending at once would merge into one.
    signal(orchestrator.id(), libc::SIGTERM);
    signal(orchestrator.id(), libc::SIGINT);
    // Whichever the run took first (both pending, SIGINT).
    let code = orchestrator.wait().unwrap().code();
    assert!(matches!(code, Some(130 | 143)), "{code:?}");
    let log = t.read("workspace/logs/p/stubborn.log");
    assert!(!log.contains("interrupted again"), "{log}");
    assert!(
        log.contains("xtask: still running 1s after SIGTERM: SIGKILL sent"),
        "{log}"
    );
    assert!(!t.read("out").contains("Killing every running task now"));
}

/// A task adopted from a killed orchestrator, stopped by the next one's
/// Ctrl-C: interrupted, as a task of its own would be (its supervisor,
/// the earlier one's, saw only a signal from outside), and said in its log.
#[test]
fn an_adopted_task_stopped_by_ctrl_c_is_interrupted() {
    let t = Tree::new();
    let mut first = stubborn_run(&t, "1s");
    first.kill().unwrap();
    first.wait().unwrap();
    let second = spawn_orchestrate(&t, "out");
    wait_for("the adoption", || {
        t.read("out").contains("adopt    p/stubborn")
    });
    signal(second.id(), libc::SIGINT);
    let log = interrupted_log(&t, second);
    assert_eq!(t.status("p/stubborn")["ending"], "interrupted");
    assert!(
        log.contains("xtask: interrupted: SIGTERM sent to the task's processes"),
        "{log}"
    );
    assert!(
        log.contains("xtask: still running 1s after SIGTERM: SIGKILL sent"),
        "{log}"
    );
}

/// A Ctrl-C that comes before the run knows an adopted task's pid (its
/// status named none: the killed run had it for under a second; its
/// supervisor, held here by SIGSTOP, had not written it) sends the task
/// its SIGTERM once the pid is known, not only SIGKILL after the grace
/// (an hour here: without the SIGTERM the run would not end).
#[test]
fn an_adopted_task_whose_pid_comes_late_still_gets_its_sigterm() {
    let t = Tree::new();
    t.config("kill_grace: 1h\n");
    t.task("p/a", &sh("echo $$ > $TASK_OUTPUT_DIR/pid; exec sleep 300"));
    let (second, supervisor) = adopted_with_its_supervisor_held(&t, "p/a");
    signal(second.id(), libc::SIGINT);
    wait_for("the stop", || t.read("out2").contains("SIGINT received"));
    let log = let_the_supervisor_go_and_end(&t, second, supervisor, "p/a");
    assert!(
        log.contains("xtask: interrupted: SIGTERM sent to the task's processes"),
        "{log}"
    );
}

/// The same with a second Ctrl-C before the pid is known, on a task that
/// ignores SIGTERM: it gets its SIGKILL once the pid is known (it got a
/// SIGTERM, and the run waited on it for good).
#[test]
fn an_adopted_task_whose_pid_comes_late_is_killed_by_a_second_ctrl_c() {
    let t = Tree::new();
    t.config("kill_grace: 1h\n");
    t.task(
        "p/a",
        &sh("trap '' TERM INT; echo $$ > $TASK_OUTPUT_DIR/pid; while true; do sleep 0.05; done"),
    );
    let (second, supervisor) = adopted_with_its_supervisor_held(&t, "p/a");
    signal(second.id(), libc::SIGINT);
    wait_for("the stop", || t.read("out2").contains("SIGINT received"));
    signal_until(second.id(), libc::SIGINT, "the second interrupt", || {
        t.read("out2").contains("Killing every running task now")
    });
    let log = let_the_supervisor_go_and_end(&t, second, supervisor, "p/a");
    assert!(
        log.contains("xtask: interrupted again: SIGKILL sent to the task's processes"),
        "{log}"
    );
}

/// Task `id` started by a run killed at once (before it wrote the task's
/// pid in its status), its supervisor held by SIGSTOP (so it writes no pid
/// file either), and adopted by a second run: that run and the
/// supervisor's pid.
fn adopted_with_its_supervisor_held(t: &Tree, id: &str) -> (std::process::Child, u32) {
    let mut first = spawn_orchestrate(t, "out1");
    let pid_file = format!("workspace/outputs/{id}/pid");
    wait_for("the task to start", || pid_written(t, &pid_file));
    let supervisor = t.status(id)["supervisor_pid"].as_u64().unwrap() as u32;
    signal(supervisor, libc::SIGSTOP);
    first.kill().unwrap();
    first.wait().unwrap();
    let second = spawn_orchestrate(t, "out2");
    let adopted = format!("adopt    {id}");
    wait_for("the adoption", || t.read("out2").contains(&adopted));
    (second, supervisor)
}

/// Lets the held supervisor go (it writes the task's pid), then checks that
/// the run ends 130 with task `id` interrupted and gone; its log.
fn let_the_supervisor_go_and_end(
    t: &Tree,
    mut run: std::process::Child,
    supervisor: u32,
    id: &str,
) -> String {
    signal(supervisor, libc::SIGCONT);
    wait_for("the run to end", || run.try_wait().unwrap().is_some());
    assert_eq!(run.wait().unwrap().code(), Some(130));
    assert_eq!(t.status(id)["ending"], "interrupted");
    let pid_file = t.path(&format!("workspace/outputs/{id}/pid"));
    assert!(!alive(read_pid(&pid_file)));
    t.read(&format!("workspace/logs/{id}.log"))
}

/// A task of a killed run, its phase's timeout raised in the config
/// before the next run adopts it, is stopped by its supervisor at the
/// timeout it started with: its error names that one, and the one set
/// now. It named the one set now (`Timeout after 1h`), which had stopped
/// nothing.
#[test]
fn an_adopted_task_s_timeout_is_the_one_it_started_with() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nphases:\n  p: {timeout: 3s}\n");
    t.task("p/slow", &sh("touch started; sleep 60"));
    let mut first = spawn_orchestrate(&t, "first.out");
    wait_for("p/slow to start", || t.exists("started"));
    wait_for("its running status", || t.state("p/slow") == "running");
    first.kill().unwrap();
    first.wait().unwrap();
    t.config("kill_grace: 1s\nphases:\n  p: {timeout: 1h}\n");
    let said =
        "Timeout after 3s (its limit as it started; now 1h, its phase's, `phases.p.timeout`)";
    t.run(&["orchestrate"]).code(1).says(said);
    assert_eq!(t.status("p/slow")["error"], said);
    // Unchanged, the error says where it is set, as ever.
    t.run(&["reset", "p/slow"]).code(0);
    t.config("kill_grace: 1s\nphases:\n  p: {timeout: 1s}\n");
    t.run(&["orchestrate"])
        .code(1)
        .says("Timeout after 1s (its phase's, `phases.p.timeout`)");
}

/// An adopted task that catches SIGTERM and exits with its own code is
/// interrupted too, as a task of the run's own would be.
#[test]
fn an_adopted_task_that_exits_on_sigterm_is_interrupted() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh("trap 'exit 1' TERM; echo $$ > $TASK_OUTPUT_DIR/pid; while true; do sleep 0.05; done"),
    );
    let mut first = spawn_orchestrate(&t, "first");
    wait_for("the task to start", || {
        pid_written(&t, "workspace/outputs/p/a/pid")
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let mut second = spawn_orchestrate(&t, "out");
    wait_for("the adoption", || t.read("out").contains("adopt    p/a"));
    signal(second.id(), libc::SIGTERM);
    assert_eq!(
        second.wait().unwrap().code(),
        Some(143),
        "{}",
        t.read("out")
    );
    assert_eq!(t.status("p/a")["error"], "interrupted", "{}", t.read("out"));
}

#[test]
fn an_idle_task_is_killed_and_a_talking_one_is_not() {
    let t = Tree::new();
    t.task(
        "p/hung",
        &format!(
            "idle_timeout: 1s\n{}",
            sh("echo waiting for input; sleep 600")
        ),
    );
    t.task(
        "p/talks",
        &format!(
            "idle_timeout: 1s\n{}",
            sh("for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.2; done")
        ),
    );
    t.run(&["orchestrate"]).code(1);
    assert_eq!(
        t.status("p/hung")["error"],
        "Idle timeout: its log did not grow for 1s (its `idle_timeout`)"
    );
    assert_eq!(t.state("p/talks"), "completed");
}

/// A task whose idle timeout, shorter than `prompt_idle`, stops it while
/// its log ends with a question is said waiting for input, the question
/// named, as the question watch says it: it was said idle, as if it had
/// hung silently.
#[test]
fn a_question_its_idle_timeout_stops_is_said_a_question() {
    let t = Tree::new();
    let asks = "echo working; printf 'Continue? (y/n) '; sleep 600";
    t.task(
        "p/a",
        &format!("idle_timeout: 1s\ntimeout: 1m\n{}", sh(asks)),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("p/a: waiting for input: Continue? (y/n)");
    assert_eq!(t.status("p/a")["ending"], "waiting_for_input");
    let log = t.read("workspace/logs/p/a.log");
    let said = "xtask: waiting for input: its log has been still for 1s and ends with a question";
    assert!(log.contains(said), "{log}");
}

/// A task that stops itself (SIGTSTP, as a program suspending itself
/// does) waits for a SIGCONT nothing sends, until its timeout: its log
/// says so as it stops, so that `progress` (and the live view) show it
/// stopped, not working; continued, it says so and runs to its end.
#[test]
fn a_task_that_stops_itself_is_said_stopped_until_continued() {
    let t = Tree::new();
    let stops = "echo $$ > pid; echo working; kill -TSTP $$; \
                 while [ ! -f release ]; do sleep 0.02; done; echo resumed";
    t.task("p/a", &format!("timeout: 10m\n{}", sh(stops)));
    let mut run = t.start(&["orchestrate"]);
    let log = || std::fs::read_to_string(t.path("workspace/logs/p/a.log")).unwrap_or_default();
    wait_for("the task to be said stopped", || {
        log().contains("xtask: its process was stopped by SIGTSTP")
    });
    let last = progress_task(&t, "p/a")["last_log_line"].clone();
    assert!(
        last.as_str().unwrap().contains("stopped by SIGTSTP"),
        "{last}"
    );
    signal(read_pid(&t.path("pid")), libc::SIGCONT);
    wait_for("the task to be said continued", || {
        log().contains("xtask: its process was continued")
    });
    t.write("release", "");
    assert!(run.wait().unwrap().success());
    let log = log();
    assert!(
        log.ends_with("xtask: its process was continued\nresumed\n"),
        "{log}"
    );
}

/// A task that stops itself again each time it is continued prints
/// nothing: the log's lines that say so are the run's, not its output,
/// and its idle timeout stops it (they were taken for growth, and only
/// its timeout did).
#[test]
fn a_task_said_stopped_and_continued_is_still_idle() {
    let t = Tree::new();
    let stops = "echo $$ > pid; echo working; while :; do kill -TSTP $$; done";
    t.task(
        "p/a",
        &format!("idle_timeout: 1s\ntimeout: 20s\n{}", sh(stops)),
    );
    continued_until_the_run_ends(&t);
    assert_eq!(t.status("p/a")["ending"], "idle_timeout");
}

/// A task stopped and continued as it asks a question is stopped as
/// waiting for input: the lines that say it was stopped and continued are
/// the run's, not what it asked last (they hid the question, and only its
/// timeout stopped it).
#[test]
fn a_question_the_run_said_a_stop_after_is_still_the_question() {
    let t = Tree::new();
    t.config("prompt_idle: 1s\n");
    let asks = "printf 'Proceed? (y/n) '; echo $$ > pid; kill -TSTP $$; sleep 30";
    t.task("p/a", &format!("timeout: 20s\n{}", sh(asks)));
    let log = continued_until_the_run_ends(&t);
    let status = t.status("p/a");
    assert_eq!(status["ending"], "waiting_for_input", "{status}\n{log}");
}

/// Runs the graph, whose task `p/a` writes its pid to `pid` and stops
/// itself (SIGTSTP): continued (SIGCONT) until the run ends. Returns its log.
fn continued_until_the_run_ends(t: &Tree) -> String {
    let mut run = t.start(&["orchestrate"]);
    let log = || std::fs::read_to_string(t.path("workspace/logs/p/a.log")).unwrap_or_default();
    wait_for("the task to stop itself", || {
        log().contains("stopped by SIGTSTP")
    });
    let pid = read_pid(&t.path("pid"));
    signal_until(pid, libc::SIGCONT, "the run's end", || {
        run.try_wait().unwrap().is_some()
    });
    log()
}

/// A talking task whose log's times are ahead of this machine's clock
/// (a file server's clock ahead of ours) is not taken for idle: a log
/// written "in the future" was written just now, not never.
#[test]
fn a_talking_task_whose_log_s_clock_is_ahead_is_not_taken_for_idle() {
    let t = Tree::new();
    // It talks for 2 s, each line's time set a minute ahead.
    let talks = "for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; \
                 touch -d @$(( $(date +%s) + 60 )) $TASK_LOG; sleep 0.2; done";
    t.task("p/talks", &format!("idle_timeout: 1s\n{}", sh(talks)));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/talks"), "completed");
}

#[test]
fn a_talking_task_whose_log_was_removed_is_not_taken_for_idle() {
    let t = Tree::new();
    // It talks for 2 s, into a log removed under it after its first line.
    let talks = "echo 0; touch started; for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.2; done";
    t.task("p/talks", &format!("idle_timeout: 1s\n{}", sh(talks)));
    let mut run = t.start(&["orchestrate"]);
    wait_for("the task to talk", || t.exists("started"));
    std::fs::remove_file(t.path("workspace/logs/p/talks.log")).unwrap();
    assert!(run.wait().unwrap().success());
    assert_eq!(t.state("p/talks"), "completed");
}

/// `workspace/logs` removed during the run (old logs cleared by hand, to
/// free space): a task that starts after makes its log's folder again.
/// The run made each folder of logs once, and every later task of that
/// folder failed as it started (`cannot create log ...: No such file or
/// directory`), blocking what waits on it.
#[test]
fn the_logs_folder_removed_during_the_run_is_made_again() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh("touch started; while [ ! -e go ]; do sleep 0.01; done"),
    );
    t.task(
        "p/b",
        &format!("dependencies: [p/a]\n{}", sh("echo said by b")),
    );
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a to run", || t.exists("started"));
    std::fs::remove_dir_all(t.path("workspace/logs")).unwrap();
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert_eq!(t.state("p/b"), "completed");
    assert_eq!(t.read("workspace/logs/p/b.log"), "said by b\n");
}

#[test]
fn a_folder_where_a_status_goes_is_named_and_left_alone() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.write("workspace/status/p/a.json/notes", "a person's\n");
    t.run(&["orchestrate"])
        .code(1)
        .says("workspace/status/p/a.json: a folder is there; move it away");
    assert_eq!(t.read("workspace/status/p/a.json/notes"), "a person's\n");
    assert!(!t.exists("workspace/status/p/.a.json.prev"));
}

/// A timeout's error names the limit that ended the task, its value and
/// where it is set (the task's own, or its phase's), in its status, the
/// summary and `why`: each said `Timeout` or `Idle timeout`, which of the
/// limits, and how long, only the log told.
#[test]
fn a_timeout_s_error_names_the_limit_that_ended_it() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nphases:\n  agents: {timeout: 3s, idle_timeout: 1s}\n");
    let talks = "while true; do echo talking; sleep 0.2; done";
    t.task("01-agents/quiet", &sh("sleep 600"));
    t.task("01-agents/talks", &sh(talks));
    t.task("01-agents/own", &format!("timeout: 1s\n{}", sh(talks)));
    t.task(
        "01-agents/own-idle",
        &format!("idle_timeout: 2s\ntimeout: 1h\n{}", sh("sleep 600")),
    );
    let run = t.run(&["orchestrate"]);
    run.code(1);
    let expected = [
        (
            "01-agents/quiet",
            "Idle timeout: its log did not grow for 1s (its phase's, `phases.agents.idle_timeout`)",
        ),
        (
            "01-agents/talks",
            "Timeout after 3s (its phase's, `phases.agents.timeout`)",
        ),
        ("01-agents/own", "Timeout after 1s (its `timeout`)"),
        (
            "01-agents/own-idle",
            "Idle timeout: its log did not grow for 2s (its `idle_timeout`)",
        ),
    ];
    for (id, error) in expected {
        assert_eq!(t.status(id)["error"], error);
        run.says(error);
        t.run(&["why", id]).code(0).says(error);
    }
}

/// A stopped task that traps SIGTERM gets its SIGKILL after the grace
/// from the run too, a safety net should its supervisor fail to: the
/// SIGKILL is said once in its log, by whichever sends it first. The
/// supervisor is held (SIGSTOP) past the grace, so that the run's comes
/// first; let go, the supervisor, whose own time had come, said it again
/// of the task already dead, not yet reaped (as a supervisor slowed by a
/// loaded machine would).
#[test]
fn a_task_stopped_past_its_grace_has_its_sigkill_said_once() {
    let t = Tree::new();
    t.config("kill_grace: 1s\n");
    t.task(
        "p/a",
        &sh("trap 'echo got term' TERM; touch started; while true; do sleep 0.05; done"),
    );
    let mut run = t.start(&["orchestrate"]);
    // Its pid known to the run, whose SIGKILL goes to it.
    wait_for("the task to run, its pid recorded", || {
        t.exists("started") && t.status("p/a")["pid"].is_u64()
    });
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    let task = t.status("p/a")["pid"].as_u64().unwrap() as u32;
    signal(run.id(), libc::SIGTERM);
    let log = || t.read("workspace/logs/p/a.log");
    wait_for("the task's SIGTERM", || log().contains("got term"));
    signal(supervisor, libc::SIGSTOP);
    // The run says its SIGKILL, then sends it: the supervisor is held
    // until the task is dead (a zombie its slot has not reaped), as a
    // supervisor slowed past the grace finds it. Continued in between,
    // both would see the task alive and say it (the instant's race).
    wait_for("the run's SIGKILL", || {
        log().contains("SIGKILL sent") && !alive(task)
    });
    signal(supervisor, libc::SIGCONT);
    assert_eq!(run.wait().unwrap().code(), Some(143));
    assert_eq!(log().matches("SIGKILL sent").count(), 1, "{}", log());
}

/// A status the run cannot write (a folder put where it goes while its
/// task ran) holds back no other: the task the run stops for it is
/// recorded as the run says, `interrupted`. Each later final status
/// waited behind the one that could not be written, and was left
/// `running`, its process gone.
#[test]
fn a_status_that_cannot_be_written_holds_back_no_other() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh("touch a-started; while [ ! -e go ]; do sleep 0.01; done"),
    );
    t.task("p/b", &sh("touch b-started; sleep 600"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("both to run", || {
        t.exists("a-started") && t.exists("b-started")
    });
    std::fs::remove_file(t.path("workspace/status/p/a.json")).unwrap();
    std::fs::create_dir(t.path("workspace/status/p/a.json")).unwrap();
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(1));
    assert_eq!(t.state("p/b"), "failed");
    assert_eq!(t.status("p/b")["error"], "interrupted");
}

#[test]
fn an_idle_timeout_can_be_a_phase_default() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nphases:\n  agents: {idle_timeout: 1s}\n");
    t.task("01-agents/hung", &sh("sleep 600"));
    t.run(&["orchestrate"]).code(1);
    assert_eq!(
        t.status("01-agents/hung")["error"],
        "Idle timeout: its log did not grow for 1s (its phase's, `phases.agents.idle_timeout`)"
    );
}

#[test]
fn task_paths_with_spaces_work() {
    let t = Tree::new();
    t.task(
        "my phase/a task",
        &format!(
            "outputs: [out file]\n{}",
            sh("echo x > \"$TASK_OUTPUT_DIR/out file\"")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("my phase/a task"), "completed");
}

#[test]
fn bad_file_names_are_clear_errors() {
    use std::os::unix::ffi::OsStrExt;
    let t = Tree::new();
    t.task("p/ok", &sh("true"));
    let bad = t
        .root
        .join("tasks/p")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.md"));
    std::fs::write(bad, "---\n---\n").unwrap();
    std::os::unix::fs::symlink("loop.md", t.path("tasks/p/loop.md")).unwrap();
    let run = t.run(&["orchestrate"]);
    run.code(2)
        .says("caf\u{fffd}.md: the path is not valid UTF-8")
        .says("tasks/p/loop.md: cannot read task file");
    assert!(!run.stderr.contains("panicked"));
    // The dashboard still shows, with the problems.
    t.run(&["progress"])
        .code(2)
        .says("Phase: p")
        .says("the path is not valid UTF-8");
}

/// A folder linked into `tasks/` (a phase shared between repositories) is
/// looked into as a folder of its own is (its tasks were left out without
/// a word); a link to a folder it is in is a loop, a clear error.
#[test]
fn folders_linked_into_tasks_are_looked_into_and_a_loop_is_a_clear_error() {
    let t = Tree::new();
    t.write("shared/01-a/t.md", &format!("---\n{}\n---\n", sh(MARK)));
    std::os::unix::fs::symlink("../shared/01-a", t.path("tasks/01-a")).unwrap();
    t.task("01-b/own", &sh(MARK));
    std::os::unix::fs::symlink("../../shared/01-a", t.path("tasks/01-b/linked")).unwrap();
    t.run(&["orchestrate"]).code(0);
    for id in ["01-a/t", "01-b/own", "01-b/linked/t"] {
        assert_eq!(t.state(id), "completed", "{id}");
    }
    std::os::unix::fs::symlink("..", t.path("shared/01-a/up")).unwrap();
    let run = t.run(&["validate"]);
    run.code(2)
        .says("tasks/01-a/up: a link to ")
        .says(", a folder it is in (a loop): not followed; remove it, or link to a folder outside");
    assert!(!run.stderr.contains("panicked"));
}

/// A name that is not UTF-8 but would be no task (a note, an editor's
/// hidden swap file) is none of the run's business.
#[test]
fn a_file_that_is_no_task_may_have_any_name() {
    use std::os::unix::ffi::OsStrExt;
    let t = Tree::new();
    t.task("p/ok", &sh("true"));
    for name in [&b"notes\xff.txt"[..], b".swp\xff"] {
        let path = t
            .root
            .join("tasks/p")
            .join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(path, "data\n").unwrap();
    }
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate"]).code(0);
}

#[test]
fn a_log_folder_that_cannot_be_written_fails_the_task_clearly() {
    let t = Tree::new();
    t.task("p/a", &sh(MARK));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    // A file where the log folder should be: not even root can write there.
    t.write("workspace/logs", "");
    let run = t.run(&["orchestrate"]);
    run.code(1).says("cannot create log folder");
    assert!(!run.stderr.contains("panicked"));
    assert!(t.status("p/a")["error"]
        .as_str()
        .unwrap()
        .contains("cannot create log folder"));
    assert_eq!(t.state("p/b"), "blocked");
    assert_eq!(t.launches("p/a"), 0);
}

/// Mounts a small tmpfs, unmounted on drop. `None` where mounting is not
/// allowed (not root); in CI that is a failure.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to mount a tmpfs (run as root)"
            );
            eprintln!("skipped: cannot mount a tmpfs here (not root)");
            return None;
        }
        Some(SmallDisk(at.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_keeps_the_old_status_and_stops_cleanly() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh(&format!(
            "{MARK}; echo $$ > $TASK_OUTPUT_DIR/pid; sleep 600"
        )),
    );
    let Some(_disk) = SmallDisk::mount(&t.path("workspace/status")) else {
        return;
    };
    let old = r#"{"version": 1, "task_id": "p/a", "status": "failed", "error": "exit code 1", "attempt": 1}"#;
    t.write("workspace/status/p/a.json", old);
    // Fill the disk.
    let mut filler = std::fs::File::create(t.path("workspace/status/filler")).unwrap();
    while std::io::Write::write_all(&mut filler, &[0u8; 4096]).is_ok() {}
    drop(filler);
    let run = t.run(&["orchestrate"]);
    run.code(1).says("No space left on device");
    assert!(!run.stderr.contains("panicked"));
    assert_eq!(t.read("workspace/status/p/a.json"), old);
    wait_for("the task to be stopped", || {
        !t.exists("workspace/outputs/p/a/pid")
            || !alive(read_pid(&t.path("workspace/outputs/p/a/pid")))
    });
    let leftovers: Vec<_> = std::fs::read_dir(t.path("workspace/status/p"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

/// `init` on a disk that fills as it writes leaves no half-written file
/// (which a later `init` would keep, "it exists"): a file is whole or
/// not there.
#[test]
fn init_on_a_full_disk_leaves_no_half_written_file() {
    let t = Tree::new();
    let root = t.path("small");
    let Some(_disk) = SmallDisk::mount(&root) else {
        return;
    };
    // Of its 64 KiB, room for the folders and a little more, not for
    // every file.
    std::fs::write(root.join("fill"), vec![0u8; 58 * 1024]).unwrap();
    let run: Run = std::process::Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .arg("init")
        .output()
        .unwrap()
        .into();
    run.code(2).says("No space left on device");
    for file in [
        "tasks/orchestrator.yaml",
        "tasks/TEMPLATE.md",
        "tasks/prompt.jinja",
    ] {
        let path = root.join(file);
        if let Ok(text) = std::fs::read_to_string(&path) {
            assert!(text.ends_with('\n'), "{file} is cut: {text:?}");
        }
    }
}

/// A task that fills the disk the workspace is on: the run cannot write
/// its state any more, and still ends as a run does, with its summary and
/// exit 1 (not 2, which says nothing was launched).
#[test]
fn a_disk_filled_during_the_run_ends_it_with_its_summary_and_exit_1() {
    let t = Tree::new();
    t.task("p/a", &sh("cat /dev/zero > $TASK_OUTPUT_DIR/fill; exit 0"));
    let Some(_disk) = SmallDisk::mount(&t.path("workspace")) else {
        return;
    };
    let run = t.run(&["orchestrate"]);
    run.code(1).says("No space left on device").says("Summary:");
    assert!(!run.stderr.contains("panicked"));
}

/// A task the run stopped because its disk filled, whose end neither the
/// run (its status) nor its supervisor (its exit record) could write: the
/// run that resumes it (the run's end not written either) finds it
/// interrupted, as the stop said, and tries it again, not `lost`, a
/// failure that blocked what depends on it.
#[test]
fn a_task_stopped_by_a_run_whose_disk_filled_is_interrupted_not_lost() {
    let t = Tree::new();
    t.task(
        "p/small",
        &sh(&format!(
            "{MARK}; [ $TASK_ATTEMPT -ge 2 ] && exit 0; touch small-started; while true; do sleep 0.05; done"
        )),
    );
    t.task(
        "p/big",
        &sh("[ $TASK_ATTEMPT -ge 2 ] && exit 0; while [ ! -e small-started ]; do sleep 0.02; done; head -c 1000000 /dev/zero"),
    );
    t.task("p/after", &format!("dependencies: [p/small]\n{}", sh(MARK)));
    let Some(_disk) = SmallDisk::mount(&t.path("workspace")) else {
        return;
    };
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says("No space left on device")
        .says("p/small: interrupted");
    std::fs::remove_file(t.path("workspace/logs/p/big.log")).unwrap();
    t.run(&["orchestrate"]).code(0).never_says("lost");
    assert_eq!((t.launches("p/small"), t.launches("p/after")), (2, 1));
}

/// What a task of the fault-injection graph does, and so what it is owed.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Works,
    /// Exits with this code.
    Fails(i32),
    /// Fails its first attempt, succeeds on its retry.
    Flaky,
}

/// Pseudo-random numbers, reproducible from the seed the test prints.
#[test]
fn killing_the_orchestrator_at_random_moments_loses_nothing() {
    let seed = match std::env::var("FAULT_SEED") {
        Ok(seed) => seed.parse().unwrap(),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!("fault injection seed: {seed}");
    let mut rng = Lcg(seed);
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_concurrent_agents: 4\n");
    let mut kinds = Vec::new();
    for i in 0..50 {
        let kind = match i % 10 {
            3 => Kind::Fails(2 + (i % 7) as i32),
            6 => Kind::Flaky,
            _ => Kind::Works,
        };
        let ms = if i % 5 == 0 {
            600
        } else {
            100 + rng.below(200)
        };
        let work = format!("{MARK}; echo $$ >> pids; sleep 0.{ms:03}");
        let end = match kind {
            Kind::Works => "true".to_owned(),
            Kind::Fails(code) => format!("exit {code}"),
            Kind::Flaky => r#"test "$TASK_ATTEMPT" -ge 2"#.to_owned(),
        };
        let deps: Vec<String> = if i < 5 {
            Vec::new()
        } else {
            (0..1 + rng.below(2))
                .map(|_| format!("g/t{:02}", rng.below(i)))
                .collect()
        };
        let retries = if kind == Kind::Flaky { 1 } else { 0 };
        t.task(
            &format!("g/t{i:02}"),
            &format!(
                "dependencies: {deps:?}\nretries: {retries}\ncommand: {}",
                serde_json::to_string(&format!("{work}; {end}")).unwrap()
            ),
        );
        kinds.push((kind, deps));
    }
    // Kill it at random moments and restart it, until a run ends by itself
    // (after that, a new run would rightly retry the failed tasks).
    let mut kills = 0;
    while kills < 5 {
        let mut orchestrator = t
            .command(&["orchestrate", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100 + rng.below(400)));
        if orchestrator.try_wait().unwrap().is_some() {
            break;
        }
        orchestrator.kill().unwrap();
        orchestrator.wait().unwrap();
        kills += 1;
    }
    eprintln!("killed the orchestrator {kills} times");
    if kills == 5 {
        t.run(&["orchestrate"]);
    }
    let run = t.run(&["progress"]);

    // What each task is owed: nothing if something it depends on failed.
    let mut failed = vec![false; kinds.len()];
    for (i, (kind, deps)) in kinds.iter().enumerate() {
        let id = format!("g/t{i:02}");
        let upstream_failed = deps
            .iter()
            .any(|d| failed[d[3..].parse::<usize>().unwrap()]);
        let (state, launches) = match (upstream_failed, kind) {
            (true, _) => ("blocked", 0),
            (false, Kind::Works) => ("completed", 1),
            (false, Kind::Fails(_)) => ("failed", 1),
            (false, Kind::Flaky) => ("completed", 2),
        };
        failed[i] = state != "completed";
        assert_eq!(t.state(&id), state, "{id} (seed {seed})\n{}", run.stdout);
        let status = t.read(&format!("workspace/status/{id}.json"));
        assert_eq!(
            t.launches(&id),
            launches,
            "{id} launches (seed {seed}): {status}\n{}",
            run.stdout
        );
        if let (false, Kind::Fails(code)) = (upstream_failed, kind) {
            assert_eq!(t.status(&id)["exit_code"], *code, "{id} (seed {seed})");
        }
    }
    // No process is left behind.
    for pid in t.read("pids").lines().map(|p| p.parse::<u32>().unwrap()) {
        assert!(
            !alive(pid),
            "task process {pid} is still alive (seed {seed})"
        );
    }
    let root = t.root.to_str().unwrap().to_owned();
    let leftover = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&root))
    });
    assert!(!leftover, "a keeper is still alive (seed {seed})");
}

#[test]
fn monitor_records_the_end_of_an_adopted_task_and_launches_nothing() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "exit 0"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    let mut first = spawn_orchestrate(&t, "out");
    // Its process, not its status: the status is written before the
    // supervisor is asked to start it.
    wait_for("the task to start", || {
        pid_written(&t, "workspace/outputs/p/a/pid")
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let mut monitor = t.start(&["monitor"]);
    t.write("release-a", "");
    wait_for("monitor to exit", || monitor.try_wait().unwrap().is_some());
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.launches("p/b"), 0);
}

/// The report draws a task whose orchestrator died and whose end its
/// supervisor recorded as gone, ended then: not as running until now.
#[test]
fn the_report_draws_a_task_whose_process_is_gone_as_gone() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "true"));
    let mut first = spawn_orchestrate(&t, "out");
    // Its process, not its status: the status is written before the
    // supervisor is asked to start it.
    wait_for("the task to start", || {
        pid_written(&t, "workspace/outputs/p/a/pid")
    });
    first.kill().unwrap();
    first.wait().unwrap();
    t.write("release-a", "");
    wait_for("the end's record", || t.exists("workspace/pids/p/a.exit"));
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(html.contains("class=\"bar gone"), "{html}");
    assert!(html.contains("its process is gone: the next run records how it ended"));
    assert!(!html.contains("class=\"bar running"), "{html}");
}

/// A run of `p/a` (which waits for the file `release-a`) and `p/b`, which
/// depends on it, killed (SIGKILL, its supervisor left) once `p/a` runs.
fn killed_while_p_a_runs_before_p_b(t: &Tree) {
    t.task("p/a", &waiting_task("a", "true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    let mut first = spawn_orchestrate(t, "out");
    // Its process, not its status: the status is written before the
    // supervisor is asked to start it.
    wait_for("the task to start", || {
        pid_written(t, "workspace/outputs/p/a/pid")
    });
    first.kill().unwrap();
    first.wait().unwrap();
}

/// A run killed and resumed keeps its id: the report of it draws the
/// attempt started before the kill and ended in the resume beside the
/// ones the resume started (the report, read from the events log's end,
/// stops before the run's first start, not its last).
#[test]
fn the_report_of_a_resumed_run_draws_what_started_before_the_kill() {
    let t = Tree::new();
    killed_while_p_a_runs_before_p_b(&t);
    let mut resume = spawn_orchestrate(&t, "resumed");
    wait_for("the resume to start", || {
        t.read("workspace/events.jsonl")
            .matches("run_started")
            .count()
            == 2
    });
    t.write("release-a", "");
    assert!(resume.wait().unwrap().success());
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(html.contains("2 tasks ran, 2 attempts"), "{html}");
}

/// Killed with its orchestrator and supervisor, then `reset` (or
/// `block`), a task runs no more: the report does not draw its attempt
/// running until now (the last run's wall time growing with the clock),
/// but gone, ended by the command's change at the latest.
#[test]
fn the_report_draws_a_task_reset_after_a_crash_as_gone_not_running() {
    for command in ["reset", "block"] {
        let t = Tree::new();
        t.task("p/a", &waiting_task("a", "true"));
        let orchestrator = spawn_orchestrate(&t, "out");
        down_with_the_machine(&t, orchestrator, &["p/a"]);
        t.run(&[command, "p/a"]).code(0);
        t.run(&["report"]).code(0);
        let html = t.read("workspace/report.html");
        assert!(!html.contains("class=\"bar running"), "{command}: {html}");
        assert!(html.contains("class=\"bar gone"), "{command}: {html}");
        assert!(
            !html.contains("the next run records how it ended"),
            "{command}: {html}"
        );
    }
}

/// The machine went down (the run, its supervisor and its tasks killed
/// at once) and the workspace was started over (`rm -rf workspace/status
/// workspace/outputs`): the next run resumes the run's id and starts the
/// tasks again. The attempts that went down, their ends never recorded,
/// had ended by then: the report drew them running until it was written
/// (the run's wall time growing with the clock, "most at once" twice what
/// ran at once).
#[test]
fn the_report_ends_an_unrecorded_attempt_where_the_task_s_next_one_starts() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "true"));
    t.task("p/b", &waiting_task("b", "true"));
    let orchestrator = spawn_orchestrate(&t, "out");
    down_with_the_machine(&t, orchestrator, &["p/a", "p/b"]);
    for folder in ["workspace/status", "workspace/outputs"] {
        std::fs::remove_dir_all(t.path(folder)).unwrap();
    }
    t.write("release-a", "");
    t.write("release-b", "");
    t.run(&["orchestrate"]).code(0);
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(!html.contains("class=\"bar running"), "{html}");
    assert!(html.contains("<tr><td>p</td><td>2</td>"), "{html}");
}

/// Kills `orchestrator`, the supervisor of the tasks `ids` and each one's
/// process group, as a machine going down does, once their pids are in
/// their statuses; returns once they are gone.
fn down_with_the_machine(t: &Tree, mut orchestrator: std::process::Child, ids: &[&str]) {
    let pid_file = |id: &str| t.path(&format!("workspace/outputs/{id}/pid"));
    wait_for("the tasks' pids in their statuses", || {
        ids.iter().all(|id| {
            pid_written(t, &format!("workspace/outputs/{id}/pid"))
                && t.status(id)["pid"] == read_pid(&pid_file(id))
        })
    });
    let tasks: Vec<u32> = ids.iter().map(|id| read_pid(&pid_file(id))).collect();
    let supervisor = t.status(ids[0])["supervisor_pid"].as_u64().unwrap() as u32;
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    signal(supervisor, libc::SIGKILL);
    for &task in &tasks {
        // The task's whole process group (its `sleep` too).
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(-(task as i32), libc::SIGKILL) };
    }
    // A zombie left for init to reap is gone.
    let group_gone = |task: u32| {
        let dir = std::fs::read_dir("/proc").unwrap();
        !dir.flatten().any(|entry| {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                return false;
            };
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
                .split_whitespace()
                .collect();
            !matches!(fields[0], "Z" | "X") && fields[2] == task.to_string()
        })
    };
    wait_for("the supervisor and the tasks to be gone", || {
        !alive(supervisor) && tasks.iter().all(|&task| group_gone(task))
    });
}

/// `monitor` waits for the tasks recorded as running only: its summary
/// names what it leaves for the next run, and its exit code is theirs.
#[test]
fn monitor_names_the_tasks_it_leaves_for_the_next_run() {
    let t = Tree::new();
    killed_while_p_a_runs_before_p_b(&t);
    t.write("release-a", "");
    t.run(&["monitor"])
        .code(0)
        .says("Summary: 1 completed")
        .says("Left for the next `cargo xtask --root")
        .says("orchestrate`: 1 task not completed (p/b)");
}

/// `monitor` starts nothing: a failure it records with a retry left is
/// for the next `orchestrate`, which resumes the crashed run (retry counts
/// go on) and runs the one attempt owed, not a fresh set of retries.
#[test]
fn a_retry_owed_when_monitor_records_a_failure_is_run_once_by_the_next_orchestrate() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!("retries: 1\n{}", waiting_task("a", "exit 5")),
    );
    let mut first = spawn_orchestrate(&t, "out");
    // Its process, not its status: the status is written before the
    // supervisor is asked to start it.
    wait_for("the task to start", || {
        pid_written(&t, "workspace/outputs/p/a/pid")
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let monitor = t
        .command(&["monitor"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    t.write("release-a", "");
    Run::from(monitor.wait_with_output().unwrap())
        .code(1)
        .says("try 2 of 2: `monitor` starts nothing; the next `orchestrate` does")
        .says("failed   p/a: exit code 5 (log: workspace/logs/p/a.log); its retry ready, not started: `monitor` starts nothing");
    assert_eq!(t.launches("p/a"), 1);
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.launches("p/a"), 2);
}

/// After a killed run, `next` and the dry run plan what the next run does:
/// it resumes the killed one, whose final failure stays failed and keeps
/// what depends on it blocked.
#[test]
fn next_and_the_dry_run_plan_the_resume_of_a_killed_run() {
    let t = Tree::new();
    t.task("p/fails", &sh("exit 5"));
    t.task("p/long", &waiting_task("long", "true"));
    t.task("q/after", &format!("dependencies: [p/fails]\n{}", sh(MARK)));
    let mut first = spawn_orchestrate(&t, "out");
    // Its dependent is blocked before its own final status is written.
    wait_for("p/fails to fail and p/long to run", || {
        t.exists("workspace/status/q/after.json")
            && t.state("q/after") == "blocked"
            && t.state("p/fails") == "failed"
            && t.state("p/long") == "running"
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let dry = t.run(&["orchestrate", "--dry-run"]);
    dry.code(1)
        .says("would not start: p/fails: failed, and stays so: exit code 5")
        .says("would not start: q/after: blocked: waits on p/fails (failed)");
    assert!(!dry.stdout.contains("Wave"), "{}", dry.stdout);
    t.run(&["next"])
        .code(0)
        .says("Nothing more would start now.")
        .says("  p/fails: failed, and stays so: exit code 5");
    t.write("release-long", "");
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.launches("q/after"), 0);
}

/// Hundreds of tasks started in one turn of the run: its requests
/// (hundreds of kilobytes) overflow the pipe to the supervisor, whose
/// reports of the tasks that already ended come back on the other pipe
/// meanwhile. All run at once, and every one ends completed.
#[test]
fn hundreds_of_tasks_started_at_once_all_run_to_their_end() {
    let t = Tree::new();
    let n = 400;
    t.config(&format!(
        "max_concurrent_agents: {n}\nmax_memory_gb: 0.01\nphases:\n  p: {{ max_parallel: {n} }}\n"
    ));
    for i in 0..n {
        t.task(&format!("p/t{i:03}"), "command: \"true\"");
    }
    let mut orchestrator = t.start(&["orchestrate", "-q"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let code = loop {
        if let Some(status) = orchestrator.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            orchestrator.kill().unwrap();
            panic!("the run of {n} tasks did not end in 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    for i in 0..n {
        assert_eq!(t.state(&format!("p/t{i:03}")), "completed");
    }
    let (mut running, mut most) = (0, 0);
    for event in events(&t) {
        if event["to"] == "running" {
            running += 1;
            most = most.max(running);
        } else if event["from"] == "running" {
            running -= 1;
        }
    }
    assert_eq!(most, n, "all started before the first end was recorded");
}

/// Orchestrator and supervisor killed together in a task's first second,
/// the task ran on and ended before the next run: with no mark of its
/// supervisor's, nothing says it never started. It is `lost` (its retries
/// decide), never silently run a second time.
#[test]
fn a_task_that_may_have_run_unseen_is_lost_not_run_again() {
    let t = Tree::new();
    t.task("p/a", &format!("retries: 0\n{}", sh(MARK)));
    running_under_a_dead_supervisor(&t, "p/a", 1);
    t.run(&["orchestrate"]).code(1).says("lost");
    assert_eq!(t.launches("p/a"), 0);
    assert_eq!(t.status("p/a")["ending"], "lost");
}

/// Orchestrator and supervisor killed together; the supervisor's exit not
/// reaped yet (a slow init leaves it a zombie, still leading its process
/// group): it counts as gone. Its task, still running, is found by its
/// environment and followed to its end, never killed nor taken for ended.
#[test]
fn a_task_under_a_supervisor_not_reaped_yet_is_followed_not_killed() {
    use std::os::unix::process::CommandExt;
    let t = Tree::new();
    t.task("p/a", &format!("retries: 0\n{}", sh(MARK)));
    let mut supervisor = std::process::Command::new("true")
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = supervisor.id();
    let stat = format!("/proc/{pid}/stat");
    wait_for("the supervisor to exit", || {
        let text = std::fs::read_to_string(&stat).unwrap();
        text[text.rfind(')').unwrap() + 2..].starts_with('Z')
    });
    let status = serde_json::json!({
        "version": 1, "task_id": "p/a", "status": "running", "started_at": "2025-01-01T00:00:00Z",
        "agent_id": "agent-1", "attempt": 1, "supervisor_pid": pid, "supervisor_start": start_of(pid),
    });
    t.write("workspace/status/p/a.json", &status.to_string());
    let mut task = orphan_of(&t, "p/a", "while [ ! -f release ]; do sleep 0.02; done");
    let mut run = spawn_orchestrate(&t, "run.out");
    wait_for("the adoption by its pid", || {
        t.read("run.out")
            .contains(&format!("still running, pid {}", task.id()))
    });
    t.write("release", "");
    assert!(task.wait().unwrap().success(), "the task was killed");
    assert_eq!(run.wait().unwrap().code(), Some(1), "{}", t.read("run.out"));
    assert_eq!(t.status("p/a")["ending"], "lost");
    assert_eq!(t.launches("p/a"), 0);
    supervisor.wait().unwrap();
}

/// A task that outlives its grace after a stop is killed, and its log
/// says so, however the run and its supervisor raced to it.
#[test]
fn the_sigkill_after_a_stop_s_grace_is_in_the_log() {
    let t = Tree::new();
    t.config("kill_grace: 1s\n");
    t.task(
        "p/t",
        &sh("trap 'echo ignoring TERM' TERM; echo $$ > $TASK_OUTPUT_DIR/pid; while true; do sleep 0.2; done"),
    );
    let orchestrator = spawn_orchestrate(&t, "out");
    wait_for("the task to start", || {
        pid_written(&t, "workspace/outputs/p/t/pid")
    });
    wait_for("the run to know its pid", || {
        t.status("p/t")["pid"].is_u64()
    });
    signal(orchestrator.id(), libc::SIGTERM);
    let out = orchestrator.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    let log = t.read("workspace/logs/p/t.log");
    assert!(
        log.contains("xtask: still running 1s after SIGTERM: SIGKILL sent"),
        "{log}"
    );
}

/// A `run.json` that cannot be read is not a run ended in order without a
/// word: the run and the dry run say what it costs (a killed run not
/// resumed, its final failures tried again), and the run writes a good one.
#[test]
fn an_unreadable_run_file_is_said_and_replaced() {
    let t = Tree::new();
    t.task("p/a", &format!("retries: 0\n{}", sh("test -e ok")));
    t.run(&["orchestrate"]).code(1);
    t.write("workspace/run.json", "{\"id\": ");
    let said = "run.json cannot be read (";
    t.run(&["orchestrate", "--dry-run"])
        .says(said)
        .says("the tasks it had failed for good are tried again");
    t.write("ok", "");
    t.run(&["orchestrate"]).code(0).says(said);
    let run = t.run(&["orchestrate"]);
    run.code(0);
    assert!(
        !run.stderr.contains(said) && !run.stdout.contains(said),
        "{}",
        run.stderr
    );
}

/// The orphans of a task that end while it runs are reaped by its
/// supervisor, their reaper, as they end, not left as zombies until the
/// task ends: an agent runs for hours, and each zombie holds a pid and
/// counts against the user's limit of processes.
#[test]
fn a_running_task_s_orphans_are_reaped_as_they_end() {
    let t = Tree::new();
    // Each orphan writes its pid and ends; the task runs on until
    // `release` (at most 30 s).
    let script = "for i in 1 2 3 4 5 6 7 8 9 10; do \
                  (sh -c 'echo $$ >> $TASK_OUTPUT_DIR/orphans' &); done; \
                  while [ $(wc -l < $TASK_OUTPUT_DIR/orphans) -lt 10 ]; do sleep 0.01; done; \
                  touch $TASK_OUTPUT_DIR/spawned; \
                  i=0; while [ ! -f release ] && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.05; done";
    t.task("p/a", &sh(script));
    let mut run = t.start(&["orchestrate"]);
    wait_for("the orphans", || t.exists("workspace/outputs/p/a/spawned"));
    let orphans: Vec<u32> = t
        .read("workspace/outputs/p/a/orphans")
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let left = || {
        (orphans.iter())
            .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
            .count()
    };
    // A zombie is there until reaped.
    let reaped = std::time::Instant::now();
    while left() > 0 && reaped.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let zombies = left();
    t.write("release", "");
    assert!(run.wait().unwrap().success());
    assert_eq!(zombies, 0, "orphans left unreaped while their task ran");
    assert_eq!(t.state("p/a"), "completed");
}

/// A run killed while its task ran, left to its supervisor: the task's
/// pid, and the supervisor's pid file of it (which the next run finds it
/// by) written.
fn killed_while_it_runs(t: &Tree, id: &str) -> u32 {
    let mut first = spawn_orchestrate(t, "first.out");
    let pid_file = format!("workspace/outputs/{id}/pid");
    wait_for("the task to run", || pid_written(t, &pid_file));
    first.kill().unwrap();
    first.wait().unwrap();
    wait_for("the supervisor's pid file", || {
        t.exists(&format!("workspace/pids/{id}.pid"))
    });
    read_pid(&t.path(&pid_file))
}

/// A run killed with its supervisor (nothing handed over in
/// `workspace/pids/`), its task's file removed before the next run: the
/// views still say the task, and the next run finds it by its status,
/// waits for it and records its end; none stays `running`.
#[test]
fn a_task_of_a_run_killed_with_its_supervisor_whose_file_is_gone_is_found() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "echo done > out.txt"));
    t.task("p/b", &sh(MARK));
    let mut first = spawn_orchestrate(&t, "first.out");
    wait_for("the task's pid in its status", || {
        pid_written(&t, "workspace/outputs/p/a/pid") && t.status("p/a")["pid"].is_u64()
    });
    let pid = read_pid(&t.path("workspace/outputs/p/a/pid"));
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as i32;
    // Stopped first: a run that saw its supervisor die would stop its
    // tasks before its own kill (a loaded machine gives it the time).
    signal(first.id(), libc::SIGSTOP);
    // SAFETY: kill takes integer arguments.
    unsafe { libc::kill(supervisor, libc::SIGKILL) };
    first.kill().unwrap();
    first.wait().unwrap();
    std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
    assert!(
        !t.exists("workspace/pids/p/a.pid"),
        "nothing was handed over"
    );
    t.run(&["progress"]).code(0).says("p/a is recorded running");
    let mut second = spawn_orchestrate(&t, "second.out");
    wait_for("the other task to run", || t.launches("p/b") == 1);
    assert!(alive(pid));
    t.write("release-a", "");
    assert_eq!(
        second.wait().unwrap().code(),
        Some(1),
        "{}",
        t.read("second.out")
    );
    assert_eq!(t.state("p/a"), "failed", "{}", t.read("second.out"));
    assert!(!alive(pid));
    t.run(&["progress"])
        .code(0)
        .never_says("p/a is recorded running");
}

/// A task whose file is renamed after its run was killed, before the next
/// run: that run says it is still running under its old name, starts the
/// renamed copy without waiting for it, waits for the old one and records
/// its end in its status (failed: its outputs not judged), its records
/// in `workspace/pids/` gone; `progress` says it meanwhile.
#[test]
fn a_task_renamed_after_its_run_was_killed_is_waited_for_and_its_end_recorded() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "echo done > out.txt"));
    let pid = killed_while_it_runs(&t, "p/a");
    std::fs::rename(t.path("tasks/p/a.md"), t.path("tasks/p/b.md")).unwrap();
    t.run(&["progress"]).code(0).says(&format!(
        "p/a is recorded running (started by a run that was killed, pid {pid}), but its task file is gone"
    ));
    let mut second = spawn_orchestrate(&t, "second.out");
    wait_for("the renamed copy to start", || t.launches("p/b") == 1);
    let said = t.read("second.out");
    assert!(
        said.contains(&format!("warning: p/a: its task file is gone (renamed, moved or removed), but the run that was killed left it running (pid {pid})")),
        "{said}"
    );
    assert!(alive(pid), "{said}");
    assert_eq!(t.state("p/a"), "running");
    t.write("release-a", "");
    // A failure it recorded: in its summary and its exit code.
    assert_eq!(
        second.wait().unwrap().code(),
        Some(1),
        "{}",
        t.read("second.out")
    );
    let said = t.read("second.out");
    assert!(said.contains("Summary: 1 completed, 1 failed"), "{said}");
    assert!(
        said.contains(
            "  failed   p/a: exit code 0; its task file is gone, so its outputs were not judged"
        ),
        "{said}"
    );
    assert!(!alive(pid), "{said}");
    let status = t.status("p/a");
    assert_eq!(status["status"], "failed", "{said}");
    assert_eq!(status["exit_code"], 0, "{said}");
    assert_eq!(
        status["error"],
        "exit code 0; its task file is gone, so its outputs were not judged"
    );
    assert_eq!(status.get("pid"), None);
    assert_eq!(t.state("p/b"), "completed", "{said}");
    assert!(!t.exists("workspace/pids/p/a.pid") && !t.exists("workspace/pids/p/a.exit"));
    assert_eq!(
        said.matches("p/a: its task file is gone").count(),
        1,
        "{said}"
    );
    assert!(changes(&t, "p/a").ends_with(&["running -> failed".to_owned()]));
    t.run(&["progress"])
        .code(0)
        .never_says("p/a is recorded running");
}

/// An agent a killed run left running whose task file is renamed before
/// the next run: what it printed it cost is counted, once, in the ledger
/// and the budget, as its end is recorded, though nothing judges it.
#[test]
fn what_an_agent_renamed_after_its_run_was_killed_printed_it_cost_is_counted() {
    let t = Tree::new();
    claude_agent(
        &t,
        "echo $$ > \"$TASK_OUTPUT_DIR/pid\"\nwhile [ ! -f release-a ]; do sleep 0.02; done\ncat {result}\n",
        "kill_grace: 1s\nbudget: {usd: 5}\n",
    );
    t.task("p/a", "retries: 0");
    killed_while_it_runs(&t, "p/a");
    std::fs::rename(t.path("tasks/p/a.md"), t.path("tasks/p/b.md")).unwrap();
    t.write("release-a", "");
    t.run(&["orchestrate"])
        .code(1)
        .says("failed   p/a: exit code 0; its task file is gone");
    let ledger = t.read("workspace/ledger.jsonl");
    assert_eq!(ledger.matches("\"task\":\"p/a\"").count(), 1, "{ledger}");
    assert_eq!(ledger.lines().count(), 2, "{ledger}");
    assert_eq!(progress_json(&t)["budget"]["spent_usd"], 0.3258754);
    assert_eq!(t.status("p/a")["agent"]["cost_usd"], 0.1629377);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/ledger.jsonl"), ledger);
}

/// A task whose file was removed after its run was killed, and that ended
/// while no run looked: `monitor` records its end (its exit code), and its
/// records go; its summary counts it failed, and so does its exit code,
/// which is of the tasks it waited for.
#[test]
fn monitor_records_the_end_of_a_task_whose_file_was_removed_after_its_run_was_killed() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "exit 3"));
    let pid = killed_while_it_runs(&t, "p/a");
    std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
    t.task("p/other", &sh("true"));
    t.write("release-a", "");
    wait_for("the end's record", || t.exists("workspace/pids/p/a.exit"));
    assert!(!alive(pid));
    // Its exit code is of the tasks it waited for: this one failed.
    t.run(&["monitor"])
        .code(1)
        .says("failed   p/a")
        .says("Summary: 0 completed, 1 failed")
        .says("  failed   p/a: exit code 3; its task file is gone")
        .never_says("No task is recorded as running");
    let status = t.status("p/a");
    assert_eq!(status["status"], "failed");
    assert_eq!(status["exit_code"], 3);
    assert_eq!(status["ending"], "exited");
    assert!(!t.exists("workspace/pids/p/a.pid") && !t.exists("workspace/pids/p/a.exit"));
}

/// A task moved to another phase after its run was killed: a stop of the
/// next run stops it with the copy that run started, as it does adopted
/// tasks, and records it interrupted by the signal.
#[test]
fn a_stop_stops_a_task_moved_to_another_phase_after_its_run_was_killed() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "true"));
    let pid = killed_while_it_runs(&t, "p/a");
    std::fs::create_dir_all(t.path("tasks/q")).unwrap();
    std::fs::rename(t.path("tasks/p/a.md"), t.path("tasks/q/a.md")).unwrap();
    let mut second = spawn_orchestrate(&t, "second.out");
    wait_for("the moved copy to start", || t.launches("q/a") == 1);
    wait_for("the moved copy to run", || {
        pid_written(&t, "workspace/outputs/q/a/pid")
    });
    let said = t.read("second.out");
    assert!(said.contains(&format!("p/a: its task file is gone (renamed, moved or removed), but the run that was killed left it running (pid {pid})")), "{said}");
    signal(second.id(), libc::SIGINT);
    second.wait().unwrap();
    let said = t.read("second.out");
    assert!(said.contains("stopping 2 running tasks"), "{said}");
    assert!(!alive(pid), "{said}");
    assert_eq!(t.status("p/a")["signal"], libc::SIGTERM, "{said}");
    assert_eq!(t.state("p/a"), "failed", "{said}");
    assert!(t
        .read("workspace/logs/p/a.log")
        .contains("xtask: interrupted: SIGTERM sent"));
    assert!(!t.exists("workspace/pids/p/a.pid") && !t.exists("workspace/pids/p/a.exit"));
}

/// A task whose file was moved away after its run was killed, and put
/// back while the next run waits for it: that run finds it again, adopts
/// it, and its end is told once, as the task's (its outputs judged), never
/// also as that of a task whose file is gone (`failed`).
#[test]
fn a_task_whose_file_comes_back_while_the_run_waits_for_it_ends_once() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "outputs: [out]\n{}",
            waiting_task("a", "echo ok > $TASK_OUTPUT_DIR/out")
        ),
    );
    let pid = killed_while_it_runs(&t, "p/a");
    std::fs::rename(t.path("tasks/p/a.md"), t.path("a.md.away")).unwrap();
    t.task("q/other", &waiting_task("other", "true"));
    let mut second = spawn_orchestrate(&t, "second.out");
    wait_for("the other task to run", || {
        pid_written(&t, "workspace/outputs/q/other/pid")
    });
    assert!(t.read("second.out").contains(&format!(
        "p/a: its task file is gone (renamed, moved or removed), but the run that was killed left it running (pid {pid})"
    )));
    // Back before the other task's end, whose scan finds it.
    std::fs::rename(t.path("a.md.away"), t.path("tasks/p/a.md")).unwrap();
    t.write("release-other", "");
    wait_for("the task to be adopted", || {
        t.read("second.out")
            .contains(&format!("still running, pid {pid}"))
    });
    t.write("release-a", "");
    let code = second.wait().unwrap().code();
    let said = t.read("second.out");
    assert_eq!(code, Some(0), "{said}");
    assert!(!alive(pid), "{said}");
    assert_eq!(t.state("p/a"), "completed", "{said}");
    assert!(!said.contains("its task file is gone, so"), "{said}");
    let ends: Vec<String> = (changes(&t, "p/a").into_iter())
        .filter(|c| c.starts_with("running -> "))
        .collect();
    assert_eq!(ends, ["running -> completed"], "{said}");
    assert!(!t.exists("workspace/pids/p/a.pid") && !t.exists("workspace/pids/p/a.exit"));
}

/// A task whose file was removed after its run was killed, ended since,
/// whose end the next run cannot write in its status (a folder where the
/// write goes, as a full disk would fail it): that run says so and keeps
/// its records in `workspace/pids/`, so that a later run records the end
/// the supervisor kept (its exit code), never leaving it `running`.
#[test]
fn an_end_of_a_task_whose_file_is_gone_that_cannot_be_written_is_kept() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "exit 3"));
    let pid = killed_while_it_runs(&t, "p/a");
    std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
    t.task("p/other", &sh("true"));
    t.write("release-a", "");
    wait_for("the end's record", || t.exists("workspace/pids/p/a.exit"));
    assert!(!alive(pid));
    std::fs::create_dir_all(t.path("workspace/status/p/.a.json.prev/x")).unwrap();
    t.run(&["orchestrate"]).says("cannot");
    assert_eq!(t.state("p/a"), "running");
    assert!(
        t.exists("workspace/pids/p/a.exit"),
        "the end the supervisor kept is gone"
    );
    std::fs::remove_dir_all(t.path("workspace/status/p/.a.json.prev")).unwrap();
    t.run(&["orchestrate"])
        .says("  failed   p/a: exit code 3; its task file is gone");
    let status = t.status("p/a");
    assert_eq!(status["status"], "failed");
    assert_eq!(status["exit_code"], 3);
    assert!(!t.exists("workspace/pids/p/a.pid") && !t.exists("workspace/pids/p/a.exit"));
}

/// A task of a killed run that the next run adopted, its file removed
/// while that run goes on: the run, which read its file as it started,
/// judges its end as the task's; `progress` meanwhile never says it will
/// be failed unjudged as one whose file was gone before the run began.
#[test]
fn progress_never_says_a_task_the_run_adopted_whose_file_went_since_will_fail_unjudged() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "outputs: [out]\n{}",
            waiting_task("a", "echo ok > $TASK_OUTPUT_DIR/out")
        ),
    );
    t.task("p/other", &sh("true"));
    let pid = killed_while_it_runs(&t, "p/a");
    let mut second = spawn_orchestrate(&t, "second.out");
    wait_for("the task to be adopted", || {
        t.read("second.out")
            .contains(&format!("still running, pid {pid}"))
    });
    std::fs::rename(t.path("tasks/p/a.md"), t.path("a.md.away")).unwrap();
    t.run(&["progress"])
        .code(0)
        .says(&format!("p/a is recorded running (pid {pid}), but its task file is gone: the run going on records its end (as the task's, if it read its file as it started"))
        .never_says("records its end (failed");
    t.write("release-a", "");
    let code = second.wait().unwrap().code();
    let said = t.read("second.out");
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(t.state("p/a"), "completed", "{said}");
}

/// Every task file removed after a run was killed while a task ran: the
/// `monitor` that `progress` names waits for that task and records its
/// end, rather than refuse for want of a task file.
#[test]
fn monitor_records_the_end_of_a_task_of_a_killed_run_when_no_task_file_is_left() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "exit 3"));
    let pid = killed_while_it_runs(&t, "p/a");
    std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
    t.run(&["progress"])
        .says("the next `orchestrate` or `monitor` records its end");
    t.write("release-a", "");
    wait_for("the end's record", || t.exists("workspace/pids/p/a.exit"));
    assert!(!alive(pid));
    t.run(&["monitor"])
        .code(1)
        .says("failed   p/a")
        .never_says("has no task yet");
    let status = t.status("p/a");
    assert_eq!(status["status"], "failed");
    assert_eq!(status["exit_code"], 3);
    assert!(!t.exists("workspace/pids/p/a.pid") && !t.exists("workspace/pids/p/a.exit"));
    t.run(&["monitor"])
        .code(0)
        .says("No task is recorded as running");
}

/// A task whose file was moved away after its run was killed, whose end
/// the next run recorded (failed), its file put back before that run ends:
/// the summary lists and counts it once, as the task found again.
#[test]
fn a_task_whose_file_comes_back_after_its_end_was_recorded_is_summed_up_once() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "exit 3"));
    killed_while_it_runs(&t, "p/a");
    std::fs::rename(t.path("tasks/p/a.md"), t.path("a.md.away")).unwrap();
    t.task("q/other", &waiting_task("other", "true"));
    let mut second = spawn_orchestrate(&t, "second.out");
    wait_for("the other task to run", || {
        pid_written(&t, "workspace/outputs/q/other/pid")
    });
    t.write("release-a", "");
    wait_for("the end to be recorded", || {
        t.read("second.out").contains("failed   p/a")
    });
    // Back before the other task's end, whose scan finds it.
    std::fs::rename(t.path("a.md.away"), t.path("tasks/p/a.md")).unwrap();
    t.write("release-other", "");
    let code = second.wait().unwrap().code();
    let said = t.read("second.out");
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("found    p/a"), "{said}");
    assert!(said.contains("Summary: 1 completed, 1 failed"), "{said}");
    assert_eq!(
        said.matches("  failed   p/a: exit code 3").count(),
        1,
        "{said}"
    );
}

/// A task whose file is removed while the run that started it goes on:
/// that run, which read its file, finishes it; `progress` (its JSON too)
/// says it is running meanwhile, though no task file names it and its
/// supervisor, its orchestrator alive, left no record in
/// `workspace/pids/`.
#[test]
fn progress_says_a_running_task_whose_file_was_removed_during_its_run() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "true"));
    t.task("p/other", &sh("true"));
    let mut run = spawn_orchestrate(&t, "run.out");
    wait_for("the task to run", || {
        pid_written(&t, "workspace/outputs/p/a/pid")
    });
    std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
    let said = "p/a is recorded running";
    t.run(&["progress"]).code(0).says(&format!(
        "{said}, but its task file is gone: the run going on records its end"
    ));
    let json = progress_json(&t);
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with(said)),
        "{json}"
    );
    t.write("release-a", "");
    let code = run.wait().unwrap().code();
    assert_eq!(code, Some(0), "{}", t.read("run.out"));
    t.run(&["progress"]).code(0).never_says(said);
}

/// A task a killed run left running whose file is gone since: `next` and
/// `orchestrate --dry-run` say the run they plan will wait for it.
#[test]
fn next_and_the_dry_run_say_a_task_whose_file_is_gone_that_a_run_waits_for() {
    let t = Tree::new();
    t.task("p/a", &waiting_task("a", "true"));
    t.task("p/other", &sh("true"));
    let pid = killed_while_it_runs(&t, "p/a");
    std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
    let said = format!("warning: p/a is recorded running (started by a run that was killed, pid {pid}), but its task file is gone: the next `orchestrate` or `monitor` records its end");
    t.run(&["next"]).says(&said);
    t.run(&["orchestrate", "--dry-run"]).says(&said);
    t.write("release-a", "");
}

/// A task left running by a run killed with its supervisor, whose file is
/// gone since: the next run enforces the timeout its supervisor did, as
/// that supervisor recorded it in its pid file (the file that set it is
/// gone), or, with no such record (a pid file of an older version), its
/// phase's in the config; it stops it and records its end failed, saying
/// why.
#[test]
fn a_task_whose_file_and_supervisor_are_gone_keeps_its_timeout() {
    for recorded in [true, false] {
        let t = Tree::new();
        let own = match recorded {
            true => "timeout: 2s\n",
            false => {
                t.config("phases:\n  p: {timeout: 2s}\n");
                ""
            }
        };
        t.task("p/a", &format!("{own}{}", waiting_task("a", "true")));
        let pid = killed_while_it_runs(&t, "p/a");
        let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
        signal(supervisor, libc::SIGKILL);
        wait_for("the supervisor to be gone", || !alive(supervisor));
        if !recorded {
            let pid_file = t.read("workspace/pids/p/a.pid");
            t.write("workspace/pids/p/a.pid", pid_file.lines().next().unwrap());
        }
        std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
        t.task("p/other", &sh("true"));
        let mut second = spawn_orchestrate(&t, "second.out");
        wait_for("the task to be stopped by its timeout", || !alive(pid));
        let code = second.wait().unwrap().code();
        let said = t.read("second.out");
        assert_eq!(code, Some(1), "{said}");
        let status = t.status("p/a");
        assert_eq!(status["status"], "failed", "{said}");
        assert_eq!(status["ending"], "timeout", "{said}");
        assert_eq!(
            status["error"],
            "timed out after 2s; its task file is gone, so its outputs were not judged"
        );
        let log = t.read("workspace/logs/p/a.log");
        assert!(
            log.contains("xtask: timed out after 2s: SIGTERM sent to the task's processes"),
            "{log}"
        );
    }
}

/// Makes `agent.sh`, which runs `script` (`{result}` in it stands for a
/// recorded result of Claude's, a success that cost $0.16), the config's
/// agent, its result read as Claude's JSON, beside the config's `extra`
/// lines.
fn claude_agent(t: &Tree, script: &str, extra: &str) {
    let result = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/agents/claude/success.json"
    );
    t.write("agent.sh", &script.replace("{result}", result));
    t.config(&format!(
        "{extra}agent:\n  command: [sh, {}]\n  result: claude-json\n",
        t.path("agent.sh").display()
    ));
}

/// An agent p/a (its result $0.1629377) left running by a killed run,
/// waiting for `release-a`, under a budget of `usd`; its task file removed
/// since, and a task q/other added.
fn agent_left_running_whose_file_is_gone(t: &Tree, usd: &str) {
    claude_agent(
        t,
        "echo $$ > $TASK_OUTPUT_DIR/pid; while [ ! -f release-a ]; do sleep 0.02; done; cat {result}",
        &format!("budget: {{usd: {usd}}}\n"),
    );
    t.task("p/a", "retries: 0");
    killed_while_it_runs(t, "p/a");
    std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
    t.task("q/other", &sh("true"));
}

/// An agent left running by a killed run whose task file is gone since:
/// the run that waits for it reads its result as `agent.result` says (its
/// file is gone), keeps it in its status and counts its cost in the
/// ledger and against the budget, which it reaches.
#[test]
fn what_an_agent_whose_file_is_gone_spent_is_counted() {
    let t = Tree::new();
    agent_left_running_whose_file_is_gone(&t, "0.10");
    let mut second = spawn_orchestrate(&t, "second.out");
    wait_for("the run to wait for it", || {
        t.read("second.out").contains("its task file is gone")
    });
    t.write("release-a", "");
    let code = second.wait().unwrap().code();
    let said = t.read("second.out");
    assert_eq!(t.state("p/a"), "failed", "{said}");
    assert_eq!(t.status("p/a")["agent"]["cost_usd"], 0.1629377, "{said}");
    let ledger = t.read("workspace/ledger.jsonl");
    assert!(
        ledger.contains("\"task\":\"p/a\"") && ledger.contains("\"cost_usd\":0.1629377"),
        "{ledger}"
    );
    assert!(
        said.contains("budget of $0.10 reached ($0.16 spent)"),
        "{said}"
    );
    assert_eq!(code, Some(1), "{said}");
    // Its end event tells it, as any attempt's: the report counts it.
    let events = t.read("workspace/events.jsonl");
    let end = (events.lines())
        .find(|line| line.contains("\"task\":\"p/a\"") && line.contains("\"to\":\"failed\""))
        .unwrap_or_else(|| panic!("{events}"));
    assert!(end.contains("\"cost_usd\":0.1629377"), "{end}");
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("The last run's attempts cost $0.16"),
        "{html}"
    );
}

/// A task a killed run left running whose file is gone since, stopped by
/// a Ctrl-C of the run that waits for it (its supervisor alive, or gone
/// too): recorded interrupted, as the other tasks a stop ends are, its
/// try spared, not failed (nor lost); its file put back, the next run
/// runs it again.
#[test]
fn a_stop_records_a_task_whose_file_is_gone_interrupted() {
    for supervisor_killed in [false, true] {
        let t = Tree::new();
        t.task("p/a", &waiting_task("a", "true"));
        let pid = killed_while_it_runs(&t, "p/a");
        if supervisor_killed {
            let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
            signal(supervisor, libc::SIGKILL);
            wait_for("the supervisor to be gone", || !alive(supervisor));
        }
        std::fs::rename(t.path("tasks/p/a.md"), t.path("a.md.away")).unwrap();
        t.task("q/other", &sh("true"));
        let mut second = spawn_orchestrate(&t, "second.out");
        wait_for("the run to wait for it", || {
            t.read("second.out").contains("its task file is gone")
        });
        signal(second.id(), libc::SIGINT);
        second.wait().unwrap();
        let said = t.read("second.out");
        assert!(!alive(pid), "{said}");
        let status = t.status("p/a");
        assert_eq!(status["status"], "failed", "{said}");
        assert_eq!(status["ending"], "interrupted", "{said}");
        assert_eq!(status["error"], "interrupted", "{said}");
        assert_eq!(status["tries"], 0, "{said}");
        std::fs::rename(t.path("a.md.away"), t.path("tasks/p/a.md")).unwrap();
        t.write("release-a", "");
        t.run(&["orchestrate"]).code(0);
        assert_eq!(t.state("p/a"), "completed");
    }
}

/// An agent left running by a killed run whose task file is gone since,
/// ended while no run looked: `progress` and `next` count what it spent,
/// as the run that records its end will, before it starts anything.
#[test]
fn the_views_count_what_an_agent_whose_file_is_gone_spent() {
    let t = Tree::new();
    agent_left_running_whose_file_is_gone(&t, "1.00");
    t.write("release-a", "");
    wait_for("its end's record", || t.exists("workspace/pids/p/a.exit"));
    let spent = "$0.16 of $1.00 spent";
    t.run(&["progress"]).code(0).says(spent);
    t.run(&["next"]).says(spent);
    t.run(&["orchestrate"]).code(1).says("$0.16 spent");
    t.run(&["progress"]).code(0).says(spent);
}

/// An agent left running by a run killed with its supervisor, its task
/// file gone since: what it printed on stdout once nothing followed it
/// into its log is appended there, all of it, when the next run records
/// its end, as for an adopted task.
#[test]
fn the_stdout_of_an_agent_whose_file_and_supervisor_are_gone_is_in_its_log() {
    let t = Tree::new();
    agent_left_running_whose_file_is_gone(&t, "1.00");
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    signal(supervisor, libc::SIGKILL);
    wait_for("the supervisor to be gone", || !alive(supervisor));
    let agent = read_pid(&t.path("workspace/outputs/p/a/pid"));
    t.write("release-a", "");
    wait_for("the agent to end", || !alive(agent));
    t.run(&["orchestrate"]).code(1);
    let log = t.read("workspace/logs/p/a.log");
    let header = "xtask: its supervisor died while it ran: all it printed on stdout follows";
    let after = log.split(header).nth(1).unwrap_or_else(|| panic!("{log}"));
    assert!(after.contains("\"total_cost_usd\""), "{log}");
    assert_eq!(t.status("p/a")["agent"]["cost_usd"], 0.1629377);
}

/// A run stopping (Ctrl-C) does not scan the task folders as its tasks end
/// interrupted: nothing more starts, and a scan of a large tree would hold
/// the stop (a task file written meanwhile was found and said as the run
/// stopped). The next run finds it.
#[test]
fn a_stopping_run_does_not_scan_for_task_files_as_its_tasks_end() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh("touch started; while [ ! -f never ]; do sleep 0.02; done"),
    );
    let mut run = spawn_orchestrate(&t, "run.out");
    wait_for("p/a to start", || t.exists("started"));
    t.task("p/new", &sh("true"));
    signal(run.id(), libc::SIGINT);
    assert_eq!(
        run.wait().unwrap().code(),
        Some(130),
        "{}",
        t.read("run.out")
    );
    assert!(
        !t.read("run.out").contains("p/new"),
        "{}",
        t.read("run.out")
    );
    t.write("never", "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/new"), "completed");
}
