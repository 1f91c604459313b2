"""Follow-ons are capped: never more than the new round, never more than the pool, ownership never above 1.

Three levels: the kernel's follow-on rule on its own (property over its inputs); every follow-on the real
kernel makes for random configs (the kernel's Python form, with the rule wrapped to record its calls);
and the reviewer's reproduction (participation 2, a $3.5M seed check on a $0.5M pre-money) end to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo import MIN_ITERATIONS, cashflows, events, load_config, simulate
from fundmodel.engines.montecarlo.companies import plan_portfolio
from fundmodel.errors import SimulationConfigError
from fundmodel.stages import Stage

MILLION = 1e6

fractions = st.floats(0.0, 1.0)
dollars = st.floats(1e4, 1e10)


@dataclass(frozen=True)
class FollowOn:
    ownership: float
    round_size: float
    post_money: float
    available: float
    request: float
    grant: float
    ownership_after: float


class TestFollowOnRule:
    @given(
        ownership=fractions,
        participation=st.floats(0.0, 2.0),
        round_size=dollars,
        pre_money=dollars,
        available=st.one_of(st.just(0.0), st.just(np.inf), dollars),
    )
    def test_capped_at_round_and_pool_and_ownership_stays_at_most_one(
        self, ownership: float, participation: float, round_size: float, pre_money: float, available: float
    ) -> None:
        post = pre_money + round_size
        request, grant, after = events.follow_on_round(
            ownership, participation, round_size, pre_money, post, available
        )
        assert 0.0 <= grant <= request <= round_size
        assert grant <= available
        assert 0.0 <= after <= 1.0

    @given(
        ownership=fractions,
        participation=st.floats(0.0, 2.0),
        round_size=dollars,
        pre_money=dollars,
        available=dollars,
    )
    def test_below_the_cap_it_is_the_uncapped_pro_rata_bit_for_bit(
        self, ownership: float, participation: float, round_size: float, pre_money: float, available: float
    ) -> None:
        uncapped = participation * ownership * round_size
        if uncapped > round_size:
            return
        post = pre_money + round_size
        grant = min(uncapped, available)
        assert events.follow_on_round(ownership, participation, round_size, pre_money, post, available) == (
            uncapped,
            grant,
            (ownership * pre_money + grant) / post,
        )

    def test_a_full_owner_keeps_at_most_all_of_the_company(self) -> None:
        request, grant, after = events.follow_on_round(
            1.0, 2.0, 12 * MILLION, 45 * MILLION, 57 * MILLION, 1e12
        )
        assert request == grant == 12 * MILLION
        assert after == 1.0


def _record_follow_ons(monkeypatch: pytest.MonkeyPatch) -> list[FollowOn]:
    """Run the kernel's entry and its event phase as Python (same code, not compiled) with the follow-on
    rule wrapped to record its calls; the other phases stay compiled."""
    calls: list[FollowOn] = []
    rule = events.follow_on_round

    def recording(
        ownership: float,
        participation: float,
        round_size: float,
        pre_money: float,
        post_money: float,
        available: float,
    ) -> tuple[float, float, float]:
        request, grant, after = rule(ownership, participation, round_size, pre_money, post_money, available)
        calls.append(FollowOn(ownership, round_size, post_money, available, request, grant, after))
        return request, grant, after

    monkeypatch.setattr(events, "follow_on_round", recording)
    monkeypatch.setattr(cashflows, "process_events", events.process_events.py_func)
    monkeypatch.setattr(cashflows, "simulate_funds", cashflows.simulate_funds.py_func)
    return calls


stage_names = st.sampled_from(["pre_seed", "seed", "series_a", "series_b", "series_c"])


@st.composite
def aggressive_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Configs built to own a lot: big checks on small pre-moneys, high graduation, up to 2x pro-rata."""
    stages = draw(st.lists(stage_names, min_size=1, max_size=3, unique=True))
    profiles: dict[str, dict[str, float]] = {}
    for stage in ("pre_seed", "seed", "series_a", "series_b", "series_c", "series_d", "growth"):
        round_size = draw(st.floats(1.0, 20.0)) * MILLION
        graduation = draw(st.floats(0.5, 1.0))
        profiles[stage] = {
            "roundSize": round_size,
            "checkSize": round_size * draw(st.one_of(st.floats(0.8, 1.0), st.floats(0.05, 1.0))),
            "preMoneyValuation": draw(st.one_of(st.floats(0.1, 2.0), st.floats(0.1, 30.0))) * MILLION,
            "graduationRate": graduation,
            "exitRate": draw(st.floats(0.0, 1.0 - graduation)),
        }
    return {
        "fundSize": draw(st.floats(10.0, 60.0)) * MILLION,
        "stageDistribution": {stage: 1.0 / len(stages) for stage in stages},
        "reserveRatio": draw(st.floats(0.3, 0.95)),
        "recyclingRatio": draw(st.floats(0.0, 0.3)),
        "followOnParticipation": draw(st.one_of(st.floats(1.5, 2.0), st.floats(0.0, 2.0))),
        "stageProfiles": profiles,
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=aggressive_configs(), seed=st.integers(0, 2**64 - 1))
def test_every_follow_on_of_the_kernel_is_within_the_round_and_ownership_at_most_one(
    body: dict[str, Any], seed: int
) -> None:
    config = load_config(body)
    compiled = simulate(config, iterations=MIN_ITERATIONS, seed=seed, threads=1)
    with pytest.MonkeyPatch.context() as monkeypatch:
        calls = _record_follow_ons(monkeypatch)
        interpreted = simulate(config, iterations=MIN_ITERATIONS, seed=seed, threads=1)
    for name, values in compiled.samples.items():  # the recorded run is the real kernel's run
        np.testing.assert_allclose(interpreted.samples[name], values, rtol=1e-12, atol=1e-9, err_msg=name)
    event("cap reached" if any(call.request == call.round_size for call in calls) else "cap not reached")
    for call in calls:
        assert 0.0 <= call.ownership <= 1.0, call
        assert call.grant <= call.round_size, call
        assert call.grant <= call.available, call
        assert call.ownership_after <= 1.0, call
        # Ownership times the post-money is the fund's stake: never more than the whole company.
        assert call.ownership_after * call.post_money <= call.post_money, call
    assert np.all(compiled.samples["investedFollowOn"] <= compiled.samples["followOnRequested"] * (1 + 1e-12))


def _reproduction(series_a_pre_money: float) -> dict[str, Any]:
    """One company: a $3.5M seed check buying a $3.5M round on a $0.5M pre-money (87.5 %), $18.9M of
    reserve, full graduation to a $12M Series A after 2 years, then an exit at 1x post-money after 3 more.

    Numbers exact in binary: $22.4M x (1 - 27/32) = $3.5M of initial budget, so exactly one company.
    """
    return {
        "fundSize": 22.4 * MILLION,
        "stageDistribution": {"seed": 1.0},
        "managementFeeRate": 0.0,
        "managementFeeStepDownRate": None,
        "fundExpenseRatio": 0.0,
        "initialDeploymentYears": 0.0,
        "reserveRatio": 0.84375,
        "followOnParticipation": 2.0,
        "stageProfiles": {
            "seed": {
                "roundSize": 3.5 * MILLION,
                "checkSize": 3.5 * MILLION,
                "preMoneyValuation": 0.5 * MILLION,
                "graduationRate": 1.0,
                "exitRate": 0.0,
                "yearsToGraduate": 2.0,
                "timingSigma": 0.0,
            },
            "series_a": {
                "roundSize": 12 * MILLION,
                "preMoneyValuation": series_a_pre_money,
                "graduationRate": 0.0,
                "exitRate": 1.0,
                "yearsToExit": 3.0,
                "timingSigma": 0.0,
                "exitMultipleMedian": 1.0,
                "exitMultipleSigma": 0.0,
                "exitMultipleCap": None,
            },
        },
    }


@pytest.mark.parametrize("series_a_pre_money", [45 * MILLION, 0.5 * MILLION], ids=["default-pre", "low-pre"])
def test_reproduction_participation_two_buys_at_most_the_whole_series_a(series_a_pre_money: float) -> None:
    # Before the cap the fund asked for 2 x 87.5 % x $12M = $21M and got the whole $18.9M reserve:
    # 102 % (default $45M pre) or 155 % ($0.5M pre) of the company after the round.
    config = load_config(_reproduction(series_a_pre_money))
    result = simulate(config, iterations=MIN_ITERATIONS, seed=1)
    samples = result.samples
    assert result.capital.companies_by_stage == {Stage.SEED: 1}
    assert result.capital.reserve == 18.9 * MILLION
    np.testing.assert_allclose(samples["investedInitial"], 3.5 * MILLION, rtol=1e-12)
    np.testing.assert_allclose(samples["followOnRequested"], 12 * MILLION, rtol=1e-12)
    np.testing.assert_allclose(samples["investedFollowOn"], 12 * MILLION, rtol=1e-12)
    np.testing.assert_allclose(samples["reserveCalled"], 12 * MILLION, rtol=1e-12)
    # The exit at 1x post-money pays ownership x post: 87.5 % of the pre-money's shares plus the new round.
    post_money = series_a_pre_money + 12 * MILLION
    ownership = (0.875 * series_a_pre_money + 12 * MILLION) / post_money
    assert ownership <= 1.0
    np.testing.assert_allclose(samples["grossProceeds"], ownership * post_money, rtol=1e-12)
    assert np.all(samples["grossProceeds"] <= post_money * (1 + 1e-12))


class TestFollowOnPolicies:
    """proRata (every graduate), topQuantile (graduates the fund rates in its top X %), none."""

    body: ClassVar[dict[str, Any]] = {
        "fundSize": 100e6,
        "stageDistribution": {"pre_seed": 0.1, "seed": 0.6, "series_a": 0.3},
        "reserveRatio": 0.45,
    }

    def _run(self, **overrides: Any) -> Any:
        return simulate(load_config({**self.body, **overrides}), iterations=3_000, seed=13)

    def test_none_never_follows_on(self) -> None:
        result = self._run(followOnPolicy="none")
        assert np.all(result.samples["investedFollowOn"] == 0.0)
        assert np.all(result.samples["reserveCalled"] == 0.0)
        assert np.all(result.samples["followOnRequested"] == 0.0)
        assert result.returns_by_source.follow_on.gross_moic == 0.0

    def test_top_quantile_follows_on_fewer_and_better_graduates(self) -> None:
        pro_rata = self._run()
        top = self._run(followOnPolicy="topQuantile", followOnTopShare=0.3)
        requested_pro_rata = float(np.mean(pro_rata.samples["followOnRequested"]))
        requested_top = float(np.mean(top.samples["followOnRequested"]))
        # About 30 % of the graduates, so about 30 % of the dollars asked for (graduates differ in size).
        assert 0.15 * requested_pro_rata < requested_top < 0.5 * requested_pro_rata
        top_returns = top.returns_by_source.follow_on
        all_returns = pro_rata.returns_by_source.follow_on
        assert top_returns.gross_moic > all_returns.gross_moic
        assert top_returns.loss_ratio < all_returns.loss_ratio

    def test_a_larger_top_share_lowers_every_threshold(self) -> None:
        plans = [
            plan_portfolio(load_config({**self.body, "followOnPolicy": "topQuantile", "followOnTopShare": x}))
            for x in (0.2, 0.5, 0.8)
        ]
        entry = Stage.SEED.position
        for reached in range(entry + 1, entry + 4):
            levels = [float(plan.signal_threshold[entry, reached]) for plan in plans]
            assert levels == sorted(levels, reverse=True)
            assert levels[0] > levels[-1]

    def test_the_thresholds_are_part_of_the_config_not_of_the_run(self) -> None:
        config = load_config({**self.body, "followOnPolicy": "topQuantile"})
        np.testing.assert_array_equal(
            plan_portfolio(config).signal_threshold, plan_portfolio(config).signal_threshold
        )

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"followOnPolicy": "best"}, "followOnPolicy"),
            ({"followOnTopShare": 0.0}, "followOnTopShare"),
            ({"followOnTopShare": 1.5}, "followOnTopShare"),
        ],
    )
    def test_invalid_policies_are_refused(self, overrides: dict[str, Any], field: str) -> None:
        with pytest.raises(SimulationConfigError) as raised:
            load_config({**self.body, **overrides})
        assert field in {problem["field"] for problem in raised.value.errors}
