//! The Slurm executor against a real Slurm cluster (`scripts/slurm-start.sh`
//! starts one on this machine; `.ci/run` does). Skipped where there is no
//! Slurm, except in CI, where a missing Slurm is a failure.

use std::process::Stdio;

use crate::tree::*;

const CONFIG: &str = "executor: slurm\nmax_cpu_per_agent: 1\nmax_memory_gb: 1\nkill_grace: 1s\nslurm: {poll_interval: 200ms}\n";

/// A tree set up for the Slurm executor, or `None` (with a message) where
/// no cluster answers.
fn slurm_tree() -> Option<Tree> {
    let up = std::process::Command::new("scontrol")
        .arg("ping")
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs a running Slurm: run scripts/slurm-start.sh first"
        );
        eprintln!("skipped: no Slurm cluster answers (scripts/slurm-start.sh starts one)");
        return None;
    }
    let t = Tree::new();
    t.config(CONFIG);
    Some(t)
}

/// The state Slurm gives a job.
fn job_state(job_id: &str) -> String {
    let out = std::process::Command::new("scontrol")
        .args(["show", "job", "-o", job_id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("JobState="))
        .unwrap_or("")
        .to_owned()
}

/// `next` on Slurm names no memory of this machine's as the limit (it
/// said `inf GiB of memory for them all`).
#[test]
fn next_on_slurm_says_slurm_grants_the_memory() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh("true"));
    (t.run(&["next"]).code(0))
        .says("the memory Slurm grants each job")
        .never_says("inf");
}

#[test]
fn a_dry_run_shows_the_sbatch_that_would_submit_each_task() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh("echo a"));
    t.run(&["orchestrate", "--dry-run"])
        .code(0)
        .says("sbatch")
        .says("--job-name=p/a")
        .says("echo a");
    // Locally, the task's own command.
    let local = t.run(&["orchestrate", "--dry-run", "--executor", "local"]);
    local.code(0).says("sh -c 'echo a'");
    assert!(!local.stdout.contains("sbatch"), "{}", local.stdout);
}

/// `reset` or `block` of a task whose Slurm job runs is refused, naming
/// the job and the `scancel` that stops it (it said "on Slurm" alone).
#[test]
fn slurm_reset_of_a_task_whose_job_runs_names_the_job() {
    let Some(t) = slurm_tree() else { return };
    let release = t.path("release");
    t.task(
        "p/a",
        &sh(&format!(
            "until [ -e {} ]; do sleep 0.05; done",
            release.display()
        )),
    );
    let mut run = t
        .command(&["orchestrate"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("p/a's job", || {
        t.exists("workspace/status/p/a.json") && t.status("p/a")["job_id"].is_string()
    });
    // Killed: its job runs on, no run going on.
    run.kill().unwrap();
    run.wait().unwrap();
    let job = t.status("p/a")["job_id"].as_str().unwrap().to_owned();
    let said = format!("p/a is running (as Slurm job {job}: `scancel {job}` stops it)");
    t.run(&["reset", "p/a"]).code(2).says(&said);
    t.run(&["block", "p/a"]).code(2).says(&said);
    // Released, the job ends, and the next run records it.
    std::fs::write(&release, "").unwrap();
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
}

#[test]
fn slurm_diamond_with_a_failure() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh("echo on $(hostname) as $TASK_ID"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("exit 3")));
    t.task(
        "p/c",
        &format!(
            "dependencies: [p/a]\noutputs: [o]\n{}",
            sh("echo x > $TASK_OUTPUT_DIR/o")
        ),
    );
    t.task("p/d", &format!("dependencies: [p/b, p/c]\n{}", sh("true")));
    t.run(&["orchestrate"])
        .code(1)
        .says("ALERT: Task p/b failed, blocking 1 task");
    assert_eq!(t.status("p/b")["exit_code"], 3);
    assert_eq!(t.state("p/c"), "completed");
    assert_eq!(t.status("p/d")["blocked_by"], "p/b");
    assert!(
        t.read("workspace/logs/p/a.log").contains("as p/a"),
        "the job's output goes to the task's log"
    );
    let job = t.status("p/b")["job_id"].as_str().unwrap().to_owned();
    let record: serde_json::Value =
        serde_json::from_str(&t.read("workspace/pids/p/b.job")).unwrap();
    assert_eq!(
        (record["job_id"].as_str(), record["attempt"].as_u64()),
        (Some(job.as_str()), Some(1))
    );
    assert_eq!(job_state(&job), "FAILED");
}

#[test]
fn slurm_outputs_missing_and_rejected_jobs() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/lazy", &format!("outputs: [report.md]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    assert!(t.status("p/lazy")["error"]
        .as_str()
        .unwrap()
        .contains("missing workspace/outputs/p/lazy/report.md"));

    // A job the cluster can never run fails with Slurm's reason.
    t.config(&CONFIG.replace("max_cpu_per_agent: 1", "max_cpu_per_agent: 64"));
    t.task("p/huge", &sh("true"));
    t.run(&["orchestrate", "--task", "p/huge"]).code(1);
    let error = t.status("p/huge")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("sbatch rejected the job"), "{error}");
    // What sbatch says over several lines (too much memory) is one line in
    // the views.
    t.config(&CONFIG.replace("max_memory_gb: 1", "max_memory_gb: 100"));
    t.task(
        "p/vast",
        &format!("resources: {{memory_gb: 100}}\n{}", sh("true")),
    );
    t.run(&["orchestrate", "--task", "p/vast"]).code(1);
    let error = t.status("p/vast")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("Memory specification can not be satisfied; sbatch: error: "),
        "{error:?}"
    );
}

#[test]
fn slurm_timeout_cancels_the_job() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/slow", &format!("timeout: 2s\n{}", sh("sleep 600")));
    t.run(&["orchestrate"]).code(1).says("Timeout");
    assert_eq!(
        t.status("p/slow")["error"],
        "Timeout after 2s (its `timeout`)"
    );
    // Ended by its SIGTERM, as locally, not cancelled by Slurm.
    assert_eq!(t.status("p/slow")["signal"], 15);
    let job = t.status("p/slow")["job_id"].as_str().unwrap().to_owned();
    assert_eq!(job_state(&job), "FAILED");
}

/// The cluster's KillWait, in seconds: how long a plain `scancel` leaves
/// a job between its SIGTERM and its SIGKILL.
fn kill_wait() -> u64 {
    let out = std::process::Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.starts_with("KillWait")).unwrap();
    let value = line.split('=').nth(1).unwrap().split_whitespace().next();
    value.unwrap().parse().unwrap()
}

/// A task its timeout stops on Slurm gets SIGTERM, and its `kill_grace`
/// before SIGKILL, as locally: the run's plain `scancel` gave it the
/// cluster's KillWait instead, and a cleanup longer than that (a commit
/// of the work done), within its `kill_grace`, was killed. One that
/// ignores SIGTERM gets SIGKILL once its `kill_grace` is over, said in its
/// log.
#[test]
fn slurm_a_timeout_gives_the_task_its_kill_grace() {
    let Some(t) = slurm_tree() else { return };
    let wait = kill_wait();
    let grace = format!("kill_grace: {}s", wait + 10);
    t.config(&CONFIG.replace("kill_grace: 1s", &grace));
    let cleanup = format!(
        "trap 'sleep {}; echo done > $TASK_OUTPUT_DIR/cleaned; exit 7' TERM; sleep 600 & wait",
        wait + 2
    );
    t.task("p/a", &format!("timeout: 2s\n{}", sh(&cleanup)));
    t.run(&["orchestrate"]).code(1);
    let status = t.status("p/a");
    assert_eq!(
        status["error"], "Timeout after 2s (its `timeout`)",
        "{status}"
    );
    let log = t.read("workspace/logs/p/a.log");
    assert!(t.exists("workspace/outputs/p/a/cleaned"), "{log}");
    assert_eq!(status["exit_code"], 7, "{status}");

    t.config(CONFIG);
    t.task(
        "p/deaf",
        &format!("timeout: 2s\n{}", sh("trap '' TERM; sleep 600")),
    );
    t.run(&["orchestrate", "--task", "p/deaf"]).code(1);
    let status = t.status("p/deaf");
    assert_eq!(
        status["error"], "Timeout after 2s (its `timeout`)",
        "{status}"
    );
    assert_eq!(status["signal"], 9, "{status}");
    let log = t.read("workspace/logs/p/deaf.log");
    assert!(
        log.contains("xtask: timed out after 2s: SIGTERM sent to the task's processes\n"),
        "{log}"
    );
    let said = "xtask: still running 1s after SIGTERM: SIGKILL sent\n";
    assert!(log.contains(said), "{log}");
}

/// A job whose process was stopped (SIGSTOP, a shell's ^Z on the node)
/// handles the run's SIGTERM within its `kill_grace`, continued as a
/// local task is: Slurm sends no SIGCONT with a signal, and the stopped
/// process waited for its SIGKILL, its cleanup never run.
#[test]
fn slurm_a_stopped_job_is_continued_to_handle_its_sigterm() {
    let Some(t) = slurm_tree() else { return };
    let orchestrate = t.command(&["orchestrate"]);
    a_stopped_job_handles_its_sigterm(&t, orchestrate);
}

/// The SIGCONT after a SIGTERM Slurm took is owed, as any `scancel`, when
/// the controller does not take it: sent again at the next look, not
/// dropped (the stopped process then waited out its grace).
#[test]
fn slurm_a_sigcont_slurm_did_not_take_is_sent_again() {
    let Some(t) = slurm_tree() else { return };
    let failed = t.path("failed");
    let said = "scancel: error: Kill job error on job id $1: Unable to contact slurm controller (connect failure)";
    let path = stand_in(&t, "scancel", |real| {
        format!(
            "case \"$*\" in *--signal=CONT*) if [ ! -e {0} ]; then touch {0}; echo \"{said}\" >&2; exit 1; fi;; esac\n\
             exec {real} \"$@\"\n",
            failed.display()
        )
    });
    let mut orchestrate = t.command(&["orchestrate"]);
    orchestrate.env("PATH", path);
    a_stopped_job_handles_its_sigterm(&t, orchestrate);
    assert!(t.exists("failed"), "no SIGCONT refused");
}

/// Runs a task whose job's process is stopped (SIGSTOP), then stops the
/// run: the job's cleanup runs within its grace.
fn a_stopped_job_handles_its_sigterm(t: &Tree, orchestrate: std::process::Command) {
    t.config(&CONFIG.replace("kill_grace: 1s", "kill_grace: 30s"));
    let (started, pid) = (t.path("started"), t.path("pid"));
    let script = format!(
        "trap 'echo cleaned > $TASK_OUTPUT_DIR/cleaned; exit 7' TERM; echo $$ > {}; touch {}; sleep 600 & wait",
        pid.display(),
        started.display()
    );
    t.task("p/a", &sh(&script));
    let (run, _job) = run_until_it_runs(t, orchestrate, "p/a", &started);
    signal(read_pid(&pid), libc::SIGSTOP);
    signal(run.id(), libc::SIGTERM);
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", t.read("out"));
    let status = t.status("p/a");
    let log = t.read("workspace/logs/p/a.log");
    assert!(t.exists("workspace/outputs/p/a/cleaned"), "{status}\n{log}");
    assert_eq!(status["exit_code"], 7, "{status}");
    // Not once its grace was over, continued by the SIGKILL's cancel.
    assert!(!log.contains("SIGKILL"), "{log}");
}

/// A job its run was stopping when the run was killed keeps the rest of
/// its `kill_grace` under the run that takes it up, with no second
/// SIGTERM: a plain `scancel` left it the cluster's KillWait (5 s here),
/// and a cleanup longer than that, within `kill_grace`, was killed; a
/// second SIGTERM to every process of the job would reach what the
/// cleanup started (a `git commit` in its trap).
#[test]
fn slurm_a_job_being_stopped_when_its_run_was_killed_keeps_its_kill_grace() {
    let Some(t) = slurm_tree() else { return };
    t.config(&CONFIG.replace("kill_grace: 1s", "kill_grace: 10m"));
    let (started, release) = (t.path("started"), t.path("release"));
    let cleanup = format!(
        "sh -c \"while [ ! -e {} ]; do sleep 0.1; done; echo cleaned > $TASK_OUTPUT_DIR/cleaned\"; exit 7",
        release.display()
    );
    let script = format!(
        "trap '{cleanup}' TERM; touch {}; sleep 600 & wait",
        started.display()
    );
    t.task("p/a", &sh(&script));
    let (first, _job) = run_until_its_job_runs(&t, "p/a", &started);
    let log = || t.read("workspace/logs/p/a.log");
    killed_once_its_sigterm_is_taken(&t, first);
    let monitor = t.start(&["monitor"]);
    wait_for(
        "the run that takes it up to give it the rest of its grace",
        || log().contains("xtask: taken up as it was being stopped: its SIGTERM was sent at "),
    );
    t.write("release", "");
    let out = monitor.wait_with_output().unwrap();
    let status = t.status("p/a");
    assert!(
        t.exists("workspace/outputs/p/a/cleaned"),
        "{status}\n{}",
        log()
    );
    assert_eq!(status["exit_code"], 7, "{status}");
    assert_eq!(status["error"], "interrupted", "{status}");
    assert_eq!(log().matches("SIGTERM sent").count(), 1, "{}", log());
    assert!(!log().contains("SIGKILL sent"), "{}", log());
    assert_ne!(out.status.code(), Some(2), "{status}");
}

/// A job its killed run was stopping, taken up once its `kill_grace` is
/// over, is killed at once, and its log says so (it said "in 0s").
#[test]
fn slurm_a_job_taken_up_after_its_grace_is_killed_at_once() {
    let Some(t) = slurm_tree() else { return };
    let started = t.path("started");
    // It holds on after its SIGTERM.
    let script = format!(
        "trap 'sleep 600' TERM; touch {}; sleep 600 & wait",
        started.display()
    );
    t.task("p/a", &sh(&script));
    let (first, _job) = run_until_its_job_runs(&t, "p/a", &started);
    killed_once_its_sigterm_is_taken(&t, first);
    let record = t.read("workspace/pids/p/a.stopping");
    wait_for("its kill_grace (1 s) to be over", || {
        std::fs::metadata(t.path("workspace/pids/p/a.stopping"))
            .and_then(|m| m.modified())
            .is_ok_and(|at| {
                at.elapsed()
                    .is_ok_and(|e| e > std::time::Duration::from_secs(2))
            })
    });
    let out = t.start(&["monitor"]).wait_with_output().unwrap();
    let log = t.read("workspace/logs/p/a.log");
    assert!(
        log.contains("and its kill_grace is over: SIGKILL now"),
        "{record}\n{log}"
    );
    assert!(!log.contains("in 0s"), "{log}");
    assert_eq!(
        t.status("p/a")["error"],
        "interrupted",
        "{}",
        t.status("p/a")
    );
    assert_ne!(out.status.code(), Some(2));
}

/// Stops run `first` (SIGTERM), and kills it (SIGKILL) once Slurm took
/// the SIGTERM of its job for `p/a`, recorded.
fn killed_once_its_sigterm_is_taken(t: &Tree, mut first: std::process::Child) {
    signal(first.id(), libc::SIGTERM);
    wait_for("the stop's SIGTERM taken, recorded", || {
        std::fs::read_to_string(t.path("workspace/pids/p/a.stopping"))
            .is_ok_and(|record| record.contains("terminated_at"))
    });
    first.kill().unwrap();
    first.wait().unwrap();
}

/// A job its run was stopping when the run was killed, requeued and
/// started again since, gets its SIGTERM from the run that takes it up:
/// the SIGTERM recorded was its first start's, and the rest of that
/// grace, over, was a SIGKILL at once, its cleanup never run.
#[test]
fn slurm_a_job_requeued_after_its_sigterm_gets_its_own() {
    let Some(t) = slurm_tree() else { return };
    let (first_start, again) = (t.path("first"), t.path("again"));
    // Its first start holds on after its SIGTERM (until the requeue
    // kills it); its second cleans up on its own.
    let script = format!(
        "if [ -e {0} ]; then trap 'echo cleaned > $TASK_OUTPUT_DIR/cleaned; exit 7' TERM; touch {1}; else trap 'sleep 600' TERM; touch {0}; fi; sleep 600 & wait",
        first_start.display(),
        again.display()
    );
    t.task("p/a", &sh(&script));
    let (first, job) = run_until_its_job_runs(&t, "p/a", &first_start);
    killed_once_its_sigterm_is_taken(&t, first);
    let requeued_at = second();
    scontrol(&["requeue", &job]);
    wait_for("it to wait again", || job_state(&job) == "PENDING");
    // Started again within the second its credential was revoked in, the
    // job fails at once (slurmd: "Job credential revoked").
    wait_for("the second after the requeue", || second() > requeued_at);
    scontrol(&["update", &format!("JobId={job}"), "StartTime=now"]);
    wait_for("its second start", || again.exists());
    let monitor = t.start(&["monitor"]);
    let out = monitor.wait_with_output().unwrap();
    let status = t.status("p/a");
    let log = t.read("workspace/logs/p/a.log");
    assert!(t.exists("workspace/outputs/p/a/cleaned"), "{status}\n{log}");
    assert_eq!(status["exit_code"], 7, "{status}");
    assert_eq!(status["error"], "interrupted", "{status}");
    assert!(!log.contains("taken up as it was being stopped"), "{log}");
    assert_ne!(out.status.code(), Some(2), "{status}");
}

/// A job whose grace after its timeout's SIGTERM runs into Slurm's own
/// time limit (`--time`, the timeout in whole minutes: here 30 s, then 1
/// minute) ends as that timeout, as the run stopped it: it was said ended
/// by Slurm's limit (`Timeout: Slurm ended the job at its time limit`).
#[test]
fn slurm_a_grace_cut_by_slurm_s_time_limit_is_the_timeout_s() {
    let Some(t) = slurm_tree() else { return };
    t.config(&CONFIG.replace("kill_grace: 1s", "kill_grace: 10m"));
    t.task(
        "p/deaf",
        &format!("timeout: 30s\n{}", sh("trap '' TERM; sleep 600")),
    );
    t.run(&["orchestrate"]).code(1);
    let status = t.status("p/deaf");
    let job = status["job_id"].as_str().unwrap().to_owned();
    assert_eq!(job_state(&job), "TIMEOUT", "{status}");
    assert_eq!(
        status["error"], "Timeout after 30s (its `timeout`)",
        "{status}"
    );
}

/// A task whose job is cancelled (`scancel`, by hand here, as by the run
/// that takes up a job it was stopping after a crash) that catches the
/// SIGTERM and exits with a code of its own keeps that code in its status,
/// as locally (Slurm says `7:0` of the cancelled job): it had none.
#[test]
fn slurm_a_task_whose_job_is_cancelled_keeps_its_own_exit_code() {
    let Some(t) = slurm_tree() else { return };
    let started = t.path("started");
    let script = format!(
        "trap 'exit 7' TERM; touch {}; sleep 600 & wait",
        started.display()
    );
    t.task("p/c", &sh(&script));
    let (run, job) = run_until_its_job_runs(&t, "p/c", &started);
    scancel_by_hand(&job);
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", t.read("out"));
    let status = t.status("p/c");
    assert_eq!(job_state(&job), "CANCELLED");
    assert_eq!(status["exit_code"], 7, "{status}");
    assert!(status["signal"].is_null(), "{status}");
}

/// A task killed by a signal on Slurm is said killed by it, as locally:
/// the shell sbatch wrapped it in made it exit code 137.
#[test]
fn slurm_a_task_killed_by_a_signal_is_said_killed_by_it() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/killed", &sh("kill -9 $$"));
    t.run(&["orchestrate"]).code(1);
    let status = t.status("p/killed");
    assert_eq!(status["error"], "killed by SIGKILL", "{status}");
    assert!(status["exit_code"].is_null(), "{status}");
}

/// Puts in `t` a stand-in for Slurm's `program`, the shell script that
/// `script` makes of how the real one is run (`env PATH=... program`);
/// returns the PATH that finds it first.
fn stand_in(t: &Tree, program: &str, script: impl FnOnce(&str) -> String) -> String {
    let path = std::env::var("PATH").unwrap();
    let real = format!("env PATH='{path}' {program}");
    let script = script(&real);
    t.write_executable(&format!("bin/{program}"), &format!("#!/bin/sh\n{script}"));
    format!("{}:{path}", t.path("bin").display())
}

/// Puts in `t` a stand-in for Slurm's `program` whose first call fails
/// as Slurm's does when its controller cannot be reached (`said` on
/// stderr, exit 1; the file `failed` made then), after running the real
/// one if `reached` (the controller did what was asked, its answer was
/// lost), the later ones the real program's; returns the PATH that finds
/// it first.
fn failing_once(t: &Tree, program: &str, reached: bool, said: &str) -> String {
    let failed = t.path("failed");
    stand_in(t, program, |real| {
        let first = match reached {
            true => format!("{real} \"$@\" > /dev/null; "),
            false => String::new(),
        };
        format!(
            "if [ ! -e {0} ]; then touch {0}; {first}echo \"{said}\" >&2; exit 1; fi\n\
             exec {real} \"$@\"\n",
            failed.display()
        )
    })
}

/// An sbatch that heard nothing back from the controller, which took the
/// job all the same: the job is found and followed, not submitted again.
/// Both attempts were recorded rejected, and two jobs ran for the task.
#[test]
fn slurm_a_job_taken_by_a_controller_that_did_not_answer_is_found() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh(MARK));
    let said =
        "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation";
    let path = failing_once(&t, "sbatch", true, said);
    let run = t
        .command(&["orchestrate"])
        .env("PATH", path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{out}");
    assert!(t.exists("failed"), "no sbatch failed");
    assert!(out.contains("Socket timed out"), "{out}");
    assert_eq!(t.status("p/a")["tries"], 1);
    assert_eq!(t.launches("p/a"), 1);
}

/// A controller that cannot be reached is waited for, said, and tried
/// again: the task's attempt is not failed (its retries burnt in seconds).
#[test]
fn slurm_a_controller_that_cannot_be_reached_is_waited_for() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh(MARK));
    let said = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)";
    let path = failing_once(&t, "sbatch", false, said);
    let run = t
        .command(&["orchestrate"])
        .env("PATH", path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{out}");
    assert!(t.exists("failed"), "no sbatch failed");
    assert!(
        out.contains("Slurm's controller could not be reached"),
        "{out}"
    );
    assert_eq!(t.status("p/a")["tries"], 1);
    assert_eq!(t.launches("p/a"), 1);
}

/// What the run writes in a task's log before its job starts (the wait for
/// a controller that could not be reached) stays there beside the job's
/// output: the job opened its log truncated, Slurm's default, and erased it.
#[test]
fn slurm_the_wait_for_the_controller_stays_in_the_task_s_log() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh("echo from the job"));
    let said = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)";
    let path = failing_once(&t, "sbatch", false, said);
    let run = t
        .command(&["orchestrate"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let log = t.read("workspace/logs/p/a.log");
    assert!(
        log.contains("xtask: Slurm's controller could not be reached")
            && log.contains("from the job"),
        "{log}"
    );
}

/// A stop while a submission waits for the controller ends the wait at
/// once, looks for the job a last time, and leaves the task interrupted,
/// not failed (a try counted, and a job it may have made untracked).
#[test]
fn slurm_a_stop_while_the_controller_is_waited_for_interrupts_the_task() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh(MARK));
    let said = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)";
    let path = failing_once(&t, "sbatch", false, said);
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = t
        .command(&["orchestrate"])
        .env("PATH", path)
        .stdout(out)
        .spawn()
        .unwrap();
    wait_for("the wait for the controller", || {
        t.read("out").contains("could not be reached")
    });
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    assert_eq!(run.wait().unwrap().code(), Some(143), "{}", t.read("out"));
    let status = t.status("p/a");
    assert_eq!(status["ending"], "interrupted", "{status}");
    assert_eq!(t.launches("p/a"), 0);
}

/// A cancel for our timeout that fails (the controller did not answer) is
/// tried again until one works: the job ran on to Slurm's own time limit.
#[test]
fn slurm_a_failed_cancel_is_tried_again() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/slow", &format!("timeout: 2s\n{}", sh("sleep 600")));
    let said = "scancel: error: Kill job error on job id $1: Unable to contact slurm controller (connect failure)";
    let path = failing_once(&t, "scancel", false, said);
    let run = t
        .command(&["orchestrate"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(t.exists("failed"), "no scancel failed");
    assert_eq!(
        t.status("p/slow")["error"],
        "Timeout after 2s (its `timeout`)"
    );
    // Ended by the SIGTERM sent again, before Slurm's time limit.
    let job = t.status("p/slow")["job_id"].as_str().unwrap().to_owned();
    assert_eq!(job_state(&job), "FAILED");
}

/// A `%` in a task's id (so in its log's path) is no sbatch pattern: the
/// job wrote to another path, which slurmd could not open, and failed to
/// launch, said killed by signal 53.
#[test]
fn slurm_a_percent_in_a_task_id_is_no_pattern() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/b%xq", &sh("echo ran"));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/logs/p/b%xq.log"), "ran\n");
}

/// An orchestrator killed as it cancelled a job for its timeout (the
/// cancel taken, the job's end not seen yet) leaves the next run to record
/// a timeout, not the `interrupted` of a job cancelled by no one of ours.
#[test]
fn slurm_a_timeout_cut_short_by_a_kill_is_recorded_by_the_next_run() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/slow", &format!("timeout: 2s\n{}", sh("sleep 600")));
    // scancel cancels, then hangs until its orchestrator dies.
    let cancelled = t.path("cancelled");
    let path = stand_in(&t, "scancel", |real| {
        format!(
            "{real} \"$@\"\ntouch {}\nexec sleep 600\n",
            cancelled.display()
        )
    });
    let mut first = (t.command(&["orchestrate"]))
        .env("PATH", path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the timeout's cancel", || t.exists("cancelled"));
    first.kill().unwrap();
    first.wait().unwrap();
    t.run(&["orchestrate"]).code(1).says("Timeout");
    assert_eq!(
        t.status("p/slow")["error"],
        "Timeout after 2s (its `timeout`)"
    );
}

#[test]
fn slurm_ctrl_c_cancels_jobs_and_exits_130() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/wait", &sh("touch $WORKSPACE/started; sleep 600"));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut orchestrator = t
        .command(&["orchestrate"])
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the job to run", || t.exists("workspace/started"));
    unsafe { libc::kill(orchestrator.id() as i32, libc::SIGINT) };
    assert_eq!(
        orchestrator.wait().unwrap().code(),
        Some(130),
        "{}",
        t.read("out")
    );
    assert_eq!(t.status("p/wait")["error"], "interrupted");
    let job = t.status("p/wait")["job_id"].as_str().unwrap().to_owned();
    // Ended by the run's SIGTERM (`scancel --signal=TERM --full`): Slurm
    // calls such a job CANCELLED, or FAILED (WTERMSIG 15) when the job
    // died of it before Slurm marked the cancel (seen once under load).
    let state = job_state(&job);
    assert!(["CANCELLED", "FAILED"].contains(&state.as_str()), "{state}");
}

/// Starts a run of `t` whose `sbatch` holds the submission of p/a (a
/// controller slow to take it, or to answer once it took it: `submitted`)
/// until the file `release` is there, once it holds it (its pid in
/// `held`); the run's output goes to `out`.
fn run_with_p_a_s_submission_held(t: &Tree, submitted: bool) -> std::process::Child {
    let root = t.root.display();
    let path = stand_in(t, "sbatch", |real| {
        let sbatch = format!("{real} \"$@\"");
        let (submit, answer) = match submitted {
            true => (format!("  id=$({sbatch})\n"), "  echo \"$id\"; exit\n"),
            false => (String::new(), ""),
        };
        format!(
            "if [ \"$TASK_ID\" = p/a ]; then\n{submit}  echo $$ > {root}/held\n  \
             until [ -e {root}/release ]; do sleep 0.02; done\n{answer}fi\nexec {sbatch}\n"
        )
    });
    let out = std::fs::File::create(t.path("out")).unwrap();
    let run = (t.command(&["orchestrate", "-j", "2"]))
        .env("PATH", path)
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("p/a's submission to be held", || pid_written(t, "held"));
    run
}

/// A submission the controller is slow to take holds no other task: the
/// run submits, follows and records the others meanwhile.
#[test]
fn slurm_a_slow_submission_holds_no_other_task() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh("echo a"));
    t.task("p/b", &sh("echo b"));
    let mut run = run_with_p_a_s_submission_held(&t, false);
    wait_for("p/b to complete", || t.state("p/b") == "completed");
    assert_eq!(t.state("p/a"), "running");
    t.write("release", "");
    assert_eq!(run.wait().unwrap().code(), Some(0), "{}", t.read("out"));
    assert_eq!(t.state("p/a"), "completed");
}

/// A Ctrl-C while a submission is held stops the run at once; the job that
/// submission makes is cancelled as soon as it has its id, recorded.
#[test]
fn slurm_ctrl_c_during_a_slow_submission_cancels_the_job_it_makes() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh("sleep 600"));
    let mut run = run_with_p_a_s_submission_held(&t, false);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    wait_for("the run to say it stops", || {
        t.read("out").contains("SIGINT received")
    });
    t.write("release", "");
    assert_eq!(run.wait().unwrap().code(), Some(130), "{}", t.read("out"));
    assert_eq!(t.status("p/a")["error"], "interrupted");
    let job = t.status("p/a")["job_id"].as_str().unwrap().to_owned();
    assert_eq!(job_state(&job), "CANCELLED");
}

/// An orchestrator killed while its sbatch ran, the job taken by the
/// controller but its id not given yet: the sbatch dies with it (left
/// running, it would be taken for the task, whose environment it carries),
/// and the next run finds the job by its name, log and attempt, and
/// follows it, never submitting the task again.
#[test]
fn slurm_a_job_submitted_as_the_orchestrator_died_is_found_not_submitted_again() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh("echo ran >> runs"));
    let mut run = run_with_p_a_s_submission_held(&t, true);
    let sbatch = read_pid(&t.path("held"));
    run.kill().unwrap();
    run.wait().unwrap();
    wait_for("the sbatch to die with its orchestrator", || !alive(sbatch));
    // Recorded as being submitted, its job not named.
    let record = t.read("workspace/pids/p/a.job");
    assert!(
        record.contains(r#""job_id":"""#),
        "the job was recorded: {record}"
    );
    t.run(&["orchestrate"]).code(0).says("p/a");
    assert_eq!(t.read("runs"), "ran\n", "the task ran twice");
    assert_eq!(t.state("p/a"), "completed");
}

/// The Slurm job whose task's log is `t`'s `workspace/logs/<id>.log`, if
/// Slurm knows one (other trees' jobs have the same names).
fn job_of_log(t: &Tree, id: &str) -> Option<String> {
    let out = std::process::Command::new("scontrol")
        .args(["-a", "show", "job", "-o"])
        .output()
        .unwrap();
    let log = t.path(&format!("workspace/logs/{id}.log"));
    let wanted = format!("StdOut={}", log.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.split_whitespace().any(|w| w == wanted))
        .find_map(|line| {
            let id = line.split_whitespace().next()?.strip_prefix("JobId=")?;
            Some(id.to_owned())
        })
}

/// An orchestrator killed while its sbatch ran, the controller having
/// taken the job, and the task's file removed before the next run: that
/// run finds the job (by its name, log and attempt), records the task
/// failed and names the job to `scancel`. Nothing in `workspace/pids/`
/// named the task, so no run took it up: its status stayed `running` for
/// good, and its job ran on unsaid.
#[test]
fn slurm_a_job_submitted_as_the_orchestrator_died_whose_file_is_gone_is_said() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh("sleep 60"));
    let mut run = run_with_p_a_s_submission_held(&t, true);
    let sbatch = read_pid(&t.path("held"));
    run.kill().unwrap();
    run.wait().unwrap();
    wait_for("the sbatch to die with its orchestrator", || !alive(sbatch));
    let job = job_of_log(&t, "p/a").expect("the controller took no job");
    std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
    t.task("p/z", &sh("true"));
    let said = t.run(&["orchestrate"]);
    scancel_by_hand(&job);
    said.code(1).says(&format!("`scancel {job}`"));
    let status = t.status("p/a");
    assert_eq!(status["status"], "failed", "{status}");
    assert!(status["error"].as_str().unwrap().contains(&job), "{status}");
}

/// An agent whose Slurm job ended while no orchestrator ran (its run
/// killed) spent what it printed: the next run takes that end before it
/// starts anything, as it does a local task's, so a budget it reached
/// starts nothing more (exit 3), and the views count it as they do a local
/// one's. The run submitted p/b first, the job's end taken at its first
/// look at Slurm after ($0.33 spent of $0.10), and the views said the
/// budget untouched.
#[test]
fn slurm_a_job_that_ended_unseen_counts_against_the_budget_before_any_start() {
    let Some(t) = slurm_tree() else { return };
    t.config(&format!(
        "{CONFIG}{}budget: {{usd: 0.10}}\n",
        crate::agents::agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    crate::agents::scenario(&t, "p/a", &["success.json 0 1"]);
    let mut first = t
        .command(&["orchestrate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("p/a's job to run", || {
        t.exists("env/p_a.1") && t.status("p/a")["job_id"].is_string()
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let job = t.status("p/a")["job_id"].as_str().unwrap().to_owned();
    wait_for("p/a's job to end", || job_state(&job) == "COMPLETED");
    // A task ready to start, added since.
    t.task("p/b", "");
    crate::agents::scenario(&t, "p/b", &["success.json"]);
    // The views count it too, as they do a local agent's (they said the
    // budget untouched, and that p/b would start).
    let reached = "budget of $0.10 reached ($0.16 spent)";
    t.run(&["progress"]).says("Budget: $0.16 of $0.10 spent");
    t.run(&["next"])
        .says("Budget: $0.16 of $0.10 spent, $0.00 left");
    t.run(&["orchestrate", "--dry-run"]).code(1).says(&format!(
        "would not start: p/b: ready, not started: {reached}"
    ));
    t.run(&["orchestrate"]).code(3).says(reached);
    assert!(!t.exists("env/p_b.1"), "p/b ran");
    assert_eq!(t.state("p/a"), "completed");
}

/// A Slurm job of a killed run that ended before the next run, its task's
/// file removed meanwhile: that run records its end as Slurm tells it (its
/// exit code), without a warning that it runs on and is to be cancelled.
/// It was said left running, to `scancel`, and recorded lost.
#[test]
fn slurm_a_job_whose_file_is_gone_that_ended_meanwhile_keeps_its_exit_code() {
    let Some(t) = slurm_tree() else { return };
    t.task(
        "p/a",
        &sh("touch $WORKSPACE/started; while [ ! -f release ]; do sleep 0.1; done; exit 4"),
    );
    let job = kill_once_the_job_runs(&t, |_| true);
    t.write("release", "");
    wait_for("the job to end", || job_state(&job) == "FAILED");
    std::fs::remove_file(t.path("tasks/p/a.md")).unwrap();
    t.task("p/z", &sh("true"));
    let run = t.run(&["orchestrate"]);
    run.code(1).says("exit code 4; its task file is gone");
    assert!(!run.said().contains("scancel"), "{}", run.said());
    let status = t.status("p/a");
    assert_eq!(
        (status["status"].as_str(), status["exit_code"].as_i64()),
        (Some("failed"), Some(4)),
        "{status}"
    );
}

/// A job a listing of Slurm's jobs leaves out (a partition hidden from
/// the user, a controller taking over) is not lost while Slurm still knows
/// it: it was taken for lost on that one listing and submitted again
/// beside itself.
#[test]
fn slurm_a_job_one_listing_leaves_out_is_not_lost() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh(&format!("{MARK}; echo ran")));
    // The first listing that holds p/a's job (by its log: other trees'
    // jobs are named p/a too) leaves it out.
    let once = t.path("left-out");
    let log = format!("StdOut={}/workspace/logs/p/a.log", t.root.display());
    let path = stand_in(&t, "scontrol", |real| {
        format!(
            "out=$({real} \"$@\")\nrc=$?\n\
             case \"$*\" in *' -o') if [ ! -e {0} ] && echo \"$out\" | grep -q '{log} '; then\n\
             touch {0}; echo \"$out\" | grep -v '{log} '; exit $rc; fi;; esac\n\
             echo \"$out\"\nexit $rc\n",
            once.display()
        )
    });
    let run = (t.command(&["orchestrate"]))
        .env("PATH", path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{said}");
    assert!(once.exists(), "no listing left the job out");
    assert_eq!(t.launches("p/a"), 1, "{said}");
    assert_eq!(t.status("p/a")["tries"], 1, "{said}");
}

/// How long Slurm says the job has run (`RunTime`), in seconds.
fn run_time(job_id: &str) -> u64 {
    let out = std::process::Command::new("scontrol")
        .args(["show", "job", "-o", job_id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let time = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("RunTime="))
        .unwrap_or("0:0:0");
    // [D-]HH:MM:SS
    let (days, clock) = time.split_once('-').unwrap_or(("0", time));
    let secs = clock
        .split(':')
        .fold(0, |total, part| total * 60 + part.parse::<u64>().unwrap());
    days.parse::<u64>().unwrap() * 86_400 + secs
}

/// A job Slurm requeues goes back to `queued`, and its timeout counts from
/// its next start: its first run's time is not held against it.
#[test]
fn slurm_a_requeued_job_s_time_counts_from_its_next_start() {
    let Some(t) = slurm_tree() else { return };
    let again = t.path("again");
    let script = format!(
        "if [ -e {0} ]; then sleep 4; else touch {0}; sleep 600; fi",
        again.display()
    );
    t.task("p/rq", &format!("timeout: 6s\n{}", sh(&script)));
    let (run, job) = run_until_its_job_runs(&t, "p/rq", &again);
    wait_for("3 s of its first run", || run_time(&job) >= 3);
    let requeued_at = second();
    scontrol(&["requeue", &job]);
    wait_for("the run to see it queued", || {
        t.status("p/rq")["queued"] == true
    });
    // Started again within the second its credential was revoked in, the
    // job fails at once (slurmd: "Job credential revoked").
    wait_for("the second after the requeue", || second() > requeued_at);
    // Requeued jobs wait two minutes by default: now.
    scontrol(&["update", &format!("JobId={job}"), "StartTime=now"]);
    ends_completed(&t, run, "p/rq");
}

/// A job Slurm requeues held (`SPECIAL_EXIT`, the state a job's epilog or
/// an admin's `scontrol requeuehold State=SpecialExit` puts it in) has not
/// ended: the run says it is queued and why, and takes it up again once it
/// is released and runs (its end was recorded as a failure).
#[test]
fn slurm_a_job_requeued_held_is_queued_not_ended() {
    let Some(t) = slurm_tree() else { return };
    let again = t.path("again");
    let script = format!(
        "if [ -e {0} ]; then echo done; else touch {0}; sleep 600; fi",
        again.display()
    );
    t.task("p/held", &sh(&script));
    let (run, job) = run_until_its_job_runs(&t, "p/held", &again);
    let requeued_at = second();
    scontrol(&["requeuehold", "State=SpecialExit", &job]);
    wait_for("the run to see it queued, or end", || {
        t.status("p/held")["queued"] == true || t.state("p/held") != "running"
    });
    assert_eq!(t.state("p/held"), "running", "{}", t.read("out"));
    wait_for("the run to say it", || {
        t.read("out").contains("SPECIAL_EXIT")
    });
    assert!(
        t.read("out")
            .contains(&format!("held until `scontrol release {job}`")),
        "{}",
        t.read("out")
    );
    // As for a requeue: not in the second its credential was revoked in.
    t.run(&["why", "p/held"]).says(&format!(
        "p/held is queued in Slurm as job {job} (attempt 1, agent-1) for "
    ));
    wait_for("the second after the requeue", || second() > requeued_at);
    scontrol(&["release", &job]);
    // Requeued jobs wait two minutes by default: now.
    scontrol(&["update", &format!("JobId={job}"), "StartTime=now"]);
    ends_completed(&t, run, "p/held");
}

/// A job requeued and started again while the run's looks at Slurm
/// failed (they never saw it wait) is timed from its new start: its
/// first run's time, over its timeout, did not get it cancelled as soon
/// as a look worked again.
#[test]
fn slurm_a_job_requeued_and_restarted_unseen_is_timed_from_its_new_start() {
    let Some(t) = slurm_tree() else { return };
    let (again, ran_again) = (t.path("again"), t.path("ran-again"));
    let script = format!(
        "if [ -e {0} ]; then touch {1}; while [ ! -e {2} ]; do sleep 0.1; done; \
         else touch {0}; sleep 600; fi",
        again.display(),
        ran_again.display(),
        t.path("go").display()
    );
    t.task("p/a", &format!("timeout: 8s\n{}", sh(&script)));
    // The run's `scontrol` fails while `blind` is there.
    let blind = t.path("blind");
    let path = stand_in(&t, "scontrol", |real| {
        format!("[ -e {} ] && exit 1\nexec {real} \"$@\"\n", blind.display())
    });
    let mut orchestrate = t.command(&["orchestrate"]);
    orchestrate.env("PATH", path);
    let (run, job) = run_until_it_runs(&t, orchestrate, "p/a", &again);
    t.write("blind", "");
    wait_for("its first run to outlast its timeout", || {
        run_time(&job) >= 9
    });
    let requeued_at = second();
    scontrol(&["requeue", &job]);
    wait_for("the job to wait", || job_state(&job) == "PENDING");
    // Not in the second its credential was revoked in; requeued jobs wait
    // two minutes by default: now.
    wait_for("the second after the requeue", || second() > requeued_at);
    scontrol(&["update", &format!("JobId={job}"), "StartTime=now"]);
    wait_for("its second run", || ran_again.exists());
    std::fs::remove_file(t.path("blind")).unwrap();
    wait_for("the run to see it again, or end", || {
        t.read("out").contains("started it again") || t.state("p/a") != "running"
    });
    assert_eq!(t.state("p/a"), "running", "{}", t.read("out"));
    wait_for("the run to take its new start", || {
        t.read("out").contains("left the Slurm queue")
    });
    t.write("go", "");
    ends_completed(&t, run, "p/a");
    assert!(
        t.read("out")
            .contains("Slurm requeued its job and started it again (Restarts=1)"),
        "{}",
        t.read("out")
    );
}

/// A job cancelled in Slurm by hand is a failure of its task, said as
/// such: not `interrupted`, the word of a stop of the run's, which is
/// forgiven.
#[test]
fn slurm_a_job_cancelled_by_hand_says_so() {
    let Some(t) = slurm_tree() else { return };
    let started = t.path("started");
    let script = format!("touch {}; while :; do sleep 0.2; done", started.display());
    t.task("p/c", &sh(&script));
    let (run, job) = run_until_its_job_runs(&t, "p/c", &started);
    scancel_by_hand(&job);
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", t.read("out"));
    assert_eq!(
        t.status("p/c")["error"],
        "cancelled in Slurm, not by this run (scancel, or the cluster's administrators)"
    );
}

/// `why` of an agent whose job was cancelled in Slurm by hand before its
/// result does not say the run was stopped: it said "the run was stopped
/// first (Ctrl-C, SIGTERM or an error of the run)" of a run that was not,
/// under its error "cancelled in Slurm, not by this run".
#[test]
fn slurm_why_of_an_agent_cancelled_by_hand_does_not_say_the_run_stopped() {
    let Some(t) = slurm_tree() else { return };
    t.config(&format!(
        "{CONFIG}{}",
        crate::agents::agent("claude", "claude-json")
    ));
    t.task("p/a", "retries: 0\n");
    crate::agents::scenario(&t, "p/a", &["success.json 0 until:go"]);
    let (run, job) = run_until_its_job_runs(&t, "p/a", &t.path("env/p_a.1"));
    scancel_by_hand(&job);
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", t.read("out"));
    t.run(&["why", "p/a"])
        .says("agent reported: ")
        .says("no result: it was interrupted first")
        .never_says("the run was stopped");
}

/// A job cancelled while suspended ends at its cancel: its duration counts
/// the time it was suspended, as README says of a suspended job. Slurm
/// gives it the time of its suspension as its `EndTime`, which was taken
/// for its end: its duration stopped there, before the run said it
/// suspended.
#[test]
fn slurm_a_job_cancelled_while_suspended_ends_at_its_cancel() {
    let Some(t) = slurm_tree() else { return };
    let started = t.path("started");
    let script = format!("touch {}; while :; do sleep 0.2; done", started.display());
    t.task("p/c", &sh(&script));
    let (run, job) = run_until_its_job_runs(&t, "p/c", &started);
    scontrol(&["suspend", &job]);
    let suspended = std::time::Instant::now();
    wait_for("the run to see it suspended", || {
        t.read("out").contains("its time stops until it resumes")
    });
    wait_for("2 s suspended", || {
        suspended.elapsed() > std::time::Duration::from_secs(2)
    });
    scancel_by_hand(&job);
    assert_eq!(run.wait_with_output().unwrap().status.code(), Some(1));
    let status = t.status("p/c");
    let took = status["duration_seconds"].as_f64().unwrap();
    assert!(took >= 2.0, "took {took} s, 2 s of it suspended: {status}");
}

/// The time a job spends suspended counts neither against its task's
/// timeout nor its idle timeout: resumed, it runs on (it was cancelled at
/// once: for its timeout, its time counted from its start; then for its
/// idle timeout, its log still while it was suspended).
#[test]
fn slurm_a_suspended_job_s_time_stops_while_it_is_suspended() {
    let Some(t) = slurm_tree() else { return };
    let started = t.path("started");
    let script = format!(
        "touch {}; while [ ! -f {} ]; do echo tick; sleep 0.2; done",
        started.display(),
        t.path("release").display()
    );
    t.task(
        "p/s",
        &format!("timeout: 5s\nidle_timeout: 3s\n{}", sh(&script)),
    );
    let (run, job) = run_until_its_job_runs(&t, "p/s", &started);
    scontrol(&["suspend", &job]);
    wait_for("the run to see it suspended", || {
        t.read("out").contains("its time stops until it resumes")
    });
    // Suspended for longer than its timeout.
    let suspended_at = std::time::SystemTime::now();
    wait_for("6 s suspended", || {
        suspended_at.elapsed().unwrap() > std::time::Duration::from_secs(6)
    });
    scontrol(&["resume", &job]);
    wait_for("the run to see it run again, or end", || {
        t.read("out").contains("Slurm resumed its job") || t.state("p/s") != "running"
    });
    // Five lines more in its log: a second run on, its watchdog looked
    // several times, as its idle timeout would be past.
    let ticks = || t.read("workspace/logs/p/s.log").matches("tick").count();
    let at_resume = ticks();
    wait_for("five lines more, or its end", || {
        ticks() >= at_resume + 5 || t.state("p/s") != "running"
    });
    assert_eq!(t.state("p/s"), "running", "{}", t.read("out"));
    t.write("release", "");
    ends_completed(&t, run, "p/s");
}

/// A job held while no orchestrator ran (`scontrol requeuehold`, without a
/// state: `PENDING`, held) is said held by the run that takes it up, with
/// the `scontrol release` that lets it run; released, it runs and completes
/// (the run said nothing, and waited).
#[test]
fn slurm_a_job_held_while_no_run_was_on_is_said_held() {
    let Some(t) = killed_while_a_job_runs() else {
        return;
    };
    let job = t.status("p/one")["job_id"].as_str().unwrap().to_owned();
    let requeued_at = second();
    scontrol(&["requeuehold", &job]);
    let out = std::fs::File::create(t.path("out")).unwrap();
    let run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the run to say it held", || {
        t.read("out")
            .contains(&format!("held until `scontrol release {job}`"))
    });
    wait_for("its status to say queued", || {
        t.status("p/one")["queued"] == true
    });
    t.run(&["why", "p/one"]).says(&format!(
        "p/one is queued in Slurm as job {job} (attempt 1, agent-1) for "
    ));
    wait_for("the second after the requeue", || second() > requeued_at);
    scontrol(&["release", &job]);
    scontrol(&["update", &format!("JobId={job}"), "StartTime=now"]);
    ends_completed(&t, run, "p/one");
    assert_eq!(t.state("p/two"), "completed");
}

/// Starts `orchestrate` on `t`, its output in the file `out`, and waits
/// until its command has made `ran` and the run has seen task `id`'s job
/// run; returns the run and the job's id.
fn run_until_its_job_runs(
    t: &Tree,
    id: &str,
    ran: &std::path::Path,
) -> (std::process::Child, String) {
    run_until_it_runs(t, t.command(&["orchestrate"]), id, ran)
}

/// As `run_until_its_job_runs`, of the run `orchestrate` starts.
fn run_until_it_runs(
    t: &Tree,
    mut orchestrate: std::process::Command,
    id: &str,
    ran: &std::path::Path,
) -> (std::process::Child, String) {
    let out = std::fs::File::create(t.path("out")).unwrap();
    let run = orchestrate.stdout(out).spawn().unwrap();
    wait_for("the run to see its job run", || {
        ran.exists() && t.status(id)["queued"] != true
    });
    let job = t.status(id)["job_id"].as_str().unwrap().to_owned();
    (run, job)
}

/// Cancels job `job` in Slurm as a person does, outside the run.
fn scancel_by_hand(job: &str) {
    let cancelled = std::process::Command::new("scancel").arg(job).status();
    assert!(cancelled.unwrap().success(), "scancel {job}");
}

/// Waits for `run` to end in success, task `id` completed.
fn ends_completed(t: &Tree, mut run: std::process::Child, id: &str) {
    assert!(
        run.wait().unwrap().success(),
        "{}{}",
        t.read("out"),
        t.read(&format!("workspace/logs/{id}.log"))
    );
    assert_eq!(t.state(id), "completed");
}

/// The second it is, since the epoch.
fn second() -> u64 {
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Runs `scontrol` with `args`, which must succeed.
fn scontrol(args: &[&str]) {
    let ok = std::process::Command::new("scontrol")
        .args(args)
        .status()
        .unwrap();
    assert!(ok.success(), "scontrol {args:?}");
}

/// A job taken up by the next orchestrator after a crash keeps the
/// timeout it started with (counted from Slurm's start, not from when the
/// new orchestrator first saw it), and its duration is Slurm's.
#[test]
fn slurm_a_job_adopted_after_a_crash_keeps_its_timeout() {
    let Some(t) = slurm_tree() else { return };
    t.task(
        "p/slow",
        &format!("timeout: 6s\n{}", sh("touch $WORKSPACE/started; sleep 600")),
    );
    let job = kill_once_the_job_runs(&t, |job| run_time(job) >= 4);
    t.run(&["orchestrate"]).code(1).says("Timeout");
    assert_eq!(
        t.status("p/slow")["error"],
        "Timeout after 6s (its `timeout`)"
    );
    // Cancelled at about 6 s; from the new orchestrator's first sight, it
    // would have run 10 s at least.
    let ran = run_time(&job);
    assert!(ran < 9, "the job ran {ran} s against a 6 s timeout");
    let duration = t.status("p/slow")["duration_seconds"].as_f64().unwrap();
    assert!(duration < 9.0, "duration {duration} s");
}

/// A retry's job that quotes the question it was told of, taken up by the
/// next orchestrator after a crash, is not taken for asking it, as the
/// run that submitted it would not have: it runs to its end (its job was
/// cancelled at its first second of quiet, as waiting for input).
#[test]
fn slurm_an_adopted_retry_quoting_the_question_it_was_told_of_is_not_asking_it() {
    let Some(t) = slurm_tree() else { return };
    let slurm = CONFIG.replace("kill_grace: 1s\n", "");
    crate::agents::a_retry_quoting_its_question(&t, 4, &slurm);
    let mut first = t
        .command(&["orchestrate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(t.path("workspace/logs/p/a.log")).unwrap_or_default();
    wait_for("its retry to quote the question", || {
        log().contains("Last time: waiting for input")
    });
    first.kill().unwrap();
    first.wait().unwrap();
    t.run(&["orchestrate"])
        .code(0)
        .never_says("waiting for input: Retrying");
    assert_eq!(t.status("p/a")["attempt"], 2);
    assert!(log().contains("done\n"), "{}", log());
}

/// `killed_while_a_job_runs`, then `p/one`'s job let end, which no run
/// sees: its end is Slurm's alone.
fn a_job_ended_unseen() -> Option<Tree> {
    let t = killed_while_a_job_runs()?;
    let job = t.status("p/one")["job_id"].as_str().unwrap().to_owned();
    t.write("release", "");
    wait_for("the job to end", || job_state(&job) == "COMPLETED");
    Some(t)
}

/// A tree whose orchestrator was killed (SIGKILL) while the job of `p/one`
/// runs; `p/one` ends once the file `release` exists (a second copy at
/// once: a test that fails, not hangs), and `p/two` waits for it. Both
/// count their launches (`MARK`).
fn killed_while_a_job_runs() -> Option<Tree> {
    let t = slurm_tree()?;
    t.task(
        "p/one",
        &sh(&format!(
            "{MARK}; [ $(wc -l < markers/p_one) -gt 1 ] && exit 0; \
             touch $WORKSPACE/started; while [ ! -f release ]; do sleep 0.1; done"
        )),
    );
    t.task("p/two", &format!("dependencies: [p/one]\n{}", sh(MARK)));
    kill_once_the_job_runs(&t, |_| true);
    Some(t)
}

/// Starts `orchestrate` on `t`, whose one task touches
/// `workspace/started` as its job runs, and kills it (SIGKILL) once the
/// job has run and `ready` says of it; returns the job's id.
fn kill_once_the_job_runs(t: &Tree, ready: impl Fn(&str) -> bool) -> String {
    let mut first = t
        .command(&["orchestrate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The one status that names a job (a running status, written whole).
    let job_of = || {
        let dir = std::fs::read_dir(t.path("workspace/status/p")).ok()?;
        dir.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .find_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                let status: serde_json::Value = serde_json::from_str(&text).ok()?;
                status["job_id"].as_str().map(str::to_owned)
            })
    };
    wait_for("the job to run", || {
        t.exists("workspace/started") && job_of().is_some()
    });
    let job = job_of().unwrap();
    wait_for("the job to be ready to kill its orchestrator", || {
        ready(&job)
    });
    first.kill().unwrap();
    first.wait().unwrap();
    job
}

/// Whether `condition` comes true within `wait_for`'s bound: for a test
/// that must clean up (a run, a job) before it fails.
fn comes_within_bound(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// A run that takes up a Slurm job still running after its orchestrator
/// was killed says so, as of a local task it adopts (`adopt p/one still
/// running, Slurm job N`): it said nothing until the job ended.
#[test]
fn slurm_a_job_taken_up_still_running_is_said_adopted() {
    let Some(t) = killed_while_a_job_runs() else {
        return;
    };
    let job = t.status("p/one")["job_id"].as_str().unwrap().to_owned();
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    let said = format!("still running, Slurm job {job}");
    let told = comes_within_bound(|| t.read("out").contains(&said));
    t.write("release", "");
    assert_eq!(run.wait().unwrap().code(), Some(0), "{}", t.read("out"));
    assert!(told, "{}", t.read("out"));
    assert_eq!(t.launches("p/one"), 1);
}

#[test]
fn slurm_resume_readopts_jobs_without_resubmitting() {
    let Some(t) = killed_while_a_job_runs() else {
        return;
    };
    let job = t.status("p/one")["job_id"].as_str().unwrap().to_owned();
    t.write("release", "");
    t.run(&["orchestrate"]).code(0).says("Summary: 2 completed");
    assert_eq!(
        t.status("p/one")["job_id"],
        job.as_str(),
        "the job was submitted again"
    );
    assert_eq!((t.launches("p/one"), t.launches("p/two")), (1, 1));
}

/// A job that waited in Slurm's queue (held), then ran and ended while no
/// orchestrator looked (its run killed as it waited): its time counts from
/// Slurm's start, not from its submission (its wait in the queue).
#[test]
fn slurm_a_job_that_waited_then_ended_unseen_is_timed_from_its_start() {
    let Some(t) = slurm_tree() else {
        return;
    };
    let held = CONFIG.replace(
        "slurm: {poll_interval: 200ms}",
        "slurm: {poll_interval: 200ms, extra_args: [--hold]}",
    );
    t.config(&held);
    t.task("p/one", &sh("touch $WORKSPACE/ran"));
    let mut first = t.start(&["orchestrate"]);
    wait_for("the job to wait in the queue", || {
        t.exists("workspace/status/p/one.json") && t.status("p/one")["job_id"].is_string()
    });
    let job = t.status("p/one")["job_id"].as_str().unwrap().to_owned();
    first.kill().unwrap();
    first.wait().unwrap();
    // It waits two seconds more, then runs.
    let submitted = second();
    wait_for("two seconds to pass", || second() >= submitted + 2);
    let released = std::process::Command::new("scontrol")
        .args(["release", &job])
        .status()
        .unwrap();
    assert!(released.success());
    wait_for("the job to end", || job_state(&job) == "COMPLETED");
    timed_by_slurm(&t, &job);
}

/// The next run records `p/one`'s `job`, ended, with the time Slurm says
/// it ran (within the second Slurm counts in).
fn timed_by_slurm(t: &Tree, job: &str) {
    t.run(&["orchestrate"]).code(0);
    let duration = t.status("p/one")["duration_seconds"].as_f64().unwrap();
    let slurm = run_time(job) as f64;
    assert!(
        (duration - slurm).abs() <= 1.5,
        "{duration} s recorded, Slurm says it ran {slurm} s"
    );
}

/// A job that ended while no orchestrator ran is timed by Slurm's start
/// and end, not up to when the next run found it ended (it ran to the
/// run's start).
#[test]
fn slurm_a_job_that_ended_unseen_is_timed_by_slurm() {
    let Some(t) = a_job_ended_unseen() else {
        return;
    };
    let job = t.status("p/one")["job_id"].as_str().unwrap().to_owned();
    let ended = second();
    wait_for("three seconds to pass", || second() >= ended + 3);
    timed_by_slurm(&t, &job);
}

/// A task whose status was removed while its job runs on (its
/// orchestrator killed) is not submitted again beside it: `next` says so,
/// and the run refuses (exit 2) naming the job, until the job ends. It
/// was submitted a second time (the local case was fixed before).
#[test]
fn slurm_a_job_running_on_without_its_status_is_not_submitted_twice() {
    let Some(t) = killed_while_a_job_runs() else {
        return;
    };
    let job = t.status("p/one")["job_id"].as_str().unwrap().to_owned();
    let status = t.path("workspace/status/p/one.json");
    let recorded = std::fs::read_to_string(&status).unwrap();
    // A task run locally, killed too, its status lost as well: both are
    // named at once (the local one alone was).
    t.task(
        "q/loc",
        &sh("touch loc-started; while [ ! -f release-loc ]; do sleep 0.05; done"),
    );
    let local = ["orchestrate", "--executor", "local", "--task", "q/loc"];
    let mut killed = t.start(&local);
    wait_for("q/loc to run", || t.exists("loc-started"));
    killed.kill().unwrap();
    killed.wait().unwrap();
    wait_for("its pid recorded", || t.exists("workspace/pids/q/loc.pid"));
    std::fs::remove_file(t.path("workspace/status/q/loc.json")).unwrap();
    std::fs::remove_file(&status).unwrap();
    t.run(&["orchestrate"])
        .code(2)
        .says("q/loc is still running (pid ")
        .says(&format!(
            "p/one has a Slurm job not ended (job {job}, RUNNING)"
        ));
    t.write("release-loc", "");
    wait_for("q/loc's end", || t.exists("workspace/pids/q/loc.exit"));
    t.run(&["next"])
        .says(&format!(
            "p/one has a Slurm job not ended (job {job}, RUNNING)"
        ))
        .says("until then `orchestrate` refuses to run (exit 2)");
    t.run(&["orchestrate"])
        .code(2)
        .says(&format!("`scancel {job}`"));
    // Run locally instead, or with a status that names another job.
    t.run(&["orchestrate", "--executor", "local"])
        .code(2)
        .says(&format!("(job {job}, RUNNING)"));
    let other = recorded.replace(&format!("\"job_id\": \"{job}\""), "\"job_id\": \"1\"");
    assert_ne!(other, recorded);
    std::fs::write(&status, other).unwrap();
    t.run(&["orchestrate"])
        .code(2)
        .says(&format!("(job {job}, RUNNING)"));
    // Named by its status, the job is followed on Slurm, never locally.
    std::fs::write(&status, &recorded).unwrap();
    t.run(&["orchestrate", "--executor", "local"])
        .code(2)
        .says(&format!(
            "(job {job}, RUNNING), which a run on the local executor cannot follow"
        ));
    std::fs::remove_file(&status).unwrap();
    assert_eq!(t.launches("p/one"), 1);
    t.write("release", "");
    wait_for("the job's end", || {
        !["RUNNING", "COMPLETING"].contains(&job_state(&job).as_str())
    });
    t.run(&["orchestrate"]).code(0);
    assert_eq!((t.launches("p/one"), t.launches("p/two")), (2, 1));
}

/// Where Slurm does not answer, the look for jobs a lost status no longer
/// names gives up after a few seconds, saying so: `next` waited as long as
/// scontrol did (a minute here) and said nothing.
#[test]
fn slurm_that_does_not_answer_is_said_and_not_waited_for() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh("true"));
    let out = t
        .command(&["next"])
        .env("SLURM_CONF", "/nonexistent")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("warning: Slurm did not answer `scontrol show job` within 3s: jobs of tasks whose status was lost cannot be looked for"),
        "{said}"
    );
}

/// A run that takes up a task its killed run was submitting (its sbatch
/// not answered: no job in its status or record) while Slurm does not
/// answer stops, saying why, rather than submit it again: Slurm may have
/// the job already.
#[test]
fn slurm_a_submission_left_unanswered_is_not_made_again_while_slurm_is_silent() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/a", &sh(MARK));
    let status = serde_json::json!({
        "version": 1, "task_id": "p/a", "status": "running",
        "started_at": "2025-01-01T00:00:00Z", "agent_id": "agent-1", "attempt": 1,
    });
    t.write("workspace/status/p/a.json", &status.to_string());
    let out = t
        .command(&["orchestrate"])
        .env("SLURM_CONF", "/nonexistent")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(
            "whether the sbatch of p/a that the killed run waited for reached Slurm cannot be told"
        ),
        "{said}"
    );
    assert_eq!(t.launches("p/a"), 0);
    assert_eq!(t.state("p/a"), "running");
}

#[test]
fn slurm_a_job_submitted_just_before_a_crash_is_adopted_from_its_record() {
    // The orchestrator died after sbatch answered and before the running
    // status named the job: only the job record (`workspace/pids/<id>.job`)
    // knows it. The next run follows that job and submits no other.
    let Some(t) = killed_while_a_job_runs() else {
        return;
    };
    let mut status = t.status("p/one");
    let job = status["job_id"].as_str().unwrap().to_owned();
    // The status as it was before it named the job.
    for key in ["job_id", "queued"] {
        status.as_object_mut().unwrap().remove(key);
    }
    t.write("workspace/status/p/one.json", &status.to_string());
    t.write("release", "");
    t.run(&["orchestrate"]).code(0).says("Summary: 2 completed");
    assert_eq!(t.status("p/one")["job_id"], job.as_str(), "another job");
    assert_eq!((t.launches("p/one"), t.launches("p/two")), (1, 1));
}

#[test]
fn slurm_limit_counts_submitted_jobs() {
    let Some(t) = slurm_tree() else { return };
    let ids: Vec<String> = (0..3).map(|i| format!("p/t{i}")).collect();
    for id in &ids {
        t.task(id, &sh(TIMED));
    }
    t.run(&["orchestrate", "-j", "1"]).code(0);
    assert_eq!(max_overlap(&t, &ids), 1, "jobs overlapped beyond -j 1");
}

#[test]
fn slurm_idle_timeout_cancels_a_silent_job() {
    let Some(t) = slurm_tree() else { return };
    t.task(
        "p/hung",
        &format!(
            "idle_timeout: 1s\n{}",
            sh("echo waiting for a prompt; sleep 600")
        ),
    );
    t.run(&["orchestrate"]).code(1).says("Idle timeout");
    let job = t.status("p/hung")["job_id"].as_str().unwrap().to_owned();
    assert_eq!(job_state(&job), "FAILED", "not ended by its SIGTERM");
}

#[test]
fn slurm_runs_worktree_tasks_and_merges_their_work() {
    let Some(t) = slurm_tree() else { return };
    t.config(&format!(
        "{CONFIG}worktrees:\n  default: true\n  setup: \"echo set up > .setup-ran\"\n"
    ));
    t.write(".gitignore", "workspace/\ntasks/\n.setup-ran\n");
    t.write("README.md", "project\n");
    t.git(&["init", "-q", "-b", "main"]);
    t.git(&["add", "."]);
    t.git(&["commit", "-q", "-m", "first"]);
    t.task(
        "p/a",
        &sh("test -f .setup-ran && echo a > a.txt && git add a.txt && git -c user.name=a -c user.email=a@x commit -q -m 'write a'"),
    );
    t.task(
        "p/b",
        &format!(
            "dependencies: [p/a]\n{}",
            sh("cat a.txt > $TASK_OUTPUT_DIR/seen")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        t.git(&["log", "-1", "--format=%s", "integration"]),
        "write a"
    );
    assert_eq!(t.read("workspace/outputs/p/b/seen"), "a\n");
    assert!(t.status("p/a")["job_id"].is_string());
}

#[test]
fn slurm_jobs_results_are_read_from_their_stdout() {
    let Some(t) = slurm_tree() else { return };
    t.config(&format!(
        "{CONFIG}{}",
        crate::agents::agent("claude", "claude-json")
    ));
    t.task("p/ok", "");
    crate::agents::scenario(&t, "p/ok", &["success.json"]);
    t.task("p/said-no", "");
    crate::agents::scenario(&t, "p/said-no", &["error_max_turns.json 0"]);
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/ok"), "completed");
    assert!(t.status("p/ok")["agent"]["cost_usd"].as_f64().unwrap() > 0.0);
    assert!(t.status("p/said-no")["error"]
        .as_str()
        .unwrap()
        .starts_with("agent error: error_max_turns: "));
    // stderr went to the log, apart from the result.
    assert!(t
        .read("workspace/logs/p/ok.log")
        .contains("stand-in claude: working"));
}

/// `workspace/logs` removed while an agent's job works (old logs cleared
/// by hand): its result, printed after into the log the job still has
/// open, is read, and its cost counted. The log was read back by its path
/// once the job had ended: the result was "unreadable", the attempt
/// failed, what it cost was in no ledger, and the agent was paid to run
/// again.
#[test]
fn slurm_an_agent_s_result_outlives_its_logs_folder_removed_while_it_works() {
    let Some(t) = slurm_tree() else { return };
    t.config(&format!(
        "{CONFIG}{}",
        crate::agents::agent("claude", "claude-json")
    ));
    t.task("p/a", "retries: 1\n");
    crate::agents::scenario(&t, "p/a", &["success.json 0 until:go"]);
    let (run, _) = run_until_its_job_runs(&t, "p/a", &t.path("env/p_a.1"));
    std::fs::remove_dir_all(t.path("workspace/logs")).unwrap();
    t.write("go", "");
    ends_completed(&t, run, "p/a");
    assert_eq!(t.status("p/a")["attempt"], 1, "the agent ran again");
    assert!(t.status("p/a")["agent"]["cost_usd"].as_f64().unwrap() > 0.0);
    assert!(t.read("workspace/ledger.jsonl").contains("p/a"));
    assert!(t.read("workspace/logs/p/a.log").contains("\"result\""));
}

/// The log the run holds open for each agent's job in flight takes a
/// descriptor: a run of more jobs at once than the soft limit on open
/// files allows (1,024 on many systems; 40 here) raises that limit to the
/// hard one as it starts. Each job past it failed to start, `cannot
/// create log ...: Too many open files`.
#[test]
fn slurm_a_run_of_many_agent_jobs_is_not_short_of_open_files() {
    let Some(t) = slurm_tree() else { return };
    let held = CONFIG.replace(
        "{poll_interval: 200ms}",
        "{poll_interval: 200ms, extra_args: [--hold]}",
    );
    t.config(&format!(
        "{held}max_concurrent_agents: 50\n{}",
        crate::agents::agent("claude", "claude-json")
    ));
    let ids: Vec<String> = (10..50).map(|i| format!("p/t{i}")).collect();
    for id in &ids {
        t.task(id, "");
    }
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -Sn 40 && exec \"$0\" \"$@\"",
            crate::tree::BIN,
        ])
        .arg("--root")
        .arg(&t.root)
        .arg("orchestrate")
        .current_dir(&t.root)
        .stdin(Stdio::null())
        .stdout(out)
        .spawn()
        .unwrap();
    let job = |id: &str| {
        let status: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(t.path(&format!("workspace/status/{id}.json"))).ok()?,
        )
        .ok()?;
        status["job_id"].as_str().map(str::to_owned)
    };
    wait_for("every job submitted, or a start failed", || {
        t.read("out").contains("failed") || ids.iter().all(|id| job(id).is_some())
    });
    // Stopped: the run cancels its held jobs.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    run.wait().unwrap();
    let said = t.read("out");
    assert!(!said.contains("Too many open files"), "{said}");
    assert!(ids.iter().all(|id| job(id).is_some()), "{said}");
}

/// The same for a job the next run took up after a crash: removed while
/// that run follows it, its log is put back at its end, its result read.
#[test]
fn slurm_an_adopted_agent_s_result_outlives_its_logs_folder_removed() {
    let Some(t) = slurm_tree() else { return };
    t.config(&format!(
        "{CONFIG}{}",
        crate::agents::agent("claude", "claude-json")
    ));
    t.task("p/a", "retries: 1\n");
    crate::agents::scenario(&t, "p/a", &["success.json 0 until:go"]);
    let (mut first, _) = run_until_its_job_runs(&t, "p/a", &t.path("env/p_a.1"));
    first.kill().unwrap();
    first.wait().unwrap();
    let out = std::fs::File::create(t.path("out")).unwrap();
    let run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    // Nothing the run says tells that it took the job up.
    let log = t.path("workspace/logs/p/a.log");
    wait_for("the next run to hold the job's log", || {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", run.id())).unwrap();
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to == log))
    });
    std::fs::remove_dir_all(t.path("workspace/logs")).unwrap();
    t.write("go", "");
    ends_completed(&t, run, "p/a");
    assert_eq!(t.status("p/a")["attempt"], 1, "the agent ran again");
    assert!(t.read("workspace/ledger.jsonl").contains("p/a"));
}

/// A task whose id holds a space and an `=` (`p/set n=2`), its status lost
/// while its job runs on, is not submitted again beside its job: scontrol
/// prints `JobName=p/set n=2`, which was read as a name `p/set` and a
/// field `n`, so the job was taken for no task's.
#[test]
fn slurm_a_task_id_with_a_space_and_an_equals_sign_keeps_its_job() {
    let Some(t) = slurm_tree() else { return };
    let ran = t.path("ran");
    let release = t.path("release");
    t.task(
        "p/set n=2",
        &sh(&format!(
            "{MARK}; touch {}; until [ -e {} ]; do sleep 0.05; done",
            ran.display(),
            release.display()
        )),
    );
    let (mut run, job) = run_until_its_job_runs(&t, "p/set n=2", &ran);
    run.kill().unwrap();
    run.wait().unwrap();
    std::fs::remove_file(t.path("workspace/status/p/set n=2.json")).unwrap();
    let said = format!("p/set n=2 has a Slurm job not ended (job {job}, RUNNING)");
    t.run(&["next"]).says(&said);
    t.run(&["orchestrate"]).code(2).says(&said);
    std::fs::write(&release, "").unwrap();
    wait_for("the job's end", || {
        !["RUNNING", "COMPLETING"].contains(&job_state(&job).as_str())
    });
    assert_eq!(t.launches("p/set n=2"), 1);
}

/// The task's log says why the run cancelled its job (its timeout, a
/// Ctrl-C), as a local task's does: it held only Slurm's `CANCELLED AT`.
#[test]
fn slurm_the_log_says_why_the_run_cancelled_the_job() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/slow", &format!("timeout: 2s\n{}", sh("sleep 600")));
    t.run(&["orchestrate"]).code(1);
    let log = t.read("workspace/logs/p/slow.log");
    let said = "xtask: timed out after 2s: SIGTERM sent to the task's processes";
    assert!(log.contains(said), "{log}");
    let ran = t.path("ran");
    t.task(
        "p/wait",
        &sh(&format!("touch {}; sleep 600", ran.display())),
    );
    let (run, _) = run_until_its_job_runs(&t, "p/wait", &ran);
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let code = run.wait_with_output().unwrap().status.code();
    assert_eq!(code, Some(130), "{}", t.read("out"));
    let log = t.read("workspace/logs/p/wait.log");
    let said = "xtask: interrupted: SIGTERM sent to the task's processes";
    assert!(log.contains(said), "{log}");
}

/// An attempt whose job a stop cancels in the queue, before it ever ran,
/// took no time: its duration counts from the job leaving the queue, as
/// README says (it counted from the submission).
#[test]
fn slurm_a_job_cancelled_in_the_queue_took_no_time() {
    let Some(t) = slurm_tree() else { return };
    let held = "{poll_interval: 200ms, extra_args: [--hold]}";
    t.config(&CONFIG.replace("{poll_interval: 200ms}", held));
    t.task("p/a", &sh("true"));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the run to say it held", || {
        t.read("out").contains("scontrol release")
    });
    // Queued for more than a second before the stop.
    wait_for("a second in the queue", || {
        let json = t.run(&["progress", "--json"]).stdout;
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        let task = &json["phases"][0]["running_tasks"][0];
        task["elapsed_seconds"].as_f64().is_some_and(|s| s >= 1.5)
    });
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    assert_eq!(run.wait().unwrap().code(), Some(130), "{}", t.read("out"));
    let status = t.status("p/a");
    assert_eq!(status["error"], "interrupted");
    let took = status["duration_seconds"].as_f64().unwrap();
    assert!(took < 1.0, "took {took} s in the queue: {status}");
}

/// A job held before it ever ran (`--hold`, `scontrol hold`) is said held,
/// not put back in the queue, and its task completes once it is released.
#[test]
fn slurm_a_job_held_before_it_ran_is_said_held_not_requeued() {
    let Some(t) = slurm_tree() else { return };
    let held = "{poll_interval: 200ms, extra_args: [--hold]}";
    t.config(&CONFIG.replace("{poll_interval: 200ms}", held));
    t.task("p/a", &sh("true"));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the run to say it held", || {
        t.read("out").contains("scontrol release")
    });
    let job = t.status("p/a")["job_id"].as_str().unwrap().to_owned();
    let said = t.read("out");
    let held = format!(
        "Slurm holds its job in the queue (PENDING, JobHeldUser) until `scontrol release {job}`"
    );
    assert!(
        said.contains(&held) && !said.contains("back in the queue"),
        "{said}"
    );
    scontrol(&["release", &job]);
    ends_completed(&t, run, "p/a");
}

/// `why` of a task whose Slurm job ended while no orchestrator ran says it
/// ended and how, as of a local task whose supervisor recorded its end: it
/// said the task was running.
#[test]
fn slurm_why_says_a_job_that_ended_unseen_ended() {
    let Some(t) = a_job_ended_unseen() else {
        return;
    };
    t.run(&["why", "p/one"])
        .says("(exit code 0), with no orchestrator to see it: the next `");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/one"), "completed");
}

/// `reset` and `block` of a task whose Slurm job ended while no
/// orchestrator ran say it ended and that `monitor` records it first, as
/// of a local task whose supervisor recorded its end: they said the job
/// was running and that `scancel` would stop it, which could not.
#[test]
fn slurm_reset_of_a_task_whose_job_ended_unseen_says_it_ended() {
    let Some(t) = a_job_ended_unseen() else {
        return;
    };
    for command in ["reset", "block"] {
        t.run(&[command, "p/one"])
            .code(2)
            .says("p/one ended at ")
            .says("(exit code 0) while no orchestrator ran, and its end is not recorded yet: `")
            .never_says("scancel");
    }
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/one"), "completed");
}

/// `logs -f` of a task whose Slurm job ended while no orchestrator ran
/// ends, saying its process is gone, as for a local task whose supervisor
/// recorded its end: it followed the log forever.
#[test]
fn slurm_logs_follow_ends_with_a_job_that_ended_unseen() {
    let Some(t) = killed_while_a_job_runs() else {
        return;
    };
    let job = t.status("p/one")["job_id"].as_str().unwrap().to_owned();
    let mut follow = t
        .command(&["logs", "-f", "p/one"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    t.write("release", "");
    wait_for("the job to end", || job_state(&job) == "COMPLETED");
    // Killed if it follows on, so that it outlives no failure.
    let ended = comes_within_bound(|| follow.try_wait().unwrap().is_some());
    if !ended {
        follow.kill().unwrap();
    }
    let out = Run::from(follow.wait_with_output().unwrap());
    assert!(ended, "logs -f followed on: {}", out.said());
    out.code(0)
        .says("p/one: its process is gone: the next run records how it ended");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/one"), "completed");
}

/// `progress` of a task whose Slurm job ended while no orchestrator ran
/// shows its process gone, as of a local task whose supervisor recorded its
/// end: it showed it alive, running on.
#[test]
fn slurm_progress_shows_a_job_that_ended_unseen_gone() {
    let Some(t) = killed_while_a_job_runs() else {
        return;
    };
    let job = t.status("p/one")["job_id"].as_str().unwrap().to_owned();
    let running = |t: &Tree| {
        let run = t.run(&["progress", "--json"]);
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        json["phases"][0]["running_tasks"][0].clone()
    };
    assert_eq!(running(&t)["alive"], true);
    t.write("release", "");
    wait_for("the job to end", || job_state(&job) == "COMPLETED");
    let task = running(&t);
    assert_eq!(task["task_id"], "p/one");
    assert_eq!(task["alive"], false, "{task}");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/one"), "completed");
}

/// An agent whose Slurm job ended while no orchestrator ran (its run
/// killed): `why` and `report` show what it printed it cost, as `progress`
/// and the budget count it, and `progress` times it until its end, as
/// `why` does. `why` and `report` took it for running and left its cost
/// out, and `progress` timed it on to now.
#[test]
fn slurm_the_views_show_the_cost_and_end_of_an_agent_that_ended_unseen() {
    let Some(t) = slurm_tree() else { return };
    t.config(&format!(
        "{CONFIG}{}budget: {{usd: 5}}\n",
        crate::agents::agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    crate::agents::scenario(&t, "p/a", &["success.json 0 until:release"]);
    let mut first = t.start(&["orchestrate"]);
    wait_for("p/a's job to run", || {
        t.exists("env/p_a.1") && t.status("p/a")["job_id"].is_string()
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let job = t.status("p/a")["job_id"].as_str().unwrap().to_owned();
    t.write("release", "");
    wait_for("p/a's job to end", || job_state(&job) == "COMPLETED");
    let progress = || {
        let run = t.run(&["progress", "--json"]);
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()
    };
    let json = progress();
    assert_eq!(json["budget"]["spent_usd"], 0.1629377, "{json}");
    assert_eq!(json["tasks"][0]["cost_usd"], 0.1629377, "{json}");
    let running = &json["phases"][0]["running_tasks"][0];
    assert_eq!(running["alive"], false, "{running}");
    // Timed until its end, its time stays as the clock goes on.
    let (elapsed, then) = (running["elapsed_seconds"].clone(), second());
    wait_for("two seconds to pass", || second() >= then + 2);
    let json = progress();
    assert_eq!(
        json["phases"][0]["running_tasks"][0]["elapsed_seconds"], elapsed,
        "{json}"
    );
    t.run(&["why", "p/a"])
        .says("(exit code 0), with no orchestrator to see it: the next `")
        .says("  agent reported (the next run records it): ")
        .says(", $0.16, ");
    t.run(&["report"]).code(0);
    let report = t.read("workspace/report.html");
    assert!(
        report.contains("Phase cost (latest attempts): $0.16"),
        "{report}"
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
}

/// A submitter whose environment says `SBATCH_EXPORT=NONE` (a site's
/// default on some clusters) still gives each job the task's variables:
/// its job had no `TASK_ID`, `WORKSPACE` nor `TASK_OUTPUT_DIR`, and failed.
#[test]
fn slurm_jobs_get_the_task_s_environment_whatever_sbatch_export_says() {
    let Some(t) = slurm_tree() else { return };
    t.task(
        "p/a",
        &format!("outputs: [o]\n{}", sh("echo $TASK_ID > $TASK_OUTPUT_DIR/o")),
    );
    let run = t
        .command(&["orchestrate"])
        .env("SBATCH_EXPORT", "NONE")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{out}");
    assert_eq!(t.read("workspace/outputs/p/a/o"), "p/a\n");
}

/// A submitter whose environment says `SBATCH_WAIT` (sbatch waits for
/// its job's end) has its jobs followed all the same: sbatch gave the
/// job's id only at its end, and the task's timeout never applied.
#[test]
fn slurm_sbatch_wait_in_the_environment_holds_no_timeout_back() {
    let Some(t) = slurm_tree() else { return };
    t.task("p/slow", &format!("timeout: 2s\n{}", sh("sleep 20")));
    let run = t
        .command(&["orchestrate"])
        .env("SBATCH_WAIT", "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{out}");
    assert_eq!(
        t.status("p/slow")["error"],
        "Timeout after 2s (its `timeout`)"
    );
}

/// A job Slurm holds after too many requeues (`Reason=JobHoldMaxRequeue`,
/// shown here by an scontrol that says so of a held job) is said held,
/// with the `scontrol release` that lets it run: the run waited on it
/// saying nothing.
#[test]
fn slurm_a_job_held_after_too_many_requeues_is_said_held() {
    let Some(t) = slurm_tree() else { return };
    let held = "{poll_interval: 200ms, extra_args: [--hold]}";
    t.config(&CONFIG.replace("{poll_interval: 200ms}", held));
    t.task("p/a", &sh("true"));
    let path = stand_in(&t, "scontrol", |real| {
        format!("{real} \"$@\" | sed 's/Reason=JobHeldUser/Reason=JobHoldMaxRequeue/'\n")
    });
    let out = std::fs::File::create(t.path("out")).unwrap();
    let run = t
        .command(&["orchestrate"])
        .env("PATH", path)
        .stdout(out)
        .spawn()
        .unwrap();
    wait_for("its job", || {
        t.exists("workspace/status/p/a.json") && t.status("p/a")["job_id"].is_string()
    });
    let job = t.status("p/a")["job_id"].as_str().unwrap().to_owned();
    wait_for("the run to say it held", || {
        t.read("out").contains(&format!(
            "(PENDING, JobHoldMaxRequeue) until `scontrol release {job}`"
        ))
    });
    scontrol(&["release", &job]);
    ends_completed(&t, run, "p/a");
}

/// A job's end is never told before its start, whose time is the
/// machine's (its submission), where Slurm's times are whole seconds
/// from a controller whose clock may be behind (here, an hour): a job
/// ended, in the events and the report, before it started, its bar drawn
/// backwards.
#[test]
fn slurm_a_job_s_end_is_never_told_before_its_start() {
    let Some(t) = slurm_tree() else { return };
    t.config(&format!("{CONFIG}phases: {{p: {{max_parallel: 1}}}}\n"));
    for id in ["p/a", "p/b"] {
        t.task(id, &sh("sleep 0.5"));
    }
    runs_with_a_controller_an_hour_behind(&t);
    for id in ["p/a", "p/b"] {
        ends_after_it_starts(&t, id);
    }
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    assert!(
        html.contains("<tr><td>p</td><td>1</td><td>1</td></tr>"),
        "{html}"
    );
}

/// So for a job the next run takes up after its orchestrator was killed:
/// the start the killed run told is on the machine's clock, the end Slurm's
/// (the adopting run clamped it to the start its status says, Slurm's
/// whole seconds: it ended an hour before it started).
#[test]
fn slurm_an_adopted_job_s_end_is_never_told_before_its_start() {
    let Some(t) = slurm_tree() else { return };
    t.task(
        "p/a",
        &sh("touch $WORKSPACE/started; while [ ! -f release ]; do sleep 0.1; done"),
    );
    kill_once_the_job_runs(&t, |_| true);
    t.write("release", "");
    runs_with_a_controller_an_hour_behind(&t);
    ends_after_it_starts(&t, "p/a");
}

/// Runs `orchestrate` on `t`, which completes, its jobs' times said an
/// hour behind (`controller_an_hour_behind`).
fn runs_with_a_controller_an_hour_behind(t: &Tree) {
    let run = (t.command(&["orchestrate"]))
        .env("PATH", controller_an_hour_behind(t))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{said}");
}

/// Puts in `t` a stand-in for `scontrol` that says the times of `t`'s jobs
/// (`StartTime`, `EndTime`) an hour behind, as a controller whose clock is
/// behind would; returns the PATH that finds it first.
fn controller_an_hour_behind(t: &Tree) -> String {
    let behind = r#"out=$(REAL "$@")
rc=$?
echo "$out" | while IFS= read -r line; do
  case "$line" in *ROOT*) ;; *) echo "$line"; continue;; esac
  for key in StartTime EndTime; do
    v=$(echo "$line" | sed -n "s/.* $key=\([^ ]*\).*/\1/p")
    case "$v" in 20*) line=$(echo "$line" | sed "s/ $key=$v/ $key=$(date -d "$v 1 hour ago" +%Y-%m-%dT%H:%M:%S)/");; esac
  done
  echo "$line"
done
exit $rc
"#;
    // Only this tree's jobs: the listing holds every test's.
    let ours = t.root.display().to_string();
    stand_in(t, "scontrol", |real| {
        behind.replace("REAL", real).replace("ROOT", &ours)
    })
}

/// Asserts that `id`'s end event is not before its start event.
fn ends_after_it_starts(t: &Tree, id: &str) {
    let at =
        |e: &serde_json::Value| humantime::parse_rfc3339_weak(e["time"].as_str().unwrap()).unwrap();
    let of_task: Vec<_> = events(t).into_iter().filter(|e| e["task"] == id).collect();
    let start = of_task.iter().find(|e| e["to"] == "running").unwrap();
    let end = of_task.iter().find(|e| e["from"] == "running").unwrap();
    assert!(
        at(end) >= at(start),
        "{id} ended before it started: {of_task:?}"
    );
}

/// A job waiting in Slurm's queue has run none of its expected duration:
/// the expected end counts all of it (its time in the queue was taken for
/// time run, so that a job held past what it takes was expected to end
/// any moment).
#[test]
fn slurm_a_queued_job_is_expected_to_take_all_of_its_duration() {
    let Some(t) = slurm_tree() else { return };
    let held = "{poll_interval: 200ms, extra_args: [--hold]}";
    t.config(&CONFIG.replace("{poll_interval: 200ms}", held));
    t.write("workspace/history.json", r#"{"tasks": {"p/a": 10.0}}"#);
    t.task("p/a", &sh("true"));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the run to say it held", || {
        t.read("out").contains("scontrol release")
    });
    wait_for("two seconds in the queue", || {
        progress_task(&t, "p/a")["elapsed_seconds"].as_u64() >= Some(2)
    });
    assert_eq!(progress_json(&t)["eta_seconds"], 10.0);
    let job = t.status("p/a")["job_id"].as_str().unwrap().to_owned();
    scontrol(&["release", &job]);
    ends_completed(&t, run, "p/a");
}
