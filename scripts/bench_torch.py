#!/usr/bin/env python3
"""PyTorch (eager mode, float32, CPU) baseline for benches/bench_model.rs: the same
architecture (Qwen2 via transformers, with its default `sdpa` attention, as users run
it), presets, batch and sequence lengths. Runs the Rust benchmark too and prints
r1flow/PyTorch ratios side by side.

    cargo build --release --features bench --bin bench_model
    python scripts/bench_torch.py [--rust target/release/bench_model] [--preset tiny]
"""
import argparse
import json
import os
import subprocess
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

# Keep in sync with crates/core/src/architecture/preset.rs and benches/bench_model.rs.
PRESETS = {
    "tiny": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, intermediate_size=512, max_position_embeddings=1024),
    "small": dict(hidden_size=320, num_hidden_layers=8, num_attention_heads=8,
                  num_key_value_heads=2, intermediate_size=1024, max_position_embeddings=2048),
}
VOCAB = 384
TRAIN_BATCH, TRAIN_SEQ = 8, 128
PROMPT_LEN, NEW_TOKENS = 16, 64
# Best of REPEATS measurements (other processes share the CPU); same in the Rust bench.
REPEATS = 3


def model_for(preset):
    cfg = Qwen2Config(vocab_size=VOCAB, rope_theta=10000.0, rms_norm_eps=1e-6,
                      tie_word_embeddings=True, **PRESETS[preset])
    torch.manual_seed(0)
    return Qwen2ForCausalLM(cfg).float()


def bench_train(model, steps):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.tensor([[(r * 31 + t * 7) % (VOCAB - 8) + 7 for t in range(TRAIN_SEQ)]
                        for r in range(TRAIN_BATCH)])

    def step():
        logits = model(input_ids=ids).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    best = 0.0
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        best = max(best, steps * TRAIN_BATCH * TRAIN_SEQ / (time.perf_counter() - t))
    return best


def bench_generate(model, batch):
    return max(generate_once(model, batch) for _ in range(REPEATS))


@torch.no_grad()
def generate_once(model, batch):
    model.eval()
    gen = torch.Generator().manual_seed(1)
    ids = torch.tensor([[(r * 13 + t * 5) % (VOCAB - 8) + 7 for t in range(PROMPT_LEN)]
                        for r in range(batch)])
    t = time.perf_counter()
    mask = torch.ones_like(ids)
    out = model(input_ids=ids, attention_mask=mask, use_cache=True)
    past = out.past_key_values
    logits = out.logits[:, -1]
    for _ in range(NEW_TOKENS):
        nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)
        mask = torch.cat([mask, torch.ones_like(nxt)], 1)
        out = model(input_ids=nxt, attention_mask=mask, past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
    return batch * NEW_TOKENS / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rust", default="target/release/bench_model")
    ap.add_argument("--preset", action="append")
    ap.add_argument("--backend", action="append", help="r1flow CPU backend(s) to run")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, help="threads for both (torch and rayon)")
    a = ap.parse_args()
    env = dict(os.environ)
    if a.threads:
        torch.set_num_threads(a.threads)
        env["RAYON_NUM_THREADS"] = str(a.threads)
    presets = a.preset or ["tiny", "small"]

    cmd = [a.rust, "--json", "--steps", str(a.steps), "--repeats", str(REPEATS)]
    for p in presets:
        cmd += ["--preset", p]
    for b in a.backend or []:
        cmd += ["--backend", b]
    rust = [json.loads(line) for line in subprocess.run(
        cmd, check=True, capture_output=True, text=True, env=env).stdout.splitlines() if line.startswith("{")]

    torch_figs = {}
    for p in presets:
        m = model_for(p)
        torch_figs[(p, "train")] = bench_train(m, a.steps)
        for b in (8, 32):
            torch_figs[(p, f"generate_b{b}")] = bench_generate(m, b)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'backend':8} {'preset':6} {'what':12} {'r1flow':>10} {'pytorch':>10} {'ratio':>6}")
    for r in rust:
        t = torch_figs[(r["preset"], r["what"])]
        print(f"{r['backend']:8} {r['preset']:6} {r['what']:12} {r['tokens_per_s']:10.0f} "
              f"{t:10.0f} {r['tokens_per_s'] / t:6.2f}")


if __name__ == "__main__":
    main()
