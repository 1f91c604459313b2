"""The stage-validation policy core: modes, canary cohorts, per-mode decisions and deprecation headers.

Pure (no I/O, no clock, no globals) and never raising on client input: the API's per-request plumbing turns
a decision into metrics, logs, headers and, when ``decision.error`` is set, an RFC 9457 problem.
"""

from fundmodel.validation.cohort import cohort_bucket, in_canary_cohort
from fundmodel.validation.decisions import (
    Decision,
    DistributionDecision,
    StageDecision,
    StageKeysDecision,
    ValidationWarning,
    validate_stage,
    validate_stage_distribution,
)
from fundmodel.validation.headers import (
    DeprecationPolicy,
    deprecations_catalogue,
    safe_header_value,
    validation_headers,
)
from fundmodel.validation.mode import ClientMode, Cohort, ModeState, ValidationMode
from fundmodel.validation.outcome import Outcome
from fundmodel.validation.stage_keys import validate_stage_keys

__all__ = [
    "ClientMode",
    "Cohort",
    "Decision",
    "DeprecationPolicy",
    "DistributionDecision",
    "ModeState",
    "Outcome",
    "StageDecision",
    "StageKeysDecision",
    "ValidationMode",
    "ValidationWarning",
    "cohort_bucket",
    "deprecations_catalogue",
    "in_canary_cohort",
    "safe_header_value",
    "validate_stage",
    "validate_stage_distribution",
    "validate_stage_keys",
    "validation_headers",
]
