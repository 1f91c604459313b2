"""API keys: creation (the secret is returned once), lookup by SHA-256 of the presented key, listing.

Keys carry 256 bits of randomness, so a fast unsalted hash is enough: nothing is guessable offline, and a
lookup stays one indexed query. A lookup also records when the key was last used, at most once per
``LAST_USED_RESOLUTION`` per key: lookups already happen only on a cache miss (every few seconds per key
and process), and the write happens only when the stored time is older than the resolution, so steady
traffic costs one small UPDATE per key per minute, not one per request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from fundmodel.auth.models import ApiKeyInfo, CreatedKey, Principal
from fundmodel.db.tables import api_keys
from fundmodel.db.values import as_utc
from fundmodel.errors import ConflictError, InvalidInputError

KEY_PREFIX = "fmk_"
MAX_PRESENTED_KEY_LENGTH = 200
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)
""""Last used" is exact to this much; finer would mean a write per request for nothing an operator needs."""


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(engine: Engine, name: str) -> CreatedKey:
    """Create a key named ``name``; only its hash and a short display prefix are stored."""
    if not _NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            "key name must be 1-100 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="name",
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = secret[:12]
    try:
        with engine.begin() as connection:
            key_id = connection.execute(
                insert(api_keys)
                .values(name=name, key_prefix=prefix, key_hash=hash_key(secret))
                .returning(api_keys.c.id)
            ).scalar_one()
    except IntegrityError:
        raise ConflictError(f"an API key named {name!r} already exists") from None
    return CreatedKey(int(key_id), name, prefix, secret)


def authenticate(engine: Engine, presented: str) -> Principal | None:
    """The principal owning ``presented``, or None for an unknown or revoked key."""
    if not presented or len(presented) > MAX_PRESENTED_KEY_LENGTH:
        return None
    return authenticate_hash(engine, hash_key(presented))


def authenticate_hash(engine: Engine, key_hash: str) -> Principal | None:
    """The principal whose key hashes to ``key_hash``, or None; records the use (see the module doc)."""
    with engine.connect() as connection:
        row = connection.execute(
            select(api_keys.c.id, api_keys.c.name, api_keys.c.last_used_at).where(
                api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        return None
    now = datetime.now(UTC)
    if row.last_used_at is None or now - as_utc(row.last_used_at) >= LAST_USED_RESOLUTION:
        _record_use(engine, int(row.id), now)
    return Principal(client_id=f"key-{row.id}", name=str(row.name))


def _record_use(engine: Engine, key_id: int, now: datetime) -> None:
    # Conditional, so several processes seeing the same stale time write once between them. Best effort:
    # a busy database (a locked SQLite file) must not turn a valid key into a failed request.
    try:
        with engine.begin() as connection:
            connection.execute(
                update(api_keys)
                .where(
                    api_keys.c.id == key_id,
                    or_(
                        api_keys.c.last_used_at.is_(None),
                        api_keys.c.last_used_at < now - LAST_USED_RESOLUTION,
                    ),
                )
                .values(last_used_at=now)
            )
    except OperationalError:
        return


def list_keys(engine: Engine) -> list[ApiKeyInfo]:
    """Every key, oldest first, with what identifies it in logs and status output (never its hash)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                api_keys.c.id,
                api_keys.c.name,
                api_keys.c.key_prefix,
                api_keys.c.created_at,
                api_keys.c.last_used_at,
                api_keys.c.revoked_at,
            ).order_by(api_keys.c.id)
        ).all()
    return [
        ApiKeyInfo(
            key_id=int(row.id),
            client_id=f"key-{row.id}",
            name=str(row.name),
            prefix=str(row.key_prefix),
            created_at=as_utc(row.created_at),
            last_used_at=None if row.last_used_at is None else as_utc(row.last_used_at),
            revoked_at=None if row.revoked_at is None else as_utc(row.revoked_at),
        )
        for row in rows
    ]
