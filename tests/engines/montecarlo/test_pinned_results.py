"""Every number the kernel writes is pinned: SHA-256 of the full per-fund arrays for a set of configs.

A model change must bump ``ENGINE_VERSION`` when it moves a result, and recompute these digests in the
same change (engine 2.0.0: shared market state, company quality, liquidation preferences, partial
recoveries, lognormal timing, company keys per stage, the financing ledger and yearly points): they fail on
any bit of any fund's result columns (``out``), J-curve (``j_curve``) or yearly points (``yearly``)
moving. Captured from the real ``simulate`` (threads, chunks and all) by wrapping the runner's kernel
call to keep a reference to the arrays it fills.

Bit-identity holds on one machine type: the digests depend on the platform's ``exp``/``log`` rounding, so a
different CPU or libm could legitimately need them recomputed (with the previous engine, not this one).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from fundmodel.engines.montecarlo import ENGINE_VERSION, load_config, runner, simulate
from fundmodel.engines.montecarlo.companies import PortfolioPlan
from fundmodel.engines.montecarlo.config import SimulationConfig

EXAMPLE_FUND: dict[str, Any] = json.loads(
    (Path(__file__).parents[3] / "examples" / "fund.json").read_text(encoding="utf-8")
)


@dataclass(frozen=True)
class Case:
    body: dict[str, Any]
    iterations: int
    seed: int


CASES: dict[str, Case] = {
    "example fund": Case(EXAMPLE_FUND, 5_000, 20261203),
    # One fund past a random-number block (4,096 funds), no recycling.
    "no recycling": Case({**EXAMPLE_FUND, "recyclingRatio": 0.0}, 4_097, 0),
    # Twice pro-rata on a deep reserve and the most recycling allowed, with seed checks buying most of
    # their round: follow-ons hit the round cap and run the pool dry, recycled cash is spent and returned.
    "high follow-on participation": Case(
        {
            **EXAMPLE_FUND,
            "followOnParticipation": 2.0,
            "reserveRatio": 0.7,
            "recyclingRatio": 0.5,
            "stageDistribution": {"seed": 0.5, "series_a": 0.5},
            "stageProfiles": {
                "seed": {"roundSize": 3.5e6, "checkSize": 3e6, "preMoneyValuation": 1e6},
                "series_a": {"preMoneyValuation": 8e6},
            },
        },
        3_001,
        2**64 - 1,
    ),
    # All checks in quarter 0, no hurdle, no catch-up.
    "pre-seed and seed at once": Case(
        {
            **EXAMPLE_FUND,
            "stageDistribution": {"pre_seed": 0.5, "seed": 0.5},
            "initialDeploymentYears": 0.0,
            "preferredReturn": None,
            "catchUp": 0.0,
        },
        2_500,
        7,
    ),
    # Later stages on a longer fund, past a progress chunk (65,536 funds).
    "late stages, two chunks": Case(
        {
            "fundSize": 500e6,
            "fundLifeYears": 12.0,
            "investmentPeriodYears": 4.0,
            "stageDistribution": {"series_b": 0.4, "series_c": 0.3, "growth": 0.3},
            "recyclingRatio": 0.1,
            "catchUp": 0.5,
        },
        70_001,
        123_456_789,
    ),
    # Follow-ons only into the graduates the fund rates in its top 30 %, with a noisy signal.
    "top-quantile follow-ons": Case(
        {**EXAMPLE_FUND, "followOnPolicy": "topQuantile", "followOnTopShare": 0.3}, 3_000, 5
    ),
    # No follow-ons and no shared or persistent risk: independent companies, as in engine 1.x.
    "no follow-ons, independent companies": Case(
        {
            **EXAMPLE_FUND,
            "followOnPolicy": "none",
            "riskModel": {
                "marketOnOutcomes": 0.0,
                "qualityOnOutcomes": 0.0,
                "marketOnExits": 0.0,
                "qualityOnExits": 0.0,
                "marketOnTiming": 0.0,
            },
        },
        2_000,
        17,
    ),
    # Companies resolve within a couple of years: funds wind up early (fees stop, recycled cash returns).
    "early wind-up": Case(
        {
            "fundSize": 50e6,
            "stageDistribution": {"seed": 1.0},
            "recyclingRatio": 0.2,
            "stageProfiles": {
                "seed": {
                    "graduationRate": 0.05,
                    "exitRate": 0.8,
                    "yearsToExit": 1.0,
                    "yearsToGraduate": 1.0,
                    "exitMultipleSigma": 1.5,
                    "exitMultipleCap": 40.0,
                }
            },
        },
        1_234,
        99,
    ),
}

# Hashes of engine 2.0.0 outputs: (out, j_curve, yearly).
PINNED_DIGESTS: dict[str, tuple[str, str, str]] = {
    "example fund": (
        "ebace8bd845cc393da22aff9249aea7c235fd7270736f37eeddaa7eb10756cbb",
        "06cd198c9b907e551d7db9130eab799d066bfba6314d5074f82fc9b6d37976db",
        "3652c95a81cd82a182dfbebde9ebe3605b9cfa6b8cb381b910a0d84cbbaf797c",
    ),
    "no recycling": (
        "935b397639296d2c355b68b0a80fe50ce4566791060c4cc842d9b4d5e85f4b4b",
        "610fd2836873b4a946fa9acafcb4d264a5b90c88358cf898ba81166d99d34ab6",
        "180dcae573709807d4d22fa117c50add088e7a94eb2df73c4f6a9d9a86e3c2ce",
    ),
    "high follow-on participation": (
        "102c0bdf2d145b45c16f8dd46d4fb274a14dba1738fc23173b2d03f769d52c8d",
        "5d40585a599adf3ab7dff45aee766196a1f550ae614f6f9c133aa2f4a0e5290e",
        "38c50dc25762246c5fb1c54356846c376241a8e86d1c28cd62a3e383220ea3f0",
    ),
    "pre-seed and seed at once": (
        "1050617ea081a18463a9f23408dd45a6aa042592296dbaca0ed68a38af8fb9b0",
        "33709aadbdc96ed6b1bf0edfd70e3de6c9312c613de8e997b9a34118913c5f89",
        "b7138f1884f94f4ca91b12404e27971755a3668d7ff7e1931058baea48cce83c",
    ),
    "late stages, two chunks": (
        "ff4dc14b02f868672aef5698d729280db9e88295a76f5e2e13af3d000356c24d",
        "9ec700bf1f0a589efe441a59032da2c6663f31cece40eb7cae4a37b4c2fb12b3",
        "4bfd0b40c5941562404f43acf1628fdc30cee4179041210fdce021ff1bb12f74",
    ),
    "top-quantile follow-ons": (
        "d4c905c07f0988fc24011a426260c6a0dc70979ab291f99a1ad2e450a4044652",
        "ecfbe5c6e0a6b15a3dcf2924f576a50836987676ff393138a807d1423d4c1ddd",
        "d7110469acaac1398d67f243ed45e55fa08f70d3db724411c3c830cbd6b1957b",
    ),
    "no follow-ons, independent companies": (
        "8522644440fee2aa4a32bec08f1be077300fb66e4c555d85d36bc0d3d458eb46",
        "32ddc62b40eb41038a1d53ececc4e52ccdd03075743c158cee5448fa249edc34",
        "167d7d3e3d40cf38335477fd1dc64904cbb3e692c68ae2c1afb0d3aaf98de908",
    ),
    "early wind-up": (
        "9fe9f651d034a3f1761bbac91fa63f559ef4c212fbd2b8728a776484d2a3c0b3",
        "3890ef7abca37bdba7f65af418224772c11576328ea5d4cafa99ae9db53fca1f",
        "c8e4224a7bac8adc1f4421615c7fa71f520c8278569a6c67382317ad0afacbc5",
    ),
}


def result_digests(body: dict[str, Any], iterations: int, seed: int, threads: int) -> tuple[str, str, str]:
    """SHA-256 of the ``out``, ``j_curve`` and ``yearly`` arrays one ``simulate`` call fills."""
    filled: dict[str, npt.NDArray[Any]] = {}
    run_kernel = runner._run_kernel

    def keeping_arrays(
        config: SimulationConfig,
        plan: PortfolioPlan,
        seed: int,
        first_fund: int,
        count: int,
        out: npt.NDArray[np.float64],
        j_curve: npt.NDArray[np.float32],
        yearly: npt.NDArray[np.float32],
    ) -> None:
        filled["out"] = out
        filled["j_curve"] = j_curve
        filled["yearly"] = yearly
        run_kernel(config, plan, seed, first_fund, count, out, j_curve, yearly)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(runner, "_run_kernel", keeping_arrays)
        simulate(load_config(body), iterations=iterations, seed=seed, threads=threads)
    return (
        hashlib.sha256(np.ascontiguousarray(filled["out"]).tobytes()).hexdigest(),
        hashlib.sha256(np.ascontiguousarray(filled["j_curve"]).tobytes()).hexdigest(),
        hashlib.sha256(np.ascontiguousarray(filled["yearly"]).tobytes()).hexdigest(),
    )


def test_the_engine_version_is_the_one_the_digests_were_taken_from() -> None:
    # A deliberate result change bumps ENGINE_VERSION and recomputes the digests in the same commit.
    assert ENGINE_VERSION == "2.0.0"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", list(CASES))
def test_results_are_bit_identical_to_engine_2_0_0(name: str, threads: int) -> None:
    case = CASES[name]
    out_digest, j_curve_digest, yearly_digest = result_digests(case.body, case.iterations, case.seed, threads)
    pinned_out, pinned_j_curve, pinned_yearly = PINNED_DIGESTS[name]
    assert out_digest == pinned_out, f"{name}: per-fund results moved"
    assert j_curve_digest == pinned_j_curve, f"{name}: J-curves moved"
    assert yearly_digest == pinned_yearly, f"{name}: yearly points moved"
