//! Invalid definitions: exit 2, nothing launched, every problem reported
//! with its file and line.

use crate::tree::*;

/// Runs `orchestrate` on a tree and expects exit 2 with each of `messages`.
#[track_caller]
fn check(setup: impl FnOnce(&Tree), messages: &[&str]) {
    let t = Tree::new();
    t.task(
        "p/ok",
        &format!("command: {}", serde_json::to_string(MARK).unwrap()),
    );
    setup(&t);
    let run = t.run(&["orchestrate"]);
    run.code(2);
    for message in messages {
        run.says(message);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(t.launches("p/ok"), 0, "something was launched");
}

/// A config value given with a capital (`executor: Slurm`) is suggested
/// its spelling, as a misspelt key is: it was only told the choices.
#[test]
fn a_config_value_near_a_choice_is_suggested_it() {
    check(
        |t| t.config("executor: Slurm"),
        &["tasks/orchestrator.yaml:1: `executor`: must be `local` or `slurm`, found `Slurm`: did you mean `slurm`?"],
    );
}

/// `phases: []` (an empty list for the mapping of phase settings) is said
/// as the config's other wrong values are, `key`: what it must be, and
/// how to fix it.
#[test]
fn an_empty_list_of_phases_is_said_with_its_fix() {
    check(
        |t| t.config("phases: []"),
        &["tasks/orchestrator.yaml:1: `phases`: must be a mapping of `key: value` lines, found an empty list: remove the line, or write `phases: {}`"],
    );
}

/// A dependency written as the path of the task's file names its id.
#[test]
fn a_dependency_written_as_a_file_names_the_task_s_id() {
    for written in ["p/ok.md", "tasks/p/ok.md"] {
        check(
            |t| t.task("p/b", &format!("title: b\ndependencies: [{written}]")),
            &[&format!("tasks/p/b.md:3: unknown dependency `{written}`: did you mean `p/ok`? (a task's id is its file's path under tasks/, without `.md`)")],
        );
    }
}

/// A glob input whose task part is a pattern, or a folder of task folders,
/// names no producer to wait for: one that can hold the outputs of tasks
/// the task does not wait for is refused (it started on a failing task's
/// partial output). Waiting for them, or coming before them, it is fine.
#[test]
fn a_glob_input_that_can_match_tasks_it_does_not_wait_for_is_refused() {
    check(
        |t| {
            t.task("a/p1", "outputs: [out]");
            t.task("a/p2", "outputs: [out]");
            t.task("a/other", "outputs: [log.txt]");
            t.task("b/c", "title: c\ninputs: [\"a/*/out\"]");
            t.task("b/d", "title: d\ndependencies: [a/p1]\ninputs: [\"a/*/out\"]");
            t.task("b/e", "title: e\ninputs: [a]");
        },
        &[
            "tasks/b/c.md:3: input `a/*/out` can hold the outputs of a/p1, a/p2, which this task does not wait for: it could start on an output being written, or left by a failure; add `a/p1` (or its phase, `a`) to its `dependencies`",
            "tasks/b/d.md:4: input `a/*/out` can hold the outputs of a/p2, which",
            "tasks/b/e.md:3: input `a` can hold the outputs of a/other, a/p1, a/p2, which",
        ],
    );
    // A pattern that names an output's folder, or the task's own.
    check(
        |t| {
            t.task("a/p", "outputs: [res/x.json]");
            t.task("b/f", "title: f\ninputs: [\"a/*/res\"]");
            t.task("b/g", "title: g\ninputs: [\"a/*\"]");
            t.task("b/h", "title: h\ninputs: [\"?\"]");
        },
        &[
            "tasks/b/f.md:3: input `a/*/res` can hold the outputs of a/p, which",
            "tasks/b/g.md:3: input `a/*` can hold the outputs of a/p, which",
            "tasks/b/h.md:3: input `?` can hold the outputs of a/p, which",
        ],
    );
    let t = Tree::new();
    t.task(
        "a/first",
        &format!(
            "outputs: [out]\n{}",
            sh("echo first > $TASK_OUTPUT_DIR/out")
        ),
    );
    // After one of them and before the others, and after them all: fine.
    t.task(
        "a/mid",
        &format!(
            "dependencies: [a/first]\ninputs: [\"a/*/out\"]\n{}",
            sh(MARK)
        ),
    );
    let writes = format!(
        "dependencies: [a/mid]\noutputs: [out]\n{}",
        sh("echo partial > $TASK_OUTPUT_DIR/out; exit 1")
    );
    t.task("a/p1", &writes);
    t.task("a/p2", &writes);
    t.task(
        "b/c",
        &format!("dependencies: [a]\ninputs: [\"a/*/out\"]\n{}", sh(MARK)),
    );
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.launches("a/mid"), 1);
    assert_eq!(t.launches("b/c"), 0, "it started on a failed output");
    assert_eq!(t.state("b/c"), "blocked");
}

/// Thousands of glob inputs, each of a shape the outputs are looked up by
/// (the text before the wildcard, the end, a folder, a leading part, `**`,
/// `[...]`), and as many of one task's thousands of outputs: each that can
/// hold another task's declared output names that task alone, and the
/// others are not said.
#[test]
fn thousands_of_glob_inputs_each_name_the_tasks_they_can_hold() {
    let t = Tree::new();
    let n = 3000;
    let command = "command: \"true\"";
    let mut said = Vec::new();
    let mut unsaid = Vec::new();
    for i in 0..n {
        let (output, input, holds) = match i % 8 {
            0 => (format!("o{i}.json"), format!("a/t{i}-*/o{i}.json"), true),
            1 => (format!("o{i}.json"), format!("a/*/o{i}.json"), true),
            2 => (format!("o{i}.json"), format!("a/*/missing{i}.json"), false),
            3 => (
                format!("o{i}.json"),
                format!("a/t{i}-*/o{}.json", i + 1),
                false,
            ),
            4 => (format!("res{i}/o.json"), format!("a/*/res{i}"), true),
            5 => (format!("dir{i}"), format!("a/*/dir{i}/*.json"), true),
            6 => (format!("o{i}.json"), format!("a/**/o{i}.json"), true),
            _ => (format!("o{i}.json"), format!("a/t{i}[-]x/o{i}.json"), true),
        };
        t.task(
            &format!("a/t{i}-x"),
            &format!("{command}\noutputs: [\"{output}\"]"),
        );
        t.task(
            &format!("b/r{i}"),
            &format!("{command}\ninputs: [\"{input}\"]"),
        );
        let line =
            format!("tasks/b/r{i}.md:3: input `{input}` can hold the outputs of a/t{i}-x, which");
        match holds {
            true => said.push(line),
            false => unsaid.push(format!("tasks/b/r{i}.md:")),
        }
    }
    // A task with thousands of outputs, a task with a glob of each.
    let outputs: Vec<String> = (0..n).map(|i| format!("  - m{i}\n")).collect();
    t.task(
        "c/many",
        &format!("{command}\noutputs:\n{}", outputs.concat()),
    );
    let mut inputs = String::new();
    for i in 0..n {
        let input = match i % 2 {
            0 => format!("c/*/m{i}"),
            _ => format!("c/*/n{i}"),
        };
        inputs.push_str(&format!("  - \"{input}\"\n"));
        match i % 2 {
            0 => said.push(format!(
                "tasks/d/r.md:{}: input `{input}` can hold the outputs of c/many, which",
                i + 4
            )),
            _ => unsaid.push(format!("input `{input}`")),
        }
    }
    t.task("d/r", &format!("{command}\ninputs:\n{inputs}"));
    let run = t.run(&["validate"]);
    run.code(2);
    let missing: Vec<&String> = said.iter().filter(|s| !run.stderr.contains(*s)).collect();
    let extra: Vec<&String> = unsaid.iter().filter(|s| run.stderr.contains(*s)).collect();
    assert!(
        missing.is_empty(),
        "not said: {:?}",
        &missing[..missing.len().min(5)]
    );
    assert!(extra.is_empty(), "said: {:?}", &extra[..extra.len().min(5)]);
    let count = format!("the task definitions have {} problems:", said.len());
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(run.stderr.contains(&count), "{first}");
}

/// A glob input that does not parse is one problem, not also an output
/// its producer should declare.
#[test]
fn a_bad_glob_input_is_said_once() {
    let t = Tree::new();
    t.task("a/p", &format!("outputs: [out]\n{}", sh("true")));
    t.task("b/c", &format!("inputs: [\"a/p/[bad\"]\n{}", sh("true")));
    let run = t.run(&["validate"]);
    run.code(2).says("input `a/p/[bad` is not a valid glob");
    assert!(!run.stderr.contains("to its `outputs`"), "{}", run.stderr);
}

/// A misspelt `command` is said at its line, and only that: not also the
/// default agent, which the task would run without it, as missing from
/// PATH (the fix is the key, not an install).
#[test]
fn a_misspelt_command_is_said_and_no_agent_missing_beside_it() {
    let t = Tree::new();
    t.task("p/ok", "comand: \"make build\"");
    let run = t.run(&["validate"]);
    run.code(2)
        .says("tasks/p/ok.md:2: unknown key `comand`: did you mean `command`?");
    assert!(!run.stderr.contains("not on PATH"), "{}", run.stderr);
}

/// A key near `command` in a task that sets its own (`comment`) hides
/// nothing: that command's program missing from PATH is said too.
#[test]
fn a_key_near_command_beside_one_hides_no_missing_program() {
    let t = Tree::new();
    t.task("p/a", "command: [nosuchprog-xyz, run]\ncomment: a note");
    t.run(&["validate"])
        .code(2)
        .says("unknown key `comment`: did you mean `command`?")
        .says("`nosuchprog-xyz` (the task's `command`, used by p/a) is not on PATH");
}

/// A dependency near the name of the task's own phase gets no
/// suggestion of it: that would be a cycle.
#[test]
fn a_dependency_near_its_own_phase_is_not_suggested_it() {
    let t = Tree::new();
    t.task("01-build/x", "dependencies: [buld]\ncommand: \"true\"");
    t.task("02-ship/y", "dependencies: [buld]\ncommand: \"true\"");
    let run = t.run(&["validate"]);
    run.code(2)
        .says("01-build/x.md:2: unknown dependency `buld`: no task or phase has that name")
        .says("02-ship/y.md:2: unknown dependency `buld`: did you mean `01-build`?");
}

#[test]
fn unknown_dependency_names_the_nearest_id() {
    check(
        |t| t.task("p/b", "title: b\ndependencies:\n  - p/okk"),
        &["tasks/p/b.md:4: unknown dependency `p/okk`: did you mean `p/ok`?"],
    );
}

#[test]
fn a_cycle_names_the_tasks_around_it() {
    check(
        |t| {
            t.task("p/a", "dependencies: [p/c]");
            t.task("p/b", "dependencies: [p/a]");
            t.task("p/c", "dependencies: [p/b]");
        },
        &["dependency cycle: p/", "p/a", "p/b", "p/c"],
    );
}

#[test]
fn paths_that_leave_their_folder() {
    check(
        |t| {
            t.task("p/abs", "outputs: [/etc/passwd]");
            t.task("p/up", "inputs: [../../secret]");
            t.task("p/set", "outputs: [\"[abc\"]");
            t.task("p/far", "prompt_file: ../../etc/hostname");
        },
        &[
            "tasks/p/abs.md:2: output `/etc/passwd` is absolute",
            "tasks/p/up.md:2: input `../../secret` climbs out of its folder",
            "tasks/p/set.md:2: output `[abc` is not a valid glob (",
            "tasks/p/far.md:2: `prompt_file: ../../etc/hostname`: a template is a file under tasks/",
        ],
    );
}

/// A path written so that it names a file under another name (`./`, `//`)
/// would match no producer or overlap: refused, as a task's whole output
/// folder as an input is, and `writes` are checked as inputs are.
#[test]
fn paths_written_another_way_and_bad_writes() {
    check(
        |t| {
            t.task("p/x", "outputs: [o.txt]");
            t.task("p/dot", "inputs: [./p/x/o.txt]");
            t.task("p/twice", "inputs: [p//x/o.txt]");
            t.task("p/folder", "inputs: [p/x]");
            t.task("p/w", "writes: [/src/a, ./src/lib.rs, \"[\"]");
        },
        &[
            "tasks/p/dot.md:2: input `./p/x/o.txt` has an empty or `.` part",
            "tasks/p/twice.md:2: input `p//x/o.txt` has an empty or `.` part",
            "tasks/p/folder.md:2: input `p/x` is the whole output folder of p/x: name a file in it",
            "tasks/p/w.md:2: write `/src/a` is absolute",
            "tasks/p/w.md:2: write `./src/lib.rs` has an empty or `.` part",
            "tasks/p/w.md:2: write `[` is not a valid glob (",
            "`[[]` is one `[`)\n",
        ],
    );
}

/// An output in the output folder of a task nested in the task's own
/// (two writers of one file) is refused.
#[test]
fn an_output_in_a_nested_task_s_folder_is_refused() {
    check(
        |t| {
            t.task("p/x", "outputs: [y/o.txt]");
            t.task("p/x/y", "outputs: [o.txt]");
        },
        &["tasks/p/x.md:2: output `y/o.txt` is in the output folder of task p/x/y"],
    );
}

/// A task name too long for the files kept for it (`.<name>.json.prev`)
/// is refused before anything runs, not found out at its start.
#[test]
fn a_task_name_too_long_for_its_files_is_refused() {
    let name = "x".repeat(246);
    check(
        |t| t.task(&format!("p/{name}"), "title: long"),
        &["its name is 246 bytes long, past the 200 a task's can be"],
    );
}

/// A task id too long as one file name (each `/` written `%2F`, each `%`
/// `%25`), the folder its worktree is made in and git's record of it, is
/// refused by `validate` and `new`: it passed, and its worktree failed to
/// be made at every start ("File name too long").
#[test]
fn a_task_id_too_long_as_its_worktree_s_folder_name_is_refused() {
    let nested = format!("p/{}/{}", "a".repeat(150), "b".repeat(150));
    let percents = format!("p/{}", "%".repeat(100));
    for id in [&nested, &percents] {
        check(
            |t| t.task(id, "title: long"),
            &["bytes long as one file name (each `/` written `%2F`"],
        );
    }
    let t = Tree::new();
    t.run(&["new", &nested])
        .code(2)
        .says("its id is 307 bytes long as one file name");
    assert!(!t.exists("tasks/p"));
}

/// `1M` is a month to the duration parser, and most likely meant as a
/// minute: refused, saying so.
#[test]
fn a_duration_in_m_is_refused_as_months() {
    check(
        |t| t.task("p/m", "timeout: 1M"),
        &[
            "tasks/p/m.md:2: ",
            "`1M`: `M` is months: write minutes as `m`",
        ],
    );
}

#[test]
fn a_program_not_on_path_or_not_executable() {
    check(
        |t| t.task("p/x", "command: [no-such-program-here, arg]"),
        &["tasks/p/x.md:2: `no-such-program-here` (the task's `command`, used by p/x) is not on PATH"],
    );
    check(
        |t| {
            t.write("scripts/run.sh", "#!/bin/sh\n");
            t.task("p/x", "command: [scripts/run.sh]");
        },
        &["is not executable: `chmod +x scripts/run.sh`"],
    );
    check(
        |t| t.task("p/x", "title: uses the default agent"),
        &["`agent` (agent.command, the default: set it in tasks/orchestrator.yaml, or give the tasks a `command`; used by p/x) is not on PATH"],
    );
}

#[test]
fn frontmatter_problems_have_file_and_line() {
    check(
        |t| t.write("tasks/p/empty.md", ""),
        &["tasks/p/empty.md: the task file is empty"],
    );
    check(
        |t| t.write("tasks/p/open.md", "---\ndependencies: []\nbody\n"),
        &["tasks/p/open.md:1: the frontmatter opened on line 1 is never closed"],
    );
    check(
        |t| t.task("p/type", "title: x\ndependencies: \"p/ok\""),
        &["tasks/p/type.md:3: `dependencies`: must be a list"],
    );
    check(
        |t| t.task("p/dup", "outputs: [a]\noutputs: [b]"),
        &["tasks/p/dup.md:3: frontmatter is not valid YAML: duplicate entry with key \"outputs\""],
    );
    check(
        |t| t.task("p/yaml", "title: x\noutputs: [a\n"),
        &["tasks/p/yaml.md", "frontmatter is not valid YAML"],
    );
    check(
        |t| t.write("tasks/loose.md", "---\n---\n"),
        &["tasks/loose.md: a task file must live in a phase folder"],
    );
}

#[test]
fn a_value_is_reported_where_it_is_set_not_where_a_comment_names_it() {
    check(
        |t| {
            t.config("# max_concurrent_agents: 10\n# kill_grace: 10s\n\nkill_grace: soon\nmax_concurrent_agents: 0\n");
            t.task(
                "p/t",
                "# retries: 1\n# timeout: 8h\nidle_timeout: 5m\ntimeout: later\nretries: many",
            );
        },
        &[
            "tasks/orchestrator.yaml:4: `kill_grace`",
            "tasks/orchestrator.yaml:5: `max_concurrent_agents`",
            "tasks/p/t.md:5: `timeout`",
            "tasks/p/t.md:6: `retries`",
        ],
    );
}

#[test]
fn a_number_beyond_what_a_setting_holds_is_refused_not_a_crash() {
    check(
        |t| {
            t.config("kill_grace: 1e30\nmax_cpu_per_agent: 1e300\n");
            t.task("p/t", "timeout: 1e20\nidle_timeout: 18446744073709551615");
            t.task("p/u", "retries: 99999999999999999999");
            // Past u32: once read as its low bits (0 retries), or a panic.
            t.task("p/v", "retries: 4294967296");
            t.task("p/w", "retries: 18446744073709551615");
        },
        &[
            "tasks/orchestrator.yaml:1: `kill_grace`: must be a positive duration of at most 100 years",
            "tasks/orchestrator.yaml:2: `max_cpu_per_agent`: must be at most 65536, found 1e300",
            "tasks/p/t.md:2: `timeout`: must be a positive duration of at most 100 years",
            "tasks/p/t.md:3: `idle_timeout`",
            "tasks/p/u.md:2: `retries`: 99999999999999999999 is beyond any setting's range",
            "tasks/p/v.md:2: `retries`: must be 1000 or fewer, found 4294967296",
            "tasks/p/w.md:2: `retries`: must be 1000 or fewer, found 18446744073709551615",
        ],
    );
}

/// A NUL in a command is a problem of the definitions, at its line: no
/// program can be given one (`validate` passed it, and the run failed as
/// it started it, naming no file).
#[test]
fn a_nul_in_a_command_is_said_at_its_line() {
    let t = Tree::new();
    t.task("p/a", "command: \"ec\\x00ho hi\"");
    t.task("p/b", "command: [echo, \"a\\0b\"]");
    t.run(&["validate"])
        .code(2)
        .says("tasks/p/a.md:2: `command`: holds a NUL character")
        .says("tasks/p/b.md:2: `command`: holds a NUL character");
    // The agent's command in the config too.
    t.config("agent:\n  command: [sh, -c, \"echo a\\0b\"]\n");
    t.task("p/a", "");
    t.task("p/b", "");
    t.run(&["validate"])
        .code(2)
        .says("tasks/orchestrator.yaml:2: `agent.command`: holds a NUL character");
}

#[test]
fn a_nul_in_a_task_body_is_said_at_its_line() {
    // The body is the agent's prompt, which `{prompt}` puts in an argument
    // or a variable: the run said only "nul byte found in provided data".
    let t = Tree::new();
    t.config("max_memory_gb: 0.25\nagent:\n  command: [sh, -c, 'echo \"$1\"', x, \"{prompt}\"]\n");
    t.write(
        "tasks/p/a.md",
        "---\ndependencies: []\n---\nDo\nthe ta\0sk.\n",
    );
    t.task("p/b", "");
    t.run(&["validate"])
        .code(2)
        .says("tasks/p/a.md:5: holds a NUL character (`\\0`)");
    t.run(&["orchestrate"]).code(2).says("tasks/p/a.md:5");
    assert!(!t.root.join("workspace/status/p/a.json").exists());
}

#[test]
fn an_empty_command_is_one_problem_not_also_a_missing_agent() {
    let t = Tree::new();
    t.task("p/a", "command: []");
    t.task("p/b", "command: \"\"");
    // Another problem in a file does not hide a program not on PATH.
    t.task("p/c", "timout: 1h\ncommand: [no-such-program-xyz]");
    let run = t.run(&["orchestrate"]);
    run.code(2)
        .says("the task definitions have 4 problems")
        .says("tasks/p/a.md:2: `command`")
        .says("tasks/p/c.md:2: unknown key `timout`")
        .says("tasks/p/c.md:3: `no-such-program-xyz`");
    assert!(
        !run.stderr.contains("`agent` (agent.command"),
        "{}",
        run.stderr
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    check(
        |t| {
            t.task("p/a", "dependencies: [p/nope]");
            t.write("tasks/p/b.md", "");
        },
        &[
            "3 problems",
            "p/nope",
            "b.md: the task file is empty",
            "`agent` (agent.command, the default",
        ],
    );
}

#[test]
fn an_unknown_config_key_names_the_key_and_file() {
    check(
        |t| t.config("max_concurent_agents: 3\n"),
        &["tasks/orchestrator.yaml:1: unknown key `max_concurent_agents`: did you mean `max_concurrent_agents`?"],
    );
}

/// A problem inside an item of `notify:` is said at its own line (it was
/// said at `notify:`'s), in the item it is in.
#[test]
fn a_notifier_s_problem_is_said_at_its_line() {
    check(
        |t| {
            t.config(
                "notify:\n  - on: [failed]\n    command: \"true\"\n    timeout: 1s\n  - on: [run_finished]\n    command: \"true\"\n    timeout: 5x\n",
            )
        },
        &["tasks/orchestrator.yaml:7: `notify`: item 2: `timeout`: must be a positive duration"],
    );
    check(
        |t| t.config("notify:\n- command: \"true\"\n  on: [run_finishd]\n"),
        &["tasks/orchestrator.yaml:3: `notify`: item 1: `on`: no event `run_finishd`: did you mean `run_finished`?"],
    );
}

/// A misspelt key of a notifier gets the nearest known key, as every
/// other unknown key of the config does (it got the list of keys alone).
#[test]
fn a_notifier_s_misspelt_key_gets_the_nearest_one() {
    check(
        |t| t.config("notify:\n  - on: [failed]\n    command: \"true\"\n    timout: 5s\n"),
        &["tasks/orchestrator.yaml:4: `notify`: item 1: unknown key `timout`: did you mean `timeout`?"],
    );
    check(
        |t| t.config("notify:\n  - on: [failed]\n    command: \"true\"\n    when: always\n"),
        &["tasks/orchestrator.yaml:4: `notify`: item 1: unknown key `when`: the keys are `on`, `command` and `timeout`"],
    );
}

/// A number beyond a float (YAML reads it as text) is said to be out of
/// range, not "text".
#[test]
fn a_number_beyond_range_is_said_so() {
    check(
        |t| t.config("budget: {usd: 1e400}\n"),
        &["`budget.usd`: 1e400 is beyond any setting's range (64 bits): write a number nearer 0"],
    );
}

/// The budget written as Claude's flag names it (`--max-budget-usd`) gets
/// our key, not the list of all keys.
#[test]
fn a_budget_named_as_claude_s_flag_gets_our_key() {
    check(
        |t| t.config("budget_usd: 5\n"),
        &["tasks/orchestrator.yaml:1: unknown key `budget_usd`: did you mean `budget.usd`?"],
    );
}

#[test]
fn usage_errors_exit_2() {
    let t = Tree::new();
    t.run(&["orchestrate", "-j", "0"]).code(2);
    t.run(&["no-such-command"]).code(2);
    Tree::new().command(&[]).output().unwrap();
    let missing = crate::tree::BIN;
    let run: Run = std::process::Command::new(missing)
        .args(["--root", "/nonexistent-root", "progress"])
        .output()
        .unwrap()
        .into();
    run.code(2).says("cannot use /nonexistent-root as the root");
}

/// A FIFO or a device where a task file or the config is expected is
/// said, not read: the read would hang, or fill the memory.
#[test]
fn a_task_file_or_config_that_is_no_regular_file_is_said_not_read() {
    let fifo = |t: &Tree, path: &str| {
        let _ = std::fs::remove_file(t.path(path));
        let path = std::ffi::CString::new(t.path(path).to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo touches nothing else.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
    };
    check(
        |t| fifo(t, "tasks/p/pipe.md"),
        &["tasks/p/pipe.md: cannot read task file: not a regular file (a FIFO, a socket or a device): make it a file"],
    );
    check(
        |t| std::os::unix::fs::symlink("/dev/zero", t.path("tasks/p/zero.md")).unwrap(),
        &["tasks/p/zero.md: cannot read task file: not a regular file"],
    );
    check(
        |t| fifo(t, "tasks/orchestrator.yaml"),
        &["tasks/orchestrator.yaml: cannot read: not a regular file"],
    );
    // A folder is said as one.
    check(
        |t| {
            std::fs::create_dir(t.path("tasks/prompt.jinja")).unwrap();
            t.config("agent:\n  prompt_file: prompt.jinja\n");
        },
        &["prompt.jinja", "a folder, not a file: name a file"],
    );
    // A template that is not text: at its line and byte.
    check(
        |t| {
            std::fs::write(t.path("tasks/prompt.jinja"), b"Do it.\nnow \xff\n").unwrap();
            t.config("agent:\n  prompt_file: prompt.jinja\n");
        },
        &["tasks/prompt.jinja:2: not valid UTF-8 (byte 5 of the line): save it as UTF-8"],
    );
    check(
        |t| {
            let _ = std::fs::remove_file(t.path("tasks/orchestrator.yaml"));
            std::fs::create_dir(t.path("tasks/orchestrator.yaml")).unwrap();
        },
        &["tasks/orchestrator.yaml: cannot read: a folder, not a file: name a file"],
    );
}

/// A config that does not parse is the one problem said of it: the
/// default agent it falls back on is not reported missing too.
#[test]
fn a_config_that_does_not_parse_is_not_also_a_missing_agent() {
    let t = Tree::new();
    t.task("p/a", "title: a");
    t.config("agent: {command: [claude, -p]\nfoo: [\n");
    let run = t.run(&["validate"]);
    run.code(2).says("the config is not valid YAML");
    assert!(!run.stderr.contains("not on PATH"), "{}", run.stderr);
}

/// Every path of `worktrees.copy` outside the root is said at once.
#[test]
fn every_copied_path_outside_the_root_is_said_at_once() {
    check(
        |t| t.config("worktrees:\n  copy: [.env, ../secret, /etc/passwd]\n"),
        &["tasks/orchestrator.yaml:2: `worktrees.copy`: `../secret`, `/etc/passwd` must be paths under the repository root, without `..`"],
    );
    // The root or its `.git`: each worktree has its own (they were
    // accepted, then left unlinked without a word).
    for path in [".", "./", ".git", "./.git/hooks"] {
        check(
            |t| t.config(&format!("worktrees:\n  link: [node_modules, \"{path}\"]\n")),
            &[&format!("tasks/orchestrator.yaml:2: `worktrees.link`: `{path}` is the repository itself or its `.git`, which each worktree has of its own")],
        );
    }
}

#[test]
fn keys_other_tools_use_are_caught() {
    check(
        |t| t.task("p/x", "retry: 2"),
        &["unknown key `retry`: did you mean `retries`?"],
    );
    check(
        |t| t.task("p/x", "depends_on: [p/ok]"),
        &["unknown key `depends_on`: did you mean `dependencies`?"],
    );
    // Ignored, it would run the task in your checkout, not a worktree.
    check(
        |t| t.task("p/x", "worktree: true"),
        &["unknown key `worktree`: did you mean `workdir`?"],
    );
    check(
        |t| t.task("p/x", "output_files: [a.txt]"),
        &["unknown key `output_files`: did you mean `outputs`?"],
    );
}

#[test]
fn a_phase_key_with_a_typo_is_an_error() {
    check(
        |t| {
            t.task("01-analysis/a", "title: a");
            t.config("kill_grace: 1s\nagent: {command: [sh, -c, 'true']}\nphases:\n  analisys: {max_parallel: 1}\n");
        },
        &["tasks/orchestrator.yaml:4: phases.analisys matches no phase folder: did you mean `analysis`?"],
    );
    // In the folder's own form too, and beside another problem of the
    // config: every problem at once.
    check(
        |t| {
            t.task("01-analysis/a", "title: a");
            t.config("kill_grace: 1s\nmax_concurent_agents: 3\nagent: {command: [sh, -c, 'true']}\nphases:\n  01-analisys: {max_parallel: 1}\n");
        },
        &[
            "tasks/orchestrator.yaml:2: unknown key `max_concurent_agents`: did you mean `max_concurrent_agents`?",
            "tasks/orchestrator.yaml:5: phases.01-analisys matches no phase folder: did you mean `01-analysis`?",
        ],
    );
    check(
        |t| t.config("phases:\n  p: {requires: [../outside]}\n"),
        &["`phases.p.requires`: `../outside` must be a path under workspace/outputs/"],
    );
    // A glob that can match nothing would hold the gate for ever.
    check(
        |t| t.config("phases:\n  p: {requires: [\"x/[bad\"]}\n"),
        &[
            "tasks/orchestrator.yaml:2: `phases.p.requires`: `x/[bad` is not a valid glob (",
            "`[[]` is one `[`)",
        ],
    );
    // One near no phase (for tasks made later) is a warning, at its line.
    let t = Tree::new();
    t.task("01-analysis/a", &sh("true"));
    t.config("kill_grace: 1s\nphases:\n  zzz-later: {max_parallel: 1}\n");
    t.run(&["validate"])
        .code(0)
        .says("warning: tasks/orchestrator.yaml:3: phases.zzz-later matches no phase folder under tasks/ yet");
}

#[test]
fn a_pool_cap_with_a_typo_is_an_error_and_an_unused_one_a_warning() {
    check(
        |t| {
            t.task("p/a", "pool: anthropic\ntitle: a");
            t.config("pools:\n  antropic: 2\n");
        },
        &["tasks/orchestrator.yaml:2: pools.antropic: no task is in this pool: did you mean `anthropic`?"],
    );
    let t = Tree::new();
    t.task("p/a", &format!("pool: anthropic\n{}", sh("true")));
    // An agent task that names no pool is in `default`.
    t.task("p/b", "title: b");
    t.config(
        "agent: {command: [sh, -c, 'true']}\npools:\n  anthropic: 2\n  gpu: 1\n  default: 1\n",
    );
    let run = t.run(&["validate"]);
    run.code(0);
    assert!(
        run.stderr
            .contains("tasks/orchestrator.yaml:4: pools.gpu: no task is in this pool yet"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("pools.default"), "{}", run.stderr);
    // A cap for tasks to come beside one in use is no typo.
    let t = Tree::new();
    t.task("p/a", &format!("pool: gpu0\n{}", sh("true")));
    t.config("pools: {gpu0: 1, gpu1: 1}\n");
    let run = t.run(&["validate"]);
    run.code(0);
    assert!(run
        .stderr
        .contains("pools.gpu1: no task is in this pool yet"));
}

/// A task whose id is inside another's would have its output folder
/// inside that task's: refused, naming both.
#[test]
fn a_task_inside_another_task_s_id_is_refused() {
    check(
        |t| {
            t.task("p/a", "outputs: [\"**/*.txt\"]\ntitle: a");
            t.task("p/a/b", "title: b");
        },
        &["tasks/p/a/b.md: its id `p/a/b` is inside task p/a's: its output folder would be inside that task's"],
    );
    // One a task writes during a run is refused as it is found.
    let t = Tree::new();
    t.write("b.md.in", &format!("---\n{}\n---\n", sh(MARK)));
    let template = t.path("b.md.in");
    t.task(
        "p/a",
        &sh(&format!(
            "mkdir -p $TASKS_DIR/p/a && cp {} $TASKS_DIR/p/a/b.md",
            template.display()
        )),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("its id `p/a/b` is inside task p/a's");
    assert_eq!(t.launches("p/a/b"), 0);
    // So is one whose id holds a task's already there.
    let t = Tree::new();
    t.write("a.md.in", &format!("---\n{}\n---\n", sh(MARK)));
    let template = t.path("a.md.in");
    t.task("p/a/b", &format!("dependencies: [p/x]\n{}", sh(MARK)));
    t.task(
        "p/x",
        &sh(&format!("cp {} $TASKS_DIR/p/a.md", template.display())),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("tasks/p/a.md: task p/a/b is inside its id `p/a`: its output folder would be inside this task's");
    assert_eq!(t.launches("p/a"), 0);
}

/// A task's pool close to a capped one that other tasks are in
/// (`antropic` beside `anthropic`) would run uncapped: a warning naming
/// its file (`us-west` beside `us-east` may be meant).
#[test]
fn a_task_s_pool_close_to_a_capped_one_is_warned_of() {
    let t = Tree::new();
    t.task("p/a", &format!("pool: anthropic\n{}", sh("true")));
    t.task("p/c", &format!("pool: antropic\n{}", sh("true")));
    t.config("pools:\n  anthropic: 1\n");
    t.run(&["validate"])
        .code(0)
        .says("warning: tasks/p/c.md: pool `antropic` has no cap in pools: (did you mean `anthropic`?): its tasks run uncapped, and no rate limit of `anthropic` pauses them");
}

#[test]
fn phase_and_task_cannot_be_combined() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.run(&["orchestrate", "--phase", "p", "--task", "p/a"])
        .code(2)
        .says("cannot be used with");
}

/// A file that does not parse is reported for what is wrong with it, and
/// not also as a user of the agent command it never asked for.
#[test]
fn a_file_that_does_not_parse_is_not_said_to_use_the_agent_command() {
    let t = Tree::new();
    t.task("p/ok", &sh("true"));
    t.task("p/bad", "command: [unclosed");
    let run = t.run(&["orchestrate"]);
    run.code(2).says("tasks/p/bad.md");
    assert!(!run.stderr.contains("is not on PATH"), "{}", run.stderr);
}

/// Two phase folders of one key (`01-a`, `03-a`) would share its settings,
/// and `--phase a` would pick one of them: refused.
#[test]
fn two_phase_folders_of_one_key_are_refused() {
    check(
        |t| {
            t.task("01-a/x", "command: \"true\"");
            t.task("03-a/y", "command: \"true\"");
        },
        &["tasks/01-a and tasks/03-a are both phase `a` (a phase's key is its folder's name without the number): rename one"],
    );
}

/// A dependency's problem is at the line of the list that names it, not
/// at the first line holding its text (a title, an output, a command).
#[test]
fn a_dependency_problem_is_at_the_line_that_names_it() {
    check(
        |t| {
            t.task(
                "q/t",
                "title: t waits for x\noutputs: [x.json]\ncommand: \"echo x\"\ndependencies:\n  - p/ok\n  - x",
            );
            // A cycle, at the line where the first task names the next.
            t.task("r/a", "title: a\ndependencies: [r/b]");
            t.task(
                "r/b",
                "title: b\ncommand: \"echo r/a\"\ndependencies: [r/a]",
            );
            // One made by inputs: at the input that makes it.
            t.task("s/a", "outputs: [o.txt]\ninputs: [s/b/o.txt]");
            t.task("s/b", "outputs: [o.txt]\ninputs:\n  - s/a/o.txt");
        },
        &[
            "tasks/q/t.md:7: unknown dependency `x`",
            "tasks/r/b.md:4: dependency cycle: r/b -> r/a -> r/b",
            "tasks/s/b.md:4: dependency cycle: s/b -> s/a -> s/b (each waits for the next): remove one of these dependencies (an input another task produces is one)",
        ],
    );
}

/// A wrong number is shown as written, a backoff past its maximum is
/// refused, and seconds in quotes are seconds.
#[test]
fn a_negative_price_is_shown_and_quoted_seconds_are_seconds() {
    check(
        |t| {
            t.config("agent:\n  prices: {input: -1}\nrate_limits:\n  backoff: 10m\n  max_backoff: 1m\n");
            t.task("p/t", "timeout: \"3600\"\ncommand: \"true\"");
        },
        &[
            "tasks/orchestrator.yaml:2: `agent.prices.input`: must be a number, 0 or more, found -1",
            "tasks/orchestrator.yaml:4: `rate_limits.backoff` (10m) is longer than `rate_limits.max_backoff` (1m)",
        ],
    );
    // A price past any model's: its cost could overflow to infinity,
    // which no budget counts.
    check(
        |t| t.config("agent:\n  prices: {input: 1e308, output: 1}\n"),
        &["tasks/orchestrator.yaml:2: `agent.prices.input`: must be USD per million tokens, 1000000 at most, found 1e308"],
    );
    let t = Tree::new();
    t.task("p/t", "timeout: \"3600\"\ncommand: \"true\"");
    t.run(&["validate"]).code(0);
}

/// Half a price list (`output` forgotten) would count no cost at all: an
/// error at its line, not a budget that silently counts nothing.
#[test]
fn prices_without_output_are_an_error() {
    check(
        |t| {
            t.config("agent:\n  prices: {input: 1.25, cached_input: 0.125}\n");
            t.task("p/t", "command: \"true\"");
        },
        &["tasks/orchestrator.yaml:2: agent.prices needs both `input` and `output` (USD per million tokens) to count a cost; it has no `output`"],
    );
}

/// A misspelt placeholder in the agent command would reach the agent as
/// written (the prompt never would): an error naming the placeholder
/// meant. A shell script's own braces are left alone.
#[test]
fn an_unknown_placeholder_in_the_agent_command_is_an_error() {
    check(
        |t| {
            t.config("agent:\n  command: [\"claude\", \"-p\", \"{promt}\"]\n");
            t.task("p/t", "title: t");
        },
        &["tasks/orchestrator.yaml:2: `agent.command` argument 3: `{promt}` is no placeholder: did you mean `{prompt}`?"],
    );
    // In capitals, or in a template's double braces, the agent would get
    // the braces (and the prompt file's path in them).
    check(
        |t| {
            t.config("agent:\n  command: [\"claude\", \"{PROMPT}\", \"{{prompt_file}}\", \"{Task_Id}\"]\n");
            t.task("p/t", "title: t");
        },
        &[
            "tasks/orchestrator.yaml:2: `agent.command` argument 2: `{PROMPT}` is no placeholder: did you mean `{prompt}`?",
            "tasks/orchestrator.yaml:2: `agent.command` argument 3: `{{prompt_file}}` is no placeholder: did you mean `{prompt_file}`?",
            "tasks/orchestrator.yaml:2: `agent.command` argument 4: `{Task_Id}` is no placeholder: did you mean `{task_id}`?",
        ],
    );
    // A program's own braces in capitals or digits are its own.
    let t = Tree::new();
    t.config("agent:\n  command: [\"python3\", \"-c\", \"print('{0}')\", \"{1}\", \"{ID}\"]\n");
    t.task("p/t", "title: t");
    let run = t.run(&["validate"]);
    assert!(!run.stderr.contains("placeholder"), "{}", run.stderr);
    let t = Tree::new();
    t.config("agent:\n  command: [\"sh\", \"-c\", \"awk '{print}' {task_file}; echo ${f}\"]\n");
    t.task("p/t", "title: t");
    t.run(&["validate"]).code(0);
}

/// A config named `orchestrator.yml` would be left out, the run going on
/// with the defaults.
#[test]
fn a_config_under_the_yml_name_is_an_error() {
    check(
        |t| t.write("tasks/orchestrator.yml", "max_concurrent_agents: 1\n"),
        &["tasks/orchestrator.yml: is not read: the config is tasks/orchestrator.yaml; rename it"],
    );
}

/// The dashboard's title is shown on a line of its own, also off a
/// terminal: a newline or an escape sequence in it is an error at its line.
#[test]
fn a_title_with_control_characters_is_an_error() {
    check(
        |t| t.config("kill_grace: 1s\ntitle: \"evil\\e[31mRED\\a\"\n"),
        &["tasks/orchestrator.yaml:2: `title`: must be one line, without newlines or other control characters"],
    );
    // A YAML block's last newline is no second line.
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.config("title: >\n  My\tproject\n");
    t.run(&["validate"]).code(0);
    t.run(&["progress"])
        .code(0)
        .says("=== My\tproject Status ===");
}

/// A priority past 64 bits, of either sign, or not whole, says what to
/// write instead.
#[test]
fn a_priority_out_of_range_or_not_whole_says_so() {
    check(
        |t| {
            t.task("p/a", "priority: 9223372036854775808\ncommand: \"true\"");
            t.task("p/b", "priority: -9223372036854775809\ncommand: \"true\"");
            t.task("p/c", "priority: 1.5\ncommand: \"true\"");
            t.task("p/d", "priority: 1e3\ncommand: \"true\"");
            t.task("p/e", "retries: -1.0\ncommand: \"true\"");
        },
        &[
            "tasks/p/a.md:2: `priority`: 9223372036854775808 is beyond any setting's range (64 bits): write a number nearer 0",
            "tasks/p/b.md:2: `priority`: -9223372036854775809 is beyond any setting's range (64 bits): write a number nearer 0",
            "tasks/p/c.md:2: `priority`: must be a whole number, found 1.5",
            "tasks/p/d.md:2: `priority`: must be a whole number, found 1000.0, a decimal: write 1000",
            "tasks/p/e.md:2: `retries`: must be a whole number, 0 or more, found -1.0",
        ],
    );
}

/// Task ids nest (`a/b`, `a/b/c`): a cycle made by an input is said at
/// the input the next task of the cycle makes, not one of a nested task.
#[test]
fn a_cycle_through_inputs_of_nested_ids_names_the_right_input() {
    check(
        |t| {
            t.task(
                "z/z",
                "outputs: [o.txt]\ninputs:\n  - a/b/c/o.txt\n  - a/b/o.txt\ncommand: \"true\"",
            );
            t.task(
                "a/b",
                "outputs: [o.txt]\ninputs: [z/z/o.txt]\ncommand: \"true\"",
            );
            t.task("a/b/c", "outputs: [o.txt]\ncommand: \"true\"");
        },
        &["tasks/z/z.md:5: dependency cycle: z/z -> a/b -> z/z"],
    );
}

/// An input in the task's own output folder would make it wait for
/// itself, and never start: an error at its line.
#[test]
fn an_input_of_the_task_s_own_output_is_an_error() {
    check(
        |t| t.task("p/a", "outputs: [x]\ninputs: [p/a/x]\ncommand: \"true\""),
        &["tasks/p/a.md:3: input `p/a/x` is in the task's own output folder: it would wait for itself"],
    );
}

/// A byte that is not UTF-8 is shown at its line, in a task file or the
/// config.
#[test]
fn a_task_file_not_in_utf8_is_shown_at_its_line() {
    check(
        |t| {
            std::fs::write(
                t.path("tasks/p/latin.md"),
                b"---\ncommand: \"true\"\ntitle: \"caf\xe9\"\n---\n",
            )
            .unwrap();
        },
        &["tasks/p/latin.md:3: not valid UTF-8 (byte 12 of the line): save it as UTF-8"],
    );
    // The config too.
    check(
        |t| {
            std::fs::write(
                t.path("tasks/orchestrator.yaml"),
                b"kill_grace: 1s\ntitle: \"caf\xe9\"\n",
            )
            .unwrap();
        },
        &["tasks/orchestrator.yaml:2: not valid UTF-8 (byte 12 of the line): save it as UTF-8"],
    );
}

/// A tab in indentation gets YAML's words and what they mean.
#[test]
fn a_tab_in_indentation_is_named() {
    check(
        |t| t.task("p/tab", "command: \"true\"\n\ttimeout: 5"),
        &["tasks/p/tab.md:3: frontmatter is not valid YAML: found character that cannot start any token, while scanning for the next token (the line is indented with a tab: YAML indents with spaces)"],
    );
}

/// An integration branch git would refuse (or take for an option), or one
/// among the task branches (which `clean` removes once merged), is an
/// invalid config before any git runs.
#[test]
fn an_integration_branch_git_refuses_or_among_the_task_branches_is_invalid() {
    for (name, message) in [
        ("'my branch'", "`my branch` is not a branch name git takes: it has a space"),
        ("-x", "`-x` is not a branch name git takes: it starts with `-`"),
        ("task/merged", "`task/merged` is where the task branches are (`task/<task id>`, removed by `clean` once merged): name the branch outside `task/`"),
        ("refs/heads/main", "`refs/heads/main` starts with `refs/`: git would read it as another ref (`refs/heads/main` is the branch `main`); name the branch without it"),
        ("heads/main", "`heads/main` starts with `heads/`"),
    ] {
        let t = Tree::new();
        t.config(&format!("kill_grace: 1s\nworktrees:\n  integration: {name}\n"));
        t.task("p/ok", &sh(MARK));
        t.run(&["validate"])
            .code(2)
            .says(&format!("tasks/orchestrator.yaml:3: `worktrees.integration`: {message}"));
    }
}

/// An argument that is not UTF-8 is a usage error (exit 2), never a
/// panic: as a task, a reason, or the root.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    let bad = OsStr::from_bytes(b"p/\xff");
    for args in [&["why"][..], &["block", "p/a", "--reason"]] {
        let output = t.command(args).arg(bad).output().unwrap();
        Run::from(output)
            .code(2)
            .says("invalid UTF-8 was detected in one or more arguments");
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--root")
        .arg(OsStr::from_bytes(b"/tmp/\xff"))
        .arg("progress")
        .output()
        .unwrap();
    let run = Run::from(output);
    run.code(2).says("invalid UTF-8");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// An input, output, write or gate artifact is named in the lines that
/// say it is missing, in every view: one that holds what a terminal acts
/// on is refused at its line (an output `\e]0;x\a.txt` set the window's
/// title from each failure's line).
#[test]
fn a_path_with_control_characters_is_refused() {
    check(
        |t| {
            t.task("p/a", "command: \"true\"\noutputs: [\"\\e]0;x\\a.txt\"]");
            t.task("p/b", "command: \"true\"\ninputs: [\"p/a/x\\ny\"]");
            t.config("kill_grace: 1s\nphases:\n  p:\n    requires: [\"a\\rb\"]\n");
        },
        &[
            "tasks/p/a.md:3: output `\\e]0;x\\u{7}.txt` holds a control character (a newline, an escape): name the file without one",
            "tasks/p/b.md:3: input `p/a/x\\ny` holds a control character (a newline, an escape): name the file without one",
            "tasks/orchestrator.yaml:4: `phases.p.requires`: `a\\rb` holds a control character (a newline, an escape): name the file without one",
        ],
    );
}

/// YAML nested thousands of `[` deep (a generated task file gone wrong)
/// is refused before YAML's reader, whose time grows with the square of
/// the depth, takes it (100,000 deep took half a minute), at its line.
#[test]
fn yaml_nested_thousands_deep_is_refused_at_its_line() {
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    check(
        |t| {
            t.task("p/a", &format!("title: a\nx: {deep}\ncommand: \"true\""));
            t.config(&format!("kill_grace: 1s\nx: {deep}\n"));
        },
        &[
            "tasks/p/a.md:3: frontmatter is not valid YAML: `[` and `{` nest more than 1000 deep here (YAML is read to 128 levels)",
            "tasks/orchestrator.yaml:2: the config is not valid YAML: `[` and `{` nest more than 1000 deep here",
        ],
    );
}

/// A config saved with a byte order mark (as Windows editors save UTF-8)
/// and Windows line ends is read as without them, as a task file is, and
/// its problems are at their lines (it was refused as two documents).
#[test]
fn a_config_with_a_byte_order_mark_and_windows_line_ends_is_read() {
    let t = Tree::new();
    t.write(
        "tasks/orchestrator.yaml",
        "\u{feff}kill_grace: 1s\r\nmax_memory_gb: 0.25\r\ntitle: Ünï 中文\r\n",
    );
    t.task("p/a", &sh("true"));
    t.run(&["validate"]).code(0);
    t.run(&["progress"]).code(0).says("=== Ünï 中文 Status ===");
    t.write(
        "tasks/orchestrator.yaml",
        "\u{feff}kill_grace: 1s\r\nmax_memory_gb: 0.25\r\nmax_concurrent: 2\r\n",
    );
    t.run(&["validate"])
        .code(2)
        .says("tasks/orchestrator.yaml:3: unknown key `max_concurrent`");
}

/// A quoted value never closed is said at the line it opens on, in a
/// task file and in the config: YAML finds it out past the last line (the
/// closing `---`, or a line the config does not have).
#[test]
fn a_quote_never_closed_is_said_where_it_opens() {
    check(
        |t| {
            t.write(
                "tasks/p/a.md",
                "---\ntitle: \"unterminated\ncommand: echo hi\nretries: 1\n---\nbody\n",
            );
            t.config("title: 'x\nkill_grace: 1s\n");
        },
        &[
            "tasks/p/a.md:2: frontmatter is not valid YAML: found unexpected end of stream, while scanning a quoted scalar (the quote that opens this value is never closed: close it)",
            "tasks/orchestrator.yaml:1: the config is not valid YAML: found unexpected end of stream, while scanning a quoted scalar",
        ],
    );
}

/// YAML reads a value with more text after it on its line (`"Fix" the
/// lexer`), a line of words that is no `key:` line followed by keys, or a
/// `...` line and more after it, as a second document, and
/// serde_yaml says so with no line: it is said at its line, with what to
/// do (it was said without a line, as a `---` line that is not there).
#[test]
fn a_second_document_without_a_dashes_line_is_said_where_it_starts() {
    check(
        |t| {
            t.write(
                "tasks/p/a.md",
                "---\n# the title\n\"Fix\" the lexer\n---\nbody\n",
            );
            t.config("kill_grace: 1s\n...\ntitle: x\n");
        },
        &[
            "tasks/p/a.md:3: frontmatter is not valid YAML: deserializing from YAML containing more than one document is not supported (this line is a value alone, not `key: value`, and YAML reads what follows it as another document: write `key: value` lines, quoting a value, not the line)",
            "tasks/orchestrator.yaml:2: the config is not valid YAML: deserializing from YAML containing more than one document is not supported (a `...` line ends the document, and more follows it: this file is one; remove it)",
        ],
    );
    // A comment's end broken onto a line of its own is such a value too.
    check(
        |t| t.config("# every task\nfile is read\n# more\ntitle: x\n"),
        &["tasks/orchestrator.yaml:2: the config is not valid YAML: deserializing from YAML containing more than one document is not supported (this line is a value alone"],
    );
}

/// Aliases that repeat their anchors past what serde_yaml reads (an alias
/// bomb: each list ten of the one before) are refused at the line of the
/// first alias, with what to do, in a task file and the config; serde_yaml
/// says only `repetition limit exceeded`, with no line.
#[test]
fn an_alias_bomb_is_said_at_its_first_alias() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..=9 {
        let before = if level == 1 {
            "a".to_owned()
        } else {
            format!("b{}", level - 1)
        };
        let items = vec![format!("*{before}"); 10].join(", ");
        bomb.push_str(&format!("b{level}: &b{level} [{items}]\n"));
    }
    check(
        |t| {
            t.write("tasks/p/a.md", &format!("---\ntitle: a\n{bomb}---\nbody\n"));
            t.config(&format!("kill_grace: 1s\n{bomb}"));
        },
        &[
            "tasks/p/a.md:4: frontmatter is not valid YAML: repetition limit exceeded (its aliases, `*name`, from this line on repeat what their anchors hold past what is read: write the values out, or use fewer aliases)",
            "tasks/orchestrator.yaml:3: the config is not valid YAML: repetition limit exceeded",
        ],
    );
}

/// `new` reads tasks/TEMPLATE.md as the task files are read: a FIFO there
/// is said, not waited on (`new` waited for a writer forever), `/dev/zero`
/// is said, not read until the memory ran out, and a template that is not
/// UTF-8 is said at its line and byte (it was `stream did not contain
/// valid UTF-8`); nothing is made.
#[test]
fn new_from_a_template_that_is_no_text_file_says_so_and_makes_nothing() {
    let t = Tree::new();
    let template = t.path("tasks/TEMPLATE.md");
    let path = std::ffi::CString::new(template.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo touches nothing else.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
    let out = std::fs::File::create(t.path("out.txt")).unwrap();
    let mut child = (t.command(&["new", "p/b"]))
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    wait_for("`new` to end", || child.try_wait().unwrap().is_some());
    let said = t.read("out.txt");
    assert_eq!(child.wait().unwrap().code(), Some(2), "{said}");
    assert!(
        said.contains(
            "TEMPLATE.md: not a regular file (a FIFO, a socket or a device): make it a file"
        ),
        "{said}"
    );
    std::fs::remove_file(&template).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &template).unwrap();
    (t.run_in_memory(&["new", "p/b"], 1 << 30))
        .code(2)
        .says("TEMPLATE.md: not a regular file");
    std::fs::remove_file(&template).unwrap();
    std::fs::write(&template, b"---\ntitle: \xff\n---\n").unwrap();
    (t.run(&["new", "p/b"]))
        .code(2)
        .says("tasks/TEMPLATE.md:2: not valid UTF-8 (byte 8 of the line): save it as UTF-8");
    assert!(!t.exists("tasks/p/b.md"));
}

/// A key of a `notify` item that YAML reads as no text (`true:`, `1:`) is
/// said as such a key is elsewhere in the config, not as `unknown key
/// `?``.
#[test]
fn a_notify_key_that_is_no_text_is_said_as_one() {
    check(
        |t| t.config("notify:\n  - command: \"true\"\n    on: [failed]\n    true: 1\n"),
        &["tasks/orchestrator.yaml:2: `notify`: item 1: keys must be text, found `true`: quote it, or fix the name"],
    );
}

/// Lists or mappings nested past the 128 levels YAML is read to are said
/// at their line with what to do, in brackets and indented alike (it was
/// `recursion limit exceeded`, and no more).
#[test]
fn nesting_past_what_yaml_reads_is_said_with_what_to_do() {
    let brackets = format!("k: {}{}", "[a, ".repeat(129), "]".repeat(129));
    let indented: String = (0..130).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    check(
        |t| {
            t.write("tasks/p/a.md", &format!("---\ntitle: a\n{brackets}\n---\nbody\n"));
            t.config(&format!("kill_grace: 1s\n{indented}"));
        },
        &[
            "tasks/p/a.md:3: frontmatter is not valid YAML: recursion limit exceeded (lists and mappings nest more than 128 levels deep here, as deep as YAML is read: nest them less)",
            "tasks/orchestrator.yaml:130: the config is not valid YAML: recursion limit exceeded (lists and mappings",
        ],
    );
}

/// A prompt template that would render for hours (a loop in a loop over
/// huge ranges) is refused at its line once it has taken 10 million
/// steps: `validate`, which renders each template, held on it.
#[test]
fn a_template_that_renders_for_ever_is_refused() {
    let forever =
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    check(
        |t| t.task("p/a", &format!("command: [echo, \"{{prompt}}\"]\nprompt: \"{forever}\"")),
        &["tasks/p/a.md:3: prompt: the template fails on a first attempt: it takes more than 10 million steps to render, a step for each 64 bytes of text and lists it makes or searches too (a loop over too large a range? a text doubled in a loop? `in` a long text, in a loop?): do less"],
    );
}

/// A template making gigabytes a step at a time (a text doubled in a
/// loop, a list of 100 million items) is refused at its line in 1 GiB:
/// minijinja charges a step for each 64 bytes it makes, and 100 million
/// steps let `validate` make 6.4 GB and abort.
#[test]
fn a_template_making_gigabytes_is_refused_in_bounded_memory() {
    let t = Tree::new();
    let doubled = "{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}";
    t.task(
        "p/a",
        &format!("command: [echo, \"{{prompt}}\"]\nprompt: \"{doubled}\""),
    );
    let listed = "{{ ([1] * 100000000)|list|length }}";
    t.task(
        "p/b",
        &format!("command: [echo, \"{{prompt}}\"]\nprompt: \"{listed}\""),
    );
    t.run_in_memory(&["validate"], 1 << 30)
        .code(2)
        .says("tasks/p/a.md:3: prompt: the template fails on a first attempt: it takes more than 10 million steps to render, a step for each 64 bytes")
        .says("tasks/p/b.md:3: prompt: the template fails on a first attempt: it takes more than 10 million steps");
}

/// An `indent` wider than a prompt has use for is refused at its line: one
/// step, `indent(1000000000)`, rendered a gigabyte of spaces a line, and
/// `validate` passed it. Run in 256 MiB, that fails the test rather than
/// the machine.
#[test]
fn an_indent_past_its_bound_is_refused_in_bounded_memory() {
    let t = Tree::new();
    t.task(
        "p/a",
        "command: [echo, \"{prompt}\"]\nprompt: \"{{ task.body|indent(1000000000) }}\"",
    );
    t.run_in_memory(&["validate"], 256 << 20)
        .code(2)
        .says("tasks/p/a.md:3: prompt: the template fails on a first attempt: invalid operation: `indent(1000000000)` is wider than the 100 columns an indent may be: indent less in `indent(1000000000)`");
    // An indent within it, its width named, renders as minijinja's does.
    let t = Tree::new();
    t.task(
        "p/b",
        "command: [echo, \"{prompt}\"]\nprompt: |\n  {{ task.body|indent(width=4, first=true) }}",
    );
    t.run(&["prompt", "p/b"]).code(0).says("    Do the task.");
}

/// An `indent` within its width still makes no more than the steps left
/// pay for, refused before it is made, as minijinja's own `indent` does:
/// 100 columns before each of 10 million lines is a gigabyte in one step,
/// which the bounded `indent` made before it was counted.
#[test]
fn an_indent_within_its_width_making_gigabytes_is_refused_in_bounded_memory() {
    let t = Tree::new();
    t.task(
        "p/a",
        "command: [echo, \"{prompt}\"]\nprompt: \"{{ ('\\n' * 10000000)|indent(100, true, true)|length }}\"",
    );
    t.run_in_memory(&["validate"], 256 << 20)
        .code(2)
        .says("tasks/p/a.md:3: prompt: the template fails on a first attempt: it takes more than 10 million steps to render");
}

/// A template that renders a prompt longer than 10 MiB is refused, the
/// rendering stopped there rather than held whole (`"x" * n` makes up to
/// 100 MB in one step).
#[test]
fn a_prompt_past_its_longest_is_refused() {
    check(
        |t| {
            t.task(
                "p/a",
                "command: [echo, \"{prompt}\"]\nprompt: |\n  ok\n  {{ \"x\" * 11000000 }}",
            )
        },
        &["tasks/p/a.md:4: prompt: the template fails on a first attempt: the prompt it renders is longer than 10 MiB, the most a prompt may be: render less (quote fewer or shorter texts)"],
    );
}

/// Each unknown variable of a long template is said at its line: the
/// template was searched again for each (200 names in 3 MB took minutes
/// to `validate` unoptimised; now one pass finds them all).
#[test]
fn the_unknown_variables_of_a_long_template_are_each_said_at_their_line() {
    let names: String = (0..100)
        .map(|i| format!("{{{{ var{i} }}}} {{{{ task.id }}}}\n"))
        .collect();
    let text = format!("{names}{}\n", "text, not code. ".repeat(125_000));
    check(
        |t| {
            t.write("tasks/p/big.jinja", &text);
            t.task(
                "p/a",
                "command: [echo, \"{prompt}\"]\nprompt_file: p/big.jinja",
            );
        },
        &[
            "the task definitions have 100 problems",
            "tasks/p/big.jinja:1: prompt_file: unknown variable `var0` in the template",
            "tasks/p/big.jinja:100: prompt_file: unknown variable `var99` in the template",
        ],
    );
}

/// Of thousands of mistyped dependencies, the first 20 are suggested the
/// id they are near and the rest said plainly: each suggestion compares the
/// name with every id (5,000 took 6 s unoptimised), and the first are the
/// ones read.
#[test]
fn only_the_first_unknown_dependencies_are_suggested_a_near_id() {
    let t = Tree::new();
    for i in 0..2000 {
        t.task(
            &format!("p/task-{i:04}"),
            &format!("command: [\"true\"]\ndependencies: [p/tsak-{i:04}]"),
        );
    }
    let run = t.run(&["validate"]);
    run.code(2)
        .says("the task definitions have 2000 problems")
        .says("tasks/p/task-0000.md:3: unknown dependency `p/tsak-0000`: did you mean `p/task-0001`?\n")
        .says("tasks/p/task-0019.md:3: unknown dependency `p/tsak-0019`: did you mean `p/task-0009`?\n")
        .says("tasks/p/task-0020.md:3: unknown dependency `p/tsak-0020`\n")
        .says("tasks/p/task-1999.md:3: unknown dependency `p/tsak-1999`\n");
    assert_eq!(run.said().matches("did you mean").count(), 20);
}

/// Thousands of unknown keys in a file are each said at their own line:
/// the config's written bare or quoted, each below a comment that names
/// the next, and a misspelt key after thousands of a task file's own keys
/// (each key's line was found by reading the file from the top: 20,000
/// unknown keys took 44 s; it is now looked up in an index of the file's
/// keys made once); and thousands of keys that are not text, each with
/// its line and as written.
#[test]
fn thousands_of_unknown_keys_are_each_said_at_their_line() {
    const N: usize = 2000;
    let t = Tree::new();
    let mut expected = Vec::new();
    let mut config = String::new();
    for i in 0..N {
        let written = [format!("zz{i}"), format!("\"zz{i}\""), format!("'zz{i}'")];
        config += &format!("# zz{}: named in a comment\n{}: 1\n", i + 1, written[i % 3]);
        expected.push(format!(
            "tasks/orchestrator.yaml:{}: unknown key `zz{i}`",
            2 * i + 2
        ));
    }
    t.config(&config);
    let mut own = format!("command: {}\n", serde_json::to_string(MARK).unwrap());
    for i in 0..N {
        own += &format!("owner{i}: x\n");
    }
    for i in 0..N {
        own += &format!("0x{i:x}: x\n");
        let line = N + 3 + i;
        expected.push(format!("tasks/p/a.md:{line}: keys must be text, found the number `{i}`: quote it (`\"0x{i:x}\": ...`), or fix the name"));
    }
    t.task("p/a", &format!("{own}retires: 1"));
    expected.push(format!("tasks/p/a.md:{}: unknown key `retires`", 2 * N + 3));
    said_each(&t.run(&["validate"]), &expected);
}

/// `run` exits 2 with `expected` problems, each said in a line that
/// begins with it up to the name it quotes (the whole of it if it quotes
/// two).
#[track_caller]
fn said_each(run: &Run, expected: &[String]) {
    run.code(2).says(&format!("{} problems", expected.len()));
    let said: std::collections::HashSet<&str> = (run.stderr.lines())
        .flat_map(|line| {
            let line = line.trim();
            let quoted = (line.split_once('`'))
                .and_then(|(head, rest)| Some(&line[..head.len() + rest.find('`')? + 2]));
            [Some(line), quoted].into_iter().flatten()
        })
        .collect();
    for line in expected {
        assert!(
            said.contains(line.as_str()),
            "{line} not said:\n{}",
            run.stderr
        );
    }
}

/// Thousands of unknown dependencies of a task are each said at their own
/// line: in a flow list over lines, and in a block list between comments
/// that name them (each read the file again and its list from the key
/// on: 20,000 took 13 s; the list is now read once and its words
/// indexed).
#[test]
fn thousands_of_unknown_dependencies_are_each_said_at_their_line() {
    const N: usize = 2000;
    let t = Tree::new();
    let command = format!("command: {}", serde_json::to_string(MARK).unwrap());
    let mut expected = Vec::new();
    // Ten a line, the list opened on the key's line (3).
    let ids: Vec<String> = (0..N).map(|i| format!("q/x{i}")).collect();
    let lines: Vec<String> = ids.chunks(10).map(|ids| ids.join(", ")).collect();
    t.task(
        "p/b",
        &format!("{command}\ndependencies: [{}]", lines.join(",\n  ")),
    );
    for (i, id) in ids.iter().enumerate() {
        let line = 3 + i / 10;
        expected.push(format!("tasks/p/b.md:{line}: unknown dependency `{id}`"));
    }
    let mut block = format!("{command}\ndependencies:\n");
    for i in 0..N {
        block += &format!("  # q/y{}\n  - q/y{i}\n", i + 1);
        expected.push(format!(
            "tasks/p/c.md:{}: unknown dependency `q/y{i}`",
            5 + 2 * i
        ));
    }
    t.task("p/c", &block);
    said_each(&t.run(&["validate"]), &expected);
}
