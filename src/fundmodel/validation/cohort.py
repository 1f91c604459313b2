"""Canary cohorts: a stable hash of (salt, client id) decides who is enforced first.

Each client gets a fixed bucket in [0, 100); it is in the canary cohort when its bucket is below the canary
percentage. So a client never flips between modes from request to request, raising the percentage only adds
clients, and changing the salt reshuffles who goes first.
"""

from __future__ import annotations

import hashlib

_BUCKETS = 2**64


def cohort_bucket(client_id: str, *, salt: str) -> float:
    """The client's position in [0, 100), uniformly distributed over client ids."""
    digest = hashlib.blake2b(
        client_id.encode("utf-8", "surrogatepass"),
        digest_size=8,
        key=hashlib.sha256(salt.encode("utf-8", "surrogatepass")).digest(),
    ).digest()
    return int.from_bytes(digest, "big") * 100.0 / _BUCKETS


def in_canary_cohort(client_id: str, *, salt: str, percent: float) -> bool:
    return cohort_bucket(client_id, salt=salt) < percent
