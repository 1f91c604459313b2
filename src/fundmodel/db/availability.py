"""What a database error means to the domain: the one place that decides it.

An outage is something that goes away without a code change: no server, a lost connection, a full
connection table, a timeout, a locked SQLite file. It becomes ``StoreUnavailableError`` (503 with
``Retry-After`` at the HTTP edge, a one-line message and a non-zero exit in the CLI) through
:func:`store_unavailable_error`; services raise SQLAlchemy errors as they come and need no try/except of
their own, because the edge's one handler asks this module. Undefined tables, bad SQL and constraint
violations are never outages: they stay unexpected errors (500), unless a service gives a constraint
a domain meaning where it writes (a duplicate name is a ``ConflictError``). docs/architecture.md,
"Database errors", states the policy.
"""

from __future__ import annotations

import sqlite3
from enum import StrEnum

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from fundmodel.errors import StoreUnavailableError

__all__ = ["UnavailableReason", "store_unavailable_error", "unavailable_reason"]


class UnavailableReason(StrEnum):
    """Why the database is unavailable; also the label of the outage metric (a small fixed set)."""

    CONNECTION = "connection"  # refused, reset, server shutting down or gone
    POOL_TIMEOUT = "pool_timeout"  # every pooled connection busy for the whole pool timeout
    TOO_MANY_CONNECTIONS = "too_many_connections"  # the server's own limits (SQLSTATE class 53)
    TIMEOUT = "timeout"  # statement or lock timeout, query cancelled by the server
    LOCKED = "locked"  # SQLite: another process holds the write lock past the busy timeout
    STORAGE = "storage"  # SQLite: the file cannot be opened, read or grown


# SQLSTATE prefixes and codes (PostgreSQL appendix A) that mean "try again later".
_SQLSTATE_REASONS: tuple[tuple[str, UnavailableReason], ...] = (
    ("08", UnavailableReason.CONNECTION),  # connection exception
    ("57P01", UnavailableReason.CONNECTION),  # admin_shutdown
    ("57P02", UnavailableReason.CONNECTION),  # crash_shutdown
    ("57P03", UnavailableReason.CONNECTION),  # cannot_connect_now (starting up, recovering)
    ("57P05", UnavailableReason.CONNECTION),  # idle_session_timeout
    ("53", UnavailableReason.TOO_MANY_CONNECTIONS),  # insufficient resources (53300 too_many_connections)
    ("57014", UnavailableReason.TIMEOUT),  # query_canceled (statement_timeout)
    ("55P03", UnavailableReason.TIMEOUT),  # lock_not_available (lock_timeout)
)

_SQLITE_REASONS: dict[int, UnavailableReason] = {
    sqlite3.SQLITE_BUSY: UnavailableReason.LOCKED,
    sqlite3.SQLITE_LOCKED: UnavailableReason.LOCKED,
    sqlite3.SQLITE_CANTOPEN: UnavailableReason.STORAGE,
    sqlite3.SQLITE_IOERR: UnavailableReason.STORAGE,
    sqlite3.SQLITE_FULL: UnavailableReason.STORAGE,
}


def unavailable_reason(error: BaseException) -> UnavailableReason | None:
    """Why ``error`` means the database is unavailable for now, or None when it is not an outage."""
    if isinstance(error, PoolTimeoutError):
        return UnavailableReason.POOL_TIMEOUT
    if not isinstance(error, DBAPIError):
        return None
    original = error.orig
    if isinstance(original, psycopg.Error):
        return _postgres_reason(original, invalidated=error.connection_invalidated)
    if isinstance(original, sqlite3.Error):
        return _sqlite_reason(original)
    return UnavailableReason.CONNECTION if error.connection_invalidated else None


def store_unavailable_error(reason: UnavailableReason) -> StoreUnavailableError:
    """The domain error an outage becomes; its detail names the reason and never the driver's message."""
    return StoreUnavailableError(
        f"the database is unavailable ({reason.value.replace('_', ' ')}); retry later"
    )


def _postgres_reason(error: psycopg.Error, *, invalidated: bool) -> UnavailableReason | None:
    sqlstate = error.sqlstate
    if sqlstate is None:
        # No SQLSTATE: the server never answered (refused, unreachable, closed mid-query).
        if invalidated or isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return UnavailableReason.CONNECTION
        return None
    for prefix, reason in _SQLSTATE_REASONS:
        if sqlstate.startswith(prefix):
            return reason
    return None


def _sqlite_reason(error: sqlite3.Error) -> UnavailableReason | None:
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        # Extended codes (SQLITE_BUSY_TIMEOUT, SQLITE_IOERR_READ, ...) carry the primary code in the low byte.
        return _SQLITE_REASONS.get(code & 0xFF)
    # Raised before any statement ran (no code attached): judge by SQLite's fixed message.
    message = str(error).lower()
    if "database is locked" in message or "database table is locked" in message:
        return UnavailableReason.LOCKED
    return None
