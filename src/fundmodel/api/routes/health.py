"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response

from fundmodel.api.dependencies import AppStateDep
from fundmodel.api.problems import problem_responses
from fundmodel.apimodel import ApiModel
from fundmodel.db.migrate import current_revisions
from fundmodel.errors import StoreUnavailableError
from fundmodel.observability.metrics import render_metrics

router = APIRouter(tags=["operations"])


class Health(ApiModel):
    status: str


class Readiness(ApiModel):
    status: str
    database: str
    revision: list[str]


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The database is reachable and migrated",
    responses=problem_responses(503),
)
def readyz(state: AppStateDep) -> Readiness:
    try:
        revisions = current_revisions(state.engine)
    except Exception as exc:  # any driver error means "not ready", never a 500
        raise StoreUnavailableError(f"database unreachable: {type(exc).__name__}") from exc
    if not state.expected_revisions <= revisions:
        raise StoreUnavailableError(
            "database schema is not migrated to this release; run `fundmodel db migrate`"
        )
    return Readiness(status="ready", database=state.engine.dialect.name, revision=sorted(revisions))


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(state: AppStateDep) -> Response:
    # Fresh at scrape time, not as of the last background refresh (infinite before the first read).
    state.metrics.set_mode_cache_age(min(state.mode_store.cache_age(), 1e9))
    body, content_type = render_metrics(state.registry, scrape_time=state.metrics.scrape_time_collectors)
    return Response(content=body, media_type=content_type)
