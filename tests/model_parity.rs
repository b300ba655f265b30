//! Parity with HuggingFace `transformers`: a tiny random Qwen2 checkpoint made by
//! scripts/make_qwen2_fixture.py, and an r1flow export checked by scripts/check_export.py.
//! The expected values are committed; no Python is needed here.

use std::path::{Path, PathBuf};

use r1flow::model::burn_prelude::Tensor;
use r1flow::model::{
    generate, load_hf_dir, save_hf_dir, CpuBackend, ModelConfig, SamplingParams, TextTokenizer,
    TokenBatch, Transformer,
};
use safetensors::SafeTensors;

type B = CpuBackend;

fn fixture(part: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/qwen2-tiny")
        .join(part)
}

fn read_f32(path: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).expect("fixture readable");
    let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let view = st.tensor(name).expect("tensor present");
    let v = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (view.shape().to_vec(), v)
}

fn to_vec(t: Tensor<B, 3>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 data")
}

fn max_abs_diff_on_valid(ours: &[f32], theirs: &[f32], batch: &TokenBatch, vocab: usize) -> f32 {
    let mut worst = 0.0f32;
    for (slot, &valid) in batch.valid.iter().enumerate() {
        if !valid {
            continue;
        }
        for v in 0..vocab {
            let i = slot * vocab + v;
            worst = worst.max((ours[i] - theirs[i]).abs());
        }
    }
    worst
}

fn ids(v: &serde_json::Value) -> Vec<Vec<u32>> {
    serde_json::from_value(v.clone()).expect("lists of ids")
}

#[test]
fn transformers_qwen2_logits_and_greedy_generation_match() {
    let dir = fixture("hf");
    let device = Default::default();
    let loaded = load_hf_dir::<B>(&dir, &device).expect("fixture loads");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("json"))
            .expect("valid json");

    // Tokenizer: same ids as the Python tokenizer.
    let prompt_ids = ids(&expected["prompt_ids"]);
    let prompts: Vec<String> =
        serde_json::from_value(expected["prompts"].clone()).expect("prompts");
    for (text, want) in prompts.iter().zip(&prompt_ids) {
        assert_eq!(
            &loaded.tokenizer.encode(text, true).expect("encodes"),
            want,
            "{text}"
        );
    }

    // Logits of a left-padded batch.
    let batch = TokenBatch::left_padded(&prompt_ids, loaded.tokenizer.pad_id());
    let logits = loaded.model.forward(&batch, &device).expect("forward");
    let vocab = loaded.config.vocab_size;
    let (shape, want) = read_f32(&dir.join("expected_logits.safetensors"), "logits");
    assert_eq!(shape, vec![batch.batch, batch.seq, vocab]);
    let diff = max_abs_diff_on_valid(&to_vec(logits), &want, &batch, vocab);
    assert!(diff <= 1e-4, "max abs logit difference {diff}");

    // Greedy generation with the KV cache, token for token.
    let params = SamplingParams {
        max_new_tokens: expected["max_new_tokens"].as_u64().expect("n") as usize,
        temperature: 0.0,
        ..Default::default()
    };
    let out = generate(
        &loaded.model,
        &loaded.tokenizer,
        &prompt_ids,
        &params,
        &device,
    )
    .expect("generates");
    let greedy = ids(&expected["greedy"]);
    for (row, (got, want)) in out.iter().zip(&greedy).enumerate() {
        assert_eq!(&got.token_ids, want, "row {row}");
    }
}

/// The model the export fixture holds: tied embeddings, no attention biases (exported as
/// zero biases), the built-in tokenizer.
fn export_fixture_model() -> (ModelConfig, Transformer<B>) {
    let config = ModelConfig {
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 1,
        intermediate_size: 48,
        rope_theta: 10_000.0,
        tie_word_embeddings: true,
        vocab_size: 263,
        rms_norm_eps: 1e-6,
        max_position_embeddings: 64,
        attention_bias: false,
    };
    let model = Transformer::init(&config, 7, &Default::default()).expect("init");
    (config, model)
}

const EXPORT_TEXT: &str = "<think>12+30</think><answer>42</answer>";

/// Regenerates tests/fixtures/qwen2-tiny/r1flow-export (then run scripts/check_export.py).
#[test]
#[ignore = "writes the committed fixture"]
fn write_export_fixture() {
    let (config, model) = export_fixture_model();
    save_hf_dir(
        &model,
        &config,
        &TextTokenizer::builtin(),
        &fixture("r1flow-export"),
    )
    .expect("export");
}

#[test]
fn export_is_stable_and_transformers_reads_the_same_function() {
    let (config, model) = export_fixture_model();
    let tmp = tempfile::tempdir().expect("tempdir");
    save_hf_dir(&model, &config, &TextTokenizer::builtin(), tmp.path()).expect("export");
    let committed = fixture("r1flow-export");
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "generation_config.json",
    ] {
        let now = std::fs::read(tmp.path().join(file)).expect("written");
        let then = std::fs::read(committed.join(file)).expect("committed");
        assert!(
            now == then,
            "{file} drifted from the committed export fixture"
        );
    }

    let device = Default::default();
    let loaded = load_hf_dir::<B>(&committed, &device).expect("export loads back");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(committed.join("transformers_expected.json")).expect("json"),
    )
    .expect("valid json");
    let text_ids = loaded.tokenizer.encode(EXPORT_TEXT, true).expect("encodes");
    assert_eq!(
        ids(&expected["ids"]),
        vec![text_ids.clone()],
        "transformers tokenizes alike"
    );

    let batch = TokenBatch::left_padded(&[text_ids], loaded.tokenizer.pad_id());
    let logits = loaded.model.forward(&batch, &device).expect("forward");
    let (_, want) = read_f32(&committed.join("transformers_logits.safetensors"), "logits");
    let diff = max_abs_diff_on_valid(&to_vec(logits), &want, &batch, config.vocab_size);
    assert!(diff <= 1e-4, "max abs logit difference {diff}");
}
