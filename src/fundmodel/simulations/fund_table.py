"""The per-fund table of a simulation as CSV: one row per simulated fund, one column per per-fund value.

Used by ``fundmodel simulate --export-funds`` and by ``POST /api/monte-carlo/simulate`` answering
``Accept: text/csv``. Columns: ``fund`` (the fund's 0-based index in the run), then every per-fund value
the engine keeps (:attr:`SimulationResult.samples`: ``netTvpi``, ``dpi``, ``rvpi``, ``netIrr``,
``grossMoic``, ``lossRatio``, ``paidIn``, ...), in the engine's order. Numbers are written with Python's
shortest round-trip form, so a reader gets back the engine's doubles exactly.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from fundmodel.engines.montecarlo import SimulationResult

CSV_MEDIA_TYPE = "text/csv"
FUND_COLUMN = "fund"
ROWS_PER_CHUNK = 2_000
"""Rows formatted at a time: bounds the text held in memory while a large table streams out."""


def fund_table_columns(result: SimulationResult) -> list[str]:
    return [FUND_COLUMN, *result.samples]


def csv_chunks(result: SimulationResult) -> Iterator[str]:
    """The per-fund table as CSV text in pieces: the header line, then ``ROWS_PER_CHUNK`` rows each."""
    columns = list(result.samples.values())
    funds = result.engine.iterations
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fund_table_columns(result))
    yield _drain(buffer)
    for start in range(0, funds, ROWS_PER_CHUNK):
        stop = min(start + ROWS_PER_CHUNK, funds)
        values = [column[start:stop].tolist() for column in columns]
        writer.writerows(zip(range(start, stop), *values, strict=True))
        yield _drain(buffer)


def write_fund_table(result: SimulationResult, stream: TextIO) -> None:
    for chunk in csv_chunks(result):
        stream.write(chunk)


def prefers_csv(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for the CSV table rather than the JSON summary.

    CSV when ``text/csv`` is listed with a non-zero quality at least that of ``application/json``;
    wildcards (``*/*``) keep the JSON default.
    """
    if not accept:
        return False
    csv_quality = 0.0
    json_quality = 0.0
    for media_range in accept.split(","):
        media_type, _, parameters = media_range.partition(";")
        quality = _quality(parameters)
        media_type = media_type.strip().lower()
        if media_type == CSV_MEDIA_TYPE:
            csv_quality = max(csv_quality, quality)
        elif media_type == "application/json":
            json_quality = max(json_quality, quality)
    return csv_quality > 0.0 and csv_quality >= json_quality


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return 0.0
            return min(max(quality, 0.0), 1.0) if math.isfinite(quality) else 0.0
    return 1.0


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
