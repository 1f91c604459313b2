"""The stage core: the canonical investment-stage taxonomy and its one fail-closed normalizer.

Pure and fast, with no I/O; every layer that handles a stage name (API, database jobs, engines) goes
through it.
"""

from fundmodel.stages.distribution import (
    DEFAULT_TOLERANCE,
    MAX_ENTRIES,
    AliasUse,
    DistributionResult,
    Merge,
    Problem,
    ProblemCode,
    Scale,
    UnknownStage,
    parse_stage_distribution,
)
from fundmodel.stages.matching import (
    MAX_STAGE_NAME_LENGTH,
    has_unstorable_characters,
    matching_key,
    matching_keys,
)
from fundmodel.stages.normalizer import MatchKind, StageMatch, UnknownReason, normalize_stage
from fundmodel.stages.taxonomy import CANONICAL_NAMES, STAGE_LABELS, STAGE_ORDER, Stage

__all__ = [
    "CANONICAL_NAMES",
    "DEFAULT_TOLERANCE",
    "MAX_ENTRIES",
    "MAX_STAGE_NAME_LENGTH",
    "STAGE_LABELS",
    "STAGE_ORDER",
    "AliasUse",
    "DistributionResult",
    "MatchKind",
    "Merge",
    "Problem",
    "ProblemCode",
    "Scale",
    "Stage",
    "StageMatch",
    "UnknownReason",
    "UnknownStage",
    "has_unstorable_characters",
    "matching_key",
    "matching_keys",
    "normalize_stage",
    "parse_stage_distribution",
]
