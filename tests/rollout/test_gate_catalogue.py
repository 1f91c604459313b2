"""The gate catalogue judged on hand-made evidence: no database, no Prometheus.

The same gates over real evidence (a recorded Prometheus, a real audit log) are in test_controller.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fundmodel.rollout.config import GateConfig, gate_names
from fundmodel.rollout.data_checks import DataFacts
from fundmodel.rollout.gate_catalogue import (
    CanaryEvidence,
    ClientEvidence,
    SunsetEvidence,
    WarnEvidence,
    alias_clients_gate,
    breaking_clients_gate,
    canary_gates,
    canary_window,
    sunset_gates,
    traffic_gates,
    warn_gates,
)
from fundmodel.rollout.gates import GateResult, GateStatus, Measurement, overall

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CONFIG = GateConfig()
PASS, FAIL, NO_DATA = GateStatus.PASS, GateStatus.FAIL, GateStatus.NO_DATA
CLEAN_DATA = DataFacts(Measurement(0.0), Measurement(0.0), Measurement(3600.0))


def statuses(gates: list[GateResult]) -> dict[str, GateStatus]:
    return {gate.name: gate.status for gate in gates}


def test_traffic_gates_want_enough_validations_on_every_endpoint() -> None:
    counts = {endpoint: Measurement(1000.0) for endpoint in CONFIG.endpoints}
    assert overall(traffic_gates(CONFIG, counts)) is PASS
    quiet = CONFIG.endpoints[-1]
    counts[quiet] = Measurement(999.0)
    judged = statuses(traffic_gates(CONFIG, counts))
    assert judged.pop(f"validations {quiet}") is FAIL
    assert set(judged.values()) == {PASS}
    counts[quiet] = Measurement.missing("Prometheus unreachable")
    assert statuses(traffic_gates(CONFIG, counts))[f"validations {quiet}"] is NO_DATA


def warn_evidence(**changes: object) -> WarnEvidence:
    evidence = WarnEvidence(
        now=NOW,
        warn_since=NOW - CONFIG.warn_window,
        would_reject_ratio=Measurement(0.004),
        worst_hour_would_reject_ratio=Measurement(0.01),
        facts=CLEAN_DATA,
    )
    return replace(evidence, **changes)  # type: ignore[arg-type]


def test_warn_gates_pass_on_a_whole_clean_window_at_the_thresholds() -> None:
    gates = warn_gates(CONFIG, warn_evidence())
    assert list(statuses(gates)) == [
        "warn_observed",
        "would_reject_ratio",
        "would_reject_worst_hour",
        "stored_stages_canonical",
        "db_verify",
        "backup_fresh",
    ]
    assert overall(gates) is PASS


def test_warn_gates_block_on_a_short_window_an_unknown_start_and_unclean_data() -> None:
    short = warn_gates(CONFIG, warn_evidence(warn_since=NOW - CONFIG.warn_window + timedelta(seconds=1)))
    assert statuses(short)["warn_observed"] is FAIL
    unknown = warn_gates(CONFIG, warn_evidence(warn_since=None))
    assert statuses(unknown)["warn_observed"] is NO_DATA
    assert (
        statuses(warn_gates(CONFIG, warn_evidence(would_reject_ratio=Measurement(0.005))))[
            "would_reject_ratio"
        ]
        is FAIL
    )  # strictly below the threshold
    unclean = DataFacts(Measurement(1.0), Measurement(0.0), Measurement.failing("no verified backup"))
    judged = statuses(warn_gates(CONFIG, warn_evidence(facts=unclean)))
    assert (judged["stored_stages_canonical"], judged["db_verify"], judged["backup_fresh"]) == (
        FAIL,
        PASS,
        FAIL,
    )


def canary_evidence(**changes: object) -> CanaryEvidence:
    soak = CONFIG.soak_for(10.0)
    evidence = CanaryEvidence(
        now=NOW,
        step_label="enforce 10%",
        entered_at=NOW - soak,
        window=soak,
        canary_reject_ratio=Measurement(0.002),
        canary_validations=Measurement(5000.0),
        baseline_validations=Measurement(5000.0),
        baseline_would_reject_ratio=Measurement(0.002),
        validation_p99_seconds=Measurement(0.0005),
        auto_downgrades=0,
        step_began=NOW - soak,
    )
    return replace(evidence, **changes)  # type: ignore[arg-type]


def test_canary_gates_pass_after_the_soak_on_enough_clean_traffic() -> None:
    # Which gates, in which order: pinned over real evidence in test_controller.py.
    gates = canary_gates(CONFIG, 10.0, canary_evidence())
    assert len(gates) == 6
    assert overall(gates) is PASS


def test_a_small_canary_sample_judges_no_ratio_either_way() -> None:
    judged = statuses(
        canary_gates(
            CONFIG,
            10.0,
            canary_evidence(canary_validations=Measurement(20.0), canary_reject_ratio=Measurement(0.05)),
        )
    )
    assert (judged["canary_sample"], judged["canary_reject_ratio"], judged["canary_vs_baseline"]) == (
        NO_DATA,
        NO_DATA,
        NO_DATA,
    )


def test_an_unknown_step_start_blocks_soak_and_downgrade_gates_and_a_downgrade_fails() -> None:
    unknown = statuses(
        canary_gates(CONFIG, 10.0, canary_evidence(entered_at=None, step_began=None, auto_downgrades=None))
    )
    assert (unknown["soak_time"], unknown["no_auto_downgrade"]) == (NO_DATA, NO_DATA)
    downgraded = statuses(canary_gates(CONFIG, 10.0, canary_evidence(auto_downgrades=1)))
    assert downgraded["no_auto_downgrade"] is FAIL
    early = statuses(canary_gates(CONFIG, 50.0, canary_evidence()))  # 50 % soaks longer than 10 %
    assert early["soak_time"] is FAIL


def test_the_canary_window_is_the_step_so_far_or_the_soak_when_its_start_is_unknown() -> None:
    assert canary_window(CONFIG, 10.0, NOW - timedelta(hours=5), NOW) == timedelta(hours=5)
    assert canary_window(CONFIG, 10.0, None, NOW) == CONFIG.soak_enforce_10
    assert canary_window(CONFIG, 50.0, None, NOW) == CONFIG.soak_enforce_50


def test_an_empty_canary_cohort_fails_the_sample_gate_instead_of_waiting_forever() -> None:
    waiting = canary_evidence(canary_validations=Measurement(0.0), canary_clients_active=None)
    assert statuses(canary_gates(CONFIG, 10.0, waiting))["canary_sample"] is NO_DATA
    empty = canary_gates(CONFIG, 10.0, replace(waiting, canary_clients_active=0))
    sample = next(g for g in empty if g.name == "canary_sample")
    assert sample.status is FAIL
    assert "--canary-client NAME" in sample.detail
    assert overall(empty) is FAIL
    # Named clients in the cohort: judged on their traffic as it comes.
    named = canary_evidence(canary_clients_active=2)
    assert overall(canary_gates(CONFIG, 10.0, named)) is PASS


def test_a_reset_observation_is_the_start_of_warn_observed_and_is_shown() -> None:
    reset_at = NOW - timedelta(minutes=30)
    judged = warn_gates(
        CONFIG,
        warn_evidence(observed_since=reset_at, observation_reset="observation restarted by alice: fixed"),
    )
    observed = next(g for g in judged if g.name == "warn_observed")
    assert observed.status is FAIL
    assert observed.measured == 1800
    assert "observation restarted by alice" in observed.detail


def test_sunset_gates_want_no_alias_on_real_traffic() -> None:
    window = CONFIG.sunset_window
    clean = SunsetEvidence(window, Measurement(0.0), Measurement(5000.0))
    assert overall(sunset_gates(CONFIG, clean)) is PASS
    aliases = statuses(sunset_gates(CONFIG, replace(clean, alias_validations=Measurement(3.0))))
    assert aliases == {"sunset_traffic": PASS, "alias_traffic": FAIL}
    quiet = statuses(sunset_gates(CONFIG, replace(clean, all_validations=Measurement(10.0))))
    assert quiet == {"sunset_traffic": NO_DATA, "alias_traffic": NO_DATA}


def test_every_gate_the_catalogue_reports_has_a_name_dry_run_gates_accept() -> None:
    clients = ClientEvidence(CONFIG.client_usage_window, NOW - CONFIG.client_usage_window, (), 0)
    reported = [
        *traffic_gates(CONFIG, {endpoint: Measurement(0.0) for endpoint in CONFIG.endpoints}),
        *warn_gates(CONFIG, warn_evidence()),
        *canary_gates(CONFIG, 10.0, canary_evidence()),
        *sunset_gates(CONFIG, SunsetEvidence(CONFIG.sunset_window, Measurement(0.0), Measurement(0.0))),
        breaking_clients_gate(clients)[0],
        alias_clients_gate(clients)[0],
    ]
    assert {gate.name for gate in reported} == gate_names(CONFIG.endpoints)
