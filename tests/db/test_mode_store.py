"""The mode store: default before any write, audited atomic writes, cache that survives outages."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import Engine, func, select

from fundmodel.db.engine import create_db_engine
from fundmodel.db.mode_store import ModeChange, ModeStore, ModeWriteRefused
from fundmodel.db.tables import stage_validation_audit
from fundmodel.errors import InvalidInputError, StoreUnavailableError
from fundmodel.validation import ModeState, ValidationMode

WARN = ModeState(ValidationMode.WARN)


def test_default_until_first_write_then_audited(engine: Engine) -> None:
    store = ModeStore(engine, default=WARN)
    assert store.read().state == WARN
    assert store.read().version == 0
    change = store.set(
        ValidationMode.ENFORCE, 10, actor="alice", reason="canary start", extra={"ticket": "OPS-1"}
    )
    assert change.old == WARN
    assert change.new == ModeState(ValidationMode.ENFORCE, 10)
    assert store.current() == change.new  # the writer's cache is updated at once
    stored = ModeStore(engine, default=WARN).read()
    assert stored.state == change.new
    assert stored.updated_by == "alice"
    (entry,) = store.audit_log()
    assert (entry.actor, entry.reason, entry.source, entry.extra) == (
        "alice",
        "canary start",
        "manual",
        {"ticket": "OPS-1"},
    )


def test_concurrent_writers_each_get_an_audit_row(engine: Engine) -> None:
    store = ModeStore(engine, default=WARN)
    modes = [ValidationMode.ENFORCE, ValidationMode.WARN, ValidationMode.OFF] * 3
    errors: list[BaseException] = []

    def write(mode: ValidationMode, number: int) -> None:
        try:
            ModeStore(engine, default=WARN).set(mode, actor=f"w{number}", reason="race")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(m, i)) for i, m in enumerate(modes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    log = list(reversed(store.audit_log(limit=100)))
    assert len(log) == len(modes)
    # The audit is a chain: each change starts where the previous one ended.
    for before, after in itertools.pairwise(log):
        assert after.old == before.new
    assert store.read().state == log[-1].new
    assert store.read().version == len(modes)


def test_only_if_writes_nothing_when_the_condition_fails(engine: Engine) -> None:
    store = ModeStore(engine, default=WARN)
    written = store.set(
        ValidationMode.WARN,
        actor="alertmanager",
        reason="downgrade",
        source="alertmanager",
        only_if=lambda state: state.mode is ValidationMode.ENFORCE,
    )
    assert written == ModeWriteRefused(current=WARN)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(stage_validation_audit)).scalar() == 0


def test_only_if_that_holds_writes_the_change_with_its_audit_row(engine: Engine) -> None:
    store = ModeStore(engine, default=ModeState(ValidationMode.ENFORCE, 10))
    written = store.set(
        ValidationMode.WARN,
        10,
        actor="alertmanager",
        reason="downgrade",
        source="alertmanager",
        only_if=lambda state: state.mode is ValidationMode.ENFORCE,
    )
    assert isinstance(written, ModeChange)
    assert (written.old, written.new) == (
        ModeState(ValidationMode.ENFORCE, 10),
        ModeState(ValidationMode.WARN, 10),
    )
    assert [entry.audit_id for entry in store.audit_log()] == [written.audit_id]
    assert store.current() == ModeState(ValidationMode.WARN, 10)


@pytest.mark.parametrize(
    ("canary", "actor", "reason", "source"),
    [
        (101, "a", "r", "manual"),
        (-1, "a", "r", "manual"),
        (50, " ", "r", "manual"),
        (50, "a", "", "manual"),
        (50, "a", "r", "cron"),
        (float("nan"), "a", "r", "manual"),
    ],
)
def test_bad_changes_are_refused(engine: Engine, canary: float, actor: str, reason: str, source: str) -> None:
    with pytest.raises(InvalidInputError):
        ModeStore(engine, default=WARN).set(
            ValidationMode.ENFORCE, canary, actor=actor, reason=reason, source=source
        )


def test_unreachable_store_keeps_the_last_known_value(tmp_path: object) -> None:
    # A server that does not exist: every read fails fast.
    engine = create_db_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    store = ModeStore(engine, default=ModeState(ValidationMode.ENFORCE, 5))
    assert store.refresh() is False
    assert store.current() == ModeState(ValidationMode.ENFORCE, 5)
    with pytest.raises(StoreUnavailableError):
        store.set(ValidationMode.OFF, actor="a", reason="r")
    engine.dispose()


def test_refresh_after_an_outage_keeps_the_last_read_value(engine: Engine) -> None:
    writer = ModeStore(engine, default=WARN)
    writer.set(ValidationMode.ENFORCE, 30, actor="a", reason="r")
    reader = ModeStore(engine, default=WARN)
    assert reader.refresh() is True
    assert reader.current() == ModeState(ValidationMode.ENFORCE, 30)
    engine.dispose()
    broken = ModeStore(create_db_engine("postgresql+psycopg://postgres@127.0.0.1:1/x"), default=WARN)
    broken._cached = reader._cached  # same cache, now without a reachable database
    assert broken.refresh() is False
    assert broken.current() == ModeState(ValidationMode.ENFORCE, 30)


def test_named_canary_clients_are_stored_audited_and_kept_by_partial_writes(engine: Engine) -> None:
    from fundmodel.auth.service import create_key

    create_key(engine, "acme")
    create_key(engine, "globex")
    store = ModeStore(engine, default=WARN)
    change = store.set(
        ValidationMode.ENFORCE, 10, actor="alice", reason="canary", canary_clients=["acme", " globex "]
    )
    assert change.new.canary_clients == {"acme", "globex"}
    assert ModeStore(engine, default=WARN).read().state.sorted_clients == ["acme", "globex"]
    # A write that does not name clients (the downgrade, a percentage change) keeps them.
    downgrade = store.set(
        ValidationMode.WARN, 10, actor="alertmanager", reason="alert", source="alertmanager"
    )
    assert downgrade.new == ModeState(ValidationMode.WARN, 10, frozenset({"acme", "globex"}))
    (latest, first) = store.audit_log(2)
    assert first.old.canary_clients == frozenset()
    assert first.new.canary_clients == {"acme", "globex"}
    assert latest.old.canary_clients == latest.new.canary_clients == {"acme", "globex"}
    cleared = store.set(ValidationMode.ENFORCE, 10, actor="alice", reason="none", canary_clients=[])
    assert cleared.new.canary_clients == frozenset()


def test_an_unknown_or_revoked_canary_client_is_refused_and_nothing_is_written(engine: Engine) -> None:
    from sqlalchemy import update

    from fundmodel.auth.service import create_key
    from fundmodel.db.tables import api_keys

    create_key(engine, "acme")
    create_key(engine, "gone")
    with engine.begin() as connection:
        connection.execute(update(api_keys).where(api_keys.c.name == "gone").values(revoked_at=func.now()))
    store = ModeStore(engine, default=WARN)
    for name in ("nobody", "gone"):
        with pytest.raises(InvalidInputError, match=f"unknown canary client '{name}'"):
            store.set(ValidationMode.ENFORCE, 10, actor="a", reason="r", canary_clients=["acme", name])
    assert store.read().version == 0
    assert store.audit_log() == []


def test_the_sunset_flag_is_stored_and_audited(engine: Engine) -> None:
    store = ModeStore(engine, default=WARN)
    change = store.set(ValidationMode.ENFORCE, 100, actor="a", reason="sunset", aliases_rejected=True)
    assert change.new == ModeState(ValidationMode.ENFORCE, 100, aliases_rejected=True)
    assert store.read().state.aliases_rejected
    assert store.audit_log(1)[0].new.aliases_rejected


def test_initialize_records_the_first_run_state_once(engine: Engine) -> None:
    store = ModeStore(engine, default=WARN)
    first = store.initialize(
        actor="fundmodel rollout", reason="first run", extra={"rollout": {"action": "start"}}
    )
    assert first is not None
    assert first.new == WARN
    assert first.old == WARN
    assert store.read().version == 1
    assert store.initialize(actor="x", reason="again", extra={}) is None
    assert len(store.audit_log()) == 1
