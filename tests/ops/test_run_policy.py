"""The normalize-stages policy: which run an invocation starts or continues, what a new run needs first.

Pure functions over plain values: every branch directly, and the one invariant that matters most (a run
is only ever continued by the command that started it) over every combination Hypothesis finds.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.errors import OperationRefusedError
from fundmodel.ops.normalize import FAILED, KIND_NORMALIZE, KIND_ROLLBACK, RUNNING
from fundmodel.ops.planning import Plan, TablePlan, UnknownValue, ValueChange
from fundmodel.ops.run_policy import (
    UNKNOWN_LISTING_CHARS,
    ContinueRollback,
    ContinueRun,
    NewRunDecision,
    PlanNewRun,
    StartRollback,
    UnfinishedRun,
    decide_new_run,
    decide_next_step,
    unknown_listing,
)


def unfinished_normalization(status: str = RUNNING) -> UnfinishedRun:
    return UnfinishedRun(id="n1", kind=KIND_NORMALIZE, status=status, target_run_id=None)


def unfinished_rollback(target: str = "n0", status: str = FAILED) -> UnfinishedRun:
    return UnfinishedRun(id="r1", kind=KIND_ROLLBACK, status=status, target_run_id=target)


def plan(*, changes: int = 0, unknown: tuple[tuple[str, int], ...] = ()) -> Plan:
    return Plan(
        (
            TablePlan(
                table="companies",
                column="stage",
                total_rows=changes + sum(rows for _value, rows in unknown) + 5,
                canonical_rows=5,
                changes=(ValueChange("seed", "Seed", changes),) if changes else (),
                unknown=tuple(UnknownValue(value, rows, ("1",)) for value, rows in unknown),
            ),
        )
    )


# --- decide_next_step ----------------------------------------------------------------------------


def test_the_unfinished_run_row_carries_the_command_that_finishes_it() -> None:
    assert unfinished_normalization().resume_hint == "fundmodel db normalize-stages --resume"
    assert unfinished_rollback("abc").resume_hint == "fundmodel db normalize-stages --rollback abc"


@pytest.mark.parametrize("resume", [False, True])
def test_with_nothing_unfinished_apply_plans_a_new_run(resume: bool) -> None:
    if resume:
        with pytest.raises(OperationRefusedError, match=r"^no interrupted run to resume$"):
            decide_next_step(resume=True, rollback_of=None, unfinished=None)
    else:
        assert decide_next_step(resume=False, rollback_of=None, unfinished=None) == PlanNewRun()


@pytest.mark.parametrize("resume", [False, True])
def test_apply_and_resume_continue_an_unfinished_normalization(resume: bool) -> None:
    run = unfinished_normalization(FAILED)
    assert decide_next_step(resume=resume, rollback_of=None, unfinished=run) == ContinueRun(run)


@pytest.mark.parametrize("resume", [False, True])
def test_apply_and_resume_refuse_to_continue_a_rollback(resume: bool) -> None:
    with pytest.raises(OperationRefusedError) as refused:
        decide_next_step(resume=resume, rollback_of=None, unfinished=unfinished_rollback("n0"))
    assert refused.value.detail == (
        "rollback run r1 of run n0 is unfinished (failed); --apply and --resume only continue "
        "normalization runs: finish the rollback with `fundmodel db normalize-stages --rollback n0`, "
        "then normalize again"
    )


def test_a_rollback_starts_when_nothing_is_unfinished() -> None:
    assert decide_next_step(resume=False, rollback_of="n0", unfinished=None) == StartRollback("n0")


def test_a_rollback_continues_the_unfinished_rollback_of_the_same_run() -> None:
    run = unfinished_rollback("n0")
    assert decide_next_step(resume=False, rollback_of="n0", unfinished=run) == ContinueRollback(run)


@pytest.mark.parametrize(
    ("unfinished", "detail"),
    [
        (
            unfinished_rollback("other"),
            "rollback run r1 is unfinished; finish it with "
            "`fundmodel db normalize-stages --rollback other` first",
        ),
        (
            unfinished_normalization(),
            "normalize run n1 is unfinished; finish it with `fundmodel db normalize-stages --resume` first",
        ),
    ],
)
def test_a_rollback_refuses_while_another_run_is_unfinished(unfinished: UnfinishedRun, detail: str) -> None:
    with pytest.raises(OperationRefusedError) as refused:
        decide_next_step(resume=False, rollback_of="n0", unfinished=unfinished)
    assert refused.value.detail == detail


run_ids = st.sampled_from(["n0", "n1", "r1", "other"])
unfinished_runs = st.none() | st.builds(
    lambda kind, target, status, run_id: UnfinishedRun(
        id=run_id, kind=kind, status=status, target_run_id=target
    ),
    st.sampled_from([KIND_NORMALIZE, KIND_ROLLBACK]),
    st.none() | run_ids,
    st.sampled_from([RUNNING, FAILED]),
    run_ids,
)


@given(resume=st.booleans(), rollback_of=st.none() | run_ids, unfinished=unfinished_runs)
def test_a_run_is_only_continued_by_the_command_that_started_it(
    resume: bool, rollback_of: str | None, unfinished: UnfinishedRun | None
) -> None:
    try:
        step = decide_next_step(resume=resume, rollback_of=rollback_of, unfinished=unfinished)
    except OperationRefusedError:
        # Refused only when a run is in the way, or --resume has nothing to resume.
        assert unfinished is not None or (resume and rollback_of is None)
        return
    if isinstance(step, ContinueRun):
        assert rollback_of is None
        assert step.run.kind == KIND_NORMALIZE
    elif isinstance(step, ContinueRollback):
        assert step.run.kind == KIND_ROLLBACK
        assert step.run.target_run_id == rollback_of
    elif isinstance(step, StartRollback):
        assert unfinished is None
        assert step.target_run_id == rollback_of
    else:
        assert unfinished is None
        assert rollback_of is None
        assert not resume


# --- decide_new_run ------------------------------------------------------------------------------


def test_a_plan_with_changes_and_no_unknown_values_starts_without_confirmation() -> None:
    assert decide_new_run(plan(changes=3), force_unknown=False) == NewRunDecision(None, has_changes=True)


@pytest.mark.parametrize("force_unknown", [False, True])
def test_nothing_to_change_starts_no_run(force_unknown: bool) -> None:
    decision = decide_new_run(plan(), force_unknown=force_unknown)
    assert decision == NewRunDecision(None, has_changes=False)


def test_unknown_values_block_a_run_and_the_refusal_carries_the_plan() -> None:
    blocking = plan(changes=2, unknown=(("Series Z", 4),))
    with pytest.raises(OperationRefusedError) as refused:
        decide_new_run(blocking, force_unknown=False)
    assert refused.value.detail == (
        "unknown stage values block the run (companies: 'Series Z' x4); fix them, or pass "
        "--force-unknown to normalize the rest and leave them untouched"
    )
    assert refused.value.extra == {"plan": blocking.to_json()}


@pytest.mark.parametrize("changes", [0, 2])
def test_forced_unknown_values_need_confirmation_even_with_nothing_else_to_change(changes: int) -> None:
    decision = decide_new_run(plan(changes=changes, unknown=(("Series Z", 4),)), force_unknown=True)
    assert decision == NewRunDecision(
        "Leave 4 rows with unknown stages untouched (companies: 'Series Z' x4)", has_changes=changes > 0
    )


def test_the_unknown_listing_is_cut_to_its_limit() -> None:
    many = plan(unknown=tuple((f"unknown stage number {index}", 1) for index in range(100)))
    listing = unknown_listing(many)
    assert len(listing) == UNKNOWN_LISTING_CHARS
    assert listing.startswith("companies: 'unknown stage number 0' x1; companies: 'unknown stage number 1'")
