//! A task tree in a temporary folder, and ways to run the binary on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_xtask");

pub struct Tree {
    pub root: PathBuf,
}

impl Tree {
    /// An empty tree with a `tasks/` folder. Tests leave the kill grace short.
    pub fn new() -> Tree {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        static SIGNALS: std::sync::Once = std::sync::Once::new();
        // The tests signal runs as a terminal would: a suite started under
        // `nohup`, or in a shell's background (SIGINT ignored), would pass
        // that on to every run, which then keeps the signal ignored (as
        // README says of `nohup`), and the tests waiting on it would hang.
        SIGNALS.call_once(|| {
            for signal in [libc::SIGHUP, libc::SIGINT] {
                // SAFETY: signal has no memory-safety preconditions.
                unsafe { libc::signal(signal, libc::SIG_DFL) };
            }
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("xtask-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("tasks")).unwrap();
        let tree = Tree { root };
        tree.config("kill_grace: 1s\n");
        tree
    }

    /// Writes the config. Test tasks need little memory: unless the test
    /// says otherwise, each reserves 256 MiB, so admission (by memory) does
    /// not hold back tests about other limits.
    pub fn config(&self, yaml: &str) {
        let memory = if yaml.contains("max_memory_gb") {
            ""
        } else {
            "max_memory_gb: 0.25\n"
        };
        self.write("tasks/orchestrator.yaml", &format!("{yaml}\n{memory}"));
    }

    /// Writes `tasks/<id>.md` with `frontmatter` between the `---` lines.
    pub fn task(&self, id: &str, frontmatter: &str) {
        self.write(
            &format!("tasks/{id}.md"),
            &format!("---\n{frontmatter}\n---\nDo the task.\n"),
        );
    }

    /// A frontmatter line whose command adds task `id` to the tree, as a
    /// task that generates one does: its file (`frontmatter` between the
    /// `---` lines) written aside, then moved in whole.
    pub fn generating(&self, id: &str, frontmatter: &str) -> String {
        let aside = format!("generated/{id}.md");
        self.write(&aside, &format!("---\n{frontmatter}\n---\nDo the task.\n"));
        let (folder, name) = id.rsplit_once('/').unwrap();
        let dir = format!("\"$TASKS_DIR/{folder}\"");
        sh(&format!(
            "mkdir -p {dir} && cp {aside} {dir}/.{name}.md && mv {dir}/.{name}.md {dir}/{name}.md"
        ))
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// `write`, made executable (a script, a git hook).
    pub fn write_executable(&self, rel: &str, text: &str) {
        self.write(rel, text);
        std::fs::set_permissions(
            self.root.join(rel),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }

    /// Writes git hook `name` for the orchestrator's own git commands,
    /// which otherwise run no hook: a hook stands in for a git that is
    /// slow, hangs or fails (Git LFS's filter). They run a `git` that
    /// names the hooks' folder on its command line (`-c`), which outranks
    /// the orchestrator's `core.hooksPath`; `command` puts it first on
    /// the PATH.
    pub fn hook_the_orchestrator_runs(&self, name: &str, script: &str) {
        self.write_executable(&format!(".git/hooks/{name}"), script);
        let path = std::env::var_os("PATH").unwrap();
        let git = std::env::split_paths(&path)
            .map(|dir| dir.join("git"))
            .find(|git| git.is_file())
            .unwrap();
        self.write_executable(
            ".git/test-bin/git",
            &format!(
                "#!/bin/sh\nexec {} -c core.hooksPath={} \"$@\"\n",
                git.display(),
                self.path(".git/hooks").display()
            ),
        );
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.root.join(rel).exists()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The binary run with `--root` on this tree, from its root (where a
    /// user stands to run `cargo xtask`).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        let bin = self.path(".git/test-bin");
        if bin.exists() {
            let path = std::env::var_os("PATH").unwrap();
            let dirs = std::iter::once(bin).chain(std::env::split_paths(&path));
            cmd.env("PATH", std::env::join_paths(dirs).unwrap());
        }
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.root)
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        cmd
    }

    /// The binary started in the background, its output discarded (it
    /// would show among the tests' own).
    pub fn start(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().unwrap();
        Run::from(output)
    }

    /// `run` with the binary's address space limited to `bytes`
    /// (`RLIMIT_AS`): an allocation past it fails, and the binary with it.
    /// Its peak resident size cannot tell: the kernel counts in it the
    /// memory of the test process that started it, before its exec.
    pub fn run_in_memory(&self, args: &[&str], bytes: u64) -> Run {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.command(args);
        // SAFETY: setrlimit is async-signal-safe, and touches no memory
        // of the parent's.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Run::from(cmd.output().unwrap())
    }

    /// The binary run by `nobody`, who may write no cgroup and whom file
    /// permissions bind (see `as_root`): the tree is made theirs first.
    pub fn run_as_nobody(&self, args: &[&str]) -> Run {
        let owned = Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&self.root)
            .status()
            .unwrap();
        assert!(owned.success());
        self.run_as_nobody_on_root_s_files(args)
    }

    /// The binary run by `nobody`, the files as they are.
    pub fn run_as_nobody_on_root_s_files(&self, args: &[&str]) -> Run {
        Command::new("runuser")
            .args(["-u", "nobody", "--", BIN, "--root"])
            .arg(&self.root)
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    }

    /// The status file of `id` as JSON (panics when there is none). Read
    /// again when it does not parse, as the orchestrator's reader does: a
    /// reader slow between its open and its read may see the file it opened
    /// rewritten in place, as the spare of the next write (`atomic::replace`).
    pub fn status(&self, id: &str) -> serde_json::Value {
        let path = format!("workspace/status/{id}.json");
        let mut tries = 0;
        loop {
            match serde_json::from_str(&self.read(&path)) {
                Ok(status) => return status,
                Err(_) if tries < 2 => tries += 1,
                Err(e) => panic!("{path} does not parse: {e}"),
            }
        }
    }

    pub fn state(&self, id: &str) -> String {
        let path = format!("workspace/status/{id}.json");
        if !self.exists(&path) {
            return "pending".into();
        }
        self.status(id)["status"].as_str().unwrap().to_owned()
    }

    /// Runs git in the tree's root; its stdout, trimmed (panics when git
    /// fails).
    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.root, args)
    }

    /// How many times the task wrote its launch marker (see `marker`).
    pub fn launches(&self, id: &str) -> usize {
        let rel = format!("markers/{}", id.replace('/', "_"));
        std::fs::read_to_string(self.root.join(rel)).map_or(0, |s| s.lines().count())
    }
}

/// Runs git in `dir`, as a test identity; its stdout, trimmed (panics when
/// git fails).
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@localhost")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@localhost")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether the command line `cmdline` (its arguments NUL-separated) names
/// the folder `root` or a path in it: not a longer name it begins
/// (`/tmp/xtask-it-7-12` for `/tmp/xtask-it-7-1`, another test's tree).
fn names_path(cmdline: &str, root: &str) -> bool {
    cmdline.match_indices(root).any(|(at, _)| {
        let next = cmdline[at + root.len()..].chars().next();
        matches!(next, None | Some('/' | ' ' | '\0'))
    })
}

/// Shell that appends a line to the task's launch marker.
pub const MARK: &str = r#"mkdir -p markers && echo $$ >> "markers/$(echo $TASK_ID | tr / _)""#;

impl Drop for Tree {
    /// Kills whatever still runs for this tree (after a failed test: an
    /// orchestrator, its supervisor, tasks), then removes it.
    fn drop(&mut self) {
        let root = self.root.to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
            if names_path(&String::from_utf8_lossy(&cmdline), &root) || cwd.starts_with(&self.root)
            {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: output
                .status
                .code()
                .unwrap_or_else(|| 128 + output.status.signal().unwrap_or(0)),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Everything it printed, stdout then stderr.
    pub fn said(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code, expected,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn says(&self, text: &str) -> &Run {
        assert!(
            self.stdout.contains(text) || self.stderr.contains(text),
            "expected {text:?} in the output\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn never_says(&self, text: &str) -> &Run {
        assert!(
            !self.stdout.contains(text) && !self.stderr.contains(text),
            "{text:?} in the output\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Whether the tests run as root, who alone may run the binary as another
/// user (`Tree::run_as_nobody`). CI must.
pub fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    required_in_ci(root, "only root may run the binary as another user")
}

/// Whether what a test needs is `there`; where it is not, the test is
/// skipped, saying `why`, but never in CI (which runs as root).
pub fn required_in_ci(there: bool, why: &str) -> bool {
    if !there {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the tests as root: {why}"
        );
        eprintln!("skipped: {why}");
    }
    there
}

/// Waits for `condition`, up to a generous bound; panics with `what` then.
#[track_caller]
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` to `pid`, which is there.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
}

/// Sends `signal` to `pid` again and again, a third of a second apart,
/// until `heard`: a run takes a signal that comes within a quarter of a
/// second of the last one for the same request to stop, not a second one.
pub fn signal_until(pid: u32, signal: i32, what: &str, mut heard: impl FnMut() -> bool) {
    let mut sent: Option<Instant> = None;
    wait_for(what, || {
        if sent.is_none_or(|at| at.elapsed() > Duration::from_millis(330)) {
            // SAFETY: kill has no memory-safety preconditions; the process
            // may have exited already.
            unsafe { libc::kill(pid as i32, signal) };
            sent = Some(Instant::now());
        }
        heard()
    });
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 2..].chars().next();
            !matches!(state, Some('Z') | Some('X'))
        }
        Err(_) => false,
    }
}

/// Whether the pid file at `rel` is written whole (a task writes it with
/// `echo $$ >`, which makes the file before it writes the line).
pub fn pid_written(t: &Tree, rel: &str) -> bool {
    std::fs::read_to_string(t.path(rel)).is_ok_and(|pid| pid.ends_with('\n'))
}

pub fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// What `progress --json` says now.
pub fn progress_json(t: &Tree) -> serde_json::Value {
    serde_json::from_str(&t.run(&["progress", "--json"]).stdout).unwrap()
}

/// Task `id`'s line in `progress --json`.
pub fn progress_task(t: &Tree, id: &str) -> serde_json::Value {
    let json = progress_json(t);
    let tasks = json["tasks"].as_array().unwrap().iter();
    tasks
        .clone()
        .find(|task| task["task_id"] == id)
        .unwrap()
        .clone()
}

/// A frontmatter line that runs `script` with `sh -c`.
pub fn sh(script: &str) -> String {
    format!("command: {}", serde_json::to_string(script).unwrap())
}

/// Shell that records when the task starts and ends, around `sleep 0.3`.
pub const TIMED: &str =
    "date +%s%N > $TASK_OUTPUT_DIR/times; sleep 0.3; date +%s%N >> $TASK_OUTPUT_DIR/times";

/// When a task that ran `TIMED` (or wrote `times` the same way) started and ended.
pub fn span(t: &Tree, id: &str) -> (u128, u128) {
    let text = t.read(&format!("workspace/outputs/{id}/times"));
    let n: Vec<u128> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (n[0], n[1])
}

/// The most of these tasks that ran at one moment.
pub fn max_overlap(t: &Tree, ids: &[String]) -> usize {
    let mut events: Vec<(u128, i32)> = ids
        .iter()
        .flat_map(|id| {
            let (start, end) = span(t, id);
            [(start, 1), (end, -1)]
        })
        .collect();
    events.sort();
    let (mut now, mut max) = (0, 0);
    for (_, delta) in events {
        now += delta;
        max = max.max(now);
    }
    max as usize
}

/// A small seeded random number generator, for the fault-injection tests
/// (a failing seed can be replayed with FAULT_SEED).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// `workspace/events.jsonl`, each line parsed (a line that does not parse
/// fails the test).
pub fn events(t: &Tree) -> Vec<serde_json::Value> {
    t.read("workspace/events.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// `from -> to` of each change of `task`'s state, in order.
pub fn changes(t: &Tree, task: &str) -> Vec<String> {
    events(t)
        .iter()
        .filter(|e| e["task"] == task && e["event"].is_null())
        .map(|e| {
            format!(
                "{} -> {}",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            )
        })
        .collect()
}

/// Runs the binary under a pseudo-terminal (util-linux `script`), as a
/// person at a terminal would, and returns everything it drew.
pub fn on_a_terminal(t: &Tree, args: &str, no_color: bool) -> String {
    let mut cmd = terminal_command(t, args, "xterm-256color");
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
}

/// The binary under a pseudo-terminal (util-linux `script`) of type
/// `term` (a terminal emulator sets `TERM`; the tests' own may have none).
pub fn terminal_command(t: &Tree, args: &str, term: &str) -> Command {
    let command = format!("{BIN} --root {} {args}", t.root.display());
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &command, "/dev/null"])
        .env("COLUMNS", "160")
        .env("LINES", "40")
        .env("TERM", term);
    cmd
}

/// A file system whose times are whole seconds (ext4 with 128-byte
/// inodes, as older ones were made; FAT keeps two) mounted at a folder of
/// the tree, unmounted on drop. `None` where it cannot be made (no
/// `mke2fs`, no loop device, not root), which fails the test in CI.
pub struct CoarseClockDisk {
    at: std::path::PathBuf,
    image: std::path::PathBuf,
}

impl CoarseClockDisk {
    pub fn mount(at: &std::path::Path) -> Option<CoarseClockDisk> {
        std::fs::create_dir_all(at).unwrap();
        let image = at.with_extension("img");
        let run = |program: &str, args: &[&std::ffi::OsStr]| {
            std::process::Command::new(program)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let mke2fs = ["-q", "-t", "ext4", "-I", "128", "-F"].map(std::ffi::OsStr::new);
        let made = std::fs::File::create(&image)
            .and_then(|file| file.set_len(8 << 20))
            .is_ok()
            && run("mke2fs", &[&mke2fs[..], &[image.as_os_str()]].concat())
            && run(
                "mount",
                &[
                    "-o".as_ref(),
                    "loop".as_ref(),
                    image.as_os_str(),
                    at.as_os_str(),
                ],
            );
        if !made {
            let _ = std::fs::remove_file(&image);
            required_in_ci(
                false,
                "cannot mount an ext4 image with whole-second times here (mke2fs, a loop device, root)",
            );
            return None;
        }
        let _ = std::fs::remove_dir(at.join("lost+found"));
        Some(CoarseClockDisk {
            at: at.to_owned(),
            image,
        })
    }
}

impl Drop for CoarseClockDisk {
    fn drop(&mut self) {
        // Lazily: a process of the test still in it must not leave the
        // image mounted for good.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.at)
            .status();
        let _ = std::fs::remove_file(&self.image);
    }
}
