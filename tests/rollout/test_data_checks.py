from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fundmodel.db.engine import create_db_engine
from fundmodel.ops.backup import backup_tables, create_backup
from fundmodel.ops.restore import verify_backup
from fundmodel.ops.stage_columns import stage_columns, stage_metadata
from fundmodel.rollout.data_checks import StoredDataChecks
from tests.conftest import make_database


def test_a_clean_database_with_a_fresh_backup(tmp_path: Path) -> None:
    engine = create_db_engine(make_database("sqlite", tmp_path, None))
    try:
        checks = StoredDataChecks(engine, backup_dir=tmp_path / "backups")
        missing = checks.measure(datetime.now(UTC))
        assert missing.non_canonical_checks.value == 0
        assert missing.failed_verify_checks.value == 0
        assert missing.backup_age_seconds.value is None
        assert missing.backup_age_seconds.absent_fails
        metadata = stage_metadata()
        names = [column.table_name for column in stage_columns(metadata)]
        backup = create_backup(engine, backup_tables(metadata, names), tmp_path / "backups")
        assert checks.measure(datetime.now(UTC)).backup_age_seconds.value is None  # not verified yet
        verify_backup(backup.file)
        fresh = checks.measure(datetime.now(UTC))
        assert fresh.backup_age_seconds.value is not None
        assert 0 <= fresh.backup_age_seconds.value < 60
    finally:
        engine.dispose()


def test_an_unmigrated_database_is_no_data_not_a_pass(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        facts = StoredDataChecks(engine, backup_dir=tmp_path / "backups").measure(datetime.now(UTC))
        assert facts.failed_verify_checks.value is None
        assert "db verify could not run" in facts.failed_verify_checks.detail
        assert not facts.non_canonical_checks.absent_fails
    finally:
        engine.dispose()
