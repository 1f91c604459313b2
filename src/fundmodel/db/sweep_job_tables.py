"""Sweep jobs: sweeps, sensitivity runs and backsolves accepted over HTTP, run by the servers' workers.

One row per job, holding its validated request, its progress, and its result or error, so any replica
answers ``GET /api/monte-carlo/jobs/{id}``. A worker claims a queued job (or one whose lease ran out) with a
conditional ``UPDATE`` and keeps the lease while it runs; ``attempts`` counts claims, so a job whose
servers keep dying is failed with a reason instead of being retried for ever.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
)

from fundmodel.db.tables import metadata

JOB_ID_CHARS = 32
MAX_CLIENT_ID_CHARS = 64
JOB_KINDS: tuple[str, ...] = ("sweep", "sensitivity", "backsolve")
JOB_STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATUSES: tuple[str, ...] = ("queued", "running")

sweep_jobs = Table(
    "sweep_jobs",
    metadata,
    # A random hex id: ids are handed to clients and must not be guessable or count other clients' jobs.
    Column("id", String(JOB_ID_CHARS), primary_key=True),
    Column("client_id", String(MAX_CLIENT_ID_CHARS), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("request", JSON, nullable=False),
    Column("warnings", JSON, nullable=False),
    Column("points_total", Integer, nullable=False),
    Column("points_done", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("kind IN ('sweep', 'sensitivity', 'backsolve')", name="kind"),
    CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"),
    # The per-client bound counts a client's active jobs; workers look for queued or expired ones.
    Index("ix_sweep_jobs_client_id_status", "client_id", "status"),
    Index("ix_sweep_jobs_status_created_at", "status", "created_at"),
)
