"""The stage-validation rollout: the phase ladder, its gates, their measurements and the controller.

``off -> warn -> enforce 10 % -> enforce 50 % -> enforce 100 %``: each step is allowed only when every
gate of the next step passes; "no data" always blocks. See docs/runbooks/stage-validation-rollout.md.
"""

from fundmodel.rollout.config import GateConfig, load_gate_config
from fundmodel.rollout.controller import RolloutController
from fundmodel.rollout.gates import GateResult, GateStatus, Measurement
from fundmodel.rollout.phases import LADDER, Phase, next_phase, parse_phase, phase_of
from fundmodel.rollout.status import RolloutStatus, StepResult, Verdict

__all__ = [
    "LADDER",
    "GateConfig",
    "GateResult",
    "GateStatus",
    "Measurement",
    "Phase",
    "RolloutController",
    "RolloutStatus",
    "StepResult",
    "Verdict",
    "load_gate_config",
    "next_phase",
    "parse_phase",
    "phase_of",
]
