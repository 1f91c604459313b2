"""Shared fixtures: migrated databases of both kinds, the app over real ASGI, API keys.

PostgreSQL: one scratch database per test session (``fm_api_<random>`` on 127.0.0.1:5432, user postgres),
created here and dropped at the end; each fresh database a test asks for is a new schema in it, selected
through the connection's ``search_path`` (fast, and isolated). When no server answers, the PostgreSQL
cases skip with that reason; SQLite cases use a file under the test's tmp directory.
"""

from __future__ import annotations

import io
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import structlog
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from fundmodel.api.app import create_app
from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from fundmodel.db.migrate import upgrade_to_head
from fundmodel.observability.logging import configure_logging
from fundmodel.settings import Settings, load_settings

POSTGRES_HOST = os.environ.get("FUNDMODEL_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("FUNDMODEL_TEST_PG_PORT", "5432"))
POSTGRES_USER = "postgres"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _admin_conninfo(dbname: str = "postgres") -> str:
    return f"host={POSTGRES_HOST} port={POSTGRES_PORT} user={POSTGRES_USER} dbname={dbname} connect_timeout=3"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    """Name of this session's scratch database, or None when PostgreSQL is not reachable."""
    try:
        admin = psycopg.connect(_admin_conninfo(), autocommit=True)
    except psycopg.OperationalError:
        yield None
        return
    name = f"fm_api_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_postgres_url(database: str) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(database), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    options = quote(f"-csearch_path={schema}", safe="")
    return (
        f"postgresql+psycopg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}?options={options}"
    )


def make_database(backend: str, directory: Path, postgres: str | None) -> str:
    """A new, migrated, empty database of ``backend``; skips when PostgreSQL is unavailable."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / f'fundmodel-{uuid.uuid4().hex[:8]}.sqlite3'}"
    else:
        if postgres is None:
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_HOST}:{POSTGRES_PORT}")
        url = _fresh_postgres_url(postgres)
    engine = create_db_engine(url)
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str | None) -> str:
    """A migrated, empty database: SQLite file and PostgreSQL (every test runs on both)."""
    return make_database(request.param, tmp_path, postgres_database)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test: the given database, logging quiet, everything else default."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "app_env": "development",
        "stage_validation_mode": "warn",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return load_settings(**values)


class ApiClient:
    """A TestClient over the real ASGI app (lifespan included) plus handles tests need."""

    def __init__(self, client: TestClient, api_key: str) -> None:
        self.http = client
        self.api_key = api_key
        self.headers = {"Authorization": f"Bearer {api_key}"}

    @property
    def state(self) -> Any:
        return self.http.app.state.fundmodel  # type: ignore[attr-defined]

    def set_mode(self, mode: str, canary_percent: float = 100.0) -> None:
        from fundmodel.validation import ValidationMode

        self.state.mode_store.set(ValidationMode(mode), canary_percent, actor="pytest", reason="test setup")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)


def open_api_client(settings: Settings) -> tuple[ApiClient, Callable[[], None]]:
    engine = create_db_engine(settings.database_url)
    try:
        key = create_key(engine, f"pytest-{uuid.uuid4().hex[:8]}").secret
    finally:
        engine.dispose()
    app = create_app(settings, registry=CollectorRegistry(), configure_logs=False)
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    return ApiClient(client, key), lambda: client.__exit__(None, None, None)


@pytest.fixture
def api(database_url: str) -> Iterator[ApiClient]:
    """The app on a fresh database of each kind, with an API key, mode warn."""
    client, close = open_api_client(settings_for(database_url))
    yield client
    close()


@contextmanager
def captured_json_logs(level: str) -> Iterator[io.StringIO]:
    """The service's real log pipeline into a buffer; the previous logging set-up is restored after."""
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, previous_level = list(root.handlers), root.level
    configure_logging(level, stream=stream, cache_loggers=False)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(previous_level)
