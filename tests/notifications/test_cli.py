"""``fundmodel notifications deliver|list`` as operators run them: real processes, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from tests.api.servers import service_env
from tests.cli.test_command_errors import run_cli
from tests.notifications.receiver import receiver_on_free_port


def test_a_cli_mode_change_is_delivered_by_the_cli_and_listed_by_target_name(
    database_url: str, tmp_path: Path
) -> None:
    with receiver_on_free_port() as receiver:
        secret_url = receiver.url("/services/T0/B0/sekrit-cli")
        hooks = json.dumps([{"name": "rollout-channel", "url": secret_url, "format": "slack"}])
        env = service_env(database_url, NOTIFY_WEBHOOKS=hooks)
        changed = run_cli(["mode", "set", "off", "--actor", "dana", "--reason", "drill"], env, tmp_path)
        assert changed.returncode == 0, changed.stderr
        delivered = run_cli(["notifications", "deliver", "--json"], env, tmp_path)
        assert delivered.returncode == 0, delivered.stderr
        assert json.loads(delivered.stdout)["delivered"] == 1
        [body] = receiver.bodies()
        assert body["text"].startswith("Stage validation: warn → off (manual, by dana): drill")
        listed = run_cli(["notifications", "list"], env, tmp_path)
        assert listed.returncode == 0, listed.stderr
        first = listed.stdout.splitlines()[0]
        assert "mode_change -> rollout-channel: delivered after 1 attempt(s), last HTTP 200" in first
        as_json = json.loads(run_cli(["notifications", "list", "--json"], env, tmp_path).stdout)
        assert as_json["deliveries"][0]["target"] == "rollout-channel"
        for output in (changed, delivered, listed):
            assert "sekrit" not in output.stdout + output.stderr


def test_deliver_without_webhooks_and_a_bad_status_are_one_line_usage_errors(
    database_url: str, tmp_path: Path
) -> None:
    env = service_env(database_url)
    result = run_cli(["notifications", "deliver"], env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: no webhook is configured: set NOTIFY_WEBHOOKS"]
    result = run_cli(["notifications", "list", "--status", "lost"], env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --status must be one of pending, delivered, failed, expired"
    ]
