//! Unit tests of the graph: batches, cycles, gates, and the walks of failures.

use super::*;
use camino::Utf8PathBuf;

fn task(id: &str, deps: &[&str]) -> Task {
    Task::new(
        id,
        Utf8PathBuf::from(format!("/nonexistent/{id}.md")),
        deps.iter().map(|d| d.to_string()).collect(),
    )
}

fn problems(tasks: Vec<Task>) -> String {
    match Graph::build(tasks) {
        Ok(_) => String::new(),
        Err(p) => p
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn a_batch_leaves_out_what_has_a_problem_and_what_needs_it() {
    let mut g = Graph::build(vec![task("a/seed", &[])]).unwrap();
    let (added, problems) = g.extend(vec![
        task("b/c1", &["b/c2"]),
        task("b/c2", &["b/c1"]),
        task("b/after", &["b/c1"]),
        task("b/ok", &["a/seed"]),
    ]);
    let ids: Vec<&str> = added.iter().map(|&t| g.tasks[t].id.as_str()).collect();
    assert_eq!(ids, ["b/ok"]);
    let said: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        said.iter().any(|p| p.contains("dependency cycle")),
        "{said:?}"
    );
    // Not an unknown dependency with a wrong suggestion.
    assert!(
        said.iter().all(|p| !p.contains("unknown dependency")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|p| p
                .contains("b/after.md: left out: it depends on b/c1, whose file has a problem")),
        "{said:?}"
    );
}

#[test]
fn checks() {
    assert_eq!(problems(vec![task("a/x", &[]), task("a/y", &["a/x"])]), "");
    assert!(problems(vec![task("a/x", &["a/yy"]), task("a/y", &[])]).contains("did you mean `a/y`"));
    let cycle = problems(vec![task("a/x", &["a/y"]), task("a/y", &["a/x"])]);
    assert!(
        cycle.contains("cycle") && cycle.contains("a/x") && cycle.contains("a/y"),
        "{cycle}"
    );
    // A phase dependency on the task's own phase waits for itself.
    assert!(problems(vec![task("a/x", &["a"])]).contains("phase a"));
    assert_eq!(problems(vec![task("a/x", &[]), task("b/y", &["a"])]), "");
    let mut bad = task("a/x", &[]);
    bad.outputs = vec!["../escape".into()];
    bad.inputs = vec!["/etc/passwd".into()];
    let found = problems(vec![bad]);
    assert!(
        found.contains("`..`") && found.contains("absolute"),
        "{found}"
    );
}

#[test]
fn inputs_name_their_producer() {
    let mut consumer = task("b/y", &[]);
    consumer.inputs = vec!["a/x/result.json".into()];
    let mut producer = task("a/x", &[]);
    let undeclared = problems(vec![producer.clone(), consumer.clone()]);
    assert!(
        undeclared
            .contains("input `a/x/result.json` is not among the outputs of a/x (it declares none)"),
        "{undeclared}"
    );
    producer.outputs = vec!["*.json".into()];
    let graph = Graph::build(vec![producer, consumer]).unwrap();
    assert_eq!(graph.deps[1], vec![Dep::Task(0)]);
    assert_eq!(graph.dependents[0], vec![1]);
}

#[test]
fn every_cycle_is_reported() {
    let found = problems(vec![
        task("a/x", &["a/y"]),
        task("a/y", &["a/x"]),
        task("b/u", &["b/v"]),
        task("b/v", &["b/u"]),
        task("c/w", &["c/nope"]),
    ]);
    assert_eq!(found.matches("dependency cycle").count(), 2, "{found}");
    assert!(found.contains("unknown dependency `c/nope`"), "{found}");
}

/// A gate is searched through the gates before it (one step each, not
/// every member: a graph of as many phases as tasks took their
/// square), and a cycle through them names the phase waited for.
#[test]
fn a_cycle_through_a_later_phase_s_gate_names_that_phase() {
    let found = problems(vec![
        task("a/x", &["c"]),
        task("b/y", &[]),
        task("c/z", &[]),
    ]);
    assert!(
        found.contains("dependency cycle: a/x -> phase c -> a/x (each"),
        "{found}"
    );
    let found = problems(vec![
        task("a/x", &[]),
        task("b/y", &["c/z"]),
        task("c/z", &["b"]),
    ]);
    assert!(
        found.contains("dependency cycle: c/z -> phase b -> b/y -> c/z (each"),
        "{found}"
    );
    // Two cycles through the same chain of gates, each of its own
    // tasks: both said, as each holds without the other.
    let found = problems(vec![
        task("a/x", &["b"]),
        task("b/y", &["c"]),
        task("c/z", &[]),
    ]);
    assert!(found.contains("a/x -> phase b -> a/x (each"), "{found}");
    assert!(found.contains("b/y -> phase c -> b/y (each"), "{found}");
}

#[test]
fn a_failure_blocks_what_waits_on_it_through_gates_up_to_a_task_done() {
    let g = Graph::build(vec![
        task("a/x", &[]),
        task("a/y", &[]),
        task("b/after-gate", &["a"]),
        task("b/below", &["b/after-gate"]),
        task("c/done", &["a/y"]),
        task("c/below-done", &["c/done"]),
        task("c/two", &["a/y", "a/x"]),
    ])
    .unwrap();
    let id = |t: usize| g.tasks[t].id.as_str();
    let failed = |t: usize| matches!(id(t), "a/x" | "a/y");
    let through = |t: usize| id(t) != "c/done";
    let by = g.blocked_by_failures(failed, through);
    let named = |name: &str| by[g.get(name).unwrap()].map(id);
    assert_eq!(named("b/after-gate"), Some("a/x"));
    assert_eq!(named("b/below"), Some("a/x"));
    assert_eq!(named("c/done"), None);
    assert_eq!(named("c/below-done"), None);
    // Of two failures, the first by index.
    assert_eq!(named("c/two"), Some("a/x"));
    assert_eq!(named("a/x"), None);
}

#[test]
fn a_task_waits_directly_on_what_it_names_and_its_gates_members() {
    let g = Graph::build(vec![
        task("a/x", &[]),
        task("b/y", &["a"]),
        task("b/z", &["b/y"]),
        task("c/w", &["b/z"]),
    ])
    .unwrap();
    let t = |id: &str| g.get(id).unwrap();
    assert!(g.waits_directly_on(t("b/y"), t("a/x")));
    assert!(g.waits_directly_on(t("b/z"), t("b/y")));
    assert!(!g.waits_directly_on(t("c/w"), t("b/y")));
    assert!(!g.waits_directly_on(t("b/z"), t("a/x")));
}

#[test]
fn upstream_is_every_task_waited_on_through_tasks_and_gates() {
    let g = Graph::build(vec![
        task("01-a/x", &[]),
        task("01-a/y", &[]),
        task("02-b/z", &["01-a"]),
        task("02-b/w", &[]),
        task("03-c/v", &["02-b/z"]),
        task("03-c/after", &["03-c/v"]),
    ])
    .unwrap();
    let ids = |t: &str| {
        let mut ids: Vec<&str> = (g.upstream(g.get(t).unwrap()).into_iter())
            .map(|u| g.tasks[u].id.as_str())
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(ids("03-c/v"), ["01-a/x", "01-a/y", "02-b/z"]);
    assert_eq!(ids("03-c/after"), ["01-a/x", "01-a/y", "02-b/z", "03-c/v"]);
    assert!(ids("02-b/w").is_empty());
}
