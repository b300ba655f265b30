//! Execute (rewards): the sandbox the `code` reward runs model-written programs in.
//!
//! Isolation is bubblewrap's (`bwrap`), not ours: a private mount namespace with `/usr`
//! (and the interpreter's own prefix) bound read-only, a fresh size-limited tmpfs as `/tmp`
//! — the only writable place and the working directory — fresh `/proc` and `/dev`, no
//! network (an empty network namespace: even 127.0.0.1 is its own), a private PID
//! namespace (when its first process ends, the kernel kills every other), its own session
//! (`--new-session`), no capabilities, an empty environment, and `--die-with-parent`.
//! Resource limits are set by `prlimit` (util-linux) inside the sandbox, before the
//! interpreter starts — CPU time, address space, processes, file size, open files, no
//! core dumps — since this crate has no `unsafe` to call `setrlimit` between fork and
//! exec. Wall time is the parent's: past it, the sandbox's process group is killed, and
//! with its PID namespace everything it started.
//!
//! `RLIMIT_NPROC` does not bind root (the kernel exempts uid 0 of the first user
//! namespace), so when r1flow runs as root the sandbox starts without a user namespace,
//! keeps only the capabilities to change user, and `setpriv` (util-linux) makes the
//! program an unprivileged user — a uid of its own for each run (`run_uid`), so that one
//! program's fork bomb cannot use up another's processes, even another stage's or
//! another test's running at the same time — with no capabilities,
//! an empty bounding set and `no_new_privs`, before `prlimit` runs. As any other user,
//! `bwrap` makes its own user namespace, in which process counts start from zero.
//!
//! `none` runs the interpreter directly with the same limits, in a fresh directory that is
//! removed afterwards, in its own process group: no isolation at all, and a child that
//! leaves the process group (`setsid`) survives the kill.
//!
//! The program's output is read bounded (the `command` verifier's readers): at most
//! `HARNESS_OUTPUT_BYTES` on stdout, `MAX_PROGRAM_OUTPUT_BYTES` on stderr, past which the
//! sandbox is killed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::command::{read_lines, read_tail_within, GroupGuard};
use super::error::RewardErrorKind;

/// The largest file a program may write (`RLIMIT_FSIZE`): 16 MiB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// The size of the sandbox's tmpfs: 64 MiB.
pub const TMPFS_BYTES: u64 = 64 << 20;
/// Open files per process.
const MAX_OPEN_FILES: u64 = 256;
/// The most the program may write on stderr (where its prints go): 1 MiB.
pub const MAX_PROGRAM_OUTPUT_BYTES: u64 = 1 << 20;
/// The most the harness writes on stdout (its start line and its result): 64 KiB.
const HARNESS_OUTPUT_BYTES: u64 = 64 << 10;
/// How much of stderr is kept for a reason.
const STDERR_TAIL_BYTES: usize = 2000;
/// The first uid programs run as when r1flow runs as root (far from any real account and
/// from the usual subordinate-uid ranges); they take uids from `RUN_UIDS` above it.
pub const SLOT_UID_BASE: u32 = 2_100_000_000;
/// How many uids programs run as (as root): each run takes the next, so no two programs
/// running at once share one — and so a process count — in this process, whatever stage
/// or thread runs them; other r1flow processes start elsewhere in the range (by pid).
const RUN_UIDS: u64 = 1 << 24;

/// The uid of the next program run as root (see `RUN_UIDS`).
fn run_uid() -> u32 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let offset = (u64::from(std::process::id()) * 4096 + run) % RUN_UIDS;
    // RUN_UIDS keeps the sum within u32.
    SLOT_UID_BASE + u32::try_from(offset).unwrap_or(0)
}
/// How long pipes may stay open after the sandbox exited before the group is killed.
const LEFTOVER_GRACE: Duration = Duration::from_millis(200);

/// The resource limits of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Wall-clock time, enforced by the parent.
    pub wall: Duration,
    /// CPU seconds per process.
    pub cpu_s: u64,
    /// Address space per process, bytes.
    pub memory_bytes: u64,
    /// Processes and threads at once.
    pub processes: u64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The sandbox exited by itself: `success`, and a description of its status (a signal
    /// named with the limit it usually means).
    Exited { success: bool, status: String },
    /// Killed at the wall-clock limit.
    TimedOut,
    /// Killed for writing more than its output limit.
    OutputTooLarge { limit: u64 },
    /// It exited, but something it started kept its output open and was killed
    /// (only without isolation: a sandbox's PID namespace ends with it).
    LeftProcesses,
}

/// What a run wrote and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Stdout, as lines (at most `HARNESS_OUTPUT_BYTES`; empty when it went past).
    pub stdout: Vec<String>,
    /// The end of stderr.
    pub stderr_tail: String,
    pub ending: Ending,
}

/// The interpreter a sandbox runs, and the directories outside `/usr` it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interpreter {
    executable: PathBuf,
    roots: Vec<PathBuf>,
}

/// Where and how programs run: resolved once, run many times.
#[derive(Debug, Clone, PartialEq)]
pub struct Sandbox {
    /// `bwrap`, or `None` for no isolation.
    bwrap: Option<Bwrap>,
    prlimit: PathBuf,
    interpreter: Interpreter,
    limits: Limits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Bwrap {
    program: PathBuf,
    /// `setpriv`, when r1flow runs as root.
    setpriv: Option<PathBuf>,
    /// This bwrap knows `--size` (0.7 on) and `--disable-userns` (0.8 on).
    has_size: bool,
    has_disable_userns: bool,
}

impl Sandbox {
    /// A sandbox (`isolated`) or a bare runner for the interpreter `python` (a name on
    /// PATH or a path), with `limits`; an error says what is missing.
    pub fn new(isolated: bool, python: &str, limits: Limits) -> Result<Self, String> {
        let bwrap = if isolated {
            let program = on_path("bwrap").ok_or("`bwrap` (bubblewrap) is not on PATH")?;
            let setpriv = if running_as_root() {
                Some(on_path("setpriv").ok_or(
                    "`setpriv` (util-linux) is not on PATH; as root, it makes the program \
                     an unprivileged user",
                )?)
            } else {
                None
            };
            let help = Command::new(&program)
                .arg("--help")
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run `{}`: {e}", program.display()))?;
            let help = String::from_utf8_lossy(&help.stdout);
            Some(Bwrap {
                has_size: help.contains("--size"),
                has_disable_userns: help.contains("--disable-userns"),
                program,
                setpriv,
            })
        } else {
            None
        };
        let prlimit = on_path("prlimit").ok_or(
            "`prlimit` (util-linux) is not on PATH; it sets the programs' resource limits",
        )?;
        let interpreter = find_interpreter(python)?;
        for tool in [
            Some(&prlimit),
            bwrap.as_ref().and_then(|b| b.setpriv.as_ref()),
        ]
        .into_iter()
        .flatten()
        {
            if bwrap.is_some() && !tool.starts_with("/usr") && !tool.starts_with("/bin") {
                return Err(format!(
                    "`{}` is outside /usr, which is all the sandbox sees of the system",
                    tool.display()
                ));
            }
        }
        Ok(Self {
            bwrap,
            prlimit,
            interpreter,
            limits,
        })
    }

    /// Whether programs run isolated.
    pub fn is_isolated(&self) -> bool {
        self.bwrap.is_some()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs the interpreter with `args`, `input` on its stdin; an error when it cannot be
    /// started at all. Runs may go on in parallel (each as its own uid, as root).
    pub fn run(&self, args: &[&str], input: Vec<u8>) -> Result<Finished, String> {
        let scratch = match &self.bwrap {
            Some(_) => None,
            None => Some(Scratch::new()?),
        };
        let mut command = match (&self.bwrap, &scratch) {
            (Some(bwrap), _) => self.bwrap_command(bwrap, args),
            (None, Some(scratch)) => self.bare_command(&scratch.0, args),
            (None, None) => return Err("no directory to run in".into()),
        };
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group: the kill at the end reaches bwrap (and, without
        // isolation, whatever stayed in the group).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start the sandbox: {e}"))?;
        let group = GroupGuard::new(child.id());
        let deadline = Instant::now() + self.limits.wall;
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(mut stdin), Some(stdout), Some(mut stderr)) = (stdin, stdout, stderr) else {
            return Err("the sandbox's pipes were not opened".into());
        };

        enum Event {
            Stdout(Result<Vec<String>, RewardErrorKind>),
            Stderr(String, bool),
            Exit(std::io::Result<ExitStatus>),
        }
        let (tx, rx) = mpsc::channel();
        // Never joined: a program that does not read its input must not block us.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = tx.clone();
        thread::spawn(move || {
            let lines = read_lines(stdout, HARNESS_OUTPUT_BYTES, &AtomicUsize::new(0));
            let _ = out.send(Event::Stdout(lines));
        });
        let err = tx.clone();
        thread::spawn(move || {
            let (tail, over) =
                read_tail_within(&mut stderr, STDERR_TAIL_BYTES, MAX_PROGRAM_OUTPUT_BYTES);
            let _ = err.send(Event::Stderr(tail, over));
        });
        thread::spawn(move || {
            let _ = tx.send(Event::Exit(child.wait()));
        });

        let mut stdout: Option<Vec<String>> = None;
        let mut stderr_tail: Option<String> = None;
        let mut status: Option<ExitStatus> = None;
        let mut exited_at: Option<Instant> = None;
        let mut killed_leftovers = false;
        let ending = loop {
            if let (Some(status), Some(_), Some(_)) = (&status, &stdout, &stderr_tail) {
                break match killed_leftovers && self.bwrap.is_none() {
                    true => Ending::LeftProcesses,
                    false => Ending::Exited {
                        success: status.success(),
                        status: self.describe(status),
                    },
                };
            }
            let now = Instant::now();
            if now >= deadline {
                break Ending::TimedOut;
            }
            let mut wait = deadline - now;
            if let Some(at) = exited_at {
                // It exited, but something it started still holds its output: what it
                // wrote is all there is. Kill its group; if even that leaves the pipes
                // open (a process that left the group), stop waiting for them.
                let since = now.duration_since(at);
                if since >= LEFTOVER_GRACE && !killed_leftovers {
                    group.kill();
                    killed_leftovers = true;
                }
                if since >= 5 * LEFTOVER_GRACE {
                    break Ending::LeftProcesses;
                }
                wait = wait.min(LEFTOVER_GRACE / 4);
            }
            match rx.recv_timeout(wait) {
                Ok(Event::Stdout(Ok(lines))) => stdout = Some(lines),
                Ok(Event::Stdout(Err(RewardErrorKind::OutputTooLarge { limit }))) => {
                    break Ending::OutputTooLarge { limit };
                }
                Ok(Event::Stdout(Err(e))) => return Err(format!("reading its output: {e:?}")),
                Ok(Event::Stderr(_, true)) => {
                    break Ending::OutputTooLarge {
                        limit: MAX_PROGRAM_OUTPUT_BYTES,
                    }
                }
                Ok(Event::Stderr(tail, false)) => stderr_tail = Some(tail),
                Ok(Event::Exit(Ok(exit))) => {
                    status = Some(exit);
                    exited_at = Some(Instant::now());
                }
                Ok(Event::Exit(Err(e))) => return Err(format!("waiting for the sandbox: {e}")),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the sandbox's readers stopped".into())
                }
            }
        };
        // Everything in the group goes now; wait (briefly) until bwrap is reaped, so that
        // the sandbox's PID namespace is gone when this returns.
        group.kill();
        if status.is_none() {
            let until = Instant::now() + Duration::from_secs(5);
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(Event::Exit(_)) | Err(_) => break,
                    Ok(Event::Stderr(tail, _)) => stderr_tail = Some(tail),
                    Ok(_) => {}
                }
            }
        }
        drop(scratch);
        Ok(Finished {
            stdout: stdout.unwrap_or_default(),
            stderr_tail: stderr_tail.unwrap_or_default(),
            ending,
        })
    }

    /// `bwrap … -- [setpriv …] prlimit … python ARGS`.
    fn bwrap_command(&self, bwrap: &Bwrap, args: &[&str]) -> Command {
        let mut command = Command::new(&bwrap.program);
        command.env_clear();
        let mut arg = |items: &[&str]| {
            command.args(items);
        };
        match &bwrap.setpriv {
            // As root: no user namespace (uid 0 would be exempt from the process limit);
            // only the capabilities `setpriv` needs, which it drops.
            Some(_) => {
                arg(&[
                    "--unshare-ipc",
                    "--unshare-pid",
                    "--unshare-net",
                    "--unshare-uts",
                    "--unshare-cgroup-try",
                    "--cap-drop",
                    "ALL",
                    "--cap-add",
                    "CAP_SETUID",
                    "--cap-add",
                    "CAP_SETGID",
                    "--cap-add",
                    "CAP_SETPCAP",
                ]);
            }
            None => {
                arg(&["--unshare-all", "--cap-drop", "ALL"]);
                // No user namespaces of its own inside (bwrap 0.8 on).
                if bwrap.has_disable_userns {
                    arg(&["--unshare-user", "--disable-userns"]);
                }
            }
        }
        arg(&[
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
        ]);
        for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            let path = Path::new(dir);
            if let Ok(target) = std::fs::read_link(path) {
                let target = target.to_string_lossy().into_owned();
                arg(&["--symlink", &target, dir]);
            } else if path.is_dir() {
                arg(&["--ro-bind", dir, dir]);
            }
        }
        arg(&[
            "--ro-bind-try",
            "/etc/ld.so.cache",
            "/etc/ld.so.cache",
            "--ro-bind-try",
            "/etc/alternatives",
            "/etc/alternatives",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ]);
        let size = TMPFS_BYTES.to_string();
        if bwrap.has_size {
            arg(&["--size", &size]);
        }
        arg(&["--perms", "1777", "--tmpfs", "/tmp", "--chdir", "/tmp"]);
        // The interpreter's prefix outside /usr (a pyenv or conda install, a venv), bound
        // where it is, through directories anyone may enter.
        let mut made: Vec<PathBuf> = Vec::new();
        for root in &self.interpreter.roots {
            let mut ancestors: Vec<&Path> = root.ancestors().skip(1).collect();
            ancestors.reverse();
            for dir in ancestors {
                if dir == Path::new("/") || made.iter().any(|m| m == dir) {
                    continue;
                }
                let dir_text = dir.to_string_lossy().into_owned();
                arg(&["--perms", "0755", "--dir", &dir_text]);
                made.push(dir.to_path_buf());
            }
            let root_text = root.to_string_lossy().into_owned();
            arg(&["--ro-bind", &root_text, &root_text]);
            made.push(root.clone());
        }
        for (key, value) in sandbox_env("/tmp") {
            arg(&["--setenv", key, &value]);
        }
        arg(&["--"]);
        if let Some(setpriv) = &bwrap.setpriv {
            let uid = run_uid();
            command.arg(setpriv).args([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".to_string(),
                "--inh-caps=-all".to_string(),
                "--bounding-set=-all".to_string(),
                "--no-new-privs".to_string(),
                "--".to_string(),
            ]);
        }
        self.limited(&mut command, args);
        command
    }

    /// `prlimit … python ARGS` in `dir`, environment cleared.
    fn bare_command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.prlimit);
        command.env_clear().current_dir(dir);
        let dir_text = dir.to_string_lossy().into_owned();
        command.envs(sandbox_env(&dir_text));
        command.args(self.limit_args());
        command
            .arg("--")
            .arg(&self.interpreter.executable)
            .args(args);
        command
    }

    /// Appends `prlimit LIMITS -- python ARGS`.
    fn limited(&self, command: &mut Command, args: &[&str]) {
        command.arg(&self.prlimit).args(self.limit_args());
        command
            .arg("--")
            .arg(&self.interpreter.executable)
            .args(args);
    }

    fn limit_args(&self) -> Vec<String> {
        let limits = &self.limits;
        vec![
            format!("--cpu={}", limits.cpu_s),
            format!("--as={}", limits.memory_bytes),
            format!("--nproc={}", limits.processes),
            format!("--fsize={MAX_FILE_BYTES}"),
            format!("--nofile={MAX_OPEN_FILES}"),
            "--core=0".to_string(),
        ]
    }

    /// An exit status in words: the signals the limits send are named after them
    /// (bwrap reports a child killed by signal N as exit status 128 + N).
    fn describe(&self, status: &ExitStatus) -> String {
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(status);
        #[cfg(not(unix))]
        let signal: Option<i32> = None;
        let signal = signal.or_else(|| match (self.bwrap.is_some(), status.code()) {
            (true, Some(code)) if code > 128 && code < 128 + 65 => Some(code - 128),
            _ => None,
        });
        match signal {
            Some(9) => "killed (SIGKILL: past a hard limit, such as CPU time)".to_string(),
            Some(24) => "killed by SIGXCPU (its CPU-time limit)".to_string(),
            Some(25) => "killed by SIGXFSZ (its file-size limit)".to_string(),
            Some(6) => "aborted (SIGABRT; out of memory in a library?)".to_string(),
            Some(11) => "crashed (SIGSEGV)".to_string(),
            Some(n) => format!("killed by signal {n}"),
            None => match status.code() {
                Some(code) => format!("exit status {code}"),
                None => status.to_string(),
            },
        }
    }
}

/// The environment a program sees: nothing of r1flow's.
fn sandbox_env(home: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        ("HOME", home.to_string()),
        ("TMPDIR", home.to_string()),
        ("LANG", "C.UTF-8".to_string()),
        ("PYTHONDONTWRITEBYTECODE", "1".to_string()),
        // Numerical libraries start a thread per CPU, each one counted as a process.
        ("OPENBLAS_NUM_THREADS", "1".to_string()),
        ("OMP_NUM_THREADS", "1".to_string()),
        ("MKL_NUM_THREADS", "1".to_string()),
    ]
}

/// A fresh private directory (for runs without isolation), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("r1flow-code-{}", unique_token()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 32 hex digits no two calls share (not a secret from the program: see `code`).
pub(crate) fn unique_token() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "{now}/{count}/{}/{:?}",
        std::process::id(),
        thread::current().id()
    );
    blake3::hash(seed.as_bytes()).to_hex()[..32].to_string()
}

/// `name` on PATH (or `name` itself when it is a path).
fn on_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether this process runs as uid 0 (read from `/proc`: no `unsafe` here for
/// `geteuid`).
fn running_as_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Asks `python` where it lives: the executable (a shim such as pyenv's resolves to the
/// real one) and its prefixes, which the sandbox binds when they are outside `/usr`.
fn find_interpreter(python: &str) -> Result<Interpreter, String> {
    let program = on_path(python).ok_or(format!("`{python}` is not on PATH"))?;
    let output = Command::new(&program)
        .args([
            "-I",
            "-c",
            "import sys; print(sys.executable); print(sys.prefix); print(sys.base_prefix)",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", program.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let [executable, prefix, base_prefix] = lines.as_slice() else {
        return Err(format!(
            "`{}` did not say where it is installed",
            program.display()
        ));
    };
    let executable = PathBuf::from(executable);
    if !output.status.success() || !executable.is_absolute() {
        return Err(format!("`{}` does not run", program.display()));
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    for prefix in [prefix, base_prefix] {
        let prefix = PathBuf::from(prefix);
        let outside_usr = !prefix.starts_with("/usr");
        if prefix.is_absolute()
            && prefix != Path::new("/")
            && outside_usr
            && !roots.contains(&prefix)
        {
            roots.push(prefix);
        }
    }
    Ok(Interpreter { executable, roots })
}

/// Whether the sandbox works here: bwrap, prlimit (and setpriv as root) found, and a
/// trivial program run inside it. Tried once per process.
pub fn probe() -> Result<(), String> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT.get_or_init(probe_now).clone()
}

fn probe_now() -> Result<(), String> {
    let limits = Limits {
        wall: Duration::from_secs(30),
        cpu_s: 10,
        memory_bytes: 512 << 20,
        processes: 8,
    };
    let sandbox = Sandbox::new(true, "python3", limits)?;
    let finished = sandbox.run(&["-I", "-c", "print('r1flow-sandbox-ok')"], Vec::new())?;
    if finished.stdout.iter().any(|l| l == "r1flow-sandbox-ok") {
        return Ok(());
    }
    let detail = finished.stderr_tail.trim();
    Err(match detail.is_empty() {
        true => "a test program did not run in it".to_string(),
        false => format!("a test program did not run in it: {detail}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(wall_s: u64) -> Limits {
        Limits {
            wall: Duration::from_secs(wall_s),
            cpu_s: wall_s,
            memory_bytes: 512 << 20,
            processes: 8,
        }
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(unique_token(), unique_token());
        assert_eq!(unique_token().len(), 32);
    }

    #[test]
    fn runs_python_and_reports_its_output() {
        if probe().is_err() {
            eprintln!(
                "SKIPPED: the sandbox does not work here: {probe:?}",
                probe = probe()
            );
            return;
        }
        let sandbox = Sandbox::new(true, "python3", limits(20)).expect("sandbox");
        let finished = sandbox
            .run(
                &["-I", "-c", "import sys; print(sys.stdin.read().upper())"],
                b"hello".to_vec(),
            )
            .expect("runs");
        assert_eq!(finished.stdout, vec!["HELLO".to_string()]);
        assert!(
            matches!(finished.ending, Ending::Exited { success: true, .. }),
            "{finished:?}"
        );
    }

    #[test]
    fn the_wall_clock_limit_kills() {
        if probe().is_err() {
            eprintln!("SKIPPED: the sandbox does not work here");
            return;
        }
        let mut short = limits(60);
        short.wall = Duration::from_millis(1500);
        let sandbox = Sandbox::new(true, "python3", short).expect("sandbox");
        let started = Instant::now();
        let finished = sandbox
            .run(
                &["-I", "-c", "import time\nwhile True: time.sleep(1)"],
                Vec::new(),
            )
            .expect("runs");
        assert_eq!(finished.ending, Ending::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
