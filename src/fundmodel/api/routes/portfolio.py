"""Portfolio strategies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from fundmodel.api.dependencies import EngineDep, PageDep, PrincipalDep, StageValidationDep
from fundmodel.api.openapi_docs import plain_responses, validated_responses
from fundmodel.portfolio import service
from fundmodel.portfolio.models import (
    Strategy,
    StrategyCreate,
    StrategyPage,
    StrategyReplace,
    StrategyWritten,
)

router = APIRouter(prefix="/api/portfolio/strategies", tags=["portfolio"])

StrategyId = Annotated[int, Path(alias="id", ge=1, le=2**31 - 1)]


@router.post(
    "", response_model=StrategyWritten, status_code=201, responses=validated_responses(201, body=True)
)
def create_strategy(
    engine: EngineDep, validation: StageValidationDep, body: StrategyCreate
) -> StrategyWritten:
    weights = validation.distribution(body.stage_allocation, field="stageAllocation")
    strategy = service.create_strategy(engine, body.name, weights)
    return StrategyWritten(**strategy.model_dump(), warnings=validation.warnings)


@router.get("", response_model=StrategyPage, responses=plain_responses())
def list_strategies(engine: EngineDep, _principal: PrincipalDep, page: PageDep) -> StrategyPage:
    return service.list_strategies(engine, limit=page.limit, after_id=page.after_id)


@router.get("/{id}", response_model=Strategy, responses=plain_responses(404))
def get_strategy(engine: EngineDep, _principal: PrincipalDep, strategy_id: StrategyId) -> Strategy:
    return service.get_strategy(engine, strategy_id)


@router.put("/{id}", response_model=StrategyWritten, responses=validated_responses(200, 404, 409, body=True))
def replace_strategy(
    engine: EngineDep,
    validation: StageValidationDep,
    strategy_id: StrategyId,
    body: StrategyReplace,
) -> StrategyWritten:
    weights = validation.distribution(body.stage_allocation, field="stageAllocation")
    strategy = service.replace_strategy(
        engine, strategy_id, body.name, weights, expected_version=body.version
    )
    return StrategyWritten(**strategy.model_dump(), warnings=validation.warnings)
