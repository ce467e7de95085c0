//! The Slurm executor's own unit tests (the cluster's are in
//! `tests/it/slurm.rs`).

use super::*;

#[test]
fn scontrol_lines() {
    let text = "JobId=7 JobName=p/a b UserId=root(0) JobState=COMPLETED Reason=None ExitCode=3:0 WorkDir=/tmp/x y\n\
                JobId=8 JobName=p/b JobState=PENDING Reason=PartitionConfig ExitCode=0:0\n";
    let jobs = parse_jobs(text);
    assert_eq!(jobs["7"]["JobName"], "p/a b");
    assert_eq!(jobs["7"]["WorkDir"], "/tmp/x y");
    assert_eq!(jobs["8"]["Reason"], "PartitionConfig");
    let done = final_record("COMPLETED", &jobs["7"], None);
    assert_eq!(
        (done.ending, done.exit_code, done.signal),
        (Ending::Exited, Some(3), None)
    );
    let mut killed = jobs["7"].clone();
    killed.insert("ExitCode".into(), "0:9".into());
    let r = final_record("CANCELLED", &killed, Some(Ending::Timeout));
    assert_eq!(
        (r.ending, r.exit_code, r.signal),
        (Ending::Timeout, None, Some(9))
    );
    assert_eq!(
        final_record("NODE_FAIL", &killed, None).ending,
        Ending::Lost
    );
    assert_eq!(
        final_record("OUT_OF_MEMORY", &killed, None).ending,
        Ending::OutOfMemory
    );
}

/// Every state `squeue(1)` lists: the held, requeued and stopped ones
/// are not ends (a job requeued held was recorded failed, one whose
/// allocation was being signalled or resized ended).
#[test]
fn job_states_not_ended_are_not_taken_for_ends() {
    let waiting = "PENDING CONFIGURING REQUEUED REQUEUE_FED REQUEUE_HOLD SPECIAL_EXIT RESV_DEL_HOLD SUSPENDED";
    let running = "RUNNING STOPPED SIGNALING RESIZING STAGE_OUT COMPLETING";
    let ended = "BOOT_FAIL CANCELLED COMPLETED DEADLINE FAILED NODE_FAIL OUT_OF_MEMORY PREEMPTED REVOKED TIMEOUT";
    for (states, want) in [
        (waiting, Some(Stage::Waiting)),
        (running, Some(Stage::Running)),
        (ended, None),
    ] {
        for state in states.split(' ') {
            assert_eq!(stage(state), want, "{state}");
        }
    }
    let said = |state, reason| waiting_now("7", state, reason);
    let release = "held until `scontrol release 7`";
    assert!(said("SPECIAL_EXIT", "job_requeued_in_held_state").contains(release));
    // `scontrol requeuehold` without a state.
    assert!(said("PENDING", "job_requeued_in_held_state").contains(release));
    assert!(said("PENDING", "JobHeldUser").contains(release));
    assert!(!said("PENDING", "BeginTime").contains(release));
    assert!(said("SUSPENDED", "None").contains("its time stops until it resumes"));
}

/// Slurm's time limit holds the attempt's timeout and, when it runs
/// its worktree's setup first, the setup's (whole minutes, up).
#[test]
fn the_time_limit_leaves_room_for_the_setup() {
    let launch = Launch {
        task_id: "p/a".into(),
        attempt: 1,
        argv: vec!["true".into()],
        env: Vec::new(),
        log_file: "/w/p/a.log".into(),
        stdout_file: None,
        cwd: "/r".into(),
    };
    let limits = Limits {
        timeout: Some(Duration::from_secs(90)),
        idle_timeout: None,
        prompt_idle: Duration::from_secs(60),
        prompt_patterns: Vec::new().into(),
        grace: Duration::from_secs(30),
        cpus: 1.0,
        memory_gb: 1.0,
        setup: None,
    };
    let time = |limits: &Limits| {
        let args = sbatch_args(&SlurmConfig::default(), &launch, limits);
        args.into_iter().find(|a| a.starts_with("--time="))
    };
    assert_eq!(time(&limits).as_deref(), Some("--time=2"));
    let setup = Some(Setup {
        done: "/w/setup.done".into(),
        timeout: Duration::from_secs(600),
    });
    assert_eq!(
        time(&Limits { setup, ..limits }).as_deref(),
        Some("--time=12")
    );
}

/// Every listing of jobs asks for all partitions (`-a`): a user's own job
/// in a partition hidden from them was missing from it, taken for lost at
/// once and submitted again.
#[test]
fn jobs_are_listed_also_in_hidden_partitions() {
    assert_eq!(show_jobs(None), ["scontrol", "-a", "show", "job", "-o"]);
    assert_eq!(
        show_jobs(Some("7")),
        ["scontrol", "-a", "show", "job", "-o", "7"]
    );
}
