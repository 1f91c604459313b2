"""Company queries, the all-or-nothing allocation update and the update of one company's data."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, insert, select, update
from sqlalchemy.exc import IntegrityError

from fundmodel.companies.models import (
    AllocationChange,
    AllocationResult,
    Company,
    CompanyCreate,
    CompanyPage,
    CompanyStatus,
    CompanyUpdate,
)
from fundmodel.db.stage_guard import refused_by_stage_guard
from fundmodel.db.tables import portfolio_companies
from fundmodel.db.values import as_utc
from fundmodel.errors import ConflictError, InvalidInputError, NotFoundError, StageValidationError
from fundmodel.funds.service import require_fund
from fundmodel.pagination import fetch_page
from fundmodel.stages import STAGE_ORDER, Stage, normalize_stage

_SHOWN_IDS = 10
INVALID_COMPANY_DATA = "INVALID_COMPANY_DATA"
# The forecast columns a create or an update writes as sent (snake_case, as in the models and the table).
_FORECAST_FIELDS = (
    "entry_date",
    "ownership",
    "last_round_post_money",
    "last_round_date",
    "status",
    "realized_proceeds",
)
_UPDATABLE_FIELDS = ("invested", *_FORECAST_FIELDS)


@dataclass(frozen=True, slots=True)
class StageFilter:
    """A stage to filter by: a canonical stage (matches every stored spelling of it) or a raw value."""

    canonical: Stage | None
    raw: str

    def matches(self, stored: str) -> bool:
        if self.canonical is not None:
            return normalize_stage(stored).canonical is self.canonical
        return stored.strip() == self.raw


def list_companies(
    engine: Engine,
    fund_id: int,
    *,
    stage: StageFilter | None,
    limit: int,
    after_id: int | None,
) -> CompanyPage:
    table = portfolio_companies
    query = select(table).where(table.c.fund_id == fund_id)
    with engine.connect() as connection:
        require_fund(connection, fund_id)
        if stage is not None:
            spellings = _stored_spellings(connection, fund_id, stage)
            if not spellings:
                return CompanyPage(items=[], next_cursor=None)
            query = query.where(table.c.stage.in_(spellings))
        page = fetch_page(connection, query, table.c.id, limit=limit, after_id=after_id, to_item=to_company)
    return CompanyPage(items=page.items, next_cursor=page.next_cursor)


def create_company(engine: Engine, fund_id: int, body: CompanyCreate, stored_stage: str) -> Company:
    """Insert a company; ``stored_stage`` is what the validation layer decided to store.

    Under off/warn that may be an unknown name, which the canonical-stage guard (``db constrain-stages``)
    refuses: that is the client's input being rejected, a 400 ``STAGE_GUARD_REJECTED``, never a 500.
    """
    check_company_data(body.status, body.realized_proceeds)
    now = datetime.now(UTC)
    try:
        with engine.begin() as connection:
            require_fund(connection, fund_id)
            row = connection.execute(
                insert(portfolio_companies)
                .values(
                    fund_id=fund_id,
                    name=body.name,
                    stage=stored_stage,
                    invested=body.invested,
                    reserve_allocation=body.reserve_allocation,
                    **{name: getattr(body, name) for name in _FORECAST_FIELDS},
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*portfolio_companies.c)
            ).one()
    except IntegrityError as error:
        if _refused_by_guard(error):
            raise _stage_guard_rejected(stored_stage, field="stage") from None
        raise
    return to_company(row._mapping)


def check_company_data(status: CompanyStatus, realized_proceeds: float | None) -> None:
    """Realized proceeds belong to a position that has ended: 422 ``INVALID_COMPANY_DATA`` otherwise.

    An exit without its proceeds would leave the forecast to guess what the fund received; a write-off
    without them recovered nothing (0).
    """
    if status is CompanyStatus.ACTIVE and realized_proceeds is not None:
        raise InvalidInputError(
            "realizedProceeds: an active company has no realized proceeds; send status `exited` or "
            "`written_off` with them, or realizedProceeds null",
            code=INVALID_COMPANY_DATA,
            field="realizedProceeds",
        )
    if status is CompanyStatus.EXITED and realized_proceeds is None:
        raise InvalidInputError(
            "realizedProceeds: an exited company needs the proceeds the fund received (0 if none)",
            code=INVALID_COMPANY_DATA,
            field="realizedProceeds",
        )


def get_company(engine: Engine, fund_id: int, company_id: int) -> Company:
    with engine.connect() as connection:
        require_fund(connection, fund_id)
        row = connection.execute(_company_query(fund_id, company_id)).first()
    if row is None:
        raise NotFoundError(f"company {company_id} is not in fund {fund_id}")
    return to_company(row._mapping)


def update_company(engine: Engine, fund_id: int, company_id: int, body: CompanyUpdate) -> Company:
    """Change the fields sent (null clears an optional one) if ``body.version`` is still current (else 409).

    The consistency of status and proceeds is judged on the company as it would be after the update.
    """
    changes = {name: getattr(body, name) for name in _UPDATABLE_FIELDS if name in body.model_fields_set}
    if not changes:
        raise InvalidInputError("nothing to update: send at least one field besides version", field="(body)")
    table = portfolio_companies
    with engine.begin() as connection:
        require_fund(connection, fund_id)
        current = connection.execute(_company_query(fund_id, company_id).with_for_update()).first()
        if current is None:
            raise NotFoundError(f"company {company_id} is not in fund {fund_id}")
        stored = current._mapping
        if stored["version"] != body.version:
            raise _version_conflict([(company_id, body.version, int(stored["version"]))])
        status = CompanyStatus(changes.get("status", stored["status"]))
        proceeds = (
            changes["realized_proceeds"] if "realized_proceeds" in changes else stored["realized_proceeds"]
        )
        check_company_data(status, proceeds)
        try:
            result = connection.execute(
                update(table)
                .where(table.c.id == company_id, table.c.version == body.version)
                .values(**changes, version=body.version + 1, updated_at=datetime.now(UTC))
            )
        except IntegrityError as error:
            if _refused_by_guard(error):
                raise _stored_stage_not_canonical(company_id) from None
            raise
        if result.rowcount != 1:
            # A writer slipped in between the locked read and this write (SQLite has no row locks).
            raise _version_conflict([(company_id, body.version, None)])
        row = connection.execute(select(table).where(table.c.id == company_id)).one()
    return to_company(row._mapping)


def _company_query(fund_id: int, company_id: int) -> Select[Any]:
    table = portfolio_companies
    return select(table).where(table.c.fund_id == fund_id, table.c.id == company_id)


def _stage_guard_rejected(value: str, *, field: str) -> StageValidationError:
    """The problem for an unknown stage that off/warn accepted but the database's guard refuses to store."""
    suggestions = [stage.value for stage in normalize_stage(value).suggestions]
    return StageValidationError(
        f"{field} {value!r} is not a canonical stage, and this database only stores canonical stages "
        "(the guard added by `fundmodel db constrain-stages`), so it cannot be stored in any mode; "
        "send a canonical stage name",
        code="STAGE_GUARD_REJECTED",
        field=field,
        extra={
            "invalid": [value],
            "suggestions": {value: suggestions},
            "validStages": [stage.value for stage in STAGE_ORDER],
        },
    )


def update_allocations(engine: Engine, fund_id: int, changes: list[AllocationChange]) -> AllocationResult:
    """Apply every change or none: unknown companies are a 404, any stale version a 409."""
    ids = [change.company_id for change in changes]
    duplicates = sorted(i for i, count in Counter(ids).items() if count > 1)
    if duplicates:
        raise InvalidInputError(
            f"each company may appear once per batch; repeated: {_show(duplicates)}",
            code="DUPLICATE_COMPANY",
            field="allocations",
        )
    table = portfolio_companies
    now = datetime.now(UTC)
    with engine.begin() as connection:
        require_fund(connection, fund_id)
        current = {
            int(row.id): int(row.version)
            for row in connection.execute(
                select(table.c.id, table.c.version)
                .where(table.c.fund_id == fund_id, table.c.id.in_(ids))
                .with_for_update()
            )
        }
        missing = sorted(set(ids) - current.keys())
        if missing:
            raise NotFoundError(f"companies not in fund {fund_id}: {_show(missing)}")
        stale = [change for change in changes if current[change.company_id] != change.version]
        if stale:
            raise _conflict(stale, current)
        for change in changes:
            try:
                result = connection.execute(
                    update(table)
                    .where(table.c.id == change.company_id, table.c.version == change.version)
                    .values(
                        reserve_allocation=change.reserve_allocation,
                        version=change.version + 1,
                        updated_at=now,
                    )
                )
            except IntegrityError as error:
                if _refused_by_guard(error):
                    raise _stored_stage_not_canonical(change.company_id) from None
                raise
            if result.rowcount != 1:
                # A writer slipped in between the locked read and this write (SQLite has no row
                # locks); leaving the block by raising rolls back the whole batch.
                raise _conflict([change], current)
        rows = connection.execute(select(table).where(table.c.id.in_(ids)).order_by(table.c.id))
        return AllocationResult(items=[to_company(row._mapping) for row in rows])


def to_company(row: Any) -> Company:
    return Company(
        id=row["id"],
        fund_id=row["fund_id"],
        name=row["name"],
        stage=row["stage"],
        canonical_stage=normalize_stage(row["stage"]).canonical,
        invested=float(row["invested"]),
        reserve_allocation=float(row["reserve_allocation"]),
        entry_date=row["entry_date"],
        ownership=row["ownership"],
        last_round_post_money=_optional_float(row["last_round_post_money"]),
        last_round_date=row["last_round_date"],
        status=CompanyStatus(row["status"]),
        realized_proceeds=_optional_float(row["realized_proceeds"]),
        version=row["version"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )


def _stored_spellings(connection: Connection, fund_id: int, stage: StageFilter) -> list[str]:
    # Stage columns still hold legacy spellings; normalize the (few) distinct values in Python
    # instead of in SQL, then filter with an indexable IN list.
    table = portfolio_companies
    distinct = connection.execute(
        select(table.c.stage).where(table.c.fund_id == fund_id).distinct()
    ).scalars()
    return sorted(value for value in distinct if stage.matches(value))


def _refused_by_guard(error: IntegrityError) -> bool:
    return refused_by_stage_guard(error, portfolio_companies.name, portfolio_companies.c.stage.name)


def _stored_stage_not_canonical(company_id: int) -> ConflictError:
    # PostgreSQL checks a CHECK constraint on every updated row: while the guard is NOT VALID (added, but a
    # legacy value slipped in before VALIDATE), that row cannot be updated at all until it is normalized.
    # (The failed statement aborted the transaction, so the stored value cannot be read back here.)
    return ConflictError(
        f"company {company_id} still holds a non-canonical stage, which the canonical-stage guard "
        "refuses to keep on any update; nothing was updated — an operator must normalize it "
        "(`fundmodel db normalize-stages --apply`, or `--map` for an unknown value) and retry",
        code="STORED_STAGE_NOT_CANONICAL",
    )


def _conflict(stale: list[AllocationChange], current: dict[int, int]) -> ConflictError:
    return _version_conflict([(c.company_id, c.version, current.get(c.company_id)) for c in stale])


def _version_conflict(stale: list[tuple[int, int, int | None]]) -> ConflictError:
    """The 409 of a stale version: (company id, version sent, version stored or None when unknown)."""
    return ConflictError(
        f"{len(stale)} compan{'y was' if len(stale) == 1 else 'ies were'} changed since read "
        f"({_show([company_id for company_id, _, _ in stale])}); nothing was updated — re-read and retry",
        code="VERSION_CONFLICT",
        extra={
            "conflicts": [
                {"companyId": company_id, "expectedVersion": sent, "currentVersion": stored}
                for company_id, sent, stored in stale[:100]
            ]
        },
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _show(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:_SHOWN_IDS])
    return shown + (f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")
