"""The catalogue of active deprecations (linked from the Deprecation/Link headers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from fundmodel.api.dependencies import AppStateDep, SettingsDep
from fundmodel.apimodel import ApiModel
from fundmodel.validation import deprecations_catalogue

router = APIRouter(prefix="/api", tags=["deprecations"])

AFFECTED_ENDPOINTS: tuple[str, ...] = (
    "POST /api/monte-carlo/simulate",
    "POST /api/monte-carlo/compare",
    "POST /api/portfolio/strategies",
    "PUT /api/portfolio/strategies/{id}",
    "GET /api/funds/{fundId}/companies",
    "POST /api/funds/{fundId}/companies",
)


class DeprecationCatalogue(ApiModel):
    deprecations: list[dict[str, Any]] = Field(
        description=(
            "Active deprecations: id, title, docs, deprecatedAt, sunsetAt, currentMode, "
            "canaryPercent, affectedEndpoints."
        )
    )


@router.get("/deprecations", response_model=DeprecationCatalogue)
def list_deprecations(state: AppStateDep, settings: SettingsDep) -> DeprecationCatalogue:
    # STAGE_DOCS_URL as configured, a relative reference included: a link built from the request's
    # Host header would let any client put its own host into the body (and into caches in front of it).
    return DeprecationCatalogue(
        deprecations=deprecations_catalogue(
            state.validator.policy,
            state.mode_store.current(),
            docs_url=settings.stage_docs_url,
            affected_endpoints=AFFECTED_ENDPOINTS,
        )
    )
