"""What each decision tells the usage ledger (``Decision.uses``): every name, its kind, why a 400."""

from __future__ import annotations

import pytest

from fundmodel.validation import (
    ValidationMode,
    validate_stage,
    validate_stage_distribution,
    validate_stage_keys,
)
from fundmodel.validation.decision_types import UsageKind

OFF, WARN, ENFORCE = ValidationMode.OFF, ValidationMode.WARN, ValidationMode.ENFORCE
ALIAS, UNKNOWN, SUM, REJECTED = UsageKind.ALIAS, UsageKind.UNKNOWN, UsageKind.SUM, UsageKind.REJECTED


@pytest.mark.parametrize("mode", list(ValidationMode))
def test_canonical_and_malformed_input_have_no_uses(mode: ValidationMode) -> None:
    assert validate_stage_distribution({"seed": 0.5, "growth": 0.5}, mode).uses == ()
    assert validate_stage("seed", mode).uses == ()
    assert validate_stage_distribution({"seed": "x"}, mode).uses == ()
    assert validate_stage("", mode).uses == ()


@pytest.mark.parametrize("mode", list(ValidationMode))
def test_every_alias_is_a_use_in_every_mode(mode: ValidationMode) -> None:
    decision = validate_stage_distribution({"Seed": 0.5, "Series A": 0.5}, mode)
    assert decision.uses == ((ALIAS, "Seed"), (ALIAS, "Series A"))
    assert validate_stage("Series A", mode).uses == ((ALIAS, "Series A"),)


@pytest.mark.parametrize("mode", [OFF, WARN])
def test_lenient_modes_count_unknown_names_aliases_and_a_bad_sum(mode: ValidationMode) -> None:
    decision = validate_stage_distribution({"Seed": 0.5, "moon": 0.3, "growth": 0.3}, mode)
    assert decision.uses == ((ALIAS, "Seed"), (UNKNOWN, "moon"), (SUM, ""))
    assert validate_stage("moon", mode).uses == ((UNKNOWN, "moon"),)


def test_all_unknown_names_are_counted_not_only_the_five_the_offender_log_gets() -> None:
    distribution = {f"stage {number}": 0.1 for number in range(7)} | {"seed": 0.3}
    decision = validate_stage_distribution(distribution, WARN)
    assert len(decision.offending_names) == 5
    assert [spelling for _, spelling in decision.uses] == [f"stage {number}" for number in range(7)]


def test_enforce_counts_the_reasons_of_the_rejection_only() -> None:
    unknown = validate_stage_distribution({"Seed": 0.5, "moon": 0.3, "mars": 0.2}, ENFORCE)
    assert unknown.uses == ((REJECTED, "moon"), (REJECTED, "mars"))
    bad_sum = validate_stage_distribution({"Seed": 0.5, "growth": 0.6}, ENFORCE)
    assert bad_sum.uses == ((REJECTED, ""),)
    assert validate_stage("moon", ENFORCE).uses == ((REJECTED, "moon"),)


def test_after_the_sunset_aliases_are_rejections_too() -> None:
    decision = validate_stage_distribution({"Seed": 0.5, "growth": 0.5}, ENFORCE, aliases_accepted=False)
    assert decision.uses == ((REJECTED, "Seed"),)
    assert validate_stage("Seed", ENFORCE, aliases_accepted=False).uses == ((REJECTED, "Seed"),)


def test_override_keys_count_each_key() -> None:
    assert validate_stage_keys(["Seed", "moon", "growth"], WARN).uses == (
        (ALIAS, "Seed"),
        (UNKNOWN, "moon"),
    )
    assert validate_stage_keys(["Seed", "moon"], ENFORCE).uses == ((REJECTED, "moon"),)
