"""The canonical-stage guard's names, and recognising the guard when it refuses a write.

``fundmodel db constrain-stages`` (:mod:`fundmodel.ops.constraints`) installs the guard: a CHECK constraint
on PostgreSQL, two ``RAISE(ABORT, ...)`` triggers on SQLite. Once it is there, a write of a non-canonical
stage fails in the database; services that store a stage ask :func:`refused_by_stage_guard` to turn that
failure into a domain error instead of an unexpected 500. Recognition is exact on both databases (the
constraint's name on PostgreSQL, the trigger's error code and message on SQLite), so another constraint
violation is never mistaken for the guard.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DBAPIError

__all__ = ["guard_constraint_name", "refused_by_stage_guard", "sqlite_guard_message"]


def guard_constraint_name(table_name: str, column_name: str) -> str:
    """The PostgreSQL CHECK constraint's name (also the guard's name in reports and verify)."""
    return f"ck_{table_name}_{column_name}_canonical"


def sqlite_guard_message(table_name: str, column_name: str) -> str:
    """The message the SQLite guard triggers abort with (a plain literal: no quotes in table names)."""
    return f"{table_name}.{column_name} must be a canonical stage"


def refused_by_stage_guard(error: DBAPIError, table_name: str, column_name: str) -> bool:
    """Whether ``error`` is the guard of ``table_name.column_name`` refusing a non-canonical stage."""
    driver_error = error.orig
    if isinstance(driver_error, psycopg.errors.CheckViolation):
        return driver_error.diag.constraint_name == guard_constraint_name(table_name, column_name)
    if isinstance(driver_error, sqlite3.IntegrityError):
        return getattr(driver_error, "sqlite_errorcode", None) == sqlite3.SQLITE_CONSTRAINT_TRIGGER and str(
            driver_error
        ) == sqlite_guard_message(table_name, column_name)
    return False
