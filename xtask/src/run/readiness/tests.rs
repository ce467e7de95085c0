//! Unit tests of `Readiness`, and the stand-ins other modules' tests use.

use super::*;
use crate::model::task::Task;
use camino::Utf8PathBuf;

fn graph(tasks: &[(&str, &[&str], &[&str])]) -> Graph {
    let tasks = tasks
        .iter()
        .map(|(id, deps, inputs)| Task {
            inputs: inputs.iter().map(|i| i.to_string()).collect(),
            outputs: vec!["out.json".into()],
            ..Task::new(
                id,
                Utf8PathBuf::from(format!("/nonexistent/{id}.md")),
                deps.iter().map(|d| d.to_string()).collect(),
            )
        })
        .collect();
    Graph::build(tasks).unwrap()
}

/// Files where every input, and every gate's artifacts, exist or not.
pub(crate) struct Stub {
    inputs: bool,
    artifacts: bool,
}

impl Files for Stub {
    fn input_exists(&self, _: &str) -> bool {
        self.inputs
    }
    fn missing_artifacts(&self, _: usize) -> Vec<String> {
        match self.artifacts {
            true => Vec::new(),
            false => vec!["artifact".to_owned()],
        }
    }
}

pub(crate) const ALL_THERE: Stub = Stub {
    inputs: true,
    artifacts: true,
};

pub(crate) fn waiting(graph: &Graph) -> Vec<(usize, Node)> {
    (0..graph.tasks.len()).map(|t| (t, Node::Waiting)).collect()
}

fn ready(r: &Readiness, g: &Graph) -> Vec<String> {
    (0..g.phases.len())
        .flat_map(|p| r.ready_in_phase(p))
        .map(|t| g.tasks[t].id.clone())
        .collect()
}

#[test]
fn a_task_is_ready_once_every_dependency_completed() {
    let g = graph(&[
        ("p/a", &[], &[]),
        ("p/b", &[], &[]),
        ("p/c", &["p/a", "p/b"], &[]),
    ]);
    let files = &ALL_THERE;
    let mut r = Readiness::new(false);
    assert!(r.add(&g, &waiting(&g), files).is_empty());
    assert_eq!(ready(&r, &g), ["p/a", "p/b"]);
    r.start(&g, 0);
    r.start(&g, 1);
    assert_eq!(r.running_in_phase(0), 2);
    r.complete(&g, 0, files);
    assert_eq!(r.node(2), Node::Waiting);
    r.complete(&g, 1, files);
    assert_eq!(ready(&r, &g), ["p/c"]);
    assert_eq!(r.running_in_phase(0), 0);
}

/// Three phases of a task each, the last one's depending on the second
/// phase, all waiting.
fn three_phases() -> (Graph, Readiness) {
    let g = graph(&[
        ("1-a/x", &[], &[]),
        ("2-b/y", &[], &[]),
        ("3-c/z", &["1-a", "2-b"], &[]),
    ]);
    let mut r = Readiness::new(false);
    r.add(&g, &waiting(&g), &ALL_THERE);
    (g, r)
}

#[test]
fn a_phase_gate_waits_for_its_phase_and_every_earlier_one() {
    let (g, mut r) = three_phases();
    let files = &ALL_THERE;
    let gate = g.phase("2-b").unwrap();
    assert_eq!(r.gate_unmet(gate), 2);
    r.start(&g, 1);
    r.complete(&g, 1, files);
    assert!(!r.gate_open(gate), "1-a/x is not done");
    r.start(&g, 0);
    r.complete(&g, 0, files);
    assert!(r.gate_open(gate));
    assert_eq!(ready(&r, &g), ["3-c/z"]);
}

#[test]
fn a_gate_held_for_an_invalid_task_file_stays_closed() {
    let (g, mut r) = three_phases();
    let files = &ALL_THERE;
    let (a, b, c) = (0, g.phase("2-b").unwrap(), g.phase("3-c").unwrap());
    r.start(&g, 0);
    r.complete(&g, 0, files);
    assert!(r.gate_open(a));
    // An invalid file in 1-a, too late for its gate, and one in 2-b.
    r.hold_gates(&g, a);
    assert_eq!(
        (r.gate_unmet(b), r.gate_unmet(c)),
        (2, 3),
        "a's own gate is past holding"
    );
    r.hold_gates(&g, b);
    assert!(r.gate_open(a));
    assert_eq!((r.gate_unmet(b), r.gate_unmet(c)), (3, 4));
    r.start(&g, 1);
    r.complete(&g, 1, files);
    assert!(!r.gate_open(b));
    assert_eq!(ready(&r, &g), Vec::<String>::new());
    // The files are made valid (or removed): the gate opens.
    r.release_gates(&g, b, files);
    assert!(!r.gate_open(b));
    r.release_gates(&g, a, files);
    assert!(r.gate_open(b));
    assert_eq!(ready(&r, &g), ["3-c/z"]);
}

#[test]
fn only_the_last_member_of_a_gate_or_a_gate_short_of_artifacts_may_open_one() {
    let g = graph(&[
        ("1-a/x", &[], &[]),
        ("2-b/y", &[], &[]),
        ("2-b/v", &[], &[]),
        ("3-c/w", &["1-a", "2-b"], &[]),
    ]);
    let mut r = Readiness::new(false);
    let missing = Stub {
        inputs: true,
        artifacts: false,
    };
    r.add(&g, &waiting(&g), &missing);
    for t in 0..3 {
        r.start(&g, t);
    }
    assert!(r.may_open_a_gate(&g, 0), "the last member of gate 1-a");
    assert!(!r.may_open_a_gate(&g, 1), "one of three members of 2-b's");
    r.complete(&g, 0, &missing);
    assert!(!r.gate_open(g.phase("1-a").unwrap()));
    assert!(
        r.may_open_a_gate(&g, 1),
        "gate 1-a waits only for artifacts"
    );
    r.recheck(&g, &ALL_THERE);
    assert!(r.gate_open(g.phase("1-a").unwrap()));
    assert!(!r.may_open_a_gate(&g, 1), "one of two members of 2-b's");
    r.complete(&g, 1, &ALL_THERE);
    assert!(r.may_open_a_gate(&g, 2), "the last member of 2-b's");
}

/// An invalid file holds the gate of a phase found after it was read,
/// until it is valid (that gate did not count it, and opened).
#[test]
fn an_invalid_file_holds_the_gate_of_a_phase_found_later() {
    let g = graph(&[("1-a/x", &[], &[])]);
    let mut r = Readiness::new(false);
    r.add(&g, &waiting(&g), &ALL_THERE);
    r.hold_gates(&g, 0);
    let g = graph(&[
        ("1-a/x", &[], &[]),
        ("2-b/n", &[], &[]),
        ("3-c/w", &["2-b"], &[]),
    ]);
    r.add(&g, &[(1, Node::Waiting), (2, Node::Waiting)], &ALL_THERE);
    for t in [0, 1] {
        r.start(&g, t);
        r.complete(&g, t, &ALL_THERE);
    }
    let gate = g.phase("2-b").unwrap();
    assert!(!r.gate_open(gate), "opened beside the invalid file");
    r.release_gates(&g, 0, &ALL_THERE);
    assert!(r.gate_open(gate));
    assert_eq!(ready(&r, &g), ["3-c/w"]);
}

/// An invalid file held before the tasks found with it are added, as a
/// run does: of a complete phase nothing waited on, or of a phase they
/// bring, its gate stays closed to the task that waits on it.
#[test]
fn an_invalid_file_found_with_what_waits_on_its_phase_holds_the_gate() {
    let g = graph(&[("1-a/x", &[], &[])]);
    let mut r = Readiness::new(false);
    r.add(&g, &waiting(&g), &ALL_THERE);
    r.start(&g, 0);
    r.complete(&g, 0, &ALL_THERE);
    let g = graph(&[
        ("1-a/x", &[], &[]),
        ("2-b/n", &[], &[]),
        ("3-c/w", &["1-a"], &[]),
        ("3-c/v", &["2-b"], &[]),
    ]);
    let (a, b) = (g.phase("1-a").unwrap(), g.phase("2-b").unwrap());
    r.hold_gates(&g, a);
    r.hold_gates(&g, b);
    r.add(&g, &[1, 2, 3].map(|t| (t, Node::Waiting)), &ALL_THERE);
    r.start(&g, 1);
    r.complete(&g, 1, &ALL_THERE);
    assert!(ready(&r, &g).is_empty(), "{:?}", ready(&r, &g));
    r.release_gates(&g, a, &ALL_THERE);
    assert_eq!(ready(&r, &g), ["3-c/w"]);
    r.release_gates(&g, b, &ALL_THERE);
    assert_eq!(ready(&r, &g), ["3-c/w", "3-c/v"]);
}

/// A task dropped when its file went is no member of a gate made
/// after (a phase found later): what waits on that phase started never.
#[test]
fn a_task_whose_file_went_holds_no_gate_of_a_phase_found_later() {
    let g = graph(&[("1-a/x", &[], &[]), ("1-a/y", &["1-a/x"], &[])]);
    let mut r = Readiness::new(false);
    r.add(&g, &waiting(&g), &ALL_THERE);
    r.drop_unstarted(&g, 1, &ALL_THERE);
    r.start(&g, 0);
    r.complete(&g, 0, &ALL_THERE);
    let g = graph(&[
        ("1-a/x", &[], &[]),
        ("1-a/y", &["1-a/x"], &[]),
        ("2-b/n", &[], &[]),
        ("3-c/w", &["2-b"], &[]),
    ]);
    r.add(&g, &[(2, Node::Waiting), (3, Node::Waiting)], &ALL_THERE);
    let gate = g.phase("2-b").unwrap();
    assert_eq!(r.gate_unmet(gate), 1, "2-b/n alone");
    r.start(&g, 2);
    r.complete(&g, 2, &ALL_THERE);
    assert!(r.gate_open(gate));
    assert_eq!(ready(&r, &g), ["3-c/w"]);
}

/// A gate nothing waits on releases nothing: it stays closed, and its
/// last member's end is no reason to look for generated tasks first.
#[test]
fn a_gate_nothing_waits_on_stays_closed() {
    let g = graph(&[("1-a/x", &[], &[]), ("2-b/y", &[], &[])]);
    let mut r = Readiness::new(false);
    r.add(&g, &waiting(&g), &ALL_THERE);
    r.start(&g, 0);
    assert!(!r.may_open_a_gate(&g, 0));
    r.complete(&g, 0, &ALL_THERE);
    assert!(!r.gate_open(g.phase("1-a").unwrap()));
    // A task that waits on the phase joins: the gate opens for it.
    let g = graph(&[
        ("1-a/x", &[], &[]),
        ("2-b/y", &[], &[]),
        ("3-c/z", &["1-a"], &[]),
    ]);
    r.add(&g, &[(2, Node::Waiting)], &ALL_THERE);
    assert!(r.gate_open(g.phase("1-a").unwrap()));
    assert_eq!(ready(&r, &g), ["2-b/y", "3-c/z"]);
}

#[test]
fn a_gate_waits_for_its_artifacts() {
    let g = graph(&[("1-a/x", &[], &[]), ("2-b/y", &["1-a"], &[])]);
    let mut r = Readiness::new(false);
    let missing = Stub {
        inputs: true,
        artifacts: false,
    };
    r.add(&g, &waiting(&g), &missing);
    r.start(&g, 0);
    r.complete(&g, 0, &missing);
    assert!(!r.gate_open(0));
    r.recheck(&g, &ALL_THERE);
    assert!(r.gate_open(0));
    assert_eq!(ready(&r, &g), ["2-b/y"]);
}

#[test]
fn a_missing_input_holds_a_task_until_it_appears() {
    let g = graph(&[("p/a", &[], &[]), ("p/b", &[], &["p/a/out.json"])]);
    let absent = Stub {
        inputs: false,
        artifacts: true,
    };
    let mut r = Readiness::new(false);
    r.add(&g, &waiting(&g), &absent);
    r.start(&g, 0);
    r.complete(&g, 0, &absent);
    assert_eq!(r.node(1), Node::NeedsInputs);
    r.recheck(&g, &ALL_THERE);
    assert_eq!(r.node(1), Node::Ready);
    // A plan assumes the producer writes it.
    let mut plan = Readiness::new(true);
    plan.add(&g, &waiting(&g), &absent);
    plan.start(&g, 0);
    plan.complete(&g, 0, &absent);
    assert_eq!(plan.node(1), Node::Ready);
}

#[test]
fn a_failure_blocks_everything_downstream_and_nothing_else() {
    let g = graph(&[
        ("p/a", &[], &[]),
        ("p/b", &["p/a"], &[]),
        ("p/c", &["p/b"], &[]),
        ("p/d", &[], &[]),
        ("q/e", &["p"], &[]),
    ]);
    let files = &ALL_THERE;
    let mut r = Readiness::new(false);
    r.add(&g, &waiting(&g), files);
    r.start(&g, 0);
    r.fail(&g, 0);
    let blocked: Vec<&str> = r
        .block_downstream(&g, 0, Walk::InRun)
        .into_iter()
        .map(|t| g.tasks[t].id.as_str())
        .collect();
    assert_eq!(blocked, ["p/b", "p/c", "q/e"]);
    assert_eq!(r.blocked_by(4), Some(0));
    assert_eq!(ready(&r, &g), ["p/d"]);
}

#[test]
fn a_retry_is_ready_again_and_a_reopened_task_waits() {
    let g = graph(&[("p/a", &[], &[]), ("p/b", &["p/a"], &[])]);
    let files = &ALL_THERE;
    let mut r = Readiness::new(false);
    r.add(&g, &[(0, Node::Running), (1, Node::Waiting)], files);
    assert_eq!(r.running_in_phase(0), 1);
    r.reopen(&g, 0, true, files);
    assert_eq!((r.node(0), r.running_in_phase(0)), (Node::Ready, 0));
    r.start(&g, 0);
    r.reopen(&g, 0, true, files);
    assert_eq!(ready(&r, &g), ["p/a"]);
}

#[test]
fn a_task_added_after_its_gate_opened_is_reported() {
    let mut g = graph(&[("1-a/x", &[], &[]), ("2-b/y", &["1-a"], &[])]);
    let files = &ALL_THERE;
    let mut r = Readiness::new(false);
    r.add(&g, &waiting(&g), files);
    r.start(&g, 0);
    r.complete(&g, 0, files);
    assert!(r.gate_open(0));
    let task = Task::new("1-a/late", "/nonexistent/late.md".into(), Vec::new());
    let (added, problems) = g.extend(vec![task]);
    assert!(problems.is_empty());
    let late = r.add(&g, &[(added[0], Node::Waiting)], files);
    assert_eq!(late, [(added[0], 0)]);
}
