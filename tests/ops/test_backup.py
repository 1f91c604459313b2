"""Writing a backup (``ops/backup.py``), on both backends; the helpers the gate and restore tests share."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from fundmodel.ops.backup import BackupResult, backup_tables, create_backup
from fundmodel.ops.backup_verification import sha256_of
from fundmodel.ops.restore import verify_backup
from fundmodel.ops.stage_columns import stage_metadata
from tests.ops.legacy_data import seed_legacy

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
