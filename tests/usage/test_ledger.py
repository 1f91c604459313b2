"""The in-memory usage ledger: keys, bounds, batches handed out and settled, thread safety."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime

from fundmodel.db.usage_tables import OTHER_SPELLINGS
from fundmodel.usage.ledger import VALID_USE, UsageKey, UsageLedger
from fundmodel.validation.decision_types import StageUse, UsageKind

NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()
DAY = date(2026, 12, 3)
ENDPOINT = "/api/portfolio/strategies"


class FakeClock:
    """A settable clock (Unix seconds)."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _ledger(**overrides: object) -> UsageLedger:
    values: dict[str, object] = {"max_spellings": 50, "max_held_keys": 10_000, "clock": FakeClock()}
    values.update(overrides)
    return UsageLedger(**values)  # type: ignore[arg-type]


def _alias(name: str) -> tuple[StageUse, ...]:
    return ((UsageKind.ALIAS, name),)


def _counts(ledger: UsageLedger) -> dict[UsageKey, int]:
    return dict(ledger.snapshot())


def test_one_valid_per_canonical_validation_and_one_count_per_offending_name() -> None:
    ledger = _ledger()
    ledger.record("key-1", "alpha", ENDPOINT, "stageAllocation", VALID_USE)
    ledger.record("key-1", "alpha", ENDPOINT, "stageAllocation", VALID_USE)
    uses = (
        (UsageKind.UNKNOWN, "moon"),
        (UsageKind.ALIAS, "Seed"),
        (UsageKind.SUM, ""),
    )
    ledger.record("key-1", "alpha", ENDPOINT, "stageAllocation", uses)
    assert _counts(ledger) == {
        (DAY, "key-1", ENDPOINT, "stageAllocation", "valid", ""): 2,
        (DAY, "key-1", ENDPOINT, "stageAllocation", "unknown", "moon"): 1,
        (DAY, "key-1", ENDPOINT, "stageAllocation", "alias", "Seed"): 1,
        (DAY, "key-1", ENDPOINT, "stageAllocation", "sum", ""): 1,
    }


def test_record_valid_is_the_same_count_as_recording_the_valid_use() -> None:
    ledger = _ledger()
    ledger.record_valid("key-1", "alpha", ENDPOINT, "stage")
    ledger.record("key-1", "alpha", ENDPOINT, "stage", VALID_USE)
    assert _counts(ledger) == {(DAY, "key-1", ENDPOINT, "stage", "valid", ""): 2}


def test_first_and_last_seen_and_the_latest_client_name_are_kept() -> None:
    clock = FakeClock()
    ledger = _ledger(clock=clock)
    ledger.record("key-1", "old name", ENDPOINT, "stage", _alias("Seed"))
    clock.now += 30
    ledger.record("key-1", "new name", ENDPOINT, "stage", _alias("Seed"))
    (batch,) = ledger.take()
    (tally,) = batch.tallies.values()
    assert (tally.count, tally.first_seen, tally.last_seen, tally.client_name) == (
        2,
        NOON,
        NOON + 30,
        "new name",
    )


def test_counts_go_to_the_utc_day_they_happen_on() -> None:
    clock = FakeClock(datetime(2026, 12, 3, 23, 59, 59, tzinfo=UTC).timestamp())
    ledger = _ledger(clock=clock)
    ledger.record("key-1", "a", ENDPOINT, "stage", VALID_USE)
    clock.now += 2
    ledger.record("key-1", "a", ENDPOINT, "stage", VALID_USE)
    assert sorted(key[0] for key in _counts(ledger)) == [DAY, date(2026, 12, 4)]


def test_spellings_are_escaped_and_cut_to_the_column() -> None:
    ledger = _ledger()
    ledger.record("key-1", "a", ENDPOINT, "stage", _alias("seed\n" + "x" * 100))
    ((key, _),) = _counts(ledger).items()
    spelling = key[5]
    assert spelling.startswith("seed\\x0axxx")
    assert len(spelling) == 64
    assert "\n" not in spelling


def test_spellings_beyond_the_bound_per_client_and_day_count_as_other() -> None:
    ledger = _ledger(max_spellings=3)
    for name in ("a", "b", "c", "d", "e", "a"):
        ledger.record("key-1", "one", ENDPOINT, "stage", _alias(name))
    ledger.record("key-2", "two", ENDPOINT, "stage", _alias("e"))  # another client has its own bound
    by_spelling = Counter({(key[1], key[5]): count for key, count in _counts(ledger).items()})
    assert by_spelling == {
        ("key-1", "a"): 2,
        ("key-1", "b"): 1,
        ("key-1", "c"): 1,
        ("key-1", OTHER_SPELLINGS): 2,
        ("key-2", "e"): 1,
    }


def test_the_spelling_bound_starts_afresh_the_next_day() -> None:
    clock = FakeClock()
    ledger = _ledger(max_spellings=1, clock=clock)
    ledger.record("key-1", "one", ENDPOINT, "stage", _alias("a"))
    ledger.record("key-1", "one", ENDPOINT, "stage", _alias("b"))
    clock.now += 86_400
    ledger.take()
    ledger.record("key-1", "one", ENDPOINT, "stage", _alias("b"))
    assert [key[5] for key in _counts(ledger)] == ["b"]


def test_new_keys_past_the_memory_bound_are_dropped_and_counted_known_keys_keep_counting() -> None:
    dropped: list[int] = []
    ledger = _ledger(max_held_keys=2, on_dropped=dropped.append)
    ledger.record("key-1", "a", ENDPOINT, "stage", _alias("x"))
    batches = ledger.take()  # in flight: still held
    ledger.record("key-1", "a", ENDPOINT, "stage", _alias("y"))
    ledger.record("key-1", "a", ENDPOINT, "stage", _alias("z"))  # a third key: dropped
    ledger.record("key-1", "a", ENDPOINT, "stage", _alias("y"))  # held: counted
    assert ledger.held_keys() == 2  # folds the queued sightings
    assert dropped == [1]
    ledger.flushed(batches[0])
    assert ledger.held_keys() == 1
    ledger.record("key-1", "a", ENDPOINT, "stage", _alias("z"))
    assert sorted(count for _, count in ledger.snapshot()) == [1, 2]
    assert dropped == [1]


def test_sightings_wait_for_the_next_fold_and_a_full_queue_is_folded_by_the_recording_thread() -> None:
    ledger = _ledger(max_queued=3)
    for _ in range(2):
        ledger.record_valid("key-1", "a", ENDPOINT, "stage")
    assert ledger.queued() == 2  # the request paid for an append only
    ledger.record_valid("key-1", "a", ENDPOINT, "stage")  # the third fills the queue: folded now
    assert ledger.queued() == 0
    ledger.record_valid("key-1", "a", ENDPOINT, "stage")
    assert dict(ledger.snapshot()) == {(DAY, "key-1", ENDPOINT, "stage", "valid", ""): 4}
    assert ledger.queued() == 0


def test_a_batch_certainly_not_written_is_merged_back_and_goes_out_with_the_new_counts() -> None:
    clock = FakeClock()
    ledger = _ledger(clock=clock)
    ledger.record("key-1", "a", ENDPOINT, "stage", _alias("x"))
    (failed,) = ledger.take()
    clock.now += 5
    ledger.record("key-1", "a", ENDPOINT, "stage", _alias("x"))
    ledger.restore(failed)
    (retry,) = ledger.take()
    assert retry.flush_id != failed.flush_id
    assert not retry.uncertain
    (tally,) = retry.tallies.values()
    assert (tally.count, tally.first_seen, tally.last_seen) == (2, NOON, NOON + 5)


def test_a_batch_that_may_have_been_committed_is_kept_apart_under_its_flush_id() -> None:
    ledger = _ledger()
    ledger.record("key-1", "a", ENDPOINT, "stage", _alias("x"))
    (maybe,) = ledger.take()
    ledger.keep_uncertain(maybe)
    ledger.record("key-1", "a", ENDPOINT, "stage", _alias("x"))
    uncertain, fresh = ledger.take()
    assert (uncertain.flush_id, uncertain.uncertain, uncertain.validations) == (maybe.flush_id, True, 1)
    assert (fresh.uncertain, fresh.validations) == (False, 1)
    assert ledger.held_keys() == 2


def test_take_hands_out_nothing_when_nothing_was_counted() -> None:
    assert _ledger().take() == []


def test_concurrent_recording_loses_no_count() -> None:
    ledger = _ledger()
    threads = 8
    per_thread = 2_000
    taken: list[int] = []

    def record() -> None:
        for number in range(per_thread):
            ledger.record_valid(f"key-{number % 3}", "a", ENDPOINT, "stage")
            ledger.record(f"key-{number % 3}", "a", ENDPOINT, "stage", _alias(f"s{number % 5}"))

    def take_while_recording(stop: threading.Event) -> None:
        while not stop.is_set():
            for batch in ledger.take():
                taken.append(batch.validations)
                ledger.flushed(batch)

    stop = threading.Event()
    taker = threading.Thread(target=take_while_recording, args=(stop,))
    taker.start()
    workers = [threading.Thread(target=record) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    taker.join()
    remaining = sum(batch.validations for batch in ledger.take())
    assert sum(taken) + remaining == 2 * threads * per_thread
