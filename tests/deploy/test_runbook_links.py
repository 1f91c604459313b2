"""Every alert's `runbook` annotation points at a heading that exists (GitHub-style anchors)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
RUNBOOK = ROOT / "docs" / "runbooks" / "stage-validation-rollout.md"


def github_anchor(heading: str) -> str:
    """GitHub's slug: lowercase, punctuation dropped (except - and _), spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    kept = "".join(c for c in text if c in "-_ " or unicodedata.category(c)[0] in {"L", "N"})
    return kept.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match and not in_code:
            slug = github_anchor(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def runbook_links() -> list[tuple[str, str]]:
    links = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    links.append((rule["alert"], rule.get("annotations", {}).get("runbook", "")))
    return links


def test_github_anchor_rules() -> None:
    assert github_anchor("StageValidationRejectRatioHigh") == "stagevalidationrejectratiohigh"
    assert github_anchor("Modes at a glance") == "modes-at-a-glance"
    assert github_anchor("What's `warn`? (v2)") == "whats-warn-v2"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


@pytest.mark.parametrize(("alert", "link"), runbook_links(), ids=lambda v: str(v)[:60])
def test_runbook_annotation_points_at_an_existing_heading(alert: str, link: str) -> None:
    assert link, f"{alert} has no runbook annotation"
    path_text, _, anchor = link.partition("#")
    assert anchor, f"{alert}: runbook link {link!r} has no #anchor"
    target = ROOT / path_text
    assert target.resolve() == RUNBOOK.resolve() or target.is_file(), f"{alert}: {path_text} missing"
    assert anchor in anchors(target.read_text(encoding="utf-8")), f"{alert}: no heading #{anchor}"


def test_internal_runbook_links_resolve() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    targets = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert targets
    assert targets <= anchors(text)
