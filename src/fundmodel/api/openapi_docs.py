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
| sum != 1 | renormalized | renormalized + headers + `warnings` | **400** `INVALID_STAGE_DISTRIBUTION` |
| malformed | **422** | **422** | **422** |

(*) until the Sunset date. "sum != 1": the weights do not sum to 1 within 0.001. Malformed: not an
object, NaN, negative, bool, string weights, limits exceeded. "headers": `Deprecation`, `Sunset`,
`Link`, also on the 400s (a renormalized sum is flagged too: it is the lenient legacy behaviour that
`enforce` retires). In warn and enforce, every response of a validated endpoint carries
`X-Stage-Validation-Mode` (and the deprecation headers when they apply) once the client is
authenticated and the JSON body parsed: successes and errors alike (400, 404, 409, 422, 500), never 401.

The keys of `stageProfiles` (Monte Carlo) follow the same table: an unknown key is dropped in off/warn,
so the default profile applies; two keys naming one stage (`seed`, `Seed`) are a **422**
`DUPLICATE_STAGE` in every mode.

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
        "description": "RFC 9745: `@<epoch-seconds>` when the request relied on deprecated stage "
        "handling: an alias, an unknown name, or weights that had to be renormalized.",
        "schema": {"type": "string", "example": "@1796083200"},
    },
    "Sunset": {
        "description": "RFC 8594: HTTP-date after which deprecated spellings are rejected "
        "(sent with `Deprecation`).",
        "schema": {"type": "string", "example": "Tue, 01 Jun 2027 00:00:00 GMT"},
    },
    "Link": {
        "description": 'Where the deprecation is explained: `<…/api/deprecations>; rel="deprecation"`.',
        "schema": {"type": "string"},
    },
}


def validation_headers_doc() -> dict[str, dict[str, Any]]:
    return {name: dict(doc) for name, doc in _HEADER_DOCS.items()}


# Validation runs after authentication and after the body is read, so a 401 or 415 never carries the
# validation headers (nor does the 400 of an unreadable body, but a stage-rejecting 400 does).
_BEFORE_VALIDATION = frozenset({401, 415})


MALFORMED_BODY_DESCRIPTION = (
    "The request body is not readable JSON (`MALFORMED_BODY`: not UTF-8, a JSON syntax error, nested too "
    "deeply); `detail` says what and where, never echoing the body."
)
UNSUPPORTED_MEDIA_TYPE_DESCRIPTION = (
    "The request body is not sent as JSON (`UNSUPPORTED_MEDIA_TYPE`): use `Content-Type: application/json`."
)
_STAGE_REJECTED_DESCRIPTION = (
    "Under enforce, stage validation rejected the input (`INVALID_STAGE`, `INVALID_STAGE_DISTRIBUTION`)."
)


def body_responses() -> dict[int | str, dict[str, Any]]:
    """The answers of any endpoint that parses a JSON body, before the body reaches the endpoint."""
    return problem_responses(
        400,
        415,
        descriptions={400: MALFORMED_BODY_DESCRIPTION, 415: UNSUPPORTED_MEDIA_TYPE_DESCRIPTION},
    )


def validated_responses(success: int, *problems: int, body: bool = False) -> dict[int | str, dict[str, Any]]:
    """Responses of an endpoint that validates stages: the validation headers on every one of them.

    The middleware adds them to whatever response leaves once validation has started (success, 400,
    422, and the endpoint's own 404/409/...), so each is documented; only 401 and 415 precede it.
    ``body``: the endpoint parses a JSON body, so an unreadable one is a 400 too (before validation).
    """
    responses = problem_responses(400, 401, 422, 503, *problems)
    if body:
        responses.update(body_responses())
        responses[400]["description"] = f"{_STAGE_REJECTED_DESCRIPTION} Or: {MALFORMED_BODY_DESCRIPTION}"
    else:
        responses[400]["description"] = _STAGE_REJECTED_DESCRIPTION
    responses[success] = {"headers": validation_headers_doc()}
    for status, response in responses.items():
        if status not in _BEFORE_VALIDATION:
            response["headers"] = {**response.get("headers", {}), **validation_headers_doc()}
    return responses


def plain_responses(*problems: int, body: bool = False) -> dict[int | str, dict[str, Any]]:
    """Responses of an endpoint without stage input (``body``: it parses a JSON body)."""
    responses = problem_responses(401, 422, 503, *problems)
    if body:
        responses.update(body_responses())
    return responses
