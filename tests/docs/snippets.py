"""Turning a documented snippet into commands, and judging what they printed against what the page says.

A snippet line is run by bash as written, except for three things a reader would also adapt:
``[--optional]`` parts of a synopsis (run once without and once with all of them), placeholders such as
``<file>`` (resolved from what the earlier commands produced, see :data:`PLACEHOLDERS`), and the address
of ``make run``'s server, ``http://127.0.0.1:8000`` (the test's own server).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.docs.docset import CodeBlock

DOCUMENTED_BASE_URL = "http://127.0.0.1:8000"
_OPTIONAL = re.compile(r"\s\[(--[^\]]*)\]")
_PLACEHOLDER = re.compile(r"<([A-Za-z][\w -]*)>")


def _newest_backup(sandbox: Path) -> str:
    backups = sorted(
        (path for path in (sandbox / "var" / "backups").glob("*") if not path.name.endswith(".json")),
        key=lambda path: path.stat().st_mtime_ns,
    )
    if not backups:
        raise LookupError("<file> names a backup, but no earlier command wrote one into var/backups")
    return backups[-1].name


PLACEHOLDERS: dict[str, Callable[[Path], str]] = {
    # The runbook's and the procedure's `var/backups/<file>`: the backup the previous step wrote.
    "file": _newest_backup,
}


@dataclass
class Step:
    """One command of a snippet and the output lines the page documents for it (console blocks)."""

    command: str
    expected_output: list[str] = field(default_factory=list)


def steps(block: CodeBlock) -> list[Step]:
    """The commands of a shell/console block, continuation lines joined, comments left to bash."""
    found: list[Step] = []
    pending = ""
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if block.language == "console":
            if line.startswith("$ "):
                pending = line[2:]
            elif pending:
                pending += "\n" + line
            elif found:
                found[-1].expected_output.append(line)
            else:
                raise ValueError(f"{block.where}: output before the first `$ ` command")
        else:
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending = f"{pending}\n{line}" if pending else line
        if pending and not pending.endswith("\\"):
            found.append(Step(pending))
            pending = ""
    if pending:
        raise ValueError(f"{block.where}: the last command ends with a line continuation")
    return found


def synopsis_variants(command: str) -> list[str]:
    """``cmd [--a] [--b x]`` -> ``cmd`` and ``cmd --a --b x``; a command without options: itself."""
    if not _OPTIONAL.search(command):
        return [command]
    return [_OPTIONAL.sub("", command), _OPTIONAL.sub(r" \1", command)]


def resolve_placeholders(command: str, sandbox: Path) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PLACEHOLDERS:
            raise LookupError(
                f"placeholder <{name}> has no value in tests/docs/snippets.py PLACEHOLDERS: "
                "add one, or mark the block not-runnable"
            )
        return PLACEHOLDERS[name](sandbox)

    # Only outside quotes: '<...>' inside a quoted argument is data (a header value, JSON).
    parts = re.split(r"('[^']*'|\"[^\"]*\")", command)
    return "".join(part if part[:1] in {"'", '"'} else _PLACEHOLDER.sub(replace, part) for part in parts)


def needs_server(block: CodeBlock) -> bool:
    return DOCUMENTED_BASE_URL in block.text


def output_matches(expected: list[str], actual: str) -> str | None:
    """None when every documented line appears, in order, in ``actual``; else the first missing one.

    ``...`` in a documented line stands for any text; trailing spaces and CR are ignored.
    """
    actual_lines = [line.rstrip("\r").rstrip() for line in actual.splitlines()]
    position = 0
    for wanted in (line.rstrip() for line in expected):
        if not wanted:
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.split("...")))
        while position < len(actual_lines) and not pattern.fullmatch(actual_lines[position]):
            position += 1
        if position == len(actual_lines):
            return wanted
        position += 1
    return None
