"""A short-lived per-process cache of authenticated keys, so most requests skip the key lookup.

A revoked key stops working within the TTL (default 2 s, like the mode cache). Only successful
lookups are cached; a lookup that finds the key unknown or revoked removes it. The cache is bounded
and simply starts over when full.

Stale-if-error: an entry is kept for ``stale_if_error_seconds`` (default 5 minutes) past its TTL, for one
use only: when the key lookup itself fails because the database is unavailable, a key verified that
recently still authenticates, so the endpoints that need no database (Monte Carlo) keep serving their
clients through an outage. A revocation made during the outage cannot be read anyway; one made before
it was seen by the lookups that kept the entry fresh, which would have removed the entry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fundmodel.auth.models import Principal

DEFAULT_TTL_SECONDS = 2.0
DEFAULT_STALE_IF_ERROR_SECONDS = 300.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    verified_at: float


class PrincipalCache:
    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        *,
        stale_if_error_seconds: float = DEFAULT_STALE_IF_ERROR_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0 or stale_if_error_seconds < 0:
            raise ValueError("ttl_seconds and stale_if_error_seconds must not be negative")
        self._ttl = ttl_seconds
        self._stale_if_error = stale_if_error_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Principal | None:
        """The principal of a key verified within the TTL, else None (look it up again)."""
        entry = self._entries.get(key_hash)
        if entry is None or self._clock() - entry.verified_at >= self._ttl:
            return None
        return entry.principal

    def get_if_store_unavailable(self, key_hash: str) -> Principal | None:
        """The principal of a key verified within TTL + stale-if-error: only while the lookup cannot run."""
        entry = self._entries.get(key_hash)
        if entry is None or self._clock() - entry.verified_at >= self._ttl + self._stale_if_error:
            return None
        return entry.principal

    def put(self, key_hash: str, principal: Principal) -> None:
        with self._lock:
            if key_hash not in self._entries and len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key_hash] = _Entry(principal, self._clock())

    def discard(self, key_hash: str) -> None:
        """Forget a key the database no longer knows (revoked or deleted)."""
        with self._lock:
            self._entries.pop(key_hash, None)
