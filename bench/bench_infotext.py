"""Parse time of the A1111 "parameters" text (engine/infotext.py), median of several runs.

    13-pair line that is no full parameters line          goal < 50 ms (the old regex: 32 s)
    40-pair line that is no full parameters line          goal < 50 ms (the old regex: never)
    1,000-pair line, same shape                           goal < 50 ms
    1 MB texts: one plain line, many lines, JSON and quote edge cases   goal < 1 s each

The "no full parameters line" shape (pairs, then a segment that is no pair) is what made the
old nested-quantifier regex backtrack exponentially. The 1 MB texts check that any input stays
linear: the adversarial ones repeat fragments that would make a careless scanner quadratic.

Run: .venv/bin/python bench/bench_infotext.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdstudio.engine.infotext import parse_infotext  # noqa: E402

MB = 1_000_000
REPEATS = 5


def non_matching(pairs: int) -> str:
    return "a prompt\n" + ", ".join(f"Key {i}: value {i}" for i in range(pairs)) + ", (junk"


def megabyte(unit: str) -> str:
    return unit * (MB // len(unit))


def real_text() -> str:
    prompt = "masterpiece, best quality, (detailed face:1.2), <lora:add_detail:0.5>, " * 20
    line = (
        'Steps: 25, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 512x768, Lora hashes: "a: 1, b: 2", '
        'Hashes: {"vae": "735e4c3a44", "model": "6ce0161689"}'
    )
    return f"{prompt}\nNegative prompt: lowres, blurry\n{line}\n"


CASES = [
    ("13-pair non-matching line", non_matching(13), 50),
    ("40-pair non-matching line", non_matching(40), 50),
    ("1,000-pair non-matching line", non_matching(1000), 50),
    ("typical A1111 text (2 KB)", real_text(), 5),
    ("1 MB: one line of text", "x" * MB, 1000),
    ("1 MB: 'a: b, ' pairs", megabyte("a: b, "), 1000),
    ("1 MB: short lines", megabyte("a cat, a: 1\n"), 1000),
    ("1 MB: unclosed JSON per pair", megabyte("K: [, "), 1000),
    ("1 MB: unclosed quote per pair", megabyte('K: "a, '), 1000),
    ("1 MB: backslashes in a quote", 'K: "' + "\\" * MB, 1000),
    ("1 MB: 'Negative prompt:' lines", megabyte("Negative prompt: x\n"), 1000),
    ("1 MB: typical texts back to back", megabyte(real_text()), 1000),
]


def median_ms(text: str) -> float:
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        parse_infotext(text)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def main() -> int:
    for name, text, goal_ms in CASES:
        ms = median_ms(text)
        verdict = "ok" if ms < goal_ms else "OVER"
        print(f"{name:38s} {len(text):>9,d} chars  {ms:9.2f} ms   goal < {goal_ms} ms  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
