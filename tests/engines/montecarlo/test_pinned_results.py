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
        "3d411921e799caa9ab374c697bdb4b410ea867decc0f0e8e5d462e408ba79c6f",
        "de92caf06a2ef113383826e28644d165af90e0d7dad549af06697adccbc126fc",
        "05ace39092b68f18fe5a80998d8b17823bf4aee079804e699cbfb8bfe471a5f8",
    ),
    "no recycling": (
        "7def2895eb1891cd6d4d1198e481289f15582ab6ff1d8be64a76065663d6eca1",
        "381c94418b6ba7d82343d0a134c74f5aca99b8f1e0e0a965a686400c9f417739",
        "dc992540d8b826731891fd69d8ecb75a85cc93e301a06cd71dc11a819e89a753",
    ),
    "high follow-on participation": (
        "8b4e87c03fd3021c43386de2e1029cc7e0d88cb8be9158c6b7ad4c18e3f9c4b0",
        "b14d34c91ae33f2f4bfc22c32df8a4a389cbd2e4e84c29633dcdced24c435e69",
        "26e10f791da394ce3c0adc0ebc4fbbce5e34d56573622884cd84ea831d1cd915",
    ),
    "pre-seed and seed at once": (
        "0f9b5afb7cb8b9aa04cc8b8530ae7b04c36e7beeb8b55f66660b8b018b5bb6f1",
        "421090acf2cc3c59c58ac9a423544726e4d0d2003fc2aba9dcceee074f8b326d",
        "c17e16a2981bbf85ec339af95d78f222948209d27e62592d64756c923b65a0d3",
    ),
    "late stages, two chunks": (
        "e45b5169453106edad4f9eafdad063a773c8b1471d20cf5a63923373160ec4c4",
        "122fefc4e8938eac723d371284f8e1e2fa59afb44d1a1cc1bab01687ed354610",
        "86a0051b61b41e28c0bbcc7377d2f964d81f5911dcf9202007e02620b417e111",
    ),
    "top-quantile follow-ons": (
        "8728ac470a4ccfc51d40878a6788c7c6c2f21afbe027c66dcadb76edf2283fdc",
        "b3148f9fb9b3b7b5933515767553029fc6f78a3865ae056eefadeb6a3d1df694",
        "4a468462415c91070410153492bd89fe2c8c481390034a2704e2d3bd3be89359",
    ),
    "no follow-ons, independent companies": (
        "040d6518602b3a2f9cf9b0dc4fc51265a07158073a856b8b23b9d522c618d39e",
        "1651ce69986fb3ff2cb3cc00cf937b44f9c3297cfbecaab1efb4210ed07ee462",
        "a4504504a6d927728c50400318f763f28e1237677662d254c5b2c0fbb727707a",
    ),
    "early wind-up": (
        "cbd5db20bb20f0e34ca547ec7cb51117b4db5802a4cc99d25ba4fc5d6ce100af",
        "9791bf482eea61785320a8337a2cb166264925caa801db535f427d84517c7243",
        "dbe10470816a5a50b1bf48a7847f1f25efd2a3385f576cb9a975f0a6cd56c3ac",
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
