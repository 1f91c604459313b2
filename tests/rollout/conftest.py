"""A real Prometheus with recorded series, started once for this package (about 3 s), always torn down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rollout.recorded_prometheus import (
    RecordedPrometheus,
    binaries_available,
    recording_end,
    run_prometheus,
    standard_recording,
)


@pytest.fixture(scope="package")
def recorded_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordedPrometheus]:
    if not binaries_available():
        pytest.skip("prometheus/promtool not installed (run scripts/system-deps.sh as root)")
    end = recording_end()
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    with run_prometheus(workdir, standard_recording(end), end) as server:
        yield server
