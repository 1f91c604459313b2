"""Swagger UI at /docs loads nothing from the internet: its scripts and styles are served by the app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from fundmodel.api.app import create_app
from tests.conftest import settings_for

EXPECTED_CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(settings_for(f"sqlite:///{tmp_path}/docs.sqlite3"), registry=CollectorRegistry())
    with TestClient(app) as test_client:
        yield test_client


def referenced_urls(html: str) -> list[str]:
    """Every URL the page loads: src/href attributes and the quoted ``url``s of the inline script."""
    attributes = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    script_urls = re.findall(r"""\b(?:url|oauth2RedirectUrl)\s*:\s*['"]([^'"]+)['"]""", html)
    return attributes + script_urls


def test_docs_page_references_only_local_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = referenced_urls(page.text)
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls), page.text
    assert any(url.endswith("swagger-ui.css") for url in urls), page.text
    assert "/openapi.json" in urls
    for url in urls:
        assert url.startswith("/"), f"/docs loads {url} from elsewhere"
        assert not url.startswith("//"), f"/docs loads {url} from elsewhere"
    assert not re.search(r"https?://", page.text), page.text


def test_every_asset_the_docs_page_loads_is_served(client: TestClient) -> None:
    assets = [url for url in referenced_urls(client.get("/docs").text) if Path(url).suffix]
    assert len(assets) >= 3  # script, stylesheet, icon
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        expected = EXPECTED_CONTENT_TYPES.get(Path(url).suffix, "application/json")
        assert response.headers["content-type"].startswith(expected), (url, response.headers)
        assert len(response.content) > 100, url
    script = client.get(next(url for url in assets if url.endswith("swagger-ui-bundle.js")))
    assert "SwaggerUIBundle" in script.text


def test_the_page_honours_a_proxy_prefix(tmp_path: Path) -> None:
    app = create_app(settings_for(f"sqlite:///{tmp_path}/docs.sqlite3"), registry=CollectorRegistry())
    with TestClient(app, root_path="/fundmodel") as prefixed:
        urls = referenced_urls(prefixed.get("/docs").text)
    assert urls
    assert all(url.startswith("/fundmodel/") for url in urls), urls


def test_redoc_is_off_and_the_openapi_document_still_served(client: TestClient) -> None:
    assert client.get("/redoc").status_code == 404
    document = client.get("/openapi.json")
    assert document.status_code == 200
    assert "/docs" not in document.json()["paths"]
