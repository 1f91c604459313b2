from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from fundmodel.ops.connection import open_engine
from fundmodel.ops.stage_columns import StageColumn, stage_columns, stage_metadata
from tests.ops.legacy_data import PG_SERVER_URL, migrate, postgres_available

_PG_SKIP_REASON = "PostgreSQL is not running on 127.0.0.1:5432"


@pytest.fixture(scope="session")
def postgres_up() -> bool:
    return postgres_available()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("template") / "fundmodel.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_up: bool) -> Iterator[str | None]:
    """A migrated PostgreSQL database that each test's scratch database is created from."""
    if not postgres_up:
        yield None
        return
    name = f"fm_ops_tpl_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        migrate(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        yield name
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_template: str | None,
) -> Iterator[str]:
    """A migrated, empty database of each kind (PostgreSQL: a scratch ``fm_ops_*`` database)."""
    if request.param == "sqlite":
        path = tmp_path / "fundmodel.sqlite3"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if postgres_template is None:
        pytest.skip(_PG_SKIP_REASON)
    name = f"fm_ops_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def columns() -> list[StageColumn]:
    return stage_columns(stage_metadata())
