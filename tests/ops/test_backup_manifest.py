"""The typed backup manifest reads the documents already on disk and writes the same format back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from fundmodel.errors import IntegrityCheckError
from fundmodel.ops.backup_manifest import (
    BackupManifest,
    DatabaseIdentity,
    ManifestTable,
    load_manifest,
    manifest_path_for,
    parse_created_at,
)

# A manifest as `fundmodel db backup` wrote it before the model existed (PostgreSQL, then SQLite
# without dbstat: a table size of null).
WRITTEN_BEFORE: dict[str, Any] = {
    "created_at": "2026-12-02T09:15:00.123456+00:00",
    "database": {
        "database": "fundmodel",
        "dialect": "postgresql",
        "host": "127.0.0.1",
        "port": 5432,
        "user": "postgres",
    },
    "file": "fundmodel-fundmodel-20261202T091500Z.dump",
    "format": "fundmodel-backup/1",
    "kind": "postgresql-custom",
    "sha256": "ab" * 32,
    "size_bytes": 48213,
    "tables": [
        {"name": "funds", "rows": 1, "size_bytes": 32768},
        {"name": "portfolio_companies", "rows": 40, "size_bytes": None},
    ],
    "tool_versions": {"fundmodel": "0.9.0", "pg_dump": "15.8", "python": "3.11.9"},
}


def written(tmp_path: Path, document: object) -> Path:
    backup_file = tmp_path / "some.dump"
    backup_file.write_bytes(b"dump")
    manifest_path_for(backup_file).write_text(json.dumps(document))
    return backup_file


def test_a_manifest_written_before_the_model_loads_and_round_trips(tmp_path: Path) -> None:
    manifest = load_manifest(written(tmp_path, WRITTEN_BEFORE))
    assert manifest.tables == (
        ManifestTable("funds", 1, 32768),
        ManifestTable("portfolio_companies", 40, None),
    )
    assert manifest.table_names == ["funds", "portfolio_companies"]
    assert manifest.size_bytes == 48213
    assert parse_created_at(manifest) == datetime(2026, 12, 2, 9, 15, 0, 123456, tzinfo=UTC)
    assert manifest.to_json() == WRITTEN_BEFORE


def test_a_naive_creation_time_is_taken_as_utc(tmp_path: Path) -> None:
    manifest = load_manifest(written(tmp_path, {**WRITTEN_BEFORE, "created_at": "2026-12-02T09:15:00"}))
    assert parse_created_at(manifest) == datetime(2026, 12, 2, 9, 15, tzinfo=UTC)


def test_an_unparsable_creation_time_is_named_where_it_is_used(tmp_path: Path) -> None:
    manifest = load_manifest(written(tmp_path, {**WRITTEN_BEFORE, "created_at": "yesterday"}))
    with pytest.raises(IntegrityCheckError, match="manifest has no valid created_at"):
        parse_created_at(manifest)


@pytest.mark.parametrize(
    "document",
    [
        [],
        {**WRITTEN_BEFORE, "format": "fundmodel-backup/2"},
        {key: value for key, value in WRITTEN_BEFORE.items() if key != "format"},
    ],
)
def test_a_document_of_another_format_is_refused(tmp_path: Path, document: object) -> None:
    with pytest.raises(IntegrityCheckError, match=r"is not a fundmodel-backup/1 manifest"):
        load_manifest(written(tmp_path, document))


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": None},
        {"size_bytes": "48213"},
        {"size_bytes": True},
        {"tables": [{"name": "funds"}]},
        {"tables": [{"name": "funds", "rows": 1.5}]},
        {"tables": None},
        {"database": "postgresql://somewhere"},
    ],
)
def test_a_malformed_manifest_is_an_integrity_error_naming_the_file(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    # None stands for a key the document lacks.
    document = {key: value for key, value in {**WRITTEN_BEFORE, **change}.items() if value is not None}
    with pytest.raises(IntegrityCheckError, match=r"^manifest some\.dump\.manifest\.json is incomplete"):
        load_manifest(written(tmp_path, document))


def test_a_new_manifest_has_the_keys_of_the_format() -> None:
    manifest = BackupManifest.from_json(WRITTEN_BEFORE, source="inline")
    assert sorted(manifest.to_json()) == sorted(WRITTEN_BEFORE)


@pytest.mark.parametrize(
    ("url", "document"),
    [
        (
            "postgresql+psycopg://ops:secret@db.internal:6543/fundmodel",
            {
                "dialect": "postgresql",
                "host": "db.internal",
                "port": 6543,
                "database": "fundmodel",
                "user": "ops",
            },
        ),
        (
            "postgresql+psycopg:///fundmodel",
            {
                "dialect": "postgresql",
                "host": "localhost",
                "port": 5432,
                "database": "fundmodel",
                "user": None,
            },
        ),
    ],
)
def test_a_postgresql_identity_has_the_keys_manifests_always_had_and_no_password(
    url: str, document: dict[str, Any]
) -> None:
    identity = DatabaseIdentity.of(make_url(url))
    assert identity.to_json() == document
    assert DatabaseIdentity.from_json(document) == identity
    assert "secret" not in json.dumps(identity.to_json())


def test_a_sqlite_identity_is_the_absolute_path_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    identity = DatabaseIdentity.of(make_url("sqlite:///var/fundmodel.sqlite3"))
    assert identity.to_json() == {"dialect": "sqlite", "path": str(tmp_path / "var" / "fundmodel.sqlite3")}
    assert identity.label == "fundmodel"


def test_the_same_database_is_the_same_server_port_and_name_whoever_connects() -> None:
    ours = DatabaseIdentity.of(make_url("postgresql+psycopg://ops@db:5432/fundmodel"))
    assert ours.is_same_database(DatabaseIdentity.of(make_url("postgresql+psycopg://backup@db/fundmodel")))
    assert not ours.is_same_database(DatabaseIdentity.of(make_url("postgresql+psycopg://ops@db/other")))
    assert not ours.is_same_database(
        DatabaseIdentity.of(make_url("postgresql+psycopg://ops@db:5433/fundmodel"))
    )
    assert not ours.is_same_database(DatabaseIdentity("sqlite", path="/srv/fundmodel.sqlite3"))
    manifest = BackupManifest.from_json(WRITTEN_BEFORE, source="inline")
    assert manifest.is_of(make_url("postgresql+psycopg://someone@127.0.0.1:5432/fundmodel"))
    assert not manifest.is_of(make_url("sqlite:////srv/fundmodel.sqlite3"))


@pytest.mark.parametrize(
    "database",
    [
        {"host": "x"},
        {"dialect": "postgresql", "port": "5432"},
        {"dialect": "sqlite", "path": 7},
    ],
)
def test_a_malformed_database_identity_is_a_malformed_manifest(tmp_path: Path, database: object) -> None:
    with pytest.raises(IntegrityCheckError, match=r"is incomplete or malformed"):
        load_manifest(written(tmp_path, {**WRITTEN_BEFORE, "database": database}))
