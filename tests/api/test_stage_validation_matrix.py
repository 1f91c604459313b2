"""The full matrix: every endpoint family x each mode x {canonical, alias, unknown, malformed} input.

Asserts status, body (stored/returned values, warnings, problem fields) and headers, on SQLite and
PostgreSQL. One app per backend for the module (mode switched through the store between cases).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, ApiClient, make_database, open_api_client, settings_for

MODES = ("off", "warn", "enforce")
KINDS = ("canonical", "alias", "unknown", "malformed")
VALID_STAGES = [
    "pre_seed",
    "seed",
    "series_a",
    "series_b",
    "series_c",
    "series_d",
    "growth",
    "late_stage",
]

DISTRIBUTIONS: dict[str, Any] = {
    "canonical": {"seed": 0.5, "series_a": 0.5},
    "alias": {"Seed": 0.5, "Series A": 0.5},
    "unknown": {"seed": 0.5, "series_a": 0.25, "mezzanine": 0.25},
    "malformed": {"seed": "half", "series_a": 0.5},
}
# What the distribution becomes once accepted (unknown dropped, the rest renormalized).
CANONICAL_WEIGHTS: dict[str, dict[str, float]] = {
    "canonical": {"seed": 0.5, "series_a": 0.5},
    "alias": {"seed": 0.5, "series_a": 0.5},
    "unknown": {"seed": 2 / 3, "series_a": 1 / 3},
}
STAGES: dict[str, Any] = {
    "canonical": "series_a",
    "alias": "Series A",
    "unknown": "mezzanine",
    "malformed": 42,
}
QUERY_STAGES: dict[str, str] = {**STAGES, "malformed": "x" * 100}
# Stage names as keys of per-stage overrides: the known key's override must reach the engine.
SEED_OVERRIDE = {"checkSize": 2e6}
PROFILE_KEYS: dict[str, dict[str, Any]] = {
    "canonical": {"seed": SEED_OVERRIDE},
    "alias": {"Seed": SEED_OVERRIDE},
    "unknown": {"seed": SEED_OVERRIDE, "mezzanine": {"checkSize": 1e6}},
    "malformed": {"x" * 100: SEED_OVERRIDE},
}
SEED_CHECK_WITH_OVERRIDE = 2_037_500.0  # the default seed profile gives 1,273,437.50 for this fund


@dataclass(frozen=True)
class Family:
    """How one endpoint takes stage input and what it returns when accepted."""

    name: str
    call: Callable[[ApiClient, int, str], Any]
    check_accepted: Callable[[dict[str, Any], str, str], None]
    success: int = 200


def _simulate(api: ApiClient, _fund: int, kind: str) -> Any:
    body = {"fundSize": 1e8, "stageDistribution": DISTRIBUTIONS[kind], "iterations": 50, "seed": 7}
    return api.request("POST", "/api/monte-carlo/simulate", json=body)


def _check_simulate(body: dict[str, Any], kind: str, _mode: str) -> None:
    used = body["result"]["stageDistribution"]
    assert used == pytest.approx(CANONICAL_WEIGHTS[kind])


def _simulate_profiles(api: ApiClient, _fund: int, kind: str) -> Any:
    body = {
        "fundSize": 1e8,
        "stageDistribution": DISTRIBUTIONS["canonical"],
        "stageProfiles": PROFILE_KEYS[kind],
        "iterations": 50,
        "seed": 7,
    }
    return api.request("POST", "/api/monte-carlo/simulate", json=body)


def _check_simulate_profiles(body: dict[str, Any], kind: str, _mode: str) -> None:
    checks = body["result"]["capital"]["initialCheckByStage"]
    # The seed override applied under any spelling; an unknown key changed nothing else.
    assert checks["seed"] == pytest.approx(SEED_CHECK_WITH_OVERRIDE)
    assert checks["series_a"] == pytest.approx(2_910_714.285714286)
    if kind == "unknown" and body["warnings"]:
        [warning] = body["warnings"]
        assert warning["field"] == "stageProfiles.mezzanine"
        assert "default stage profiles apply" in warning["message"]


def _compare(api: ApiClient, _fund: int, kind: str) -> Any:
    body = {
        "fundSize": 1e8,
        "alternatives": [
            {"label": "given", "stageDistribution": DISTRIBUTIONS[kind]},
            {"label": "all seed", "stageDistribution": {"seed": 1.0}},
        ],
        "iterations": 50,
        "seed": 7,
    }
    return api.request("POST", "/api/monte-carlo/compare", json=body)


def _check_compare(body: dict[str, Any], kind: str, _mode: str) -> None:
    assert [r["label"] for r in body["results"]] == ["given", "all seed"]
    used = body["results"][0]["result"]["stageDistribution"]
    assert used == pytest.approx(CANONICAL_WEIGHTS[kind])


def _create_strategy(api: ApiClient, _fund: int, kind: str) -> Any:
    body = {"name": f"s-{uuid.uuid4().hex[:6]}", "stageAllocation": DISTRIBUTIONS[kind]}
    return api.request("POST", "/api/portfolio/strategies", json=body)


def _check_strategy(body: dict[str, Any], kind: str, _mode: str) -> None:
    assert body["stageAllocation"] == pytest.approx(CANONICAL_WEIGHTS[kind])
    assert list(body["stageAllocation"]) == ["seed", "series_a"]  # canonical order


def _replace_strategy(api: ApiClient, _fund: int, kind: str) -> Any:
    created = api.request(
        "POST", "/api/portfolio/strategies", json={"name": "base", "stageAllocation": {"seed": 1}}
    )
    assert created.status_code == 201, created.text
    strategy_id = created.json()["id"]
    body = {"name": "replaced", "stageAllocation": DISTRIBUTIONS[kind], "version": 1}
    return api.request("PUT", f"/api/portfolio/strategies/{strategy_id}", json=body)


def _check_replaced(body: dict[str, Any], kind: str, mode: str) -> None:
    _check_strategy(body, kind, mode)
    assert body["version"] == 2
    assert body["name"] == "replaced"


def _create_company(api: ApiClient, fund: int, kind: str) -> Any:
    body = {"name": "NewCo", "stage": STAGES[kind], "invested": 1000.0}
    return api.request("POST", f"/api/funds/{fund}/companies", json=body)


def _check_company(body: dict[str, Any], kind: str, _mode: str) -> None:
    if kind == "unknown":
        assert body["stage"] == "mezzanine"  # accepted as sent (off/warn), not guessed
        assert body["canonicalStage"] is None
    else:
        assert body["stage"] == "series_a"  # stored canonical
        assert body["canonicalStage"] == "series_a"


def _filter_companies(api: ApiClient, fund: int, kind: str) -> Any:
    # The legacy fund (created right after the write fund) is never written to by the matrix.
    return api.request("GET", f"/api/funds/{fund + 1}/companies", params={"stage": QUERY_STAGES[kind]})


def _check_filter(body: dict[str, Any], kind: str, _mode: str) -> None:
    stored = sorted(item["stage"] for item in body["items"])
    if kind == "unknown":
        assert stored == []
    else:
        # Every stored spelling of series A, legacy ones included.
        assert stored == sorted(["Series A", "series_a", "seriesA"])


FAMILIES = [
    Family("monte-carlo simulate", _simulate, _check_simulate),
    Family("monte-carlo compare", _compare, _check_compare),
    Family("strategy create", _create_strategy, _check_strategy, success=201),
    Family("strategy replace", _replace_strategy, _check_replaced),
    Family("company create", _create_company, _check_company, success=201),
    Family("companies filter", _filter_companies, _check_filter),
    # Same endpoint, the other stage-keyed field: the keys of the per-stage profile overrides.
    Family("monte-carlo simulate stageProfiles", _simulate_profiles, _check_simulate_profiles),
]


@pytest.fixture(scope="module", params=BACKENDS)
def matrix_api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_database: str | None,
) -> Iterator[tuple[ApiClient, int]]:
    directory: Path = tmp_path_factory.mktemp("matrix")
    url = make_database(request.param, directory, postgres_database)
    api, close = open_api_client(settings_for(url))
    fund, legacy_fund = (
        api.request(
            "POST",
            "/api/funds",
            json={
                "name": name,
                "vintageYear": 2025,
                "committedCapital": 5e7,
                "managementFeeRate": 0.02,
                "carriedInterestRate": 0.2,
            },
        ).json()["id"]
        for name in ("Matrix Fund", "Legacy Fund")
    )
    assert legacy_fund == fund + 1
    for stage in ("Series A", "series_a", "seriesA", "seed", " SEED "):
        _seed_company(api, legacy_fund, stage)
    yield api, fund
    close()


def _seed_company(api: ApiClient, fund: int, stage: str) -> None:
    # Legacy spellings go straight to the table: the API would normalize them.
    from sqlalchemy import insert

    from fundmodel.db.tables import portfolio_companies

    with api.state.engine.begin() as connection:
        connection.execute(
            insert(portfolio_companies).values(
                fund_id=fund, name=f"legacy {stage}", stage=stage, invested=1.0, reserve_allocation=0
            )
        )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_matrix(matrix_api: tuple[ApiClient, int], family: Family, mode: str, kind: str) -> None:
    api, fund = matrix_api
    api.set_mode(mode)
    response = family.call(api, fund, kind)
    body = response.json()
    headers = response.headers

    if kind == "malformed":
        assert response.status_code == 422, response.text
        assert headers["content-type"] == "application/problem+json"
        assert body["status"] == 422
        assert body["code"].startswith("MALFORMED_STAGE")
        assert body["validStages"] == VALID_STAGES
        assert body["type"].startswith("urn:fundmodel:problem:")
        _assert_mode_header(headers, mode)
        return

    if mode == "enforce" and kind == "unknown":
        assert response.status_code == 400, response.text
        assert headers["content-type"] == "application/problem+json"
        assert body["code"] == "INVALID_STAGE"
        assert body["status"] == 400
        assert body["title"]
        assert "mezzanine" in body["detail"]
        assert body["invalid"] == ["mezzanine"]
        assert "mezzanine" in body["suggestions"]
        assert body["validStages"] == VALID_STAGES
        _assert_mode_header(headers, mode)
        _assert_deprecation_headers(headers, present=True)
        return

    assert response.status_code == family.success, response.text
    family.check_accepted(body, kind, mode)
    _assert_mode_header(headers, mode)
    flagged = kind in ("alias", "unknown") and mode != "off"
    _assert_deprecation_headers(headers, present=flagged)
    if "warnings" in body:
        codes = [warning["code"] for warning in body["warnings"]]
        if not flagged:
            assert codes == []
        elif kind == "alias":
            assert codes
            assert set(codes) == {"DEPRECATED_ALIAS"}
        else:
            assert "UNKNOWN_STAGE" in codes


def _assert_mode_header(headers: Any, mode: str) -> None:
    if mode == "off":
        assert "x-stage-validation-mode" not in headers
    else:
        assert headers["x-stage-validation-mode"] == mode


def _assert_deprecation_headers(headers: Any, *, present: bool) -> None:
    if not present:
        for name in ("deprecation", "sunset", "link"):
            assert name not in headers
        return
    assert headers["deprecation"] == "@1796083200"  # 2026-12-01T00:00:00Z, the configured default
    assert headers["sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"
    assert 'rel="deprecation"' in headers["link"]
    assert 'rel="sunset"' in headers["link"]
    assert "/api/deprecations>" in headers["link"]
    for value in headers.values():
        assert value.isascii()
        assert "\r" not in value
        assert "\n" not in value


@pytest.mark.parametrize("family", FAMILIES[:4], ids=lambda f: f.name)
def test_enforce_rejects_a_sum_mismatch_warn_renormalizes(
    matrix_api: tuple[ApiClient, int], family: Family
) -> None:
    api, fund = matrix_api
    original = DISTRIBUTIONS["canonical"]
    DISTRIBUTIONS["canonical"] = {"seed": 0.5, "series_a": 0.3}
    try:
        api.set_mode("enforce")
        rejected = family.call(api, fund, "canonical")
        api.set_mode("warn")
        warned = family.call(api, fund, "canonical")
    finally:
        DISTRIBUTIONS["canonical"] = original
    assert rejected.status_code == 400, rejected.text
    assert rejected.json()["code"] == "INVALID_STAGE_DISTRIBUTION"
    assert warned.status_code == family.success, warned.text
    assert "SUM_MISMATCH" in [w["code"] for w in warned.json()["warnings"]]
    # Renormalizing a bad sum is deprecated legacy behaviour: flagged like an unknown name (as documented).
    _assert_deprecation_headers(rejected.headers, present=True)
    _assert_deprecation_headers(warned.headers, present=True)


@pytest.mark.parametrize("family", FAMILIES[:4], ids=lambda f: f.name)
def test_off_renormalizes_a_sum_mismatch_silently(matrix_api: tuple[ApiClient, int], family: Family) -> None:
    api, fund = matrix_api
    original = DISTRIBUTIONS["canonical"]
    DISTRIBUTIONS["canonical"] = {"seed": 0.5, "series_a": 0.3}
    try:
        api.set_mode("off")
        silent = family.call(api, fund, "canonical")
    finally:
        DISTRIBUTIONS["canonical"] = original
    assert silent.status_code == family.success, silent.text
    assert silent.json()["warnings"] == []
    _assert_mode_header(silent.headers, "off")
    _assert_deprecation_headers(silent.headers, present=False)


# The "malformed" row, every way a client can hit it: one code and one shape per kind of input, in every
# mode. Bodies are raw JSON text: NaN, Infinity and 1e309 (which parses to infinity) are what a client
# sends, and json.dumps escapes NUL and lone surrogates (\u0000, \ud800) the way a client's encoder does.
MALFORMED_WEIGHTS = ["NaN", "Infinity", "-Infinity", "1e309", '"half"', "true", "null", "-0.5", "[0.5]"]
NUL_NAMES = ["se\u0000ed", "\ud800"]  # NUL, and an unpaired surrogate
RAW = "__raw__"


def _post_raw(api: ApiClient, method: str, path: str, document: dict[str, Any], raw: str) -> Any:
    """Send ``document`` as JSON (escaped by json.dumps), its string ``RAW`` replaced by the JSON ``raw``."""
    text = json.dumps(document)
    if raw:
        text = text.replace(json.dumps(RAW), raw)
    return api.request(method, path, content=text.encode(), headers={"content-type": "application/json"})


def _strategy_id(api: ApiClient) -> int:
    body = {"name": f"b-{uuid.uuid4().hex[:6]}", "stageAllocation": {"seed": 1}}
    created = api.request("POST", "/api/portfolio/strategies", json=body)
    assert created.status_code == 201, created.text
    strategy_id: int = created.json()["id"]
    return strategy_id


def _simulate_raw(api: ApiClient, distribution: str) -> Any:
    document = {"fundSize": 1e8, "stageDistribution": RAW}
    return _post_raw(api, "POST", "/api/monte-carlo/simulate", document, distribution)


def _compare_raw(api: ApiClient, distribution: str) -> Any:
    document = {"fundSize": 1e8, "alternatives": [{"label": "a", "stageDistribution": RAW}]}
    return _post_raw(api, "POST", "/api/monte-carlo/compare", document, distribution)


def _create_strategy_raw(api: ApiClient, distribution: str) -> Any:
    document = {"name": "m", "stageAllocation": RAW}
    return _post_raw(api, "POST", "/api/portfolio/strategies", document, distribution)


def _replace_strategy_raw(api: ApiClient, distribution: str) -> Any:
    document = {"name": "m", "stageAllocation": RAW, "version": 1}
    return _post_raw(api, "PUT", f"/api/portfolio/strategies/{_strategy_id(api)}", document, distribution)


# (family, the field the problem names, call with the distribution's JSON text)
DISTRIBUTION_CALLS = [
    pytest.param("stageDistribution", _simulate_raw, id="simulate"),
    pytest.param("alternatives[0].stageDistribution", _compare_raw, id="compare"),
    pytest.param("stageAllocation", _create_strategy_raw, id="strategy create"),
    pytest.param("stageAllocation", _replace_strategy_raw, id="strategy replace"),
]


def _assert_malformed(response: Any, code: str, field: str, mode: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["field"] == field
    assert body["validStages"] == VALID_STAGES
    _assert_mode_header(response.headers, mode)
    return body


@pytest.mark.parametrize("weight", MALFORMED_WEIGHTS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("field", "call"), DISTRIBUTION_CALLS)
def test_every_malformed_weight_is_one_problem_naming_field_and_key(
    matrix_api: tuple[ApiClient, int],
    field: str,
    call: Callable[[ApiClient, str], Any],
    mode: str,
    weight: str,
) -> None:
    api, _fund = matrix_api
    api.set_mode(mode)
    response = call(api, f'{{"seed": {weight}, "series_a": 0.5}}')
    body = _assert_malformed(response, "MALFORMED_STAGE_DISTRIBUTION", field, mode)
    assert body["invalid"] == ["seed"]
    assert "'seed'" in body["detail"]


@pytest.mark.parametrize("name", NUL_NAMES, ids=["nul", "surrogate"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("field", "call"), DISTRIBUTION_CALLS)
def test_a_distribution_key_with_nul_or_a_lone_surrogate_is_malformed(
    matrix_api: tuple[ApiClient, int],
    field: str,
    call: Callable[[ApiClient, str], Any],
    mode: str,
    name: str,
) -> None:
    api, _fund = matrix_api
    api.set_mode(mode)
    body = _assert_malformed(
        call(api, json.dumps({name: 0.5, "seed": 0.5})), "MALFORMED_STAGE_DISTRIBUTION", field, mode
    )
    assert body["invalid"] == []  # such a name is never echoed back
    assert "NUL" in body["detail"]


@pytest.mark.parametrize("name", NUL_NAMES, ids=["nul", "surrogate"])
@pytest.mark.parametrize("mode", MODES)
def test_a_stage_with_nul_or_a_lone_surrogate_is_malformed_in_every_mode(
    matrix_api: tuple[ApiClient, int], mode: str, name: str
) -> None:
    api, fund = matrix_api
    api.set_mode(mode)
    company = {"name": "n", "stage": RAW, "invested": 1}
    created = _post_raw(api, "POST", f"/api/funds/{fund}/companies", company, json.dumps(name))
    _assert_malformed(created, "MALFORMED_STAGE", "stage", mode)
    overrides = {"fundSize": 1e8, "stageDistribution": {"seed": 1}, "stageProfiles": {name: {}}}
    profiles = _post_raw(api, "POST", "/api/monte-carlo/simulate", overrides, raw="")
    _assert_malformed(profiles, "MALFORMED_STAGE", "stageProfiles", mode)
    if name != "\ud800":  # a query string is UTF-8: it cannot carry a lone surrogate
        filtered = api.request("GET", f"/api/funds/{fund}/companies", params={"stage": name})
        _assert_malformed(filtered, "MALFORMED_STAGE", "stage", mode)


@pytest.mark.parametrize("stage", [None, 42, True, [], {}, "", "   ", "x" * 65])
def test_a_stage_that_is_not_a_name_is_malformed_not_a_generic_error(
    matrix_api: tuple[ApiClient, int], stage: object
) -> None:
    # The published schema says "string"; whatever arrives anyway is still judged by the stage layer.
    api, fund = matrix_api
    api.set_mode("warn")
    response = api.request(
        "POST", f"/api/funds/{fund}/companies", json={"name": "n", "stage": stage, "invested": 1}
    )
    _assert_malformed(response, "MALFORMED_STAGE", "stage", "warn")
