"""Every ``fundmodel ...`` command README.md and docs/ show exists, with the options shown.

Alert runbook links are checked by tests/deploy/test_runbook_links.py (not repeated here).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from fundmodel.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_INLINE = re.compile(r"`(fundmodel [^`]+)`")
_WORD = re.compile(r"^[a-z][a-z0-9-]*$")


def shown_commands(markdown: str) -> list[str]:
    """``fundmodel ...`` in inline code and at the start of lines inside fenced blocks."""
    found: list[str] = []
    in_code = False
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            text = line.strip().removeprefix("$ ")
            if text.startswith("fundmodel "):
                found.append(text.split("  #")[0].split(" # ")[0].strip())
        else:
            found.extend(match.strip() for match in _INLINE.findall(line))
    return found


def all_shown() -> list[str]:
    commands: set[str] = set()
    for path in DOCS:
        commands.update(shown_commands(path.read_text(encoding="utf-8")))
    return sorted(commands)


def _is_group(command: Any) -> bool:
    # Typer vendors its own Click: duck-type groups by their ``commands`` mapping (the root's is lazy).
    return isinstance(getattr(command, "commands", None), Mapping)


def resolve(command: str) -> tuple[list[str], Any, list[str]]:
    """The subcommand path, the (Click) command it reaches, and the options written after it."""
    tokens = shlex.split(command.replace("<", "'<").replace(">", ">'"))[1:]
    current: Any = typer.main.get_command(app)
    path: list[str] = []
    rest = tokens
    while _is_group(current) and rest and _WORD.match(rest[0]):
        child = current.commands.get(rest[0])
        assert child is not None, f"`{command}`: no command {' '.join(['fundmodel', *path, rest[0]])!r}"
        current, path, rest = child, [*path, rest[0]], rest[1:]
    assert path, f"`{command}` names no subcommand"
    options = [token.split("=")[0] for token in rest if token.startswith("--")]
    return path, current, options


def test_the_extractor_finds_inline_and_block_commands() -> None:
    text = (
        "Run `fundmodel rollout status`.\n"
        "```bash\nfundmodel db backup   # comment\n$ fundmodel mode get\n```\n"
    )
    assert shown_commands(text) == ["fundmodel rollout status", "fundmodel db backup", "fundmodel mode get"]


def test_the_runbook_shows_the_rollout_commands() -> None:
    shown = " ".join(all_shown())
    for command in ("status", "advance", "rollback", "history", "extend-warn"):
        assert f"fundmodel rollout {command}" in shown


@pytest.mark.parametrize("command", all_shown())
def test_shown_command_exists_and_its_help_runs(command: str) -> None:
    path, resolved, options = resolve(command)
    declared = {opt for param in resolved.params for opt in (*param.opts, *param.secondary_opts)}
    unknown = [option for option in options if option not in declared]
    assert not unknown, f"`{command}`: {' '.join(path)} has no option {unknown}"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, f"`fundmodel {' '.join(path)} --help` failed:\n{result.output}"
    assert "Usage:" in result.output
