//! Execute: running a plan — the stage specs, the context a running stage sees, and the
//! local executor that reuses, resumes and records.

mod context;
mod runner;
mod spec;
mod status;

pub use context::{Cancel, Progress, StageContext, StageError, StageOutput};
pub use runner::{execute, ExecError, Reporter, RunOptions};
pub use spec::{InputSpec, StageSpec};
pub use status::stage_states;
