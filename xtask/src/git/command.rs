//! How git is run: each command through xshell (every value one
//! argument, no shell), on the repository of its shell's folder whatever
//! the environment says, never interactively, stopping (or not) with the
//! orchestrator, an error naming the command and what git printed on
//! stderr. Only `repo.rs` calls these.

use anyhow::{bail, Context, Result};
use std::cell::RefCell;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use xshell::Cmd;

use crate::sys::env::GIT_REPOSITORY_VARS;

/// A git command made to act on the repository of the shell's folder,
/// whatever the orchestrator's environment says (it may run from a git
/// hook), and not echoed.
///
/// It runs none of the repository's hooks: they are the user's and the
/// agents' (whose own gits, which the orchestrator does not run, keep
/// them), written for a checkout someone works in. Run in the
/// orchestrator's worktrees, a post-merge or post-checkout hook that
/// writes a file leaves changes that are no one's, which stall the merge
/// queue or get committed as an agent's; one that fails fails a making
/// that worked. `core.hooksPath` set to a file holds no hook; set through
/// `GIT_CONFIG_COUNT` (the user's is removed above), it outranks the
/// repository's config, `core.hooksPath` too.
///
/// And in the C locale: the orchestrator reads git's messages
/// (`read_a_record`, `signing_hint`, a locked config), which a
/// translated git would word otherwise. What users see of it is git's
/// stderr quoted in an error, in English like the rest of the
/// orchestrator's words; names are not touched (git neither converts a
/// path nor a commit's message to the locale's encoding).
pub(super) fn prep(cmd: Cmd<'_>) -> Cmd<'_> {
    GIT_REPOSITORY_VARS
        .iter()
        .fold(cmd.quiet(), |cmd, var| cmd.env_remove(var))
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "core.hooksPath")
        .env("GIT_CONFIG_VALUE_0", "/dev/null")
        .env("LC_ALL", "C")
}

/// Runs a git command to its end, whatever its exit status. xshell builds
/// it (each value one argument); it runs as a `Command` so that it dies
/// with the orchestrator's thread that started it, never going on beside
/// the next orchestrator. It is sent SIGTERM, not SIGKILL: git then
/// removes the lock files it holds (its index's, a ref's) before it dies,
/// most of the time: git knows a lock only once its `open` has returned,
/// and a SIGTERM taken right then (any of its locks) leaves that lock; the
/// shared `packed-refs.lock` so left is waited out before a merge
/// (`Repo::settle_packed_refs_lock`). So git gets the
/// signals the orchestrator blocks back, and a session of its own, without
/// a terminal: a Ctrl-C in the terminal does not reach it (the
/// orchestrator, told, lets its git commands end), and nothing git runs
/// can stop waiting on the terminal (a prompt fails: git is never
/// interactive here). A git killed otherwise leaves its locks: those in
/// places only this orchestrator writes are removed on recovery
/// (`remove_stale_worktree_locks`, `remove_stale_ref_locks`); the shared
/// config's is not, so a write of it is never stopped (`run_to_end`).
pub(super) fn output(cmd: Cmd<'_>) -> Result<Output> {
    spawn_and_wait(cmd, true)
}

/// `output`, with git told to stop when the orchestrator dies only when
/// `stops_with_us`.
fn spawn_and_wait(cmd: Cmd<'_>, stops_with_us: bool) -> Result<Output> {
    let shown = cmd.to_string();
    let mut command = prepared(cmd, stops_with_us);
    run_once(&mut command, &shown, stops_with_us)
}

/// The git command `cmd`, set up to run as `output` says.
fn prepared(cmd: Cmd<'_>, stops_with_us: bool) -> Command {
    let mut command: Command = cmd.into();
    command.stdin(Stdio::null());
    crate::sys::signals::unblocked_in(&mut command);
    // Holds it to its end, and what it starts: the next orchestrator
    // waits for them (`state::lock`).
    let gits_lock = crate::state::lock::held_by_gits();
    // SAFETY: setsid, prctl and fcntl are async-signal-safe and take
    // integer arguments.
    unsafe {
        command.pre_exec(move || {
            libc::setsid();
            if stops_with_us {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            }
            if let Some(fd) = gits_lock {
                // This process's copy only: kept across the exec.
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            Ok(())
        })
    };
    // Until git exits, not until its pipes close: a hook may leave a
    // daemon holding them.
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// Runs the `prepared` git `command` (`shown`) to its end.
fn run_once(command: &mut Command, shown: &str, stops_with_us: bool) -> Result<Output> {
    // A write of the config is never cut short either (see `run_to_end`).
    let cut = CUT_BY
        .with(|cut| cut.borrow().clone())
        .filter(|_| stops_with_us);
    let child = match &cut {
        Some(cut) => cut.spawn(command, shown)?,
        None => command.spawn(),
    };
    let leader = child.as_ref().ok().and_then(|c| c.id().try_into().ok());
    let out = child
        .and_then(crate::sys::process::output_until_exit)
        .with_context(|| format!("cannot run `{shown}`"));
    if let (Some(cut), Some(leader)) = (cut, leader) {
        cut.ended(leader);
        // Cut short, git is gone; what it started (a hook), sent the same
        // SIGTERM, is dying: waited for, a moment at most, so that the run
        // that stops leaves nothing of its gits running.
        if cut.is_cut() {
            let leader = u32::try_from(leader).unwrap_or_default();
            crate::sys::process::wait_group_gone(leader, Duration::from_secs(1));
        }
    }
    out
}

/// What cuts short the gits of a thread that runs under it (`cut_by`):
/// the merge queue's, which a second Ctrl-C stops in the middle of a
/// merge, and a task start's (`STARTS`), which any stop cuts short (a
/// hook that hangs would hold the run for good). Git is sent
/// SIGTERM, as when the orchestrator dies (see `output`), and with it its
/// process group, git's session: what it started (a hook) dies with it.
/// Every step of a merge can be done again: what a cut leaves, the next
/// run finishes or undoes, as after a kill.
#[derive(Default)]
pub struct Cut {
    state: Mutex<CutState>,
}

#[derive(Default)]
struct CutState {
    cut: bool,
    /// A git was stopped, or refused, by the cut.
    cut_short: bool,
    /// The gits running now (the task starts' run on several threads),
    /// each the leader of its process group (`setsid`).
    running: Vec<libc::pid_t>,
}

thread_local! {
    static CUT_BY: RefCell<Option<Arc<Cut>>> = const { RefCell::new(None) };
}

/// The gits this thread runs from now on are cut short by `cut`.
pub fn cut_by(cut: Arc<Cut>) {
    CUT_BY.with(|current| *current.borrow_mut() = Some(cut));
}

/// The gits that make a task's worktree as it starts, which the run's
/// stop cuts short: nothing new starts then, and a hook that never ends
/// in `git worktree add` (post-checkout), on the run's own thread, would
/// keep it from even hearing the stop.
static STARTS: std::sync::LazyLock<Arc<Cut>> = std::sync::LazyLock::new(Arc::default);

/// Runs `start` (what makes a task's worktree), its gits cut short by a
/// stop (`stop_starts`).
pub fn cut_by_a_stop<T>(start: impl FnOnce() -> T) -> T {
    let before = CUT_BY.with(|current| current.replace(Some(STARTS.clone())));
    // Put back however `start` ends, a panic too.
    let _back = Restore(before);
    start()
}

/// Runs `f` with its gits cut by nothing, the stop's cut included: a
/// quick cleanup after the stop cut what it cleans up after.
pub fn beyond_a_stop<T>(f: impl FnOnce() -> T) -> T {
    let before = CUT_BY.with(|current| current.replace(None));
    let _back = Restore(before);
    f()
}

/// Puts a thread's earlier cut back when dropped.
struct Restore(Option<Arc<Cut>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let before = self.0.take();
        CUT_BY.with(|current| *current.borrow_mut() = before);
    }
}

/// Whether what cuts this thread's gits short has cut: a wait between
/// them (`Repo::settle_packed_refs_lock`) ends then, and the next git is
/// refused.
pub fn cut_here() -> bool {
    CUT_BY.with(|cut| cut.borrow().as_ref().is_some_and(|cut| cut.is_cut()))
}

/// The run stops (a signal, from the thread that hears it): the git of a
/// task's start is cut short, and no later one runs.
pub fn stop_starts() {
    STARTS.cut();
}

/// Whether the run stopped the starts (`stop_starts`).
pub fn starts_stopped() -> bool {
    STARTS.is_cut()
}

/// Whether that stop cut a start's git short: its failure is the stop's.
pub fn a_start_cut_short() -> bool {
    STARTS.cut_short()
}

impl Cut {
    /// Stops the gits running now, and every later one before it starts.
    pub fn cut(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.cut = true;
        state.cut_short |= !state.running.is_empty();
        for &leader in &state.running {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(-leader, libc::SIGTERM) };
        }
    }

    pub fn is_cut(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).cut
    }

    /// Whether the cut stopped or refused a git.
    pub fn cut_short(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cut_short
    }

    /// Starts `command` unless cut: under the lock, so that a git is
    /// either refused or known to `cut`.
    fn spawn(&self, command: &mut Command, shown: &str) -> Result<std::io::Result<Child>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.cut {
            state.cut_short = true;
            bail!("`{shown}` not run: the run was stopped");
        }
        let child = command.spawn();
        if let Ok(child) = &child {
            state.running.extend(libc::pid_t::try_from(child.id()).ok());
        }
        Ok(child)
    }

    /// The git led by `leader` has ended: no longer one to stop.
    fn ended(&self, leader: libc::pid_t) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.running.retain(|&running| running != leader);
    }
}

/// Runs a git command; its stdout, trimmed, or an error with the command
/// and its stderr.
pub(super) fn run(cmd: Cmd<'_>) -> Result<String> {
    run_untrimmed(cmd).map(|out| out.trim().to_owned())
}

/// `run`, its stdout as git printed it.
pub(super) fn run_untrimmed(cmd: Cmd<'_>) -> Result<String> {
    checked(cmd, true)
}

/// `run`, for a write of the repository's config: that git goes on when
/// the orchestrator dies. Stopped, it could leave `config.lock` (see
/// `output`; a SIGTERM at a random moment of `git config` leaves it about
/// one time in 50), which fails every later write of the config, and
/// which no recovery may remove: the user's gits take that lock too. Left
/// to finish, it holds the lock for milliseconds beside the next
/// orchestrator, whose writes wait for it (`write_config`).
pub(super) fn run_to_end(cmd: Cmd<'_>) -> Result<String> {
    checked(cmd, false).map(|out| out.trim().to_owned())
}

/// Runs a git command; its stdout as git printed it, or an error with
/// the command and its stderr.
fn checked(cmd: Cmd<'_>, stops_with_us: bool) -> Result<String> {
    let shown = cmd.to_string();
    let mut command = prepared(cmd, stops_with_us);
    let mut out = run_once(&mut command, &shown, stops_with_us)?;
    let mut wait = HalfWritten::new();
    while !out.status.success() && read_a_record_being_added(&out.stderr) && wait.pause() {
        out = run_once(&mut command, &shown, stops_with_us)?;
    }
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`{shown}` failed ({}): {}{}",
            out.status,
            said.trim(),
            signing_hint(&said)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The folders this process's `git worktree add`s are making now (the
/// maker's threads make several at once). Each writes git's record of
/// its worktree a file at a time: for an instant, a record without its
/// `commondir`, which another git that reads every record (`worktree
/// list`, a checkout that looks where a branch is checked out) dies on,
/// and which is no `add` cut short (`Repo::drop_unfinished_adds`).
static ADDING: Mutex<Vec<Utf8PathBuf>> = Mutex::new(Vec::new());

/// The pauses before a git that died on such a record is run again: 2 ms
/// doubling to 50 ms, for 2 s in all (the record is whole in
/// microseconds).
pub(super) struct HalfWritten {
    pause: Duration,
    deadline: Instant,
}

impl HalfWritten {
    pub(super) fn new() -> HalfWritten {
        HalfWritten {
            pause: Duration::from_millis(2),
            deadline: Instant::now() + Duration::from_secs(2),
        }
    }

    /// Waits before the next run; false, without waiting, once the time
    /// is up.
    pub(super) fn pause(&mut self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(Duration::from_millis(50));
        true
    }
}

/// `path` is being added while the guard lives.
pub(super) struct Adding(Utf8PathBuf);

pub(super) fn adding(path: &Utf8Path) -> Adding {
    crate::sys::lock(&ADDING).push(path.to_owned());
    Adding(path.to_owned())
}

impl Drop for Adding {
    fn drop(&mut self) {
        crate::sys::lock(&ADDING).retain(|adding| *adding != self.0);
    }
}

/// Whether `gitdir` (a worktree record's) is in a folder being added.
pub(super) fn being_added(gitdir: &Utf8Path) -> bool {
    crate::sys::lock(&ADDING)
        .iter()
        .any(|folder| gitdir.starts_with(folder))
}

/// Runs `f` unless a worktree is being added (`f` removes a folder one
/// may be made in), with none starting until it returns.
pub(super) fn unless_adding(f: impl FnOnce()) {
    let adding = crate::sys::lock(&ADDING);
    if adding.is_empty() {
        f();
    }
}

/// Whether git died reading a worktree's record (`failed to read
/// .git/worktrees/<name>/commondir`) while one of ours was being added:
/// half written, whole in a moment.
fn read_a_record_being_added(stderr: &[u8]) -> bool {
    // Git's own first words, not a hook's (whose output follows git's
    // "Preparing worktree"): a git that ran a hook is never run again.
    let said = String::from_utf8_lossy(stderr);
    let first = said.lines().next().unwrap_or_default();
    first.starts_with("fatal: failed to read")
        && read_a_record(first)
        && !crate::sys::lock(&ADDING).is_empty()
}

/// Whether git's words `said` tell it died reading a worktree's record:
/// `fatal: failed to read <git dir>/worktrees/<name>/<file>: <errno>`
/// (the path itself, not the rest of a message that may name a worktree's
/// folder).
pub(super) fn read_a_record(said: &str) -> bool {
    said.split("fatal: failed to read ").skip(1).any(|rest| {
        let path = rest.split([':', ';', '\n']).next().unwrap_or_default();
        path.contains("/worktrees/") || path.starts_with("worktrees/")
    })
}

/// What to do, when git failed to sign a commit (`commit.gpgsign`): it
/// runs here without a terminal, so a passphrase cannot be asked for.
pub(super) fn signing_hint(stderr: &str) -> &'static str {
    if stderr.contains("failed to sign") {
        "\n(git is set to sign commits, `commit.gpgsign`, and cannot ask for a passphrase here: give it to your agent first, gpg-agent or ssh-agent, or turn signing off for this repository: `git config commit.gpgsign false`)"
    } else {
        ""
    }
}
