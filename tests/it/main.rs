//! Integration tests: one binary (so the crate links once), one module per area.

mod examples;
mod hostile;
mod keys;
mod pipelines;
mod preferences;
mod report;
mod robustness;
mod run;
mod schema;
mod support;
mod train;
mod validate;
