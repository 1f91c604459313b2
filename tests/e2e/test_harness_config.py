"""The harness's templated copies of the shipped configuration stay valid, and failed starts clean up."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from .harness import (
    DOWNGRADE_RECEIVER,
    SHIPPED_RULES,
    HarnessError,
    ObservabilityStack,
    alertmanager_binary,
    free_port,
    prometheus_binary,
    render_alertmanager_config,
    render_rules,
)

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")


def test_render_rules_shortens_every_for_and_keeps_the_rest(tmp_path: Path) -> None:
    rendered = render_rules(tmp_path / "rules.yml", for_overrides={"StageValidationNoTraffic": "1h"})
    shipped = yaml.safe_load(SHIPPED_RULES.read_text())
    copy = yaml.safe_load(rendered.read_text())
    for group_shipped, group_copy in zip(shipped["groups"], copy["groups"], strict=True):
        for rule_shipped, rule_copy in zip(group_shipped["rules"], group_copy["rules"], strict=True):
            assert rule_copy["expr"] == rule_shipped["expr"]
            assert rule_copy.get("labels") == rule_shipped.get("labels")
            if "alert" in rule_copy:
                expected = "1h" if rule_copy["alert"] == "StageValidationNoTraffic" else "1s"
                assert rule_copy["for"] == expected
    if PROMTOOL is not None:
        result = subprocess.run(
            [PROMTOOL, "check", "rules", str(rendered)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_render_alertmanager_config_points_the_webhook_at_the_test_service(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t" * 40)
    rendered = render_alertmanager_config(
        tmp_path / "am.yml", webhook_url="http://127.0.0.1:1234/hook", webhook_token_file=token
    )
    config = yaml.safe_load(rendered.read_text())
    [receiver] = [r for r in config["receivers"] if r["name"] == DOWNGRADE_RECEIVER]
    [webhook] = receiver["webhook_configs"]
    assert webhook["url"] == "http://127.0.0.1:1234/hook"
    assert webhook["http_config"]["authorization"]["credentials_file"] == str(token)
    assert webhook["send_resolved"] is True
    assert all(r["group_wait"] == "1s" for r in [config["route"], *config["route"]["routes"]])
    if AMTOOL is not None:
        result = subprocess.run(
            [AMTOOL, "check-config", str(rendered)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
@pytest.mark.skipif(
    prometheus_binary() is None or alertmanager_binary() is None,
    reason="prometheus/alertmanager not installed (`make system-deps` installs Debian's packages)",
)
def test_a_failed_start_raises_with_logs_and_stops_what_was_started(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t" * 40)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        stack = ObservabilityStack(
            tmp_path / "stack",
            scrape_targets=[f"127.0.0.1:{free_port()}"],
            webhook_url="http://127.0.0.1:1/hook",
            webhook_token_file=token,
        )
        stack.prometheus.port = busy.getsockname()[1]  # Prometheus cannot bind: exits at start
        with pytest.raises(HarnessError, match="prometheus exited at start"):
            stack.start()
    assert stack.alertmanager.process is not None
    assert not stack.alertmanager.process.alive()
    assert stack.prometheus.process is not None
    assert not stack.prometheus.process.alive()
