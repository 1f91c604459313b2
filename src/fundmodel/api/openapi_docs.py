"""What the OpenAPI document says about stage validation: the mode table, headers and problem bodies."""

from __future__ import annotations

from typing import Any

from fundmodel.api.problems import problem_responses

STAGE_VALIDATION_DESCRIPTION = """
## Stage validation

Every endpoint that takes an investment stage runs it through one validation layer. The mode is
`off`, `warn` or `enforce` (with a canary percentage of clients enforced; the rest are warned).
The current mode is in the `X-Stage-Validation-Mode` response header and in `GET /api/deprecations`.

| input | off | warn | enforce |
|---|---|---|---|
| canonical (`series_a`) | accepted | accepted | accepted |
| alias (`Series A`) | normalized | normalized + headers + `warnings` | same as warn (*) |
| unknown (`mezzanine`) | dropped, renormalized | dropped + headers + `warnings` | **400** `INVALID_STAGE` |
| weights sum != 1 | renormalized | renormalized + `warnings` | **400** `INVALID_STAGE_DISTRIBUTION` |
| malformed | **422** | **422** | **422** |

(*) until the Sunset date. Malformed: not an object, NaN, negative, bool, string weights, limits
exceeded. "headers": `Deprecation`, `Sunset`, `Link`.

Errors are RFC 9457 `application/problem+json` documents with `type`, `title`, `status`,
`detail`, a stable `code`, and for stage errors `invalid`, `suggestions` and `validStages`.
Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`.
""".strip()

_HEADER_DOCS: dict[str, dict[str, Any]] = {
    "X-Stage-Validation-Mode": {
        "description": "Mode applied to this request (`warn` or `enforce`); absent when off.",
        "schema": {"type": "string", "enum": ["warn", "enforce"]},
    },
    "Deprecation": {
        "description": "RFC 9745: `@<epoch-seconds>` when a deprecated stage spelling was used.",
        "schema": {"type": "string", "example": "@1796083200"},
    },
    "Sunset": {
        "description": "RFC 8594: HTTP-date after which deprecated spellings are rejected.",
        "schema": {"type": "string", "example": "Tue, 01 Jun 2027 00:00:00 GMT"},
    },
    "Link": {
        "description": 'Where the deprecation is explained: `<…/api/deprecations>; rel="deprecation"`.',
        "schema": {"type": "string"},
    },
}


def validation_headers_doc() -> dict[str, dict[str, Any]]:
    return {name: dict(doc) for name, doc in _HEADER_DOCS.items()}


def validated_responses(success: int, *problems: int) -> dict[int | str, dict[str, Any]]:
    """Responses of an endpoint that validates stages: headers on success and on 400/422."""
    responses = problem_responses(400, 401, 422, *problems)
    responses[success] = {"headers": validation_headers_doc()}
    for status in (400, 422):
        responses[status]["headers"] = validation_headers_doc()
    return responses


def plain_responses(*problems: int) -> dict[int | str, dict[str, Any]]:
    """Responses of an endpoint without stage input."""
    return problem_responses(401, 422, *problems)
