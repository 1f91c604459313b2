"""The per-request stage-validation plumbing, in one place for every endpoint that takes a stage.

client -> effective mode (canary cohort) -> decision (pure policy core) -> metrics, offender log,
warnings and response headers. The route only says which field holds the stage input; the decision's
error (if any) is raised here, and :class:`~fundmodel.api.middleware.RequestMiddleware` puts the headers on
whatever response leaves, success or problem document.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from fundmodel.auth.models import Principal
from fundmodel.db.brownout_store import BrownoutSchedule
from fundmodel.db.mode_store import ModeStore
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.observability.offenders import OffenderLogSampler
from fundmodel.stages import Stage
from fundmodel.usage.ledger import UsageLedger
from fundmodel.validation import (
    ClientMode,
    Decision,
    DeprecationPolicy,
    Outcome,
    StageDecision,
    ValidationMode,
    validate_stage,
    validate_stage_distribution,
    validate_stage_keys,
    validation_headers,
)
from fundmodel.validation.brownout import effective_state

_Value = TypeVar("_Value")

STATE_KEY = "stage_validation"
"""Where the request's :class:`RequestStageValidation` lives in ``request.state``."""
DEPRECATIONS_PATH = "/api/deprecations"
"""Linked from the Link header; relative (RFC 8288), so no Host header ever reaches a header value."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the offender log needs to know about the caller (never used as a metric label)."""

    endpoint: str
    user_agent: str | None
    request_id: str | None


class StageValidator:
    """One per app: resolves each client's effective mode and builds its request-scoped validation."""

    def __init__(
        self,
        *,
        mode_store: ModeStore,
        brownouts: BrownoutSchedule,
        metrics: ServiceMetrics,
        offenders: OffenderLogSampler,
        policy: DeprecationPolicy,
        canary_salt: str,
        deprecations_url: str = DEPRECATIONS_PATH,
        usage: UsageLedger | None = None,
    ) -> None:
        self._mode_store = mode_store
        self._brownouts = brownouts
        self._metrics = metrics
        self._offenders = offenders
        # The per-client usage ledger (None: not counted, e.g. the benchmark's "before" run).
        self._usage = usage
        self.policy = policy
        self._salt = canary_salt
        self._deprecations_url = deprecations_url
        # Headers depend only on (mode, deprecated input): computed once each, not per request.
        self._headers: dict[tuple[ValidationMode, bool], dict[str, str]] = {}

    def for_request(self, principal: Principal, context: RequestContext) -> RequestStageValidation:
        now = datetime.now(UTC)
        # A brownout window in force raises the stored state; its edges are exact on every worker because
        # they are compared with this request's time, not with when the cache was refreshed.
        state = effective_state(self._mode_store.current(), self._brownouts.windows(), now)
        client_mode = state.mode_for_client(principal.client_id, salt=self._salt, client_name=principal.name)
        # After the Sunset date, enforce rejects deprecated aliases too.
        # The rollout's Sunset step (``client_mode.aliases_rejected``) does the same before the date.
        aliases_accepted = not (client_mode.aliases_rejected or self.policy.sunset_passed(now))
        return RequestStageValidation(self, principal, context, client_mode, aliases_accepted)

    def headers(self, mode: ValidationMode, deprecated_input: bool) -> dict[str, str]:
        """The validation headers for a response (shared dict: do not modify)."""
        key = (mode, deprecated_input)
        headers = self._headers.get(key)
        if headers is None:
            headers = validation_headers(
                mode, deprecated_input, self.policy, deprecations_url=self._deprecations_url
            )
            self._headers[key] = headers
        return headers

    def record(
        self,
        validation: RequestStageValidation,
        decision: Decision[object],
        seconds: float,
        field: str,
    ) -> None:
        mode = validation.client_mode.mode.value
        endpoint = validation.context.endpoint
        self._metrics.observe_validation(
            endpoint, mode, decision.outcome.value, validation.client_mode.cohort.value, seconds
        )
        if self._usage is not None and decision.outcome is not Outcome.MALFORMED:
            principal = validation.principal
            endpoint_label = self._metrics.endpoint_label(endpoint)
            if decision.uses:
                self._usage.record(principal.client_id, principal.name, endpoint_label, field, decision.uses)
            else:
                self._usage.record_valid(principal.client_id, principal.name, endpoint_label, field)
        if decision.offending_names:
            self._offenders.log_offender(
                endpoint=endpoint,
                mode=mode,
                outcome=decision.outcome.value,
                offending_names=decision.offending_names,
                user_agent=validation.context.user_agent,
                client_id=validation.principal.client_id,
                request_id=validation.context.request_id,
            )


@dataclass(slots=True)
class RequestStageValidation:
    """The validation state of one request: its mode, warnings so far and whether input was deprecated."""

    validator: StageValidator
    principal: Principal
    context: RequestContext
    client_mode: ClientMode
    aliases_accepted: bool
    warnings: list[dict[str, Any]] = field(default_factory=list)
    deprecated_input: bool = False

    def distribution(self, raw: object, *, field: str = "stageDistribution") -> dict[Stage, float]:
        """Canonical weights of a stage distribution, or raise the decision's error."""
        started = time.perf_counter()
        decision = validate_stage_distribution(
            raw, self.client_mode.mode, field=field, aliases_accepted=self.aliases_accepted
        )
        self._absorb(decision, time.perf_counter() - started, field)
        return dict(decision.weights)

    def stage(self, raw: object, *, field: str = "stage") -> StageDecision:
        """The decision on one stage name (canonical stage and value to store), or raise its error."""
        started = time.perf_counter()
        decision = validate_stage(
            raw, self.client_mode.mode, field=field, aliases_accepted=self.aliases_accepted
        )
        self._absorb(decision, time.perf_counter() - started, field)
        return decision

    def stage_keyed(self, raw: Mapping[str, _Value], *, field: str) -> dict[Stage, _Value]:
        """A mapping keyed by stage names (per-stage overrides) re-keyed by canonical stage, or raise.

        Unknown keys are dropped in off/warn (their values are never used); an empty mapping is not a
        validation (nothing was sent), so it is neither counted nor logged.
        """
        if not raw:
            return {}
        started = time.perf_counter()
        decision = validate_stage_keys(
            raw.keys(), self.client_mode.mode, field=field, aliases_accepted=self.aliases_accepted
        )
        self._absorb(decision, time.perf_counter() - started, field)
        return {stage: raw[key] for key, stage in decision.stages.items()}

    def response_headers(self) -> dict[str, str]:
        """Deprecation / Sunset / Link / X-Stage-Validation-Mode for this request (none in off)."""
        return self.validator.headers(self.client_mode.mode, self.deprecated_input)

    def _absorb(self, decision: Decision[object], seconds: float, field: str) -> None:
        self.validator.record(self, decision, seconds, field)
        self.deprecated_input = self.deprecated_input or decision.deprecated_input
        self.warnings.extend(warning.to_json() for warning in decision.warnings)
        if decision.error is not None:
            raise decision.error
