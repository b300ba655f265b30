#!/usr/bin/env python3
"""Writes a randomly initialised HuggingFace Llama checkpoint directory, as a user's
checkpoint looks: config.json, model.safetensors (bf16), tokenizer.json (a byte-level BPE
trained here), tokenizer_config.json with SmolLM2-Instruct's ChatML chat template, and
generation_config.json. Nothing is downloaded: the architecture is written out below and
the weights are transformers' `from_config` initialisation.

    python scripts/make_hf_checkpoint.py --size tiny --out tests/fixtures/llama-chat-tiny
    python scripts/make_hf_checkpoint.py --size smollm2-135m --out /tmp/smollm2-135m-random

`tiny` (2 layers, hidden 32, 1k-token vocabulary) is the checkpoint the tests and
pipelines/hf-grpo.yaml's CI run use. `smollm2-135m` has SmolLM2-135M-Instruct's exact
architecture (LlamaForCausalLM, 30 layers, hidden 576, 9 query / 3 key-value heads,
intermediate 1536, vocabulary 49152, tied embeddings, rope_theta 100000): the benchmark
scripts/bench_hf_grpo.py builds it.
"""
import argparse
import json
import pathlib
import random

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# SmolLM2-135M-Instruct's chat template.
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SIZES = {
    "tiny": dict(vocab_size=1024, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024),
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         max_position_embeddings=8192),
}

WORDS = ("the a of to and in is how many what each she he they sold bought has had more "
         "than half twice total left per day week hour dollars apples clips friends money "
         "answer think step first then so equals minus plus times divided by number").split()


def corpus(vocab_size, seed=0):
    """Text to train the BPE on: English-like sentences with numbers, and (for large
    vocabularies) enough distinct pseudo-words for the merges to fill the vocabulary."""
    rng = random.Random(seed)
    lines = []
    for _ in range(2000):
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 15))]
        words.insert(rng.randrange(len(words)), str(rng.randint(0, 999)))
        lines.append(" ".join(words) + rng.choice([".", "?", "!"]))
    lines.append("<think> </think> <answer> </answer> ####")
    if vocab_size > 4096:
        letters = "abcdefghijklmnopqrstuvwxyz"
        pseudo = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9)))
                  for _ in range(vocab_size * 2)]
        for i in range(0, len(pseudo), 12):
            line = " ".join(pseudo[i:i + 12])
            lines.extend([line, line])
    return lines


def tokenizer(vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(vocab_size), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
        pad_token="<|im_end|>", unk_token="<|endoftext|>")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    size = SIZES[a.size]
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    tok = tokenizer(size["vocab_size"])
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(a.seed)
    config = LlamaConfig(
        rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, hidden_act="silu", **size)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    # One layout users have: the template inside tokenizer_config.json.
    jinja = out / "chat_template.jinja"
    if jinja.exists():
        config_path = out / "tokenizer_config.json"
        tok_config = json.loads(config_path.read_text())
        tok_config["chat_template"] = jinja.read_text()
        config_path.write_text(json.dumps(tok_config, indent=2) + "\n")
        jinja.unlink()
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {out}: {a.size}, {params / 1e6:.1f}M parameters, vocabulary {len(tok)}")


if __name__ == "__main__":
    main()
