"""What ``fundmodel db normalize-stages`` may do next: the operations policy, without I/O or Typer.

Two decisions, each a pure function of the state it needs:

- :func:`decide_next_step`: given the flags and the run a previous process left unfinished (if any),
  whether to start or continue a rollback, continue the unfinished normalization, or plan a new run —
  or to refuse, because continuing the wrong kind of run would undo the work of the other.
- :func:`decide_new_run`: given the plan of a new run, whether unknown values block it, need the
  operator's confirmation to be left untouched, or whether there is nothing to change at all.

The command reads the state, asks these functions, and renders what they answer; the refusals are
:class:`~fundmodel.errors.OperationRefusedError` like every other refused operation.
"""

from __future__ import annotations

from dataclasses import dataclass

from fundmodel.errors import OperationRefusedError
from fundmodel.ops.normalize import KIND_NORMALIZE, KIND_ROLLBACK, StoredRun, resume_hint
from fundmodel.ops.planning import Plan

# The unknown values a refusal or confirmation names inline; the plan (--json, dry run) has them all.
UNKNOWN_LISTING_CHARS = 400


@dataclass(frozen=True)
class UnfinishedRun:
    """The run a previous process left running or failed: the fields the policy looks at."""

    id: str
    kind: str
    status: str
    target_run_id: str | None

    @classmethod
    def of(cls, run: StoredRun) -> UnfinishedRun:
        """From the run :func:`fundmodel.ops.normalize.find_incomplete_run` returns."""
        return cls(id=run.id, kind=run.kind, status=run.status, target_run_id=run.target_run_id)

    @property
    def resume_hint(self) -> str:
        return resume_hint(self.kind, self.target_run_id)


@dataclass(frozen=True)
class StartRollback:
    """Roll back ``target_run_id`` from its audit log, in a new rollback run."""

    target_run_id: str


@dataclass(frozen=True)
class ContinueRollback:
    """Finish the interrupted rollback ``run`` of that same target run."""

    run: UnfinishedRun


@dataclass(frozen=True)
class ContinueRun:
    """Finish the interrupted normalization ``run`` (after the backup gate, as a new run would)."""

    run: UnfinishedRun


@dataclass(frozen=True)
class PlanNewRun:
    """Nothing is unfinished: plan a new normalization run, then ask :func:`decide_new_run`."""


NextStep = StartRollback | ContinueRollback | ContinueRun | PlanNewRun


def decide_next_step(*, resume: bool, rollback_of: str | None, unfinished: UnfinishedRun | None) -> NextStep:
    """The step an ``--apply`` / ``--resume`` / ``--rollback RUN_ID`` invocation takes.

    Only one run may be unfinished at a time, and only the command that started it continues it: a
    rollback continued by ``--resume`` would put the legacy values back, a normalization continued by
    ``--rollback`` would leave its rows half-changed.
    """
    if rollback_of is not None:
        return _rollback_step(rollback_of, unfinished)
    if unfinished is not None and unfinished.kind != KIND_NORMALIZE:
        raise OperationRefusedError(
            f"rollback run {unfinished.id} of run {unfinished.target_run_id} is unfinished "
            f"({unfinished.status}); --apply and --resume only continue normalization runs: finish "
            f"the rollback with `{unfinished.resume_hint}`, then normalize again"
        )
    if unfinished is not None:
        return ContinueRun(unfinished)
    if resume:
        raise OperationRefusedError("no interrupted run to resume")
    return PlanNewRun()


def _rollback_step(target_run_id: str, unfinished: UnfinishedRun | None) -> StartRollback | ContinueRollback:
    if unfinished is None:
        return StartRollback(target_run_id)
    if unfinished.kind == KIND_ROLLBACK and unfinished.target_run_id == target_run_id:
        return ContinueRollback(unfinished)
    raise OperationRefusedError(
        f"{unfinished.kind} run {unfinished.id} is unfinished; "
        f"finish it with `{unfinished.resume_hint}` first"
    )


@dataclass(frozen=True)
class NewRunDecision:
    """What a new run needs before it starts, and whether it has anything to do."""

    # The action the operator confirms first (leaving unknown values untouched), when there is one.
    confirmation: str | None
    # False when every known stage is already canonical: no backup gate, no run is recorded.
    has_changes: bool


def decide_new_run(plan: Plan, *, force_unknown: bool) -> NewRunDecision:
    """Unknown values block a new run unless ``--force-unknown`` (then confirmed); no change, no run."""
    confirmation = None
    if plan.has_unknown:
        listing = unknown_listing(plan)
        if not force_unknown:
            raise OperationRefusedError(
                f"unknown stage values block the run ({listing}); fix them, or pass "
                "--force-unknown to normalize the rest and leave them untouched",
                extra={"plan": plan.to_json()},
            )
        confirmation = f"Leave {plan.unknown_rows} rows with unknown stages untouched ({listing})"
    return NewRunDecision(confirmation=confirmation, has_changes=plan.rows_to_change > 0)


def unknown_listing(plan: Plan) -> str:
    """The plan's unknown values on one line (``table: 'value' xrows; …``), cut to a readable length."""
    listing = "; ".join(
        f"{table.table}: {unknown.value!r} x{unknown.rows}"
        for table in plan.tables
        for unknown in table.unknown
    )
    return listing[:UNKNOWN_LISTING_CHARS]
