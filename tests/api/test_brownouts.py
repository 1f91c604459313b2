"""Brownouts over real ASGI and a real database (SQLite and PostgreSQL): a window in force enforces, its
end or cancel restores the stored mode, the catalogue and the metrics show it, and the auto-downgrade webhook
ends it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fundmodel.db.brownout_store import BrownoutStore, StoredBrownout
from fundmodel.validation import ModeState, ValidationMode
from tests.api.test_ops import WEBHOOK_TOKEN, OpenClient, deliver, payload, sample
from tests.conftest import ApiClient, open_api_client, settings_for

UNKNOWN = {"name": "probe", "stageAllocation": {"seed": 0.5, "mezzanine": 0.5}}


@pytest.fixture
def open_client(database_url: str) -> Iterator[OpenClient]:
    """App instances (think: workers) on one database, mode warn, the webhook token configured."""
    closers: list[Callable[[], None]] = []

    def opener(**overrides: Any) -> ApiClient:
        client, close = open_api_client(
            settings_for(database_url, stage_webhook_token=WEBHOOK_TOKEN, **overrides)
        )
        closers.append(close)
        return client

    yield opener
    for close in reversed(closers):
        close()


def _post_unknown(client: ApiClient) -> Any:
    return client.request("POST", "/api/portfolio/strategies", json=UNKNOWN)


def _store(client: ApiClient) -> BrownoutStore:
    store: BrownoutStore = client.state.brownouts.store
    return store


def _schedule(
    client: ApiClient,
    *,
    start_in: timedelta | None = None,
    canary: float = 100.0,
    duration: timedelta = timedelta(hours=1),
) -> StoredBrownout:
    starts_at = None if start_in is None else datetime.now(UTC) + start_in
    stored = _store(client).schedule(
        starts_at=starts_at,
        duration=duration,
        canary_percent=canary,
        actor="pytest",
        reason="drill",
    )
    assert client.state.brownouts.refresh()
    return stored


def test_a_window_in_force_enforces_and_its_cancel_restores_warn(open_client: OpenClient) -> None:
    api = open_client()
    outside = _post_unknown(api)
    assert (outside.status_code, outside.headers["x-stage-validation-mode"]) == (201, "warn")
    assert outside.json()["warnings"]

    stored = _schedule(api)
    inside = _post_unknown(api)
    assert inside.status_code == 400, inside.text
    assert inside.json()["code"] == "INVALID_STAGE"
    assert inside.headers["x-stage-validation-mode"] == "enforce"
    # The stored mode itself is unchanged: the brownout is applied per request.
    assert api.state.mode_store.read().state == ModeState(ValidationMode.WARN)

    catalogue = api.http.get("/api/deprecations").json()
    assert catalogue["brownouts"] == [
        {
            "id": stored.window_id,
            "startsAt": stored.window.starts_at.isoformat().replace("+00:00", "Z"),
            "endsAt": stored.window.ends_at.isoformat().replace("+00:00", "Z"),
            "canaryPercent": 100.0,
            "active": True,
        }
    ]
    assert {entry["currentMode"] for entry in catalogue["deprecations"]} == {"enforce"}

    _store(api).cancel(stored.window_id, actor="pytest", reason="done")
    assert api.state.brownouts.refresh()
    after = _post_unknown(api)
    assert (after.status_code, after.headers["x-stage-validation-mode"]) == (201, "warn")
    assert api.http.get("/api/deprecations").json()["brownouts"] == []


def test_a_window_to_come_is_announced_and_starts_on_time(open_client: OpenClient) -> None:
    api = open_client()
    stored = _schedule(api, start_in=timedelta(seconds=2))
    [notice] = api.http.get("/api/deprecations").json()["brownouts"]
    assert (notice["id"], notice["active"]) == (stored.window_id, False)
    assert _post_unknown(api).status_code == 201
    # No refresh in between: the start is compared with each request's time, not the cache's.
    time.sleep(max((stored.window.starts_at - datetime.now(UTC)).total_seconds(), 0) + 0.05)
    assert _post_unknown(api).status_code == 400


def test_the_gauges_show_the_window_in_force_and_the_next_start(open_client: OpenClient) -> None:
    api = open_client(stage_mode_cache_ttl_seconds=0.2)
    later = _schedule(api, start_in=timedelta(hours=3))
    _schedule(api)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        sample(api, "fundmodel_stage_brownout_active") != 1
        or sample(api, "fundmodel_stage_validation_mode", mode="enforce") != 1
    ):
        time.sleep(0.05)
    assert sample(api, "fundmodel_stage_brownout_active") == 1
    assert (
        sample(api, "fundmodel_stage_brownout_next_start_timestamp_seconds")
        == later.window.starts_at.timestamp()
    )
    # The mode gauges show what requests get: enforce, while the stored mode is warn.
    assert sample(api, "fundmodel_stage_validation_mode", mode="enforce") == 1


def test_the_auto_downgrade_ends_a_brownout_over_a_stored_warn(open_client: OpenClient) -> None:
    first, second = open_client(), open_client()
    stored = _schedule(first)
    assert second.state.brownouts.refresh()
    assert _post_unknown(first).status_code == 400
    assert _post_unknown(second).status_code == 400

    response = deliver(first, payload())
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["result"] == "downgraded"
    assert result["previous"]["mode"] == "enforce"
    assert result["current"]["mode"] == "warn"
    assert (result["auditId"], result["endedBrownouts"]) == (None, [stored.window_id])
    # This worker at once; the other one at its next refresh (within the mode cache TTL).
    assert _post_unknown(first).status_code == 201
    assert second.state.brownouts.refresh()
    assert _post_unknown(second).status_code == 201
    [ended] = _store(first).list(include_past=True)
    assert (ended.ended_by, ended.end_source, ended.status(datetime.now(UTC))) == (
        "alertmanager",
        "alertmanager",
        "ended",
    )
    assert "StageValidationRejectRatioHigh" in (ended.end_reason or "")
    # The stored mode was warn already: no mode change was written.
    assert [c for c in first.state.mode_store.audit_log(100) if c.source == "alertmanager"] == []
    # A repeat of the delivery is a duplicate, whatever happens to the windows since.
    assert deliver(second, payload()).json()["result"] == "duplicate"


def test_the_auto_downgrade_lowers_a_stored_canary_and_ends_the_brownout(open_client: OpenClient) -> None:
    api = open_client()
    api.set_mode("enforce", 10.0)
    stored = _schedule(api)
    result = deliver(api, payload()).json()
    assert result["result"] == "downgraded"
    assert result["previous"] == {
        "mode": "enforce",
        "canaryPercent": 100.0,
        "canaryClients": [],
        "aliasesRejected": False,
    }
    assert result["current"]["mode"] == "warn"
    assert result["auditId"] is not None
    assert result["endedBrownouts"] == [stored.window_id]
    assert api.state.brownouts.windows() == ()
    assert _post_unknown(api).status_code == 201


def test_without_a_brownout_a_stored_warn_is_left_alone(open_client: OpenClient) -> None:
    api = open_client()
    _schedule(api, start_in=timedelta(hours=1))
    result = deliver(api, payload()).json()
    assert (result["result"], result["endedBrownouts"]) == ("unchanged", [])
    assert len(_store(api).list()) == 1


def test_every_worker_notices_a_start_and_an_end_and_each_is_announced_once(open_client: OpenClient) -> None:
    first, second = (
        open_client(stage_mode_cache_ttl_seconds=0.2),
        open_client(stage_mode_cache_ttl_seconds=0.2),
    )
    stored = _schedule(first, start_in=timedelta(seconds=0.5), duration=timedelta(seconds=1))
    _store(first).cancel(_schedule(first, start_in=timedelta(hours=2)).window_id, actor="pytest", reason="no")
    ended_key = f"brownout:{stored.window_id}:ended"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ended_key not in _brownout_events(first):
        time.sleep(0.1)
    events = _brownout_events(first)
    assert [key for key in events if key.startswith(f"brownout:{stored.window_id}:")] == [
        f"brownout:{stored.window_id}:scheduled",
        f"brownout:{stored.window_id}:started",
        ended_key,
    ]
    assert events[ended_key]["endedBy"] == "elapsed"
    # The other worker drops the window at its next refresh (it noticed the same edges: still one event each).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and second.state.brownouts.windows():
        time.sleep(0.05)
    assert second.state.brownouts.windows() == ()


def _brownout_events(client: ApiClient) -> dict[str, dict[str, Any]]:
    from sqlalchemy import select

    from fundmodel.db.notification_tables import notification_events

    table = notification_events
    with client.state.engine.connect() as connection:
        rows = connection.execute(
            select(table.c.dedupe_key, table.c.data).where(table.c.kind == "brownout").order_by(table.c.id)
        ).all()
    return {str(row.dedupe_key): dict(row.data) for row in rows}
