"""The core (stages, validation policy, engines) must stay pure: importing it pulls in no I/O layer."""

import subprocess
import sys

import pytest

IO_LIBRARIES = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "prometheus_client",
    "httpx",
    "structlog",
    "psycopg",
    "typer",
)


@pytest.mark.parametrize("core", ["fundmodel.stages", "fundmodel.validation", "fundmodel.engines.montecarlo"])
def test_core_imports_no_io_layer(core: str) -> None:
    probe = (
        f"import sys, {core}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {IO_LIBRARIES!r}"
        " or m.startswith(('fundmodel.api', 'fundmodel.db', 'fundmodel.cli', 'fundmodel.ops',"
        " 'fundmodel.observability', 'fundmodel.rollout', 'fundmodel.mode_ops')))\n"
        "print(','.join(bad))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""
