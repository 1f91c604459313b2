"""How the engine's kernels are compiled: Numba ``njit`` with an on-disk cache when one is writable.

Compilation is lazy (on first call, or explicitly through :func:`fundmodel.engines.montecarlo.warm_up`);
decorating a function only records it. Numba refuses ``cache=True`` at decoration time when it finds no
writable cache location (read-only install, no home directory): the engine then compiles in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def jit(func: F) -> F:
    """Compile ``func`` in nopython mode, caching the machine code on disk when possible."""
    try:
        compiled = numba.njit(cache=True, nogil=True, error_model="numpy")(func)
    except RuntimeError:
        # Numba raises RuntimeError("cannot cache function ...: no locator available") here.
        compiled = numba.njit(cache=False, nogil=True, error_model="numpy")(func)
    return cast(F, compiled)
