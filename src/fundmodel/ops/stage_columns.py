"""Which tables and columns hold investment stages, resolved against the schema's metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, MetaData, Table

from fundmodel.errors import ConfigurationError
from fundmodel.stages import Stage

# Free-text stage columns the normalization job rewrites (table, column).
STAGE_COLUMN_NAMES: tuple[tuple[str, str], ...] = (
    ("portfolio_companies", "stage"),
    ("deal_opportunities", "stage"),
)
# JSON columns of stage -> weight; stored canonical by the API, only verified here.
ALLOCATION_COLUMN_NAMES: tuple[tuple[str, str], ...] = (("portfolio_strategies", "stage_allocation"),)

CANONICAL_VALUES: tuple[str, ...] = tuple(stage.value for stage in Stage)


@dataclass(frozen=True)
class StageColumn:
    """One stage-holding column with the single-column primary key its batches are keyed by."""

    table: Table
    column: Column[Any]
    key: Column[Any]

    @property
    def table_name(self) -> str:
        return self.table.name

    def key_from_text(self, text: str) -> Any:
        """Turn a stored keyset cursor back into a primary-key value."""
        return self.key.type.python_type(text)


def _resolve(metadata: MetaData, names: tuple[tuple[str, str], ...]) -> list[StageColumn]:
    resolved = []
    for table_name, column_name in names:
        table = metadata.tables.get(table_name)
        if table is None or column_name not in table.c:
            raise ConfigurationError(f"schema has no column {table_name}.{column_name}")
        key_columns = list(table.primary_key.columns)
        if len(key_columns) != 1:
            raise ConfigurationError(f"{table_name} needs a single-column primary key for keyset batches")
        resolved.append(StageColumn(table=table, column=table.c[column_name], key=key_columns[0]))
    return resolved


def stage_columns(metadata: MetaData) -> list[StageColumn]:
    """The free-text stage columns, in a fixed order."""
    return _resolve(metadata, STAGE_COLUMN_NAMES)


def allocation_columns(metadata: MetaData) -> list[StageColumn]:
    """The JSON stage-allocation columns."""
    return _resolve(metadata, ALLOCATION_COLUMN_NAMES)


def stage_metadata() -> MetaData:
    """The application's metadata including the normalization tables."""
    from fundmodel.db.schema import load_metadata

    metadata = load_metadata()
    import fundmodel.db.normalization_tables  # noqa: F401  (in case schema.py does not list it yet)

    return metadata
