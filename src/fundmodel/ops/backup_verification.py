"""Is a backup file intact, and was it restored? Its checksum against the manifest, and the verification
record ``verify-backup`` writes next to it (``<backup>.verified.json``, format
``fundmodel-backup-verification/1``) after a successful restore into a scratch database.

A manifest only describes a file; whoever can rewrite the file can rewrite its manifest too. The record
is bound to the SHA-256 of exactly the bytes that were restored, so a file (or manifest) replaced
afterwards has no record that matches it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fundmodel.errors import IntegrityCheckError
from fundmodel.ops.backup_manifest import BackupManifest, software_versions
from fundmodel.ops.durable_files import write_atomically

VERIFICATION_FORMAT = "fundmodel-backup-verification/1"
VERIFICATION_SUFFIX = ".verified.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class VerificationRecord:
    """What ``verify-backup`` proved about one backup file: it restored, with these row counts."""

    file: str
    sha256: str
    size_bytes: int
    backup_created_at: str
    verified_at: str
    method: str
    restored_rows: Mapping[str, int]
    tool_versions: Mapping[str, str]

    @property
    def total_rows(self) -> int:
        return sum(self.restored_rows.values())

    def to_json(self) -> dict[str, Any]:
        """The document on disk."""
        return {
            "format": VERIFICATION_FORMAT,
            "file": self.file,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "backup_created_at": self.backup_created_at,
            "verified_at": self.verified_at,
            "method": self.method,
            "tables": [{"name": name, "rows": rows} for name, rows in sorted(self.restored_rows.items())],
            "tool_versions": dict(self.tool_versions),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> VerificationRecord:
        """Read a record (KeyError, TypeError or ValueError when a field is missing or malformed)."""
        return cls(
            file=str(document["file"]),
            sha256=str(document["sha256"]),
            size_bytes=int(document["size_bytes"]),
            backup_created_at=str(document["backup_created_at"]),
            verified_at=str(document["verified_at"]),
            method=str(document["method"]),
            restored_rows={str(table["name"]): int(table["rows"]) for table in document["tables"]},
            tool_versions={str(k): str(v) for k, v in dict(document.get("tool_versions", {})).items()},
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_checksum(backup_file: Path, manifest: BackupManifest) -> None:
    """Size, then SHA-256, against the manifest: catches truncation and corruption."""
    size = backup_file.stat().st_size
    if size != manifest.size_bytes:
        raise IntegrityCheckError(
            f"backup {backup_file.name} is {size} bytes, manifest says {manifest.size_bytes} "
            "(truncated or replaced)"
        )
    if sha256_of(backup_file) != manifest.sha256:
        raise IntegrityCheckError(f"backup {backup_file.name} fails its SHA-256 checksum (corrupt)")


def verification_path_for(backup_file: Path) -> Path:
    return backup_file.with_name(backup_file.name + VERIFICATION_SUFFIX)


def write_verification_record(
    backup_file: Path, manifest: BackupManifest, *, restored_rows: dict[str, int], method: str
) -> Path:
    """Record that ``verify-backup`` restored this very file (by SHA-256) with the manifest's counts.

    Only the caller's successful verification may call this; the file's checksum was checked against
    the manifest moments before, and the manifest's hash is what the record keeps.
    """
    record = VerificationRecord(
        file=backup_file.name,
        sha256=manifest.sha256,
        size_bytes=manifest.size_bytes,
        backup_created_at=manifest.created_at,
        verified_at=datetime.now(UTC).isoformat(),
        method=method,
        restored_rows=restored_rows,
        tool_versions=software_versions(),
    )
    path = verification_path_for(backup_file)
    write_atomically(path, json.dumps(record.to_json(), indent=2, sort_keys=True).encode())
    return path


def discard_verification_record(backup_file: Path) -> None:
    """A verification that failed (or could not finish) leaves no earlier success behind."""
    with contextlib.suppress(FileNotFoundError):
        verification_path_for(backup_file).unlink()


def check_verified(backup_file: Path, manifest: BackupManifest) -> VerificationRecord:
    """The verification record of exactly this file; IntegrityCheckError when there is none.

    Call after :func:`check_checksum`: the file then hashes to the manifest's SHA-256, and the record
    must name that same hash, so a file (or manifest) replaced after verification does not pass.
    """
    path = verification_path_for(backup_file)
    how = f"run `fundmodel db verify-backup {backup_file}`"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntegrityCheckError(f"{backup_file.name} was never verified ({how})") from None
    except ValueError:
        raise IntegrityCheckError(f"verification record {path.name} is not valid JSON ({how})") from None
    if not isinstance(document, dict) or document.get("format") != VERIFICATION_FORMAT:
        raise IntegrityCheckError(f"{path.name} is not a {VERIFICATION_FORMAT} record ({how})")
    try:
        record = VerificationRecord.from_json(document)
    except (KeyError, TypeError, ValueError):
        raise IntegrityCheckError(f"verification record {path.name} is incomplete ({how})") from None
    if record.sha256 != manifest.sha256 or record.size_bytes != manifest.size_bytes:
        raise IntegrityCheckError(
            f"{backup_file.name} is not the file verify-backup restored (its SHA-256 changed since; {how})"
        )
    if dict(record.restored_rows) != {table.name: table.rows for table in manifest.tables}:
        raise IntegrityCheckError(
            f"{backup_file.name}: the manifest's row counts differ from the verified restore ({how})"
        )
    return record
