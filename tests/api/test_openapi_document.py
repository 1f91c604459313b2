"""The OpenAPI document shows the validation headers and problem bodies on every affected response."""

from __future__ import annotations

from collections.abc import Iterator
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry
from pydantic import AfterValidator, BaseModel, Strict

from fundmodel.api.app import create_app
from fundmodel.api.routes import companies, funds, monte_carlo, ops, portfolio
from fundmodel.apimodel import NO_NUL_PATTERN, StorableText
from fundmodel.stages import MAX_ENTRIES, MAX_STAGE_NAME_LENGTH
from tests.conftest import settings_for

STAGE_OPERATIONS = [
    ("post", "/api/monte-carlo/simulate", "200"),
    ("post", "/api/monte-carlo/compare", "200"),
    ("post", "/api/portfolio/strategies", "201"),
    ("put", "/api/portfolio/strategies/{id}", "200"),
    ("post", "/api/funds/{fundId}/companies", "201"),
    ("get", "/api/funds/{fundId}/companies", "200"),
]
HEADERS = {"X-Stage-Validation-Mode", "Deprecation", "Sunset", "Link"}


def test_stage_operations_document_headers_and_problems(tmp_path: object) -> None:
    app = create_app(
        settings_for(f"sqlite:///{tmp_path}/doc.sqlite3"),
        registry=CollectorRegistry(),
        configure_logs=False,
    )
    document = app.openapi()
    assert "| malformed | **422** | **422** | **422** |" in document["info"]["description"]
    for method, path, success in STAGE_OPERATIONS:
        responses = document["paths"][path][method]["responses"]
        assert {success, "400", "401", "422"} <= set(responses)
        for status, response in responses.items():
            # The middleware adds them to every response once validation ran; 401 comes before it, and
            # so does 415 (a body not sent as JSON is never read).
            expected = set() if status in {"401", "415"} else HEADERS
            if status == "503":
                expected = expected | {"Retry-After"}
            if (path, status) == ("/api/monte-carlo/simulate", "200"):
                expected = expected | {"X-Simulation-Seed"}  # the CSV answer's seed
            assert set(response.get("headers", {})) == expected, (method, path, status)
        for status in ("400", "401", "422"):
            schema = responses[status]["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}
    problem = document["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "title", "status", "detail", "code", "invalid", "suggestions", "validStages"} <= set(
        problem
    )


def test_not_found_and_conflict_of_validated_endpoints_document_the_headers(tmp_path: object) -> None:
    app = create_app(
        settings_for(f"sqlite:///{tmp_path}/doc.sqlite3"),
        registry=CollectorRegistry(),
        configure_logs=False,
    )
    paths = app.openapi()["paths"]
    replace = paths["/api/portfolio/strategies/{id}"]["put"]["responses"]
    for status in ("404", "409"):
        assert set(replace[status]["headers"]) == HEADERS
    for method in ("get", "post"):
        assert set(paths["/api/funds/{fundId}/companies"][method]["responses"]["404"]["headers"]) == HEADERS


def test_the_mode_table_says_a_renormalized_sum_is_flagged_with_headers(tmp_path: object) -> None:
    app = create_app(
        settings_for(f"sqlite:///{tmp_path}/doc.sqlite3"),
        registry=CollectorRegistry(),
        configure_logs=False,
    )
    description = app.openapi()["info"]["description"]
    assert "| sum != 1 | renormalized | renormalized + headers + `warnings` |" in description
    assert "`DUPLICATE_STAGE`" in description


def _document(tmp_path: object) -> dict[str, Any]:
    app = create_app(
        settings_for(f"sqlite:///{tmp_path}/doc.sqlite3"),
        registry=CollectorRegistry(),
        configure_logs=False,
    )
    document: dict[str, Any] = app.openapi()
    return document


def test_raw_stage_inputs_are_published_as_what_they_are(tmp_path: object) -> None:
    # They used to be an untyped JsonValue: generated clients got Any, and null or arrays were schema-valid.
    schemas = _document(tmp_path)["components"]["schemas"]
    distribution = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": MAX_ENTRIES,
        "propertyNames": {"minLength": 1, "maxLength": MAX_STAGE_NAME_LENGTH, "pattern": NO_NUL_PATTERN},
        "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
    }
    for model, field in [
        ("SimulateRequest", "stageDistribution"),
        ("Alternative", "stageDistribution"),
        ("StrategyCreate", "stageAllocation"),
        ("StrategyReplace", "stageAllocation"),
    ]:
        published = schemas[model]["properties"][field]
        assert {key: published[key] for key in distribution} == distribution, (model, field)
        assert published["description"]
        assert field in schemas[model]["required"]
    stage = schemas["CompanyCreate"]["properties"]["stage"]
    assert stage["type"] == "string"
    assert (stage["minLength"], stage["maxLength"]) == (1, MAX_STAGE_NAME_LENGTH)
    assert stage["pattern"] == NO_NUL_PATTERN
    assert "stage" in schemas["CompanyCreate"]["required"]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _leaf_schemas(
    document: dict[str, Any], schema: dict[str, Any], path: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    schema = _resolve(document, schema)
    for option in schema.get("anyOf", []):
        yield from _leaf_schemas(document, option, path)
    for name, child in schema.get("properties", {}).items():
        yield from _leaf_schemas(document, child, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _leaf_schemas(document, schema["additionalProperties"], f"{path}.*")
    if "items" in schema:
        yield from _leaf_schemas(document, schema["items"], f"{path}[]")
    if schema.get("type") in ("string", "integer", "number"):
        yield path, schema


def test_every_request_text_forbids_nul_and_every_integer_has_its_column_bounds(tmp_path: object) -> None:
    document = _document(tmp_path)
    seen = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None or "$ref" not in content["schema"]:
                continue  # the Alertmanager webhook documents its raw payload by hand
            for field, leaf in _leaf_schemas(document, content["schema"], f"{method} {path}"):
                seen += 1
                if leaf["type"] == "string" and "enum" not in leaf and leaf.get("format") != "date-time":
                    assert leaf.get("pattern") == NO_NUL_PATTERN, field
                    assert "maxLength" in leaf, field
                if leaf["type"] == "integer":
                    assert "maximum" in leaf, field
    assert seen > 50


def _request_body_models() -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = []
    for module in (funds, companies, portfolio, monte_carlo, ops):
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                models.extend(param.field_info.annotation for param in route.dependant.body_params)
    return models


def _leaf_types(annotation: Any, metadata: list[Any], path: str) -> Iterator[tuple[str, Any, list[Any]]]:
    """(path, leaf type, its metadata) of every int, float and str a request model can hold."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        yield from _leaf_types(base, [*metadata, *extra], path)
    elif origin in (Union, UnionType):
        for option in get_args(annotation):
            yield from _leaf_types(option, metadata, path)
    elif origin is list:
        yield from _leaf_types(get_args(annotation)[0], [], f"{path}[]")
    elif origin is dict:
        # Keys are stage names, judged (and refused when holding NUL) by the stage layer.
        yield from _leaf_types(get_args(annotation)[1], [], f"{path}.*")
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            yield from _leaf_types(field.annotation, list(field.metadata), f"{path}.{name}")
    elif annotation in (int, float, str):
        yield path, annotation, metadata


def test_every_request_number_is_strict_and_every_text_is_storable() -> None:
    # A boolean was accepted as a number (reserveAllocation: false) and a NUL reached PostgreSQL (500).
    leaves = [leaf for model in _request_body_models() for leaf in _leaf_types(model, [], model.__name__)]
    assert {"FundCreate.name", "AllocationBatch.allocations[].company_id", "SimulateRequest.fund_size"} <= {
        path for path, _, _ in leaves
    }
    for path, leaf_type, metadata in leaves:
        if leaf_type is str:
            validators = [item.func for item in metadata if isinstance(item, AfterValidator)]
            assert validators == [StorableText.__metadata__[0].func], path
        else:
            assert any(isinstance(item, Strict) and item.strict for item in metadata), path
