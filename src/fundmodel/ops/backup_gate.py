"""The backups in a directory: which of them are this database's, retention, and the gate that wants a
fresh, verified one (``normalize-stages --apply`` and the rollout's ``backup_fresh``).

The gate trusts neither a file's modification time nor its manifest alone: freshness comes from the
manifest's ``created_at``, integrity from the checksum against the manifest, and proof that the file
restores from the verification record (:mod:`fundmodel.ops.backup_verification`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import URL

from fundmodel.errors import IntegrityCheckError, OperationRefusedError
from fundmodel.ops.backup_manifest import (
    MANIFEST_SUFFIX,
    BackupManifest,
    load_manifest,
    manifest_path_for,
    parse_created_at,
)
from fundmodel.ops.backup_verification import (
    VerificationRecord,
    check_checksum,
    check_verified,
    discard_verification_record,
)

DEFAULT_MAX_AGE_HOURS = 24.0
GATE_REFUSAL_PREFIX = "--apply needs a fresh, verified backup: "
# Clocks of two hosts may disagree a little; a backup further in the future than this is suspect.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)
# How many reasons a refusal names (the newest backups first).
LISTED_REASONS = 3


@dataclass(frozen=True)
class VerifiedBackup:
    """A backup the gate accepted: fresh, intact, and restored by ``verify-backup`` as it is now."""

    file: Path
    manifest: BackupManifest
    verification: VerificationRecord

    @property
    def created_at(self) -> datetime:
        return parse_created_at(self.manifest)

    def describe(self, now: datetime) -> str:
        """What the gate checked, for the operator."""
        hours = (now - self.created_at).total_seconds() / 3600
        return (
            f"{self.file.name}: of this database, covers the stage tables, created "
            f"{self.manifest.created_at} ({hours:.1f} h old), size and SHA-256 match the manifest, and "
            f"verify-backup restored exactly these bytes at {self.verification.verified_at} "
            f"({self.verification.total_rows} rows, counts as in the manifest)"
        )


def backups_in(directory: Path) -> list[tuple[Path, BackupManifest]]:
    """Every backup in ``directory`` with a readable manifest, newest first (by the manifest's time)."""
    found: list[tuple[Path, BackupManifest]] = []
    if not directory.is_dir():
        return found
    for manifest_file in directory.glob(f"*{MANIFEST_SUFFIX}"):
        backup_file = manifest_file.with_name(manifest_file.name[: -len(MANIFEST_SUFFIX)])
        try:
            manifest = load_manifest(backup_file)
            parse_created_at(manifest)
        except IntegrityCheckError:
            continue
        found.append((backup_file, manifest))
    found.sort(key=lambda item: parse_created_at(item[1]), reverse=True)
    return found


def prune_backups(directory: Path, url: URL, *, retain: int) -> tuple[Path, ...]:
    """Delete this database's backups beyond the ``retain`` newest (manifest and verification record
    first, then the file)."""
    ours = [item for item in backups_in(directory) if item[1].is_of(url)]
    pruned = []
    for backup_file, _manifest in ours[retain:]:
        with contextlib.suppress(FileNotFoundError):
            manifest_path_for(backup_file).unlink()
        discard_verification_record(backup_file)
        with contextlib.suppress(FileNotFoundError):
            backup_file.unlink()
        pruned.append(backup_file)
    return tuple(pruned)


def require_fresh_backup(
    url: URL,
    table_names: Iterable[str],
    *,
    backup_dir: Path,
    max_age: timedelta,
    explicit_file: Path | None = None,
    now: datetime | None = None,
) -> VerifiedBackup:
    """The newest backup of this database that covers the tables, is young enough and restores.

    Freshness comes from the manifest's ``created_at`` (touching an old file does not make it fresh);
    the file must match its manifest's size and SHA-256 and carry the verification record of a
    successful ``verify-backup`` of those very bytes (a truncated file with a rewritten manifest was
    never restored, so it has none). A backup that fails any of that is passed over for the next one.
    """
    now = now or datetime.now(UTC)
    needed = set(table_names)
    candidates = (
        [(explicit_file, load_manifest(explicit_file))]
        if explicit_file is not None
        else backups_in(backup_dir)
    )
    reasons: list[str] = []
    for backup_file, manifest in candidates:
        covered = set(manifest.table_names)
        if not manifest.is_of(url):
            reasons.append(f"{backup_file.name} is of another database")
            continue
        if not needed <= covered:
            reasons.append(f"{backup_file.name} lacks tables {sorted(needed - covered)}")
            continue
        age = now - parse_created_at(manifest)
        if age > max_age or age < -CLOCK_SKEW_ALLOWANCE:
            hours = age.total_seconds() / 3600
            reasons.append(
                f"newest backup {backup_file.name} is {hours:.1f} h old "
                f"(limit {max_age.total_seconds() / 3600:g} h)"
            )
            break  # candidates are newest first: older ones are staler still
        try:
            check_checksum(backup_file, manifest)
            verification = check_verified(backup_file, manifest)
        except IntegrityCheckError as exc:
            reasons.append(exc.detail)
            continue
        return VerifiedBackup(backup_file, manifest, verification)
    where = str(explicit_file) if explicit_file else str(backup_dir)
    summary = "; ".join(reasons[:LISTED_REASONS]) if reasons else f"no backup found in {where}"
    raise OperationRefusedError(
        f"{GATE_REFUSAL_PREFIX}{summary}; run `fundmodel db backup`, then `fundmodel db verify-backup FILE`"
    )
