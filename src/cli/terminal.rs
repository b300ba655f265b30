//! CLI (report): the terminal edge — every line the CLI writes goes through here, so that
//! a closed stdout or stderr (`r1flow run … 2>&1 | head -c 1`, a dropped ssh session, a
//! killed `tee`) never panics a thread. Rust's `eprintln!` panics on a failed write; a
//! panicking main thread left `run` waiting forever on its live-view thread, holding the
//! store's lock, and the signal handler panicked on its own message, so SIGTERM did
//! nothing. Here the first failed write marks the output closed and calls the hook the
//! command set (`run` stops as on Ctrl-C: at the next step, with a checkpoint, releasing
//! the store); later lines are dropped. A command whose output closed exits with
//! [`CLOSED_EXIT_CODE`].

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The exit code of a command whose stdout or stderr closed before it finished: 128 +
/// SIGPIPE, what a shell reports for a process that a closed pipe ended.
pub(crate) const CLOSED_EXIT_CODE: u8 = 141;

static CLOSED: AtomicBool = AtomicBool::new(false);
type Hook = Box<dyn Fn() + Send + Sync>;
static ON_CLOSED: OnceLock<Hook> = OnceLock::new();

/// What to do the first time a write to stdout or stderr fails (set once, by the command).
pub(crate) fn on_output_closed(hook: impl Fn() + Send + Sync + 'static) {
    let _ = ON_CLOSED.set(Box::new(hook));
}

/// Whether a write to stdout or stderr has failed.
pub(crate) fn output_closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

fn mark_closed() {
    if !CLOSED.swap(true, Ordering::SeqCst) {
        if let Some(hook) = ON_CLOSED.get() {
            hook();
        }
    }
}

/// Writes `text` to stderr; a failure marks the output closed instead of panicking.
pub(crate) fn eprint_text(text: &str) {
    if output_closed() {
        return;
    }
    let mut err = std::io::stderr().lock();
    if err
        .write_all(text.as_bytes())
        .and_then(|()| err.flush())
        .is_err()
    {
        drop(err);
        mark_closed();
    }
}

/// Writes `text` to stdout. A closed pipe (`r1flow plan … | head`) marks the output
/// closed and is not an error: the reader chose to stop reading.
pub(crate) fn print_text(text: &str) -> anyhow::Result<()> {
    if output_closed() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            drop(out);
            mark_closed();
            Ok(())
        }
        other => Ok(other?),
    }
}

/// Whether stderr is a terminal (progress bars and per-step lines are for people).
pub(crate) fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal()
}

/// A line on stderr, as `eprintln!` writes it, without its panic on a closed stream.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::terminal::eprint_text(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use say;
