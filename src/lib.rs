//! r1flow: DeepSeek-R1-style training pipelines from declarative YAML manifests.
//!
//! The phases, in order: `syntax` (parse) → `check` (validate, resolve) → `plan` (DAG and
//! cache keys) — the front end, in the `r1flow-core` crate, re-exported here — then
//! execution (`exec`, which runs each stage through the runner its kind registered in
//! `runners`), the store (`store`), and the reports (`report`). The models and training
//! loops (`model`, `train`) are the only code that names burn. Checkpoints' chat
//! templates are rendered in a child process under OS limits (`chat_isolation`), which
//! the CLI installs into the front end. See ARCHITECTURE.md.

pub use r1flow_core::{
    architecture, check, diag, manifest, metric_names, metrics, plan, records, rewards, schema,
    stages, syntax, tasks, user_file,
};

pub mod chat_isolation;
pub mod exec;
pub mod model;
pub mod output_dir;
pub mod report;
pub mod runners;
pub mod store;
pub mod train;
