#!/usr/bin/env python3
"""Writes a randomly initialised HuggingFace checkpoint directory (Llama or Qwen2), as a
user's checkpoint looks: config.json, model.safetensors (bf16), tokenizer.json (a byte-level BPE
trained here), tokenizer_config.json with SmolLM2-Instruct's ChatML chat template, and
generation_config.json. Nothing is downloaded: the architecture is written out below and
the weights are transformers' `from_config` initialisation.

    python scripts/make_hf_checkpoint.py --size tiny --out tests/fixtures/llama-chat-tiny
    python scripts/make_hf_checkpoint.py --size smollm2-135m --out /tmp/smollm2-135m-random
    python scripts/make_hf_checkpoint.py --size qwen2.5-0.5b --out /tmp/qwen2.5-0.5b-random

`tiny` (2 layers, hidden 32, 1k-token vocabulary) is the checkpoint the tests and
pipelines/hf-grpo.yaml's CI run use. `smollm2-135m` has SmolLM2-135M-Instruct's exact
architecture (LlamaForCausalLM, 30 layers, hidden 576, 9 query / 3 key-value heads,
intermediate 1536, vocabulary 49152, tied embeddings, rope_theta 100000): the benchmark
scripts/bench_hf_grpo.py builds it. `qwen2.5-0.5b` has Qwen2.5-0.5B-Instruct's exact
architecture (Qwen2ForCausalLM, 24 layers, hidden 896, 14 query / 2 key-value heads with
biases on the q/k/v projections, intermediate 4864, vocabulary 151936, tied embeddings,
rope_theta 1000000, rms_norm_eps 1e-6) and Qwen2.5's ChatML template with its default
system prompt: the LoRA benchmark at that size uses it (494M parameters; the BPE fills as
much of the vocabulary as its corpus allows, as Qwen's 151,665 tokens leave the last rows
of its 151,936 unused).
"""
import argparse
import json
import pathlib
import random

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config,
                          Qwen2ForCausalLM)

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# SmolLM2-135M-Instruct's chat template.
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Qwen2.5-Instruct's template without its tool-calling branches.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# name: (architecture, its config's fields, chat template)
SIZES = {
    "tiny": ("llama", dict(vocab_size=1024, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=1024), CHAT_TEMPLATE),
    "smollm2-135m": ("llama", dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                                   num_hidden_layers=30, num_attention_heads=9,
                                   num_key_value_heads=3, max_position_embeddings=8192),
                     CHAT_TEMPLATE),
    "qwen2.5-0.5b": ("qwen2", dict(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                                   num_hidden_layers=24, num_attention_heads=14,
                                   num_key_value_heads=2, max_position_embeddings=32768),
                     QWEN_CHAT_TEMPLATE),
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
    arch, size, template = SIZES[a.size]
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    tok = tokenizer(size["vocab_size"])
    tok.chat_template = template
    torch.manual_seed(a.seed)
    tokens = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id, hidden_act="silu", tie_word_embeddings=True)
    if arch == "qwen2":
        config = Qwen2Config(rope_theta=1000000.0, rms_norm_eps=1e-6, use_sliding_window=False,
                             **tokens, **size)
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    else:
        config = LlamaConfig(rope_theta=100000.0, rms_norm_eps=1e-5, **tokens, **size)
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
