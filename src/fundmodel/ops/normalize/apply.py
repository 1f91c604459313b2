"""The normalization run (``normalize-stages --apply`` / ``--resume``) and its follow-up runs.

Each batch locks the rows of its key range that are not canonical, classifies every value it finds under
the lock (a value written after the plan is planned then), updates the rows by id to what their locked
value becomes, and writes one audit row per changed row plus its own progress row in the same
transaction (:mod:`.batches`, :mod:`.backend`). Legacy values a concurrent writer puts behind the cursor
are left to a follow-up run (:func:`normalize_to_completion`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine

from fundmodel.errors import OperationRefusedError
from fundmodel.ops.normalize.backend import BatchOutcome, Cursor, NormalizationBackend, backend_for
from fundmodel.ops.normalize.batches import drive_table, resume_cursor
from fundmodel.ops.normalize.operator_map import OperatorMap
from fundmodel.ops.normalize.runs import (
    COMPLETED,
    KIND_NORMALIZE,
    RUNNING,
    BackupReference,
    LegacyLeft,
    NullProgress,
    Progress,
    RunOptions,
    RunResult,
    claim_run,
    count_rows,
    create_run,
    get_run,
    mark_run,
    now,
    record_failure,
    stored_total,
)
from fundmodel.ops.planning import build_plan
from fundmodel.ops.stage_columns import StageColumn

# How many follow-up runs one apply starts for legacy spellings written while a run went on. Each
# needs a writer to put legacy values behind the previous run's cursor, so this only bounds a writer
# that never stops; whatever is left after the last one is reported.
MAX_FOLLOW_UP_RUNS = 3


@dataclass(frozen=True)
class _NormalizeBatches:
    """The batch work of one table's normalization: the backend's batch with the run's plan."""

    backend: NormalizationBackend
    column: StageColumn
    run_id: str
    batch_size: int
    mapping: dict[str, str]

    def __call__(self, connection: Connection, cursor: Cursor) -> BatchOutcome | None:
        return self.backend.normalize_batch(
            connection, self.column, self.run_id, cursor, self.batch_size, self.mapping
        )


def execute_run(
    engine: Engine,
    columns: Sequence[StageColumn],
    run_id: str,
    options: RunOptions,
    *,
    progress: Progress | None = None,
    resumed: bool = False,
    backend: NormalizationBackend | None = None,
) -> RunResult:
    """Drive a normalization run from its last committed batch to the end.

    Only normalization runs: an interrupted rollback is continued by ``execute_rollback`` (CLI:
    ``--rollback TARGET`` again), never by ``--apply``/``--resume``, which would put legacy values back.
    """
    progress = progress or NullProgress()
    backend = backend or backend_for(engine)
    run = get_run(engine, run_id)
    if run is None:
        raise OperationRefusedError(f"no normalization run {run_id!r}")
    if run.kind != KIND_NORMALIZE:
        raise OperationRefusedError(
            f"run {run_id} is a {run.kind} run of run {run.target_run_id}, not a normalization; "
            f"finish it with `{run.resume_hint}`"
        )
    claim_run(engine, run_id)
    # A resumed run keeps the batch size and unknown-value policy it was planned with.
    options = replace(options, batch_size=run.batch_size, force_unknown=run.force_unknown)
    result = RunResult(run_id=run_id, kind=KIND_NORMALIZE, status=RUNNING, resumed=resumed)
    counts_start = run.row_counts_start or {}
    try:
        for column in columns:
            with engine.connect() as connection:
                cursor, done = resume_cursor(connection, run_id, column.table_name, column.key_from_text)
            progress.start_table(column.table_name, int(counts_start.get(column.table_name, 0)), done)
            result.per_table.setdefault(column.table_name, 0)
            batch = _NormalizeBatches(
                backend, column, run_id, options.batch_size, run.planned_mapping(column.table_name)
            )
            drive_table(engine, backend, run_id, column.table_name, cursor, options, batch, progress, result)
        with engine.connect() as connection:
            counts_end = count_rows(connection, columns)
        mark_run(engine, run_id, status=COMPLETED, row_counts_end=counts_end, finished_at=now(), owner=None)
    except BaseException as exc:
        record_failure(engine, run_id, exc)
        raise
    result.status = COMPLETED
    if resumed:
        result.rows_changed = stored_total(engine, run_id)
    return result


def normalize_to_completion(
    engine: Engine,
    columns: Sequence[StageColumn],
    run_id: str,
    options: RunOptions,
    *,
    backup: BackupReference | None,
    progress: Progress | None = None,
    resumed: bool = False,
    backend: NormalizationBackend | None = None,
    max_follow_up_runs: int = MAX_FOLLOW_UP_RUNS,
) -> RunResult:
    """Finish a normalization run, then re-plan until no known legacy spelling is left.

    A keyset pass cannot see what a concurrent writer puts behind its cursor, and a row may change only
    once per run (one audit row per changed row per run), so legacy spellings written meanwhile get a
    follow-up run of their own: a fresh plan from a grouped scan, the same backup reference, its own
    audit. Bounded by ``max_follow_up_runs``; known spellings still stored after that are reported in
    ``non_canonical_left``. The result totals all the runs; ``run_id`` stays the first one.
    """
    result = execute_run(
        engine, columns, run_id, options, progress=progress, resumed=resumed, backend=backend
    )
    # Follow-up runs map the operator's values too (a mapped value may also be written meanwhile).
    run = get_run(engine, run_id)
    operator_map = OperatorMap.from_json(run.plan.get("operator_map") if run is not None else None)
    for _attempt in range(max_follow_up_runs + 1):
        with engine.connect() as connection:
            plan = build_plan(connection, list(columns), operator_map=operator_map.targets)
        if plan.rows_to_change == 0 or len(result.follow_up_runs) == max_follow_up_runs:
            break
        follow_up_id = create_run(engine, columns, plan, options, backup=backup)
        follow_up = execute_run(engine, columns, follow_up_id, options, progress=progress, backend=backend)
        result.follow_up_runs.append(follow_up_id)
        result.rows_changed += follow_up.rows_changed
        result.rows_replanned += follow_up.rows_replanned
        result.rows_unknown_seen = follow_up.rows_unknown_seen
        result.batches += follow_up.batches
        for table_name, changed in follow_up.per_table.items():
            result.per_table[table_name] = result.per_table.get(table_name, 0) + changed
    result.non_canonical_left = [
        LegacyLeft(table=table.table, value=change.before, after=change.after, rows=change.rows)
        for table in plan.tables
        for change in table.changes
    ]
    return result
