"""Structured logging: one JSON object per line, ISO-8601 UTC timestamps, a minimum level.

Call :func:`configure_logging` once at start-up (the app factory or the CLI), never at import.
structlog events and stdlib ``logging`` records (uvicorn, gunicorn, alembic) share the same format
and stream, so a log shipper sees one schema. Running it again replaces the previous configuration.

Both paths end in the same three steps: a traceback becomes a list of frames (file, line, function)
*without* local variables (those held the raw request headers, API keys included, and made one line
hundreds of KB), then :mod:`fundmodel.observability.redaction` redacts credentials and bounds every
line to 16 KiB.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import Processor

from fundmodel.errors import ConfigurationError
from fundmodel.observability.redaction import MAX_LINE_BYTES, BoundedJSONRenderer, redact_event

__all__ = ["LOG_LEVELS", "configure_logging", "parse_log_level"]

LOG_LEVELS: dict[str, int] = {
    "CRITICAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}

_HANDLER_MARK = "_fundmodel_json_handler"
# Frames kept per exception: the first and last half of the stack (the error is raised in the last).
MAX_TRACEBACK_FRAMES = 20


def _final_processors() -> list[Processor]:
    """Traceback as data without locals, then redaction, then one bounded JSON line."""
    return [
        structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False, max_frames=MAX_TRACEBACK_FRAMES, use_rich=False)
        ),
        redact_event,
        BoundedJSONRenderer(MAX_LINE_BYTES),
    ]


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

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            *_final_processors(),
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
            *_final_processors(),
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
    # httpx logs every request's full URL at INFO, and outgoing webhook URLs are secrets (a Slack token in
    # the path); the notification dispatcher logs each attempt itself, naming the target only.
    logging.getLogger("httpx").setLevel(max(level_number, logging.WARNING))
