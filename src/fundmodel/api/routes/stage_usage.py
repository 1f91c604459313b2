"""Operators' view of the stage-usage ledger: which clients still rely on deprecated stage handling.

Admin token, like every ``/_ops`` endpoint; the queries and the key lookup live in
:mod:`fundmodel.usage.service`. The same report is ``fundmodel rollout offenders``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fundmodel.api.dependencies import AppStateDep, EngineDep
from fundmodel.api.problems import problem_responses
from fundmodel.api.routes.ops import AdminDep
from fundmodel.usage import service as usage_service
from fundmodel.usage.models import OffenderReport

router = APIRouter(prefix="/_ops/stage-validation", tags=["operations"])


@router.get(
    "/usage",
    response_model=OffenderReport,
    summary="Every client still relying on deprecated stage handling, ranked by volume",
    description=(
        "From the stage-usage ledger (exact counts per client and UTC day): clients whose input was an "
        "alias, an unknown name, a sum renormalized, or rejected under enforce, largest count first, "
        "with the API key's name and display prefix (never the key or its hash), endpoints, spellings "
        "and when last seen."
    ),
    dependencies=[AdminDep],
    responses=problem_responses(
        401,
        422,
        503,
        descriptions={
            401: "Missing or wrong admin token.",
            422: "`since` is not a number of days within the retention, or `endpoint` is not one the "
            "ledger records (`field` names which).",
            503: "The admin token is not configured, or the database is unavailable.",
        },
    ),
)
def usage_offenders(
    engine: EngineDep,
    state: AppStateDep,
    since: Annotated[
        str | None,
        Query(
            description="How many days back, e.g. `7d` (default 30d, at most STAGE_USAGE_RETENTION_DAYS).",
            json_schema_extra=usage_service.WINDOW_SCHEMA,
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        Query(
            description="Count only this endpoint (the route template, as the metrics label it).",
            json_schema_extra={"enum": list(usage_service.REPORTED_ENDPOINTS)},
        ),
    ] = None,
) -> OffenderReport:
    first_day = usage_service.window_start(
        since, retention_days=state.settings.stage_usage_retention_days, today=usage_service.utc_today()
    )
    return usage_service.offender_report(engine, first_day, endpoint=usage_service.checked_endpoint(endpoint))
