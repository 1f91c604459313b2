"""Keyset pages over real tables of both backends, and the cursors that continue them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, RowMapping, insert, select

from fundmodel.db.tables import funds
from fundmodel.errors import InvalidInputError
from fundmodel.pagination import decode_cursor, encode_cursor, fetch_page


def _insert_funds(engine: Engine, count: int) -> list[int]:
    rows = [
        {
            "name": f"Fund {number:03d}",
            "vintage_year": 2000 + number % 3,
            "committed_capital": 1_000_000,
            "management_fee_rate": 0.02,
            "carried_interest_rate": 0.2,
            "created_at": datetime.now(UTC),
        }
        for number in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(funds), rows)
        return list(connection.execute(select(funds.c.id).order_by(funds.c.id)).scalars())


def _name(row: RowMapping) -> str:
    return str(row["name"])


def _walk(engine: Engine, *, limit: int, vintage_year: int | None = None) -> list[list[str]]:
    """Every page, following each page's cursor as a client would, until one has none."""
    query = select(funds)
    if vintage_year is not None:
        query = query.where(funds.c.vintage_year == vintage_year)
    pages: list[list[str]] = []
    cursor: str | None = None
    with engine.connect() as connection:
        while True:
            page = fetch_page(
                connection, query, funds.c.id, limit=limit, after_id=decode_cursor(cursor), to_item=_name
            )
            pages.append(page.items)
            if page.next_cursor is None:
                return pages
            cursor = page.next_cursor


@pytest.mark.parametrize(("limit", "sizes"), [(3, [3, 3, 1]), (7, [7]), (1, [1] * 7), (50, [7])])
def test_pages_cover_every_row_once_in_id_order(engine: Engine, limit: int, sizes: list[int]) -> None:
    _insert_funds(engine, 7)
    pages = _walk(engine, limit=limit)
    assert [len(page) for page in pages] == sizes
    assert [name for page in pages for name in page] == [f"Fund {number:03d}" for number in range(7)]


def test_a_full_last_page_ends_without_an_empty_page_after_it(engine: Engine) -> None:
    _insert_funds(engine, 6)
    assert [len(page) for page in _walk(engine, limit=3)] == [3, 3]


def test_the_callers_filter_holds_on_every_page(engine: Engine) -> None:
    _insert_funds(engine, 10)
    pages = _walk(engine, limit=2, vintage_year=2001)
    assert [name for page in pages for name in page] == ["Fund 001", "Fund 004", "Fund 007"]


def test_the_cursor_continues_after_the_last_id_of_its_page(engine: Engine) -> None:
    ids = _insert_funds(engine, 4)
    with engine.connect() as connection:
        page = fetch_page(connection, select(funds), funds.c.id, limit=2, after_id=None, to_item=_name)
    assert page.next_cursor == encode_cursor(ids[1])
    assert decode_cursor(page.next_cursor) == ids[1]


def test_an_empty_table_is_one_empty_last_page(engine: Engine) -> None:
    assert _walk(engine, limit=5) == [[]]


@pytest.mark.parametrize("cursor", ["", "not base64!", encode_cursor(-1), "eyJhZnRlciI6dHJ1ZX0"])
def test_a_cursor_this_api_did_not_issue_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        decode_cursor(cursor)
    assert caught.value.code == "INVALID_CURSOR"
