"""Build the SQLAlchemy engine for the configured database (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from fundmodel.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_SECONDS = 15
# During an outage every request pays these before its 503, so they are kept short: a refused connection
# fails in about a millisecond, an unreachable host after the connect timeout (libpq's minimum is 2 s),
# and a request waiting for a pooled connection gives up after the pool timeout.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 3
POSTGRES_POOL_TIMEOUT_SECONDS = 5


def parse_database_url(raw: str) -> URL:
    """Parse and check a DATABASE_URL; plain ``postgresql://`` means the psycopg 3 driver."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigurationError(
            "DATABASE_URL is not a database URL; expected sqlite:///path or "
            "postgresql+psycopg://user@host:port/dbname"
        ) from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if url.drivername != "postgresql+psycopg":
            raise ConfigurationError("DATABASE_URL: use the psycopg 3 driver (postgresql+psycopg://)")
        return url
    if backend == "sqlite":
        return url
    raise ConfigurationError(
        f"DATABASE_URL: unsupported database {backend!r}; use sqlite:/// or postgresql+psycopg://"
    )


def create_db_engine(raw_url: str, *, must_exist: bool = False) -> Engine:
    """Create an engine with per-backend settings that make concurrent processes behave.

    ``must_exist``: a SQLite file that is not there is an error instead of being created (with its
    directory), for commands that only make sense on a migrated database.
    """
    url = parse_database_url(raw_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, must_exist=must_exist)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=POSTGRES_POOL_TIMEOUT_SECONDS,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
        # Bound values stay out of exception text, and so out of any log line quoting an error.
        hide_parameters=True,
    )


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_engine(url: URL, *, must_exist: bool) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        path = Path(database).expanduser()
        if must_exist and not path.is_file():
            # sqlite3 would create an empty file here, and every query would then fail with "no such table".
            raise ConfigurationError(
                f"no database at {path.resolve()} (DATABASE_URL={url.render_as_string()}); "
                "create it with `fundmodel db migrate`"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        hide_parameters=True,
    )
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed while another process (a second worker, the CLI) writes.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
