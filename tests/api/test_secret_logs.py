"""No credential in any log line of a real server, whatever fails; every line small.

A real uvicorn process in production mode, a real API key presented every way a client can (Bearer,
X-API-Key, a cookie, the query string), and real 500s: the funds table is renamed under the running
service, so each request fails deep in SQLAlchemy with the request's headers in every frame's reach.
Before issue 10 each such line carried the frames' local variables, the raw headers among them.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import text

from fundmodel.auth.service import create_key
from fundmodel.db.engine import create_db_engine
from fundmodel.observability.redaction import MAX_LINE_BYTES
from tests.api.servers import service_env, uvicorn_server

DATABASE_PASSWORD = "db-pass-never-logged-42"


def _with_password(database_url: str) -> str:
    # The test server trusts local connections, so the password is accepted and ignored: it is only there
    # to be looked for in the log.
    parts = urlsplit(database_url)
    netloc = parts.netloc.replace("postgres@", f"postgres:{DATABASE_PASSWORD}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.slow
def test_real_500s_log_no_credential_and_small_lines(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("postgresql"):
        database_url = _with_password(database_url)
    engine = create_db_engine(database_url)
    try:
        key = create_key(engine, "log-check").secret
        log = tmp_path / "server.log"
        env = service_env(database_url, APP_ENV="production", LOG_LEVEL="DEBUG")
        with uvicorn_server(env, log) as base, httpx.Client(base_url=base, timeout=30) as client:
            assert client.get("/api/funds", headers={"Authorization": f"Bearer {key}"}).status_code == 200
            with engine.begin() as connection:
                connection.execute(text("ALTER TABLE funds RENAME TO funds_renamed_by_test"))
            presentations: list[dict[str, object]] = [
                {"headers": {"Authorization": f"Bearer {key}"}},
                {"headers": {"X-API-Key": key}},
                {"headers": {"Authorization": f"Bearer {key}", "X-API-Key": key, "Cookie": f"session={key}"}},
                {"headers": {"X-API-Key": key}, "params": {"api_key": key, "token": key}},
            ]
            for presentation in presentations:
                response = client.get("/api/funds", **presentation)  # type: ignore[arg-type]
                assert response.status_code == 500, response.text
                assert key not in response.text
    finally:
        engine.dispose()

    raw = log.read_bytes()
    assert key.encode() not in raw
    assert key[4:20].encode() not in raw  # not even a part of it
    assert DATABASE_PASSWORD.encode() not in raw
    lines = [line for line in raw.splitlines() if line.strip()]
    assert max(len(line) for line in lines) <= MAX_LINE_BYTES
    events = [json.loads(line) for line in lines if line.startswith(b"{")]
    unhandled = [event for event in events if event.get("event") == "unhandled_error"]
    assert len(unhandled) == len(presentations)
    for event in unhandled:
        assert event["request_id"]
        frames = event["exception"][-1]["frames"]
        assert frames
        assert all("locals" not in frame for frame in frames)
        assert {"filename", "lineno", "name"} <= frames[-1].keys()
