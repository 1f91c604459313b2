"""Companies of a fund and their reserve allocations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from fundmodel.api.dependencies import EngineDep, PageDep, PrincipalDep, StageValidationDep
from fundmodel.api.openapi_docs import plain_responses, validated_responses
from fundmodel.api.routes.funds import FundId
from fundmodel.companies import service
from fundmodel.companies.models import (
    AllocationBatch,
    AllocationResult,
    Company,
    CompanyCreate,
    CompanyCreated,
    CompanyPage,
    CompanyUpdate,
)
from fundmodel.stages import MAX_STAGE_NAME_LENGTH

router = APIRouter(prefix="/api/funds/{fundId}", tags=["companies"])

CompanyId = Annotated[int, Path(alias="companyId", ge=1, le=2**31 - 1)]


@router.get(
    "/companies",
    response_model=CompanyPage,
    responses=validated_responses(200, 404),
    summary="List a fund's companies (keyset pages; the stage filter matches legacy spellings too)",
)
def list_companies(
    engine: EngineDep,
    validation: StageValidationDep,
    fund_id: FundId,
    page: PageDep,
    stage: Annotated[
        str | None,
        Query(
            description="Only companies at this stage (any spelling of it).",
            # Published, not enforced here: the stage layer judges the length itself, so a name that
            # is too long is the same MALFORMED_STAGE problem as in a body, in every mode.
            json_schema_extra={"maxLength": MAX_STAGE_NAME_LENGTH},
        ),
    ] = None,
) -> CompanyPage:
    stage_filter = None
    if stage is not None:
        decision = validation.stage(stage, field="stage")
        stage_filter = service.StageFilter(decision.stage, decision.stored_value)
    result = service.list_companies(
        engine, fund_id, stage=stage_filter, limit=page.limit, after_id=page.after_id
    )
    return result.model_copy(update={"warnings": validation.warnings})


@router.post(
    "/companies",
    response_model=CompanyCreated,
    status_code=201,
    responses=validated_responses(201, 404, body=True),
)
def create_company(
    engine: EngineDep, validation: StageValidationDep, fund_id: FundId, body: CompanyCreate
) -> CompanyCreated:
    decision = validation.stage(body.stage, field="stage")
    company = service.create_company(engine, fund_id, body, decision.stored_value)
    return CompanyCreated(**company.model_dump(), warnings=validation.warnings)


@router.patch(
    "/allocations",
    response_model=AllocationResult,
    responses=plain_responses(404, 409, body=True),
    summary="Update reserve allocations: all or nothing, optimistic locking on each version",
)
def update_allocations(
    engine: EngineDep, _principal: PrincipalDep, fund_id: FundId, body: AllocationBatch
) -> AllocationResult:
    return service.update_allocations(engine, fund_id, body.allocations)


@router.get(
    "/companies/{companyId}",
    response_model=Company,
    responses=plain_responses(404),
    summary="One company of a fund, with its version",
)
def get_company(
    engine: EngineDep, _principal: PrincipalDep, fund_id: FundId, company_id: CompanyId
) -> Company:
    return service.get_company(engine, fund_id, company_id)


@router.patch(
    "/companies/{companyId}",
    response_model=Company,
    responses=plain_responses(404, 409, body=True),
    summary="Update a company's data (entry, ownership, last round, status): optimistic locking on version",
)
def update_company(
    engine: EngineDep, _principal: PrincipalDep, fund_id: FundId, company_id: CompanyId, body: CompanyUpdate
) -> Company:
    return service.update_company(engine, fund_id, company_id, body)
