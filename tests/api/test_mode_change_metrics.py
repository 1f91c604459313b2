"""``fundmodel_stage_validation_mode_changes_total{source}`` counts every change, whichever process made it.

The changes here are made outside the app under test: by ``fundmodel mode set`` in a child process, and
by a separate mode store (what the rollout controller's process uses), then read over HTTP ``/metrics``
from an app with a fresh registry.
"""

from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

from fundmodel.db.engine import create_db_engine
from fundmodel.db.mode_store import ModeStore
from fundmodel.validation import ModeState, ValidationMode
from tests.conftest import ApiClient

NAME = "fundmodel_stage_validation_mode_changes_total"


def scraped(api: ApiClient) -> dict[str, float]:
    response = api.http.get("/metrics")
    assert response.status_code == 200
    return {
        sample.labels["source"]: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == NAME
    }


def test_changes_made_by_other_processes_are_counted(api: ApiClient, database_url: str) -> None:
    assert scraped(api) == {"manual": 0, "alertmanager": 0, "rollout": 0}

    cli = subprocess.run(
        [
            sys.executable,
            "-c",
            "from fundmodel.cli.main import main; main()",
            "mode",
            "set",
            "enforce",
            "--canary",
            "10",
            "--actor",
            "ops",
            "--reason",
            "canary step 1",
        ],
        env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr

    engine = create_db_engine(database_url)
    try:
        rollout = ModeStore(engine, default=ModeState(ValidationMode.WARN))
        rollout.set(ValidationMode.ENFORCE, 25, actor="rollout", reason="gates passed", source="rollout")
        rollout.set(ValidationMode.WARN, 25, actor="rollout", reason="rollback", source="rollout")
        # An audited decision that changes nothing (like `rollout extend-warn`) is not a change.
        rollout.set(ValidationMode.WARN, 25, actor="rollout", reason="keep warn", source="rollout")
        # The Sunset step changes neither mode nor percentage, but it is a change.
        rollout.set(ValidationMode.ENFORCE, 100, actor="rollout", reason="enforce", source="rollout")
        rollout.set(
            ValidationMode.ENFORCE,
            100,
            actor="rollout",
            reason="sunset",
            source="rollout",
            aliases_rejected=True,
        )
    finally:
        engine.dispose()

    api.state.metrics.mode_changes.invalidate()  # no waiting for the short cache in a test
    assert scraped(api) == {"manual": 1, "alertmanager": 0, "rollout": 4}
