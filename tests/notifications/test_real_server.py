"""A real uvicorn server at LOG_LEVEL=DEBUG posts a CLI mode change to a webhook that fails, then answers:
the webhook URL (a secret with a token in its path) is in no line of the server's log."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.api.servers import service_env, uvicorn_server
from tests.cli.test_command_errors import run_cli
from tests.notifications.receiver import receiver_on_free_port


@pytest.mark.slow
def test_a_real_server_delivers_after_a_failure_and_never_logs_the_url(
    database_url: str, tmp_path: Path
) -> None:
    with receiver_on_free_port(responses=[503]) as receiver:
        secret_url = receiver.url("/services/T0/B0/sekrit-server-token")
        hooks = json.dumps([{"name": "chat", "url": secret_url, "format": "slack"}])
        env = service_env(
            database_url, LOG_LEVEL="DEBUG", NOTIFY_WEBHOOKS=hooks, NOTIFY_RETRY_BASE_SECONDS="0.1"
        )
        log = tmp_path / "server.log"
        with uvicorn_server(env, log):
            changed = run_cli(["mode", "set", "off", "--actor", "erin", "--reason", "drill"], env, tmp_path)
            assert changed.returncode == 0, changed.stderr
            [body] = receiver.wait_for(1, timeout=30)
            assert receiver.answered == [503, 200]
            assert body["text"].startswith("Stage validation: warn → off (manual, by erin): drill")
            time.sleep(0.3)  # the attempt's log line follows the response
        text = log.read_text(encoding="utf-8")
    attempts = [json.loads(line) for line in text.splitlines() if '"notification_attempt"' in line]
    assert [(a["target"], a["outcome"], a["status_code"]) for a in attempts] == [
        ("chat", "retry", 503),
        ("chat", "delivered", 200),
    ]
    assert "sekrit" not in text
