"""A real Prometheus fed with recorded series: OpenMetrics text, backfilled with promtool, then served.

Scenarios share one server and are told apart by a ``scenario`` label, which the measurements select with
their ``label_filter`` (the same mechanism production uses for ``job``/``env``).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fundmodel.observability.metrics import DEFAULT_VALIDATED_ENDPOINTS, VALIDATION_DURATION_BUCKETS
from tests.api.servers import ManagedProcess, free_port, wait_until_ready

READY_TIMEOUT_SECONDS = 30.0
WARN_STEP = timedelta(minutes=15)
CANARY_STEP = timedelta(minutes=5)
WARN_SPAN = timedelta(days=8)
CANARY_SPAN = timedelta(hours=8)
BACKFILL_CHUNK = timedelta(days=30)
SCRAPED_HEAD = timedelta(hours=2)
SCRAPED_TAIL = timedelta(hours=36)
PER_STEP = 100.0  # validations per endpoint per step


def binaries_available() -> bool:
    return shutil.which("prometheus") is not None and shutil.which("promtool") is not None


@dataclass
class Recording:
    """Counter/histogram series as cumulative points, written out as OpenMetrics."""

    counters: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = field(default_factory=dict)
    buckets: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = field(default_factory=dict)

    def add_counter(
        self,
        labels: dict[str, str],
        times: list[datetime],
        per_step: Callable[[int], float],
        scraped: Callable[[datetime], bool] = lambda _t: True,
    ) -> None:
        """A counter growing by ``per_step(i)`` each step; only ``scraped`` times become samples."""
        total, points = 0.0, []
        for index, moment in enumerate(times):
            total += per_step(index)
            if scraped(moment):
                points.append((moment.timestamp(), total))
        self.counters[tuple(sorted(labels.items()))] = points

    def add_histogram(
        self, labels: dict[str, str], times: list[datetime], per_step: float, slow_share: float
    ) -> None:
        """Most observations fall at 50 µs; ``slow_share`` of them at 2 ms (above the 1 ms budget)."""
        for bound in (*VALIDATION_DURATION_BUCKETS, float("inf")):
            share = (1.0 - slow_share) if bound >= 0.00005 else 0.0
            share += slow_share if bound >= 0.002 else 0.0
            le = "+Inf" if bound == float("inf") else repr(bound)
            key = tuple(sorted({**labels, "le": le}.items()))
            self.buckets[key] = [
                (moment.timestamp(), per_step * share * (index + 1)) for index, moment in enumerate(times)
            ]

    def openmetrics(self, start: float = float("-inf"), stop: float = float("inf")) -> str:
        """The samples with ``start <= time < stop`` as one OpenMetrics document."""
        lines = ["# TYPE fundmodel_stage_validations counter"]
        for labels, points in self.counters.items():
            text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.extend(
                f"fundmodel_stage_validations_total{{{text}}} {v} {t:.3f}"
                for t, v in points
                if start <= t < stop
            )
        lines.append("# TYPE fundmodel_stage_validation_duration_seconds histogram")
        for labels, points in self.buckets.items():
            text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.extend(
                f"fundmodel_stage_validation_duration_seconds_bucket{{{text}}} {v} {t:.3f}"
                for t, v in points
                if start <= t < stop
            )
        lines.append("# EOF")
        return "\n".join(lines) + "\n"

    def chunks(self, size: timedelta = BACKFILL_CHUNK) -> Iterator[str]:
        """Aligned time slices: promtool re-reads its input once per 2-hour block, so small files are fast."""
        times = [t for points in (*self.counters.values(), *self.buckets.values()) for t, _ in points]
        width = size.total_seconds()
        first = math.floor(min(times) / width) * width
        while first <= max(times):
            yield self.openmetrics(first, first + width)
            first += width


def grid(end: datetime, span: timedelta, step: timedelta) -> list[datetime]:
    count = int(span / step)
    return [end - step * (count - index) for index in range(count + 1)]


def record_warn(
    rec: Recording, scenario: str, end: datetime, *, ratio: float, spike_hours_ago: float | None
) -> None:
    """A week and a day of warn traffic on every endpoint with a steady would-reject share.

    Samples exist for the first hours of the last 7 days and its last day and a half only (as after a
    long scrape outage): enough for the 7-day ``increase`` and the hourly worst case, and few TSDB
    blocks to backfill.
    """
    times = grid(end, WARN_SPAN, WARN_STEP)

    def scraped(moment: datetime) -> bool:
        week_start = end - timedelta(days=7)
        return week_start < moment <= week_start + SCRAPED_HEAD or moment > end - SCRAPED_TAIL

    spike_steps = set()
    if spike_hours_ago is not None:
        first = len(times) - 1 - int(timedelta(hours=spike_hours_ago) / WARN_STEP)
        spike_steps = set(range(first, first + int(timedelta(hours=1) / WARN_STEP)))
    for endpoint in DEFAULT_VALIDATED_ENDPOINTS:
        base = {"scenario": scenario, "endpoint": endpoint, "mode": "warn", "cohort": "baseline"}
        rec.add_counter({**base, "outcome": "valid"}, times, lambda _i: PER_STEP, scraped)
        rec.add_counter(
            {**base, "outcome": "would_reject"},
            times,
            lambda i: PER_STEP * (0.05 if i in spike_steps else ratio),
            scraped,
        )


def record_canary(
    rec: Recording,
    scenario: str,
    end: datetime,
    *,
    canary_ratio: float,
    baseline_ratio: float,
    slow_share: float,
    canary_per_step: float = PER_STEP,
    baseline_per_step: float = PER_STEP,
) -> None:
    """Eight hours of enforce with a canary split, plus the validator's duration histogram.

    ``*_per_step`` valid validations per 5-minute step in each cohort (``PER_STEP``: 3,600 in 3 hours).
    """
    times = grid(end, CANARY_SPAN, CANARY_STEP)
    endpoint = DEFAULT_VALIDATED_ENDPOINTS[0]
    canary = {"scenario": scenario, "endpoint": endpoint, "mode": "enforce", "cohort": "canary"}
    baseline = {"scenario": scenario, "endpoint": endpoint, "mode": "warn", "cohort": "baseline"}
    rec.add_counter({**canary, "outcome": "valid"}, times, lambda _i: canary_per_step)
    rec.add_counter({**canary, "outcome": "rejected"}, times, lambda _i: canary_per_step * canary_ratio)
    rec.add_counter({**baseline, "outcome": "valid"}, times, lambda _i: baseline_per_step)
    rec.add_counter(
        {**baseline, "outcome": "would_reject"}, times, lambda _i: baseline_per_step * baseline_ratio
    )
    rec.add_histogram(
        {"scenario": scenario, "endpoint": endpoint, "mode": "enforce"}, times, 2 * PER_STEP, slow_share
    )


@dataclass
class RecordedPrometheus:
    url: str
    end: datetime
    process: ManagedProcess


def backfill(recording: Recording, workdir: Path) -> Path:
    """``promtool tsdb create-blocks-from openmetrics`` into a fresh storage directory."""
    data = workdir / "data"
    data.mkdir()
    for number, text in enumerate(recording.chunks()):
        source = workdir / f"series-{number:03d}.om.txt"
        source.write_text(text, encoding="utf-8")
        result = subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(data)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"promtool backfill failed: {result.stderr[-2000:]}")
    return data


@contextlib.contextmanager
def run_prometheus(workdir: Path, recording: Recording, end: datetime) -> Iterator[RecordedPrometheus]:
    data = backfill(recording, workdir)
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\n", encoding="utf-8")
    port = free_port()
    process = ManagedProcess(
        "prometheus",
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=60d",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        workdir / "prometheus.log",
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, f"{url}/-/ready", timeout=READY_TIMEOUT_SECONDS)
        yield RecordedPrometheus(url, end, process)
    finally:
        process.stop()


def recording_end() -> datetime:
    """Just before now, on a whole minute: recent enough for the head block, old enough to be complete."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=1)


def record_aliases(rec: Recording, scenario: str, end: datetime, *, alias_per_step: float) -> None:
    """Eight hours of enforce 100 % traffic, ``alias_per_step`` of it deprecated aliases per 5 minutes."""
    times = grid(end, CANARY_SPAN, CANARY_STEP)
    labels = {"scenario": scenario, "endpoint": DEFAULT_VALIDATED_ENDPOINTS[0], "mode": "enforce"}
    labels["cohort"] = "canary"
    rec.add_counter({**labels, "outcome": "valid"}, times, lambda _i: PER_STEP)
    rec.add_counter({**labels, "outcome": "normalized_alias"}, times, lambda _i: alias_per_step)


def standard_recording(end: datetime) -> Recording:
    rec = Recording()
    record_aliases(rec, "sunset_clean", end, alias_per_step=0.0)
    record_aliases(rec, "sunset_aliases", end, alias_per_step=1.0)
    record_warn(rec, "warn_healthy", end, ratio=0.002, spike_hours_ago=None)
    record_warn(rec, "warn_spiky", end, ratio=0.002, spike_hours_ago=30)
    record_warn(rec, "warn_noisy", end, ratio=0.008, spike_hours_ago=None)
    record_canary(rec, "canary_healthy", end, canary_ratio=0.002, baseline_ratio=0.002, slow_share=0.0)
    record_canary(rec, "canary_worse", end, canary_ratio=0.004, baseline_ratio=0.002, slow_share=0.02)
    # A trickle of canary traffic (one validation per 5 min, 36 in 3 h) and no rejection anywhere.
    record_canary(
        rec, "canary_sparse", end, canary_ratio=0.0, baseline_ratio=0.0, slow_share=0.0, canary_per_step=1.0
    )
    # Plenty of canary traffic with a stray rejection now and then (0.05 %), a spotless baseline.
    record_canary(rec, "canary_clean_baseline", end, canary_ratio=0.0005, baseline_ratio=0.0, slow_share=0.0)
    # Plenty of canary traffic, but a baseline cohort too thin to compare with (36 in 3 h).
    record_canary(
        rec, "canary_thin_baseline", end, canary_ratio=0.002, baseline_ratio=0.0, slow_share=0.0,
        baseline_per_step=1.0,
    )  # fmt: skip
    return rec
