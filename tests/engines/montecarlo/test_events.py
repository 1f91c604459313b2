import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fundmodel.engines.montecarlo.events import BUCKET_BOUNDS, BUCKETS, bucket, sort_events
from fundmodel.engines.montecarlo.paths import EVENT_INDEX_BITS

HORIZON = 40


@settings(deadline=None)  # the first call compiles
@given(st.lists(st.integers(0, HORIZON), max_size=300), st.integers(0, 5))
def test_events_sort_by_quarter_then_by_index(quarters: list[int], spare: int) -> None:
    # Keys as the kernel records them: event i at index i, (quarter << bits) | i; spare slots past the
    # count must be left alone.
    count = len(quarters)
    keys = np.array(
        [(quarter << EVENT_INDEX_BITS) | index for index, quarter in enumerate(quarters)], dtype=np.int64
    )
    buffer = np.concatenate([keys, np.full(spare, -1, dtype=np.int64)])
    sort_events(buffer, count, np.empty(HORIZON + 1, dtype=np.int64), np.empty(count + spare, dtype=np.int64))
    np.testing.assert_array_equal(buffer[:count], np.sort(keys))
    np.testing.assert_array_equal(buffer[count:], -1)


def test_a_multiple_falls_in_the_bucket_of_the_bounds_it_reaches() -> None:
    # Below, at and just above every bound: "<1x", "1-5x", ... ">=50x" (a bound opens its bucket).
    assert bucket(0.0) == 0
    for index, bound in enumerate(BUCKET_BOUNDS):
        assert bucket(math.nextafter(bound, 0.0)) == index
        assert bucket(bound) == index + 1
        assert bucket(math.nextafter(bound, math.inf)) == index + 1
    assert bucket(1e9) == BUCKETS - 1
    assert bucket(math.inf) == BUCKETS - 1
