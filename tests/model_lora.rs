//! LoRA adapters in the model layer, on the CPU backend with tiny shapes: a fresh adapter
//! changes nothing, training moves the adapters only, merging and leaving them out, and
//! PEFT's adapter files in and out.

use r1flow::model::burn_prelude::*;
use r1flow::model::{
    token_logprobs, CpuBackend, LoraConfig, LoraTarget, ModelConfig, TokenBatch, Transformer,
};

mod common;

type B = CpuBackend;
type Ad = burn::backend::Autodiff<CpuBackend>;

/// The shared tiny architecture, with biases on the attention projections.
fn config(tied: bool) -> ModelConfig {
    common::config(tied, true)
}

fn lora(r: usize) -> LoraConfig {
    LoraConfig {
        r,
        alpha: 2.0 * r as f64,
        dropout: 0.0,
    }
}

fn batch() -> TokenBatch {
    TokenBatch::left_padded(&[vec![3u32, 40, 50, 60, 7], vec![8u32, 90, 2]], 0)
}

fn logits<Bk: KernelBackend>(model: &Transformer<Bk>) -> Vec<f32> {
    let device = Default::default();
    model
        .forward(&batch(), &device)
        .expect("forward")
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32")
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every base tensor, in HF names, as bits.
fn base_bits<Bk: Backend>(model: &Transformer<Bk>) -> Vec<(String, Vec<u32>)> {
    model
        .hf_tensors()
        .expect("tensors")
        .into_iter()
        .map(|(spec, v)| (spec.name, bits(&v)))
        .collect()
}

/// One AdamW step on the mean negative log-likelihood of the batch.
fn one_step(
    model: Transformer<Ad>,
    optimizer: &mut impl Optimizer<Transformer<Ad>, Ad>,
) -> Transformer<Ad> {
    let device = Default::default();
    let lp = token_logprobs(&model, &batch(), &device).expect("logprobs");
    let mask = lp.target_mask.clone();
    let loss = (lp.logprobs * mask.clone()).sum().neg() / mask.sum();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optimizer.step(1e-2, model, grads)
}

#[test]
fn a_fresh_adapter_gives_the_base_logits_bit_for_bit() {
    let device = Default::default();
    for tied in [true, false] {
        let base = Transformer::<B>::init(&config(tied), 1, &device).expect("init");
        let want = bits(&logits(&base));
        let adapted = base
            .with_lora(&lora(4), &LoraTarget::ALL, 7, &device)
            .expect("adapters");
        assert_eq!(adapted.lora_targets(), LoraTarget::ALL.to_vec());
        // r · (d_in + d_out) per projection: q 32+32, k 32+16, v 32+16, o 32+32,
        // gate 32+64, up 32+64, down 64+32, times r = 4 and 2 layers.
        assert_eq!(
            adapted.lora_num_values(),
            2 * 4 * (64 + 48 + 48 + 64 + 96 + 96 + 96)
        );
        assert_eq!(bits(&logits(&adapted)), want);
        assert_eq!(bits(&logits(&adapted.without_lora())), want);
    }
}

#[test]
fn adapters_are_seeded_and_each_one_is_drawn_alone() {
    let device = Default::default();
    let base = Transformer::<B>::init(&config(true), 1, &device).expect("init");
    let a_of = |model: &Transformer<B>, target: LoraTarget| {
        let (_, _, adapter) = model
            .lora_adapters()
            .find(|(l, t, _)| *l == 1 && *t == target)
            .expect("adapter");
        adapter
            .a
            .val()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32")
    };
    let all = base
        .clone()
        .with_lora(&lora(4), &LoraTarget::ALL, 7, &device)
        .expect("adapters");
    let again = base
        .clone()
        .with_lora(&lora(4), &LoraTarget::ALL, 7, &device)
        .expect("adapters");
    let only_v = base
        .clone()
        .with_lora(&lora(4), &[LoraTarget::VProj], 7, &device)
        .expect("adapters");
    let other_seed = base
        .with_lora(&lora(4), &LoraTarget::ALL, 8, &device)
        .expect("adapters");
    let v = a_of(&all, LoraTarget::VProj);
    assert_eq!(bits(&v), bits(&a_of(&again, LoraTarget::VProj)));
    assert_eq!(bits(&v), bits(&a_of(&only_v, LoraTarget::VProj)));
    assert_ne!(bits(&v), bits(&a_of(&other_seed, LoraTarget::VProj)));
    // PEFT's Kaiming-uniform bound for d_in = 32: 1/√32.
    let bound = 1.0 / 32f32.sqrt();
    assert!(v.iter().all(|x| x.abs() <= bound));
    assert!(v.iter().any(|x| x.abs() > bound / 2.0));
    assert_eq!(only_v.lora_targets(), vec![LoraTarget::VProj]);
}

#[test]
fn a_step_moves_the_adapters_only_and_merging_keeps_the_function() {
    let device = Default::default();
    let base = Transformer::<Ad>::init(&config(false), 5, &device).expect("init");
    let before = base_bits(&base);
    let base_logits = logits(&base);
    let adapted = base
        .with_lora(&lora(4), &LoraTarget::ALL, 3, &device)
        .expect("adapters");
    let adapter_values = |m: &Transformer<Ad>| -> Vec<Vec<u32>> {
        m.lora_adapters()
            .flat_map(|(_, _, a)| [a.a.val(), a.b.val()])
            .map(|t| {
                bits(
                    &t.into_data()
                        .convert::<f32>()
                        .into_vec::<f32>()
                        .expect("f32"),
                )
            })
            .collect()
    };
    let fresh = adapter_values(&adapted);

    let mut optimizer = AdamWConfig::new().init::<Ad, Transformer<Ad>>();
    let trained = one_step(adapted, &mut optimizer);
    // AdamW holds state for the 2 × 7 × 2 adapter matrices and nothing else.
    assert_eq!(optimizer.to_record().len(), 2 * 7 * 2);

    assert_eq!(base_bits(&trained), before, "a base weight moved");
    let moved = adapter_values(&trained);
    assert_eq!(moved.len(), fresh.len());
    for (i, (m, f)) in moved.iter().zip(&fresh).enumerate() {
        assert_ne!(m, f, "adapter matrix {i} did not move");
    }
    let adapted_logits = logits(&trained);
    assert!(max_diff(&adapted_logits, &base_logits) > 1e-4);
    // Without the adapters: the base, bit for bit.
    assert_eq!(bits(&logits(&trained.without_lora())), bits(&base_logits));

    // Merged: the same function within f32 rounding, and a plain model.
    let merged = trained.merge_lora();
    assert!(!merged.has_lora());
    let diff = max_diff(&logits(&merged), &adapted_logits);
    assert!(diff < 1e-4, "merged logits differ by {diff}");
}

#[test]
fn bad_lora_settings_are_named_errors() {
    let device = Default::default();
    let base = Transformer::<B>::init(&config(true), 1, &device).expect("init");
    let err = |cfg: LoraConfig, targets: &[LoraTarget]| {
        base.clone()
            .with_lora(&cfg, targets, 1, &device)
            .expect_err("refused")
    };
    for (cfg, targets, says) in [
        (lora(0), &LoraTarget::ALL[..], "rank"),
        (
            LoraConfig {
                dropout: 0.05,
                ..lora(4)
            },
            &LoraTarget::ALL[..],
            "dropout",
        ),
        (
            LoraConfig {
                alpha: f64::NAN,
                ..lora(4)
            },
            &LoraTarget::ALL[..],
            "lora_alpha",
        ),
        (lora(4), &[][..], "target"),
    ] {
        let e = err(cfg, targets);
        assert_eq!(e.kind(), r1flow::model::ModelErrorKind::Adapter);
        assert!(e.message().contains(says), "{}", e.message());
    }
    let twice = base
        .clone()
        .with_lora(&lora(2), &[LoraTarget::QProj], 1, &device)
        .expect("adapters")
        .with_lora(&lora(2), &[LoraTarget::KProj], 1, &device)
        .expect_err("refused");
    assert!(twice.message().contains("already"), "{}", twice.message());

    assert_eq!(
        LoraTarget::parse_list(&["all-linear"]).expect("parse"),
        LoraTarget::ALL.to_vec()
    );
    assert_eq!(
        LoraTarget::parse_list(&["v_proj", "q_proj", "v_proj"]).expect("parse"),
        vec![LoraTarget::QProj, LoraTarget::VProj]
    );
    let unknown = LoraTarget::parse_list(&["lm_head"]).expect_err("refused");
    assert!(
        unknown.message().contains("lm_head"),
        "{}",
        unknown.message()
    );
}

/// A model whose adapters have moved off their initial values (B no longer zero), on
/// the inner backend, with the base it was built on.
fn trained_adapters(targets: &[LoraTarget]) -> (Transformer<B>, Transformer<B>) {
    let device = Default::default();
    let base = Transformer::<Ad>::init(&config(false), 5, &device).expect("init");
    let adapted = base
        .clone()
        .with_lora(&lora(4), targets, 3, &device)
        .expect("adapters");
    let mut optimizer = AdamWConfig::new().init::<Ad, Transformer<Ad>>();
    let trained = one_step(adapted, &mut optimizer);
    (base.valid(), trained.valid())
}

fn adapter_bits(model: &Transformer<B>) -> Vec<(usize, LoraTarget, Vec<u32>, Vec<u32>)> {
    let values = |t: Tensor<B, 2>| {
        bits(
            &t.into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .expect("f32"),
        )
    };
    model
        .lora_adapters()
        .map(|(l, t, a)| (l, t, values(a.a.val()), values(a.b.val())))
        .collect()
}

#[test]
fn peft_adapter_files_round_trip_bit_for_bit_with_peft_names() {
    use r1flow::model::peft_adapter::{ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};
    use r1flow::model::{load_peft_adapter, save_peft_adapter};
    let device = Default::default();
    let targets = [LoraTarget::QProj, LoraTarget::VProj, LoraTarget::DownProj];
    let (base, trained) = trained_adapters(&targets);
    let dir = tempfile::tempdir().expect("tmp");
    save_peft_adapter(&trained, &lora(4), Some("r1flow/base"), dir.path()).expect("save");

    // PEFT's names and layouts: lora_A [r, in], lora_B [out, r].
    let weights = std::fs::read(dir.path().join(ADAPTER_WEIGHTS_FILE)).expect("weights");
    let file = safetensors::SafeTensors::deserialize(&weights).expect("safetensors");
    let mut names: Vec<(String, Vec<usize>)> = file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect();
    names.sort();
    let mut want = Vec::new();
    for l in 0..2 {
        for (module, d_in, d_out) in [
            ("self_attn.q_proj", 32, 32),
            ("self_attn.v_proj", 32, 16),
            ("mlp.down_proj", 64, 32),
        ] {
            let p = format!("base_model.model.model.layers.{l}.{module}");
            want.push((format!("{p}.lora_A.weight"), vec![4, d_in]));
            want.push((format!("{p}.lora_B.weight"), vec![d_out, 4]));
        }
    }
    want.sort();
    assert_eq!(names, want);
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(ADAPTER_CONFIG_FILE)).expect("config"),
    )
    .expect("json");
    for (key, value) in [
        ("peft_type", serde_json::json!("LORA")),
        ("r", serde_json::json!(4)),
        ("lora_alpha", serde_json::json!(8)),
        ("lora_dropout", serde_json::json!(0.0)),
        (
            "target_modules",
            serde_json::json!(["q_proj", "v_proj", "down_proj"]),
        ),
        ("bias", serde_json::json!("none")),
        ("task_type", serde_json::json!("CAUSAL_LM")),
        ("base_model_name_or_path", serde_json::json!("r1flow/base")),
        ("fan_in_fan_out", serde_json::json!(false)),
        ("init_lora_weights", serde_json::json!(true)),
        ("use_dora", serde_json::json!(false)),
        ("use_rslora", serde_json::json!(false)),
    ] {
        assert_eq!(config.get(key), Some(&value), "{key}");
    }

    // Read back onto the base: the same adapters, bits, logits, and files.
    let (loaded, adapter) = load_peft_adapter(base, dir.path(), &device).expect("load");
    assert_eq!(adapter.lora, lora(4));
    assert_eq!(adapter.targets, targets.to_vec());
    assert_eq!(
        adapter.base_model_name_or_path.as_deref(),
        Some("r1flow/base")
    );
    assert_eq!(adapter_bits(&loaded), adapter_bits(&trained));
    assert_eq!(bits(&logits(&loaded)), bits(&logits(&trained)));
    let again = tempfile::tempdir().expect("tmp");
    save_peft_adapter(&loaded, &adapter.lora, Some("r1flow/base"), again.path()).expect("save");
    for name in [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE] {
        assert_eq!(
            std::fs::read(dir.path().join(name)).expect("first"),
            std::fs::read(again.path().join(name)).expect("second"),
            "{name} changed in a round trip"
        );
    }
}

/// The tensors of an adapter file, as (name, shape, f32 values).
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn read_tensors(path: &std::path::Path) -> Tensors {
    let bytes = std::fs::read(path).expect("weights");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (name, view.shape().to_vec(), values)
        })
        .collect()
}

fn write_tensors(path: &std::path::Path, tensors: &Tensors) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            (
                n.clone(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .expect("view"),
            )
        })
        .collect();
    std::fs::write(
        path,
        safetensors::serialize(views, None).expect("serialize"),
    )
    .expect("write");
}

#[test]
fn hostile_adapter_files_are_refused_by_name() {
    use r1flow::model::peft_adapter::{ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};
    use r1flow::model::{load_peft_adapter, save_peft_adapter, ModelErrorKind};
    let device = Default::default();
    let (base, trained) = trained_adapters(&LoraTarget::ALL);
    let good = tempfile::tempdir().expect("tmp");
    save_peft_adapter(&trained, &lora(4), None, good.path()).expect("save");
    let config_text =
        std::fs::read_to_string(good.path().join(ADAPTER_CONFIG_FILE)).expect("config");
    let tensors = read_tensors(&good.path().join(ADAPTER_WEIGHTS_FILE));
    const Q_A: &str = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";

    type Edit = Box<dyn Fn(&mut serde_json::Value, &mut Tensors)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "wrong shape",
            Box::new(|_, t| {
                let e = t.iter_mut().find(|e| e.0 == Q_A).expect("Q_A");
                e.1 = vec![4, 31];
                e.2.truncate(4 * 31);
            }),
            "has shape [4, 31], expected [4, 32]",
        ),
        (
            "missing tensor",
            Box::new(|_, t| t.retain(|e| e.0 != Q_A)),
            "is missing",
        ),
        (
            "rank mismatch",
            Box::new(|c, _| c["r"] = serde_json::json!(8)),
            "expected [8, 32] (r = 8)",
        ),
        (
            "extra layer",
            Box::new(|_, t| {
                let mut extra = t[0].clone();
                extra.0 = extra
                    .0
                    .replace("layers.0.", "layers.9.")
                    .replace("layers.1.", "layers.9.");
                t.push(extra);
            }),
            "layers.9",
        ),
        (
            "a module not in the config",
            Box::new(|c, _| c["target_modules"] = serde_json::json!(["q_proj"])),
            "is not an adapter of this model",
        ),
        ("NaN", Box::new(|_, t| t[0].2[0] = f32::NAN), "NaN"),
        (
            "DoRA",
            Box::new(|c, _| c["use_dora"] = serde_json::json!(true)),
            "use_dora",
        ),
        (
            "rsLoRA",
            Box::new(|c, _| c["use_rslora"] = serde_json::json!(true)),
            "use_rslora",
        ),
        (
            "another PEFT method",
            Box::new(|c, _| c["peft_type"] = serde_json::json!("IA3")),
            "peft_type",
        ),
        (
            "rank 0",
            Box::new(|c, _| c["r"] = serde_json::json!(0)),
            "`r`",
        ),
        (
            "a huge rank",
            Box::new(|c, _| c["r"] = serde_json::json!(1u64 << 40)),
            "`r`",
        ),
        (
            "a pattern",
            Box::new(|c, _| c["target_modules"] = serde_json::json!(".*proj")),
            "pattern",
        ),
        (
            "an unknown module",
            Box::new(|c, _| c["target_modules"] = serde_json::json!(["lm_head"])),
            "lm_head",
        ),
        (
            "layer subset",
            Box::new(|c, _| c["layers_to_transform"] = serde_json::json!([0])),
            "layers_to_transform",
        ),
        (
            "rank pattern",
            Box::new(|c, _| c["rank_pattern"] = serde_json::json!({"q_proj": 8})),
            "rank_pattern",
        ),
        (
            "no alpha",
            Box::new(|c, _| c["lora_alpha"] = serde_json::Value::Null),
            "lora_alpha",
        ),
    ];
    for (what, edit, says) in cases {
        let dir = tempfile::tempdir().expect("tmp");
        let mut config: serde_json::Value = serde_json::from_str(&config_text).expect("json");
        let mut t = tensors.clone();
        edit(&mut config, &mut t);
        std::fs::write(dir.path().join(ADAPTER_CONFIG_FILE), config.to_string()).expect("write");
        write_tensors(&dir.path().join(ADAPTER_WEIGHTS_FILE), &t);
        let err = load_peft_adapter(base.clone(), dir.path(), &device).expect_err(what);
        assert_eq!(
            err.kind(),
            ModelErrorKind::Adapter,
            "{what}: {}",
            err.message()
        );
        assert!(err.message().contains(says), "{what}: {}", err.message());
    }

    // Files that are not what they say, or not there.
    let dir = tempfile::tempdir().expect("tmp");
    let err = load_peft_adapter(base.clone(), dir.path(), &device).expect_err("empty dir");
    assert_eq!(err.kind(), ModelErrorKind::Io, "{}", err.message());
    std::fs::write(dir.path().join(ADAPTER_CONFIG_FILE), "{ not json").expect("write");
    let err = load_peft_adapter(base.clone(), dir.path(), &device).expect_err("not json");
    assert_eq!(err.kind(), ModelErrorKind::Adapter, "{}", err.message());
    std::fs::write(dir.path().join(ADAPTER_CONFIG_FILE), &config_text).expect("write");
    std::fs::write(
        dir.path().join(ADAPTER_WEIGHTS_FILE),
        b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage",
    )
    .expect("write");
    let err = load_peft_adapter(base.clone(), dir.path(), &device).expect_err("garbage");
    assert_eq!(err.kind(), ModelErrorKind::Adapter, "{}", err.message());

    // Saving what does not describe the model is refused too.
    let err = save_peft_adapter(&base, &lora(4), None, dir.path()).expect_err("no adapters");
    assert!(
        err.message().contains("no LoRA adapters"),
        "{}",
        err.message()
    );
    let err = save_peft_adapter(&trained, &lora(8), None, dir.path()).expect_err("wrong rank");
    assert!(err.message().contains("r = 4"), "{}", err.message());
}

/// A measurement, not a check (`cargo test --test model_lora -- --ignored --nocapture`):
/// trainable numbers and AdamW's state after one step on the `small` preset, LoRA r = 16
/// on all linear layers against full fine-tuning, and the merged model's distance.
#[test]
#[ignore]
fn measure_lora_against_full_fine_tuning_on_the_small_preset() {
    use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
    let device = Default::default();
    let small = r1flow::model::Preset::Small.config();
    let base = Transformer::<Ad>::init(&small, 1, &device).expect("init");
    let total = base.num_params();
    let state_bytes = |record| {
        BinBytesRecorder::<FullPrecisionSettings>::default()
            .record(record, ())
            .expect("record")
            .len()
    };
    let mut full_optimizer = AdamWConfig::new().init::<Ad, Transformer<Ad>>();
    let full = one_step(base.clone(), &mut full_optimizer);
    let full_state = state_bytes(full_optimizer.to_record());
    drop(full);
    let cfg = LoraConfig {
        r: 16,
        alpha: 32.0,
        dropout: 0.0,
    };
    let adapted = base
        .with_lora(&cfg, &LoraTarget::ALL, 1, &device)
        .expect("adapters");
    let trainable = adapted.lora_num_values();
    let mut lora_optimizer = AdamWConfig::new().init::<Ad, Transformer<Ad>>();
    let trained = one_step(adapted, &mut lora_optimizer);
    let lora_state = state_bytes(lora_optimizer.to_record());
    println!(
        "small preset: {total} parameters; full fine-tuning trains {total}, AdamW state \
         {full_state} bytes; LoRA r=16 all-linear trains {trainable} ({:.2} %), AdamW state \
         {lora_state} bytes ({:.2} %)",
        100.0 * trainable as f64 / total as f64,
        100.0 * lora_state as f64 / full_state as f64
    );
    // Several steps so that B is far from zero, then the merged model's distance.
    let mut trained = trained;
    for _ in 0..4 {
        trained = one_step(trained, &mut lora_optimizer);
    }
    let inner = trained.valid();
    let want = logits(&inner);
    let merged = inner.merge_lora();
    println!(
        "merged vs adapted logits, max |diff| after 5 steps: {:e}; tiny config (test): see \
         a_step_moves_the_adapters_only_and_merging_keeps_the_function",
        max_diff(&logits(&merged), &want)
    );
}
