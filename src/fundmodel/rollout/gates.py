"""Pure gate evaluation: a measured value against a threshold gives pass, fail or no data.

No data (nothing measured, Prometheus unreachable, 0/0, NaN) is its own state and never counts as
healthy: promotion is allowed only when every gate passes - except a *dry-run* gate (Argo Rollouts'
``dryRun``), which is evaluated and reported like any other but never blocks, so a new gate can be
watched before it is trusted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

Comparison = Literal["<", "<=", ">="]
Unit = Literal["ratio", "seconds", "duration", "count"]
"""``seconds``: a latency; ``duration``: a span of time (soak, age), both in seconds."""


class GateStatus(StrEnum):
    PASS = "pass"  # noqa: S105  (a gate verdict, not a password)
    FAIL = "fail"
    NO_DATA = "no_data"

    __hash__ = str.__hash__


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measured value, or why there is none (``value is None``)."""

    value: float | None
    detail: str = ""
    absent_fails: bool = False
    """No value, but its absence is itself a fact that fails the gate (e.g. no backup at all)."""

    @classmethod
    def missing(cls, why: str) -> Measurement:
        return cls(None, why)

    @classmethod
    def failing(cls, why: str) -> Measurement:
        return cls(None, why, absent_fails=True)

    @property
    def usable(self) -> bool:
        return self.value is not None and math.isfinite(self.value)


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate of the next step: what was measured, against what, and the verdict."""

    name: str
    description: str
    status: GateStatus
    measured: float | None
    threshold: float | None
    comparison: Comparison
    unit: Unit
    detail: str = ""
    dry_run: bool = False
    """Reported, never blocking (the gates file's ``dry_run_gates``)."""

    @property
    def passed(self) -> bool:
        return self.status is GateStatus.PASS

    @property
    def blocks(self) -> bool:
        """Whether this gate holds the step back: it does not pass and is not a dry run."""
        return not self.passed and not self.dry_run

    @property
    def verdict_label(self) -> str:
        """The status as shown to operators: ``fail``, or ``dry-run: would fail`` for a dry-run gate."""
        if not self.dry_run:
            return self.status.value
        if self.status is GateStatus.NO_DATA:
            return "dry-run: no data"
        return f"dry-run: would {self.status.value}"


def compare(measured: float, comparison: Comparison, threshold: float) -> bool:
    if comparison == "<":
        return measured < threshold
    if comparison == "<=":
        return measured <= threshold
    return measured >= threshold


def evaluate_gate(
    name: str,
    description: str,
    measurement: Measurement,
    *,
    threshold: float,
    comparison: Comparison,
    unit: Unit,
) -> GateResult:
    """Compare a measurement with its threshold; a missing or non-finite value is ``no_data``."""
    value = measurement.value
    if value is None and measurement.absent_fails:
        return GateResult(
            name, description, GateStatus.FAIL, None, threshold, comparison, unit, measurement.detail
        )
    if value is None or not math.isfinite(value):
        why = measurement.detail or "no data"
        if value is not None:
            why = f"{why} (measured {value})"
        return GateResult(name, description, GateStatus.NO_DATA, None, threshold, comparison, unit, why)
    status = GateStatus.PASS if compare(value, comparison, threshold) else GateStatus.FAIL
    return GateResult(name, description, status, value, threshold, comparison, unit, measurement.detail)


def relative_gate(
    name: str,
    description: str,
    canary: Measurement,
    baseline: Measurement,
    *,
    max_factor: float,
    floor: float = 0.0,
) -> GateResult:
    """``canary <= max(max_factor x baseline, floor)``; shown as the canary ratio against that bound.

    The floor keeps a clean baseline (ratio 0) from turning the bound into 0, where a single stray
    rejection in the canary would fail the comparison.
    """
    base = baseline.value
    if base is None or not math.isfinite(base):
        why = f"baseline cohort: {baseline.detail or 'no data'}"
        return GateResult(name, description, GateStatus.NO_DATA, None, None, "<=", "ratio", why)
    relative = max_factor * base
    bound = max(relative, floor)
    result = evaluate_gate(name, description, canary, threshold=bound, comparison="<=", unit="ratio")
    detail = f"bound = {max_factor:g} x baseline {base:.4%}"
    if floor > relative:
        detail = f"bound = floor {floor:.4%} (above {max_factor:g} x baseline {base:.4%})"
    return replace(result, detail=f"{detail}; {result.detail}" if result.detail else detail)


def sample_gate(name: str, description: str, count: Measurement, *, minimum: float) -> GateResult:
    """At least ``minimum`` observations in the window. Fewer is ``no_data`` (kept with the count):
    too little evidence to judge yet, which blocks like any missing data but is not a failure."""
    result = evaluate_gate(name, description, count, threshold=minimum, comparison=">=", unit="count")
    if result.status is not GateStatus.FAIL or count.absent_fails:
        return result
    why = f"only {result.measured:,.0f} of the {minimum:,.0f} needed: too few to judge yet"
    detail = f"{why}; {count.detail}" if count.detail else why
    return replace(result, status=GateStatus.NO_DATA, detail=detail)


def judged_on(result: GateResult, sample: GateResult, cohort: str) -> GateResult:
    """``result`` as computed from ``sample``'s observations: ``no_data`` unless that sample is big enough.

    A ratio over a handful of validations proves nothing either way (no rejection among 20 says nothing
    about a 0.5 % threshold; one among 20 is 5 %), so it neither passes nor fails.
    """
    if sample.passed or result.status is GateStatus.NO_DATA:
        return result
    count = "no count" if sample.measured is None else f"{sample.measured:,.0f}"
    why = f"{cohort} sample too small ({count} validations, {sample.threshold:,.0f} needed)"
    detail = f"{why}; {result.detail}" if result.detail else why
    return replace(result, status=GateStatus.NO_DATA, detail=detail)


def as_dry_run(gates: Iterable[GateResult], names: Iterable[str]) -> list[GateResult]:
    """``gates`` with those named in ``names`` marked dry-run (reported, never blocking)."""
    dry = frozenset(names)
    return [replace(gate, dry_run=True) if gate.name in dry else gate for gate in gates]


def overall(gates: Iterable[GateResult]) -> GateStatus:
    """``pass`` only when there is at least one gate and all blocking ones pass; any ``fail`` beats
    ``no_data``. Dry-run gates do not count; a step whose every gate is a dry run passes (the operator
    chose to watch them all)."""
    evaluated = list(gates)
    if not evaluated:
        return GateStatus.NO_DATA
    statuses = [gate.status for gate in evaluated if not gate.dry_run]
    if GateStatus.FAIL in statuses:
        return GateStatus.FAIL
    if GateStatus.NO_DATA in statuses:
        return GateStatus.NO_DATA
    return GateStatus.PASS
