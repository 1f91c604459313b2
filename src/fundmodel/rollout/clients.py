"""The API clients the rollout can name: the unrevoked API keys, with when each was last used."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.auth.service import list_keys
from fundmodel.errors import StoreUnavailableError
from fundmodel.rollout.cohort_preview import KnownClient


def known_clients(engine: Engine) -> list[KnownClient]:
    """Every unrevoked key as a :class:`KnownClient` (its ``client_id`` is what the cohort hash takes)."""
    try:
        keys = list_keys(engine)
    except SQLAlchemyError as exc:
        raise StoreUnavailableError(f"API keys unreadable: {type(exc).__name__}") from exc
    return [KnownClient(key.name, key.client_id, key.last_used_at) for key in keys if key.revoked_at is None]
