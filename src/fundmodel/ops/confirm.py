"""Typed confirmation for destructive or risky operations."""

from __future__ import annotations

from collections.abc import Callable

from fundmodel.errors import OperationRefusedError

CONFIRM_WORD = "CONFIRM"


def require_confirmation(
    given: str | None,
    *,
    action: str,
    interactive: bool,
    ask: Callable[[str], str],
    word: str = CONFIRM_WORD,
) -> None:
    """Pass only when the operator typed ``word`` exactly (at the prompt or via ``--confirm``)."""
    if given is not None:
        if given != word:
            raise OperationRefusedError(f"{action}: --confirm must be exactly {word}")
        return
    if not interactive:
        raise OperationRefusedError(f"{action} needs confirmation: not interactive, pass --confirm {word}")
    answer = ask(f"{action}. Type {word} to continue")
    if answer.strip() != word:
        raise OperationRefusedError(f"{action}: not confirmed")
