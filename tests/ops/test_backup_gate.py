"""The backup gate and retention (``ops/backup_gate.py``), on both backends: real backups, verified by a
real restore."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from fundmodel.db.tables import portfolio_companies
from fundmodel.errors import FundmodelError, OperationRefusedError
from fundmodel.ops.backup_gate import require_fresh_backup
from fundmodel.ops.backup_manifest import manifest_path_for
from fundmodel.ops.backup_verification import sha256_of, verification_path_for
from fundmodel.ops.restore import verify_backup
from tests.ops.legacy_data import seed_legacy
from tests.ops.test_backup import (
    STAGE_TABLES,
    forge_truncated_copy,
    make_backup,
    make_verified_backup,
    rewrite_manifest,
    scratch_server,
)


def test_gate_needs_a_backup_at_all(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(OperationRefusedError, match="no backup found"):
        require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=24))


def test_gate_judges_age_by_manifest_not_file_time(engine: Engine, tmp_path: Path) -> None:
    seed_legacy(engine, companies=5, deals=5)
    result = make_verified_backup(engine, tmp_path)
    found = require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=24))
    assert found.file == result.file
    old = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    rewrite_manifest(result, created_at=old)
    result.file.touch()  # a fresh mtime does not make an old backup fresh
    with pytest.raises(OperationRefusedError, match=r"30\.0 h old"):
        require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=24))
    # The threshold is configurable (the plan's RPO is under an hour).
    found = require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=48))
    assert found.file == result.file
    rewrite_manifest(result, created_at=(datetime.now(UTC) - timedelta(minutes=90)).isoformat())
    with pytest.raises(OperationRefusedError):
        require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=1))


def test_gate_refuses_a_backup_of_another_database(engine: Engine, tmp_path: Path) -> None:
    seed_legacy(engine, companies=5, deals=5)
    result = make_verified_backup(engine, tmp_path)
    rewrite_manifest(result, database={"dialect": "sqlite", "path": "/elsewhere.sqlite3", "host": "x"})
    with pytest.raises(OperationRefusedError, match="another database"):
        require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=24))


def test_gate_passes_only_a_backup_verify_backup_has_restored(engine: Engine, tmp_path: Path) -> None:
    seed_legacy(engine, companies=20, deals=5)
    result = make_backup(engine, tmp_path)
    # Intact (size and SHA-256 match) but never restored: not yet a verified backup.
    with pytest.raises(OperationRefusedError, match=r"was never verified.*verify-backup"):
        require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=24))
    report = verify_backup(result.file, scratch_server_url=engine.url.render_as_string(hide_password=False))
    assert report.ok
    record = json.loads(verification_path_for(result.file).read_text())
    assert record["sha256"] == sha256_of(result.file)
    assert {t["name"]: t["rows"] for t in record["tables"]}["portfolio_companies"] == 20
    assert stat.S_IMODE(verification_path_for(result.file).stat().st_mode) == 0o600
    now = datetime.now(UTC)
    found = require_fresh_backup(
        engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=24), now=now
    )
    assert found.file == result.file
    said = found.describe(now)
    for checked in ("of this database", "stage tables", "h old", "SHA-256", "verify-backup restored"):
        assert checked in said


def test_gate_refuses_a_truncated_backup_with_a_forged_manifest(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """The review's case: the manifest matches the truncated file, so size and SHA-256 pass; the gate
    still refuses because verify-backup never restored these bytes, and verify-backup rejects them."""
    seed_legacy(engine, companies=30, deals=10)
    result = make_verified_backup(engine, tmp_path)
    forge_truncated_copy(result)
    with pytest.raises(OperationRefusedError, match="not the file verify-backup restored"):
        require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=24))
    with pytest.raises(FundmodelError):  # SQLite: not a database / integrity; PostgreSQL: pg_restore
        verify_backup(result.file, scratch_server_url=scratch_server(database_url))
    assert not verification_path_for(result.file).exists()  # the failure leaves no record behind
    with pytest.raises(OperationRefusedError, match="was never verified"):
        require_fresh_backup(
            engine.url,
            STAGE_TABLES,
            backup_dir=tmp_path,
            max_age=timedelta(hours=24),
            explicit_file=result.file,
        )


def test_gate_refuses_a_verified_record_copied_onto_another_backup(engine: Engine, tmp_path: Path) -> None:
    seed_legacy(engine, companies=8, deals=2)
    verified = make_verified_backup(engine, tmp_path / "a")
    with engine.begin() as connection:  # different data, different bytes (same data dumps identically)
        connection.execute(update(portfolio_companies).values(stage="growth"))
    other = make_backup(engine, tmp_path / "b")
    verification_path_for(other.file).write_bytes(verification_path_for(verified.file).read_bytes())
    with pytest.raises(OperationRefusedError, match="not the file verify-backup restored"):
        require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path / "b", max_age=timedelta(hours=24))


def test_gate_falls_back_to_an_older_verified_backup(engine: Engine, tmp_path: Path) -> None:
    seed_legacy(engine, companies=8, deals=2)
    older = make_verified_backup(engine, tmp_path)
    make_backup(engine, tmp_path)  # newer, never verified
    found = require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=24))
    assert found.file == older.file


def test_retention_keeps_the_newest(engine: Engine, tmp_path: Path) -> None:
    seed_legacy(engine, companies=3, deals=3)
    results = [make_verified_backup(engine, tmp_path, retain=2) for _ in range(3)]
    assert not results[0].file.exists()
    assert not manifest_path_for(results[0].file).exists()
    assert not verification_path_for(results[0].file).exists()
    assert verification_path_for(results[2].file).exists()
    assert results[1].file.exists()
    assert results[2].file.exists()
    assert results[2].pruned == (results[0].file,)
