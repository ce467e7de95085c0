//! What a newcomer meets in the first hour: a graph of their own, every
//! mistake they can make in it, and the messages they get.

use crate::tree::*;

#[test]
fn a_phase_limit_keyed_by_its_folder_name_holds() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nphases:\n  01-a: {max_parallel: 1}\n");
    let ids: Vec<String> = (1..=4).map(|i| format!("01-a/t{i}")).collect();
    for id in &ids {
        t.task(id, &sh(TIMED));
    }
    t.run(&["orchestrate"]).code(0);
    assert_eq!(max_overlap(&t, &ids), 1);
    // Both names for one phase is a mistake, said so.
    t.config("phases:\n  01-a: {max_parallel: 1}\n  a: {max_parallel: 2}\n");
    t.run(&["validate"])
        .code(2)
        .says("phases.01-a and phases.a are the same phase: keep one");
}

#[test]
fn zero_memory_or_cpu_is_invalid() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.config("max_memory_gb: 0\nmax_cpu_per_agent: 0\nmax_total_memory_gb: -2\n");
    t.run(&["validate"])
        .code(2)
        .says("3 problems")
        .says("`max_memory_gb`: must be a number above 0, found 0")
        .says("`max_cpu_per_agent`: must be a number above 0, found 0")
        .says("`max_total_memory_gb`: must be a number above 0, found -2");
}

/// A tree with mistakes of every kind, as a newcomer writes one: all are
/// reported by the first run, not one stage after the other.
#[test]
fn every_problem_of_every_stage_is_reported_at_once() {
    let t = Tree::new();
    t.config("max_concurent_agents: 2\nkill_grace: forever\n");
    t.task(
        "p/a",
        "output: [a.txt]\ntimout: 1h\nretry: 2\ndepends_on: [p/b]\nretries: -1\ncommand: \"\"",
    );
    t.task(
        "p/big",
        "resources: {cpus: 64}\ncommand: [no-such-program-here]",
    );
    t.task("p/c1", "dependencies: [p/c2]\ncommand: [\"true\"]");
    t.task("p/c2", "dependencies: [p/c1]\ncommand: [\"true\"]");
    t.task("q/d1", "dependencies: [q/d2]\ncommand: [\"true\"]");
    t.task("q/d2", "dependencies: [q/d1]\ncommand: [\"true\"]");
    let run = t.run(&["orchestrate"]);
    run.code(2)
        .says("12 problems")
        .says("tasks/orchestrator.yaml:1: unknown key `max_concurent_agents`: did you mean `max_concurrent_agents`?")
        .says("tasks/orchestrator.yaml:2: `kill_grace`: must be a positive duration")
        .says("tasks/p/a.md:2: unknown key `output`: did you mean `outputs`?")
        .says("tasks/p/a.md:3: unknown key `timout`: did you mean `timeout`?")
        .says("tasks/p/a.md:4: unknown key `retry`: did you mean `retries`?")
        .says("tasks/p/a.md:5: unknown key `depends_on`: did you mean `dependencies`?")
        .says("tasks/p/a.md:6: `retries`: must be a whole number, 0 or more, found -1")
        .says("tasks/p/a.md:7: `command`: is empty")
        .says("resources.cpus: 64 is more than max_cpu_per_agent")
        .says("`no-such-program-here` (the task's `command`, used by p/big) is not on PATH");
    // p/a's empty command is its own problem, not also a use of the agent.
    assert!(
        !run.stderr.contains("`agent` (agent.command"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("dependency cycle").count(),
        2,
        "{}",
        run.stderr
    );
    // No Rust in the messages.
    for rust in ["usize", "f64", "struct", "expected"] {
        assert!(!run.stderr.contains(rust), "{rust} in: {}", run.stderr);
    }
}

#[test]
fn messages_speak_of_keys_not_types() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.config("max_concurrent_agents: many\nagent: 3\nmax_memory_gb: [1]\n");
    let run = t.run(&["validate"]);
    run.code(2)
        .says("`max_concurrent_agents`: must be a whole number, 1 or more, found the text `many`")
        .says("`agent`: must be a mapping of `key: value` lines, found the number `3`: write its settings as `key: value` lines indented under `agent:`")
        .says("`max_memory_gb`: must be a number above 0, found a list");
    // A YAML error names the file's line once.
    t.config("phases: [\n");
    let run = t.run(&["validate"]);
    run.code(2)
        .says("tasks/orchestrator.yaml:")
        .says("the config is not valid YAML");
    assert!(!run.stderr.contains(" at line "), "{}", run.stderr);
}

#[test]
fn an_input_its_producer_does_not_declare_is_found_before_the_run() {
    let t = Tree::new();
    t.task("p/make", &format!("outputs: [data.json]\n{}", sh(MARK)));
    t.task("p/use", &format!("inputs: [p/make/data.txt]\n{}", sh(MARK)));
    t.run(&["validate"]).code(2).says(
        "tasks/p/use.md:2: input `p/make/data.txt` is not among the outputs of p/make (it declares data.json)",
    );
    t.run(&["orchestrate"]).code(2);
    assert_eq!(t.launches("p/make"), 0);
}

/// A glob input that matches a name its producer declares is one it
/// declares (as are globs within a declared glob), and runs.
#[test]
fn a_glob_input_matching_a_declared_output_is_accepted() {
    let t = Tree::new();
    t.task(
        "p/make",
        &format!(
            "outputs: [r.json, data-1.csv]\n{}",
            sh("echo {} > $TASK_OUTPUT_DIR/r.json; touch $TASK_OUTPUT_DIR/data-1.csv")
        ),
    );
    t.task(
        "p/use",
        &format!(
            "inputs: [\"p/make/*.json\", \"p/make/data-*.csv\"]\n{}",
            sh(MARK)
        ),
    );
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("p/use"), 1);
    // A glob that matches nothing declared, or nothing the run could find
    // (`*` within a folder; a last `**` finds folders), is still refused.
    let t = Tree::new();
    t.task("p/make", &format!("outputs: [sub/r.json]\n{}", sh("true")));
    for input in ["p/make/*.txt", "p/make/*.json", "p/make/**"] {
        t.task("p/use", &format!("inputs: [\"{input}\"]\n{}", sh(MARK)));
        t.run(&["validate"]).code(2).says(&format!(
            "input `{input}` is not among the outputs of p/make"
        ));
    }
    // A glob that matches the folder a declared output is in is declared.
    for input in ["p/make/*", "p/make/s*"] {
        t.task("p/use", &format!("inputs: [\"{input}\"]\n{}", sh(MARK)));
        t.run(&["validate"]).code(0);
    }
}

#[test]
fn task_ids_are_understood_as_users_type_them() {
    let t = Tree::new();
    t.task("01-build/01-fetch", &sh("false"));
    t.task("02-plan/03-prioritize", &sh("true"));
    t.run(&["orchestrate"]).code(1);
    for typed in [
        "01-build/01-fetch",
        "01-build/01-fetch.md",
        "tasks/01-build/01-fetch.md",
    ] {
        t.run(&["why", typed])
            .code(0)
            .says("01-build/01-fetch failed");
    }
    t.run(&["why", "03-prioritize"])
        .code(2)
        .says("did you mean `02-plan/03-prioritize`?");
    t.run(&["why", "zzz/qqq"])
        .code(2)
        .says("such as `01-build/01-fetch`")
        .says("progress --tasks` lists them");
    // Where a phase is taken too, a name close to a phase's gets it.
    for command in ["reset", "block", "approve", "why"] {
        t.run(&[command, "02-plam"])
            .code(2)
            .says("no task or phase `02-plam`: did you mean the phase `02-plan`?");
    }
    // Where only a phase is taken, by its folder or its key.
    for (command, typed, near) in [
        ("orchestrate", "plam", "plan"),
        ("graph", "02-plam", "02-plan"),
    ] {
        t.run(&[command, "--phase", typed])
            .code(2)
            .says(&format!("no phase `{typed}`: did you mean `{near}`?"));
    }
    // A dependency names a phase by its folder: one near its key gets the
    // folder suggested.
    t.task("03-ship/01-go", "dependencies: [plam]\ncommand: \"true\"");
    t.run(&["validate"])
        .code(2)
        .says("unknown dependency `plam`: did you mean `02-plan`?");
    std::fs::remove_dir_all(t.path("tasks/03-ship")).unwrap();
    t.run(&["reset", "03-prioritize"])
        .code(2)
        .says("did you mean `02-plan/03-prioritize`?");
}

#[test]
fn hints_carry_the_root_and_paths_are_shown_from_where_the_user_stands() {
    let t = Tree::new();
    t.task("01-build/05-fail", &sh("exit 3"));
    t.run(&["orchestrate"]).code(1);
    let root = t.root.to_str().unwrap();
    // From elsewhere, with --root: the hint works as typed, paths are whole.
    let run: Run = t
        .command(&["why", "01-build/05-fail"])
        .current_dir("/usr")
        .output()
        .unwrap()
        .into();
    run.code(0)
        .says(&format!(
            "`cargo xtask --root {root} reset 01-build/05-fail`"
        ))
        .says(&format!(
            "last lines of {root}/workspace/logs/01-build/05-fail.log"
        ));
    let run: Run = t
        .command(&["report"])
        .current_dir("/usr")
        .output()
        .unwrap()
        .into();
    run.code(0)
        .says(&format!("wrote {root}/workspace/report.html"));
    // From the root: paths from there.
    t.run(&["report"])
        .code(0)
        .says("wrote workspace/report.html");
}

#[test]
fn why_says_what_the_next_run_does_and_names_every_failure_upstream() {
    let t = Tree::new();
    t.task("01-a/f1", &sh("exit 1"));
    t.task("01-a/f2", &sh("exit 2"));
    t.task("01-a/ok", &sh("true"));
    t.task("02-b/x", &format!("dependencies: [01-a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    t.run(&["why", "02-b/x"])
        .code(0)
        .says("02-b/x is blocked by 01-a/f1, 01-a/f2")
        .says("01-a/f1 failed: exit code 1")
        .says("01-a/f2 failed: exit code 2")
        .says("it runs once they have completed");
    t.run(&["why", "01-a/f1"])
        .code(0)
        .says("orchestrate` retries it");
    t.run(&["block", "01-a/f1", "--reason", "waiting for a key"])
        .code(0);
    let run = t.run(&["why", "01-a/f1"]);
    run.code(0).says("it was blocked by hand: it stays failed");
    assert!(!run.stdout.contains("retries it"), "{}", run.stdout);
    // Downstream, the held one is said to be no run's to retry.
    t.run(&["why", "02-b/x"])
        .code(0)
        .says("01-a/f1 failed: waiting for a key (it had failed: exit code 1) (blocked by hand: it stays failed until `cargo xtask --root ")
        .says(" reset 01-a/f1`)");
    // A phase: a line per task.
    t.run(&["why", "01-a"])
        .code(0)
        .says("phase 01-a: 3 tasks")
        .says("failed     01-a/f2  exit code 2");
}

#[test]
fn a_task_that_never_started_leaves_no_log() {
    let t = Tree::new();
    t.task("p/a", &sh("sleep 0.2; exit 1"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/b"), "blocked");
    assert!(!t.exists("workspace/logs/p/b.log"), "an empty log was left");
    assert!(
        !t.exists("workspace/outputs/p/b"),
        "an empty output folder was left"
    );
    t.run(&["logs", "p/b"]).code(2).says("p/b has no log yet");
}

#[test]
fn a_stopped_task_ends_with_its_processes_and_its_log_says_why() {
    let t = Tree::new();
    // The shell waits for its child; both get SIGTERM. The child, orphaned
    // for a moment, must be reaped, not left a zombie keeping the group.
    t.task(
        "p/slow",
        &format!(
            "timeout: 1s\n{}",
            sh("sleep 30 & echo $! > $TASK_OUTPUT_DIR/child; wait")
        ),
    );
    t.run(&["orchestrate"]).code(1);
    assert_eq!(
        t.status("p/slow")["error"],
        "Timeout after 1s (its `timeout`)"
    );
    assert_eq!(t.status("p/slow")["ending"], "timeout");
    let child = read_pid(&t.path("workspace/outputs/p/slow/child"));
    assert!(
        !std::path::Path::new(&format!("/proc/{child}")).exists(),
        "the child is left, maybe as a zombie"
    );
    let log = t.read("workspace/logs/p/slow.log");
    assert!(
        log.contains("xtask: timed out after 1s: SIGTERM sent to the task's processes"),
        "{log}"
    );
    assert!(!log.contains("left running"), "{log}");
}

/// What the orchestrator says in a task's log is on a line of its own,
/// also after output that did not end its line (a progress bar).
#[test]
fn the_orchestrator_s_notes_start_a_line_of_their_own() {
    let t = Tree::new();
    t.task(
        "p/bar",
        &format!("timeout: 1s\n{}", sh("printf 'downloading 45%%'; sleep 30")),
    );
    t.run(&["orchestrate"]).code(1);
    let log = t.read("workspace/logs/p/bar.log");
    assert!(
        log.starts_with("downloading 45%\nxtask: timed out after 1s"),
        "{log:?}"
    );
}

#[test]
fn a_run_whose_output_nobody_reads_goes_on() {
    let t = Tree::new();
    for i in 0..4 {
        t.task(&format!("p/t{i}"), &sh("sleep 0.1"));
    }
    let mut child = t
        .command(&["orchestrate"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    for i in 0..4 {
        assert_eq!(t.state(&format!("p/t{i}")), "completed");
    }
}

#[test]
fn progress_shows_an_invalid_task_file_and_the_valid_rest() {
    let t = Tree::new();
    t.task("p/good", &sh("true"));
    t.task("p/bad", "timeout: soon");
    let run = t.run(&["progress"]);
    run.code(2)
        .says("error: tasks/p/bad.md:2: `timeout`: must be a positive duration")
        .says("Phase: p");
    let json = t.run(&["progress", "--json"]);
    json.code(2);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        doc["problems"][0].as_str().unwrap().contains("p/bad.md:2"),
        "{doc}"
    );
    assert_eq!(doc["tasks"][1]["task_id"], "p/good");
    assert_eq!(doc["tasks"][1]["state"], "pending");
}

#[test]
fn progress_lists_every_task() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.task(
        "p/b",
        &format!("dependencies: [p/a]\n{}", sh("echo boom; exit 4")),
    );
    t.task("p/c", &format!("dependencies: [p/b]\n{}", sh("true")));
    t.run(&["orchestrate"]).code(1);
    t.run(&["progress", "--tasks"])
        .code(0)
        .says("completed  p/a  attempt 1  agent-1")
        .says("failed     p/b  attempt 1  agent-1  exit code 4")
        .says("blocked    p/c  blocked by p/b");
    let json = t.run(&["progress", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["tasks"][1]["last_log_line"], "boom");
}

#[test]
fn a_log_s_last_line_is_shown_without_colours_or_redrawn_parts() {
    let t = Tree::new();
    t.task(
        "p/a",
        &sh(r"printf 'start\n\033[32mok\033[0m 10%%\r\033[32mok\033[0m\t100%%\n'; exit 3"),
    );
    t.run(&["orchestrate"]).code(1);
    let json = t.run(&["progress", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["tasks"][0]["last_log_line"], "ok 100%");
}

#[test]
fn a_command_the_shell_cannot_find_is_named_in_the_error() {
    let t = Tree::new();
    t.task("p/a", &sh("nosuchprog --flag"));
    // The shell's words (dash: `nosuchprog: not found`; bash: `nosuchprog:
    // command not found`).
    t.run(&["orchestrate"])
        .code(1)
        .says("exit code 127 (")
        .says("nosuchprog");
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("exit code 127 ("), "{error}");
    assert!(
        error.contains("nosuchprog") && error.ends_with("not found)"),
        "{error}"
    );
}

/// An empty `--root` (a variable unset in a script) says so, not "cannot
/// use  as the root".
#[test]
fn an_empty_root_is_said_empty() {
    let out = std::process::Command::new(BIN)
        .args(["--root", "", "validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "`--root` was given an empty path: name the project's folder (`--root .` for this one)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_root_without_tasks_is_told_the_init_that_makes_them_there() {
    // A space in the path: the suggested command must survive a copy and
    // paste into a shell, so it is run through one.
    let dir = std::env::temp_dir().join(format!("xtask no tasks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--root")
        .arg(&dir)
        .arg("progress")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let init = format!("`cargo xtask --root '{}' init` to make one", dir.display());
    assert!(stderr.contains(&init), "{stderr}");
    let typed = init[1..init.find("` to").unwrap()].replace("cargo xtask", BIN);
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("{typed} >/dev/null")])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(dir.join("tasks/orchestrator.yaml").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `.gitignore` that is a folder is said before `init` makes anything
/// (it made `tasks/` and its files, then failed on it, half done); one
/// that is not UTF-8 gets its line added as any other.
#[test]
fn init_with_a_gitignore_it_cannot_add_to_makes_nothing() {
    let t = Tree::new();
    std::fs::remove_dir_all(t.path("tasks")).unwrap();
    std::fs::create_dir_all(t.path(".gitignore")).unwrap();
    t.run(&["init"]).code(2).says(
        ".gitignore is a folder, not a file: git reads what to ignore from a file `.gitignore`; move the folder away",
    );
    assert!(!t.exists("tasks"), "init made tasks/ before it failed");
    std::fs::remove_dir(t.path(".gitignore")).unwrap();
    std::fs::write(t.path(".gitignore"), b"caf\xe9/\n").unwrap();
    t.run(&["init"])
        .code(0)
        .says("added   /workspace/ to .gitignore");
    assert_eq!(
        std::fs::read(t.path(".gitignore")).unwrap(),
        b"caf\xe9/\n# The orchestrator's run-time state (cargo xtask)\n/workspace/\n"
    );
}

#[test]
fn init_sets_up_a_fresh_repository_and_an_empty_one_says_what_to_do() {
    let dir = std::env::temp_dir().join(format!("xtask-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // `workspaces/` is another folder: it does not ignore `workspace/`.
    std::fs::write(dir.join(".gitignore"), "/target\nworkspaces/").unwrap();
    let run = |args: &[&str]| -> Run {
        std::process::Command::new(BIN)
            .arg("--root")
            .arg(&dir)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap()
            .into()
    };
    // A file where the folder goes: said so, nothing written.
    std::fs::write(dir.join("tasks"), "notes").unwrap();
    run(&["init"]).code(2).says(
        "tasks is a file, not a folder: the task files go in a folder tasks/; move the file away",
    );
    std::fs::remove_file(dir.join("tasks")).unwrap();
    run(&["init"])
        .code(0)
        .says("created tasks/orchestrator.yaml")
        .says("created tasks/TEMPLATE.md")
        .says("added   /workspace/ to .gitignore");
    assert_eq!(
        std::fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "/target\nworkspaces/\n# The orchestrator's run-time state (cargo xtask)\n/workspace/\n"
    );
    // Again: nothing overwritten, nothing added twice.
    std::fs::write(
        dir.join("tasks/orchestrator.yaml"),
        "max_concurrent_agents: 3\n",
    )
    .unwrap();
    run(&["init"])
        .code(0)
        .says("kept    tasks/orchestrator.yaml");
    assert_eq!(
        std::fs::read_to_string(dir.join("tasks/orchestrator.yaml")).unwrap(),
        "max_concurrent_agents: 3\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join(".gitignore"))
            .unwrap()
            .matches("/workspace/")
            .count(),
        1
    );
    // No task yet: said so, with the way to add one.
    run(&["orchestrate"])
        .code(2)
        .says("tasks/ has no task yet: `cargo xtask --root");
    run(&["new", "01-plan/01-first"]).code(0);
    run(&["validate"])
        .code(2)
        .says("`agent` (agent.command, the default");
    // `init` again on a repository with tasks: run them, not a phase it
    // does not have.
    run(&["new", "02-build/01-second"]).code(0);
    run(&["init"])
        .code(0)
        .says("runs the 2 task files in tasks/, `cargo xtask --root")
        .never_says("01-plan/01-first-task");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_memory_that_caps_concurrency_is_said() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_memory_gb: 8\nmax_total_memory_gb: 17\n");
    for i in 0..5 {
        t.task(&format!("p/t{i}"), &sh("true"));
    }
    let note = "memory admits 2 tasks at a time, not 5: 8 GiB each of 17 GiB";
    t.run(&["orchestrate", "-j", "5"]).code(0).says(note);
    t.run(&["reset", "p"]).code(0);
    t.run(&["next"])
        .code(0)
        .says("Limits: at most 10 at once")
        .says("memory admits 2 tasks at a time, not 5");
    // A run of fewer than memory admits is not capped by it.
    let one = t.run(&["orchestrate", "--task", "p/t0", "-j", "5"]);
    one.code(0);
    assert!(!one.stdout.contains("memory admits"), "{}", one.stdout);
    t.run(&["reset", "p"]).code(0);
    t.run(&["orchestrate", "--dry-run", "-j", "5"])
        .code(0)
        .says(note);
    // Where memory does not bind, nothing is said.
    t.config("kill_grace: 1s\nmax_memory_gb: 1\nmax_total_memory_gb: 17\n");
    let run = t.run(&["orchestrate", "-j", "5"]);
    assert!(!run.stdout.contains("memory admits"), "{}", run.stdout);
    // Tasks of mixed sizes that fit together: 8 GiB and 1 GiB in 10.
    let t = Tree::new();
    t.config("kill_grace: 1s\nmax_memory_gb: 8\nmax_total_memory_gb: 10\n");
    t.task("p/big", &sh("true"));
    t.task(
        "p/small",
        &format!("resources: {{memory_gb: 1}}\n{}", sh("true")),
    );
    let next = t.run(&["next"]);
    next.code(0);
    assert!(!next.stdout.contains("memory admits"), "{}", next.stdout);
    // And ones that do not all fit: 8, 8 and 1 in 10 run two at a time
    // at most, one at the least.
    t.task("p/big2", &sh("true"));
    t.run(&["next"])
        .says("memory admits 1 to 2 tasks at a time, not 3: 1 GiB to 8 GiB each of 10 GiB");
    // Small ones enough to fill the slots together: the large ones alone
    // hold the run to fewer.
    for n in 1..=3 {
        t.task(
            &format!("p/small{n}"),
            &format!("resources: {{memory_gb: 1}}\n{}", sh("true")),
        );
    }
    t.config(
        "kill_grace: 1s\nmax_memory_gb: 8\nmax_total_memory_gb: 10\nmax_concurrent_agents: 3\n",
    );
    t.run(&["next"])
        .says("memory admits as few as 1 task at a time, not 3: 1 GiB to 8 GiB each of 10 GiB");
}

#[test]
fn quiet_prints_only_the_summary_and_read_only_commands_launch_nothing() {
    let t = Tree::new();
    t.task("p/a", &sh("exit 1"));
    t.task("p/b", &format!("dependencies: [p/a]\n{}", sh("true")));
    let run = t.run(&["orchestrate", "-q"]);
    run.code(1);
    assert!(
        run.stdout
            .starts_with("Summary: 0 completed, 1 failed, 1 blocked"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("ALERT"), "{}", run.stdout);
    t.task("p/c", &format!("dependencies: [p/nope]\n{}", sh("true")));
    for command in ["validate", "graph", "report", "next", "why"] {
        let mut args = vec![command];
        if command == "why" {
            args.push("p/a");
        }
        let run = t.run(&args);
        run.code(2).says("the task definitions have a problem:");
        assert!(
            !run.stderr.contains("launched"),
            "{command}: {}",
            run.stderr
        );
    }
    t.run(&["orchestrate"]).code(2).says("nothing was launched");
}

/// `init` writes every setting, commented out (README, Commands): each key
/// the config takes, as the binary lists them when it meets one it does
/// not know, is set on a commented-out line of the file `init` wrote.
#[test]
fn init_s_config_shows_every_key_the_config_takes() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    std::fs::remove_file(t.path("tasks/orchestrator.yaml")).unwrap();
    t.run(&["init"]).code(0);
    let written = t.read("tasks/orchestrator.yaml");
    // `# key: value` and `#   key: {inner: value}`, not the `##` prose.
    let settings: Vec<&str> = written.lines().filter(|l| l.starts_with("# ")).collect();
    let shown = |key: &str| {
        settings
            .iter()
            .any(|l| l.contains(&format!(" {key}:")) || l.contains(&format!("{{{key}:")))
    };
    // A key no section takes, in each section of the config.
    let probes = [
        "zzzzzzzzzz: 1",
        "agent: {zzzzzzzzzz: 1}",
        "agent: {prices: {zzzzzzzzzz: 1}}",
        "phases: {a: {zzzzzzzzzz: 1}}",
        "worktrees: {zzzzzzzzzz: 1}",
        "slurm: {zzzzzzzzzz: 1}",
        "rate_limits: {zzzzzzzzzz: 1}",
        "budget: {zzzzzzzzzz: 1}",
    ];
    for probe in probes {
        t.config(probe);
        let said = t.run(&["validate"]).code(2).said();
        let keys = said
            .split_once("the keys here are ")
            .and_then(|(_, rest)| rest.lines().next())
            .unwrap_or_else(|| panic!("no list of the keys `{probe}` may hold: {said}"));
        for key in keys.split(", ").map(|k| k.trim_matches('`')) {
            assert!(
                shown(key),
                "`{key}` (beside `{probe}`) is not in the config `init` writes:\n{written}"
            );
        }
    }
}
