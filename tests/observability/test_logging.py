"""configure_logging: JSON lines with ISO timestamps and a level filter, for structlog and stdlib."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import datetime

import pytest
import structlog

from fundmodel.errors import ConfigurationError
from fundmodel.observability.logging import configure_logging, parse_log_level

from .conftest import LogCapture


@pytest.mark.parametrize(
    ("given", "expected"),
    [("info", logging.INFO), (" WARNING ", logging.WARNING), ("debug", 10), (40, 40)],
)
def test_parse_log_level(given: str | int, expected: int) -> None:
    assert parse_log_level(given) == expected


@pytest.mark.parametrize("given", ["verbose", "", 15, True])
def test_parse_log_level_rejects_unknown_levels(given: str | int) -> None:
    with pytest.raises(ConfigurationError, match="invalid log level"):
        parse_log_level(given)


def test_structlog_events_are_json_lines_with_iso_utc_timestamps(log_capture: LogCapture) -> None:
    structlog.get_logger("fundmodel.test").info("hello", answer=42, text="line\nbreak")
    [line] = log_capture.lines()
    [event] = log_capture.events()
    assert "\n" not in line
    assert event["event"] == "hello"
    assert event["answer"] == 42
    assert event["text"] == "line\nbreak"
    assert event["level"] == "info"
    stamp = datetime.fromisoformat(event["timestamp"])
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_stdlib_records_share_the_json_format(log_capture: LogCapture) -> None:
    logging.getLogger("uvicorn.error").warning("worker %s booted", 7)
    [event] = log_capture.events()
    assert event["event"] == "worker 7 booted"
    assert event["level"] == "warning"
    assert event["logger"] == "uvicorn.error"
    assert "timestamp" in event


def test_exceptions_are_structured(log_capture: LogCapture) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger().exception("failed")
    [event] = log_capture.events()
    assert event["exception"][0]["exc_type"] == "RuntimeError"


def test_level_filter_and_reconfiguration_do_not_duplicate(log_capture: LogCapture) -> None:
    configure_logging("warning", stream=log_capture.stream, cache_loggers=False)
    configure_logging("WARNING", stream=log_capture.stream, cache_loggers=False)
    structlog.get_logger().info("hidden")
    logging.getLogger("x").info("hidden too")
    structlog.get_logger().warning("shown")
    logging.getLogger("x").error("shown too")
    assert [e["event"] for e in log_capture.events()] == ["shown", "shown too"]


def test_importing_the_package_configures_nothing() -> None:
    code = (
        "import logging, structlog\n"
        "import fundmodel.observability.logging, fundmodel.observability.offenders\n"
        "import fundmodel.observability.metrics, fundmodel.observability.alertmanager\n"
        "assert not structlog.is_configured()\n"
        "assert not logging.getLogger().handlers\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
