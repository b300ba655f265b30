//! LoRA adapters in the model layer, on the CPU backend with tiny shapes: a fresh adapter
//! changes nothing, training moves the adapters only, merging and leaving them out.

use r1flow::model::burn_prelude::*;
use r1flow::model::{
    token_logprobs, CpuBackend, LoraConfig, LoraTarget, ModelConfig, TokenBatch, Transformer,
};

type B = CpuBackend;
type Ad = burn::backend::Autodiff<CpuBackend>;

fn config(tied: bool) -> ModelConfig {
    ModelConfig {
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        intermediate_size: 64,
        rope_theta: 10_000.0,
        tie_word_embeddings: tied,
        vocab_size: 263,
        rms_norm_eps: 1e-6,
        max_position_embeddings: 128,
        attention_bias: true,
    }
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
