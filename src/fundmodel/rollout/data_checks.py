"""The stored-data gates of ``warn -> enforce 10 %``: data normalized, ``db verify`` passes, backup fresh.

Thin wrappers over the data-operations code (:mod:`fundmodel.ops.verify`, :mod:`fundmodel.ops.backup`),
so the rollout checks exactly what ``fundmodel db verify`` and ``normalize-stages --apply`` check: the
backup counts only once ``fundmodel db verify-backup`` has restored that very file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.errors import FundmodelError, OperationRefusedError
from fundmodel.ops.backup import GATE_REFUSAL_PREFIX, require_fresh_backup
from fundmodel.ops.stage_columns import allocation_columns, stage_columns, stage_metadata
from fundmodel.ops.verify import run_integrity_checks
from fundmodel.rollout.gates import Measurement

CANONICAL_CHECK_SUFFIXES = (".stage_canonical", "allocations_canonical")
# require_fresh_backup's own limit is applied by the gate, so the newest verified backup's age is shown
# even when it is too old.
_ANY_AGE = timedelta(days=36500)


@dataclass(frozen=True, slots=True)
class DataFacts:
    """What the stored-data gates measured."""

    non_canonical_checks: Measurement
    failed_verify_checks: Measurement
    backup_age_seconds: Measurement


class StoredDataChecks:
    """Runs the integrity report and finds the newest verified backup of the stage tables."""

    def __init__(self, engine: Engine, *, backup_dir: Path) -> None:
        self._engine = engine
        self._backup_dir = backup_dir

    def measure(self, now: datetime) -> DataFacts:
        canonical, verify = self._integrity()
        return DataFacts(canonical, verify, self._backup_age(now))

    def _integrity(self) -> tuple[Measurement, Measurement]:
        try:
            metadata = stage_metadata()
            report = run_integrity_checks(self._engine, stage_columns(metadata), allocation_columns(metadata))
        except (SQLAlchemyError, FundmodelError) as exc:
            missing = Measurement.missing(f"db verify could not run: {_one_line(exc)}")
            return missing, missing
        failed = [check for check in report.checks if check.status == "fail"]
        non_canonical = [c for c in failed if c.name.endswith(CANONICAL_CHECK_SUFFIXES)]
        return (
            Measurement(float(len(non_canonical)), "; ".join(f"{c.name}: {c.detail}" for c in non_canonical)),
            Measurement(float(len(failed)), "; ".join(f"{c.name}: {c.detail}" for c in failed)),
        )

    def _backup_age(self, now: datetime) -> Measurement:
        try:
            metadata = stage_metadata()
            tables = [column.table_name for column in stage_columns(metadata)]
            verified = require_fresh_backup(
                self._engine.url,
                tables,
                backup_dir=self._backup_dir,
                max_age=_ANY_AGE,
                now=now,
            )
        except OperationRefusedError as exc:
            # Nothing usable at all is a measured fact (no backup), so it fails rather than lacking data.
            return Measurement.failing(exc.detail.removeprefix(GATE_REFUSAL_PREFIX))
        except FundmodelError as exc:
            return Measurement.missing(f"backup check could not run: {exc.detail}")
        age = now - verified.created_at
        return Measurement(max(age.total_seconds(), 0.0), verified.describe(now))


def _one_line(exc: BaseException) -> str:
    detail = exc.detail if isinstance(exc, FundmodelError) else str(getattr(exc, "orig", None) or exc)
    lines = detail.strip().splitlines()
    return lines[0] if lines else type(exc).__name__
