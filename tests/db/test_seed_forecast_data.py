"""The demo fund carries what a forecast needs, and every value passes the API's own rules."""

from __future__ import annotations

from sqlalchemy import Engine

from fundmodel.companies.models import CompanyCreate, CompanyStatus
from fundmodel.companies.service import check_company_data, list_companies
from fundmodel.db.seed import DEMO_COMPANIES, DEMO_FUND_NAME, DEMO_STRATEGY, seed_demo
from fundmodel.funds.models import FundCreate
from fundmodel.funds.service import check_terms, get_fund
from fundmodel.portfolio.service import get_strategy
from fundmodel.stages import normalize_stage


def test_demo_fund_has_terms_actuals_and_a_strategy(engine: Engine) -> None:
    fund = get_fund(engine, seed_demo(engine).fund_id)
    assert fund.strategy_id is not None
    assert get_strategy(engine, fund.strategy_id).stage_allocation == DEMO_STRATEGY
    assert fund.reserve_ratio == 0.45
    assert fund.fund_life_years == 10.0
    assert fund.paid_in is not None
    assert fund.distributed is not None
    # The stored fund is one the API would have accepted (the engine's rules included).
    check_terms(
        FundCreate.model_validate({**fund.model_dump(exclude={"id", "created_at"}), "name": DEMO_FUND_NAME})
    )
    invested = sum(company.invested for company in DEMO_COMPANIES)
    assert invested < fund.paid_in <= fund.committed_capital


def test_demo_companies_carry_forecast_data_the_api_accepts(engine: Engine) -> None:
    fund_id = seed_demo(engine).fund_id
    companies = list_companies(engine, fund_id, stage=None, limit=100, after_id=None).items
    assert len(companies) == len(DEMO_COMPANIES)
    statuses = {company.status for company in companies}
    assert statuses == {CompanyStatus.ACTIVE, CompanyStatus.EXITED, CompanyStatus.WRITTEN_OFF}
    for company in companies:
        assert normalize_stage(company.stage).canonical is not None, company.stage
        check_company_data(company.status, company.realized_proceeds)
        CompanyCreate.model_validate(company.model_dump(include=set(CompanyCreate.model_fields)))
        assert company.entry_date is not None
        assert company.last_round_date is not None
        assert company.entry_date <= company.last_round_date
        if company.status is not CompanyStatus.ACTIVE:
            assert company.reserve_allocation == 0.0, company.name
    exited = [company for company in companies if company.status is CompanyStatus.EXITED]
    assert sum(company.realized_proceeds or 0.0 for company in exited) > 0
