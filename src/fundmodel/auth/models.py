"""Who a request acts as."""

from __future__ import annotations

from dataclasses import dataclass

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
