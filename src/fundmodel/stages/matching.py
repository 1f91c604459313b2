"""The matching rule: how a raw stage spelling is reduced to a comparison key.

This is the one place the rule lives. To compare two spellings, reduce both with :func:`matching_key`:

1. trim surrounding whitespace;
2. case-fold (``SERIES`` -> ``series``; Unicode-aware, unlike ``lower``);
3. treat every run of whitespace (including no-break and other Unicode spaces), ``_``, ``-`` and Unicode dash
   punctuation as one separator, written as a single space, with none at either end;
4. camelCase: when the key from steps 1-3 matches nothing, a second key is tried in which every lower-case
   letter or digit followed by an upper-case letter also counts as a separator (``seriesA`` -> ``series a``).
   Splitting only as a second try keeps randomly-cased spellings such as ``pre seeD`` matching.

No other transformation happens: no fuzzy matching, no stripping of other punctuation (``series c+`` keeps its
``+``). :func:`matching_keys` returns the keys to try, in order.
"""

from __future__ import annotations

import re

MAX_STAGE_NAME_LENGTH = 64
"""Spellings longer than this are unknown without further inspection (bounds work on hostile input)."""

# Every Unicode "Pd" (dash punctuation) character plus U+2212 MINUS SIGN; ``\s`` covers Unicode spaces.
_DASHES = (
    "\u002d\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e17\u2e1a\u2e3a\u2e3b"
    "\u2e40\u2e5d\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d\U00010ead"
)
_SEPARATOR_RUN = re.compile(rf"[\s_{re.escape(_DASHES)}]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_unstorable_characters(text: str) -> bool:
    """Whether ``text`` holds NUL (U+0000) or an unpaired surrogate: text no store or client can hold.

    PostgreSQL refuses NUL in text, and a lone surrogate (``"\\ud800"`` in JSON) cannot be encoded as UTF-8,
    so neither could be stored nor echoed back; such input is malformed, never "an unknown name".
    """
    return "\x00" in text or (not text.isascii() and _SURROGATE.search(text) is not None)


def matching_key(spelling: str) -> str:
    """Reduce ``spelling`` to its key by steps 1-3 of the rule (no camelCase splitting)."""
    return _SEPARATOR_RUN.sub(" ", spelling.casefold()).strip()


def matching_keys(spelling: str) -> tuple[str, ...]:
    """The keys to look ``spelling`` up by: its plain key, then its camelCase-split key if that differs."""
    plain = matching_key(spelling)
    camel = matching_key(_CAMEL_BOUNDARY.sub(" ", spelling))
    return (plain,) if camel == plain else (plain, camel)
