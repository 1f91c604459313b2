"""The stage-usage ledger: exact per-client counts of stage validations, one row per day and key.

One row counts, for one UTC ``day``, the validations of one client (``client_id``, what canary cohorts hash:
``key-<id>`` or the anonymous development client) on one ``endpoint`` (the route template, e.g.
``POST /api/funds/{fundId}/companies``) and request ``field`` of one ``kind``:

- ``valid``: canonical input (``spelling`` is empty): the client's ordinary traffic, what a canary's share
  of traffic is measured on;
- ``alias``: a deprecated spelling normalized to a canonical stage (``spelling`` is what was sent);
- ``unknown``: an unknown name accepted by ``off`` / ``warn`` (dropped or stored as sent);
- ``sum``: a stage distribution whose weights did not sum to 1, renormalized (``spelling`` is empty);
- ``rejected``: input ``enforce`` answered with 400 (``spelling`` is the offending name, empty for a sum).

Workers aggregate in memory and add their counts with an upsert every few seconds, so ``count`` only ever
grows within a day and no request waits on the database. Beyond a bounded number of distinct spellings per
client and day, further spellings are counted under :data:`OTHER_SPELLINGS`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, Date, DateTime, Index, String, Table

from fundmodel.db.tables import metadata

USAGE_KINDS: tuple[str, ...] = ("valid", "alias", "unknown", "sum", "rejected")
OTHER_SPELLINGS = "(other)"
"""The bucket of spellings beyond the per-client, per-day bound (a client sending it literally joins it)."""
MAX_SPELLING_CHARS = 64

stage_usage = Table(
    "stage_usage",
    metadata,
    Column("day", Date, primary_key=True),
    Column("client_id", String(128), primary_key=True),
    Column("endpoint", String(128), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("spelling", String(MAX_SPELLING_CHARS), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    # The key's name when last counted: lets a report name a client whose key was revoked since.
    Column("client_name", String(100), nullable=False),
    CheckConstraint("kind IN ('valid', 'alias', 'unknown', 'sum', 'rejected')", name="kind"),
    CheckConstraint("count > 0", name="count"),
    # Reports read "since a day", per client or across clients; pruning deletes by day.
    Index("ix_stage_usage_day_client_id", "day", "client_id"),
    Index("ix_stage_usage_client_id_day", "client_id", "day"),
)

stage_usage_flushes = Table(
    "stage_usage_flushes",
    metadata,
    # A ledger flush's id (uuid4 hex), written with its counts in one transaction: a retried flush whose
    # commit had in fact succeeded finds its id here and adds nothing.
    Column("flush_id", String(36), primary_key=True),
    Column("flushed_at", DateTime(timezone=True), nullable=False),
    # The flusher deletes markers older than a week by this column.
    Index("ix_stage_usage_flushes_flushed_at", "flushed_at"),
)
