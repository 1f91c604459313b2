"""Benchmark: stage normalization of 1,000,000 legacy rows on PostgreSQL or SQLite (JSON output).

Loads a scratch database (PostgreSQL ``fm_ops_bench_*`` or a temporary SQLite file, removed afterwards)
with companies and deals of which
about 30 % carry a legacy spelling, then times, each through the real ``fundmodel db`` commands in a
child process: ``backup``, ``verify-backup``, ``normalize-stages --apply`` (plan, backup gate, batches and
audit rows) and ``verify``. Peak memory is the child's peak RSS. Target: apply >= 50,000 rows/s and
< 300 MB. ``seconds`` is the command itself (imports done), ``cpu_seconds`` its own CPU time; the process time
with interpreter start-up is reported next to it.

    .venv/bin/python bench/normalize.py [--rows 1000000] [--batch-size 5000] [--legacy-share 0.3]
        [--backend postgresql|sqlite]

To compare two trees, run it with ``PYTHONPATH=<tree>/src`` (the child processes inherit it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine

from fundmodel.db.migrate import upgrade_to_head
from fundmodel.ops.connection import open_engine

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
CANONICAL = ["pre_seed", "seed", "series_a", "series_b", "series_c", "series_d", "growth", "late_stage"]
LEGACY = [
    " Seed ", "SEED", "Series A", "series-a", "series-c+", "Series C+", "Pre Seed", "angel",
    "growth stage", "late-stage", "Pre IPO", "Series E", "seriesB", "Series B", "seed round",
]  # fmt: skip

CHILD = """
import json, resource, sys, time
import typer
from fundmodel.cli.db_ops import register_db_ops
app = typer.Typer()
register_db_ops(app)
started = time.perf_counter()
start_usage = resource.getrusage(resource.RUSAGE_SELF)
code = 0
try:
    returned = app(sys.argv[1:], standalone_mode=False)
    code = returned if isinstance(returned, int) else 0
except SystemExit as exc:
    code = exc.code or 0
except Exception as exc:  # click exceptions when standalone_mode is off
    code = getattr(exc, "exit_code", 1)
elapsed = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
# The command's own CPU time (imports excluded): less sensitive to a loaded machine than the wall clock,
# and all of the work on SQLite (in-process); PostgreSQL's server side is not in it.
cpu = usage.ru_utime + usage.ru_stime - start_usage.ru_utime - start_usage.ru_stime
print(
    json.dumps({"exit": code, "seconds": elapsed, "cpu_seconds": cpu, "peak_rss_mb": usage.ru_maxrss / 1024}),
    file=sys.stderr,
)
"""


def run_command(args: list[str], *, allow_failure: bool = False) -> dict[str, Any]:
    """Run one ``fundmodel db`` command in a fresh interpreter; its stdout JSON plus timing."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, *args, "--json"], capture_output=True, text=True, check=False
    )
    process_seconds = time.perf_counter() - started
    stats = json.loads(completed.stderr.strip().splitlines()[-1])
    stats["process_seconds"] = process_seconds
    if stats["exit"] != 0 and not allow_failure:
        raise SystemExit(f"{args[0]} failed: {completed.stderr.strip()[-2000:]}")
    stats["output"] = json.loads(completed.stdout) if completed.stdout.strip() else None
    return stats


def bench_rows(rows: int, legacy_share: float, seed: int) -> tuple[list[str], list[str], int]:
    """The stages of the companies and of the deals (70 % / 30 % of ``rows``), and how many are legacy."""
    rng = random.Random(seed)
    legacy = 0

    def stage() -> str:
        nonlocal legacy
        if rng.random() < legacy_share:
            legacy += 1
            return rng.choice(LEGACY)
        return rng.choice(CANONICAL)

    companies = rows * 7 // 10
    return [stage() for _ in range(companies)], [stage() for _ in range(rows - companies)], legacy


FUND_INSERT = (
    "INSERT INTO funds (name, vintage_year, committed_capital, management_fee_rate, "
    "carried_interest_rate) VALUES ('Bench Fund', 2020, 1e9, 0.02, 0.2) RETURNING id"
)
STRATEGY_INSERT = (
    "INSERT INTO portfolio_strategies (name, stage_allocation) "
    """VALUES ('Bench', '{"seed": 0.5, "series_a": 0.5}')"""
)


def load_postgresql(url: str, companies: list[str], deals: list[str]) -> None:
    """COPY the rows in, then VACUUM ANALYZE as after any bulk load."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        fund_id = connection.execute(FUND_INSERT).fetchone()[0]  # type: ignore[index]
        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY portfolio_companies (fund_id, name, stage, invested, reserve_allocation) FROM STDIN"
            ) as copy:
                for index, stage in enumerate(companies):
                    copy.write_row((fund_id, f"Company {index}", stage, 1000000, 500000))
            with cursor.copy("COPY deal_opportunities (fund_id, name, stage) FROM STDIN") as copy:
                for index, stage in enumerate(deals):
                    copy.write_row((fund_id, f"Deal {index}", stage))
        connection.execute(STRATEGY_INSERT)
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE portfolio_companies")
        connection.execute("VACUUM ANALYZE deal_opportunities")


def load_sqlite(url: str, companies: list[str], deals: list[str]) -> None:
    """One transaction of executemany inserts, then ANALYZE."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        with connection:
            fund_id = connection.execute(FUND_INSERT).fetchone()[0]
            connection.executemany(
                "INSERT INTO portfolio_companies (fund_id, name, stage, invested, reserve_allocation) "
                "VALUES (?, ?, ?, 1000000, 500000)",
                ((fund_id, f"Company {index}", stage) for index, stage in enumerate(companies)),
            )
            connection.executemany(
                "INSERT INTO deal_opportunities (fund_id, name, stage) VALUES (?, ?, ?)",
                ((fund_id, f"Deal {index}", stage) for index, stage in enumerate(deals)),
            )
            connection.execute(STRATEGY_INSERT)
        connection.execute("ANALYZE")
    finally:
        connection.close()


@dataclass(frozen=True)
class Backend:
    name: str
    databases: Callable[[str], contextlib.AbstractContextManager[Callable[[str], str]]]
    load: Callable[[str, list[str], list[str]], None]


@contextmanager
def postgresql_databases(prefix: str) -> Iterator[Callable[[str], str]]:
    """Migrated scratch databases on the shared server, each dropped at the end."""
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def database(suffix: str) -> str:
        name = f"{prefix}{suffix}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        created.append(name)
        return migrated(f"{SERVER}/{name}")

    try:
        yield database
    finally:
        with admin.connect() as connection:
            for name in created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def sqlite_databases(prefix: str) -> Iterator[Callable[[str], str]]:
    """Migrated SQLite files in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        yield lambda suffix: migrated(f"sqlite:///{directory}/bench{suffix}.sqlite3")


def migrated(url: str) -> str:
    engine = open_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    return url


BACKENDS = {
    "postgresql": Backend("PostgreSQL", postgresql_databases, load_postgresql),
    "sqlite": Backend("SQLite", sqlite_databases, load_sqlite),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--legacy-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="postgresql")
    options = parser.parse_args()
    backend = BACKENDS[options.backend]

    with backend.databases(f"fm_ops_bench_{uuid.uuid4().hex[:8]}") as database:
        url = database("")
        started = time.perf_counter()
        companies, deals, legacy = bench_rows(options.rows, options.legacy_share, options.seed)
        backend.load(url, companies, deals)
        load_seconds = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix="fm_ops_bench_") as directory:
            backups = Path(directory)
            common = ["--database-url", url]
            backup = run_command(["backup", "--backup-dir", str(backups), *common])
            backup_file = backup["output"]["file"]
            verified = run_command(["verify-backup", backup_file, *common])
            apply = run_command(
                [
                    "normalize-stages", "--apply", "--backup-dir", str(backups),
                    "--batch-size", str(options.batch_size), *common,
                ]
            )  # fmt: skip
            verify = run_command(["verify", *common])
            again = run_command(["normalize-stages", "--apply", "--backup-dir", str(backups), *common])
            # The RPO drill's restore step: the pre-apply backup into a scratch database, then verify it.
            restore_url = database("_restored")
            restored = run_command(["restore", backup_file, "--target", restore_url, "--confirm", "CONFIRM"])
            restored_verify = run_command(["verify", "--database-url", restore_url], allow_failure=True)
    changed = apply["output"]["result"]["rows_changed"]
    report = {
        "benchmark": f"normalize-stages on {backend.name}",
        "rows": options.rows,
        "legacy_rows": legacy,
        "legacy_share": round(legacy / options.rows, 4),
        "batch_size": options.batch_size,
        "load_seconds": round(load_seconds, 2),
        "backup": {
            "seconds": round(backup["seconds"], 2),
            "size_bytes": backup["output"]["size_bytes"],
            "peak_rss_mb": round(backup["peak_rss_mb"], 1),
        },
        "verify_backup": {
            "seconds": round(verified["seconds"], 2),
            "ok": verified["output"]["ok"],
            "peak_rss_mb": round(verified["peak_rss_mb"], 1),
        },
        "apply": {
            "seconds": round(apply["seconds"], 2),
            "cpu_seconds": round(apply["cpu_seconds"], 2),
            "process_seconds_with_interpreter_start": round(apply["process_seconds"], 2),
            "rows_changed": changed,
            "audit_rows": changed,
            "rows_per_second": round(options.rows / apply["seconds"]),
            "changed_rows_per_second": round(changed / apply["seconds"]),
            "peak_rss_mb": round(apply["peak_rss_mb"], 1),
            "batches": apply["output"]["result"]["batches"],
        },
        "verify": {"seconds": round(verify["seconds"], 2), "ok": verify["output"]["ok"]},
        "restore_pre_apply_backup": {
            "seconds": round(restored["seconds"], 2),
            "peak_rss_mb": round(restored["peak_rss_mb"], 1),
        },
        "verify_restored": {
            "seconds": round(restored_verify["seconds"], 2),
            "exit": restored_verify["exit"],
            "note": "the restored copy holds the legacy rows again, so verify fails its canonical check",
        },
        "second_apply_rows_changed": (again["output"] or {}).get("rows_changed"),
        "targets": {"rows_per_second": 50_000, "peak_rss_mb": 300},
        "meets_targets": options.rows / apply["seconds"] >= 50_000
        and apply["peak_rss_mb"] < 300
        and changed == legacy,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
