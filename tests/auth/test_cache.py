"""The per-process key cache: fresh within the TTL, stale-if-error for a bounded window, revocations gone."""

from __future__ import annotations

import pytest

from fundmodel.auth.cache import PrincipalCache
from fundmodel.auth.models import Principal

ALICE = Principal("key-1", "alice")


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_fresh_within_the_ttl_and_usable_in_an_outage_for_the_stale_window() -> None:
    clock = _Clock()
    cache = PrincipalCache(2.0, stale_if_error_seconds=60.0, clock=clock)
    cache.put("h", ALICE)
    clock.now += 1.5
    assert cache.get("h") == ALICE
    clock.now += 0.5  # TTL over: look the key up again ...
    assert cache.get("h") is None
    assert cache.get_if_store_unavailable("h") == ALICE  # ... unless the lookup cannot run
    clock.now += 59.5  # TTL + stale window = 62 s after the lookup
    assert cache.get_if_store_unavailable("h") == ALICE
    clock.now += 0.5
    assert cache.get_if_store_unavailable("h") is None


def test_a_fresh_lookup_restarts_both_windows() -> None:
    clock = _Clock()
    cache = PrincipalCache(2.0, stale_if_error_seconds=10.0, clock=clock)
    cache.put("h", ALICE)
    clock.now += 11.0
    cache.put("h", ALICE)
    assert cache.get("h") == ALICE
    clock.now += 11.5
    assert cache.get_if_store_unavailable("h") == ALICE
    clock.now += 0.5  # TTL + stale window = 12 s after the second lookup
    assert cache.get_if_store_unavailable("h") is None


def test_a_key_found_revoked_is_forgotten_for_good() -> None:
    cache = PrincipalCache(2.0, stale_if_error_seconds=300.0, clock=_Clock())
    cache.put("h", ALICE)
    cache.discard("h")
    cache.discard("never-seen")
    assert cache.get("h") is None
    assert cache.get_if_store_unavailable("h") is None


def test_stale_if_error_zero_means_none() -> None:
    clock = _Clock()
    cache = PrincipalCache(2.0, stale_if_error_seconds=0.0, clock=clock)
    cache.put("h", ALICE)
    clock.now += 2.0
    assert cache.get_if_store_unavailable("h") is None


def test_the_cache_starts_over_when_full_but_refreshing_a_known_key_does_not_clear_it() -> None:
    cache = PrincipalCache(2.0, max_entries=2, clock=_Clock())
    cache.put("a", ALICE)
    cache.put("b", ALICE)
    cache.put("b", ALICE)
    assert cache.get("a") == ALICE
    cache.put("c", ALICE)
    assert cache.get("a") is None
    assert cache.get("c") == ALICE


@pytest.mark.parametrize(("ttl", "stale"), [(-1.0, 0.0), (1.0, -1.0)])
def test_negative_windows_are_refused(ttl: float, stale: float) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        PrincipalCache(ttl, stale_if_error_seconds=stale)
