//! Integration tests: one binary (so the crate links once), one module per area.

mod bitcheck;
mod checkpoints;
mod code_reward;
mod compare_stats;
mod composition;
mod docs;
mod examples;
mod faults;
mod gpu_pipeline;
mod hostile;
mod keys;
mod layers;
mod lora_export;
mod math_grading;
mod mixed_precision;
mod numerics;
mod pipelines;
mod preferences;
mod report;
mod robustness;
mod run;
mod schema;
mod slurm;
mod support;
mod train;
mod validate;
