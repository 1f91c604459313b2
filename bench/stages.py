"""Times ``parse_stage_distribution`` on a mixed corpus and prints JSON (mean, p50, p99 in microseconds).

The corpus mixes canonical names, alias spellings and unknown names, 3 to 6 entries per distribution, the way
API traffic does during a rollout. Two regimes are reported:

* ``steady``: the same corpus called repeatedly, the normal state of a long-running service (the bounded memo
  of non-exact spellings is warm);
* ``cold``: every call sees spellings never seen before (unique case/separator variants and unique unknown
  names), so the matching rule and the edit-distance suggestions run every time.

Usage: ``python bench/stages.py [--calls N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from collections.abc import Callable

from fundmodel.stages import Stage, normalize_stage, parse_stage_distribution
from fundmodel.stages.alias_table import alias_table
from fundmodel.stages.key_plans import key_plans
from fundmodel.stages.normalizer import _match_by_key  # the normalizer's memo: no public way to empty it
from fundmodel.stages.spellings import forget_spellings

UNKNOWN_NAMES = ("seris a", "venture", "Series Z", "bridge", "mezz", "sed", "growht", "IPO", "late")


def build_corpus(rng: random.Random, size: int) -> list[dict[str, float]]:
    table = alias_table()
    canonical = [stage.value for stage in Stage]
    aliases = [spelling for spellings in table.aliases.values() for spelling in spellings]
    corpus = []
    for _ in range(size):
        entries = rng.randint(3, 6)
        names: dict[str, float] = {}
        while len(names) < entries:
            pick = rng.random()
            if pick < 0.5:
                name = rng.choice(canonical)
            elif pick < 0.85:
                name = rng.choice(aliases)
            else:
                name = rng.choice(UNKNOWN_NAMES)
            names[name] = 0.0
        share = 1.0 / len(names)
        corpus.append(dict.fromkeys(names, share))
    return corpus


def cold_variant(name: str, serial: int) -> str:
    """A spelling of ``name`` that has never been seen: separators and case changed, or a unique typo."""
    if normalize_stage(name).canonical is None:
        return f"{name} {serial}"
    return name.upper().replace("_", f"{' ' * (1 + serial % 3)}") + " " * (serial % 7)


def time_calls(corpus: list[dict[str, float]], call: Callable[[dict[str, float]], object]) -> list[float]:
    samples = []
    clock = time.perf_counter_ns
    for distribution in corpus:
        start = clock()
        call(distribution)
        samples.append((clock() - start) / 1000.0)
    return samples


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "calls": len(samples),
        "mean_us": round(statistics.fmean(ordered), 3),
        "p50_us": round(ordered[len(ordered) // 2], 3),
        "p99_us": round(ordered[int(len(ordered) * 0.99)], 3),
        "max_us": round(ordered[-1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    corpus = build_corpus(rng, 1000)
    steady_corpus = [corpus[i % len(corpus)] for i in range(args.calls)]
    time_calls(steady_corpus[:20_000], parse_stage_distribution)  # warm-up
    steady = summarize(time_calls(steady_corpus, parse_stage_distribution))

    cold_calls = min(args.calls, 20_000)
    cold_corpus = [
        {cold_variant(name, serial * 8 + i): w for i, (name, w) in enumerate(d.items())}
        for serial, d in enumerate(steady_corpus[:cold_calls])
    ]
    _match_by_key.cache_clear()
    forget_spellings()
    key_plans().forget()
    cold = summarize(time_calls(cold_corpus, parse_stage_distribution))

    print(
        json.dumps(
            {
                "benchmark": "parse_stage_distribution",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "entries_per_call": "3-6",
                "mix": {"canonical": 0.5, "alias": 0.35, "unknown": 0.15},
                "steady": steady,
                "cold": cold,
                "target": {"mean_us": 2.5, "p99_us": 10.0},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
