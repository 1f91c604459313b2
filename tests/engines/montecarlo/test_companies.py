import pytest

from fundmodel.engines.montecarlo.companies import MAX_COMPANIES_PER_FUND, plan_portfolio
from fundmodel.errors import SimulationConfigError
from fundmodel.stages import Stage

from .builders import default_fund


def test_whole_initial_budget_is_deployed_across_stages() -> None:
    config = default_fund(stageDistribution={"pre_seed": 0.1, "seed": 0.6, "series_a": 0.3})
    plan = plan_portfolio(config)
    assert plan.initial_budget == pytest.approx(config.investable_capital * 0.5)
    assert plan.reserve == pytest.approx(config.investable_capital * 0.5)
    assert float(plan.slot_check.sum()) == pytest.approx(plan.initial_budget)
    for stage, weight in plan.stage_weights.items():
        deployed = plan.companies_by_stage[stage] * plan.initial_check_by_stage[stage]
        assert deployed == pytest.approx(plan.initial_budget * weight)
    assert plan.company_count == sum(plan.companies_by_stage.values())
    # Slots are laid out in canonical stage order.
    assert list(plan.slot_stage) == sorted(plan.slot_stage)


def test_counts_follow_the_profile_check_size() -> None:
    config = default_fund(stageDistribution={"seed": 1.0}, stageProfiles={"seed": {"checkSize": 1e6}})
    plan = plan_portfolio(config)
    # 40.75M budget / 1M checks -> 41 companies of about 0.99M.
    assert plan.companies_by_stage == {Stage.SEED: 41}
    assert plan.initial_check_by_stage[Stage.SEED] == pytest.approx(40.75e6 / 41)


def test_no_check_exceeds_its_round() -> None:
    config = default_fund(
        stageDistribution={"seed": 1.0},
        stageProfiles={"seed": {"checkSize": 3.5e6, "roundSize": 3.5e6}},
    )
    plan = plan_portfolio(config)
    assert plan.initial_check_by_stage[Stage.SEED] <= 3.5e6


def test_zero_weight_stages_get_no_companies() -> None:
    plan = plan_portfolio(default_fund(stageDistribution={"seed": 1.0, "series_a": 0.0}))
    assert set(plan.companies_by_stage) == {Stage.SEED}


def test_too_many_companies_is_a_typed_error() -> None:
    config = default_fund(fundSize=1e10, stageDistribution={"pre_seed": 1.0})
    with pytest.raises(SimulationConfigError, match=str(MAX_COMPANIES_PER_FUND)):
        plan_portfolio(config)


def test_fixed_calls_are_fees_and_expenses() -> None:
    config = default_fund()
    plan = plan_portfolio(config)
    assert plan.fixed_calls[-1] == 0.0
    assert float(plan.fixed_calls.sum()) == pytest.approx(
        config.total_management_fees + config.total_expenses
    )
    assert plan.fixed_calls[0] == pytest.approx(0.02 / 4 * 1e8 + 1e6 / 40)
    assert plan.fixed_calls[20] == pytest.approx(0.015 / 4 * 1e8 + 1e6 / 40)
