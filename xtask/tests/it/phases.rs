//! Phases as first-class: gates, depending on a phase, new tasks from the
//! template, and the shipped example.

use crate::tree::*;

#[test]
fn a_gate_waits_for_its_required_artifact_and_says_so() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nphases:\n  planning:\n    requires: [02-planning/features.json]\n");
    t.task(
        "02-planning/plan",
        &sh("echo plan > $TASK_OUTPUT_DIR/plan.md"),
    );
    t.task(
        "03-build/a",
        &format!("dependencies: [02-planning]\n{}", sh(MARK)),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("03-build/a: waits on phase 02-planning (its gate needs 02-planning/features.json)");
    assert_eq!(t.launches("03-build/a"), 0);
    let progress = t.run(&["progress", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&progress.stdout).unwrap();
    let gate = &json["phases"][0]["gate"];
    assert_eq!(gate["complete"], false);
    assert_eq!(
        gate["waiting_on"][0],
        "workspace/outputs/02-planning/features.json"
    );
    t.run(&["progress"])
        .says("Gate: waiting on workspace/outputs/02-planning/features.json");

    // The artifact appears: the gate opens and the dependent runs.
    t.write("workspace/outputs/02-planning/features.json", "[]");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("03-build/a"), 1);
    t.run(&["progress"]).says("Gate: complete");
}

/// A gate's artifact in a task's output folder that the task does not
/// declare is refused, as such an input is: the gate waited for it for good.
#[test]
fn a_gate_s_artifact_its_task_does_not_declare_is_refused() {
    let t = Tree::new();
    t.config(
        "kill_grace: 1s\nphases:\n  planning:\n    requires: [02-planning/plan/features.json]\n",
    );
    t.task(
        "02-planning/plan",
        &format!("outputs: [plan.md]\n{}", sh("true")),
    );
    t.run(&["validate"]).code(2).says(
        "tasks/orchestrator.yaml:4: `phases.planning.requires`: `02-planning/plan/features.json` is in the output folder of 02-planning/plan, which does not declare it among its outputs: add `features.json` to its `outputs`, or fix the path",
    );
}

/// A phase is complete with the earlier ones: what an earlier phase's gate
/// requires holds a dependency on a later phase too.
#[test]
fn an_earlier_phase_s_missing_artifact_holds_a_later_phase_s_gate() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nphases:\n  build: {requires: [01-build/never.txt]}\n");
    t.task("01-build/a", &sh("true"));
    t.task("02-test/t", &sh("true"));
    t.task(
        "03-ship/s",
        &format!("dependencies: [02-test]\n{}", sh(MARK)),
    );
    t.run(&["orchestrate", "--dry-run"])
        .code(1)
        .says("03-ship/s: waits on phase 02-test (its gate needs 01-build/never.txt)");
    t.run(&["orchestrate"])
        .code(1)
        .says("03-ship/s: waits on phase 02-test (its gate needs 01-build/never.txt)");
    assert_eq!(t.launches("03-ship/s"), 0);
    t.run(&["why", "03-ship/s"]).says(
        "phase 01-build: its gate needs workspace/outputs/01-build/never.txt, which does not exist",
    );
    t.write("workspace/outputs/01-build/never.txt", "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("03-ship/s"), 1);
}

/// An input or a gate's artifact written as a glob is there once it
/// matches a file, as a glob output is: the run, `next` and `why` agree.
#[test]
fn a_glob_input_or_gate_artifact_is_there_once_it_matches() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nphases:\n  a: {requires: [\"01-a/p/*.json\"]}\n");
    t.task(
        "01-a/p",
        &format!(
            "outputs: [\"*.json\"]\n{}",
            sh("echo {} > $TASK_OUTPUT_DIR/x.json")
        ),
    );
    t.task(
        "01-a/c",
        &format!("inputs: [\"01-a/p/*.json\"]\n{}", sh(MARK)),
    );
    t.task("02-b/d", &format!("dependencies: [01-a]\n{}", sh(MARK)));
    t.run(&["orchestrate", "--dry-run"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("01-a/c"), 1);
    assert_eq!(t.launches("02-b/d"), 1);
    t.run(&["progress"]).says("Gate: complete");
}

/// A dry run counts an artifact a gate requires as written once the task
/// that declares it would have completed, as it does an input: the run
/// would start what waits on the gate.
#[test]
fn a_dry_run_counts_a_gate_artifact_a_planned_task_writes() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nphases:\n  build: {requires: [01-build/a/art.txt]}\n");
    t.task(
        "01-build/a",
        &format!(
            "outputs: [art.txt]\n{}",
            sh("echo a > $TASK_OUTPUT_DIR/art.txt")
        ),
    );
    t.task(
        "02-test/t",
        &format!("dependencies: [01-build]\n{}", sh(MARK)),
    );
    let plan = t.run(&["orchestrate", "--dry-run"]);
    plan.code(0);
    assert!(!plan.stdout.contains("would not start"), "{}", plan.stdout);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("02-test/t"), 1);
}

#[test]
fn a_phase_dependency_waits_for_tasks_generated_during_the_run() {
    let t = Tree::new();
    // The generator writes two implementation tasks, slowly, one after the other.
    let generate = r#"mkdir -p tasks/03-impl/gen
for f in one two; do
  printf -- '---\ncommand: sleep 0.3; date +%%s%%N > $TASK_OUTPUT_DIR/end\n---\n' > tasks/03-impl/gen/.$f.tmp
  mv tasks/03-impl/gen/.$f.tmp tasks/03-impl/gen/$f.md
  sleep 0.2
done"#;
    t.task("02-plan/generate", &sh(generate));
    t.task("03-impl/static", &sh("true"));
    t.task(
        "04-validate/check",
        &format!(
            "dependencies: [03-impl]\n{}",
            sh("date +%s%N > $TASK_OUTPUT_DIR/start")
        ),
    );
    t.run(&["orchestrate"]).code(0).says("Summary: 5 completed");
    let ns = |rel: &str| t.read(rel).trim().parse::<u128>().unwrap();
    let start = ns("workspace/outputs/04-validate/check/start");
    for generated in ["one", "two"] {
        assert!(
            ns(&format!("workspace/outputs/03-impl/gen/{generated}/end")) <= start,
            "{generated} ended after validation started"
        );
    }
}

#[test]
fn a_failure_in_a_phase_blocks_what_depends_on_the_phase() {
    let t = Tree::new();
    t.task("01-a/ok", &sh("true"));
    t.task("01-a/bad", &sh("exit 5"));
    t.task("02-b/after", &format!("dependencies: [01-a]\n{}", sh(MARK)));
    t.run(&["orchestrate"])
        .code(1)
        .says("ALERT: Task 01-a/bad failed, blocking 1 task");
    assert_eq!(t.state("02-b/after"), "blocked");
    assert_eq!(t.status("02-b/after")["blocked_by"], "01-a/bad");
    assert_eq!(t.launches("02-b/after"), 0);
}

#[test]
fn new_creates_a_task_from_the_template_and_never_overwrites() {
    let t = Tree::new();
    t.write(
        "tasks/TEMPLATE.md",
        "---\ntitle: \"{{title}}\"\ncommand: \"echo {{id}} > $TASK_OUTPUT_DIR/id\"\n---\nPrompt for {{id}}.\n",
    );
    t.run(&["new", "01-analysis/07-audit-errors"])
        .code(0)
        .says("created tasks/01-analysis/07-audit-errors.md");
    let text = t.read("tasks/01-analysis/07-audit-errors.md");
    assert!(text.contains("title: \"Audit errors\""), "{text}");
    assert!(
        text.contains("Prompt for 01-analysis/07-audit-errors."),
        "{text}"
    );
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        t.read("workspace/outputs/01-analysis/07-audit-errors/id"),
        "01-analysis/07-audit-errors\n"
    );
    t.write("tasks/01-analysis/07-audit-errors.md", "mine");
    t.run(&["new", "01-analysis/07-audit-errors"])
        .code(2)
        .says("already exists");
    assert_eq!(t.read("tasks/01-analysis/07-audit-errors.md"), "mine");
    t.run(&["new", "no-phase"]).code(2).says("has no phase");
    t.run(&["new", "/abs/x"])
        .code(2)
        .says("`/abs/x` is an absolute path: give the task's id under tasks/");
    assert!(!t.exists("tasks/abs"));
    t.run(&["new", "01-analysis/README"])
        .code(2)
        .says("a file named README.md is documentation, never read as a task");
    // The built-in template: its own explanation is not filled in.
    std::fs::remove_file(t.path("tasks/TEMPLATE.md")).unwrap();
    t.run(&["new", "02-b/c"]).code(0);
    let text = t.read("tasks/02-b/c.md");
    let comment: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("title"))
        .collect();
    assert!(!comment.join("\n").contains("02-b/c"), "{text}");
    assert!(text.contains("title: \"C\""), "{text}");
    // Nor does it claim a tasks/TEMPLATE.md there is none of.
    assert!(!text.contains("from tasks/TEMPLATE.md"), "{text}");
    assert!(text.contains("from its built-in template"), "{text}");
    // Named by its file, with `.md` once: the rest is its name.
    t.run(&["new", "02-b/x.md.md"])
        .code(0)
        .says("created tasks/02-b/x.md.md");
}

/// Phase folders named by their number only (`01`, `02`) are each their
/// own key: two were one empty key, refused as a clash.
#[test]
fn phase_folders_named_by_their_number_only_are_their_own_keys() {
    let t = Tree::new();
    t.config("max_memory_gb: 0.25\nphases:\n  \"02\": {max_parallel: 1}\n");
    t.task("01/a", &sh(MARK));
    t.task("02/b", &format!("dependencies: [\"01\"]\n{}", sh(MARK)));
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate", "--phase", "01"]).code(0);
    assert_eq!(t.launches("01/a"), 1);
    assert_eq!(t.launches("02/b"), 0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("02/b"), 1);
}

/// `new` refuses, writing nothing, a task `validate` would refuse: an id
/// inside another task's (or holding one), or a template that makes
/// frontmatter that does not parse (it wrote the file and said "created").
#[test]
fn new_refuses_a_task_validate_would_refuse() {
    let t = Tree::new();
    t.run(&["new", "p/first"]).code(0);
    t.run(&["new", "p/first/sub"])
        .code(2)
        .says("`p/first/sub` and task p/first: one id is inside the other");
    assert!(!t.exists("tasks/p/first"));
    t.write("tasks/p/outer/inner.md", &t.read("tasks/p/first.md"));
    t.run(&["new", "p/outer"])
        .code(2)
        .says("`p/outer` and task p/outer/inner: one id is inside the other");
    assert!(!t.exists("tasks/p/outer.md"));
    t.write(
        "tasks/TEMPLATE.md",
        "---\ndependencies: [unclosed\n---\n{{title}}\n",
    );
    t.run(&["new", "p/second"]).code(2).says(
        "tasks/TEMPLATE.md makes a task that is not valid (line 3: frontmatter is not valid YAML",
    );
    assert!(!t.exists("tasks/p/second.md"));
    std::fs::remove_file(t.path("tasks/TEMPLATE.md")).unwrap();
    // A second folder of a phase's key, and a name too long for the
    // files kept for it: both made every run exit 2.
    t.run(&["new", "05-p/x"]).code(2).says(
        "tasks/p is phase `p` already (a phase's key is its folder's name without the number), and two folders of one key are refused: put the task there (`cargo xtask --root",
    );
    assert!(!t.exists("tasks/05-p"));
    let long = format!("q/{}", "y".repeat(230));
    t.run(&["new", &long])
        .code(2)
        .says("its name is 230 bytes long, past the 200");
    assert!(!t.exists("tasks/q"));
}

/// `new` takes a task's file path, refuses names it would make no task
/// of (hidden) or an invalid file of, and warns when a run going on would
/// take the task up before it is edited.
#[test]
fn new_refuses_names_it_cannot_make_a_task_of_and_warns_of_a_run() {
    let t = Tree::new();
    t.run(&["new", "tasks/01-plan/y.md"])
        .code(0)
        .says("created tasks/01-plan/y.md");
    for name in ["01-plan/.x", ".hidden/x"] {
        t.run(&["new", name])
            .code(2)
            .says("is hidden, never read as a task: drop the dot");
    }
    t.run(&["new", "01-plan/a\"b"])
        .code(2)
        .says("cannot be in a task id");
    // What validate would refuse, refused first.
    t.run(&["new", "01-plan/tab\tx"])
        .code(2)
        .says("a task id cannot hold control characters");
    assert!(!t.exists("tasks/01-plan/tab\tx.md"));
    // The built-in template's task runs the agent, which is none here.
    std::fs::remove_file(t.path("tasks/01-plan/y.md")).unwrap();
    t.task("p/long", &sh("while [ ! -e go ]; do sleep 0.01; done"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/long to run", || {
        t.exists("workspace/status/p/long.json") && t.state("p/long") == "running"
    });
    let made = t.run(&["new", "01-plan/z"]);
    std::fs::rename(t.path("tasks/01-plan/z.md"), t.path("z.md")).unwrap();
    t.write("go", "");
    run.wait().unwrap();
    made.code(0)
        .says("warning: a run is going on (pid ")
        .says("it takes this task up as it is now");
}

/// The repository's own example, run from a fresh clone, completes and
/// leaves `git status` clean.
#[test]
fn the_example_runs_in_a_fresh_clone_and_leaves_git_status_clean() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    // A copy in another repository (README's "In your own repository")
    // has no benchmark: its tasks are someone's own, never run here.
    if !repo.join("xtask/bench").is_dir() {
        eprintln!("skipped: not the orchestrator's own repository");
        return;
    }
    let t = Tree::new();
    let clone = t.root.join("clone");
    git_in(
        repo,
        &[
            "clone",
            "-q",
            repo.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    let run: Run = std::process::Command::new(BIN)
        .arg("--root")
        .arg(&clone)
        .args(["orchestrate", "-q"])
        .env("EXAMPLE_AGENT_SLEEP", "0")
        .output()
        .unwrap()
        .into();
    run.code(0);
    let progress: Run = std::process::Command::new(BIN)
        .arg("--root")
        .arg(&clone)
        .args(["progress", "--json"])
        .output()
        .unwrap()
        .into();
    let json: serde_json::Value = serde_json::from_str(&progress.stdout).unwrap();
    assert_eq!(json["total"]["percent"], 100, "{}", progress.stdout);
    assert!(
        json["total"]["total"].as_u64().unwrap() > 16,
        "generated tasks ran too"
    );
    assert!(json["phases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["gate"]["complete"] == true));
    assert_eq!(git_in(&clone, &["status", "--porcelain"]), "");
}

/// A burst of short tasks scans the task folders once, not at every end;
/// a task file written while its phase still runs is found all the same,
/// and runs without waiting for the phase's other tasks.
#[test]
fn a_task_generated_while_its_phase_runs_starts_before_the_phase_ends() {
    let t = Tree::new();
    t.config("max_concurrent_agents: 3\nmax_memory_gb: 1\n");
    t.task("p/long", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    let generate = r#"printf -- '---\ncommand: touch new-ran\n---\n' > tasks/p/.new && mv tasks/p/.new tasks/p/new.md"#;
    t.task("p/gen", &sh(generate));
    let mut run = t.start(&["orchestrate"]);
    wait_for("the generated task to run while p/long runs", || {
        t.exists("new-ran")
    });
    assert_eq!(t.state("p/long"), "running");
    t.write("release", "");
    assert!(run.wait().unwrap().success());
    assert_eq!(t.state("p/new"), "completed");
}

/// A phase folder may start empty: its tasks are all generated during the
/// run, and a task that depends on the phase waits for them. A typo of a
/// phase's name gets the name suggested.
#[test]
fn a_phase_of_generated_tasks_only_can_be_depended_on() {
    let t = Tree::new();
    std::fs::create_dir_all(t.path("tasks/2-impl")).unwrap();
    let generate = r#"printf -- '---\ncommand: sleep 0.2; touch $WORKSPACE/made\n---\n' > tasks/2-impl/.g && mv tasks/2-impl/.g tasks/2-impl/g.md"#;
    t.task("1-plan/gen", &sh(generate));
    t.task(
        "3-final/use",
        &format!("dependencies: [2-impl]\n{}", sh("test -f $WORKSPACE/made")),
    );
    t.task("3-final/typo", "dependencies: [2-imp]\ncommand: \"true\"");
    t.run(&["validate"])
        .code(2)
        .says("unknown dependency `2-imp`: did you mean `2-impl`?");
    std::fs::remove_file(t.path("tasks/3-final/typo.md")).unwrap();
    t.run(&["orchestrate"]).code(0).says("Summary: 3 completed");
}

/// A tree whose `1-plan/gen` runs `generate` (which writes task files of
/// phase 2-impl), beside `2-impl/seed`; `3-final/merge` waits on the phase
/// 2-impl and marks that it ran.
fn generating(generate: &str) -> Tree {
    let t = Tree::new();
    t.task("1-plan/gen", &sh(generate));
    t.task("2-impl/seed", &sh("true"));
    t.task(
        "3-final/merge",
        &format!("dependencies: [2-impl]\n{}", sh(MARK)),
    );
    t
}

/// A task file generated during the run that is not a valid task is a task
/// of its phase that cannot run: what waits on the phase does not start
/// (as `progress` says after), and the run says why and exits 1.
#[test]
fn an_invalid_generated_task_keeps_its_phase_gate_closed() {
    let t = generating(
        r#"mkdir -p tasks/2-impl && printf -- '---\ncommand: exit 0\n---\n' > tasks/2-impl/good.md && printf -- '---\ncommand: [unclosed\n---\n' > tasks/2-impl/bad.md && printf -- '---\nretries: -1\npriority: high\ncommand: exit 0\n---\n' > tasks/2-impl/twice.md"#,
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("invalid  tasks/2-impl/bad.md:3: frontmatter is not valid YAML")
        .says("tasks/2-impl/twice.md:2: ")
        .says("tasks/2-impl/twice.md:3: ")
        .says("2 invalid task files")
        .says("waiting  3-final/merge: waits on phase 2-impl (2 tasks of it or earlier phases not completed)");
    assert_eq!(t.state("2-impl/good"), "completed");
    assert!(!t.exists("markers"), "3-final/merge ran");
}

/// An invalid task file of a complete phase, found in the same look as the
/// first task that waits on that phase, holds the phase's gate: the task
/// does not start beside it (the gate opened as the task joined, before
/// the invalid file was counted).
#[test]
fn an_invalid_file_found_with_the_first_task_waiting_on_its_phase_holds_it() {
    let t = Tree::new();
    t.task("2-impl/seed", &sh("true"));
    t.task(
        "1-plan/gen",
        &format!(
            "dependencies: [2-impl/seed]\n{}",
            sh(r#"printf -- '---\ncommand: [unclosed\n---\n' > tasks/2-impl/bad.md && mkdir -p tasks/3-final && printf -- '---\ndependencies: [2-impl]\ncommand: mkdir -p markers\n---\n' > tasks/3-final/merge.md"#)
        ),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("tasks/2-impl/bad.md:3: frontmatter is not valid YAML")
        .says("waiting  3-final/merge: waits on phase 2-impl");
    assert!(!t.exists("markers"), "3-final/merge ran");
}

/// An invalid task file in a phase folder made during the run, with no
/// valid task yet, holds the gates of the later phases, which include it.
#[test]
fn an_invalid_file_in_a_new_phase_folder_holds_the_later_gates() {
    let t = Tree::new();
    t.task(
        "1-plan/gen",
        &sh(r#"mkdir -p tasks/2-impl && printf -- '---\ncommand: [unclosed\n---\n' > tasks/2-impl/bad.md"#),
    );
    t.task("3-check/c", &sh("true"));
    t.task(
        "4-final/merge",
        &format!("dependencies: [3-check]\n{}", sh(MARK)),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("tasks/2-impl/bad.md:3: frontmatter is not valid YAML")
        .says("waiting  4-final/merge: waits on phase 3-check");
    assert!(!t.exists("markers"), "4-final/merge ran");
}

/// A task folder made during the run that cannot be read holds its phase's
/// gate, said once, until it can be: then its tasks join and run, and what
/// waits on the phase after them.
#[test]
fn a_task_folder_that_cannot_be_read_holds_its_phase_until_it_can() {
    if !as_root() {
        return;
    }
    let t = Tree::new();
    t.task("2-impl/seed", &sh("true"));
    // Each in a phase the next waits on: the folders are looked at before
    // each end (a phase gate may open), the second while it is unread.
    t.task(
        "1-a/lock",
        &sh(r#"mkdir -p tasks/2-impl/sub && printf -- '---\ncommand: mkdir -p made\n---\n' > tasks/2-impl/sub/t.md && chmod 000 tasks/2-impl/sub"#),
    );
    t.task("1-b/between", "dependencies: [1-a]\ncommand: \"true\"");
    t.task(
        "1-c/unlock",
        &format!("dependencies: [1-b]\n{}", sh("chmod 755 tasks/2-impl/sub")),
    );
    t.task(
        "3-final/merge",
        &format!("dependencies: [2-impl]\n{}", sh(MARK)),
    );
    let run = t.run_as_nobody(&["orchestrate"]);
    let said = run.said();
    assert_eq!(run.code, 0, "{said}");
    assert_eq!(said.matches("cannot read folder").count(), 1, "{said}");
    assert!(t.exists("made"), "{said}");
    assert!(t.exists("markers/3-final_merge"), "{said}");
}

/// A task file right under `tasks/`, made during the run, is in no phase:
/// it is said, and holds no phase's gate (it held the next one by name).
#[test]
fn a_task_file_made_right_under_tasks_holds_no_gate() {
    let t = Tree::new();
    t.task("1-a/x", &sh("printf 'notes\\n' > tasks/1-notes.md"));
    t.task("2-b/u", "dependencies: [1-a/x]\ncommand: \"true\"");
    t.task("3-c/w", &format!("dependencies: [2-b]\n{}", sh(MARK)));
    t.run(&["orchestrate"]).code(1).says("tasks/1-notes.md: ");
    assert_eq!(t.launches("3-c/w"), 1);
}

/// A folder that cannot be read holds the gates from the next phase by
/// name while its own has no task; a phase that joins between (before it,
/// by name) is held too: its gate includes the folder.
#[test]
fn a_hold_moves_to_a_phase_that_joins_before_the_one_it_held() {
    if !as_root() {
        return;
    }
    let t = Tree::new();
    // Each end opens a phase gate something waits on: the folders are
    // looked at before it, the unreadable one before 2-p joins.
    t.task(
        "1-a/x",
        &sh(r#"mkdir -p tasks/2-new && printf -- '---\ncommand: "true"\n---\n' > tasks/2-new/h.md && chmod 000 tasks/2-new"#),
    );
    t.task(
        "1-b/x2",
        &format!(
            "dependencies: [1-a]\n{}",
            sh(r#"mkdir -p tasks/2-p tasks/2-q && printf -- '---\ncommand: "true"\n---\n' > tasks/2-p/y.md && printf -- '---\ndependencies: [2-p]\ncommand: mkdir -p markers\n---\n' > tasks/2-q/w.md"#)
        ),
    );
    t.task("3-c/z", "dependencies: [1-b]\ncommand: \"true\"");
    let run = t.run_as_nobody(&["orchestrate"]);
    let said = run.said();
    assert_eq!(run.code, 1, "{said}");
    assert!(said.contains("tasks/2-new: cannot read folder"), "{said}");
    assert!(
        said.contains("waiting  2-q/w: waits on phase 2-p"),
        "{said}"
    );
    assert!(!t.exists("markers"), "2-q/w ran: {said}");
}

/// An invalid task file in a folder made unreadable for a while is not
/// taken for gone: it still holds its phase's gate once the folder can be
/// read again.
#[test]
fn an_invalid_file_in_a_folder_made_unreadable_still_holds_its_gate() {
    if !as_root() {
        return;
    }
    let t = Tree::new();
    t.task("2-b/u", &sh("true"));
    t.task(
        "1-p1/x",
        &sh(r#"printf -- '---\ncommand: [unclosed\n---\n' > tasks/2-b/bad.md"#),
    );
    t.task(
        "1-p2/hide",
        &format!("dependencies: [1-p1]\n{}", sh("chmod 000 tasks/2-b")),
    );
    t.task(
        "1-p3/show",
        &format!("dependencies: [1-p2]\n{}", sh("chmod 755 tasks/2-b")),
    );
    t.task("1-p4/after", "dependencies: [1-p3]\ncommand: \"true\"");
    t.task("3-c/w", &format!("dependencies: [2-b]\n{}", sh(MARK)));
    let run = t.run_as_nobody(&["orchestrate"]);
    let said = run.said();
    assert_eq!(run.code, 1, "{said}");
    assert!(said.contains("invalid  tasks/2-b/bad.md:3:"), "{said}");
    assert_eq!(t.launches("3-c/w"), 0, "{said}");
}

/// A task whose folder is made unreadable before it starts is not taken
/// for removed: it was read, and runs.
#[test]
fn a_task_in_a_folder_made_unreadable_still_runs() {
    if !as_root() {
        return;
    }
    let t = Tree::new();
    t.task("1-a/hide", &sh("chmod 000 tasks/2-b"));
    t.task("2-b/v", &format!("dependencies: [1-a/hide]\n{}", sh(MARK)));
    t.task(
        "3-show/x",
        &format!("dependencies: [2-b/v]\n{}", sh("chmod 755 tasks/2-b")),
    );
    let run = t.run_as_nobody(&["orchestrate"]);
    let said = run.said();
    assert!(!said.contains("was removed"), "{said}");
    assert_eq!(t.launches("2-b/v"), 1, "{said}");
}

/// A sub-folder of a folder made unreadable for a while is not taken for
/// gone: a task file written in it once the folder can be read is found.
#[test]
fn a_folder_under_one_made_unreadable_is_looked_at_again() {
    if !as_root() {
        return;
    }
    let t = Tree::new();
    t.task("1-a/hide", &sh("chmod 000 tasks/2-b"));
    t.task(
        "1-p/show",
        &format!(
            "dependencies: [1-a]\n{}",
            sh(r#"chmod 755 tasks/2-b && printf -- '---\ncommand: mkdir -p found\n---\n' > tasks/2-b/sub/u.md"#)
        ),
    );
    t.task(
        "2-b/sub/t",
        &format!("dependencies: [1-p/show]\n{}", sh(MARK)),
    );
    // Not changed moments ago: the run reads it once, not at each look.
    let touched = std::process::Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(t.path("tasks/2-b"))
        .status()
        .unwrap();
    assert!(touched.success());
    let run = t.run_as_nobody(&["orchestrate"]);
    let said = run.said();
    assert_eq!(run.code, 0, "{said}");
    assert!(said.contains("found    2-b/sub/u"), "{said}");
    assert!(t.exists("found"), "{said}");
    assert_eq!(t.launches("2-b/sub/t"), 1, "{said}");
}

/// A task dropped when its file went, blocked by a failure meanwhile,
/// stays blocked when its file comes back (it went back to waiting, its
/// status still saying blocked).
#[test]
fn a_dropped_task_blocked_meanwhile_stays_blocked_when_its_file_is_back() {
    let t = Tree::new();
    t.task("1-a/r", &sh("rm tasks/2-b/t.md"));
    t.task("1-fail/f", "dependencies: [1-a]\ncommand: exit 1");
    t.task(
        "1-put/r2",
        &format!(
            "dependencies: [1-a/r]\n{}",
            sh(r#"until grep -qs '"failed"' workspace/status/1-fail/f.json; do sleep 0.01; done; printf -- '---\ndependencies: [1-fail/f]\ncommand: mkdir -p markers\n---\n' > tasks/2-b/t.md"#)
        ),
    );
    t.task("2-b/t", &format!("dependencies: [1-fail/f]\n{}", sh(MARK)));
    let run = t.run(&["orchestrate"]);
    let said = run.said();
    assert_eq!(run.code, 1, "{said}");
    assert!(said.contains("its task file is back"), "{said}");
    assert_eq!(t.state("2-b/t"), "blocked", "{said}");
    assert!(said.contains("1 blocked"), "{said}");
    assert!(!t.exists("markers"), "{said}");
}

/// A task file whose name is not UTF-8, made during the run, is said, and
/// keeps its phase's gate closed as an invalid one does.
#[test]
fn a_generated_task_whose_name_is_not_utf8_keeps_its_phase_gate_closed() {
    let t = generating(
        r#"printf -- '---\ncommand: exit 0\n---\n' > "tasks/2-impl/b$(printf '\377').md""#,
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("tasks/2-impl/b\u{fffd}.md: the path is not valid UTF-8")
        .says("waiting  3-final/merge: waits on phase 2-impl");
    assert!(!t.exists("markers"), "3-final/merge ran");
}

/// A run whose `1-plan/writer` waits for the file `go`, and whose
/// `1-plan/scanner` ends once `tasks/2-impl/<empty>.md` exists (its end
/// makes the run look at the task folders); `3-final/merge` waits on the
/// phase 2-impl. Once the writer runs, `first` is done, and `<empty>.md`
/// made empty; returned once the run found it so: the run, with its
/// output in `out.txt`.
fn run_that_finds_an_empty_task_file(
    t: &Tree,
    empty: &str,
    first: impl FnOnce(),
) -> std::process::Child {
    let file = t.path(&format!("tasks/2-impl/{empty}.md"));
    let wait_for_file = |path: &std::path::Path| {
        sh(&format!(
            "until [ -e {} ]; do sleep 0.01; done",
            path.display()
        ))
    };
    t.task("1-plan/writer", &wait_for_file(&t.path("go")));
    t.task("1-plan/scanner", &wait_for_file(&file));
    std::fs::create_dir_all(t.path("tasks/2-impl")).unwrap();
    t.task(
        "3-final/merge",
        &format!("dependencies: [2-impl]\n{}", sh(MARK)),
    );
    let out = std::fs::File::create(t.path("out.txt")).unwrap();
    let run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the writer's start", || {
        t.read("out.txt").contains("start    1-plan/writer")
    });
    first();
    std::fs::write(&file, "").unwrap();
    let said = format!("error: tasks/2-impl/{empty}.md: the task file is empty");
    wait_for("the empty file read", || t.read("out.txt").contains(&said));
    run
}

/// The run of `run_that_finds_an_empty_task_file`, let go on to its end:
/// its exit code, and what it said.
fn let_it_end(t: &Tree, mut run: std::process::Child) -> (Option<i32>, String) {
    std::fs::write(t.path("go"), "").unwrap();
    let code = run.wait().unwrap().code();
    (code, t.read("out.txt"))
}

/// A task file found while it is still being written (made empty, then
/// filled) is read again once it changes: its phase's gate is not held
/// for the whole run by a file that was only half there.
#[test]
fn a_task_file_found_half_written_is_read_again_once_written() {
    let t = Tree::new();
    t.task("2-impl/seed", &sh("true"));
    let run = run_that_finds_an_empty_task_file(&t, "late", || {});
    t.write("tasks/2-impl/late.md", "---\ncommand: \"true\"\n---\n");
    let (code, said) = let_it_end(&t, run);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("found    2-impl/late"), "{said}");
    assert!(!said.contains("invalid"), "{said}");
    assert_eq!(t.state("2-impl/late"), "completed");
    assert!(t.exists("markers/3-final_merge"), "{said}");
}

/// A file generated with a dependency on one found invalid waits with it:
/// once that one is written, both join, in the same look.
#[test]
fn a_task_left_out_for_a_half_written_dependency_joins_with_it() {
    let t = Tree::new();
    // Written before x is found, and old as far as its clock says: only x
    // changes after.
    let run = run_that_finds_an_empty_task_file(&t, "x", || {
        t.write(
            "tasks/2-impl/y.md",
            "---\ndependencies: [2-impl/x]\ncommand: \"true\"\n---\n",
        );
        let touched = std::process::Command::new("touch")
            .args(["-d", "1 minute ago"])
            .arg(t.path("tasks/2-impl/y.md"))
            .status()
            .unwrap();
        assert!(touched.success());
    });
    t.write("tasks/2-impl/x.md", "---\ncommand: \"true\"\n---\n");
    let (code, said) = let_it_end(&t, run);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(t.state("2-impl/y"), "completed", "{said}");
    assert!(t.exists("markers/3-final_merge"), "{said}");
}

/// A generated file that closes a dependency cycle with a task of the
/// graph is the one said invalid and left out; the graph's task, written
/// again later, is not added twice.
#[test]
fn a_generated_file_that_closes_a_cycle_is_left_out_alone() {
    let t = Tree::new();
    let gen = "mkdir -p tasks/2-b && printf -- '---\\ndependencies: [3-c/e]\\ncommand: \\\"true\\\"\\n---\\n' > tasks/2-b/.n && mv tasks/2-b/.n tasks/2-b/n.md && echo '# edited' >> tasks/3-c/e.md";
    t.task("1-a/gen", &sh(gen));
    std::fs::create_dir_all(t.path("tasks/2-b")).unwrap();
    t.task("3-c/e", &format!("dependencies: [2-b]\n{}", sh(MARK)));
    t.task("3-c/f", &sh(MARK));
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says("tasks/2-b/n.md:2: dependency cycle: 2-b/n -> 3-c/e -> phase 2-b -> 2-b/n");
    assert!(!run.stdout.contains("found    3-c/e"), "{}", run.stdout);
    assert_eq!(t.launches("3-c/e"), 0);
    assert_eq!(t.launches("3-c/f"), 1);
}

/// The scan a task's end puts off is made at once by the end that may
/// open the phase's gate: here the phase's last task ends right after the
/// generator, and the next phase still waits for the generated task.
#[test]
fn the_end_that_opens_a_gate_finds_the_tasks_generated_just_before() {
    let t = Tree::new();
    t.config("max_concurrent_agents: 3\nmax_memory_gb: 1\n");
    let generate = r#"printf -- '---\ncommand: sleep 0.2; date +%%s%%N > $TASK_OUTPUT_DIR/end\n---\n' > tasks/1-p/.new && mv tasks/1-p/.new tasks/1-p/new.md && touch go"#;
    t.task("1-p/gen", &sh(generate));
    t.task("1-p/last", &sh("while [ ! -f go ]; do sleep 0.005; done"));
    t.task(
        "2-q/after",
        &format!(
            "dependencies: [1-p]\n{}",
            sh("date +%s%N > $TASK_OUTPUT_DIR/start")
        ),
    );
    t.run(&["orchestrate"]).code(0).says("Summary: 4 completed");
    let ns = |rel: &str| t.read(rel).trim().parse::<u128>().unwrap();
    assert!(
        ns("workspace/outputs/1-p/new/end") <= ns("workspace/outputs/2-q/after/start"),
        "2-q/after started before the generated 1-p/new ended"
    );
}

/// A phase's gate that nothing waits on yet still counts the tasks generated
/// into the phase with one that waits on it: here the generator writes a
/// task of its own phase, then one that depends on the phase, which starts
/// only once the first has completed. The generator starts as the folders
/// are scanned (its dependency's end opens a gate something waits on), so
/// its end, a few milliseconds later, puts the next scan off: the gate
/// must not open meanwhile.
#[test]
fn a_gate_nothing_waited_on_counts_the_tasks_generated_with_what_waits_on_it() {
    let t = Tree::new();
    t.task("0-a/opener", &sh("true"));
    t.task(
        "9-z/after-a",
        &format!("dependencies: [0-a]\n{}", sh("true")),
    );
    let generate = r#"printf -- '---\ncommand: sleep 0.3; touch $WORKSPACE/extra-done\n---\n' > tasks/1-p/.extra && mv tasks/1-p/.extra tasks/1-p/extra.md
mkdir -p tasks/2-q
printf -- '---\ndependencies: [1-p]\ncommand: test -e $WORKSPACE/extra-done\n---\n' > tasks/2-q/.check && mv tasks/2-q/.check tasks/2-q/check.md"#;
    t.task(
        "1-p/gen",
        &format!("dependencies: [0-a/opener]\n{}", sh(generate)),
    );
    t.run(&["orchestrate"]).code(0).says("Summary: 5 completed");
}

/// A task that joins phases whose gates were open (what waits on them has
/// started) is said to, once, naming them; a phase nothing waits on is not
/// named (its gate let nothing start).
#[test]
fn a_task_that_joins_after_its_phases_were_complete_is_said_once() {
    let t = Tree::new();
    t.task("1-a/x", &sh("true"));
    t.task("2-b/y", &sh("true"));
    t.task("3-c/z", &sh("true"));
    let generate = r#"printf -- '---\ncommand: "true"\n---\n' > tasks/1-a/.late && mv tasks/1-a/.late tasks/1-a/late.md"#;
    t.task(
        "4-d/gen",
        &format!("dependencies: [1-a/x, 2-b/y, 3-c/z]\n{}", sh(generate)),
    );
    t.task(
        "5-e/after-a",
        &format!("dependencies: [1-a]\n{}", sh("true")),
    );
    t.task(
        "5-e/after-c",
        &format!("dependencies: [3-c]\n{}", sh("true")),
    );
    t.run(&["orchestrate", "-j", "1"])
        .code(0)
        .says("warning: 1-a/late appeared after phases 1-a, 3-c were complete: what waits on them was let start without it")
        .never_says("2-b was");
}

#[test]
fn a_bad_generated_file_does_not_hold_back_the_good_ones() {
    let t = Tree::new();
    let generate = r#"mkdir -p tasks/q
printf -- '---\ncommand: echo ok > $TASK_OUTPUT_DIR/x\n---\n' > tasks/q/.good && mv tasks/q/.good tasks/q/good.md
printf -- '---\ndependencies: [p/nope]\n---\n' > tasks/q/.bad && mv tasks/q/.bad tasks/q/bad.md"#;
    t.task("p/gen", &sh(generate));
    t.run(&["orchestrate"])
        .code(1)
        .says("unknown dependency `p/nope`")
        .says("1 invalid task file");
    assert_eq!(t.state("q/good"), "completed");
}

/// A task generated into a folder a glob input reads, whose task does not
/// wait for it, is refused as it joins, as `validate` refuses it after:
/// the reader started on the new task's output while it failed.
#[test]
fn a_generated_task_a_glob_of_a_task_not_waiting_for_it_can_read_is_refused() {
    let t = Tree::new();
    let generate = r#"mkdir -p tasks/02-g
printf -- '---\noutputs: [out]\ncommand: echo partial > $TASK_OUTPUT_DIR/out; exit 1\n---\n' > tasks/02-g/.x && mv tasks/02-g/.x tasks/02-g/x.md"#;
    t.task("01-p/gen", &sh(generate));
    t.task(
        "03-r/r",
        &format!(
            "dependencies: [01-p/gen]\ninputs: [\"02-g/*/out\"]\n{}",
            sh(MARK)
        ),
    );
    t.run(&["orchestrate"]).code(1).says(
        "input `02-g/*/out` can hold the outputs of 02-g/x, which this task does not wait for",
    );
    assert_eq!(t.launches("03-r/r"), 0);
}

#[test]
fn why_names_a_missing_gate_artifact() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nphases:\n  a: {requires: [01-a/list.json]}\n");
    t.task("01-a/x", &sh("true"));
    t.task("02-b/y", &format!("dependencies: [01-a]\n{}", sh("true")));
    t.run(&["orchestrate", "--task", "01-a/x"]).code(0);
    t.run(&["why", "02-b/y"])
        .code(0)
        .says("its gate needs workspace/outputs/01-a/list.json");
}

/// A task file removed during the run is no task any more: it does not
/// start (what waits on it neither). One renamed runs under its new name
/// only.
#[test]
fn a_task_file_removed_or_renamed_during_the_run_does_not_start() {
    let t = Tree::new();
    t.task("p/a", &sh("while [ ! -e go ]; do sleep 0.01; done"));
    // Each waits on phase p: p/a's end scans the folders before it.
    for id in ["q/removed", "q/renamed"] {
        t.task(id, &format!("dependencies: [p]\n{}", sh(MARK)));
    }
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a to run", || {
        t.exists("workspace/status/p/a.json") && t.state("p/a") == "running"
    });
    std::fs::remove_file(t.path("tasks/q/removed.md")).unwrap();
    std::fs::rename(t.path("tasks/q/renamed.md"), t.path("tasks/q/new-name.md")).unwrap();
    t.write("go", "");
    assert!(run.wait().unwrap().success());
    assert_eq!(t.launches("q/removed"), 0);
    assert_eq!(t.launches("q/renamed"), 0);
    assert_eq!(t.launches("q/new-name"), 1);
    t.run(&["progress"]).code(0).says("Overall: 2/2 completed");
}

/// What names a task whose file was removed during the run waits, and the
/// summary says why: the file went, not a selection.
#[test]
fn what_waits_on_a_removed_task_file_says_so() {
    let t = Tree::new();
    t.task("p/a", &sh("while [ ! -e go ]; do sleep 0.01; done"));
    t.task("q/r", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    t.task("s/d", &format!("dependencies: [q/r]\n{}", sh(MARK)));
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("p/a to run", || {
        t.exists("workspace/status/p/a.json") && t.state("p/a") == "running"
    });
    std::fs::remove_file(t.path("tasks/q/r.md")).unwrap();
    t.write("go", "");
    run.wait().unwrap();
    let out = t.read("out");
    assert!(
        out.contains("s/d: waits on q/r (its task file was removed)"),
        "{out}"
    );
}

/// What waits on a task whose file was removed during the run, and made
/// again invalid, says the file was removed: no selection left it out.
#[test]
fn what_waits_on_a_task_file_removed_then_made_again_invalid_says_so() {
    let t = Tree::new();
    t.task("p/tick", &sh("while [ ! -e tick ]; do sleep 0.01; done"));
    t.task("q/b", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    t.task("r/c", &format!("dependencies: [q/b]\n{}", sh(MARK)));
    let mut run = running_until_go(&t);
    std::fs::remove_file(t.path("tasks/q/b.md")).unwrap();
    t.write("tick", "");
    wait_for("the run to see it gone", || {
        t.read("out.txt").contains("q/b: its task file was removed")
    });
    t.write("tasks/q/b.md", "---\ncommand: [unclosed\n---\n");
    t.write("go", "");
    run.wait().unwrap();
    let out = t.read("out.txt");
    assert!(
        out.contains("r/c: waits on q/b (its task file was removed)"),
        "{out}"
    );
}

/// A phase folder removed or renamed during the run takes its task files
/// with it: none starts from a file that is gone, and a renamed one's
/// tasks run once, under their new ids only.
#[test]
fn a_phase_folder_removed_or_renamed_during_the_run_takes_its_tasks_with_it() {
    let t = Tree::new();
    t.task("p/a", &sh("while [ ! -e go ]; do sleep 0.01; done"));
    for id in ["q/x", "r/y"] {
        t.task(id, &format!("dependencies: [p]\n{}", sh(MARK)));
    }
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a to run", || {
        t.exists("workspace/status/p/a.json") && t.state("p/a") == "running"
    });
    std::fs::remove_dir_all(t.path("tasks/q")).unwrap();
    std::fs::rename(t.path("tasks/r"), t.path("tasks/s")).unwrap();
    t.write("go", "");
    assert!(run.wait().unwrap().success());
    assert_eq!(t.launches("q/x"), 0);
    assert_eq!(t.launches("r/y"), 0);
    assert_eq!(t.launches("s/y"), 1);
    t.run(&["progress"]).code(0).says("Overall: 2/2 completed");
}

/// A tree whose `p/a` runs until the file `go` exists, with what the
/// test adds; the run started, its output in `out.txt`, once `p/a` runs.
fn running_until_go(t: &Tree) -> std::process::Child {
    t.task("p/a", &sh("while [ ! -e go ]; do sleep 0.01; done"));
    let out = std::fs::File::create(t.path("out.txt")).unwrap();
    let run = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("p/a to run", || {
        t.exists("workspace/status/p/a.json") && t.state("p/a") == "running"
    });
    run
}

/// A task file removed during the run holds no phase gate: what waits on
/// the phase runs, as the next run would run it.
#[test]
fn a_task_file_removed_during_the_run_holds_no_phase_gate() {
    let t = Tree::new();
    // `o/tick`'s end may open the gate `p/b` waits on: the folders are
    // looked at before it opens.
    t.task("o/tick", &sh("while [ ! -e tick ]; do sleep 0.01; done"));
    t.task("p/b", &format!("dependencies: [o]\n{}", sh(MARK)));
    t.task("q/d", &format!("dependencies: [p]\n{}", sh(MARK)));
    let mut run = running_until_go(&t);
    std::fs::remove_file(t.path("tasks/p/b.md")).unwrap();
    t.write("tick", "");
    wait_for("the run to see it gone", || {
        t.read("out.txt").contains("p/b: its task file was removed")
    });
    t.write("go", "");
    assert!(run.wait().unwrap().success(), "{}", t.read("out.txt"));
    assert_eq!(t.launches("p/b"), 0);
    assert_eq!(t.launches("q/d"), 1);
}

/// A task awaiting approval to start has not started: its file removed
/// during the run, it is no task any more, as a waiting one is: the run
/// says so, no phase gate waits for it, and the run does not end asking
/// for an approval of a task that is gone.
#[test]
fn a_task_file_removed_while_it_awaits_approval_to_start_holds_no_gate() {
    let t = Tree::new();
    t.task("o/tick", &sh("while [ ! -e tick ]; do sleep 0.01; done"));
    t.task("q/b", &format!("approve: before\n{}", sh(MARK)));
    t.task("q/c", &sh(MARK));
    t.task("r/d", &format!("dependencies: [q]\n{}", sh(MARK)));
    let mut run = running_until_go(&t);
    wait_for("q/b to await approval", || {
        t.read("out.txt").contains("awaits approval to start")
    });
    std::fs::remove_file(t.path("tasks/q/b.md")).unwrap();
    t.write("tick", "");
    wait_for("the run to see it gone", || {
        t.read("out.txt").contains("q/b: its task file was removed")
    });
    t.write("go", "");
    assert!(run.wait().unwrap().success(), "{}", t.read("out.txt"));
    assert_eq!((t.launches("q/b"), t.launches("r/d")), (0, 1));
}

/// A result awaiting approval whose task file is removed during the run
/// no longer awaits it (`approve` knows no such task), and what names it
/// waits on; its file back, it awaits approval again, and does not run
/// again.
#[test]
fn a_result_awaiting_approval_whose_file_is_removed_awaits_none_until_it_is_back() {
    let t = Tree::new();
    t.task("o/tick", &sh("while [ ! -e tick ]; do sleep 0.01; done"));
    t.task("o/tock", &sh("while [ ! -e tock ]; do sleep 0.01; done"));
    t.task("q/b", &format!("approve: after\n{}", sh(MARK)));
    t.task("q/c", &format!("dependencies: [q/b]\n{}", sh(MARK)));
    t.task("r/d", &format!("dependencies: [q]\n{}", sh(MARK)));
    t.config("max_concurrent_agents: 4\nmax_memory_gb: 1\n");
    let text = t.read("tasks/q/b.md");
    let mut run = running_until_go(&t);
    wait_for("q/b's result to await approval", || {
        t.read("out.txt").contains("its result awaits approval")
    });
    std::fs::remove_file(t.path("tasks/q/b.md")).unwrap();
    t.write("tick", "");
    wait_for("the run to see it gone", || {
        t.read("out.txt").contains(
            "q/b: its task file was removed: its result no longer awaits approval in this run",
        )
    });
    t.write("tasks/q/b.md", &text);
    t.write("tock", "");
    wait_for("the run to see it back", || {
        t.read("out.txt")
            .contains("its task file is back: its result awaits approval")
    });
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(4), "{}", t.read("out.txt"));
    assert_eq!(
        (t.launches("q/b"), t.launches("q/c"), t.launches("r/d")),
        (1, 0, 0)
    );
    assert_eq!(t.state("q/b"), "awaiting_approval");
}

/// A task file removed, then made again, during the run: it joins again,
/// and runs.
#[test]
fn a_task_file_made_again_during_the_run_joins_again() {
    let t = Tree::new();
    t.task("p/tick", &sh("while [ ! -e tick ]; do sleep 0.01; done"));
    t.task("q/b", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    let text = t.read("tasks/q/b.md");
    let mut run = running_until_go(&t);
    std::fs::remove_file(t.path("tasks/q/b.md")).unwrap();
    t.write("tick", "");
    wait_for("the run to see it gone", || {
        t.read("out.txt").contains("q/b: its task file was removed")
    });
    t.write("tasks/q/b.md", &text);
    t.write("go", "");
    assert!(run.wait().unwrap().success(), "{}", t.read("out.txt"));
    assert!(t.read("out.txt").contains("its task file is back"));
    assert_eq!(t.launches("q/b"), 1);
}

/// A phase folder linked in (shared between repositories) whose folder
/// goes during the run takes its tasks with it, and brings them back when
/// it comes back (moved away a moment): the link itself, unchanged,
/// changes nothing in the folder it is in.
#[test]
fn a_linked_phase_folder_that_comes_back_brings_its_tasks_back() {
    let t = Tree::new();
    t.task("p/tick", &sh("while [ ! -e tick ]; do sleep 0.01; done"));
    t.write(
        "shared/b.md",
        &format!("---\ndependencies: [p/a]\n{}\n---\n", sh(MARK)),
    );
    std::os::unix::fs::symlink(t.path("shared"), t.path("tasks/q")).unwrap();
    // `tasks/` changed long ago: a folder changed moments ago is read
    // again anyway.
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::open(t.path("tasks"))
        .and_then(|tasks| tasks.set_modified(long_ago))
        .unwrap();
    let mut run = running_until_go(&t);
    std::fs::rename(t.path("shared"), t.path("shared.away")).unwrap();
    t.write("tick", "");
    wait_for("the run to see it gone", || {
        t.read("out.txt").contains("q/b: its task file was removed")
    });
    std::fs::rename(t.path("shared.away"), t.path("shared")).unwrap();
    t.write("go", "");
    assert!(run.wait().unwrap().success(), "{}", t.read("out.txt"));
    assert!(t.read("out.txt").contains("its task file is back"));
    assert_eq!(t.launches("q/b"), 1);
}

/// `tasks/` itself gone a moment during the run (a `git checkout` of a
/// branch without it, and back; a copy put in its place) brings its tasks
/// back when it comes back, and a task file made in it after is found.
/// The run stopped looking at it: the task it dropped never ran, unsaid
/// in the summary (exit 0), and no task file made since joined.
#[test]
fn the_tasks_folder_gone_a_moment_brings_its_tasks_back() {
    let t = Tree::new();
    t.task("p/tick", &sh("while [ ! -e tick ]; do sleep 0.01; done"));
    t.task("q/b", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    let mut run = running_until_go(&t);
    std::fs::rename(t.path("tasks"), t.path("tasks.away")).unwrap();
    t.write("tick", "");
    wait_for("the run to see it gone", || {
        t.read("out.txt").contains("q/b: its task file was removed")
    });
    std::fs::rename(t.path("tasks.away"), t.path("tasks")).unwrap();
    t.task("q/c", &sh(MARK));
    t.write("go", "");
    assert!(run.wait().unwrap().success(), "{}", t.read("out.txt"));
    assert!(t.read("out.txt").contains("its task file is back"));
    assert_eq!(t.launches("q/b"), 1);
    assert_eq!(t.launches("q/c"), 1);
}

/// A task file removed during the run and made again invalid is said to be
/// invalid, and its task waits; once valid it joins again, said to run as
/// the run first read it when it changed meanwhile.
#[test]
fn a_task_file_made_again_invalid_is_said_and_joins_once_valid() {
    let t = Tree::new();
    t.task("p/tick", &sh("while [ ! -e tick ]; do sleep 0.01; done"));
    t.task("p/tock", &sh("while [ ! -e tock ]; do sleep 0.01; done"));
    t.task("q/b", &format!("dependencies: [p/a]\n{}", sh(MARK)));
    let text = t.read("tasks/q/b.md");
    let mut run = running_until_go(&t);
    std::fs::remove_file(t.path("tasks/q/b.md")).unwrap();
    t.write("tick", "");
    wait_for("the run to see it gone", || {
        t.read("out.txt").contains("q/b: its task file was removed")
    });
    t.write("tasks/q/b.md", "---\ncommand: [unclosed\n---\n");
    t.write("tock", "");
    wait_for("the run to read it invalid", || {
        t.read("out.txt")
            .contains("error: tasks/q/b.md:3: frontmatter is not valid YAML")
    });
    t.write(
        "tasks/q/b.md",
        &text.replacen("---\n", "---\ntitle: changed\n", 1),
    );
    t.write("go", "");
    assert!(run.wait().unwrap().success(), "{}", t.read("out.txt"));
    let said = t.read("out.txt");
    assert!(said.contains("its task file is back"), "{said}");
    assert!(
        said.contains("q/b: its task file changed while it was gone: this run keeps the task as it first read it"),
        "{said}"
    );
    assert_eq!(t.launches("q/b"), 1);
}

/// A task file whose name is not UTF-8, renamed during the run: its
/// problem is past, and its phase's gate opens once the renamed task ran.
#[test]
fn a_task_name_that_was_not_utf8_renamed_lets_its_phase_gate_open() {
    use std::os::unix::ffi::OsStrExt;
    let t = Tree::new();
    t.task("p/tick", &sh("while [ ! -e tick ]; do sleep 0.01; done"));
    t.task("q/d", &format!("dependencies: [p]\n{}", sh(MARK)));
    let mut run = running_until_go(&t);
    let bad = t
        .path("tasks/p")
        .join(std::ffi::OsStr::from_bytes(b"e\xff.md"));
    std::fs::write(&bad, format!("---\n{}\n---\n", sh(MARK))).unwrap();
    t.write("tick", "");
    wait_for("the run to say it", || {
        t.read("out.txt").contains("the path is not valid UTF-8")
    });
    std::fs::rename(&bad, t.path("tasks/p/e.md")).unwrap();
    t.write("go", "");
    assert!(run.wait().unwrap().success(), "{}", t.read("out.txt"));
    assert_eq!(t.launches("p/e"), 1);
    assert_eq!(t.launches("q/d"), 1);
}

/// On a file system whose times are whole seconds, a task file generated
/// into a folder in the same second as one the run has found since joins
/// the run: the folder's time, unchanged, does not tell it, so a folder
/// changed within the last two seconds is read again.
#[test]
fn a_task_file_generated_in_the_second_of_the_last_scan_joins_on_a_coarse_clock() {
    let t = Tree::new();
    let Some(_disk) = CoarseClockDisk::mount(&t.path("tasks/q")) else {
        return;
    };
    t.task("q/first", &sh(MARK));
    t.write("g.md", &format!("---\n{}\n---\n", sh(MARK)));
    // g1 is written a tenth of a second into a second, and found; g2 in
    // that same second, once g1 started (the run read the folder then).
    t.task(
        "p/gen1",
        &sh("while [ \"$(date +%N | cut -c1)\" != 1 ]; do sleep 0.005; done; cp g.md tasks/q/g1.md; date +%s > g1.second"),
    );
    t.task(
        "p/gen2",
        &sh("while [ ! -e markers/q_g1 ]; do sleep 0.005; done; cp g.md tasks/q/g2.md; date +%s > g2.second"),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        t.read("g1.second"),
        t.read("g2.second"),
        "the test needs both written within one second (the machine stalled?)"
    );
    assert_eq!((t.launches("q/g1"), t.launches("q/g2")), (1, 1));
}

/// A phase folder made during the run with the key of another (`4-plan`
/// beside `1-plan`), which `validate` and a run's start refuse, is
/// refused by the run too: its task is said invalid, naming both folders
/// and what to do, and does not run. It ran, sharing the other folder's
/// settings, while every view said the definitions were invalid.
#[test]
fn a_phase_folder_made_during_the_run_with_another_s_key_is_refused() {
    let t = Tree::new();
    t.task("1-plan/gen", &t.generating("4-plan/k", &sh("touch ran")));
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says(
            "tasks/4-plan/k.md: its phase folder tasks/4-plan is phase `plan`, as tasks/1-plan is",
        )
        .says("rename it");
    assert!(!t.exists("ran"), "{}", run.said());
    assert_eq!(t.state("1-plan/gen"), "completed");
    t.run(&["validate"])
        .code(2)
        .says("tasks/1-plan and tasks/4-plan are both phase `plan`");
}

/// A phase folder made during the run whose key an empty folder has
/// (`4-a` beside an empty `1-a`) is refused by neither the run nor its
/// start: a folder with no task file is no phase. The run left its task
/// out, said invalid, and the next run's start took it.
#[test]
fn a_phase_folder_made_during_the_run_beside_an_empty_folder_of_its_key_runs() {
    let t = Tree::new();
    std::fs::create_dir_all(t.path("tasks/1-a")).unwrap();
    t.task("0-p/gen", &t.generating("4-a/late", &sh("touch ran")));
    let run = t.run(&["orchestrate"]);
    run.code(0);
    assert!(t.exists("ran"), "{}", run.said());
    t.run(&["validate"]).code(0);
}

/// An empty phase folder a task depends on (`4-a`, beside `1-a` with its
/// tasks) is no phase at the start; the first task generated into it
/// during the run gives it the key `1-a` has, and is refused as in a
/// folder new to the run. It ran, and the next run's start refused the
/// definitions (`both phase a`).
#[test]
fn a_task_generated_into_a_depended_on_folder_of_another_s_key_is_refused() {
    let t = Tree::new();
    t.task("1-a/x", &sh("true"));
    std::fs::create_dir_all(t.path("tasks/4-a")).unwrap();
    t.task("5-z/dep", &format!("dependencies: [4-a]\n{}", sh("true")));
    t.task("0-p/gen", &t.generating("4-a/late", &sh("touch ran")));
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says("tasks/4-a/late.md: its phase folder tasks/4-a is phase `a`, as tasks/1-a is");
    assert!(!t.exists("ran"), "{}", run.said());
}

/// A task file found during the run that asks for more than the ceilings
/// (`max_memory_gb`, `max_cpu_per_agent`), which `validate` and a run's
/// start refuse, is refused by the run too, said with its file and line.
/// It ran, its cgroup given what it asked for, past the ceiling.
#[test]
fn a_task_found_during_the_run_asking_past_the_ceilings_is_refused() {
    let t = Tree::new();
    let big = format!("resources: {{ memory_gb: 4 }}\n{}", sh("touch ran"));
    t.task("1-plan/gen", &t.generating("1-plan/big", &big));
    let run = t.run(&["orchestrate"]);
    run.code(1).says(
        "tasks/1-plan/big.md:2: resources.memory_gb: 4 is more than max_memory_gb (0.25) in tasks/orchestrator.yaml: ask for less, or raise the ceiling",
    );
    assert!(!t.exists("ran"), "{}", run.said());
}

/// A task file found during the run whose program is not there (a run's
/// start refuses it, exit 2, as `validate` does) fails as it starts,
/// saying what to do as that check does. It said only `No such file or
/// directory (os error 2)`.
#[test]
fn a_task_found_during_the_run_whose_program_is_missing_says_what_to_do() {
    let t = Tree::new();
    let missing = "command: [no-such-agent-here, --go]";
    t.task("1-plan/gen", &t.generating("1-plan/late", missing));
    t.run(&["orchestrate"]).code(1).says(
        "cannot start `no-such-agent-here`: No such file or directory (os error 2): it is not on PATH: install it or fix the name",
    );
    t.run(&["validate"])
        .code(2)
        .says("`no-such-agent-here` (the task's `command`, used by 1-plan/late) is not on PATH: install it or fix the name");
}

/// A task file that is a link to nothing is said so, with what to do, by
/// a run that finds it and by `validate`: the run passed over it in
/// silence (exit 0), and `validate` said only `No such file or directory
/// (os error 2)` of a file it had listed.
#[test]
fn a_task_file_linked_to_nothing_is_said_so() {
    let t = Tree::new();
    t.task("p/gen", &sh("ln -s nowhere.md \"$TASKS_DIR/p/link.md\""));
    let said = "tasks/p/link.md: cannot read task file: a link to nothing (nowhere.md): fix the link, or remove it";
    t.run(&["orchestrate"]).code(1).says(said);
    t.run(&["validate"]).code(2).says(said);
}

/// A task file written while the graph runs joins when a task ends, also
/// one that failed: it waited for the next task to complete, its slot
/// idle meanwhile, while `next` said it would start now (here, forever:
/// the task that completes next waits for it to run).
#[test]
fn a_task_file_found_as_a_task_fails_starts_without_waiting_for_a_success() {
    let t = Tree::new();
    // Bounded: without p/late it times out, and fails.
    t.task(
        "p/hold",
        &format!(
            "timeout: 30s\n{}",
            sh("while [ ! -f markers/late ]; do sleep 0.02; done")
        ),
    );
    let generate = t.generating("p/late", &sh("mkdir -p markers && touch markers/late"));
    let script: String = serde_json::from_str(generate.strip_prefix("command: ").unwrap()).unwrap();
    t.task("p/gen", &sh(&format!("{script} && exit 3")));
    let run = t.run(&["orchestrate"]);
    run.code(1).says("found    p/late");
    assert_eq!(t.state("p/late"), "completed", "{}", run.said());
    assert_eq!(t.state("p/hold"), "completed", "{}", run.said());
}
