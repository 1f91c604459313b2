from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from fundmodel.errors import ConfigurationError
from fundmodel.observability.metrics import DEFAULT_VALIDATED_ENDPOINTS
from fundmodel.rollout.config import GateConfig, format_duration, load_gate_config, parse_duration


def test_defaults_are_the_plans() -> None:
    config = GateConfig()
    assert config.warn_window == timedelta(days=7)
    assert config.max_would_reject_ratio == 0.005
    assert config.max_hourly_would_reject_ratio == 0.01
    assert config.soak_for(10) == timedelta(hours=2)
    assert config.soak_for(50) == timedelta(hours=4)
    assert config.max_canary_vs_baseline == 1.2
    assert config.canary_vs_baseline_floor == 0.001
    assert config.min_canary_validations == 1000
    assert config.max_validation_p99_seconds == 0.001
    assert config.max_warn_duration == timedelta(days=30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("30d", timedelta(days=30)),
        ("90m", timedelta(minutes=90)),
        ("1w", timedelta(days=7)),
    ],
)
def test_short_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert GateConfig(soak_enforce_10=text).soak_enforce_10 == expected  # type: ignore[arg-type]


def test_format_duration() -> None:
    assert format_duration(timedelta(hours=4, minutes=30)) == "4h 30m"
    assert format_duration(timedelta(days=30)) == "30d"
    assert format_duration(timedelta(seconds=42)) == "42s"


def test_canary_sample_and_floor_come_from_the_gates_file(tmp_path: Path) -> None:
    path = tmp_path / "gates.toml"
    path.write_text("[gates]\nmin_canary_validations = 5000\ncanary_vs_baseline_floor = 0.002\n")
    config = load_gate_config(path)
    assert config.min_canary_validations == 5000
    assert config.canary_vs_baseline_floor == 0.002


def test_file_overrides_then_explicit_overrides(tmp_path: Path) -> None:
    path = tmp_path / "gates.toml"
    path.write_text(
        '[gates]\nsoak_enforce_10 = "3h"\nmax_canary_vs_baseline = 1.5\nlabel_filter = \'job="fundmodel"\'\n'
    )
    config = load_gate_config(path, max_warn_duration=timedelta(days=14))
    assert config.soak_enforce_10 == timedelta(hours=3)
    assert config.max_canary_vs_baseline == 1.5
    assert config.label_filter == 'job="fundmodel"'
    assert config.max_warn_duration == timedelta(days=14)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[gates]\nmax_would_reject_ratio = 2\n", "max_would_reject_ratio"),
        ('[gates]\nsoak_enforce_10 = "soon"\n', "soak_enforce_10"),
        ("[gates]\nunknown_gate = 1\n", "unknown_gate"),
        ("[gates]\nmin_canary_validations = 0\n", "min_canary_validations"),
        ("[gates]\ncanary_vs_baseline_floor = -0.1\n", "canary_vs_baseline_floor"),
        ("[gates]\nlabel_filter = 'job=fundmodel}'\n", "label_filter"),
        ("[gates\n", "not valid TOML"),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "gates.toml"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        load_gate_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_gate_config(tmp_path / "absent.toml")


def test_environment_defaults_sit_below_the_gates_file(tmp_path: Path) -> None:
    from fundmodel.rollout.config import environment_defaults

    production = environment_defaults(production=True, backup_max_age_hours=None)
    assert load_gate_config(defaults=production).max_backup_age == timedelta(hours=1)
    assert load_gate_config(defaults={}).max_backup_age == timedelta(hours=24)
    shared = environment_defaults(production=True, backup_max_age_hours="2.5")
    assert shared["max_backup_age"] == timedelta(hours=2.5)
    path = tmp_path / "gates.toml"
    path.write_text('[gates]\nmax_backup_age = "3h"\n', encoding="utf-8")
    assert load_gate_config(path, defaults=production).max_backup_age == timedelta(hours=3)
    for bad in ("0", "-1", "nan", "soon"):
        with pytest.raises(ConfigurationError, match="FUNDMODEL_BACKUP_MAX_AGE_HOURS"):
            environment_defaults(production=False, backup_max_age_hours=bad)


def test_client_window_exemption_cap_and_dry_run_gates_come_from_the_gates_file(tmp_path: Path) -> None:
    defaults = load_gate_config()
    assert (defaults.client_usage_window, defaults.max_exemption) == (timedelta(days=7), timedelta(days=90))
    assert defaults.dry_run_gates == ()
    path = tmp_path / "gates.toml"
    path.write_text(
        '[gates]\nclient_usage_window = "14d"\nmax_exemption = "30d"\n'
        'dry_run_gates = ["clients_rejected", "validation_p99"]\n'
    )
    config = load_gate_config(path)
    assert config.client_usage_window == timedelta(days=14)
    assert config.max_exemption == timedelta(days=30)
    assert config.dry_run_gates == ("clients_rejected", "validation_p99")


def test_a_dry_run_gate_that_names_no_gate_is_refused_with_the_gate_names(tmp_path: Path) -> None:
    path = tmp_path / "gates.toml"
    path.write_text('[gates]\ndry_run_gates = ["clients_rejectd"]\n')
    with pytest.raises(ConfigurationError, match="dry_run_gates names no gate: 'clients_rejectd'") as raised:
        load_gate_config(path)
    assert "clients_rejected" in str(raised.value)
    endpoint = DEFAULT_VALIDATED_ENDPOINTS[0]
    path.write_text(f'[gates]\ndry_run_gates = ["validations {endpoint}"]\n')
    assert load_gate_config(path).dry_run_gates == (f"validations {endpoint}",)
    path.write_text(f'[gates]\nendpoints = ["/api/funds"]\ndry_run_gates = ["validations {endpoint}"]\n')
    with pytest.raises(ConfigurationError, match="names no gate"):
        load_gate_config(path)
