"""Every endpoint, problem code, metric, environment variable, command and flag is documented, and every
one the docs name exists.

The inventories come from the code (tests/docs/inventories.py); "documented" means named in README.md
or a page under docs/. Commands the docs show are checked for existence (with their options) by
tests/docs/test_runbook_commands.py.
"""

from __future__ import annotations

import re

import pytest

from fundmodel.stages import normalize_stage
from fundmodel.stages.distribution import ProblemCode
from tests.docs.docset import ROOT, backticked, doc_pages, page_text, table_rows, whole_text
from tests.docs.inventories import (
    CODE_LIKE,
    cli_commands,
    cli_envvars,
    cli_flags,
    cli_metavars,
    endpoints,
    metric_labels,
    metric_names,
    problem_code_statuses,
    problem_codes,
    sample_names,
    settings_variables,
    source_constant_names,
)

API_DOC = ROOT / "docs" / "api.md"
_ENDPOINT_MENTION = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/[^\s`,)|?]*)")
_METRIC_MENTION = re.compile(r"\bfundmodel_[a-z0-9_]+\b")
# Variables of other programs the docs may name (Numba's cache, libpq's password); the test suite's own
# knobs are read from tests/ below.
_FOREIGN_VARIABLES = frozenset({"NUMBA_CACHE_DIR", "PGPASSWORD"})
_HTTP_WORDS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _named(name: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_-])", text) is not None


def _expand(span: str) -> list[str]:
    """``ADMIN_TOKEN[_FILE]`` names two variables."""
    match = re.fullmatch(r"([A-Z0-9_]+)\[([A-Z0-9_]+)\]", span)
    return [match.group(1), match.group(1) + match.group(2)] if match else [span]


def documented_spans() -> list[str]:
    spans: list[str] = []
    for page in doc_pages():
        for span in backticked(page_text(page)):
            spans.extend(_expand(span.strip()))
    return spans


# ---------------------------------------------------------------- endpoints


@pytest.mark.parametrize(("method", "path"), sorted(endpoints()), ids=lambda v: str(v))
def test_endpoint_is_documented(method: str, path: str) -> None:
    mentioned = {(m, _template(p)) for m, p in _ENDPOINT_MENTION.findall(whole_text())}
    assert (method, _template(path)) in mentioned, f"`{method} {path}` is named nowhere in README.md or docs/"


def test_every_named_endpoint_exists() -> None:
    served = {(method, _template(path)) for method, path in endpoints()}
    stale = sorted(
        f"{page.relative_to(ROOT)}: {method} {path}"
        for page in doc_pages()
        for method, path in _ENDPOINT_MENTION.findall(page_text(page))
        if (method, _template(path)) not in served
    )
    assert not stale, f"endpoints the app does not serve (write the full path): {stale}"


# ---------------------------------------------------------------- problem codes


@pytest.mark.parametrize(("code", "where"), sorted(problem_codes().items()))
def test_problem_code_is_documented(code: str, where: str) -> None:
    named = _named(code, whole_text())
    assert named, f"problem code {code} ({where}) is named nowhere in README.md or docs/"


def test_problem_code_table_lists_only_real_codes() -> None:
    listed = {re.sub(r"`", "", row[0]) for row in table_rows(API_DOC, "code")}
    stale = sorted(listed - set(problem_codes()))
    assert not stale, f"docs/api.md lists codes nothing raises: {stale}"
    missing = sorted(set(problem_codes()) - listed)
    assert not missing, f"docs/api.md's problem code table lacks {missing}"


def test_problem_code_table_states_each_status() -> None:
    """`-` marks the codes only commands meet (their errors would be a plain 500 over HTTP)."""
    actual = problem_code_statuses()
    wrong = []
    for row in table_rows(API_DOC, "code"):
        code, shown = row[0].strip("`"), row[1]
        expected = "-" if actual.get(code) == 500 and code != "INTERNAL_ERROR" else str(actual.get(code))
        if code in actual and shown != expected:
            wrong.append(f"{code}: documented {shown}, the code answers {expected}")
    assert not wrong, "docs/api.md problem code statuses: " + "; ".join(wrong)


# ---------------------------------------------------------------- metrics


@pytest.mark.parametrize("metric", sorted(metric_names()))
def test_metric_is_documented(metric: str) -> None:
    named = _named(metric, whole_text())
    assert named, f"metric {metric} is named nowhere in README.md or docs/"


def test_every_named_metric_exists() -> None:
    known = sample_names()
    stale = sorted(
        f"{page.relative_to(ROOT)}: {name}"
        for page in doc_pages()
        for name in set(_METRIC_MENTION.findall(page_text(page)))
        if name not in known
    )
    assert not stale, f"metrics a fresh app's registry does not have: {stale}"


def test_metric_table_labels_match_the_registry() -> None:
    labels = metric_labels()
    wrong: list[str] = []
    for row in table_rows(API_DOC, "metric"):
        metrics = [name for name in backticked(row[0]) if name.startswith("fundmodel_")]
        actual = set().union(*(labels.get(name, set()) for name in metrics))
        outside_parentheses = set(backticked(re.sub(r"\([^)]*\)", "", row[1])))
        shown = set(backticked(row[1]))
        if not actual <= shown or not outside_parentheses <= actual:
            wrong.append(f"{', '.join(metrics)}: documented {sorted(shown)}, registry {sorted(actual)}")
    assert not wrong, "label columns that disagree with the registry: " + "; ".join(wrong)


# ---------------------------------------------------------------- environment variables


def _test_suite_variables() -> set[str]:
    pattern = re.compile(r"""environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]+)["']""")
    return {
        name for path in (ROOT / "tests").rglob("*.py") for name in pattern.findall(path.read_text("utf-8"))
    }


@pytest.mark.parametrize("variable", sorted({*settings_variables(), *cli_envvars()}))
def test_environment_variable_is_documented(variable: str) -> None:
    named = variable in documented_spans()
    assert named, f"`{variable}` is named (in backticks) nowhere in README.md or docs/"


def test_every_named_upper_case_name_exists() -> None:
    """Backticked names like `STAGE_DOCS_URL` or `INVALID_STAGE` are real variables, codes or constants."""
    known = (
        set(settings_variables())
        | set(cli_envvars())
        | set(problem_codes())
        | {code.value for code in ProblemCode}
        | cli_metavars()
        | source_constant_names()
        | _test_suite_variables()
        | _FOREIGN_VARIABLES
        | _HTTP_WORDS
    )
    stale = sorted(
        {
            span
            for span in documented_spans()
            if CODE_LIKE.match(span) and span not in known and not normalize_stage(span).is_known
        }
    )
    assert not stale, f"upper-case names in the docs that exist nowhere in the code: {stale}"


# ---------------------------------------------------------------- commands and flags


@pytest.mark.parametrize("command", sorted(cli_commands()))
def test_command_is_documented(command: str) -> None:
    named = _named(f"fundmodel {command}", whole_text())
    assert named, f"`fundmodel {command}` is named nowhere"


def _pages_naming(command: str) -> list[str]:
    return [page_text(page) for page in doc_pages() if _named(f"fundmodel {command}", page_text(page))]


@pytest.mark.parametrize(
    ("command", "flag"),
    sorted((command, flag) for command, flags in cli_flags().items() for flag in flags),
    ids=lambda v: str(v),
)
def test_flag_is_documented_with_its_command(command: str, flag: str) -> None:
    """The flag is named on a page that names the command (pages are per topic: the db operations,
    the rollout runbook, the API), so a flag no page explains fails."""
    documented = any(_named(flag, text) for text in _pages_naming(command))
    assert documented, f"`fundmodel {command} {flag}`: no page naming `fundmodel {command}` mentions {flag}"
