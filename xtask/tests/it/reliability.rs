//! Faults injected for real: a killed orchestrator, a second one, signals.

use std::process::Stdio;

use crate::tree::*;

fn sh(script: &str) -> String {
    format!("command: {}", serde_json::to_string(script).unwrap())
}

#[test]
fn a_second_orchestrator_is_refused_naming_the_holder() {
    let t = Tree::new();
    t.task(
        "p/wait",
        &sh("touch started; while [ ! -f release ]; do sleep 0.05; done"),
    );
    let mut first = t
        .command(&["orchestrate"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first orchestrator's task to start", || {
        t.exists("started")
    });
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
fn a_lock_left_by_a_killed_orchestrator_blocks_nobody() {
    let t = Tree::new();
    t.task(
        "p/wait",
        &sh("touch started; while [ ! -f release ]; do sleep 0.05; done"),
    );
    let mut first = t
        .command(&["orchestrate"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the task to start", || t.exists("started"));
    first.kill().unwrap();
    first.wait().unwrap();
    t.write("release", "");
    // No --unlock: the next run takes over at once.
    t.run(&["orchestrate"]).code(0).says("Summary: 1 completed");
}
