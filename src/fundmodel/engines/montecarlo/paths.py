"""Phase 1 of the kernel: each company's entry and its walk through the stages, as dated events.

A company slot enters at a random quarter of the deployment window with its initial check, then at each
stage draws graduate / exit / fail, the delay until it happens and, on an exit, the exit multiple. Every
event inside the horizon is appended to the fund's :class:`EventLog`; phase 2
(:mod:`~fundmodel.engines.montecarlo.events`) replays them in chronological order.

Each draw is addressed by (fund, slot, round, purpose) in the fund's :class:`FundStream`, so a company's
path does not depend on any other company's (see :mod:`~fundmodel.engines.montecarlo.rng`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.companies import (
    COL_CAP,
    COL_EXIT,
    COL_EXIT_QUARTERS,
    COL_GRADUATE_QUARTERS,
    COL_GRADUATION,
    COL_JITTER,
    COL_LOG_MEDIAN,
    COL_POST_MONEY,
    COL_SIGMA,
)
from fundmodel.engines.montecarlo.distributions import event_delay_quarters, exit_multiple
from fundmodel.engines.montecarlo.jit import jit, jit_phase, jit_step
from fundmodel.engines.montecarlo.kernel_inputs import PortfolioArrays
from fundmodel.engines.montecarlo.rng import (
    ENTRY_ROUND,
    PURPOSE_ENTRY,
    PURPOSE_EXIT_MULTIPLE,
    PURPOSE_OUTCOME,
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
    """Exit value as a multiple of the last post-money (only set for exits)."""


class CompanyBook(NamedTuple):
    """The fund's position in each company slot, reused fund after fund."""

    ownership: npt.NDArray[np.float64]
    mark: npt.NDArray[np.float64]
    """Post-money valuation of the company's last round."""
    invested: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]
    """Exit proceeds once exited; ownership x mark at the horizon once valued; else 0."""
    alive: npt.NDArray[np.bool_]


@jit
def new_event_log(capacity: int) -> EventLog:
    return EventLog(
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.float64),
    )


@jit
def new_company_book(slots: int) -> CompanyBook:
    return CompanyBook(
        np.empty(slots, dtype=np.float64),
        np.empty(slots, dtype=np.float64),
        np.empty(slots, dtype=np.float64),
        np.empty(slots, dtype=np.float64),
        np.empty(slots, dtype=np.bool_),
    )


@jit_step
def entry_quarter(stream: FundStream, slot: int, deployment_quarters: int) -> int:
    """The quarter a slot's initial check is called: uniform over the deployment window."""
    if deployment_quarters <= 0:
        return 0
    u = uniform(stream.key, draw_counter(stream.fund_in_block, slot, ENTRY_ROUND, PURPOSE_ENTRY))
    return min(int(u * deployment_quarters), deployment_quarters - 1)


@jit_step
def open_position(book: CompanyBook, slot: int, check: float, post_money: float) -> None:
    book.ownership[slot] = check / post_money
    book.mark[slot] = post_money
    book.invested[slot] = check
    book.value[slot] = 0.0
    book.alive[slot] = True


@jit_step
def round_outcome(
    stream: FundStream, slot: int, round_index: int, stage_table: npt.NDArray[np.float64], stage: int
) -> tuple[int, float]:
    """What happens to a company at ``stage``: ``(event kind, mean quarters until it happens)``."""
    graduation = stage_table[stage, COL_GRADUATION]
    exit_rate = stage_table[stage, COL_EXIT]
    u = uniform(stream.key, draw_counter(stream.fund_in_block, slot, round_index, PURPOSE_OUTCOME))
    if u < graduation:
        return EVENT_ROUND, stage_table[stage, COL_GRADUATE_QUARTERS]
    if u < graduation + exit_rate:
        return EVENT_EXIT, stage_table[stage, COL_EXIT_QUARTERS]
    return EVENT_FAIL, stage_table[stage, COL_GRADUATE_QUARTERS]


@jit_step
def round_delay(stream: FundStream, slot: int, round_index: int, mean_quarters: float, jitter: float) -> int:
    u = uniform(stream.key, draw_counter(stream.fund_in_block, slot, round_index, PURPOSE_TIMING))
    return event_delay_quarters(u, mean_quarters, jitter)


@jit_step
def draw_exit_multiple(
    stream: FundStream, slot: int, round_index: int, stage_table: npt.NDArray[np.float64], stage: int
) -> float:
    u = uniform(stream.key, draw_counter(stream.fund_in_block, slot, round_index, PURPOSE_EXIT_MULTIPLE))
    return exit_multiple(
        u, stage_table[stage, COL_LOG_MEDIAN], stage_table[stage, COL_SIGMA], stage_table[stage, COL_CAP]
    )


@jit_step
def record_stage_path(
    stream: FundStream,
    slot: int,
    entry_stage: int,
    entry: int,
    stage_table: npt.NDArray[np.float64],
    horizon: int,
    log: EventLog,
    events: int,
) -> int:
    """Append the events of one company entering at ``entry_stage`` in quarter ``entry``; return the count.

    The walk ends with the company's exit or failure, or with its next event falling past the horizon
    (the company is then still alive at the horizon).
    """
    stage = entry_stage
    quarter = entry
    round_index = 0
    while True:
        kind, mean_quarters = round_outcome(stream, slot, round_index, stage_table, stage)
        quarter += round_delay(stream, slot, round_index, mean_quarters, stage_table[stage, COL_JITTER])
        if quarter > horizon:
            return events
        log.slot[events] = slot
        log.kind[events] = kind
        log.quarter[events] = quarter
        if kind == EVENT_ROUND:
            stage += 1
            log.stage[events] = stage
        elif kind == EVENT_EXIT:
            log.multiple[events] = draw_exit_multiple(stream, slot, round_index, stage_table, stage)
        log.sort_key[events] = (quarter << EVENT_INDEX_BITS) | events
        events += 1
        if kind != EVENT_ROUND:
            return events
        round_index += 1


@jit_phase
def draw_company_paths(
    stream: FundStream,
    portfolio: PortfolioArrays,
    deployment_quarters: int,
    book: CompanyBook,
    log: EventLog,
    calls: npt.NDArray[np.float64],
) -> tuple[int, float]:
    """Enter every company slot (adding its check to ``calls``) and record its path.

    Returns ``(events recorded, dollars of initial checks)``.
    """
    horizon = calls.shape[0] - 1
    events = 0
    invested_initial = 0.0
    for slot in range(portfolio.slot_stage.shape[0]):
        stage = portfolio.slot_stage[slot]
        check = portfolio.slot_check[slot]
        entry = entry_quarter(stream, slot, deployment_quarters)
        calls[entry] += check
        invested_initial += check
        open_position(book, slot, check, portfolio.stage_table[stage, COL_POST_MONEY])
        events = record_stage_path(stream, slot, stage, entry, portfolio.stage_table, horizon, log, events)
    return events, invested_initial
