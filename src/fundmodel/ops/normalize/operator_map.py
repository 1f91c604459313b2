"""The operator's mapping of unknown stored values to stages (``normalize-stages --map VALUE=STAGE``).

The taxonomy never guesses what an unknown value meant; an operator who knows does, and says so with
``--map``. A mapped value is planned like a legacy spelling (a ``before -> after`` change in the run's
plan), so it goes through the same backup gate, keyset batches, per-row audit, resume and rollback, and
``fundmodel db verify`` sees it. The rules, checked before anything is read or written:

- the source is an exact stored value (no trimming or case folding: ``'Mezz '`` and ``'mezz'`` are two
  values), and one the taxonomy does not know: a known spelling already normalizes, and mapping it
  elsewhere would contradict the alias table;
- the target is a canonical stage name exactly (``series_b``, not ``Series B``);
- each source appears once; a source no stage column holds is refused once planned (a typo would
  otherwise pass silently).

There is no way to map a value to "no stage": the stage columns are ``NOT NULL``, and a value nobody can
place stays where ``--force-unknown`` leaves it, listed, until someone can.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from fundmodel.errors import InvalidInputError
from fundmodel.ops.planning import Plan, classify_stage_value
from fundmodel.stages import STAGE_ORDER

_VALID_TARGETS = tuple(stage.value for stage in STAGE_ORDER)
_FIELD = "--map"


@dataclass(frozen=True)
class OperatorMap:
    """Exact stored value -> canonical stage value, as the operator gave it."""

    targets: Mapping[str, str]

    def __bool__(self) -> bool:
        return bool(self.targets)

    def to_json(self) -> dict[str, str]:
        return dict(sorted(self.targets.items()))

    @classmethod
    def from_json(cls, document: object) -> OperatorMap:
        """The map a run stored in its plan (an empty map for runs planned before ``--map`` existed)."""
        if not isinstance(document, dict):
            return NO_OPERATOR_MAP
        return cls(MappingProxyType({str(k): str(v) for k, v in document.items()}))

    @classmethod
    def parse(cls, specs: Iterable[str]) -> OperatorMap:
        """``SOURCE=STAGE`` items, split at the last ``=`` (a stage name never holds one); ``=STAGE`` maps
        the empty string, which legacy rows may hold."""
        targets: dict[str, str] = {}
        for spec in specs:
            source, separator, target = spec.rpartition("=")
            if not separator:
                raise InvalidInputError(
                    f"--map {spec!r} is not SOURCE=STAGE (e.g. --map 'mezzanine=series_b')", field=_FIELD
                )
            if target not in _VALID_TARGETS:
                raise InvalidInputError(
                    f"--map {spec!r}: {target!r} is not a canonical stage; use one of "
                    f"{', '.join(_VALID_TARGETS)}",
                    field=_FIELD,
                )
            verdict, canonical = classify_stage_value(source)
            if verdict != "unknown":
                raise InvalidInputError(
                    f"--map {spec!r}: {source!r} is a known spelling of {canonical} and is normalized "
                    "without --map; --map is for values the taxonomy does not know",
                    field=_FIELD,
                )
            if source in targets and targets[source] != target:
                raise InvalidInputError(
                    f"--map gives {source!r} two stages ({targets[source]} and {target})", field=_FIELD
                )
            targets[source] = target
        return cls(MappingProxyType(targets))


NO_OPERATOR_MAP = OperatorMap(MappingProxyType({}))


def require_every_source_stored(plan: Plan, operator_map: OperatorMap) -> None:
    """Refuse a map naming a value no stage column holds (a typo, or a value already fixed)."""
    mapped = {change.before for table in plan.tables for change in table.changes if change.mapped}
    missing = sorted(set(operator_map.targets) - mapped)
    if missing:
        stored = _stored_unknown_values(plan)
        raise InvalidInputError(
            f"--map names values no stage column holds: {', '.join(map(repr, missing))}; "
            f"the unknown values stored are: {', '.join(map(repr, stored)) or 'none'}",
            field=_FIELD,
        )


def _stored_unknown_values(plan: Plan) -> Sequence[str]:
    return sorted(
        {u.value for table in plan.tables for u in table.unknown if u.value is not None}
        | {change.before for table in plan.tables for change in table.changes if change.mapped}
    )
