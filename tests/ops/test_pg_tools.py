"""The PostgreSQL client tools' environment and lookup (``ops/pg_tools.py``)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from fundmodel.errors import ExternalToolError
from fundmodel.ops.pg_tools import libpq_environment, tool_path


def test_the_connection_goes_in_the_environment_password_included(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPORT", "9999")  # a stale setting of the caller's shell must not leak through
    env = libpq_environment(make_url("postgresql+psycopg://ops:s3cret@db.internal/fundmodel"))
    assert (env["PGHOST"], env["PGUSER"], env["PGPASSWORD"], env["PGDATABASE"]) == (
        "db.internal",
        "ops",
        "s3cret",
        "fundmodel",
    )
    assert "PGPORT" not in env


def test_a_missing_tool_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ExternalToolError, match="pg_dump not found on PATH"):
        tool_path("pg_dump")
