"""A small client for Prometheus' HTTP API (``/api/v1/query`` and ``/api/v1/query_range``).

Every failure - unreachable server, timeout, HTTP error, an ``"error"`` answer, a body that is not the
documented JSON - raises :class:`~fundmodel.errors.MeasurementUnavailableError` with one clear line, so
callers can turn it into "no data" and never into a healthy reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from fundmodel.errors import MeasurementUnavailableError

DEFAULT_TIMEOUT_SECONDS = 5.0
_MAX_ERROR_TEXT = 300


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant-vector (or scalar) answer: its labels and value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a range answer: its labels and ``(unix time, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


class PrometheusClient:
    """Queries one Prometheus server; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = base_url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise MeasurementUnavailableError(f"PROMETHEUS_URL must be an http(s) URL, got {base_url!r:.80}")
        self.base_url = url
        self._http = httpx.Client(
            base_url=url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def query(self, promql: str, *, at: datetime | None = None) -> list[Sample]:
        """Evaluate an instant query; a scalar answer comes back as one sample without labels."""
        params = {"query": promql}
        if at is not None:
            params["time"] = _unix(at)
        data = self._get("/api/v1/query", params)
        kind, result = data.get("resultType"), data.get("result") or []
        try:
            if kind == "vector":
                return [Sample(dict(item.get("metric", {})), _number(item["value"][1])) for item in result]
            if kind == "scalar":
                return [Sample({}, _number(result[1]))]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise self._garbage(f"unexpected {kind} result ({exc})") from exc
        raise self._garbage(f"unexpected result type {kind!r} for an instant query")

    def query_range(self, promql: str, *, start: datetime, end: datetime, step: timedelta) -> list[Series]:
        """Evaluate a range query from ``start`` to ``end`` every ``step``."""
        if step.total_seconds() <= 0 or end < start:
            raise ValueError("query_range needs start <= end and a positive step")
        params = {
            "query": promql,
            "start": _unix(start),
            "end": _unix(end),
            "step": f"{step.total_seconds():g}",
        }
        data = self._get("/api/v1/query_range", params)
        if data.get("resultType") != "matrix":
            raise self._garbage(f"unexpected result type {data.get('resultType')!r} for a range query")
        try:
            return [
                Series(
                    dict(item.get("metric", {})),
                    tuple((float(t), _number(v)) for t, v in item["values"]),
                )
                for item in data["result"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._garbage(f"unexpected matrix result ({exc})") from exc

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise MeasurementUnavailableError(
                f"Prometheus at {self.base_url} did not answer in time ({type(exc).__name__})",
                extra={"reachable": False},
            ) from exc
        except httpx.HTTPError as exc:
            raise MeasurementUnavailableError(
                f"Prometheus at {self.base_url} is unreachable: {_one_line(exc)}",
                extra={"reachable": False},
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            raise MeasurementUnavailableError(
                f"Prometheus rejected the query ({body.get('errorType', 'error')}, HTTP "
                f"{response.status_code}): {str(body.get('error', ''))[:_MAX_ERROR_TEXT]}"
            )
        if response.status_code != 200:
            raise MeasurementUnavailableError(
                f"Prometheus at {self.base_url} answered HTTP {response.status_code} on {path}"
            )
        if not isinstance(body, dict) or body.get("status") != "success":
            raise self._garbage("the answer is not Prometheus API JSON")
        data = body.get("data")
        if not isinstance(data, dict):
            raise self._garbage("the answer has no data object")
        return data

    def _garbage(self, what: str) -> MeasurementUnavailableError:
        return MeasurementUnavailableError(f"Prometheus at {self.base_url}: {what}")


def _unix(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("Prometheus query times must be timezone-aware")
    return f"{moment.timestamp():.3f}"


def _number(text: Any) -> float:
    # Prometheus encodes sample values as strings, including "NaN", "+Inf" and "-Inf".
    if not isinstance(text, str):
        raise ValueError(f"sample value {text!r} is not a string")
    return float(text)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:_MAX_ERROR_TEXT]
