"""Writing a backup of the stage tables: the file, atomically, and its manifest next to it.

PostgreSQL: ``pg_dump`` in custom format with ``--strict-names`` for the exact tables, on a snapshot
exported from the transaction that also counts the rows, so the manifest's counts match the dump.
SQLite: the online backup API (a consistent copy of the whole database file).

The rest of the backup story lives next door: the manifest (:mod:`~fundmodel.ops.backup_manifest`), the
checksum and the verification record ``verify-backup`` writes (:mod:`~fundmodel.ops.backup_verification`),
retention and the fresh-and-verified gate (:mod:`~fundmodel.ops.backup_gate`), restoring
(:mod:`~fundmodel.ops.restore`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, MetaData, Table, text
from sqlalchemy.engine import URL

from fundmodel.errors import ConfigurationError, ExternalToolError, StoreUnavailableError

# The gate's names stay importable from here, where its callers have always imported them.
from fundmodel.ops.backup_gate import DEFAULT_MAX_AGE_HOURS as DEFAULT_MAX_AGE_HOURS
from fundmodel.ops.backup_gate import GATE_REFUSAL_PREFIX as GATE_REFUSAL_PREFIX
from fundmodel.ops.backup_gate import VerifiedBackup as VerifiedBackup
from fundmodel.ops.backup_gate import prune_backups
from fundmodel.ops.backup_gate import require_fresh_backup as require_fresh_backup
from fundmodel.ops.backup_manifest import (
    BackupManifest,
    DatabaseIdentity,
    ManifestTable,
    manifest_path_for,
    software_versions,
)
from fundmodel.ops.backup_verification import sha256_of
from fundmodel.ops.durable_files import fsync_directory, temporary_path_for, write_atomically
from fundmodel.ops.pg_tools import libpq_environment, tool_path, tool_version

KIND_POSTGRESQL = "postgresql-custom"
KIND_SQLITE = "sqlite-database"
DEFAULT_RETAIN = 7


@dataclass(frozen=True)
class BackupResult:
    file: Path
    manifest_file: Path
    manifest: BackupManifest
    pruned: tuple[Path, ...] = ()


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


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S%fZ")


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
    identity = DatabaseIdentity.of(engine.url)
    stem = f"fundmodel-{identity.label}-{_timestamp(created_at)}"
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
        tables=tuple(table_info),
        tool_versions={**software_versions(), **versions},
    )
    manifest_file = manifest_path_for(final)
    write_atomically(manifest_file, json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode())
    pruned = prune_backups(output_dir, engine.url, retain=retain)
    return BackupResult(file=final, manifest_file=manifest_file, manifest=manifest, pruned=pruned)


def _dump_postgresql(
    engine: Engine, tables: Sequence[Table], final: Path
) -> tuple[list[ManifestTable], dict[str, str]]:
    pg_dump = tool_path("pg_dump")
    temporary = temporary_path_for(final)
    with engine.connect().execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    ) as connection:
        snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        server_version = connection.exec_driver_sql("SHOW server_version").scalar_one()
        table_info: list[ManifestTable] = []
        for table in tables:
            qualified = f"{table.schema or schema}.{table.name}"
            rows = connection.execute(
                text(f"SELECT count(*) FROM {connection.dialect.identifier_preparer.format_table(table)}")  # noqa: S608
            ).scalar_one()
            size = connection.execute(
                text("SELECT pg_total_relation_size(CAST(:name AS regclass))"), {"name": qualified}
            ).scalar_one()
            table_info.append(ManifestTable(table.name, int(rows), int(size)))
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
            fsync_directory(final.parent)
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


def count_sqlite_tables(connection: sqlite3.Connection, names: Iterable[str]) -> list[ManifestTable]:
    """Rows (and, where SQLite has ``dbstat``, bytes) of each named table."""
    info = []
    for name in names:
        quoted = '"' + name.replace('"', '""') + '"'
        rows = connection.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]  # noqa: S608
        size: int | None
        try:
            size = connection.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (name,)).fetchone()[0]
        except sqlite3.OperationalError:  # dbstat is an optional compile-time feature
            size = None
        info.append(ManifestTable(name, int(rows), size))
    return info


def _copy_sqlite(
    engine: Engine, tables: Sequence[Table], final: Path
) -> tuple[list[ManifestTable], dict[str, str]]:
    source_path = sqlite_path(engine.url)
    if not source_path.is_file():
        raise ConfigurationError(f"SQLite database {source_path} does not exist")
    temporary = temporary_path_for(final)
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
        except sqlite3.Error as exc:  # a table missing (unmigrated database), a locked or corrupt file
            raise StoreUnavailableError(f"SQLite backup of {source_path} failed: {exc}") from exc
        finally:
            target.close()
            source.close()
        with temporary.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, final)
        fsync_directory(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return table_info, {"sqlite": sqlite3.sqlite_version}
