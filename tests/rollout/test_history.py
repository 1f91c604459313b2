from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from fundmodel.db.mode_store import ModeStore
from fundmodel.rollout import history
from fundmodel.rollout.history import (
    AuditedChange,
    audited_changes,
    auto_downgrades_since,
    find_phase_times,
    latest_warn_extension,
)
from fundmodel.rollout.phases import LADDER, same_phase
from fundmodel.validation import ModeState, ValidationMode

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OFF = ModeState(ValidationMode.OFF)
WARN = ModeState(ValidationMode.WARN)
E10 = ModeState(ValidationMode.ENFORCE, 10)


def chain(states: list[ModeState], sources: list[str] | None = None) -> list[AuditedChange]:
    """Changes old -> new along ``states``, one hour apart, returned newest first."""
    sources = sources or ["rollout"] * (len(states) - 1)
    changes = [
        AuditedChange(T0 + timedelta(hours=i), old, new, source)
        for i, (old, new, source) in enumerate(zip(states, states[1:], sources, strict=False))
    ]
    return changes[::-1]


def test_same_phase_changes_do_not_restart_the_phase() -> None:
    log = chain([WARN, E10, ModeState(ValidationMode.WARN, 10), WARN])
    times = find_phase_times(log, WARN)
    assert times.entered_at == T0 + timedelta(hours=1)  # the downgrade, not the 10 % -> 100 % tidy-up


def test_warn_period_counts_from_leaving_off() -> None:
    log = chain([OFF, WARN, E10, WARN], ["rollout", "rollout", "alertmanager"])
    times = find_phase_times(log, WARN)
    assert times.active_since == T0
    assert times.entered_at == T0 + timedelta(hours=2)
    assert find_phase_times(log, OFF).active_since is None


def test_step_began_is_the_rollouts_own_step() -> None:
    log = chain([WARN, E10, WARN, E10], ["rollout", "alertmanager", "manual"])
    times = find_phase_times(log, E10)
    assert times.entered_at == T0 + timedelta(hours=2)
    assert times.step_began == T0
    assert find_phase_times([], E10).entered_at is None


states = st.sampled_from([phase.state for phase in LADDER] + [ModeState(ValidationMode.WARN, 10)])


@given(st.lists(states, min_size=2, max_size=12))
def test_entered_at_is_the_latest_change_into_the_current_phase(path: list[ModeState]) -> None:
    log = chain(path)
    current = path[-1]
    times = find_phase_times(log, current)
    entering = [c.changed_at for c in log if same_phase(c.new, current) and not same_phase(c.old, current)]
    assert times.entered_at == (entering[0] if entering else None)
    assert times.step_began == times.entered_at  # every change here is the rollout's


def test_database_queries_page_through_the_audit_log(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "_PAGE", 4)
    store = ModeStore(engine, default=WARN)
    before = datetime.now(UTC) - timedelta(seconds=1)
    for index in range(11):  # three pages
        mode = ValidationMode.ENFORCE if index % 2 == 0 else ValidationMode.WARN
        store.set(mode, 10, actor="t", reason=str(index), source="alertmanager" if index % 2 else "rollout")
    changes = list(audited_changes(engine))
    assert len(changes) == 11
    assert [c.changed_at for c in changes] == sorted((c.changed_at for c in changes), reverse=True)
    assert auto_downgrades_since(engine, before) == 5
    assert auto_downgrades_since(engine, datetime.now(UTC) + timedelta(minutes=1)) == 0
    assert latest_warn_extension(engine, before) is None
    until = datetime(2027, 1, 31, tzinfo=UTC)
    store.set(
        ValidationMode.WARN,
        10,
        actor="t",
        reason="keep",
        extra={"warn_extension": {"until": until.isoformat()}},
    )
    assert latest_warn_extension(engine, before) == until
