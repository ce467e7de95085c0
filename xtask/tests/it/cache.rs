//! The cache of parsed task files (`workspace/cache/tasks.jsonl`): used for
//! a file that has not changed, never for one that has, and never trusted
//! when it is of another build or unreadable.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::tree::{wait_for, Tree, BIN};

const CACHE: &str = "workspace/cache/tasks.jsonl";

/// A tree of two tasks, with a workspace (a command stores its cache
/// only in one that exists).
fn two_tasks() -> Tree {
    let t = Tree::new();
    t.task("p/a", "command: echo a");
    t.task("p/b", "command: echo b");
    std::fs::create_dir_all(t.path("workspace")).unwrap();
    t
}

/// Waits until every task file last changed more than two seconds ago: the
/// cache keeps no file changed more recently (a second change within the
/// same tick of the file system's clock would go unseen).
fn settle(t: &Tree, ids: &[&str]) {
    for id in ids {
        let meta = std::fs::metadata(t.path(&format!("tasks/{id}.md"))).unwrap();
        let changed = UNIX_EPOCH + Duration::new(meta.ctime() as u64, meta.ctime_nsec() as u32);
        wait_for("the task files to age", || {
            SystemTime::now()
                .duration_since(changed)
                .unwrap_or_default()
                > Duration::from_millis(2100)
        });
    }
}

/// The cache file, as its header line and its entries by task id (one
/// line each; a file not kept has a line of `null`, left out here).
fn cached(t: &Tree) -> (serde_json::Value, serde_json::Value) {
    let (header, lines) = cache_lines(t);
    let entries = lines
        .into_iter()
        .filter(|(_, entry)| !entry.is_null())
        .collect();
    (header, serde_json::Value::Object(entries))
}

/// The cache file's header and its lines, in order.
fn cache_lines(t: &Tree) -> (serde_json::Value, Vec<(String, serde_json::Value)>) {
    let text = t.read(CACHE);
    let mut lines = text.lines();
    let header = serde_json::from_str(lines.next().unwrap()).unwrap();
    let lines = lines
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (header, lines)
}

/// Makes the cache say that task `id` runs `echo planted`: a command
/// that shows it is the one `next` prints came from the cache.
fn plant(t: &Tree, id: &str) {
    let (header, mut lines) = cache_lines(t);
    for (line_id, entry) in &mut lines {
        if line_id == id {
            entry["task"]["command"] = serde_json::json!({ "Shell": "echo planted" });
        }
    }
    let lines: Vec<String> = std::iter::once(header.to_string())
        .chain(lines.iter().map(|line| serde_json::json!(line).to_string()))
        .collect();
    t.write(CACHE, &lines.join("\n"));
}

#[test]
fn an_unchanged_task_file_comes_from_the_cache_and_a_changed_one_is_read_again() {
    let t = two_tasks();
    settle(&t, &["p/a", "p/b"]);
    t.run(&["validate"]).code(0);
    let entries = cached(&t).1;
    assert!(
        entries.get("p/a").is_some() && entries.get("p/b").is_some(),
        "{entries}"
    );

    plant(&t, "p/a");
    t.run(&["next"]).code(0).says("echo planted");

    // The same size, and the modification time put back: only the change
    // time (which no program can set) tells.
    let file = t.path("tasks/p/a.md");
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    t.task("p/a", "command: echo A");
    let handle = std::fs::File::options().write(true).open(&file).unwrap();
    handle.set_modified(modified).unwrap();
    let next = t.run(&["next"]);
    next.code(0).says("echo A");
    assert!(!next.stdout.contains("planted"), "{}", next.stdout);
}

#[test]
fn a_cache_of_another_build_or_one_unreadable_is_ignored_and_written_again() {
    let t = two_tasks();
    settle(&t, &["p/a", "p/b"]);
    t.run(&["validate"]).code(0);
    plant(&t, "p/a");

    // A rebuilt program may parse differently: a copy of the binary has a
    // new modification time.
    let rebuilt = t.path("xtask-rebuilt");
    std::fs::copy(BIN, &rebuilt).unwrap();
    let out = std::process::Command::new(&rebuilt)
        .arg("--root")
        .arg(&t.root)
        .arg("next")
        .output()
        .unwrap();
    let rebuilt_run = crate::tree::Run::from(out);
    rebuilt_run.code(0).says("echo a");
    assert!(
        !rebuilt_run.stdout.contains("planted"),
        "{}",
        rebuilt_run.stdout
    );

    t.write(CACHE, "{\"program\": \"cut short");
    t.run(&["next"]).code(0).says("echo a").says("echo b");
    let entries = cached(&t).1;
    assert!(entries.get("p/a").is_some(), "written again: {entries}");
}

#[test]
fn recent_files_and_tasks_with_a_prompt_are_not_kept_and_only_a_run_makes_a_workspace() {
    let t = two_tasks();
    t.task(
        "p/c",
        "command: cat {prompt_file}\nprompt: Do {{ task.id }}.",
    );
    settle(&t, &["p/a", "p/b", "p/c"]);
    t.task("p/b", "command: echo B");
    t.run(&["validate"]).code(0);
    let entries = cached(&t).1;
    assert!(entries.get("p/a").is_some(), "{entries}");
    // Just written: it could change again within the same clock tick.
    assert!(entries.get("p/b").is_none(), "{entries}");
    // A template may be a file of its own, which may change apart from the
    // task's: no task with one is kept.
    assert!(entries.get("p/c").is_none(), "{entries}");
    // Still a line each, in the files' order: the next command finds every
    // file's line in its place, none shifted by those not kept.
    let ids: Vec<String> = cache_lines(&t).1.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["p/a", "p/b", "p/c"]);
    // Nothing it would hold changed: not written again (a new file each
    // time, so a new inode).
    let inode = || std::fs::metadata(t.path(CACHE)).unwrap().ino();
    let before = inode();
    t.run(&["validate"]).code(0);
    assert_eq!(inode(), before, "rewritten with nothing changed");
    // Nor while a file gives no task at all (one outside a phase folder,
    // sorted before the others): it has its line too.
    t.write("tasks/a.md", "---\n---\n");
    t.run(&["validate"]).code(2).says("phase folder");
    let before = inode();
    t.run(&["validate"]).code(2);
    assert_eq!(inode(), before, "rewritten for a file with no task");
    std::fs::remove_file(t.path("tasks/a.md")).unwrap();

    // A command that only reads makes no workspace for its cache; a run,
    // which makes one anyway, stores its cache from the start.
    let bare = Tree::new();
    bare.task("p/a", "command: echo a");
    settle(&bare, &["p/a"]);
    bare.run(&["validate"]).code(0);
    bare.run(&["orchestrate", "--dry-run"]).code(0);
    let typo = bare.run(&["orchestrate", "--phase", "nope"]);
    assert_ne!(typo.code, 0, "{}", typo.stderr);
    assert!(!bare.exists("workspace"));
    bare.run(&["orchestrate"]).code(0);
    let entries = cached(&bare).1;
    assert!(entries.get("p/a").is_some(), "{entries}");
}

#[test]
fn files_that_come_or_go_leave_the_others_to_the_cache_and_the_gone_are_dropped() {
    let t = Tree::new();
    t.task("p/b", "command: echo b");
    t.task("p/c", "command: echo c");
    std::fs::create_dir_all(t.path("workspace")).unwrap();
    settle(&t, &["p/b", "p/c"]);
    t.run(&["validate"]).code(0);
    plant(&t, "p/b");

    // p/b's entry is no longer on the line of its file's place.
    t.task("p/a", "command: echo a");
    t.run(&["next"]).code(0).says("echo a").says("echo planted");

    std::fs::remove_file(t.path("tasks/p/c.md")).unwrap();
    t.run(&["next"]).code(0).says("echo planted");
    let entries = cached(&t).1;
    assert!(entries.get("p/b").is_some(), "{entries}");
    assert!(
        entries.get("p/c").is_none(),
        "the entry of a file gone stays: {entries}"
    );
}
