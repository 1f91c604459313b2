"""Reading the stage-usage ledger back: per client, across clients, and one client's own usage.

Every query reads ``stage_usage`` (see :mod:`fundmodel.db.usage_tables`) from a UTC day on, inclusive, with
SQLAlchemy Core that runs unchanged on SQLite and PostgreSQL. Rows are summed in the database per
(client, endpoint, kind, spelling) and folded into per-client records here: the ledger bounds the distinct
spellings per client and day, so the grouped result stays small.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, func, select

from fundmodel.auth.models import Principal
from fundmodel.auth.service import list_keys
from fundmodel.db.usage_tables import OTHER_SPELLINGS, stage_usage
from fundmodel.db.values import as_utc
from fundmodel.errors import InvalidInputError
from fundmodel.observability.metrics import DEFAULT_VALIDATED_ENDPOINTS, OTHER
from fundmodel.stages import MatchKind, normalize_stage
from fundmodel.usage.models import ClientOffender, KindCount, OffenderReport, OwnUsage, OwnUsageEntry

DEPRECATED_KINDS: tuple[str, ...] = ("alias", "unknown", "sum", "rejected")
"""The kinds that mean a client relies on deprecated handling (everything but ``valid``)."""

DEFAULT_WINDOW_DAYS = 30
"""The window of a report whose ``since`` is not given (shortened to the retention when that is shorter)."""
WINDOW_PATTERN = r"^[1-9][0-9]{0,4}d$"
"""A window as ``since`` takes it: a whole number of days, ``7d``."""
MAX_WINDOW_CHARS = 6
WINDOW_SCHEMA: dict[str, object] = {"pattern": WINDOW_PATTERN, "maxLength": MAX_WINDOW_CHARS}
"""What OpenAPI says of ``since``; checked by :func:`window_start`, so a bad one is a problem naming it."""
WINDOW_BEYOND_RETENTION = "USAGE_WINDOW_BEYOND_RETENTION"
"""The problem code of a window longer than the configured retention (a setting the schema cannot state)."""
MAX_OWN_USAGE_ENTRIES = 500
"""Entries one self-service answer lists; the ledger bounds spellings per day, not over the window."""


@dataclass(frozen=True, slots=True)
class ClientUsage:
    """One client's validations of the asked-for kinds since a day, summed over days, endpoints and fields.

    ``endpoints`` and ``spellings`` are ordered by volume (largest first, then by name); ``spellings``
    leaves out the empty spelling of a renormalized or rejected sum. ``client_name`` is the key's name
    when it was last counted, so a client whose key was revoked since is still named.
    """

    client_id: str
    client_name: str
    count: int
    last_seen_at: datetime
    endpoints: tuple[str, ...]
    spellings: tuple[str, ...]
    kind_counts: tuple[tuple[str, int], ...] = ()
    """(kind, count) for each asked-for kind the client sent, largest first."""


@dataclass(frozen=True, slots=True)
class UsageLine:
    """One client's validations on one endpoint, field, kind and spelling since a day, summed over days."""

    endpoint: str
    field: str
    kind: str
    spelling: str
    count: int
    first_seen_at: datetime
    last_seen_at: datetime


def client_traffic(engine: Engine, since: date) -> dict[str, int]:
    """client_id -> validations of any kind (``valid`` included) from ``since`` on, inclusive."""
    total = func.sum(stage_usage.c.count)
    query = (
        select(stage_usage.c.client_id, total)
        .where(stage_usage.c.day >= since)
        .group_by(stage_usage.c.client_id)
    )
    with engine.connect() as connection:
        return {str(client_id): int(count) for client_id, count in connection.execute(query)}


def clients_with_kinds(
    engine: Engine, since: date, kinds: Collection[str], *, endpoint: str | None = None
) -> list[ClientUsage]:
    """Every client with validations of one of ``kinds`` from ``since`` on, largest count first.

    ``endpoint`` (a route template such as ``POST /api/funds/{fundId}/companies``) narrows the count to
    one endpoint. Ties are broken by ``client_id`` so the ranking is stable.
    """
    if not kinds:
        return []
    query = (
        select(
            stage_usage.c.client_id,
            stage_usage.c.client_name,
            stage_usage.c.endpoint,
            stage_usage.c.kind,
            stage_usage.c.spelling,
            func.sum(stage_usage.c.count).label("total"),
            func.max(stage_usage.c.last_seen_at).label("last_seen_at"),
        )
        .where(stage_usage.c.day >= since, stage_usage.c.kind.in_(sorted(kinds)))
        .group_by(
            stage_usage.c.client_id,
            stage_usage.c.client_name,
            stage_usage.c.endpoint,
            stage_usage.c.kind,
            stage_usage.c.spelling,
        )
    )
    if endpoint is not None:
        query = query.where(stage_usage.c.endpoint == endpoint)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    accumulators: dict[str, _ClientAccumulator] = {}
    for row in rows:
        client_id = str(row.client_id)
        accumulator = accumulators.setdefault(client_id, _ClientAccumulator(client_id))
        accumulator.add(
            name=str(row.client_name),
            endpoint=str(row.endpoint),
            kind=str(row.kind),
            spelling=str(row.spelling),
            count=int(row.total),
            last_seen_at=as_utc(row.last_seen_at),
        )
    usages = [accumulator.result() for accumulator in accumulators.values()]
    return sorted(usages, key=lambda usage: (-usage.count, usage.client_id))


def usage_of_client(engine: Engine, client_id: str, since: date) -> list[UsageLine]:
    """``client_id``'s own validations of a deprecated kind from ``since`` on, largest count first.

    The one query the self-service view uses: it filters on the caller's ``client_id`` and on nothing
    the caller chooses, so no parameter can reach another client's rows.
    """
    query = (
        select(
            stage_usage.c.endpoint,
            stage_usage.c.field,
            stage_usage.c.kind,
            stage_usage.c.spelling,
            func.sum(stage_usage.c.count).label("total"),
            func.min(stage_usage.c.first_seen_at).label("first_seen_at"),
            func.max(stage_usage.c.last_seen_at).label("last_seen_at"),
        )
        .where(
            stage_usage.c.client_id == client_id,
            stage_usage.c.day >= since,
            stage_usage.c.kind.in_(DEPRECATED_KINDS),
        )
        .group_by(stage_usage.c.endpoint, stage_usage.c.field, stage_usage.c.kind, stage_usage.c.spelling)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    lines = [
        UsageLine(
            endpoint=str(row.endpoint),
            field=str(row.field),
            kind=str(row.kind),
            spelling=str(row.spelling),
            count=int(row.total),
            first_seen_at=as_utc(row.first_seen_at),
            last_seen_at=as_utc(row.last_seen_at),
        )
        for row in rows
    ]
    return sorted(lines, key=lambda line: (-line.count, line.endpoint, line.field, line.kind, line.spelling))


def window_start(window: str | None, *, retention_days: int, today: date) -> date:
    """The first UTC day a report over ``window`` (``"7d"``; None: the default) counts, inclusive.

    Days are the ledger's grain: ``7d`` starts on the day 7 days before ``today``, so it covers at least
    the last 7 x 24 hours. A window longer than the retention would silently report less than asked
    (the older days are pruned), so it is refused.
    """
    if window is None:
        days = min(DEFAULT_WINDOW_DAYS, retention_days)
    else:
        if len(window) > MAX_WINDOW_CHARS or not re.fullmatch(WINDOW_PATTERN, window):
            raise InvalidInputError(
                "since must be a whole number of days such as '7d'",
                field="since",
            )
        days = int(window[:-1])
        if days > retention_days:
            raise InvalidInputError(
                f"since must be at most {retention_days}d: usage is kept for {retention_days} days "
                "(STAGE_USAGE_RETENTION_DAYS)",
                code=WINDOW_BEYOND_RETENTION,
                field="since",
            )
    return today - timedelta(days=days)


REPORTED_ENDPOINTS: tuple[str, ...] = (*DEFAULT_VALIDATED_ENDPOINTS, OTHER)
"""What the ledger records as an endpoint: the validated endpoints' labels (the metrics' own), ``other``."""


def checked_endpoint(endpoint: str | None) -> str | None:
    """``endpoint`` when the ledger can hold it (a filter on anything else would silently match nothing)."""
    if endpoint is None or endpoint in REPORTED_ENDPOINTS:
        return endpoint
    raise InvalidInputError(
        f"endpoint must be one of: {', '.join(REPORTED_ENDPOINTS)}",
        field="endpoint",
    )


def utc_today() -> date:
    return datetime.now(UTC).date()


def own_usage(
    engine: Engine, principal: Principal, since: date, *, retention_days: int, sunset_at: datetime
) -> OwnUsage:
    """The self-service report of ``principal``: what it still sends, where, how often, and what instead.

    Reads only ``principal.client_id``'s rows (:func:`usage_of_client`): nothing the caller passes
    widens it to another client.
    """
    lines = usage_of_client(engine, principal.client_id, since)
    return OwnUsage(
        client_name=principal.name,
        since=since,
        retention_days=retention_days,
        sunset_at=sunset_at,
        total=sum(line.count for line in lines),
        usage=[_own_usage_entry(line) for line in lines[:MAX_OWN_USAGE_ENTRIES]],
        truncated=len(lines) > MAX_OWN_USAGE_ENTRIES,
    )


def offender_report(engine: Engine, since: date, *, endpoint: str | None = None) -> OffenderReport:
    """Every client that relied on deprecated handling from ``since`` on, ranked by volume, with its key.

    The key is named by its row in ``api_keys`` (name, display prefix, revoked or not), never by the key
    or its hash; a client without a key row (the anonymous development client, a deleted key) keeps the
    name the ledger last counted it under.
    """
    usages = clients_with_kinds(engine, since, DEPRECATED_KINDS, endpoint=endpoint)
    keys = {key.client_id: key for key in list_keys(engine)} if usages else {}
    clients = []
    for usage in usages:
        key = keys.get(usage.client_id)
        clients.append(
            ClientOffender(
                client_id=usage.client_id,
                key_name=key.name if key is not None else usage.client_name,
                key_prefix=key.prefix if key is not None else None,
                key_revoked=key is not None and key.revoked_at is not None,
                count=usage.count,
                kinds=[KindCount(kind=kind, count=count) for kind, count in usage.kind_counts],
                endpoints=list(usage.endpoints),
                spellings=list(usage.spellings),
                last_seen_at=usage.last_seen_at,
            )
        )
    return OffenderReport(
        since=since, endpoint=endpoint, total=sum(usage.count for usage in usages), clients=clients
    )


def _own_usage_entry(line: UsageLine) -> OwnUsageEntry:
    send_instead: str | None = None
    suggestions: list[str] = []
    if line.spelling and line.spelling != OTHER_SPELLINGS:
        match = normalize_stage(line.spelling)
        if match.canonical is not None and match.kind is MatchKind.ALIAS:
            send_instead = match.canonical.value
        suggestions = [stage.value for stage in match.suggestions]
    return OwnUsageEntry(
        endpoint=line.endpoint,
        field=line.field,
        kind=line.kind,
        spelling=line.spelling or None,
        count=line.count,
        first_seen_at=line.first_seen_at,
        last_seen_at=line.last_seen_at,
        send_instead=send_instead,
        suggestions=suggestions,
    )


class _ClientAccumulator:
    """Folds one client's grouped rows into a :class:`ClientUsage`."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.count = 0
        self.name = ""
        self.last_seen_at: datetime | None = None
        self.by_endpoint: defaultdict[str, int] = defaultdict(int)
        self.by_spelling: defaultdict[str, int] = defaultdict(int)
        self.by_kind: defaultdict[str, int] = defaultdict(int)

    def add(
        self, *, name: str, endpoint: str, kind: str, spelling: str, count: int, last_seen_at: datetime
    ) -> None:
        self.count += count
        # The name counted last wins: a key renamed or revoked is shown as it was most recently seen.
        if self.last_seen_at is None or last_seen_at > self.last_seen_at:
            self.last_seen_at = last_seen_at
            self.name = name
        self.by_endpoint[endpoint] += count
        self.by_kind[kind] += count
        if spelling:
            self.by_spelling[spelling] += count

    def result(self) -> ClientUsage:
        assert self.last_seen_at is not None  # one row was added before a result is asked for
        return ClientUsage(
            client_id=self.client_id,
            client_name=self.name,
            count=self.count,
            last_seen_at=self.last_seen_at,
            endpoints=_by_volume(self.by_endpoint.items()),
            spellings=_by_volume(self.by_spelling.items()),
            kind_counts=tuple(sorted(self.by_kind.items(), key=lambda item: (-item[1], item[0]))),
        )


def _by_volume(counts: Iterable[tuple[str, int]]) -> tuple[str, ...]:
    return tuple(name for name, _ in sorted(counts, key=lambda item: (-item[1], item[0])))
