"""Opaque keyset-pagination cursors: the last id of a page, encoded so clients do not build them."""

from __future__ import annotations

import base64
import binascii
import json

from fundmodel.apimodel import MAX_ROW_ID
from fundmodel.errors import InvalidInputError

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
