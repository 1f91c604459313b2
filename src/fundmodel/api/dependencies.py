"""FastAPI dependencies: app state, settings, the authenticated principal, stage validation, paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from fundmodel.api.stage_validation import STATE_KEY, RequestContext, RequestStageValidation
from fundmodel.api.state import AppState
from fundmodel.auth.models import ANONYMOUS_DEV_PRINCIPAL, Principal
from fundmodel.auth.service import MAX_PRESENTED_KEY_LENGTH, authenticate_hash, hash_key
from fundmodel.db.availability import unavailable_reason
from fundmodel.errors import AuthenticationError
from fundmodel.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, decode_cursor
from fundmodel.settings import Settings, get_settings

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The API key, as an alternative to Bearer."
)


# Dependencies without I/O are ``async def``: FastAPI runs plain ``def`` dependencies in the thread pool,
# and each such hop costs more than the work they do.


async def get_app_state(request: Request) -> AppState:
    state: AppState = request.app.state.fundmodel
    return state


AppStateDep = Annotated[AppState, Depends(get_app_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_engine(state: AppStateDep) -> Engine:
    return state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


async def get_principal(
    request: Request,
    state: AppStateDep,
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal:
    """The calling client; anonymous only in the embedded development default.

    Precedence (docs/api.md "Authentication"): the key is taken from ``Authorization: Bearer`` and from
    ``X-API-Key``; when both are sent they must carry the same key (401 ``CONFLICTING_API_KEYS``
    otherwise: guessing which one the client meant would authenticate it as someone it may not be).
    An ``Authorization`` header of another scheme is ignored beside ``X-API-Key`` (a proxy in front may
    use it) and is a 401 ``UNSUPPORTED_AUTH_SCHEME`` on its own, never the anonymous client.
    """
    # ``bearer`` and ``api_key`` declare the two schemes in the OpenAPI document; the headers are read
    # raw because the precedence needs what those parsers drop (another scheme, an empty or repeated header).
    del bearer, api_key
    presented, other_scheme = _presented_keys(request)
    if not presented:
        if other_scheme:
            # The scheme is not quoted back: a key sent without "Bearer " would be its "scheme".
            raise AuthenticationError(
                "the Authorization header must use the Bearer scheme: send "
                "'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                code="UNSUPPORTED_AUTH_SCHEME",
            )
        if settings.anonymous_dev_client_allowed:
            return ANONYMOUS_DEV_PRINCIPAL
        raise AuthenticationError(
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
            "(create one with `fundmodel keys create NAME`)"
        )
    if len(set(presented)) > 1:
        raise AuthenticationError(
            "the request carries more than one API key (Authorization: Bearer and X-API-Key differ, "
            "or a header is repeated); send one key",
            code="CONFLICTING_API_KEYS",
        )
    key = presented[0]
    if not key or len(key) > MAX_PRESENTED_KEY_LENGTH:
        raise AuthenticationError("the API key is unknown or revoked", code="INVALID_API_KEY")
    key_hash = hash_key(key)
    principal = state.principals.get(key_hash)
    if principal is not None:
        return principal
    try:
        principal = await anyio.to_thread.run_sync(authenticate_hash, state.engine, key_hash)
    except SQLAlchemyError as error:
        # Stale-if-error (auth/cache.py): a key verified in the last minutes keeps working through an
        # outage, so the endpoints that need no database still serve it.
        recent = state.principals.get_if_store_unavailable(key_hash) if unavailable_reason(error) else None
        if recent is None:
            raise  # an outage becomes 503 at the edge (api/problems.py), anything else a 500
        return recent
    if principal is None:
        state.principals.discard(key_hash)
        raise AuthenticationError("the API key is unknown or revoked", code="INVALID_API_KEY")
    state.principals.put(key_hash, principal)
    return principal


def _presented_keys(request: Request) -> tuple[list[str], bool]:
    """The keys presented (Bearer credentials, X-API-Key values) and whether another scheme was sent."""
    presented: list[str] = []
    other_scheme = False
    for value in request.headers.getlist("authorization"):
        scheme, _, credentials = value.strip().partition(" ")
        if scheme.lower() == "bearer":
            presented.append(credentials.strip())
        else:
            other_scheme = True
    presented.extend(value.strip() for value in request.headers.getlist("x-api-key"))
    return presented, other_scheme


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_stage_validation(
    request: Request, state: AppStateDep, principal: PrincipalDep
) -> RequestStageValidation:
    """This request's stage validation (after authentication: the cohort depends on the client)."""
    route = request.scope.get("route")
    endpoint = getattr(route, "path", request.url.path)
    context = RequestContext(
        endpoint=endpoint,
        user_agent=request.headers.get("user-agent"),
        request_id=getattr(request.state, "request_id", None),
    )
    validation = state.validator.for_request(principal, context)
    setattr(request.state, STATE_KEY, validation)
    return validation


StageValidationDep = Annotated[RequestStageValidation, Depends(get_stage_validation)]


@dataclass(frozen=True, slots=True)
class PageParams:
    """``limit`` and the decoded ``cursor`` of a keyset-paginated list."""

    limit: int
    after_id: int | None


async def get_page(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`nextCursor` of the previous page.")
    ] = None,
) -> PageParams:
    return PageParams(limit, decode_cursor(cursor))


PageDep = Annotated[PageParams, Depends(get_page)]
