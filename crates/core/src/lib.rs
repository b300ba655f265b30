//! r1flow's front end and domain, without a tensor library or a database: a manifest is
//! read (`syntax`), checked and resolved (`check`, over the types of `manifest` and the
//! stage kinds of `stages`), and planned into a DAG with cache keys (`plan`); the tasks,
//! rewards, metrics and JSONL records the stages work on live here too. Execution, the
//! store, the models and the reports build on this crate (`r1flow`). See ARCHITECTURE.md.

pub mod architecture;
pub mod check;
pub mod diag;
pub mod manifest;
pub mod metric_names;
pub mod metrics;
pub mod plan;
pub mod records;
pub mod rewards;
pub mod schema;
pub mod stages;
pub mod syntax;
pub mod tasks;
pub mod user_file;
