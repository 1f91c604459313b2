"""Whole-fund (European) distribution waterfall, quarter by quarter.

Tiers, in order, applied to each quarter's distributable proceeds:

1. Return of capital: 100 % to LPs until they have received back all the capital they contribute over the
   fund's life (the simulation knows every future call, so no interim carry is ever clawed back).
2. Preferred return: 100 % to LPs until the pref accrued so far is paid. Pref compounds quarterly at the
   annual ``preferred_return`` on unreturned contributed capital plus unpaid pref.
3. GP catch-up: a share ``catch_up`` of distributions goes to the GP until the GP holds ``carry`` of all
   profit distributed (``catch_up`` 0 disables the tier; 1 is a full catch-up).
4. Split: ``carry`` to the GP, the rest to LPs.

The unrealized value (NAV) at the horizon goes through the same tiers as a hypothetical final distribution,
giving the LPs' share of residual value (for RVPI and TVPI) and the carry accrued on it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.jit import jit

TierState = npt.NDArray[np.float64]
"""Running state of the waterfall: see the ``STATE_*`` indices."""

STATE_RETURNED = 0
STATE_PREF_UNPAID = 1
STATE_LP_PROFIT = 2
STATE_GP_TOTAL = 3
STATE_SIZE = 4


@jit
def _distribute(
    amount: float,
    state: TierState,
    lifetime_contributions: float,
    carry: float,
    catch_up: float,
) -> tuple[float, float]:
    """Split one distribution into (LP, GP) shares, updating ``state``."""
    to_lp = 0.0
    to_gp = 0.0
    remaining = amount

    capital = min(remaining, max(lifetime_contributions - state[STATE_RETURNED], 0.0))
    state[STATE_RETURNED] += capital
    to_lp += capital
    remaining -= capital

    pref = min(remaining, state[STATE_PREF_UNPAID])
    state[STATE_PREF_UNPAID] -= pref
    state[STATE_LP_PROFIT] += pref
    to_lp += pref
    remaining -= pref

    if remaining > 0.0 and catch_up > carry:
        shortfall = carry * (state[STATE_LP_PROFIT] + state[STATE_GP_TOTAL]) - state[STATE_GP_TOTAL]
        if shortfall > 0.0:
            tier = min(remaining, shortfall / (catch_up - carry))
            state[STATE_GP_TOTAL] += catch_up * tier
            state[STATE_LP_PROFIT] += (1.0 - catch_up) * tier
            to_gp += catch_up * tier
            to_lp += (1.0 - catch_up) * tier
            remaining -= tier

    if remaining > 0.0:
        gp_share = carry * remaining
        state[STATE_GP_TOTAL] += gp_share
        state[STATE_LP_PROFIT] += remaining - gp_share
        to_gp += gp_share
        to_lp += remaining - gp_share
    return to_lp, to_gp


@jit
def run_waterfall(
    calls: npt.NDArray[np.float64],
    proceeds: npt.NDArray[np.float64],
    residual_value: float,
    carry: float,
    quarterly_pref: float,
    catch_up: float,
    lp_distributions: npt.NDArray[np.float64],
    state: TierState,
) -> tuple[float, float, float]:
    """Fill ``lp_distributions`` per quarter; return (GP carry paid, LP share of NAV, GP share of NAV).

    ``calls`` and ``proceeds`` are per quarter; ``residual_value`` is valued at the last quarter.
    """
    lifetime_contributions = 0.0
    for quarter in range(calls.shape[0]):
        lifetime_contributions += calls[quarter]
    state[:] = 0.0
    contributed = 0.0
    gp_paid = 0.0
    for quarter in range(calls.shape[0]):
        if quarterly_pref > 0.0:
            unreturned = max(contributed - state[STATE_RETURNED], 0.0)
            state[STATE_PREF_UNPAID] += (unreturned + state[STATE_PREF_UNPAID]) * quarterly_pref
        contributed += calls[quarter]
        if proceeds[quarter] > 0.0:
            to_lp, to_gp = _distribute(proceeds[quarter], state, lifetime_contributions, carry, catch_up)
            lp_distributions[quarter] = to_lp
            gp_paid += to_gp
        else:
            lp_distributions[quarter] = 0.0
    lp_residual = 0.0
    gp_residual = 0.0
    if residual_value > 0.0:
        lp_residual, gp_residual = _distribute(residual_value, state, lifetime_contributions, carry, catch_up)
    return gp_paid, lp_residual, gp_residual
