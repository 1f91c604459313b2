"""API keys: stored hashed, found by hash, revoked keys refused; the short-lived principal cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update

from fundmodel.auth.cache import PrincipalCache
from fundmodel.auth.models import Principal
from fundmodel.auth.service import LAST_USED_RESOLUTION, authenticate, create_key, hash_key, list_keys
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


def test_last_use_is_recorded_at_most_once_per_resolution(engine: Engine) -> None:
    created = create_key(engine, "steady-client")
    assert list_keys(engine)[0].last_used_at is None
    assert authenticate(engine, created.secret) is not None
    first = list_keys(engine)[0].last_used_at
    assert first is not None
    assert abs(datetime.now(UTC) - first) < timedelta(minutes=1)
    for _ in range(5):
        authenticate(engine, created.secret)
    assert list_keys(engine)[0].last_used_at == first  # within the resolution: no write
    older = datetime.now(UTC) - LAST_USED_RESOLUTION - timedelta(seconds=5)
    with engine.begin() as connection:
        connection.execute(update(api_keys).values(last_used_at=older))
    authenticate(engine, created.secret)
    refreshed = list_keys(engine)[0].last_used_at
    assert refreshed is not None
    assert refreshed > older + LAST_USED_RESOLUTION
    assert authenticate(engine, created.secret + "x") is None
    assert list_keys(engine)[0].last_used_at == refreshed


def test_list_keys_shows_every_key_but_never_its_secret_or_hash(engine: Engine) -> None:
    first = create_key(engine, "alpha")
    second = create_key(engine, "beta")
    with engine.begin() as connection:
        connection.execute(
            update(api_keys).where(api_keys.c.name == "beta").values(revoked_at=datetime.now(UTC))
        )
    listed = list_keys(engine)
    assert [(k.name, k.client_id, k.prefix) for k in listed] == [
        ("alpha", f"key-{first.key_id}", first.prefix),
        ("beta", f"key-{second.key_id}", second.prefix),
    ]
    assert listed[0].revoked_at is None
    assert listed[1].revoked_at is not None
    assert listed[0].created_at.tzinfo is not None
    text = repr(listed)
    for created in (first, second):
        assert created.secret not in text
        assert hash_key(created.secret) not in text
