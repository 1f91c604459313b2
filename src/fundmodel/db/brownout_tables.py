"""Brownout windows (``stage_brownouts``): scheduled periods of ``enforce`` before the Sunset.

One row per window, scheduled by ``fundmodel rollout brownout schedule``. The row is its own audit
record: who scheduled it, when and why (``created_*``, ``reason``); who ended it early, when, why and
through what (``ended_*``, ``end_reason``, ``end_source``: ``manual`` for ``brownout cancel``,
``alertmanager`` for the auto-downgrade). A window is in force on ``[starts_at, ends_at)`` with
``ends_at`` cut to ``ended_at`` when that comes first, so a window cancelled before its start never applies.
sees the edge, so a start or end is announced once however many workers notice it.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Float, Index, Integer, String, Table, Text

from fundmodel.db.tables import metadata

BROWNOUT_END_SOURCES: tuple[str, ...] = ("manual", "alertmanager")

stage_brownouts = Table(
    "stage_brownouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("canary_percent", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("ended_by", String(100), nullable=True),
    Column("end_reason", Text, nullable=True),
    Column("end_source", String(16), nullable=True),
    CheckConstraint("ends_at > starts_at", name="window"),
    CheckConstraint("canary_percent > 0 AND canary_percent <= 100", name="canary_percent"),
    CheckConstraint("end_source IS NULL OR end_source IN ('manual', 'alertmanager')", name="end_source"),
    # Every worker reads the windows not yet over, every TTL: by their end.
    Index("ix_stage_brownouts_ends_at", "ends_at"),
)
