"""Liveness, readiness, metrics and the deprecations catalogue."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from fundmodel.api.app import create_app
from tests.conftest import ApiClient, settings_for


def test_healthz_and_readyz(api: ApiClient) -> None:
    assert api.http.get("/healthz").json() == {"status": "ok"}
    ready = api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_readyz_is_503_on_an_unmigrated_database(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/empty.sqlite3"
    app = create_app(settings_for(url), registry=CollectorRegistry(), configure_logs=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["code"] == "STORE_UNAVAILABLE"
    assert "fundmodel db migrate" in ready.json()["detail"]


def test_metrics_count_validations_in_every_mode_including_off(api: ApiClient) -> None:
    api.set_mode("off")
    api.request("POST", "/api/portfolio/strategies", json={"name": "m", "stageAllocation": {"Seed": 1}})
    text = api.http.get("/metrics").text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("fundmodel_stage_validations_total{")
        and 'endpoint="/api/portfolio/strategies"' in line
        and 'mode="off"' in line
        and 'outcome="normalized_alias"' in line
        and 'cohort="baseline"' in line
    )
    assert line.endswith(" 1.0")
    assert 'fundmodel_http_requests_total{method="POST",route="/api/portfolio/strategies"' in text


def test_deprecations_catalogue_shows_the_current_mode(api: ApiClient) -> None:
    api.set_mode("enforce", 25)
    body = api.http.get("/api/deprecations").json()
    entries = body["deprecations"]
    assert {entry["id"] for entry in entries} >= {"stage-name-aliases"}
    for entry in entries:
        assert entry["currentMode"] == "enforce"
        assert entry["canaryPercent"] == 25
        assert entry["sunsetAt"].startswith("2027-06-01")
        assert "POST /api/portfolio/strategies" in entry["affectedEndpoints"]


def test_the_deprecations_docs_link_comes_from_configuration_never_from_the_request(
    api: ApiClient,
) -> None:
    for host in ("evil.example.com", "127.0.0.1:1"):
        response = api.http.get("/api/deprecations", headers={"Host": host})
        assert response.status_code == 200
        assert host not in response.text
        assert {entry["docs"] for entry in response.json()["deprecations"]} == {"/docs"}


def test_an_absolute_stage_docs_url_is_returned_as_configured(database_url: str) -> None:
    docs = "https://docs.example.org/fundmodel/stages#deprecation"
    app = create_app(
        settings_for(database_url, stage_docs_url=docs), registry=CollectorRegistry(), configure_logs=False
    )
    with TestClient(app, base_url="http://evil.example.com") as client:
        body = client.get("/api/deprecations").json()
    assert {entry["docs"] for entry in body["deprecations"]} == {docs}
