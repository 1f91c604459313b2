import math
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo import MAX_IRR, MIN_IRR, periodic_irr, xirr

XIRR_DATES = [
    date(2008, 1, 1),
    date(2008, 3, 1),
    date(2008, 10, 30),
    date(2009, 2, 15),
    date(2009, 4, 1),
]
XIRR_AMOUNTS = [-10000.0, 2750.0, 4250.0, 3250.0, 2750.0]


def bisection_xirr(amounts: list[float], dates: list[date]) -> float:
    """Independent solver: plain bisection on the XIRR NPV (actual/365), no shared code."""
    start = min(dates)

    def npv(rate: float) -> float:
        return sum(
            amount / (1.0 + rate) ** ((day - start).days / 365.0)
            for amount, day in zip(amounts, dates, strict=True)
        )

    low, high = -0.99, 10.0
    assert npv(low) * npv(high) < 0
    for _ in range(200):
        middle = (low + high) / 2
        if npv(low) * npv(middle) <= 0:
            high = middle
        else:
            low = middle
    return (low + high) / 2


def test_published_xirr_vector() -> None:
    # The published figure is rounded to 9 decimals (Excel iterates to about 1e-8).
    assert xirr(XIRR_AMOUNTS, XIRR_DATES) == pytest.approx(0.373362535, abs=5e-9)


def test_xirr_agrees_with_independent_bisection() -> None:
    assert xirr(XIRR_AMOUNTS, XIRR_DATES) == pytest.approx(
        bisection_xirr(XIRR_AMOUNTS, XIRR_DATES), abs=1e-10
    )


def test_xirr_does_not_depend_on_the_order_of_flows() -> None:
    order = [3, 0, 4, 1, 2]
    assert xirr([XIRR_AMOUNTS[i] for i in order], [XIRR_DATES[i] for i in order]) == pytest.approx(
        0.373362535, abs=5e-9
    )


@settings(max_examples=60, deadline=None)
@given(
    investment=st.floats(1.0, 1e9),
    later=st.lists(st.one_of(st.just(0.0), st.floats(1.0, 1e9)), min_size=1, max_size=40),
)
def test_quarterly_irr_is_a_root_found_by_polynomial_roots(investment: float, later: list[float]) -> None:
    flows = [-investment, *later]
    if sum(later) == 0.0:
        assert periodic_irr(flows) == MIN_IRR
        return
    rate = periodic_irr(flows)
    # Independent check: one sign change -> exactly one positive root v of sum(cf_k v^k) = 0,
    # with v = (1 + r) ** -(1/4).
    roots = np.roots(list(reversed(flows)))
    positive = [root.real for root in roots if abs(root.imag) < 1e-9 and root.real > 0]
    assert positive
    expected = max(min(min(positive) ** -4 - 1.0, MAX_IRR), MIN_IRR)
    assert rate == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_single_period_multiple() -> None:
    # -100 now, +200 in one year (4 quarters) -> exactly 100 %.
    assert periodic_irr([-100, 0, 0, 0, 200]) == pytest.approx(1.0, abs=1e-12)


def test_no_sign_change_policy() -> None:
    assert periodic_irr([-100, -5, 0]) == MIN_IRR
    assert periodic_irr([0, 5, 10]) == MAX_IRR
    assert periodic_irr([0, 0, 0]) == 0.0


def test_fees_after_last_distribution_still_give_a_loss_rate() -> None:
    # NPV is negative at every rate here; the documented fallback moves calls to the start.
    flows = [-100.0, 0, 0, 0, 30.0, -2.0, -2.0, -2.0]
    rate = periodic_irr(flows)
    upfront = periodic_irr([-106.0, 0, 0, 0, 30.0, 0, 0, 0])
    assert rate == pytest.approx(upfront, abs=1e-9)
    assert -1.0 < rate < 0.0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        periodic_irr([-1.0, math.nan])
    with pytest.raises(ValueError, match="as many dates"):
        xirr([1.0], [])


def test_bracketing_grid_is_read_only_and_still_compiles() -> None:
    from fundmodel.engines.montecarlo import irr

    assert not irr._GRID.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        irr._GRID[0] = 0.0
    # The bracketing scan reads the grid inside a compiled kernel (a read-only global array is a constant).
    flows = np.array([-100.0, 0.0, 0.0, 0.0, 121.0])
    times = np.arange(5, dtype=np.float64) / 4
    assert irr._bracketed_irr(flows, times) == pytest.approx(0.21, abs=1e-9)
