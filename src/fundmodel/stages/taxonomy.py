"""The canonical, ordered investment-stage taxonomy shared by the API, the database and the engines."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Stage(StrEnum):
    """Canonical investment stages, in the order a company moves through them."""

    PRE_SEED = "pre_seed"
    SEED = "seed"
    SERIES_A = "series_a"
    SERIES_B = "series_b"
    SERIES_C = "series_c"
    SERIES_D = "series_d"
    GROWTH = "growth"
    LATE_STAGE = "late_stage"

    # Members compare equal to their values (str mixin), so they must hash like them too: then a dict keyed
    # by Stage also answers plain-string lookups.
    __hash__ = str.__hash__

    @property
    def label(self) -> str:
        """Human-readable name, as shown in reports and error messages."""
        return STAGE_LABELS[self]

    @property
    def position(self) -> int:
        """Zero-based position in the canonical order."""
        return STAGE_ORDER.index(self)


STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)

STAGE_LABELS: Mapping[Stage, str] = MappingProxyType(
    {
        Stage.PRE_SEED: "Pre-Seed",
        Stage.SEED: "Seed",
        Stage.SERIES_A: "Series A",
        Stage.SERIES_B: "Series B",
        Stage.SERIES_C: "Series C",
        Stage.SERIES_D: "Series D+",
        Stage.GROWTH: "Growth",
        Stage.LATE_STAGE: "Late Stage",
    }
)
"""Human-readable label of each stage. Read-only: it is shared by every request and worker thread."""

CANONICAL_NAMES: frozenset[str] = frozenset(stage.value for stage in Stage)
