from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from fundmodel.rollout.gates import (
    GateResult,
    GateStatus,
    Measurement,
    as_dry_run,
    evaluate_gate,
    judged_on,
    overall,
    relative_gate,
    sample_gate,
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


@given(
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.floats(min_value=0, max_value=0.05, allow_nan=False),
)
def test_relative_gate_bound_has_a_floor(canary: float, baseline: float, floor: float) -> None:
    gate = relative_gate("c", "d", Measurement(canary), Measurement(baseline), max_factor=1.2, floor=floor)
    bound = max(1.2 * baseline, floor)
    assert gate.threshold == bound
    assert gate.status is (GateStatus.PASS if canary <= bound else GateStatus.FAIL)


def test_a_zero_baseline_no_longer_fails_one_stray_rejection() -> None:
    one_in_2000 = Measurement(1 / 2000)
    assert relative_gate("c", "d", one_in_2000, Measurement(0.0), max_factor=1.2).status is GateStatus.FAIL
    floored = relative_gate("c", "d", one_in_2000, Measurement(0.0), max_factor=1.2, floor=0.001)
    assert floored.status is GateStatus.PASS
    assert floored.threshold == 0.001
    assert "floor 0.1000%" in floored.detail
    # Above the floor the relative bound rules as before.
    above = relative_gate("c", "d", Measurement(0.004), Measurement(0.002), max_factor=1.2, floor=0.001)
    assert above.threshold == 1.2 * 0.002
    assert above.status is GateStatus.FAIL


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.integers(1, 100_000))
def test_sample_gate_passes_at_the_minimum_and_is_no_data_below(count: float, minimum: int) -> None:
    gate = sample_gate("s", "d", Measurement(count), minimum=minimum)
    assert gate.status is (GateStatus.PASS if count >= minimum else GateStatus.NO_DATA)
    assert gate.measured == count  # the count stays visible even when it is too small
    assert gate.threshold == minimum
    assert gate.status is not GateStatus.FAIL


def test_sample_gate_without_a_count_is_no_data() -> None:
    gate = sample_gate("s", "d", Measurement.missing("Prometheus unreachable"), minimum=1000)
    assert gate.status is GateStatus.NO_DATA
    assert gate.detail == "Prometheus unreachable"


@given(
    st.sampled_from(list(GateStatus)),
    st.floats(min_value=0, max_value=5000, allow_nan=False),
)
def test_a_ratio_over_too_small_a_sample_is_no_data(status: GateStatus, count: float) -> None:
    sample = sample_gate("s", "d", Measurement(count), minimum=1000)
    ratio = GateResult("r", "d", status, 0.0, 0.005, "<", "ratio", "x")
    judged = judged_on(ratio, sample, "canary")
    if count >= 1000:
        assert judged == ratio
    else:
        assert judged.status is GateStatus.NO_DATA
        assert judged.detail.startswith("canary sample too small") or status is GateStatus.NO_DATA


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


@given(st.lists(st.tuples(st.sampled_from(list(GateStatus)), st.booleans()), min_size=1, max_size=8))
def test_dry_run_gates_never_change_the_verdict(gates: list[tuple[GateStatus, bool]]) -> None:
    marked = [replace(_gate(status), dry_run=dry) for status, dry in gates]
    blocking = [gate for gate in marked if not gate.dry_run]
    # A dry-run gate is reported, never counted: the verdict is that of the others alone.
    assert overall(marked) is (overall(blocking) if blocking else GateStatus.PASS)
    assert all(not gate.blocks for gate in marked if gate.dry_run)


def test_dry_run_gates_are_labelled_with_what_they_would_do() -> None:
    named = as_dry_run([_gate(GateStatus.FAIL), replace(_gate(GateStatus.PASS), name="other")], ["g"])
    assert [(g.name, g.dry_run) for g in named] == [("g", True), ("other", False)]
    assert named[0].verdict_label == "dry-run: would fail"
    assert replace(named[0], status=GateStatus.PASS).verdict_label == "dry-run: would pass"
    assert replace(named[0], status=GateStatus.NO_DATA).verdict_label == "dry-run: no data"
    assert named[1].verdict_label == "pass"
    assert overall(named) is GateStatus.PASS
