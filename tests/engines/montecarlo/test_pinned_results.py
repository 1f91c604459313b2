"""Every number the kernel writes is pinned: SHA-256 of the full per-fund arrays for a set of configs.

The kernel's restructuring (issue 15) promised no behaviour change, and the next model changes must bump
``ENGINE_VERSION`` when they move a result: these digests fail on any bit of any fund's 18 result columns
(``out``) or J-curve (``j_curve``) moving. Captured from the real ``simulate`` (threads, chunks and all) by
wrapping the runner's kernel call to keep a reference to the arrays it fills.

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

# Hashes of engine 1.0.1 outputs, computed at commit 394594ab1aa1c3ee5037bdd65592d4edec10b791 (the engine
# before the kernel was split into phases) with that commit's own code: (out, j_curve).
PINNED_DIGESTS: dict[str, tuple[str, str]] = {
    "example fund": (
        "062078c103ef856232654054643b46cad7b8dbb0e567160cb9df8538066fb05e",
        "942f78fe391e2e78dce30fd17ad61ea49cabcbdce88df633cbacd9ead4fc021e",
    ),
    "no recycling": (
        "a0db07b094709a92c52dbe78ad09a712aa1055476852d15942b3e3296f19ed07",
        "bde0d6d095d61ca5d32ec61460da08daa79a6324e58f99dc29223b3bb8970ad1",
    ),
    "high follow-on participation": (
        "1b8f36377dbeb354d31b5607131d6b063e21457bdbaadf56e2f203bfd944f185",
        "389ac40948ffa4ebd15d1ac2f583c088729665d5b691873a3d43f6a488dc2194",
    ),
    "pre-seed and seed at once": (
        "3cf4bde3eb6a8b20c2a4e9f485b45b36d9a9aff52dc62cb0eb30d07703834f1c",
        "baf2b78799b08fe9d9c58627aca4a116998101cf5c9b6624e740de2777f8b007",
    ),
    "late stages, two chunks": (
        "db2d4a39289a2ab8327be5ede966dc6b2a8359aaa61aecf2b33d93313cb31727",
        "69fb6a2bf60bc792a15bf4a1e9db6e3ef2461fb3560b3c60396976bbf4a301d4",
    ),
    "early wind-up": (
        "c9dd44a91519ba8054b39a831e578b909f414e30c74a52811bb62e8a8a46a310",
        "0399bf57f823f874dc82fdb1242ef6926547647d88bf556c7d2218bfd8225d45",
    ),
}


def result_digests(body: dict[str, Any], iterations: int, seed: int, threads: int) -> tuple[str, str]:
    """SHA-256 of the ``out`` and ``j_curve`` arrays one ``simulate`` call fills."""
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
    ) -> None:
        filled["out"] = out
        filled["j_curve"] = j_curve
        run_kernel(config, plan, seed, first_fund, count, out, j_curve)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(runner, "_run_kernel", keeping_arrays)
        simulate(load_config(body), iterations=iterations, seed=seed, threads=threads)
    return (
        hashlib.sha256(np.ascontiguousarray(filled["out"]).tobytes()).hexdigest(),
        hashlib.sha256(np.ascontiguousarray(filled["j_curve"]).tobytes()).hexdigest(),
    )


def test_the_engine_version_is_the_one_the_digests_were_taken_from() -> None:
    # A deliberate result change bumps ENGINE_VERSION and recomputes the digests in the same commit.
    assert ENGINE_VERSION == "1.0.1"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", list(CASES))
def test_results_are_bit_identical_to_engine_1_0_1(name: str, threads: int) -> None:
    case = CASES[name]
    out_digest, j_curve_digest = result_digests(case.body, case.iterations, case.seed, threads)
    pinned_out, pinned_j_curve = PINNED_DIGESTS[name]
    assert out_digest == pinned_out, f"{name}: per-fund results moved"
    assert j_curve_digest == pinned_j_curve, f"{name}: J-curves moved"
