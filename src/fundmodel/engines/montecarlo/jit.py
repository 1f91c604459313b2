"""How the engine's kernels are compiled: Numba ``njit`` with an on-disk cache when one is writable.

Compilation is lazy (on first call, or explicitly through :func:`fundmodel.engines.montecarlo.warm_up`);
decorating a function only records it. Numba refuses ``cache=True`` at decoration time when it finds no
writable cache location (read-only install, no home directory): the engine then compiles in memory.

The Monte Carlo kernel's phases use two variants. Numba reference-counts every array a compiled function
receives, with an atomic increment and decrement per array per call, and its pruning pass does not
remove them across a function with loops; for the kernel's phases, called once per fund with a dozen
arrays each, that cost 40-50 % of the kernel's run time (measured on the 2026-12-03 split, see
docs/performance.md). :func:`jit_phase` compiles a function without the reference counting
(Numba's ``_nrt=False``): it may only read and write the arrays it is given, never allocate or return one
(Numba refuses to compile that), and its caller owns the arrays for the duration of the call.
:func:`jit_step` does the same and has Numba inline the function into its caller, for small steps run
per company or per event inside a phase (passing a named tuple of arrays per call is not free either).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def jit(func: F) -> F:
    """Compile ``func`` in nopython mode, caching the machine code on disk when possible."""
    return _compile(func, {})


def jit_phase(func: F) -> F:
    """Like :func:`jit`, without reference counting: for functions that only use arrays they are given."""
    return _compile(func, {"_nrt": False})


def jit_step(func: F) -> F:
    """Like :func:`jit_phase`, and inlined by Numba into the compiled functions that call it."""
    return _compile(func, {"_nrt": False, "inline": "always"})


def _compile(func: F, options: dict[str, Any]) -> F:
    try:
        compiled = numba.njit(cache=True, nogil=True, error_model="numpy", **options)(func)
    except RuntimeError:
        # Numba raises RuntimeError("cannot cache function ...: no locator available") here.
        compiled = numba.njit(cache=False, nogil=True, error_model="numpy", **options)(func)
    return cast(F, compiled)
