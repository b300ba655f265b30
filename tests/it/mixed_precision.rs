//! `dtype: f16` through a real stage on wgpu (on a machine without a GPU, through Mesa's
//! lavapipe, whose Vulkan driver has 16-bit floats): the micro model's pretraining in f16
//! — f16 products, f32 weights and moments, the training loop's dynamic loss scale —
//! against the same stage in f32 on the CPU backend, step by step. Ignored by default:
//! lavapipe compiles the stage's shaders with LLVM on the CPU, minutes per stage.
//!
//! Tolerance: 2e-3 of `max(1, |CPU loss|)`, the bound `tests/model_wgpu.rs` argues for f16
//! products (f16 keeps 11 significant bits; the backends' f32 orders add only about 1e-6).
//! A stage whose products or loss scale were wired wrong is off by 1e-1 or more.
#![cfg(feature = "wgpu")]

use crate::support::{metric_series, run_on_backend, Test};

const TOLERANCE: f64 = 2e-3;

const MANIFEST: &str = r#"
name: mixed-precision
seed: 5
dtype: DTYPE
models:
  micro: {preset: tiny, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64}
datasets:
  arith: {kind: arithmetic, num_samples: 48, operations: [add], max_digits: 1}
stages:
  tasks: {kind: dataset, source: arith, template: {user: "Q: {question}\nA: <think>"}, test_size: 8}
  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 3, logging_steps: 1}
"#;

/// The pretraining stage's logged points when the manifest runs in `dtype` on `backend`.
fn points(dtype: &str, backend: &str) -> Vec<serde_json::Value> {
    let test = Test::new().write("m.yaml", MANIFEST.replace("DTYPE", dtype));
    let run = run_on_backend(&test, backend);
    assert!(run.success, "{dtype} on {backend}: {}", run.stderr);
    metric_series(&test, "base")
}

#[test]
#[ignore = "minutes on lavapipe (its LLVM compiles the stage's shaders): run with \
            --include-ignored"]
fn f16_pretraining_on_wgpu_follows_f32_on_the_cpu() {
    let cpu = points("f32", "cpu");
    let gpu = points("f16", "wgpu");
    assert_eq!(cpu.len(), 3, "{cpu:?}");
    assert_eq!(gpu.len(), cpu.len(), "{gpu:?}");
    for (c, g) in cpu.iter().zip(&gpu) {
        let (c, g) = (&c["values"], &g["values"]);
        let want = c["loss"].as_f64().expect("a loss");
        let got = g["loss"].as_f64().expect("a loss");
        let difference = (got - want).abs() / want.abs().max(1.0);
        eprintln!("loss: f32 on cpu {want:.6}, f16 on wgpu {got:.6}: {difference:.2e}");
        assert!(difference <= TOLERANCE, "{difference}");
        // The loss scale is logged in f16 only; these gradients never overflow it.
        assert_eq!(g["loss_scale"].as_f64(), Some(65536.0), "{g}");
        assert_eq!(g["skipped_steps"].as_f64(), Some(0.0), "{g}");
        assert!(c.get("loss_scale").is_none(), "{c}");
    }
}
