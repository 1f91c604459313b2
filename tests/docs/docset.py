"""The documentation set as the docs gate reads it: pages, fenced blocks, markers, inline code, sections.

Conventions (documented for writers in docs/checklists/docs-review.md):

- every fenced block names its language; ``sh``/``bash``/``shell``/``console`` blocks are *snippets* and
  are run by tests/docs/test_snippets.py;
- a snippet that cannot run here carries ``<!-- docs-check: not-runnable: <reason> -->`` on the line
  right before its fence (blank lines between are allowed), with a reason;
- in a ``console`` block, lines starting with ``$ `` are commands and the lines after one, up to the
  next command, are its documented output (``...`` stands for any text).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
NOT_RUNNABLE = re.compile(r"<!--\s*docs-check:\s*not-runnable:\s*(?P<reason>.*?)\s*-->")
_ANY_MARKER = re.compile(r"<!--\s*docs-check:")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<info>[^`\s]*)")
_INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block of a page: where it starts, its language, its text (dedented) and marker."""

    page: Path
    line: int
    language: str
    text: str
    not_runnable_reason: str | None
    """The reason of a ``not-runnable`` marker before the fence; ``""`` for a marker without one."""
    stray_marker: str | None = None
    """A ``docs-check`` comment before the fence that is not a well-formed ``not-runnable`` marker."""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_snippet(self) -> bool:
        return self.language in SHELL_LANGUAGES


def doc_pages() -> list[Path]:
    """README.md and every page under docs/ (CHANGELOG.md is history: names in it may be retired)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@cache
def _read(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def page_text(page: Path) -> str:
    return _read(page)


def code_blocks(page: Path, text: str | None = None) -> list[CodeBlock]:
    """Every fenced block of ``page`` (``text`` overrides the file's content, for tests of the gate)."""
    lines = (text if text is not None else _read(page)).splitlines()
    blocks: list[CodeBlock] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence, language = opening["indent"], opening["fence"], opening["info"].lower()
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index][len(indent) :] if lines[index].startswith(indent) else lines[index])
            index += 1
        start = index - len(body)  # 1-based line of the opening fence
        reason, stray = _marker_before(lines, start - 1)
        blocks.append(CodeBlock(page, start, language, "\n".join(body), reason, stray))
        index += 1
    return blocks


def _marker_before(lines: list[str], fence_index: int) -> tuple[str | None, str | None]:
    previous = fence_index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return None, None
    candidate = lines[previous].strip()
    match = NOT_RUNNABLE.fullmatch(candidate)
    if match:
        return match["reason"], None
    if _ANY_MARKER.search(candidate):
        return None, candidate
    return None, None


def prose_lines(page: Path, text: str | None = None) -> Iterator[str]:
    """The lines of ``page`` outside fenced blocks."""
    in_block = False
    fence = ""
    for line in (text if text is not None else _read(page)).splitlines():
        opening = _FENCE.match(line)
        if not in_block and opening:
            in_block, fence = True, opening["fence"]
            continue
        if in_block:
            if line.strip().startswith(fence):
                in_block = False
            continue
        yield line


def inline_code(page: Path, text: str | None = None) -> list[str]:
    """Every ``inline code`` span outside fenced blocks."""
    spans: list[str] = []
    for line in prose_lines(page, text):
        spans.extend(_INLINE_CODE.findall(line))
    return spans


def code_text(page: Path) -> list[str]:
    """What a reader sees as code on ``page``: inline spans and every fenced block's text."""
    return [*inline_code(page), *(block.text for block in code_blocks(page))]


def sections(page: Path, text: str | None = None) -> list[tuple[str, str]]:
    """``(heading, body)`` per section, code blocks included (text before the first heading: ``""``)."""
    found: list[tuple[str, list[str]]] = [("", [])]
    in_block = False
    fence = ""
    for line in (text if text is not None else _read(page)).splitlines():
        opening = _FENCE.match(line)
        if in_block:
            in_block = not line.strip().startswith(fence)
        elif opening:
            in_block, fence = True, opening["fence"]
        else:
            heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if heading:
                found.append((heading.group(1), []))
                continue
        found[-1][1].append(line)
    return [(heading, "\n".join(body)) for heading, body in found]


def whole_text() -> str:
    """Every page's text, joined: where "is this name documented anywhere?" is asked."""
    return "\n".join(_read(page) for page in doc_pages())


def table_rows(page: Path, first_header: str) -> list[list[str]]:
    """The body rows of the Markdown table on ``page`` whose header's first cell is ``first_header``."""
    rows: list[list[str]] = []
    lines = list(prose_lines(page))
    for index, line in enumerate(lines):
        cells = _cells(line)
        is_header = index + 1 < len(lines) and set(lines[index + 1]) <= set("|-: ")
        if cells and cells[0] == first_header and is_header:
            for body in lines[index + 2 :]:
                if not body.strip().startswith("|"):
                    break
                rows.append(_cells(body))
            return rows
    raise AssertionError(f"{page.relative_to(ROOT)}: no table whose first column is {first_header!r}")


def _cells(line: str) -> list[str]:
    stripped = line.strip()
    if not stripped.startswith("|"):
        return []
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", stripped.strip("|"))]


def backticked(text: str) -> list[str]:
    return _INLINE_CODE.findall(text)
