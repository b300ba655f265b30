#!/usr/bin/env python3
"""Writes small word-problem files in the layouts users already have, made up here (no
download): pipelines/data/gsm8k-style.jsonl (GSM8K's layout: `question`, and `answer` with
the worked solution ending `#### N`) and pipelines/data/math-style.jsonl (MATH's layout:
`problem`, and `solution` with the result in `\\boxed{}`). pipelines/hf-grpo.yaml reads
the first; the tests read both.

    python scripts/make_word_problems.py
"""
import json
import pathlib
import random
from fractions import Fraction

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "pipelines" / "data"
NAMES = ["Natalia", "Weng", "Betty", "Julie", "James", "Albert", "Mark", "Ken", "Alexis", "Tina"]
ITEMS = ["clips", "apples", "stamps", "marbles", "books", "cookies", "pencils", "shells"]


def gsm8k_item(rng):
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b, c = rng.randint(2, 60), rng.randint(2, 40), rng.randint(2, 9)
    kind = rng.randrange(4)
    if kind == 0:
        total = a + b
        q = f"{name} had {a} {item} and got {b} more. How many {item} does {name} have now?"
        s = f"{name} has {a} + {b} = <<{a}+{b}={total}>>{total} {item} now.\n#### {total}"
    elif kind == 1:
        each = a * c
        total = each - b if each > b else each + b
        op = "-" if each > b else "+"
        verb = "gives away" if op == "-" else "finds"
        q = (f"{name} buys {c} boxes of {item} with {a} {item} in each box, then {verb} "
             f"{b} {item}. How many {item} does {name} have?")
        s = (f"The boxes hold {c} * {a} = <<{c}*{a}={each}>>{each} {item}.\n"
             f"Then {name} has {each} {op} {b} = <<{each}{op}{b}={total}>>{total} {item}.\n"
             f"#### {total}")
    elif kind == 2:
        half = a * 2
        total = half + a
        q = (f"{name} sold {half} {item} in April, and then half as many in May. How many "
             f"{item} did {name} sell altogether in April and May?")
        s = (f"{name} sold {half}/2 = <<{half}/2={a}>>{a} {item} in May.\n"
             f"{name} sold {half}+{a} = <<{half}+{a}={total}>>{total} {item} altogether.\n"
             f"#### {total}")
    else:
        price = rng.randint(2, 25)
        total = price * a * 10
        q = (f"{name} earns ${price} an hour and works {a * 10} hours. How many dollars does "
             f"{name} earn?")
        s = f"{name} earns {price} * {a * 10} = <<{price}*{a * 10}={total}>>{total:,} dollars.\n#### {total:,}"
    return {"question": q, "answer": s}


def latex(f):
    if f.denominator == 1:
        return str(f.numerator)
    sign = "-" if f < 0 else ""
    return f"{sign}\\frac{{{abs(f.numerator)}}}{{{f.denominator}}}"


def math_item(rng):
    kind = rng.randrange(3)
    if kind == 0:
        x, y = Fraction(rng.randint(1, 9), rng.randint(2, 9)), Fraction(rng.randint(1, 9), rng.randint(2, 9))
        r = x + y
        p = f"Compute ${latex(x)} + {latex(y)}$. Express your answer as a common fraction."
        s = f"Over a common denominator, ${latex(x)} + {latex(y)} = \\boxed{{{latex(r)}}}$."
    elif kind == 1:
        a, b = rng.randint(2, 12), rng.randint(1, 30)
        c = a * rng.randint(1, 12) + b
        x = Fraction(c - b, a)
        p = f"Solve for $x$: ${a}x + {b} = {c}$."
        s = f"Subtracting {b} gives ${a}x = {c - b}$, so $x = \\boxed{{{latex(x)}}}$."
    else:
        n = rng.randint(2, 12)
        p = f"What is the sum of the first ${n}$ positive odd integers?"
        s = f"The sum of the first $n$ odd integers is $n^2$, so the answer is $\\boxed{{{n * n}}}$."
    return {"problem": p, "solution": s}


def write(path, items):
    seen, lines = set(), []
    for item in items:
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            lines.append(json.dumps(item, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} records to {path}")


def main():
    rng = random.Random(0)
    OUT.mkdir(parents=True, exist_ok=True)
    write(OUT / "gsm8k-style.jsonl", [gsm8k_item(rng) for _ in range(240)])
    write(OUT / "math-style.jsonl", [math_item(rng) for _ in range(60)])


if __name__ == "__main__":
    main()
