"""The Monte Carlo kernel: every company of every simulated fund, its rounds, follow-ons, exits and the
fund's quarterly cash flows, waterfall and IRR.

Per fund: (1) each company slot draws its entry quarter and walks its stage path (graduate / exit / fail
per round, with delays), recording dated events; (2) the events of all companies are processed in
chronological order (ties by slot), so follow-ons draw on the shared reserve pool (recycled cash first)
in the order they happen, and exits may refill the pool (recycling); (3) fees, expenses, checks and
proceeds give quarterly calls and distributable proceeds, which go through the waterfall; (4) LP net cash
flows give DPI, RVPI, TVPI, IRR and the J-curve. Companies still alive at the horizon are valued at their
last round's post-money valuation times the fund's ownership (NAV).

Results go to ``out[column, fund]`` (see the ``OUT_*`` columns) and ``j_curve[fund, quarter]``.
"""

from __future__ import annotations

import math

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
    COL_PRE_MONEY,
    COL_ROUND_SIZE,
    COL_SIGMA,
)
from fundmodel.engines.montecarlo.distributions import event_delay_quarters, exit_multiple
from fundmodel.engines.montecarlo.irr import solve_irr
from fundmodel.engines.montecarlo.jit import jit
from fundmodel.engines.montecarlo.rng import (
    ENTRY_ROUND,
    FUNDS_PER_BLOCK,
    PURPOSE_ENTRY,
    PURPOSE_EXIT_MULTIPLE,
    PURPOSE_OUTCOME,
    PURPOSE_TIMING,
    draw_counter,
    uniform,
)
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
OUT_COLUMNS = 18

EVENT_INDEX_BITS = 16
EVENT_INDEX_MASK = (1 << EVENT_INDEX_BITS) - 1
"""Sort keys are (quarter << 16) | event index: ties in time keep slot order."""
EVENT_ROUND = 0
EVENT_EXIT = 1
EVENT_FAIL = 2


@jit
def _sort_small(keys: npt.NDArray[np.int64], count: int) -> None:
    # Insertion sort: the event lists are short and already sorted within each company.
    for index in range(1, count):
        key = keys[index]
        position = index - 1
        while position >= 0 and keys[position] > key:
            keys[position + 1] = keys[position]
            position -= 1
        keys[position + 1] = key


@jit
def any_alive(alive: npt.NDArray[np.bool_], count: int) -> bool:
    for slot in range(count):  # noqa: SIM110 - a plain loop compiles to the tightest nopython code
        if alive[slot]:
            return True
    return False


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


@jit
def simulate_funds(
    first_fund: int,
    fund_count: int,
    output_offset: int,
    block_keys: npt.NDArray[np.uint64],
    first_block: int,
    slot_stage: npt.NDArray[np.int64],
    slot_check: npt.NDArray[np.float64],
    stage_table: npt.NDArray[np.float64],
    fixed_calls: npt.NDArray[np.float64],
    times_years: npt.NDArray[np.float64],
    deployment_quarters: int,
    recycling_quarters: int,
    reserve: float,
    recycling_cap: float,
    participation: float,
    carry: float,
    quarterly_pref: float,
    catch_up: float,
    commitments: float,
    out: npt.NDArray[np.float64],
    j_curve: npt.NDArray[np.float32],
) -> None:
    """Simulate funds ``first_fund .. first_fund + fund_count - 1`` into columns from ``output_offset``."""
    horizon = fixed_calls.shape[0] - 1
    slots = slot_stage.shape[0]
    stages = stage_table.shape[0]
    capacity = slots * (stages + 1)
    event_key = np.empty(capacity, dtype=np.int64)
    event_slot = np.empty(capacity, dtype=np.int64)
    event_kind = np.empty(capacity, dtype=np.int64)
    event_time = np.empty(capacity, dtype=np.int64)
    event_stage = np.empty(capacity, dtype=np.int64)
    event_multiple = np.empty(capacity, dtype=np.float64)
    ownership = np.empty(slots, dtype=np.float64)
    mark = np.empty(slots, dtype=np.float64)
    invested = np.empty(slots, dtype=np.float64)
    value = np.empty(slots, dtype=np.float64)
    alive = np.empty(slots, dtype=np.bool_)
    calls = np.empty(horizon + 1, dtype=np.float64)
    proceeds = np.empty(horizon + 1, dtype=np.float64)
    lp_distributions = np.empty(horizon + 1, dtype=np.float64)
    flows = np.empty(horizon + 1, dtype=np.float64)
    state = np.empty(STATE_SIZE, dtype=np.float64)

    for index in range(fund_count):
        fund = first_fund + index
        column = output_offset + index
        block = fund // FUNDS_PER_BLOCK
        local = fund - block * FUNDS_PER_BLOCK
        key = block_keys[block - first_block]
        for quarter in range(horizon + 1):
            calls[quarter] = fixed_calls[quarter]
            proceeds[quarter] = 0.0

        # 1. Company paths.
        events = 0
        invested_initial = 0.0
        for slot in range(slots):
            stage = slot_stage[slot]
            check = slot_check[slot]
            entry = 0
            if deployment_quarters > 0:
                u = uniform(key, draw_counter(local, slot, ENTRY_ROUND, PURPOSE_ENTRY))
                entry = min(int(u * deployment_quarters), deployment_quarters - 1)
            calls[entry] += check
            invested_initial += check
            post = stage_table[stage, COL_POST_MONEY]
            ownership[slot] = check / post
            mark[slot] = post
            invested[slot] = check
            value[slot] = 0.0
            alive[slot] = True
            time = entry
            round_index = 0
            while True:
                graduation = stage_table[stage, COL_GRADUATION]
                exit_rate = stage_table[stage, COL_EXIT]
                u = uniform(key, draw_counter(local, slot, round_index, PURPOSE_OUTCOME))
                if u < graduation:
                    kind = EVENT_ROUND
                    mean = stage_table[stage, COL_GRADUATE_QUARTERS]
                elif u < graduation + exit_rate:
                    kind = EVENT_EXIT
                    mean = stage_table[stage, COL_EXIT_QUARTERS]
                else:
                    kind = EVENT_FAIL
                    mean = stage_table[stage, COL_GRADUATE_QUARTERS]
                u = uniform(key, draw_counter(local, slot, round_index, PURPOSE_TIMING))
                time += event_delay_quarters(u, mean, stage_table[stage, COL_JITTER])
                if time > horizon:
                    break
                event_slot[events] = slot
                event_kind[events] = kind
                event_time[events] = time
                if kind == EVENT_ROUND:
                    stage += 1
                    event_stage[events] = stage
                elif kind == EVENT_EXIT:
                    u = uniform(key, draw_counter(local, slot, round_index, PURPOSE_EXIT_MULTIPLE))
                    event_multiple[events] = exit_multiple(
                        u,
                        stage_table[stage, COL_LOG_MEDIAN],
                        stage_table[stage, COL_SIGMA],
                        stage_table[stage, COL_CAP],
                    )
                event_key[events] = (time << EVENT_INDEX_BITS) | events
                events += 1
                if kind != EVENT_ROUND:
                    break
                round_index += 1

        # 2. Events in chronological order: follow-ons draw on the pool, exits may refill it.
        _sort_small(event_key, events)
        reserve_left = reserve
        recycled_pool = 0.0
        recycled_total = 0.0
        follow_on = 0.0
        requested = 0.0
        reserve_called = 0.0
        gross_proceeds = 0.0
        last_resolution = -1
        for position in range(events):
            event = event_key[position] & EVENT_INDEX_MASK
            slot = event_slot[event]
            time = event_time[event]
            kind = event_kind[event]
            if kind == EVENT_ROUND:
                stage = event_stage[event]
                round_size = stage_table[stage, COL_ROUND_SIZE]
                post = stage_table[stage, COL_POST_MONEY]
                request, grant, ownership[slot] = follow_on_round(
                    ownership[slot],
                    participation,
                    round_size,
                    stage_table[stage, COL_PRE_MONEY],
                    post,
                    recycled_pool + reserve_left,
                )
                requested += request
                from_recycled = min(grant, recycled_pool)
                recycled_pool -= from_recycled
                from_reserve = grant - from_recycled
                reserve_left -= from_reserve
                calls[time] += from_reserve
                reserve_called += from_reserve
                follow_on += grant
                invested[slot] += grant
                mark[slot] = post
            elif kind == EVENT_EXIT:
                last_resolution = time
                amount = ownership[slot] * event_multiple[event] * mark[slot]
                value[slot] = amount
                alive[slot] = False
                gross_proceeds += amount
                if time <= recycling_quarters and recycled_total < recycling_cap:
                    kept = min(amount, recycling_cap - recycled_total)
                    recycled_total += kept
                    recycled_pool += kept
                    amount -= kept
                proceeds[time] += amount
            else:
                last_resolution = time
                alive[slot] = False
        # A fund whose companies have all exited or failed winds up: no fees or expenses after that.
        if last_resolution >= 0 and not any_alive(alive, slots):
            for quarter in range(last_resolution + 1, horizon):
                calls[quarter] -= fixed_calls[quarter]
            wind_up = last_resolution
        else:
            wind_up = horizon
        # Recycled cash never reinvested goes back to the LPs when the fund winds up.
        proceeds[wind_up] += recycled_pool

        residual = 0.0
        lost = 0.0
        total_invested = 0.0
        for slot in range(slots):
            if alive[slot]:
                value[slot] = ownership[slot] * mark[slot]
                residual += value[slot]
            total_invested += invested[slot]
            if value[slot] < invested[slot]:
                lost += invested[slot]

        # 3. Waterfall and LP cash flows.
        carry_paid, lp_residual, _ = run_waterfall(
            calls, proceeds, residual, carry, quarterly_pref, catch_up, lp_distributions, state
        )
        paid_in = 0.0
        distributed = 0.0
        distributable = 0.0
        cumulative = 0.0
        for quarter in range(horizon + 1):
            paid_in += calls[quarter]
            distributed += lp_distributions[quarter]
            distributable += proceeds[quarter]
            flows[quarter] = lp_distributions[quarter] - calls[quarter]
            cumulative += flows[quarter]
            j_curve[column, quarter] = cumulative / commitments
        flows[horizon] += lp_residual

        net_tvpi = (distributed + lp_residual) / paid_in
        # Newton starts from the multiple spread over the gap between the cash-weighted dates of
        # money in and money out: usually a few steps from the root.
        paid_time = 0.0
        returned_time = 0.0
        for quarter in range(horizon + 1):
            paid_time += calls[quarter] * times_years[quarter]
            returned_time += lp_distributions[quarter] * times_years[quarter]
        returned_time += lp_residual * times_years[horizon]
        guess = -0.5
        if net_tvpi > 0.0:
            duration = returned_time / (distributed + lp_residual) - paid_time / paid_in
            guess = math.exp(math.log(net_tvpi) / max(duration, 0.25)) - 1.0

        out[OUT_NET_TVPI, column] = net_tvpi
        out[OUT_DPI, column] = distributed / paid_in
        out[OUT_RVPI, column] = lp_residual / paid_in
        out[OUT_NET_IRR, column] = solve_irr(flows, times_years, guess)
        out[OUT_GROSS_MOIC, column] = (gross_proceeds + residual) / total_invested
        out[OUT_PAID_IN, column] = paid_in
        out[OUT_INVESTED_INITIAL, column] = invested_initial
        out[OUT_INVESTED_FOLLOW_ON, column] = follow_on
        out[OUT_RESERVE_CALLED, column] = reserve_called
        out[OUT_RECYCLED, column] = recycled_total
        out[OUT_CARRY, column] = carry_paid
        out[OUT_LP_DISTRIBUTED, column] = distributed
        out[OUT_GROSS_PROCEEDS, column] = gross_proceeds
        out[OUT_DISTRIBUTABLE, column] = distributable
        out[OUT_RESIDUAL_VALUE, column] = residual
        out[OUT_LOSS_RATIO, column] = lost / total_invested
        out[OUT_FOLLOW_ON_REQUESTED, column] = requested
        out[OUT_LP_RESIDUAL, column] = lp_residual
