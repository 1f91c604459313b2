"""Structured logging: one JSON object per line, ISO-8601 UTC timestamps, a minimum level.

Call :func:`configure_logging` once at start-up (the app factory or the CLI), never at import.
structlog events and stdlib ``logging`` records (uvicorn, gunicorn, alembic) share the same format
and stream, so a log shipper sees one schema. Running it again replaces the previous configuration.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.typing import Processor

from fundmodel.errors import ConfigurationError

__all__ = ["LOG_LEVELS", "configure_logging", "parse_log_level"]

LOG_LEVELS: dict[str, int] = {
    "CRITICAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}

_HANDLER_MARK = "_fundmodel_json_handler"


def parse_log_level(level: str | int) -> int:
    """A level name (any case) or number as a ``logging`` level; ConfigurationError otherwise."""
    if isinstance(level, int) and not isinstance(level, bool):
        if level in LOG_LEVELS.values():
            return level
    elif isinstance(level, str) and level.strip().upper() in LOG_LEVELS:
        return LOG_LEVELS[level.strip().upper()]
    names = ", ".join(LOG_LEVELS)
    raise ConfigurationError(f"invalid log level {level!r}; use one of {names}")


def configure_logging(
    level: str | int = "INFO",
    *,
    stream: TextIO | None = None,
    cache_loggers: bool = True,
) -> None:
    """Send structlog and stdlib logging to ``stream`` (default stdout) as JSON lines."""
    level_number = parse_log_level(level)
    output = stream if stream is not None else sys.stdout
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    renderer = structlog.processors.JSONRenderer()

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.dict_tracebacks,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        logger_factory=structlog.WriteLoggerFactory(file=output),
        cache_logger_on_first_use=cache_loggers,
    )

    foreign_chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
        structlog.stdlib.ExtraAdder(),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=foreign_chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.dict_tracebacks,
            renderer,
        ],
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for previous in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level_number)
