"""Bookkeeping tables of the stage-normalization job: runs, batch progress and the per-row audit log.

They live on the shared ``metadata`` so Alembic sees them; only ``fundmodel.ops`` writes to them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from fundmodel.db.tables import metadata

# SQLite only auto-increments an INTEGER PRIMARY KEY, so the audit id is BIGINT elsewhere.
_AUDIT_ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")

stage_normalization_runs = Table(
    "stage_normalization_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),  # normalize | rollback
    Column("status", String(16), nullable=False),  # running | completed | failed | rolled_back
    Column(
        "target_run_id",
        String(32),
        ForeignKey("stage_normalization_runs.id", name="fk_stage_norm_runs_target_run_id"),
        nullable=True,
    ),
    Column("force_unknown", Boolean, nullable=False, default=False),
    Column("batch_size", Integer, nullable=False),
    Column("plan", JSON, nullable=False),
    Column("backup_file", Text, nullable=True),
    Column("backup_sha256", String(64), nullable=True),
    Column("row_counts_start", JSON, nullable=True),
    Column("row_counts_end", JSON, nullable=True),
    Column("rows_changed", BigInteger, nullable=False, default=0),
    Column("owner", String(255), nullable=True),
    Column("actor", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

stage_normalization_batches = Table(
    "stage_normalization_batches",
    metadata,
    Column(
        "run_id",
        String(32),
        ForeignKey("stage_normalization_runs.id", name="fk_stage_norm_batches_run_id"),
        nullable=False,
    ),
    Column("table_name", String(64), nullable=False),
    Column("batch_no", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # in_progress | committed
    Column("after_key", Text, nullable=True),  # keyset cursor the batch started after
    Column("last_key", Text, nullable=True),  # last primary key the batch covered
    Column("rows_scanned", Integer, nullable=False, default=0),
    Column("rows_changed", Integer, nullable=False, default=0),
    Column("rows_replanned", Integer, nullable=False, default=0),
    Column("rows_unknown", Integer, nullable=False, default=0),
    # What the batch's own transaction did to the row count of its table (revision 0004): the job only
    # updates, so both are 0; `fundmodel db verify` fails otherwise. NULL: committed before 0004.
    Column("rows_inserted", Integer, nullable=True),
    Column("rows_deleted", Integer, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("committed_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("run_id", "table_name", "batch_no", name="pk_stage_normalization_batches"),
)

stage_normalization_audit = Table(
    "stage_normalization_audit",
    metadata,
    Column("id", _AUDIT_ID_TYPE, primary_key=True, autoincrement=True),
    # No foreign key to the runs table on purpose: its per-row trigger costs ~15 % of an apply, and
    # `fundmodel db verify` checks that every audit row belongs to a committed batch of a run.
    Column("run_id", String(32), nullable=False),
    Column("batch_no", Integer, nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("row_id", String(64), nullable=False),
    Column("before_value", Text, nullable=True),
    Column("after_value", Text, nullable=True),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    # The database itself guarantees "exactly one audit row per changed row per run".
    Index("uq_stage_normalization_audit_row", "run_id", "table_name", "row_id", unique=True),
)

NORMALIZATION_TABLES: tuple[Table, ...] = (
    stage_normalization_runs,
    stage_normalization_batches,
    stage_normalization_audit,
)
