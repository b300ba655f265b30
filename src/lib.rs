//! r1flow: DeepSeek-R1-style training pipelines from declarative YAML manifests.
//!
//! The phases, in order: `syntax` (parse) → `check` (validate, resolve) → `plan` (DAG and
//! cache keys) → execute → store → report. See ARCHITECTURE.md for the map.

pub mod check;
pub mod diag;
pub mod exec;
pub mod manifest;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod records;
pub mod report;
pub mod rewards;
pub mod schema;
pub mod stages;
pub mod store;
pub mod syntax;
pub mod tasks;
pub mod train;
