"""RFC 9457 problem documents: the one error envelope of the API.

Every :class:`~fundmodel.errors.FundmodelError`, request-validation failure, HTTP exception and unexpected
error leaves as ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and a stable
``code``; stage errors add ``invalid``, ``suggestions`` and ``validStages``. Never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, JsonValue
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Host, Match, Mount
from starlette.types import Scope

from fundmodel.apimodel import ApiModel
from fundmodel.db.availability import store_unavailable_error, unavailable_reason
from fundmodel.errors import (
    AuthenticationError,
    ConflictError,
    FundmodelError,
    InvalidInputError,
    NotConfiguredError,
    NotFoundError,
    PermissionDeniedError,
    StageValidationError,
    StoreUnavailableError,
    TooManyJobsError,
    WebhookPayloadError,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
MALFORMED_BODY = "MALFORMED_BODY"
PROBLEM_TYPE_PREFIX = "urn:fundmodel:problem:"
MAX_REPORTED_ERRORS = 50
# A database outage is usually over in seconds (a restart, a failover); clients wait this long.
STORE_RETRY_AFTER_SECONDS = 5

# Most specific first: StageValidationError is an InvalidInputError but means 400, not 422.
_STATUS_BY_ERROR: tuple[tuple[type[FundmodelError], int], ...] = (
    (StageValidationError, 400),
    (WebhookPayloadError, 400),
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (TooManyJobsError, 429),
    (StoreUnavailableError, 503),
    (NotConfiguredError, 503),
)
# Extra fields an error may carry into the body (camelCase, as clients read them).
_EXTRA_FIELDS = ("invalid", "suggestions", "validStages", "conflicts", "problems")

_log = structlog.get_logger("fundmodel.api")


class Problem(ApiModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI identifying the problem type (stable; one per code).")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request, in plain words.")
    code: str = Field(description="Stable machine-readable code, e.g. INVALID_STAGE.")
    instance: str | None = Field(default=None, description="The request path.")
    field: str | None = Field(default=None, description="The request field at fault, if one.")
    errors: list[dict[str, JsonValue]] | None = Field(
        default=None, description="One entry per problem found (field, message, type)."
    )
    invalid: list[JsonValue] | None = Field(
        default=None, description="Stage names (or values) that were rejected."
    )
    suggestions: JsonValue | None = Field(
        default=None, description="Canonical stages close to each rejected name."
    )
    valid_stages: list[str] | None = Field(default=None, description="Every canonical stage name, in order.")
    conflicts: list[dict[str, JsonValue]] | None = Field(
        default=None, description="Rows whose version changed since the client read them."
    )
    request_id: str | None = Field(
        default=None,
        description="On 500: the request id (also the X-Request-ID header) under which it was logged.",
    )


def status_for(error: FundmodelError) -> int:
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def problem_type(code: str) -> str:
    return PROBLEM_TYPE_PREFIX + code.lower().replace("_", "-")


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title or _reason(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    body.update({key: value for key, value in (extra or {}).items() if value is not None})
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_CONTENT_TYPE
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FundmodelError, _handle_fundmodel_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _handle_request_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _handle_unexpected)


async def _handle_fundmodel_error(request: Request, error: FundmodelError) -> JSONResponse:
    if status_for(error) >= 500:
        _log.error("request_failed", code=error.code, detail=error.detail, path=request.url.path)
    return _fundmodel_problem(request, error)


def _fundmodel_problem(request: Request, error: FundmodelError) -> JSONResponse:
    status = status_for(error)
    extra: dict[str, Any] = {key: error.extra.get(key) for key in _EXTRA_FIELDS}
    if isinstance(error, InvalidInputError):
        extra["field"] = error.field
        if error.errors:
            extra["errors"] = [_jsonable(item) for item in error.errors[:MAX_REPORTED_ERRORS]]
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fundmodel"'
    if isinstance(error, StoreUnavailableError):
        headers["Retry-After"] = str(STORE_RETRY_AFTER_SECONDS)
    if isinstance(error, TooManyJobsError):
        headers["Retry-After"] = str(error.retry_after_seconds)
    return problem_response(
        status,
        error.code,
        error.detail,
        title=error.title,
        instance=request.url.path,
        extra=extra,
        headers=headers,
    )


async def handle_database_error(request: Request, error: SQLAlchemyError) -> JSONResponse:
    """A database error raised anywhere in a request: 503 ``STORE_UNAVAILABLE`` when it is an outage.

    The edge only renders: which errors are outages, and the domain error an outage becomes, are decided
    in the store layer (:mod:`fundmodel.db.availability`); any other database error is a bug and is raised
    on, to be logged and answered 500 like every unexpected error. Only the reason and the driver's error
    class are logged: the driver's message may quote SQL and parameters.
    """
    reason = unavailable_reason(error)
    if reason is None:
        raise error
    state = getattr(request.app.state, "fundmodel", None)
    if state is not None:
        state.metrics.count_database_unavailable(reason.value)
    driver_error = error.orig if isinstance(error, DBAPIError) else error
    _log.warning(
        "database_unavailable",
        reason=reason.value,
        error_type=type(driver_error).__name__,
        sqlstate=getattr(driver_error, "sqlstate", None),
        path=request.url.path,
    )
    return _fundmodel_problem(request, store_unavailable_error(reason))


async def _handle_request_validation(request: Request, error: RequestValidationError) -> JSONResponse:
    unreadable = _invalid_json_detail(error)
    if unreadable is not None:
        return _malformed_body_response(request, unreadable)
    if isinstance(error.body, bytes | bytearray):
        # FastAPI hands the route the raw bytes when the Content-Type is not JSON: nothing was parsed.
        return problem_response(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request body as JSON, with Content-Type: application/json",
            instance=request.url.path,
        )
    errors = [_describe_validation_error(item) for item in error.errors()[:MAX_REPORTED_ERRORS]]
    summary = "; ".join(f"{item['field']}: {item['message']}" for item in errors[:3])
    return problem_response(
        422,
        "INVALID_INPUT",
        f"the request is not valid: {summary}" if summary else "the request is not valid",
        title="Invalid input",
        instance=request.url.path,
        extra={"errors": errors},
    )


async def _handle_http_exception(request: Request, error: StarletteHTTPException) -> JSONResponse:
    if error.status_code == 400 and error.__cause__ is not None:
        # The one HTTPException raised from another error is FastAPI's "There was an error parsing the
        # body": bytes that are not UTF-8, JSON nested too deeply, a number with too many digits.
        return _malformed_body_response(request, _unparsable_body_detail(error.__cause__))
    code = _reason(error.status_code).upper().replace(" ", "_").replace("-", "_")
    detail = error.detail if isinstance(error.detail, str) else _reason(error.status_code)
    headers = dict(getattr(error, "headers", None) or {})
    if error.status_code == 405:
        served = allowed_methods(request.app, request.scope)
        if served:
            headers["Allow"] = ", ".join(served)
    return problem_response(error.status_code, code, detail, instance=request.url.path, headers=headers)


# Methods an Allow header may name: the ones a route of this app can declare.
_ROUTABLE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route answers at the scope's path (HEAD and OPTIONS only where one does).

    Starlette's 405 names the methods of the first route matching the path only, so a path served by
    several routes (GET and POST /api/funds) would advertise a partial ``Allow``. Each method is routed
    here as a request would be. Mounts are skipped: they match a path whatever the method, and answer
    their own 405s.
    """
    return [
        method
        for method in _ROUTABLE_METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in app.router.routes
            if not isinstance(route, Mount | Host)
        )
    ]


def _malformed_body_response(request: Request, detail: str) -> JSONResponse:
    return problem_response(
        400, MALFORMED_BODY, detail, title="Malformed request body", instance=request.url.path
    )


def _invalid_json_detail(error: RequestValidationError) -> str | None:
    """For a body that is not JSON: its syntax error and where (never the body itself); else None."""
    for item in error.errors():
        if item.get("type") != "json_invalid":
            continue
        reason = str((item.get("ctx") or {}).get("error", "invalid syntax"))
        location = item.get("loc", ())
        position = location[-1] if location and isinstance(location[-1], int) else None
        if position is None:
            return f"the request body is not valid JSON: {reason}"
        return f"the request body is not valid JSON: {reason} at {_text_position(error.body, position)}"
    return None


def _text_position(document: object, offset: int) -> str:
    if not isinstance(document, str):
        return f"character {offset}"
    line = document.count("\n", 0, offset) + 1
    column = offset - (document.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column} (character {offset})"


def _unparsable_body_detail(cause: BaseException) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"the request body is not UTF-8 JSON: {cause.reason} at byte {cause.start}"
    if isinstance(cause, RecursionError):
        return "the request body is not readable JSON: it is nested too deeply"
    if isinstance(cause, ValueError):
        # What json raises besides a syntax error: an integer literal beyond Python's 4300 digits.
        return "the request body is not readable JSON: a number in it has too many digits"
    return "the request body is not readable JSON"


def internal_error_response(*, instance: str | None, request_id: str | None) -> JSONResponse:
    """The 500 problem of an unexpected error: no details, but the request id to find it in the logs."""
    return problem_response(
        500,
        "INTERNAL_ERROR",
        "the server failed to handle this request; it has been logged",
        instance=instance,
        extra={"requestId": request_id},
    )


async def _handle_unexpected(request: Request, error: Exception) -> JSONResponse:
    # Last resort, in Starlette's outermost middleware: errors of the app are rendered (with the request
    # id) by RequestMiddleware; only a failure outside it, in that middleware itself, lands here.
    request_id = getattr(request.state, "request_id", None)
    _log.exception(
        "unhandled_error", path=request.url.path, error_type=type(error).__name__, request_id=request_id
    )
    return internal_error_response(instance=request.url.path, request_id=request_id)


def _describe_validation_error(item: Mapping[str, Any]) -> dict[str, Any]:
    # Only location, message and type: the raw input is not echoed back.
    location = [str(part) for part in item.get("loc", ()) if part != "body"]
    return {
        "field": ".".join(location) or "(body)",
        "message": str(item.get("msg", "invalid")),
        "type": str(item.get("type", "value_error")),
    }


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(key): value if isinstance(value, str | int | float | bool | None) else str(value)
        for key, value in item.items()
    }


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the problem body for each status.

    ``descriptions`` overrides the generic wording where an endpoint gives a status a narrower meaning.
    """
    chosen = {**_PROBLEM_DESCRIPTIONS, **(descriptions or {})}
    responses: dict[int | str, dict[str, Any]] = {
        status: {
            "model": Problem,
            "description": chosen.get(status, _reason(status)),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
    if 503 in responses:
        responses[503]["headers"] = {"Retry-After": _RETRY_AFTER_DOC}
    if 429 in responses:
        responses[429]["headers"] = {"Retry-After": _JOBS_RETRY_AFTER_DOC}
    return responses


_RETRY_AFTER_DOC: dict[str, Any] = {
    "description": "Seconds to wait before retrying (database outages).",
    "schema": {"type": "integer", "minimum": 0},
}


_JOBS_RETRY_AFTER_DOC: dict[str, Any] = {
    "description": "Seconds to wait before submitting again (a running job may have finished by then).",
    "schema": {"type": "integer", "minimum": 0},
}


_PROBLEM_DESCRIPTIONS = {
    400: "The request body is not readable JSON (`MALFORMED_BODY`), or stage validation rejected the "
    "input (enforce mode: unknown stage or sum mismatch).",
    401: "Missing or invalid API key.",
    403: "Not allowed.",
    404: "Not found.",
    405: "The path exists but not with this method; `Allow` lists the methods it serves.",
    409: "Conflict: a version changed since read, or a unique name is taken.",
    415: "The request body is not sent as JSON (`Content-Type: application/json`).",
    422: "Malformed input (in every validation mode), or a limit was exceeded.",
    429: "Too many queued and running jobs for this client (`TOO_MANY_JOBS`); `Retry-After` says when "
    "to retry.",
    503: "A backing store is unavailable; `Retry-After` (when sent) says when to try again.",
}
