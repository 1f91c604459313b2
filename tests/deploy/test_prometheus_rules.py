"""The shipped Prometheus/Alertmanager configuration, checked with the real promtool and amtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fundmodel.observability.metrics import DEFAULT_VALIDATED_ENDPOINTS

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "stage-validation.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
WEBHOOK_PATH = "/_ops/stage-validation/auto-downgrade"

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package 'prometheus'; `make system-deps` installs it)",
)
needs_amtool = pytest.mark.skipif(
    AMTOOL is None,
    reason="amtool not installed (Debian 'prometheus-alertmanager'; `make system-deps` installs it)",
)


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


@needs_promtool
def test_promtool_check_rules() -> None:
    result = run(str(PROMTOOL), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_rule_unit_tests(test_file: Path) -> None:
    result = run(str(PROMTOOL), "test", "rules", test_file.name, cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_promtool_check_prometheus_config() -> None:
    result = run(str(PROMTOOL), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_firing_not_firing_and_no_data_unit_tests() -> None:
    assert RULE_TESTS, "no promtool unit tests found"
    firing: set[str] = set()
    silent_with_data: set[str] = set()
    no_data: set[str] = set()
    for test_file in RULE_TESTS:
        for case in load(test_file)["tests"]:
            has_data = bool(case.get("input_series"))
            for check in case.get("alert_rule_test", []):
                name = check["alertname"]
                if check.get("exp_alerts"):
                    firing.add(name)
                elif has_data:
                    silent_with_data.add(name)
                if not has_data:
                    no_data.add(name)
    names = {rule["alert"] for rule in alert_rules()}
    assert names <= firing, f"alerts never tested firing: {names - firing}"
    assert names <= silent_with_data, f"alerts never tested not firing: {names - silent_with_data}"
    assert names <= no_data, f"alerts never tested without data: {names - no_data}"


def test_alerts_carry_the_required_labels_and_thresholds() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    downgrade = {name for name, rule in rules.items() if rule["labels"].get("action")}
    assert downgrade == {"StageValidationRejectRatioHigh", "StageValidationRouteErrorRateHigh"}
    assert all(rules[name]["labels"]["action"] == "downgrade_stage_validation" for name in downgrade)
    assert rules["StageValidationRouteErrorRateHigh"]["labels"]["severity"] == "page"
    assert rules["StageValidationRouteErrorRateHigh"]["for"] == "5m"
    assert rules["StageValidationWarnWouldRejectHigh"]["labels"]["blocks"] == "promotion"
    assert "absent(fundmodel_stage_validations_total)" in rules["StageValidationNoTraffic"]["expr"]
    records = {
        rule["record"]: rule["expr"]
        for group in load(RULES)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    p99 = records["fundmodel:stage_validation_duration_seconds:p99_rate5m"]
    assert "histogram_quantile(0.99, sum by (le) (" in p99
    assert "[10m]" in records["fundmodel:stage_validation_enforce_reject_ratio:rate10m"]


def test_validated_route_regex_matches_the_metrics_endpoint_list() -> None:
    text = RULES.read_text(encoding="utf-8")
    regexes = set(re.findall(r'route=~"([^"]+)"', text))
    assert len(regexes) == 1, "all rules must use the same validated-route regex"
    [regex] = regexes
    alternatives = {alt.replace("\\\\", "") for alt in regex.split("|")}
    assert alternatives == set(DEFAULT_VALIDATED_ENDPOINTS)


@needs_amtool
def test_amtool_check_config() -> None:
    result = run(str(AMTOOL), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (
            ["alertname=StageValidationRejectRatioHigh", "action=downgrade_stage_validation"],
            "stage-validation-auto-downgrade",
        ),
        (
            ["alertname=StageValidationRouteErrorRateHigh", "action=downgrade_stage_validation"],
            "stage-validation-auto-downgrade,pager",
        ),
        (["alertname=StageValidationWebhookFailing", "severity=critical"], "pager"),
        (["alertname=StageValidationWarnWouldRejectHigh", "severity=ticket"], "default"),
    ],
)
def test_alertmanager_routes_alerts_to_the_right_receivers(labels: list[str], receivers: str) -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    alertname = labels[0].split("=", 1)[1]
    rule_labels = [f"{k}={v}" for k, v in rules[alertname]["labels"].items()]
    result = run(
        str(AMTOOL),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"alertname={alertname}",
        *rule_labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_downgrade_receiver_posts_to_the_webhook_with_file_credentials() -> None:
    config = load(ALERTMANAGER_CONFIG)
    [receiver] = [r for r in config["receivers"] if r["name"] == "stage-validation-auto-downgrade"]
    [webhook] = receiver["webhook_configs"]
    assert webhook["url"].endswith(WEBHOOK_PATH)
    assert webhook["send_resolved"] is True
    authorization = webhook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    assert authorization["credentials_file"]
    assert "credentials" not in authorization  # never an inline secret in the example
    [route] = [r for r in config["route"]["routes"] if r["receiver"] == receiver["name"]]
    assert route["group_wait"] in {"1s", "2s", "5s", "10s"}
    assert route["continue"] is True
