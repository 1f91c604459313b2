import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo.waterfall import STATE_SIZE, run_waterfall

QUARTERS = 17


def waterfall(
    proceeds_at_end: float,
    *,
    carry: float = 0.2,
    pref: float = 0.0,
    catch_up: float = 1.0,
    residual: float = 0.0,
) -> tuple[np.ndarray, float, float, float]:
    calls = np.zeros(QUARTERS)
    calls[0] = 100.0
    proceeds = np.zeros(QUARTERS)
    proceeds[-1] = proceeds_at_end
    lp = np.zeros(QUARTERS)
    quarterly = (1 + pref) ** 0.25 - 1
    gp, lp_residual, gp_residual = run_waterfall(
        calls, proceeds, residual, carry, quarterly, catch_up, lp, np.empty(STATE_SIZE)
    )
    return lp, gp, lp_residual, gp_residual


def test_no_pref_carry_is_share_of_profit() -> None:
    lp, gp, _, _ = waterfall(300.0)
    assert gp == pytest.approx(40.0)
    assert lp.sum() == pytest.approx(260.0)


def test_loss_pays_no_carry() -> None:
    lp, gp, _, _ = waterfall(80.0)
    assert gp == 0.0
    assert lp.sum() == pytest.approx(80.0)


def test_pref_with_full_catch_up_ends_at_full_carry() -> None:
    lp, gp, _, _ = waterfall(300.0, pref=0.08, catch_up=1.0)
    assert gp == pytest.approx(40.0)
    assert lp.sum() == pytest.approx(260.0)


def test_pref_without_catch_up() -> None:
    pref = 100.0 * (1.08**4 - 1)  # four years compounded quarterly at the 8 % annual rate
    lp, gp, _, _ = waterfall(300.0, pref=0.08, catch_up=0.0)
    assert gp == pytest.approx(0.2 * (200.0 - pref))
    assert lp.sum() == pytest.approx(100.0 + pref + 0.8 * (200.0 - pref))


def test_partial_catch_up_reaches_full_carry_when_profit_is_large() -> None:
    _, gp, _, _ = waterfall(1000.0, pref=0.08, catch_up=0.5)
    assert gp == pytest.approx(0.2 * 900.0)


def test_profit_inside_the_pref_goes_to_lps() -> None:
    lp, gp, _, _ = waterfall(110.0, pref=0.08)
    assert gp == 0.0
    assert lp.sum() == pytest.approx(110.0)


def test_residual_value_goes_through_the_same_tiers() -> None:
    lp, gp, lp_residual, gp_residual = waterfall(100.0, residual=200.0)
    assert gp == 0.0
    assert lp.sum() == pytest.approx(100.0)
    assert gp_residual == pytest.approx(40.0)
    assert lp_residual == pytest.approx(160.0)


@settings(max_examples=100, deadline=None)
@given(
    calls=st.lists(st.floats(0, 1e6), min_size=QUARTERS, max_size=QUARTERS),
    proceeds=st.lists(st.floats(0, 1e7), min_size=QUARTERS, max_size=QUARTERS),
    residual=st.floats(0, 1e7),
    carry=st.floats(0, 0.5),
    pref=st.floats(0, 0.3),
    catch_up=st.sampled_from([0.0, 0.6, 0.8, 1.0]),
)
def test_lp_plus_gp_equals_everything_distributed(
    calls: list[float],
    proceeds: list[float],
    residual: float,
    carry: float,
    pref: float,
    catch_up: float,
) -> None:
    if 0 < catch_up <= carry:
        catch_up = 0.0
    lp = np.zeros(QUARTERS)
    gp, lp_residual, gp_residual = run_waterfall(
        np.array(calls),
        np.array(proceeds),
        residual,
        carry,
        (1 + pref) ** 0.25 - 1,
        catch_up,
        lp,
        np.empty(STATE_SIZE),
    )
    total = sum(proceeds) + residual
    assert lp.sum() + gp + lp_residual + gp_residual == pytest.approx(total, rel=1e-9, abs=1e-6)
    assert gp >= 0.0
    assert gp_residual >= 0.0
    assert np.all(lp >= 0.0)
    # Carry never exceeds its share of the profit over contributed capital.
    profit = max(total - sum(calls), 0.0)
    assert gp + gp_residual <= carry * profit + 1e-6 * max(total, 1.0)
