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

LoRA (issue 26): `--arms full,lora` measures GRPO twice per side, training every weight and
then rank-`--lora-r` adapters (alpha 2r, dropout 0) on every linear layer — r1flow's
`lora: {r, alpha, target_modules: [all-linear]}` against TRL with PEFT's
`LoraConfig(r, lora_alpha, target_modules="all-linear")`. `--size qwen2.5-0.5b` runs on a
checkpoint with Qwen2.5-0.5B-Instruct's exact architecture (494M parameters, built the
same way). `--no-generate` leaves out the plain generation comparison.

    cargo build --release --features bench --bin bench_hf
    pip install torch transformers trl peft datasets
    python scripts/bench_hf_grpo.py [--threads 2] [--steps 4] [--checkpoint DIR]
    python scripts/bench_hf_grpo.py --arms full,lora --no-generate
    python scripts/bench_hf_grpo.py --size qwen2.5-0.5b --arms lora --no-generate
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
            temperature=1.0, beta=a.beta, learning_rate=1e-6, loss_type="grpo",
            max_steps=a.steps, logging_steps=1, save_strategy="no", report_to="none",
            gradient_checkpointing=a.gradient_checkpointing == "on",
            reward_weights=[1.0, 0.5], disable_tqdm=True, dataloader_num_workers=0,
            model_init_kwargs={"dtype": torch.float32})
        peft = None
        if a.arms == "lora":
            from peft import LoraConfig
            peft = LoraConfig(r=a.lora_r, lora_alpha=2 * a.lora_r, lora_dropout=0.0,
                              target_modules="all-linear", task_type="CAUSAL_LM")
        trainer = GRPOTrainer(model=str(a.checkpoint), reward_funcs=[accuracy, format_reward],
                              args=config, train_dataset=dataset, callbacks=[StepTimes()],
                              peft_config=peft)
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
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
              "device": a.device, "trainable_parameters": trainable}
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


SIZES = {"smollm2-135m": "SmolLM2-135M", "qwen2.5-0.5b": "Qwen2.5-0.5B"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", choices=["trl", "generate"], help=argparse.SUPPRESS)
    ap.add_argument("--rust", default=str(ROOT / "target/release/bench_hf"))
    ap.add_argument("--size", choices=sorted(SIZES), default="smollm2-135m",
                    help="the architecture of the random checkpoint built when --checkpoint "
                         "has none")
    ap.add_argument("--checkpoint", type=pathlib.Path,
                    help="default: r1flow-bench-SIZE in the temporary directory")
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
    ap.add_argument("--beta", type=float, default=0.0,
                    help="the KL coefficient on both sides (above 0 the reference model runs: "
                         "with LoRA the base without its adapters, otherwise a second copy)")
    ap.add_argument("--numerics", choices=["native", "portable"], default="native",
                    help="r1flow's numeric profile on the CPU: native (gemm, the faster) or "
                         "portable (the same bytes on every x86-64 machine)")
    ap.add_argument("--arms", default="full",
                    help="comma-separated: full (every weight trained), lora (adapters)")
    ap.add_argument("--lora-r", type=int, default=16, help="the LoRA arm's rank")
    ap.add_argument("--no-generate", action="store_true",
                    help="leave out the plain generation comparison")
    a = ap.parse_args()
    if a.checkpoint is None:
        a.checkpoint = pathlib.Path(tempfile.gettempdir()) / f"r1flow-bench-{a.size}"
    if a.side == "trl":
        return side_trl(a)
    if a.side == "generate":
        return side_generate(a)
    arms = a.arms.split(",")
    if not arms or any(arm not in ("full", "lora") for arm in arms):
        sys.exit(f"--arms takes full and/or lora, not {a.arms}")

    if not (a.checkpoint / "config.json").is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts/make_hf_checkpoint.py"),
                        "--size", a.size, "--out", str(a.checkpoint)], check=True)
    env = thread_env(a.threads)
    shared = ["--steps", str(a.steps), "--prompts", str(a.prompts),
              "--generations", str(a.generations), "--completion", str(a.completion),
              "--gradient-checkpointing", a.gradient_checkpointing, "--beta", str(a.beta)]
    me = [sys.executable, __file__, "--checkpoint", str(a.checkpoint),
          "--threads", str(a.threads)]
    grpo = {}
    for arm in arms:
        rank = a.lora_r if arm == "lora" else 0
        r = measured([a.rust, "grpo", "--model", str(a.checkpoint), "--data", str(DATA),
                      "--lora", str(rank), "--numerics", a.numerics] + shared, env)
        t = measured(me + ["--side", "trl", "--arms", arm, "--lora-r", str(a.lora_r)] + shared,
                     env)
        grpo[arm] = (r, t)
        print(json.dumps({"arm": arm, "r1flow": r, "trl": t}), flush=True)
    if not a.no_generate:
        gen = ["--batch", str(a.batch), "--new-tokens", str(a.new_tokens)]
        r_gen = measured([a.rust, "generate", "--model", str(a.checkpoint)] + gen, env)
        t_gen = measured(me + ["--side", "generate"] + gen, env)

    t_any = next(iter(grpo.values()))[1]
    print(f"{SIZES[a.size]} architecture (random weights, f32 compute), {a.threads} threads "
          f"each, torch {t_any['torch']}; gradient checkpointing: {a.gradient_checkpointing} "
          f"on both sides; r1flow's numeric profile: {a.numerics}")
    split = lambda r: (f" (generation {r['generation_s']:.2f} s, update {r['update_s']:.2f} s)"
                       if "generation_s" in r else "")
    for arm, (r, t) in grpo.items():
        what = (f"LoRA r {a.lora_r}, alpha {2 * a.lora_r}, all linear layers "
                f"({t['trainable_parameters'] / 1e6:.2f}M trainable in TRL + PEFT)"
                if arm == "lora" else "every weight trained")
        print(f"GRPO step, {what}: {a.prompts} prompts x {a.generations} completions, "
              f"{a.completion} tokens, beta {a.beta:g}; mean of {r['steps']} steps after a "
              f"warm-up:")
        print(f"  r1flow {r['step_s']:.2f} s{split(r)}, completions of "
              f"{r['completion_length']:.1f} tokens, peak RSS {gb(r['peak_rss_bytes'])}")
        print(f"  TRL{' + PEFT' if arm == 'lora' else ''} {t['step_s']:.2f} s{split(t)}, "
              f"peak RSS {gb(t['peak_rss_bytes'])}")
        print(f"  ratios (above 1: r1flow faster / smaller): step "
              f"{t['step_s'] / r['step_s']:.2f}x, peak RSS "
              f"{t['peak_rss_bytes'] / r['peak_rss_bytes']:.2f}x (r1flow's is "
              f"{r['peak_rss_bytes'] / t['peak_rss_bytes']:.2f} of TRL's)")
    if "full" in grpo and "lora" in grpo:
        (rf, tf), (rl, tl) = grpo["full"], grpo["lora"]
        print(f"LoRA step against full fine-tuning: r1flow {rf['step_s'] / rl['step_s']:.2f}x "
              f"faster, TRL {tf['step_s'] / tl['step_s']:.2f}x; peak RSS r1flow "
              f"{gb(rf['peak_rss_bytes'])} -> {gb(rl['peak_rss_bytes'])}, TRL "
              f"{gb(tf['peak_rss_bytes'])} -> {gb(tl['peak_rss_bytes'])}")
    if not a.no_generate:
        print(f"generation (batch {a.batch}, {a.new_tokens} new tokens, KV cache): r1flow "
              f"{r_gen['tokens_per_s']:.1f} tok/s, transformers {t_gen['tokens_per_s']:.1f} "
              f"tok/s, {r_gen['tokens_per_s'] / t_gen['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
