"""API keys: creation (the secret is returned once) and lookup by SHA-256 of the presented key.

Keys carry 256 bits of randomness, so a fast unsalted hash is enough: nothing is guessable offline, and a
lookup stays one indexed query.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from fundmodel.auth.models import CreatedKey, Principal
from fundmodel.db.tables import api_keys
from fundmodel.errors import ConflictError, InvalidInputError

KEY_PREFIX = "fmk_"
MAX_PRESENTED_KEY_LENGTH = 200
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


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
    """The principal whose key hashes to ``key_hash``, or None."""
    with engine.connect() as connection:
        row = connection.execute(
            select(api_keys.c.id, api_keys.c.name).where(
                api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        return None
    return Principal(client_id=f"key-{row.id}", name=str(row.name))
