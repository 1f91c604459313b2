"""``fundmodel serve``: uvicorn for one worker, gunicorn with uvicorn workers for several."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from fundmodel.observability.logging import configure_logging
from fundmodel.settings import get_settings

APP_FACTORY = "fundmodel.api.app:create_app"
GRACEFUL_TIMEOUT_SECONDS = 20
WORKER_TIMEOUT_SECONDS = 120


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (>1 runs gunicorn).")] = 1,
) -> None:
    """Run the HTTP API (settings from the environment: docs/api.md, section Configuration)."""
    settings = get_settings()  # an invalid environment fails here, in one line, before binding
    configure_logging(settings.log_level)
    if workers == 1:
        import uvicorn

        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_TIMEOUT_SECONDS,
        )
        return
    _run_gunicorn(host, port, workers, settings.prometheus_multiproc_dir)


def _run_gunicorn(host: str, port: int, workers: int, multiproc_dir: Path | None) -> None:
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    from fundmodel.observability.metrics import reset_multiprocess_dir, use_multiprocess_dir
    from fundmodel.observability.worker_hooks import child_exit

    temporary_dir = multiproc_dir is None
    if multiproc_dir is None:
        # Without a shared directory each worker would answer /metrics with its own values only.
        multiproc_dir = Path(tempfile.mkdtemp(prefix="fundmodel-metrics-"))
    multiproc_dir.mkdir(parents=True, exist_ok=True)
    reset_multiprocess_dir(multiproc_dir)
    # Before any worker forks: prometheus_client may already be imported in this master process.
    use_multiprocess_dir(multiproc_dir)
    structlog.get_logger("fundmodel.serve").info(
        "multiprocess_metrics", directory=str(multiproc_dir), workers=workers
    )

    from gunicorn.glogging import Logger as GunicornLogger  # type: ignore[import-untyped]

    class JsonLinesLogger(GunicornLogger):  # type: ignore[misc]
        """Gunicorn's and the uvicorn workers' own lines through configure_logging's JSON handler."""

        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            # The access log stays off (accesslog=None), as with a single uvicorn worker.
            self.error_log.handlers = list(logging.getLogger().handlers)

    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "uvicorn.workers.UvicornWorker",
        "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        "timeout": WORKER_TIMEOUT_SECONDS,
        "child_exit": child_exit,
        "accesslog": None,
        "logger_class": JsonLinesLogger,
        # Unused, and one fixed path per user: two services on one host would take each other's.
        "control_socket_disable": True,
        "preload_app": False,
    }

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from fundmodel.api.app import create_app

            return create_app()

    try:
        _Gunicorn().run()
    finally:
        if temporary_dir:
            shutil.rmtree(multiproc_dir, ignore_errors=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
