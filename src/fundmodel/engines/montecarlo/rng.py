"""Counter-based random numbers: a draw is a pure function of (block key, fund, company key, round, purpose).

Why counter-based rather than a sequential generator: a draw's value depends only on *where* it is used, so
(1) results are bit-identical however the work is chunked or threaded, (2) two configurations run with the
same seed see the same draws for the same company (common random numbers), whatever paths their
companies take, and (3) only the draws a company actually needs are computed.

A company's draws are keyed by its *entry stage and its index within that stage* (:func:`company_key`),
not by its position in the portfolio: adding or removing one company (a fee change that funds one check
fewer, a different stage mix) changes only that company's draws, never another's. The fund-level draws
(the market state) have a key of their own, :data:`FUND_KEY`.

Block keys come from ``numpy.random.SeedSequence``: the key of fund block ``b`` is the first 64-bit word of
``SeedSequence(seed, spawn_key=(b,))``, which is exactly ``SeedSequence(seed).spawn(b + 1)[b]``. Inside a
block, a draw is the SplitMix64 output at position ``counter`` of the stream starting at that key.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.jit import jit

FUNDS_PER_BLOCK = 4096
"""Funds sharing one SeedSequence child. Fixed: changing it changes every result for a given seed."""

MAX_PER_STAGE = 1024
"""Upper bound on companies entering at one stage (the planner allows at most 1,000 per fund)."""
STAGE_KEYS = 8
"""Entry stages with a key range of their own (the canonical stages)."""
FUND_KEY = STAGE_KEYS * MAX_PER_STAGE
"""The key of the fund-level draws (the market state), after every company key."""
KEYS_PER_FUND = FUND_KEY + 1
ROUNDS_PER_KEY = 16
"""Counter space per company: round indices 0..14 plus the entry draws at ENTRY_ROUND."""
ENTRY_ROUND = 15
PURPOSES = 8

# Per round of a company.
PURPOSE_OUTCOME = 0
"""The company's idiosyncratic shock this round: survive or fail."""
PURPOSE_TIMING = 1
PURPOSE_EXIT_MULTIPLE = 2
PURPOSE_ROUTE = 3
"""A survivor's path: the next round or an exit."""
PURPOSE_SIGNAL = 4
"""Noise of the quality the fund observes when deciding a follow-on."""
PURPOSE_RECOVERY = 5
"""What a failed company's distressed sale recovers."""
# At ENTRY_ROUND of a company.
PURPOSE_ENTRY = 0
PURPOSE_QUALITY = 1
# At round 0 of FUND_KEY.
PURPOSE_MARKET = 0

_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_SHIFT_30 = np.uint64(30)
_SHIFT_27 = np.uint64(27)
_SHIFT_31 = np.uint64(31)
_SHIFT_11 = np.uint64(11)
_TWO_POW_MINUS_53 = 1.0 / 9007199254740992.0


def block_keys(seed: int, first_block: int, count: int) -> npt.NDArray[np.uint64]:
    """The 64-bit keys of fund blocks ``first_block .. first_block + count - 1`` for ``seed``."""
    keys = np.empty(count, dtype=np.uint64)
    for offset in range(count):
        sequence = np.random.SeedSequence(seed, spawn_key=(first_block + offset,))
        keys[offset] = sequence.generate_state(1, dtype=np.uint64)[0]
    return keys


def company_key(stage_position: int, index_in_stage: int) -> int:
    """The stream key of the ``index_in_stage``-th company entering at the stage ``stage_position``."""
    if not 0 <= stage_position < STAGE_KEYS or not 0 <= index_in_stage < MAX_PER_STAGE:
        raise ValueError(f"no stream key for company {index_in_stage} of stage {stage_position}")
    return stage_position * MAX_PER_STAGE + index_in_stage


@jit
def draw_counter(fund_in_block: int, key: int, round_index: int, purpose: int) -> np.uint64:
    """The position of one draw in its block's stream."""
    return np.uint64(
        ((fund_in_block * KEYS_PER_FUND + key) * ROUNDS_PER_KEY + round_index) * PURPOSES + purpose
    )


@jit
def uniform(key: np.uint64, counter: np.uint64) -> float:
    """A uniform double in the open interval (0, 1): SplitMix64 at ``counter`` of the stream ``key``."""
    z = key + (counter + np.uint64(1)) * _GOLDEN_GAMMA
    z = (z ^ (z >> _SHIFT_30)) * _MIX_1
    z = (z ^ (z >> _SHIFT_27)) * _MIX_2
    z = z ^ (z >> _SHIFT_31)
    return (float(z >> _SHIFT_11) + 0.5) * _TWO_POW_MINUS_53
