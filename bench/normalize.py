"""Benchmark: stage normalization of 1,000,000 legacy rows on PostgreSQL (JSON output).

Loads a scratch database (``fm_ops_bench_*``, dropped afterwards) with companies and deals of which
about 30 % carry a legacy spelling, then times, each through the real ``fundmodel db`` commands in a
child process: ``backup``, ``verify-backup``, ``normalize-stages --apply`` (plan, backup gate, batches and
audit rows) and ``verify``. Peak memory is the child's peak RSS. Target: apply >= 50,000 rows/s and
< 300 MB. ``seconds`` is the command itself (imports done); the process time with interpreter start-up
is reported next to it.

    .venv/bin/python bench/normalize.py [--rows 1000000] [--batch-size 5000] [--legacy-share 0.3]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
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
code = 0
try:
    returned = app(sys.argv[1:], standalone_mode=False)
    code = returned if isinstance(returned, int) else 0
except SystemExit as exc:
    code = exc.code or 0
except Exception as exc:  # click exceptions when standalone_mode is off
    code = getattr(exc, "exit_code", 1)
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"exit": code, "seconds": elapsed, "peak_rss_mb": peak / 1024}), file=sys.stderr)
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


def load_rows(dsn: str, rows: int, legacy_share: float, seed: int) -> int:
    """COPY the rows in; returns how many carry a legacy spelling."""
    rng = random.Random(seed)
    legacy = 0
    companies = rows * 7 // 10
    with psycopg.connect(dsn) as connection:
        fund_id = connection.execute(
            "INSERT INTO funds (name, vintage_year, committed_capital, management_fee_rate, "
            "carried_interest_rate) VALUES ('Bench Fund', 2020, 1e9, 0.02, 0.2) RETURNING id"
        ).fetchone()[0]  # type: ignore[index]

        def stage() -> str:
            nonlocal legacy
            if rng.random() < legacy_share:
                legacy += 1
                return rng.choice(LEGACY)
            return rng.choice(CANONICAL)

        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY portfolio_companies (fund_id, name, stage, invested, reserve_allocation) FROM STDIN"
            ) as copy:
                for index in range(companies):
                    copy.write_row((fund_id, f"Company {index}", stage(), 1000000, 500000))
            with cursor.copy("COPY deal_opportunities (fund_id, name, stage) FROM STDIN") as copy:
                for index in range(rows - companies):
                    copy.write_row((fund_id, f"Deal {index}", stage()))
        connection.execute(
            "INSERT INTO portfolio_strategies (name, stage_allocation) "
            """VALUES ('Bench', '{"seed": 0.5, "series_a": 0.5}')"""
        )
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE portfolio_companies")
        connection.execute("VACUUM ANALYZE deal_opportunities")
    return legacy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--legacy-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=20261128)
    options = parser.parse_args()

    name = f"fm_ops_bench_{uuid.uuid4().hex[:8]}"
    restore_name = f"{name}_restored"
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = f"{SERVER}/{name}"
    try:
        engine = open_engine(url)
        upgrade_to_head(engine)
        engine.dispose()
        started = time.perf_counter()
        legacy = load_rows(
            f"postgresql://postgres@127.0.0.1:5432/{name}", options.rows, options.legacy_share, options.seed
        )
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
            with admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{restore_name}"')
            restore_url = f"{SERVER}/{restore_name}"
            scratch = open_engine(restore_url)
            upgrade_to_head(scratch)
            scratch.dispose()
            restored = run_command(["restore", backup_file, "--target", restore_url, "--confirm", "CONFIRM"])
            restored_verify = run_command(["verify", "--database-url", restore_url], allow_failure=True)
        changed = apply["output"]["result"]["rows_changed"]
        report = {
            "benchmark": "normalize-stages on PostgreSQL",
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
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{restore_name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
