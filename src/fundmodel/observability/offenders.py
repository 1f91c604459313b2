"""The ``stage_validation_offender`` log event and the sampler that keeps floods off the disk.

Unknown or deprecated stage names are high-cardinality client input: they go to this log event,
never to metric labels. Per endpoint, every event is logged while fewer than ``per_minute`` were
logged in the current minute; beyond that each event is logged with probability ``fraction`` and
every dropped one is counted in ``fundmodel_stage_validation_offender_logs_dropped_total``.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from fundmodel.errors import ConfigurationError
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.observability.sanitize import escape_log_text

__all__ = [
    "MAX_NAME_CHARS",
    "MAX_OFFENDING_NAMES",
    "OFFENDER_EVENT",
    "OffenderLogSampler",
    "user_agent_hash",
]

OFFENDER_EVENT = "stage_validation_offender"
MAX_OFFENDING_NAMES = 5
MAX_NAME_CHARS = 64
MAX_ID_CHARS = 128
WINDOW_SECONDS = 60.0
UA_HASH_HEX_CHARS = 12


def user_agent_hash(user_agent: str | None) -> str | None:
    """First 12 hex digits of the SHA-256 of the User-Agent (None when the header is absent)."""
    if user_agent is None:
        return None
    digest = hashlib.sha256(user_agent.encode("utf-8", errors="surrogatepass")).hexdigest()
    return digest[:UA_HASH_HEX_CHARS]


@dataclass
class _Window:
    started_at: float
    logged: int


class OffenderLogSampler:
    """Rate-limits offender events per endpoint; the app owns one instance per process.

    ``clock`` (monotonic seconds) and ``random_source`` (uniform in [0, 1)) are injectable so the
    sampling decisions are deterministic under test.
    """

    def __init__(
        self,
        metrics: ServiceMetrics,
        *,
        per_minute: int = 60,
        fraction: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        random_source: Callable[[], float] | None = None,
        logger: Any = None,
    ) -> None:
        if per_minute < 0:
            raise ConfigurationError(f"offender log limit must be >= 0 per minute, got {per_minute}")
        if not 0.0 <= fraction <= 1.0:
            raise ConfigurationError(f"offender log sample fraction must be in [0, 1], got {fraction}")
        self._metrics = metrics
        self._per_minute = per_minute
        self._fraction = fraction
        self._clock = clock
        # Not security-relevant: only decides which surplus log lines to keep.
        self._random = random_source or random.Random().random  # noqa: S311
        self._logger = logger if logger is not None else structlog.get_logger("fundmodel.stages")
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def admit(self, endpoint: str) -> float | None:
        """Whether to log an event for ``endpoint`` now: its sample rate, or None when dropped."""
        key = self._metrics.endpoint_label(endpoint)  # bounded key set, whatever the caller passes
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.started_at >= WINDOW_SECONDS:
                window = _Window(started_at=now, logged=0)
                self._windows[key] = window
            if window.logged < self._per_minute:
                window.logged += 1
                return 1.0
        if self._fraction > 0.0 and self._random() < self._fraction:
            return self._fraction
        self._metrics.count_offender_logs_dropped(key)
        return None

    def log_offender(
        self,
        *,
        endpoint: str,
        mode: str,
        outcome: str,
        offending_names: Sequence[str],
        user_agent: str | None,
        client_id: str | None,
        request_id: str | None,
    ) -> bool:
        """Emit one ``stage_validation_offender`` event unless sampled out; True when logged."""
        sample_rate = self.admit(endpoint)
        if sample_rate is None:
            return False
        self._logger.info(
            OFFENDER_EVENT,
            endpoint=escape_log_text(endpoint, MAX_ID_CHARS),
            mode=escape_log_text(mode, MAX_NAME_CHARS),
            outcome=escape_log_text(outcome, MAX_NAME_CHARS),
            offending=[
                escape_log_text(name, MAX_NAME_CHARS) for name in offending_names[:MAX_OFFENDING_NAMES]
            ],
            offending_count=len(offending_names),
            ua_hash=user_agent_hash(user_agent),
            client_id=None if client_id is None else escape_log_text(client_id, MAX_ID_CHARS),
            request_id=None if request_id is None else escape_log_text(request_id, MAX_ID_CHARS),
            sample_rate=sample_rate,
        )
        return True
