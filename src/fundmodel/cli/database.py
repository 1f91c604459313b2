"""The database of commands that need an existing, migrated one: a missing schema says how to create it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.db.engine import create_db_engine
from fundmodel.errors import ConfigurationError, StoreUnavailableError

MIGRATIONS_TABLE = "alembic_version"


def open_existing_database(raw_url: str) -> Engine:
    """An engine on ``raw_url``; a SQLite file that does not exist is an error, never created."""
    return create_db_engine(raw_url, must_exist=True)


def describe(engine: Engine) -> str:
    """The database's URL as safe to print (password masked)."""
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def missing_schema_explained(engine: Engine) -> Iterator[None]:
    """Turn a store error caused by an unmigrated database into one line naming the database and the fix.

    Only checked after a failure, so the common case costs no extra query.
    """
    try:
        yield
    except (StoreUnavailableError, SQLAlchemyError):
        try:
            migrated = inspect(engine).has_table(MIGRATIONS_TABLE)
        except SQLAlchemyError:
            migrated = True  # unreachable as well: the original error says more
        if not migrated:
            raise ConfigurationError(
                f"database {describe(engine)} has no fundmodel tables; "
                "create them with `fundmodel db migrate` (DATABASE_URL selects the database)"
            ) from None
        raise
