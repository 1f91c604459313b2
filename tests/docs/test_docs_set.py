"""The documentation set of the rollout: required sections, the ADR's structure, the ten-point checklist,
and links between the pages that resolve (anchors computed as tests/deploy/test_runbook_links.py does)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.test_runbook_links import anchors

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbooks" / "stage-validation-rollout.md"
ADR = ROOT / "docs" / "adr" / "0001-stage-validation.md"
CHECKLIST = ROOT / "docs" / "checklists" / "docs-review.md"


def headings(path: Path) -> list[str]:
    return [
        line.lstrip("#").strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]


def section(path: Path, heading: str) -> str:
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"{path.name}: no section {heading!r}"
    return match.group(1)


@pytest.mark.parametrize(
    "heading",
    [
        "Preflight",
        "Phase 0: off",
        "Phase 1: warn",
        "Canary steps",
        "Phase 2: enforce-10",
        "Phase 3: enforce-50",
        "Phase 4: enforce-100",
        "The auto-downgrade path during a rollout",
        "Manual rollback",
        "When warn exceeds its cap",
        "RTO and RPO drills",
    ],
)
def test_runbook_has_the_rollout_sections(heading: str) -> None:
    assert heading in headings(RUNBOOK)


def test_phases_say_their_commands_gates_and_exit_criteria() -> None:
    for heading in ("Phase 0: off", "Phase 1: warn", "Phase 2: enforce-10"):
        body = section(RUNBOOK, heading)
        assert "fundmodel rollout" in body, heading
    assert "Exit criteria" in section(RUNBOOK, "Phase 1: warn")
    ladder = section(RUNBOOK, "The rollout ladder")
    for gate_words in ("0.5 %", "1 %", "2 h", "4 h", "1.2 x", "1 ms", "no data"):
        assert gate_words in ladder.replace("`no_data`", "no data"), gate_words


def test_drills_are_timed_against_the_targets() -> None:
    drills = section(RUNBOOK, "RTO and RPO drills")
    assert "under 30 minutes" in drills
    assert "under 1 hour" in drills
    assert drills.count("| Budget | Measured |") == 2


def test_warn_cap_lists_both_documented_choices() -> None:
    body = section(RUNBOOK, "When warn exceeds its cap")
    assert "Extend aliases" in body
    assert "Keep warn for named clients" in body


def test_adr_structure() -> None:
    names = headings(ADR)
    assert names[0].startswith("ADR 0001")
    assert names[1:] == ["Context", "Decision", "Alternatives considered", "Consequences"]


def test_checklist_has_exactly_ten_points() -> None:
    text = CHECKLIST.read_text(encoding="utf-8")
    points = re.findall(r"^(\d+)\. \*\*([^*]+)\*\*", text, re.MULTILINE)
    assert [int(n) for n, _ in points] == list(range(1, 11))
    titles = " ".join(title.lower() for _, title in points)
    for topic in ("terminology", "examples", "edge cases", "conflict resolution", "error semantics"):
        assert topic in titles


@pytest.mark.parametrize("page", [RUNBOOK, ADR, CHECKLIST], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        assert destination.is_file(), f"{page.name}: broken link {target}"
        if anchor and destination.suffix == ".md":
            assert anchor in anchors(destination.read_text(encoding="utf-8")), f"{page.name}: no #{anchor}"
