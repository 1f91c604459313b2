"""The stage-normalization job: keyset batches, one transaction each, audited, resumable, reversible.

A run killed at any point leaves whole batches only, and resuming continues after the last committed
one. The package is split by concern; this module is its public API (the CLI, ``ops/verify.py``, the
benchmarks and the tests import from here):

- :mod:`.runs`: options, results, the run rows (create, read, mark);
- :mod:`.batches`: the keyset cursor, resuming, lock-timeout retries, progress rows;
- :mod:`.backend`: the protocol a database implements, :mod:`.postgresql` and :mod:`.sqlite` the two;
- :mod:`.apply`: the normalization run and its follow-up runs;
- :mod:`.rollback`: putting a run's ``before`` values back;
- :mod:`.operator_map`: the operator's ``--map`` of unknown values to stages.
"""

from fundmodel.ops.normalize.apply import MAX_FOLLOW_UP_RUNS, execute_run, normalize_to_completion
from fundmodel.ops.normalize.backend import (
    BatchCounts,
    BatchOutcome,
    Change,
    Cursor,
    NormalizationBackend,
    RowCountChange,
    RowEffect,
    backend_for,
)
from fundmodel.ops.normalize.batches import COMMITTED_BATCH, IN_PROGRESS_BATCH
from fundmodel.ops.normalize.operator_map import NO_OPERATOR_MAP, OperatorMap, require_every_source_stored
from fundmodel.ops.normalize.postgresql import PostgreSQLBackend
from fundmodel.ops.normalize.rollback import execute_rollback, refused_rollback_rows
from fundmodel.ops.normalize.runs import (
    COMPLETED,
    FAILED,
    KIND_NORMALIZE,
    KIND_ROLLBACK,
    ROLLED_BACK,
    RUNNING,
    BackupReference,
    LegacyLeft,
    NullProgress,
    Progress,
    RefusedRow,
    RunOptions,
    RunResult,
    StoredRun,
    UnknownLeft,
    count_rows,
    create_rollback_run,
    create_run,
    find_incomplete_run,
    get_run,
    resume_hint,
)
from fundmodel.ops.normalize.sqlite import SQLiteBackend

__all__ = [
    "COMMITTED_BATCH",
    "COMPLETED",
    "FAILED",
    "IN_PROGRESS_BATCH",
    "KIND_NORMALIZE",
    "KIND_ROLLBACK",
    "MAX_FOLLOW_UP_RUNS",
    "NO_OPERATOR_MAP",
    "ROLLED_BACK",
    "RUNNING",
    "BackupReference",
    "BatchCounts",
    "BatchOutcome",
    "Change",
    "Cursor",
    "LegacyLeft",
    "NormalizationBackend",
    "NullProgress",
    "OperatorMap",
    "PostgreSQLBackend",
    "Progress",
    "RefusedRow",
    "RowCountChange",
    "RowEffect",
    "RunOptions",
    "RunResult",
    "SQLiteBackend",
    "StoredRun",
    "UnknownLeft",
    "backend_for",
    "count_rows",
    "create_rollback_run",
    "create_run",
    "execute_rollback",
    "execute_run",
    "find_incomplete_run",
    "get_run",
    "normalize_to_completion",
    "refused_rollback_rows",
    "require_every_source_stored",
    "resume_hint",
]
