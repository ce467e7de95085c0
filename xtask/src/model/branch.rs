//! Branch names as git takes them: each task's, made from its id, and the
//! integration branch the user names, checked when the config is read, so
//! that a name git refuses (or takes for an option) never reaches git.

/// The folder of the task branches (`task/<task id>`), which `clean`
/// removes once merged.
pub const TASK_BRANCHES: &str = "task";

/// The branch of task `id`: `task/<id>`, with what git does not take in a
/// branch name made `-`: characters (spaces, `~^:?*[\@`...), `..`, a
/// part's leading `.` or trailing `.lock`, a trailing `.`.
pub fn branch_name(id: &str) -> String {
    let parts: Vec<String> = id.split('/').map(branch_part).collect();
    let name = format!("{TASK_BRANCHES}/{}", parts.join("/"));
    match name.strip_suffix('.') {
        Some(stem) => format!("{stem}-"),
        None => name,
    }
}

/// One part of a task's id (between `/`), as a part of its branch.
fn branch_part(part: &str) -> String {
    let cleaned: String = part
        .chars()
        .map(|c| {
            // Letters and digits of any script: git takes them, and two
            // ids in another alphabet must not come out the same (`--`).
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.replace("..", "-");
    let cleaned = match cleaned.strip_prefix('.') {
        Some(rest) => format!("-{rest}"),
        None => cleaned,
    };
    match cleaned.strip_suffix(".lock") {
        Some(stem) => format!("{stem}-lock"),
        None => cleaned,
    }
}

/// Why git would not take `name` as a branch name, by the rules of `git
/// check-ref-format --branch`, or `None` when it would.
pub fn refusal(name: &str) -> Option<&'static str> {
    if name.starts_with('-') {
        return Some("it starts with `-`, which git takes for an option");
    }
    if name == "HEAD" || name == "@" {
        return Some("git keeps that name for itself");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Some("it starts or ends with `/`, or has `//`");
    }
    if name.ends_with('.') {
        return Some("it ends with `.`");
    }
    if name.contains("..") || name.contains("@{") {
        return Some("it has `..` or `@{`");
    }
    if name
        .chars()
        .any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c))
    {
        return Some("it has a space, a control character, or one of ~^:?*[\\");
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Some("a part between `/` starts with `.` or ends with `.lock`");
    }
    // Git keeps a branch as a file (`.git/refs/heads/<name>`), with a
    // `.lock` beside it while it changes; a file's name has at most 255.
    if name.split('/').any(|part| part.len() > 250) {
        return Some(
            "a part between `/` is longer than 250 bytes, which git cannot keep as a file",
        );
    }
    None
}

/// The start of `name` that git reads as a ref's folder (`refs/`,
/// `heads/`, `tags/`, `remotes/`): git takes such a branch, but names
/// the branch `refs/heads/main` and the user's `main` alike (`refname is
/// ambiguous`), and an agent told to rebase onto it may take the other.
pub fn ambiguous_prefix(name: &str) -> Option<&'static str> {
    ["refs/", "heads/", "tags/", "remotes/"]
        .into_iter()
        .find(|prefix| name.starts_with(prefix))
}

/// Whether `name` is the task branches' folder or a branch in it.
pub fn among_task_branches(name: &str) -> bool {
    name == TASK_BRANCHES || name.starts_with(&format!("{TASK_BRANCHES}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_git_refuses_are_refused() {
        for name in [
            "-x",
            "HEAD",
            "@",
            "my branch",
            "a..b",
            "a/",
            "/a",
            "a//b",
            "a.",
            "x.lock",
            "a/.b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            "a@{1}",
            "tab\there",
        ] {
            assert!(refusal(name).is_some(), "{name:?}");
        }
        assert!(refusal(&format!("a/{}", "i".repeat(251))).is_some());
        let longest = format!("{}/{}", "i".repeat(250), "i".repeat(250));
        for name in [
            "integration",
            "merged/v2",
            "a.b",
            "a-b_c",
            "@x",
            "ä",
            &longest,
        ] {
            assert_eq!(refusal(name), None, "{name:?}");
        }
    }

    #[test]
    fn every_task_s_branch_is_one_git_takes() {
        for (id, branch) in [
            ("01-a/b", "task/01-a/b"),
            ("01 a/my task", "task/01-a/my-task"),
            ("p/a..b~1", "task/p/a-b-1"),
            ("p/x.lock", "task/p/x-lock"),
            ("p/b.", "task/p/b-"),
            ("p./b", "task/p./b"),
            ("p/.hidden", "task/p/-hidden"),
            ("p/a@{1}", "task/p/a--1-"),
            ("p/...", "task/p/--"),
            ("01-w/解析", "task/01-w/解析"),
            ("01-w/ünï", "task/01-w/ünï"),
        ] {
            assert_eq!(branch_name(id), branch, "{id}");
            assert_eq!(refusal(branch), None, "{id}");
        }
    }

    #[test]
    fn task_branches_are_under_their_folder() {
        assert!(among_task_branches("task"));
        assert!(among_task_branches("task/merged"));
        assert!(!among_task_branches("tasks"));
        assert!(!among_task_branches("integration"));
    }
}
