"""Shared fixtures: a JSON log stream configured through the real logging setup, then undone."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from fundmodel.observability.logging import configure_logging


class LogCapture:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def lines(self) -> list[str]:
        return [line for line in self.stream.getvalue().splitlines() if line]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def log_capture() -> Iterator[LogCapture]:
    stream = io.StringIO()
    root = logging.getLogger()
    level_before = root.level
    handlers_before = list(root.handlers)
    configure_logging("DEBUG", stream=stream, cache_loggers=False)
    try:
        yield LogCapture(stream)
    finally:
        structlog.reset_defaults()
        for handler in list(root.handlers):
            if handler not in handlers_before:
                root.removeHandler(handler)
        root.setLevel(level_before)
