"""Internal rate of return of periodic (quarterly) and dated (XIRR) cash flows.

Policy, documented in docs/model.md:

* The rate is annual and effective: NPV = sum(cf_k * (1 + r) ** -t_k) with t in years (days / 365 for
  dated flows, Excel's XIRR convention; k / periods_per_year for periodic flows).
* No sign change: flows that never return anything (no positive flow) give -100 % (``MIN_IRR``); flows
  that never cost anything (no negative flow) give ``MAX_IRR``. All-zero flows give 0.
* Otherwise a safeguarded Halley iteration (Newton with a curvature correction) starting from the
  multiple-implied rate looks for the root. Its answer is accepted only if it *is* a root: |NPV| at most
  ``ROOT_TOLERANCE`` times the sum of the absolute discounted flows (a relative test, so it holds at any
  scale and any rate). Otherwise a scan over a fixed grid of growth factors 1 + r, from 1e-300 (a rate
  of -100 % to 300 digits) up to the cap, brackets the root nearest 0 % and bisection in log(1 + r)
  finishes it: a loss of 99.96 % a year is found as such, not confused with a root that is not there.
* A root below 1 + r = 1e-300 (not representable apart from -100 % anyway) gives ``MIN_IRR``; a root
  above the cap gives ``MAX_IRR``.
* If no root exists at all (possible with several sign changes, or with every flow on one date): a
  positive NPV at every rate gives ``MAX_IRR``; otherwise (e.g. fees called after the last distribution
  of a losing fund) the IRR is computed with every contribution moved to the earliest date: one sign
  change, one root, and a conservative (lower) rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.jit import jit, jit_phase, jit_step

MIN_IRR = -1.0
MAX_IRR = 100.0
"""Annual IRR is clipped to +10,000 %: beyond that the number means nothing to a fund analyst."""
DAYS_PER_YEAR = 365.0
ROOT_TOLERANCE = 1e-7
"""Halley's answer is accepted when |NPV| <= ROOT_TOLERANCE * sum(|discounted flow|) at its last iterate,
which lies within 1e-11 (relative) of the answer."""
_TOLERANCE = 1e-11
_MAX_ITERATIONS = 50
_BISECTION_STEPS = 400
_BISECTION_TOLERANCE = 1e-14
_GRID = np.log(
    np.array(
        [
            1e-300, 1e-200, 1e-150, 1e-100, 1e-60, 1e-40, 1e-30, 1e-20, 1e-15, 1e-12, 1e-9, 1e-7, 1e-6,
            1e-5, 1e-4, 0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0,
            1.05, 1.1, 1.15, 1.2, 1.3, 1.4, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0, 11.0, 21.0, 51.0, 101.0,
        ]
    )
)  # fmt: skip
_GRID.setflags(write=False)
_LIMIT = 1e6
"""A log(1 + r) so far out that only the flows on the first (or, negated, the last) date count."""
"""log(1 + r) of the rates scanned to bracket a root (growth factors 1 + r from 1e-300 to the cap).
Read-only: shared module state (Numba also freezes it into the compiled kernels as a constant, so a
write here would never reach them anyway)."""


@jit_step
def _evenly_spaced(times: npt.NDArray[np.float64], spacing: float) -> bool:
    """Whether every time is exactly ``k * spacing`` from 0 (the engine's quarters): checking only the
    ends took unevenly dated flows that happen to end on ``(count - 1) * spacing`` for even ones."""
    count = times.shape[0]
    if count < 2:
        return False
    for k in range(count):  # noqa: SIM110 - Numba compiles this loop, not all() over a generator
        if times[k] != spacing * k:
            return False
    return True


@jit_step
def _time_step(times: npt.NDArray[np.float64]) -> float:
    """The step of evenly spaced ``times`` (every time exactly ``k * step`` from 0); NaN when they are
    not. Checked once per IRR rather than at every iterate: it is a pass over all the times."""
    spacing = times[1] - times[0] if times.shape[0] > 1 else 0.0
    if _evenly_spaced(times, spacing):
        return spacing
    return math.nan


@jit_step
def _npv_derivatives(
    flows: npt.NDArray[np.float64], times: npt.NDArray[np.float64], rate: float, spacing: float
) -> tuple[float, float, float, float]:
    """NPV at ``rate``, its first and second derivatives with respect to the rate, and the sum of the
    absolute discounted flows (the scale against which the NPV counts as zero).

    ``spacing`` is the times' common step when they are evenly spaced, else NaN (:func:`_time_step`)."""
    # Evenly spaced times (the engine's quarterly flows) take a multiply per period instead of an exp.
    log_growth = math.log1p(rate)
    total = 0.0
    first = 0.0
    second = 0.0
    magnitude = 0.0
    count = flows.shape[0]
    if not math.isnan(spacing):
        factor = math.exp(-log_growth * spacing)
        discount = 1.0
        for k in range(count):
            discounted = flows[k] * discount
            total += discounted
            magnitude += abs(discounted)
            first += times[k] * discounted
            second += times[k] * (times[k] + 1.0) * discounted
            discount *= factor
    else:
        for k in range(count):
            if flows[k] != 0.0:
                discounted = flows[k] * math.exp(-log_growth * times[k])
                total += discounted
                magnitude += abs(discounted)
                first += times[k] * discounted
                second += times[k] * (times[k] + 1.0) * discounted
    growth = 1.0 + rate
    return total, -first / growth, second / (growth * growth), magnitude


@jit
def _scaled_npv(
    flows: npt.NDArray[np.float64], times: npt.NDArray[np.float64], log_growth: float
) -> tuple[float, float]:
    """NPV at the rate exp(log_growth) - 1 times a positive factor, and the sum of the absolute terms
    times the same factor. The factor keeps every discount exponent <= 0, so nothing overflows at any
    rate: flows are discounted to the last date for falling values (1 + r < 1), to the first otherwise."""
    count = flows.shape[0]
    reference = math.nan
    for k in range(count):
        if flows[k] != 0.0 and (
            math.isnan(reference)
            or (log_growth < 0.0 and times[k] > reference)
            or (log_growth >= 0.0 and times[k] < reference)
        ):
            reference = times[k]
    total = 0.0
    magnitude = 0.0
    for k in range(count):
        if flows[k] != 0.0:
            discounted = flows[k] * math.exp(-log_growth * (times[k] - reference))
            total += discounted
            magnitude += abs(discounted)
    return total, magnitude


@jit
def solve_irr(flows: npt.NDArray[np.float64], times: npt.NDArray[np.float64], guess: float) -> float:
    """Annual IRR of ``flows`` at ``times`` (years), following the module's policy.

    The policy's three stages (one sign, Halley, grid) are separate compiled functions: Numba calls them
    directly from here, so the split costs no measurable time and changes no result."""
    rate = _one_signed_irr(flows)
    if math.isnan(rate):
        rate = _iterated_irr(flows, times, guess)
    if math.isnan(rate):
        rate = _gridded_irr(flows, times)
    return rate


@jit_step
def _one_signed_irr(flows: npt.NDArray[np.float64]) -> float:
    """The IRR of flows without a sign change (0 when all are zero); NaN when both signs occur."""
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
    return math.nan


@jit_phase
def _iterated_irr(flows: npt.NDArray[np.float64], times: npt.NDArray[np.float64], guess: float) -> float:
    """The safeguarded Halley iteration's root, or NaN when it does not converge on one."""
    rate = min(max(guess, -0.99), MAX_IRR)
    spacing = _time_step(times)
    for _ in range(_MAX_ITERATIONS):
        value, slope, curvature, magnitude = _npv_derivatives(flows, times, rate, spacing)
        if slope == 0.0 or not math.isfinite(value) or not math.isfinite(slope):
            break
        next_rate = _next_rate(rate, value, slope, curvature)
        if next_rate > MAX_IRR * 10.0:
            break
        if abs(next_rate - rate) <= _TOLERANCE * (1.0 + abs(rate)):
            # A small step is not enough: near -100 % the NPV is so steep that the iteration can stall
            # far from any root. The NPV must vanish relative to the flows already at the last iterate
            # (one step short of the answer, so the answer's own residual is smaller still).
            if abs(value) <= ROOT_TOLERANCE * magnitude and MIN_IRR < next_rate <= MAX_IRR:
                return next_rate
            break
        rate = next_rate
    return math.nan


@jit_step
def _next_rate(rate: float, value: float, slope: float, curvature: float) -> float:
    """Halley's step (cubic convergence); Newton's when the correction would flip its sign. A step past
    -100 % goes halfway from ``rate`` to -100 % instead."""
    denominator = 2.0 * slope * slope - value * curvature
    if denominator > 0.0 and math.isfinite(denominator):
        step = 2.0 * value * slope / denominator
    else:
        step = value / slope
    next_rate = rate - step
    if next_rate <= -1.0:
        next_rate = (rate - 1.0) / 2.0
    return next_rate


@jit
def _gridded_irr(flows: npt.NDArray[np.float64], times: npt.NDArray[np.float64]) -> float:
    """The root bracketed on the grid; with none there, the policy's answer for a root off the grid or
    for no root at all."""
    rate = _bracketed_irr(flows, times)
    if math.isnan(rate):
        # No root on the grid: one beyond either end of it (the NPV's sign there differs from its limit,
        # which is the sign of the first flows as r -> infinity and of the last as r -> -100 %) is
        # clipped to that end; otherwise there is none at all.
        top, _ = _scaled_npv(flows, times, _GRID[_GRID.shape[0] - 1])
        if top * _scaled_npv(flows, times, _LIMIT)[0] <= 0.0:
            return MAX_IRR
        bottom, _ = _scaled_npv(flows, times, _GRID[0])
        if bottom * _scaled_npv(flows, times, -_LIMIT)[0] <= 0.0:
            return MIN_IRR
        if top > 0.0:
            return MAX_IRR  # a gain at every rate (e.g. all flows on one date, netting positive)
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
    """The root nearest 0 % bracketed on the grid, by bisection in log(1 + r); NaN if none is bracketed."""
    best_low = 0.0
    best_high = 0.0
    best_distance = math.inf
    previous_point = _GRID[0]
    previous_value, _ = _scaled_npv(flows, times, previous_point)
    for index in range(1, _GRID.shape[0]):
        point = _GRID[index]
        value, _ = _scaled_npv(flows, times, point)
        if previous_value * value <= 0.0:
            distance = min(abs(previous_point), abs(point))
            if distance < best_distance:
                best_distance = distance
                best_low = previous_point
                best_high = point
        previous_point = point
        previous_value = value
    if best_distance == math.inf:
        return math.nan
    low_value, _ = _scaled_npv(flows, times, best_low)
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (best_low + best_high)
        middle_value, _ = _scaled_npv(flows, times, middle)
        if low_value * middle_value <= 0.0:
            best_high = middle
        else:
            best_low = middle
            low_value = middle_value
        if best_high - best_low <= _BISECTION_TOLERANCE * (1.0 + abs(best_low)):
            break
    return min(max(math.expm1(0.5 * (best_low + best_high)), MIN_IRR), MAX_IRR)


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
