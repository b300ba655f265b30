#!/usr/bin/env python3
"""PyTorch (eager mode, float32, CPU; transformers' default `sdpa` attention, as users
run it) version of one GRPO step at the quickstart's sizes, next to
benches/bench_grpo.rs: 4 prompts x 8 completions sampled with a KV cache, rewards, then
log-probs of the completions, the clipped surrogate loss (num_iterations 1, so the
old policy is the current one detached, as in TRL), backward, global-norm clipping and
AdamW. The same Qwen2 `tiny` architecture, prompt length and completion lengths as the
Rust run measured: a batch is generated, and trained on, at the length of its longest
completion (r1flow's mean of that per step), as both r1flow and TRL pad a batch to its
longest completion, so both sides do the same work. Prints seconds per phase and r1flow's speed relative to
PyTorch (PyTorch seconds / r1flow seconds: above 1 means r1flow is faster).

    cargo build --release --features bench --bin bench_grpo
    python scripts/bench_grpo_torch.py [--rust target/release/bench_grpo] [--steps 8]
"""
import argparse
import json
import subprocess
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from bench_torch import PRESETS, VOCAB

PROMPTS, GROUP = 4, 8
# "Q: Calculate 3 + 5 + 7.\nA: <think>" in r1flow's byte tokenizer (one token a byte).
PROMPT_LEN = 34


def step_once(model, opt, new_tokens, gen):
    rows = PROMPTS * GROUP
    prompt = torch.randint(7, VOCAB - 1, (PROMPTS, PROMPT_LEN), generator=gen)
    ids = prompt.repeat_interleave(GROUP, 0)

    t0 = time.perf_counter()
    model.eval()
    with torch.no_grad():
        mask = torch.ones_like(ids)
        out = model(input_ids=ids, attention_mask=mask, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
        generated = []
        for _ in range(new_tokens):
            nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)
            generated.append(nxt)
            mask = torch.cat([mask, torch.ones_like(nxt)], 1)
            out = model(input_ids=nxt, attention_mask=mask, past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1]
    completion = torch.cat(generated, 1)
    t1 = time.perf_counter()
    # Rewards: a rule score per completion (cheap on both sides).
    rewards = (completion[:, 0] % 2).float()
    grouped = rewards.view(PROMPTS, GROUP)
    adv = ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)).view(-1)
    t2 = time.perf_counter()
    model.train()
    seq = torch.cat([ids, completion], 1)
    logits = model(input_ids=seq).logits[:, PROMPT_LEN - 1:-1]
    logp = torch.log_softmax(logits, -1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    ratio = torch.exp(logp - logp.detach())
    per_token = -torch.min(ratio * adv[:, None], torch.clamp(ratio, 0.8, 1.2) * adv[:, None])
    loss = per_token.mean(1).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rust", default="target/release/bench_grpo")
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    rust = json.loads(subprocess.run([a.rust, "--json", "--steps", str(a.steps)], check=True,
                                     capture_output=True, text=True).stdout.splitlines()[-1])
    new_tokens = max(1, round(rust["completion_length_max"]))

    cfg = Qwen2Config(vocab_size=VOCAB, rope_theta=10000.0, rms_norm_eps=1e-6,
                      tie_word_embeddings=True, **PRESETS["tiny"])
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).float()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    gen = torch.Generator().manual_seed(1)
    step_once(model, opt, new_tokens, gen)  # warm-up, as the Rust side leaves out step 1
    times = [step_once(model, opt, new_tokens, gen) for _ in range(a.steps - 1)]
    torch_s = [sum(t[i] for t in times) / len(times) for i in range(3)]

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"{PROMPTS}x{GROUP} completions of {new_tokens} tokens")
    print(f"{'phase':11} {'r1flow s':>9} {'pytorch s':>9} {'speed':>6}")
    names = ["generation", "rewards", "update"]
    keys = ["generation_s", "reward_s", "update_s"]
    for name, key, t in zip(names, keys, torch_s):
        speed = f"{t / rust[key]:6.2f}" if rust[key] > 0 else "     -"
        print(f"{name:11} {rust[key]:9.5f} {t:9.5f} {speed}")
    print(f"{'step':11} {rust['step_s']:9.5f} {sum(torch_s):9.5f} {sum(torch_s) / rust['step_s']:6.2f}")


if __name__ == "__main__":
    main()
