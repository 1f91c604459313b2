"""Parameter sweeps, one-at-a-time sensitivity (tornado) and backsolve over the Monte Carlo engine (pure).

Public interface: the specs (:class:`SweepSpec`, :class:`SensitivitySpec`, :class:`BacksolveSpec`), checked
when constructed; :func:`run_sweep`, :func:`run_sensitivity`, :func:`run_backsolve`; their results with
``to_json()``; the path helpers (:func:`parse_values`, :func:`parse_parameter`, :func:`resolve_path`) and
:func:`expand_grid` / :class:`PreparedPoint` for a caller that validates each point's stages itself.
Every point runs on common random numbers (the same seed); see docs/model.md, "Sweeps, sensitivity and
backsolve".
"""

from fundmodel.engines.sweep.outputs import metric_choices
from fundmodel.engines.sweep.parameters import (
    INVALID_SWEEP,
    Parameter,
    ResolvedPath,
    parse_parameter,
    parse_values,
    resolve_path,
)
from fundmodel.engines.sweep.results import (
    BacksolveResult,
    PointOutcome,
    SensitivityResult,
    SensitivityRow,
    SweepPointResult,
    SweepResult,
)
from fundmodel.engines.sweep.runs import (
    STAGE_WEIGHTS_RENORMALIZED,
    GridPoint,
    LocalPointRunner,
    PointPreparer,
    PointRunner,
    PreparedPoint,
    expand_grid,
    run_backsolve,
    run_sensitivity,
    run_sweep,
    validate_sweep,
)
from fundmodel.engines.sweep.specs import (
    MAX_GRID_POINTS,
    MAX_PARAMETERS,
    MAX_SWEEP_WORK,
    SWEEP_LIMIT,
    BacksolveSpec,
    SensitivityParameter,
    SensitivitySpec,
    SweepSpec,
)

__all__ = [
    "INVALID_SWEEP",
    "MAX_GRID_POINTS",
    "MAX_PARAMETERS",
    "MAX_SWEEP_WORK",
    "STAGE_WEIGHTS_RENORMALIZED",
    "SWEEP_LIMIT",
    "BacksolveResult",
    "BacksolveSpec",
    "GridPoint",
    "LocalPointRunner",
    "Parameter",
    "PointOutcome",
    "PointPreparer",
    "PointRunner",
    "PreparedPoint",
    "ResolvedPath",
    "SensitivityParameter",
    "SensitivityResult",
    "SensitivityRow",
    "SensitivitySpec",
    "SweepPointResult",
    "SweepResult",
    "SweepSpec",
    "expand_grid",
    "metric_choices",
    "parse_parameter",
    "parse_values",
    "resolve_path",
    "run_backsolve",
    "run_sensitivity",
    "run_sweep",
    "validate_sweep",
]
