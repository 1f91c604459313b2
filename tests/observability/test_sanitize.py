"""escape_log_text: bounded, control-free, reversible when not cut."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.observability.sanitize import ELLIPSIS, escape_log_text


def unescape(escaped: str) -> str:
    return escaped.encode("latin-1", "backslashreplace").decode("unicode_escape")


def test_plain_text_is_unchanged() -> None:
    assert escape_log_text("Series A", 64) == "Series A"


def test_control_and_invisible_characters_are_escaped() -> None:
    assert escape_log_text("a\r\nb\x00", 64) == "a\\x0d\\x0ab\\x00"
    assert escape_log_text("x\u202ey", 64) == "x\\u202ey"  # bidi override
    assert escape_log_text("\u2028", 64) == "\\u2028"
    assert escape_log_text("back\\slash", 64) == "back\\\\slash"
    assert escape_log_text("\ud800", 64) == "\\ud800"  # lone surrogate: unencodable otherwise


def test_truncation_marks_the_cut_and_never_splits_an_escape() -> None:
    assert escape_log_text("a" * 64, 64) == "a" * 64
    assert escape_log_text("a" * 65, 64) == "a" * 63 + ELLIPSIS
    cut = escape_log_text("a" * 61 + "\x01bc", 64)
    assert cut == "a" * 61 + ELLIPSIS


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        escape_log_text("x", 0)


@given(value=st.text(), max_chars=st.integers(1, 80))
def test_output_is_bounded_and_free_of_control_characters(value: str, max_chars: int) -> None:
    escaped = escape_log_text(value, max_chars)
    assert len(escaped) <= max_chars
    assert all(unicodedata.category(c) not in {"Cc", "Cf", "Cs", "Zl", "Zp"} for c in escaped)
    escaped.encode("utf-8")  # always encodable
    full = escape_log_text(value, 1_000_000)
    if len(full) <= max_chars:
        assert escaped == full
    else:
        assert escaped.endswith(ELLIPSIS)
        assert full.startswith(escaped[: -len(ELLIPSIS)])


@given(value=st.text(max_size=20))
def test_uncut_escapes_round_trip(value: str) -> None:
    escaped = escape_log_text(value, 10_000)
    assert unescape(escaped) == value
