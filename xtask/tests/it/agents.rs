//! Agents tell the truth: their results, rate limits, pools, costs and the
//! budget, read from stand-in `claude` and `codex` scripts that print the
//! recorded outputs of `tests/fixtures/agents/` (see `standin/claude`).

use std::collections::BTreeMap;

use crate::tree::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/agents");

/// The config's `agent:` for the stand-in `cli`, whose result is read.
pub fn agent(cli: &str, result: &str) -> String {
    format!("agent:\n  command: [\"sh\", \"{FIXTURES}/standin/{cli}\"]\n  result: {result}\n")
}

/// What the stand-in does in each attempt of `id` (see `standin/claude`).
pub fn scenario(t: &Tree, id: &str, attempts: &[&str]) {
    let key = id.replace('/', "_");
    t.write(&format!("scenarios/{key}"), &(attempts.join("\n") + "\n"));
}

/// A fixture's JSON (its last line that is one).
fn fixture(rel: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{rel}")).unwrap();
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap()
}

/// The attempts of `id` the stand-in ran, as (start, end) in ns.
fn runs(t: &Tree, id: &str) -> Vec<(u128, u128)> {
    let key = id.replace('/', "_");
    let text = std::fs::read_to_string(t.path(&format!("runs/{key}"))).unwrap_or_default();
    text.lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

/// What attempt `attempt` of `id` was given in its environment.
fn env_of(t: &Tree, id: &str, attempt: u32) -> BTreeMap<String, String> {
    let key = id.replace('/', "_");
    t.read(&format!("env/{key}.{attempt}"))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn error(t: &Tree, id: &str) -> String {
    t.status(id)["error"].as_str().unwrap_or("").to_owned()
}

fn ns(rfc3339: &str) -> u128 {
    let time = humantime::parse_rfc3339(rfc3339).unwrap();
    time.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn claude_results_decide_the_verdict_and_are_recorded() {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    for (id, attempts) in [
        ("p/ok", &["success.json"][..]),
        ("p/verbose", &["success_verbose_array.json"]),
        ("p/stream", &["stream.jsonl"]),
        ("p/api-error-exit-0", &["is_error.json 0"]),
        ("p/max-turns", &["error_max_turns.json 0"]),
        ("p/unreadable", &["unreadable 0"]),
        ("p/exit-1", &["error_max_turns.json 1"]),
    ] {
        t.task(id, "");
        scenario(&t, id, attempts);
    }
    let run = t.run(&["orchestrate"]);
    run.code(1);

    let success = fixture("claude/success.json");
    let ok = t.status("p/ok");
    assert_eq!(ok["status"], "completed");
    let agent = &ok["agent"];
    assert_eq!(agent["session_id"], success["session_id"]);
    assert_eq!(agent["turns"], success["num_turns"]);
    assert_eq!(agent["is_error"], false);
    assert_eq!(agent["subtype"], "success");
    assert_eq!(agent["cost_usd"], success["total_cost_usd"]);
    // The input written to Claude's cache is input not read from one.
    let usage = |key: &str| success["usage"][key].as_u64().unwrap();
    assert_eq!(
        agent["input_tokens"],
        usage("input_tokens") + usage("cache_creation_input_tokens")
    );
    assert_eq!(agent["output_tokens"], success["usage"]["output_tokens"]);
    assert_eq!(
        agent["cache_read_tokens"],
        success["usage"]["cache_read_input_tokens"]
    );
    assert_eq!(
        agent["cache_write_tokens"],
        success["usage"]["cache_creation_input_tokens"]
    );
    // A success whose permission system refused a tool call did less than
    // asked: the call is kept, and said by the run and by `why`.
    let refused = "Bash: git push origin HEAD";
    assert_eq!(agent["permission_denials"], serde_json::json!([refused]));
    assert_eq!(agent["refused_tool_calls"], 1);
    let done = run
        .stdout
        .lines()
        .find(|l| l.contains("done     p/ok "))
        .unwrap();
    assert!(done.ends_with("  1 tool call refused"), "{done}");
    // And in its log, after what the agent printed, with how to allow them.
    let log = t.read("workspace/logs/p/ok.log");
    assert!(
        log.trim_end().ends_with(&format!(
            "xtask: 1 tool call refused (a headless run cannot ask: allow them with --allowedTools or --permission-mode): {refused}"
        )),
        "{log}"
    );
    t.run(&["why", "p/ok"])
        .says(&format!(
            "  1 tool call refused (a headless run cannot ask: allow them with --allowedTools or --permission-mode): {refused}"
        ))
        // Its own account of what it did, and did not.
        .says("  its last message:\n    Added a `--dry-run` flag to `cargo xtask release`.")
        .says("    `cargo test -p xtask` passes (13 tests). I did not push: `git push` was denied by the permission settings.");
    let said = success["result"].as_str().unwrap();
    assert_eq!(agent["final_message"], said);
    assert_eq!(t.state("p/verbose"), "completed");
    assert_eq!(t.state("p/stream"), "completed");
    assert!(t.status("p/stream")["agent"]["cost_usd"].is_number());

    // Exit 0 is not success when the agent says it failed.
    assert_eq!(t.state("p/api-error-exit-0"), "failed");
    let why = t.run(&["why", "p/api-error-exit-0"]);
    assert!(
        why.stdout.contains(", is_error, 1 turn, $"),
        "{}",
        why.stdout
    );
    assert!(
        error(&t, "p/api-error-exit-0")
            .starts_with("agent error: api_error (HTTP 500): API Error: 500"),
        "{}",
        error(&t, "p/api-error-exit-0")
    );
    assert!(
        error(&t, "p/max-turns").starts_with("agent error: error_max_turns: "),
        "{}",
        error(&t, "p/max-turns")
    );
    assert!(error(&t, "p/unreadable").starts_with("agent output unreadable: "));
    // A non-zero exit keeps its error, and still records what it cost.
    let exit_1 = t.status("p/exit-1");
    assert!(
        error(&t, "p/exit-1").starts_with("exit code 1"),
        "{}",
        error(&t, "p/exit-1")
    );
    assert_eq!(
        exit_1["agent"]["cost_usd"],
        fixture("claude/error_max_turns.json")["total_cost_usd"]
    );
    assert_eq!(exit_1["exit_code"], 1);
}

/// `workspace/logs` removed while an agent works (old logs cleared by
/// hand): its result, printed after into the file its supervisor keeps, is
/// read, and its cost counted. The file was read back by its path once
/// the agent had ended: the result was "unreadable", the attempt failed,
/// what it cost was in no ledger, and the agent was paid to run again.
#[test]
fn an_agent_s_result_outlives_its_logs_folder_removed_while_it_works() {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    t.task("p/a", "retries: 1\n");
    scenario(&t, "p/a", &["success.json 0 until:go"]);
    let mut run = t.start(&["orchestrate"]);
    wait_for("the agent to work", || t.exists("env/p_a.1"));
    std::fs::remove_dir_all(t.path("workspace/logs")).unwrap();
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(runs(&t, "p/a").len(), 1, "the agent ran again");
    let cost = fixture("claude/success.json")["total_cost_usd"].clone();
    assert_eq!(t.status("p/a")["agent"]["cost_usd"], cost);
    assert!(t.read("workspace/ledger.jsonl").contains("p/a"));
}

/// `workspace/logs` removed after an agent ended and its supervisor had
/// let go of its kept stdout, before the run read its result (a busy
/// machine; here the run is stopped meanwhile): the run, which holds that
/// file from before the agent's start, puts it back, and the result and
/// cost are read. The attempt failed "unreadable", its cost in no ledger,
/// and the agent was paid to run again (a fault soak's finding).
#[test]
fn an_agent_s_result_outlives_its_logs_folder_removed_as_it_ends() {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    t.task("p/a", "retries: 1\n");
    scenario(&t, "p/a", &["success.json 0 until:go"]);
    let mut run = t.start(&["orchestrate"]);
    wait_for("the agent to work, its supervisor known", || {
        t.exists("env/p_a.1")
            && t.exists("workspace/status/p/a.json")
            && t.status("p/a")["supervisor_pid"].is_u64()
    });
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    signal(run.id(), libc::SIGSTOP);
    t.write("go", "");
    // The agent has ended, and its supervisor has closed its kept stdout:
    // past the supervisor's own put-back.
    let kept = t.path("workspace/logs/p/a.stdout");
    let holds_it = || {
        std::fs::read_dir(format!("/proc/{supervisor}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to == kept))
    };
    wait_for("the supervisor to let go of the agent's stdout", || {
        runs(&t, "p/a").len() == 1 && !holds_it()
    });
    std::fs::remove_dir_all(t.path("workspace/logs")).unwrap();
    signal(run.id(), libc::SIGCONT);
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(
        runs(&t, "p/a").len(),
        1,
        "the agent ran again: {}",
        t.read("workspace/events.jsonl")
    );
    assert!(t.read("workspace/ledger.jsonl").contains("p/a"));
}

/// An agent that printed its result and hangs, its run and supervisor
/// killed, then `workspace/logs` removed: the run that adopts it reads its
/// result from the file it still has open (its supervisor, which would
/// have put it back, is dead), and it completes with its cost counted. It
/// failed at its timeout, its result "unreadable" and its cost in no ledger.
#[test]
fn an_orphaned_agent_s_result_outlives_its_logs_folder_removed() {
    let t = Tree::new();
    t.config(&format!(
        "kill_grace: 1s\n{}",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "timeout: 3s\n");
    scenario(&t, "p/a", &["cut-at:1:success.json 0 0"]);
    let mut run = t.start(&["orchestrate"]);
    wait_for("the agent's result and its supervisor", || {
        t.exists("workspace/status/p/a.json")
            && t.status("p/a")["supervisor_pid"].is_u64()
            && std::fs::read_to_string(t.path("workspace/logs/p/a.stdout"))
                .is_ok_and(|out| out.contains("\"result\""))
    });
    let supervisor = t.status("p/a")["supervisor_pid"].as_u64().unwrap() as u32;
    run.kill().unwrap();
    run.wait().unwrap();
    signal(supervisor, libc::SIGKILL);
    std::fs::remove_dir_all(t.path("workspace/logs")).unwrap();
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.read("workspace/ledger.jsonl").lines().count(), 1);
}

/// The same, the attempt failing: its stdout, put back, is kept beside
/// the retry's as `attempt-1.stdout` (with no log to keep beside it, it
/// stayed, and the retry's supervisor made it empty).
#[test]
fn an_agent_s_output_put_back_is_kept_as_its_attempt_s_by_the_retry() {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    t.task("p/a", "retries: 1\n");
    scenario(
        &t,
        "p/a",
        &["error_max_turns.json 0 until:go", "success.json"],
    );
    let mut run = t.start(&["orchestrate"]);
    wait_for("the agent to work", || t.exists("env/p_a.1"));
    std::fs::remove_dir_all(t.path("workspace/logs")).unwrap();
    t.write("go", "");
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert_eq!(t.status("p/a")["attempt"], 2);
    let kept = t.read("workspace/logs/p/a.attempt-1.stdout");
    assert!(kept.contains("error_max_turns"), "{kept}");
}

/// A dependent's built-in prompt says what its dependency's agent said it
/// did: downstream is told what upstream made, in its own words.
#[test]
fn a_dependent_s_prompt_says_what_the_agent_before_it_said() {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    t.task("p/a", "");
    scenario(&t, "p/a", &["success.json"]);
    t.task(
        "q/b",
        "dependencies: [p/a]\ncommand: [sh, -c, 'cp {prompt_file} $TASK_OUTPUT_DIR/prompt.txt']\noutputs: [prompt.txt]",
    );
    t.run(&["orchestrate"]).code(0);
    let prompt = t.read("workspace/outputs/q/b/prompt.txt");
    let said = fixture("claude/success.json")["result"]
        .as_str()
        .unwrap()
        .replace('\n', "\n> ");
    let quoted = format!(
        "### `p/a`\n\nWhat it said when it finished:\n\n> {said}\n\n(it wrote no output files)"
    );
    assert!(prompt.contains(&quoted), "{prompt}");
}

#[test]
fn a_retry_is_told_the_agent_error_and_the_session_to_resume() {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    t.task("p/a", "retries: 1");
    scenario(&t, "p/a", &["error_max_turns.json 0", "success.json"]);
    t.run(&["orchestrate"]).code(0);
    let second = env_of(&t, "p/a", 2);
    assert!(
        second["previous_error"].starts_with("agent error: error_max_turns: "),
        "{second:?}"
    );
    assert_eq!(
        second["previous_session"],
        fixture("claude/error_max_turns.json")["session_id"]
            .as_str()
            .unwrap()
    );
    assert_eq!(env_of(&t, "p/a", 1)["previous_session"], "");
}

/// A Codex retry that resumes the thread of the attempt before it reports
/// the thread's running totals (openai/codex#17539): its status and the
/// budget count only what it added, not the first attempt's tokens again.
#[test]
fn a_codex_retry_that_resumes_its_thread_counts_only_its_own_tokens() {
    let t = Tree::new();
    t.config(&format!(
        "{}  prices: {{input: 1.25, cached_input: 0.125, output: 10}}\nbudget: {{usd: 100}}\n",
        agent("codex", "codex-jsonl")
    ));
    // Its second attempt resumes the thread and fails with no totals
    // printed: the third counts from the first's (it counted them again).
    t.task("p/a", "retries: 2");
    let attempts = [
        "success.jsonl 1",
        "resumed_turn_failed.jsonl 1",
        "resumed_success.jsonl",
    ];
    scenario(&t, "p/a", &attempts);
    t.run(&["orchestrate"]).code(0);
    let usage = |rel: &str| fixture(rel)["usage"].clone();
    let (first, totals) = (
        usage("codex/success.jsonl"),
        usage("codex/resumed_success.jsonl"),
    );
    let tokens = |u: &serde_json::Value, key: &str| u[key].as_f64().unwrap();
    let cost = |input: f64, cached: f64, output: f64| {
        ((input - cached) * 1.25 + cached * 0.125 + output * 10.0) / 1e6
    };
    let spent = |u: &serde_json::Value| {
        let of = |key| tokens(u, key);
        cost(
            of("input_tokens"),
            of("cached_input_tokens"),
            of("output_tokens"),
        )
    };
    assert_eq!(
        env_of(&t, "p/a", 3)["previous_session"],
        "019ff9a2-4c1e-7d30-9b8e-3f6a1c2d5e47"
    );
    let agent = &t.status("p/a")["agent"];
    let added = |key| tokens(&totals, key) - tokens(&first, key);
    let (input, cached) = (added("input_tokens"), added("cached_input_tokens"));
    assert_eq!(agent["input_tokens"], input - cached, "{agent}");
    assert_eq!(agent["cache_read_tokens"], cached, "{agent}");
    assert_eq!(agent["output_tokens"], added("output_tokens"), "{agent}");
    let own = cost(input, cached, added("output_tokens"));
    let recorded = agent["cost_usd"].as_f64().unwrap();
    assert!((recorded - own).abs() < 1e-9, "{recorded} != {own}");
    // The thread's totals stay, for a later attempt that resumes it again.
    assert_eq!(
        agent["thread_usage"]["input_tokens"],
        totals["input_tokens"]
    );
    let progress = t.run(&["progress", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&progress.stdout).unwrap();
    let budget_spent = json["budget"]["spent_usd"].as_f64().unwrap();
    let both = spent(&first) + own;
    assert!(
        (budget_spent - both).abs() < 0.01,
        "{budget_spent} != {both}: {}",
        progress.stdout
    );
    assert!(
        budget_spent < spent(&first) + spent(&totals) - 0.01,
        "counted twice"
    );
}

/// A Codex retry that resumes the thread, adopted by the next run after
/// the orchestrator was killed, still counts only what it added: its
/// running status keeps the failure it was told of, with the thread's
/// earlier totals (it counted the thread's totals as its own).
#[test]
fn a_codex_retry_adopted_after_a_kill_counts_only_its_own_tokens() {
    let t = Tree::new();
    t.config(&format!(
        "max_memory_gb: 0.25\n{}  prices: {{input: 1.25, cached_input: 0.125, output: 10}}\n",
        agent("codex", "codex-jsonl")
    ));
    t.task("p/a", "retries: 1");
    scenario(&t, "p/a", &["success.jsonl 1", "resumed_success.jsonl 0 2"]);
    let mut child = t.start(&["orchestrate"]);
    wait_for("the second attempt's start", || t.exists("env/p_a.2"));
    child.kill().unwrap();
    child.wait().unwrap();
    t.run(&["orchestrate"]).code(0);
    assert_eq!(runs(&t, "p/a").len(), 2, "adopted, not run again");
    let usage = |rel: &str| fixture(rel)["usage"].clone();
    let (first, totals) = (
        usage("codex/success.jsonl"),
        usage("codex/resumed_success.jsonl"),
    );
    let added = |key: &str| totals[key].as_f64().unwrap() - first[key].as_f64().unwrap();
    let agent = &t.status("p/a")["agent"];
    assert_eq!(agent["output_tokens"], added("output_tokens"), "{agent}");
    assert_eq!(
        agent["cache_read_tokens"],
        added("cached_input_tokens"),
        "{agent}"
    );
}

/// Codex prints the input its run wrote to the prompt cache
/// (`cache_write_input_tokens`, part of its `input_tokens`), which GPT-5.6
/// models bill at 1.25 times the input price: `agent.prices.cache_write`
/// prices them so, the rest of the uncached input at `input`.
#[test]
fn codex_cache_writes_are_priced_at_their_own_price() {
    let t = Tree::new();
    t.config(&format!(
        "{}  prices: {{input: 5, cached_input: 0.5, cache_write: 6.25, output: 30}}\n",
        agent("codex", "codex-jsonl")
    ));
    t.task("p/a", "");
    scenario(&t, "p/a", &["success_cache_writes.jsonl"]);
    t.run(&["orchestrate"]).code(0);
    let usage = &fixture("codex/success_cache_writes.jsonl")["usage"];
    let of = |key: &str| usage[key].as_f64().unwrap();
    let (input, cached, written) = (
        of("input_tokens"),
        of("cached_input_tokens"),
        of("cache_write_input_tokens"),
    );
    assert!(written > 0.0, "the fixture writes to the cache");
    let agent = &t.status("p/a")["agent"];
    assert_eq!(agent["input_tokens"], input - cached, "{agent}");
    assert_eq!(agent["cache_write_tokens"], written, "{agent}");
    let expected = ((input - cached - written) * 5.0
        + written * 6.25
        + cached * 0.5
        + of("output_tokens") * 30.0)
        / 1e6;
    let recorded = agent["cost_usd"].as_f64().unwrap();
    assert!(
        (recorded - expected).abs() < 1e-9,
        "{recorded} != {expected}"
    );
}

#[test]
fn codex_results_are_read_and_priced() {
    let t = Tree::new();
    // Codex prints no cost: the prices turn its tokens into one.
    t.config(&format!(
        "{}  prices: {{input: 1.25, cached_input: 0.125, output: 10}}\n",
        agent("codex", "none")
    ));
    // A task's `result:` overrides the config's.
    for (id, attempts) in [
        ("p/ok", &["success.jsonl"][..]),
        ("p/turn-failed", &["turn_failed_invalid_request.jsonl 0"]),
        ("p/empty", &["empty.jsonl 0"]),
    ] {
        t.task(id, "result: codex-jsonl");
        scenario(&t, id, attempts);
    }
    t.run(&["orchestrate"]).code(1);

    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(format!("{FIXTURES}/codex/success.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let usage = &lines
        .iter()
        .rev()
        .find(|l| l["type"] == "turn.completed")
        .unwrap()["usage"];
    let (input, cached, output) = (
        usage["input_tokens"].as_f64().unwrap(),
        usage["cached_input_tokens"].as_f64().unwrap(),
        usage["output_tokens"].as_f64().unwrap(),
    );
    let ok = t.status("p/ok");
    assert_eq!(ok["status"], "completed");
    assert_eq!(ok["agent"]["session_id"], lines[0]["thread_id"]);
    // Read as Claude's: the input not read from a cache.
    assert_eq!(ok["agent"]["input_tokens"], input - cached);
    assert_eq!(ok["agent"]["cache_read_tokens"], cached);
    assert_eq!(ok["agent"]["output_tokens"], usage["output_tokens"]);
    let cost = ((input - cached) * 1.25 + cached * 0.125 + output * 10.0) / 1e6;
    let recorded = ok["agent"]["cost_usd"].as_f64().unwrap();
    assert!((recorded - cost).abs() < 1e-9, "{recorded} != {cost}");
    // Codex says nothing of is_error or a subtype: left out, not invented.
    assert!(ok["agent"].get("is_error").is_none());
    assert!(ok["agent"].get("subtype").is_none());
    // Its last agent message, as `why` shows it.
    let message = lines
        .iter()
        .rev()
        .find(|l| l["item"]["type"] == "agent_message")
        .unwrap()["item"]["text"]
        .clone();
    assert_eq!(ok["agent"]["final_message"], message);
    t.run(&["why", "p/ok"]).says(&format!(
        "  its last message:\n    {}",
        message.as_str().unwrap()
    ));

    assert!(
        error(&t, "p/turn-failed").starts_with("agent error: turn.failed: Invalid schema"),
        "{}",
        error(&t, "p/turn-failed")
    );
    assert!(error(&t, "p/empty").starts_with("agent output unreadable: "));
}

#[test]
fn progress_totals_are_the_sum_of_the_statuses() {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    for (id, attempts) in [
        ("a/one", &["success.json"][..]),
        ("a/two", &["stream.jsonl"]),
        ("b/three", &["error_max_turns.json 1"]),
        ("b/four", &["unreadable 0"]),
    ] {
        t.task(id, "");
        scenario(&t, id, attempts);
    }
    t.run(&["orchestrate"])
        .code(1)
        .says(" spent, not counting 1 agent attempt of unknown cost)");
    let progress = t.run(&["progress", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&progress.stdout).unwrap();
    let ids = ["a/one", "a/two", "b/three", "b/four"];
    let sum = |field: &str| -> f64 {
        ids.iter()
            .filter_map(|id| t.status(id)["agent"][field].as_f64())
            .sum()
    };
    let close = |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-9;
    assert!(
        close(&json["cost_usd"], sum("cost_usd")),
        "{}",
        json["cost_usd"]
    );
    assert!(close(&json["input_tokens"], sum("input_tokens")));
    assert!(close(&json["output_tokens"], sum("output_tokens")));
    let phase_a = &json["phases"][0];
    let a_sum: f64 = ["a/one", "a/two"]
        .iter()
        .map(|id| t.status(id)["agent"]["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(close(&phase_a["cost_usd"], a_sum));
    let task = progress_task(&t, "a/one");
    assert_eq!(task["cost_usd"], t.status("a/one")["agent"]["cost_usd"]);
    t.run(&["progress"])
        .code(0)
        .says("Cost of the latest attempts: $");
    t.run(&["report"]).code(0);
    let report = t.read("workspace/report.html");
    assert!(report.contains("<th>cost</th>"));
    assert!(report.contains(&format!("Phase cost (latest attempts): ${a_sum:.2}")));
}

#[test]
fn a_rate_limit_with_a_reset_time_pauses_the_pool_and_halves_it_without_burning_an_attempt() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 2}}\n",
        agent("claude", "claude-json")
    ));
    // `0-limited` and `a` start together (tasks start in id order);
    // `0-limited` hits the limit at once, which resets 3 s later, and then
    // succeeds.
    t.task("p/0-limited", "retries: 0");
    scenario(&t, "p/0-limited", &["limit-in:3 1", "success.json 0 0.3"]);
    for id in ["p/a", "p/b", "p/c", "p/d"] {
        t.task(id, "");
        scenario(&t, id, &["success.json 0 0.5"]);
    }
    let mut child = t.start(&["orchestrate"]);
    wait_for("the rate limit", || {
        t.exists("workspace/status/p/0-limited.json")
            && t.status("p/0-limited")["rate_limited_until"].is_string()
    });
    let paused = t.status("p/0-limited");
    assert_eq!(paused["pool"], "anthropic");
    assert!(error(&t, "p/0-limited").starts_with("rate limited: Claude AI usage limit reached|"));
    t.run(&["why", "p/0-limited"])
        .says("is paused: rate limited until")
        .says("(pool anthropic)");
    t.run(&["progress"])
        .says("paused   p/0-limited: rate limited until");
    // The expected end waits for the pause: the task starts no sooner.
    let json = t.run(&["progress", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let until = ns(paused["rate_limited_until"].as_str().unwrap());
    let end = ns(doc["expected_end"].as_str().unwrap());
    assert!(
        end >= until,
        "expected end {end} before the pause's end {until}"
    );
    assert!(child.wait().unwrap().success());

    let done = t.status("p/0-limited");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["attempt"], 2, "the limited attempt is not a failure");
    // Each change of state is an event: the pause ends, the task is
    // pending again, then starts.
    assert_eq!(
        changes(&t, "p/0-limited"),
        [
            "pending -> running",
            "running -> paused",
            "paused -> pending",
            "pending -> running",
            "running -> completed"
        ]
    );
    let all = events(&t);
    let at = all
        .iter()
        .position(|e| e["event"] == "rate_limited")
        .expect("a rate_limited event");
    let until = ns(all[at]["until"].as_str().unwrap());
    // Nothing of the pool starts between the limit and its reset: in the
    // events' order, as the run saw them (a task launched before the limit
    // may start its process after the limited one ended). Event times are
    // to the millisecond.
    for e in &all[at..] {
        if e["to"] == "running" {
            assert!(
                ns(e["time"].as_str().unwrap()) + 1_000_000 > until,
                "{} started during the pause",
                e["task"]
            );
        }
    }
    let mut starts: Vec<(u128, u128, &str)> = Vec::new();
    for id in ["p/0-limited", "p/a", "p/b", "p/c", "p/d"] {
        let runs = runs(&t, id);
        for &(start, end) in &runs {
            starts.push((start, end, id));
        }
    }
    starts.sort();
    // After the pause the pool runs one task (half of 2) until one succeeds,
    // then two again.
    let after: Vec<&(u128, u128, &str)> = starts.iter().filter(|s| s.0 >= until).collect();
    assert_eq!(after.len(), 4, "{after:?}");
    let first = after[0];
    assert!(
        after[1].0 >= first.1,
        "the second task after the pause started before the first ended: {after:?}"
    );
    let overlap = after.windows(2).any(|w| w[1].0 < w[0].1);
    assert!(overlap, "the pool never grew back: {after:?}");
}

/// A pool whose cap is over the run's `-j` runs at most `-j` of its
/// tasks: a rate limit halves that, not the cap (which, halved to `-j`,
/// would lower nothing).
#[test]
fn a_rate_limit_halves_a_pool_capped_over_the_run_s_jobs_to_half_of_them() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 4}}\n",
        agent("claude", "claude-json")
    ));
    // `0-limited` and `a` start together (`-j 2`); `0-limited` hits a
    // limit at once, which resets 2 s later, and then succeeds.
    t.task("p/0-limited", "retries: 0");
    scenario(&t, "p/0-limited", &["limit-in:2 1", "success.json 0 0.5"]);
    for id in ["p/a", "p/b", "p/c"] {
        t.task(id, "");
        scenario(&t, id, &["success.json 0 0.5"]);
    }
    t.run(&["orchestrate", "-j", "2"]).code(0);
    let until = events(&t)
        .iter()
        .find(|e| e["event"] == "rate_limited")
        .map(|e| ns(e["until"].as_str().unwrap()))
        .expect("a rate_limited event");
    let mut after: Vec<(u128, u128)> = ["p/0-limited", "p/a", "p/b", "p/c"]
        .iter()
        .flat_map(|id| runs(&t, id))
        .filter(|run| run.0 >= until)
        .collect();
    after.sort();
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(
        after[1].0 >= after[0].1,
        "two tasks of the pool started together after the limit, as many as before it: {after:?}"
    );
}

/// A run killed during a pool's pause and started again keeps the pool
/// halved (`workspace/pools.json`): the pause over, its tasks do not all
/// start together, and those that started before the limit do not grow it
/// back as they end.
#[test]
fn a_pool_halved_by_a_rate_limit_stays_halved_across_a_restart() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 4}}\n",
        agent("claude", "claude-json")
    ));
    // `0-limited`, `a`, `b` and `c` start together; `0-limited` hits a
    // limit at once, which resets 2 s later: the pool halves to 2 while
    // the others work on.
    t.task("p/0-limited", "retries: 0");
    scenario(&t, "p/0-limited", &["limit-in:2 1", "success.json 0 0.3"]);
    let long = ["p/a", "p/b", "p/c"];
    for id in long {
        t.task(id, "");
        scenario(&t, id, &["success.json 0 4"]);
    }
    for id in ["p/d", "p/e"] {
        t.task(id, "");
        scenario(&t, id, &["success.json 0 0.3"]);
    }
    let mut child = t.start(&["orchestrate"]);
    wait_for("the rate limit", || {
        t.exists("workspace/status/p/0-limited.json")
            && t.status("p/0-limited")["rate_limited_until"].is_string()
    });
    // Killed: `a`, `b` and `c` run on, under their supervisor.
    child.kill().unwrap();
    child.wait().unwrap();
    let saved: serde_json::Value = serde_json::from_str(&t.read("workspace/pools.json")).unwrap();
    assert_eq!(saved["anthropic"]["limit"], 2, "{saved}");
    t.run(&["next"])
        .says("pool anthropic at most 2 at once, lowered by a rate limit");
    t.run(&["orchestrate"]).code(0);
    let mut ends: Vec<u128> = long.iter().map(|id| runs(&t, id)[0].1).collect();
    ends.sort();
    let mut later = vec![("p/0-limited", runs(&t, "p/0-limited")[1].0)];
    later.extend(["p/d", "p/e"].map(|id| (id, runs(&t, id)[0].0)));
    for (id, start) in later {
        assert!(
            start >= ends[1],
            "{id} started while 3 of the pool ran, its limit 2"
        );
    }
}

/// What `pools.json` keeps is taken up as the settings are now: a backoff
/// kept under a larger `max_backoff` does not make the next limit wait
/// past `give_up_after`, and a limit at the pool's cap is none.
#[test]
fn a_kept_pool_state_is_taken_up_as_the_settings_are_now() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 2}}\n\
         rate_limits: {{backoff: 1s, max_backoff: 2s, give_up_after: 30s}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    scenario(&t, "p/a", &["rate_limited_api_429.json 1", "success.json"]);
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    t.write(
        "workspace/pools.json",
        &format!("{{\"anthropic\": {{\"limit\": 2, \"backoff_seconds\": 1800.0, \"limited_at\": \"{now}\"}}}}"),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!(runs(&t, "p/a").len(), 2);
}

/// A `pools.json` that cannot be read is said, and left as it is, never
/// written over: the pools start as configured.
#[test]
fn an_unreadable_pools_file_is_said_and_kept() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 2}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/limited", "retries: 0");
    scenario(&t, "p/limited", &["limit-in:1 1", "success.json"]);
    t.write("workspace/pools.json", "{\"anthropic\": ");
    t.run(&["orchestrate"])
        .code(0)
        .says("pools.json cannot be read: it is left as it is")
        .says("the pools start as configured");
    assert_eq!(runs(&t, "p/limited").len(), 2);
    assert_eq!(t.read("workspace/pools.json"), "{\"anthropic\": ");
}

/// What waits on a task a rate limit paused says it is paused, in every
/// view, as the task's own `why` and `progress` do.
#[test]
fn what_waits_on_a_paused_task_says_it_is_paused() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 2}}\nkill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/limited", "");
    scenario(&t, "p/limited", &["limit-in:600 1"]);
    t.task(
        "q/after",
        &format!("dependencies: [p/limited]\n{}", sh("true")),
    );
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut child = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the rate limit", || {
        t.exists("workspace/status/p/limited.json")
            && t.status("p/limited")["rate_limited_until"].is_string()
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    let summary = t.read("out");
    assert!(
        summary.contains("q/after: waits on p/limited (paused by a rate limit)"),
        "{summary}"
    );
    t.run(&["why", "q/after"])
        .says("waits on p/limited (paused: rate limited");
    t.run(&["next"])
        .says("q/after: waits on p/limited (paused by a rate limit)");
    // The run waits the pause out: nothing is stuck, the dry run exits 0.
    t.run(&["orchestrate", "--dry-run"])
        .code(0)
        .says("would wait for a rate limit's pause: p/limited: paused")
        .says("would wait for a rate limit's pause: q/after: waits on p/limited (paused by a rate limit)");
}

/// A command that runs Claude Code or Codex printing a result that is not
/// read (no `agent.result`, no `result:`) is warned of, naming the result
/// to set: `claude -p` exits 0 having failed, and the task would pass.
#[test]
fn a_cli_printing_a_result_that_is_not_read_is_warned_of() {
    let t = Tree::new();
    let claude = format!("{FIXTURES}/standin/claude");
    t.config(&format!(
        "agent:\n  command: [sh, {claude}, -p, --output-format, json, go]\n"
    ));
    t.task("p/a", "");
    t.task(
        "p/b",
        &format!("command: [sh, {FIXTURES}/standin/codex, exec, --json, go]"),
    );
    t.run(&["validate"])
        .code(0)
        .says("tasks/orchestrator.yaml:2: agent.command runs `claude` with a JSON `--output-format`, but agent.result is none")
        .says("set `agent.result: claude-json`")
        .says("tasks/p/b.md: its command runs `codex exec --json`, but its result is not read")
        .says("add `result: codex-jsonl` to it");
    // Read: nothing to say.
    t.config(&format!(
        "agent:\n  command: [sh, {claude}, -p, --output-format, json, go]\n  result: claude-json\n"
    ));
    t.task(
        "p/b",
        &format!("command: [sh, {FIXTURES}/standin/codex, exec, --json, go]\nresult: codex-jsonl"),
    );
    let quiet = t.run(&["validate"]);
    quiet.code(0);
    assert!(!quiet.stderr.contains("is not read"), "{}", quiet.stderr);
}

/// `claude -p` printing text (no JSON `--output-format`) is warned of
/// before anything runs: its exit code is all a run can judge it by, and
/// it exits 0 on an API error, printing `API Error: Rate limit reached`
/// (anthropics/claude-code#79500): that run counted as completed, its
/// limit never waited out, with no word of it. Not when its output goes
/// elsewhere (`> out.md`), nor once it prints JSON.
#[test]
fn claude_printing_text_is_warned_of_as_judged_by_its_exit_code() {
    let t = Tree::new();
    let claude = format!("{FIXTURES}/standin/claude");
    t.config(&format!("agent:\n  command: [sh, {claude}, -p, go]\n"));
    t.task("p/a", "");
    t.task("p/b", &format!("command: \"sh {claude} --print go\""));
    t.task(
        "p/c",
        &format!("command: \"sh {claude} -p go > $TASK_OUTPUT_DIR/out.md\""),
    );
    t.run(&["validate"])
        .code(0)
        .says("tasks/orchestrator.yaml:2: agent.command runs `claude -p` printing text, whose result cannot be read: `claude -p` exits 0 on an API error (`API Error: Rate limit reached`), which counts as completed, its limit not waited for, and its cost is not counted; add `--output-format json` to it and set `agent.result: claude-json`")
        .says("tasks/p/b.md: its command runs `claude -p` printing text, whose result cannot be read: `claude -p` exits 0 on an API error")
        .says("add `--output-format json` to it and `result: claude-json`")
        .never_says("tasks/p/c.md");
    t.config(&format!(
        "agent:\n  command: [sh, {claude}, -p, --output-format, json, go]\n  result: claude-json\n"
    ));
    t.task("p/b", "");
    let quiet = t.run(&["validate"]);
    quiet.code(0);
    assert!(!quiet.stderr.contains("printing text"), "{}", quiet.stderr);
}

/// `codex exec --experimental-json`, the flag's old name, which Codex still
/// takes for `--json` (`alias = "experimental-json"` in openai/codex
/// `codex-rs/exec/src/cli.rs`) and prints the same events with, is a
/// command whose result is not read as much as `--json` is.
#[test]
fn codex_s_old_experimental_json_flag_is_warned_of_unread_too() {
    let t = Tree::new();
    t.task(
        "p/a",
        &format!("command: [sh, {FIXTURES}/standin/codex, exec, --experimental-json, go]"),
    );
    t.run(&["validate"])
        .code(0)
        .says("tasks/p/a.md: its command runs `codex exec --json`, but its result is not read")
        .says("add `result: codex-jsonl` to it");
}

/// An idle timeout on an agent that prints nothing until it ends
/// (`claude -p`, its result one JSON object) is warned of before anything
/// runs: its log does not grow while it works, and every run longer than
/// the idle timeout was stopped, and run again, paid for each time. Not
/// one that streams its events (`stream-json`), nor one with no idle
/// timeout.
#[test]
fn an_idle_timeout_on_an_agent_quiet_until_its_end_is_warned_of() {
    let t = Tree::new();
    let claude = format!("{FIXTURES}/standin/claude");
    t.config(&format!(
        "agent:\n  command: [sh, {claude}, -p, --output-format, json, go]\n  result: claude-json\n"
    ));
    t.task("p/a", "idle_timeout: 20m");
    t.task("p/b", "title: no idle timeout");
    t.task(
        "p/c",
        &format!("idle_timeout: 20m\nresult: claude-json\ncommand: [sh, {claude}, -p, --output-format, stream-json, --verbose, go]"),
    );
    let validate = t.run(&["validate"]);
    validate
        .code(0)
        .says("tasks/p/a.md: its idle_timeout (20m) counts from its log's last growth, but its command runs `claude -p` without `--output-format stream-json`");
    for quiet in ["p/b.md", "p/c.md"] {
        assert!(!validate.stderr.contains(quiet), "{}", validate.stderr);
    }
}

/// A `prompt_patterns` pattern written as a regular expression
/// (`Continue\?\s*$`) is text, which no question holds: warned of before
/// anything runs, rather than left to match nothing while a task waits
/// on that question until its timeout.
#[test]
fn a_prompt_pattern_written_as_a_regex_is_warned_of() {
    let t = Tree::new();
    t.config("prompt_patterns: ['Continue\\?\\s*$', '(y/n)', 'Proceed.*']\n");
    t.task("p/a", &sh("true"));
    let validate = t.run(&["validate"]);
    validate
        .code(0)
        .says("prompt_patterns: `Continue\\?\\s*$` is text, not a regular expression")
        .says("prompt_patterns: `Proceed.*` is text");
    assert!(!validate.stderr.contains("`(y/n)`"), "{}", validate.stderr);
}

/// A task that never ran, held only by its pool's pause (another task's
/// limit), is said paused by `why` and by the dry run, as by `next`: not
/// one the next run starts at once, nor one that would never start.
#[test]
fn a_task_held_by_its_pool_s_pause_is_said_to_wait_for_it() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 1}}\nkill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/limited", "priority: 5");
    scenario(&t, "p/limited", &["limit-in:600 1"]);
    t.task("p/other", "");
    scenario(&t, "p/other", &["success.json"]);
    let mut run = t.start(&["orchestrate"]);
    wait_for("the rate limit", || {
        t.exists("workspace/status/p/limited.json")
            && t.status("p/limited")["rate_limited_until"].is_string()
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    run.wait().unwrap();
    assert!(!t.exists("workspace/status/p/other.json"));
    t.run(&["next"]).says("p/other: paused: rate limited until");
    t.run(&["why", "p/other"])
        .says("its pool's pause: rate limited until")
        .says("(pool anthropic); the next `");
    t.run(&["orchestrate", "--dry-run"])
        .code(0)
        .says("would wait for a rate limit's pause: p/other: paused: rate limited until");
    // One of the pool that waits on a failure is not held by the pause.
    t.task("r/dep", &sh("exit 1"));
    t.task("p/child", "dependencies: [r/dep]");
    t.run(&["orchestrate", "--dry-run", "--task", "p/child"])
        .code(1)
        .says("would not start: p/child: waits on r/dep");
}

/// A task that never ran, held only by its pool's pause (another task's
/// limit), is shown paused, with its pool and until when, in every view,
/// as `next` says it: the live view, the summary of a run stopped then,
/// `progress` (counted among the paused, its `--json` and `--tasks`),
/// `graph`, `report` and `why` of its phase showed it pending (and what
/// waits on it said it not started); the live view lists the first five
/// paused, then how many more. One that waits on it is pending: its
/// dependency holds it.
#[test]
fn a_task_held_by_its_pool_s_pause_is_shown_paused_in_every_view() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 1}}\nkill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/limited", "priority: 5");
    scenario(&t, "p/limited", &["limit-in:600 1"]);
    t.task("p/other", "");
    scenario(&t, "p/other", &["success.json"]);
    t.task("p/after", "dependencies: [p/other]");
    scenario(&t, "p/after", &["success.json"]);
    // Held by the pause too: the live view lists the first five paused.
    for i in 1..=4 {
        t.task(&format!("p/x{i}"), "");
    }
    // The run's live view, on a terminal, until it shows the pause.
    let mut run = terminal_command(&t, "orchestrate", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = run.stdout.take().unwrap();
    let drawn = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let drawn = drawn.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
                drawn.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let shown_paused = || {
        let text = String::from_utf8_lossy(&drawn.lock().unwrap()).into_owned();
        // Its line in the frame, the pool's pause after its id.
        let line = |at: usize| text[at..].chars().take(120).collect::<String>();
        let listed = (text
            .match_indices("paused   p/other ")
            .map(|(at, _)| line(at)))
        .any(|line| line.contains(" rate limited until ") && line.contains("(pool anthropic)"));
        listed
            && text.contains("6 paused")
            && text.contains("paused   p/x3 ")
            && text.contains("paused   and 1 more paused (`")
    };
    wait_for("the live view to show p/other paused", shown_paused);
    let pid: u32 = t.read("workspace/.lock").trim().parse().unwrap();
    signal(pid, libc::SIGTERM);
    run.wait().unwrap();
    reader.join().unwrap();
    // Its summary, as it stopped, too.
    let drawn = String::from_utf8_lossy(&drawn.lock().unwrap()).into_owned();
    for said in [
        "p/other: paused by a rate limit, not started: the run was stopped",
        "p/after: waits on p/other (paused by a rate limit)",
    ] {
        assert!(drawn.contains(said), "{said} in {drawn}");
    }
    assert!(!t.exists("workspace/status/p/other.json"));
    // The clock time `next` gives, every view gives.
    let next = t.run(&["next"]).stdout;
    assert!(
        next.contains("p/after: waits on p/other (paused by a rate limit)"),
        "{next}"
    );
    let said = next
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("p/other: paused: rate limited until ")
        })
        .and_then(|rest| rest.split(" (pool").next())
        .unwrap_or_else(|| panic!("{next}"))
        .to_owned();
    let paused = format!("rate limited until {said} (pool anthropic)");
    t.run(&["progress"])
        .code(0)
        .says(&format!("paused   p/other: {paused}"))
        .says("Paused: 6");
    let json = progress_json(&t);
    assert_eq!(json["total"]["paused"], 6, "{json}");
    assert_eq!(json["total"]["pending"], 1, "{json}");
    let line = |id: &str| {
        (json["tasks"].as_array().unwrap().iter())
            .find(|task| task["task_id"] == id)
            .unwrap()
            .clone()
    };
    let other = line("p/other");
    assert_eq!(other["state"], "paused", "{other}");
    assert_eq!(other["pool"], "anthropic", "{other}");
    assert!(other["rate_limited_until"].is_string(), "{other}");
    assert_eq!(line("p/after")["state"], "pending");
    let listed = (json["phases"][0]["paused_tasks"].as_array().unwrap().iter())
        .find(|task| task["task_id"] == "p/other")
        .unwrap_or_else(|| panic!("{json}"))
        .clone();
    assert_eq!(listed["pool"], "anthropic", "{listed}");
    t.run(&["progress", "--tasks"])
        .says(&format!("paused     p/other  {paused}"))
        .says("pending    p/after");
    t.run(&["why", "p"])
        .says(&format!("paused     p/other  {paused}"))
        .says("pending    p/after");
    t.run(&["graph"])
        .says("[\"other\"]:::paused")
        .says("[\"after\"]:::pending");
    t.run(&["report"]).code(0);
    let html = t.read("workspace/report.html");
    let row = "<tr class=\"paused\"><td>p/other</td><td>paused</td>";
    assert!(html.contains(row), "{row} in {html}");
    assert!(html.contains(&format!("<td>{paused}</td></tr>")), "{html}");
}

/// A run that takes up a task a rate limit paused says so, and until
/// when: off a terminal it said nothing until the pause ended.
#[test]
fn a_run_resumed_during_a_pause_says_what_it_waits_for() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 2}}\nkill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/limited", "");
    scenario(&t, "p/limited", &["limit-in:4 1", "success.json"]);
    let mut child = t.start(&["orchestrate"]);
    wait_for("the rate limit", || {
        t.exists("workspace/status/p/limited.json")
            && t.status("p/limited")["rate_limited_until"].is_string()
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    t.run(&["orchestrate"])
        .code(0)
        .says("paused   p/limited")
        .says("(pool anthropic): it starts again then");
    assert_eq!(t.state("p/limited"), "completed");
}

/// A task whose own pause is over waits for its pool's, another task's:
/// every view says it is paused, and the dry run that it would wait (it
/// said the task would never start, and exited 1).
#[test]
fn a_task_whose_pool_is_paused_by_another_is_paused_in_every_view() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 2}}\nkill_grace: 1s\n\
         rate_limits: {{backoff: 1s, max_backoff: 1s, give_up_after: 1h}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/near", "");
    t.task("p/far", "");
    t.task(
        "q/after",
        &format!("dependencies: [p/near]\n{}", sh("true")),
    );
    scenario(
        &t,
        "p/near",
        &["rate_limited_api_429.json 1", "success.json"],
    );
    scenario(&t, "p/far", &["limit-in:600 1 0.5", "success.json"]);
    stop_once_both_paused(&t);
    let until = t.status("p/near")["rate_limited_until"]
        .as_str()
        .unwrap()
        .to_owned();
    let until = humantime::parse_rfc3339(&until).unwrap();
    wait_for("p/near's own pause to end", || {
        std::time::SystemTime::now() > until
    });
    t.run(&["orchestrate", "--dry-run"])
        .code(0)
        .says("would wait for a rate limit's pause: p/near");
    t.run(&["progress", "--tasks"]).says("paused     p/near");
    t.run(&["graph"]).says("[\"near\"]:::paused");
    t.run(&["why", "q/after"])
        .says("waits on p/near (paused: rate limited");
    t.run(&["why", "p"]).says("paused     p/near");
    // A run resumed now says it waits for the pool's pause.
    let out = std::fs::File::create(t.path("out")).unwrap();
    let mut child = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the pauses said", || {
        t.read("out").contains("paused   p/near")
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
}

/// `progress --tasks` says a task paused by a rate limit as the dashboard
/// does, until when and in which pool: it gave its stored error, the CLI's
/// words with the epoch they end in ("usage limit reached|1796650144").
#[test]
fn progress_tasks_says_a_paused_task_as_the_dashboard_does() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\nkill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    scenario(&t, "p/a", &["limit-in:300 1", "success.json"]);
    let mut child = t.start(&["orchestrate"]);
    wait_for("p/a paused", || {
        t.exists("workspace/status/p/a.json") && t.status("p/a")["rate_limited_until"].is_string()
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert!(error(&t, "p/a").contains("usage limit reached|"));
    let dashboard = t.run(&["progress"]).stdout;
    let said = dashboard
        .lines()
        .find_map(|l| l.trim().strip_prefix("paused   p/a: "))
        .unwrap_or_else(|| panic!("{dashboard}"))
        .to_owned();
    assert!(said.starts_with("rate limited until "), "{dashboard}");
    let tasks = t.run(&["progress", "--tasks"]).stdout;
    let line = tasks
        .lines()
        .find(|l| l.contains("p/a"))
        .unwrap_or_default();
    assert!(line.contains(&format!("  {said}")), "{tasks}");
    assert!(!line.contains('|'), "{tasks}");
}

/// Runs the graph until `p/near` and `p/far` are both paused by their
/// rate limits, then stops the run (SIGTERM).
fn stop_once_both_paused(t: &Tree) {
    let mut child = t.start(&["orchestrate"]);
    let paused = |id: &str| {
        t.exists(&format!("workspace/status/{id}.json"))
            && t.status(id)["rate_limited_until"].is_string()
    };
    wait_for("both paused", || paused("p/near") && paused("p/far"));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
}

/// A task whose own pause ends before its pool's (another task's later
/// limit) waits for the pool's: `progress` (its `--json` too) and `why`
/// said it was paused until its own reset, which neither `next` nor the
/// run keeps to.
#[test]
fn a_task_paused_until_before_its_pool_s_pause_is_shown_paused_until_the_pool_s() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 2}}\nkill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/near", "");
    t.task("p/far", "");
    scenario(&t, "p/near", &["limit-in:300 1", "success.json"]);
    scenario(&t, "p/far", &["limit-in:600 1 0.5", "success.json"]);
    stop_once_both_paused(&t);
    let until =
        |value: &serde_json::Value| humantime::parse_rfc3339(value.as_str().unwrap()).unwrap();
    let far = until(&t.status("p/far")["rate_limited_until"]);
    assert!(until(&t.status("p/near")["rate_limited_until"]) < far);
    let json = progress_json(&t);
    let line = (json["tasks"].as_array().unwrap().iter())
        .find(|task| task["task_id"] == "p/near")
        .unwrap();
    assert_eq!(line["state"], "paused", "{line}");
    assert_eq!(until(&line["rate_limited_until"]), far, "{line}");
    let listed = (json["phases"][0]["paused_tasks"].as_array().unwrap().iter())
        .find(|task| task["task_id"] == "p/near")
        .unwrap();
    assert_eq!(until(&listed["rate_limited_until"]), far, "{listed}");
    // The clock time `next` gives, every view gives.
    let next = t.run(&["next"]).stdout;
    let said = next
        .lines()
        .find_map(|l| l.trim().strip_prefix("p/near: paused: rate limited until "))
        .and_then(|rest| rest.split(" (pool").next())
        .unwrap_or_else(|| panic!("{next}"))
        .to_owned();
    t.run(&["progress"]).says(&format!(
        "paused   p/near: rate limited until {said} (pool anthropic)"
    ));
    t.run(&["why", "p/near"]).says(&format!(
        "p/near is paused: rate limited until {said} (pool anthropic)"
    ));
}

/// A task a rate limit paused is not one that failed: `why` names what
/// did fail upstream of a blocked task, not the paused one too.
#[test]
fn why_does_not_call_a_paused_task_a_failure_upstream() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 2}}\nkill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/limited", "");
    scenario(&t, "p/limited", &["limit-in:600 1"]);
    t.task("p/fail", &format!("retries: 0\n{}", sh("exit 3")));
    t.task("q/gate", &format!("dependencies: [p]\n{}", sh("true")));
    let mut child = t.start(&["orchestrate"]);
    wait_for("the rate limit and the failure", || {
        ["p/limited", "p/fail"]
            .iter()
            .all(|id| t.exists(&format!("workspace/status/{id}.json")))
            && t.status("p/limited")["rate_limited_until"].is_string()
            && t.state("p/fail") == "failed"
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    let why = t.run(&["why", "q/gate"]);
    why.code(0).says("p/fail");
    assert!(!why.stdout.contains("p/limited"), "{}", why.stdout);
}

#[test]
fn a_retry_after_a_limit_is_told_no_limit_and_fails_for_its_own_reason() {
    let t = Tree::new();
    t.config(&format!(
        "{}rate_limits: {{backoff: 1s, max_backoff: 2s, give_up_after: 1m}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "retries: 0");
    // Limited once; the next attempt prints the error it was told (none:
    // a limit is not what failed) and fails for a reason of its own.
    scenario(&t, "p/a", &["limit-in:1 1", "echo-previous 7"]);
    t.run(&["orchestrate"]).code(1).says("exit code 7");
    assert_eq!(runs(&t, "p/a").len(), 2, "paused again instead of failing");
    assert_eq!(error(&t, "p/a"), "exit code 7");
    assert_eq!(env_of(&t, "p/a", 2)["previous_error"], "");
}

/// Claude Code's words when the extra usage a plan buys past its limits
/// runs out (`You're out of extra usage · resets …`, anthropics/claude-code
/// #22603, #42654, #84141) are a limit: a task whose log ends in them
/// waits for the reset, here past `give_up_after`, so it fails at once as
/// rate limited, its retries not run into the limit.
#[test]
fn claude_s_out_of_extra_usage_is_a_rate_limit() {
    let line = "You're out of extra usage · resets Feb 4, 8pm (Europe/Budapest)";
    let t = fails_at_once_as_rate_limited(line);
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(error.contains(&format!(": {line} (it lifts at")), "{error}");
}

/// Runs a task of pool `anthropic`, retries left, whose log ends in `line`
/// as it fails: read as a limit that lifts past `give_up_after`, it fails
/// at once as rate limited, its retries not run into the limit.
fn fails_at_once_as_rate_limited(line: &str) -> Tree {
    let t = Tree::new();
    t.config("rate_limits: {backoff: 10m, max_backoff: 10m, give_up_after: 2s}\n");
    let says = format!("{MARK}; echo '{}'; exit 1", line.replace('\'', r"'\''"));
    t.task(
        "p/a",
        &format!("pool: anthropic\nretries: 2\n{}", sh(&says)),
    );
    t.run(&["orchestrate"]).code(1).says("rate limited since ");
    assert_eq!(t.launches("p/a"), 1, "its retries run into the limit");
    t
}

/// Claude Code's overload with no status (`API Error: Overloaded. This is
/// a server-side issue, ...`: an overload the API reports in its stream,
/// after HTTP 200, has none) is an overload, waited out as a limit: only
/// "529 Overloaded" was, and this one failed as any error, its retries
/// run into the overload.
#[test]
fn claude_s_overloaded_without_a_status_is_an_overload() {
    fails_at_once_as_rate_limited(
        "API Error: Overloaded. This is a server-side issue, usually temporary — try again in a moment. If it persists, check https://status.claude.com.",
    );
}

/// Claude Code 1.0.55 to 1.0.123 printed an overload the API sent as an
/// HTTP 500 with its body saying so (`API Error: 500 {"type":"error",
/// "error":{"type":"api_error","message":"Overloaded"}}`,
/// anthropics/claude-code#3955, #8116, #8132): an overload, waited out as
/// a limit, where it failed as any 500, its retries run into the overload.
#[test]
fn claude_s_500_whose_body_says_overloaded_is_an_overload() {
    fails_at_once_as_rate_limited(
        r#"API Error: 500 {"type":"error","error":{"type":"api_error","message":"Overloaded"},"request_id":null}"#,
    );
}

/// Any other 500 is an ordinary failure: its retry is run, no wait taken.
#[test]
fn claude_s_other_500s_are_ordinary_failures() {
    let error = r#"API Error: 500 {"type":"error","error":{"type":"api_error","message":"Internal server error"},"request_id":"req_011CXPBk57rUbKp5XVtievhP"}"#;
    fails_as_any_other(&format!("echo '{error}'"));
}

/// A failed agent whose last lines hold its CLI's warning of a limit
/// drawing near (Claude Code's status line, Codex's "Heads up, ...") failed
/// as any other, its retry run: the warning names the limit and its reset,
/// and was taken for the limit hit, the task paused until that reset, or,
/// past `give_up_after`, failed at once with no retry.
#[test]
fn a_warning_of_a_limit_drawing_near_is_no_limit() {
    fails_as_any_other(
        "echo \"You've used 97% of your session limit · resets 6pm (America/Chicago) · /upgrade to keep using Claude Code\"; echo 'Approaching weekly limit · resets 9pm'; echo \"⚠ Heads up, you've used over 90% of your weekly limit. Run /status for a breakdown.\"; echo 'error: tests failed'",
    );
}

/// A task of a pool whose agent runs `says` (shell) and exits 1, given a
/// retry: it fails as any failure does, its retry run, not rate limited.
fn fails_as_any_other(says: &str) {
    let t = Tree::new();
    t.config("rate_limits: {backoff: 10m, max_backoff: 10m, give_up_after: 2s}\n");
    let says = format!("{MARK}; {says}; exit 1");
    t.task(
        "p/a",
        &format!("pool: anthropic\nretries: 1\n{}", sh(&says)),
    );
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.launches("p/a"), 2, "its retry was not run");
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(!error.contains("rate limited"), "{error}");
}

/// A limit hit whose line says "approaching" elsewhere than as Claude
/// Code words its warning (`Approaching weekly limit`, a part of its line
/// of its own) is a limit hit: any line with "approaching " was dropped as
/// a warning, and the task failed as any other, its retries run into the
/// limit.
#[test]
fn a_limit_hit_that_says_approaching_is_a_limit() {
    fails_at_once_as_rate_limited("Rate limit reached, approaching reset at 2099-01-01T00:00:00Z");
}

/// An Anthropic organisation's spend limit, as Claude Code relays it (`API
/// Error: 400 {… "You have reached your specified API usage limits. You
/// will regain access on 2026-04-01 at 00:00 UTC." …}`,
/// anthropics/claude-code#38038, #2127), names when it lifts: the wait is
/// until then, not the backoff (a retry every 30 minutes for a day, each
/// refused), and past `give_up_after` the task fails at once, saying when.
#[test]
fn an_api_spend_limit_is_waited_for_until_access_is_regained() {
    let t = Tree::new();
    // A backoff past `give_up_after`: a limit read without its time fails
    // at once too, but lifting at the backoff's end.
    t.config("rate_limits: {backoff: 10m, max_backoff: 10m, give_up_after: 2s}\n");
    // The month it lifts moved on to one that is surely ahead.
    let error = r#"API Error: 400 {"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2099-04-01 at 00:00 UTC."},"request_id":"req_011CZM37KZVHEegQcQEk3tSW"}"#;
    let says = format!("{MARK}; echo '{error}'; exit 1");
    t.task(
        "p/a",
        &format!("pool: anthropic\nretries: 2\n{}", sh(&says)),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("rate limited since ")
        .says("(it lifts at 2099-");
    assert_eq!(t.launches("p/a"), 1, "its retries run into the limit");
}

/// The day an API spend limit lifts said with seconds ("00:00:00 UTC") or
/// as an RFC 3339 instant is read as that instant: with seconds its zone
/// was dropped, the time read on the machine's clock (two hours early
/// here), and an instant was not read at all, the backoff waited instead.
#[test]
fn an_api_spend_limit_said_with_seconds_or_as_an_instant_is_read_in_utc() {
    let t = Tree::new();
    t.config("rate_limits: {backoff: 10m, max_backoff: 10m, give_up_after: 2s}\n");
    for (id, when) in [
        ("p/a", "2099-04-01 at 00:00:00 UTC"),
        ("p/b", "2099-04-01T00:00:00Z"),
    ] {
        let says = format!("{MARK}; echo 'You have reached your specified API usage limits. You will regain access on {when}.'; exit 1");
        // A pool each: a limit of one holds none of the other.
        t.task(
            id,
            &format!("pool: {}\n{}", id.replace('/', "-"), sh(&says)),
        );
    }
    // The machine two hours east of UTC (a POSIX zone: no database).
    let out = t
        .command(&["orchestrate"])
        .env("TZ", "UTC-2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    for id in ["p/a", "p/b"] {
        let error = t.status(id)["error"].as_str().unwrap().to_owned();
        assert!(
            error.contains("(it lifts at 2099-04-01 02:00,"),
            "{id}: {error}"
        );
    }
}

/// `p/a` (retries 1) under `rate_limits`, whose first attempt fails
/// (Claude's `error_max_turns`), whose second prints the fixture `limit`
/// (and exits 1), and whose third succeeds.
fn failed_then_limited(rate_limits: &str, limit: &str) -> Tree {
    let t = Tree::new();
    t.config(&format!(
        "{}rate_limits: {{{rate_limits}}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "retries: 1");
    let limited = format!("{limit} 1");
    scenario(
        &t,
        "p/a",
        &["error_max_turns.json 1", &limited, "success.json"],
    );
    t
}

/// A run its timeout cut short printed no result, but its session: the
/// retry is given it to resume, for Claude's stream and Codex's events.
#[test]
fn a_run_cut_short_by_its_timeout_leaves_its_session_to_resume() {
    for (cli, format, output, session) in [
        (
            "claude",
            "claude-json",
            "stream.jsonl",
            "1e9b5c3a-7d2f-4a68-b0e4-c5f8a1d7e293",
        ),
        (
            "codex",
            "codex-jsonl",
            "success.jsonl",
            "019ff9a2-4c1e-7d30-9b8e-3f6a1c2d5e47",
        ),
    ] {
        let t = Tree::new();
        t.config(&format!("{}kill_grace: 1s\n", agent(cli, format)));
        t.task("p/a", "timeout: 2s\nretries: 1");
        let cut = format!("cut:{output}");
        scenario(&t, "p/a", &[&cut, "echo-previous"]);
        t.run(&["orchestrate"]).code(1);
        let told = env_of(&t, "p/a", 2);
        assert_eq!(
            told["previous_error"], "Timeout after 2s (its `timeout`)",
            "{cli}"
        );
        // What the stream's first event names (`system` `init`,
        // `thread.started`).
        assert_eq!(told["previous_session"], session, "{cli}");
    }
}

/// An agent its timeout stops while its CLI waits to retry a refused
/// request (Claude's stream ends in `api_retry` events, HTTP 529) was
/// stopped by the limit, not by its work: its pool waits, and the attempt
/// is not counted against its retries. One stopped as it worked (its
/// stream ends in the model's message) failed on its timeout.
#[test]
fn an_agent_its_timeout_stops_while_its_cli_retries_a_limit_is_paused_not_failed() {
    let t = Tree::new();
    t.config(&format!(
        "{}kill_grace: 1s
rate_limits: {{backoff: 1s, max_backoff: 1s, give_up_after: 1m}}
",
        agent("claude", "claude-json")
    ));
    t.task("p/waiting", "timeout: 2s\nretries: 0");
    scenario(
        &t,
        "p/waiting",
        &["cut-at:7:stream_error.jsonl", "success.json"],
    );
    t.task("p/working", "timeout: 2s\nretries: 0");
    scenario(&t, "p/working", &["cut:stream.jsonl", "success.json"]);
    t.run(&["orchestrate"]).code(1).says(
        "rate limited until",
    ).says("its timeout stopped it while Claude Code was retrying HTTP 529 (overloaded, retry 3 of 10)");
    assert_eq!(t.state("p/waiting"), "completed");
    assert_eq!(t.status("p/waiting")["attempt"], 2);
    assert_eq!(t.state("p/working"), "failed");
    assert_eq!(error(&t, "p/working"), "Timeout after 2s (its `timeout`)");
}

/// `why` of an agent the run stopped before it printed a result says so:
/// it said "its result could not be read", as of a garbled output.
#[test]
fn why_says_an_agent_stopped_before_its_result_printed_none() {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    t.task("p/a", "");
    scenario(&t, "p/a", &["success.json 0 until:release"]);
    let mut run = t.start(&["orchestrate"]);
    wait_for("the agent to run", || {
        t.exists("workspace/status/p/a.json") && t.status("p/a")["pid"].is_u64()
    });
    signal(run.id(), libc::SIGINT);
    assert_eq!(run.wait().unwrap().code(), Some(130));
    assert_eq!(t.status("p/a")["ending"], "interrupted");
    t.run(&["why", "p/a"])
        .says("agent reported: no result: it was interrupted first (the run's stop, or its Slurm job cancelled)")
        .never_says("(interrupted)")
        .never_says("could not be read");
}

/// `why` says in words what stopped an agent before its result, not the
/// status's name for it: it said `(idle_timeout)`.
#[test]
fn why_says_in_words_that_an_idle_timeout_stopped_an_agent_first() {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    t.task("p/a", "idle_timeout: 1s\nretries: 0");
    scenario(&t, "p/a", &["success.json 0 until:release"]);
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.status("p/a")["ending"], "idle_timeout");
    t.run(&["why", "p/a"])
        .says("agent reported: no result: its idle timeout stopped it first (its log was still)")
        .never_says("idle_timeout)");
}

/// A Claude agent whose cost is told (p/a) and one of an old CLI whose
/// cost is not read (`cost_usd`, p/b).
fn an_agent_s_cost_known_and_one_s_not() -> Tree {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    t.task("p/a", "");
    scenario(&t, "p/a", &["success.json"]);
    t.task("p/b", "");
    scenario(&t, "p/b", &["success_old_cost_field.json"]);
    t
}

/// `progress` says how many tasks' costs are unknown beside the total it
/// gives, which leaves them out: an old CLI's, and one whose output could
/// not be read (`why` says so of it).
#[test]
fn progress_says_the_costs_it_does_not_know() {
    let t = an_agent_s_cost_known_and_one_s_not();
    t.task("p/c", "retries: 0");
    scenario(&t, "p/c", &["unreadable 0"]);
    t.run(&["orchestrate"]).code(1);
    t.run(&["progress"])
        .code(0)
        .says("(2 tasks reported no cost: not counted)");
    let json = t.run(&["progress", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["cost_unknown_tasks"], 2);
    assert_eq!(doc["cost_usd"], t.status("p/a")["agent"]["cost_usd"]);
    t.run(&["why", "p/c"])
        .says("agent reported: its result could not be read");
}

/// An attempt its timeout cut short before it named a session leaves the
/// session of the attempt before it to resume: to a retry in the same
/// run, and to one in the next run (a Ctrl-C, a crash or a timeout, then
/// a new run), from the status.
#[test]
fn a_retry_after_an_attempt_that_named_no_session_resumes_the_one_before() {
    for same_run in [true, false] {
        let t = Tree::new();
        t.config(&format!(
            "{}kill_grace: 1s\n",
            agent("claude", "claude-json")
        ));
        t.task(
            "p/a",
            if same_run {
                "timeout: 2s\nretries: 2"
            } else {
                "timeout: 2s"
            },
        );
        scenario(
            &t,
            "p/a",
            &["error_max_turns.json 1", "ask", "success.json"],
        );
        if !same_run {
            t.run(&["orchestrate"]).code(1);
            t.run(&["orchestrate"]).code(1);
        }
        t.run(&["orchestrate"]).code(0);
        let session = fixture("claude/error_max_turns.json")["session_id"].clone();
        let third = env_of(&t, "p/a", 3);
        assert_eq!(
            third["previous_error"], "Timeout after 2s (its `timeout`)",
            "same run: {same_run}"
        );
        assert_eq!(
            third["previous_session"],
            session.as_str().unwrap(),
            "same run: {same_run}"
        );
    }
}

/// An attempt whose resume of the session it was given missed (Claude's
/// "No conversation found": that session is not to be found here, and
/// the new one it names has no turn) leaves no session to resume, in the
/// same run and in the next: the retry starts afresh, where resuming
/// either would miss again, every retry burnt in a second.
#[test]
fn a_resume_that_missed_leaves_no_session_to_resume() {
    for same_run in [true, false] {
        let t = Tree::new();
        t.config(&agent("claude", "claude-json"));
        t.task("p/a", if same_run { "retries: 2" } else { "" });
        scenario(
            &t,
            "p/a",
            &[
                "error_max_turns.json 1",
                "error_during_execution.json 1",
                "success.json",
            ],
        );
        if !same_run {
            t.run(&["orchestrate"]).code(1);
            t.run(&["orchestrate"]).code(1);
        }
        t.run(&["orchestrate"]).code(0);
        let third = env_of(&t, "p/a", 3);
        assert!(
            third["previous_error"].contains("No conversation found"),
            "same run: {same_run}: {third:?}"
        );
        assert_eq!(third["previous_session"], "", "same run: {same_run}");
    }
}

/// A block's reason reaches the retry after `reset` also when the status
/// keeps an earlier session to resume apart (`previous`).
#[test]
fn a_block_s_reason_reaches_the_retry_beside_an_earlier_session() {
    let t = Tree::new();
    t.config(&format!(
        "{}kill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "timeout: 2s\nretries: 1");
    scenario(
        &t,
        "p/a",
        &["error_max_turns.json 1", "ask", "success.json"],
    );
    t.run(&["orchestrate"]).code(1);
    t.run(&["block", "p/a", "--reason", "the spec changed"])
        .code(0);
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(0);
    let third = env_of(&t, "p/a", 3);
    assert_eq!(
        third["previous_error"],
        "the spec changed (it had failed: Timeout after 2s (its `timeout`))"
    );
    let session = fixture("claude/error_max_turns.json")["session_id"].clone();
    assert_eq!(third["previous_session"], session.as_str().unwrap());
}

/// A limit that outlasts `give_up_after` fails the task; its next
/// attempt (the next run) is told what failed before the limit, with that
/// attempt's session, not the limit and the session it refused.
#[test]
fn a_retry_after_giving_up_on_a_limit_is_told_what_failed_before_it() {
    let t = failed_then_limited("give_up_after: 20s", "limit-in:10800");
    t.run(&["orchestrate"])
        .code(1)
        .says("past rate_limits.give_up_after");
    t.run(&["orchestrate"]).code(0);
    let (second, third) = (env_of(&t, "p/a", 2), env_of(&t, "p/a", 3));
    assert!(
        second["previous_error"].contains("error_max_turns"),
        "{second:?}"
    );
    assert_eq!(third["previous_error"], second["previous_error"]);
    let session = fixture("claude/error_max_turns.json")["session_id"].clone();
    assert_eq!(third["previous_session"], session.as_str().unwrap());
}

/// `logs -f` on a task a rate limit paused follows it on through its
/// next attempt, which the run going on starts once the pause ends: the
/// task has not ended (it said `ended: paused`).
#[test]
fn logs_follow_goes_on_through_a_rate_limit_s_pause() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 2}}\n\
         rate_limits: {{backoff: 3s, max_backoff: 3s, give_up_after: 1m}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "retries: 0");
    scenario(&t, "p/a", &["rate_limited_api_429.json 1", "success.json"]);
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a paused", || {
        t.exists("workspace/status/p/a.json") && t.status("p/a")["rate_limited_until"].is_string()
    });
    let follow = t
        .command(&["logs", "-f", "p/a"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = follow.wait_with_output().unwrap();
    assert!(run.wait().unwrap().success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        said,
        "p/a: its next attempt started, its log follows\np/a ended: completed\n"
    );
    assert_eq!(runs(&t, "p/a").len(), 2);
}

/// `logs -f` on a paused task that the run going on leaves out (its
/// `--task`) ends: no run will start it meanwhile (it followed until that
/// run ended).
#[test]
fn logs_follow_of_a_paused_task_the_run_going_on_leaves_out_ends() {
    let t = Tree::new();
    t.config(&format!(
        "{}max_memory_gb: 0.25\n",
        agent("claude", "claude-json")
    ));
    t.task("p/limited", "");
    scenario(&t, "p/limited", &["limit-in:600 1"]);
    t.task(
        "q/other",
        &sh("while [ ! -f release ]; do sleep 0.02; done"),
    );
    let mut first = t.start(&["orchestrate", "--task", "p/limited"]);
    wait_for("the rate limit", || {
        t.exists("workspace/status/p/limited.json")
            && t.status("p/limited")["rate_limited_until"].is_string()
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    first.wait().unwrap();
    let mut other = t.start(&["orchestrate", "--task", "q/other"]);
    wait_for("q/other to run", || t.state("q/other") == "running");
    let mut follow = t
        .command(&["logs", "-f", "p/limited"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("logs -f to end", || follow.try_wait().unwrap().is_some());
    t.write("release", "");
    assert!(other.wait().unwrap().success());
}

#[test]
fn agents_limited_together_wait_for_one_pause_and_none_gives_up() {
    // Four agents of a pool start together and hit the same limit: one
    // pause for all, not four doubling ones that pass give_up_after.
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 4}}\nmax_memory_gb: 1\n\
         rate_limits: {{backoff: 2s, max_backoff: 1m, give_up_after: 10s}}\n",
        agent("claude", "claude-json")
    ));
    let ids = ["p/a", "p/b", "p/c", "p/d"];
    for id in ids {
        t.task(id, "retries: 0");
        scenario(&t, id, &["rate_limited_api_429.json 1 0.5", "success.json"]);
    }
    t.run(&["orchestrate"]).code(0);
    for id in ids {
        assert_eq!(runs(&t, id).len(), 2, "{id}");
        assert_eq!(t.state(id), "completed", "{id}");
    }
}

/// Two agents of a pool hit a limit; the pool halves, and the one that
/// tries first hits it again: the other, its own pause over, waits for
/// that one's, and `progress` and `why` say it is paused, as `next` does.
#[test]
fn a_task_waiting_for_its_pool_s_new_pause_is_shown_paused() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 2}}\nmax_memory_gb: 1\n\
         rate_limits: {{backoff: 1s, max_backoff: 3s}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "retries: 0");
    t.task("p/b", "retries: 0");
    let limited = "rate_limited_api_429.json 1";
    scenario(&t, "p/a", &[limited, limited, "success.json"]);
    scenario(&t, "p/b", &[limited, limited, "success.json"]);
    let mut run = t.start(&["orchestrate"]);
    // Three limits hit: both at first, then the one that tried again.
    let limits = || {
        t.read("workspace/events.jsonl")
            .matches("\"rate_limited\"")
            .count()
    };
    wait_for("a limit hit again", || {
        t.exists("workspace/events.jsonl") && limits() >= 3
    });
    let waiting = ["p/a", "p/b"]
        .into_iter()
        .find(|id| runs(&t, id).len() == 1)
        .expect("one task waits");
    let progress: serde_json::Value =
        serde_json::from_str(&t.run(&["progress", "--json"]).stdout).unwrap();
    let line = progress["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["task_id"] == waiting)
        .unwrap()
        .clone();
    // The pause is 2 s long: ample for these two looks.
    assert_eq!(line["state"], "paused", "{line}");
    t.run(&["why", waiting])
        .says(&format!("{waiting} is paused: rate limited until"));
    assert!(run.wait().unwrap().success());
}

#[test]
fn a_retry_after_a_rate_limit_is_told_what_failed_before_it() {
    let t = failed_then_limited(
        "backoff: 1s, max_backoff: 2s, give_up_after: 1m",
        "rate_limited_api_429.json",
    );
    t.run(&["orchestrate"]).code(0);
    let (second, third) = (env_of(&t, "p/a", 2), env_of(&t, "p/a", 3));
    assert!(!second["previous_error"].is_empty());
    assert_eq!(third["previous_error"], second["previous_error"]);
    let session = fixture("claude/error_max_turns.json")["session_id"].clone();
    assert_eq!(third["previous_session"], session.as_str().unwrap());
}

#[test]
fn a_stream_s_rejected_rate_limit_event_says_how_long_to_wait() {
    // Its result names no reset time; its rate_limit_event does, in
    // seconds or in milliseconds.
    for millis in [false, true] {
        let t = Tree::new();
        t.config(&format!(
            "{}rate_limits: {{backoff: 1m, give_up_after: 1h}}\n",
            agent("claude", "claude-json")
        ));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let lifts = now.unwrap().as_secs() + 3;
        t.task("p/a", "");
        let said = if millis { lifts * 1000 } else { lifts };
        let limited = format!("stream-limit-at:{said} 1");
        scenario(&t, "p/a", &[&limited, "success.json"]);
        let mut child = t.start(&["orchestrate"]);
        wait_for("the rate limit", || {
            t.exists("workspace/status/p/a.json")
                && t.status("p/a")["rate_limited_until"].is_string()
        });
        let until = ns(t.status("p/a")["rate_limited_until"].as_str().unwrap());
        assert_eq!(until, lifts as u128 * 1_000_000_000);
        assert!(child.wait().unwrap().success());
        assert_eq!(runs(&t, "p/a").len(), 2);
    }
}

#[test]
fn a_rate_limit_event_that_lifts_past_year_9999_is_no_time() {
    // A number no clock can write is not taken as the time the limit
    // lifts: the backoff is waited instead, and nothing fails to print it.
    let t = Tree::new();
    t.config(&format!(
        "{}rate_limits: {{backoff: 1s, max_backoff: 1s, give_up_after: 1h}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    scenario(
        &t,
        "p/a",
        &["stream-limit-at:999999999999999", "success.json"],
    );
    t.run(&["orchestrate"]).code(0).says("rate limited");
    assert_eq!(runs(&t, "p/a").len(), 2);
}

#[test]
fn an_agent_whose_result_is_read_is_no_rate_limit_for_a_log_that_mentions_one() {
    // It works on a rate limiter; its tests fail, and it printed no result.
    let t = Tree::new();
    t.config("rate_limits: {backoff: 1s, max_backoff: 1s, give_up_after: 1m}\n");
    let fails = "echo 'assertion failed: rate limit should reject the 11th request' >&2; exit 1";
    t.task(
        "p/a",
        &format!("result: claude-json\nretries: 0\n{}", sh(fails)),
    );
    t.run(&["orchestrate"]).code(1).says("exit code 1");
    assert!(t.status("p/a")["rate_limited_until"].is_null());
    // Read as text, its log is all there is: the same words are a limit.
    let t = Tree::new();
    t.config("rate_limits: {backoff: 1s, max_backoff: 1s, give_up_after: 1s}\n");
    t.task("p/a", &format!("pool: api\nretries: 0\n{}", sh(fails)));
    t.run(&["orchestrate"]).code(1).says("rate limited since ");
}

/// An agent read as text whose own output names a 429 (its tests of an
/// API client fail on one) is paused, and paused again once its pool has
/// served a task between; the third time the pool served others between
/// its limits, the same words are its own failure, counted against its
/// retries, not a pause repeated until `give_up_after`.
#[test]
fn a_limit_an_agent_read_as_text_repeats_while_its_pool_serves_others_is_its_own_failure() {
    let t = Tree::new();
    t.config(
        "pools: {api: 2}\nmax_memory_gb: 1\n\
         rate_limits: {backoff: 1s, max_backoff: 1s, give_up_after: 30s}\n",
    );
    let quotes = format!("{MARK}; echo 'FAILED test_client: got 429 Too Many Requests'; exit 1");
    t.task("p/a", &format!("pool: api\nretries: 0\n{}", sh(&quotes)));
    // Tasks of no pool that end once `a` has hit `n` limits.
    let events = t.path("workspace/events.jsonl");
    let after_limits = |n: usize| {
        sh(&format!(
            "until [ \"$(grep -c '\"rate_limited\"' {})\" -ge {n} ]; do sleep 0.05; done",
            events.display()
        ))
    };
    t.task("p/b1", &after_limits(1));
    t.task("p/b2", &after_limits(2));
    // Tasks of the pool started after `a`'s first and second limits, first
    // as each pause ends: they succeed.
    t.task(
        "p/c1",
        &format!(
            "pool: api\npriority: 10\ndependencies: [p/b1]\n{}",
            sh("true")
        ),
    );
    t.task(
        "p/c2",
        &format!(
            "pool: api\npriority: 10\ndependencies: [p/b2]\n{}",
            sh("true")
        ),
    );
    t.run(&["orchestrate"])
        .code(1)
        .says("taken for the task's own output, not a rate limit");
    // Paused twice, then a counted attempt: its retries (none), spent.
    assert_eq!(t.launches("p/a"), 3);
    assert_eq!(t.state("p/a"), "failed");
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("exit code 1"), "{error}");
    assert!(error.contains("429 Too Many Requests"), "{error}");
    assert_eq!(
        (t.state("p/c1"), t.state("p/c2")),
        ("completed".into(), "completed".into())
    );
}

/// A task of the pool started after a limit, within the same second, and
/// succeeded: the pool is fine again, its concurrency back and its backoff
/// over (a start taken from its status, to the second, read as before the
/// limit: the pool stayed halved, and the task's own 429s were never
/// judged its own words).
#[test]
fn a_task_started_the_same_second_after_a_limit_shows_the_pool_fine_again() {
    let t = Tree::new();
    t.config(
        "pools: {api: 2}\nmax_memory_gb: 1\n\
         rate_limits: {backoff: 1ms, max_backoff: 1ms}\n",
    );
    let once = format!(
        "{MARK}; if [ $TASK_ATTEMPT -le 1 ]; then echo 'got 429 Too Many Requests'; exit 1; fi"
    );
    t.task("p/a", &format!("pool: api\n{}", sh(&once)));
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.launches("p/a"), 2);
    t.run(&["next"]).never_says("lowered by a rate limit");
    let saved = t.read("workspace/pools.json");
    assert!(!saved.contains("api"), "{saved}");
}

/// A usage limit that comes back after the pool served another task,
/// hitting the task limited before and another with it: a limit still,
/// waited out, not taken for the task's own words.
#[test]
fn a_limit_that_comes_back_after_the_pool_served_others_is_waited_out() {
    let t = Tree::new();
    t.config(
        "pools: {api: 3}\nmax_memory_gb: 1\n\
         rate_limits: {backoff: 1s, max_backoff: 1s, give_up_after: 1m}\n",
    );
    let limited_until = |n: u32| {
        format!("{MARK}; if [ $TASK_ATTEMPT -le {n} ]; then echo 'Claude usage limit reached'; exit 1; fi")
    };
    t.task("p/a", &format!("pool: api\n{}", sh(&limited_until(2))));
    let status = t.path("workspace/status/p/a.json");
    let waits = format!(
        "until grep -qs rate_limited_until {}; do sleep 0.05; done",
        status.display()
    );
    t.task("p/x", &sh(&waits));
    t.task(
        "p/b",
        &format!(
            "pool: api\npriority: 10\ndependencies: [p/x]\n{}",
            sh("true")
        ),
    );
    t.task(
        "p/c",
        &format!(
            "pool: api\npriority: 5\ndependencies: [p/x]\n{}",
            sh(&limited_until(1))
        ),
    );
    t.run(&["orchestrate"]).code(0);
    assert_eq!((t.launches("p/a"), t.launches("p/c")), (3, 2));
}

/// An attempt a rate limit paused is told `paused` in the events, and its
/// next attempt starts from `paused`, however short the pause: its end,
/// kept to the whole second, was often past already when it was told, and
/// the end was told `pending` (a notifier `on: [paused]` never heard it).
#[test]
fn a_short_pause_is_told_a_pause() {
    let t = Tree::new();
    t.config(&format!(
        "{}rate_limits: {{backoff: 100ms, max_backoff: 100ms, give_up_after: 1m}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    scenario(&t, "p/a", &["rate_limited_api_429.json 1", "success.json"]);
    t.run(&["orchestrate"]).code(0);
    let changes: Vec<(String, String)> = t
        .read("workspace/events.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["task"] == "p/a" && e["from"].is_string())
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let told: Vec<(&str, &str)> = changes
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        told,
        [
            ("pending", "running"),
            ("running", "paused"),
            ("paused", "pending"),
            ("pending", "running"),
            ("running", "completed")
        ]
    );
}

#[test]
fn a_rate_limit_without_a_reset_time_backs_off_and_gives_up_in_time() {
    let t = Tree::new();
    t.config(&format!(
        "{}rate_limits: {{backoff: 1s, max_backoff: 2s, give_up_after: 1m}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    scenario(&t, "p/a", &["rate_limited_api_429.json 1", "success.json"]);
    t.run(&["orchestrate"]).code(0).says("paused");
    let runs = runs(&t, "p/a");
    assert_eq!(runs.len(), 2);
    let waited = (runs[1].0 - runs[0].1) as f64 / 1e9;
    assert!(
        waited >= 0.9,
        "waited {waited}s, less than the 1 s backoff less 10 %"
    );
    assert_eq!(t.status("p/a")["attempt"], 2);
    // The report draws the limited attempt as such, not as a failure.
    t.run(&["report"]).code(0);
    let report = t.read("workspace/report.html");
    assert!(
        report.contains(r#"class="bar paused"#),
        "limited attempt not drawn paused"
    );
    assert!(
        !report.contains(r#"class="bar failed"#),
        "limited attempt drawn failed"
    );

    // Always limited: after `give_up_after` it fails, saying since when.
    let t = Tree::new();
    t.config(&format!(
        "{}rate_limits: {{backoff: 1s, give_up_after: 1s}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    scenario(&t, "p/a", &["rate_limited_api_429.json 1"]);
    t.run(&["orchestrate"]).code(1).says("rate limited since ");
    assert_eq!(t.state("p/a"), "failed");
    assert!(t.status("p/a")["rate_limited_until"].is_null());
}

/// `give_up_after` bounds the whole wait: a limit that lifts later fails
/// the task at once, and its retries are not spent on it (each would hit
/// the limit again at once).
#[test]
fn a_limit_that_lifts_past_give_up_after_fails_at_once_without_retries() {
    let t = Tree::new();
    t.config(&format!(
        "{}rate_limits: {{give_up_after: 20s}}\nmax_concurrent_agents: 1\n",
        agent("claude", "claude-json")
    ));
    // Its message names a reset three hours away (not "resets 9am
    // (Europe/Berlin)": run just before 9am in Berlin, that is seconds away).
    t.task("p/a", "retries: 2");
    scenario(&t, "p/a", &["limit-in:10800 1"]);
    // The pool's other task is not held for those hours (the run sat
    // idle, saying nothing): it tries, and here the limit has lifted.
    t.task("p/b", "");
    scenario(&t, "p/b", &["success.json 0"]);
    t.run(&["orchestrate"])
        .code(1)
        .says("past rate_limits.give_up_after, 20.0s)");
    assert_eq!(runs(&t, "p/a").len(), 1);
    assert_eq!(t.state("p/a"), "failed");
    assert_eq!(t.state("p/b"), "completed");

    // Limited again and again: it waits once at most, then gives up, and
    // does not run its two retries into the limit.
    let t = Tree::new();
    t.config(&format!(
        "{}rate_limits: {{backoff: 1s, give_up_after: 1s}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "retries: 2");
    scenario(&t, "p/a", &["rate_limited_api_429.json 1"]);
    t.run(&["orchestrate"]).code(1).says("rate limited since ");
    assert!(runs(&t, "p/a").len() <= 2, "{:?}", runs(&t, "p/a"));
}

/// A question an agent asks on stderr right after a line on stdout is
/// the log's last line, as it was printed: stdout, kept apart in its own
/// file, is in the log as soon as it is written, so the question is found
/// and the task stopped rather than left waiting for its timeout.
#[test]
fn a_question_on_stderr_after_a_line_on_stdout_is_found() {
    let t = Tree::new();
    t.write(
        "agent.sh",
        "echo '{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s1\"}'
sleep 0.1
echo 'Do you want to continue? (y/n)' >&2
sleep 30
",
    );
    t.config(&format!(
        "prompt_idle: 1s\nkill_grace: 1s\nagent: {{command: [sh, {}], result: claude-json}}\n",
        t.path("agent.sh").display()
    ));
    t.task("p/ask", "timeout: 60s");
    t.run(&["orchestrate"])
        .code(1)
        .says("waiting for input: Do you want to continue? (y/n)");
}

/// A dialog drawn in a box, with nothing below it, is found: its last
/// line is the box's bottom border, drawing and no text, passed over for
/// the last line inside the box (the border was read, and the task waited
/// for its timeout); `progress` shows that line too.
#[test]
fn a_question_in_a_box_with_nothing_below_it_is_found() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nprompt_idle: 1s\n");
    let dialog = "╭──────────────────────────╮\n\
                  │ Do you trust this folder? │\n\
                  │ ❯ 1. Yes, proceed         │\n\
                  │   2. No, exit             │\n\
                  │                           │\n\
                  ╰──────────────────────────╯\n";
    t.write("dialog.txt", dialog);
    t.task(
        "p/a",
        &format!("timeout: 10s\n{}", sh("cat dialog.txt; sleep 60")),
    );
    t.run(&["orchestrate"]).code(1).says("waiting for input: ");
    // Said without the box's borders (`│   2. No, exit   │`).
    let error = t.status("p/a")["error"].as_str().unwrap().to_owned();
    assert_eq!(error, "waiting for input: 2. No, exit");
}

/// A pattern of `prompt_patterns` written as the question shows, with
/// the blank a prompt waits after (`Proceed? `), matches it at the end of
/// the line (the line is taken without its trailing blanks: the pattern's
/// never matched, and the task waited for its timeout).
#[test]
fn a_pattern_ending_in_a_blank_matches_a_question_ending_the_line() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nprompt_idle: 1s\nprompt_patterns: ['Proceed? ', 'Sure?  $']\n");
    for (id, asks) in [("p/a", "Proceed? "), ("p/b", "Sure? ")] {
        let script = format!("printf '{asks}'; sleep 60");
        t.task(id, &format!("timeout: 20s\n{}", sh(&script)));
    }
    t.run(&["orchestrate"])
        .code(1)
        .says("p/a: waiting for input: Proceed?")
        .says("p/b: waiting for input: Sure?");
}

/// A task that asks again and again on an input that answers nothing
/// (its stdin is empty) fills its log with its question, which never goes
/// still: it is stopped as waiting for input once it has asked nothing
/// else for `prompt_idle` (only its timeout stopped it, its log growing
/// by megabytes a second), also when it counts its askings (`Attempt 3:
/// Continue?`). One that prints the question between lines of its work
/// runs to its end.
#[test]
fn a_question_asked_again_and_again_is_waiting_for_input() {
    let t = Tree::new();
    t.config("kill_grace: 1s\nprompt_idle: 1s\n");
    let asks = "while :; do printf 'Continue? (y/n) '; read a || true; done";
    t.task("p/asks", &format!("timeout: 15s\n{}", sh(asks)));
    let works = "for i in $(seq 40); do echo \"step $i\"; echo 'Continue? (y/n)'; sleep 0.05; done";
    t.task("p/works", &format!("timeout: 15s\n{}", sh(works)));
    let counts = "i=0; while :; do i=$((i+1)); printf \"Attempt $i: Continue? (y/n) \"; read a || true; done";
    t.task("p/counts", &format!("timeout: 15s\n{}", sh(counts)));
    t.run(&["orchestrate"])
        .code(1)
        .says("p/asks: waiting for input: Continue? (y/n)")
        .says("p/counts: waiting for input: Attempt ");
    assert_eq!(t.status("p/counts")["ending"], "waiting_for_input");
    assert_eq!(t.status("p/asks")["ending"], "waiting_for_input");
    assert_eq!(t.state("p/works"), "completed");
    let log = t.read("workspace/logs/p/asks.log");
    let said = "xtask: waiting for input: its log has ended with the same question, asked again and again with nothing else between, for 1s";
    assert!(
        log.contains(said),
        "{}",
        &log[log.len().saturating_sub(500)..]
    );
}

/// `prompt_patterns: []` turns the question watch off, as README says:
/// the run says so as it starts (it was silent), and a task whose still
/// log ends with a question runs to its end.
#[test]
fn an_empty_prompt_patterns_is_said_to_turn_the_question_watch_off() {
    let t = Tree::new();
    t.config("prompt_idle: 1s\nprompt_patterns: []\n");
    t.task("p/a", &sh("printf 'Continue? (y/n) '; sleep 2"));
    t.run(&["orchestrate"])
        .code(0)
        .says("note: tasks/orchestrator.yaml: `prompt_patterns: []` turns the question watch off");
    assert_eq!(t.state("p/a"), "completed");
}

/// An agent whose CLI printed a successful result and then hung on its
/// way out (a child it waits for), stopped by its idle timeout or its
/// timeout, did its work and was paid for it: the task completes by that
/// result (its log saying how it was stopped), not failed and run again,
/// paid for again.
#[test]
fn an_agent_that_hangs_after_its_successful_result_completes() {
    for limit in ["idle_timeout: 2s", "timeout: 2s"] {
        let t = Tree::new();
        claude_printing_success_then(&t, "");
        t.task("p/a", &format!("retries: 1\n{limit}"));
        t.run(&["orchestrate"]).code(0).says("Summary: 1 completed");
        assert_eq!(t.status("p/a")["attempt"], 1, "{limit}");
        assert_eq!(t.read("workspace/ledger.jsonl").lines().count(), 1);
        let log = t.read("workspace/logs/p/a.log");
        assert!(
            log.contains("SIGTERM sent to the task's processes"),
            "{log}"
        );
    }
}

/// The agent of `t` prints a successful Claude result, then runs `then`,
/// then hangs.
fn claude_printing_success_then(t: &Tree, then: &str) {
    t.write(
        "agent.sh",
        &format!("cat {FIXTURES}/claude/success.json\n{then}sleep 60\n"),
    );
    t.config(&format!(
        "kill_grace: 1s\nagent: {{command: [sh, {}], result: claude-json}}\n",
        t.path("agent.sh").display()
    ));
}

/// An agent that went on after a successful result (a wrapper that runs
/// its CLI again, whose events follow that result) and was stopped by its
/// idle timeout did not finish: it fails as stopped, not completed by the
/// result before (its later work cut short, counted done).
#[test]
fn an_agent_that_goes_on_after_a_successful_result_and_is_stopped_fails() {
    let t = Tree::new();
    let more = r#"{"type":"system","subtype":"init","session_id":"second"}"#;
    claude_printing_success_then(&t, &format!("echo '{more}'\n"));
    t.task("p/a", "idle_timeout: 2s");
    t.run(&["orchestrate"])
        .code(1)
        .says("Idle timeout: its log did not grow for 2s");
    assert_eq!(t.state("p/a"), "failed");
}

/// The same agent, hanging after its successful result, stopped by a
/// person's Ctrl-C: it completes by its result, and the next run does not
/// pay for its work again (it was `interrupted`, and run again).
#[test]
fn an_agent_stopped_by_a_person_after_its_successful_result_completes() {
    let t = Tree::new();
    claude_printing_success_then(&t, "touch printed\n");
    t.task("p/a", "");
    let mut run = t.start(&["orchestrate"]);
    wait_for("the agent's result", || t.exists("printed"));
    signal(run.id(), libc::SIGINT);
    assert_eq!(run.wait().unwrap().code(), Some(130));
    assert_eq!(t.state("p/a"), "completed");
    assert_eq!(t.read("workspace/ledger.jsonl").lines().count(), 1);
    std::fs::remove_file(t.path("printed")).unwrap();
    t.run(&["orchestrate"]).code(0);
    assert!(!t.exists("printed"), "the agent ran again");
}

/// Task `p/a`, an agent whose first attempt asks a question nobody
/// answers, and whose retry quotes it (`TASK_PREVIOUS_ERROR`) then works
/// quietly for `quiet` seconds (more than `prompt_idle`) before it ends,
/// in a process of its own environment (an agent's CLI exec'd with
/// another: what it was told is not in its environment any more); the
/// config is `config` (the executor's settings, say) and what it needs.
pub fn a_retry_quoting_its_question(t: &Tree, quiet: u32, config: &str) {
    t.write(
        "agent.sh",
        &format!(
            "if [ \"$TASK_ATTEMPT\" = 1 ]; then printf 'Overwrite config? (y/n) '; sleep 60; fi
echo \"Retrying. Last time: $TASK_PREVIOUS_ERROR\"
exec env -u TASK_PREVIOUS_ERROR sh -c 'sleep {quiet}; echo done'
"
        ),
    );
    t.config(&format!(
        "{config}prompt_idle: 1s\nkill_grace: 1s\nagent: {{command: [sh, {}]}}\n",
        t.path("agent.sh").display()
    ));
    t.task("p/a", "retries: 1\ntimeout: 60s");
}

/// A retry that repeats the error it was told (`TASK_PREVIOUS_ERROR`,
/// which names the question its previous attempt was stopped on), as an
/// agent repeating its prompt does, then works quietly, is not asking that
/// question again: it runs to its end instead of failing as waiting for
/// input, paid for again at each retry.
#[test]
fn a_retry_quoting_the_question_it_was_told_of_is_not_asking_it() {
    let t = Tree::new();
    a_retry_quoting_its_question(&t, 3, "");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.status("p/a")["attempt"], 2);
    let told = t.read("workspace/logs/p/a.log");
    assert!(
        told.contains("Last time: waiting for input: Overwrite config? (y/n)"),
        "{told}"
    );
}

/// An agent that opens `/dev/stdout` again for writing (`> /dev/stdout`)
/// writes its stdout file again from its start (a file, no longer a
/// pipe): its log still has all it printed, says so, and its result is
/// read.
#[test]
fn an_agent_that_writes_to_dev_stdout_keeps_its_log_whole() {
    let t = Tree::new();
    let result = format!("{FIXTURES}/claude/success.json");
    t.write(
        "agent.sh",
        &format!("echo line 1\necho line 2\nsleep 0.2\necho 'via dev stdout' > /dev/stdout\ncat {result}\n"),
    );
    t.config(&format!(
        "agent: {{command: [sh, {}], result: claude-json}}\n",
        t.path("agent.sh").display()
    ));
    t.task("p/a", "title: a");
    t.run(&["orchestrate"]).code(0);
    let log = t.read("workspace/logs/p/a.log");
    let wanted = [
        "line 1",
        "line 2",
        "xtask: the task wrote its stdout again from its start",
        "via dev stdout",
        "{\"type\":\"result\"",
    ];
    let mut at = 0;
    for line in wanted {
        let found = log[at..]
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} in order in:\n{log}"));
        at += found + line.len();
    }
}

/// The config's stand-in Claude, with a budget of `usd`.
fn with_budget(t: &Tree, usd: &str) {
    t.config(&format!(
        "{}budget: {{usd: {usd}}}\n",
        agent("claude", "claude-json")
    ));
}

/// The changes of a task that failed, then completed at its retry.
const RETRIED_ONCE: [&str; 5] = [
    "pending -> running",
    "running -> failed",
    "failed -> pending",
    "pending -> running",
    "running -> completed",
];

/// A retry the budget holds is told once, as it starts: no `failed ->
/// pending` while its status still says failed, and none twice when the
/// next run (the budget raised) starts it.
#[test]
fn a_retry_held_by_the_budget_is_told_once_when_it_starts() {
    let t = Tree::new();
    with_budget(&t, "0.50");
    t.task("p/a", "retries: 2");
    scenario(&t, "p/a", &["error_max_turns.json 1", "success.json"]);
    // Failed, as its status and `progress` say, with its retry held.
    let run = t.run(&["orchestrate"]);
    run.code(3)
        .says("Summary: 0 completed, 1 failed, 0 blocked, 0 not started")
        .says("failed   p/a: exit code 1 (agent error: error_max_turns")
        .says("; its retry ready, not started: budget of $0.50 reached");
    // The budget is said after the line with the cost that reached it.
    let at = |text: &str| run.stdout.find(text).expect(text);
    assert!(at("failed   p/a") < at("reached ($0.64 spent): nothing new starts"));
    assert_eq!(progress_json(&t)["total"]["failed"], 1);
    assert_eq!(
        changes(&t, "p/a"),
        ["pending -> running", "running -> failed"]
    );
    with_budget(&t, "5");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(changes(&t, "p/a"), RETRIED_ONCE);
}

/// The summary line of a task that gave up on a rate limit, its retry
/// held by the budget, says the limit (it said only `failed`: a rate
/// limit is no previous error to tell a retry of).
#[test]
fn a_retry_held_by_the_budget_after_a_rate_limit_given_up_says_the_limit() {
    let t = Tree::new();
    t.config(&format!(
        "{}budget: {{usd: 0.50}}\nrate_limits: {{backoff: 5s, max_backoff: 5s, give_up_after: 1s}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "retries: 2");
    scenario(&t, "p/a", &["error_max_turns.json 1"]);
    t.task("p/b", "retries: 2\ndependencies: [p/a]");
    t.task("p/limited", "retries: 2");
    scenario(&t, "p/limited", &["rate_limited_api_429.json 1"]);
    t.run(&["orchestrate"]).code(3);
    // The next run takes it up again, and the budget holds its retry.
    let run = t.run(&["orchestrate"]);
    run.code(3)
        .says("failed   p/limited: rate limited since ")
        .says("; its retry ready, not started: budget of $0.50 reached");
}

/// So is one the budget held when its run was killed: the run that
/// resumes it says `failed -> pending` as the retry starts.
#[test]
fn a_retry_held_by_the_budget_of_a_killed_run_is_told_when_it_starts() {
    let t = Tree::new();
    with_budget(&t, "0.50");
    t.task("p/a", "retries: 2");
    scenario(&t, "p/a", &["error_max_turns.json 1", "success.json"]);
    // Keeps the run alive after the budget is reached, so it can be killed.
    t.task("p/b", &sh("while [ ! -f release ]; do sleep 0.02; done"));
    let mut run = t.start(&["orchestrate"]);
    wait_for("p/a's failure", || t.state("p/a") == "failed");
    run.kill().unwrap();
    run.wait().unwrap();
    t.write("release", "");
    with_budget(&t, "5");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(changes(&t, "p/a"), RETRIED_ONCE);
}

/// An agent's words reach the views as a terminal would show them: its
/// escape sequences and control characters (colours, a clear screen, a
/// carriage return over the line) never reach the person's terminal.
#[test]
fn an_agent_s_escape_sequences_never_reach_the_terminal() {
    let t = Tree::new();
    t.config("agent:\n  command: [cat, said.json]\n  result: claude-json\n");
    t.write(
        "said.json",
        r#"{"type":"result","subtype":"success","is_error":true,"result":"err \u0001 \u001b[31mred\u001b[0m \u001b[2Jgone","total_cost_usd":0.01}"#,
    );
    t.task("p/a", "");
    let run = t.run(&["orchestrate"]);
    run.code(1).says("err  red gone");
    let why = t.run(&["why", "p/a"]);
    let progress = t.run(&["progress", "--tasks"]);
    for out in [&run.stdout, &why.stdout, &progress.stdout] {
        assert!(!out.contains(['\u{1}', '\u{1b}']), "{out:?}");
    }
    assert!(why.stdout.contains("err  red gone"), "{}", why.stdout);
}

/// Once what the budget leaves is no more than the running agents are
/// expected to cost (what attempts cost before), no more agents start
/// until one ends: five agents started with a third of one left would
/// spend five agents' worth past the budget.
#[test]
fn no_more_agents_start_once_the_running_ones_are_expected_to_spend_what_is_left() {
    let t = Tree::new();
    t.config(&format!(
        "{}budget: {{usd: 0.50}}\nmax_memory_gb: 1\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "resources: {memory_gb: 0.1}");
    let after_a = "dependencies: [p/a]\nresources: {memory_gb: 0.1}";
    for id in ["p/b", "p/c", "p/d", "p/e", "p/f"] {
        t.task(id, after_a);
    }
    for id in ["p/a", "p/b", "p/c", "p/d", "p/e", "p/f"] {
        scenario(&t, id, &["success.json"]);
    }
    // A command, last in the order, costs nothing: the hold is not its.
    t.task(
        "p/script",
        &format!("{after_a}\npriority: -1\n{}", sh(MARK)),
    );
    // p/a costs $0.16, leaving $0.34: three agents at that cost start
    // ($0.33 expected), the fourth waits; their ends reach the budget.
    t.run(&["orchestrate"])
        .code(3)
        .says("$0.34 left of budget.usd, no more than the 3 running agents are expected to cost ($0.49")
        .says("budget of $0.50 reached ($0.65 spent)");
    let ran: Vec<&str> = ["p/b", "p/c", "p/d", "p/e", "p/f"]
        .into_iter()
        .filter(|id| !runs(&t, id).is_empty())
        .collect();
    assert_eq!(ran, ["p/b", "p/c", "p/d"]);
    assert_eq!(t.launches("p/script"), 1);
    // Raised to leave $0.15: the plan starts one agent, then the other
    // once it ends, as the run would.
    t.config(&format!(
        "{}budget: {{usd: 0.80}}\nmax_memory_gb: 1\n",
        agent("claude", "claude-json")
    ));
    t.run(&["orchestrate", "--dry-run"])
        .says("Wave 1")
        .says("Wave 2");
    t.run(&["next"]).says("p/f: ready, not started: ").says(
        "$0.15 left of budget.usd, no more than the running agent is expected to cost ($0.16",
    );
}

/// An attempt a rate limit refused, at $0, says nothing of what its task
/// costs: its next attempt is expected to cost what attempts cost, not $0,
/// so no second agent starts beside it while what is left is no more than
/// that (one did, and the run spent $0.49 of $0.30).
#[test]
fn a_rate_limited_attempt_is_not_what_its_task_is_expected_to_cost() {
    let t = Tree::new();
    t.config(&format!(
        "{}  pool: anthropic\npools: {{anthropic: 4}}\nbudget: {{usd: 0.30}}\nmax_concurrent_agents: 4\nmax_memory_gb: 1\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "resources: {memory_gb: 0.1}");
    scenario(&t, "p/a", &["success.json"]);
    // After p/a ($0.16), $0.14 is left: p/limited starts first, and p/other
    // waits for it, before its limit and after the pause alike.
    let after_a = "dependencies: [p/a]\nresources: {memory_gb: 0.1}";
    t.task("p/limited", &format!("{after_a}\npriority: 1"));
    scenario(&t, "p/limited", &["limit-in:1 1", "success.json"]);
    t.task("p/other", after_a);
    scenario(&t, "p/other", &["success.json"]);
    t.run(&["orchestrate"])
        .code(3)
        .says("budget of $0.30 reached ($0.33 spent)");
    assert_eq!(runs(&t, "p/limited").len(), 2);
    assert!(runs(&t, "p/other").is_empty());
}

/// A run that reached the budget while a task awaits approval to start
/// exits 3, as the next run does: approved, that task would not start.
#[test]
fn a_budget_reached_beside_a_task_awaiting_approval_to_start_exits_3() {
    let t = Tree::new();
    t.config(&format!(
        "{}budget: {{usd: 0.10}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    scenario(&t, "p/a", &["success.json"]);
    t.task("p/b", "approve: before");
    scenario(&t, "p/b", &["success.json"]);
    // Ready once the budget is reached: the person paged is told so.
    t.task("p/c", "approve: before\ndependencies: [p/a]");
    t.run(&["orchestrate"])
        .code(3)
        .says("awaiting p/b: awaits approval to start")
        .says("budget of $0.10 reached ($0.16 spent)");
    let paged = events(&t)
        .into_iter()
        .find(|e| e["task"] == "p/c" && e["to"] == "awaiting_approval")
        .unwrap();
    assert_eq!(
        paged["note"],
        "budget of $0.10 reached ($0.16 spent): approved, it starts once budget.usd is raised"
    );
    // The next run (the budget reached before p/b was to start) says the
    // same, and so does its plan.
    let next = t.run(&["orchestrate"]);
    next.code(3)
        .says("2 awaiting approval")
        .says("awaiting p/b: awaits approval to start");
    t.run(&["why", "p/b"]).says(
        "budget of $0.10 reached ($0.16 spent): approved, it starts once budget.usd is raised",
    );
    assert!(
        !next.stdout.contains("ready, not started"),
        "{}",
        next.stdout
    );
    t.run(&["orchestrate", "--dry-run"])
        .says("would await approval: p/b");
    t.run(&["next"]).says("Awaits approval: p/b");
    assert!(runs(&t, "p/b").is_empty());
}

#[test]
fn the_budget_stops_new_launches_with_exit_3_and_holds_on_the_next_run() {
    let t = Tree::new();
    // Each success costs $0.16: two of them reach $0.30.
    t.config(&format!(
        "{}budget: {{usd: 0.30}}\nmax_concurrent_agents: 1\n",
        agent("claude", "claude-json")
    ));
    let ids = ["p/1", "p/2", "p/3", "p/4"];
    for id in ids {
        t.task(id, "");
        scenario(&t, id, &["success.json"]);
    }
    t.run(&["orchestrate"])
        .code(3)
        .says("budget of $0.30 reached ($0.33 spent)");
    let ran: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| !runs(&t, id).is_empty())
        .collect();
    assert_eq!(ran, ["p/1", "p/2"]);
    assert_eq!(env_of(&t, "p/1", 1)["budget_left"], "0.30");
    assert_eq!(env_of(&t, "p/2", 1)["budget_left"], "0.14");
    let reached = events(&t)
        .into_iter()
        .find(|e| e["event"] == "budget_reached")
        .unwrap();
    // The sum of the costs, as written: no float noise.
    assert_eq!(reached["spent_usd"].to_string(), "0.3258754");

    // `reset` does not clear what was spent: the next run starts nothing.
    t.run(&["reset", "p/1"]).code(0);
    t.run(&["orchestrate"])
        .code(3)
        .says("budget of $0.30 reached ($0.33 spent)");
    assert_eq!(runs(&t, "p/1").len(), 1);
    t.run(&["next"]).says("Budget: $0.33 of $0.30 spent");
    t.run(&["why", "p/1"])
        .code(0)
        .says("waits on the budget: budget of $0.30 reached ($0.33 spent)");

    // A line of the ledger mangled by hand counts for nothing: said by
    // the run and the views, which name it.
    let ledger = t.read("workspace/ledger.jsonl");
    let mangled = ledger.replacen("\"cost_usd\":", "\"cost_usd\":\"x\",\"was\":", 1);
    t.write("workspace/ledger.jsonl", &mangled);
    // (Counting short, the run started one more task.)
    let warning = "workspace/ledger.jsonl: line 1 does not parse: the budget does not count it";
    t.run(&["orchestrate"])
        .code(3)
        .says(&format!("{warning} ($0.16 spent by the others)"));
    t.run(&["progress"]).says(warning);
    t.run(&["next"]).says(warning);
    // So does one whose cost is below zero: no attempt earns money back.
    let negative = ledger.replacen("\"cost_usd\":", "\"cost_usd\":-3,\"was\":", 1);
    t.write("workspace/ledger.jsonl", &negative);
    t.run(&["next"]).says(warning);
    // One cut by a kill, its attempt's end taken again on a line of its
    // own, is no news.
    let first = ledger.lines().next().unwrap();
    let cut = &first[..first.find("\"cost_usd\"").unwrap()];
    t.write("workspace/ledger.jsonl", &format!("{cut}\n{ledger}"));
    let next = t.run(&["next"]);
    assert!(!next.stdout.contains("does not parse"), "{}", next.stdout);
    assert!(!next.stderr.contains("does not parse"), "{}", next.stderr);

    // Raised, it goes on.
    t.config(&format!(
        "{}budget: {{usd: 5}}\nmax_concurrent_agents: 1\n",
        agent("claude", "claude-json")
    ));
    t.write("workspace/ledger.jsonl", &ledger);
    t.run(&["orchestrate"]).code(0);
}

/// Under a reached budget, a task a rate limit paused does not start when
/// its pause ends either: the dry run says it would not start and exits
/// 1, as the run exits 3, not that the run would wait for its pause; and
/// `why` says so beside its pause.
#[test]
fn the_dry_run_under_a_reached_budget_does_not_wait_for_a_pause() {
    let t = Tree::new();
    with_budget(&t, "0.10");
    t.task("p/limited", "pool: x");
    scenario(&t, "p/limited", &["limit-in:600", "success.json"]);
    t.task("p/costly", "pool: y");
    scenario(&t, "p/costly", &["success.json"]);
    t.run(&["orchestrate"])
        .code(3)
        .says("waiting  p/limited: ready, not started: budget of $0.10 reached");
    let dry = t.run(&["orchestrate", "--dry-run"]);
    dry.code(1)
        .says("would not start: p/limited: ready, not started: budget of $0.10 reached");
    assert!(
        !dry.stdout.contains("would wait for a rate limit's pause"),
        "{}",
        dry.stdout
    );
    // `why` says so too, beside its pause.
    t.run(&["why", "p/limited"]).code(0).says(
        "budget of $0.10 reached ($0.16 spent): it does not start again, its pause over or not, until budget.usd is raised",
    );
}

/// An agent that ended while no orchestrator ran (its run killed) spent
/// what it printed, which the next run counts before it starts anything:
/// `progress`, `next`, the dry run and `why` count it too (they said the
/// budget was untouched, and the dry run that p/b would start, where the
/// run reaches the budget and exits 3).
#[test]
fn the_views_count_what_an_agent_that_ended_unseen_spent() {
    let t = Tree::new();
    with_budget(&t, "0.10");
    ended_unseen(&t);
    // A task ready to start, added since.
    t.task("p/b", "");
    scenario(&t, "p/b", &["success.json"]);
    let reached = "budget of $0.10 reached ($0.16 spent)";
    let json = progress_json(&t);
    assert_eq!(json["budget"]["spent_usd"], 0.1629377, "{json}");
    t.run(&["next"])
        .says("Budget: $0.16 of $0.10 spent, $0.00 left");
    t.run(&["orchestrate", "--dry-run"]).code(1).says(&format!(
        "would not start: p/b: ready, not started: {reached}"
    ));
    t.run(&["why", "p/b"])
        .says(&format!("waits on the budget: {reached}"));
    // Ended, p/a is expected to spend nothing more: with $0.14 left, p/b
    // starts, as it does in the run (no agent running then).
    with_budget(&t, "0.30");
    t.run(&["next"])
        .says("Budget: $0.16 of $0.30 spent, $0.14 left")
        .says("Would start now, in this order:\n  p/b ");
    with_budget(&t, "0.10");
    let resumed = t.run(&["orchestrate"]);
    resumed.code(3).says(reached);
    // Said once: as the recovered end reaches it, not again as the run
    // starts.
    let said = resumed.said();
    let line = format!("{reached}: nothing new starts\n");
    assert_eq!(said.matches(&line).count(), 1, "no task running: {said}");
    assert_eq!(
        said.matches(reached).count(),
        3,
        "its line and the summary's two: {said}"
    );
    assert!(runs(&t, "p/b").is_empty());
    let ledger = t.read("workspace/ledger.jsonl");
    assert_eq!(ledger.lines().count(), 1, "{ledger}");
}

/// What an agent that ended while no orchestrator ran printed is shown
/// where costs are shown, as the budget counts it: `progress` said "Budget:
/// $0.16 of $5.00 spent" with no cost on the task nor a line of the
/// latest attempts' cost (not counted as unknown either), and `report`
/// and `why` left its cost out.
#[test]
fn the_views_show_the_cost_of_an_agent_that_ended_unseen() {
    let t = Tree::new();
    with_budget(&t, "5");
    ended_unseen(&t);
    let json = progress_json(&t);
    assert_eq!(json["budget"]["spent_usd"], 0.1629377, "{json}");
    assert_eq!(json["cost_usd"], 0.1629377, "{json}");
    assert_eq!(json["cost_unknown_tasks"], 0, "{json}");
    assert_eq!(json["tasks"][0]["cost_usd"], 0.1629377, "{json}");
    t.run(&["progress"])
        .says("Budget: $0.16 of $5.00 spent")
        .says("Cost of the latest attempts: $0.16");
    let tasks = t.run(&["progress", "--tasks"]).said();
    let line = tasks
        .lines()
        .find(|l| l.contains("p/a"))
        .unwrap_or_default();
    assert!(line.contains("$0.16"), "{tasks}");
    t.run(&["report"]).code(0);
    let report = t.read("workspace/report.html");
    assert!(
        report.contains("Phase cost (latest attempts): $0.16"),
        "{report}"
    );
    t.run(&["why", "p/a"])
        .says("  agent reported (the next run records it): ")
        .says(", $0.16, ");
}

/// `prompt` tells the budget left as the next run counts it: less what an
/// agent that ended while no orchestrator ran spent, as the other views
/// say (it told the whole budget).
#[test]
fn prompt_counts_what_an_agent_that_ended_unseen_spent() {
    let t = Tree::new();
    t.config(&format!(
        "{}  prompt: \"left={{{{ budget_left_usd }}}}\"\nbudget: {{usd: 0.30}}\n",
        agent("claude", "claude-json")
    ));
    ended_unseen(&t);
    t.task("p/b", "");
    t.run(&["prompt", "p/b"]).code(0).says("left=0.137");
}

/// Runs `p/a` (an agent that spends $0.16) and kills the run (SIGKILL)
/// while it works: it ends while no orchestrator runs, its end recorded by
/// its supervisor.
fn ended_unseen(t: &Tree) {
    t.task("p/a", "");
    scenario(t, "p/a", &["success.json 0 1"]);
    let mut first = t.start(&["orchestrate"]);
    wait_for("p/a to run", || t.exists("env/p_a.1"));
    first.kill().unwrap();
    first.wait().unwrap();
    wait_for("p/a's end, recorded by its supervisor", || {
        t.exists("workspace/pids/p/a.exit")
    });
}

/// Ten attempts of $0.10 spend a budget of $1.00: a sum of costs is taken
/// to the cent's billionth, without float noise (0.1 added ten times is
/// 0.9999999999999999: the budget was not reached, and an eleventh agent
/// started with "$0.00 left").
#[test]
fn costs_that_add_up_to_the_budget_reach_it() {
    let t = Tree::new();
    t.config(
        "agent:\n  command: [cat, said.json]\n  result: claude-json\nbudget: {usd: 1}\nmax_concurrent_agents: 1\n",
    );
    t.write(
        "said.json",
        r#"{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":0.1}"#,
    );
    for n in 1..=11 {
        t.task(&format!("p/{n:02}"), "");
    }
    t.run(&["orchestrate"])
        .code(3)
        .says("Summary: 10 completed, 0 failed, 0 blocked, 1 not started")
        .says("budget of $1.00 reached ($1.00 spent)");
    let json = progress_json(&t);
    assert_eq!(json["budget"]["left_usd"], 0.0, "{json}");
}

/// An absurd cost an agent reports (1e308 dollars, less than nothing,
/// past what one attempt can cost) is refused: said in the run's output
/// and the task's log, kept in its status as what it said, and counted
/// nowhere (1e308 went into the ledger and reached the budget for good).
#[test]
fn an_absurd_cost_is_refused_not_counted() {
    let t = Tree::new();
    t.config(
        "agent:\n  command: [sh, -c, 'cat \"said/$TASK_ID.json\"']\n  result: claude-json\nbudget: {usd: 10}\n",
    );
    let said = |id: &str, cost: &str| {
        t.task(id, "");
        t.write(
            &format!("said/{id}.json"),
            &format!(r#"{{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":{cost}}}"#),
        );
    };
    said("p/huge", "1e308");
    said("p/negative", "-5");
    said("p/past", "20000");
    said("q/after", "0.5");
    t.write(
        "tasks/q/after.md",
        "---\ndependencies: [p/huge, p/negative, p/past]\n---\nDo it.\n",
    );
    let run = t.run(&["orchestrate"]);
    run.code(0);
    // As JSON writes the number again.
    for (id, cost) in [
        ("p/huge", "1e+308"),
        ("p/negative", "-5"),
        ("p/past", "20000"),
    ] {
        let refused = format!("{id}'s agent reported a cost of {cost} USD, refused (not a cost of one attempt: 0 to $10000.00): the ledger and the budget leave it out");
        run.says(&format!("warning: {refused}"));
        assert!(t
            .read(&format!("workspace/logs/{id}.log"))
            .contains(&format!("xtask: {refused}")));
        let agent = &t.status(id)["agent"];
        assert!(agent["cost_usd"].is_null(), "{agent}");
        assert_eq!(agent["cost_refused"], cost, "{agent}");
        t.run(&["why", id])
            .says(&format!("its cost of {cost} USD refused, counted nowhere"));
    }
    let ledger = t.read("workspace/ledger.jsonl");
    assert_eq!(ledger.lines().count(), 1, "{ledger}");
    assert_eq!(progress_json(&t)["budget"]["spent_usd"], 0.5);
}

/// The budget reached by the last tasks, which failed: nothing was left
/// unstarted, so the run exits 1 for the failures, saying the budget too;
/// the next run, which would retry them, exits 3.
/// An attempt's cost is in the ledger before its final status is written:
/// a run stopped in between (here by a status it cannot write) leaves its
/// end for the next run to take again, which does not count it twice.
#[test]
fn an_attempt_whose_end_is_taken_again_is_counted_once_in_the_budget() {
    let t = Tree::new();
    t.config("budget: {usd: 10}\n");
    let release = t.path("release");
    t.task(
        "p/a",
        &format!(
            "result: claude-json\n{}",
            sh(&format!(
                "while [ ! -f {} ]; do sleep 0.02; done; cat {FIXTURES}/claude/success.json",
                release.display()
            ))
        ),
    );
    let mut first = t.start(&["orchestrate"]);
    wait_for("p/a to run", || {
        t.exists("workspace/status/p/a.json") && t.state("p/a") == "running"
    });
    let running = t.read("workspace/status/p/a.json");
    std::fs::remove_file(t.path("workspace/status/p/a.json")).unwrap();
    std::fs::create_dir(t.path("workspace/status/p/a.json")).unwrap();
    t.write("release", "");
    assert_ne!(first.wait().unwrap().code(), Some(0));
    assert!(t.read("workspace/ledger.jsonl").contains("p/a"));
    std::fs::remove_dir(t.path("workspace/status/p/a.json")).unwrap();
    t.write("workspace/status/p/a.json", &running);
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.state("p/a"), "completed");
    t.run(&["next"]).says("Budget: $0.16 of $10.00 spent");
}

/// A cost the ledger cannot take stops the run (exit 1) and is counted by
/// the next run, which takes the attempt's end again: never lost.
#[test]
fn a_cost_the_ledger_cannot_take_is_counted_by_the_next_run() {
    let t = Tree::new();
    t.config("budget: {usd: 10}\n");
    let success = format!("cat {FIXTURES}/claude/success.json");
    t.task("p/a", &format!("result: claude-json\n{}", sh(&success)));
    t.task(
        "p/b",
        &format!("dependencies: [p/a]\nresult: claude-json\n{}", sh(&success)),
    );
    std::fs::create_dir_all(t.path("workspace/ledger.jsonl")).unwrap();
    t.run(&["orchestrate"])
        .code(1)
        .says("what p/a cost ($0.16) is not recorded; its end is taken again, and counted, by the next run");
    std::fs::remove_dir(t.path("workspace/ledger.jsonl")).unwrap();
    t.run(&["orchestrate"]).code(0);
    assert_eq!(t.status("p/a")["attempt"], 1);
    t.run(&["next"]).says("Budget: $0.33 of $10.00 spent");
}

#[test]
fn a_budget_reached_when_nothing_is_left_to_start_exits_for_the_failures() {
    let t = Tree::new();
    t.config(&format!(
        "{}budget: {{usd: 0.20}}\nmax_concurrent_agents: 2\nmax_memory_gb: 1\n",
        agent("claude", "claude-json")
    ));
    for id in ["p/1", "p/2"] {
        t.task(id, "");
        scenario(&t, id, &["error_max_turns.json"]);
    }
    t.run(&["orchestrate"])
        .code(1)
        .says("Summary: 0 completed, 2 failed, 0 blocked, 0 not started")
        .says("budget of $0.20 reached ($1.29 spent)");
    // The next run takes them up again, and the budget holds their
    // retries: failed still, as their statuses say.
    t.run(&["orchestrate"])
        .code(3)
        .says("Summary: 0 completed, 2 failed, 0 blocked, 0 not started")
        .says(
            "(log: workspace/logs/p/1.log); its retry ready, not started: budget of $0.20 reached",
        );
    t.run(&["why", "p/1"])
        .says("budget of $0.20 reached ($1.29 spent): nothing starts, its retry neither, until budget.usd is raised");
}

#[test]
fn a_budget_with_no_cost_reported_is_a_warning_once() {
    let t = Tree::new();
    t.config("budget: {usd: 1}\n");
    t.task("p/a", &sh("true"));
    t.task("p/b", &sh("true"));
    let run = t.run(&["orchestrate"]);
    run.code(0);
    let warnings = run.stdout.matches("budget.usd is set, but").count()
        + run.stderr.matches("budget.usd is set, but").count();
    assert_eq!(warnings, 1, "{}", run.stdout);
}

#[test]
fn a_result_after_a_long_stream_is_read_from_its_end() {
    // 21 MB of events before the result: more than the end read first.
    let t = Tree::new();
    let stream = format!(
        "yes '{{\"type\":\"assistant\"}}' | head -n 1000000; cat {FIXTURES}/claude/success.json"
    );
    t.task("p/a", &format!("result: claude-json\n{}", sh(&stream)));
    // And a result that is not in that end: the whole output is read.
    let early = format!("cat {FIXTURES}/claude/success.json; yes 'not json' | head -n 3000000");
    t.task("p/b", &format!("result: claude-json\n{}", sh(&early)));
    t.run(&["orchestrate"]).code(0);
    let success = fixture("claude/success.json");
    for id in ["p/a", "p/b"] {
        assert_eq!(t.status(id)["agent"]["cost_usd"], success["total_cost_usd"]);
    }
}

#[test]
fn a_budget_over_agents_that_report_no_cost_is_said_before_and_after_they_run() {
    let t = Tree::new();
    t.config(&format!("{}budget: {{usd: 5}}\n", agent("claude", "none")));
    t.task("p/a", "");
    scenario(&t, "p/a", &["success.json"]);
    // A script is no agent: it reports no cost, and says nothing of it.
    t.task("p/script", &sh("true"));
    let validate = t.run(&["validate"]);
    validate.code(0);
    assert!(
        validate
            .stderr
            .contains("budget.usd is set, but p/a will report no cost"),
        "{}",
        validate.stderr
    );
    let run = t.run(&["orchestrate"]);
    run.code(0)
        .says("p/a reported no cost (its result is not read: agent.result is none)");
    assert!(!run.stdout.contains("p/script reported"), "{}", run.stdout);
}

#[test]
fn an_agent_stopped_before_it_reports_a_cost_is_said_uncounted_under_a_budget() {
    let t = Tree::new();
    t.config(&format!(
        "{}budget: {{usd: 5}}\nkill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "timeout: 1s");
    scenario(&t, "p/a", &["success.json 0 60"]);
    t.run(&["orchestrate"])
        .code(1)
        .says("p/a (attempt 1) was stopped before its agent reported a cost (Timeout after 1s (its `timeout`))");
}

#[test]
fn an_interrupted_attempt_is_no_sign_that_costs_go_unreported() {
    let t = Tree::new();
    t.config(&format!(
        "{}budget: {{usd: 5}}\nkill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    // It thinks for a minute before it prints its result.
    scenario(&t, "p/a", &["success.json 0 60"]);
    let child = t
        .command(&["orchestrate"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the attempt to run", || t.state("p/a") == "running");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("stopping 1 running task (SIGTERM"),
        "{stdout}"
    );
    assert!(!stdout.contains("reported no cost"), "{stdout}");
}

/// An agent that reported a rate limit just before the run's stop reached
/// it (here: its CLI exited on the limit, and a helper it left has its
/// grace when the Ctrl-C comes): the limit is kept, its pool's pause too,
/// for the next run to wait out; the attempt is not a failure of the
/// task's to count, nor an error to tell the next attempt.
#[test]
fn a_limit_an_agent_reports_as_a_stop_arrives_is_kept_for_the_next_run() {
    let t = Tree::new();
    let limited = format!("{FIXTURES}/claude/rate_limited_api_429.json");
    t.write(
        "agent.sh",
        &format!("cat \"{limited}\"\nsh -c 'trap \"\" TERM; exec sleep 30' &\nexit 1\n"),
    );
    t.config(
        "agent:\n  command: [sh, agent.sh]\n  result: claude-json\n  pool: anthropic\nkill_grace: 3s\nrate_limits: {backoff: 10m}\n",
    );
    t.task("p/a", "retries: 0");
    let child = t.command(&["orchestrate"]).spawn().unwrap();
    wait_for("the agent to exit and leave its helper", || {
        std::fs::read_to_string(t.path("workspace/logs/p/a.log"))
            .is_ok_and(|log| log.contains("its process exited and left others running"))
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(130));
    let status = t.status("p/a");
    assert!(status["rate_limited_until"].is_string(), "{status}");
    assert_eq!(status["tries"], 0, "{status}");
    assert!(error(&t, "p/a").starts_with("rate limited: "), "{status}");
    assert!(t.read("workspace/pools.json").contains("anthropic"));
    t.run(&["why", "p/a"])
        .says("p/a is paused: rate limited until");
}

#[test]
fn a_pool_caps_its_tasks_across_phases_and_next_names_it() {
    let t = Tree::new();
    t.config("pools: {gpu: 1}\n");
    let ids: Vec<String> = ["a/1", "a/2", "b/1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for id in &ids {
        t.task(id, &format!("pool: gpu\n{}", sh(TIMED)));
    }
    t.run(&["next"])
        .says("ready, waits for a free slot in pool gpu (1 of 1 busy: running, or starting first)");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(max_overlap(&t, &ids), 1);
}

#[test]
fn a_question_in_colour_is_caught_and_reported_as_the_terminal_shows_it() {
    let t = Tree::new();
    t.config("prompt_idle: 1s\n");
    let ask = r"printf '\033[1mOverwrite config?\033[0m \033[2m(y/n)\033[0m '; sleep 60";
    t.task("p/a", &format!("timeout: 10m\n{}", sh(ask)));
    t.run(&["orchestrate"])
        .code(1)
        .says("waiting for input: Overwrite config? (y/n)");
    let status = t.status("p/a");
    assert_eq!(status["ending"], "waiting_for_input");
    assert!(!status.to_string().contains("\\u001b"), "{status}");
}

#[test]
fn a_long_json_event_ending_like_a_question_is_no_question() {
    // A tool's output quoted in one stream-json event longer than the
    // log's end the watchdog reads: cut, it no longer looks like JSON.
    let t = Tree::new();
    t.config("prompt_idle: 1s\n");
    let event = r#"printf '{"type":"user","stdout":"%s\\nDo you want to continue? [Y/n] Abort."}\n' "$(head -c 3000 /dev/zero | tr '\0' x)"; sleep 3; echo thought"#;
    t.task("p/a", &format!("timeout: 10m\n{}", sh(event)));
    t.run(&["orchestrate"]).code(0);
    assert!(t.read("workspace/logs/p/a.log").contains("[Y/n] Abort.\"}"));
}

#[test]
fn what_a_question_ends_with_in_the_middle_of_a_line_is_no_question() {
    // `password:` asks only at the end of a line; a quiet step after this
    // one is work going on.
    let t = Tree::new();
    t.config("prompt_idle: 1s\n");
    let step = "echo 'Rotated the database password: done, migrating'; sleep 3; echo migrated";
    t.task("p/a", &format!("timeout: 10m\n{}", sh(step)));
    t.run(&["orchestrate"]).code(0);
    assert!(t.read("workspace/logs/p/a.log").ends_with("migrated\n"));
}

#[test]
fn a_task_run_from_a_terminal_has_no_terminal_to_ask_on() {
    // git asks for a user name on /dev/tty: a task with the terminal would
    // be stopped reading from the background, its log never showing it.
    let t = Tree::new();
    let ask =
        "if ( : <>/dev/tty ) 2>/dev/null; then echo has-a-terminal; else echo no-terminal; fi";
    t.task("p/a", &format!("timeout: 1m\n{}", sh(ask)));
    let drawn = on_a_terminal(&t, "orchestrate", true);
    assert!(drawn.contains("Summary: 1 completed"), "{drawn}");
    assert_eq!(t.read("workspace/logs/p/a.log").trim(), "no-terminal");
}

#[test]
fn an_agent_waiting_for_an_answer_fails_fast() {
    let t = Tree::new();
    t.config(&format!("{}prompt_idle: 1s\n", agent("claude", "none")));
    t.task("p/a", "timeout: 10m");
    scenario(&t, "p/a", &["ask"]);
    t.run(&["orchestrate"])
        .code(1)
        .says("waiting for input: Do you trust the files in this folder? (y/n)");
    assert_eq!(t.status("p/a")["ending"], "waiting_for_input");
}

/// A run stopped while a task waits out a rate limit: the task's next
/// attempt (and `prompt`) is told of the attempt that failed before the
/// limit, with its session to resume, never of the limit.
#[test]
fn a_retry_after_a_run_stopped_in_a_pause_is_told_the_failure_before_it() {
    let (t, session) = stopped_in_a_pause();
    let failed = error(&t, "p/a");
    assert!(failed.starts_with("rate limited"), "{failed}");
    let prompt = t.run(&["prompt", "p/a"]);
    prompt.code(0).says("PREVIOUS ").says(&session);
    assert!(!prompt.stdout.contains("rate limited"), "{}", prompt.stdout);
    // The pause over (its end moved to the past, as time would).
    let file = t.path("workspace/status/p/a.json");
    let mut status: serde_json::Value =
        serde_json::from_str(&t.read("workspace/status/p/a.json")).unwrap();
    status["rate_limited_until"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(file, status.to_string()).unwrap();
    told_the_failure_before_the_pause(&t, &session);
}

/// The same, the task `reset` during the pause: the reset keeps the
/// failure before the limit for the next attempt, not the limit.
#[test]
fn a_reset_in_a_pause_keeps_the_failure_before_it() {
    let (t, session) = stopped_in_a_pause();
    t.run(&["reset", "p/a"]).code(0);
    told_the_failure_before_the_pause(&t, &session);
}

/// Blocked by hand in a pause: held, no longer paused (the views said
/// paused, then pending), and a reset tells the retry the reason and the
/// failure before the pause, with its session.
#[test]
fn a_block_in_a_pause_holds_the_task_and_keeps_the_failure_before_it() {
    let (t, session) = stopped_in_a_pause();
    t.task("q/b", "dependencies: [p/a]");
    scenario(&t, "q/b", &["success.json"]);
    t.run(&["block", "p/a", "--reason", "investigating"])
        .code(0);
    let status = t.status("p/a");
    assert!(status["rate_limited_until"].is_null(), "{status}");
    let tasks = t.run(&["progress", "--tasks"]);
    tasks.code(0);
    assert!(!tasks.stdout.contains("paused"), "{}", tasks.stdout);
    t.run(&["why", "p/a"])
        .code(0)
        .says("investigating (it had failed: ");
    t.run(&["reset", "p/a"]).code(0);
    told_the_failure_before_the_pause(&t, &session);
    assert!(
        env_of(&t, "p/a", 3)["previous_error"].starts_with("investigating (it had failed: "),
        "{:?}",
        env_of(&t, "p/a", 3)
    );
}

/// Blocked in a pause that its first attempt met (it never failed
/// otherwise): a reset tells the retry the reason alone, and no session
/// (the one the limit refused is nothing to resume).
#[test]
fn a_block_in_a_first_pause_tells_no_session() {
    let t = stopped_in_a_pause_of(&["limit-in:600 1", "success.json"]);
    t.run(&["block", "p/a", "--reason", "investigating"])
        .code(0);
    t.run(&["reset", "p/a"]).code(0);
    let prompt = t.run(&["prompt", "p/a"]);
    prompt.code(0).says("PREVIOUS investigating / None");
    t.run(&["orchestrate"]).code(0);
    assert_eq!(env_of(&t, "p/a", 2)["previous_error"], "investigating");
    assert_eq!(env_of(&t, "p/a", 2)["previous_session"], "");
}

/// A run of `p/a` (retries 1) whose first attempt fails (Claude's
/// `error_max_turns`) and whose second hits a rate limit for 10 minutes,
/// stopped (SIGTERM) while paused; with the failed attempt's session. Its
/// output is in `markers/out`.
fn stopped_in_a_pause() -> (Tree, String) {
    let t = stopped_in_a_pause_of(&["error_max_turns.json 1", "limit-in:600 1", "success.json"]);
    let session = fixture("claude/error_max_turns.json")["session_id"].clone();
    (t, session.as_str().unwrap().to_owned())
}

/// A run of `p/a` (retries 1) whose attempts print `scenario`, stopped
/// (SIGTERM) once a rate limit pauses it.
fn stopped_in_a_pause_of(scenario_of_a: &[&str]) -> Tree {
    let t = Tree::new();
    t.config(&format!(
        "{}  prompt: \"{{% if previous %}}PREVIOUS {{{{ previous.error }}}} / {{{{ previous.session_id }}}}{{% endif %}}\"\nkill_grace: 1s\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "retries: 1");
    scenario(&t, "p/a", scenario_of_a);
    std::fs::create_dir_all(t.path("markers")).unwrap();
    let out = std::fs::File::create(t.path("markers/out")).unwrap();
    let mut child = t.command(&["orchestrate"]).stdout(out).spawn().unwrap();
    wait_for("the rate limit", || {
        t.exists("workspace/status/p/a.json") && t.status("p/a")["rate_limited_until"].is_string()
    });
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    t
}

/// A run stopped while a rate limit pauses a task says so of it in its
/// summary (it said "ready, not started").
#[test]
fn a_run_stopped_in_a_pause_says_the_task_is_paused() {
    let (t, _) = stopped_in_a_pause();
    let said = t.read("markers/out");
    assert!(
        said.contains("p/a: paused by a rate limit, not started: the run was stopped"),
        "{said}"
    );
}

/// Once the pause of a run stopped in it is over, `why` says the task is
/// pending, as `progress` does (it said "failed: rate limited").
#[test]
fn why_says_a_task_whose_pause_ended_is_pending() {
    // A reset 2 to 3 s ahead (the stand-in's clock is whole seconds): one
    // already past when a busy machine reads it is waited out as the
    // backoff, a minute.
    let t = stopped_in_a_pause_of(&["limit-in:3 1", "success.json"]);
    wait_for("`why` to say p/a is pending", || {
        t.run(&["why", "p/a"])
            .stdout
            .contains("p/a is pending: its pause for a rate limit ended at")
    });
    let why = t.run(&["why", "p/a"]);
    // What holds it, as for any task still to start: here nothing.
    why.code(0)
        .says("not counted against its retries\n  nothing: it starts on the next `");
    assert!(!why.stdout.contains("failed"), "{}", why.stdout);
}

/// Runs `p/a` of `stopped_in_a_pause` again: its third attempt is told
/// the first's failure and session.
fn told_the_failure_before_the_pause(t: &Tree, session: &str) {
    t.run(&["orchestrate"]).code(0);
    let told = env_of(t, "p/a", 3);
    assert_eq!(told["previous_session"], session);
    assert!(
        told["previous_error"].contains("error_max_turns"),
        "{told:?}"
    );
}

/// A task that failed, then was blocked by a failure upstream, is told of
/// its own failure when it runs again.
#[test]
fn a_failed_task_blocked_later_is_still_told_its_failure() {
    let t = Tree::new();
    t.config(&agent("claude", "claude-json"));
    t.task("p/a", &sh("test ! -e fail"));
    t.task("p/b", "dependencies: [p/a]");
    scenario(&t, "p/b", &["error_max_turns.json 1", "success.json"]);
    t.run(&["orchestrate"]).code(1);
    t.write("fail", "");
    t.run(&["reset", "p/a"]).code(0);
    t.run(&["orchestrate"]).code(1);
    assert_eq!(t.state("p/b"), "blocked");
    std::fs::remove_file(t.path("fail")).unwrap();
    t.run(&["orchestrate"]).code(0);
    let told = env_of(&t, "p/b", 2);
    assert!(
        told["previous_error"].contains("error_max_turns"),
        "{told:?}"
    );
}

/// Attempts that report no cost for different reasons get a warning each:
/// one with an unreadable result does not hide an old CLI's cost field,
/// which has a fix of its own.
#[test]
fn each_reason_an_agent_reports_no_cost_is_said() {
    let t = Tree::new();
    t.config(&format!(
        "{}budget: {{usd: 5}}\n",
        agent("claude", "claude-json")
    ));
    t.task("p/a", "");
    scenario(&t, "p/a", &["unreadable 0"]);
    t.task("p/b", "");
    scenario(&t, "p/b", &["success_old_cost_field.json"]);
    t.task("p/c", "");
    scenario(&t, "p/c", &["success_old_cost_field.json"]);
    let run = t.run(&["orchestrate"]);
    run.code(1)
        .says("reported no cost (its result was unreadable)");
    let old = "reported no cost (its result has no total_cost_usd";
    assert_eq!(run.stdout.matches(old).count(), 1, "{}", run.stdout);
}

/// The run's sum of costs says what it leaves out: an agent attempt whose
/// CLI reported no cost (here an old CLI's `cost_usd`) made "$0.33 spent"
/// read as the run's whole cost.
#[test]
fn the_summary_s_cost_says_the_attempts_it_does_not_count() {
    let t = an_agent_s_cost_known_and_one_s_not();
    // A script is no agent: it costs nothing unknown.
    t.task("p/script", &sh("true"));
    let run = t.run(&["orchestrate"]);
    run.code(0)
        .says(" spent, not counting 1 agent attempt of unknown cost)");
    // Its reruns alone: every cost known, the sum is all.
    t.run(&["reset", "p/a"]).code(0);
    let again = t.run(&["orchestrate"]);
    again.code(0).says(" spent)");
    assert!(!again.stdout.contains("unknown cost"), "{}", again.stdout);
}
