//! LoRA adapters out of r1flow and back in (issue 26): an `sft` stage with `lora:` on the
//! committed transformers Qwen2 checkpoint (tests/fixtures/qwen2-tiny/hf), exported as
//! PEFT's adapter directory (`merge: false`) and as the merged checkpoint (the default);
//! the adapter loaded by `peft` on the transformers base gives the merged export's logits
//! and greedy tokens (scripts/check_peft_adapter.py; skipped with a message where Python's
//! peft, transformers and torch are not installed, required with R1FLOW_REQUIRE_PEFT=1),
//! and r1flow's own greedy generation; and the adapter declared as a model's `adapter:`
//! gives back the merged export's bits.

use std::path::Path;
use std::process::Command;

use crate::support::{
    last_run_json, micro_pipeline, output_hashes, repo_root, tool_available, Outcome, Test,
};

/// The Qwen2 checkpoint transformers wrote (scripts/make_qwen2_fixture.py).
const FIXTURE: &str = "tests/fixtures/qwen2-tiny/hf";

/// The tolerance on logits between PEFT's adapter on the base and the merged export
/// (float32 rounding of `W·x + s·B·A·x` against `(W + s·B·A)·x`), as the parity tests'.
const LOGIT_TOLERANCE: f64 = 1e-4;

/// Prompts of the greedy comparison with r1flow's own generation.
const GREEDY_PROMPTS: [&str; 4] = ["a", "Q", "7", "("];

const MANIFEST: &str = r#"
name: lora-export
seed: 3
defaults:
  max_prompt_length: 32
  max_completion_length: 16
models:
  base: {path: base}
datasets:
  arith: {kind: arithmetic, num_samples: 60, operations: [add], max_digits: 1}
stages:
  tasks: {kind: dataset, source: arith, template: {user: "Q: {question}\nA: <think>"}, test_size: 10}
  tuned:
    kind: sft
    from: base
    data: tasks
    max_seq_length: 48
    max_steps: 6
    per_device_train_batch_size: 4
    learning_rate: 1.0e-2
    lora: {r: 4, alpha: 8, target_modules: [all-linear]}
  adapter: {kind: export, from: tuned, merge: false, path: exports/adapter}
  merged: {kind: export, from: tuned, path: exports/merged}
"#;

/// The adapter exported above declared as a model and exported again, both ways.
const IMPORT: &str = r#"
  imported: {path: base, adapter: exports/adapter}
datasets:"#;
const IMPORT_STAGES: &str = r#"
  remerged: {kind: export, from: imported, path: exports/remerged}
  readapter: {kind: export, from: imported, merge: false}
"#;

/// A model declared with an adapter `peft` saved, and its merged export.
const FROM_PEFT: &str = r#"
  from_peft: {path: base, adapter: peft_adapter}
datasets:"#;
const FROM_PEFT_STAGE: &str = r#"
  peft_merged: {kind: export, from: from_peft, path: exports/peft-merged}
  tasks:"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the directory");
    for entry in std::fs::read_dir(from).expect("fixture").flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a file");
    }
}

/// A project with the manifest and the fixture checkpoint as `base/`.
fn project(manifest: &str) -> Test {
    let test = Test::new().write("m.yaml", manifest);
    copy_dir(&repo_root().join(FIXTURE), &test.path("base"));
    test
}

/// The stored bytes of output `stage/file` of the last run.
fn output(test: &Test, name: &str) -> Vec<u8> {
    let hashes = output_hashes(&last_run_json(test));
    let hash = hashes
        .iter()
        .find_map(|h| h.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no output {name} in {hashes:#?}"))
        .to_string();
    std::fs::read(test.path(&format!("store/blobs/{}/{hash}", &hash[..2]))).expect("blob")
}

/// Whether Python can run the PEFT check; required under R1FLOW_REQUIRE_PEFT=1.
fn peft_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import peft, transformers, torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    tool_available(
        found,
        "the PEFT round trip",
        "R1FLOW_REQUIRE_PEFT",
        "`python3 -c 'import peft, transformers, torch'` fails: install them (pip install torch transformers peft)",
    )
}

/// r1flow's greedy completions of `prompts` from the checkpoint directory `model`.
fn r1flow_greedy(test: &Test, model: &str, prompts: &[&str], tokens: usize) -> Vec<String> {
    let mut args = vec![
        "generate".to_string(),
        "--model".into(),
        model.into(),
        "--temperature".into(),
        "0".into(),
        "--max-new-tokens".into(),
        tokens.to_string(),
        "--json".into(),
    ];
    for prompt in prompts {
        args.push("--prompt".into());
        args.push((*prompt).to_string());
    }
    let outcome = test.clone_args(args).run();
    assert!(outcome.success, "{}", outcome.stderr);
    outcome
        .stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            value["text"].as_str().expect("text").to_string()
        })
        .collect()
}

#[test]
fn an_sft_adapter_exported_for_peft_gives_the_merged_models_logits_and_imports_back() {
    let test = project(MANIFEST);
    let run = test.clone_args(["run", "m.yaml", "--store", "store"]).run();
    assert!(run.success, "{}", run.stderr);

    // The adapter export is PEFT's two files, named for the checkpoint it was trained on.
    let mut written: Vec<String> = std::fs::read_dir(test.path("exports/adapter"))
        .expect("the adapter directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    written.sort();
    assert_eq!(
        written,
        ["adapter_config.json", "adapter_model.safetensors"],
        "{written:?}"
    );
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(test.path("exports/adapter/adapter_config.json")).expect("config"),
    )
    .expect("adapter_config.json is JSON");
    assert_eq!(config["base_model_name_or_path"], "base", "{config}");
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 4);
    assert_eq!(config["lora_alpha"], 8);
    // The weights are the training stage's, byte for byte.
    assert_eq!(
        std::fs::read(test.path("exports/adapter/adapter_model.safetensors")).expect("weights"),
        output(&test, "tuned/adapter_model.safetensors")
    );
    // The merged export is today's export: a checkpoint without adapter files.
    assert!(test.path("exports/merged/model.safetensors").is_file());
    assert!(!test.path("exports/merged/adapter_config.json").exists());

    // PEFT on the transformers base against the merged export, and against r1flow.
    if peft_available() {
        let script = repo_root().join("scripts/check_peft_adapter.py");
        let checked = Command::new("python3")
            .arg(&script)
            .args(["--base", "base", "--adapter", "exports/adapter"])
            .args(["--merged", "exports/merged", "--max-new-tokens", "12"])
            .args(["--tolerance", &LOGIT_TOLERANCE.to_string()])
            .args(GREEDY_PROMPTS.iter().flat_map(|p| ["--prompt", p]))
            .current_dir(test.path(""))
            .output()
            .expect("run python3");
        let stdout = String::from_utf8_lossy(&checked.stdout);
        let stderr = String::from_utf8_lossy(&checked.stderr);
        assert!(
            checked.status.success(),
            "check_peft_adapter.py failed:\n{stdout}\n{stderr}"
        );
        let report: serde_json::Value =
            serde_json::from_str(stdout.lines().last().expect("a report")).expect("JSON");
        let diff = report["max_abs_diff"].as_f64().expect("max_abs_diff");
        eprintln!(
            "peft adapter on the transformers base vs r1flow's merged export: max abs logit \
             diff {diff:.3e} (tolerance {LOGIT_TOLERANCE:.0e}); the adapter moves logits by \
             up to {:.3e}",
            report["adapter_effect"].as_f64().unwrap_or(f64::NAN)
        );
        assert!(diff <= LOGIT_TOLERANCE, "{report}");
        // r1flow's own greedy tokens from the merged model are PEFT's (prompts of one
        // character, whose ids r1flow's and transformers' tokenizers agree on whatever
        // their versions: transformers 5.25 splits "12 + 30" otherwise than the
        // fixture's recorded ids).
        let ours = r1flow_greedy(&test, "exports/merged", &GREEDY_PROMPTS, 12);
        let peft: Vec<String> = report["greedy_texts"]
            .as_array()
            .expect("greedy_texts")
            .iter()
            .map(|t| t.as_str().expect("text").to_string())
            .collect();
        assert_eq!(ours, peft, "r1flow's greedy completions against peft's");

        // The other way: an adapter `peft` saved (all-linear, which it writes as full
        // module names) declared on the base, merged by r1flow and exported, against
        // `peft` applying it.
        let written: Outcome = Command::new("python3")
            .arg(&script)
            .args(["--base", "base", "--write-adapter", "peft_adapter"])
            .current_dir(test.path(""))
            .output()
            .expect("run python3")
            .into();
        written.assert_success();
        let from_peft = MANIFEST.replacen("\ndatasets:", FROM_PEFT, 1).replacen(
            "\n  tasks:",
            FROM_PEFT_STAGE,
            1,
        );
        std::fs::write(test.path("p.yaml"), from_peft).expect("write p.yaml");
        let run = test
            .clone_args([
                "run",
                "p.yaml",
                "--store",
                "store",
                "--until",
                "peft_merged",
            ])
            .run();
        assert!(run.success, "{}", run.stderr);
        let checked = Command::new("python3")
            .arg(&script)
            .args(["--base", "base", "--adapter", "peft_adapter"])
            .args(["--merged", "exports/peft-merged", "--max-new-tokens", "12"])
            .args(["--tolerance", &LOGIT_TOLERANCE.to_string()])
            .current_dir(test.path(""))
            .output()
            .expect("run python3");
        let stdout = String::from_utf8_lossy(&checked.stdout);
        assert!(
            checked.status.success(),
            "a peft adapter imported by r1flow:\n{stdout}\n{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_str(stdout.lines().last().expect("a report")).expect("JSON");
        eprintln!(
            "peft's own adapter merged by r1flow vs peft: max abs logit diff {:.3e}",
            report["max_abs_diff"].as_f64().unwrap_or(f64::NAN)
        );
    }

    // Back in: the adapter declared on the base is the merged model, bit for bit, and
    // exported again as an adapter it is the same file.
    let imported = MANIFEST.replacen("\ndatasets:", IMPORT, 1).replace(
        "  merged: {kind: export, from: tuned, path: exports/merged}\n",
        &format!("  merged: {{kind: export, from: tuned, path: exports/merged}}{IMPORT_STAGES}"),
    );
    assert_ne!(imported, MANIFEST);
    let test = test.write("m.yaml", imported);
    let run = test.clone_args(["run", "m.yaml", "--store", "store"]).run();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        output(&test, "remerged/model.safetensors"),
        output(&test, "merged/model.safetensors"),
        "the imported adapter merges into the same weights the training stage stored"
    );
    assert_eq!(
        output(&test, "readapter/adapter_model.safetensors"),
        output(&test, "adapter/adapter_model.safetensors")
    );
    assert_eq!(
        output(&test, "readapter/adapter_config.json"),
        output(&test, "adapter/adapter_config.json")
    );
}

#[test]
fn adapters_that_cannot_be_exported_or_imported_are_located_at_validate() {
    let manifest = r#"
name: lora-errors
models:
  base: {path: base}
  no_base: {preset: tiny, adapter: exports/adapter}
  missing: {path: base, adapter: nowhere}
  prefix: {path: base, adapter: prefix}
  other_rank: {path: base, adapter: other_rank}
datasets:
  arith: {kind: arithmetic, num_samples: 20, operations: [add], max_digits: 1}
stages:
  tasks: {kind: dataset, source: arith, template: {user: "Q: {question}\nA: <think>"}, test_size: 4}
  full: {kind: sft, from: base, data: tasks, max_seq_length: 48, max_steps: 1}
  of_full: {kind: export, from: full, merge: false}
  of_base: {kind: export, from: base, merge: false}
  named: {kind: export, from: full, base_model: Qwen/Qwen2.5-0.5B}
"#;
    let test = project(manifest).write(
        "prefix/adapter_config.json",
        r#"{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 20}"#,
    );
    let test = test.write("prefix/adapter_model.safetensors", b"");
    // A rank-4 adapter on q_proj whose second layer's A was saved at rank 2.
    let test = test
        .write(
            "other_rank/adapter_config.json",
            r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}"#,
        )
        .write(
            "other_rank/adapter_model.safetensors",
            zero_safetensors(&[
                (
                    "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                    [4, 32],
                ),
                (
                    "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                    [32, 4],
                ),
                (
                    "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
                    [2, 32],
                ),
                (
                    "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight",
                    [32, 4],
                ),
            ]),
        );
    let outcome = test.clone_args(["validate", "m.yaml"]).run();
    assert!(!outcome.success);
    assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
    insta::assert_snapshot!(outcome.stderr);
}

/// A safetensors file of f32 zeros with these tensors.
fn zero_safetensors(tensors: &[(&str, [usize; 2])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, shape) in tensors {
        let end = offset + 4 * shape[0] * shape[1];
        header.insert(
            (*name).to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let header = serde_json::to_vec(&header).expect("json");
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.resize(bytes.len() + offset, 0);
    bytes
}

#[test]
fn the_shipped_lora_pipeline_validates_with_a_checkpoint_in_place() {
    let manifest = std::fs::read_to_string(repo_root().join("pipelines/hf-grpo-lora.yaml"))
        .expect("pipelines/hf-grpo-lora.yaml");
    let data = std::fs::read(repo_root().join("pipelines/data/gsm8k-style.jsonl")).expect("data");
    let test = Test::new()
        .write("hf-grpo-lora.yaml", manifest)
        .write("data/gsm8k-style.jsonl", data);
    copy_dir(
        &repo_root().join("tests/fixtures/llama-chat-tiny"),
        &test.path("checkpoints/SmolLM2-135M-Instruct"),
    );
    let outcome = test.clone_args(["validate", "hf-grpo-lora.yaml"]).run();
    assert!(outcome.success, "{}", outcome.stderr);
    assert!(outcome.stderr.is_empty(), "warnings: {}", outcome.stderr);
    // The adapter's export names its base as the manifest does.
    let path = test.path("hf-grpo-lora.yaml");
    let text = std::fs::read_to_string(&path).expect("the manifest");
    let doc = r1flow::syntax::parse(r1flow::diag::SourceFile::new(path, &text)).expect("parses");
    let checked = r1flow::check::check_document(&doc, &r1flow::check::Capabilities::any());
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let stage = &checked.pipelines[0].stages["export_adapter"];
    let r1flow::stages::ResolvedStage::Export(export) = &stage.resolved else {
        panic!("export_adapter is an export: {:?}", stage.resolved)
    };
    assert!(!export.merge);
    assert_eq!(
        export.base_model.as_deref(),
        Some("checkpoints/SmolLM2-135M-Instruct")
    );
}

/// `lora:` on the two kinds the sft/grpo test in train.rs does not run: `distill`
/// (logits mode: adapters on the student, the teacher as it is) and `rlhf` (a KL term
/// against the frozen base, a reward model's scores), each exported as an adapter.
fn kinds() -> String {
    micro_pipeline("lora-kinds", 3)
        .lengths(32, 16)
        .arith(80, 10)
        .dataset("prefs: {kind: jsonl, path: preferences.jsonl, format: preferences}")
        .dataset("rlhf_prompts: {kind: jsonl, path: rlhf_prompts.jsonl, format: prompts}")
        .stages(
            r#"  general: {kind: dataset, source: rlhf_prompts, template: {user: "Q: {question}\nA: <think>"}, test_size: 2}
  pairs: {kind: dataset, source: prefs, test_size: 4}
  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, learning_rate: 3.0e-3, per_device_train_batch_size: 4, max_steps: 6}
  teacher: {kind: sft, from: base, data: tasks, max_seq_length: 48, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 4}
  rm: {kind: reward_model, from: base, data: pairs, learning_rate: 1.0e-3, per_device_train_batch_size: 4, max_steps: 3, max_seq_length: 64}
  distilled: {kind: distill, teacher: teacher, student: base, data: tasks, mode: logits, max_seq_length: 48, learning_rate: 1.0e-2, per_device_train_batch_size: 4, max_steps: 4, save_steps: 2, lora: {r: 4, target_modules: [all-linear]}}
  aligned: {kind: rlhf, from: base, prompts: general, rewards: {accuracy: 1.0, format: 0.5}, reward_model: rm, general_rewards: {format: 0.5}, learning_rate: 1.0e-2, num_generations: 4, per_device_train_batch_size: 8, max_steps: 3, save_steps: 2, beta: 0.04, lora: {r: 4, alpha: 16}}
  distilled_adapter: {kind: export, from: distilled, merge: false}
  aligned_adapter: {kind: export, from: aligned, merge: false}
"#,
        )
}

#[test]
fn lora_trains_distill_and_rlhf_stages_and_their_adapters_export() {
    let data = |name: &str| {
        std::fs::read(repo_root().join("pipelines/data").join(name)).expect("shipped data")
    };
    let project = || {
        Test::new()
            .write("k.yaml", kinds())
            .write("preferences.jsonl", data("preferences.jsonl"))
            .write("rlhf_prompts.jsonl", data("rlhf_prompts.jsonl"))
    };
    let test = project();
    let run = test.clone_args(["run", "k.yaml", "--store", "store"]).run();
    assert!(run.success, "{}", run.stderr);
    let hashes = output_hashes(&last_run_json(&test));
    let hash = |name: &str| -> String {
        hashes
            .iter()
            .find_map(|h| h.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no output {name} in {hashes:#?}"))
            .to_string()
    };
    for (stage, rank, targets) in [("distilled", 4, 7), ("aligned", 4, 2)] {
        // Trained away from the base, the adapter stored beside the merged model.
        assert_ne!(
            hash(&format!("{stage}/model.safetensors")),
            hash("base/model.safetensors"),
            "{stage}"
        );
        let config: serde_json::Value = serde_json::from_slice(&output(
            &test,
            &format!("{stage}_adapter/adapter_config.json"),
        ))
        .expect("adapter_config.json");
        assert_eq!(config["r"], rank, "{config}");
        assert_eq!(
            config["target_modules"].as_array().map(Vec::len),
            Some(targets),
            "{config}"
        );
        // The base is a stage's model, which no directory holds: PEFT's `null`.
        assert!(config["base_model_name_or_path"].is_null(), "{config}");
        assert_eq!(
            hash(&format!("{stage}_adapter/adapter_model.safetensors")),
            hash(&format!("{stage}/adapter_model.safetensors"))
        );
    }
    // Killed after every checkpoint and resumed: the same bits.
    let resumed = project();
    let mut finished = None;
    for _ in 0..12 {
        let outcome = resumed
            .clone_args(["run", "k.yaml", "--store", "store"])
            .env("R1FLOW_FAILPOINT", "after-checkpoint")
            .run();
        if outcome.success {
            finished = Some(output_hashes(&last_run_json(&resumed)));
            break;
        }
    }
    assert_eq!(
        finished.expect("the run finished after at most 12 resumptions"),
        hashes
    );
}
