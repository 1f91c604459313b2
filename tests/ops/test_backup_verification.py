"""The verification record (``ops/backup_verification.py``): bound to the bytes restored, the format on
disk unchanged, and anything that is not such a record refused with how to make one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fundmodel.errors import IntegrityCheckError
from fundmodel.ops.backup_manifest import BackupManifest, DatabaseIdentity, ManifestTable
from fundmodel.ops.backup_verification import (
    VERIFICATION_FORMAT,
    VerificationRecord,
    check_checksum,
    check_verified,
    discard_verification_record,
    sha256_of,
    verification_path_for,
    write_verification_record,
)


def backup_with_manifest(tmp_path: Path, content: bytes = b"backed-up bytes") -> tuple[Path, BackupManifest]:
    backup_file = tmp_path / "fundmodel-x.sqlite3"
    backup_file.write_bytes(content)
    manifest = BackupManifest(
        kind="sqlite-database",
        file=backup_file.name,
        size_bytes=len(content),
        sha256=sha256_of(backup_file),
        created_at="2026-12-03T10:00:00+00:00",
        database=DatabaseIdentity("sqlite", path="/srv/fundmodel.sqlite3"),
        tables=(ManifestTable("funds", 1), ManifestTable("portfolio_companies", 40)),
        tool_versions={},
    )
    return backup_file, manifest


def test_a_written_record_has_the_format_on_disk_and_reads_back(tmp_path: Path) -> None:
    backup_file, manifest = backup_with_manifest(tmp_path)
    path = write_verification_record(
        backup_file, manifest, restored_rows={"portfolio_companies": 40, "funds": 1}, method="copy"
    )
    document = json.loads(path.read_text())
    assert document["format"] == VERIFICATION_FORMAT
    assert document["tables"] == [{"name": "funds", "rows": 1}, {"name": "portfolio_companies", "rows": 40}]
    assert {"fundmodel", "python", "sqlalchemy"} <= document["tool_versions"].keys()
    record = check_verified(backup_file, manifest)
    assert record == VerificationRecord.from_json(document)
    assert record.to_json() == document
    assert record.total_rows == 41


def test_a_file_never_verified_names_the_command_that_verifies_it(tmp_path: Path) -> None:
    backup_file, manifest = backup_with_manifest(tmp_path)
    with pytest.raises(IntegrityCheckError, match=r"never verified \(run `fundmodel db verify-backup "):
        check_verified(backup_file, manifest)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something-else/1"}, "is not a fundmodel-backup-verification/1 record"),
        ({"verified_at": None}, "is incomplete"),
        ({"tables": [{"name": "funds"}]}, "is incomplete"),
        ({"sha256": "0" * 64}, "is not the file verify-backup restored"),
        ({"tables": [{"name": "funds", "rows": 1}]}, "row counts differ from the verified restore"),
    ],
)
def test_a_record_that_does_not_vouch_for_this_file_is_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    backup_file, manifest = backup_with_manifest(tmp_path)
    path = write_verification_record(
        backup_file, manifest, restored_rows={"funds": 1, "portfolio_companies": 40}, method="copy"
    )
    # None stands for a key the record lacks.
    document = {k: v for k, v in {**json.loads(path.read_text()), **change}.items() if v is not None}
    path.write_text(json.dumps(document))
    with pytest.raises(IntegrityCheckError, match=message):
        check_verified(backup_file, manifest)


def test_a_record_that_is_not_json_is_refused(tmp_path: Path) -> None:
    backup_file, manifest = backup_with_manifest(tmp_path)
    verification_path_for(backup_file).write_text("{not json")
    with pytest.raises(IntegrityCheckError, match="is not valid JSON"):
        check_verified(backup_file, manifest)


def test_discarding_leaves_no_record_and_tolerates_none(tmp_path: Path) -> None:
    backup_file, manifest = backup_with_manifest(tmp_path)
    write_verification_record(backup_file, manifest, restored_rows={"funds": 1}, method="copy")
    discard_verification_record(backup_file)
    assert not verification_path_for(backup_file).exists()
    discard_verification_record(backup_file)


@pytest.mark.parametrize(
    ("damage", "message"),
    [(lambda data: data[:-1], "truncated or replaced"), (lambda data: data.upper(), "SHA-256 checksum")],
    ids=["truncated", "corrupt"],
)
def test_the_checksum_catches_a_truncated_or_corrupt_file(tmp_path: Path, damage: Any, message: str) -> None:
    backup_file, manifest = backup_with_manifest(tmp_path)
    check_checksum(backup_file, manifest)
    backup_file.write_bytes(damage(backup_file.read_bytes()))
    with pytest.raises(IntegrityCheckError, match=message):
        check_checksum(backup_file, manifest)
