from __future__ import annotations

import pytest
from sqlalchemy import Engine

from fundmodel.errors import OperationRefusedError
from fundmodel.ops.connection import open_engine
from fundmodel.ops.job_lock import exclusive_job


def test_one_job_per_database(engine: Engine, database_url: str) -> None:
    other = open_engine(database_url)
    try:
        with (
            exclusive_job(engine),
            pytest.raises(OperationRefusedError, match="another stage normalization job"),
            exclusive_job(other),
        ):
            pass
        with exclusive_job(other):  # released on exit
            pass
    finally:
        other.dispose()
