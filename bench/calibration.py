"""Calibration report: the default model's figures next to published ones, each with its source.

Count-based and dollar-based statistics are kept apart (a share of financings is not a share of dollars),
and each model figure is measured the way its source measured it: Carta's fund percentiles are within one
vintage (the model's funds of a middling market state), Correlation Ventures' financings are realized
outcomes (the example's portfolio followed until nearly every company has exited or failed). Every model
figure comes from a fixed-seed run of the engine, so the report is deterministic for a given engine
version; ``tests/docs/test_calibration_table.py`` keeps the table in docs/model.md ("Calibration against
published figures") equal to this script's output for its documented invocation.

Usage::

    python bench/calibration.py                  # JSON (machine-readable)
    python bench/calibration.py --markdown       # the Markdown table in docs/model.md
    python bench/calibration.py --update-docs    # rewrite that section of docs/model.md in place

``--iterations`` and ``--seed`` change the run (the documented table uses the defaults).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from fundmodel.engines.montecarlo import ENGINE_VERSION, SimulationResult, load_config, simulate
from fundmodel.stages import Stage

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fund.json"
MODEL_DOC = ROOT / "docs" / "model.md"
SECTION = "## Calibration against published figures"
DEFAULT_ITERATIONS = 10_000
DEFAULT_SEED = 2026
INVOCATION = "python bench/calibration.py --markdown"
MIDDLE_VINTAGE = 0.25
"""Funds whose market state is within this of 0 (about a fifth of them) stand for one middling vintage."""
RESOLVED_LIFE_YEARS = 25.0
"""Horizon at which nearly every company of the example has exited or failed (realized outcomes)."""
LATER_STAGE_RESERVE = 0.2
"""Reserve ratio of the later-stage scenarios: an assumption (see ``_scenarios``)."""
FEW_POINTS = 0.03
"""Issue 11's "within a few points" of Correlation Ventures' buckets: 3 percentage points either way."""

SOURCES: dict[str, str] = {
    "carta-funds": (
        "Carta, *VC Fund Performance Q3 2025* (December 2025, as reported by Venture Capital Journal and "
        "SaaStr): net TVPI of 2,835 US funds on Carta Fund Administration, vintages 2017-2025, most under "
        "$100M; 2017 vintage median 1.76x and 90th percentile 3.52x, 2018 vintage 1.38x and 3.07x. Marked "
        "values (NAV included) of funds 7-8 years old, not final multiples."
    ),
    "cambridge-vc": (
        "Cambridge Associates, *US Venture Capital Index and Selected Benchmark Statistics* (quarterly): "
        "median net TVPI of mature US VC vintages, institutional-quality funds; the range is the one "
        "docs/model.md cites for the defaults, not a single extracted figure."
    ),
    "correlation-count": (
        "Correlation Ventures (2014): US venture *financings* 2004-2013 (about 21,000, including failures) "
        "by realized multiple: 65 / 25 / 6 / 2.5 / 1 / 0.5 % for <1x / 1-5x / 5-10x / 10-20x / 20-50x / "
        ">=50x. A share of financings (count), dominated by early rounds."
    ),
    "correlation-dollars": (
        "Correlation Ventures, *Venture Capital - No, We're Not Normal* (September 2019; exits 2009-2018: "
        "51 % of dollars invested returned < 1x, under 4 % returned >= 10x) and *We're Still Not Normal* "
        "(July 2023; the decade to 2022: 37 % of dollars < 1x, under 4 % >= 10x). Shares of *dollars*, "
        "dominated by later rounds."
    ),
    "carta-cohort": (
        "Carta Data Minute (Peter Walker, February 2025): of 4,369 US startups founded in 2018 on Carta, "
        "36 % reached Series A, 15 % Series B, 4 % Series C and 1 % Series D or later (counts of "
        "companies; the founding cohort includes companies that never raised a priced seed, so the seed-to-A "
        "rate of seed-funded companies is somewhat higher, and a cohort seen after seven years has not "
        "finished its later rounds, so the later rates are lower bounds)."
    ),
    "carta-seed-to-a": (
        "Carta, *VC Fund Performance Q1 2024* (August 2024): 30.6 % of companies that raised a seed round "
        "in Q1 2018, and 15.4 % of the Q1 2022 cohort, raised a Series A within two years (counts)."
    ),
    "carta-timing": (
        "Carta, *State of Seed* (Winter 2025): time from seed to Series A, median 2.1 years and 75th "
        "percentile 3.4 years."
    ),
    "later-stage": (
        "Growth-equity and later-stage VC fund medians of about 1.5x-1.8x net, as summarized in issue 11 "
        "(Cambridge Associates growth-equity benchmarks and similar): a range, not one published figure."
    ),
    "none": (
        "No published figure in the sources checked: not for quartiles by fund size (issue 11 asks that a "
        "$1B fund with the example's check sizes keep a material share of funds below 1x and a quartile "
        "spread that does not collapse), nor for percentiles pooled over all vintages, nor for financings "
        "whose companies are still private, valued at their last round."
    ),
}


@dataclass(frozen=True)
class Row:
    group: str
    figure: str
    basis: str
    model: str
    published: str
    source: str
    verdict: str
    """"inside" / "below" / "above" the published range, or "no published figure"."""


def _multiple(value: float) -> str:
    return f"{value:.2f}x"


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def _verdict(value: float, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "no published figure"
    if value < low:
        return "below"
    if value > high:
        return "above"
    return "inside"


def _resolved(example: dict[str, Any]) -> dict[str, Any]:
    """The example with its horizon moved to ``RESOLVED_LIFE_YEARS`` and nothing else changed that the
    portfolio depends on: the step-down fee is spread over the longer life so that lifetime fees, hence
    investable capital, companies, checks and reserve, are the example's (and pairing by company key gives
    every company the same path); only what happens after year 10 is added."""
    life = float(example.get("fundLifeYears", 10.0))
    period = float(example.get("investmentPeriodYears", 5.0))
    step_down = float(example.get("managementFeeStepDownRate", 0.015))
    return {
        **example,
        "fundLifeYears": RESOLVED_LIFE_YEARS,
        "managementFeeStepDownRate": step_down * (life - period) / (RESOLVED_LIFE_YEARS - period),
    }


def _scenarios() -> dict[str, dict[str, Any]]:
    """The calibration scenarios. The later-stage funds reserve ``LATER_STAGE_RESERVE`` (an assumption:
    their ownership is small and their companies' later rounds large, so the early-stage 50 % default
    would leave most of the reserve uncalled while fees run on it); the ``...DefaultReserve`` runs show
    the same funds at the default."""
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    series_b = {"fundSize": 300e6, "stageDistribution": {"series_b": 1.0}}
    growth = {"fundSize": 1e9, "stageDistribution": {"growth": 1.0}}
    return {
        "example": example,
        "resolved": _resolved(example),
        "seriesB": {**series_b, "reserveRatio": LATER_STAGE_RESERVE},
        "growth": {**growth, "reserveRatio": LATER_STAGE_RESERVE},
        "seriesBDefaultReserve": series_b,
        "growthDefaultReserve": growth,
        "billion": {**example, "fundSize": 1e9},
    }


def build_report(iterations: int = DEFAULT_ITERATIONS, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    results = {
        name: simulate(load_config(body), iterations=iterations, seed=seed)
        for name, body in _scenarios().items()
    }
    runs = {name: result.to_json() for name, result in results.items()}
    rows: list[Row] = []
    rows += _fund_rows(runs["example"], results["example"])
    rows += _financing_rows(runs["resolved"], runs["example"])
    rows += _stage_rows(load_config(_scenarios()["example"]).resolved_stage_profiles())
    rows += _later_stage_rows(runs)
    rows += _large_fund_rows(runs["billion"], runs["example"])
    return {
        "engineVersion": ENGINE_VERSION,
        "iterations": iterations,
        "seed": seed,
        "companies": {name: run["capital"]["initialCompanies"] for name, run in runs.items()},
        "rows": [asdict(row) for row in rows],
    }


def _fund_rows(example: dict[str, Any], result: SimulationResult) -> list[Row]:
    tvpi = example["netTvpi"]
    group = "Fund level: examples/fund.json"
    rows = [
        Row(group, "net TVPI p50, all funds", "funds", _multiple(tvpi["p50"]),
            "about 1.5x-2.0x (Cambridge)", "cambridge-vc", _verdict(tvpi["p50"], 1.5, 2.0)),
    ]  # fmt: skip
    for level in ("p25", "p75", "p90"):
        rows.append(
            Row(group, f"net TVPI {level}, all funds", "funds", _multiple(tvpi[level]), "-", "none",
                "no published figure")
        )  # fmt: skip
    # Carta's percentiles are across the funds of one vintage, i.e. one market state: compare the funds
    # of a middling market, not the spread across all market states.
    middle = result.samples["netTvpi"][np.abs(result.samples["marketState"]) < MIDDLE_VINTAGE]
    share = middle.shape[0] / result.samples["netTvpi"].shape[0]
    label = f"within a middling vintage (market state within ±{MIDDLE_VINTAGE}, {_percent(share)} of funds)"
    published: list[tuple[int, str, float, float]] = [
        (50, "1.38x-1.76x (Carta, 2018 and 2017 vintages)", 1.38, 1.76),
        (90, "3.07x-3.52x (Carta, 2018 and 2017 vintages)", 3.07, 3.52),
    ]
    for percentile, text, low, high in published:
        value = float(np.percentile(middle, percentile))
        rows.append(
            Row(group, f"net TVPI p{percentile}, {label}", "funds", _multiple(value), text, "carta-funds",
                _verdict(value, low, high))
        )  # fmt: skip
    return rows


def _financing_rows(resolved: dict[str, Any], example: dict[str, Any]) -> list[Row]:
    """Realized outcomes (the ``resolved`` run) against Correlation Ventures, which counts realized ones;
    the example's own 10-year figures, with companies still alive at their last round's price, beside."""
    outcomes = resolved.get("dealOutcomes")
    if outcomes is None:
        return []
    group = (
        f"Financings (initial checks and follow-ons, all funds), realized: the example's portfolio "
        f"followed for {RESOLVED_LIFE_YEARS:.0f} years"
    )
    correlation = {"<1x": 0.65, "1-5x": 0.25, "5-10x": 0.06, "10-20x": 0.025, "20-50x": 0.01, ">=50x": 0.005}
    rows = []
    for bucket, share in correlation.items():
        value = outcomes["byCount"][bucket]
        tolerance = FEW_POINTS
        rows.append(
            Row(group, f"financings {bucket}", "count", _percent(value), _percent(share), "correlation-count",
                _verdict(value, share - tolerance, share + tolerance))
        )  # fmt: skip
    by_dollars = outcomes["byDollars"]
    lost = by_dollars["<1x"]
    rows.append(
        Row(group, "dollars returned < 1x", "dollars", _percent(lost), "37 %-51 %",
            "correlation-dollars", _verdict(lost, 0.37, 0.51))
    )  # fmt: skip
    tenfold = by_dollars["10-20x"] + by_dollars["20-50x"] + by_dollars[">=50x"]
    rows.append(
        Row(group, "dollars returned >= 10x", "dollars", _percent(tenfold), "under 4 %",
            "correlation-dollars", _verdict(tenfold, 0.0, 0.04))
    )  # fmt: skip
    at_horizon = example.get("dealOutcomes")
    if at_horizon is not None:
        shares = " / ".join(f"{at_horizon['byCount'][bucket] * 100:.1f}" for bucket in correlation)
        rows.append(
            Row(group, "at the 10-year horizon (alive companies at their last round): count by bucket, %",
                "count", shares, "-", "none", "no published figure")
        )  # fmt: skip
    return rows


def _stage_rows(profiles: dict[Stage, Any]) -> list[Row]:
    group = "Stage progression (model inputs: default stage profiles)"
    seed = profiles[Stage.SEED]
    series_a = profiles[Stage.SERIES_A]
    series_b = profiles[Stage.SERIES_B]
    sigma = float(getattr(seed, "timing_sigma", 0.0))
    median_years = float(seed.years_to_graduate)
    within_two_years = seed.graduation_rate * (
        NormalDist().cdf(math.log(2.0 / median_years) / sigma) if sigma > 0 else float(median_years <= 2.0)
    )
    upper_quartile_years = median_years * math.exp(NormalDist().inv_cdf(0.75) * sigma)
    return [
        Row(group, "seed companies reaching Series A", "count", _percent(seed.graduation_rate), "36 %",
            "carta-cohort", _verdict(seed.graduation_rate, 0.30, 0.42)),
        Row(group, "Series A companies reaching Series B", "count", _percent(series_a.graduation_rate),
            "about 42 % (15 / 36)", "carta-cohort", _verdict(series_a.graduation_rate, 0.36, 0.48)),
        Row(group, "Series B companies reaching Series C", "count", _percent(series_b.graduation_rate),
            "about 27 % (4 / 15)", "carta-cohort", _verdict(series_b.graduation_rate, 0.21, 0.33)),
        Row(group, "seed to Series A within 2 years", "count", _percent(within_two_years),
            "30.6 % (2018), 15.4 % (2022)", "carta-seed-to-a", _verdict(within_two_years, 0.154, 0.306)),
        Row(group, "seed to Series A, median years", "count", f"{median_years:.1f}", "2.1", "carta-timing",
            _verdict(median_years, 1.9, 2.3)),
        Row(group, "seed to Series A, 75th percentile years", "count", f"{upper_quartile_years:.1f}", "3.4",
            "carta-timing", _verdict(upper_quartile_years, 3.0, 3.8)),
    ]  # fmt: skip


def _later_stage_rows(runs: dict[str, dict[str, Any]]) -> list[Row]:
    group = "Later stages"
    rows = []
    for label, name in (("Series B only", "seriesB"), ("growth only", "growth")):
        run = runs[name]
        median = run["netTvpi"]["p50"]
        companies = run["capital"]["initialCompanies"]
        reserve = f"{LATER_STAGE_RESERVE * 100:.0f} % reserve"
        rows.append(
            Row(group, f"{label} fund ({companies} companies, {reserve}): net TVPI p50", "funds",
                _multiple(median), "1.5x-1.8x", "later-stage", _verdict(median, 1.5, 1.8))
        )  # fmt: skip
        default = runs[f"{name}DefaultReserve"]
        median = default["netTvpi"]["p50"]
        companies = default["capital"]["initialCompanies"]
        rows.append(
            Row(group, f"{label} fund ({companies} companies, default 50 % reserve): net TVPI p50", "funds",
                _multiple(median), "not below 1.2x (issue 11)", "later-stage",
                _verdict(median, 1.2, math.inf))
        )  # fmt: skip
    return rows


def _large_fund_rows(billion: dict[str, Any], example: dict[str, Any]) -> list[Row]:
    group = "Dispersion of large funds: examples/fund.json at $1B, same check sizes"
    below_one = 1.0 - billion["probTvpiAtLeast"]["1"]
    spread = billion["netTvpi"]["p75"] - billion["netTvpi"]["p25"]
    example_spread = example["netTvpi"]["p75"] - example["netTvpi"]["p25"]
    note = "none"
    return [
        Row(group, "P(net TVPI < 1x)", "funds", _percent(below_one), "-", note,
            "no published figure"),
        Row(group, "net TVPI p75 - p25", "funds",
            f"{_multiple(spread)} ($100M: {_multiple(example_spread)})", "-", note, "no published figure"),
    ]  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    numbers = {key: position for position, key in enumerate(SOURCES, start=1)}
    lines = [
        f"Generated by `{INVOCATION}` (engine {report['engineVersion']}, {report['iterations']:,} simulated "
        f"funds per scenario, seed {report['seed']}); a test keeps it equal to the script's output.",
    ]
    group = None
    for row in report["rows"]:
        if row["group"] != group:
            group = row["group"]
            lines += ["", f"**{group}**", "", "| figure | basis | model | published | verdict | source |",
                      "|---|---|---|---|---|---|"]  # fmt: skip
        references = ", ".join(f"[{numbers[key]}]" for key in row["source"].split())
        lines.append(
            f"| {row['figure']} | {row['basis']} | {row['model']} | {row['published']} | {row['verdict']} "
            f"| {references} |"
        )
    lines += ["", "Sources:", ""]
    lines += [f"{numbers[key]}. {text}" for key, text in SOURCES.items()]
    return "\n".join(lines) + "\n"


def update_docs(text: str, table: str) -> str:
    """``docs/model.md`` with the generated part of the calibration section replaced by ``table``."""
    start = text.index(SECTION) + len(SECTION)
    begin = text.index(BEGIN, start)
    end = text.index(END, begin)
    return text[: begin + len(BEGIN)] + "\n" + table + text[end:]


BEGIN = "<!-- calibration-table: begin (bench/calibration.py --update-docs) -->"
END = "<!-- calibration-table: end -->"


def documented_table(text: str) -> str:
    start = text.index(SECTION)
    begin = text.index(BEGIN, start) + len(BEGIN)
    return text[begin : text.index(END, begin)].lstrip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="print the Markdown table")
    output.add_argument("--update-docs", action="store_true", help="rewrite the table in docs/model.md")
    arguments = parser.parse_args(argv)
    report = build_report(arguments.iterations, arguments.seed)
    if arguments.update_docs:
        text = MODEL_DOC.read_text(encoding="utf-8")
        MODEL_DOC.write_text(update_docs(text, markdown(report)), encoding="utf-8")
    elif arguments.markdown:
        sys.stdout.write(markdown(report))
    else:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
