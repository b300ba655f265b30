#!/usr/bin/env python3
"""An external verifier for r1flow's `command` reward.

r1flow writes one JSON object per line on stdin:
    {"prompt": "...", "completion": "...", "answer": "..." | 12 | null}
and reads one number per line on stdout, in the same order.

This one scores 1.0 when the text inside the completion's single <answer>...</answer>
block equals the reference answer (after trimming), else 0.0.

`--fail MODE` makes it misbehave, for r1flow's own tests of how failures are reported:
crash (exit 3 after the first score), hang (sleep after the first score), short (one
score too few), extra (one too many), garbage / nan (a non-number for the second sample).
"""

import json
import sys
import time


def answer_of(completion):
    if completion.count("<answer>") != 1 or completion.count("</answer>") != 1:
        return None
    start = completion.index("<answer>") + len("<answer>")
    end = completion.index("</answer>")
    return completion[start:end].strip() if end >= start else None


def main():
    fail = sys.argv[sys.argv.index("--fail") + 1] if "--fail" in sys.argv else None
    scores = []
    for line in sys.stdin:
        if not line.strip():
            continue
        sample = json.loads(line)
        reference = sample.get("answer")
        given = answer_of(sample["completion"])
        ok = reference is not None and given is not None and given == str(reference).strip()
        scores.append("1.0" if ok else "0.0")

    if fail == "short":
        scores = scores[:-1]
    elif fail == "extra":
        scores.append("0.0")
    elif fail == "garbage" and len(scores) > 1:
        scores[1] = "oops"
    elif fail == "nan" and len(scores) > 1:
        scores[1] = "nan"

    for i, score in enumerate(scores):
        if i == 1 and fail == "crash":
            sys.stdout.flush()
            print("verifier crashed on purpose", file=sys.stderr)
            sys.exit(3)
        if i == 1 and fail == "hang":
            sys.stdout.flush()
            time.sleep(600)
        print(score)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
