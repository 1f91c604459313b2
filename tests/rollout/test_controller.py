"""The controller over a real mode store (SQLite and PostgreSQL) and a real Prometheus fed recorded series."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, update

from fundmodel.db.engine import create_db_engine
from fundmodel.db.exemption_tables import client_exemptions
from fundmodel.db.mode_store import ModeStore
from fundmodel.db.tables import api_keys, funds, portfolio_companies, stage_validation_audit
from fundmodel.db.usage_tables import stage_usage
from fundmodel.errors import ConflictError, InvalidInputError, OperationRefusedError
from fundmodel.ops.backup import backup_tables, create_backup
from fundmodel.ops.restore import verify_backup
from fundmodel.ops.stage_columns import stage_columns, stage_metadata
from fundmodel.rollout.config import GateConfig
from fundmodel.rollout.controller import RolloutController
from fundmodel.rollout.data_checks import StoredDataChecks
from fundmodel.rollout.gates import GateStatus
from fundmodel.rollout.measurements import PrometheusMeasurements
from fundmodel.rollout.phases import Phase
from fundmodel.rollout.prometheus import PrometheusClient
from fundmodel.rollout.status import Verdict
from fundmodel.validation import ModeState, ValidationMode
from tests.conftest import make_database
from tests.rollout.recorded_prometheus import RecordedPrometheus, free_port

OFF, WARN, ENFORCE = ValidationMode.OFF, ValidationMode.WARN, ValidationMode.ENFORCE


class Rig:
    """A controller whose clock is the recording's end, plus helpers to write backdated history."""

    def __init__(self, engine: Engine, server: RecordedPrometheus, backup_dir: Path) -> None:
        self.engine = engine
        self.server = server
        self.end = server.end
        self.backup_dir = backup_dir
        self.store = ModeStore(engine, default=ModeState(WARN))

    def controller(
        self, scenario: str, *, prometheus_url: str | None = None, **config: Any
    ) -> RolloutController:
        client = PrometheusClient(prometheus_url or self.server.url, timeout=2)
        return RolloutController(
            self.store,
            self.engine,
            measurements=PrometheusMeasurements(client, label_filter=f'scenario="{scenario}"'),
            data_checks=StoredDataChecks(self.engine, backup_dir=self.backup_dir),
            config=GateConfig(**config),
            canary_salt="pytest",
            clock=lambda: self.end,
        )

    def set(self, mode: ValidationMode, percent: float, ago: timedelta, source: str = "rollout") -> None:
        change = self.store.set(mode, percent, actor="pytest", reason="setup", source=source)
        with self.engine.begin() as connection:
            connection.execute(
                update(stage_validation_audit)
                .where(stage_validation_audit.c.id == change.audit_id)
                .values(changed_at=self.end - ago)
            )

    def usage(
        self, client_id: str, name: str, kind: str, count: int, *, ago: timedelta = timedelta(hours=1)
    ) -> None:
        """One usage-ledger row, as the service's flush would write it (``ago`` before the clock)."""
        seen = self.end - ago
        with self.engine.begin() as connection:
            connection.execute(
                insert(stage_usage).values(
                    day=seen.date(),
                    client_id=client_id,
                    endpoint="POST /api/funds/{fundId}/companies",
                    field="stage",
                    kind=kind,
                    spelling="" if kind in ("valid", "sum") else "mezzanine",
                    count=count,
                    first_seen_at=seen,
                    last_seen_at=seen,
                    client_name=name,
                )
            )

    def backup(self) -> None:
        metadata = stage_metadata()
        names = [column.table_name for column in stage_columns(metadata)]
        backup = create_backup(self.engine, backup_tables(metadata, names), self.backup_dir)
        # The gate counts only a backup verify-backup has restored.
        verify_backup(backup.file, scratch_server_url=self.engine.url.render_as_string(hide_password=False))


@pytest.fixture
def rig(database_url: str, recorded_prometheus: RecordedPrometheus, tmp_path: Path) -> Iterator[Rig]:
    engine = create_db_engine(database_url)
    yield Rig(engine, recorded_prometheus, tmp_path / "backups")
    engine.dispose()


@pytest.fixture
def sqlite_rig(recorded_prometheus: RecordedPrometheus, tmp_path: Path) -> Iterator[Rig]:
    """SQLite only: the backup gate runs the data-ops backup, which needs a whole database."""
    engine = create_db_engine(make_database("sqlite", tmp_path, None))
    yield Rig(engine, recorded_prometheus, tmp_path / "backups")
    engine.dispose()


def gates(status: Any) -> dict[str, GateStatus]:
    return {gate.name: gate.status for gate in status.gates}


def test_off_to_warn_needs_traffic_on_every_endpoint(rig: Rig) -> None:
    rig.set(OFF, 100, timedelta(days=2))
    status = rig.controller("warn_healthy").status()
    assert status.phase is Phase.OFF
    assert status.next_phase is Phase.WARN
    assert status.time_in_phase == timedelta(days=2)
    assert set(gates(status).values()) == {GateStatus.PASS}
    assert len(status.gates) == 5
    assert status.verdict is Verdict.ALLOWED

    strict = rig.controller("warn_healthy", min_validations_per_endpoint=1_000_000)
    assert set(gates(strict.status()).values()) == {GateStatus.FAIL}
    with pytest.raises(OperationRefusedError, match="gates for warn do not pass"):
        strict.advance(actor="alice")

    result = rig.controller("warn_healthy").advance(actor="alice")
    assert result.change is not None
    assert result.change.new == ModeState(WARN)
    [latest] = rig.store.audit_log(1)
    assert (latest.source, latest.actor, latest.reason) == ("rollout", "alice", "gates passed for warn")
    assert latest.extra["rollout"]["from"] == "off"
    assert latest.extra["rollout"]["forced"] is False
    assert {g["status"] for g in latest.extra["rollout"]["gates"]} == {"pass"}


def test_warn_to_enforce_10_with_clean_data_and_fresh_backup(sqlite_rig: Rig) -> None:
    rig = sqlite_rig
    rig.set(OFF, 100, timedelta(days=9))
    rig.set(WARN, 100, timedelta(days=8))
    blocked = rig.controller("warn_healthy").status()
    assert gates(blocked) == {
        "warn_observed": GateStatus.PASS,
        "would_reject_ratio": GateStatus.PASS,
        "would_reject_worst_hour": GateStatus.PASS,
        "stored_stages_canonical": GateStatus.PASS,
        "db_verify": GateStatus.PASS,
        "backup_fresh": GateStatus.FAIL,  # no backup at all is a failure, not missing data
    }
    rig.backup()
    status = rig.controller("warn_healthy").status()
    assert status.allowed
    assert status.verdict is Verdict.ALLOWED
    backup_gate = next(g for g in status.gates if g.name == "backup_fresh")
    assert backup_gate.measured is not None
    assert backup_gate.threshold == 24 * 3600
    result = rig.controller("warn_healthy").advance(actor="alice", reason="week of clean warn")
    assert result.change is not None
    assert result.change.new == ModeState(ENFORCE, 10)
    assert rig.store.read().state == Phase.ENFORCE_10.state


def test_an_hour_above_one_percent_blocks_and_force_is_audited(sqlite_rig: Rig) -> None:
    rig = sqlite_rig
    rig.set(OFF, 100, timedelta(days=9))
    rig.set(WARN, 100, timedelta(days=8))
    rig.backup()
    controller = rig.controller("warn_spiky")
    status = controller.status()
    assert gates(status)["would_reject_ratio"] is GateStatus.PASS
    assert gates(status)["would_reject_worst_hour"] is GateStatus.FAIL
    assert status.verdict is Verdict.BLOCKED
    with pytest.raises(OperationRefusedError, match="would_reject_worst_hour fail"):
        controller.advance(actor="alice")
    with pytest.raises(InvalidInputError, match="--force needs --reason"):
        controller.advance(actor="alice", force=True)
    result = controller.advance(actor="alice", force=True, reason="spike was a load test")
    assert result.change is not None
    [latest] = rig.store.audit_log(1)
    assert latest.reason == "FORCED: spike was a load test"
    assert latest.extra["rollout"]["forced"] is True
    assert {"name": "would_reject_worst_hour", "status": "fail"}.items() <= latest.extra["rollout"]["gates"][
        2
    ].items()


def test_non_canonical_stored_data_blocks(sqlite_rig: Rig) -> None:
    rig = sqlite_rig
    rig.set(OFF, 100, timedelta(days=9))
    rig.set(WARN, 100, timedelta(days=8))
    with rig.engine.begin() as connection:
        fund_id = connection.execute(
            insert(funds)
            .values(
                name="Legacy",
                vintage_year=2020,
                committed_capital=1e8,
                management_fee_rate=0.02,
                carried_interest_rate=0.2,
            )
            .returning(funds.c.id)
        ).scalar_one()
        connection.execute(
            insert(portfolio_companies).values(
                fund_id=fund_id, name="Old", stage="Series A", invested=1e6, reserve_allocation=5e5
            )
        )
    rig.backup()
    status = rig.controller("warn_healthy").status()
    assert gates(status)["stored_stages_canonical"] is GateStatus.FAIL
    assert gates(status)["db_verify"] is GateStatus.FAIL
    canonical = next(g for g in status.gates if g.name == "stored_stages_canonical")
    assert "portfolio_companies.stage_canonical" in canonical.detail


def test_unreachable_prometheus_is_no_data_and_blocks(rig: Rig) -> None:
    rig.set(OFF, 100, timedelta(days=9))
    rig.set(WARN, 100, timedelta(days=8))
    controller = rig.controller("warn_healthy", prometheus_url=f"http://127.0.0.1:{free_port()}")
    status = controller.status()
    assert gates(status)["would_reject_ratio"] is GateStatus.NO_DATA
    assert gates(status)["would_reject_worst_hour"] is GateStatus.NO_DATA
    assert not status.allowed
    assert status.verdict is Verdict.BLOCKED
    with pytest.raises(OperationRefusedError, match="no_data"):
        controller.advance(actor="alice")
    assert rig.store.read().state == ModeState(WARN)


def test_canary_step_gates(rig: Rig) -> None:
    rig.set(ENFORCE, 10, timedelta(hours=3))
    healthy = rig.controller("canary_healthy").status()
    assert healthy.phase is Phase.ENFORCE_10
    assert healthy.next_phase is Phase.ENFORCE_50
    assert gates(healthy) == dict.fromkeys(
        [
            "soak_time",
            "canary_sample",
            "canary_reject_ratio",
            "canary_vs_baseline",
            "validation_p99",
            "no_auto_downgrade",
        ],
        GateStatus.PASS,
    )
    sample = next(g for g in healthy.gates if g.name == "canary_sample")
    assert sample.threshold == 1000
    assert sample.measured is not None
    assert sample.measured > 3000  # 100 every 5 minutes for 3 hours
    worse = gates(rig.controller("canary_worse").status())
    assert worse["canary_reject_ratio"] is GateStatus.PASS  # 0.4 % is under 0.5 % ...
    assert worse["canary_vs_baseline"] is GateStatus.FAIL  # ... but over 1.2 x the baseline's 0.2 %
    assert worse["validation_p99"] is GateStatus.FAIL
    # a 4 h soak is required before leaving 50 %
    rig.set(ENFORCE, 50, timedelta(hours=3))
    at_50 = rig.controller("canary_healthy").status()
    assert at_50.next_phase is Phase.ENFORCE_100
    soak = next(g for g in at_50.gates if g.name == "soak_time")
    assert (soak.status, soak.measured, soak.threshold) == (GateStatus.FAIL, 3 * 3600, 4 * 3600)


def test_a_downgrade_since_the_step_began_blocks_even_after_a_manual_re_raise(rig: Rig) -> None:
    rig.set(ENFORCE, 10, timedelta(hours=5))
    rig.set(WARN, 10, timedelta(hours=4), source="alertmanager")
    rig.set(ENFORCE, 10, timedelta(hours=3), source="manual")
    status = rig.controller("canary_healthy").status()
    assert status.time_in_phase == timedelta(hours=3)
    result = gates(status)
    assert result["soak_time"] is GateStatus.PASS
    assert result["no_auto_downgrade"] is GateStatus.FAIL


def test_rollback_goes_to_warn_at_once_and_never_raises(rig: Rig) -> None:
    rig.set(ENFORCE, 50, timedelta(hours=1))
    controller = rig.controller("canary_healthy")
    with pytest.raises(InvalidInputError):
        controller.rollback(actor="bob", reason="  ")
    result = controller.rollback(actor="bob", reason="clients complain")
    assert result.change is not None
    assert result.message == "rolled back: enforce 50% -> warn"
    assert rig.store.read().state.mode is WARN
    [latest] = rig.store.audit_log(1)
    assert (latest.source, latest.actor, latest.reason) == ("rollout", "bob", "clients complain")
    assert controller.rollback(actor="bob", reason="again").change is None
    rig.set(OFF, 100, timedelta(minutes=1))
    assert controller.rollback(actor="bob", reason="off").change is None
    assert rig.store.read().state.mode is OFF


def test_advance_moves_one_step_unless_forced(rig: Rig) -> None:
    rig.set(OFF, 100, timedelta(days=2))
    controller = rig.controller("warn_healthy")
    with pytest.raises(OperationRefusedError, match="one step at a time"):
        controller.advance(actor="alice", to=Phase.ENFORCE_10)
    with pytest.raises(InvalidInputError, match="not ahead"):
        controller.advance(actor="alice", to=Phase.OFF)
    result = controller.advance(actor="alice", to=Phase.SUNSET, force=True, reason="incident drill")
    assert result.change is not None
    assert result.change.new == Phase.SUNSET.state
    status = controller.status()
    assert status.verdict is Verdict.COMPLETE
    assert status.gates == ()
    with pytest.raises(OperationRefusedError, match="complete"):
        controller.advance(actor="alice")


def test_warn_cap_counts_from_leaving_off_and_can_be_extended(rig: Rig) -> None:
    rig.set(OFF, 100, timedelta(days=40))
    rig.set(WARN, 100, timedelta(days=31))
    rig.set(ENFORCE, 10, timedelta(days=20))
    rig.set(WARN, 10, timedelta(days=10), source="alertmanager")  # does not restart the warn clock
    controller = rig.controller("warn_healthy")
    status = controller.status()
    assert status.time_in_phase == timedelta(days=10)
    assert status.warn_cap is not None
    assert status.warn_cap.exceeded
    assert status.warn_cap.active_since == rig.end - timedelta(days=31)
    assert status.verdict is Verdict.WARN_OVERDUE
    assert status.to_json()["warn_cap"]["choices"][0].startswith("extend aliases")
    with pytest.raises(InvalidInputError, match="future"):
        controller.extend_warn(actor="carol", reason="r", until=rig.end - timedelta(days=1), clients=[])
    result = controller.extend_warn(
        actor="carol", reason="Acme migrates in January", until=rig.end + timedelta(days=14), clients=["acme"]
    )
    assert "acme" in result.message
    extended = controller.status()
    assert extended.warn_cap is not None
    assert not extended.warn_cap.exceeded
    assert extended.warn_cap.deadline == rig.end + timedelta(days=14)
    assert extended.verdict is not Verdict.WARN_OVERDUE
    assert extended.time_in_phase == timedelta(days=10)  # the extension row does not change the phase


class RacingStore(ModeStore):
    """Lets an automatic downgrade land after the gates were evaluated, just before the advance's write."""

    def __init__(self, engine: Engine, other: ModeStore) -> None:
        super().__init__(engine, default=ModeState(WARN))
        self.other = other

    def set(self, *args: Any, **kwargs: Any) -> Any:
        self.other.set(WARN, 10, actor="alertmanager", reason="downgrade", source="alertmanager")
        return super().set(*args, **kwargs)


def test_advance_never_overwrites_a_concurrent_downgrade(rig: Rig) -> None:
    rig.set(ENFORCE, 10, timedelta(hours=3))
    controller = rig.controller("canary_healthy")
    controller._store = RacingStore(rig.engine, rig.store)
    with pytest.raises(ConflictError, match="changed to warn"):
        controller.advance(actor="alice")
    assert rig.store.read().state == ModeState(WARN, 10)


def test_status_json_is_complete(rig: Rig) -> None:
    rig.set(ENFORCE, 10, timedelta(hours=3))
    document = rig.controller("canary_healthy").status().to_json()
    assert document["phase"] == "enforce-10"
    assert document["next_phase"] == "enforce-50"
    assert document["allowed"] is True
    assert document["verdict"] == "allowed"
    assert document["time_in_phase_seconds"] == 3 * 3600
    gate = document["gates"][1]
    assert set(gate) == {
        "name",
        "description",
        "status",
        "measured",
        "threshold",
        "comparison",
        "unit",
        "detail",
        "dry_run",
        "blocks",
    }


def test_warn_must_cover_the_whole_window(rig: Rig) -> None:
    rig.set(OFF, 100, timedelta(days=30))
    rig.set(WARN, 100, timedelta(days=2))
    observed = next(g for g in rig.controller("warn_healthy").status().gates if g.name == "warn_observed")
    assert observed.status is GateStatus.FAIL
    assert observed.measured == 2 * 86400
    assert observed.threshold == 7 * 86400


def test_a_trickle_of_clean_canary_traffic_is_not_evidence(rig: Rig) -> None:
    # 36 canary validations in 3 h without a rejection, baseline ratio 0: both ratio gates used to pass.
    rig.set(ENFORCE, 10, timedelta(hours=3))
    controller = rig.controller("canary_sparse")
    status = controller.status()
    result = gates(status)
    assert result["soak_time"] is GateStatus.PASS
    assert result["canary_sample"] is GateStatus.NO_DATA
    assert result["canary_reject_ratio"] is GateStatus.NO_DATA
    assert result["canary_vs_baseline"] is GateStatus.NO_DATA
    sample = next(g for g in status.gates if g.name == "canary_sample")
    assert sample.measured == pytest.approx(36, abs=2)
    assert sample.threshold == 1000
    assert "too few to judge" in sample.detail
    ratio = next(g for g in status.gates if g.name == "canary_reject_ratio")
    assert "canary sample too small" in ratio.detail
    assert not status.allowed
    assert status.verdict is Verdict.BLOCKED
    with pytest.raises(OperationRefusedError, match="canary_sample no_data"):
        controller.advance(actor="alice")
    assert rig.store.read().state == ModeState(ENFORCE, 10)
    # The minimum is configurable (gates file): 30 validations are enough if the operator says so.
    assert rig.controller("canary_sparse", min_canary_validations=30).status().allowed


def test_a_spotless_baseline_does_not_fail_a_stray_canary_rejection(rig: Rig) -> None:
    # Baseline ratio 0 made the bound 1.2 x 0 = 0: one rejection in thousands failed the step.
    rig.set(ENFORCE, 10, timedelta(hours=3))
    status = rig.controller("canary_clean_baseline").status()
    relative = next(g for g in status.gates if g.name == "canary_vs_baseline")
    assert relative.status is GateStatus.PASS
    assert relative.threshold == 0.001
    assert relative.measured == pytest.approx(0.0005 / 1.0005, rel=0.02)
    assert "floor" in relative.detail
    assert status.allowed
    strict = rig.controller("canary_clean_baseline", canary_vs_baseline_floor=0.0).status()
    assert gates(strict)["canary_vs_baseline"] is GateStatus.FAIL


def test_a_thin_baseline_cannot_be_compared_with(rig: Rig) -> None:
    rig.set(ENFORCE, 10, timedelta(hours=3))
    status = rig.controller("canary_thin_baseline").status()
    result = gates(status)
    assert result["canary_sample"] is GateStatus.PASS
    assert result["canary_reject_ratio"] is GateStatus.PASS
    assert result["canary_vs_baseline"] is GateStatus.NO_DATA
    relative = next(g for g in status.gates if g.name == "canary_vs_baseline")
    assert "baseline sample too small" in relative.detail
    assert not status.allowed


def test_reset_observation_lets_the_worst_hour_gate_recover(sqlite_rig: Rig) -> None:
    rig = sqlite_rig
    rig.set(OFF, 100, timedelta(days=9))
    rig.set(WARN, 100, timedelta(days=8))
    rig.backup()
    controller = rig.controller("warn_spiky")
    worst = next(g for g in controller.status().gates if g.name == "would_reject_worst_hour")
    assert worst.status is GateStatus.FAIL
    assert "it leaves the window at" in worst.detail  # says when the bad hour ages out
    result = controller.reset_observation(actor="alice", reason="the flooding client is fixed")
    assert result.change is not None
    assert result.change.new == result.change.old  # audited, the mode unchanged
    with rig.engine.begin() as connection:  # the reset happened after the spike, 29 hours ago
        connection.execute(
            update(stage_validation_audit)
            .where(stage_validation_audit.c.id == result.change.audit_id)
            .values(changed_at=rig.end - timedelta(hours=29))
        )
    status = controller.status()
    assert status.observation_reset is not None
    assert status.observation_reset.reason == "the flooding client is fixed"
    judged = gates(status)
    assert judged["would_reject_worst_hour"] is GateStatus.PASS
    assert judged["would_reject_ratio"] is GateStatus.PASS
    assert judged["warn_observed"] is GateStatus.FAIL  # the observation starts over: 29 h of 7 days
    observed = next(g for g in status.gates if g.name == "warn_observed")
    assert observed.measured == 29 * 3600
    assert "observation restarted" in observed.detail


def test_the_sunset_step_is_gated_on_alias_traffic(rig: Rig) -> None:
    rig.set(ENFORCE, 100, timedelta(days=1))
    rig.usage("key-1", "client-1", "valid", 500)  # traffic, no alias: the client gate passes
    blocked = rig.controller("sunset_aliases").status()
    assert blocked.next_phase is Phase.SUNSET
    assert gates(blocked) == {
        "sunset_traffic": GateStatus.PASS,
        "alias_traffic": GateStatus.FAIL,
        "clients_alias": GateStatus.PASS,
    }
    with pytest.raises(OperationRefusedError, match="alias_traffic fail"):
        rig.controller("sunset_aliases").advance(actor="alice")
    clean = rig.controller("sunset_clean")
    assert clean.status().verdict is Verdict.ALLOWED
    result = clean.advance(actor="alice")
    assert result.change is not None
    assert result.change.new == Phase.SUNSET.state
    assert rig.store.read().state.aliases_rejected
    assert clean.status().verdict is Verdict.COMPLETE


# --- client gates (usage ledger), exemptions, dry-run gates -------------------------------------------------


def three_clients(rig: Rig) -> None:
    """client-1 canonical, client-2 rejected by enforce (canary), client-3 unknown names under warn."""
    from fundmodel.auth.service import create_key

    for number in (1, 2, 3):
        create_key(rig.engine, f"client-{number}")
    rig.set(ENFORCE, 50, timedelta(hours=5))
    rig.usage("key-1", "client-1", "valid", 1000)
    rig.usage("key-1", "client-1", "alias", 10)  # enforce 100 % accepts aliases: not counted here
    rig.usage("key-2", "client-2", "rejected", 40, ago=timedelta(hours=2))
    rig.usage("key-3", "client-3", "unknown", 5, ago=timedelta(days=2))


def test_enforce_100_is_blocked_by_the_clients_it_would_break_named(rig: Rig) -> None:
    three_clients(rig)
    controller = rig.controller("canary_healthy")
    status = controller.status()
    assert status.next_phase is Phase.ENFORCE_100
    judged = gates(status)
    assert judged["clients_rejected"] is GateStatus.FAIL
    assert all(judged[name] is GateStatus.PASS for name in judged if name != "clients_rejected")
    gate = next(g for g in status.gates if g.name == "clients_rejected")
    assert gate.measured == 2
    assert "client-2 40 (rejected 40)" in gate.detail
    assert "client-3 5 (unknown 5)" in gate.detail
    assert "WILL reject" in gate.description
    [report] = status.client_gates
    assert [(u.client_name, u.count) for u in report.blocking] == [("client-2", 40), ("client-3", 5)]
    assert report.blocking[0].last_seen_at == rig.end - timedelta(hours=2)
    document = status.to_json()["client_gates"][0]
    assert [c["client"] for c in document["blocking"]] == ["client-2", "client-3"]
    with pytest.raises(OperationRefusedError, match="clients_rejected fail"):
        controller.advance(actor="alice")


def test_exemptions_unblock_with_an_audit_row_and_expire_by_themselves(rig: Rig) -> None:
    three_clients(rig)
    controller = rig.controller("canary_healthy")
    until = rig.end + timedelta(days=14)
    with pytest.raises(InvalidInputError, match="unknown client 'nobody'"):
        controller.exempt(actor="carol", reason="r", client="nobody", until=until)
    with pytest.raises(InvalidInputError, match="future"):
        controller.exempt(actor="carol", reason="r", client="client-2", until=rig.end - timedelta(hours=1))
    with pytest.raises(InvalidInputError, match="max_exemption"):
        controller.exempt(actor="carol", reason="r", client="client-2", until=rig.end + timedelta(days=91))
    for client in ("client-2", "client-3"):
        result = controller.exempt(
            actor="carol", reason=f"{client} migrates in Q1", client=client, until=until
        )
        assert result.change is not None
    [latest] = rig.store.audit_log(1)
    assert (latest.actor, latest.reason, latest.source) == ("carol", "client-3 migrates in Q1", "rollout")
    assert latest.extra["rollout"]["action"] == "exempt_client"
    assert latest.extra["exemption"]["client"] == "client-3"
    assert latest.old == latest.new  # the mode is unchanged
    status = controller.status()
    assert gates(status)["clients_rejected"] is GateStatus.PASS
    [report] = status.client_gates
    assert report.blocking == ()
    assert [(u.client_name, e.granted_by) for u, e in report.exempt] == [
        ("client-2", "carol"),
        ("client-3", "carol"),
    ]
    assert {e.client_name for e in status.exemptions} == {"client-2", "client-3"}
    # Expiry needs no job: once client-3's exemption has run out it blocks again.
    with rig.engine.begin() as connection:
        connection.execute(
            update(client_exemptions)
            .where(client_exemptions.c.client_name == "client-3")
            .values(expires_at=rig.end - timedelta(minutes=1))
        )
    expired = controller.status()
    assert gates(expired)["clients_rejected"] is GateStatus.FAIL
    assert [u.client_name for u in expired.client_gates[0].blocking] == ["client-3"]
    # A revoke is audited too, and re-blocks at once.
    with pytest.raises(OperationRefusedError, match="no exemption in force"):
        controller.revoke_exemption(actor="dave", reason="expired anyway", client="client-3")
    controller.revoke_exemption(actor="dave", reason="client-2 broke its promise", client="client-2")
    [revoke] = rig.store.audit_log(1)
    assert (revoke.actor, revoke.extra["rollout"]["action"]) == ("dave", "revoke_exemption")
    assert gates(controller.status())["clients_rejected"] is GateStatus.FAIL
    # Granted again (renewed): unblocks, and advance goes through on the passing gates.
    for client in ("client-2", "client-3"):
        controller.exempt(actor="carol", reason="renewed", client=client, until=until)
    result = controller.advance(actor="alice")
    assert result.change is not None
    assert result.change.new == Phase.ENFORCE_100.state


def test_a_regrant_replaces_the_exemption_in_force(rig: Rig) -> None:
    three_clients(rig)
    controller = rig.controller("canary_healthy")
    controller.exempt(actor="c", reason="first", client="client-2", until=rig.end + timedelta(days=3))
    second = controller.exempt(
        actor="c", reason="longer", client="client-2", until=rig.end + timedelta(days=9)
    )
    assert "replaces exemption #1" in second.message
    [held] = [e for e in controller.status().exemptions if e.client_name == "client-2"]
    assert (held.reason, held.expires_at) == ("longer", rig.end + timedelta(days=9))


def test_an_empty_ledger_is_no_data_not_a_pass(rig: Rig) -> None:
    rig.set(ENFORCE, 50, timedelta(hours=5))
    gate = next(g for g in rig.controller("canary_healthy").status().gates if g.name == "clients_rejected")
    assert gate.status is GateStatus.NO_DATA
    assert "usage ledger counted no validation" in gate.detail


def test_a_revoked_key_breaks_nobody(rig: Rig) -> None:
    three_clients(rig)
    with rig.engine.begin() as connection:
        connection.execute(
            update(api_keys).where(api_keys.c.name.in_(["client-2", "client-3"])).values(revoked_at=rig.end)
        )
    status = rig.controller("canary_healthy").status()
    assert gates(status)["clients_rejected"] is GateStatus.PASS
    assert [u.client_name for u in status.client_gates[0].revoked] == ["client-2", "client-3"]


def test_a_dry_run_gate_that_fails_never_blocks_advance(rig: Rig) -> None:
    three_clients(rig)
    controller = rig.controller("canary_healthy", dry_run_gates=("clients_rejected",))
    status = controller.status()
    gate = next(g for g in status.gates if g.name == "clients_rejected")
    assert (gate.status, gate.dry_run, gate.blocks) == (GateStatus.FAIL, True, False)
    assert gate.verdict_label == "dry-run: would fail"
    assert status.verdict is Verdict.ALLOWED
    result = controller.advance(actor="alice")
    assert result.change is not None
    assert result.change.new == Phase.ENFORCE_100.state
    [audit] = rig.store.audit_log(1)
    recorded = {g["name"]: g for g in audit.extra["rollout"]["gates"]}
    assert (recorded["clients_rejected"]["status"], recorded["clients_rejected"]["dry_run"]) == ("fail", True)


def test_the_sunset_client_gate_names_alias_senders(rig: Rig) -> None:
    three_clients(rig)
    rig.set(ENFORCE, 100, timedelta(days=1))
    status = rig.controller("sunset_clean").status()
    assert status.next_phase is Phase.SUNSET
    judged = gates(status)
    assert judged["clients_alias"] is GateStatus.FAIL
    assert [u.client_name for u in status.client_gates[0].blocking] == ["client-1"]


def test_the_cohort_preview_shares_recent_traffic(rig: Rig) -> None:
    three_clients(rig)
    # Nobody by hash (0 %), client-2 by name: the canary holds exactly the client that sends 40 of 1,055.
    rig.store.set(ENFORCE, 0, actor="pytest", reason="name", source="rollout", canary_clients=["client-2"])
    current = rig.controller("canary_healthy").status().cohorts[0]
    assert current.share_basis == "traffic"
    assert current.canary == ("client-2",)
    assert current.total_validations == 1000 + 10 + 40 + 5
    assert current.share == pytest.approx(40 / 1055)
    document = current.to_json()
    assert document["share_basis"] == "traffic"
    assert document["clients"][0] == {
        "client": "client-1",
        "in_canary": False,
        "validations": 1010,
        "traffic_share": pytest.approx(1010 / 1055),
    }
