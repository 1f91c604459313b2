"""ASGI middleware: request ids, HTTP metrics by route template, the stage-validation headers, and 500s.

Pure ASGI (no BaseHTTPMiddleware) so the per-request overhead stays a few microseconds. Unexpected errors
are rendered here rather than by Starlette's outermost ServerErrorMiddleware, which runs outside this
middleware: only here do the 500 problem and its ``unhandled_error`` log line know the request id.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fundmodel.api.problems import internal_error_response
from fundmodel.api.stage_validation import STATE_KEY, RequestStageValidation
from fundmodel.observability.metrics import ServiceMetrics

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_log = structlog.get_logger("fundmodel.api")


class RequestMiddleware:
    """Assigns a request id, records HTTP metrics and adds stage-validation headers to every response."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started_response = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                validation: RequestStageValidation | None = state.get(STATE_KEY)
                if validation is not None:
                    headers.extend(
                        (name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in validation.response_headers().items()
                    )
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_headers)
            except Exception as error:
                if started_response:
                    # Too late for a problem document: the outermost handler logs it (with the request
                    # id from the scope state) and the server aborts the response.
                    raise
                path = str(scope.get("path", ""))
                _log.exception("unhandled_error", path=path, error_type=type(error).__name__)
                response = internal_error_response(instance=path, request_id=request_id)
                await response(scope, receive, send_with_headers)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                self.metrics.observe_http(template, scope["method"], status, time.perf_counter() - started)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _SAFE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex
