"""The ``fundmodel db`` data-operation commands end to end: exit codes, --json, one-line errors."""

from __future__ import annotations

import json
import os
import pwd
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from fundmodel.cli.db_ops import register_db_ops
from fundmodel.ops.backup import sha256_of
from fundmodel.ops.stage_columns import StageColumn, stage_columns, stage_metadata
from tests.ops.conftest import (  # noqa: F401  (fixtures)
    database_url,
    engine,
    postgres_template,
    postgres_up,
    sqlite_template,
)
from tests.ops.legacy_data import CANONICAL, current_values, seed_legacy


@pytest.fixture
def columns() -> list[StageColumn]:
    return stage_columns(stage_metadata())


@pytest.fixture
def cli(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]  # noqa: F811
    db = typer.Typer()
    register_db_ops(db)
    runner = CliRunner()
    backups = tmp_path / "backups"

    def invoke(*args: str, url: bool = True, backup_dir: bool = True):  # type: ignore[no-untyped-def]
        extra: list[str] = []
        if url:
            extra += ["--database-url", database_url]
        if backup_dir:
            extra += ["--backup-dir", str(backups)]
        return runner.invoke(db, [*args, *extra])

    return invoke


def verified_backup(cli) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """`db backup`, then `db verify-backup` of the new file: what the apply gate wants."""
    backup = cli("backup", "--json")
    assert backup.exit_code == 0, backup.output
    document: dict[str, Any] = json.loads(backup.stdout)
    verified = cli("verify-backup", document["file"], backup_dir=False)
    assert verified.exit_code == 0, verified.output
    return document


def one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_dry_run_is_the_default_and_changes_nothing(cli, engine: Engine) -> None:  # noqa: F811
    seeded = seed_legacy(engine, companies=30, deals=10, unknown=1)
    result = cli("normalize-stages", "--json", backup_dir=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["mode"] == "dry-run"
    assert document["plan"]["rows_to_change"] > 0
    assert document["plan"]["unknown_rows"] == 1
    assert current_values(engine, "portfolio_companies") == seeded.companies
    text_result = cli("normalize-stages", backup_dir=False)
    assert text_result.exit_code == 0
    assert "dry run" in text_result.output


def test_apply_without_a_backup_is_refused(cli, engine: Engine) -> None:  # noqa: F811
    seeded = seed_legacy(engine, companies=20, deals=5)
    result = cli("normalize-stages", "--apply")
    assert result.exit_code == 1
    assert "fundmodel db backup" in one_line_error(result.output)
    assert current_values(engine, "portfolio_companies") == seeded.companies


def test_backup_apply_verify_and_idempotence(cli, engine: Engine) -> None:  # noqa: F811
    seed_legacy(engine, companies=60, deals=20)
    assert cli("verify", backup_dir=False).exit_code == 1
    backup = cli("backup", "--json")
    assert backup.exit_code == 0, backup.output
    backup_file = json.loads(backup.stdout)["file"]
    verified = cli("verify-backup", backup_file, "--json", backup_dir=False)
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["ok"] is True
    assert json.loads(verified.stdout)["verification_record"] == backup_file + ".verified.json"
    applied = cli("normalize-stages", "--apply", "--json", "--batch-size", "9")
    assert applied.exit_code == 0, applied.output
    run = json.loads(applied.stdout)["result"]
    assert run["status"] == "completed"
    assert run["rows_changed"] > 0
    report = cli("verify", "--json", backup_dir=False)
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["ok"] is True
    again = cli("normalize-stages", "--apply", "--json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["rows_changed"] == 0
    constrained = cli("constrain-stages", "--json", backup_dir=False)
    assert constrained.exit_code == 0, constrained.output
    assert len(json.loads(constrained.stdout)["added"]) == 2
    refused = cli("normalize-stages", "--rollback", run["run_id"], "--confirm", "CONFIRM")
    assert refused.exit_code == 1
    assert "constrain-stages --drop" in one_line_error(refused.output)
    assert cli("constrain-stages", "--drop", backup_dir=False).exit_code == 0
    rolled_back = cli("normalize-stages", "--rollback", run["run_id"], "--confirm", "CONFIRM", "--json")
    assert rolled_back.exit_code == 0, rolled_back.output
    assert json.loads(rolled_back.stdout)["result"]["rows_changed"] == run["rows_changed"]


def test_unknown_values_block_unless_forced_and_confirmed(cli, engine: Engine) -> None:  # noqa: F811
    seeded = seed_legacy(engine, companies=30, deals=5, unknown=2)
    verified_backup(cli)
    blocked = cli("normalize-stages", "--apply")
    assert blocked.exit_code == 1
    assert "unknown stage values block the run" in one_line_error(blocked.output)
    unconfirmed = cli("normalize-stages", "--apply", "--force-unknown")
    assert unconfirmed.exit_code == 1
    assert "--confirm CONFIRM" in one_line_error(unconfirmed.output)
    wrong = cli("normalize-stages", "--apply", "--force-unknown", "--confirm", "yes")
    assert wrong.exit_code == 1
    forced = cli("normalize-stages", "--apply", "--force-unknown", "--confirm", "CONFIRM", "--json")
    assert forced.exit_code == 0, forced.output
    final = current_values(engine, "portfolio_companies")
    unknown_ids = [i for i, v in seeded.companies.items() if v in {"mezzanine", ""}]
    assert unknown_ids
    assert all(final[i] == seeded.companies[i] for i in unknown_ids)
    body = json.loads(forced.stdout)["result"]
    assert body["rows_unknown_seen"] == 2
    listed = {int(i) for u in body["unknown_left"] for i in u["row_ids"]}
    assert listed == set(unknown_ids)


def test_usage_errors_exit_2(cli) -> None:
    both = cli("normalize-stages", "--apply", "--resume")
    assert both.exit_code == 2
    one_line_error(both.output)
    assert cli("normalize-stages", "--batch-size", "0").exit_code == 2
    invalid = CliRunner().invoke(_app(), ["verify", "--database-url", "mysql://nope/x"])
    assert invalid.exit_code == 2
    one_line_error(invalid.output)


def _app() -> typer.Typer:
    db = typer.Typer()
    register_db_ops(db)
    return db


def test_resume_without_an_interrupted_run_is_refused(cli, engine: Engine) -> None:  # noqa: F811
    seed_legacy(engine, companies=3, deals=1)
    result = cli("normalize-stages", "--resume", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout.splitlines()[0])["ok"] is False


def test_apply_resumes_an_interrupted_run(cli, engine: Engine) -> None:  # noqa: F811
    seed_legacy(engine, companies=40, deals=10)
    verified_backup(cli)
    assert cli("normalize-stages", "--apply", "--batch-size", "5").exit_code == 0
    with engine.begin() as connection:  # pretend the run died after its first batches
        run_id = connection.execute(text("SELECT id FROM stage_normalization_runs")).scalar_one()
        connection.execute(text("UPDATE stage_normalization_runs SET status = 'running'"))
    resumed = cli("normalize-stages", "--apply", "--json")
    assert resumed.exit_code == 0, resumed.output
    body = json.loads(resumed.stdout)["result"]
    assert body["run_id"] == run_id
    assert body["resumed"] is True


def test_restore_needs_confirmation_and_an_explicit_target(
    cli,
    engine: Engine,  # noqa: F811
    database_url: str,  # noqa: F811
) -> None:
    seeded = seed_legacy(engine, companies=12, deals=3)
    backup_file = json.loads(cli("backup", "--json").stdout)["file"]
    with engine.begin() as connection:
        connection.execute(text("UPDATE portfolio_companies SET stage = 'growth'"))
    engine.dispose()
    missing_target = cli("restore", backup_file, url=False, backup_dir=False)
    assert missing_target.exit_code == 2
    unconfirmed = CliRunner().invoke(_app(), ["restore", backup_file, "--target", database_url])
    assert unconfirmed.exit_code == 1
    assert "--confirm CONFIRM" in one_line_error(unconfirmed.output)
    restored = CliRunner().invoke(
        _app(), ["restore", backup_file, "--target", database_url, "--confirm", "CONFIRM", "--json"]
    )
    assert restored.exit_code == 0, restored.output
    assert current_values(engine, "portfolio_companies") == seeded.companies


def test_verify_backup_detects_damage(cli, engine: Engine) -> None:  # noqa: F811
    seed_legacy(engine, companies=12, deals=3)
    backup_file = Path(json.loads(cli("backup", "--json").stdout)["file"])
    backup_file.write_bytes(backup_file.read_bytes()[:-100])
    result = cli("verify-backup", str(backup_file), backup_dir=False)
    assert result.exit_code == 1
    assert "truncated" in one_line_error(result.output)


def _interrupt_a_rollback(engine: Engine, columns: list[StageColumn], target_run_id: str) -> str:  # noqa: F811
    from tests.ops.test_normalize import interrupted_rollback

    return interrupted_rollback(engine, columns, target_run_id)


def test_apply_never_resumes_an_interrupted_rollback(cli, engine: Engine, columns: list[StageColumn]) -> None:  # noqa: F811
    seeded = seed_legacy(engine, companies=40, deals=10)
    verified_backup(cli)
    applied = cli("normalize-stages", "--apply", "--json")
    assert applied.exit_code == 0, applied.output
    run_id = json.loads(applied.stdout)["result"]["run_id"]
    rollback_id = _interrupt_a_rollback(engine, columns, run_id)
    halfway = current_values(engine, "portfolio_companies")
    assert halfway != seeded.companies  # partly rolled back
    for flag in ("--apply", "--resume"):
        refused = cli("normalize-stages", flag)
        assert refused.exit_code == 1, refused.output
        message = one_line_error(refused.output)
        assert f"rollback run {rollback_id} of run {run_id} is unfinished" in message
        assert f"--rollback {run_id}" in message
        assert current_values(engine, "portfolio_companies") == halfway
    other = cli("normalize-stages", "--rollback", "nope", "--confirm", "CONFIRM")
    assert other.exit_code == 1
    assert f"--rollback {run_id}" in one_line_error(other.output)
    resumed = cli("normalize-stages", "--rollback", run_id, "--confirm", "CONFIRM", "--json")
    assert resumed.exit_code == 0, resumed.output
    body = json.loads(resumed.stdout)["result"]
    assert (body["run_id"], body["kind"], body["resumed"]) == (rollback_id, "rollback", True)
    assert current_values(engine, "portfolio_companies") == seeded.companies
    with engine.connect() as connection:
        statuses = dict(connection.execute(text("SELECT id, status FROM stage_normalization_runs")).all())
    assert statuses == {run_id: "rolled_back", rollback_id: "completed"}


def test_resume_rechecks_the_backup_gate(cli, engine: Engine) -> None:  # noqa: F811
    seed_legacy(engine, companies=40, deals=10)
    backup = verified_backup(cli)
    assert cli("normalize-stages", "--apply", "--batch-size", "5").exit_code == 0
    with engine.begin() as connection:  # pretend the run died after its first batches
        connection.execute(text("UPDATE stage_normalization_runs SET status = 'failed'"))
    manifest_file = Path(backup["manifest_file"])
    manifest = json.loads(manifest_file.read_text())
    manifest["created_at"] = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    manifest_file.write_text(json.dumps(manifest))
    for flag in ("--resume", "--apply"):
        stale = cli("normalize-stages", flag)
        assert stale.exit_code == 1, stale.output
        assert "fresh, verified backup" in one_line_error(stale.output)
    verified_backup(cli)
    resumed = cli("normalize-stages", "--resume", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["result"]["resumed"] is True


def test_constrain_refusal_lists_the_offending_rows_in_text_mode(cli, engine: Engine) -> None:  # noqa: F811
    seeded = seed_legacy(engine, companies=80, deals=20, legacy_share=0.5)
    refused = cli("constrain-stages", backup_dir=False)
    assert refused.exit_code == 1
    assert "non-canonical stages remain" in one_line_error(refused.output)
    legacy = sorted(
        [("portfolio_companies", i, v) for i, v in seeded.companies.items() if v not in CANONICAL]
        + [("deal_opportunities", i, v) for i, v in seeded.deals.items() if v not in CANONICAL]
    )
    listed = [line.strip() for line in refused.output.splitlines() if " id " in line]
    assert len(listed) == 20
    expected = [f"{t} id {i}: {v!r}" for t, i, v in legacy if t == "portfolio_companies"][:20]
    assert listed == expected
    assert f"... and {len(legacy) - 20} more rows" in refused.output
    as_json = cli("constrain-stages", "--json", backup_dir=False)
    offending = json.loads(as_json.stdout)["error"]["offending"]
    assert sum(group["rows"] for group in offending) == len(legacy)


def test_restore_says_when_it_removes_the_stage_guard(
    cli,
    engine: Engine,  # noqa: F811
    database_url: str,  # noqa: F811
) -> None:
    seed_legacy(engine, companies=12, deals=3)
    backup_file = verified_backup(cli)["file"]
    assert cli("normalize-stages", "--apply").exit_code == 0
    assert cli("constrain-stages", backup_dir=False).exit_code == 0
    engine.dispose()
    restored = CliRunner().invoke(
        _app(), ["restore", backup_file, "--target", database_url, "--confirm", "CONFIRM"]
    )
    assert restored.exit_code == 0, restored.output
    assert "stage guard ck_portfolio_companies_stage_canonical: validated -> absent" in restored.output
    assert "predates `fundmodel db constrain-stages`" in restored.output
    report = cli("verify", "--json", backup_dir=False)
    checks = {c["name"]: c["status"] for c in json.loads(report.stdout)["checks"]}
    assert checks["stage_guard_present"] == "warn"
    assert checks["portfolio_companies.stage_canonical"] == "fail"


def test_apply_needs_a_verified_backup_and_says_what_it_checked(cli, engine: Engine) -> None:  # noqa: F811
    seed_legacy(engine, companies=20, deals=5)
    backup = json.loads(cli("backup", "--json").stdout)
    unverified = cli("normalize-stages", "--apply")
    assert unverified.exit_code == 1
    message = one_line_error(unverified.output)
    assert "was never verified" in message
    assert f"fundmodel db verify-backup {backup['file']}" in message
    verified = cli("verify-backup", backup["file"], backup_dir=False)
    assert verified.exit_code == 0, verified.output
    assert "verification recorded in " in verified.output
    applied = cli("normalize-stages", "--apply")
    assert applied.exit_code == 0, applied.output
    [gate] = [line for line in applied.output.splitlines() if line.startswith("backup gate passed:")]
    for checked in ("of this database", "h old", "size and SHA-256 match", "verify-backup restored"):
        assert checked in gate, gate


def test_apply_refuses_a_truncated_backup_with_a_forged_manifest(cli, engine: Engine) -> None:  # noqa: F811
    seeded = seed_legacy(engine, companies=30, deals=10)
    backup = verified_backup(cli)
    backup_file, manifest_file = Path(backup["file"]), Path(backup["manifest_file"])
    backup_file.write_bytes(backup_file.read_bytes()[: backup_file.stat().st_size // 2])
    manifest = json.loads(manifest_file.read_text())
    manifest.update(size_bytes=backup_file.stat().st_size, sha256=sha256_of(backup_file))
    manifest_file.write_text(json.dumps(manifest))
    refused = cli("normalize-stages", "--apply")
    assert refused.exit_code == 1
    assert "is not the file verify-backup restored" in one_line_error(refused.output)
    assert cli("verify-backup", str(backup_file), backup_dir=False).exit_code == 1
    still_refused = cli("normalize-stages", "--apply")
    assert still_refused.exit_code == 1
    assert "was never verified" in one_line_error(still_refused.output)
    assert current_values(engine, "portfolio_companies") == seeded.companies


def _run_actors(engine: Engine) -> list[str | None]:  # noqa: F811
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT actor FROM stage_normalization_runs ORDER BY started_at"))
        return [row[0] for row in rows]


def test_runs_record_the_actor_or_the_uid_user_never_null(
    cli,
    engine: Engine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Containers and cron leave $USER unset: the actor then comes from the uid, never NULL."""
    seed_legacy(engine, companies=30, deals=5, unknown=1)
    verified_backup(cli)
    for variable in ("USER", "LOGNAME", "USERNAME"):
        monkeypatch.delenv(variable, raising=False)
    forced = cli("normalize-stages", "--apply", "--force-unknown", "--confirm", "CONFIRM", "--json")
    assert forced.exit_code == 0, forced.output
    run_id = json.loads(forced.stdout)["result"]["run_id"]
    rolled_back = cli("normalize-stages", "--rollback", run_id, "--confirm", "CONFIRM", "--actor", " carol ")
    assert rolled_back.exit_code == 0, rolled_back.output
    assert _run_actors(engine) == [pwd.getpwuid(os.getuid()).pw_name, "carol"]
