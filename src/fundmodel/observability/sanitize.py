"""Making client-controlled text safe to put in a log line: escaped, bounded, always encodable."""

from __future__ import annotations

import unicodedata

__all__ = ["ELLIPSIS", "escape_log_text"]

ELLIPSIS = "…"

# Control and format characters (incl. bidi overrides, zero-width chars), line/paragraph separators,
# and lone surrogates (which would make the UTF-8 encoding of the log line fail).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escape_char(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_log_text(value: str, max_chars: int) -> str:
    """``value`` with control characters escaped, at most ``max_chars`` long (``…`` marks a cut).

    Escapes are never split: a cut falls between whole escaped characters. Backslashes are doubled
    so an escaped string cannot be mistaken for the original.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    # Fast path: isprintable() is False for every category escaped here (and a few more).
    if len(value) <= max_chars and value.isprintable() and "\\" not in value:
        return value
    pieces: list[str] = []
    length = 0
    for index, char in enumerate(value):
        piece = _escape_char(char)
        remaining_after = len(value) - index - 1
        # Keep room for the ellipsis unless this piece is the very last one.
        budget = max_chars if remaining_after == 0 else max_chars - len(ELLIPSIS)
        if length + len(piece) > budget:
            pieces.append(ELLIPSIS)
            return "".join(pieces)
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces)
