"""Outage or bug? Real errors of both backends, classified by fundmodel.db.availability."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from fundmodel.db.availability import UnavailableReason, store_unavailable_error, unavailable_reason
from fundmodel.db.engine import create_db_engine
from fundmodel.errors import StoreUnavailableError
from tests.api.servers import free_port
from tests.conftest import make_database


def _raised(action: Callable[[], object]) -> SQLAlchemyError:
    with pytest.raises(SQLAlchemyError) as caught:
        action()
    return caught.value


def _execute(engine: Engine, statement: str) -> Callable[[], object]:
    def run() -> object:
        with engine.begin() as connection:
            return connection.execute(text(statement)).rowcount

    return run


def test_a_refused_postgresql_connection_is_an_outage() -> None:
    engine = create_db_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/fundmodel")
    try:
        error = _raised(lambda: engine.connect())
    finally:
        engine.dispose()
    assert unavailable_reason(error) is UnavailableReason.CONNECTION


def test_an_exhausted_pool_is_an_outage(tmp_path: Path) -> None:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'pool.sqlite3'}", pool_size=1, max_overflow=0, pool_timeout=0.05
    )
    try:
        with engine.connect():
            error = _raised(lambda: engine.connect())
    finally:
        engine.dispose()
    assert unavailable_reason(error) is UnavailableReason.POOL_TIMEOUT


def test_programming_errors_are_not_outages(engine: Engine) -> None:
    assert unavailable_reason(_raised(_execute(engine, "SELECT * FROM no_such_table"))) is None
    assert unavailable_reason(_raised(_execute(engine, "SELEKT 1"))) is None


def test_constraint_violations_are_not_outages(engine: Engine) -> None:
    _execute(engine, "CREATE TABLE t_unique (x INTEGER PRIMARY KEY)")()
    _execute(engine, "INSERT INTO t_unique VALUES (1)")()
    error = _raised(_execute(engine, "INSERT INTO t_unique VALUES (1)"))
    assert isinstance(error, IntegrityError)
    assert unavailable_reason(error) is None


def test_errors_that_are_not_from_the_database_are_not_outages() -> None:
    assert unavailable_reason(RuntimeError("boom")) is None
    assert unavailable_reason(ConnectionRefusedError()) is None


def test_a_locked_sqlite_database_is_an_outage(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    try:
        error = _raised(_execute(engine, "INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()
        holder.execute("ROLLBACK")
        holder.close()
    assert "database is locked" in str(error)
    assert unavailable_reason(error) is UnavailableReason.LOCKED


@pytest.mark.postgres
def test_postgresql_timeouts_and_terminated_sessions_are_outages(
    tmp_path: Path, postgres_database: str | None
) -> None:
    engine = create_db_engine(make_database("postgresql", tmp_path, postgres_database))
    try:
        _assert_timeouts_and_terminations_are_outages(engine)
    finally:
        engine.dispose()


def _assert_timeouts_and_terminations_are_outages(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SET statement_timeout = 50"))
        timeout = _raised(lambda: connection.execute(text("SELECT pg_sleep(5)")))
        connection.rollback()
    assert unavailable_reason(timeout) is UnavailableReason.TIMEOUT

    with engine.connect() as connection:
        terminated = _raised(
            lambda: connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        )
    assert isinstance(terminated, OperationalError)
    assert unavailable_reason(terminated) is UnavailableReason.CONNECTION


@pytest.mark.parametrize(
    ("driver_error", "expected"),
    [
        (psycopg.errors.TooManyConnections("sorry, too many clients already"), "too_many_connections"),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), "connection"),
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), "connection"),
        (psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"), "timeout"),
        (psycopg.errors.UndefinedTable('relation "x" does not exist'), None),
        (psycopg.errors.SyntaxError("syntax error"), None),
        (sqlite3.OperationalError("no such table: x"), None),
    ],
)
def test_driver_errors_by_sqlstate_and_message(driver_error: Exception, expected: str | None) -> None:
    # Conditions a test cannot easily provoke on the shared server (its connection limit, its start-up)
    # are classified from the driver's own exception classes, which carry the server's SQLSTATE.
    error = OperationalError("SELECT 1", {}, driver_error)
    reason = unavailable_reason(error)
    assert (reason.value if reason is not None else None) == expected


def test_an_outage_becomes_store_unavailable_naming_only_its_reason() -> None:
    driver_error = psycopg.errors.AdminShutdown("terminating connection for user secret-user at 10.0.0.7")
    reason = unavailable_reason(OperationalError("SELECT * FROM api_keys", {}, driver_error))
    assert reason is UnavailableReason.CONNECTION
    error = store_unavailable_error(reason)
    assert isinstance(error, StoreUnavailableError)
    assert error.code == "STORE_UNAVAILABLE"
    # The driver's message may quote users, hosts and SQL: only the reason reaches the client.
    assert error.detail == "the database is unavailable (connection); retry later"
    assert store_unavailable_error(UnavailableReason.POOL_TIMEOUT).detail == (
        "the database is unavailable (pool timeout); retry later"
    )
