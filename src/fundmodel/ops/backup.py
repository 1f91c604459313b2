"""Backups of the stage tables: written atomically with a manifest, checked by the apply gate.

PostgreSQL: ``pg_dump`` in custom format with ``--strict-names`` for the exact tables, on a snapshot
exported from the transaction that also counts the rows, so the manifest's counts match the dump.
SQLite: the online backup API (a consistent copy of the whole database file).

A manifest only describes a file; whoever can rewrite the file can rewrite its manifest too. So the
gates (``normalize-stages --apply`` and the rollout's ``backup_fresh``) also want proof that the file
restores: the verification record ``verify-backup`` writes next to it after a successful restore into a
scratch database, bound to the SHA-256 of exactly the bytes it restored (:func:`require_fresh_backup`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, MetaData, Table, text
from sqlalchemy.engine import URL

import fundmodel
from fundmodel.errors import (
    ConfigurationError,
    ExternalToolError,
    IntegrityCheckError,
    OperationRefusedError,
)

# The manifest's names stay importable from here, where they have always been.
from fundmodel.ops.backup_manifest import MANIFEST_FORMAT as MANIFEST_FORMAT
from fundmodel.ops.backup_manifest import MANIFEST_SUFFIX as MANIFEST_SUFFIX
from fundmodel.ops.backup_manifest import BackupManifest as BackupManifest
from fundmodel.ops.backup_manifest import ManifestTable as ManifestTable
from fundmodel.ops.backup_manifest import load_manifest as load_manifest
from fundmodel.ops.backup_manifest import manifest_path_for as manifest_path_for
from fundmodel.ops.backup_manifest import parse_created_at as parse_created_at

VERIFICATION_FORMAT = "fundmodel-backup-verification/1"
VERIFICATION_SUFFIX = ".verified.json"
KIND_POSTGRESQL = "postgresql-custom"
KIND_SQLITE = "sqlite-database"
DEFAULT_MAX_AGE_HOURS = 24.0
GATE_REFUSAL_PREFIX = "--apply needs a fresh, verified backup: "
DEFAULT_RETAIN = 7
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BackupResult:
    file: Path
    manifest_file: Path
    manifest: BackupManifest
    pruned: tuple[Path, ...] = ()


@dataclass(frozen=True)
class VerifiedBackup:
    """A backup the gate accepted: fresh, intact, and restored by ``verify-backup`` as it is now."""

    file: Path
    manifest: BackupManifest
    verification: dict[str, Any]

    @property
    def created_at(self) -> datetime:
        return parse_created_at(self.manifest)

    def describe(self, now: datetime) -> str:
        """What the gate checked, for the operator."""
        hours = (now - self.created_at).total_seconds() / 3600
        rows = sum(int(table.get("rows", 0)) for table in self.verification.get("tables", []))
        return (
            f"{self.file.name}: of this database, covers the stage tables, created "
            f"{self.manifest.created_at} ({hours:.1f} h old), size and SHA-256 match the manifest, and "
            f"verify-backup restored exactly these bytes at {self.verification['verified_at']} "
            f"({rows} rows, counts as in the manifest)"
        )


# --- helpers shared by backup, verify and restore ------------------------------------------------


def database_identity(url: URL) -> dict[str, Any]:
    """What a manifest records about its source database (never the password)."""
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        path = str(Path(database).resolve()) if database and database != ":memory:" else database
        return {"dialect": "sqlite", "path": path}
    return {
        "dialect": "postgresql",
        "host": url.host or "localhost",
        "port": url.port or 5432,
        "database": url.database,
        "user": url.username,
    }


def same_database(manifest: BackupManifest, url: URL) -> bool:
    recorded = manifest.database
    current = database_identity(url)
    keys = ("dialect", "path") if current["dialect"] == "sqlite" else ("dialect", "host", "port", "database")
    return all(recorded.get(key) == current.get(key) for key in keys)


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
    record = {
        "format": VERIFICATION_FORMAT,
        "file": backup_file.name,
        "sha256": manifest.sha256,
        "size_bytes": manifest.size_bytes,
        "backup_created_at": manifest.created_at,
        "verified_at": datetime.now(UTC).isoformat(),
        "method": method,
        "tables": [{"name": name, "rows": rows} for name, rows in sorted(restored_rows.items())],
        "tool_versions": _base_tool_versions(),
    }
    path = verification_path_for(backup_file)
    _write_atomically(path, json.dumps(record, indent=2, sort_keys=True).encode())
    return path


def discard_verification_record(backup_file: Path) -> None:
    """A verification that failed (or could not finish) leaves no earlier success behind."""
    with contextlib.suppress(FileNotFoundError):
        verification_path_for(backup_file).unlink()


def check_verified(backup_file: Path, manifest: BackupManifest) -> dict[str, Any]:
    """The verification record of exactly this file; IntegrityCheckError when there is none.

    Call after :func:`check_checksum`: the file then hashes to the manifest's SHA-256, and the record
    must name that same hash, so a file (or manifest) replaced after verification does not pass.
    """
    path = verification_path_for(backup_file)
    how = f"run `fundmodel db verify-backup {backup_file}`"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntegrityCheckError(f"{backup_file.name} was never verified ({how})") from None
    except ValueError:
        raise IntegrityCheckError(f"verification record {path.name} is not valid JSON ({how})") from None
    if not isinstance(record, dict) or record.get("format") != VERIFICATION_FORMAT:
        raise IntegrityCheckError(f"{path.name} is not a {VERIFICATION_FORMAT} record ({how})")
    if record.get("sha256") != manifest.sha256 or record.get("size_bytes") != manifest.size_bytes:
        raise IntegrityCheckError(
            f"{backup_file.name} is not the file verify-backup restored (its SHA-256 changed since; {how})"
        )
    verified = {table.get("name"): table.get("rows") for table in record.get("tables", [])}
    expected = {table.name: table.rows for table in manifest.tables}
    if verified != expected:
        raise IntegrityCheckError(
            f"{backup_file.name}: the manifest's row counts differ from the verified restore ({how})"
        )
    return record


def backup_tables(metadata: MetaData, table_names: Iterable[str]) -> list[Table]:
    """The named tables plus every table they reference, so a restore can recreate constraints."""
    selected: dict[str, Table] = {}
    pending = [metadata.tables[name] for name in table_names]
    while pending:
        table = pending.pop()
        if table.name in selected:
            continue
        selected[table.name] = table
        pending.extend(fk.column.table for fk in table.foreign_keys)
    return [table for table in metadata.sorted_tables if table.name in selected]


def tool_path(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ExternalToolError(f"{name} not found on PATH (install the PostgreSQL client tools)")
    return path


def tool_version(name: str) -> str:
    completed = subprocess.run(  # noqa: S603  (fixed argument list, no shell)
        [tool_path(name), "--version"], capture_output=True, text=True, check=False
    )
    return completed.stdout.strip()


def libpq_environment(url: URL) -> dict[str, str]:
    """Connection settings for pg_dump/pg_restore; the password goes in the environment, not argv."""
    env = dict(os.environ)
    for key, value in (
        ("PGHOST", url.host),
        ("PGPORT", str(url.port) if url.port else None),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password if isinstance(url.password, str) else None),
        ("PGDATABASE", url.database),
    ):
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    return env


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(final: Path, data: bytes) -> None:
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, final)
    _fsync_directory(final.parent)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S%fZ")


def _base_tool_versions() -> dict[str, str]:
    return {
        "fundmodel": getattr(fundmodel, "__version__", "unknown"),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
    }


# --- backup --------------------------------------------------------------------------------------


def create_backup(
    engine: Engine,
    tables: Sequence[Table],
    output_dir: Path,
    *,
    retain: int = DEFAULT_RETAIN,
) -> BackupResult:
    """Write a backup and its manifest into ``output_dir``, then apply the retention setting."""
    if retain < 1:
        raise ConfigurationError("retention must keep at least one backup")
    output_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    created_at = datetime.now(UTC)
    identity = database_identity(engine.url)
    stem = f"fundmodel-{_database_label(identity)}-{_timestamp(created_at)}"
    if engine.dialect.name == "postgresql":
        final = output_dir / f"{stem}.dump"
        table_info, versions = _dump_postgresql(engine, tables, final)
        kind = KIND_POSTGRESQL
    elif engine.dialect.name == "sqlite":
        final = output_dir / f"{stem}.sqlite3"
        table_info, versions = _copy_sqlite(engine, tables, final)
        kind = KIND_SQLITE
    else:  # pragma: no cover - open_engine refuses other backends
        raise ConfigurationError(f"backups are not supported for {engine.dialect.name}")
    manifest = BackupManifest(
        kind=kind,
        file=final.name,
        size_bytes=final.stat().st_size,
        sha256=sha256_of(final),
        created_at=created_at.isoformat(),
        database=identity,
        tables=tuple(
            ManifestTable(str(table["name"]), int(table["rows"]), table.get("size_bytes"))
            for table in table_info
        ),
        tool_versions={**_base_tool_versions(), **versions},
    )
    manifest_file = manifest_path_for(final)
    _write_atomically(manifest_file, json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode())
    pruned = prune_backups(output_dir, engine.url, retain=retain)
    return BackupResult(file=final, manifest_file=manifest_file, manifest=manifest, pruned=pruned)


def _database_label(identity: dict[str, Any]) -> str:
    raw = identity.get("database") or Path(str(identity.get("path") or "memory")).stem
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(raw))[:40] or "db"


def _dump_postgresql(
    engine: Engine, tables: Sequence[Table], final: Path
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    pg_dump = tool_path("pg_dump")
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    with engine.connect().execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    ) as connection:
        snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        server_version = connection.exec_driver_sql("SHOW server_version").scalar_one()
        table_info = []
        for table in tables:
            qualified = f"{table.schema or schema}.{table.name}"
            rows = connection.execute(
                text(f"SELECT count(*) FROM {connection.dialect.identifier_preparer.format_table(table)}")  # noqa: S608
            ).scalar_one()
            size = connection.execute(
                text("SELECT pg_total_relation_size(CAST(:name AS regclass))"), {"name": qualified}
            ).scalar_one()
            table_info.append({"name": table.name, "rows": int(rows), "size_bytes": int(size)})
        arguments = [
            pg_dump,
            "--format=custom",
            "--strict-names",
            "--no-owner",
            "--no-privileges",
            f"--snapshot={snapshot}",
        ]
        arguments += [f"--table={table.schema or schema}.{table.name}" for table in tables]
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as sink:
                completed = subprocess.run(  # noqa: S603  (fixed argument list, no shell)
                    arguments,
                    stdout=sink,
                    stderr=subprocess.PIPE,
                    env=libpq_environment(engine.url),
                    check=False,
                )
                sink.flush()
                os.fsync(sink.fileno())
            if completed.returncode != 0:
                message = completed.stderr.decode(errors="replace").strip().splitlines()
                raise ExternalToolError(
                    f"pg_dump failed: {message[-1] if message else f'exit {completed.returncode}'}"
                )
            os.replace(temporary, final)
            _fsync_directory(final.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        finally:
            connection.rollback()  # read-only; ends the snapshot only after pg_dump is done
    return table_info, {"pg_dump": tool_version("pg_dump"), "server": str(server_version)}


def sqlite_path(url: URL) -> Path:
    database = url.database
    if not database or database == ":memory:":
        raise ConfigurationError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def count_sqlite_tables(connection: sqlite3.Connection, names: Iterable[str]) -> list[dict[str, Any]]:
    info = []
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        rows = connection.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]  # noqa: S608
        size: int | None
        try:
            size = connection.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (name,)).fetchone()[0]
        except sqlite3.OperationalError:  # dbstat is an optional compile-time feature
            size = None
        info.append({"name": name, "rows": int(rows), "size_bytes": size})
    return info


def _copy_sqlite(
    engine: Engine, tables: Sequence[Table], final: Path
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    source_path = sqlite_path(engine.url)
    if not source_path.is_file():
        raise ConfigurationError(f"SQLite database {source_path} does not exist")
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        source = sqlite3.connect(source_path, timeout=30)
        target = sqlite3.connect(temporary)
        try:
            source.backup(target)
            # The copy inherits WAL mode; a backup file must be self-contained and never rewritten.
            target.execute("PRAGMA journal_mode=DELETE")
            # Count in the copy: exactly what the file holds, whatever writers did meanwhile.
            table_info = count_sqlite_tables(target, [table.name for table in tables])
        finally:
            target.close()
            source.close()
        with temporary.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, final)
        _fsync_directory(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return table_info, {"sqlite": sqlite3.sqlite_version}


# --- retention and the apply gate ----------------------------------------------------------------


def _manifests(directory: Path) -> list[tuple[Path, BackupManifest]]:
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
    ours = [item for item in _manifests(directory) if same_database(item[1], url)]
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
        else _manifests(backup_dir)
    )
    reasons: list[str] = []
    for backup_file, manifest in candidates:
        created = parse_created_at(manifest)
        covered = set(manifest.table_names)
        if not same_database(manifest, url):
            reasons.append(f"{backup_file.name} is of another database")
            continue
        if not needed <= covered:
            reasons.append(f"{backup_file.name} lacks tables {sorted(needed - covered)}")
            continue
        age = now - created
        if age > max_age or age < -timedelta(minutes=5):
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
    summary = "; ".join(reasons[:3]) if reasons else f"no backup found in {where}"
    raise OperationRefusedError(
        f"{GATE_REFUSAL_PREFIX}{summary}; run `fundmodel db backup`, then `fundmodel db verify-backup FILE`"
    )
