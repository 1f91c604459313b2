"""``parse_stage_distribution``: a JSON object of stage name -> weight in, a typed verdict out. Never raises.

Rules (the documented contract):

* The input must be a JSON object (``Mapping``) with 1 to :data:`MAX_ENTRIES` entries whose keys are
  strings of at most :data:`~fundmodel.stages.matching.MAX_STAGE_NAME_LENGTH` characters, with no NUL
  (U+0000) and no unpaired surrogate (``INVALID_KEY``: such text could be neither stored nor echoed).
* Weights are real numbers (``int`` or ``float``; never ``bool``, strings, ``None`` or containers), finite,
  and within ``[0, 1]`` on the default ``"fraction"`` scale or ``[0, 100]`` when the caller passes
  ``scale="percent"`` explicitly. Percent weights are divided by 100, so ``weights`` and ``total`` are always
  fractions and ``tolerance`` is always in fraction units.
* Names go through :func:`~fundmodel.stages.normalize_stage`: aliases are normalized (and reported as
  deprecated), unknown names are reported with suggestions and never guessed.
* Keys that normalize to the same stage are merged (weights added) and reported.
* The weights of all well-formed entries, known or unknown, must sum to 1 within ``tolerance`` (default 1e-3).
  The sum is not checked when an entry is malformed (its weight is unknown).

``ok`` is true only when no problem of severity ``error`` was found. ``weights`` holds the known stages in
canonical order, as sent (not renormalized); what to do with an imperfect distribution is the caller's policy.

Two paths give the same answers: a dict whose key tuple was seen before takes its key plan
(:mod:`~fundmodel.stages.key_plans`: only the weights are checked and added); anything else is judged entry
by entry (:mod:`~fundmodel.stages.entry_parser`). Result types: :mod:`~fundmodel.stages.distribution_result`.
"""

from __future__ import annotations

from typing import Literal

from fundmodel.stages.distribution_result import (
    DEFAULT_TOLERANCE,
    MALFORMED_CODES,
    MAX_ENTRIES,
    WARNING_CODES,
    AliasUse,
    DistributionResult,
    KeyNotAString,
    Merge,
    NotAnObject,
    Problem,
    ProblemCode,
    ProblemDetail,
    SumMismatch,
    TooManyEntries,
    UnknownStage,
    UnstorableKey,
)
from fundmodel.stages.entry_parser import parse_entry_by_entry
from fundmodel.stages.key_plans import apply_key_plan, key_plans

Scale = Literal["fraction", "percent"]


def parse_stage_distribution(
    mapping: object,
    *,
    scale: Scale = "fraction",
    tolerance: float = DEFAULT_TOLERANCE,
) -> DistributionResult:
    """Validate and normalize a stage distribution; see the module docstring for the rules."""
    if scale == "fraction":
        divisor = 1.0
    elif scale == "percent":
        divisor = 100.0
    else:
        raise ValueError(f"scale must be 'fraction' or 'percent', not {scale!r}")
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), not {tolerance!r}")
    if type(mapping) is dict and 0 < len(mapping) <= MAX_ENTRIES:
        keys = tuple(mapping)
        plans = key_plans()
        try:
            plan = plans.plans[keys]
        except KeyError:
            plan = plans.plan_on_second_sighting(keys)
        if plan is not None:
            # The upper bound of a weight is the divisor on both scales (1 or 100 %).
            result = apply_key_plan(plan, mapping, divisor, divisor, tolerance)
            if result is not None:
                return result
    return parse_entry_by_entry(mapping, divisor, divisor, tolerance)


__all__ = [
    "DEFAULT_TOLERANCE",
    "MALFORMED_CODES",
    "MAX_ENTRIES",
    "WARNING_CODES",
    "AliasUse",
    "DistributionResult",
    "KeyNotAString",
    "Merge",
    "NotAnObject",
    "Problem",
    "ProblemCode",
    "ProblemDetail",
    "Scale",
    "SumMismatch",
    "TooManyEntries",
    "UnknownStage",
    "UnstorableKey",
    "parse_stage_distribution",
]
