"""Internal rate of return of periodic (quarterly) and dated (XIRR) cash flows.

Policy, documented in docs/model.md:

* The rate is annual and effective: NPV = sum(cf_k * (1 + r) ** -t_k) with t in years (days / 365 for
  dated flows, Excel's XIRR convention; k / periods_per_year for periodic flows).
* No sign change: flows that never return anything (no positive flow) give -100 % (``MIN_IRR``); flows
  that never cost anything (no negative flow) give ``MAX_IRR``. All-zero flows give 0.
* Otherwise a safeguarded Halley iteration (Newton with a curvature correction) starting from the
  multiple-implied rate finds the root; when it fails, a scan over a fixed grid of rates brackets the
  root nearest zero and bisection finishes it.
* If no root exists at all (possible with several sign changes, e.g. fees called after the last
  distribution of a losing fund), the IRR is computed with every contribution moved to the earliest
  date: one sign change, one root, and a conservative (lower) rate.
* Results are clipped to [MIN_IRR, MAX_IRR].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.jit import jit

MIN_IRR = -1.0
MAX_IRR = 100.0
"""Annual IRR is clipped to +10,000 %: beyond that the number means nothing to a fund analyst."""
DAYS_PER_YEAR = 365.0
_TOLERANCE = 1e-11
_MAX_ITERATIONS = 50
_BISECTION_STEPS = 200
_GRID = np.array(
    [
        -0.999, -0.99, -0.95, -0.9, -0.8, -0.7, -0.6, -0.5, -0.4, -0.3, -0.2, -0.15, -0.1, -0.05,
        0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0,
    ]
)  # fmt: skip
_GRID.setflags(write=False)
"""Rates scanned to bracket a root. Read-only: shared module state (Numba also freezes it into the
compiled kernels as a constant, so a write here would never reach them anyway)."""


@jit
def _npv(flows: npt.NDArray[np.float64], times: npt.NDArray[np.float64], rate: float) -> float:
    value, _, _ = _npv_derivatives(flows, times, rate)
    return value


@jit
def _npv_derivatives(
    flows: npt.NDArray[np.float64], times: npt.NDArray[np.float64], rate: float
) -> tuple[float, float, float]:
    """NPV at ``rate`` and its first and second derivatives with respect to the rate."""
    # Evenly spaced times (the engine's quarterly flows) take a multiply per period instead of an exp.
    log_growth = math.log1p(rate)
    total = 0.0
    first = 0.0
    second = 0.0
    count = flows.shape[0]
    spacing = times[1] - times[0] if count > 1 else 0.0
    evenly_spaced = count > 1 and times[0] == 0.0 and times[count - 1] == spacing * (count - 1)
    if evenly_spaced:
        factor = math.exp(-log_growth * spacing)
        discount = 1.0
        for k in range(count):
            discounted = flows[k] * discount
            total += discounted
            first += times[k] * discounted
            second += times[k] * (times[k] + 1.0) * discounted
            discount *= factor
    else:
        for k in range(count):
            if flows[k] != 0.0:
                discounted = flows[k] * math.exp(-log_growth * times[k])
                total += discounted
                first += times[k] * discounted
                second += times[k] * (times[k] + 1.0) * discounted
    growth = 1.0 + rate
    return total, -first / growth, second / (growth * growth)


@jit
def solve_irr(flows: npt.NDArray[np.float64], times: npt.NDArray[np.float64], guess: float) -> float:
    """Annual IRR of ``flows`` at ``times`` (years), following the module's policy."""
    has_positive = False
    has_negative = False
    for k in range(flows.shape[0]):
        if flows[k] > 0.0:
            has_positive = True
        elif flows[k] < 0.0:
            has_negative = True
    if not has_positive and not has_negative:
        return 0.0
    if not has_positive:
        return MIN_IRR
    if not has_negative:
        return MAX_IRR

    rate = min(max(guess, -0.99), MAX_IRR)
    for _ in range(_MAX_ITERATIONS):
        value, slope, curvature = _npv_derivatives(flows, times, rate)
        if slope == 0.0 or not math.isfinite(value) or not math.isfinite(slope):
            break
        # Halley's step (cubic convergence); Newton's when the correction would flip its sign.
        denominator = 2.0 * slope * slope - value * curvature
        if denominator > 0.0 and math.isfinite(denominator):
            step = 2.0 * value * slope / denominator
        else:
            step = value / slope
        next_rate = rate - step
        if next_rate <= -1.0:
            next_rate = (rate - 1.0) / 2.0
        if next_rate > MAX_IRR * 10.0:
            break
        if abs(next_rate - rate) <= _TOLERANCE * (1.0 + abs(rate)):
            return min(max(next_rate, MIN_IRR), MAX_IRR)
        rate = next_rate
    rate = _bracketed_irr(flows, times)
    if math.isnan(rate):
        if _npv(flows, times, MAX_IRR) > 0.0:
            return MAX_IRR
        rate = _bracketed_irr(_calls_upfront(flows, times), times)
    return MIN_IRR if math.isnan(rate) else rate


@jit
def _calls_upfront(flows: npt.NDArray[np.float64], times: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # One sign change guarantees one root: all contributions at the earliest date, then the rest.
    conventional = np.empty_like(flows)
    paid = 0.0
    for k in range(flows.shape[0]):
        if flows[k] < 0.0:
            paid += flows[k]
            conventional[k] = 0.0
        else:
            conventional[k] = flows[k]
    conventional[np.argmin(times)] += paid
    return conventional


@jit
def _bracketed_irr(flows: npt.NDArray[np.float64], times: npt.NDArray[np.float64]) -> float:
    best_low = 0.0
    best_high = 0.0
    best_distance = math.inf
    previous_rate = _GRID[0]
    previous_value = _npv(flows, times, previous_rate)
    for index in range(1, _GRID.shape[0]):
        rate = _GRID[index]
        value = _npv(flows, times, rate)
        if math.isfinite(value) and math.isfinite(previous_value) and previous_value * value <= 0.0:
            distance = min(abs(previous_rate), abs(rate))
            if distance < best_distance:
                best_distance = distance
                best_low = previous_rate
                best_high = rate
        previous_rate = rate
        previous_value = value
    if best_distance == math.inf:
        return math.nan
    low_value = _npv(flows, times, best_low)
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (best_low + best_high)
        middle_value = _npv(flows, times, middle)
        if low_value * middle_value <= 0.0:
            best_high = middle
        else:
            best_low = middle
            low_value = middle_value
        if best_high - best_low <= _TOLERANCE * (1.0 + abs(best_low)):
            break
    return min(max(0.5 * (best_low + best_high), MIN_IRR), MAX_IRR)


def xirr(amounts: Sequence[float], dates: Sequence[date]) -> float:
    """Annual IRR of dated cash flows with Excel's XIRR day count (actual days / 365)."""
    if len(amounts) != len(dates) or not amounts:
        raise ValueError("xirr needs as many dates as amounts, and at least one of each")
    flows = np.asarray(amounts, dtype=np.float64)
    if not np.all(np.isfinite(flows)):
        raise ValueError("xirr amounts must be finite")
    start = min(dates)
    times = np.array([(day - start).days / DAYS_PER_YEAR for day in dates], dtype=np.float64)
    return float(solve_irr(flows, times, 0.1))


def periodic_irr(flows: Sequence[float], periods_per_year: int = 4) -> float:
    """Annual IRR of flows spaced one period apart (quarterly by default), as the engine computes it."""
    values = np.asarray(flows, dtype=np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("periodic_irr needs at least one finite flow")
    times = np.arange(values.size, dtype=np.float64) / periods_per_year
    return float(solve_irr(values, times, 0.1))
