from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from fundmodel.rollout.gates import (
    GateResult,
    GateStatus,
    Measurement,
    evaluate_gate,
    overall,
    relative_gate,
)

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
comparisons = st.sampled_from(["<", "<=", ">="])


@given(finite, finite, comparisons)
def test_pass_exactly_when_the_comparison_holds(value: float, threshold: float, comparison: str) -> None:
    gate = evaluate_gate(
        "g", "d", Measurement(value), threshold=threshold, comparison=comparison, unit="count"
    )  # type: ignore[arg-type]
    holds = {"<": value < threshold, "<=": value <= threshold, ">=": value >= threshold}[comparison]
    assert gate.status is (GateStatus.PASS if holds else GateStatus.FAIL)
    assert gate.measured == value
    assert gate.threshold == threshold


@given(st.sampled_from([None, math.nan, math.inf, -math.inf]), finite, comparisons)
def test_missing_or_non_finite_is_no_data_never_pass(
    value: float | None, threshold: float, comparison: str
) -> None:
    gate = evaluate_gate(
        "g",
        "d",
        Measurement(value, "why"),
        threshold=threshold,
        comparison=comparison,
        unit="ratio",  # type: ignore[arg-type]
    )
    assert gate.status is GateStatus.NO_DATA
    assert gate.measured is None
    assert "why" in gate.detail


def test_a_known_absence_fails() -> None:
    gate = evaluate_gate(
        "backup", "d", Measurement.failing("no backup found"), threshold=3600, comparison="<=", unit="seconds"
    )
    assert gate.status is GateStatus.FAIL
    assert gate.detail == "no backup found"


def test_boundaries_match_the_plan() -> None:
    ratio = evaluate_gate("r", "d", Measurement(0.005), threshold=0.005, comparison="<", unit="ratio")
    assert ratio.status is GateStatus.FAIL  # "below 0.5 %"
    hour = evaluate_gate("h", "d", Measurement(0.01), threshold=0.01, comparison="<=", unit="ratio")
    assert hour.status is GateStatus.PASS  # "no hour above 1 %"
    soak = evaluate_gate("s", "d", Measurement(7200), threshold=7200, comparison=">=", unit="seconds")
    assert soak.status is GateStatus.PASS


@given(
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.floats(min_value=0.5, max_value=3, allow_nan=False),
)
def test_relative_gate(canary: float, baseline: float, factor: float) -> None:
    gate = relative_gate("c", "d", Measurement(canary), Measurement(baseline), max_factor=factor)
    assert gate.threshold == factor * baseline
    assert gate.status is (GateStatus.PASS if canary <= factor * baseline else GateStatus.FAIL)


def test_relative_gate_without_baseline_or_canary_has_no_data() -> None:
    no_base = relative_gate("c", "d", Measurement(0.001), Measurement.missing("no baseline"), max_factor=1.2)
    assert no_base.status is GateStatus.NO_DATA
    assert "baseline cohort: no baseline" in no_base.detail
    no_canary = relative_gate("c", "d", Measurement(math.nan), Measurement(0.002), max_factor=1.2)
    assert no_canary.status is GateStatus.NO_DATA


def _gate(status: GateStatus) -> GateResult:
    return GateResult("g", "d", status, None, 0.0, "<=", "count")


@given(st.lists(st.sampled_from(list(GateStatus)), max_size=8))
def test_overall_passes_only_when_every_gate_passes(statuses: list[GateStatus]) -> None:
    result = overall(_gate(s) for s in statuses)
    if statuses and all(s is GateStatus.PASS for s in statuses):
        assert result is GateStatus.PASS
    elif GateStatus.FAIL in statuses:
        assert result is GateStatus.FAIL
    else:
        assert result is GateStatus.NO_DATA  # includes "no gates at all"
