"""Phase 2 of the kernel: a fund's events in chronological order, against one shared pool of cash.

Rounds ask for follow-ons, which draw on the pool (recycled cash first, then the reserve, which is called
from the LPs in the round's quarter) in the order the rounds happen; exits pay the fund its share of the
exit value and may refill the pool (recycling, during the investment period, up to the cap); failures
write the company off. Ties in time go in slot order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.companies import COL_POST_MONEY, COL_PRE_MONEY, COL_ROUND_SIZE
from fundmodel.engines.montecarlo.jit import jit, jit_phase, jit_step
from fundmodel.engines.montecarlo.kernel_inputs import FundTerms
from fundmodel.engines.montecarlo.paths import (
    EVENT_EXIT,
    EVENT_INDEX_MASK,
    EVENT_ROUND,
    CompanyBook,
    EventLog,
)


class EventTotals(NamedTuple):
    """What one fund's events added up to."""

    follow_on: float
    """Dollars of follow-on checks granted."""
    requested: float
    """Dollars of follow-on checks asked for (granted or not)."""
    reserve_called: float
    """Follow-on dollars called from the LPs (the rest came from recycled cash)."""
    recycled_total: float
    """Exit proceeds kept for reinvestment."""
    recycled_unspent: float
    """Recycled cash never reinvested: it goes back to the LPs when the fund winds up."""
    gross_proceeds: float
    last_resolution: int
    """Quarter of the last exit or failure; -1 when there was none."""


@jit_phase
def sort_events(sort_keys: npt.NDArray[np.int64], count: int) -> None:
    # Insertion sort: the event lists are short and already sorted within each company.
    for index in range(1, count):
        key = sort_keys[index]
        position = index - 1
        while position >= 0 and sort_keys[position] > key:
            sort_keys[position + 1] = sort_keys[position]
            position -= 1
        sort_keys[position + 1] = key


@jit
def follow_on_round(
    ownership: float,
    participation: float,
    round_size: float,
    pre_money: float,
    post_money: float,
    available: float,
) -> tuple[float, float, float]:
    """The fund's part in a new round: ``(request, grant, ownership after the round)``.

    The request is ``participation x ownership x round size`` (pro-rata), capped at the whole round: the
    fund cannot buy more than the new shares on offer. The grant is the request, or what the pool
    (``available``) still holds. Existing ownership is diluted by ``pre / post`` and the grant buys
    ``grant / post``; since ``ownership <= 1`` and ``grant <= round size``, the result is at most
    ``(pre + round size) / post = 1``, also in floating point (rounding is monotonic and the post-money
    is computed as ``pre + round size``). ``min`` of a request within the round returns it unchanged, so
    rounds that never reach the cap give bit-identical results to an uncapped rule.
    """
    request = min(participation * ownership * round_size, round_size)
    grant = min(request, available)
    return request, grant, (ownership * pre_money + grant) / post_money


@jit_step
def exit_proceeds(book: CompanyBook, slot: int, multiple: float) -> float:
    """Close the company's position at ``multiple`` x its last post-money; return the fund's share."""
    amount: float = book.ownership[slot] * multiple * book.mark[slot]
    book.value[slot] = amount
    book.alive[slot] = False
    return amount


@jit_step
def recyclable(amount: float, quarter: int, recycled_so_far: float, terms: FundTerms) -> float:
    """How much of an exit's ``amount`` the fund keeps for reinvestment."""
    if quarter <= terms.recycling_quarters and recycled_so_far < terms.recycling_cap:
        return min(amount, terms.recycling_cap - recycled_so_far)
    return 0.0


@jit_phase
def process_events(
    log: EventLog,
    events: int,
    stage_table: npt.NDArray[np.float64],
    terms: FundTerms,
    book: CompanyBook,
    calls: npt.NDArray[np.float64],
    proceeds: npt.NDArray[np.float64],
) -> EventTotals:
    """Replay the sorted events: follow-on calls go to ``calls``, exit proceeds net of recycling to
    ``proceeds``, and ``book`` follows each company's ownership, mark, cost and fate."""
    reserve_left = terms.reserve
    recycled_pool = 0.0
    recycled_total = 0.0
    follow_on = 0.0
    requested = 0.0
    reserve_called = 0.0
    gross_proceeds = 0.0
    last_resolution = -1
    for position in range(events):
        event = log.sort_key[position] & EVENT_INDEX_MASK
        slot = log.slot[event]
        quarter = log.quarter[event]
        kind = log.kind[event]
        if kind == EVENT_ROUND:
            stage = log.stage[event]
            post_money = stage_table[stage, COL_POST_MONEY]
            request, grant, book.ownership[slot] = follow_on_round(
                book.ownership[slot],
                terms.participation,
                stage_table[stage, COL_ROUND_SIZE],
                stage_table[stage, COL_PRE_MONEY],
                post_money,
                recycled_pool + reserve_left,
            )
            requested += request
            from_recycled = min(grant, recycled_pool)
            recycled_pool -= from_recycled
            from_reserve = grant - from_recycled
            reserve_left -= from_reserve
            calls[quarter] += from_reserve
            reserve_called += from_reserve
            follow_on += grant
            book.invested[slot] += grant
            book.mark[slot] = post_money
        elif kind == EVENT_EXIT:
            last_resolution = quarter
            amount = exit_proceeds(book, slot, log.multiple[event])
            gross_proceeds += amount
            kept = recyclable(amount, quarter, recycled_total, terms)
            recycled_total += kept
            recycled_pool += kept
            proceeds[quarter] += amount - kept
        else:
            last_resolution = quarter
            book.alive[slot] = False
    return EventTotals(
        follow_on,
        requested,
        reserve_called,
        recycled_total,
        recycled_pool,
        gross_proceeds,
        last_resolution,
    )
