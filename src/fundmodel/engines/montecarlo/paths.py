"""Phase 1 of the kernel: each company's entry and its walk through the stages, as dated events.

A company enters at a random quarter of the deployment window with its initial check and a latent
quality; then at each stage its outcome score (quality, the fund's market state and a fresh shock, see
:mod:`~fundmodel.engines.montecarlo.risk`) decides survive or fail, a survivor exits or graduates in the
profile's proportion, and the delay until it happens is lognormal around the stage's median for that kind
of event (failures on their own clock). An exit draws its multiple (quality and market shift it); a
failure draws what its distressed sale recovers; a graduation records whether the follow-on policy
backs the round. Every event inside the horizon is appended to the fund's :class:`EventLog`; phase 2
(:mod:`~fundmodel.engines.montecarlo.events`) replays them in chronological order.

Each draw is addressed by (fund, company key, round, purpose) in the fund's :class:`FundStream`, the
company key being (entry stage, index within the stage): a company's path does not depend on any other
company's, nor on how many companies the fund holds (see :mod:`~fundmodel.engines.montecarlo.rng`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.companies import (
    COL_CAP,
    COL_EXIT_QUARTERS,
    COL_EXIT_SHARE,
    COL_FAIL_QUARTERS,
    COL_FAIL_Z,
    COL_GRADUATE_QUARTERS,
    COL_LOG_MEDIAN,
    COL_POST_MONEY,
    COL_PREF_STACK,
    COL_RECOVERY_MAX,
    COL_RECOVERY_RATE,
    COL_SIGMA,
    COL_TIMING_SIGMA,
)
from fundmodel.engines.montecarlo.distributions import (
    delay_quarters,
    delay_quarters_from_uniform,
    exit_multiple_from_score,
    normal_score_below,
    quantile_cell,
    standard_normal_quantile,
)
from fundmodel.engines.montecarlo.jit import jit, jit_phase, jit_step
from fundmodel.engines.montecarlo.kernel_inputs import FundTerms, PortfolioArrays
from fundmodel.engines.montecarlo.rng import (
    ENTRY_ROUND,
    FUND_KEY,
    PURPOSE_ENTRY,
    PURPOSE_EXIT_MULTIPLE,
    PURPOSE_MARKET,
    PURPOSE_OUTCOME,
    PURPOSE_QUALITY,
    PURPOSE_RECOVERY,
    PURPOSE_ROUTE,
    PURPOSE_SIGNAL,
    PURPOSE_TIMING,
    draw_counter,
    uniform,
)

EVENT_ROUND = 0
EVENT_EXIT = 1
EVENT_FAIL = 2

EVENT_INDEX_BITS = 16
EVENT_INDEX_MASK = (1 << EVENT_INDEX_BITS) - 1
"""Sort keys are (quarter << 16) | event index: ties in time keep slot order."""

MAX_TRANCHES = 8
"""Financings per company the book can hold: the initial check and one follow-on per later stage."""

FAILS = 1
SURVIVES = 0
UNDECIDED = -1
"""Outcomes of :func:`outcome_from_quality_cell`."""
_QUALITY_SCORE_MARGIN = 1e-9
"""Absolute slack on an outcome decided from the quality's grid cell: far above the rounding of the
quantiles and of the score's sums (scores are a few units), as for ``distributions.normal_score_below``."""


class FundStream(NamedTuple):
    """One fund's random stream: its block's key and the fund's position inside the block."""

    key: np.uint64
    fund_in_block: int


class EventLog(NamedTuple):
    """Scratch space for one fund's events, reused fund after fund; entry ``i`` is the ``i``-th recorded."""

    sort_key: npt.NDArray[np.int64]
    """``(quarter << EVENT_INDEX_BITS) | i``, sorted in place before phase 2."""
    slot: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int64]
    """``EVENT_ROUND``, ``EVENT_EXIT`` or ``EVENT_FAIL``."""
    quarter: npt.NDArray[np.int64]
    stage: npt.NDArray[np.int64]
    """The stage a round event graduates the company to (only set for rounds)."""
    multiple: npt.NDArray[np.float64]
    """Exits: value as a multiple of the last post-money; failures: the share of the preference stack the
    distressed sale recovers (0: nothing)."""
    follow: npt.NDArray[np.bool_]
    """Rounds: whether the follow-on policy backs this round."""


class CompanyBook(NamedTuple):
    """The fund's position in each company slot, reused fund after fund."""

    ownership: npt.NDArray[np.float64]
    mark: npt.NDArray[np.float64]
    """Post-money valuation of the company's last round."""
    invested: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]
    """Proceeds once exited or failed; ownership x mark at the horizon once valued; else 0."""
    alive: npt.NDArray[np.bool_]
    stack: npt.NDArray[np.float64]
    """Liquidation preferences senior to common at the company's current stage."""
    dilution: npt.NDArray[np.float64]
    """Product of pre / post of the rounds since the fund entered: how much its first shares were diluted."""
    tranches: npt.NDArray[np.int64]
    """Financings of the company by the fund so far (the initial check and each follow-on granted)."""
    tranche_cost: npt.NDArray[np.float64]
    """``[slot * MAX_TRANCHES + k]``: dollars of the company's ``k``-th financing."""
    tranche_basis: npt.NDArray[np.float64]
    """``[slot * MAX_TRANCHES + k]``: post-money of that round x ``dilution`` just after it; a financing's
    ownership now is its cost x current ``dilution`` / basis."""


@jit
def new_event_log(capacity: int) -> EventLog:
    return EventLog(
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.float64),
        np.empty(capacity, dtype=np.bool_),
    )


@jit
def new_company_book(slots: int) -> CompanyBook:
    return CompanyBook(
        np.empty(slots, dtype=np.float64),
        np.empty(slots, dtype=np.float64),
        np.empty(slots, dtype=np.float64),
        np.empty(slots, dtype=np.float64),
        np.empty(slots, dtype=np.bool_),
        np.empty(slots, dtype=np.float64),
        np.empty(slots, dtype=np.float64),
        np.empty(slots, dtype=np.int64),
        np.empty(slots * MAX_TRANCHES, dtype=np.float64),
        np.empty(slots * MAX_TRANCHES, dtype=np.float64),
    )


@jit_step
def normal_draw(stream: FundStream, key: int, round_index: int, purpose: int) -> float:
    """A standard-normal draw at (company key, round, purpose) of the fund's stream."""
    return standard_normal_quantile(
        uniform(stream.key, draw_counter(stream.fund_in_block, key, round_index, purpose))
    )


@jit_step
def uniform_draw(stream: FundStream, key: int, round_index: int, purpose: int) -> float:
    return uniform(stream.key, draw_counter(stream.fund_in_block, key, round_index, purpose))


@jit_step
def market_state(stream: FundStream) -> float:
    """The fund's market state: one standard-normal draw per simulated fund, shared by its companies."""
    return standard_normal_quantile(
        uniform(stream.key, draw_counter(stream.fund_in_block, FUND_KEY, 0, PURPOSE_MARKET))
    )


@jit_step
def entry_quarter(stream: FundStream, key: int, deployment_quarters: int) -> int:
    """The quarter a company's initial check is called: uniform over the deployment window."""
    if deployment_quarters <= 0:
        return 0
    u = uniform_draw(stream, key, ENTRY_ROUND, PURPOSE_ENTRY)
    return min(int(u * deployment_quarters), deployment_quarters - 1)


@jit_step
def open_position(book: CompanyBook, slot: int, check: float, post_money: float, stack: float) -> None:
    book.ownership[slot] = check / post_money
    book.mark[slot] = post_money
    book.invested[slot] = check
    book.value[slot] = 0.0
    book.alive[slot] = True
    book.stack[slot] = stack
    book.dilution[slot] = 1.0
    book.tranches[slot] = 1
    book.tranche_cost[slot * MAX_TRANCHES] = check
    book.tranche_basis[slot * MAX_TRANCHES] = post_money


@jit_step
def follows_on(
    stream: FundStream,
    key: int,
    round_index: int,
    quality: float,
    threshold: float,
    signal_noise: float,
) -> bool:
    """Whether the policy backs a graduate: always (-inf), never (+inf), or when its observed quality
    (quality plus noise) reaches ``threshold``."""
    if threshold == -np.inf:
        return True
    if threshold == np.inf:
        return False
    signal = quality + signal_noise * normal_draw(stream, key, round_index, PURPOSE_SIGNAL)
    return signal >= threshold


@jit_step
def recovery_share(stream: FundStream, key: int, round_index: int, rate: float, most: float) -> float:
    """What a failure's distressed sale recovers, as a share of the preference stack: nothing with
    probability 1 - ``rate``, else uniform on (0, ``most``) (one draw: below ``rate`` it is uniform)."""
    u = uniform_draw(stream, key, round_index, PURPOSE_RECOVERY)
    if u < rate:
        return most * (u / rate)
    return 0.0


@jit_step
def outcome_from_quality_cell(
    u: float,
    common_low: float,
    common_high: float,
    scale: float,
    threshold: float,
    grid: npt.NDArray[np.float64],
) -> int:
    """Whether ``common + scale x standard_normal_quantile(u) < threshold`` (``FAILS``) or not
    (``SURVIVES``) for every ``common`` in ``[common_low, common_high]`` (``scale > 0``), decided from
    the bracket of ``u``'s quantile in ``grid``; ``UNDECIDED`` when the two brackets straddle the
    threshold. Lets a company's quality stay a grid cell (``common`` a range) until a round needs it."""
    cell = quantile_cell(u, grid.shape[0] - 1)
    if common_high + scale * grid[cell + 1] < threshold - _QUALITY_SCORE_MARGIN:
        return FAILS
    if common_low + scale * grid[cell] > threshold + _QUALITY_SCORE_MARGIN:
        return SURVIVES
    return UNDECIDED


@jit_step
def record_stage_path(
    stream: FundStream,
    key: int,
    slot: int,
    entry_stage: int,
    entry: int,
    quality_u: float,
    market: float,
    faster: float,
    slower: float,
    portfolio: PortfolioArrays,
    terms: FundTerms,
    horizon: int,
    log: EventLog,
    events: int,
) -> int:
    """Append the events of one company entering at ``entry_stage`` in quarter ``entry``; return the count.

    The walk ends with the company's exit or failure, or with its next event falling past the horizon
    (the company is then still alive at the horizon). ``faster`` and ``slower`` are ``exp(+-sooner)``,
    the market's factors on the delays of rounds and exits, and of failures.

    The company's quality is ``standard_normal_quantile(quality_u)``, computed only when a round needs
    its exact value (an exit's multiple, a ``topQuantile`` signal, an outcome its grid cell cannot
    decide): most companies fail or are still running at the horizon without ever needing it, and the
    quantile was a sixth of this phase's time. The decisions are the same as with the quantile.
    """
    stage_table = portfolio.stage_table
    grid = portfolio.normal_grid
    cells = grid.shape[0] - 1
    quality_cell = quantile_cell(quality_u, cells)
    market_term = terms.outcome_market * market
    # The end cells reach +-inf (and 0 x inf is NaN): there the quality is computed at once.
    quality_known = quality_cell == 0 or quality_cell == cells - 1
    quality = standard_normal_quantile(quality_u) if quality_known else 0.0
    common = terms.outcome_quality * quality + market_term
    common_low = terms.outcome_quality * grid[quality_cell] + market_term
    common_high = terms.outcome_quality * grid[quality_cell + 1] + market_term
    sooner = -terms.market_timing * market
    stage = entry_stage
    quarter = entry
    round_index = 0
    while True:
        # The outcome score is common + idiosyncratic x (a standard-normal draw) and the delay a lognormal
        # of another; both are decided from their uniforms through the quantile grid, which gives exactly
        # what the quantiles would, usually without computing them (distributions.normal_score_below).
        outcome_u = uniform_draw(stream, key, round_index, PURPOSE_OUTCOME)
        fail_z = stage_table[stage, COL_FAIL_Z]
        outcome = UNDECIDED
        if not quality_known:
            outcome = outcome_from_quality_cell(
                outcome_u, common_low, common_high, terms.outcome_idiosyncratic, fail_z, grid
            )
            if outcome == UNDECIDED:
                quality = standard_normal_quantile(quality_u)
                quality_known = True
                common = terms.outcome_quality * quality + market_term
        if outcome == UNDECIDED:
            fails = normal_score_below(outcome_u, common, terms.outcome_idiosyncratic, fail_z, grid)
        else:
            fails = outcome == FAILS
        if fails:
            kind = EVENT_FAIL
            median_quarters = stage_table[stage, COL_FAIL_QUARTERS]
            shift = -sooner
            shift_factor = slower
        elif uniform_draw(stream, key, round_index, PURPOSE_ROUTE) < stage_table[stage, COL_EXIT_SHARE]:
            kind = EVENT_EXIT
            median_quarters = stage_table[stage, COL_EXIT_QUARTERS]
            shift = sooner
            shift_factor = faster
        else:
            kind = EVENT_ROUND
            median_quarters = stage_table[stage, COL_GRADUATE_QUARTERS]
            shift = sooner
            shift_factor = faster
        sigma = stage_table[stage, COL_TIMING_SIGMA]
        if sigma > 0.0:
            quarter += delay_quarters_from_uniform(
                uniform_draw(stream, key, round_index, PURPOSE_TIMING),
                median_quarters,
                sigma,
                shift,
                portfolio.lognormal_grid,
                stage,
                shift_factor,
            )
        else:
            quarter += delay_quarters(0.0, median_quarters, sigma, shift)
        if quarter > horizon:
            return events
        log.slot[events] = slot
        log.kind[events] = kind
        log.quarter[events] = quarter
        if kind == EVENT_ROUND:
            stage += 1
            log.stage[events] = stage
            threshold = portfolio.signal_threshold[entry_stage, stage]
            if not quality_known and threshold != -np.inf and threshold != np.inf:
                quality = standard_normal_quantile(quality_u)
                quality_known = True
                common = terms.outcome_quality * quality + market_term
            log.follow[events] = follows_on(stream, key, round_index, quality, threshold, terms.signal_noise)
        elif kind == EVENT_EXIT:
            if not quality_known:
                quality = standard_normal_quantile(quality_u)
                quality_known = True
            exit_common = terms.exit_quality * quality + terms.exit_market * market
            exit_score = exit_common + terms.exit_idiosyncratic * normal_draw(
                stream, key, round_index, PURPOSE_EXIT_MULTIPLE
            )
            log.multiple[events] = exit_multiple_from_score(
                exit_score,
                stage_table[stage, COL_LOG_MEDIAN],
                stage_table[stage, COL_SIGMA],
                stage_table[stage, COL_CAP],
            )
        else:
            log.multiple[events] = recovery_share(
                stream,
                key,
                round_index,
                stage_table[stage, COL_RECOVERY_RATE],
                stage_table[stage, COL_RECOVERY_MAX],
            )
        log.sort_key[events] = (quarter << EVENT_INDEX_BITS) | events
        events += 1
        if kind != EVENT_ROUND:
            return events
        round_index += 1


@jit_phase
def draw_company_paths(
    stream: FundStream,
    market: float,
    portfolio: PortfolioArrays,
    terms: FundTerms,
    book: CompanyBook,
    log: EventLog,
    calls: npt.NDArray[np.float64],
    nav_change: npt.NDArray[np.float64],
) -> tuple[int, float]:
    """Enter every company slot (adding its check to ``calls`` and to ``nav_change``) and record its path.

    Returns ``(events recorded, dollars of initial checks)``.
    """
    horizon = calls.shape[0] - 1
    events = 0
    invested_initial = 0.0
    stage_table = portfolio.stage_table
    sooner = -terms.market_timing * market
    faster = math.exp(sooner)
    slower = math.exp(-sooner)
    for slot in range(portfolio.slot_stage.shape[0]):
        stage = portfolio.slot_stage[slot]
        key = portfolio.slot_key[slot]
        check = portfolio.slot_check[slot]
        entry = entry_quarter(stream, key, terms.deployment_quarters)
        calls[entry] += check
        nav_change[entry] += check
        invested_initial += check
        open_position(
            book, slot, check, stage_table[stage, COL_POST_MONEY], stage_table[stage, COL_PREF_STACK]
        )
        events = record_stage_path(
            stream,
            key,
            slot,
            stage,
            entry,
            uniform_draw(stream, key, ENTRY_ROUND, PURPOSE_QUALITY),
            market,
            faster,
            slower,
            portfolio,
            terms,
            horizon,
            log,
            events,
        )
    return events, invested_initial
