#!/usr/bin/env python3
"""Writes pipelines/data/math-forms.jsonl: MATH-layout problems ({"problem", "solution"},
the answer in the solution's last \\boxed{}) whose answers span the forms `mode: math`
grades — integers, fractions, roots, pi, percentages, expressions, equations, intervals,
sets, tuples, matrices, units. Seeded; run again to get the same file.

    python3 scripts/make_math_forms.py
"""

import json
import random
from fractions import Fraction
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "pipelines" / "data" / "math-forms.jsonl"


def frac(f: Fraction) -> str:
    if f.denominator == 1:
        return str(f.numerator)
    sign = "-" if f < 0 else ""
    return f"{sign}\\frac{{{abs(f.numerator)}}}{{{f.denominator}}}"


def problems(rng: random.Random):
    for _ in range(6):
        a, b, c = rng.randint(2, 9), rng.randint(1, 20), rng.randint(21, 99)
        x = Fraction(c - b, a)
        yield (f"Solve for $x$: ${a}x + {b} = {c}$.",
               f"Subtracting {b} gives ${a}x = {c - b}$, so $x = \\boxed{{{frac(x)}}}$.")
    for _ in range(4):
        p, q = rng.randint(1, 9), rng.randint(2, 9)
        r, s = rng.randint(1, 9), rng.randint(2, 9)
        total = Fraction(p, q) + Fraction(r, s)
        yield (f"Compute $\\frac{{{p}}}{{{q}}} + \\frac{{{r}}}{{{s}}}$. Express your answer as a common fraction.",
               f"Over a common denominator the sum is $\\boxed{{{frac(total)}}}$.")
    for _ in range(3):
        k = rng.choice([2, 3, 5, 6, 7])
        m = rng.randint(2, 5)
        yield (f"Simplify $\\sqrt{{{k * m * m}}}$.",
               f"Since ${k * m * m} = {m}^2 \\cdot {k}$, $\\sqrt{{{k * m * m}}} = \\boxed{{{m}\\sqrt{{{k}}}}}$.")
    for _ in range(3):
        r = rng.randint(2, 9)
        yield (f"What is the area of a circle of radius ${r}$? Express your answer in terms of $\\pi$.",
               f"The area is $\\pi r^2 = \\boxed{{{r * r}\\pi}}$.")
    for _ in range(3):
        part, whole = rng.randint(1, 19), 20
        yield (f"What percent of ${whole}$ is ${part}$?",
               f"$\\frac{{{part}}}{{{whole}}} = {Fraction(part * 100, whole)}\\%$, so the answer is $\\boxed{{{float(Fraction(part * 100, whole)):g}\\%}}$.")
    for _ in range(3):
        a, b = rng.randint(2, 6), rng.randint(1, 9)
        yield (f"Expand $(x + {b})({a}x - {b})$.",
               f"Multiplying out, $\\boxed{{{a}x^2 + {a * b - b}x - {b * b}}}$.")
    for _ in range(3):
        a, b = rng.randint(1, 5), rng.randint(6, 12)
        yield (f"For which $x$ is $(x - {a})(x - {b}) \\le 0$? Give your answer in interval notation.",
               f"The product is at most zero between the roots: $\\boxed{{[{a}, {b}]}}$.")
    for _ in range(3):
        a = rng.randint(1, 6)
        b = a + rng.randint(1, 6)
        yield (f"Find all real solutions of $x^2 - {a + b}x + {a * b} = 0$.",
               f"It factors as $(x - {a})(x - {b}) = 0$, so the solutions are $\\boxed{{\\{{{a}, {b}\\}}}}$.")
    for _ in range(3):
        a, b = rng.randint(-5, 5), rng.randint(-5, 5)
        yield (f"The line $y = 2x + {b - 2 * a}$ passes through the point with $x = {a}$. What is that point?",
               f"At $x = {a}$, $y = {b}$: the point is $\\boxed{{({a}, {b})}}$.")
    for _ in range(2):
        a, b, c, d = (rng.randint(0, 5) for _ in range(4))
        yield (f"Compute $2\\begin{{pmatrix}} {a} & {b} \\\\ {c} & {d} \\end{{pmatrix}}$.",
               f"Doubling each entry, $\\boxed{{\\begin{{pmatrix}} {2 * a} & {2 * b} \\\\ {2 * c} & {2 * d} \\end{{pmatrix}}}}$.")
    for _ in range(3):
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        yield (f"A rectangle is ${a}$ cm by ${b}$ cm. What is its area?",
               f"The area is ${a} \\cdot {b} = \\boxed{{{a * b} \\text{{ cm}}^2}}$.")
    for _ in range(2):
        a = rng.randint(2, 9)
        yield (f"Solve for $y$ in terms of $x$: $y - {a}x = {a}$.",
               f"Adding ${a}x$ gives $\\boxed{{y = {a}x + {a}}}$.")


def main() -> None:
    rng = random.Random(24)
    lines = [json.dumps({"problem": p, "solution": s}) for p, s in problems(rng)]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} problems to {OUT}")


if __name__ == "__main__":
    main()
