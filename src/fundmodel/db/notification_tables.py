"""The notification outbox: events to post to the outgoing webhooks, their deliveries and every attempt.

An event (``notification_events``) is written in the transaction of what it reports (a mode change, a
brownout edge), so it exists exactly when that committed. A dispatcher later gives it one delivery per
configured webhook target (``notification_deliveries``, keyed by event and target *name*: webhook URLs are
secrets and are never stored) and records every HTTP attempt (``notification_attempts``).

``dedupe_key`` (unique; several NULLs allowed on both backends) lets several workers that notice the same
edge enqueue it once. ``fanned_out_at`` is set once the event's deliveries exist.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from fundmodel.db.tables import metadata

MAX_DEDUPE_KEY_CHARS = 128
MAX_TARGET_NAME_CHARS = 64
MAX_ERROR_CHARS = 64
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "delivered", "failed", "expired")
"""``pending`` (due at ``next_attempt_at``), ``delivered`` (2xx), ``failed`` (a permanent refusal or
the attempts exhausted), ``expired`` (older than the maximum age before it could be delivered)."""

notification_events = Table(
    "notification_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("dedupe_key", String(MAX_DEDUPE_KEY_CHARS), nullable=True, unique=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("summary", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("fanned_out_at", DateTime(timezone=True), nullable=True),
    # The dispatcher looks for events without deliveries yet.
    Index("ix_notification_events_fanned_out_at", "fanned_out_at"),
)

notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "event_id",
        Integer,
        ForeignKey("notification_events.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("target", String(MAX_TARGET_NAME_CHARS), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    # A claim: the dispatcher holding it until ``lease_until`` (a crashed one's claim runs out).
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(MAX_ERROR_CHARS), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("event_id", "target"),
    CheckConstraint("status IN ('pending', 'delivered', 'failed', 'expired')", name="status"),
    # Claims read the due pending deliveries in order.
    Index("ix_notification_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
)

notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "delivery_id",
        Integer,
        ForeignKey("notification_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("status_code", Integer, nullable=True),
    # The exception's class name (``ConnectError``, ``ReadTimeout``), never its message (it quotes the URL).
    Column("error", String(MAX_ERROR_CHARS), nullable=True),
    Column("outcome", String(16), nullable=False),
    Index("ix_notification_attempts_delivery_id", "delivery_id"),
)
