//! CPU and memory limits per task, enforced with cgroups. Skipped (with a
//! message) where cgroups cannot be written, except in CI, where they can and
//! must run.

use crate::tree::*;

/// Whether this machine lets us write cgroups (v2, or v1 as on CI).
fn cgroups_writable() -> bool {
    let probe = |dir: &str| {
        let path = std::path::Path::new(dir).join(format!("xtask-probe-{}", std::process::id()));
        let ok = std::fs::create_dir(&path).is_ok();
        let _ = std::fs::remove_dir(&path);
        ok
    };
    let writable = probe("/sys/fs/cgroup/memory") || probe("/sys/fs/cgroup");
    required_in_ci(
        writable,
        "cgroups cannot be written here, so limits are not enforced",
    )
}

/// The cgroups our supervisors created that still exist.
fn leftover_groups() -> Vec<String> {
    [
        "/sys/fs/cgroup/memory/xtask",
        "/sys/fs/cgroup/cpu/xtask",
        "/sys/fs/cgroup/xtask",
    ]
    .iter()
    .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
    .map(|e| e.path().display().to_string())
    .collect()
}

/// A task of a killed run, the config's memory limit raised before the
/// next run adopts it, killed at the limit its cgroup was given: its error
/// names that one, and the one set now. It named the one set now (`limit
/// 1 GiB`), which it had never reached.
#[test]
fn an_adopted_task_s_memory_kill_names_the_limit_it_started_with() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_memory_gb: 0.09765625\n");
    // A 300 MiB buffer against a 100 MiB limit, once released.
    t.task(
        "p/hog",
        &sh("touch started; while [ ! -e go ]; do sleep 0.02; done; dd if=/dev/zero of=/dev/null bs=300M count=1"),
    );
    let mut first = t.start(&["orchestrate"]);
    wait_for("p/hog to start", || t.exists("started"));
    wait_for("its running status", || t.state("p/hog") == "running");
    first.kill().unwrap();
    first.wait().unwrap();
    t.config("kill_grace: 1s\nmax_memory_gb: 1\n");
    t.write("go", "");
    let said = "Out of memory (limit 100 MiB as it started; 1 GiB now)";
    t.run(&["orchestrate"]).code(1).says(said);
    assert_eq!(t.status("p/hog")["error"], said);
}

#[test]
fn a_task_past_its_memory_limit_is_killed_and_reported_out_of_memory() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    // A 300 MiB buffer against a 100 MiB limit.
    t.task(
        "p/hog",
        &format!(
            "resources: {{memory_gb: 0.09765625}}\n{}",
            sh("dd if=/dev/zero of=/dev/null bs=300M count=1")
        ),
    );
    t.task(
        "p/small",
        &format!("resources: {{memory_gb: 0.09765625}}\n{}", sh("echo fine")),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("Out of memory (limit 100 MiB)");
    let hog = t.status("p/hog");
    assert_eq!(hog["error"], "Out of memory (limit 100 MiB)");
    // Its log says the limit as its status does.
    let log = t.read("workspace/logs/p/hog.log");
    assert!(
        log.contains("xtask: out of memory: killed by the kernel at its limit of 100 MiB\n"),
        "{log}"
    );
    assert_eq!(hog["limits_enforced"], true);
    assert!(hog["peak_memory_mb"].as_f64().unwrap() <= 101.0, "{hog}");
    assert_eq!(t.state("p/small"), "completed");
    assert_eq!(t.status("p/small")["limits_enforced"], true);
    // progress and the report show what the tasks used.
    t.run(&["progress"]).says("CPU: ").says("peak memory: ");
    t.run(&["report"]).code(0);
    assert!(t.read("workspace/report.html").contains(" MiB</td>"));
}

#[test]
fn a_task_limited_to_one_cpu_gets_one_cpu() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    let spin = "(while :; do :; done) & a=$!; (while :; do :; done) & b=$!; sleep 1; kill $a $b";
    t.task("p/spin", &format!("resources: {{cpus: 1}}\n{}", sh(spin)));
    t.run(&["orchestrate"]).code(0);
    let s = t.status("p/spin");
    let cpu = s["cpu_seconds"].as_f64().unwrap();
    let wall = s["duration_seconds"].as_f64().unwrap();
    // Two busy threads, one CPU: about one CPU-second per second, with margin.
    assert!(cpu <= wall * 1.25 + 0.1, "cpu {cpu} s in {wall} s");
    assert!(cpu >= 0.3, "the spinners did not run: {cpu} s");
}

#[test]
fn admission_holds_back_a_task_whose_memory_does_not_fit() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_memory_gb: 1\nmax_total_memory_gb: 1\n");
    for id in ["p/a", "p/b"] {
        t.task(id, &format!("resources: {{memory_gb: 0.6}}\n{}", sh(TIMED)));
    }
    t.task(
        "p/c",
        &format!("resources: {{memory_gb: 0.3}}\n{}", sh(TIMED)),
    );
    t.run(&["orchestrate"]).code(0);
    let (a, b) = (span(&t, "p/a"), span(&t, "p/b"));
    assert!(
        a.1 <= b.0 || b.1 <= a.0,
        "two 0.6 GiB tasks ran together within 1 GiB: {a:?} {b:?}"
    );
}

/// Tasks whose memory adds up to `max_total_memory_gb` exactly run
/// together, also where the sum of their sizes in binary floating point
/// comes out a hair over it (0.1 + 0.1 + 0.1 > 0.3).
#[test]
fn tasks_whose_memory_adds_up_to_the_total_run_together() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_memory_gb: 0.1\nmax_total_memory_gb: 0.3\n");
    // Each waits (a bounded while) until all three have started.
    let together = "touch $WORKSPACE/started-$TASK_PHASE-$(basename $TASK_ID); i=0; \
                    while [ $(ls $WORKSPACE | grep -c '^started-') -lt 3 ]; do \
                    i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.05; done";
    for id in ["p/a", "p/b", "p/c"] {
        t.task(id, &sh(together));
    }
    let run = t.run(&["orchestrate"]);
    run.code(0).never_says("memory admits");
    for id in ["p/a", "p/b", "p/c"] {
        assert_eq!(t.state(id), "completed", "{}", run.stdout);
    }
}

/// `-j` overrides `max_concurrent_agents` also where that is a phase's
/// limit: a phase the config does not list runs as many at once as `-j`
/// says, not the config's number.
#[test]
fn j_raises_the_limit_of_a_phase_the_config_does_not_list() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_concurrent_agents: 2\n");
    // Each waits (a bounded while) until all three have started.
    let together = "touch $WORKSPACE/started-$(basename $TASK_ID); i=0; \
                    while [ $(ls $WORKSPACE | grep -c '^started-') -lt 3 ]; do \
                    i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.05; done";
    for id in ["p/a", "p/b", "p/c"] {
        t.task(id, &sh(together));
    }
    let run = t.run(&["orchestrate", "-j", "3"]);
    run.code(0);
    for id in ["p/a", "p/b", "p/c"] {
        assert_eq!(t.state(id), "completed", "{}", run.stdout);
    }
}

#[test]
fn resources_over_the_ceiling_are_invalid() {
    let t = Tree::new();
    t.task("p/big", &format!("resources: {{cpus: 64}}\n{}", sh("true")));
    t.run(&["orchestrate"])
        .code(2)
        .says("tasks/p/big.md:2: resources.cpus: 64 is more than max_cpu_per_agent (4)");
}

#[test]
fn cgroups_are_gone_after_the_run() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    // The supervisor makes a slot per task that may run at once (two) as
    // it starts; the chain uses one: the other's groups go too.
    t.config("max_memory_gb: 1\n");
    t.task("p/a", &sh("true"));
    // Its shell's parent is the supervisor.
    let supervisor_pid = "echo $PPID > $TASK_OUTPUT_DIR/supervisor";
    t.task(
        "p/b",
        &format!("dependencies: [p/a]\n{}", sh(supervisor_pid)),
    );
    t.run(&["orchestrate", "-j", "2"]).code(0);
    assert_eq!(t.status("p/b")["limits_enforced"], true);
    // Groups are named after their supervisor: none of this run's may
    // outlive it. (Another test's supervisor killed on purpose leaves its
    // groups to the next supervisor that starts.)
    let supervisor = read_pid(&t.path("workspace/outputs/p/b/supervisor"));
    wait_for("the supervisor to end", || !alive(supervisor));
    let left: Vec<String> = leftover_groups()
        .into_iter()
        .filter(|g| {
            let owner = g
                .rsplit('/')
                .next()
                .and_then(|n| n.split('-').next()?.parse::<u32>().ok());
            owner == Some(supervisor)
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_child_killed_for_memory_does_not_fail_a_task_that_succeeds() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    let script = "dd if=/dev/zero of=/dev/null bs=300M count=1 || echo recovered; exit 0";
    t.task(
        "p/careful",
        &format!("resources: {{memory_gb: 0.09765625}}\n{}", sh(script)),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/careful"), "completed");
    assert!(t.read("workspace/logs/p/careful.log").contains("recovered"));
}

/// A task that starts a daemon, then runs `then`. setsid puts the daemon
/// in a session and process group of its own: only the cgroup still knows
/// it belongs to the task. Its pid is in the task's output `daemon`.
fn daemon_spawner(then: &str) -> String {
    sh(&format!(
        "setsid sh -c 'echo $$ > $TASK_OUTPUT_DIR/daemon.tmp; \
         mv $TASK_OUTPUT_DIR/daemon.tmp $TASK_OUTPUT_DIR/daemon; exec sleep 300' & \
         while [ ! -e $TASK_OUTPUT_DIR/daemon ]; do sleep 0.01; done; {then}"
    ))
}

/// A run of `p/spawner`, which waits for the file `release` once its
/// daemon is up: the orchestrator, the daemon's pid and the supervisor's,
/// once the task's pid is in its status (what a later run adopts it by).
fn run_with_a_daemon(t: &Tree) -> (std::process::Child, u32, u32) {
    t.task(
        "p/spawner",
        &daemon_spawner("while [ ! -f release ]; do sleep 0.02; done"),
    );
    let orchestrator = t
        .command(&["orchestrate"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the task's daemon and its pid in its status", || {
        pid_written(t, "workspace/outputs/p/spawner/daemon")
            && t.exists("workspace/status/p/spawner.json")
            && t.status("p/spawner")["pid"].is_u64()
    });
    let daemon = read_pid(&t.path("workspace/outputs/p/spawner/daemon"));
    let supervisor = t.status("p/spawner")["supervisor_pid"].as_u64().unwrap() as u32;
    (orchestrator, daemon, supervisor)
}

fn kill(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
}

/// The run stops when its supervisor dies, and stops the task itself:
/// what the task left in the dead supervisor's cgroup goes too.
#[test]
fn a_daemon_does_not_outlive_its_task_when_the_supervisor_is_killed() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    let (mut orchestrator, daemon, supervisor) = run_with_a_daemon(&t);
    kill(supervisor);
    assert_ne!(orchestrator.wait().unwrap().code(), Some(0));
    wait_for("the daemon to be killed", || !alive(daemon));
}

/// Both killed: the task runs on, unwatched, and ends; the next run finds
/// it ended (lost), and kills what it left in the dead supervisor's
/// cgroup.
#[test]
fn a_daemon_left_by_a_task_of_a_dead_supervisor_dies_with_the_next_run() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    let (mut orchestrator, daemon, supervisor) = run_with_a_daemon(&t);
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    kill(supervisor);
    let task = t.status("p/spawner")["pid"].as_u64().unwrap() as u32;
    t.write("release", "");
    wait_for("the task to end", || !alive(task));
    t.run(&["orchestrate"])
        .code(1)
        .says("killed processes left running by tasks of a supervisor that died");
    wait_for("the daemon to be killed", || !alive(daemon));
}

#[test]
fn a_daemon_that_left_the_process_group_dies_with_its_task() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    t.task("p/spawner", &daemon_spawner("true"));
    t.run(&["orchestrate"]).code(0);
    the_daemon_died_with_its_task(&t);
}

/// `p/spawner`'s daemon is gone, and its log says it was killed.
fn the_daemon_died_with_its_task(t: &Tree) {
    let daemon = read_pid(&t.path("workspace/outputs/p/spawner/daemon"));
    assert!(!alive(daemon), "the daemon {daemon} outlived its task");
    assert!(t
        .read("workspace/logs/p/spawner.log")
        .contains("killed processes that the task left running"));
}

#[test]
fn without_cgroups_a_daemon_that_left_the_process_group_dies_with_its_task() {
    // Run as root to run as another user, who cannot write cgroups.
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    t.task("p/spawner", &daemon_spawner("true"));
    t.run_as_nobody(&["orchestrate"])
        .code(0)
        .says("tasks run without their CPU and memory limits");
    assert_eq!(t.status("p/spawner")["limits_enforced"], false);
    the_daemon_died_with_its_task(&t);
}

#[test]
fn tasks_that_share_a_slot_are_measured_each_on_its_own() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    // One slot: the second task runs in the groups the first one used.
    t.task(
        "p/a",
        &format!(
            "resources: {{memory_gb: 0.09765625}}\n{}",
            sh("dd if=/dev/zero of=/dev/null bs=300M count=1")
        ),
    );
    // Ready tasks start in id order: b after a, in a's slot.
    t.task("p/b", &sh("exit 3"));
    t.run(&["orchestrate", "-j", "1"]).code(1);
    assert_eq!(t.status("p/a")["error"], "Out of memory (limit 100 MiB)");
    let b = t.status("p/b");
    // The kernel's OOM count of the slot went up for a, not for b.
    assert!(b["error"].as_str().unwrap().contains("exit code 3"), "{b}");
    assert!(b["peak_memory_mb"].as_f64().unwrap() < 50.0, "{b}");
}

#[test]
fn memory_a_task_leaves_charged_is_not_counted_against_the_next() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    // A file in tmpfs stays charged to the group of the task that wrote it.
    let shm = format!("/dev/shm/xtask-it-{}", std::process::id());
    t.task("p/a", &sh(&format!("head -c 200M /dev/zero > {shm}")));
    t.task(
        "p/b",
        &format!(
            "resources: {{memory_gb: 0.25}}\n{}",
            sh("dd if=/dev/zero of=/dev/null bs=150M count=1")
        ),
    );
    // One slot: b runs where a ran.
    let run = t.run(&["orchestrate", "-j", "1"]);
    let _ = std::fs::remove_file(&shm);
    run.code(0);
    let peak = t.status("p/b")["peak_memory_mb"].as_f64().unwrap();
    assert!((140.0..200.0).contains(&peak), "b's peak: {peak} MiB");
}

/// A user who cannot write the cgroups (an earlier run as root made
/// `xtask`'s group): the run says once that limits are not enforced, and
/// no supervisor error per task.
#[test]
fn cgroups_another_user_made_are_said_once_to_be_unwritable() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task("p/b", &sh("true"));
    // The group there, as a run as root leaves it.
    t.run(&["orchestrate"]).code(0);
    t.run(&["reset", "p"]).code(0);
    let run = t.run_as_nobody(&["orchestrate"]);
    run.code(0)
        .says("tasks run without their CPU and memory limits (limits_enforced: false; root may write cgroups)");
    assert!(
        !run.stderr.contains("cannot create cgroup"),
        "{}",
        run.stderr
    );
    assert_eq!(t.status("p/a")["limits_enforced"], false);
}

/// A stop's SIGTERM (a timeout's, here) reaches a daemon the task started
/// out of its process group (`setsid`), which its cgroup still holds: it
/// cleans up in the grace, as the task's own processes do, rather than
/// wait it out for SIGKILL.
#[test]
fn a_timeout_s_sigterm_reaches_a_daemon_that_left_the_process_group() {
    if !cgroups_writable() {
        return;
    }
    let t = Tree::new();
    t.config("kill_grace: 20s\n");
    let daemon = "trap 'echo cleaned > $TASK_OUTPUT_DIR/cleaned; exit 0' TERM; \
                  echo $$ > $TASK_OUTPUT_DIR/daemon.tmp; mv $TASK_OUTPUT_DIR/daemon.tmp $TASK_OUTPUT_DIR/daemon; \
                  while :; do sleep 0.05; done";
    t.task(
        "p/spawner",
        &format!(
            "timeout: 1s\n{}",
            sh(&format!(
                "setsid sh -c {} & \
                 while [ ! -e $TASK_OUTPUT_DIR/daemon ]; do sleep 0.01; done; sleep 300",
                shell_quote(daemon)
            ))
        ),
    );
    let started = std::time::Instant::now();
    t.run(&["orchestrate"]).code(1).says("Timeout");
    assert_eq!(
        t.status("p/spawner")["error"],
        "Timeout after 1s (its `timeout`)"
    );
    assert!(
        t.exists("workspace/outputs/p/spawner/cleaned"),
        "the daemon got no SIGTERM: {}",
        t.read("workspace/logs/p/spawner.log")
    );
    let daemon = read_pid(&t.path("workspace/outputs/p/spawner/daemon"));
    assert!(!alive(daemon), "the daemon {daemon} outlived its task");
    assert!(
        !t.read("workspace/logs/p/spawner.log").contains("SIGKILL"),
        "{}",
        t.read("workspace/logs/p/spawner.log")
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

/// The cgroup v1 folders where the orchestrator makes its groups.
const V1_GROUPS: [&str; 3] = [
    "/sys/fs/cgroup/memory/xtask",
    "/sys/fs/cgroup/cpu/xtask",
    "/sys/fs/cgroup/cpuacct/xtask",
];

/// A probe group that a process killed between making and removing it
/// left, named as this run's own probe would have been (its pid reused),
/// takes no limit away: the run said "cannot write the cgroup v1
/// hierarchies: File exists" and ran every task without its limits. A
/// probe of a process gone is removed, as a stale group is.
#[test]
fn a_probe_group_left_by_a_killed_process_takes_no_limit_away() {
    // Only cgroup v1 is probed (v2 says whether it can be written itself).
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    if !cgroups_writable() || !v1 {
        return;
    }
    let t = Tree::new();
    t.task("p/a", &sh("echo fine"));
    let gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait_with_output().unwrap();
    // And one whose pid lives on as another process (this test's, with
    // another start): gone too.
    let reused = format!("{}-1-probe", std::process::id());
    for dir in V1_GROUPS {
        std::fs::create_dir_all(format!("{dir}/probe-{gone_pid}")).unwrap();
        std::fs::create_dir_all(format!("{dir}/{reused}")).unwrap();
    }
    // The shell leaves the probe its own pid names, then becomes the
    // orchestrator, which keeps that pid.
    let made = V1_GROUPS.map(|dir| format!("mkdir -p {dir}/probe-$$"));
    let script = format!("{} && exec \"$@\"", made.join(" && "));
    let root = t.root.to_str().unwrap();
    let child = std::process::Command::new("sh")
        .args(["-c", &script, "sh", BIN, "--root", root, "orchestrate"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let run = Run::from(child.wait_with_output().unwrap());
    let stale_left: Vec<String> = (V1_GROUPS.iter())
        .flat_map(|dir| [format!("{dir}/probe-{gone_pid}"), format!("{dir}/{reused}")])
        .filter(|probe| std::path::Path::new(probe).exists())
        .collect();
    // Ours to remove, whatever the run did: no probe outlives the test.
    for dir in V1_GROUPS {
        let _ = std::fs::remove_dir(format!("{dir}/probe-{pid}"));
        let _ = std::fs::remove_dir(format!("{dir}/probe-{gone_pid}"));
        let _ = std::fs::remove_dir(format!("{dir}/{reused}"));
    }
    run.code(0).never_says("cannot write the cgroup");
    assert_eq!(t.status("p/a")["limits_enforced"], true);
    assert!(stale_left.is_empty(), "left: {stale_left:?}");
}

/// `text` quoted for sh, as one word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
