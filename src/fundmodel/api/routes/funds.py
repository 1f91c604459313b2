"""Funds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from fundmodel.api.dependencies import EngineDep, PageDep, PrincipalDep
from fundmodel.api.openapi_docs import plain_responses
from fundmodel.funds import service
from fundmodel.funds.models import Fund, FundCreate, FundPage

router = APIRouter(prefix="/api/funds", tags=["funds"])

FundId = Annotated[int, Path(alias="fundId", ge=1, le=2**31 - 1)]


@router.get("", response_model=FundPage, responses=plain_responses())
def list_funds(engine: EngineDep, _principal: PrincipalDep, page: PageDep) -> FundPage:
    return service.list_funds(engine, limit=page.limit, after_id=page.after_id)


@router.post("", response_model=Fund, status_code=201, responses=plain_responses(409, body=True))
def create_fund(engine: EngineDep, _principal: PrincipalDep, body: FundCreate) -> Fund:
    return service.create_fund(engine, body)


@router.get("/{fundId}", response_model=Fund, responses=plain_responses(404))
def get_fund(engine: EngineDep, _principal: PrincipalDep, fund_id: FundId) -> Fund:
    return service.get_fund(engine, fund_id)
