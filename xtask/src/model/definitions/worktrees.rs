//! The checks of the definitions that concern tasks run in worktrees:
//! their branches, whether their worktrees can be made here, their ports.

use std::collections::BTreeMap;

use crate::model::branch;
use crate::model::config::Config;
use crate::model::layout::Layout;
use crate::model::problem::Problem;
use crate::model::task::Task;

/// Worktree tasks whose ids give the same branch name (`a b` and `a-b`),
/// or a branch inside another's (`a` and `a/b`: git cannot have both, and
/// their worktrees would nest).
pub(super) fn branch_clashes(config: &Config, tasks: &[Task]) -> Vec<Problem> {
    let mut by_branch: BTreeMap<String, &Task> = BTreeMap::new();
    let mut problems = Vec::new();
    for task in tasks.iter().filter(|t| t.in_worktree(config)) {
        let branch = branch::branch_name(&task.id);
        if let Some(first) = by_branch.insert(branch.clone(), task) {
            problems.push(same_branch(task, &branch, &first.id));
        }
    }
    for (branch, task) in &by_branch {
        let outer = branch
            .match_indices('/')
            .map(|(i, _)| &branch[..i])
            .find_map(|up| by_branch.get_key_value(up));
        if let Some((up, outer)) = outer {
            problems.push(nested_branch(task, branch, up, &outer.id));
        }
    }
    problems
}

/// The worktree tasks' branches, each with its task's id.
pub type Branches = BTreeMap<String, String>;

/// The branches of `tasks` that run in worktrees.
pub fn branches<'a>(config: &Config, tasks: impl Iterator<Item = &'a Task>) -> Branches {
    (tasks.filter(|t| t.in_worktree(config)))
        .map(|t| (branch::branch_name(&t.id), t.id.clone()))
        .collect()
}

/// `branch_clashes` of one task found during a run, against the `known`
/// branches of the others (the run's, and those found with it): taken into
/// them when it clashes with none. It failed as it started, on the other's
/// worktree, and the next run refused the definitions.
pub fn branch_clash_with(config: &Config, task: &Task, known: &mut Branches) -> Option<Problem> {
    if !task.in_worktree(config) {
        return None;
    }
    let branch = branch::branch_name(&task.id);
    if let Some(other) = known.get(&branch) {
        return Some(same_branch(task, &branch, other));
    }
    let outer = (branch.match_indices('/').map(|(i, _)| &branch[..i]))
        .find_map(|up| known.get_key_value(up));
    if let Some((up, outer)) = outer {
        return Some(nested_branch(task, &branch, up, outer));
    }
    let inner = format!("{branch}/");
    let within = known.range(inner.clone()..).next();
    if let Some((under, inside)) = within.filter(|(b, _)| b.starts_with(&inner)) {
        let problem = format!(
            "its branch would be `{branch}`, holding `{inside}`'s `{under}`: git cannot have both, and their worktrees would nest; rename one of the two"
        );
        return Some(Problem::in_file(&task.file, None, problem));
    }
    known.insert(branch, task.id.clone());
    None
}

fn same_branch(task: &Task, branch: &str, other: &str) -> Problem {
    let said =
        format!("its branch would be `{branch}`, as `{other}`'s: rename one of the two files");
    Problem::in_file(&task.file, None, said)
}

fn nested_branch(task: &Task, branch: &str, up: &str, outer: &str) -> Problem {
    let said = format!(
        "its branch would be `{branch}`, inside `{outer}`'s `{up}`: git cannot have both, and their worktrees would nest; rename one of the two"
    );
    Problem::in_file(&task.file, None, said)
}

/// What keeps the worktrees the given tasks run in from being made here
/// (no repository, no commit to start from, a branch of the user's in the
/// way...), checked without changing anything: at the first such task's
/// file, or at `worktrees` in the config when it sets them all.
pub(super) fn worktree_problem(
    layout: &Layout,
    config: &Config,
    tasks: &[&Task],
    usable: fn(&Layout, &crate::model::config::Worktrees) -> anyhow::Result<()>,
) -> Option<Problem> {
    let first = tasks.iter().find(|t| t.in_worktree(config))?;
    let e = usable(layout, &config.worktrees).err()?;
    Some(match first.workdir {
        Some(_) => Problem::in_file_where(
            &first.file,
            "workdir",
            format!("it runs in a worktree, and {e:#}"),
        ),
        None => Problem::in_file_where(
            &layout.config_file(),
            "worktrees",
            format!("{} runs in a worktree (the config's), and {e:#}", first.id),
        ),
    })
}

/// A port past the last (65535) for an agent slot the run may fill: the
/// `TASK_PORT` of parallel agents in worktrees would be the same.
pub(super) fn ports_problem(
    layout: &Layout,
    config: &Config,
    tasks: &[&Task],
    jobs: Option<usize>,
) -> Option<Problem> {
    tasks.iter().find(|t| t.in_worktree(config))?;
    let at_once = jobs
        .unwrap_or(config.max_concurrent_agents)
        .min(tasks.len());
    if config.worktrees.port(at_once.saturating_sub(1)).is_some() {
        return None;
    }
    let (base, stride) = (config.worktrees.port_base, config.worktrees.port_stride);
    let last = u64::from(base) + u64::from(stride) * at_once.saturating_sub(1) as u64;
    let limit = match jobs {
        Some(j) => format!("-j {j}"),
        None => "max_concurrent_agents".to_owned(),
    };
    Some(Problem::in_file_where(
        &layout.config_file(),
        "port_base",
        format!(
            "worktrees.port_base ({base}) + port_stride ({stride}) × {} is {last} for {at_once} tasks at once ({limit}): past the last port, 65535, so parallel agents would get the same TASK_PORT; lower port_base or port_stride",
            at_once - 1
        ),
    ))
}
