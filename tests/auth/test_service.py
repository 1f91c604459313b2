"""API keys: stored hashed, found by hash, revoked keys refused; the short-lived principal cache."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select, update

from fundmodel.auth.cache import PrincipalCache
from fundmodel.auth.models import Principal
from fundmodel.auth.service import authenticate, create_key, hash_key
from fundmodel.db.tables import api_keys
from fundmodel.errors import InvalidInputError


def test_only_the_hash_is_stored_and_revocation_works(engine: Engine) -> None:
    created = create_key(engine, "analytics")
    with engine.connect() as connection:
        row = connection.execute(select(api_keys)).one()
    assert row.key_hash == hash_key(created.secret)
    assert created.secret not in {str(value) for value in row}
    assert authenticate(engine, created.secret) == Principal(f"key-{created.key_id}", "analytics")
    assert authenticate(engine, created.secret + "x") is None
    with engine.begin() as connection:
        connection.execute(update(api_keys).values(revoked_at=datetime.now(UTC)))
    assert authenticate(engine, created.secret) is None


@pytest.mark.parametrize("name", ["", "has space", "x" * 101, "-leading"])
def test_bad_key_names_are_refused(engine: Engine, name: str) -> None:
    with pytest.raises(InvalidInputError):
        create_key(engine, name)


def test_cache_expires_after_its_ttl() -> None:
    now = [0.0]
    cache = PrincipalCache(2.0, clock=lambda: now[0])
    principal = Principal("key-1", "a")
    cache.put("h", principal)
    assert cache.get("h") == principal
    now[0] = 2.0
    assert cache.get("h") is None
