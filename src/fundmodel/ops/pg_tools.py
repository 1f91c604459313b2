"""The PostgreSQL client programs the data operations run (``pg_dump``, ``pg_restore``): found on PATH,
their versions, and the connection settings they read from the environment."""

from __future__ import annotations

import os
import shutil
import subprocess

from sqlalchemy.engine import URL

from fundmodel.errors import ExternalToolError


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
