"""Running the pure engines on an existing distributed engine (Dask); the core knows nothing of it.

:func:`point_runner` is what the sweep jobs and the CLI use: the Dask cluster at an address, or the core's
local threads when there is none. ``distributed`` is imported only when an address is given, so the
embedded default (``make run``) never pays for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fundmodel.engines.sweep import PointRunner


@contextmanager
def point_runner(dask_scheduler_address: str | None) -> Iterator[PointRunner | None]:
    """The runner of one run's points: the Dask cluster at the address (connected for the run, closed
    after it), or ``None`` (the core's local threads) when no address is configured."""
    if dask_scheduler_address is None:
        yield None
        return
    from fundmodel.scaleout.dask_runner import dask_point_runner

    with dask_point_runner(dask_scheduler_address) as runner:
        yield runner


__all__ = ["point_runner"]
