"""The FastAPI application factory. Nothing is built at import time; the lifespan builds the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import anyio
import anyio.to_thread
import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from fundmodel import __version__
from fundmodel.api.middleware import RequestMiddleware
from fundmodel.api.mode_refresh import refresh_mode_forever
from fundmodel.api.openapi_docs import STAGE_VALIDATION_DESCRIPTION
from fundmodel.api.problems import install_problem_handlers
from fundmodel.api.routes import companies, deprecations, funds, health, monte_carlo, ops, portfolio
from fundmodel.api.stage_validation import StageValidator
from fundmodel.api.state import AppState
from fundmodel.auth.cache import PrincipalCache
from fundmodel.db.engine import create_db_engine
from fundmodel.db.migrate import head_revisions
from fundmodel.db.mode_store import ModeStore
from fundmodel.engines.montecarlo import warm_up
from fundmodel.observability.logging import configure_logging
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.observability.mode_change_counts import audit_counts_by_source
from fundmodel.observability.offenders import OffenderLogSampler
from fundmodel.settings import Settings, get_settings
from fundmodel.validation import DeprecationPolicy, ModeState

_log = structlog.get_logger("fundmodel.api")


def create_app(
    settings: Settings | None = None,
    *,
    registry: CollectorRegistry | None = None,
    configure_logs: bool = True,
) -> FastAPI:
    """Build the app. ``settings`` defaults to the environment's; ``registry`` to a fresh one."""
    resolved = settings if settings is not None else get_settings()
    if configure_logs:
        configure_logging(resolved.log_level)
    metrics_registry = registry if registry is not None else CollectorRegistry()
    metrics = ServiceMetrics(metrics_registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_db_engine(resolved.database_url)
        store = ModeStore(engine, default=ModeState(resolved.stage_validation_mode))
        await anyio.to_thread.run_sync(store.refresh)
        # Counted from the audit table: changes made by the CLI or the rollout controller count too.
        metrics.mode_changes.attach(
            partial(audit_counts_by_source, engine), ttl_seconds=resolved.stage_mode_cache_ttl_seconds
        )
        app.state.fundmodel = AppState(
            settings=resolved,
            engine=engine,
            mode_store=store,
            registry=metrics_registry,
            metrics=metrics,
            validator=StageValidator(
                mode_store=store,
                metrics=metrics,
                offenders=OffenderLogSampler(
                    metrics,
                    per_minute=resolved.stage_offender_log_per_minute,
                    fraction=resolved.stage_offender_log_sample_fraction,
                ),
                policy=DeprecationPolicy(resolved.stage_deprecation_date, resolved.stage_sunset_date),
                canary_salt=resolved.stage_canary_salt,
            ),
            simulation_slots=anyio.CapacityLimiter(resolved.montecarlo_max_concurrency),
            expected_revisions=head_revisions(),
            principals=PrincipalCache(resolved.stage_mode_cache_ttl_seconds),
        )
        _log_startup(resolved, store)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(refresh_mode_forever, store, metrics, resolved.stage_mode_cache_ttl_seconds)
                tasks.start_soon(_warm_up_engine)
                yield
                tasks.cancel_scope.cancel()
        finally:
            engine.dispose()

    app = FastAPI(
        title="fundmodel",
        version=__version__,
        description=STAGE_VALIDATION_DESCRIPTION,
        lifespan=lifespan,
    )
    # Always answer get_settings with the app's settings (async: no thread-pool hop per request);
    # tests may still replace this override.
    app.dependency_overrides[get_settings] = _settings_provider(resolved)
    install_problem_handlers(app)
    app.add_middleware(RequestMiddleware, metrics=metrics)
    for module in (health, funds, companies, portfolio, monte_carlo, deprecations, ops):
        app.include_router(module.router)
    return app


def _settings_provider(settings: Settings) -> Callable[[], Awaitable[Settings]]:
    async def provide() -> Settings:
        return settings

    return provide


async def _warm_up_engine() -> None:
    seconds = await anyio.to_thread.run_sync(warm_up)
    _log.info("engine_warmed_up", seconds=round(seconds, 3))


def _log_startup(settings: Settings, store: ModeStore) -> None:
    _log.info(
        "service_started",
        app_env=settings.app_env,
        database=settings.database_url.split(":", 1)[0],
        mode=store.current().describe(),
        mode_source="store" if store.current_stored().version else "STAGE_VALIDATION_MODE",
    )
    if settings.anonymous_dev_client_allowed:
        _log.warning(
            "anonymous_dev_client_allowed",
            detail="requests without an API key act as the anonymous development client "
            "(APP_ENV=development on SQLite); production requires a key",
        )
