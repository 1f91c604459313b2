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
from starlette.exceptions import HTTPException as StarletteHTTPException

from fundmodel.apimodel import ApiModel
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
    WebhookPayloadError,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:fundmodel:problem:"
MAX_REPORTED_ERRORS = 50

# Most specific first: StageValidationError is an InvalidInputError but means 400, not 422.
_STATUS_BY_ERROR: tuple[tuple[type[FundmodelError], int], ...] = (
    (StageValidationError, 400),
    (WebhookPayloadError, 400),
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
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
    status = status_for(error)
    if status >= 500:
        _log.error("request_failed", code=error.code, detail=error.detail, path=request.url.path)
    extra: dict[str, Any] = {key: error.extra.get(key) for key in _EXTRA_FIELDS}
    if isinstance(error, InvalidInputError):
        extra["field"] = error.field
        if error.errors:
            extra["errors"] = [_jsonable(item) for item in error.errors[:MAX_REPORTED_ERRORS]]
    headers = {"WWW-Authenticate": 'Bearer realm="fundmodel"'} if status == 401 else None
    return problem_response(
        status,
        error.code,
        error.detail,
        title=error.title,
        instance=request.url.path,
        extra=extra,
        headers=headers,
    )


async def _handle_request_validation(request: Request, error: RequestValidationError) -> JSONResponse:
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
    code = _reason(error.status_code).upper().replace(" ", "_").replace("-", "_")
    detail = error.detail if isinstance(error.detail, str) else _reason(error.status_code)
    return problem_response(
        error.status_code,
        code,
        detail,
        instance=request.url.path,
        headers=getattr(error, "headers", None),
    )


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


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the problem body for each status."""
    return {
        status: {
            "model": Problem,
            "description": _PROBLEM_DESCRIPTIONS.get(status, _reason(status)),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


_PROBLEM_DESCRIPTIONS = {
    400: "Stage validation rejected the input (enforce mode: unknown stage or sum mismatch).",
    401: "Missing or invalid API key.",
    403: "Not allowed.",
    404: "Not found.",
    409: "Conflict: a version changed since read, or a unique name is taken.",
    422: "Malformed input (in every validation mode), or a limit was exceeded.",
    503: "A backing store is unavailable.",
}
