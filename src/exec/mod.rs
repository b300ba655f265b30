//! Execute: running a plan — the context a running stage sees, the runner each stage kind
//! registers (`StageRunner`, implemented above this module by `crate::runners`), and the
//! local executor that reuses, resumes, runs and records.

mod context;
mod runner;
mod status;

pub use context::{Cancel, Progress, StageContext, StageError, StageOutput};
pub use runner::{execute, ExecError, Reporter, RunOptions, StageRunner};
pub use status::stage_states;
