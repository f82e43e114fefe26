"""How composing a mail grows with hostile input: it must grow linearly.

For subjects and recipient display names of growing size (ASCII and
non-ASCII), it times `wire.unstructured` and `wire.addresses`, and a whole
acknowledgement for a subject of that size, and prints microseconds per
kilobyte of input; roughly constant figures mean linear work. As its last line
one JSON object. Usage: python bench/compose.py
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maild.respond import wire  # noqa: E402

SIZES = (1_000, 15_000, 150_000, 1_500_000)


def _seconds(work: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Print one row per input size and kind, then the JSON summary."""
    results: dict[str, dict[int, float]] = {}
    cases: dict[str, Callable[[str], object]] = {
        "subject": lambda text: wire.unstructured("Subject", text, limit=len(text)),
        "display-name": lambda text: wire.addresses("To", [(text, "anna@räksmörgås.se")]),
    }
    print(f"{'case':<24}{'input':>10}{'seconds':>12}{'µs per kB':>12}")
    for name, compose in cases.items():
        for alphabet in ("ascii", "non-ascii"):
            key = f"{name}/{alphabet}"
            results[key] = {}
            for size in SIZES:
                word = "Fel i kassan " if alphabet == "ascii" else "Räksmörgås ärende "
                text = (word * (size // len(word) + 1))[:size]
                seconds = _seconds(lambda text=text, compose=compose: compose(text))
                results[key][size] = seconds
                print(f"{key:<24}{size:>10}{seconds:>12.4f}{seconds / size * 1e9:>12.1f}")
    print(json.dumps({key: {str(size): round(value, 6) for size, value in row.items()}
                      for key, row in results.items()}))


if __name__ == "__main__":
    main()
