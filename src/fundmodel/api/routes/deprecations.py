"""The catalogue of active deprecations (linked from the Deprecation/Link headers) and each client's own
usage of them (self-service: what it still sends, and what to send instead)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from fundmodel.api.brownouts import BrownoutNotice, brownout_notices
from fundmodel.api.dependencies import AppStateDep, EngineDep, PrincipalDep, SettingsDep
from fundmodel.api.openapi_docs import plain_responses
from fundmodel.apimodel import ApiModel
from fundmodel.usage import service as usage_service
from fundmodel.usage.models import OwnUsage
from fundmodel.validation import deprecations_catalogue
from fundmodel.validation.brownout import effective_state

router = APIRouter(prefix="/api", tags=["deprecations"])

AFFECTED_ENDPOINTS: tuple[str, ...] = (
    "POST /api/monte-carlo/simulate",
    "POST /api/monte-carlo/compare",
    "POST /api/portfolio/strategies",
    "PUT /api/portfolio/strategies/{id}",
    "GET /api/funds/{fundId}/companies",
    "POST /api/funds/{fundId}/companies",
)


OWN_USAGE_PATH = "/api/deprecations/usage"


class DeprecationCatalogue(ApiModel):
    deprecations: list[dict[str, Any]] = Field(
        description=(
            "Active deprecations: id, title, docs, deprecatedAt, sunsetAt, currentMode, "
            "canaryPercent, affectedEndpoints."
        )
    )
    own_usage: str = Field(
        description="Where the calling client reads its own use of these deprecations (same API key)."
    )
    brownouts: list[BrownoutNotice] = Field(
        description=(
            "Brownout windows in force or to come, earliest first: during each, enforce applies "
            "(currentMode says so while one is in force), as it will after the Sunset."
        )
    )


@router.get("/deprecations", response_model=DeprecationCatalogue)
def list_deprecations(state: AppStateDep, settings: SettingsDep) -> DeprecationCatalogue:
    # STAGE_DOCS_URL as configured, a relative reference included: a link built from the request's
    # Host header would let any client put its own host into the body (and into caches in front of it).
    now = datetime.now(UTC)
    return DeprecationCatalogue(
        deprecations=deprecations_catalogue(
            state.validator.policy,
            effective_state(state.mode_store.current(), state.brownouts.windows(), now),
            docs_url=settings.stage_docs_url,
            affected_endpoints=AFFECTED_ENDPOINTS,
        ),
        own_usage=OWN_USAGE_PATH,
        brownouts=brownout_notices(state.brownouts, now),
    )


@router.get(
    "/deprecations/usage",
    response_model=OwnUsage,
    summary="The calling client's own use of deprecated stage handling",
    description=(
        "What the calling API key still sends that relies on deprecated stage handling (aliases, unknown "
        "names, sums renormalized, input rejected under enforce): per endpoint, field, kind and spelling, "
        "how often, first and last seen, and the canonical name to send instead. Only the caller's own "
        "usage: no parameter selects another client. Counted exactly per UTC day; a worker stopped "
        "abruptly loses at most one flush interval of counts."
    ),
    responses=plain_responses(),
)
def own_usage(
    engine: EngineDep,
    principal: PrincipalDep,
    state: AppStateDep,
    since: Annotated[
        str | None,
        Query(
            description="How many days back, e.g. `7d` (default 30d, at most STAGE_USAGE_RETENTION_DAYS).",
            json_schema_extra=usage_service.WINDOW_SCHEMA,
        ),
    ] = None,
) -> OwnUsage:
    settings = state.settings
    return usage_service.own_usage(
        engine,
        principal,
        usage_service.window_start(
            since, retention_days=settings.stage_usage_retention_days, today=usage_service.utc_today()
        ),
        retention_days=settings.stage_usage_retention_days,
        sunset_at=state.validator.policy.sunset_at,
    )
