"""The one list of modules that define tables on the shared metadata (read by Alembic's env.py).

To add tables: define them on :data:`fundmodel.db.tables.metadata` in a new module and add that module
here, then write a migration whose ``down_revision`` is the current head.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

TABLE_MODULES: tuple[str, ...] = (
    "fundmodel.db.tables",
    "fundmodel.db.normalization_tables",
    "fundmodel.db.usage_tables",
    "fundmodel.db.exemption_tables",
    "fundmodel.db.brownout_tables",
    "fundmodel.db.notification_tables",
    "fundmodel.db.sweep_job_tables",
)


def load_metadata() -> MetaData:
    """Import every table module so the shared metadata is complete, and return it."""
    for module in TABLE_MODULES:
        importlib.import_module(module)
    from fundmodel.db.tables import metadata

    return metadata
