//! Prompt templates: what an attempt is given, rendered from the config's
//! or the task's template, and the template's mistakes caught before any
//! launch.

use crate::tree::*;

/// A template that prints every variable.
const EVERY_VARIABLE: &str = r#"id={{ task.id }}
title={{ task.title }}
phase={{ task.phase }}
outputs={{ task.outputs | join(",") }}
output_dir={{ task.output_dir }}
attempt={{ attempt }}
budget={{ budget_left_usd }}
worktree={{ worktree }}
body={{ task.body }}
{% for dep in deps %}dep={{ dep.id }} ({{ dep.title }})
{% for o in dep.outputs %}file={{ o.path }}
{{ o.text }}
{% endfor %}{% endfor %}
{% if previous %}previous.error={{ previous.error }}
previous.session_id={{ previous.session_id }}
previous.log_tail:
{{ previous.log_tail }}
{% endif %}"#;

#[test]
fn each_attempt_gets_its_prompt_with_dependency_outputs_and_the_previous_failure() {
    let t = Tree::new();
    t.write("tasks/prompt.jinja", EVERY_VARIABLE);
    t.config(
        "agent:\n  command: [\"sh\", \"-c\", \"printf '%s' \\\"$1\\\" > $TASK_OUTPUT_DIR/argv.txt; cp {prompt_file} $TASK_OUTPUT_DIR/file.txt; test -e again || { touch again; echo boom at the end; exit 3; }\", \"sh\", \"{prompt}\"]\n  prompt_file: prompt.jinja\nbudget: {usd: 10}\n",
    );
    // `a` writes a short file and one past the 8 KiB a prompt takes.
    t.task(
        "p/a",
        &format!(
            "title: Produce\noutputs: [short.txt, big.txt, bin.dat]\n{}",
            sh("echo hello from a > $TASK_OUTPUT_DIR/short.txt; head -c 9000 /dev/zero | tr '\\0' x > $TASK_OUTPUT_DIR/big.txt; head -c 20000 /dev/zero > $TASK_OUTPUT_DIR/bin.dat")
        ),
    );
    t.write(
        "tasks/p/b.md",
        "---\ntitle: Consume\ndependencies: [p/a]\noutputs: [argv.txt]\nretries: 1\n---\nUse what a made.\n",
    );
    t.run(&["orchestrate"]).code(0);

    let first = t.read("workspace/prompts/p/b.attempt-1.md");
    let second = t.read("workspace/prompts/p/b.attempt-2.md");
    let out = t.root.join("workspace/outputs");
    for line in [
        "id=p/b".to_owned(),
        "title=Consume".into(),
        "phase=p".into(),
        "outputs=argv.txt".into(),
        format!("output_dir={}", out.join("p/b").display()),
        "budget=10.0".into(),
        "worktree=None".into(),
        "body=Use what a made.".into(),
        "dep=p/a (Produce)".into(),
        format!("file={}", out.join("p/a/short.txt").display()),
        "hello from a".into(),
    ] {
        assert!(first.contains(&line), "{line:?} not in\n{first}");
    }
    assert!(first.contains("attempt=1"));
    assert!(!first.contains("previous.error"));
    // The big file: 8 KiB of it, and a marker that says what was cut.
    assert!(first.contains(&"x".repeat(8192)));
    assert!(!first.contains(&"x".repeat(8193)));
    assert!(first.contains("[... cut: 808 more bytes; the whole file is"));
    // A binary file is named, with its true size, not pasted.
    assert!(first.contains("[binary, 20000 bytes: "), "{first}");
    // The retry is told why the first attempt failed, and how its log ended.
    assert!(second.contains("attempt=2"));
    assert!(second.contains("previous.error=exit code 3"), "{second}");
    assert!(second.contains("boom at the end"));
    // The same prompt as {prompt} and in {prompt_file} / TASK_PROMPT_FILE.
    assert_eq!(t.read("workspace/outputs/p/b/argv.txt"), second);
    assert_eq!(t.read("workspace/outputs/p/b/file.txt"), second);
}

/// Without a template, a command that asks for the prompt gets the
/// built-in one: the task's body, what its dependencies produced, its
/// outputs and, on a retry, why the attempt before failed (it got the
/// body alone: a retry was sent the same words as the attempt that failed).
#[test]
fn without_a_template_the_prompt_still_says_what_upstream_made_and_what_failed() {
    let t = Tree::new();
    t.config(
        "agent:\n  command: [\"sh\", \"-c\", \"cp {prompt_file} $TASK_OUTPUT_DIR/prompt.txt; test -e again || { touch again; echo boom at the end; exit 3; }\"]\n",
    );
    t.task(
        "p/a",
        &format!(
            "title: Produce\noutputs: [short.txt]\n{}",
            sh("printf 'hello from a' > $TASK_OUTPUT_DIR/short.txt")
        ),
    );
    t.task("p/quiet", &sh("true"));
    t.write(
        "tasks/p/b.md",
        "---\ndependencies: [p/a, p/quiet]\noutputs: [prompt.txt]\nretries: 1\n---\n\nUse what a made.\n\n",
    );
    t.run(&["prompt", "p/b"]).code(0).says("Use what a made.");
    t.run(&["prompt", "p/quiet"])
        .code(0)
        .says("p/quiet gets no prompt: its command asks for none. Put `{prompt_file}`");
    t.run(&["orchestrate"]).code(0);

    let out = t.root.join("workspace/outputs");
    let made = format!(
        "Use what a made.\n\n\
         ## What the tasks before this one produced\n\n\
         ### `p/a`: Produce\n\n\
         `{}`:\n\n\
         ```\nhello from a\n```\n\n\
         ### `p/quiet`\n\n\
         (it wrote no output files)\n\n\
         ## Outputs\n\n\
         Write prompt.txt into `{}`.",
        out.join("p/a/short.txt").display(),
        out.join("p/b").display()
    );
    // A text file: its last line ends with a newline.
    assert_eq!(
        t.read("workspace/prompts/p/b.attempt-1.md"),
        format!("{made}\n")
    );
    let second = t.read("workspace/prompts/p/b.attempt-2.md");
    let told = "\n\n## The previous attempt failed\n\nexit code 3\n\nThe end of its log:\n\n```\n";
    assert!(second.starts_with(&format!("{made}{told}")), "{second}");
    assert!(second.ends_with("boom at the end\n```\n"), "{second}");
    assert_eq!(t.read("workspace/outputs/p/b/prompt.txt"), second);
    t.run(&["why", "p/b"])
        .says("  its prompt (attempt 2): workspace/prompts/p/b.attempt-2.md");
}

/// The built-in prompt of an attempt after one a stop interrupted says it
/// was stopped, not that it failed: "The previous attempt failed:
/// interrupted" read to an agent as a failure of its own.
#[test]
fn the_built_in_prompt_after_a_stop_says_the_attempt_was_stopped() {
    let t = Tree::new();
    t.config(
        "agent:\n  command: [\"sh\", \"-c\", \"touch $WORKSPACE/started; echo working; while [ ! -e $WORKSPACE/go ]; do sleep 0.02; done; cat {prompt_file}\"]\n",
    );
    t.write("tasks/p/a.md", "---\n---\n\nDo it.\n");
    let mut run = t.start(&["orchestrate"]);
    wait_for("the agent to work", || t.exists("workspace/started"));
    signal(run.id(), libc::SIGINT);
    assert_eq!(run.wait().unwrap().code(), Some(130));
    let next = t.run(&["prompt", "p/a"]).code(0).stdout.clone();
    let told = "\n\n## The previous attempt was stopped\n\nIt was interrupted (the run was stopped), not failed by anything it did:\nwhat it did is where it left it; go on from there.\n\nThe end of its log:\n\n```\nworking\n";
    assert!(next.contains(told), "{next}");
    assert!(!next.contains("attempt failed"), "{next}");
}

/// The built-in prompt never grows past what one argument holds: what
/// thirteen dependencies produced (8 KiB quoted of each) is named, not
/// quoted, their agents' messages cut to a line, and `{prompt}` still
/// works, as it did with the body alone.
#[test]
fn the_built_in_prompt_names_the_files_it_cannot_quote_in_one_argument() {
    let t = Tree::new();
    let ids: Vec<String> = (10..23).map(|i| format!("p/up{i}")).collect();
    // Each writes 9,000 bytes and ends as Claude does, with a message of
    // several lines.
    let success = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/agents/claude/success.json"
    );
    for id in &ids {
        t.task(
            id,
            &format!(
                "outputs: [big.txt]\nresult: claude-json\n{}",
                sh(&format!(
                    "head -c 9000 /dev/zero | tr '\\0' x > $TASK_OUTPUT_DIR/big.txt; cat {success}"
                ))
            ),
        );
    }
    t.task(
        "q/down",
        "dependencies: [p]\noutputs: [got.txt]\ncommand: [sh, -c, 'printf %s \"$1\" > $TASK_OUTPUT_DIR/got.txt', sh, '{prompt}']",
    );
    t.run(&["orchestrate"]).code(0);
    let got = t.read("workspace/outputs/q/down/got.txt");
    assert_eq!(got, t.read("workspace/prompts/q/down.attempt-1.md"));
    let big = t.root.join("workspace/outputs/p/up22/big.txt");
    let named = format!("\n\nIts files: `{}`.\n", big.display());
    assert!(got.contains(&named), "{got}");
    assert!(
        got.contains("\n\nTheir files are named, not quoted"),
        "said once"
    );
    assert!(!got.contains("xxxx"), "nothing quoted");
    // Each agent's message is its first line, cut at 200 characters.
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(success).unwrap()).unwrap();
    let line = result["result"].as_str().unwrap().lines().next().unwrap();
    let first = format!("> {} [...]\n", line.chars().take(200).collect::<String>());
    assert_eq!(got.matches(&first).count(), 13, "{got}");
    assert!(!got.contains("I did not push"));
}

/// The built-in prompt of a task with no body starts with what its
/// dependency produced (it started with two blank lines), one whose body
/// starts indented keeps it (Markdown's code block), and each ends with a
/// newline, as a text file does.
#[test]
fn the_built_in_prompt_starts_with_its_first_words_and_ends_a_line() {
    let t = Tree::new();
    t.task("p/a", &sh("true"));
    t.write(
        "tasks/p/bare.md",
        "---\ndependencies: [p/a]\ncommand: [cat, '{prompt_file}']\n---\n",
    );
    t.write(
        "tasks/p/code.md",
        "---\ncommand: [cat, '{prompt_file}']\n---\n\n    make all\n\nRun it.\n\n",
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        t.read("workspace/prompts/p/bare.attempt-1.md"),
        "## What the tasks before this one produced\n\n### `p/a`\n\n(it wrote no output files)\n"
    );
    assert_eq!(
        t.read("workspace/prompts/p/code.attempt-1.md"),
        "    make all\n\nRun it.\n"
    );
}

/// A dependency's output removed after it completed: the built-in prompt
/// says it is gone (it said nothing of it, or that the dependency wrote no
/// output files).
#[test]
fn the_built_in_prompt_says_a_dependency_s_output_is_gone() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "outputs: [notes.md, '*.json']\n{}",
            sh("echo n > $TASK_OUTPUT_DIR/notes.md; echo 1 > $TASK_OUTPUT_DIR/r.json")
        ),
    );
    t.run(&["orchestrate"]).code(0);
    std::fs::remove_file(t.path("workspace/outputs/p/a/notes.md")).unwrap();
    std::fs::remove_file(t.path("workspace/outputs/p/a/r.json")).unwrap();
    t.write(
        "tasks/p/b.md",
        "---\ndependencies: [p/a]\ncommand: [cat, '{prompt_file}']\n---\n",
    );
    t.run(&["orchestrate"]).code(0);
    let dir = t.path("workspace/outputs/p/a");
    assert_eq!(
        t.read("workspace/prompts/p/b.attempt-1.md"),
        format!(
            "## What the tasks before this one produced\n\n### `p/a`\n\nGone since it completed (removed after it wrote them): `{d}/notes.md`, `{d}/*.json`.\n",
            d = dir.display()
        )
    );
}

/// A folder a dependency wrote as its output (named, or matched by a
/// glob) is looked into: its files are quoted (the prompt said the task
/// wrote no output files).
#[test]
fn the_files_of_a_dependency_s_output_folder_are_quoted() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!(
            "outputs: [sub, \"g*\"]\n{}",
            sh("mkdir -p $TASK_OUTPUT_DIR/sub/deep $TASK_OUTPUT_DIR/g1 && echo inner > $TASK_OUTPUT_DIR/sub/deep/inner.txt && echo globbed > $TASK_OUTPUT_DIR/g1/x.txt")
        ),
    );
    t.write(
        "tasks/p/b.md",
        "---\ndependencies: [p/a]\ncommand: [cat, '{prompt_file}']\n---\n",
    );
    t.run(&["orchestrate"]).code(0);
    let out = t.root.join("workspace/outputs/p/a");
    assert_eq!(
        t.read("workspace/prompts/p/b.attempt-1.md"),
        format!(
            "## What the tasks before this one produced\n\n### `p/a`\n\n`{}`:\n\n```\ninner\n```\n\n`{}`:\n\n```\nglobbed\n```\n",
            out.join("sub/deep/inner.txt").display(),
            out.join("g1/x.txt").display()
        )
    );
}

/// So many dependencies that naming each one's files is too long for one
/// argument (a phase of hundreds of tasks): the last are counted, not
/// named, and `{prompt}` still works (it failed with `Argument list too
/// long`).
#[test]
fn the_built_in_prompt_counts_the_dependencies_it_cannot_name_in_one_argument() {
    let t = Tree::new();
    // Long names: fewer tasks make a long prompt.
    let long = "x".repeat(150);
    for i in 0..400 {
        t.task(
            &format!("p/{long}{i:03}"),
            &format!(
                "outputs: [out.txt]\n{}",
                sh("echo made > $TASK_OUTPUT_DIR/out.txt")
            ),
        );
    }
    t.task(
        "q/down",
        "dependencies: [p]\noutputs: [got.txt]\ncommand: [sh, -c, 'printf %s \"$1\" > $TASK_OUTPUT_DIR/got.txt', sh, '{prompt}']",
    );
    t.config("max_concurrent_agents: 8");
    t.run(&["orchestrate"]).code(0);
    let got = t.read("workspace/outputs/q/down/got.txt");
    assert_eq!(got, t.read("workspace/prompts/q/down.attempt-1.md"));
    assert!(got.len() <= 96 << 10, "{} bytes", got.len());
    assert!(
        got.contains(&format!("### `p/{long}000`")),
        "the first named"
    );
    assert!(!got.contains(&format!("`p/{long}399`")), "the last not");
    let named = got.matches("\n### `p/").count();
    let more = format!(
        "\n\nAnd {} more, not named: naming them would make this prompt too long. Each task's files are in its output folder, `{}/<its id>/`.\n",
        400 - named,
        t.root.join("workspace/outputs").display()
    );
    assert!(got.contains(&more), "{named} named:\n{got}");
    let down = t.root.join("workspace/outputs/q/down");
    let outputs = format!("## Outputs\n\nWrite got.txt into `{}`.\n", down.display());
    assert!(got.ends_with(&outputs), "{got}");
}

/// A body that leaves no room to name any dependency still says how many
/// there are and where their files are (the section went, silently).
#[test]
fn the_built_in_prompt_with_a_long_body_still_counts_the_dependencies() {
    let t = Tree::new();
    for i in 0..3 {
        t.task(&format!("p/a{i}"), &sh("true"));
    }
    // Near 96 KiB alone.
    let body = "word ".repeat(19_650);
    t.write(
        "tasks/q/down.md",
        &format!(
            "---\ndependencies: [p]\ncommand: [sh, -c, 'true', sh, '{{prompt}}']\n---\n{body}\n"
        ),
    );
    t.run(&["orchestrate"]).code(0);
    let got = t.read("workspace/prompts/q/down.attempt-1.md");
    let counted = format!(
        "## What the tasks before this one produced\n\nThere are 3, not named: naming them would make this prompt too long. Each task's files are in its output folder, `{}/<its id>/`.\n",
        t.root.join("workspace/outputs").display()
    );
    assert!(got.ends_with(&counted), "{}", &got[got.len() - 400..]);
    assert!(!got.contains("named, not quoted"), "no files named");
}

/// The built-in template is a starting point for one's own: a copy, edited,
/// is valid and says what the built-in says (its variables are every
/// template's: `outputs_dir`, `quote` always true, `left_out` always 0).
#[test]
fn a_copy_of_the_built_in_template_works_as_one_s_own() {
    let t = Tree::new();
    let built_in = include_str!("../../src/model/default_prompt.jinja");
    let mine = built_in.replace("## What the tasks before this one produced", "## Upstream");
    t.write("tasks/mine.jinja", &mine);
    t.task(
        "p/a",
        &format!(
            "outputs: [o.txt]\n{}",
            sh("echo made > $TASK_OUTPUT_DIR/o.txt")
        ),
    );
    t.task(
        "p/b",
        "dependencies: [p/a]\nprompt_file: mine.jinja\ncommand: [sh, -c, 'true', sh, '{prompt}']",
    );
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate"]).code(0);
    let got = t.read("workspace/prompts/p/b.attempt-1.md");
    assert!(got.contains("## Upstream\n\n### `p/a`\n\n`"), "{got}");
    assert!(got.contains("o.txt`:\n\n```\nmade\n```"), "{got}");
}

#[test]
fn a_task_s_own_template_wins_and_prompt_shows_the_next_attempt() {
    let t = Tree::new();
    // An agent whose log holds something (an empty log counts as no
    // attempt, see `reset` below).
    t.config("agent:\n  command: [\"echo\", \"ran\"]\n  prompt: \"shared {{ task.id }}\"\n");
    t.task("p/shared", "");
    t.task(
        "p/own",
        "prompt: \"own {{ task.id }}, attempt {{ attempt }}\"",
    );
    t.run(&["prompt", "p/shared"])
        .code(0)
        .says("shared p/shared");
    t.run(&["prompt", "p/own"])
        .code(0)
        .says("own p/own, attempt 1");
    t.run(&["orchestrate"]).code(0);
    t.run(&["prompt", "p/own"])
        .code(0)
        .says("own p/own, attempt 2");
    assert_eq!(
        t.read("workspace/prompts/p/own.attempt-1.md"),
        "own p/own, attempt 1"
    );
    // After a `reset` (no status), attempts number on from the logs kept,
    // as the run numbers them.
    t.run(&["reset", "p/own"]).code(0);
    t.run(&["prompt", "p/own"])
        .code(0)
        .says("own p/own, attempt 2");
    t.run(&["orchestrate"]).code(0);
    assert!(t.exists("workspace/prompts/p/own.attempt-2.md"));
}

/// `prompt` prints the prompt byte for byte as the agent gets it, also
/// one that does not end in a newline (it printed one more).
#[test]
fn prompt_prints_exactly_what_the_agent_is_given() {
    let t = Tree::new();
    t.config("agent:\n  command: [\"sh\", \"-c\", \"cp {prompt_file} $TASK_OUTPUT_DIR/got\"]\n");
    t.task("p/bare", "prompt: \"no newline after {{ task.id }}\"");
    t.task("p/ended", "prompt: \"a newline after {{ task.id }}\\n\\n\"");
    let printed = |id: &str| {
        let run = t.run(&["prompt", id]);
        run.code(0);
        run.stdout.clone()
    };
    let before = [printed("p/bare"), printed("p/ended")];
    t.run(&["orchestrate"]).code(0);
    assert_eq!(before[0], "no newline after p/bare");
    assert_eq!(before[0], t.read("workspace/outputs/p/bare/got"));
    assert_eq!(before[1], t.read("workspace/outputs/p/ended/got"));
}

/// A template file an editor saved with a byte order mark gives the agent
/// its text, not the mark first.
#[test]
fn a_template_file_s_byte_order_mark_is_no_part_of_the_prompt() {
    let t = Tree::new();
    t.config("agent:\n  command: [\"sh\", \"-c\", \"cp {prompt_file} $TASK_OUTPUT_DIR/got\"]\n  prompt_file: prompt.jinja\n");
    t.write("tasks/prompt.jinja", "\u{feff}Do {{ task.id }}.\n");
    t.task("p/a", "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/outputs/p/a/got"), "Do p/a.");
    t.run(&["prompt", "p/a"]).code(0).says("Do p/a.");
}

/// A result an agent built from a prompt quoting its dependencies' outputs
/// is stale once one of them changes, as one built from an input is; a
/// command not given a prompt is not taken to have read them.
#[test]
fn a_result_built_from_a_prompt_is_stale_once_what_it_quoted_changes() {
    let t = Tree::new();
    t.config("agent:\n  command: [sh, -c, 'true', sh, '{prompt_file}']\n");
    t.task(
        "01-a/up",
        &format!(
            "outputs: [out.txt]\n{}",
            sh("echo made > $TASK_OUTPUT_DIR/out.txt")
        ),
    );
    t.task("02-b/agent", "dependencies: [01-a/up]");
    t.task(
        "02-b/script",
        &format!("dependencies: [01-a/up]\n{}", sh("true")),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(progress_task(&t, "02-b/agent")["state"], "completed");
    t.write("workspace/outputs/01-a/up/out.txt", "changed\n");
    let agent = progress_task(&t, "02-b/agent");
    assert_eq!(agent["state"], "stale");
    assert_eq!(agent["stale_because"], "workspace/outputs/01-a/up/out.txt");
    assert_eq!(progress_task(&t, "02-b/script")["state"], "completed");
}

/// After a `reset` of a failed task, `prompt` shows the end of the failed
/// attempt's log, as its next attempt gets it (it showed an empty one).
#[test]
fn prompt_after_a_reset_shows_the_failed_attempt_s_log() {
    let t = Tree::new();
    t.config(
        "agent:\n  command: [sh, -c, 'echo the reason it broke; exit 3', sh, '{prompt_file}']\n",
    );
    t.task("p/a", "");
    t.run(&["orchestrate"]).code(1);
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["prompt", "p/a"])
        .code(0)
        .says("The end of its log:")
        .says("the reason it broke");
}

/// A template that fails only on a retry (a mistake `validate`'s stand-in
/// does not reach) fails the task without burning its retries on the same
/// mistake, and the attempt after the fix is told the failure before it,
/// not the template's.
#[test]
fn a_template_failing_on_a_retry_is_not_retried_and_the_real_failure_is_told() {
    let t = Tree::new();
    t.write(
        "tasks/p/f.md",
        "---\nretries: 3\ncommand: [sh, -c, 'echo \"told: $TASK_PREVIOUS_ERROR\" >> told; test -e fixed || exit 7', '{prompt_file}']\nprompt: \"{% set p = previous %}{% if p %}{{ p.eror }}{% endif %}Go.\"\n---\n",
    );
    t.run(&["validate"]).code(0);
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says("undefined value")
        .says("not retried, each attempt would fail the same way: fix the template, then run the task again");
    assert_eq!(t.read("told"), "told: \n");
    assert_eq!(t.status("p/f")["attempt"], 2);
    assert!(!run.stdout.contains("try 3 of 4"), "{}", run.stdout);
    t.write(
        "tasks/p/f.md",
        "---\nretries: 3\ncommand: [sh, -c, 'echo \"told: $TASK_PREVIOUS_ERROR\" >> told; test -e fixed || exit 7', '{prompt_file}']\nprompt: \"{% set p = previous %}{% if p %}{{ p.error }}{% endif %}Go.\"\n---\n",
    );
    t.write("fixed", "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("told"), "told: \ntold: exit code 7\n");
}

/// A run reads each task file once: a waiting task's body edited during
/// the run is not what this run's prompt says (its frontmatter was the
/// first read's: the prompt mixed the two); the next run takes the edit.
#[test]
fn a_body_edited_during_the_run_waits_for_the_next_run() {
    let t = Tree::new();
    t.task("p/long", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    let x = |body: &str| {
        format!("---\ndependencies: [p/long]\ncommand: [cat, '{{prompt_file}}']\n---\n{body}\n")
    };
    t.write("tasks/p/x.md", &x("VERSION ONE"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/long to run", || t.state("p/long") == "running");
    t.write("tasks/p/x.md", &x("VERSION TWO"));
    t.write("release", "");
    assert!(run.wait().unwrap().success());
    let body = |attempt: u32| {
        let prompt = t.read(&format!("workspace/prompts/p/x.attempt-{attempt}.md"));
        prompt.lines().next().unwrap().to_owned()
    };
    assert_eq!(body(1), "VERSION ONE");
    t.run(&["orchestrate", "--rerun-stale"]).code(0);
    assert_eq!(body(2), "VERSION TWO");
}

/// A template failing for a reason of its own is not told to guard
/// `previous`, which it does not use.
#[test]
fn a_template_failure_unrelated_to_previous_gets_no_guard_hint() {
    let t = Tree::new();
    t.config("agent:\n  prompt: \"Do {{ 1 / 0 }}.\"\n  command: [\"true\"]\n");
    t.task("p/a", "");
    let run = t.run(&["validate"]);
    run.code(2)
        .says("tasks/orchestrator.yaml:2: agent.prompt: the template fails on a first attempt: ");
    assert!(!run.stderr.contains("guard"), "{}", run.stderr);
}

/// A shared template that works for a task with a dependency but fails
/// for one without is found by `validate`, not at the second task's start.
#[test]
fn a_shared_template_is_checked_for_every_kind_of_task_that_uses_it() {
    let t = Tree::new();
    t.write("mark.sh", MARK);
    t.config("agent:\n  prompt: \"Dep: {{ deps[0].title }}\"\n  command: [\"sh\", \"mark.sh\"]\n");
    // The first task the template is rendered for has a dependency.
    t.task("p/a", "command: \"true\"");
    t.task("p/b", "dependencies: [p/a]");
    t.task("q/c", "");
    t.run(&["validate"])
        .code(2)
        .says("agent.prompt: the template fails on a first attempt");
    t.run(&["orchestrate"]).code(2).says("nothing was launched");
    assert_eq!(t.launches("p/a"), 0);
}

/// The shared template is checked while every task runs its own command:
/// a task one of them makes during the run would take it, and fail.
#[test]
fn a_shared_template_no_task_takes_yet_is_checked() {
    for (template, says) in [
        ("{{ task.nme }}", "unknown variable `task.nme`"),
        ("{{ task.id ", "agent.prompt"),
        (
            "{% for d in deps %}{{ d.outputs[0].txt }}{% endfor %}",
            "undefined value",
        ),
    ] {
        let t = Tree::new();
        t.config(&format!(
            "agent:\n  prompt: {}\n  command: [\"true\"]\n",
            serde_json::to_string(template).unwrap()
        ));
        t.task("p/a", "command: \"true\"");
        t.run(&["validate"])
            .code(2)
            .says("tasks/orchestrator.yaml:2: ")
            .says(says);
    }
    // A good one passes.
    let t = Tree::new();
    t.config("agent:\n  prompt: \"{{ task.id }}{{ task.outputs[0] }}{% for d in deps %}{{ d.id }}{% endfor %}\"\n  command: [\"true\"]\n");
    t.task("p/a", "command: \"true\"");
    t.run(&["validate"]).code(0);
    // Taken by a task, it is checked for that task, and for a stand-in
    // where that task runs: a worktree, though the config's default is
    // the root; a part only a task with a dependency renders is checked.
    let t = Tree::new();
    t.config("agent:\n  prompt: \"Work in {{ worktree }}.\"\n  command: [\"true\"]\n");
    t.task("p/a", "workdir: worktree\noutputs: [r.txt]");
    let run = t.run(&["validate"]);
    assert!(!run.stderr.contains("agent.prompt"), "{}", run.stderr);
    let t = Tree::new();
    t.config("agent:\n  prompt: \"{{ task.id }}{% for d in deps %}{{ d.nosuch.x }}{% endfor %}\"\n  command: [\"true\"]\n");
    t.task("p/a", "title: a");
    t.run(&["validate"])
        .code(2)
        .says("agent.prompt")
        .says("nosuch");
}

#[test]
fn template_mistakes_are_invalid_definitions_and_nothing_launches() {
    for (template, line, says) in [
        (
            // A `\n` escape is no line of the file: said at the key's.
            "Do {{ task.id }}.\\nThen {{ task.nme }}.",
            3,
            "agent.prompt: unknown variable `task.nme` in the template: `task` has no `nme`",
        ),
        (
            "Do {{ taks }}.",
            3,
            "agent.prompt: unknown variable `taks` in the template: the variables are task, deps",
        ),
        (
            "Do {{ task.id }.",
            3,
            "agent.prompt: syntax error: unexpected `}`, expected end of variable block",
        ),
        (
            "Retry: {{ previous.error }}",
            3,
            "agent.prompt: the template fails on a first attempt: undefined value in `previous.error` (`previous` is none on a first attempt: guard it with {% if previous %})",
        ),
    ] {
        let t = Tree::new();
        t.write("mark.sh", MARK);
        t.config(&format!(
            "# a comment\nagent:\n  prompt: \"{template}\"\n  command: [\"sh\", \"mark.sh\"]\n"
        ));
        t.task("p/a", "");
        let config = t.root.join("tasks/orchestrator.yaml");
        let at = format!(
            "{}:{line}: {says}",
            config.strip_prefix(&t.root).unwrap().display()
        );
        t.run(&["validate"]).code(2).says(&at);
        t.run(&["orchestrate"])
            .code(2)
            .says(&at)
            .says("nothing was launched");
        assert_eq!(t.launches("p/a"), 0);
    }
}

#[test]
fn a_prompt_file_names_its_file_and_line() {
    let t = Tree::new();
    t.write(
        "tasks/prompts/plan.jinja",
        "{# deps.nme is named here, in a comment #}\n{% if deps %}\n{{ deps.nme }}\n{% endif %}\n",
    );
    t.task("p/a", "prompt_file: prompts/plan.jinja\ncommand: \"true\"");
    t.run(&["validate"])
        .code(2)
        .says("tasks/prompts/plan.jinja:3: prompt_file: unknown variable `deps.nme`");
    t.task(
        "p/a",
        "prompt_file: prompts/missing.jinja\ncommand: \"true\"",
    );
    t.run(&["validate"])
        .code(2)
        .says("`prompt_file`: cannot read")
        .says("(the path is relative to tasks/)");
}

/// A `{name}` in a task's own argument list close to a placeholder is
/// warned of (it is passed as written); braces of the command's own
/// (`jq '{name}'`) are not.
#[test]
fn a_misspelled_placeholder_in_a_task_s_command_is_warned_of() {
    let t = Tree::new();
    t.task(
        "p/a",
        "command: [echo, \"{promt_file}\", \"{name}\", \"{task_id}\"]",
    );
    let run = t.run(&["validate"]);
    run.code(0).says(
        "tasks/p/a.md: `command` argument 2: `{promt_file}` is no placeholder: did you mean `{prompt_file}`?",
    );
    assert!(!run.stderr.contains("{name}"), "{}", run.stderr);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(
        t.read("workspace/logs/p/a.log"),
        "{promt_file} {name} p/a\n"
    );
}

/// A mistake in a prompt written in the task file is said at its line: a
/// literal block's lines are the file's; a quoted value's `\n` escapes are
/// not lines of the file, so a mistake after one is said at the key's.
#[test]
fn a_prompt_in_the_task_file_names_the_line_of_its_mistake() {
    let t = Tree::new();
    t.task(
        "p/a",
        "command: \"true\"\nprompt: \"Hello\\n{{ task.nme }}\"\noutputs: [x]",
    );
    t.run(&["validate"])
        .code(2)
        .says("tasks/p/a.md:3: prompt: unknown variable `task.nme`");
    t.task(
        "p/a",
        "command: \"true\"\nprompt: |\n  Hello\n  {{ task.nme }}\noutputs: [x]",
    );
    t.run(&["validate"])
        .code(2)
        .says("tasks/p/a.md:5: prompt: unknown variable `task.nme`");
}

/// A string `command:` runs with `sh -c`: a placeholder there refers to the
/// variable that holds its value, so a prompt (which may quote what an
/// upstream agent wrote) is one word and never shell code, and a path with
/// spaces stays one path, whatever quotes stand around it.
#[test]
fn placeholders_in_a_shell_command_are_one_word_and_never_run() {
    let t = Tree::new();
    let text = "hello $(touch pwned) `touch pwned`; touch pwned 'it''s' \"quoted\" \\ end";
    t.task(
        "my phase/a task",
        &format!(
            "prompt: {}\ncommand: {}",
            serde_json::to_string(text).unwrap(),
            serde_json::to_string(
                "printf %s {prompt} > $TASK_OUTPUT_DIR/bare; printf %s \"<{prompt}>\" > \"{output_dir}/double\"; printf %s '<{task_file}>' > {output_dir}/single; cat {task_file} > {output_dir}/copy"
            )
            .unwrap()
        ),
    );
    // Elsewhere in an argv the text itself is the argument.
    t.task(
        "my phase/argv",
        "prompt: some text\ncommand: [printf, \"%s\", \"{prompt}\"]",
    );
    // The dry run shows what runs: the references, not the text, and
    // where a prompt goes that only a launch renders.
    t.run(&["orchestrate", "--dry-run"])
        .code(0)
        .says("printf %s \"${TASK_PROMPT}\"")
        .says("printf %s {prompt}");
    t.run(&["orchestrate"]).code(0);
    let out = |name: &str| t.read(&format!("workspace/outputs/my phase/a task/{name}"));
    assert_eq!(out("bare"), text);
    assert_eq!(out("double"), format!("<{text}>"));
    let file = t.path("tasks/my phase/a task.md");
    assert_eq!(out("single"), format!("<{}>", file.display()));
    assert_eq!(out("copy"), t.read("tasks/my phase/a task.md"));
    assert!(!t.exists("pwned"));
    assert_eq!(t.read("workspace/logs/my phase/argv.log"), "some text");
}

#[test]
fn a_prompt_too_long_for_an_argument_says_to_pass_it_in_a_file() {
    let t = Tree::new();
    let long = "x".repeat(200 * 1024);
    t.task(
        "p/a",
        &format!("prompt: {long}\ncommand: [printf, \"%s\", \"{{prompt}}\"]"),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("Argument list too long")
        .says("`{prompt_file}` in the command instead of `{prompt}`");
}

#[test]
fn a_phase_depended_on_gives_its_tasks_to_the_prompt_each_once() {
    let t = Tree::new();
    t.task("01-a/x", &sh("true"));
    t.task("01-a/y", &sh("true"));
    t.task(
        "02-b/z",
        "dependencies: [\"01-a\", 01-a/x]\n\
         prompt: \"deps:{% for d in deps %} {{ d.id }}{% endfor %}\"\n\
         command: [cat, \"{prompt_file}\"]",
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/logs/02-b/z.log"), "deps: 01-a/x 01-a/y");
}

/// A template guarded by `attempt` rather than by `previous` would fail on
/// the attempt after a rate limit (which is no `previous`), spending a
/// retry: `validate` says so first.
#[test]
fn a_template_guarded_by_attempt_is_found_before_a_rate_limit_shows_it() {
    let t = Tree::new();
    t.task(
        "p/a",
        "prompt: \"{% if attempt > 1 %}Last time: {{ previous.error }}{% endif %}\"\ncommand: [cat, \"{prompt_file}\"]",
    );
    t.run(&["validate"])
        .code(2)
        .says("the template fails on an attempt after one that hit a rate limit (`attempt` is 2, `previous` none)")
        .says("guard it with {% if previous %}");
}

/// A template may name a dependency's declared output directly: every
/// one is there once the dependency completed. One it does not declare
/// is still a mistake found before anything runs.
#[test]
fn a_template_may_name_the_outputs_a_dependency_declares() {
    let t = Tree::new();
    t.task(
        "p/up",
        &format!("outputs: [out]\n{}", sh("echo made > $TASK_OUTPUT_DIR/out")),
    );
    t.task(
        "p/down",
        "dependencies: [p/up]\nprompt: \"got {{ deps[0].outputs[0].text }}\"\ncommand: [cat, \"{prompt_file}\"]",
    );
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.read("workspace/logs/p/down.log"), "got made\n");
    t.task(
        "p/other",
        "dependencies: [p/up]\nprompt: \"got {{ deps[0].outputs[1].text }}\"\ncommand: [cat, \"{prompt_file}\"]",
    );
    t.run(&["validate"])
        .code(2)
        .says("the template fails on a first attempt");
}

#[test]
fn a_mistake_inside_a_loop_over_outputs_is_found_before_anything_runs() {
    // The body of a loop over a dependency's outputs renders only once
    // one has outputs: after the dependency has run, and been paid for.
    let loops =
        "{% for d in deps %}{% for o in d.outputs %}{{ o.contents }}{% endfor %}{% endfor %}";
    for (id, frontmatter) in [
        ("p/by-name", "dependencies: [p/up]"),
        ("p/by-input", "inputs: [workspace/outputs/p/up/out]"),
    ] {
        let t = Tree::new();
        t.task(
            "p/up",
            &format!("outputs: [out]\n{}", sh("echo x > $TASK_OUTPUT_DIR/out")),
        );
        t.task(
            id,
            &format!("{frontmatter}\nprompt: \"{loops}\"\ncommand: [cat, \"{{prompt_file}}\"]"),
        );
        t.run(&["validate"])
            .code(2)
            .says("the template fails on a first attempt whose dependencies made outputs: undefined value in `o.contents` (an item of a dependency's `outputs` has path, text)");
    }
    // The fields of `deps`' items for a mistake in a loop over them, and
    // no fields for what is no loop's item.
    let t = Tree::new();
    t.task("p/up", &sh("true"));
    for (prompt, says) in [
        (
            "{% for d in deps %}{{ d.name }}{% endfor %}",
            "undefined value in `d.name` (an item of `deps` has id, title, message, commit, outputs)",
        ),
        ("{% set x = {} %}{{ x.foo }}", "undefined value in `x.foo`\n"),
        (
            "{% for d in deps %}{{ d.message | fence }}{% endfor %}",
            "`fence` takes a text, and this is none: guard it with `{% if ... %}`",
        ),
        (
            "{{ attempt | fence }}",
            "`fence` takes a text, and this is a number: make it a text first (`| string | fence`)",
        ),
        (
            "{{ attempt.x }}",
            "unknown variable `attempt.x` in the template: `attempt` has no fields (`{{ attempt }}` is all of it)",
        ),
    ] {
        t.task(
            "p/down",
            &format!("dependencies: [p/up]\nprompt: \"{prompt}\"\ncommand: [cat, \"{{prompt_file}}\"]"),
        );
        t.run(&["validate"]).code(2).says(says);
    }
}

/// A template's error names the whole variable that failed, not the part
/// from its index on (`[1].outputs` for `deps[1].outputs`).
#[test]
fn a_template_error_names_the_whole_variable() {
    let t = Tree::new();
    t.task(
        "p/up",
        &format!("outputs: [out]\n{}", sh("echo x > $TASK_OUTPUT_DIR/out")),
    );
    for (prompt, says) in [
        (
            "{{ deps[1].outputs }}",
            "undefined value in `deps[1].outputs`\n",
        ),
        (
            "{{ deps[0].outputs[3].text }}",
            "undefined value in `deps[0].outputs[3].text`\n",
        ),
        (
            "{% for d in deps %}{{ 'x' ~ d.outputs[2]['path'] }}{% endfor %}",
            "undefined value in `d.outputs[2]['path']`\n",
        ),
    ] {
        t.task(
            "p/down",
            &format!(
                "dependencies: [p/up]\nprompt: \"{prompt}\"\ncommand: [cat, \"{{prompt_file}}\"]"
            ),
        );
        t.run(&["validate"]).code(2).says(says);
    }
}

/// `prompt` on a task whose retry is running tells the next attempt of no
/// failure yet: the running status keeps the one *it* was told of (it
/// showed attempt 3 told attempt 1's failure).
#[test]
fn prompt_of_a_running_retry_tells_of_no_failure_yet() {
    let t = Tree::new();
    t.config("max_memory_gb: 0.25\nkill_grace: 1s\n");
    let script = "[ $TASK_ATTEMPT = 1 ] && { echo boom; exit 3; }; while [ ! -f release ]; do sleep 0.02; done";
    t.task(
        "p/a",
        &format!(
            "retries: 1\nprompt: \"previous={{{{ previous.error if previous else 'none' }}}}\"\ncommand: [sh, -c, {}, x, \"{{prompt_file}}\"]",
            serde_json::to_string(script).unwrap()
        ),
    );
    let mut run = t.start(&["orchestrate", "-q"]);
    wait_for("the retry to run", || {
        t.exists("workspace/status/p/a.json")
            && t.status("p/a")["attempt"] == 2
            && t.state("p/a") == "running"
    });
    t.run(&["prompt", "p/a"]).code(0).says("previous=none");
    t.write("release", "");
    run.wait().unwrap();
}

/// A prompt that grows past 10 MiB only with what the run gives it (the
/// task's body, empty in `validate`'s stand-in) fails its task as any
/// template that cannot render does, not retried.
#[test]
fn a_prompt_too_long_at_run_time_fails_its_task() {
    let t = Tree::new();
    t.write(
        "tasks/p/a.md",
        &format!(
            "---\nretries: 2\ncommand: [cat, '{{prompt_file}}']\nprompt: \"{{{{ task.body * 1000 }}}}\"\n---\n{}\n",
            "word ".repeat(4000)
        ),
    );
    t.run(&["validate"]).code(0);
    t.run(&["orchestrate"])
        .code(1)
        .says("tasks/p/a.md:4: prompt: the template fails: the prompt it renders is longer than 10 MiB")
        .says("fix the template");
    assert_eq!(t.launches("p/a"), 0);
}

/// The built-in prompt of a task whose dependencies made more than 10 MiB
/// to quote (1,300 files of 8 KiB quoted) names their files, as it does
/// past 96 KiB: the cap on a template's prompt is not the built-in's,
/// which quotes all before it shortens (it was refused as too long).
#[test]
fn the_built_in_prompt_names_files_that_would_quote_past_the_cap() {
    let t = Tree::new();
    for i in 0..1300 {
        t.task(
            &format!("p/u{i:04}"),
            "command: [\"true\"]\noutputs: [o.txt]",
        );
        t.write(
            &format!("workspace/outputs/p/u{i:04}/o.txt"),
            &"x".repeat(9000),
        );
    }
    t.task("q/down", "dependencies: [p]\ncommand: [echo, '{prompt}']");
    t.run(&["prompt", "q/down"])
        .code(0)
        .says("Their files are named, not quoted")
        .never_says("xxxx");
}
