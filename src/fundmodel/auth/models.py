"""Who a request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ANONYMOUS_DEV_CLIENT_ID = "anonymous-dev"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client; ``client_id`` is stable and is what canary cohorts hash."""

    client_id: str
    name: str
    anonymous: bool = False


ANONYMOUS_DEV_PRINCIPAL = Principal(
    client_id=ANONYMOUS_DEV_CLIENT_ID, name="anonymous development client", anonymous=True
)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A freshly created key: ``secret`` is shown once and never stored."""

    key_id: int
    name: str
    prefix: str
    secret: str


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What an operator may see of a key: never the key itself nor its hash."""

    key_id: int
    client_id: str
    """The id logs, metrics' offender entries and canary cohorts use (``key-<id>``)."""
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
