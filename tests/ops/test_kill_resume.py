"""``kill -9`` at random points, then resume: every row normalized exactly once, audit consistent.

Real ``fundmodel db normalize-stages --apply`` processes are killed with SIGKILL after a seeded random
delay, over and over, until one finishes; then the whole state is checked against the seeded data.
Rounds, kills per round and seed: FUNDMODEL_KILL_ROUNDS (default 3 per database),
FUNDMODEL_KILLS_PER_ROUND (default 8), FUNDMODEL_KILL_SEED.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from fundmodel.ops.backup import backup_tables, create_backup
from fundmodel.ops.planning import classify_stage_value
from fundmodel.ops.restore import verify_backup
from fundmodel.ops.stage_columns import StageColumn, allocation_columns, stage_metadata
from fundmodel.ops.verify import run_integrity_checks
from tests.ops.legacy_data import audit_rows, current_values, seed_legacy

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("FUNDMODEL_KILL_ROUNDS", "3"))
SEED = int(os.environ.get("FUNDMODEL_KILL_SEED", "20261128"))
MAX_KILLS_PER_ROUND = int(os.environ.get("FUNDMODEL_KILLS_PER_ROUND", "8"))

CLI = """
import sys
import typer
from fundmodel.cli.db_ops import register_db_ops
app = typer.Typer()
register_db_ops(app)
app(sys.argv[1:])
"""


def _start(url: str, backups: Path, batch_size: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(sys.executable, "-c", CLI, "normalize-stages", "--apply", "--json"),
            *("--database-url", url, "--backup-dir", str(backups)),
            *("--batch-size", str(batch_size)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )


def _backup(engine: Engine, backups: Path) -> None:
    metadata = stage_metadata()
    names = ["portfolio_companies", "deal_opportunities", "portfolio_strategies"]
    names += [name for name in metadata.tables if name.startswith("stage_normalization_")]
    backup = create_backup(engine, backup_tables(metadata, names), backups)
    verify_backup(backup.file, scratch_server_url=engine.url.render_as_string(hide_password=False))


def _committed_batches(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM stage_normalization_batches WHERE status = 'committed'")
            ).scalar_one()
        )


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_killed_runs_resume_to_exactly_once(
    engine: Engine, database_url: str, columns: list[StageColumn], tmp_path: Path, round_no: int
) -> None:
    rng = random.Random(SEED * 1000 + round_no)
    seeded = seed_legacy(engine, companies=1200, deals=400, seed=SEED + round_no)
    backups = tmp_path / "backups"
    _backup(engine, backups)
    batch_size = rng.choice([7, 13, 25])
    kills = mid_run_kills = 0
    finished = None
    started = time.monotonic()
    while finished is None:
        committed_at_start = _committed_batches(engine)
        process = _start(database_url, backups, batch_size)
        if kills < MAX_KILLS_PER_ROUND:
            if kills > 0 and rng.random() < 0.3:
                # Anywhere: start-up, planning, the backup gate, creating the run, or a batch.
                deadline = time.monotonic() + rng.uniform(0.05, 1.0)
                while time.monotonic() < deadline and process.poll() is None:
                    time.sleep(0.005)
            else:
                # Mid-run: after a few more committed batches, then a random instant later.
                target = _committed_batches(engine) + rng.randint(1, 6)
                while process.poll() is None and _committed_batches(engine) < target:
                    time.sleep(0.003)
                time.sleep(rng.uniform(0, 0.03))
            if process.poll() is None:
                before_kill = _committed_batches(engine)
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                kills += 1
                # This process had committed batches of its own: it died inside the batch loop.
                mid_run_kills += before_kill > committed_at_start
                continue
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()
        finished = json.loads(stdout)
        assert time.monotonic() - started < 600

    # Exactly one normalization run exists, whatever the number of kills.
    with engine.connect() as connection:
        runs = connection.execute(text("SELECT id, status, rows_changed FROM stage_normalization_runs")).all()
    assert len(runs) == 1, runs
    run_id, status, rows_changed = runs[0]
    assert status == "completed"
    assert rows_changed == seeded.expected_changes()

    # Every row normalized, none lost, none doubled.
    for table in ("portfolio_companies", "deal_opportunities"):
        original = seeded.original(table)
        final = current_values(engine, table)
        assert final.keys() == original.keys()
        assert final == {k: classify_stage_value(v)[1] or v for k, v in original.items()}
    audit = audit_rows(engine, run_id)
    keys = [(table, row_id) for _run, table, row_id, _b, _a in audit]
    assert len(keys) == len(set(keys)) == seeded.expected_changes()
    for _run, table, row_id, before, after in audit:
        assert seeded.original(table)[int(row_id)] == before
        assert classify_stage_value(before) == ("change", after)

    report = run_integrity_checks(engine, columns, allocation_columns(stage_metadata()))
    assert report.ok, report.to_json()
    assert mid_run_kills > 0, "no kill landed inside the batch loop"
    print(f"round {round_no}: {kills} kills ({mid_run_kills} inside the batch loop), batch size {batch_size}")
