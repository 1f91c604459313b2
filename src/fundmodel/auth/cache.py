"""A short-lived per-process cache of authenticated keys, so most requests skip the key lookup.

A revoked key stops working within the TTL (default 2 s, like the mode cache). Only successful
lookups are cached; the cache is bounded and simply starts over when full.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fundmodel.auth.models import Principal

DEFAULT_TTL_SECONDS = 2.0
MAX_ENTRIES = 10_000


class PrincipalCache:
    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]

    def put(self, key_hash: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key_hash] = (principal, self._clock() + self._ttl)
