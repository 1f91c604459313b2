"""The safety net under every log line: credentials redacted, values and lines bounded in size.

Code should not log secrets in the first place; this catches what slips through anyway (an exception
message quoting a connection string, a header dict passed as context, a third-party library's record).
Two structlog processors, used by :mod:`fundmodel.observability.logging` for structlog events and stdlib
records alike, after the traceback has been turned into data and before rendering:

- :func:`redact_event` walks the whole event (nested dicts, lists, tuples, bytes, exception frames) and
  replaces the value of every key that names a credential (``authorization``, ``api_key``, ``token``,
  ``password``, ``secret``, ``cookie``, ...) and every credential-shaped substring of any string (API keys
  ``fmk_...``, ``Bearer``/``Basic`` values, passwords in URLs and in ``key=value`` text) with
  :data:`REDACTED`; a string longer than :data:`MAX_VALUE_CHARS` keeps its head and a marker.
- :class:`BoundedJSONRenderer` renders the event as one JSON line of at most :data:`MAX_LINE_BYTES`,
  shrinking the longest values and lists (with markers) when it would be longer.

Anything that is not plain JSON data is rendered with ``repr`` *before* redaction, so no object's repr
reaches the line unscrubbed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from structlog.typing import EventDict, WrappedLogger

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_VALUE_CHARS",
    "REDACTED",
    "BoundedJSONRenderer",
    "is_sensitive_key",
    "redact_event",
    "redact_text",
]

REDACTED = "[REDACTED]"
MAX_LINE_BYTES = 16 * 1024
MAX_VALUE_CHARS = 4096
MAX_CONTAINER_ITEMS = 100
MAX_DEPTH = 8
TRUNCATED_FLAG = "log_truncated"

# Substrings of a (lower-cased, "-" as "_") key whose value is a credential. Generous on purpose:
# redacting a harmless "token_file" costs nothing, printing one real token costs a rotation.
_SENSITIVE_KEY_PARTS = (
    "authorization",
    "api_key",
    "apikey",
    "token",
    "password",
    "passwd",
    "secret",
    "cookie",
    "credential",
    "private_key",
)
_SENSITIVE_KEY_EXACT = frozenset({"pwd", "dsn", "auth"})

# The patterns run on every logged string, so none may backtrack over a long run of characters: every
# repetition that can start at many positions is bounded and possessive ("{0,30}+"), and the values of
# key=value text are found by plain scanning once a credential key is seen.
_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # fundmodel API keys: "fmk_" and 43 URL-safe characters (shorter runs too: a truncated key is still one).
    (re.compile(r"fmk_[A-Za-z0-9_\-]++"), "fmk_" + REDACTED),
    # HTTP credentials in any header-like text: "Bearer <token>", "Basic <base64>" (token68, 8+ characters,
    # so prose such as "missing bearer token" stays readable).
    (re.compile(r"(?i)\b(bearer|basic)(\s++)[A-Za-z0-9\-._~+/]{8,}+=*+"), r"\1\2" + REDACTED),
    # The password of a URL: scheme://user:password@host.
    (
        re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]{0,30}+://[^/\s:@]{0,256}+):[^@\s/]{0,256}+@"),
        r"\1:" + REDACTED + "@",
    ),
)
# key=value or key: value text (libpq conninfo, query strings, config dumps, dict and header reprs). The
# key is matched possessively from the start of a word and judged afterwards; a quoted value is redacted
# up to its closing quote, an unquoted one up to the next space or "&" (punctuation included: a password
# may start with any character), a "Bearer"/"Basic" value after its scheme.
_ASSIGNMENT = re.compile(r"(?<![\w-])(?P<key>[\w-]{1,80}+)(?P<separator>[\"']?\s*+[=:]\s*+)")
_CREDENTIAL_KEY_WORD = re.compile(r"(?i)api[_-]?key|token|passw(?:or)?d|pwd|secret|authorization|cookie")
_SCHEME_PREFIX = re.compile(r"(?i)(?:bearer|basic)\s++")
_UNQUOTED_VALUE = re.compile(r"[^\s&]++")


def _redact_assignments(text: str) -> str:
    parts: list[str] = []
    position = 0
    for match in _ASSIGNMENT.finditer(text):
        if match.start() < position or not _CREDENTIAL_KEY_WORD.search(match["key"]):
            continue
        value_start = match.end()
        scheme = _SCHEME_PREFIX.match(text, value_start)
        if scheme is not None:
            value_start = scheme.end()
        if value_start >= len(text) or text.startswith(REDACTED, value_start):
            continue
        quote = text[value_start]
        value_end = text.find(quote, value_start + 1) + 1 if quote in "\"'" else 0
        if value_end == 0:  # unquoted, or a quote never closed
            quote = ""
            unquoted = _UNQUOTED_VALUE.match(text, value_start)
            if unquoted is None:
                continue
            value_end = unquoted.end()
        parts += (text[position:value_start], quote, REDACTED, quote)
        position = value_end
    parts.append(text[position:])
    return "".join(parts)


def is_sensitive_key(key: object) -> bool:
    """Whether a mapping key (or a header name) names a credential."""
    if isinstance(key, bytes):
        key = key.decode("latin-1")
    if not isinstance(key, str):
        return False
    normalized = key.strip().lower().replace("-", "_")
    return normalized in _SENSITIVE_KEY_EXACT or any(part in normalized for part in _SENSITIVE_KEY_PARTS)


def redact_text(text: str, *, max_chars: int = MAX_VALUE_CHARS) -> str:
    """``text`` cut to ``max_chars`` plus a marker, with every credential-shaped substring redacted.

    Cut first, so the work per string is bounded; a secret cut in two is still caught by its head.
    """
    text = _truncate(text, max_chars)
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return _redact_assignments(text)


def redact_event(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the event with credentials redacted and long values cut (see module doc)."""
    return {str(key): _redact_entry(key, value, 0) for key, value in event_dict.items()}


def _redact_entry(key: object, value: Any, depth: int) -> Any:
    if value is not None and not isinstance(value, bool) and is_sensitive_key(key):
        return REDACTED
    return _redact_value(value, depth)


def _redact_value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("latin-1"))
    if depth >= MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(value, Mapping):
        items = list(value.items())
        redacted = {str(k): _redact_entry(k, v, depth + 1) for k, v in items[:MAX_CONTAINER_ITEMS]}
        if len(items) > MAX_CONTAINER_ITEMS:
            redacted["..."] = f"[{len(items) - MAX_CONTAINER_ITEMS} more entries omitted]"
        return redacted
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        if len(items) == 2 and is_sensitive_key(items[0]):
            # A (name, value) pair, e.g. an ASGI header (b"authorization", b"Bearer ...").
            return [_redact_value(items[0], depth + 1), REDACTED]
        return [_redact_value(item, depth + 1) for item in _head_and_tail(items, MAX_CONTAINER_ITEMS)]
    # What JSONRenderer would repr() anyway: scrub the repr rather than trusting the object's.
    try:
        text = repr(value)
    except Exception as error:  # a broken __repr__ must not lose the log line
        text = f"<unrepresentable {type(value).__name__}: {type(error).__name__}>"
    return redact_text(text)


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}...[truncated {len(text) - max_chars} chars]"


# Essential fields kept when nothing else fits (never the case for the service's own events).
_ESSENTIAL_KEYS = ("event", "level", "timestamp", "logger", "request_id", "path", "error_type")


class BoundedJSONRenderer:
    """Render an event as one JSON line of at most ``max_bytes`` UTF-8 bytes.

    An event that fits is rendered unchanged. Otherwise its strings and lists are cut to ever smaller
    budgets (lists keep their head and tail: the frames nearest to the error are the last ones) and
    ``log_truncated`` is set; if even that does not fit, only the essential fields remain.
    """

    _BUDGETS: tuple[tuple[int, int], ...] = ((1024, 24), (256, 12), (64, 6))  # (chars, list items)

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        if max_bytes < 512:
            raise ValueError("max_bytes must leave room for the essential fields (at least 512)")
        self.max_bytes = max_bytes

    def __call__(self, _logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> str:
        line = _dumps(event_dict)
        original_bytes = len(line.encode("utf-8"))
        if original_bytes <= self.max_bytes:
            return line
        for max_chars, max_items in self._BUDGETS:
            shrunk = _shrink(event_dict, max_chars, max_items)
            shrunk[TRUNCATED_FLAG] = True
            line = _dumps(shrunk)
            if len(line.encode("utf-8")) <= self.max_bytes:
                return line
        essential: dict[str, Any] = {
            key: _shrink(event_dict[key], 128, 4) for key in _ESSENTIAL_KEYS if key in event_dict
        }
        essential[TRUNCATED_FLAG] = True
        essential["original_bytes"] = original_bytes
        return _dumps(essential)


def _shrink(value: Any, max_chars: int, max_items: int) -> Any:
    if isinstance(value, str):
        return _truncate(value, max_chars)
    if isinstance(value, Mapping):
        items = list(value.items())
        shrunk = {str(k): _shrink(v, max_chars, max_items) for k, v in items[:max_items]}
        if len(items) > max_items:
            shrunk["..."] = f"[{len(items) - max_items} more entries omitted]"
        return shrunk
    if isinstance(value, list | tuple):
        return [_shrink(item, max_chars, max_items) for item in _head_and_tail(list(value), max_items)]
    return value


def _head_and_tail(items: list[Any], max_items: int) -> list[Any]:
    """At most ``max_items`` items: the first and the last half, a marker between them.

    The tail matters most in a traceback: its last frames are where the error was raised.
    """
    if len(items) <= max_items:
        return items
    head, tail = max_items // 2, max_items - max_items // 2
    return [*items[:head], f"[{len(items) - max_items} items omitted]", *items[len(items) - tail :]]


def _dumps(event: Mapping[str, Any]) -> str:
    # ensure_ascii keeps the line one line of ASCII whatever the input; repr() is the fallback
    # structlog's JSONRenderer uses too (redact_event has already replaced such objects).
    return json.dumps(event, default=repr, ensure_ascii=True)
