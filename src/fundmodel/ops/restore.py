"""Verifying a backup by restoring it into a scratch database, and restoring it into a target.

A restore brings back exactly the backed-up state, the canonical-stage guard included: it is part of the
schema of the stage tables (a CHECK constraint that ``pg_restore --clean`` recreates with the tables, or
SQLite triggers that are replaced by the backup's). A backup taken before ``constrain-stages`` therefore
restores legacy rows and no guard, on both backends; the report says how the guard changed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.errors import ConfigurationError, ExternalToolError, IntegrityCheckError
from fundmodel.ops.backup import KIND_POSTGRESQL, KIND_SQLITE, count_sqlite_tables, sqlite_path
from fundmodel.ops.backup_manifest import BackupManifest, load_manifest
from fundmodel.ops.backup_verification import (
    check_checksum,
    discard_verification_record,
    write_verification_record,
)
from fundmodel.ops.constraints import (
    GUARD_ABSENT,
    GUARD_PARTIAL,
    GUARD_VALIDATED,
    GuardState,
    constraint_name,
    guard_states,
    sqlite_guard_triggers,
)
from fundmodel.ops.pg_tools import libpq_environment, tool_path
from fundmodel.ops.stage_columns import StageColumn, stage_columns, stage_metadata


@dataclass
class RowCountComparison:
    table: str
    expected: int
    actual: int | None

    @property
    def ok(self) -> bool:
        return self.actual == self.expected


@dataclass
class BackupCheckReport:
    file: str
    kind: str
    checksum_ok: bool
    tables: list[RowCountComparison] = field(default_factory=list)
    scratch: str | None = None
    # Restores only: the canonical-stage guard per constraint name before and after.
    stage_guard_before: dict[str, GuardState] | None = None
    stage_guard_after: dict[str, GuardState] | None = None

    @property
    def ok(self) -> bool:
        return self.checksum_ok and all(table.ok for table in self.tables)

    def guard_changes(self) -> dict[str, tuple[GuardState, GuardState]]:
        """The guards the restore changed: name -> (before, after)."""
        before, after = self.stage_guard_before or {}, self.stage_guard_after or {}
        return {
            name: (before.get(name, GUARD_ABSENT), state)
            for name, state in after.items()
            if before.get(name, GUARD_ABSENT) != state
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "ok": self.ok,
            "checksum_ok": self.checksum_ok,
            "scratch": self.scratch,
            "tables": [
                {"table": t.table, "expected_rows": t.expected, "actual_rows": t.actual, "ok": t.ok}
                for t in self.tables
            ],
            **(
                {"stage_guard": {"before": self.stage_guard_before, "after": self.stage_guard_after}}
                if self.stage_guard_after is not None
                else {}
            ),
        }


def _compare(manifest: BackupManifest, actual: dict[str, int | None]) -> list[RowCountComparison]:
    return [
        RowCountComparison(table=table.name, expected=table.rows, actual=actual.get(table.name))
        for table in manifest.tables
    ]


def _pg_restore(backup_file: Path, url: URL, *, clean: bool) -> None:
    arguments = [
        tool_path("pg_restore"),
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        f"--dbname={url.database}",
    ]
    if clean:
        arguments += ["--clean", "--if-exists"]
    completed = subprocess.run(  # noqa: S603  (fixed argument list, no shell)
        [*arguments, str(backup_file)],
        capture_output=True,
        text=True,
        env=libpq_environment(url),
        check=False,
    )
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        detail = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "")
        raise ExternalToolError(f"pg_restore failed (nothing was restored): {detail.strip()}")


def _pg_guard_states(url: URL, columns: list[StageColumn]) -> dict[str, GuardState]:
    engine = create_engine(url.set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            return guard_states(connection, columns)
    finally:
        engine.dispose()


def _pg_counts(url: URL, tables: list[str]) -> dict[str, int | None]:
    engine = create_engine(url.set(drivername="postgresql+psycopg"))
    counts: dict[str, int | None] = {}
    try:
        with engine.connect() as connection:
            for name in tables:
                quoted = connection.dialect.identifier_preparer.quote(name)
                try:
                    counts[name] = int(
                        connection.execute(text(f"SELECT count(*) FROM {quoted}")).scalar_one()  # noqa: S608
                    )
                except Exception:
                    connection.rollback()
                    counts[name] = None
    finally:
        engine.dispose()
    return counts


@contextlib.contextmanager
def _scratch_postgresql(server_url: URL) -> Iterator[URL]:
    name = f"fm_verify_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        server_url.set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield server_url.set(database=name)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def verify_backup(backup_file: Path, *, scratch_server_url: str | None = None) -> BackupCheckReport:
    """Checksum, then a full restore into a scratch database and a row-count comparison.

    Success leaves the verification record the backup gates require (bound to the file's SHA-256);
    a failure removes any earlier record, so a backup that no longer restores cannot pass a gate.
    """
    manifest = load_manifest(backup_file)
    kind = manifest.kind
    if kind == KIND_POSTGRESQL and not scratch_server_url:
        raise ConfigurationError(
            "verifying a PostgreSQL backup needs a server for the scratch database "
            "(--scratch-url or DATABASE_URL)"
        )
    if kind not in (KIND_POSTGRESQL, KIND_SQLITE):
        discard_verification_record(backup_file)
        raise IntegrityCheckError(f"unknown backup kind {kind!r}")
    report = BackupCheckReport(file=str(backup_file), kind=str(kind), checksum_ok=False)
    try:
        check_checksum(backup_file, manifest)
        report.checksum_ok = True
        method = _restore_into_scratch(backup_file, manifest, report, scratch_server_url)
        # The record vouches for the bytes restored: a file swapped during the restore does not get one.
        check_checksum(backup_file, manifest)
    except (IntegrityCheckError, ExternalToolError):
        discard_verification_record(backup_file)
        raise
    if report.ok:
        restored = {table.table: int(table.actual) for table in report.tables if table.actual is not None}
        write_verification_record(backup_file, manifest, restored_rows=restored, method=method)
    else:
        discard_verification_record(backup_file)
    return report


def _restore_into_scratch(
    backup_file: Path, manifest: BackupManifest, report: BackupCheckReport, scratch_server_url: str | None
) -> str:
    """Restore into a scratch database, fill in the report's row counts; how it was restored."""
    names = manifest.table_names
    if manifest.kind == KIND_POSTGRESQL:
        assert scratch_server_url is not None  # checked by the caller before anything else
        with _scratch_postgresql(make_url(scratch_server_url)) as scratch:
            report.scratch = scratch.database
            _pg_restore(backup_file, scratch, clean=False)
            report.tables = _compare(manifest, _pg_counts(scratch, names))
        return "pg_restore --single-transaction --exit-on-error into a scratch PostgreSQL database"
    with tempfile.TemporaryDirectory(prefix="fm_verify_") as directory:
        scratch_file = Path(directory) / "scratch.sqlite3"
        report.scratch = str(scratch_file)
        source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
        target = sqlite3.connect(scratch_file)
        try:
            try:
                source.backup(target)
                problems = target.execute("PRAGMA integrity_check").fetchall()
            except sqlite3.DatabaseError as exc:
                raise IntegrityCheckError(f"backup is not a readable SQLite database: {exc}") from exc
            if problems != [("ok",)]:
                raise IntegrityCheckError(f"SQLite integrity_check failed: {problems[0][0]}")
            counts: dict[str, int | None] = {
                table.name: table.rows for table in count_sqlite_tables(target, names)
            }
        finally:
            target.close()
            source.close()
        report.tables = _compare(manifest, counts)
    return "SQLite backup API copy into a scratch file, PRAGMA integrity_check"


def restore_backup(backup_file: Path, target_url: str) -> BackupCheckReport:
    """Restore the backup's tables into the target in one transaction, then compare row counts.

    The caller has already obtained the operator's confirmation.
    """
    manifest = load_manifest(backup_file)
    check_checksum(backup_file, manifest)
    target = make_url(target_url)
    backend = target.get_backend_name()
    names = manifest.table_names
    report = BackupCheckReport(file=str(backup_file), kind=manifest.kind, checksum_ok=True, scratch=None)
    guarded = [column for column in stage_columns(stage_metadata()) if column.table_name in names]
    if manifest.kind == KIND_POSTGRESQL:
        if backend != "postgresql":
            raise ConfigurationError("a PostgreSQL backup can only be restored into PostgreSQL")
        try:
            report.stage_guard_before = _pg_guard_states(target, guarded)
        except SQLAlchemyError:
            report.stage_guard_before = None  # unreachable now; pg_restore reports it properly
        # --clean drops and recreates the tables from the dump, constraints as they were then.
        _pg_restore(backup_file, target, clean=True)
        report.tables = _compare(manifest, _pg_counts(target, names))
        report.stage_guard_after = _pg_guard_states(target, guarded)
    elif manifest.kind == KIND_SQLITE:
        if backend != "sqlite":
            raise ConfigurationError("a SQLite backup can only be restored into SQLite")
        counts, before, after = _restore_sqlite(backup_file, sqlite_path(target), names, guarded)
        report.tables = _compare(manifest, counts)
        report.stage_guard_before, report.stage_guard_after = before, after
    else:
        raise IntegrityCheckError(f"unknown backup kind {manifest.kind!r}")
    return report


def _user_tables(connection: sqlite3.Connection, schema: str = "main") -> set[str]:
    rows = connection.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"  # noqa: S608
    ).fetchall()
    return {row[0] for row in rows}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_guard_states(
    connection: sqlite3.Connection, columns: list[StageColumn], schema: str = "main"
) -> dict[str, GuardState]:
    states: dict[str, GuardState] = {}
    for column in columns:
        names = sqlite_guard_triggers(column)
        found = connection.execute(
            f"SELECT count(*) FROM {schema}.sqlite_master WHERE type = 'trigger' AND name IN (?, ?)",  # noqa: S608
            names,
        ).fetchone()[0]
        states[constraint_name(column)] = (
            GUARD_VALIDATED if found == 2 else GUARD_PARTIAL if found == 1 else GUARD_ABSENT
        )
    return states


def _sqlite_guard_sql(
    connection: sqlite3.Connection, columns: list[StageColumn], schema: str
) -> dict[str, str]:
    """The guard triggers ``schema`` holds for these columns: name -> CREATE TRIGGER statement."""
    names = [name for column in columns for name in sqlite_guard_triggers(column)]
    placeholders = ", ".join("?" for _ in names)
    rows = connection.execute(
        f"SELECT name, sql FROM {schema}.sqlite_master "  # noqa: S608
        f"WHERE type = 'trigger' AND name IN ({placeholders})",
        names,
    ).fetchall()
    return {str(name): str(sql) for name, sql in rows}


def _restore_sqlite(
    backup_file: Path, target_path: Path, names: list[str], guarded: list[StageColumn]
) -> tuple[dict[str, int | None], dict[str, GuardState], dict[str, GuardState]]:
    """Restore the tables' rows and their stage guard triggers; counts, guard before and guard after."""
    connection = sqlite3.connect(target_path, timeout=30, isolation_level=None)
    try:
        before = _sqlite_guard_states(connection, guarded)
        if _user_tables(connection):
            _replace_sqlite_tables(connection, backup_file, names, guarded)
        else:
            _copy_whole_sqlite(backup_file, connection)
        counts: dict[str, int | None] = {
            table.name: table.rows for table in count_sqlite_tables(connection, names)
        }
        return counts, before, _sqlite_guard_states(connection, guarded)
    finally:
        connection.close()


def _copy_whole_sqlite(backup_file: Path, connection: sqlite3.Connection) -> None:
    """An empty target: the backup is a whole database, copied as a whole (atomic)."""
    source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    try:
        source.backup(connection)
    finally:
        source.close()


def _replace_sqlite_tables(
    connection: sqlite3.Connection, backup_file: Path, names: list[str], guarded: list[StageColumn]
) -> None:
    """A migrated target: its rows of the backed-up tables (and their guards) replaced by the backup's, in
    one transaction; the target's other tables stay as they are."""
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("ATTACH DATABASE ? AS backup", (f"file:{backup_file}?mode=ro",))
    missing = [name for name in names if name not in _user_tables(connection)]
    if missing:
        raise ConfigurationError(
            f"target database lacks tables {missing}; run `fundmodel db migrate` on it first"
        )
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute("PRAGMA defer_foreign_keys=ON")
        # The guard triggers are part of the backed-up state: the target's go first (they would
        # refuse a backup's legacy rows), the backup's come back after the rows.
        for trigger in _sqlite_guard_sql(connection, guarded, "main"):
            connection.execute(f"DROP TRIGGER main.{_quote(trigger)}")
        for name in reversed(names):
            connection.execute(f"DELETE FROM main.{_quote(name)}")  # noqa: S608
        for name in names:
            _copy_backup_rows(connection, name)
        # An unqualified CREATE TRIGGER goes to main, on main's table of that name.
        for statement in _sqlite_guard_sql(connection, guarded, "backup").values():
            connection.execute(statement)
        connection.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        connection.execute("ROLLBACK")
        raise IntegrityCheckError(f"restore failed and was rolled back: {exc}") from exc
    finally:
        if not connection.in_transaction:
            connection.execute("DETACH DATABASE backup")


def _copy_backup_rows(connection: sqlite3.Connection, name: str) -> None:
    """The attached backup's rows of table ``name`` into main's, by the columns both have (a backup
    taken before a migration lacks the columns added since: they take their defaults)."""
    target_columns = [row[1] for row in connection.execute(f"PRAGMA main.table_info({_quote(name)})")]
    backup_columns = {row[1] for row in connection.execute(f"PRAGMA backup.table_info({_quote(name)})")}
    shared = ", ".join(_quote(c) for c in target_columns if c in backup_columns)
    connection.execute(
        f"INSERT INTO main.{_quote(name)} ({shared}) "  # noqa: S608
        f"SELECT {shared} FROM backup.{_quote(name)}"
    )
