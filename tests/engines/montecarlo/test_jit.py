from collections.abc import Callable
from typing import Any, NamedTuple

import numba
import numpy as np
import numpy.typing as npt
import pytest
from numba.core.dispatcher import Dispatcher
from numba.core.errors import TypingError

from fundmodel.engines.montecarlo import cashflows, events, paths
from fundmodel.engines.montecarlo import jit as jit_module

DECORATORS = {"jit": jit_module.jit, "jit_phase": jit_module.jit_phase, "jit_step": jit_module.jit_step}
ALLOCATING = {"simulate_funds", "new_event_log", "new_company_book", "new_quarterly_flows"}
"""The kernel functions that allocate arrays, hence keep Numba's reference counting."""


@pytest.mark.parametrize("decorator", list(DECORATORS.values()), ids=list(DECORATORS))
def test_falls_back_to_in_memory_compilation_without_a_cache_location(
    monkeypatch: pytest.MonkeyPatch, decorator: Callable[[Any], Any]
) -> None:
    real_njit = numba.njit
    seen: list[bool] = []

    def njit(*args: Any, **options: Any) -> Any:
        if args:  # Numba's own internal uses
            return real_njit(*args, **options)
        seen.append(options["cache"])
        if options["cache"]:
            raise RuntimeError("cannot cache function 'double': no locator available")
        return real_njit(**options)

    monkeypatch.setattr(jit_module.numba, "njit", njit)

    def double(value: float) -> float:
        return 2.0 * value

    compiled = decorator(double)
    assert seen == [True, False]
    assert compiled(21.0) == 42.0


class Pair(NamedTuple):
    left: npt.NDArray[np.float64]
    right: npt.NDArray[np.float64]


@jit_module.jit_step
def _add_at(pair: Pair, index: int, scale: float) -> None:
    pair.left[index] += scale * pair.right[index]


@jit_module.jit_phase
def _add_all(pair: Pair, scale: float) -> float:
    for index in range(pair.left.shape[0]):
        _add_at(pair, index, scale)
    return float(pair.left.sum())


def test_a_phase_works_on_the_arrays_it_is_given_and_calls_its_steps() -> None:
    compiled = Pair(np.arange(4.0), np.ones(4))
    interpreted = Pair(np.arange(4.0), np.ones(4))
    assert _add_all(compiled, 0.5) == _add_all.py_func(interpreted, 0.5) == 8.0
    np.testing.assert_array_equal(compiled.left, [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(compiled.left, interpreted.left)


def test_a_phase_cannot_allocate_an_array() -> None:
    # Without reference counting nobody would free it: Numba refuses to compile the allocation.
    def fresh_zeros(count: int) -> npt.NDArray[np.float64]:
        return np.zeros(count)

    with pytest.raises(TypingError):
        jit_module.jit_phase(fresh_zeros)(3)


def test_the_kernel_phases_run_without_reference_counting() -> None:
    # One plain @jit on a phase brings back an atomic increment and decrement per array per call, which
    # cost 40-50 % of the kernel's time when the kernel was split into phases (docs/performance.md).
    compiled = {
        f"{module.__name__}.{name}": value
        for module in (paths, events, cashflows)
        for name, value in vars(module).items()
        if isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__
    }
    assert len(compiled) > 15
    counted = sorted(
        name for name, dispatcher in compiled.items() if dispatcher.targetoptions.get("_nrt", True)
    )
    assert counted == sorted(
        name
        for name in compiled
        if name.rpartition(".")[2] in ALLOCATING | {"follow_on_round"}  # a rule on floats, no arrays
    )
