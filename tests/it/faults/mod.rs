//! Faults a flaky machine or a careless command line brings (issue 22), one module per
//! class: the store under a full disk, a crash or a damaged index (`store`), outputs that
//! would overlap a store or someone's files (`overlap`), closed pipes and signals
//! (`pipes`), chat templates past the renderer's OS limits (`bounds`). Each case runs the
//! real binary and is bounded in time.

mod bounds;
mod messages;
mod overlap;
mod pipes;
mod store;

use crate::support::{micro_manifest, Test};

/// A pipeline that writes every kind of store record: a dataset, a pretraining with a
/// checkpoint at every step, and an eval.
fn training_manifest(max_steps: u32) -> String {
    format!("{}stages:\n  tasks: {{kind: dataset, source: arith, test_size: 4}}\n  base: {{kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: {max_steps}, per_device_train_batch_size: 4, save_steps: 1}}\n  eval: {{kind: eval, from: base, prompts: tasks, num_samples: 1, limit: 2, max_completion_length: 4}}\n", micro_manifest("faults"))
}

/// A project whose store `store` holds one finished run of `training_manifest(3)`.
fn trained_project() -> Test {
    let test = Test::new().write("m.yaml", training_manifest(3));
    let run = test.run_in_store().run_within(120);
    run.assert_success();
    test
}
