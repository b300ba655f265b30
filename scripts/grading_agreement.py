#!/usr/bin/env python3
"""How r1flow's math grader (`accuracy` with `mode: math`) agrees with math-verify.

Reads the labelled set (tests/data/grading/labelled.jsonl: one
{"prediction", "reference", "equal", "form"} per line), grades every pair with
math-verify (`verify(parse(gold), parse(prediction))`, gold first: math-verify is not
symmetric), writes its verdicts as JSONL, and prints its agreement with the labels and
its speed (verdicts per second on one thread, timing the verify calls alone, and
parse + verify).

With --r1flow FILE (the output of `r1flow score`, one {"score", "verdict", "reason"} per
input line, in order) it also prints r1flow's agreement with the labels and with
math-verify, and every disagreement. The input for `r1flow score` is written by
--write-score-input FILE: one {"completion": "<answer>PREDICTION</answer>",
"answer": REFERENCE} per case, to be graded by an accuracy reward with `mode: math`:

    python3 scripts/grading_agreement.py --write-score-input /tmp/score_input.jsonl
    r1flow score --input /tmp/score_input.jsonl --manifest M --reward NAME > /tmp/r1flow.jsonl
    python3 scripts/grading_agreement.py --r1flow /tmp/r1flow.jsonl

Needs `pip install math-verify` (not for --write-score-input).
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABELLED = ROOT / "tests" / "data" / "grading" / "labelled.jsonl"

# Math delimiters math-verify's LaTeX extraction looks for (an escaped `\$` is a dollar).
DELIMITED = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed|\\fbox")
# LaTeX commands with their environment names and \text{} arguments, before looking for prose.
COMMANDS = re.compile(r"\\(?:text|mbox|mathrm|textbf)\{[^}]*\}|\\[a-zA-Z]+(?:\{[a-zA-Z*]*\})?")
# Prose: a run of four letters.
PROSE = re.compile(r"[a-zA-Z]{4,}")


def read_cases(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def for_math_verify(text, gold):
    """What math-verify is given: a bare LaTeX answer wrapped in `$…$` (its LaTeX
    extraction needs delimiters); text that already has delimiters, or prose around its
    answer (a prediction), as it is."""
    if DELIMITED.search(text):
        return text
    if not gold and PROSE.search(COMMANDS.sub(" ", text)):
        return text
    return f"${text}$"


def math_verify_verdicts(cases):
    from math_verify import parse, verify

    verdicts = []
    verify_seconds = 0.0
    started = time.perf_counter()
    for case in cases:
        gold = parse(for_math_verify(case["reference"], gold=True))
        pred = parse(for_math_verify(case["prediction"], gold=False))
        t = time.perf_counter()
        equal = bool(verify(gold, pred))
        verify_seconds += time.perf_counter() - t
        verdicts.append(equal)
    total_seconds = time.perf_counter() - started
    return verdicts, verify_seconds, total_seconds


def read_r1flow(path, count):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if len(rows) != count:
        sys.exit(f"{path}: {len(rows)} lines for {count} cases")
    return [row.get("verdict") == "correct" for row in rows], rows


def describe(i, case):
    return (
        f"line {i + 1} [{case['form']}] reference {case['reference']!r} "
        f"prediction {case['prediction']!r} (label: {'equal' if case['equal'] else 'different'})"
    )


def agreement(name_a, a, name_b, b, cases, show):
    same = sum(x == y for x, y in zip(a, b))
    print(f"{name_a} vs {name_b}: {same}/{len(a)} agree ({100.0 * same / len(a):.1f} %)")
    if show:
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                print(f"  {describe(i, cases[i])}: {name_a} {x}, {name_b} {y}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labelled", default=str(LABELLED), help="the labelled set")
    parser.add_argument(
        "--out", default="/tmp/math_verify_verdicts.jsonl", help="where math-verify's verdicts go"
    )
    parser.add_argument("--r1flow", help="r1flow score's output for the same cases, in order")
    parser.add_argument(
        "--write-score-input", metavar="FILE", help="write the input of `r1flow score` and stop"
    )
    args = parser.parse_args()
    cases = read_cases(args.labelled)

    if args.write_score_input:
        with open(args.write_score_input, "w", encoding="utf-8") as f:
            for case in cases:
                row = {
                    "completion": f"<answer>{case['prediction']}</answer>",
                    "answer": case["reference"],
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"wrote {len(cases)} lines to {args.write_score_input}")
        return

    labels = [case["equal"] for case in cases]
    mv, verify_seconds, total_seconds = math_verify_verdicts(cases)
    with open(args.out, "w", encoding="utf-8") as f:
        for i, (case, verdict) in enumerate(zip(cases, mv)):
            row = {"line": i + 1, "form": case["form"], "equal": case["equal"], "math_verify": verdict}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases from {args.labelled}; math-verify's verdicts in {args.out}")
    print(
        f"math-verify speed (one thread): {len(cases) / verify_seconds:.0f} verdicts/s timing "
        f"verify() alone, {len(cases) / total_seconds:.0f} verdicts/s with parse()"
    )
    agreement("math-verify", mv, "labels", labels, cases, show=not args.r1flow)
    if args.r1flow:
        r1flow, _ = read_r1flow(args.r1flow, len(cases))
        agreement("r1flow", r1flow, "labels", labels, cases, show=True)
        agreement("r1flow", r1flow, "math-verify", mv, cases, show=True)


if __name__ == "__main__":
    main()
