"""Keyset pagination: pages read in id order, and opaque cursors (the last id of a page, encoded so
clients do not build them)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Column, Connection, RowMapping, Select

from fundmodel.apimodel import MAX_ROW_ID
from fundmodel.errors import InvalidInputError

ItemT = TypeVar("ItemT")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_CURSOR_LENGTH = 200


def encode_cursor(last_id: int) -> str:
    raw = json.dumps({"after": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id to continue after, or None for the first page; a bad cursor is a 422."""
    if cursor is None:
        return None
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = payload["after"]
        # Ids are bounded by their column: a tampered cursor must not reach the database as a bigger integer.
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_ROW_ID:
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error):
        raise InvalidInputError(
            "cursor is not one this API returned; pass nextCursor from the previous page",
            code="INVALID_CURSOR",
            field="cursor",
        ) from None
    return after


class KeysetPage(NamedTuple, Generic[ItemT]):
    """The items of one page and the cursor of the next (None on the last page)."""

    items: list[ItemT]
    next_cursor: str | None


def fetch_page(
    connection: Connection,
    query: Select[Any],
    id_column: Column[int],
    *,
    limit: int,
    after_id: int | None,
    to_item: Callable[[RowMapping], ItemT],
) -> KeysetPage[ItemT]:
    """Up to ``limit`` rows of ``query`` after ``after_id`` in ``id_column`` order, as items.

    One row more than the page is read, so the last page is known without a count query; ``id_column``
    must be the table's unique, indexed key, or rows with an equal key would be skipped between pages.
    """
    query = query.order_by(id_column).limit(limit + 1)
    if after_id is not None:
        query = query.where(id_column > after_id)
    rows = connection.execute(query).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1]._mapping[id_column]) if len(rows) > limit else None
    return KeysetPage([to_item(row._mapping) for row in page], next_cursor)
