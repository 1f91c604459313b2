"""What happened to one piece of stage input: the ``outcome`` label of the validation metrics."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    VALID = "valid"
    """Canonical input, used as sent."""
    NORMALIZED_ALIAS = "normalized_alias"
    """Deprecated spellings, normalized to canonical stages and accepted (every mode)."""
    UNKNOWN_ACCEPTED = "unknown_accepted"
    """In ``off``: input that ``enforce`` would reject (unknown names, a bad sum), accepted silently."""
    WOULD_REJECT = "would_reject"
    """In ``warn``: input that ``enforce`` would reject, accepted with warnings and deprecation headers."""
    REJECTED = "rejected"
    """In ``enforce``: unknown names or a bad sum, answered with 400."""
    MALFORMED = "malformed"
    """Unusable in every mode (not an object, bad weights, limits exceeded), answered with 422."""

    __hash__ = str.__hash__
