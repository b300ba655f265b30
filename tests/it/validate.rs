//! `r1flow validate` on broken manifests: the exact error text of each error class is a
//! snapshot (tests/data/invalid/*.yaml → tests/it/snapshots/).

use crate::support::{repo_root, Test};

#[test]
fn invalid_manifests_report_every_error_with_location() {
    insta::glob!("../data/invalid", "*.yaml", |path| {
        let dir = path.parent().expect("fixture directory");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name");
        let outcome = Test::in_dir(dir).args(["validate", name]).run();
        assert!(!outcome.success, "{name} should fail validation");
        assert!(!outcome.stderr.contains("panicked"), "{name} panicked");
        insta::assert_snapshot!(outcome.stderr);
    });
}

#[test]
fn binary_junk_is_refused_as_not_utf8() {
    let outcome = Test::new()
        .write(
            "junk.yaml",
            [0x7fu8, b'E', b'L', b'F', 0xff, 0xfe, 0x00, 0x01],
        )
        .args(["validate", "junk.yaml"])
        .run();
    insta::assert_snapshot!(outcome.failure_stderr(), @r"
    error: the manifest is not UTF-8 text
     --> junk.yaml:1:5
      |
    1 | �ELF
      |     ^
      = help: manifests are YAML text files encoded as UTF-8; re-save the file as UTF-8

    1 error
    ");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!(
        "name: deep\nstages: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let outcome = Test::new()
        .write("deep.yaml", deep)
        .args(["validate", "deep.yaml"])
        .run();
    assert!(!outcome.success);
    assert!(!outcome.stderr.contains("panicked"));
    outcome
        .assert_stderr_says("nest deeper than 128 levels")
        .assert_stderr_says("deep.yaml:2:");
}

#[test]
fn nesting_just_past_serde_yaml_limit_is_reported() {
    // Block mappings nest without brackets: serde_yaml's own recursion limit catches them.
    let mut yaml = String::from("name: deep\nstages:\n");
    for depth in 0..200 {
        yaml.push_str(&format!("{}k{depth}:\n", " ".repeat(2 * depth + 2)));
    }
    let outcome = Test::new()
        .write("block.yaml", yaml)
        .args(["validate", "block.yaml"])
        .run();
    outcome.assert_failure_says("recursion limit exceeded");
}

#[test]
fn huge_files_are_refused_before_parsing() {
    let huge = format!("name: huge\n# {}\n", "x".repeat(5 * 1024 * 1024));
    let outcome = Test::new()
        .write("huge.yaml", huge)
        .args(["validate", "huge.yaml"])
        .run();
    insta::assert_snapshot!(outcome.failure_stderr(), @r"
    error: `huge.yaml` is 5242894 bytes; manifests are limited to 4194304 bytes
      = help: is this the right file? large data belongs in JSONL files that a dataset names

    1 error
    ");
}

#[test]
fn missing_manifest_names_the_path() {
    let outcome = Test::new().args(["validate", "nowhere.yaml"]).run();
    outcome.assert_failure_says("cannot read `nowhere.yaml`");
}

#[test]
fn every_error_of_a_file_is_reported_at_once() {
    let dir = repo_root().join("tests/data/invalid");
    let outcome = Test::in_dir(&dir).args(["validate", "ranges.yaml"]).run();
    assert!(
        outcome.stderr.trim_end().ends_with("13 errors"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn several_files_are_checked_and_the_exit_status_reflects_any_failure() {
    let dir = repo_root();
    let outcome = Test::in_dir(&dir)
        .args([
            "validate",
            "pipelines/quickstart.yaml",
            "tests/data/invalid/cycle.yaml",
        ])
        .run();
    assert!(!outcome.success);
    outcome
        .assert_stdout_says("ok: pipelines/quickstart.yaml")
        .assert_stderr_says("dependency cycle");
}

#[test]
fn a_checkpoint_r1flow_cannot_run_is_refused_at_its_path() {
    let outcome = Test::new()
        .write(
            "ckpt/config.json",
            r#"{"model_type": "gpt2", "hidden_size": 64, "num_hidden_layers": 2,
                "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100}"#,
        )
        .write(
            "m.yaml",
            "name: gpt2\nmodels:\n  gpt: {path: ckpt}\nstages:\n  x: {kind: export, from: gpt}\n",
        )
        .args(["validate", "m.yaml"])
        .run();
    insta::assert_snapshot!(outcome.failure_stderr(), @r"
    error: model `gpt`: r1flow cannot run this checkpoint: unsupported model_type `gpt2` (supported: qwen2, llama)
     --> m.yaml:3:15
      |
    3 |   gpt: {path: ckpt}
      |               ^^^^
      = help: r1flow runs Qwen2 and Llama decoders (model_type qwen2 or llama, SiLU, no rope scaling or sliding window)

    1 error
    ");
}

/// A manifest that asks for a backend this binary lacks is refused at its `backend:` line,
/// and `--backend` naming one is refused before anything runs.
#[cfg(not(feature = "cuda"))]
#[test]
fn a_backend_not_compiled_in_is_refused_before_any_stage() {
    let test = Test::new().write(
        "m.yaml",
        "name: b\nbackend: cuda\ndatasets:\n  a: {kind: arithmetic}\nstages:\n  t: {kind: dataset, source: a}\n",
    );
    let outcome = test.clone_args(["validate", "m.yaml"]).run();
    insta::assert_snapshot!(outcome.failure_stderr(), @r"
    error: backend `cuda` is not compiled into this r1flow
     --> m.yaml:2:10
      |
    2 | backend: cuda
      |          ^^^^
      = help: rebuild with `cargo build --release --features cuda`, or use `backend: cpu`

    1 error
    ");
    let forced = Test::new()
        .write(
            "m.yaml",
            "name: b\ndatasets:\n  a: {kind: arithmetic}\nstages:\n  t: {kind: dataset, source: a}\n",
        )
        .args(["run", "m.yaml", "--backend", "cuda", "--store", "store"])
        .run();
    forced.assert_failure_says("--backend cuda: this r1flow was built without it");
    assert!(
        !forced.stderr.contains("[1/1]"),
        "no stage ran: {}",
        forced.stderr
    );
}

/// The machine a Slurm job runs on is not the one that submits it: `validate --executor
/// slurm` does not bound a model by this machine's memory (the job's `mem:` request
/// does), while a local validate does.
#[test]
fn a_model_larger_than_this_machine_is_refused_locally_not_for_slurm() {
    // About 10 billion parameters: 40 GB of f32 weights, more than a CI machine holds and
    // far below the absolute bound of 1 TiB.
    let manifest = r#"name: large
models:
  big: {preset: tiny, hidden_size: 8192, num_hidden_layers: 36, num_attention_heads: 64, num_key_value_heads: 8, intermediate_size: 28672}
datasets:
  arith: {kind: arithmetic, num_samples: 100}
stages:
  tasks: {kind: dataset, source: arith}
  base: {kind: pretrain, from: big, data: tasks, max_steps: 1}
"#;
    let test = Test::new().write("large.yaml", manifest);
    let local = test.clone_args(["validate", "large.yaml"]).run();
    let memory = r1flow::check::physical_memory().unwrap_or(u64::MAX);
    if memory < 40_000_000_000 {
        assert!(!local.success, "{}", local.stderr);
        local.assert_stderr_says("memory");
    }
    let slurm = test
        .clone_args(["validate", "large.yaml", "--executor", "slurm"])
        .run();
    slurm.assert_success();
}

/// A precision is checked at `dtype:` against the backend that will train in it: the CPU
/// in f32 only, wgpu in f32 and f16 (WGSL has no bf16), CUDA in all three; `run
/// --backend`, when given, is that backend instead of the manifest's.
#[test]
fn a_precision_the_backend_cannot_train_in_is_refused_at_dtype() {
    use r1flow::check::{check_document, Capabilities};
    use r1flow::diag::{render_all, SourceFile};
    use r1flow::manifest::Backend;

    let manifest = |backend: &str, dtype: &str| {
        format!(
            "name: p\nbackend: {backend}\ndtype: {dtype}\ndatasets:\n  a: {{kind: arithmetic}}\n\
             stages:\n  t: {{kind: dataset, source: a}}\n"
        )
    };
    // Every backend compiled in, each with the precisions this r1flow trains in there.
    let every = Capabilities {
        dtypes: r1flow::model::capabilities().dtypes,
        ..Capabilities::any()
    };
    let check = |backend: &str, dtype: &str, can: &Capabilities| {
        let doc = r1flow::syntax::parse(SourceFile::new("m.yaml", manifest(backend, dtype)))
            .expect("parses");
        render_all(&check_document(&doc, can).diagnostics)
    };
    for (backend, dtype) in [
        ("cpu", "f32"),
        ("wgpu", "f32"),
        ("wgpu", "f16"),
        ("cuda", "bf16"),
        ("cuda", "f16"),
    ] {
        assert_eq!(check(backend, dtype, &every), "", "{backend} {dtype}");
    }
    let forced = Capabilities {
        backend_override: Some(Backend::Cpu),
        ..every.clone()
    };
    let refused = [
        check("cpu", "f16", &every),
        check("cpu", "bf16", &every),
        check("wgpu", "bf16", &every),
        check("cuda", "f16", &forced),
    ];
    insta::assert_snapshot!("precision_per_backend", refused.join("\n"));

    // The binary: `--backend cpu` over a manifest's `backend: cuda`, refused at `dtype:`
    // before any stage.
    let outcome = Test::new()
        .write("m.yaml", manifest("cuda", "bf16"))
        .args(["run", "m.yaml", "--backend", "cpu", "--store", "store"])
        .run();
    outcome.assert_failure_says("backend `cpu` (`--backend`) cannot train in `bf16`");
    assert!(!outcome.stderr.contains("[1/1]"), "{}", outcome.stderr);
}
