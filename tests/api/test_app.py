"""The app factory hands its own routes to the HTTP metrics: no served route is recorded as ``other``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from fundmodel.observability.metrics import OTHER
from tests.conftest import ApiClient

HTTP_REQUESTS = "fundmodel_http_requests_total"


def http_series(registry: CollectorRegistry) -> set[tuple[str, str]]:
    """(method, route) of every ``fundmodel_http_requests_total`` series the registry holds."""
    return {
        (sample.labels["method"], sample.labels["route"])
        for family in registry.collect()
        for sample in family.samples
        if sample.name == HTTP_REQUESTS
    }


def test_every_documented_operation_has_its_own_route_label_from_the_start(api: ApiClient) -> None:
    registry: CollectorRegistry = api.state.registry
    known_before_any_request = http_series(registry)
    document = api.http.get("/openapi.json").json()
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert len(documented) >= 19  # the operations of docs/api.md; a new route only adds to them
    # Pre-created with zeros (rate() sees them) and exactly the app's routes: nothing listed by hand.
    assert known_before_any_request == documented
    assert all(api.state.metrics.route_label(path) == path for _method, path in documented)


def test_requests_are_counted_under_their_route_template(api: ApiClient) -> None:
    registry: CollectorRegistry = api.state.registry
    assert api.http.get("/healthz").status_code == 200
    assert api.request("GET", "/api/funds/987654").status_code == 404
    assert api.http.get("/no-such-route").status_code == 404

    def count(route: str, status_class: str) -> float | None:
        labels = {"route": route, "method": "GET", "status_class": status_class}
        return registry.get_sample_value(HTTP_REQUESTS, labels)

    assert count("/healthz", "2xx") == 1
    assert count("/api/funds/{fundId}", "4xx") == 1
    assert count(OTHER, "4xx") == 1  # an unmatched path never becomes a label of its own
