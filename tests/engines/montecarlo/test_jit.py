from typing import Any

import numba
import pytest

from fundmodel.engines.montecarlo import jit as jit_module


def test_falls_back_to_in_memory_compilation_without_a_cache_location(
    monkeypatch: pytest.MonkeyPatch,
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

    compiled = jit_module.jit(double)
    assert seen == [True, False]
    assert compiled(21.0) == 42.0
