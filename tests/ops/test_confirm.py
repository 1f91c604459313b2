from __future__ import annotations

import pytest

from fundmodel.errors import OperationRefusedError
from fundmodel.ops.confirm import require_confirmation


def never_asked(prompt: str) -> str:
    raise AssertionError(f"unexpected prompt: {prompt}")


def test_flag_must_be_exactly_confirm() -> None:
    require_confirmation("CONFIRM", action="x", interactive=False, ask=never_asked)
    for wrong in ("confirm", "yes", "", " CONFIRM"):
        with pytest.raises(OperationRefusedError):
            require_confirmation(wrong, action="x", interactive=True, ask=never_asked)


def test_not_interactive_without_flag_refuses() -> None:
    with pytest.raises(OperationRefusedError, match="--confirm CONFIRM"):
        require_confirmation(None, action="x", interactive=False, ask=never_asked)


def test_prompt_needs_the_typed_word() -> None:
    require_confirmation(None, action="x", interactive=True, ask=lambda _p: "CONFIRM")
    with pytest.raises(OperationRefusedError, match="not confirmed"):
        require_confirmation(None, action="x", interactive=True, ask=lambda _p: "y")
