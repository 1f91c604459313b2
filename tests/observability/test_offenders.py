"""Offender events and their per-endpoint sampler (deterministic clock and random source)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from fundmodel.errors import ConfigurationError
from fundmodel.observability.metrics import OTHER, ServiceMetrics
from fundmodel.observability.offenders import (
    MAX_NAME_CHARS,
    MAX_OFFENDING_NAMES,
    OFFENDER_EVENT,
    OffenderLogSampler,
    user_agent_hash,
)
from fundmodel.settings import load_settings

from .conftest import LogCapture

SIMULATE = "/api/monte-carlo/simulate"
STRATEGIES = "/api/portfolio/strategies"
DROPPED = "fundmodel_stage_validation_offender_logs_dropped_total"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedRandom:
    def __init__(self, values: list[float]) -> None:
        self._values: Iterator[float] = iter(values)
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return next(self._values)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> ServiceMetrics:
    return ServiceMetrics(registry)


def dropped(registry: CollectorRegistry, endpoint: str) -> float | None:
    return registry.get_sample_value(DROPPED, {"endpoint": endpoint})


def offend(sampler: OffenderLogSampler, endpoint: str = SIMULATE) -> bool:
    return sampler.log_offender(
        endpoint=endpoint,
        mode="enforce",
        outcome="rejected",
        offending_names=["Series Z"],
        user_agent="curl/8.0",
        client_id="client-1",
        request_id="req-1",
    )


def test_user_agent_hash_is_first_12_hex_of_sha256() -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64)"
    assert user_agent_hash(ua) == hashlib.sha256(ua.encode()).hexdigest()[:12]
    assert user_agent_hash(None) is None
    assert len(user_agent_hash("\udcff") or "") == 12  # undecodable header bytes do not crash


def test_event_fields_are_escaped_truncated_and_bounded(
    metrics: ServiceMetrics, log_capture: LogCapture
) -> None:
    sampler = OffenderLogSampler(metrics, per_minute=10)
    names = ["Series\r\nA", "x" * 500, "seed", "growth?", "late", "sixth", "seventh"]
    assert sampler.log_offender(
        endpoint=SIMULATE,
        mode="warn",
        outcome="unknown_accepted",
        offending_names=names,
        user_agent="curl/8.0",
        client_id="client-7",
        request_id="req\n42",
    )
    [event] = log_capture.events()
    assert event["event"] == OFFENDER_EVENT == "stage_validation_offender"
    assert event["endpoint"] == SIMULATE
    assert event["mode"] == "warn"
    assert event["outcome"] == "unknown_accepted"
    assert len(event["offending"]) == MAX_OFFENDING_NAMES == 5
    assert event["offending"][0] == "Series\\x0d\\x0aA"
    assert len(event["offending"][1]) == MAX_NAME_CHARS == 64
    assert all(len(name) <= MAX_NAME_CHARS for name in event["offending"])
    assert event["offending_count"] == 7
    assert event["ua_hash"] == hashlib.sha256(b"curl/8.0").hexdigest()[:12]
    assert event["client_id"] == "client-7"
    assert event["request_id"] == "req\\x0a42"
    assert event["sample_rate"] == 1.0
    assert "curl" not in log_capture.stream.getvalue()


def test_every_event_under_the_limit_then_a_fraction(
    metrics: ServiceMetrics, registry: CollectorRegistry, log_capture: LogCapture
) -> None:
    clock = FakeClock()
    rng = ScriptedRandom([0.10, 0.50, 0.24, 0.99, 0.25])
    sampler = OffenderLogSampler(metrics, per_minute=3, fraction=0.25, clock=clock, random_source=rng)
    results = [offend(sampler) for _ in range(8)]
    assert results == [True, True, True, True, False, True, False, False]
    assert rng.calls == 5  # the random source is consulted only above the limit
    assert dropped(registry, SIMULATE) == 3
    rates = [event["sample_rate"] for event in log_capture.events()]
    assert rates == [1.0, 1.0, 1.0, 0.25, 0.25]


def test_limits_are_per_endpoint_and_per_minute(
    metrics: ServiceMetrics, registry: CollectorRegistry, log_capture: LogCapture
) -> None:
    clock = FakeClock()
    sampler = OffenderLogSampler(
        metrics, per_minute=2, fraction=0.0, clock=clock, random_source=ScriptedRandom([])
    )
    assert [offend(sampler) for _ in range(3)] == [True, True, False]
    assert [offend(sampler, STRATEGIES) for _ in range(3)] == [True, True, False]
    clock.now += 59.9
    assert offend(sampler) is False
    clock.now += 0.1
    assert [offend(sampler) for _ in range(3)] == [True, True, False]
    assert dropped(registry, SIMULATE) == 3
    assert dropped(registry, STRATEGIES) == 1
    assert len(log_capture.events()) == 6


def test_unknown_endpoints_share_one_bounded_bucket(
    metrics: ServiceMetrics, registry: CollectorRegistry, log_capture: LogCapture
) -> None:
    sampler = OffenderLogSampler(metrics, per_minute=1, fraction=0.0, clock=FakeClock())
    assert offend(sampler, "/api/funds/1/companies/x") is True
    assert offend(sampler, "/api/funds/2/companies/y") is False
    assert dropped(registry, OTHER) == 1


def test_zero_limit_with_full_fraction_logs_everything(
    metrics: ServiceMetrics, log_capture: LogCapture
) -> None:
    sampler = OffenderLogSampler(
        metrics, per_minute=0, fraction=1.0, random_source=ScriptedRandom([0.999] * 3)
    )
    assert [offend(sampler) for _ in range(3)] == [True, True, True]


@pytest.mark.parametrize(("per_minute", "fraction"), [(-1, 0.1), (10, -0.01), (10, 1.5)])
def test_invalid_configuration_is_refused(metrics: ServiceMetrics, per_minute: int, fraction: float) -> None:
    with pytest.raises(ConfigurationError):
        OffenderLogSampler(metrics, per_minute=per_minute, fraction=fraction)


# --- configuration: STAGE_OFFENDER_LOG_PER_MINUTE / STAGE_OFFENDER_LOG_SAMPLE_FRACTION ---------------


def test_sampling_settings_default_to_the_documented_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAGE_OFFENDER_LOG_PER_MINUTE", raising=False)
    monkeypatch.delenv("STAGE_OFFENDER_LOG_SAMPLE_FRACTION", raising=False)
    settings = load_settings()
    assert (settings.stage_offender_log_per_minute, settings.stage_offender_log_sample_fraction) == (60, 0.01)


def test_sampling_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE_OFFENDER_LOG_PER_MINUTE", "5")
    monkeypatch.setenv("STAGE_OFFENDER_LOG_SAMPLE_FRACTION", "0.25")
    settings = load_settings()
    assert (settings.stage_offender_log_per_minute, settings.stage_offender_log_sample_fraction) == (5, 0.25)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("STAGE_OFFENDER_LOG_PER_MINUTE", "-1", "greater than or equal to 0"),
        ("STAGE_OFFENDER_LOG_PER_MINUTE", "lots", "valid integer"),
        ("STAGE_OFFENDER_LOG_SAMPLE_FRACTION", "1.5", "less than or equal to 1"),
        ("STAGE_OFFENDER_LOG_SAMPLE_FRACTION", "-0.1", "greater than or equal to 0"),
        ("STAGE_OFFENDER_LOG_SAMPLE_FRACTION", "nan", "finite number"),
    ],
)
def test_invalid_sampling_settings_refuse_to_start_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert f"{variable}: " in raised.value.detail
    assert message in raised.value.detail
