"""The public JSON of the stage-usage ledger: a client's own usage, and the operators' offender report."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from fundmodel.apimodel import ApiModel

DeprecatedKind = Literal["alias", "unknown", "sum", "rejected"]

_KIND_DESCRIPTION = (
    "alias: a deprecated spelling, normalized; unknown: a name that is no stage, accepted by off/warn; "
    "sum: weights that did not sum to 1, renormalized; rejected: input enforce answered with 400."
)


class OwnUsageEntry(ApiModel):
    """What the calling client sent on one endpoint and field, of one kind and spelling, summed over days."""

    endpoint: str = Field(description="The endpoint (route template) the input was sent to.")
    field: str = Field(description="The request field that held the stage input.")
    kind: DeprecatedKind = Field(description=_KIND_DESCRIPTION)
    spelling: str | None = Field(
        description="The stage name as sent (escaped, at most 64 characters); null for a sum. "
        "`(other)` counts the spellings beyond the ledger's daily bound per client."
    )
    count: int = Field(ge=1, description="Validations counted in the window.")
    first_seen_at: datetime = Field(description="First counted in the window (UTC).")
    last_seen_at: datetime = Field(description="Last counted in the window (UTC).")
    send_instead: str | None = Field(
        description="The canonical stage name to send instead, when the spelling is an alias of one."
    )
    suggestions: list[str] = Field(
        description="For a name that is no stage: the closest canonical names (did you mean), closest "
        "first; empty otherwise."
    )


class OwnUsage(ApiModel):
    """``GET /api/deprecations/usage``: the calling client's own reliance on deprecated stage handling."""

    client_name: str = Field(description="The API key the usage was counted for (the caller's).")
    since: date = Field(description="First UTC day counted (inclusive).")
    retention_days: int = Field(description="How many days of usage the service keeps.")
    sunset_at: datetime = Field(
        description="After this date deprecated spellings are no longer accepted (the Sunset header)."
    )
    total: int = Field(ge=0, description="Validations that relied on deprecated handling in the window.")
    usage: list[OwnUsageEntry] = Field(
        description="Largest count first; empty when nothing the client sent relied on deprecated handling."
    )
    truncated: bool = Field(
        description="True when more entries exist than listed (the largest are listed; `total` counts all)."
    )


class KindCount(ApiModel):
    kind: DeprecatedKind
    count: int = Field(ge=1)


class ClientOffender(ApiModel):
    """One client that relied on deprecated stage handling in the window: never its key or the key's hash."""

    client_id: str = Field(
        description="`key-<id>` (what logs and canary cohorts use), or the anonymous client."
    )
    key_name: str = Field(description="The API key's name (as last counted when the key no longer exists).")
    key_prefix: str | None = Field(description="The key's display prefix; null when no key row matches.")
    key_revoked: bool = Field(description="The key has been revoked since.")
    count: int = Field(ge=1, description="Validations of a deprecated kind in the window.")
    kinds: list[KindCount] = Field(description="The count per kind, largest first.")
    endpoints: list[str] = Field(description="Endpoints it sent deprecated input to, by volume.")
    spellings: list[str] = Field(description="Spellings it sent, by volume (sums have none).")
    last_seen_at: datetime


class OffenderReport(ApiModel):
    """Every client still relying on deprecated stage handling, ranked by volume."""

    since: date = Field(description="First UTC day counted (inclusive).")
    endpoint: str | None = Field(description="The one endpoint counted, when narrowed to one.")
    total: int = Field(ge=0, description="Validations of a deprecated kind in the window, every client.")
    clients: list[ClientOffender] = Field(description="Largest count first.")
