import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo import (
    ENGINE_VERSION,
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    SimulationConfig,
    compare,
    load_config,
    runner,
    simulate,
)
from fundmodel.engines.montecarlo.result import SimulationResult
from fundmodel.errors import SimulationConfigError

from .builders import default_fund, deterministic_fund

ITERATIONS = 2_000
EXAMPLE_FUND: dict[str, Any] = json.loads(
    (Path(__file__).parents[3] / "examples" / "fund.json").read_text(encoding="utf-8")
)


class TestExactCases:
    """Degenerate configs whose every number can be computed by hand."""

    def test_every_company_exits_at_three_x_after_four_years(self) -> None:
        result = simulate(deterministic_fund(), iterations=MIN_ITERATIONS, seed=7)
        samples = result.samples
        # $100M invested at t=0 returns $300M at t=4y; carry 20 % of the $200M profit.
        np.testing.assert_allclose(samples["grossMoic"], 3.0, rtol=1e-12)
        np.testing.assert_allclose(samples["carryPaid"], 40e6, rtol=1e-12)
        np.testing.assert_allclose(samples["netTvpi"], 2.6, rtol=1e-12)
        np.testing.assert_allclose(samples["dpi"], 2.6, rtol=1e-12)
        np.testing.assert_allclose(samples["rvpi"], 0.0, atol=1e-15)
        np.testing.assert_allclose(samples["netIrr"], 2.6**0.25 - 1.0, rtol=1e-10)
        assert result.net_tvpi.percentiles[50] == pytest.approx(2.6, rel=1e-12)
        assert result.prob_tvpi_at_least == {1: 1.0, 2: 1.0, 3: 0.0, 5: 0.0, 10: 0.0}
        assert result.capital.companies_by_stage == {"seed": 80}

    def test_outputs_of_the_deterministic_fund(self) -> None:
        # 80 checks at t=0, every one returns 3x at year 4: financings, sources and yearly points by hand.
        result = simulate(deterministic_fund(), iterations=MIN_ITERATIONS, seed=7)
        assert result.deal_outcomes.by_count == {
            "<1x": 0.0,
            "1-5x": 1.0,
            "5-10x": 0.0,
            "10-20x": 0.0,
            "20-50x": 0.0,
            ">=50x": 0.0,
        }
        assert result.deal_outcomes.by_dollars == result.deal_outcomes.by_count
        assert result.returns_by_source.initial.gross_moic == pytest.approx(3.0, rel=1e-12)
        assert result.returns_by_source.initial.loss_ratio == 0.0
        assert result.returns_by_source.follow_on.to_json() == {"grossMoic": 0.0, "lossRatio": 0.0}
        assert result.prob_fund_returner == 0.0
        bands = result.yearly_bands
        assert bands.years == [float(year) for year in range(11)]
        for level in (10, 50, 90):
            np.testing.assert_allclose(bands.bands["paidIn"][level], 100e6, rtol=1e-6)
            np.testing.assert_allclose(bands.bands["nav"][level], [100e6] * 4 + [0.0] * 7, rtol=1e-6)
            np.testing.assert_allclose(bands.bands["tvpi"][level], [1.0] * 4 + [2.6] * 7, rtol=1e-6)
            np.testing.assert_allclose(bands.bands["dpi"][level], [0.0] * 4 + [2.6] * 7, rtol=1e-6)

    def test_a_company_returning_the_fund_is_counted(self) -> None:
        # A $2M fund of two $1M seed checks, each returning 3x ($3M): both return the whole fund.
        config = deterministic_fund(fundSize=2e6)
        result = simulate(config, iterations=MIN_ITERATIONS, seed=7)
        assert result.capital.companies_by_stage == {"seed": 2}
        np.testing.assert_array_equal(result.samples["fundReturners"], 2.0)
        assert result.prob_fund_returner == 1.0

    def test_pref_without_catch_up_is_exact(self) -> None:
        config = deterministic_fund(preferredReturn=0.08, catchUp=0.0)
        samples = simulate(config, iterations=MIN_ITERATIONS, seed=1).samples
        pref = 100e6 * (1.08**4 - 1.0)
        np.testing.assert_allclose(samples["carryPaid"], 0.2 * (200e6 - pref), rtol=1e-12)
        lp = 100e6 + pref + 0.8 * (200e6 - pref)
        np.testing.assert_allclose(samples["netTvpi"], lp / 100e6, rtol=1e-12)

    def test_fees_are_called_until_the_fund_winds_up(self) -> None:
        # 2 % a year on $100M for the 4 years until the last exit; then the fund winds up.
        config = deterministic_fund(managementFeeRate=0.02, investmentPeriodYears=5.0)
        result = simulate(config, iterations=MIN_ITERATIONS, seed=3)
        fees_called = 0.02 * 100e6 * 4 + 0.02 / 4 * 100e6  # quarters 0..16 inclusive
        invested = config.investable_capital
        np.testing.assert_allclose(result.samples["paidIn"], fees_called + invested, rtol=1e-12)
        np.testing.assert_allclose(result.samples["grossMoic"], 3.0, rtol=1e-12)

    def test_zero_graduation_and_zero_exit_is_a_total_loss(self) -> None:
        # Fixed timing: with a lognormal delay a few failures would fall past the horizon and be valued.
        profiles = {
            "seed": {
                "graduationRate": 0.0,
                "exitRate": 0.0,
                "failureRecoveryRate": 0.0,
                "timingSigma": 0.0,
            }
        }
        config = default_fund(stageDistribution={"seed": 1.0}, stageProfiles=profiles)
        result = simulate(config, iterations=200, seed=11)
        for name in ("netTvpi", "dpi", "rvpi", "grossMoic", "carryPaid"):
            assert np.all(result.samples[name] == 0.0), name
        assert np.all(result.samples["netIrr"] == -1.0)
        assert np.all(result.samples["lossRatio"] == 1.0)
        assert result.prob_tvpi_at_least[1] == 0.0

    def test_failures_recover_at_most_their_share_of_the_preference(self) -> None:
        # Every company fails; a distressed sale returns up to 30 % of the preference stack, and the fund's
        # preferred shares take their pro-rata part of it: up to 30 % of the cost, never more.
        profiles = {
            "seed": {
                "graduationRate": 0.0,
                "exitRate": 0.0,
                "failureRecoveryRate": 1.0,
                "failureRecoveryMax": 0.3,
                "timingSigma": 0.0,
            }
        }
        config = default_fund(stageDistribution={"seed": 1.0}, stageProfiles=profiles)
        result = simulate(config, iterations=200, seed=11)
        gross = result.samples["grossMoic"]
        assert np.all(gross > 0.0)
        assert np.all(gross <= 0.3)
        assert 0.1 < float(np.mean(gross)) < 0.2  # uniform on (0, 0.3): mean 0.15
        assert result.deal_outcomes.by_count["<1x"] == 1.0

    def test_without_fees_or_carry_net_equals_gross(self) -> None:
        config = default_fund(
            managementFeeRate=0.0,
            managementFeeStepDownRate=None,
            fundExpenseRatio=0.0,
            carryRate=0.0,
            catchUp=0.0,
        )
        samples = simulate(config, iterations=500, seed=5).samples
        np.testing.assert_allclose(samples["netTvpi"], samples["grossMoic"], rtol=1e-10)

    def test_without_fees_net_equals_gross_before_carry(self) -> None:
        config = default_fund(managementFeeRate=0.0, managementFeeStepDownRate=None, fundExpenseRatio=0.0)
        samples = simulate(config, iterations=500, seed=5).samples
        before_carry = (samples["lpDistributed"] + samples["lpResidual"] + samples["carryPaid"]) / samples[
            "paidIn"
        ]
        # Carry accrued on the residual value is the only other difference.
        residual_carry = samples["residualValue"] - samples["lpResidual"]
        np.testing.assert_allclose(
            before_carry + residual_carry / samples["paidIn"], samples["grossMoic"], rtol=1e-10
        )


@pytest.fixture(scope="module")
def result() -> SimulationResult:
    config = default_fund(recyclingRatio=0.1, reserveRatio=0.4, followOnParticipation=1.5)
    return simulate(config, iterations=ITERATIONS, seed=2024)


class TestConservation:
    def test_capital_called_never_exceeds_commitments(self, result: SimulationResult) -> None:
        assert np.all(result.samples["paidIn"] <= 100e6 * (1 + 1e-12))

    def test_invested_never_exceeds_investable(self, result: SimulationResult) -> None:
        samples = result.samples
        invested = samples["investedInitial"] + samples["investedFollowOn"]
        investable = result.capital.investable + samples["recycled"]
        assert np.all(invested <= investable * (1 + 1e-12))
        assert np.all(samples["reserveCalled"] <= result.capital.reserve * (1 + 1e-12))
        assert np.all(samples["investedFollowOn"] <= samples["followOnRequested"] * (1 + 1e-12))

    def test_distributions_are_proceeds_less_carry(self, result: SimulationResult) -> None:
        samples = result.samples
        np.testing.assert_allclose(
            samples["lpDistributed"] + samples["carryPaid"], samples["distributable"], rtol=1e-9
        )
        assert np.all(samples["distributable"] <= samples["grossProceeds"] * (1 + 1e-12))
        assert np.all(samples["distributable"] >= (samples["grossProceeds"] - samples["recycled"]) - 1e-3)

    def test_recycling_and_reserve_are_used(self, result: SimulationResult) -> None:
        assert result.capital.mean_recycled > 0.0
        assert 0.0 < result.capital.mean_reserve_used <= result.capital.reserve
        assert np.all(result.samples["recycled"] <= 10e6 * (1 + 1e-12))

    def test_tvpi_is_dpi_plus_rvpi(self, result: SimulationResult) -> None:
        samples = result.samples
        np.testing.assert_allclose(samples["netTvpi"], samples["dpi"] + samples["rvpi"], rtol=1e-12)

    def test_statistics_are_ordered_and_bounded(self, result: SimulationResult) -> None:
        for summary in (result.net_tvpi, result.dpi, result.net_irr, result.gross_moic):
            levels = list(summary.percentiles.values())
            assert levels == sorted(levels)
        probabilities = list(result.prob_tvpi_at_least.values())
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in probabilities)
        for risk in (result.tvpi_risk, result.irr_risk):
            assert risk.expected_shortfall[5] <= risk.value_at_risk[5]
            assert risk.expected_shortfall[5] <= risk.expected_shortfall[10]
            assert risk.value_at_risk[5] <= risk.value_at_risk[10]


class TestReproducibility:
    def test_same_inputs_same_seed_are_bit_identical(self) -> None:
        config = default_fund()
        first = simulate(config, iterations=3_000, seed=99)
        second = simulate(config, iterations=3_000, seed=99)
        assert json.dumps(first.to_json()) == json.dumps(second.to_json())
        for name, values in first.samples.items():
            assert np.array_equal(values, second.samples[name]), name

    def test_independent_of_chunking_and_threads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        config = default_fund(recyclingRatio=0.05)
        reference = simulate(config, iterations=9_000, seed=5, threads=1)
        monkeypatch.setattr(runner, "CHUNK_FUNDS", 1_000)
        monkeypatch.setattr(runner, "TASK_FUNDS", 333)
        calls: list[tuple[int, int]] = []
        chunked = simulate(
            config,
            iterations=9_000,
            seed=5,
            threads=2,
            progress=lambda done, total: calls.append((done, total)),
        )
        assert calls[-1] == (9_000, 9_000)
        assert len(calls) == 9
        for name, values in reference.samples.items():
            assert np.array_equal(values, chunked.samples[name]), name
        assert reference.to_json() == chunked.to_json()

    def test_a_prefix_of_a_run_is_the_smaller_run(self) -> None:
        config = default_fund()
        small = simulate(config, iterations=500, seed=3)
        large = simulate(config, iterations=5_000, seed=3)
        assert np.array_equal(small.samples["netTvpi"], large.samples["netTvpi"][:500])

    def test_different_seeds_differ(self) -> None:
        config = default_fund()
        first = simulate(config, iterations=500, seed=1).samples["netTvpi"]
        second = simulate(config, iterations=500, seed=2).samples["netTvpi"]
        assert not np.array_equal(first, second)


class TestComparison:
    def test_common_random_numbers_correlate_outcomes(self) -> None:
        base = default_fund(reserveRatio=0.5)
        variant = default_fund(reserveRatio=0.45)
        paired = compare([base, variant], iterations=ITERATIONS, seed=8)
        independent = simulate(variant, iterations=ITERATIONS, seed=9)
        crn = np.corrcoef(paired[0].samples["netTvpi"], paired[1].samples["netTvpi"])[0, 1]
        noise = np.corrcoef(paired[0].samples["netTvpi"], independent.samples["netTvpi"])[0, 1]
        assert crn > 0.8
        assert abs(noise) < 0.1  # 2,000 independent pairs: |r| < 0.1 at well over 99.99 %

    def test_identical_configs_give_identical_results(self) -> None:
        config = default_fund()
        first, second = compare([config, config], iterations=500, seed=4)
        assert first.to_json() == second.to_json()

    def test_each_result_is_the_plain_simulation(self) -> None:
        configs = [default_fund(), default_fund(stageDistribution={"pre_seed": 0.5, "seed": 0.5})]
        results = compare(configs, iterations=400, seed=12)
        for config, result in zip(configs, results, strict=True):
            assert result.to_json() == simulate(config, iterations=400, seed=12).to_json()

    def test_empty_comparison_is_refused(self) -> None:
        with pytest.raises(SimulationConfigError):
            compare([], iterations=100, seed=1)


class TestMonotonicity:
    """Same seed (common random numbers), 4,000 funds: medians move the way economics says."""

    def test_higher_graduation_rates_raise_median_tvpi(self) -> None:
        medians = []
        for graduation in (0.3, 0.45, 0.6, 0.75):
            # Exit rates pinned: the later-stage defaults (0.35-0.40) leave no room for graduation 0.75.
            profiles = {
                stage: {"graduationRate": graduation, "exitRate": 0.15}
                for stage in ("seed", "series_a", "series_b", "series_c")
            }
            config = default_fund(stageProfiles=profiles)
            medians.append(simulate(config, iterations=4_000, seed=21).net_tvpi.percentiles[50])
        assert medians == sorted(medians)
        assert medians[-1] > medians[0] * 1.3

    def test_a_fee_rise_that_keeps_the_portfolio_leaves_paired_funds_worse_or_equal(self) -> None:
        # 2 % -> 2.1 % keeps every stage's company count: each company has the same path in both runs,
        # so (almost) every paired fund is worse or equal. The exceptions come from the smaller reserve
        # running out at a different round, and from checks rounding into another liquidation-preference
        # branch.
        body = {**EXAMPLE_FUND}
        before = simulate(load_config(body), iterations=3_000, seed=9)
        after = simulate(load_config({**body, "managementFeeRate": 0.021}), iterations=3_000, seed=9)
        assert after.capital.companies_by_stage == before.capital.companies_by_stage
        better = np.mean(after.samples["netTvpi"] > before.samples["netTvpi"] + 1e-12)
        assert better < 0.05

    def test_a_fee_rise_that_drops_a_company_changes_only_that_company(self) -> None:
        # 2 % -> 2.5 % funds one seed check fewer: the other 30 companies keep their paths (see
        # test_paths.py), so a paired fund is better only when the dropped company lost money and the
        # remaining seed checks, each a little larger, did well. Engine 1.0.1 reshuffled every company
        # after the dropped one: 46 % of funds came out better.
        body = {**EXAMPLE_FUND}
        before = simulate(load_config(body), iterations=3_000, seed=9)
        after = simulate(load_config({**body, "managementFeeRate": 0.025}), iterations=3_000, seed=9)
        assert sum(after.capital.companies_by_stage.values()) == 30
        assert sum(before.capital.companies_by_stage.values()) == 31
        better = np.mean(after.samples["netTvpi"] > before.samples["netTvpi"] + 1e-12)
        assert better < 0.4
        assert np.corrcoef(before.samples["netTvpi"], after.samples["netTvpi"])[0, 1] > 0.95

    def test_higher_fees_lower_median_tvpi(self) -> None:
        medians = []
        for fee in (0.0, 0.01, 0.02, 0.03):
            config = default_fund(managementFeeRate=fee, managementFeeStepDownRate=None)
            medians.append(simulate(config, iterations=4_000, seed=21).net_tvpi.percentiles[50])
        assert medians == sorted(medians, reverse=True)
        assert medians[0] > medians[-1]


class TestBadInput:
    @pytest.mark.parametrize("iterations", [0, MIN_ITERATIONS - 1, MAX_ITERATIONS + 1, -5])
    def test_iterations_out_of_range(self, iterations: int) -> None:
        with pytest.raises(SimulationConfigError, match="iterations") as raised:
            simulate(default_fund(), iterations=iterations, seed=1)
        assert raised.value.field == "iterations"

    @pytest.mark.parametrize("iterations", [True, 100.0, "100", None])
    def test_iterations_must_be_an_integer(self, iterations: object) -> None:
        with pytest.raises(SimulationConfigError, match="iterations"):
            simulate(default_fund(), iterations=iterations, seed=1)  # type: ignore[arg-type]

    @pytest.mark.parametrize("seed", [-1, 2**64, 1.5, True, None])
    def test_seed_out_of_range(self, seed: object) -> None:
        with pytest.raises(SimulationConfigError, match="seed"):
            simulate(default_fund(), iterations=100, seed=seed)  # type: ignore[arg-type]

    def test_config_must_be_a_simulation_config(self) -> None:
        with pytest.raises(SimulationConfigError, match="SimulationConfig"):
            simulate({"fundSize": 1e8}, iterations=100, seed=1)  # type: ignore[arg-type]

    def test_too_many_companies(self) -> None:
        config = default_fund(fundSize=1e10, stageDistribution={"pre_seed": 1.0}, reserveRatio=0.0)
        with pytest.raises(SimulationConfigError, match="initial investments"):
            simulate(config, iterations=100, seed=1)

    def test_threads_must_be_positive(self) -> None:
        with pytest.raises(SimulationConfigError, match="threads"):
            simulate(default_fund(), iterations=100, seed=1, threads=0)


class TestJsonForm:
    def test_shape_and_finiteness(self) -> None:
        result = simulate(default_fund(), iterations=1_000, seed=42)
        document = result.to_json()
        text = json.dumps(document, allow_nan=False)
        assert json.loads(text) == document
        for name in ("netTvpi", "dpi", "netIrr", "grossMoic"):
            assert set(document[name]) == {"mean", "p5", "p10", "p25", "p50", "p75", "p90", "p95"}
        assert set(document["probTvpiAtLeast"]) == {"1", "2", "3", "5", "10"}
        assert set(document["risk"]) == {"netTvpi", "netIrr"}
        assert set(document["risk"]["netTvpi"]) == {"valueAtRisk", "expectedShortfall"}
        assert set(document["risk"]["netTvpi"]["valueAtRisk"]) == {"5", "10"}
        assert document["engine"] == {"version": ENGINE_VERSION, "iterations": 1_000, "seed": 42}
        assert document["stageDistribution"] == {"seed": 0.6, "series_a": 0.4}
        assert len(document["jCurve"]["quarters"]) == 41
        assert len(document["jCurve"]["medianCumulativeNetCashFlow"]) == 41
        # The J-curve dips below zero before it recovers.
        assert min(document["jCurve"]["medianCumulativeNetCashFlow"]) < 0
        capital = document["capital"]
        assert capital["initialCompanies"] == sum(capital["companiesByStage"].values())
        assert capital["deployed"]["initial"] == pytest.approx(capital["initialBudget"])
        assert 0.0 <= capital["reserveUsage"] <= 1.0
        assert 0.0 <= document["lossRatio"]["mean"] <= 1.0

    def test_the_new_outputs_are_consistent(self) -> None:
        config = default_fund(fundLifeYears=10.5, investmentPeriodYears=5.0)
        result = simulate(config, iterations=1_000, seed=42)
        document = result.to_json()
        bands = document["yearlyBands"]
        assert bands["years"] == [*range(11), 10.5]
        for measure in ("tvpi", "dpi", "paidIn", "nav"):
            assert set(bands[measure]) == {"p10", "p25", "p50", "p75", "p90"}
            columns = np.array([bands[measure][f"p{level}"] for level in (10, 25, 50, 75, 90)])
            assert columns.shape == (5, 12)
            assert np.all(np.diff(columns, axis=0) >= 0.0)  # percentiles ordered at every year
        # The last point is the fund's net TVPI; paid-in only grows.
        assert bands["tvpi"]["p50"][-1] == pytest.approx(result.net_tvpi.percentiles[50], rel=1e-6)
        assert np.all(np.diff(bands["paidIn"]["p50"]) >= 0.0)
        for view in ("byCount", "byDollars"):
            shares = document["dealOutcomes"][view]
            assert list(shares) == ["<1x", "1-5x", "5-10x", "10-20x", "20-50x", ">=50x"]
            assert sum(shares.values()) == pytest.approx(1.0)
        returns = document["returnsBySource"]
        assert set(returns) == {"initial", "followOn"}
        assert 0.0 <= returns["initial"]["lossRatio"] <= 1.0
        assert 0.0 <= returns["followOn"]["lossRatio"] <= 1.0
        # Pooled initial + follow-on dollars returned equal the funds' gross proceeds plus NAV.
        invested = result.samples["investedInitial"] + result.samples["investedFollowOn"]
        returned = returns["initial"]["grossMoic"] * result.samples["investedInitial"].sum()
        returned += returns["followOn"]["grossMoic"] * result.samples["investedFollowOn"].sum()
        gross = (result.samples["grossMoic"] * invested).sum()
        assert returned == pytest.approx(gross, rel=1e-9)
        assert document["probFundReturner"] == float(np.mean(result.samples["fundReturners"] > 0))

    def test_alias_and_enum_keys_give_the_canonical_distribution(self) -> None:
        config = SimulationConfig.model_validate(
            {"fundSize": 5e7, "stageDistribution": {"Seed": 0.5, "Series A": 0.5}}
        )
        result = simulate(config, iterations=MIN_ITERATIONS, seed=0)
        assert result.to_json()["stageDistribution"] == {"seed": 0.5, "series_a": 0.5}
        assert all(math.isfinite(value) for value in result.to_json()["netTvpi"].values())


STAGE_NAMES = ["pre_seed", "seed", "series_a", "series_b", "series_c", "series_d", "growth"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stages=st.lists(st.sampled_from(STAGE_NAMES), min_size=1, max_size=4, unique=True),
    fund_size=st.floats(2e7, 5e8),
    fee=st.floats(0.0, 0.03),
    reserve=st.floats(0.0, 0.8),
    recycling=st.floats(0.0, 0.2),
    participation=st.floats(0.0, 2.0),
    pref=st.one_of(st.none(), st.floats(0.0, 0.12)),
    catch_up=st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 2**64 - 1),
)
def test_any_valid_config_gives_finite_conserving_results(
    stages: list[str],
    fund_size: float,
    fee: float,
    reserve: float,
    recycling: float,
    participation: float,
    pref: float | None,
    catch_up: float,
    seed: int,
) -> None:
    config = default_fund(
        fundSize=fund_size,
        stageDistribution={stage: 1.0 / len(stages) for stage in stages},
        managementFeeRate=fee,
        reserveRatio=reserve,
        recyclingRatio=recycling,
        followOnParticipation=participation,
        preferredReturn=pref,
        catchUp=catch_up,
    )
    result = simulate(config, iterations=50, seed=seed, threads=1)
    json.dumps(result.to_json(), allow_nan=False)
    samples = result.samples
    for name, values in samples.items():
        assert np.all(np.isfinite(values)), name
    assert np.all(samples["paidIn"] <= fund_size * (1 + 1e-12))
    np.testing.assert_allclose(
        samples["lpDistributed"] + samples["carryPaid"], samples["distributable"], rtol=1e-9, atol=1e-3
    )
    invested = samples["investedInitial"] + samples["investedFollowOn"]
    assert np.all(invested <= (config.investable_capital + samples["recycled"]) * (1 + 1e-12))
    assert np.all(samples["netIrr"] >= -1.0)
