"""Gunicorn server hooks that keep multi-process metrics correct across worker restarts.

Use from a gunicorn config module (``fundmodel serve`` writes or imports one)::

    from fundmodel.observability.worker_hooks import child_exit, on_starting

``on_starting`` runs once in the master before any worker forks: it creates the
``PROMETHEUS_MULTIPROC_DIR`` directory if needed and clears the previous run's value files (stale
files would make counters continue from old values and keep dead pids' gauges alive).
``child_exit`` runs in the master whenever a worker exits: the worker's live gauges (mode, canary
percent, cache age) stop counting, its counters stay so totals never go backwards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fundmodel.observability.metrics import MULTIPROC_ENV, mark_worker_dead, reset_multiprocess_dir

__all__ = ["child_exit", "on_starting", "prepare_multiprocess_dir"]


def prepare_multiprocess_dir() -> Path | None:
    """Create and clear ``PROMETHEUS_MULTIPROC_DIR`` (master only); None when it is not set."""
    configured = os.environ.get(MULTIPROC_ENV)
    if not configured:
        return None
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    reset_multiprocess_dir(path)
    return path


def on_starting(server: Any) -> None:
    """Gunicorn ``on_starting`` hook."""
    prepare_multiprocess_dir()


def child_exit(server: Any, worker: Any) -> None:
    """Gunicorn ``child_exit`` hook."""
    mark_worker_dead(int(worker.pid))
