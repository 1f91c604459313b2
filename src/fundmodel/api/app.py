"""The FastAPI application factory. Nothing is built at import time; the lifespan builds the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import anyio
import anyio.to_thread
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from fundmodel import __version__
from fundmodel.api.brownout_edges import BrownoutEdges
from fundmodel.api.middleware import RequestMiddleware
from fundmodel.api.mode_refresh import refresh_mode_forever
from fundmodel.api.openapi_docs import STAGE_VALIDATION_DESCRIPTION
from fundmodel.api.problems import handle_database_error, install_problem_handlers
from fundmodel.api.routes import (
    companies,
    deprecations,
    funds,
    health,
    monte_carlo,
    ops,
    portfolio,
    stage_usage,
    sweeps,
)
from fundmodel.api.stage_validation import StageValidator
from fundmodel.api.state import AppState
from fundmodel.auth.cache import PrincipalCache
from fundmodel.db.brownout_store import BrownoutSchedule, BrownoutStore
from fundmodel.db.engine import create_db_engine
from fundmodel.db.migrate import head_revisions
from fundmodel.db.mode_store import ModeStore
from fundmodel.engines.montecarlo import warm_up
from fundmodel.notifications.outbox import publish
from fundmodel.observability.logging import configure_logging
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.observability.mode_change_counts import audit_counts_by_source
from fundmodel.observability.offenders import OffenderLogSampler
from fundmodel.settings import Settings, get_settings
from fundmodel.sweeps.jobs import JobStore
from fundmodel.sweeps.worker import SweepWorker
from fundmodel.usage.flusher import UsageFlusher
from fundmodel.usage.ledger import UsageLedger
from fundmodel.validation import DeprecationPolicy, ModeState

_log = structlog.get_logger("fundmodel.api")
SWAGGER_UI_ASSETS = "/docs/assets"
"""Where the Swagger UI files of the swagger-ui-bundle-v2 package are served (no CDN)."""
_ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (health, funds, companies, portfolio, monte_carlo, sweeps, deprecations, ops, stage_usage)
)


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
    metrics = ServiceMetrics(
        metrics_registry,
        http_operations=served_operations(),
        notification_targets=[target.name for target in resolved.notify_targets],
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_db_engine(resolved.database_url)
        store = ModeStore(engine, default=ModeState(resolved.stage_validation_mode))
        await anyio.to_thread.run_sync(store.refresh)
        brownouts = BrownoutSchedule(BrownoutStore(engine, sunset_at=resolved.stage_sunset_date))
        await anyio.to_thread.run_sync(brownouts.refresh)
        # Counted from the audit table: changes made by the CLI or the rollout controller count too.
        metrics.mode_changes.attach(
            partial(audit_counts_by_source, engine), ttl_seconds=resolved.stage_mode_cache_ttl_seconds
        )
        usage = UsageLedger(
            max_spellings=resolved.stage_usage_max_spellings,
            max_held_keys=resolved.stage_usage_max_held_keys,
            on_dropped=metrics.count_usage_dropped_at_memory_bound,
        )
        usage_flusher = UsageFlusher(usage, engine, metrics)
        app.state.fundmodel = AppState(
            settings=resolved,
            engine=engine,
            mode_store=store,
            brownouts=brownouts,
            registry=metrics_registry,
            metrics=metrics,
            validator=StageValidator(
                mode_store=store,
                brownouts=brownouts,
                metrics=metrics,
                offenders=OffenderLogSampler(
                    metrics,
                    per_minute=resolved.stage_offender_log_per_minute,
                    fraction=resolved.stage_offender_log_sample_fraction,
                ),
                policy=DeprecationPolicy(resolved.stage_deprecation_date, resolved.stage_sunset_date),
                canary_salt=resolved.stage_canary_salt,
                usage=usage,
            ),
            simulation_slots=anyio.CapacityLimiter(resolved.montecarlo_max_concurrency),
            expected_revisions=head_revisions(),
            principals=PrincipalCache(resolved.stage_mode_cache_ttl_seconds),
        )
        _log_startup(resolved, store)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(
                    refresh_mode_forever,
                    store,
                    metrics,
                    resolved.stage_mode_cache_ttl_seconds,
                    brownouts,
                    BrownoutEdges(brownouts, metrics, partial(publish, engine)),
                )
                tasks.start_soon(_warm_up_engine)
                tasks.start_soon(usage_flusher.flush_forever, resolved.stage_usage_flush_seconds)
                if resolved.notify_targets:
                    tasks.start_soon(_deliver_notifications, resolved, engine, metrics)
                sweep_worker = SweepWorker(JobStore(engine), resolved)
                if resolved.sweep_workers:
                    tasks.start_soon(sweep_worker.work_forever)
                yield
                # Running sweep jobs stop after their current point and go back to the queue.
                sweep_worker.stop()
                tasks.cancel_scope.cancel()
        finally:
            # The server takes no more requests: the counts since the last flush go out now.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(usage_flusher.flush_at_exit)
            engine.dispose()

    app = FastAPI(
        title="fundmodel",
        version=__version__,
        description=STAGE_VALIDATION_DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own pages load their scripts from a CDN: blank without internet. /docs is served
        # offline below; ReDoc has no packaged build, so it is off.
        docs_url=None,
        redoc_url=None,
    )
    _serve_swagger_ui_offline(app)
    # Always answer get_settings with the app's settings (async: no thread-pool hop per request);
    # tests may still replace this override.
    app.dependency_overrides[get_settings] = _settings_provider(resolved)
    install_problem_handlers(app)
    # Database outages become 503 here, in one place, instead of a try/except in every service.
    app.add_exception_handler(SQLAlchemyError, handle_database_error)  # type: ignore[arg-type]
    app.add_middleware(RequestMiddleware, metrics=metrics)
    for router in _ROUTERS:
        app.include_router(router)
    return app


def served_operations() -> tuple[tuple[str, str], ...]:
    """(method, route template) of every documented operation: the routes the HTTP metrics know."""
    return tuple(
        (method, route.path)
        for router in _ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in sorted(route.methods or ())
    )


def _serve_swagger_ui_offline(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` with its scripts and styles from the installed swagger-ui-bundle-v2."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    app.mount(SWAGGER_UI_ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, every URL the page loads needs that prefix back.
        prefix = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{prefix}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{prefix}{SWAGGER_UI_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}{SWAGGER_UI_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{prefix}{SWAGGER_UI_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=f"{prefix}{oauth2_redirect_url}",
        )

    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        oauth2_redirect_url, swagger_ui_oauth2_redirect, methods=["GET"], include_in_schema=False
    )


def _settings_provider(settings: Settings) -> Callable[[], Awaitable[Settings]]:
    async def provide() -> Settings:
        return settings

    return provide


async def _deliver_notifications(settings: Settings, engine: Engine, metrics: ServiceMetrics) -> None:
    """Post the notification outbox to NOTIFY_WEBHOOKS (imported here: only configured servers need httpx)."""
    from fundmodel.notifications.worker import dispatch_forever, dispatcher_for

    dispatcher = dispatcher_for(settings, engine, on_attempt=metrics.count_notification)
    await dispatch_forever(dispatcher, settings.notify_poll_interval_seconds)


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
