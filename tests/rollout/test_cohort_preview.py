"""The cohort preview: which active clients a rollout step enforces, named ones always included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from fundmodel.rollout.cohort_preview import KnownClient, preview_cohort
from fundmodel.validation import Cohort, ModeState, ValidationMode

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SALT = "pytest-salt"
SEVEN = [KnownClient(f"client-{n}", f"key-{n}", NOW - timedelta(hours=n)) for n in range(1, 8)]


def test_named_clients_are_in_the_canary_whatever_the_percentage() -> None:
    state = ModeState(ValidationMode.ENFORCE, 0.0, frozenset({"client-3", "client-5"}))
    result = preview_cohort("enforce 0%", state, SEVEN, salt=SALT, now=NOW, recent=timedelta(days=7))
    assert result.canary == ("client-3", "client-5")
    assert result.share == 2 / 7
    assert not result.empty
    assert result.suggestion() is None
    assert state.mode_for_client("key-3", salt=SALT, client_name="client-3").cohort is Cohort.CANARY
    assert state.mode_for_client("key-4", salt=SALT, client_name="client-4").mode is ValidationMode.WARN


def test_an_empty_canary_step_is_reported_with_a_suggestion() -> None:
    result = preview_cohort(
        "enforce 0%",
        ModeState(ValidationMode.ENFORCE, 0.0),
        SEVEN,
        salt=SALT,
        now=NOW,
        recent=timedelta(days=7),
    )
    assert result.empty
    assert result.share == 0
    suggestion = result.suggestion()
    assert suggestion is not None
    assert "--canary-client NAME" in suggestion
    assert result.to_json()["empty"] is True
    assert "used in the last 7 days" in result.basis


def test_clients_not_used_recently_are_not_active() -> None:
    stale = [*SEVEN, KnownClient("old", "key-99", NOW - timedelta(days=30)), KnownClient("never", "key-98")]
    result = preview_cohort(
        "enforce", ModeState(ValidationMode.ENFORCE), stale, salt=SALT, now=NOW, recent=timedelta(days=7)
    )
    assert result.active == 7
    assert result.share == 1.0
    assert result.suggestion() is None  # enforce 100 % is not a canary step


@given(
    st.floats(min_value=0, max_value=100, allow_nan=False),
    st.frozensets(st.sampled_from([c.name for c in SEVEN])),
)
def test_the_preview_agrees_with_the_per_request_mode(percent: float, named: frozenset[str]) -> None:
    state = ModeState(ValidationMode.ENFORCE, percent, named)
    result = preview_cohort("step", state, SEVEN, salt=SALT, now=NOW, recent=timedelta(days=7))
    enforced = {
        c.name
        for c in SEVEN
        if state.mode_for_client(c.client_id, salt=SALT, client_name=c.name).mode is ValidationMode.ENFORCE
    }
    assert set(result.canary) == enforced
    assert named <= enforced


def test_shares_are_of_recent_traffic_when_the_ledger_has_rows() -> None:
    state = ModeState(ValidationMode.ENFORCE, 0.0, frozenset({"client-3"}))
    traffic = {"key-1": 700, "key-3": 300, "anonymous": 0}
    result = preview_cohort(
        "enforce 0%", state, SEVEN, salt=SALT, now=NOW, recent=timedelta(days=7), traffic=traffic
    )
    assert result.share_basis == "traffic"
    assert result.share == 0.3  # client-3 sends 300 of the 1,000 validations, not one seventh
    assert result.client_share("client-1") == 0.7
    assert result.client_share("client-2") == 0.0  # active (key used), but no validation counted
    assert result.active == 7
    document = result.to_json()
    assert (document["share_basis"], document["validations"]) == ("traffic", 1000)
    assert document["clients"][:2] == [
        {"client": "client-1", "in_canary": False, "validations": 700, "traffic_share": 0.7},
        {"client": "client-3", "in_canary": True, "validations": 300, "traffic_share": 0.3},
    ]
    assert "validations counted" in result.basis


def test_a_client_only_the_ledger_knows_is_shown_by_its_id() -> None:
    result = preview_cohort(
        "enforce",
        ModeState(ValidationMode.ENFORCE),
        [],
        salt=SALT,
        now=NOW,
        recent=timedelta(days=7),
        traffic={"anonymous": 12},
    )
    assert result.canary == ("anonymous",)
    assert result.share == 1.0


def test_without_ledger_rows_the_share_falls_back_to_active_clients() -> None:
    state = ModeState(ValidationMode.ENFORCE, 0.0, frozenset({"client-3"}))
    result = preview_cohort(
        "enforce 0%", state, SEVEN, salt=SALT, now=NOW, recent=timedelta(days=7), traffic={}
    )
    assert result.share_basis == "active_clients"
    assert result.share == 1 / 7
    assert result.client_share("client-3") is None
    assert result.to_json()["clients"][0]["validations"] is None
    assert "holds no validations" in result.basis
