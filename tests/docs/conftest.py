"""The docs gate's score: checks passed / checks, printed after every run that ran any of them.

A *check* is one test of the docs gate: everything under tests/docs/ plus the alert runbook links of
tests/deploy/test_runbook_links.py (reused, not repeated here). A skipped or failed check does not
pass. ``make docs-check`` runs only these; inside ``make unit`` (the whole suite) the same line is
printed, so one pytest run serves both. Below 100 % the run fails, even if the only shortfall is a skip.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from _pytest.terminal import TerminalReporter

DOCS_CHECK_PATHS = ("tests/docs/", "tests/deploy/test_runbook_links.py")


@dataclass
class Score:
    passed: int = 0
    total: int = 0

    @property
    def percent(self) -> float:
        return 100.0 * self.passed / self.total if self.total else 100.0

    def line(self) -> str:
        return f"docs-check: {self.passed}/{self.total} checks passed ({self.percent:.1f} %)"


def is_docs_check(nodeid: str) -> bool:
    return nodeid.startswith(DOCS_CHECK_PATHS)


def score_of(terminalreporter: TerminalReporter) -> Score:
    """Per check, its worst outcome over setup, call and teardown (an error in teardown fails it)."""
    outcomes: dict[str, str] = {}
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    for category in ("passed", "failed", "skipped", "error", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(category, []):
            nodeid = getattr(report, "nodeid", "")
            if not nodeid or not is_docs_check(nodeid):
                continue
            outcome = "failed" if category in {"error", "xfailed", "xpassed"} else category
            if rank[outcome] >= rank[outcomes.get(nodeid, "passed")]:
                outcomes[nodeid] = outcome
    return Score(passed=sum(outcome == "passed" for outcome in outcomes.values()), total=len(outcomes))


def pytest_terminal_summary(terminalreporter: TerminalReporter, exitstatus: int) -> None:
    score = score_of(terminalreporter)
    if score.total:
        terminalreporter.write_sep("=", score.line(), bold=True, red=score.passed < score.total)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != pytest.ExitCode.OK:
        return
    score = score_of(reporter)
    if score.passed < score.total:
        # Skipped checks leave pytest's status green; the gate is not.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
