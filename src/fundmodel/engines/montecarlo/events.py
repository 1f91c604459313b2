"""Phase 2 of the kernel: a fund's events in chronological order, against one shared pool of cash.

Rounds the policy backs ask for follow-ons, which draw on the pool (recycled cash first, then the reserve,
which is called from the LPs in the round's quarter) in the order the rounds happen; every round dilutes
the fund's stake. Exits and failures settle the company (:func:`settle`): the fund takes the better of
its share of the company's value (conversion) and its 1x non-participating liquidation preference
(its cost, scaled down pro rata with the other preferred shares when the value is below the preference
stack); proceeds may refill the pool (recycling, during the investment period, up to the cap). Ties in
time go in slot order.

Settling also files each of the company's financings (the initial check and each follow-on) in the
fund's ledger (the ``LEDGER_*`` entries): its multiple's bucket by count and by dollars, and its
dollars returned and lost by source (initial or follow-on), for ``dealOutcomes`` and
``returnsBySource``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.companies import (
    COL_POST_MONEY,
    COL_PRE_MONEY,
    COL_PREF_STACK,
    COL_ROUND_SIZE,
)
from fundmodel.engines.montecarlo.jit import jit, jit_phase, jit_step
from fundmodel.engines.montecarlo.kernel_inputs import FundTerms
from fundmodel.engines.montecarlo.paths import (
    EVENT_EXIT,
    EVENT_INDEX_BITS,
    EVENT_INDEX_MASK,
    EVENT_ROUND,
    MAX_TRANCHES,
    CompanyBook,
    EventLog,
)

BUCKET_BOUNDS = (1.0, 5.0, 10.0, 20.0, 50.0)
"""Upper bounds of the multiple buckets <1x, 1-5x, 5-10x, 10-20x, 20-50x; the last is >=50x."""
BUCKETS = len(BUCKET_BOUNDS) + 1
LEDGER_COUNT = 0
"""``LEDGER_COUNT + b``: financings in multiple bucket ``b``."""
LEDGER_DOLLARS = LEDGER_COUNT + BUCKETS
"""``LEDGER_DOLLARS + b``: dollars of the financings in bucket ``b``."""
LEDGER_INITIAL_RETURNED = LEDGER_DOLLARS + BUCKETS
LEDGER_INITIAL_LOST = LEDGER_INITIAL_RETURNED + 1
"""Dollars of initial checks that returned less than 1x."""
LEDGER_FOLLOW_ON_RETURNED = LEDGER_INITIAL_LOST + 1
LEDGER_FOLLOW_ON_LOST = LEDGER_FOLLOW_ON_RETURNED + 1
LEDGER_FUND_RETURNERS = LEDGER_FOLLOW_ON_LOST + 1
"""Companies whose proceeds (or value at the horizon) reach the fund's commitments."""
LEDGER_SIZE = LEDGER_FUND_RETURNERS + 1


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
def sort_events(
    sort_keys: npt.NDArray[np.int64],
    count: int,
    quarter_starts: npt.NDArray[np.int64],
    scratch: npt.NDArray[np.int64],
) -> None:
    """Sort the first ``count`` keys in place by (quarter, event index).

    A counting sort by quarter (``quarter_starts`` has one entry per quarter 0 .. horizon; ``scratch``
    holds ``count`` keys): the keys arrive in event-index order (key ``i`` is event ``i``), so a stable
    pass by quarter alone gives the full order, in time linear in the events. An insertion sort was
    quadratic here: the companies' events interleave in time."""
    for quarter in range(quarter_starts.shape[0]):
        quarter_starts[quarter] = 0
    for index in range(count):
        quarter_starts[sort_keys[index] >> EVENT_INDEX_BITS] += 1
    start = 0
    for quarter in range(quarter_starts.shape[0]):
        events_in_quarter = quarter_starts[quarter]
        quarter_starts[quarter] = start
        start += events_in_quarter
    for index in range(count):
        key = sort_keys[index]
        quarter = key >> EVENT_INDEX_BITS
        scratch[quarter_starts[quarter]] = key
        quarter_starts[quarter] += 1
    for index in range(count):
        sort_keys[index] = scratch[index]


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
def bucket(multiple: float) -> int:
    """The index of ``multiple``'s bucket: how many of ``BUCKET_BOUNDS`` it reaches.

    Counted without a branch: multiples are random, so a loop that stops at the first bound above the
    multiple mispredicted about once per financing filed."""
    return (
        int(multiple >= BUCKET_BOUNDS[0])
        + int(multiple >= BUCKET_BOUNDS[1])
        + int(multiple >= BUCKET_BOUNDS[2])
        + int(multiple >= BUCKET_BOUNDS[3])
        + int(multiple >= BUCKET_BOUNDS[4])
    )


@jit_step
def file_financing(
    cost: float, multiple: float, ledger: npt.NDArray[np.float64], returned: int, lost: int
) -> None:
    """File one financing of ``cost`` that returned ``multiple``: its bucket, and its dollars returned and
    lost at the ``returned`` and ``lost`` entries of its source."""
    target = bucket(multiple)
    ledger[LEDGER_COUNT + target] += 1.0
    ledger[LEDGER_DOLLARS + target] += cost
    ledger[returned] += multiple * cost
    ledger[lost] += cost if multiple < 1.0 else 0.0


@jit_step
def file_financings(
    book: CompanyBook, slot: int, flat_multiple: float, value: float, ledger: npt.NDArray[np.float64]
) -> None:
    """File each of the company's financings in ``ledger``: at ``flat_multiple`` when it is >= 0 (the
    liquidation preference paid: every share of preferred alike), else at its converted share of
    ``value`` (cost x dilution since it / basis).

    The initial check (always there) and the follow-ons are filed in two passes, each with its own
    multiple rule hoisted out of the loop: the same additions in the same order, fewer branches."""
    first = slot * MAX_TRANCHES
    tranches = book.tranches[slot]
    converted = value * book.dilution[slot]
    if flat_multiple >= 0.0:
        file_financing(
            book.tranche_cost[first], flat_multiple, ledger, LEDGER_INITIAL_RETURNED, LEDGER_INITIAL_LOST
        )
        for tranche in range(first + 1, first + tranches):
            file_financing(
                book.tranche_cost[tranche],
                flat_multiple,
                ledger,
                LEDGER_FOLLOW_ON_RETURNED,
                LEDGER_FOLLOW_ON_LOST,
            )
    else:
        file_financing(
            book.tranche_cost[first],
            converted / book.tranche_basis[first],
            ledger,
            LEDGER_INITIAL_RETURNED,
            LEDGER_INITIAL_LOST,
        )
        for tranche in range(first + 1, first + tranches):
            file_financing(
                book.tranche_cost[tranche],
                converted / book.tranche_basis[tranche],
                ledger,
                LEDGER_FOLLOW_ON_RETURNED,
                LEDGER_FOLLOW_ON_LOST,
            )


@jit_step
def settle(
    book: CompanyBook,
    slot: int,
    company_value: float,
    ledger: npt.NDArray[np.float64],
    commitments: float,
) -> float:
    """Close the company's position on a sale at ``company_value``; return the fund's proceeds.

    The fund takes the better of converting (ownership x value) and its 1x non-participating preference:
    its cost, cut pro rata with all preferred shares when the value is below the stack
    (``cost x min(1, value / stack)``).
    """
    conversion: float = book.ownership[slot] * company_value
    covered = min(1.0, company_value / book.stack[slot])
    preference: float = book.invested[slot] * covered
    if preference > conversion:
        amount = preference
        file_financings(book, slot, covered, company_value, ledger)
    else:
        amount = conversion
        file_financings(book, slot, -1.0, company_value, ledger)
    if amount >= commitments:
        ledger[LEDGER_FUND_RETURNERS] += 1.0
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
    nav_change: npt.NDArray[np.float64],
    ledger: npt.NDArray[np.float64],
) -> EventTotals:
    """Replay the sorted events: follow-on calls go to ``calls``, proceeds net of recycling to
    ``proceeds``, changes in the portfolio's value at its marks to ``nav_change``, settled financings to
    ``ledger``, and ``book`` follows each company's ownership, mark, cost and fate."""
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
            pre_money = stage_table[stage, COL_PRE_MONEY]
            before = book.ownership[slot] * book.mark[slot]
            request, grant, book.ownership[slot] = follow_on_round(
                book.ownership[slot],
                terms.participation if log.follow[event] else 0.0,
                stage_table[stage, COL_ROUND_SIZE],
                pre_money,
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
            book.stack[slot] = stage_table[stage, COL_PREF_STACK]
            book.dilution[slot] *= pre_money / post_money
            if grant > 0.0:
                tranche = slot * MAX_TRANCHES + book.tranches[slot]
                book.tranche_cost[tranche] = grant
                book.tranche_basis[tranche] = post_money * book.dilution[slot]
                book.tranches[slot] += 1
            nav_change[quarter] += book.ownership[slot] * post_money - before
        else:
            last_resolution = quarter
            nav_change[quarter] -= book.ownership[slot] * book.mark[slot]
            if kind == EVENT_EXIT:
                sale = log.multiple[event] * book.mark[slot]
            else:
                sale = log.multiple[event] * book.stack[slot]
            amount = settle(book, slot, sale, ledger, terms.commitments)
            gross_proceeds += amount
            kept = recyclable(amount, quarter, recycled_total, terms)
            recycled_total += kept
            recycled_pool += kept
            proceeds[quarter] += amount - kept
    return EventTotals(
        follow_on,
        requested,
        reserve_called,
        recycled_total,
        recycled_pool,
        gross_proceeds,
        last_resolution,
    )
