#!/usr/bin/env python3
"""Loads tests/fixtures/qwen2-tiny/r1flow-export (written by r1flow:
`cargo test --test model_parity -- --ignored write_export_fixture`) with `transformers`
as Qwen2ForCausalLM and records its logits, so the Rust test can check the reverse
direction without Python.
"""
import json
import pathlib

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

DIR = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/qwen2-tiny/r1flow-export"
TEXT = "<think>12+30</think><answer>42</answer>"


def main():
    model = AutoModelForCausalLM.from_pretrained(DIR).eval()
    assert type(model).__name__ == "Qwen2ForCausalLM", type(model)
    tok = AutoTokenizer.from_pretrained(DIR)
    ids = tok(TEXT, return_tensors="pt")["input_ids"]
    assert tok.decode(ids[0]) == TEXT
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    save_file({"logits": logits.float().contiguous()}, str(DIR / "transformers_logits.safetensors"))
    out = {"ids": ids.tolist(), "transformers_class": type(model).__name__}
    (DIR / "transformers_expected.json").write_text(json.dumps(out) + "\n")
    print(out)


if __name__ == "__main__":
    main()
