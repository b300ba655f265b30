#!/usr/bin/env python3
"""Checks a LoRA adapter r1flow exported (`export` with `merge: false`) against `peft`.

Loads the transformers base checkpoint, applies the adapter directory with
`peft.PeftModel.from_pretrained`, and compares its logits and greedy tokens with the
merged model r1flow exported (`export`, `merge: true`, loaded by transformers): the
same function, so the logits agree to float32 rounding. Also checks that the adapter
changes the base's logits (a test that passes with an adapter of zeros proves nothing).

    python3 scripts/check_peft_adapter.py --base tests/fixtures/qwen2-tiny/hf \
        --adapter EXPORT_DIR --merged MERGED_EXPORT_DIR [--tolerance 1e-4]

With `--write-adapter DIR` it instead saves an adapter made by `peft` itself on the base
(`all-linear`, r 4, lora_B drawn at random so that it changes the model; seeded), for the
other direction: r1flow imports it as a model's `adapter:` and exports the merged model,
which this script then checks the same way.

Prints one JSON object: max_abs_diff (peft vs merged), adapter_effect (peft vs base),
greedy token ids and texts from peft; exits 1 when the logits differ by more than the
tolerance or greedy tokens differ. Used by tests/it/lora_export.rs.
"""
import argparse
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = ["Q: 2 + 3 =\nA: <think>", "Hello world, 12 + 30 = 42.", "a"]


def load(path):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model.eval()


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def greedy(model, ids, tokens, eos):
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=eos,
        )
    return out[0, ids.shape[1]:].tolist()


def write_adapter(base, out):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(load(base), config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    model.save_pretrained(out)
    print(json.dumps({"written": out}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the transformers base checkpoint")
    parser.add_argument("--adapter", help="the PEFT adapter directory")
    parser.add_argument("--merged", help="r1flow's merged export")
    parser.add_argument("--write-adapter", help="save an adapter made by peft here, and stop")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--prompt", action="append", help="prompts (default: three)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    if args.write_adapter:
        write_adapter(args.base, args.write_adapter)
        return 0
    if not (args.adapter and args.merged):
        parser.error("--adapter and --merged are required (or --write-adapter)")

    tokenizer = AutoTokenizer.from_pretrained(args.base)
    eos = tokenizer.eos_token_id
    base = load(args.base)
    adapted = PeftModel.from_pretrained(load(args.base), args.adapter).eval()
    merged = load(args.merged)
    assert isinstance(adapted, PeftModel), type(adapted)

    max_diff = 0.0
    effect = 0.0
    greedy_ids, greedy_texts, mismatches = [], [], []
    for prompt in args.prompt or PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        peft_logits = logits_of(adapted, ids)
        max_diff = max(max_diff, (peft_logits - logits_of(merged, ids)).abs().max().item())
        effect = max(effect, (peft_logits - logits_of(base, ids)).abs().max().item())
        peft_tokens = greedy(adapted, ids, args.max_new_tokens, eos)
        merged_tokens = greedy(merged, ids, args.max_new_tokens, eos)
        if peft_tokens != merged_tokens:
            mismatches.append({"prompt": prompt, "peft": peft_tokens, "merged": merged_tokens})
        greedy_ids.append(peft_tokens)
        greedy_texts.append(tokenizer.decode(peft_tokens, skip_special_tokens=True))

    report = {
        "max_abs_diff": max_diff,
        "tolerance": args.tolerance,
        "adapter_effect": effect,
        "greedy_ids": greedy_ids,
        "greedy_texts": greedy_texts,
        "greedy_mismatches": mismatches,
        "peft_class": type(adapted).__name__,
    }
    print(json.dumps(report))
    ok = max_diff <= args.tolerance and not mismatches and effect > args.tolerance
    if not ok:
        print(
            f"FAIL: max abs diff {max_diff:.3e} (tolerance {args.tolerance:.0e}), "
            f"adapter effect {effect:.3e}, {len(mismatches)} greedy mismatches",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
