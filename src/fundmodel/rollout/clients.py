"""The API clients the rollout can name: the unrevoked API keys, with when each was last used."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.auth.service import list_keys
from fundmodel.errors import StoreUnavailableError
from fundmodel.rollout.cohort_preview import KnownClient


@dataclass(frozen=True, slots=True)
class ClientKeys:
    """Every API key as the rollout sees it: the unrevoked ones, and the ids of the revoked ones."""

    active: list[KnownClient]
    revoked_client_ids: frozenset[str]
    """A revoked key cannot send anything any more: what it sent before breaks nobody."""


def client_keys(engine: Engine) -> ClientKeys:
    """One read of ``api_keys``: the unrevoked keys as :class:`KnownClient` (their ``client_id`` is what
    the cohort hash and the usage ledger take) and the revoked keys' client ids."""
    try:
        keys = list_keys(engine)
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"API keys unreadable: {type(exc).__name__}") from exc
    active = [
        KnownClient(key.name, key.client_id, key.last_used_at) for key in keys if key.revoked_at is None
    ]
    revoked = frozenset(key.client_id for key in keys if key.revoked_at is not None)
    return ClientKeys(active, revoked)
