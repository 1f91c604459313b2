"""API latency with stage validation off vs enforce, the validation layer's own cost, and throughput.

Prints one JSON document. Method (2-core box; client and server share it, so compare side by side):

* latency: two uvicorn servers on 127.0.0.1, one database each, mode ``off`` on one and ``enforce`` on the
  other; the same requests are sent alternately to both (interleaved, so drift hits both), and p50/p90
  per endpoint and input are reported with the difference and ratio;
* layer cost: the per-request plumbing (client -> effective mode -> decision -> metrics -> headers)
  timed in-process around exactly what a request runs, per mode;
* throughput: a bounded loop of concurrent httpx requests for a fixed time against the enforce server.

Usage: python bench/api.py [--requests 300] [--seconds 5] [--concurrency 16] [--database-url URL]
(with --database-url, it must name an empty PostgreSQL database; two schemas are created in it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TextIO

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from fundmodel.api.stage_validation import RequestContext, StageValidator
from fundmodel.auth.models import Principal
from fundmodel.auth.service import create_key
from fundmodel.db.brownout_store import BrownoutSchedule, BrownoutStore
from fundmodel.db.engine import create_db_engine
from fundmodel.db.migrate import upgrade_to_head
from fundmodel.db.mode_store import ModeStore
from fundmodel.db.seed import seed_demo
from fundmodel.observability.logging import configure_logging
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.observability.offenders import OffenderLogSampler
from fundmodel.settings import Settings
from fundmodel.usage.ledger import UsageLedger
from fundmodel.validation import DeprecationPolicy, ModeState, ValidationMode

# Run as `python bench/api.py`: the repository root is not on sys.path, and the server launcher is the
# one the tests use.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.api.servers import uvicorn_server

CANONICAL = {"seed": 0.4, "series_a": 0.4, "series_b": 0.2}
ALIASED = {"Seed": 0.4, "Series A": 0.4, "series-b": 0.2}


def _prepare_database(url: str, mode: ValidationMode) -> tuple[str, int]:
    engine = create_db_engine(url)
    upgrade_to_head(engine)
    fund_id = seed_demo(engine).fund_id
    key = create_key(engine, f"bench-{uuid.uuid4().hex[:6]}").secret
    ModeStore(engine, default=ModeState(ValidationMode.WARN)).set(mode, actor="bench", reason="benchmark")
    engine.dispose()
    return key, fund_id


@contextmanager
def _server(url: str, log: Path) -> Iterator[str]:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", "APP_ENV": "development"}
    with uvicorn_server(env, log, extra_args=("--log-level", "warning")) as base:
        yield base


Request = Callable[[httpx.Client, int], httpx.Response]


def _cases(names: dict[str, Any]) -> dict[str, Request]:
    def strategy(distribution: dict[str, float]) -> Request:
        return lambda c, _f: c.post(
            "/api/portfolio/strategies", json={"name": "b", "stageAllocation": distribution}
        )

    def replace(distribution: dict[str, float]) -> Request:
        return lambda c, _f: c.put(
            "/api/portfolio/strategies/1", json={"name": "b", "stageAllocation": distribution}
        )

    def company(stage: str) -> Request:
        return lambda c, f: c.post(
            f"/api/funds/{f}/companies", json={"name": "n", "stage": stage, "invested": 1.0}
        )

    def companies(stage: str) -> Request:
        return lambda c, f: c.get(f"/api/funds/{f}/companies", params={"stage": stage})

    def simulate(distribution: dict[str, float]) -> Request:
        body = {"fundSize": 1e8, "stageDistribution": distribution, "iterations": 1000, "seed": 1}
        return lambda c, _f: c.post("/api/monte-carlo/simulate", json=body)

    def compare(distribution: dict[str, float]) -> Request:
        body = {
            "fundSize": 1e8,
            "alternatives": [
                {"label": "a", "stageDistribution": distribution},
                {"label": "b", "stageDistribution": {"seed": 1}},
            ],
            "iterations": 500,
            "seed": 1,
        }
        return lambda c, _f: c.post("/api/monte-carlo/compare", json=body)

    del names
    return {
        "POST /api/portfolio/strategies canonical": strategy(CANONICAL),
        "POST /api/portfolio/strategies alias": strategy(ALIASED),
        "PUT /api/portfolio/strategies/{id} canonical": replace(CANONICAL),
        "POST /api/funds/{fundId}/companies canonical": company("series_a"),
        "POST /api/funds/{fundId}/companies alias": company("Series A"),
        "GET /api/funds/{fundId}/companies?stage canonical": companies("seed"),
        "GET /api/funds/{fundId}/companies?stage alias": companies("Seed"),
        "POST /api/monte-carlo/simulate canonical": simulate(CANONICAL),
        "POST /api/monte-carlo/compare canonical": compare(CANONICAL),
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _latency(servers: dict[str, tuple[str, str, int]], requests: int) -> dict[str, Any]:
    clients = {
        mode: httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        for mode, (base, key, _fund) in servers.items()
    }
    results: dict[str, Any] = {}
    try:
        for name, send in _cases({}).items():
            count = max(20, requests // 8) if "monte-carlo" in name else requests
            timings: dict[str, list[float]] = {mode: [] for mode in servers}
            for _ in range(5):  # warm-up
                for mode, client in clients.items():
                    send(client, servers[mode][2]).raise_for_status()
            for index in range(count):
                order = list(clients) if index % 2 == 0 else list(reversed(clients))
                for mode in order:
                    started = time.perf_counter()
                    response = send(clients[mode], servers[mode][2])
                    timings[mode].append(time.perf_counter() - started)
                    if response.status_code >= 300:
                        raise RuntimeError(f"{name} {mode}: {response.status_code} {response.text}")
            off = statistics.median(timings["off"]) * 1e6
            enforce = statistics.median(timings["enforce"]) * 1e6
            results[name] = {
                "requests_per_mode": count,
                "p50_us_off": round(off, 1),
                "p50_us_enforce": round(enforce, 1),
                "p90_us_off": round(_percentile(timings["off"], 0.9) * 1e6, 1),
                "p90_us_enforce": round(_percentile(timings["enforce"], 0.9) * 1e6, 1),
                "p50_delta_us": round(enforce - off, 1),
                "p50_ratio": round(enforce / off, 4),
            }
    finally:
        for client in clients.values():
            client.close()
    return results


def _layer_cost(url: str, calls: int, log_stream: TextIO) -> tuple[dict[str, Any], dict[str, Any]]:
    """Time exactly what one request runs in the validation layer, in-process, per mode.

    The offender log runs with the service's default sampling (the first 60 events per endpoint per
    minute, then 1 %) and writes JSON lines to a real file, as in production; its cost shows in p99.
    """
    engine = create_db_engine(url)
    metrics = ServiceMetrics(CollectorRegistry())
    out: dict[str, Any] = {}
    configure_logging("INFO", stream=log_stream)
    defaults = Settings()
    ledger_cost: dict[str, Any] = {}
    for mode in ValidationMode:
        store = ModeStore(engine, default=ModeState(mode))
        # The same layer without and with the per-client usage ledger, called alternately (one run, the
        # same drift): "before" is the layer as it was before the ledger.
        without_ledger, with_ledger = (
            _validator(engine, store, metrics, defaults, usage=usage)
            for usage in (
                None,
                UsageLedger(
                    max_spellings=defaults.stage_usage_max_spellings,
                    max_held_keys=defaults.stage_usage_max_held_keys,
                ),
            )
        )
        principal = Principal(client_id="key-1", name="bench")
        context = RequestContext("/api/portfolio/strategies", "bench", "r")
        for label, distribution in (("canonical", CANONICAL), ("alias", ALIASED)):
            samples: dict[str, list[float]] = {"before": [], "after": []}
            for index in range(calls):
                order = (("before", without_ledger), ("after", with_ledger))
                for variant, validator in order if index % 2 == 0 else order[::-1]:
                    started = time.perf_counter()
                    validation = validator.for_request(principal, context)
                    validation.distribution(distribution, field="stageAllocation")
                    validation.response_headers()
                    samples[variant].append(time.perf_counter() - started)
            after = samples["after"]
            out[f"{mode.value} {label}"] = {
                "p50_us": round(statistics.median(after) * 1e6, 2),
                "p99_us": round(_percentile(after, 0.99) * 1e6, 2),
                "mean_us": round(statistics.fmean(after) * 1e6, 2),
            }
            before_p50 = statistics.median(samples["before"]) * 1e6
            after_p50 = statistics.median(after) * 1e6
            ledger_cost[f"{mode.value} {label}"] = {
                "p50_us_without_ledger": round(before_p50, 2),
                "p50_us_with_ledger": round(after_p50, 2),
                "p50_ratio": round(after_p50 / before_p50, 3),
            }
    engine.dispose()
    return out, ledger_cost


def _validator(
    engine: Engine,
    store: ModeStore,
    metrics: ServiceMetrics,
    defaults: Settings,
    *,
    usage: UsageLedger | None,
) -> StageValidator:
    return StageValidator(
        mode_store=store,
        brownouts=BrownoutSchedule(BrownoutStore(engine, sunset_at=defaults.stage_sunset_date)),
        metrics=metrics,
        offenders=OffenderLogSampler(
            metrics,
            per_minute=defaults.stage_offender_log_per_minute,
            fraction=defaults.stage_offender_log_sample_fraction,
        ),
        policy=DeprecationPolicy(deprecated_at=_utc("2026-12-01"), sunset_at=_utc("2027-06-01")),
        canary_salt="bench",
        usage=usage,
    )


def _utc(day: str) -> Any:
    from datetime import UTC, datetime

    return datetime.fromisoformat(day).replace(tzinfo=UTC)


async def _throughput(base: str, key: str, fund: int, seconds: float, concurrency: int) -> dict[str, Any]:
    targets: dict[str, Callable[[httpx.AsyncClient], Any]] = {
        "POST /api/portfolio/strategies": lambda c: c.post(
            "/api/portfolio/strategies", json={"name": "t", "stageAllocation": CANONICAL}
        ),
        "GET /api/funds/{fundId}/companies": lambda c: c.get(
            f"/api/funds/{fund}/companies", params={"stage": "seed"}
        ),
    }
    results: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    for name, send in targets.items():
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=30
        ) as client:
            stop_at = time.perf_counter() + seconds
            started = time.perf_counter()
            per_worker = await asyncio.gather(
                *(_load_worker(client, send, stop_at) for _ in range(concurrency))
            )
            elapsed = time.perf_counter() - started
        latencies = [value for worker, _ in per_worker for value in worker]
        errors = sum(count for _, count in per_worker)
        done = len(latencies)
        results[name] = {
            "requests": done,
            "errors": errors,
            "seconds": round(elapsed, 2),
            "requests_per_second": round(done / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1e3, 2),
            "p99_ms": round(_percentile(latencies, 0.99) * 1e3, 2),
        }
    return results


async def _load_worker(
    client: httpx.AsyncClient, send: Callable[[httpx.AsyncClient], Any], stop_at: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        response = await send(client)
        latencies.append(time.perf_counter() - started)
        errors += response.status_code >= 300
    return latencies, errors


def _database_urls(base_url: str | None, directory: Path) -> dict[str, str]:
    if base_url is None:
        return {mode: f"sqlite:///{directory / f'{mode}.sqlite3'}" for mode in ("off", "enforce")}
    import psycopg

    conninfo = base_url.replace("postgresql+psycopg://", "postgresql://")
    urls = {}
    for mode in ("off", "enforce"):
        schema = f"bench_{mode}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        urls[mode] = f"{base_url}?options=-csearch_path%3D{schema}"
    return urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--layer-calls", type=int, default=20_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fm-bench-api-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        urls = _database_urls(args.database_url, directory)
        servers: dict[str, tuple[str, str, int]] = {}
        for mode, url in urls.items():
            key, fund = _prepare_database(url, ValidationMode(mode))
            base = stack.enter_context(_server(url, directory / f"{mode}.log"))
            servers[mode] = (base, key, fund)
        latency = _latency(servers, args.requests)
        log_stream = stack.enter_context((directory / "layer-offenders.log").open("a", encoding="utf-8"))
        layer, ledger_cost = _layer_cost(urls["off"], args.layer_calls, log_stream)
        base, key, fund = servers["enforce"]
        throughput = asyncio.run(_throughput(base, key, fund, args.seconds, args.concurrency))

    cheap = [v for k, v in latency.items() if "monte-carlo" not in k]
    report = {
        "benchmark": "api",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "database": "postgresql" if args.database_url else "sqlite",
        "latency_off_vs_enforce": latency,
        "validation_layer_per_request": layer,
        "usage_ledger_before_after": ledger_cost,
        "throughput_enforce": throughput,
        "summary": {
            "max_p50_delta_us": max(v["p50_delta_us"] for v in latency.values()),
            "max_p50_ratio": max(v["p50_ratio"] for v in latency.values()),
            "worst_endpoint": max(latency, key=lambda name: latency[name]["p50_ratio"]),
            "layer_p50_us_max": max(v["p50_us"] for v in layer.values()),
            "median_p50_ratio_non_simulation": round(statistics.median(v["p50_ratio"] for v in cheap), 4),
            "layer_p50_us_enforce_alias": layer["enforce alias"]["p50_us"],
            "target": "validation adds <= 3 % and <= 50 us to p50 latency",
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
