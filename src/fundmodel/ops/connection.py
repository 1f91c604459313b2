"""Engines for data operations: the application's engine plus SQLite write transactions that lock up front."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, event

from fundmodel.db.engine import create_db_engine

# Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE: it takes the write
# lock before reading, so the rows a batch reads cannot change before it writes them.
SQLITE_IMMEDIATE = "fundmodel_sqlite_immediate"


def open_engine(url: str) -> Engine:
    """The application's engine for ``url`` (same pragmas and driver checks), ready for ops batches."""
    engine = create_db_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "begin", _begin_immediate_when_asked)
    return engine


def _begin_immediate_when_asked(connection: Connection) -> None:
    if connection.get_execution_options().get(SQLITE_IMMEDIATE, False):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgresql(engine_or_connection: Engine | Connection) -> bool:
    return engine_or_connection.dialect.name == "postgresql"
