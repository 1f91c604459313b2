"""Who an audited command acts for: ``--actor``, else the operating-system user of this process.

``$USER`` is not consulted: containers and cron jobs often leave it unset, and anyone can set it to
anything. The user name comes from the process's uid instead (``pwd.getpwuid(os.getuid())``); a uid
with no passwd entry (an arbitrary container uid) has no name, and the command refuses to run rather
than record a change without one.
"""

from __future__ import annotations

import os
import pwd

from fundmodel.db.mode_store import MAX_ACTOR_LENGTH
from fundmodel.errors import InvalidInputError

__all__ = ["resolve_actor"]


def resolve_actor(explicit: str | None) -> str:
    """The non-empty actor to audit; :class:`InvalidInputError` when there is none to be had."""
    if explicit is not None and explicit.strip():
        return _checked(explicit.strip())
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = ""
    if not name.strip():
        raise InvalidInputError(
            f"cannot tell who runs this: uid {uid} has no user name; pass --actor NAME", field="actor"
        )
    return _checked(name.strip())


def _checked(actor: str) -> str:
    if len(actor) > MAX_ACTOR_LENGTH or any(ord(ch) < 32 for ch in actor):
        raise InvalidInputError(
            f"--actor must be at most {MAX_ACTOR_LENGTH} characters without control characters",
            field="actor",
        )
    return actor
