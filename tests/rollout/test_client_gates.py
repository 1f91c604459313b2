"""The client gates judged on ledger facts: who blocks, who is exempt, what is ignored, and no data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fundmodel.rollout.client_gates import ClientExemption, ClientKindUsage, client_gate
from fundmodel.rollout.gate_catalogue import ClientEvidence, alias_clients_gate, breaking_clients_gate
from fundmodel.rollout.gates import GateStatus

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=7)
CUTOFF = NOW - WINDOW


def usage(name: str, count: int, ago: timedelta, **kinds: int) -> ClientKindUsage:
    number = name.rsplit("-", 1)[-1]
    return ClientKindUsage(
        f"key-{number}", name, count, NOW - ago, ("POST /api/x",), ("mezzanine",), tuple(kinds.items())
    )


def exemption(name: str, days: int = 10) -> ClientExemption:
    number = name.rsplit("-", 1)[-1]
    return ClientExemption(1, f"key-{number}", name, NOW, NOW + timedelta(days=days), "carol", "Q1")


def evidence(*found: ClientKindUsage, **overrides: object) -> ClientEvidence:
    values: dict[str, object] = {
        "window": WINDOW,
        "cutoff": CUTOFF,
        "usage": found,
        "ledger_validations": 10_000,
    }
    values.update(overrides)
    return ClientEvidence(**values)  # type: ignore[arg-type]


def test_clients_that_would_break_fail_the_gate_and_are_named() -> None:
    found = (usage("client-2", 40, timedelta(hours=2), rejected=40), usage("client-3", 5, timedelta(days=1)))
    result, report = breaking_clients_gate(evidence(*found))
    assert (result.name, result.status, result.measured, result.threshold) == (
        "clients_rejected",
        GateStatus.FAIL,
        2,
        0,
    )
    assert "client-2 40 (rejected 40), last 2026-12-03 10:00 UTC" in result.detail
    assert "client-3 5, last 2026-12-02 12:00 UTC" in result.detail
    assert "unknown and sum" in result.description
    assert [u.client_name for u in report.blocking] == ["client-2", "client-3"]


def test_exempt_and_revoked_clients_do_not_block_but_are_listed() -> None:
    found = (usage("client-2", 40, timedelta(hours=2)), usage("client-3", 5, timedelta(days=1)))
    result, report = breaking_clients_gate(
        evidence(*found, exemptions=(exemption("client-2"),), revoked_client_ids=frozenset({"key-3"}))
    )
    assert (result.status, result.measured) == (GateStatus.PASS, 0)
    assert "exempt: client-2 until 2026-12-13 12:00 UTC" in result.detail
    assert "revoked keys ignored: client-3" in result.detail
    assert [e.granted_by for _, e in report.exempt] == ["carol"]
    document = report.to_json()
    assert document["exempt"][0]["exemption"]["reason"] == "Q1"
    assert document["revoked_keys"][0]["client"] == "client-3"


def test_a_client_last_seen_before_the_window_is_out_of_it() -> None:
    old = usage("client-4", 9, WINDOW + timedelta(hours=1))  # the first day's rows reach back further
    result, report = breaking_clients_gate(evidence(old))
    assert result.status is GateStatus.PASS
    assert report.blocking == ()


def test_no_validation_counted_is_no_data() -> None:
    result, _ = breaking_clients_gate(evidence(ledger_validations=0))
    assert result.status is GateStatus.NO_DATA
    assert "counted no validation in the last 7d" in result.detail


def test_the_detail_names_five_clients_and_counts_the_rest() -> None:
    found = tuple(usage(f"client-{n}", 100 - n, timedelta(hours=n)) for n in range(1, 9))
    result, report = client_gate(
        "g",
        "d",
        kinds=("rejected",),
        window=WINDOW,
        cutoff=CUTOFF,
        usage=found,
        ledger_validations=1,
        exemptions=(),
    )
    assert result.measured == 8
    assert "and 3 more" in result.detail
    assert "client-6" not in result.detail
    assert len(report.blocking) == 8


def test_the_sunset_client_gate_counts_aliases() -> None:
    result, report = alias_clients_gate(evidence(usage("client-1", 3, timedelta(hours=1), alias=3)))
    assert (result.name, result.status) == ("clients_alias", GateStatus.FAIL)
    assert report.kinds == ("alias",)
