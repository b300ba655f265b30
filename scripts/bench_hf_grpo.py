#!/usr/bin/env python3
"""r1flow against what users run today, on the same real-size checkpoint, machine and
threads: GRPO seconds per step against TRL's GRPOTrainer, generation tokens/s against
transformers' `generate`, and the peak RSS of each GRPO process. Prints the three ratios.

The checkpoint has SmolLM2-135M-Instruct's exact architecture (LlamaForCausalLM, 30
layers, hidden 576, 9 query / 3 key-value heads, intermediate 1536, vocabulary 49152, tied
embeddings, rope_theta 100000; weights in bf16) with random weights, built here by
scripts/make_hf_checkpoint.py (nothing is downloaded). Both sides train in float32 on the
CPU with the same prompts (GSM8K-layout word problems through the checkpoint's chat
template, with its default system prompt: about 70 tokens), 4 prompts x 4 completions of at most 32 tokens,
temperature 1, beta 0, learning rate 1e-6, one micro-batch per step, and gradient
checkpointing on both sides (TRL GRPOConfig's default; `--gradient-checkpointing off`
turns it off on both); TRL keeps its other defaults. Random
weights rarely emit EOS, so nearly every completion runs to 32 tokens on both sides.
Each measurement is its own process; its peak RSS is the kernel's (wait4's ru_maxrss).

    cargo build --release --features bench --bin bench_hf
    pip install torch transformers trl datasets
    python scripts/bench_hf_grpo.py [--threads 2] [--steps 4] [--checkpoint DIR]
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "pipelines" / "data" / "gsm8k-style.jsonl"
QUESTION = ("Natalia sold clips to 48 of her friends in April, and then she sold half as "
            "many clips in May. How many clips did Natalia sell altogether in April and May?")


def measured(cmd, env):
    """Runs `cmd`; returns its last stdout line as JSON and its peak RSS in bytes."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{err[-4000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_bytes"] = usage.ru_maxrss * 1024
    return result


def thread_env(threads):
    env = dict(os.environ)
    for name in ["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"]:
        env[name] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


# --- the reference side, run in child processes of this script -------------------------

def answer_of(text):
    found = re.findall(r"<answer>(.*?)</answer>", text, re.S)
    return found[-1].strip() if len(found) == 1 else None


def side_trl(a):
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(a.threads)
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    dataset = Dataset.from_list([
        {"prompt": [{"role": "user", "content": r["question"]}],
         "reference": r["answer"].split("####")[-1].strip().replace(",", "")}
        for r in rows])

    def accuracy(completions, reference, **_):
        return [1.0 if answer_of(c[0]["content"]) == ref else 0.0
                for c, ref in zip(completions, reference)]

    def format_reward(completions, **_):
        pattern = re.compile(r"^<think>.*?</think>\s*<answer>.*?</answer>$", re.S)
        return [1.0 if pattern.match(c[0]["content"].strip()) else 0.0 for c in completions]

    times = []

    class StepTimes(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.start)

    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out, use_cpu=a.device == "cpu", bf16=False, seed=7,
            per_device_train_batch_size=a.prompts * a.generations,
            num_generations=a.generations, max_completion_length=a.completion,
            temperature=1.0, beta=0.0, learning_rate=1e-6, loss_type="grpo",
            max_steps=a.steps, logging_steps=1, save_strategy="no", report_to="none",
            gradient_checkpointing=a.gradient_checkpointing == "on",
            reward_weights=[1.0, 0.5], disable_tqdm=True, dataloader_num_workers=0,
            model_init_kwargs={"dtype": torch.float32})
        trainer = GRPOTrainer(model=str(a.checkpoint), reward_funcs=[accuracy, format_reward],
                              args=config, train_dataset=dataset, callbacks=[StepTimes()])
        generation = []
        inner = getattr(trainer, "_generate_and_score_completions", None)
        if inner is not None:
            def timed(*args, **kwargs):
                start = time.perf_counter()
                result = inner(*args, **kwargs)
                generation.append(time.perf_counter() - start)
                return result
            trainer._generate_and_score_completions = timed
        trainer.train()
    steps = times[1:]  # the first step is a warm-up, as on r1flow's side
    result = {"steps": len(steps), "step_s": sum(steps) / len(steps),
              "gradient_checkpointing": config.gradient_checkpointing,
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "device": a.device}
    if a.device == "cuda":
        result["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
    if len(generation) == len(times):
        gen = generation[1:]
        result["generation_s"] = sum(gen) / len(gen)
        result["update_s"] = result["step_s"] - result["generation_s"]
    print(json.dumps(result))


def side_generate(a):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.checkpoint)
    model = AutoModelForCausalLM.from_pretrained(a.checkpoint, dtype=torch.float32).eval()
    prompt = tok.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False,
                                     add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    ids = ids.repeat(a.batch, 1)
    mask = torch.ones_like(ids)

    def run(new_tokens):
        return model.generate(input_ids=ids, attention_mask=mask, do_sample=True,
                              temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, use_cache=True,
                              pad_token_id=tok.pad_token_id)

    with torch.inference_mode():
        run(4)
        start = time.perf_counter()
        out = run(a.new_tokens)
        seconds = time.perf_counter() - start
    tokens = (out.shape[1] - ids.shape[1]) * a.batch
    print(json.dumps({"batch": a.batch, "prompt_tokens": ids.shape[1], "generated_tokens": tokens,
                      "seconds": seconds, "tokens_per_s": tokens / seconds}))


# --- the comparison ----------------------------------------------------------------------

def gb(n):
    return f"{n / 1e9:.2f} GB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", choices=["trl", "generate"], help=argparse.SUPPRESS)
    ap.add_argument("--rust", default=str(ROOT / "target/release/bench_hf"))
    ap.add_argument("--checkpoint", type=pathlib.Path,
                    default=pathlib.Path(tempfile.gettempdir()) / "r1flow-bench-smollm2-135m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where TRL's side runs (scripts/gpu-check.sh asks for cuda)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--completion", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--gradient-checkpointing", choices=["on", "off"], default="on")
    a = ap.parse_args()
    if a.side == "trl":
        return side_trl(a)
    if a.side == "generate":
        return side_generate(a)

    if not (a.checkpoint / "config.json").is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts/make_hf_checkpoint.py"),
                        "--size", "smollm2-135m", "--out", str(a.checkpoint)], check=True)
    env = thread_env(a.threads)
    shared = ["--steps", str(a.steps), "--prompts", str(a.prompts),
              "--generations", str(a.generations), "--completion", str(a.completion),
              "--gradient-checkpointing", a.gradient_checkpointing]
    me = [sys.executable, __file__, "--checkpoint", str(a.checkpoint),
          "--threads", str(a.threads)]
    r_grpo = measured([a.rust, "grpo", "--model", str(a.checkpoint), "--data", str(DATA)]
                      + shared, env)
    t_grpo = measured(me + ["--side", "trl"] + shared, env)
    gen = ["--batch", str(a.batch), "--new-tokens", str(a.new_tokens)]
    r_gen = measured([a.rust, "generate", "--model", str(a.checkpoint)] + gen, env)
    t_gen = measured(me + ["--side", "generate"] + gen, env)

    print(f"SmolLM2-135M architecture (random weights, f32 compute), {a.threads} threads each, "
          f"torch {t_grpo['torch']}; gradient checkpointing: r1flow "
          f"{r_grpo['gradient_checkpointing']}, TRL {t_grpo['gradient_checkpointing']}")
    print(f"GRPO step ({a.prompts} prompts x {a.generations} completions, {a.completion} "
          f"tokens, beta 0), mean of {r_grpo['steps']} steps after a warm-up:")
    split = lambda r: (f" (generation {r['generation_s']:.2f} s, update {r['update_s']:.2f} s)"
                       if "generation_s" in r else "")
    print(f"  r1flow {r_grpo['step_s']:.2f} s{split(r_grpo)}, completions of "
          f"{r_grpo['completion_length']:.1f} tokens")
    print(f"  TRL    {t_grpo['step_s']:.2f} s{split(t_grpo)}")
    print(f"generation (batch {a.batch}, {a.new_tokens} new tokens, KV cache): "
          f"r1flow {r_gen['tokens_per_s']:.1f} tok/s, transformers {t_gen['tokens_per_s']:.1f} tok/s")
    print(f"peak RSS of the GRPO process: r1flow {gb(r_grpo['peak_rss_bytes'])}, "
          f"TRL {gb(t_grpo['peak_rss_bytes'])}")
    print("ratios (above 1: r1flow faster / smaller):")
    print(f"  GRPO step speed   {t_grpo['step_s'] / r_grpo['step_s']:.2f}x")
    print(f"  generation speed  {r_gen['tokens_per_s'] / t_gen['tokens_per_s']:.2f}x")
    print(f"  peak RSS          {t_grpo['peak_rss_bytes'] / r_grpo['peak_rss_bytes']:.2f}x "
          f"(r1flow {'<=' if r_grpo['peak_rss_bytes'] <= t_grpo['peak_rss_bytes'] else '>'} TRL)")


if __name__ == "__main__":
    main()
