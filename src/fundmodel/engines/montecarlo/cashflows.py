"""The Monte Carlo kernel: every company of every simulated fund, its rounds, follow-ons, exits and the
fund's quarterly cash flows, waterfall and IRR.

Per fund, four phases, each a compiled function with named inputs:

0. The fund's market state (one draw, shared by all its companies; :mod:`~fundmodel.engines.montecarlo.risk`).
1. Company paths (:mod:`~fundmodel.engines.montecarlo.paths`): each company draws its entry quarter and
   quality and walks its stage path (survive or fail, then graduate or exit, per round, with delays),
   recording dated events.
2. Events (:mod:`~fundmodel.engines.montecarlo.events`): the events of all companies in chronological
   order (ties by slot), so follow-ons draw on the shared reserve pool (recycled cash first) in the order
   they happen, and exits may refill the pool (recycling).
3. Wind-up and valuation (here): a fund whose companies have all resolved stops calling fees; companies
   still alive at the horizon are valued at their last round's post-money times the fund's ownership
   (NAV).
4. LP cash flows (here): fees, expenses, checks and proceeds give quarterly calls and distributable
   proceeds, which go through the waterfall; LP net cash flows give DPI, RVPI, TVPI, IRR, the J-curve
   and the yearly points (TVPI, DPI, paid-in, NAV at the end of each year).

Results go to ``out[column, fund]`` (see the ``OUT_*`` columns; the ledger of financings from
``OUT_LEDGER`` on), ``j_curve[fund, quarter]`` and ``yearly[fund, YEARLY_*, point]``.

How it is compiled, and why: :func:`simulate_funds` allocates the scratch arrays once per call, reuses them
fund after fund and owns them; the phases are ``jit_phase`` functions (no reference counting, so passing
them named tuples of arrays once per fund costs no atomic operations) and the per-company and per-event
steps inside them are ``jit_step`` functions, inlined (see :mod:`~fundmodel.engines.montecarlo.jit`). A
new phase that needs a fresh array gets it from :func:`simulate_funds`, never by allocating one itself.

Nothing here may change a result without bumping ``runner.ENGINE_VERSION``:
``tests/engines/montecarlo/test_pinned_results.py`` pins every number. Numba's on-disk cache of a
compiled function is invalidated only by a change to that function's own file, not to the functions it
calls in other modules: after editing ``paths.py`` or ``events.py`` (or ``rng.py``, ``irr.py``, ...),
delete ``engines/montecarlo/__pycache__/*.nb[ic]`` (or use a fresh ``NUMBA_CACHE_DIR``) before measuring
or testing.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.events import (
    LEDGER_FUND_RETURNERS,
    LEDGER_SIZE,
    EventTotals,
    file_financings,
    process_events,
    sort_events,
)
from fundmodel.engines.montecarlo.irr import solve_irr
from fundmodel.engines.montecarlo.jit import jit, jit_phase, jit_step
from fundmodel.engines.montecarlo.kernel_inputs import FundBatch, FundTerms, PortfolioArrays
from fundmodel.engines.montecarlo.paths import (
    CompanyBook,
    FundStream,
    draw_company_paths,
    market_state,
    new_company_book,
    new_event_log,
)
from fundmodel.engines.montecarlo.rng import FUNDS_PER_BLOCK
from fundmodel.engines.montecarlo.waterfall import STATE_SIZE, run_waterfall

OUT_NET_TVPI = 0
OUT_DPI = 1
OUT_RVPI = 2
OUT_NET_IRR = 3
OUT_GROSS_MOIC = 4
OUT_PAID_IN = 5
OUT_INVESTED_INITIAL = 6
OUT_INVESTED_FOLLOW_ON = 7
OUT_RESERVE_CALLED = 8
OUT_RECYCLED = 9
OUT_CARRY = 10
OUT_LP_DISTRIBUTED = 11
OUT_GROSS_PROCEEDS = 12
OUT_DISTRIBUTABLE = 13
OUT_RESIDUAL_VALUE = 14
OUT_LOSS_RATIO = 15
OUT_FOLLOW_ON_REQUESTED = 16
OUT_LP_RESIDUAL = 17
OUT_MARKET = 18
"""The fund's market state (standard normal)."""
OUT_LEDGER = 19
"""``OUT_LEDGER + events.LEDGER_*``: the fund's financings by outcome (see :mod:`.events`)."""
OUT_COLUMNS = OUT_LEDGER + LEDGER_SIZE

YEARLY_TVPI = 0
YEARLY_DPI = 1
YEARLY_PAID_IN = 2
YEARLY_NAV = 3
YEARLY_MEASURES = 4
QUARTERS_PER_POINT = 4
"""Yearly points: the end of quarters 0, 4, 8, ... and the horizon when it is not a whole year."""


def yearly_points(horizon: int) -> int:
    """How many yearly points a horizon of ``horizon`` quarters has."""
    return horizon // QUARTERS_PER_POINT + 1 + (1 if horizon % QUARTERS_PER_POINT else 0)


class QuarterlyFlows(NamedTuple):
    """One fund's cash per quarter 0 .. horizon (scratch space, reused fund after fund)."""

    calls: npt.NDArray[np.float64]
    """Called from the LPs: fees, expenses, initial checks and reserve-funded follow-ons."""
    proceeds: npt.NDArray[np.float64]
    """Distributable: exit proceeds not recycled, and unspent recycled cash at wind-up."""
    lp_distributions: npt.NDArray[np.float64]
    """The LPs' part of ``proceeds`` after the waterfall."""
    lp_net: npt.NDArray[np.float64]
    """LP distributions minus calls, plus the LPs' share of NAV at the horizon: the IRR's flows."""
    nav_change: npt.NDArray[np.float64]
    """Change in the value of the fund's stakes at their last marks (entries, rounds, resolutions)."""
    waterfall_state: npt.NDArray[np.float64]
    ledger: npt.NDArray[np.float64]
    """The fund's financings by outcome (``events.LEDGER_*``)."""


class Valuation(NamedTuple):
    """The portfolio at the horizon."""

    residual: float
    """NAV of the companies still alive."""
    lost: float
    """Cost of the companies worth less than the fund put in."""
    total_invested: float


class LpReturns(NamedTuple):
    """One fund's totals from the LPs' side."""

    paid_in: float
    distributed: float
    distributable: float
    lp_residual: float
    """The LPs' share of NAV at the horizon."""
    carry_paid: float


@jit
def new_quarterly_flows(horizon: int) -> QuarterlyFlows:
    return QuarterlyFlows(
        np.empty(horizon + 1, dtype=np.float64),
        np.empty(horizon + 1, dtype=np.float64),
        np.empty(horizon + 1, dtype=np.float64),
        np.empty(horizon + 1, dtype=np.float64),
        np.empty(horizon + 1, dtype=np.float64),
        np.empty(STATE_SIZE, dtype=np.float64),
        np.empty(LEDGER_SIZE, dtype=np.float64),
    )


@jit_step
def any_alive(alive: npt.NDArray[np.bool_], count: int) -> bool:
    for slot in range(count):  # noqa: SIM110 - a plain loop compiles to the tightest nopython code
        if alive[slot]:
            return True
    return False


@jit_phase
def start_fund(flows: QuarterlyFlows, fixed_calls: npt.NDArray[np.float64]) -> None:
    for quarter in range(fixed_calls.shape[0]):
        flows.calls[quarter] = fixed_calls[quarter]
        flows.proceeds[quarter] = 0.0
        flows.nav_change[quarter] = 0.0
    for entry in range(flows.ledger.shape[0]):
        flows.ledger[entry] = 0.0


@jit_phase
def wind_up(
    flows: QuarterlyFlows,
    fixed_calls: npt.NDArray[np.float64],
    alive: npt.NDArray[np.bool_],
    totals: EventTotals,
) -> None:
    """Stop fees and expenses after the last resolution once every company has exited or failed, and
    return recycled cash never reinvested to the LPs when the fund winds up (or at the horizon)."""
    horizon = fixed_calls.shape[0] - 1
    if totals.last_resolution >= 0 and not any_alive(alive, alive.shape[0]):
        for quarter in range(totals.last_resolution + 1, horizon):
            flows.calls[quarter] -= fixed_calls[quarter]
        wind_up_quarter = totals.last_resolution
    else:
        wind_up_quarter = horizon
    flows.proceeds[wind_up_quarter] += totals.recycled_unspent


@jit_phase
def value_portfolio(book: CompanyBook, ledger: npt.NDArray[np.float64], commitments: float) -> Valuation:
    """Mark the companies alive at the horizon to their last post-money (filing their financings at that
    value, converted: no preference is paid on a company still running); total cost and losses."""
    residual = 0.0
    lost = 0.0
    total_invested = 0.0
    for slot in range(book.alive.shape[0]):
        if book.alive[slot]:
            book.value[slot] = book.ownership[slot] * book.mark[slot]
            residual += book.value[slot]
            file_financings(book, slot, -1.0, book.mark[slot], ledger)
            if book.value[slot] >= commitments:
                ledger[LEDGER_FUND_RETURNERS] += 1.0
        total_invested += book.invested[slot]
        if book.value[slot] < book.invested[slot]:
            lost += book.invested[slot]
    return Valuation(residual, lost, total_invested)


@jit_phase
def lp_cash_flows(
    flows: QuarterlyFlows,
    residual: float,
    terms: FundTerms,
    j_curve: npt.NDArray[np.float32],
    yearly: npt.NDArray[np.float32],
    column: int,
) -> LpReturns:
    """Run the waterfall, fill ``flows.lp_net``, the fund's row ``column`` of the J-curves (cumulative
    LP net cash flow per dollar committed, before NAV) and its yearly points.

    A yearly point's NAV is the fund's stakes at their last marks (gross of any carry on them) and its
    TVPI is (LP distributions so far + that NAV) / paid-in so far, except at the horizon, where the TVPI
    is the fund's net TVPI (NAV after the carry accrued on it)."""
    horizon = flows.calls.shape[0] - 1
    carry_paid, lp_residual, _ = run_waterfall(
        flows.calls,
        flows.proceeds,
        residual,
        terms.carry,
        terms.quarterly_pref,
        terms.catch_up,
        flows.lp_distributions,
        flows.waterfall_state,
    )
    paid_in = 0.0
    distributed = 0.0
    distributable = 0.0
    cumulative = 0.0
    nav = 0.0
    for quarter in range(horizon + 1):
        paid_in += flows.calls[quarter]
        distributed += flows.lp_distributions[quarter]
        distributable += flows.proceeds[quarter]
        flows.lp_net[quarter] = flows.lp_distributions[quarter] - flows.calls[quarter]
        cumulative += flows.lp_net[quarter]
        j_curve[column, quarter] = cumulative / terms.commitments
        nav += flows.nav_change[quarter]
        if quarter == horizon:
            point = yearly.shape[2] - 1
            nav_now = residual
            value = distributed + lp_residual
        elif quarter % QUARTERS_PER_POINT == 0:
            point = quarter // QUARTERS_PER_POINT
            nav_now = max(nav, 0.0)
            value = distributed + nav_now
        else:
            continue
        yearly[column, YEARLY_PAID_IN, point] = paid_in
        yearly[column, YEARLY_NAV, point] = nav_now
        yearly[column, YEARLY_DPI, point] = distributed / paid_in if paid_in > 0.0 else 0.0
        yearly[column, YEARLY_TVPI, point] = value / paid_in if paid_in > 0.0 else 0.0
    flows.lp_net[horizon] += lp_residual
    return LpReturns(paid_in, distributed, distributable, lp_residual, carry_paid)


@jit_phase
def irr_starting_guess(
    flows: QuarterlyFlows, times_years: npt.NDArray[np.float64], lp: LpReturns, net_tvpi: float
) -> float:
    # The multiple spread over the gap between the cash-weighted dates of money in and money out:
    # usually a few Newton steps from the root.
    horizon = flows.calls.shape[0] - 1
    paid_time = 0.0
    returned_time = 0.0
    for quarter in range(horizon + 1):
        paid_time += flows.calls[quarter] * times_years[quarter]
        returned_time += flows.lp_distributions[quarter] * times_years[quarter]
    returned_time += lp.lp_residual * times_years[horizon]
    if net_tvpi > 0.0:
        duration = returned_time / (lp.distributed + lp.lp_residual) - paid_time / lp.paid_in
        return math.exp(math.log(net_tvpi) / max(duration, 0.25)) - 1.0
    return -0.5


@jit_phase
def record_fund(
    out: npt.NDArray[np.float64],
    column: int,
    invested_initial: float,
    totals: EventTotals,
    valuation: Valuation,
    lp: LpReturns,
    net_tvpi: float,
    net_irr: float,
    market: float,
    ledger: npt.NDArray[np.float64],
) -> None:
    out[OUT_MARKET, column] = market
    for entry in range(ledger.shape[0]):
        out[OUT_LEDGER + entry, column] = ledger[entry]
    out[OUT_NET_TVPI, column] = net_tvpi
    out[OUT_DPI, column] = lp.distributed / lp.paid_in
    out[OUT_RVPI, column] = lp.lp_residual / lp.paid_in
    out[OUT_NET_IRR, column] = net_irr
    out[OUT_GROSS_MOIC, column] = (totals.gross_proceeds + valuation.residual) / valuation.total_invested
    out[OUT_PAID_IN, column] = lp.paid_in
    out[OUT_INVESTED_INITIAL, column] = invested_initial
    out[OUT_INVESTED_FOLLOW_ON, column] = totals.follow_on
    out[OUT_RESERVE_CALLED, column] = totals.reserve_called
    out[OUT_RECYCLED, column] = totals.recycled_total
    out[OUT_CARRY, column] = lp.carry_paid
    out[OUT_LP_DISTRIBUTED, column] = lp.distributed
    out[OUT_GROSS_PROCEEDS, column] = totals.gross_proceeds
    out[OUT_DISTRIBUTABLE, column] = lp.distributable
    out[OUT_RESIDUAL_VALUE, column] = valuation.residual
    out[OUT_LOSS_RATIO, column] = valuation.lost / valuation.total_invested
    out[OUT_FOLLOW_ON_REQUESTED, column] = totals.requested
    out[OUT_LP_RESIDUAL, column] = lp.lp_residual


@jit
def simulate_funds(
    batch: FundBatch,
    portfolio: PortfolioArrays,
    terms: FundTerms,
    out: npt.NDArray[np.float64],
    j_curve: npt.NDArray[np.float32],
    yearly: npt.NDArray[np.float32],
) -> None:
    """Simulate the funds of ``batch`` into ``out``, ``j_curve`` and ``yearly`` (see the module's phases)."""
    horizon = portfolio.fixed_calls.shape[0] - 1
    slots = portfolio.slot_stage.shape[0]
    log = new_event_log(slots * (portfolio.stage_table.shape[0] + 1))
    book = new_company_book(slots)
    flows = new_quarterly_flows(horizon)
    quarter_starts = np.empty(horizon + 1, dtype=np.int64)
    sort_scratch = np.empty(log.sort_key.shape[0], dtype=np.int64)
    # Every array the fund loop touches is bound once, here: reading a named tuple's array field in the
    # loop would take and drop a reference to it (two atomic operations) on every fund.
    block_keys = batch.block_keys
    fixed_calls = portfolio.fixed_calls
    times_years = portfolio.times_years
    stage_table = portfolio.stage_table
    sort_keys = log.sort_key
    alive = book.alive
    calls = flows.calls
    proceeds = flows.proceeds
    lp_net = flows.lp_net
    nav_change = flows.nav_change
    ledger = flows.ledger
    for index in range(batch.fund_count):
        fund = batch.first_fund + index
        column = batch.output_offset + index
        block = fund // FUNDS_PER_BLOCK
        # Built here rather than by a compiled helper: called from Python (``.py_func``), the key must
        # stay a numpy.uint64, which a compiled function would hand back as a plain int.
        stream = FundStream(block_keys[block - batch.first_block], fund - block * FUNDS_PER_BLOCK)
        start_fund(flows, fixed_calls)

        market = market_state(stream)
        events, invested_initial = draw_company_paths(
            stream, market, portfolio, terms, book, log, calls, nav_change
        )
        sort_events(sort_keys, events, quarter_starts, sort_scratch)
        totals = process_events(log, events, stage_table, terms, book, calls, proceeds, nav_change, ledger)
        wind_up(flows, fixed_calls, alive, totals)
        valuation = value_portfolio(book, ledger, terms.commitments)
        lp = lp_cash_flows(flows, valuation.residual, terms, j_curve, yearly, column)

        net_tvpi = (lp.distributed + lp.lp_residual) / lp.paid_in
        guess = irr_starting_guess(flows, times_years, lp, net_tvpi)
        net_irr = solve_irr(lp_net, times_years, guess)
        record_fund(out, column, invested_initial, totals, valuation, lp, net_tvpi, net_irr, market, ledger)
