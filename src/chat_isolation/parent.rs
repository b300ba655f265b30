//! Check and execute, beside the layers: the parent side of isolated rendering — one
//! batch of conversations sent to a renderer child (this binary, re-executed as `r1flow
//! render-chat-template`), its replies read back under a wall clock, and its death by a
//! limit turned into the failure of the conversation it was rendering.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::limits::{explain, Limits};
use super::protocol::{read_frame, write_frame, Header, Reply};
use crate::tasks::{RenderBatch, RenderFailure, TaskError};

/// The hidden subcommand the child runs.
pub const CHILD_COMMAND: &str = "render-chat-template";

/// The last bytes of a child's stderr kept for its error.
const STDERR_TAIL_BYTES: usize = 4000;

/// Renders `batch` in one child process under `limits`.
pub(super) fn render_in_child(
    batch: &RenderBatch<'_>,
    limits: &Limits,
) -> Result<Vec<String>, RenderFailure> {
    let count = batch.conversations.len();
    let failure = |index: usize, error: TaskError| RenderFailure { index, error };
    let mut child = spawn(limits).map_err(|e| {
        failure(
            0,
            TaskError::ChatTemplate {
                message: format!("cannot start the process that renders chat templates: {e}"),
            },
        )
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        stop(&mut child);
        return Err(failure(
            0,
            TaskError::ChatTemplate {
                message: "the chat template renderer has no pipes".into(),
            },
        ));
    };
    let pid = child.id();
    let timed_out = AtomicBool::new(false);
    let (disarm, armed) = mpsc::channel::<()>();
    let (replies, stderr_tail) = std::thread::scope(|scope| {
        scope.spawn(|| write_batch(stdin, batch));
        let tail = scope.spawn(|| tail_of(stderr));
        let timed_out = &timed_out;
        scope.spawn(move || {
            // Killed by pid: the child is not reaped until the replies are read, so the
            // pid is still its own.
            if let Err(mpsc::RecvTimeoutError::Timeout) = armed.recv_timeout(limits.wall) {
                timed_out.store(true, Ordering::Relaxed);
                kill(pid);
            }
        });
        let replies = read_replies(stdout, count);
        if replies.1.is_none() && replies.0.len() < count {
            // Its stdout ended or broke: a child still running after that is of no use.
            kill(pid);
        }
        let _ = disarm.send(());
        (replies, tail.join().unwrap_or_default())
    });
    let status = wait_briefly(&mut child);
    let (rendered, failed) = replies;
    if let Some(message) = failed {
        return Err(failure(rendered.len(), TaskError::ChatTemplate { message }));
    }
    if rendered.len() == count {
        return Ok(rendered);
    }
    let message = explain(
        limits,
        count,
        status,
        timed_out.load(Ordering::Relaxed),
        &stderr_tail,
    );
    Err(failure(
        rendered.len(),
        TaskError::ChatTemplateLimit { message },
    ))
}

/// This binary, started as the renderer child. `/proc/self/exe` where there is one: it
/// is this very program even if its file was replaced since it started.
fn spawn(limits: &Limits) -> std::io::Result<Child> {
    let proc_exe = PathBuf::from("/proc/self/exe");
    let program = if proc_exe.exists() {
        proc_exe
    } else {
        std::env::current_exe()?
    };
    Command::new(program)
        .arg(CHILD_COMMAND)
        .arg("--memory-bytes")
        .arg(limits.memory_bytes.to_string())
        .arg("--cpu-seconds")
        .arg(limits.cpu_seconds.to_string())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// Writes the header and every conversation; stops quietly when the child has gone (it
/// stops reading after a failure, or died).
fn write_batch(stdin: impl Write, batch: &RenderBatch<'_>) {
    let mut out = BufWriter::new(stdin);
    let header = Header {
        source: batch.template.source.clone(),
        special_tokens: batch.template.special_tokens.clone(),
        add_generation_prompt: batch.add_generation_prompt,
        conversations: batch.conversations.len(),
    };
    if write_frame(&mut out, &header).is_err() {
        return;
    }
    for conversation in batch.conversations {
        if write_frame(&mut out, conversation).is_err() {
            return;
        }
    }
    let _ = out.flush();
}

/// The texts rendered, in order, and the failure message that ended them, if one did;
/// stops at the end of the stream or a broken frame.
fn read_replies(stdout: impl Read, count: usize) -> (Vec<String>, Option<String>) {
    let mut input = BufReader::new(stdout);
    let mut rendered = Vec::with_capacity(count);
    while rendered.len() < count {
        match read_frame::<Reply>(&mut input) {
            Ok(Some(Reply::Rendered(text))) => rendered.push(text),
            Ok(Some(Reply::Failed(message))) => return (rendered, Some(message)),
            Ok(None) | Err(_) => break,
        }
    }
    (rendered, None)
}

/// The last [`STDERR_TAIL_BYTES`] of a stream, read to its end.
fn tail_of(mut stderr: impl Read) -> String {
    let mut tail: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stderr.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buffer[..n]);
                if tail.len() > STDERR_TAIL_BYTES {
                    tail.drain(..tail.len() - STDERR_TAIL_BYTES);
                }
            }
        }
    }
    String::from_utf8_lossy(&tail).into_owned()
}

/// The child's exit status once its stdout is done: it exits at once after its last
/// reply or when it died; one that lingers is killed.
fn wait_briefly(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) | Err(_) => {
                stop(child);
                return None;
            }
        }
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(unix)]
fn kill(pid: u32) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill(_: u32) {}
