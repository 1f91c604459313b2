"""verify-backup and restore (``ops/restore.py``), on both backends: a scratch restore and its row
counts, damaged backups refused, round trips that bring back exactly the backed-up rows and guards."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import DBAPIError

from fundmodel.db.tables import portfolio_companies
from fundmodel.errors import IntegrityCheckError, OperationRefusedError
from fundmodel.ops.backup_gate import require_fresh_backup
from fundmodel.ops.constraints import add_stage_constraints, guard_states
from fundmodel.ops.restore import restore_backup, verify_backup
from fundmodel.ops.stage_columns import stage_columns, stage_metadata
from tests.ops.legacy_data import current_values, seed_legacy
from tests.ops.test_backup import STAGE_TABLES, make_backup, scratch_server
from tests.ops.test_normalize import apply


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
