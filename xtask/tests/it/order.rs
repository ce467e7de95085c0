//! The order ready tasks start in: the longest remaining path first,
//! weighted by how long tasks took before; a `priority:` first of all.

use std::os::unix::fs::MetadataExt;

use crate::tree::*;

/// The tasks in the order they started, from the run's events.
fn start_order(t: &Tree) -> Vec<String> {
    events(t)
        .into_iter()
        .filter(|e| e["to"] == "running")
        .map(|e| e["task"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_critical_chain_starts_first_though_its_ids_come_last() {
    let t = Tree::new();
    for id in ["p/a1", "p/a2", "p/a3"] {
        t.task(id, &sh("true"));
    }
    t.task("p/z1", &sh("true"));
    t.task("p/z2", &format!("dependencies: [p/z1]\n{}", sh("true")));
    t.task("p/z3", &format!("dependencies: [p/z2]\n{}", sh("true")));
    t.run(&["next"])
        .says("Would start now, in this order:\n  p/z1");
    t.run(&["orchestrate", "-j", "1"]).code(0);
    // z1 and z2 lead longer paths than any `a`; z3 leads one as long as
    // theirs, and ties go by id.
    assert_eq!(
        start_order(&t),
        ["p/z1", "p/z2", "p/a1", "p/a2", "p/a3", "p/z3"]
    );
}

/// A task whose dependents are completed (not to run again) has only
/// itself left: it does not start before one whose chain is still to run
/// (it did, the completed dependents counted on its path).
#[test]
fn completed_dependents_weigh_nothing_on_a_task_s_path() {
    let t = Tree::new();
    for (id, deps) in [
        ("p/a", "[]"),
        ("p/b", "[]"),
        ("q/e", "[p/a]"),
        ("q/f", "[p/b]"),
    ] {
        t.task(id, &format!("dependencies: {deps}\n{}", sh("true")));
    }
    t.run(&["orchestrate"]).code(0);
    for id in ["p/a", "p/b", "q/f"] {
        t.run(&["reset", id]).code(0);
    }
    // Known durations (the run measured milliseconds): `e`, done, long.
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 1.0, "p/b": 1.0, "q/e": 10.0, "q/f": 1.0}}"#,
    );
    t.run(&["next"])
        .says("Would start now, in this order:\n  p/b");
    std::fs::remove_file(t.path("workspace/events.jsonl")).unwrap();
    t.run(&["orchestrate", "-j", "1"]).code(0);
    assert_eq!(start_order(&t), ["p/b", "p/a", "q/f"]);
}

#[test]
fn durations_from_earlier_runs_and_priorities_decide() {
    let t = Tree::new();
    // Known from an earlier run: `long` took 60 s, the chain 1 s a task.
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/c1": 1.0, "p/c2": 1.0, "p/long": 60.0}}"#,
    );
    t.task("p/c1", &sh("true"));
    t.task("p/c2", &format!("dependencies: [p/c1]\n{}", sh("true")));
    t.task("p/long", &sh("true"));
    t.task("p/urgent", &format!("priority: 10\n{}", sh("true")));
    t.run(&["orchestrate", "--dry-run", "-j", "1"])
        .says("p/long")
        .says("~1m 00s, path 1m 00s");
    t.run(&["orchestrate", "-j", "1"]).code(0);
    assert_eq!(start_order(&t), ["p/urgent", "p/long", "p/c1", "p/c2"]);
    // This run's durations are kept for the next one, beside the others.
    let history: serde_json::Value =
        serde_json::from_str(&t.read("workspace/history.json")).unwrap();
    assert!(history["tasks"]["p/urgent"].as_f64().unwrap() < 60.0);
    assert_eq!(history["tasks"].as_object().unwrap().len(), 4);
    // Written in the order of the ids, for a person reading it.
    let text = t.read("workspace/history.json");
    let at = |id: &str| text.find(&format!("\"{id}\"")).unwrap();
    assert!(at("p/c1") < at("p/c2") && at("p/c2") < at("p/long") && at("p/long") < at("p/urgent"));
    // A resume that learns nothing leaves the file as it is (a write would
    // make a new one, with a new inode).
    let inode = || {
        std::fs::metadata(t.path("workspace/history.json"))
            .unwrap()
            .ino()
    };
    let before = inode();
    t.run(&["orchestrate", "-j", "1"]).code(0);
    assert_eq!(inode(), before, "written again with nothing learned");
    // Kept when the statuses go.
    std::fs::remove_dir_all(t.path("workspace/status")).unwrap();
    assert!(t.exists("workspace/history.json"));
}

/// The first task in the order that does not fit in memory beside the
/// running ones holds back the smaller ones after it: the memory drains
/// for it, as the dry run plans, where they passed it again and again.
/// A task that a task of a higher priority waits on starts as that one
/// would: it holds it back (a longer chain of lower priority went first,
/// and the urgent task waited for it, its priority of no use).
#[test]
fn what_an_urgent_task_waits_on_starts_first() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task(
        "p/b",
        &format!("priority: 10\ndependencies: [p/a]\n{}", sh("true")),
    );
    t.task("p/d", &sh("true"));
    t.task("p/e", &format!("dependencies: [p/d]\n{}", sh("true")));
    t.task("p/f", &format!("dependencies: [p/e]\n{}", sh("true")));
    // Through a phase's gate too: `r/late` waits on all of phase q.
    t.task("q/g", &format!("dependencies: [p/f]\n{}", sh("true")));
    t.task(
        "r/late",
        &format!("priority: 5\ndependencies: [q]\n{}", sh("true")),
    );
    // Nothing urgent waits on it.
    t.task("z/c", &sh("true"));
    t.run(&["next"])
        .says("Would start now, in this order:\n  p/a")
        .says("path 3.0s, priority 10");
    t.run(&["orchestrate", "-j", "1"]).code(0);
    assert_eq!(
        start_order(&t),
        ["p/a", "p/b", "p/d", "p/e", "p/f", "q/g", "r/late", "z/c"]
    );
}

/// A completed task passes on no priority: what waits on it no longer
/// waits on what it needed. `p/a`, reset after `p/b` that depends on it
/// completed, took the priority of `p/c`, which waits on `p/b` only, and
/// started before it (`next` said `priority 10` of it).
#[test]
fn a_completed_task_passes_on_no_priority() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(0);
    t.run(&["reset", "p/a"]).code(0);
    t.task(
        "p/c",
        &format!("priority: 10\ndependencies: [p/b]\n{}", sh("true")),
    );
    let next = t.run(&["next"]);
    next.code(0).says("Would start now, in this order:\n  p/c");
    let a = next
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("p/a "));
    assert!(
        a.is_some_and(|a| !a.contains("priority")),
        "{}",
        next.stdout
    );
    t.run(&["orchestrate", "-j", "1"]).code(0);
    assert_eq!(start_order(&t), ["p/a", "p/b", "p/c", "p/a"]);
}

#[test]
fn smaller_tasks_do_not_pass_the_first_in_order_that_waits_for_memory() {
    let t = Tree::new();
    t.config("max_memory_gb: 4\nmax_total_memory_gb: 4\nmax_concurrent_agents: 3\n");
    let small = |script: &str| format!("resources: {{memory_gb: 1}}\n{}", sh(script));
    t.task("p/pre", &small("true"));
    t.task(
        "p/big",
        &format!(
            "priority: 10\ndependencies: [p/pre]\nresources: {{memory_gb: 4}}\n{}",
            sh("true")
        ),
    );
    // They end once `p/pre` has (`p/big` is ready by then), and `go` is
    // there.
    let after_pre = "until grep -qs '\"completed\"' workspace/status/p/pre.json && [ -e go ]; do sleep 0.02; done";
    for n in 1..=5 {
        t.task(&format!("p/s{n}"), &small(after_pre));
    }
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/pre to complete", || t.state("p/pre") == "completed");
    t.run(&["why", "p/big"]).says(
        "ready, waits for memory: it needs 4 GiB beside the 2 GiB reserved, of 4 GiB; of the tasks after it in the order, only those known to end before it fits start before it",
    );
    t.run(&["why", "p/s3"])
        .says("ready, after p/big in the order, which waits for memory (2 GiB of 4 GiB reserved)");
    t.write("go", "");
    assert!(run.wait().unwrap().success());
    let order = start_order(&t);
    // `p/pre` and two small ones at first; then, `p/pre` done, nothing
    // more until `p/big` fits, and it starts first.
    assert_eq!(
        order.iter().position(|id| id == "p/big"),
        Some(3),
        "{order:?}"
    );
}

/// A run of one phase orders its tasks by their paths within what it
/// runs: a chain of another phase, which it does not run, makes no task
/// of its own go first (`p/a` did, for `q/long` after it).
#[test]
fn what_a_run_does_not_select_weighs_nothing_in_its_order() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 1.0, "p/b": 1.0, "p/c": 1.0, "q/long": 100.0}}"#,
    );
    t.task("p/a", &sh("true"));
    t.task("p/b", &sh("true"));
    t.task("p/c", &format!("dependencies: [p/b]\n{}", sh("true")));
    t.task(
        "q/long",
        &format!("priority: 5\ndependencies: [p/a]\n{}", sh("true")),
    );
    t.run(&["orchestrate", "--phase", "p", "-j", "1"]).code(0);
    assert_eq!(start_order(&t), ["p/b", "p/a", "p/c"]);
}

/// Ties go by id also among tasks found during the run, which join the
/// graph after the others (they went by that place: `q/a`, generated,
/// started after `q/x` and `q/y`).
#[test]
fn ties_go_by_id_for_tasks_found_during_the_run_too() {
    let t = Tree::new();
    let after_p = format!("dependencies: [p]\n{}", sh("true"));
    t.task("p/gen", &t.generating("q/a", &after_p));
    t.task("q/x", &after_p);
    t.task("q/y", &after_p);
    t.run(&["orchestrate", "-j", "1"]).code(0);
    assert_eq!(start_order(&t), ["p/gen", "q/a", "q/x", "q/y"]);
}

/// Tasks whose `writes` overlap never run side by side: the expected end
/// has them run one at a time, as the dry run plans them (four of 100 s
/// each were expected to end in 100 s).
#[test]
fn the_expected_end_runs_tasks_that_write_the_same_scope_one_at_a_time() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 100.0, "p/b": 100.0, "p/c": 100.0, "p/docs": 100.0}}"#,
    );
    for id in ["p/a", "p/b", "p/c"] {
        t.task(id, &format!("writes: [\"src/*\"]\n{}", sh("true")));
    }
    t.task("p/docs", &format!("writes: [\"docs/*\"]\n{}", sh("true")));
    assert_eq!(progress_json(&t)["eta_seconds"], 300.0);
}

/// `next` shows the order past what would start now: the ready tasks the
/// limits hold back come in the order they would start, each with what
/// it is expected to take (they were listed by id, with neither).
#[test]
fn next_lists_the_ready_tasks_held_back_in_the_order_they_start() {
    let t = Tree::new();
    t.config("max_concurrent_agents: 1\n");
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 1.0, "p/b": 5.0, "p/c": 50.0, "p/d": 20.0}}"#,
    );
    for id in ["p/a", "p/b", "p/c", "p/d"] {
        t.task(id, &sh("true"));
    }
    let said = t.run(&["next"]).said();
    let at = |line: &str| {
        said.find(line)
            .unwrap_or_else(|| panic!("no {line:?} in:\n{said}"))
    };
    assert!(at("Would start now, in this order:\n  p/c") < at("Waiting (3):\n  p/d: ready"));
    assert!(at("~20.0s, path 20.0s\n  p/b: ready") < at("~5.0s, path 5.0s\n  p/a: ready"));
}

/// A task that runs past what it is expected to take pushes the expected
/// end out, but not past its timeout (and the kill grace), which stops
/// it: it was expected to run as long again as it had overrun.
#[test]
fn a_running_task_is_not_expected_past_its_timeout() {
    let t = Tree::new();
    t.write("workspace/history.json", r#"{"tasks": {"p/a": 0.1}}"#);
    t.task("p/a", &format!("timeout: 6s\n{}", sh("sleep 30")));
    let mut run = t.start(&["orchestrate"]);
    // The run's own view, in one look: how long it has run, and the end.
    let mut seen = serde_json::Value::Null;
    wait_for("p/a to run 4 s", || {
        seen = progress_json(&t);
        let tasks = seen["tasks"].as_array().unwrap();
        let a = tasks.iter().find(|task| task["task_id"] == "p/a").unwrap();
        a["elapsed_seconds"].as_u64() >= Some(4)
    });
    let tasks = seen["tasks"].as_array().unwrap();
    let a = tasks.iter().find(|task| task["task_id"] == "p/a").unwrap();
    let ran = a["elapsed_seconds"].as_f64().unwrap();
    // Its timeout (6 s) and the kill grace (1 s) from its start.
    let eta = seen["eta_seconds"].as_f64().unwrap();
    assert!(eta <= 7.0 - ran, "{eta} s left after {ran} s: {seen}");
    assert_eq!(run.wait().unwrap().code(), Some(1));
}

/// The tasks of a pool a rate limit paused wait for the pause, in the
/// expected end too: not only the task that hit the limit.
#[test]
fn the_expected_end_waits_for_a_pool_s_pause_with_all_its_tasks() {
    let t = Tree::new();
    t.config(
        "pools: {x: 2}\nmax_memory_gb: 1\n\
         rate_limits: {backoff: 4s, max_backoff: 4s}\n",
    );
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"x/a": 0.5, "x/b": 0.5, "x/c": 5.0, "x/d": 5.0}}"#,
    );
    let limited_once = "[ $TASK_ATTEMPT = 1 ] && echo '429 Too Many Requests' && exit 1; true";
    // `x/a` and `x/b` first, though the others are expected to take longer.
    t.task(
        "x/a",
        &format!("pool: x\npriority: 2\n{}", sh(limited_once)),
    );
    let status = t.path("workspace/status/x/a.json");
    let waits = format!(
        "until grep -qs rate_limited_until {}; do sleep 0.05; done",
        status.display()
    );
    t.task("x/b", &format!("pool: x\npriority: 1\n{}", sh(&waits)));
    t.task("x/c", &format!("pool: x\n{}", sh("true")));
    t.task("x/d", &format!("pool: x\n{}", sh("true")));
    let mut run = t.start(&["orchestrate"]);
    wait_for("x/b to complete during the pause", || {
        t.state("x/b") == "completed"
    });
    let eta = progress_json(&t)["eta_seconds"].as_f64().unwrap();
    // The pause (4 s less 10 % at most, from x/a's limit), then x/a, x/c
    // and x/d one at a time (the pool halved): 10.5 s more. Were x/c and
    // x/d to start now, 10.5 s in all.
    assert!(eta > 12.0, "{eta}");
    assert!(run.wait().unwrap().success());
}

/// A task's frontmatter: its priority, its memory, and `script`.
fn sized(gb: u32, priority: u32, script: &str) -> String {
    format!(
        "priority: {priority}\nresources: {{memory_gb: {gb}}}\n{}",
        sh(script)
    )
}

/// Tasks expected to end before the one held by the memory could fit go
/// ahead of it, beside what runs: it starts no later for them.
#[test]
fn tasks_expected_to_end_before_the_held_one_fits_go_ahead() {
    let t = Tree::new();
    t.config("max_memory_gb: 4\nmax_total_memory_gb: 4\nmax_concurrent_agents: 4\n");
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/long": 30, "p/big": 1, "p/s0": 100, "p/s1": 0.5, "p/s2": 0.5, "p/s3": 0.5}}"#,
    );
    t.task(
        "p/long",
        &sized(3, 30, "until [ -e go ]; do sleep 0.02; done"),
    );
    t.task("p/big", &sized(2, 20, "true"));
    // Expected to take longer than p/long has left (first of the small
    // ones in the order: those after it are tried too), and one nothing
    // is known of (a guess could be hours short): neither goes ahead.
    t.task("p/s0", &sized(1, 0, "true"));
    t.task("p/u", &sized(1, 0, "true"));
    for n in 1..=3 {
        t.task(&format!("p/s{n}"), &sized(1, 0, "true"));
    }
    let mut run = t.start(&["orchestrate"]);
    wait_for("the small ones to complete beside p/long", || {
        (1..=3).all(|n| {
            let id = format!("p/s{n}");
            t.state(&id) == "completed"
        })
    });
    assert_eq!(t.state("p/long"), "running");
    t.write("go", "");
    assert!(run.wait().unwrap().success());
    let order = start_order(&t);
    assert_eq!(
        order[..5],
        ["p/long", "p/s1", "p/s2", "p/s3", "p/big"],
        "{order:?}"
    );
    std::fs::remove_file(t.path("tasks/p/s0.md")).unwrap();
    std::fs::remove_file(t.path("tasks/p/u.md")).unwrap();

    // One that waits for a person's approval to start holds nothing back,
    // however long what goes ahead of it is expected to take.
    std::fs::remove_dir_all(t.path("workspace")).unwrap();
    std::fs::remove_file(t.path("go")).unwrap();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/long": 30, "p/big": 1, "p/s1": 100, "p/s2": 100, "p/s3": 100}}"#,
    );
    t.task(
        "p/big",
        &format!("approve: before\n{}", sized(2, 20, "true")),
    );
    let mut run = t.start(&["orchestrate"]);
    wait_for("the small ones to complete beside p/long", || {
        (1..=3).all(|n| {
            let id = format!("p/s{n}");
            t.state(&id) == "completed"
        })
    });
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(4));

    // Approved ahead, it holds the others back as any task.
    std::fs::remove_dir_all(t.path("workspace")).unwrap();
    std::fs::remove_file(t.path("go")).unwrap();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/long": 30, "p/big": 1, "p/s1": 100, "p/s2": 100, "p/s3": 100}}"#,
    );
    t.run(&["approve", "p/big"]).code(0);
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/long to run", || t.state("p/long") == "running");
    t.write("go", "");
    assert!(run.wait().unwrap().success());
    let order = start_order(&t);
    assert_eq!(order[..2], ["p/long", "p/big"], "{order:?}");
}

/// A task that would take the last slot of the held task's phase (or
/// pool) does not go ahead of it, however short: the held one would then
/// hold nothing back, and longer tasks would take its memory.
#[test]
fn no_task_goes_ahead_that_would_take_the_held_one_s_phase_slot() {
    let t = Tree::new();
    t.config(
        "max_memory_gb: 4\nmax_total_memory_gb: 6\nmax_concurrent_agents: 6\n\
         phases: {a: {max_parallel: 2}}\n",
    );
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"a/p1": 100, "z/long": 3, "a/big": 1, "a/b": 0.5, "c/x": 100, "c/y": 100}}"#,
    );
    t.task(
        "a/p1",
        &sized(1, 40, "until [ -e go1 ]; do sleep 0.02; done"),
    );
    t.task(
        "z/long",
        &sized(2, 30, "until [ -e go2 ]; do sleep 0.02; done"),
    );
    t.task("a/big", &sized(4, 20, "true"));
    t.task("a/b", &sized(1, 10, "true"));
    t.task("c/x", &sized(1, 0, "true"));
    t.task("c/y", &sized(1, 0, "true"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("a/p1 and z/long to run", || {
        ["a/p1", "z/long"].iter().all(|id| t.state(id) == "running")
    });
    t.write("go2", "");
    wait_for("a/big to complete", || t.state("a/big") == "completed");
    t.write("go1", "");
    assert!(run.wait().unwrap().success());
    let order = start_order(&t);
    assert_eq!(order[..3], ["a/p1", "z/long", "a/big"], "{order:?}");
}

/// A task its phase's limit holds is said so, not held by the memory a
/// task after it in the order waits for.
#[test]
fn a_task_its_phase_holds_is_not_said_to_wait_for_memory() {
    let t = Tree::new();
    t.config("max_memory_gb: 4\nmax_total_memory_gb: 4\nphases: {a: {max_parallel: 1}}\n");
    let hold = "until [ -e go ]; do sleep 0.02; done";
    t.task("a/run", &sized(1, 20, hold));
    t.task("a/next", &sized(1, 10, "true"));
    t.task("b/hold", &sized(2, 30, hold));
    t.task("b/big", &sized(2, 5, "true"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("a/run and b/hold to run", || {
        ["a/run", "b/hold"]
            .iter()
            .all(|id| t.state(id) == "running")
    });
    t.run(&["why", "a/next"])
        .says("ready, held back by the limits (2 of 10 slots busy, 1 of 1 in phase a");
    t.run(&["why", "b/big"])
        .says("ready, waits for memory: it needs 2 GiB beside the 3 GiB reserved");
    t.write("go", "");
    assert!(run.wait().unwrap().success());
}

/// A failure that blocks a chain makes the order again: the slot it
/// frees goes to a chain still to run, not to a task whose path led
/// through the blocked one.
#[test]
fn a_chain_a_failure_blocks_weighs_nothing_in_the_order() {
    let t = Tree::new();
    t.config("max_memory_gb: 1\nmax_concurrent_agents: 2\n");
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/fail": 0.1, "p/x": 1, "p/a": 1, "q/long": 10, "p/c1": 1, "q/c2": 3}}"#,
    );
    t.task("p/fail", &format!("priority: 5\n{}", sh("exit 1")));
    // Holds the other slot until the freed one is taken.
    let taken = "until grep -qs '\"to\":\"running\"' workspace/events.jsonl && [ $(grep -c '\"to\":\"running\"' workspace/events.jsonl) -ge 3 ]; do sleep 0.02; done";
    t.task("p/x", &format!("priority: 5\n{}", sh(taken)));
    t.task("p/a", &sh("true"));
    t.task(
        "q/long",
        &format!("dependencies: [p/fail, p/a]\n{}", sh("true")),
    );
    t.task("p/c1", &sh("true"));
    t.task("q/c2", &format!("dependencies: [p/c1]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    let order = start_order(&t);
    assert_eq!(order[2], "p/c1", "{order:?}");
}

/// A failed task the next run tries again, in a pool a rate limit
/// pauses, waits for the pause in the expected end too.
#[test]
fn the_expected_end_has_a_retry_in_a_paused_pool_wait_for_the_pause() {
    let t = Tree::new();
    t.config("pools: {x: 2}\nmax_memory_gb: 1\n");
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"x/a": 1, "x/b": 10}}"#,
    );
    t.task("x/a", &format!("pool: x\n{}", sh("true")));
    t.task("x/b", &format!("pool: x\nretries: 1\n{}", sh("true")));
    let until = std::time::SystemTime::now() + std::time::Duration::from_secs(100);
    let until = humantime::format_rfc3339_seconds(until);
    t.write(
        "workspace/status/x/a.json",
        &format!(r#"{{"version": 1, "task_id": "x/a", "status": "failed", "attempt": 1, "tries": 0, "error": "rate limited: 429", "pool": "x", "rate_limited_until": "{until}", "rate_limited_since": "{until}"}}"#),
    );
    t.write(
        "workspace/status/x/b.json",
        r#"{"version": 1, "task_id": "x/b", "status": "failed", "attempt": 1, "tries": 1, "error": "exit code 1", "exit_code": 1}"#,
    );
    let eta = progress_json(&t)["eta_seconds"].as_f64().unwrap();
    // The pause (100 s, less the time this takes), then x/b's 10 s.
    assert!(eta > 105.0, "{eta}");
}

/// On a graph's first run, what its first tasks took reorders those still
/// to start: once `a/first` completes in milliseconds, its phase's other
/// task is no longer expected to take a second, and the tasks known to take
/// longer go before it (it went first, the order made at the start kept).
#[test]
fn what_completes_during_a_run_reorders_the_tasks_still_to_start() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"b/x1": 0.9, "b/x2": 0.9}}"#,
    );
    t.task("a/first", &format!("priority: 1\n{}", sh("true")));
    for id in ["a/second", "b/x1", "b/x2"] {
        t.task(id, &sh("true"));
    }
    // Before the run: `a/second` is expected to take a second, more than
    // the `b` tasks.
    t.run(&["next"])
        .says("a/first                                  ~1.0s")
        .says("a/second                                 ~1.0s, path 1.0s  sh -c true\n  b/x1");
    t.run(&["orchestrate", "-j", "1"]).code(0);
    // What `a/first` took, as the run learned it: milliseconds; but the
    // run makes the order again only for a duration under half its guess
    // of 1 s (`Order::learn`), which a machine loaded enough can miss
    // (then `a/second` rightly stays first of the rest).
    let history: serde_json::Value =
        serde_json::from_str(&t.read("workspace/history.json")).unwrap();
    let took = history["tasks"]["a/first"].as_f64().unwrap();
    let expected = match took < 0.5 {
        true => ["a/first", "b/x1", "b/x2", "a/second"],
        false => ["a/first", "a/second", "b/x1", "b/x2"],
    };
    assert_eq!(start_order(&t), expected, "a/first took {took} s");
}

#[test]
fn durations_no_task_can_take_are_left_out_not_a_crash() {
    let t = Tree::new();
    // Edited by hand: over any clock's range, negative, a century and more.
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 1e300, "p/b": -5, "p/c": 4e9, "p/d": 30}}"#,
    );
    for id in ["p/a", "p/b", "p/c", "p/d"] {
        t.task(id, &sh("true"));
    }
    // Left out, each is expected to take what the phase's known tasks
    // took (p/d's 30 s), as an unknown task is.
    let next = t.run(&["next"]);
    next.code(0);
    assert_eq!(
        next.stdout.matches("~30.0s, path 30.0s").count(),
        4,
        "{}",
        next.stdout
    );
    t.run(&["progress"]).code(0).says("Work left: ");
    t.run(&["orchestrate"]).code(0);
}

#[test]
fn progress_gives_the_expected_end_of_what_is_left() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 100.0, "p/b": 50.0}}"#,
    );
    t.task("p/a", &sh("true"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    let json = progress_json(&t);
    assert_eq!(json["eta_seconds"], 150.0, "the chain a, b");
    assert!(json["expected_end"].is_string());
    assert_eq!(json["run_going_on"], false);
    // No clock time while nothing runs the work: how much of it is left.
    t.run(&["progress"])
        .says("Work left: 2m 30s once a run starts (no run is going on;");
    t.run(&["orchestrate"]).code(0);
    let json = progress_json(&t);
    assert!(json["eta_seconds"].is_null(), "nothing is left");
}

/// A failed task the next run tries again is left, and so is what it
/// blocked; once blocked by hand, neither is.
#[test]
fn the_expected_end_counts_a_failed_task_the_next_run_retries() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 100.0, "p/b": 50.0}}"#,
    );
    t.task("p/a", &sh("exit 1"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/b"), "blocked");
    assert_eq!(progress_json(&t)["eta_seconds"], 150.0, "the chain a, b");
    t.run(&["block", "p/a"]).code(0);
    let json = progress_json(&t);
    assert!(json["eta_seconds"].is_null(), "nothing is left");
}

/// A task waiting for an input no task produces never starts, nor what
/// waits on it: no work left of theirs, until the file is there.
#[test]
fn the_expected_end_leaves_out_what_waits_for_an_input_no_task_produces() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 100.0, "p/b": 50.0, "p/c": 10.0}}"#,
    );
    t.task("p/a", &format!("inputs: [data/in.csv]\n{}", sh("true")));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.task("p/c", &sh("true"));
    assert_eq!(progress_json(&t)["eta_seconds"], 10.0, "p/c only");
    t.write("workspace/outputs/data/in.csv", "x\n");
    assert_eq!(progress_json(&t)["eta_seconds"], 150.0, "the chain a, b");
}

/// Nor what waits on a phase whose gate (or an earlier phase's, which it
/// includes) requires an artifact no task produces: no run starts it until
/// a person puts the file there.
#[test]
fn the_expected_end_leaves_out_what_waits_for_a_gate_artifact_no_task_produces() {
    let t = Tree::new();
    t.config("phases: { p: { requires: [data/ok.txt] } }");
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 10.0, "q/b": 100.0, "r/c": 50.0, "s/d": 20.0}}"#,
    );
    t.task("p/a", &sh("true"));
    t.task("q/b", &format!("dependencies: [p]\n{}", sh("true")));
    t.task("r/c", &format!("dependencies: [q/b]\n{}", sh("true")));
    t.task("s/d", &format!("dependencies: [r]\n{}", sh("true")));
    assert_eq!(progress_json(&t)["eta_seconds"], 10.0, "p/a only");
    t.run(&["orchestrate"]).code(1);
    assert!(progress_json(&t)["eta_seconds"].is_null(), "nothing starts");
    t.write("workspace/outputs/data/ok.txt", "x\n");
    assert_eq!(progress_json(&t)["eta_seconds"], 170.0, "q/b, r/c, s/d");
}

/// The work left is spread over what the tightest limit lets run at once:
/// a phase's `max_parallel`, the memory, not only `max_concurrent_agents`.
#[test]
fn the_expected_end_spreads_the_work_over_the_tightest_limit() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 100.0, "p/b": 100.0, "p/c": 100.0, "p/d": 100.0}}"#,
    );
    for id in ["p/a", "p/b", "p/c", "p/d"] {
        t.task(id, &sh("true"));
    }
    let eta = |config: &str| {
        t.config(config);
        let json = progress_json(&t);
        json["eta_seconds"].as_f64().unwrap()
    };
    assert_eq!(eta("max_concurrent_agents: 4"), 100.0);
    assert_eq!(eta("max_concurrent_agents: 2"), 200.0);
    assert_eq!(eta("phases: {p: {max_parallel: 1}}"), 400.0);
    // 8 GiB each of 16: two at a time.
    assert_eq!(eta("max_memory_gb: 8\nmax_total_memory_gb: 16"), 200.0);
    // Of 15, one at a time: memory holds whole tasks.
    assert_eq!(eta("max_memory_gb: 8\nmax_total_memory_gb: 15"), 400.0);
    // A pool of 4 that a rate limit left at 1, as a run takes it up.
    let limited = r#"{"x": {"limit": 1, "backoff_seconds": 60.0}}"#;
    t.write("workspace/pools.json", limited);
    for id in ["p/a", "p/b", "p/c", "p/d"] {
        t.task(id, &format!("pool: x\n{}", sh("true")));
    }
    assert_eq!(eta("pools: {x: 4}"), 400.0);
}

/// Tasks of different sizes share the memory: 6 and 4 GiB of 10 run
/// together (read as 150 s: each size's whole tasks counted apart), while
/// two of 6 cannot.
#[test]
fn the_expected_end_lets_tasks_of_different_sizes_share_the_memory() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/big": 100.0, "p/small": 100.0, "p/also-big": 100.0}}"#,
    );
    t.config("max_memory_gb: 6\nmax_total_memory_gb: 10\nmax_concurrent_agents: 4");
    let sized = |gb: u32| format!("resources: {{memory_gb: {gb}}}\n{}", sh("true"));
    t.task("p/big", &sized(6));
    t.task("p/small", &sized(4));
    assert_eq!(progress_json(&t)["eta_seconds"], 100.0, "both at once");
    t.task("p/also-big", &sized(6));
    assert_eq!(progress_json(&t)["eta_seconds"], 200.0, "one 6 at a time");
}

/// What the tasks that completed took is known from their statuses before
/// `history.json` has it (written as a run ends: here it was killed): the
/// tasks of their phase still to run are expected to take their median, not
/// a second each, in `next` (the order) and in `progress`'s expected end.
#[test]
fn a_phase_s_completed_tasks_tell_what_its_others_take_before_the_run_ends() {
    let t = Tree::new();
    t.task("p/a", &format!("priority: 3\n{}", sh("true")));
    t.task("p/b", &format!("priority: 2\n{}", sh("true")));
    t.task(
        "p/hold",
        &format!("priority: 1\n{}", sh("echo $$ > hold.pid; exec sleep 300")),
    );
    t.task("p/c", &sh("true"));
    let mut run = t.start(&["orchestrate", "-j", "1"]);
    // The final statuses of the tasks before it are written in a batch,
    // maybe after it starts (their ends are kept on disk meanwhile).
    wait_for("p/hold to start, the ends before it written", || {
        pid_written(&t, "hold.pid")
            && t.state("p/a") == "completed"
            && t.state("p/b") == "completed"
    });
    run.kill().unwrap();
    run.wait().unwrap();
    let hold = read_pid(&t.path("hold.pid"));
    std::process::Command::new("kill")
        .args(["-9", &hold.to_string()])
        .status()
        .unwrap();
    wait_for("p/hold to end", || !alive(hold));
    assert!(!t.exists("workspace/history.json"), "a killed run wrote it");

    let took = |id: &str| t.status(id)["duration_seconds"].as_f64().unwrap();
    let median = (took("p/a") + took("p/b")) / 2.0;
    // In tenths of a second; a second each before.
    let eta = progress_json(&t)["eta_seconds"].as_f64().unwrap();
    let tenths = (median * 10.0).round() / 10.0;
    assert_eq!(eta, tenths, "for p/hold and p/c, each {median} s");
    let next = t.run(&["next"]);
    let line = next.stdout.lines().find(|l| l.contains(" p/c ")).unwrap();
    assert!(line.contains(&format!(" ~{median:.1}s, path")), "{line:?}");
}

/// A duration no task can have taken, in a status edited by hand, counts
/// for nothing, as it does in `history.json`: it made the expected end
/// unknown (`null`, which says nothing is left) or every other task of its
/// phase expected to take no time.
#[test]
fn a_status_s_impossible_duration_is_not_expected_of_others() {
    let t = Tree::new();
    t.config("max_concurrent_agents: 1");
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate"]).code(0);
    std::fs::remove_file(t.path("workspace/history.json")).unwrap();
    t.task("p/b", &sh("true"));
    t.task("p/c", &sh("true"));
    let status = t.path("workspace/status/p/a.json");
    let with = |seconds: &str| {
        let mut json = t.status("p/a");
        json["duration_seconds"] = serde_json::from_str(seconds).unwrap();
        std::fs::write(&status, json.to_string()).unwrap();
        progress_json(&t)["eta_seconds"].clone()
    };
    assert_eq!(with("50.0"), 100.0, "b then c, 50 s each");
    // Unknown: a second each.
    assert_eq!(with("1e308"), 2.0);
    assert_eq!(with("-1000.0"), 2.0);
    let next = t.run(&["next"]);
    assert!(
        next.stdout.contains(" ~1.0s, path 1.0s "),
        "{}",
        next.stdout
    );
    // What `history.json` keeps counts instead, and a run does not write
    // the status's impossible figure over it (the task's duration was lost
    // for every later run).
    t.write("workspace/history.json", r#"{"tasks": {"p/a": 30.0}}"#);
    assert_eq!(with("-5.0"), 60.0, "b then c, 30 s each, as a took");
    assert_eq!(
        progress_json(&t)["phases"][0]["mean_seconds"],
        serde_json::Value::Null
    );
    t.run(&["orchestrate"]).code(0);
    let history: serde_json::Value =
        serde_json::from_str(&t.read("workspace/history.json")).unwrap();
    assert_eq!(history["tasks"]["p/a"], 30.0);
}

/// A phase gate opens no sooner than its phase's work allows: behind a
/// phase of `max_parallel: 1`, what depends on the phase starts once all
/// of it has run, one task at a time (it was read as the longest task).
#[test]
fn the_expected_end_waits_for_a_gate_behind_a_phase_run_one_at_a_time() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 100.0, "p/b": 100.0, "q/x": 100.0}}"#,
    );
    t.task("p/a", &sh("true"));
    t.task("p/b", &sh("true"));
    t.task("q/x", &format!("dependencies: [p]\n{}", sh("true")));
    t.config("max_concurrent_agents: 4\nphases: {p: {max_parallel: 1}}");
    assert_eq!(progress_json(&t)["eta_seconds"], 300.0, "a, b, then x");
    t.config("max_concurrent_agents: 4");
    assert_eq!(progress_json(&t)["eta_seconds"], 200.0, "a and b, then x");
}

/// A task expected to take no time (0 s in the history) is still left to
/// run: the expected end is now, not "nothing left".
#[test]
fn a_task_expected_to_take_no_time_is_still_left() {
    let t = Tree::new();
    t.write("workspace/history.json", r#"{"tasks": {"p/a": 0.0}}"#);
    t.task("p/a", &sh("true"));
    let json = progress_json(&t);
    assert_eq!(json["eta_seconds"], 0.0);
}

#[test]
fn durations_saved_by_another_run_meanwhile_are_kept() {
    let t = Tree::new();
    // Written while this run goes on, after it read the file: as another
    // run saving its durations would.
    t.task(
        "p/a",
        &sh(r#"printf '{"tasks": {"p/elsewhere": 42.0}}' > $WORKSPACE/history.json"#),
    );
    t.run(&["orchestrate"]).code(0);
    let history: serde_json::Value =
        serde_json::from_str(&t.read("workspace/history.json")).unwrap();
    assert_eq!(history["tasks"]["p/elsewhere"], 42.0, "{history}");
    assert!(history["tasks"]["p/a"].is_number(), "{history}");
}

/// `next` beside a live run: a task that runs is said to run, not to be
/// one that would start now.
#[test]
fn next_during_a_run_says_a_running_dependency_runs() {
    let t = Tree::new();
    t.task("p/x", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    t.task("q/w", &format!("dependencies: [p/x]\n{}", sh("true")));
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/x to run", || t.state("p/x") == "running");
    let next = t.run(&["next"]);
    t.write("release", "");
    next.code(0)
        .says("Running now: 1")
        .says("q/w: waits on p/x (running)");
    assert!(run.wait().unwrap().success());
}

/// `next` and `why` beside a live run plan with that run's `-j`, not the
/// config's alone: what its one slot holds back is said held back.
#[test]
fn next_and_why_during_a_run_take_its_jobs() {
    let t = Tree::new();
    t.task("p/a", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    t.task("p/b", &sh("true"));
    let mut run = t.start(&["orchestrate", "-j", "1"]);
    wait_for("p/a to run", || t.state("p/a") == "running");
    let next = t.run(&["next"]);
    let why = t.run(&["why", "p/b"]);
    t.write("release", "");
    assert!(run.wait().unwrap().success());
    next.code(0)
        .says("p/b: ready, held back by the limits (1 of 1 slots busy");
    why.code(0)
        .says("ready, held back by the limits (1 of 1 slots busy");
}

/// `why` beside a live run: a ready task held back by a limit or a pool
/// is the run's to start, not "the next orchestrate"'s, and `why` names
/// what holds it as `next` does.
#[test]
fn why_during_a_run_says_the_run_starts_a_ready_task() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_memory_gb: 1\npools: {api: 1}\nphases: {p: {max_parallel: 1}}");
    let waits = sh("while [ ! -f release ]; do sleep 0.02; done");
    t.task("p/a", &waits);
    t.task("p/b", &sh("true"));
    t.task("q/x", &format!("pool: api\n{waits}"));
    t.task("q/y", &format!("pool: api\n{}", sh("true")));
    t.run(&["why", "p/b"])
        .code(0)
        .says("nothing: it starts on the next `cargo xtask");
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a and q/x to run", || {
        ["p/a", "q/x"].iter().all(|id| t.state(id) == "running")
    });
    let by_phase = t.run(&["why", "p/b"]);
    let by_pool = t.run(&["why", "q/y"]);
    t.write("release", "");
    let going_on = format!("; the run going on (pid {}) starts it then", run.id());
    by_phase
        .code(0)
        .says("ready, held back by the limits (2 of 10 slots busy, 1 of 1 in phase p")
        .says(&going_on);
    by_pool
        .code(0)
        .says("ready, waits for a free slot in pool api (1 of 1 busy: running, or starting first)")
        .says(&going_on);
    assert!(run.wait().unwrap().success());
}

/// Beside a run of one phase (or of some tasks), `next` and `why` plan
/// what that run selects: a ready task of another phase is not started by
/// it, but by the next run.
#[test]
fn next_and_why_during_a_run_of_one_phase_take_its_selection() {
    let t = Tree::new();
    t.config("kill_grace: 1s");
    t.task("a/s", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    t.task("a/t", &sh("true"));
    t.task("b/u", &sh("true"));
    for selection in [&["--phase", "a"][..], &["--task", "a/s", "--task", "a/t"]] {
        let mut args = vec!["orchestrate", "-j", "1"];
        args.extend(selection);
        let mut run = t.start(&args);
        wait_for("a/s to run", || t.state("a/s") == "running");
        let next = t.run(&["next"]);
        let why = t.run(&["why", "b/u"]);
        t.write("release", "");
        assert!(run.wait().unwrap().success());
        next.code(0)
            .says("a/t: ready, held back by the limits (1 of 1 slots busy")
            .says("Not selected by the run going on (1), for a run after it: b/u");
        assert!(!next.stdout.contains("Would start now"), "{}", next.stdout);
        why.code(0).says(&format!(
            "nothing of its own; a run is going on (pid {}), which did not select it: the next `cargo xtask",
            run.id()
        ));
        assert_eq!(t.launches("b/u"), 0);
        t.run(&["reset", "a/s", "a/t"]).code(0);
        std::fs::remove_file(t.path("release")).unwrap();
    }
}

/// While a run of one task goes on, `progress` expects the end of that
/// run, as its live view does: not of the tasks it does not run.
#[test]
fn the_expected_end_of_a_run_of_some_tasks_counts_only_them() {
    let t = Tree::new();
    t.write(
        "workspace/history.json",
        r#"{"tasks": {"p/a": 4.0, "p/b": 600.0}}"#,
    );
    t.task("p/a", &sh("while [ ! -e go ]; do sleep 0.01; done"));
    t.task("p/b", &sh("true"));
    let mut run = t.start(&["orchestrate", "--task", "p/a"]);
    wait_for("p/a to run", || t.state("p/a") == "running");
    let json = progress_json(&t);
    let eta = json["eta_seconds"].as_f64().unwrap();
    assert_eq!(json["run_going_on"], true);
    let going_on = t.run(&["progress"]).stdout;
    t.write("go", "");
    assert!(run.wait().unwrap().success());
    assert!(eta <= 4.0, "{eta}");
    assert!(going_on.contains("Expected end: "), "{going_on}");
    let json = progress_json(&t);
    assert_eq!(json["eta_seconds"], 600.0, "the run ended: p/b is left");
    assert_eq!(json["run_going_on"], false);
    t.run(&["progress"])
        .says("Work left: 10m 00s once a run starts (no run is going on;");
    // Killed, a run of one task goes on no more: what is left is all.
    std::fs::remove_file(t.path("go")).unwrap();
    t.run(&["reset", "p/a"]).code(0);
    t.task(
        "p/a",
        &sh("touch started; while [ ! -e go ]; do sleep 0.01; done"),
    );
    let mut run = t.start(&["orchestrate", "--task", "p/a"]);
    // Started by its supervisor, which outlives the run killed below.
    wait_for("p/a to run", || t.exists("started"));
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    run.kill().unwrap();
    run.wait().unwrap();
    let json = progress_json(&t);
    let eta = json["eta_seconds"].as_f64().unwrap();
    t.write("go", "");
    // Its task ended, the supervisor goes: nothing outlives the test.
    wait_for("the supervisor to end", || !alive(supervisor));
    assert!(eta >= 600.0, "{eta}");
}
