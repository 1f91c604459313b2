"""FastAPI dependencies: app state, settings, the authenticated principal, stage validation, paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from fundmodel.api.stage_validation import STATE_KEY, RequestContext, RequestStageValidation
from fundmodel.api.state import AppState
from fundmodel.auth.models import ANONYMOUS_DEV_PRINCIPAL, Principal
from fundmodel.auth.service import MAX_PRESENTED_KEY_LENGTH, authenticate_hash, hash_key
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
    state: AppStateDep,
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal:
    """The calling client; anonymous only in the embedded development default."""
    presented = bearer.credentials if bearer is not None else api_key
    if presented is None:
        if settings.anonymous_dev_client_allowed:
            return ANONYMOUS_DEV_PRINCIPAL
        raise AuthenticationError(
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
            "(create one with `fundmodel keys create NAME`)"
        )
    presented = presented.strip()
    if not presented or len(presented) > MAX_PRESENTED_KEY_LENGTH:
        raise AuthenticationError("the API key is unknown or revoked", code="INVALID_API_KEY")
    key_hash = hash_key(presented)
    principal = state.principals.get(key_hash)
    if principal is None:
        principal = await anyio.to_thread.run_sync(authenticate_hash, state.engine, key_hash)
        if principal is None:
            raise AuthenticationError("the API key is unknown or revoked", code="INVALID_API_KEY")
        state.principals.put(key_hash, principal)
    return principal


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
