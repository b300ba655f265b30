#!/usr/bin/env python3
"""Writes tests/fixtures/qwen2-tiny/hf: a tiny random Qwen2 checkpoint made by
`transformers`, with a byte-level BPE tokenizer.json trained by `tokenizers`, and the
logits / greedy generations the Rust parity test (tests/model_parity.rs) must match.

Run once with torch + transformers installed; the test itself never needs Python:
    python scripts/make_qwen2_fixture.py
"""
import json
import pathlib

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "qwen2-tiny" / "hf"
SPECIALS = ["<|endoftext|>", "<think>", "</think>", "<answer>", "</answer>"]
PROMPTS = [
    "Hello world, 12 + 30 = 42.",
    "<think>2+3</think>",
    "a",
]
MAX_NEW = 12


def tokenizer():
    corpus = [
        "Using the numbers [3, 5, 7], create an equation that equals 22.",
        "<think>Let me solve this step by step. 3 * 5 = 15, 15 + 7 = 22.</think>",
        "<answer>3 * 5 + 7</answer> Hello world! The quick brown fox jumps.",
    ] * 20
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


def main():
    torch.manual_seed(0)
    tok = tokenizer()
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config).eval()
    # Large random weights: peaked logits, so greedy choices are not near-ties.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.3 * torch.randn_like(p))
            else:
                p.copy_(0.25 * torch.randn_like(p))
    OUT.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(OUT, safe_serialization=True)
    tok.save_pretrained(OUT)

    tok.padding_side = "left"
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        logits = logits * mask[..., None]  # padding rows are not compared
        gen = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=MAX_NEW,
            do_sample=False,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )[:, ids.shape[1]:]
        # Smallest gap between the two best logits along the greedy path (robustness).
        full = torch.cat([ids, gen], 1)
        fmask = torch.cat([mask, torch.ones_like(gen)], 1)
        fpos = (fmask.cumsum(-1) - 1).clamp(min=0)
        fl = model(input_ids=full, attention_mask=fmask, position_ids=fpos).logits
        top2 = fl[:, ids.shape[1] - 1 : -1].topk(2, -1).values
        gap = (top2[..., 0] - top2[..., 1]).min().item()
    save_file({"logits": logits.float().contiguous()}, str(OUT / "expected_logits.safetensors"))
    greedy = []
    for row in gen.tolist():
        cut = row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
        greedy.append(row[:cut])
    expected = {
        "prompts": PROMPTS,
        "prompt_ids": [tok(p)["input_ids"] for p in PROMPTS],
        "max_new_tokens": MAX_NEW,
        "greedy": greedy,
        "greedy_text": [tok.decode(g, skip_special_tokens=True) for g in greedy],
        "min_top2_gap": gap,
        "torch": torch.__version__,
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(json.dumps(expected, indent=1))
    print("params", sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
