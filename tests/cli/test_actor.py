"""Who an audited command acts for: --actor, else the uid's user name, else a refusal."""

from __future__ import annotations

import os
import pwd

import pytest

from fundmodel.cli.actor import resolve_actor
from fundmodel.errors import InvalidInputError


def test_an_explicit_actor_wins_trimmed() -> None:
    assert resolve_actor("  alice ") == "alice"


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_without_one_the_uid_user_name_is_taken_not_user(
    missing: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "someone-else")  # anyone can set $USER; the uid is what counts
    assert resolve_actor(missing) == pwd.getpwuid(os.getuid()).pw_name


@pytest.mark.parametrize("bad", ["x" * 101, "al\nice"])
def test_an_actor_that_the_audit_log_cannot_hold_is_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="at most 100 characters"):
        resolve_actor(bad)


def _first_uid_without_a_user_name() -> int:
    for uid in range(64_000, 65_000):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    raise AssertionError("every uid in 64000-64999 has a passwd entry")


@pytest.mark.skipif(os.getuid() != 0, reason="switching to a uid without a user name needs root")
def test_a_uid_without_a_user_name_is_refused_unless_an_actor_is_given() -> None:
    """In a forked child that really runs as such a uid (an arbitrary container uid)."""
    orphan = _first_uid_without_a_user_name()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, reports through the pipe
        try:
            os.close(read_end)
            os.setuid(orphan)
            try:
                answer = f"resolved {resolve_actor(None)}"
            except InvalidInputError as exc:
                answer = f"refused {exc.detail}"
            answer += f" | explicit {resolve_actor('bob')}"
            os.write(write_end, answer.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(child, 0)
    assert answer == (
        f"refused cannot tell who runs this: uid {orphan} has no user name; pass --actor NAME | explicit bob"
    )
