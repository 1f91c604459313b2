"""The per-process side of the stage-usage ledger: counts aggregated in memory, handed out in batches.

Every validation is queued as a sighting (one atomic deque append: no lock, no I/O, so no request waits
on the database or on another request) and folded into a tally keyed by (UTC day, client, endpoint, field,
kind, spelling) by whoever next takes the ledger's lock: the flusher, or a recording thread once
``max_queued`` sightings wait. The flusher
(:mod:`fundmodel.usage.flusher`) takes the tallies as a :class:`UsageBatch` every few seconds and writes
it with :mod:`fundmodel.usage.recorder`; what could not be written comes back here:

- a batch the database certainly did not commit is merged back into the live tallies
  (:meth:`UsageLedger.restore`) and goes out again, with new counts, at the next flush;
- a batch whose commit may have succeeded (the connection failed while committing) is kept apart under its
  flush id (:meth:`UsageLedger.keep_uncertain`): its next attempt first asks whether that id was committed,
  so it is never added twice.

Memory is bounded: once ``max_held_keys`` keys are held (live, in flight and uncertain together),
validations of a key not yet held are dropped and counted (``on_dropped``); keys already held keep counting.
Spellings are bounded per client and day: beyond ``max_spellings`` distinct spellings a client's further
new spellings are counted under :data:`~fundmodel.db.usage_tables.OTHER_SPELLINGS` (per process: a table
holds at most that many per worker and day, plus the bucket).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from fundmodel.db.usage_tables import MAX_SPELLING_CHARS, OTHER_SPELLINGS
from fundmodel.observability.sanitize import escape_log_text
from fundmodel.validation.decision_types import StageUse, UsageKind

UsageKey = tuple[date, str, str, str, str, str]
"""(day, client_id, endpoint, field, kind, spelling): the primary key of a ``stage_usage`` row (``kind``
is a :class:`UsageKind`, a ``str``)."""

VALID_USE: tuple[StageUse, ...] = ((UsageKind.VALID, ""),)
"""What a validation of canonical input counts (its decision has no uses)."""
_Sighting = tuple[float, str, str, str, str, tuple[StageUse, ...]]
"""(Unix seconds, client_id, client_name, endpoint, field, uses): one validation, not yet folded."""


def _ignore_drops(_count: int) -> None:
    return None


class Tally:
    """The counts of one key: how many, first and last seen (Unix seconds), the client's latest name."""

    __slots__ = ("client_name", "count", "first_seen", "last_seen")

    def __init__(self, count: int, first_seen: float, last_seen: float, client_name: str) -> None:
        self.count = count
        self.first_seen = first_seen
        self.last_seen = last_seen
        self.client_name = client_name

    def add(self, other: Tally) -> None:
        """Fold ``other`` (counts of the same key) into this tally."""
        self.count += other.count
        self.first_seen = min(self.first_seen, other.first_seen)
        if other.last_seen >= self.last_seen:
            self.last_seen = other.last_seen
            self.client_name = other.client_name

    def copy(self) -> Tally:
        return Tally(self.count, self.first_seen, self.last_seen, self.client_name)


@dataclass(frozen=True, slots=True)
class UsageBatch:
    """Tallies taken out of a ledger to be written once, under one flush id."""

    flush_id: str
    tallies: Mapping[UsageKey, Tally]
    uncertain: bool = False
    """An earlier attempt may have committed it: check the flush id before writing."""

    def __len__(self) -> int:
        return len(self.tallies)

    @property
    def validations(self) -> int:
        """The counts it holds (a validation with several offending names counts once per name)."""
        return sum(tally.count for tally in self.tallies.values())


@dataclass(slots=True)
class UsageLedger:
    """One per process: thread-safe in-memory usage counts, O(1) per counted use."""

    max_spellings: int
    """Distinct spellings counted per client and day (per process) before ``OTHER_SPELLINGS``."""
    max_held_keys: int
    """Keys held at most (live, in flight, uncertain); validations of further keys are dropped."""
    on_dropped: Callable[[int], None] = _ignore_drops
    clock: Callable[[], float] = time.time
    max_queued: int = 10_000
    """Sightings queued before the recording thread folds them itself (bounds memory between flushes)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _sightings: deque[_Sighting] = field(default_factory=deque, init=False, repr=False)
    _tallies: dict[UsageKey, Tally] = field(default_factory=dict, init=False, repr=False)
    _spellings: dict[tuple[date, str], set[str]] = field(default_factory=dict, init=False, repr=False)
    _uncertain: list[UsageBatch] = field(default_factory=list, init=False, repr=False)
    _held_outside: int = field(default=0, init=False, repr=False)
    """Keys of the batches taken and not settled yet, plus the uncertain ones."""
    # Today (UTC) and its bounds in Unix seconds: the per-call check is one chained comparison.
    _day: date = field(default=date.min, init=False, repr=False)
    _day_starts_at: float = field(default=0.0, init=False, repr=False)
    _day_ends_at: float = field(default=0.0, init=False, repr=False)

    def record_valid(self, client_id: str, client_name: str, endpoint: str, field: str) -> None:
        """Count one validation of canonical input (the usual request: the shortest path)."""
        self._queue((self.clock(), client_id, client_name, endpoint, field, VALID_USE))

    def record(
        self, client_id: str, client_name: str, endpoint: str, field: str, uses: tuple[StageUse, ...]
    ) -> None:
        """Count one validation: each of its decision's ``uses`` (see :meth:`record_valid` for none)."""
        self._queue((self.clock(), client_id, client_name, endpoint, field, uses))

    def _queue(self, sighting: _Sighting) -> None:
        # A deque append is atomic: the request pays for it alone, and whoever next takes the lock (the
        # flusher, every few seconds) folds the queue into the tallies.
        self._sightings.append(sighting)
        if len(self._sightings) >= self.max_queued:
            with self._lock:
                self._fold_sightings()

    def _fold_sightings(self) -> None:
        """Fold the queued sightings into the tallies (the lock held). Pops one at a time, so a sighting
        appended meanwhile is folded now or by the next call, never lost."""
        sightings = self._sightings
        while sightings:
            now, client_id, client_name, endpoint, field, uses = sightings.popleft()
            if not self._day_starts_at <= now < self._day_ends_at:
                self._roll_day(now)
            day = self._day
            seen: set[str] | None = None
            for kind, sent in uses:
                spelling = sent
                if sent:
                    if not (len(sent) <= MAX_SPELLING_CHARS and sent.isprintable() and "\\" not in sent):
                        spelling = escape_log_text(sent, MAX_SPELLING_CHARS)
                    if seen is None:
                        seen = self._spellings.get((day, client_id))
                        if seen is None:
                            seen = self._spellings[(day, client_id)] = set()
                    if spelling not in seen and spelling != OTHER_SPELLINGS:
                        spelling = self._admit_spelling(seen, spelling)
                key = (day, client_id, endpoint, field, kind, spelling)
                tally = self._tallies.get(key)
                if tally is None:
                    self._add_key(key, now, client_name)
                elif now >= tally.last_seen:
                    tally.count += 1
                    tally.last_seen = now
                    tally.client_name = client_name
                else:  # sightings of two threads can be queued slightly out of time order
                    tally.count += 1
                    tally.first_seen = min(tally.first_seen, now)

    def _add_key(self, key: UsageKey, now: float, client_name: str) -> None:
        if len(self._tallies) + self._held_outside < self.max_held_keys:
            self._tallies[key] = Tally(1, now, now, client_name)
        else:
            self.on_dropped(1)

    def _roll_day(self, now: float) -> None:
        self._day = datetime.fromtimestamp(now, UTC).date()
        midnight = datetime(self._day.year, self._day.month, self._day.day, tzinfo=UTC)
        self._day_starts_at = midnight.timestamp()
        self._day_ends_at = (midnight + timedelta(days=1)).timestamp()

    def _admit_spelling(self, seen: set[str], spelling: str) -> str:
        """A spelling new for the client today: counted as itself within the bound, else as the bucket."""
        if len(seen) >= self.max_spellings:
            return OTHER_SPELLINGS
        seen.add(spelling)
        return spelling

    def take(self) -> list[UsageBatch]:
        """The batches to write now, oldest first: the uncertain ones, then the live tallies (if any).

        Settle each with :meth:`flushed`, :meth:`restore` or :meth:`keep_uncertain`.
        """
        with self._lock:
            self._fold_sightings()
            batches = self._uncertain
            self._uncertain = []
            if self._tallies:
                batches.append(UsageBatch(uuid.uuid4().hex, self._tallies))
                self._held_outside += len(self._tallies)
                self._tallies = {}
            # Spellings seen on past days bound nothing any more.
            now = self.clock()
            if not self._day_starts_at <= now < self._day_ends_at:
                self._roll_day(now)
            for stale in [key for key in self._spellings if key[0] < self._day]:
                del self._spellings[stale]
            return batches

    def flushed(self, batch: UsageBatch) -> None:
        """``batch`` is in the database (written now, or by an earlier attempt)."""
        with self._lock:
            self._held_outside -= len(batch)

    def restore(self, batch: UsageBatch) -> None:
        """``batch`` was certainly not written: its counts join the live tallies and go out next time."""
        with self._lock:
            self._held_outside -= len(batch)
            for key, tally in batch.tallies.items():
                live = self._tallies.get(key)
                if live is None:
                    self._tallies[key] = tally.copy()
                else:
                    live.add(tally)

    def keep_uncertain(self, batch: UsageBatch) -> None:
        """``batch`` may have been committed: keep it apart, to be checked by its flush id next time."""
        with self._lock:
            self._uncertain.append(UsageBatch(batch.flush_id, batch.tallies, uncertain=True))

    def queued(self) -> int:
        """Sightings recorded and not folded into the tallies yet."""
        return len(self._sightings)

    def held_keys(self) -> int:
        """Keys held in memory: live, in flight and uncertain."""
        with self._lock:
            self._fold_sightings()
            return len(self._tallies) + self._held_outside

    def snapshot(self) -> Iterator[tuple[UsageKey, int]]:
        """The live counts (for tests and diagnostics), not including batches taken out."""
        with self._lock:
            self._fold_sightings()
            counts = [(key, tally.count) for key, tally in self._tallies.items()]
        return iter(counts)
