//! `clean [--dry-run]`: finishes removals a killed `clean` cut short, then
//! removes the worktrees and `task/*` branches whose work is merged and
//! says why it keeps the others (`git::cleaning`), prunes git's records of
//! worktrees, and counts what it did.

use anyhow::Result;

use crate::git::cleaning;
use crate::git::repo::Repo;
use crate::model::config::Config;
use crate::model::definitions::invalid;
use crate::model::layout::Layout;
use crate::state::lock;

pub fn run(layout: &Layout, dry_run: bool) -> Result<i32> {
    let config = Config::load(&layout.config_file()).map_err(|p| invalid(layout, p))?;
    // Never beside a run: a running task's worktree may look merged (no
    // commit of its own yet). No workspace, no run, and none made here.
    let _lock = match layout.workspace.exists() {
        true => Some(lock::acquire(layout)?),
        false => None,
    };
    let repo = match Repo::open(layout) {
        Ok(repo) => repo,
        // git's own words: no repository, so no worktree was ever made.
        Err(e) if format!("{e:#}").contains("not a git repository") => {
            println!(
                "nothing to clean: {} is not in a git repository, so no worktree was made for it",
                layout.root
            );
            return Ok(crate::exit::SUCCESS);
        }
        Err(e) => return Err(e),
    };
    // Moved since they were made, our worktrees are no longer git's: linked
    // again first. A dry run cannot tell what `clean` would do with them
    // before that: it says so, and plans nothing.
    // A `clean` killed while it removed a worktree: finished, the folders
    // named (git has no record of them left, and their branches are
    // judged without one), in a dry run too.
    let cut_short = match dry_run {
        false => {
            repo.repair_after_a_move()?;
            for folder in repo.finish_removals()? {
                let folder = layout.display(&folder);
                println!("removed  what was left of {folder}, whose removal was cut short");
            }
            Vec::new()
        }
        true if !repo.worktrees_left_by_a_move().is_empty() => {
            println!(
                "the repository was moved since cargo xtask made its worktrees: `{}` links them again first (`git worktree repair`), then cleans; nothing is planned until then",
                layout.cmd("clean")
            );
            return Ok(crate::exit::SUCCESS);
        }
        true => {
            let cut_short = repo.removals_cut_short();
            for folder in cut_short.iter().filter(|f| f.exists()) {
                let folder = layout.display(folder);
                println!("would remove what is left of {folder}, whose removal was cut short");
            }
            cut_short
        }
    };
    let swept = cleaning::sweep(
        layout,
        &repo,
        &config.worktrees,
        &cleaning::How {
            dry_run,
            cut_short: &cut_short,
            completed_only: false,
        },
        &mut |line| println!("{line}"),
        // A Ctrl-C ends it: a removal cut short is finished next time.
        &mut || false,
        // Each removal is said as it is done.
        &mut || {},
    )?;
    let Some(cleaning::Swept {
        removed,
        kept,
        failed,
    }) = swept
    else {
        return Ok(crate::exit::SUCCESS);
    };
    let verb = if dry_run { "would remove" } else { "removed" };
    // Kept for the reasons said above: work not merged, a worktree of the
    // user's, a task running...
    println!("{verb} {}, kept {kept}", removed.len());
    Ok(match failed {
        true => crate::exit::TASK_FAILED,
        false => crate::exit::SUCCESS,
    })
}
