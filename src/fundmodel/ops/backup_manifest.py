"""The manifest written next to every backup: ``<backup>.manifest.json``, format ``fundmodel-backup/1``.

A typed model over the document on disk, with the identity of the database it was taken of. The format
is unchanged: manifests written before the model load as they are, and new ones are written with the
same keys.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy.engine import URL

import fundmodel
from fundmodel.errors import IntegrityCheckError

MANIFEST_FORMAT = "fundmodel-backup/1"
MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class ManifestTable:
    """One backed-up table: the rows it held when the backup was taken, and its size on the server (``None``
    where SQLite lacks ``dbstat``)."""

    name: str
    rows: int
    size_bytes: int | None = None


DIALECT_SQLITE = "sqlite"
DIALECT_POSTGRESQL = "postgresql"
DEFAULT_POSTGRESQL_PORT = 5432


@dataclass(frozen=True)
class DatabaseIdentity:
    """Which database a backup is of (never the password): a SQLite file by its absolute path, a
    PostgreSQL database by server, port, name and user."""

    dialect: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None

    @classmethod
    def of(cls, url: URL) -> DatabaseIdentity:
        if url.get_backend_name() == DIALECT_SQLITE:
            database = url.database or ""
            path = str(Path(database).resolve()) if database and database != ":memory:" else database
            return cls(DIALECT_SQLITE, path=path)
        return cls(
            DIALECT_POSTGRESQL,
            host=url.host or "localhost",
            port=url.port or DEFAULT_POSTGRESQL_PORT,
            database=url.database,
            user=url.username,
        )

    def is_same_database(self, other: DatabaseIdentity) -> bool:
        """The same file, or the same database on the same server (whoever connects to it)."""
        if self.dialect == DIALECT_SQLITE:
            return other.dialect == DIALECT_SQLITE and self.path == other.path
        return (self.dialect, self.host, self.port, self.database) == (
            other.dialect,
            other.host,
            other.port,
            other.database,
        )

    @property
    def label(self) -> str:
        """The database's name (a SQLite file's stem) as fit for a file name."""
        raw = self.database or Path(self.path or "memory").stem
        return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in raw)[:40] or "db"

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``database`` object: the keys of this dialect only, as always written."""
        if self.dialect == DIALECT_SQLITE:
            return {"dialect": self.dialect, "path": self.path}
        return {
            "dialect": self.dialect,
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "user": self.user,
        }

    @classmethod
    def from_json(cls, document: object) -> DatabaseIdentity:
        """Read a manifest's ``database`` object (TypeError / KeyError when it is not one)."""
        if not isinstance(document, Mapping):
            raise TypeError(f"database: expected an object, got {document!r}")
        dialect = str(document["dialect"])
        if dialect == DIALECT_SQLITE:
            return cls(dialect, path=_optional_text(document.get("path")))
        port = document.get("port")
        return cls(
            dialect,
            host=_optional_text(document.get("host")),
            port=None if port is None else _count(port),
            database=_optional_text(document.get("database")),
            user=_optional_text(document.get("user")),
        )


def software_versions() -> dict[str, str]:
    """The versions of this software a manifest and a verification record carry."""
    return {
        "fundmodel": getattr(fundmodel, "__version__", "unknown"),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
    }


@dataclass(frozen=True)
class BackupManifest:
    """``<backup>.manifest.json``: what a backup file holds and how to check it (``fundmodel-backup/1``).

    ``kind`` and ``created_at`` are kept as written: the commands that use them say what is wrong with
    them (an unknown kind, a time that does not parse) where they use them.
    """

    kind: str
    file: str
    size_bytes: int
    sha256: str
    created_at: str
    database: DatabaseIdentity
    tables: tuple[ManifestTable, ...]
    tool_versions: Mapping[str, str]

    @property
    def table_names(self) -> list[str]:
        return [table.name for table in self.tables]

    def is_of(self, url: URL) -> bool:
        """Whether this backup was taken of the database at ``url``."""
        return DatabaseIdentity.of(url).is_same_database(self.database)

    def to_json(self) -> dict[str, Any]:
        """The document on disk (the keys ``fundmodel-backup/1`` has always had)."""
        return {
            "format": MANIFEST_FORMAT,
            "kind": self.kind,
            "file": self.file,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "created_at": self.created_at,
            "database": self.database.to_json(),
            "tables": [
                {"name": table.name, "rows": table.rows, "size_bytes": table.size_bytes}
                for table in self.tables
            ],
            "tool_versions": dict(self.tool_versions),
        }

    @classmethod
    def from_json(cls, document: object, *, source: str) -> BackupManifest:
        """Read a manifest document; :class:`IntegrityCheckError` naming ``source`` when it is not one."""
        if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
            raise IntegrityCheckError(f"manifest {source} is not a {MANIFEST_FORMAT} manifest")
        try:
            tables = tuple(
                ManifestTable(str(t["name"]), _count(t["rows"]), _optional_count(t.get("size_bytes")))
                for t in document["tables"]
            )
            return cls(
                kind=str(document["kind"]),
                file=str(document["file"]),
                size_bytes=_count(document["size_bytes"]),
                sha256=str(document["sha256"]),
                created_at=str(document["created_at"]),
                database=DatabaseIdentity.from_json(document["database"]),
                tables=tables,
                tool_versions={str(k): str(v) for k, v in dict(document.get("tool_versions", {})).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityCheckError(f"manifest {source} is incomplete or malformed ({exc!r})") from None


def _count(value: object) -> int:
    # bool is an int to Python, never a count to a manifest.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def _optional_count(value: object) -> int | None:
    return None if value is None else _count(value)


def _optional_text(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def manifest_path_for(backup_file: Path) -> Path:
    return backup_file.with_name(backup_file.name + MANIFEST_SUFFIX)


def load_manifest(backup_file: Path) -> BackupManifest:
    manifest_file = manifest_path_for(backup_file)
    if not backup_file.is_file():
        raise IntegrityCheckError(f"backup file {backup_file} does not exist")
    try:
        document = json.loads(manifest_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntegrityCheckError(
            f"backup {backup_file.name} has no manifest ({manifest_file.name})"
        ) from None
    except ValueError:
        raise IntegrityCheckError(f"manifest {manifest_file.name} is not valid JSON") from None
    return BackupManifest.from_json(document, source=manifest_file.name)


def parse_created_at(manifest: BackupManifest) -> datetime:
    try:
        created = datetime.fromisoformat(manifest.created_at)
    except ValueError:
        raise IntegrityCheckError("manifest has no valid created_at") from None
    return created if created.tzinfo else created.replace(tzinfo=UTC)
