import math
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo import MAX_IRR, MIN_IRR, periodic_irr, xirr
from fundmodel.engines.montecarlo.irr import ROOT_TOLERANCE

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


def npv_sign(flows: list[float], times: list[float], growth: float) -> float:
    """Sign of sum(cf_k * growth ** -t_k), evaluated in logs so that no growth factor overflows."""
    exponents = [
        math.log(abs(flow)) - time * math.log(growth) for flow, time in zip(flows, times, strict=True) if flow
    ]
    signs = [math.copysign(1.0, flow) for flow in flows if flow]
    top = max(exponents)
    total = math.fsum(
        sign * math.exp(exponent - top) for sign, exponent in zip(signs, exponents, strict=True)
    )
    return math.copysign(1.0, total) if total else 0.0


def root_by_bisection_in_log_growth(flows: list[float], times: list[float]) -> float:
    """Independent solver for one sign change: bisection on log(1 + r) between 1 + r = 1e-300 and 1e6."""
    low, high = math.log(1e-300), math.log(1e6)
    low_sign = npv_sign(flows, times, math.exp(low))
    assert low_sign * npv_sign(flows, times, math.exp(high)) < 0
    for _ in range(400):
        middle = (low + high) / 2
        if npv_sign(flows, times, math.exp(middle)) == low_sign:
            low = middle
        else:
            high = middle
    return math.expm1((low + high) / 2)


def assert_is_a_root(flows: list[float], times: list[float], rate: float) -> None:
    """``rate`` is the root of NPV(r) = 0 as far as a double can say, or the documented clip of it."""
    smallest_growth = 2.3e-16  # two steps above -1: every double rate in (-1, -1 + 2.3e-16) rounds here
    if rate == MIN_IRR:
        # The one root lies below anything a double rate can tell apart from -100 %.
        assert npv_sign(flows, times, smallest_growth) == npv_sign(flows, times, 1.0 + MAX_IRR)
        return
    if rate == MAX_IRR:
        high = npv_sign(flows, times, 1.0 + MAX_IRR)
        assert high == 0.0 or high == npv_sign(flows, times, smallest_growth)
        return
    growth = 1.0 + rate
    low = npv_sign(flows, times, max(growth * (1 - 1e-9) - 1.2e-16, 1e-300))
    high = npv_sign(flows, times, growth * (1 + 1e-9) + 1.2e-16)
    # Where the NPV is nearly flat around its root (large flows close together in time), the solver's
    # documented contract is the relative one: |NPV| within ROOT_TOLERANCE of the discounted flows.
    assert low * high <= 0.0 or relative_npv(flows, times, growth) <= ROOT_TOLERANCE, (flows, times, rate)


def relative_npv(flows: list[float], times: list[float], growth: float) -> float:
    """|sum(cf_k * growth ** -t_k)| / sum(|cf_k| * growth ** -t_k), exactly summed, in logs."""
    exponents = [
        math.log(abs(flow)) - time * math.log(growth) for flow, time in zip(flows, times, strict=True) if flow
    ]
    signs = [math.copysign(1.0, flow) for flow in flows if flow]
    top = max(exponents)
    scaled = [math.exp(exponent - top) for exponent in exponents]
    net = math.fsum(sign * value for sign, value in zip(signs, scaled, strict=True))
    return abs(net) / math.fsum(scaled)


# Deep losses: a rate below -99.9 % a year is a root like any other (issue 11, item 5).
SIXTEEN_QUARTERS_OF_CALLS = [-1.0] * 16 + [0.16]
DEEP_LOSS_PERIODIC = [
    SIXTEEN_QUARTERS_OF_CALLS,
    [-1.0] * 8 + [0.05],
    [-100.0, 0.0, 1.0],
    [-10.0, -10.0, -10.0, 0.0, 0.0, 0.02],
    [-50.0, 0.001, 0.0, 0.0, 0.005],
]
DEEP_LOSS_DATED = [
    ([-1000.0, 1.0], [date(2020, 1, 1), date(2020, 7, 1)]),
    ([-1000.0, -1000.0, 5.0], [date(2020, 1, 1), date(2020, 4, 1), date(2021, 1, 1)]),
    ([-1.0] * 12 + [0.3], [date(2020, month, 1) for month in range(1, 13)] + [date(2021, 1, 1)]),
    ([-500.0, 0.0, 0.3], [date(2019, 6, 30), date(2019, 9, 30), date(2020, 3, 31)]),
    ([-1e3, 1.0, 1.0], [date(2020, 1, 1), date(2020, 7, 1), date(2021, 1, 1)]),
    ([-100.0, -100.0, 0.1], [date(2020, 1, 1), date(2020, 1, 31), date(2020, 12, 31)]),
    ([-1.0, 0.00001], [date(2020, 1, 1), date(2022, 1, 1)]),
    ([-250.0, -250.0, -250.0, 0.5], [date(2021, 3, 1), date(2021, 6, 1), date(2021, 9, 1), date(2022, 3, 1)]),
]


def test_sixteen_quarters_of_calls_then_sixteen_cents_is_a_loss_of_99_96_percent() -> None:
    rate = periodic_irr(SIXTEEN_QUARTERS_OF_CALLS)
    assert rate == pytest.approx(-0.99964, abs=1e-5)
    times = [k / 4 for k in range(17)]
    assert rate == pytest.approx(root_by_bisection_in_log_growth(SIXTEEN_QUARTERS_OF_CALLS, times), abs=1e-13)
    assert_is_a_root(SIXTEEN_QUARTERS_OF_CALLS, times, rate)


@pytest.mark.parametrize("flows", DEEP_LOSS_PERIODIC)
def test_periodic_deep_losses_are_roots(flows: list[float]) -> None:
    rate = periodic_irr(flows)
    times = [k / 4 for k in range(len(flows))]
    assert -1.0 < rate < -0.999
    assert math.log1p(rate) == pytest.approx(
        math.log1p(root_by_bisection_in_log_growth(flows, times)), rel=1e-9
    )
    assert_is_a_root(flows, times, rate)


@pytest.mark.parametrize(("amounts", "dates"), DEEP_LOSS_DATED)
def test_xirr_deep_losses_are_roots(amounts: list[float], dates: list[date]) -> None:
    rate = xirr(amounts, dates)
    times = [(day - min(dates)).days / 365 for day in dates]
    assert -1.0 < rate < -0.99
    assert math.log1p(rate) == pytest.approx(
        math.log1p(root_by_bisection_in_log_growth(amounts, times)), rel=1e-9
    )
    assert_is_a_root(amounts, times, rate)


def test_flows_on_one_date_have_no_root_and_follow_the_sign_of_their_sum() -> None:
    same_day = [date(2024, 1, 1), date(2024, 1, 1)]
    assert xirr([-1.0, 2.0], same_day) == MAX_IRR
    assert xirr([-2.0, 1.0], same_day) == MIN_IRR


def test_uneven_dates_that_end_on_a_multiple_of_the_first_gap_are_not_taken_for_even_ones() -> None:
    # Found by the property below: the first gap (50 days) times 9 is the last date (450 days), but the
    # dates in between are uneven; the even-spacing shortcut gave 500.3 % where the root is 369.1 %.
    days = [0, 50, 51, 52, 274, 275, 447, 448, 449, 450]
    flows = [
        0.0,
        -1.5631462434337694e-06,
        0.0,
        0.0,
        -9.960327626773285e-05,
        -62.75227619004631,
        -0.0030048641566031422,
        -0.09846707294893696,
        131.20317123037105,
        0.0021664539051953744,
    ]
    dates = [date.fromordinal(date(2000, 1, 1).toordinal() + day) for day in days]
    rate = xirr(flows, dates)
    assert_is_a_root(flows, [day / 365 for day in days], rate)
    assert rate == pytest.approx(3.6906, abs=1e-3)


def test_money_back_first_with_a_root_beyond_the_cap_is_the_cap() -> None:
    # +1 after a quarter, -4 after two: the one root is 1 + r = 256, beyond +10,000 %.
    assert periodic_irr([0.0, 1.0, -4.0]) == MAX_IRR


def test_a_root_beyond_what_a_double_can_tell_from_minus_100_percent_is_minus_100_percent() -> None:
    assert periodic_irr([-1e9, 1e-9]) == pytest.approx(MIN_IRR, abs=1e-15)
    assert periodic_irr([-1.0] * 16 + [1e-30]) == pytest.approx(MIN_IRR, abs=1e-15)


flow_amounts = st.one_of(st.just(0.0), st.floats(1e-6, 1e9))


@settings(max_examples=300, deadline=None)
@given(
    paid=st.lists(flow_amounts, min_size=1, max_size=30).filter(any),
    returned=st.lists(flow_amounts, min_size=1, max_size=30).filter(any),
    money_in_first=st.booleans(),
    gaps_in_days=st.one_of(st.none(), st.lists(st.integers(1, 400), min_size=60, max_size=60)),
)
def test_one_sign_change_gives_a_root_or_the_documented_clip(
    paid: list[float], returned: list[float], money_in_first: bool, gaps_in_days: list[int] | None
) -> None:
    first, second = ([-x for x in paid], returned) if money_in_first else (returned, [-x for x in paid])
    flows = first + second
    if gaps_in_days is None:
        times = [k / 4 for k in range(len(flows))]
        rate = periodic_irr(flows)
    else:
        days = [sum(gaps_in_days[:k]) for k in range(len(flows))]
        dates = [date.fromordinal(date(2000, 1, 1).toordinal() + day) for day in days]
        times = [day / 365 for day in days]
        rate = xirr(flows, dates)
    assert_is_a_root(flows, times, rate)
