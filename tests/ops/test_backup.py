from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import DBAPIError

from fundmodel.db.tables import portfolio_companies
from fundmodel.errors import FundmodelError, IntegrityCheckError, OperationRefusedError
from fundmodel.ops.backup import (
    BackupResult,
    backup_tables,
    create_backup,
    manifest_path_for,
    require_fresh_backup,
    sha256_of,
    verification_path_for,
)
from fundmodel.ops.constraints import add_stage_constraints, guard_states
from fundmodel.ops.restore import restore_backup, verify_backup
from fundmodel.ops.stage_columns import stage_columns, stage_metadata
from tests.ops.legacy_data import current_values, seed_legacy
from tests.ops.test_normalize import apply

STAGE_TABLES = ["portfolio_companies", "deal_opportunities"]


def make_backup(engine: Engine, directory: Path, retain: int = 7) -> BackupResult:
    metadata = stage_metadata()
    names = [*STAGE_TABLES, "portfolio_strategies"]
    names += [name for name in metadata.tables if name.startswith("stage_normalization_")]
    return create_backup(engine, backup_tables(metadata, names), directory, retain=retain)


def scratch_server(database_url: str) -> str | None:
    return database_url if database_url.startswith("postgresql") else None


def make_verified_backup(engine: Engine, directory: Path, retain: int = 7) -> BackupResult:
    """A backup plus the record of `verify-backup` restoring it: what the gates accept."""
    result = make_backup(engine, directory, retain=retain)
    report = verify_backup(result.file, scratch_server_url=engine.url.render_as_string(hide_password=False))
    assert report.ok
    return result


def forge_truncated_copy(result: BackupResult) -> None:
    """Cut the file in half and rewrite the manifest to match, as a careless copy-and-re-manifest would."""
    result.file.write_bytes(result.file.read_bytes()[: result.file.stat().st_size // 2])
    rewrite_manifest(result, size_bytes=result.file.stat().st_size, sha256=sha256_of(result.file))


def rewrite_manifest(result: BackupResult, **changes: object) -> None:
    manifest = json.loads(result.manifest_file.read_text())
    manifest.update(changes)
    result.manifest_file.write_text(json.dumps(manifest))


def test_backup_is_private_atomic_and_described_by_its_manifest(engine: Engine, tmp_path: Path) -> None:
    seed_legacy(engine, companies=40, deals=15)
    result = make_backup(engine, tmp_path / "backups")
    assert stat.S_IMODE(result.file.stat().st_mode) == 0o600
    assert stat.S_IMODE(result.manifest_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in result.file.parent.iterdir()) == sorted(
        [result.file.name, result.manifest_file.name]
    )  # no temporary files left behind
    manifest = json.loads(result.manifest_file.read_text())
    assert manifest["sha256"] == sha256_of(result.file)
    assert manifest["size_bytes"] == result.file.stat().st_size
    counts = {t["name"]: t["rows"] for t in manifest["tables"]}
    assert counts["portfolio_companies"] == 40
    assert counts["deal_opportunities"] == 15
    assert counts["funds"] == 1  # referenced tables come along so a restore can rebuild constraints
    assert {"fundmodel", "python", "sqlalchemy"} <= manifest["tool_versions"].keys()
    assert datetime.fromisoformat(manifest["created_at"]) <= datetime.now(UTC)


def test_verify_backup_restores_into_scratch_and_compares_counts(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    seed_legacy(engine, companies=30, deals=10)
    result = make_backup(engine, tmp_path)
    report = verify_backup(result.file, scratch_server_url=scratch_server(database_url))
    assert report.ok
    assert {t.table: t.actual for t in report.tables}["portfolio_companies"] == 30


@pytest.mark.parametrize("damage", ["corrupt", "truncate"])
def test_corrupt_or_truncated_backup_is_detected(
    engine: Engine, database_url: str, tmp_path: Path, damage: str
) -> None:
    seed_legacy(engine, companies=30, deals=10)
    result = make_backup(engine, tmp_path)
    data = bytearray(result.file.read_bytes())
    if damage == "corrupt":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2 :]
    result.file.write_bytes(bytes(data))
    with pytest.raises(IntegrityCheckError, match=r"checksum|truncated"):
        verify_backup(result.file, scratch_server_url=scratch_server(database_url))
    with pytest.raises(OperationRefusedError, match="fresh, verified backup"):
        require_fresh_backup(engine.url, STAGE_TABLES, backup_dir=tmp_path, max_age=timedelta(hours=24))


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


def test_restore_round_trip_equals_the_original_rows(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    seeded = seed_legacy(engine, companies=50, deals=20)
    result = make_backup(engine, tmp_path)
    with engine.begin() as connection:
        connection.execute(update(portfolio_companies).values(stage="growth"))
    engine.dispose()  # the restore replaces tables; no pooled connection may hold them
    report = restore_backup(result.file, database_url)
    assert report.ok
    assert current_values(engine, "portfolio_companies") == seeded.companies
    assert current_values(engine, "deal_opportunities") == seeded.deals


def test_restore_refuses_a_damaged_backup_and_leaves_the_target_alone(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    seed_legacy(engine, companies=10, deals=4)
    result = make_backup(engine, tmp_path)
    with engine.begin() as connection:
        connection.execute(update(portfolio_companies).values(stage="growth"))
    result.file.write_bytes(result.file.read_bytes()[:-10])
    with pytest.raises(IntegrityCheckError):
        restore_backup(result.file, database_url)
    assert set(current_values(engine, "portfolio_companies").values()) == {"growth"}


def guards(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return guard_states(connection, stage_columns(stage_metadata()))


def test_restore_brings_back_exactly_the_backed_up_guard_state(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Same on both backends: the guard is part of the backed-up schema state. A backup taken before
    `constrain-stages` restores its legacy rows and no guard (SQLite used to abort on its own guard
    triggers; PostgreSQL dropped the constraint without saying so); a later backup brings it back."""
    columns = stage_columns(stage_metadata())
    seeded = seed_legacy(engine, companies=30, deals=10)
    before_normalizing = make_backup(engine, tmp_path / "old")
    apply(engine, columns)
    add_stage_constraints(engine, columns)
    guarded_rows = current_values(engine, "portfolio_companies")
    guarded = make_backup(engine, tmp_path / "new")
    engine.dispose()

    report = restore_backup(before_normalizing.file, database_url)
    assert report.ok
    assert current_values(engine, "portfolio_companies") == seeded.companies
    assert set(guards(engine).values()) == {"absent"}
    assert report.guard_changes() == {
        "ck_portfolio_companies_stage_canonical": ("validated", "absent"),
        "ck_deal_opportunities_stage_canonical": ("validated", "absent"),
    }
    assert report.to_json()["stage_guard"]["after"] == guards(engine)
    with engine.begin() as connection:  # nothing guards the restored legacy state, as backed up
        connection.execute(update(portfolio_companies).values(stage="Series B"))
    engine.dispose()

    report = restore_backup(guarded.file, database_url)
    assert report.ok
    assert current_values(engine, "portfolio_companies") == guarded_rows
    assert set(guards(engine).values()) == {"validated"}
    assert set(report.guard_changes().values()) == {("absent", "validated")}
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(update(portfolio_companies).values(stage="Series B"))
