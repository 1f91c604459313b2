"""One normalization job per database at a time, released even when the process is killed."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from fundmodel.errors import OperationRefusedError

# Arbitrary but fixed 64-bit key for pg_try_advisory_lock ("fundmodel ops" in ASCII-ish hex).
_ADVISORY_KEY = 0x666D5F6F7073


@contextmanager
def exclusive_job(engine: Engine) -> Iterator[None]:
    """Hold the database's ops lock: a PostgreSQL session advisory lock or a SQLite lock file.

    Both are released by the operating system or server when the holder dies (``kill -9``), so an
    interrupted run never blocks its own resume.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            acquired = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _ADVISORY_KEY}
            ).scalar_one()
            connection.commit()
            if not acquired:
                raise OperationRefusedError("another stage normalization job is running on this database")
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_KEY})
                connection.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).resolve().with_name(Path(database).name + ".ops.lock")
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OperationRefusedError(
                "another stage normalization job is running on this database"
            ) from None
        yield
    finally:
        os.close(fd)
