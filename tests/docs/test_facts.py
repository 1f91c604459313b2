"""Facts the docs state (defaults, limits, status codes, thresholds, header formats) hold in the code.

Each fact is found in its page by a pattern; a fact that is reworded so the pattern no longer finds it
fails too (update the pattern with the wording), so no fact silently stops being checked.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from fundmodel.api.problems import status_for
from fundmodel.cli.common import EXIT_FAILURE
from fundmodel.cli.rollout import EXIT_ALLOWED, EXIT_BLOCKED, EXIT_COMPLETE, EXIT_USAGE, EXIT_WARN_OVERDUE
from fundmodel.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    InvalidStageError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnavailableError,
)
from fundmodel.rollout.config import GateConfig, load_gate_config
from fundmodel.validation.headers import DeprecationPolicy, validation_headers
from fundmodel.validation.mode import ValidationMode
from tests.docs.docset import ROOT, backticked, code_blocks, page_text, table_rows, whole_text
from tests.docs.inventories import cli_commands, cli_envvars, openapi, settings_variables

API = ROOT / "docs" / "api.md"
RUNBOOK = ROOT / "docs" / "runbooks" / "stage-validation-rollout.md"
README = ROOT / "README.md"
GATES = GateConfig()


def _percent(ratio: float) -> str:
    return f"{ratio * 100:g} %"


def _hours(value: timedelta) -> str:
    return f"{value.total_seconds() / 3600:g} h"


def _thousands(value: int) -> str:
    return f"{value:,}"


def _schema(path: str, method: str) -> dict[str, Any]:
    document = openapi()
    body = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    name = body["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _list_param(path: str, name: str) -> dict[str, Any]:
    for parameter in openapi()["paths"][path]["get"]["parameters"]:
        if parameter["name"] == name:
            schema: dict[str, Any] = parameter["schema"]
            return schema
    raise AssertionError(f"GET {path} has no parameter {name}")


def _body_field(path: str, method: str, field: str, key: str) -> str:
    value = _schema(path, method)["properties"][field][key]
    return _thousands(value) if value >= 10_000 else str(value)


def _limit(key: str) -> str:
    return str(_list_param("/api/funds", "limit")[key])


def _warn_cap_days() -> str:
    return str(settings_variables()["MAX_WARN_DURATION"].days)


# (page, pattern with one group, the value the code has): one check each.
FACTS: list[tuple[Path, str, Callable[[], str]]] = [
    (API, r"`limit` \((\d+)-\d+, default \d+\)", lambda: _limit("minimum")),
    (API, r"`limit` \(\d+-(\d+), default \d+\)", lambda: _limit("maximum")),
    (API, r"`limit` \(\d+-\d+, default (\d+)\)", lambda: _limit("default")),
    (
        API,
        r"`iterations` \(default ([\d,]+)\)",
        lambda: _body_field("/api/monte-carlo/simulate", "post", "iterations", "default"),
    ),
    (
        API,
        r"`alternatives\[i\]\.stageDistribution`, up to (\d+)\)",
        lambda: _body_field("/api/monte-carlo/compare", "post", "alternatives", "maxItems"),
    ),
    (
        API,
        r"\]\}` \(up\s+to (\d+)\)",
        lambda: _body_field("/api/funds/{fundId}/allocations", "patch", "allocations", "maxItems"),
    ),
    (API, r"Status by error: stage rejected[a-z ]* (\d+)", lambda: str(status_for(InvalidStageError("x")))),
    (API, r"malformed or invalid input (\d+)", lambda: str(status_for(InvalidInputError("x")))),
    (API, r"unknown\s+resource (\d+)", lambda: str(status_for(NotFoundError("x")))),
    (API, r"version conflict or taken name (\d+)", lambda: str(status_for(ConflictError("x")))),
    (API, r"missing/invalid key (\d+)", lambda: str(status_for(AuthenticationError("x")))),
    (API, r"forbidden (\d+)", lambda: str(status_for(PermissionDeniedError("x")))),
    (API, r"store unavailable\s+(\d+)", lambda: str(status_for(StoreUnavailableError("x")))),
    (API, r"`(Link: [^`]+)`", lambda: "Link: " + _headers()["Link"]),
    (API, r"`Deprecation: (@)<epoch-seconds>`", lambda: _headers()["Deprecation"][:1]),
    (
        RUNBOOK,
        r"would-reject ratio < (\S+ %) over those 7 days",
        lambda: _percent(GATES.max_would_reject_ratio),
    ),
    (RUNBOOK, r"warn has lasted (\d+) days", lambda: str(GATES.warn_window.days)),
    (RUNBOOK, r"no hour above (\S+ %)", lambda: _percent(GATES.max_hourly_would_reject_ratio)),
    (
        RUNBOOK,
        r"at least ([\d,]+) validated requests per validated endpoint",
        lambda: _thousands(GATES.min_validations_per_endpoint),
    ),
    (RUNBOOK, r"younger than (\d+ h)", lambda: _hours(GATES.max_backup_age)),
    (RUNBOOK, r"\| soak >= (\d+ h);", lambda: _hours(GATES.soak_enforce_10)),
    (RUNBOOK, r"the same with a soak >= (\d+ h)", lambda: _hours(GATES.soak_enforce_50)),
    (RUNBOOK, r"canary reject ratio < (\S+ %)", lambda: _percent(GATES.max_canary_reject_ratio)),
    (RUNBOOK, r"<= max\(([\d.]+) x the baseline", lambda: f"{GATES.max_canary_vs_baseline:g}"),
    (
        RUNBOOK,
        r"the baseline cohort's would-reject ratio, (\S+ %)\)",
        lambda: _percent(GATES.canary_vs_baseline_floor),
    ),
    (RUNBOOK, r"validator p99 < (\d+) ms", lambda: f"{GATES.max_validation_p99_seconds * 1000:g}"),
    (RUNBOOK, r"`canary_vs_baseline_floor` \(([\d.]+)\)", lambda: f"{GATES.canary_vs_baseline_floor:g}"),
    (RUNBOOK, r"`min_canary_validations` \((\d+)\)", lambda: str(GATES.min_canary_validations)),
    (RUNBOOK, r"`MAX_WARN_DURATION` \(environment, default `(\w+)`\)", lambda: _warn_cap_days() + "d"),
    (RUNBOOK, r"\(default (\d+) days, counted from the change that left `off`\)", _warn_cap_days),
    (RUNBOOK, r"\| (\d) \| the next step is allowed", lambda: str(EXIT_ALLOWED)),
    (RUNBOOK, r"\| (\d) \| blocked", lambda: str(EXIT_BLOCKED)),
    (RUNBOOK, r"\| (\d) \| usage or configuration error", lambda: str(EXIT_USAGE)),
    (RUNBOOK, r"\| (\d) \| warn has lasted longer than `MAX_WARN_DURATION`", lambda: str(EXIT_WARN_OVERDUE)),
    (RUNBOOK, r"\| (\d) \| the rollout is complete", lambda: str(EXIT_COMPLETE)),
    (README, r"\| (\d) \| failure: the operation failed or was refused", lambda: str(EXIT_FAILURE)),
    (README, r"\| (\d) \| usage or configuration error: bad flags", lambda: str(EXIT_USAGE)),
]


def _headers() -> dict[str, str]:
    policy = DeprecationPolicy(
        settings_variables()["STAGE_DEPRECATION_DATE"], settings_variables()["STAGE_SUNSET_DATE"]
    )
    return validation_headers(ValidationMode.WARN, True, policy, deprecations_url="/api/deprecations")


@pytest.mark.parametrize(
    ("page", "pattern", "expected"), FACTS, ids=[f"{page.name}:{pattern[:50]}" for page, pattern, _ in FACTS]
)
def test_stated_fact_holds(page: Path, pattern: str, expected: Callable[[], str]) -> None:
    problem = fact_violation(page_text(page), pattern, expected())
    assert problem is None, f"{page.relative_to(ROOT)}: {problem}"


def fact_violation(text: str, pattern: str, wanted: str) -> str | None:
    """Why ``text`` does not state ``wanted`` where ``pattern`` finds the fact; None when it does."""
    # Line breaks are where the writer wrapped the paragraph, not part of the fact.
    found = re.findall(pattern, " ".join(text.split()))
    if not found:
        return f"the fact /{pattern}/ is no longer stated; reword the pattern"
    wrong = [value for value in found if value != wanted]
    return f"states {wrong[0]!r} (/{pattern}/); the code has {wanted!r}" if wrong else None


@pytest.mark.parametrize(
    ("page", "pattern", "expected"), FACTS, ids=[f"{page.name}:{pattern[:50]}" for page, pattern, _ in FACTS]
)
def test_fact_check_fails_when_the_page_states_another_value(
    page: Path, pattern: str, expected: Callable[[], str]
) -> None:
    """Mutation: the first stated value replaced by a wrong one must be caught."""
    text = " ".join(page_text(page).split())
    match = re.search(pattern, text)
    assert match is not None
    wrong_value = "7" + match.group(1) if match.group(1)[:1].isdigit() else match.group(1) + "X"
    mutated = text[: match.start(1)] + wrong_value + text[match.end(1) :]
    assert fact_violation(mutated, pattern, expected()) is not None


# ---------------------------------------------------------------- the configuration table


def _rendered_default(value: Any) -> set[str]:
    """How a writer may show a default: `2` for 2.0, `100000` or `100,000`, `unset` for None."""
    if value is None:
        return {"unset"}
    if isinstance(value, bool):
        return {str(value).lower()}
    if isinstance(value, Enum):
        return {str(value.value)}
    if isinstance(value, datetime):
        return {value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if isinstance(value, timedelta):
        return {f"{value.days}d"} if value == timedelta(days=value.days) else {f"{value.total_seconds():g}s"}
    if isinstance(value, float | int):
        return {f"{value:g}", f"{value:,}".replace(".0", "") if float(value).is_integer() else f"{value:g}"}
    return {str(value)}


def config_rows() -> list[tuple[str, str]]:
    """(variable, documented default) per variable of docs/api.md's Configuration table."""
    rows: list[tuple[str, str]] = []
    for cells in table_rows(API, "variable"):
        names = [name for span in backticked(cells[0]) for name in _expand(span)]
        defaults = [part.strip().strip("`") for part in cells[1].split(" / ")]
        if len(defaults) == 1:
            defaults *= len(names)
        assert len(defaults) == len(names), f"docs/api.md: {cells[0]}: {len(defaults)} defaults for {names}"
        rows.extend(zip(names, defaults, strict=True))
    return rows


def _expand(span: str) -> list[str]:
    match = re.fullmatch(r"([A-Z0-9_]+)\[([A-Z0-9_]+)\]", span)
    return [match.group(1), match.group(1) + match.group(2)] if match else [span]


@pytest.mark.parametrize("variable", sorted(settings_variables()))
def test_configuration_table_states_the_default(variable: str) -> None:
    documented = dict(config_rows())
    assert variable in documented, f"docs/api.md's Configuration table has no row for `{variable}`"
    shown = documented[variable]
    assert shown in _rendered_default(settings_variables()[variable]), (
        f"docs/api.md: `{variable}` default {shown!r}; Settings has {settings_variables()[variable]!r}"
    )


def test_configuration_table_names_only_real_settings() -> None:
    stale = sorted({name for name, _ in config_rows()} - set(settings_variables()))
    assert not stale, f"docs/api.md's Configuration table names variables Settings does not read: {stale}"


# ---------------------------------------------------------------- defaults stated in prose

_DEFAULT_IN_PROSE = re.compile(r"default:?\s+`?(\d[\d,]*(?:\.\d+)?)`?(\s*(?:ms|s|h|%))?")


def _default_of(name: str) -> Any:
    if name in settings_variables():
        return settings_variables()[name]
    if name in cli_envvars():
        command, option = cli_envvars()[name]
        name = option
    for command in cli_commands().values():
        for param in command.params:
            if name in param.opts:
                return param.default
    raise LookupError(name)


def prose_defaults() -> list[tuple[str, str, str]]:
    """(page, name, stated default) for every `default N` whose nearest preceding code span names a
    setting, a CLI envvar or a CLI flag (within the same sentence)."""
    known_flags = {opt for command in cli_commands().values() for p in command.params for opt in p.opts}
    found: list[tuple[str, str, str]] = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = page_text(page)
        for match in _DEFAULT_IN_PROSE.finditer(text):
            before = text[max(0, match.start() - 120) : match.start()]
            before = re.split(r"[.;]\s", before)[-1]
            words = [span.split()[0] for span in backticked(before) if span.split()]
            names = [word for word in words if word in {*settings_variables(), *cli_envvars(), *known_flags}]
            # Durations are checked as facts above, in the units their sentences use.
            if names and not isinstance(_default_of(names[-1]), timedelta):
                found.append((str(page.relative_to(ROOT)), names[-1], match.group(1).replace(",", "")))
    return found


@pytest.mark.parametrize(("page", "name", "stated"), prose_defaults(), ids=lambda v: str(v))
def test_default_stated_in_prose_holds(page: str, name: str, stated: str) -> None:
    actual = _default_of(name)
    assert float(stated) == float(actual), f"{page}: `{name}` default stated {stated}, the code has {actual}"


def test_mode_cache_ttl_is_stated_as_configured() -> None:
    default = settings_variables()["STAGE_MODE_CACHE_TTL_SECONDS"]
    stated = re.findall(r"TTL\)?,?\s*\(?(\d+(?:\.\d+)?) s\b", whole_text())
    assert stated, "no page states the mode cache TTL in seconds any more"
    assert {float(value) for value in stated} == {default}, f"TTL stated as {stated}; default {default}"


# ---------------------------------------------------------------- the gates file example


def test_gates_file_example_loads_and_names_every_gate() -> None:
    (example,) = [block for block in code_blocks(RUNBOOK) if block.language == "toml"]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "gates.toml"
        path.write_text(example.text, encoding="utf-8")
        load_gate_config(path)  # raises on an unknown key or a bad value
    shown = set(re.findall(r"^(\w+) =", example.text, re.MULTILINE))
    listed = re.search(r"Other keys:(.*?)\.\s", page_text(RUNBOOK), re.DOTALL)
    assert listed is not None, "the runbook no longer lists the other gate keys"
    other = set(re.findall(r"`(\w+)`", listed.group(1)))
    assert shown | other == set(GateConfig.model_fields), (
        f"gate keys documented {sorted(shown | other)}, GateConfig has {sorted(GateConfig.model_fields)}"
    )
