"""The usage queries over stage_usage rows inserted directly, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, update

from fundmodel.auth.service import create_key
from fundmodel.db.tables import api_keys
from fundmodel.db.usage_tables import stage_usage
from fundmodel.errors import InvalidInputError
from fundmodel.usage.service import (
    ClientUsage,
    UsageLine,
    checked_endpoint,
    client_traffic,
    clients_with_kinds,
    offender_report,
    usage_of_client,
    window_start,
)

TODAY = date(2026, 11, 20)
COMPANIES = "POST /api/funds/{fundId}/companies"
SIMULATE = "POST /api/monte-carlo/simulate"


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def usage_row(
    client_id: str,
    kind: str,
    count: int,
    *,
    day: date = TODAY,
    endpoint: str = COMPANIES,
    field: str = "stage",
    spelling: str = "",
    name: str | None = None,
    first_hour: int = 8,
    last_hour: int = 9,
) -> dict[str, Any]:
    return {
        "day": day,
        "client_id": client_id,
        "endpoint": endpoint,
        "field": field,
        "kind": kind,
        "spelling": spelling,
        "count": count,
        "first_seen_at": at(day, first_hour),
        "last_seen_at": at(day, last_hour),
        "client_name": name or f"name-of-{client_id}",
    }


def insert_usage(engine: Engine, *rows: dict[str, Any]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(stage_usage), list(rows))


def test_client_traffic_sums_every_kind_from_the_day_on(engine: Engine) -> None:
    insert_usage(
        engine,
        usage_row("key-1", "valid", 90),
        usage_row("key-1", "alias", 7, spelling="Series-A"),
        usage_row("key-1", "valid", 1000, day=TODAY - timedelta(days=1)),
        usage_row("key-1", "valid", 5, day=TODAY - timedelta(days=8)),
        usage_row("key-2", "rejected", 3, spelling="Serie Z"),
    )

    assert client_traffic(engine, TODAY) == {"key-1": 97, "key-2": 3}
    assert client_traffic(engine, TODAY - timedelta(days=1)) == {"key-1": 1097, "key-2": 3}
    assert client_traffic(engine, TODAY + timedelta(days=1)) == {}


def test_clients_with_kinds_ranks_by_volume_and_folds_endpoints_and_spellings(engine: Engine) -> None:
    insert_usage(
        engine,
        usage_row("key-1", "alias", 4, spelling="Series-A"),
        usage_row("key-1", "alias", 7, spelling="seed stage", endpoint=SIMULATE, field="stageMix"),
        usage_row("key-1", "alias", 2, spelling="Series-A", day=TODAY - timedelta(days=2), last_hour=23),
        usage_row("key-1", "valid", 500),
        usage_row("key-2", "rejected", 20, spelling="Serie Z", last_hour=17),
        usage_row("key-2", "sum", 5),
        usage_row("key-3", "unknown", 1, spelling="pre-ipo", day=TODAY - timedelta(days=30)),
    )

    ranked = clients_with_kinds(engine, TODAY - timedelta(days=7), ["alias", "unknown", "sum", "rejected"])

    assert ranked == [
        ClientUsage(
            client_id="key-2",
            client_name="name-of-key-2",
            count=25,
            last_seen_at=at(TODAY, 17),
            endpoints=(COMPANIES,),
            spellings=("Serie Z",),
            kind_counts=(("rejected", 20), ("sum", 5)),
        ),
        ClientUsage(
            client_id="key-1",
            client_name="name-of-key-1",
            count=13,
            last_seen_at=at(TODAY, 9),
            endpoints=(SIMULATE, COMPANIES),
            spellings=("seed stage", "Series-A"),
            kind_counts=(("alias", 13),),
        ),
    ]


def test_clients_with_kinds_filters_kinds_and_endpoint(engine: Engine) -> None:
    insert_usage(
        engine,
        usage_row("key-1", "alias", 4, spelling="Series-A"),
        usage_row("key-1", "rejected", 1, spelling="Serie Z", endpoint=SIMULATE),
        usage_row("key-2", "rejected", 9, spelling="Serie Z"),
    )

    rejected = clients_with_kinds(engine, TODAY, {"rejected"})
    assert [(usage.client_id, usage.count) for usage in rejected] == [("key-2", 9), ("key-1", 1)]
    on_simulate = clients_with_kinds(engine, TODAY, {"alias", "rejected"}, endpoint=SIMULATE)
    assert [(usage.client_id, usage.count, usage.endpoints) for usage in on_simulate] == [
        ("key-1", 1, (SIMULATE,))
    ]
    assert clients_with_kinds(engine, TODAY, ()) == []


def test_ties_rank_by_client_id_and_the_latest_name_wins(engine: Engine) -> None:
    insert_usage(
        engine,
        usage_row("key-9", "alias", 3, spelling="a", name="old-name", last_hour=8),
        usage_row("key-9", "alias", 2, spelling="b", name="new-name", last_hour=20),
        usage_row("key-10", "alias", 5, spelling="a"),
    )

    ranked = clients_with_kinds(engine, TODAY, ["alias"])

    assert [(usage.client_id, usage.client_name) for usage in ranked] == [
        ("key-10", "name-of-key-10"),
        ("key-9", "new-name"),
    ]


def test_usage_of_client_reads_only_that_clients_deprecated_usage(engine: Engine) -> None:
    yesterday = TODAY - timedelta(days=1)
    insert_usage(
        engine,
        usage_row("key-1", "alias", 4, spelling="Series-A", day=yesterday, first_hour=3, last_hour=5),
        usage_row("key-1", "alias", 6, spelling="Series-A", first_hour=1, last_hour=22),
        usage_row("key-1", "valid", 100),
        usage_row("key-1", "unknown", 1, spelling="pre-ipo", field="stageMix", endpoint=SIMULATE),
        usage_row("key-2", "alias", 50, spelling="Series-A"),
    )

    lines = usage_of_client(engine, "key-1", yesterday)

    assert lines == [
        UsageLine(COMPANIES, "stage", "alias", "Series-A", 10, at(yesterday, 3), at(TODAY, 22)),
        UsageLine(SIMULATE, "stageMix", "unknown", "pre-ipo", 1, at(TODAY, 8), at(TODAY, 9)),
    ]
    assert usage_of_client(engine, "key-3", yesterday) == []


def test_offender_report_names_keys_by_their_row_and_keeps_the_ledgers_name_without_one(
    engine: Engine,
) -> None:
    revoked = create_key(engine, "revoked-client")
    with engine.begin() as connection:
        connection.execute(
            update(api_keys).where(api_keys.c.id == revoked.key_id).values(revoked_at=at(TODAY, 12))
        )
    insert_usage(
        engine,
        usage_row(f"key-{revoked.key_id}", "alias", 3, spelling="Series-A", name="revoked-client"),
        usage_row("anonymous-dev", "unknown", 8, spelling="pre-seedish", name="anonymous development client"),
        usage_row("key-999", "sum", 1, name="deleted-key"),
        usage_row(f"key-{revoked.key_id}", "valid", 1000),
    )

    report = offender_report(engine, TODAY)

    assert report.total == 12
    assert [(c.client_id, c.key_name, c.key_prefix, c.key_revoked, c.count) for c in report.clients] == [
        ("anonymous-dev", "anonymous development client", None, False, 8),
        (f"key-{revoked.key_id}", "revoked-client", revoked.prefix, True, 3),
        ("key-999", "deleted-key", None, False, 1),
    ]
    assert revoked.secret not in report.model_dump_json()


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (None, TODAY - timedelta(days=30)),
        ("1d", TODAY - timedelta(days=1)),
        ("90d", TODAY - timedelta(days=90)),
    ],
)
def test_window_start_counts_whole_days_back(window: str | None, expected: date) -> None:
    assert window_start(window, retention_days=90, today=TODAY) == expected


def test_the_default_window_is_shortened_to_the_retention() -> None:
    assert window_start(None, retention_days=7, today=TODAY) == TODAY - timedelta(days=7)


@pytest.mark.parametrize("window", ["", "d", "7", "07d", "0d", "7D", " 7d", "7d ", "1.5d", "91d", "1000000d"])
def test_window_start_refuses_what_is_not_days_within_the_retention(window: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        window_start(window, retention_days=90, today=TODAY)
    assert raised.value.field == "since"


def test_checked_endpoint_accepts_what_the_ledger_records() -> None:
    assert checked_endpoint(None) is None
    assert checked_endpoint("/api/funds/{fundId}/companies") == "/api/funds/{fundId}/companies"
    with pytest.raises(InvalidInputError) as raised:
        checked_endpoint("/api/funds/{id}/companies")
    assert raised.value.field == "endpoint"
