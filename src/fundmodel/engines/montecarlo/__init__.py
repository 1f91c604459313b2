"""Company-level Monte Carlo simulation of venture funds (pure NumPy + Numba, no I/O).

Public interface: :class:`SimulationConfig` (the camelCase request body), :func:`simulate`,
:func:`compare` (common random numbers), :func:`warm_up` (compile the kernels at start-up),
:func:`simulate_block` / :func:`assemble` (a run split into blocks of funds computed anywhere, then
assembled: bit-identical to :func:`simulate`) and :class:`SimulationResult` (``to_json()``). The model
is documented in docs/model.md.
"""

from fundmodel.engines.montecarlo.config import SimulationConfig, load_config, validation_problems
from fundmodel.engines.montecarlo.irr import MAX_IRR, MIN_IRR, periodic_irr, xirr
from fundmodel.engines.montecarlo.profiles import (
    StageProfile,
    StageProfileOverride,
    default_stage_profiles,
)
from fundmodel.engines.montecarlo.result import SimulationResult
from fundmodel.engines.montecarlo.runner import (
    ENGINE_VERSION,
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    FundArrays,
    ProgressCallback,
    assemble,
    compare,
    simulate,
    simulate_block,
    warm_up,
)

__all__ = [
    "ENGINE_VERSION",
    "MAX_IRR",
    "MAX_ITERATIONS",
    "MIN_IRR",
    "MIN_ITERATIONS",
    "FundArrays",
    "ProgressCallback",
    "SimulationConfig",
    "SimulationResult",
    "StageProfile",
    "StageProfileOverride",
    "assemble",
    "compare",
    "default_stage_profiles",
    "load_config",
    "periodic_irr",
    "simulate",
    "simulate_block",
    "validation_problems",
    "warm_up",
    "xirr",
]
