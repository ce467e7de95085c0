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
    // Its own code, once it caught the TERM; 0:0 may be a job never run.
    for (exit, code) in [("7:0", Some(7)), ("0:0", None)] {
        let mut caught = jobs["7"].clone();
        caught.insert("ExitCode".into(), exit.into());
        let r = final_record("CANCELLED", &caught, Some(Ending::Timeout));
        assert_eq!((r.exit_code, r.signal), (code, None), "{exit}");
    }
    assert_eq!(
        final_record("NODE_FAIL", &killed, None).ending,
        Ending::Lost
    );
    assert_eq!(
        final_record("OUT_OF_MEMORY", &killed, None).ending,
        Ending::OutOfMemory
    );
    // Slurm's own limit, named as such (not the task's timeout).
    let limited = final_record("TIMEOUT", &killed, None);
    assert_eq!(
        (limited.ending, limited.message.as_deref()),
        (
            Ending::Timeout,
            Some("Slurm ended the job at its time limit")
        )
    );
    // Reached in the grace of a stop of ours: that stop's end.
    for stop in [Ending::Timeout, Ending::Interrupted] {
        let r = final_record("TIMEOUT", &killed, Some(stop));
        assert_eq!((r.ending, r.message), (stop, None));
    }
}

/// A job's end is Slurm's `EndTime`, also after it was suspended and
/// resumed; not for one that ended suspended, which Slurm says ended at
/// its suspension.
#[test]
fn a_job_that_ended_suspended_ends_when_seen_ended() {
    let check = |suspended: &str, ended: bool| {
        let line = format!("JobId=7 EndTime=2026-01-02T03:04:05 SuspendTime={suspended}");
        let jobs = parse_jobs(&line);
        assert_eq!(slurm_end(&jobs["7"]).is_some(), ended, "{line}");
    };
    check("None", true);
    check("2026-01-02T03:04:01", true);
    check("2026-01-02T03:04:05", false);
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
    let said = |state, reason| waiting_now("7", state, reason, true);
    let release = "held until `scontrol release 7`";
    assert!(said("SPECIAL_EXIT", "job_requeued_in_held_state").contains(release));
    // `scontrol requeuehold` without a state.
    assert!(said("PENDING", "job_requeued_in_held_state").contains(release));
    assert!(said("PENDING", "JobHeldUser").contains(release));
    assert!(said("PENDING", "JobHoldMaxRequeue").contains(release));
    assert!(said("PENDING", "launch failed requeued held").contains(release));
    assert!(!said("PENDING", "BeginTime").contains(release));
    assert!(said("SUSPENDED", "None").contains("its time stops until it resumes"));
    // Held before it ever ran: not back in the queue.
    assert_eq!(
        waiting_now("7", "PENDING", "JobHeldUser", false),
        "Slurm holds its job in the queue (PENDING, JobHeldUser) until `scontrol release 7`"
    );
}

/// Slurm's time limit holds the attempt's timeout and, when it runs
/// its worktree's setup first, the setup's (whole minutes, up); not its
/// `kill_grace`, which would have a timeout of a partition's longest time
/// refused.
#[test]
fn the_time_limit_leaves_room_for_the_setup() {
    let launch = launch();
    let limits = limits();
    let time = |limits: &Limits| {
        let args = sbatch_args(&SlurmConfig::default(), &launch, limits);
        args.into_iter().find(|a| a.starts_with("--time="))
    };
    assert_eq!(time(&limits).as_deref(), Some("--time=2"));
    let grace = Duration::from_secs(31);
    let longer = Limits {
        grace,
        ..self::limits()
    };
    assert_eq!(time(&longer).as_deref(), Some("--time=2"));
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

/// A `%` in a log's path is sbatch's pattern character: it is given as
/// `%%`, and the job is still known by its log as each Slurm shows it
/// (22.05's scontrol, asked for jobs submitted with `p%%xq.log` and
/// `a%%jb.log`, shows `p%<name>q.log` and `a%<id>b.log`).
#[test]
fn a_percent_in_the_log_s_path_is_no_pattern() {
    let launch = Launch {
        log_file: "/w/logs/p/b%xq.log".into(),
        ..launch()
    };
    let args = sbatch_args(&SlurmConfig::default(), &launch, &limits());
    assert!(args.contains(&"--output=/w/logs/p/b%%xq.log".to_owned()));
    assert!(args.contains(&"--error=/w/logs/p/b%%xq.log".to_owned()));
    let log = Utf8Path::new("/w/logs/p/b%xq.log");
    for shown in [
        "/w/logs/p/b%xq.log",
        "/w/logs/p/b%p/b%xqq.log",
        "/w/logs/p/b%%xq.log",
    ] {
        assert!(shows_log(shown, log), "{shown}");
    }
    for shown in [
        "/w/logs/p/bxq.log",
        "/v/logs/p/b%xq.log",
        "/w/logs/p/b%xq.log2",
    ] {
        assert!(!shows_log(shown, log), "{shown}");
    }
    assert!(shows_log("/t/a%118b.log", Utf8Path::new("/t/a%jb.log")));
    assert!(shows_log("/t/c%%.log", Utf8Path::new("/t/c%.log")));
    assert!(shows_log("/p.log", Utf8Path::new("/p.log")));
    assert!(!shows_log("/q.log", Utf8Path::new("/p.log")));
}

/// A log path of many `%` is matched at once, not by trying every reading
/// of each again and again (28 of them took a second, each 4 more ×18).
#[test]
fn a_log_of_many_percents_is_matched_at_once() {
    let log = format!("/w/{}.log", "%x".repeat(40));
    let shown = format!("/w/{}.lot", "%x".repeat(40));
    assert!(!shows_log(&shown, Utf8Path::new(&log)));
    assert!(shows_log(&log, Utf8Path::new(&log)));
}

/// A job Slurm could not launch (its log's folder not there on the node,
/// say) failed with an exit code and signal of Slurm's making: it was said
/// killed by signal 53.
#[test]
fn a_job_slurm_could_not_launch_is_said_so_without_a_signal() {
    let text = "JobId=9 JobName=p/a JobState=FAILED Reason=JobLaunchFailure Dependency=(null) ExitCode=0:53\n";
    let jobs = parse_jobs(text);
    let r = final_record("FAILED", &jobs["9"], None);
    assert_eq!(
        (r.ending, r.exit_code, r.signal, r.message.as_deref()),
        (
            Ending::SpawnFailed,
            None,
            None,
            Some("Slurm could not launch the job: JobLaunchFailure")
        )
    );
    // The same reason for a batch script a signal killed, which ran.
    let killed = parse_jobs(&text.replace("0:53", "0:9"));
    let r = final_record("FAILED", &killed["9"], None);
    assert_eq!(
        (r.ending, r.exit_code, r.signal),
        (Ending::Exited, None, Some(9))
    );
}

/// An attempt of task p/a, as the run launches it.
fn launch() -> Launch {
    Launch {
        task_id: "p/a".into(),
        attempt: 1,
        argv: vec!["true".into()],
        env: Vec::new(),
        log_file: "/w/p/a.log".into(),
        stdout_file: None,
        cwd: "/r".into(),
    }
}

/// Its limits: a timeout of 90 s, 1 CPU, 1 GiB.
fn limits() -> Limits {
    Limits {
        timeout: Some(Duration::from_secs(90)),
        idle_timeout: None,
        prompt_idle: Duration::from_secs(60),
        prompt_patterns: Vec::new().into(),
        grace: Duration::from_secs(30),
        cpus: 1.0,
        memory_gb: 1.0,
        setup: None,
    }
}

/// A task's id or a log's path holding words such as `n=2`, or two spaces,
/// is read whole: scontrol prints the field after each, which ends it.
#[test]
fn a_value_of_ours_holding_a_field_s_shape_is_read_whole() {
    let line = "JobId=7 JobName=p/set n=2  x UserId=root(0) JobState=RUNNING Comment=xtask-attempt-1  \
                StdErr=/r/logs/p/set n=2  x.log StdIn=/dev/null StdOut=/r/logs/p/set n=2  x.log Power= \n\
                JobId=8 JobName=p/b n=1 JobState=RUNNING StdOut=/r/logs/p/b n=1.log\n";
    let jobs = parse_jobs(line);
    assert_eq!(jobs["7"]["JobName"], "p/set n=2  x");
    assert_eq!(jobs["7"]["StdErr"], "/r/logs/p/set n=2  x.log");
    assert_eq!(jobs["7"]["Comment"], "xtask-attempt-1");
    assert_eq!(jobs["7"]["JobState"], "RUNNING");
    // Without the field that follows (another version's line), each
    // word of a field's shape is one.
    assert_eq!(jobs["8"]["JobName"], "p/b");
    assert_eq!(jobs["8"]["JobState"], "RUNNING");
}

/// A job a killed run was stopping, taken up by a run stopped twice
/// before its first look: the first look leaves the job to the SIGKILL
/// sent or owed (its `scancel` taken or not); it gave the job a SIGTERM
/// and a whole grace more.
#[test]
fn a_sigkill_before_the_first_look_is_not_replaced_by_a_sigterm() {
    let dir = std::env::temp_dir().join(format!("xtask-slurm-owed-{}", std::process::id()));
    let root = Utf8PathBuf::from_path_buf(dir.clone()).unwrap();
    let layout = Layout::new(root, None);
    std::fs::create_dir_all(layout.exit_file("p/a").parent().unwrap()).unwrap();
    std::fs::create_dir_all(layout.log_file("p/a").parent().unwrap()).unwrap();
    let mut job = Job::new(&layout, "p/a", &limits(), None);
    job.stopping = Some(Alarm {
        ending: Ending::Interrupted,
        detail: None,
    });
    job.stop_again = true;
    // Job 0 is none: Slurm refuses it (or no scancel is there), so the
    // SIGKILL stays owed; one taken leaves the same state but for that.
    job.cancel("0", Some("KILL"));
    // Seen running at the first look.
    job.watchdog = Some(Watchdog::new(
        job.log_file.clone(),
        None,
        None,
        Instant::now(),
    ));
    job.stop_again("0");
    assert_eq!(job.cancel_owed, Some(Some("KILL")));
    assert!(job.escalation.is_none());
    let log = std::fs::read_to_string(layout.log_file("p/a")).unwrap_or_default();
    assert!(!log.contains("SIGTERM"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
