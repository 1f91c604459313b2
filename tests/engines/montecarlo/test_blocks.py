"""A run split into blocks of funds computed separately, then assembled, is simulate() to the last bit."""

import json

import pytest

from fundmodel.engines.montecarlo import FundArrays, assemble, load_config, simulate, simulate_block
from fundmodel.errors import SimulationConfigError

BODY = {"fundSize": 5e7, "stageDistribution": {"seed": 0.6, "series_a": 0.4}, "reserveRatio": 0.35}
SEED = 99
FUNDS = 1_500


@pytest.mark.parametrize(
    "bounds",
    [
        [(0, FUNDS)],
        [(0, 1), (1, 998), (999, 501)],  # a one-fund block and blocks of any size
        [(0, 500), (500, 500), (1_000, 500)],
    ],
)
def test_blocks_concatenated_in_fund_order_assemble_to_simulate(bounds: list[tuple[int, int]]) -> None:
    config = load_config(BODY)
    blocks = [simulate_block(config, seed=SEED, first_fund=first, count=count) for first, count in bounds]
    arrays = FundArrays.concatenate(blocks)
    assert arrays.funds == FUNDS
    local = simulate(config, iterations=FUNDS, seed=SEED, threads=2)
    assembled = assemble(config, arrays, seed=SEED, threads=1)
    assert json.dumps(assembled.to_json()) == json.dumps(local.to_json())
    for name, values in local.samples.items():
        assert assembled.samples[name].tobytes() == values.tobytes(), name


def test_a_later_block_is_the_same_funds_of_a_longer_run() -> None:
    config = load_config(BODY)
    whole = simulate_block(config, seed=SEED, first_fund=0, count=FUNDS)
    tail = simulate_block(config, seed=SEED, first_fund=1_200, count=300)
    assert tail.out.tobytes() == whole.out[:, 1_200:].copy().tobytes()
    assert tail.j_curve.tobytes() == whole.j_curve[1_200:].tobytes()
    assert tail.yearly.tobytes() == whole.yearly[1_200:].tobytes()


@pytest.mark.parametrize(("first_fund", "count"), [(-1, 10), (0, 0), (0, -5), (True, 10), (2_000_000, 1)])
def test_block_bounds_are_checked(first_fund: int, count: int) -> None:
    with pytest.raises(SimulationConfigError):
        simulate_block(load_config(BODY), seed=SEED, first_fund=first_fund, count=count)


def test_assembling_nothing_is_an_error() -> None:
    with pytest.raises(SimulationConfigError, match="at least one block"):
        FundArrays.concatenate([])
